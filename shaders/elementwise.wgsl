// elementwise.wgsl — the small glue ops of the training graph, table-batched over [tables, rows_cap, ·].
//
// Launcher: src/kernels/dense/elementwise.rs. Tests: kernels_tests/dense_elementwise.rs.
//
//   relu_inplace:       y[t, b, j] = max(y[t, b, j], 0)                       (forward, in place)
//   relu_grad_inplace:  g[t, b, j] = g[t, b, j] · (y[t, b, j] > 0)            (backward, in place;
//                       y is the ReLU's output, so the mask is the forward's)
//   copy_columns:       dst[dst_at + t·dst_stride + b·dst_ld + j] = src[src_at + t·src_stride + b·src_ld + j]
//                       for j < cols: moves a [tables, rows, cols] block between layouts (TIM's u
//                       into its field of the experts' input, and the field's gradient back).
// Only rows < `rows` are touched; every element is written by exactly one invocation (no races,
// no atomics).
//
// Bindings: 0 a (read: y for relu_grad_inplace, src for copy_columns; unused by relu_inplace),
//           1 b (read_write: y, g or dst), 2 params (uniform).
// Geometry: one invocation per (t, b, j) with b < rows, linear index folded into (x, y).

override WG: u32 = 64u;

struct ElementwiseParams {
    tables: u32,
    rows: u32,     // actual batch this step
    cols: u32,     // columns touched per row
    src_ld: u32,   // floats between rows of a
    src_at: u32,   // offset of a's block
    src_stride: u32, // floats between tables of a
    dst_ld: u32,
    dst_at: u32,
    dst_stride: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read_write> b: array<f32>;
@group(0) @binding(2) var<uniform> params: ElementwiseParams;

// (src index, dst index) of linear invocation i, or a negative marker when past the block.
fn locate(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> vec3<u32> {
    let p = params;
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    let per_table = p.rows * p.cols;
    if p.cols == 0u || i >= p.tables * per_table { return vec3<u32>(0u, 0u, 0u); }
    let t = i / per_table;
    let r = (i % per_table) / p.cols;
    let j = i % p.cols;
    return vec3<u32>(
        p.src_at + t * p.src_stride + r * p.src_ld + j,
        p.dst_at + t * p.dst_stride + r * p.dst_ld + j,
        1u,
    );
}

@compute @workgroup_size(WG)
fn relu_inplace(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let at = locate(wid, nwg, lid);
    if at.z == 0u { return; }
    b[at.y] = max(b[at.y], 0.0);
}

@compute @workgroup_size(WG)
fn relu_grad_inplace(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let at = locate(wid, nwg, lid);
    if at.z == 0u { return; }
    // select, not a product: a NaN gradient behind a dead unit stays out.
    b[at.y] = select(0.0, b[at.y], a[at.x] > 0.0);
}

@compute @workgroup_size(WG)
fn copy_columns(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let at = locate(wid, nwg, lid);
    if at.z == 0u { return; }
    b[at.y] = a[at.x];
}
