// dropout.wgsl — inverted dropout over table-batched tensors [tables, rows_cap, cols], no mask buffer.
//
// Launcher: src/kernels/dense/dropout.rs. Tests: kernels_tests/dense_dropout.rs.
//
//   dst[e] = keep(e) ? src[e] · scale : 0,   scale = 1 / (1 − p),   keep(e) = draw(e) ≥ threshold
// with threshold = floor(p · 2³²) (p = 0: threshold 0, every element kept, scale 1: the identity).
// Forward (src = x, dst = y) and backward (src = dy, dst = dx) are this same kernel: the mask is
// recomputed from the counter, so nothing is stored between them.
//
// The draws come from Philox4x32-10 (Salmon et al., SC'11; the generator of cuRAND and PyTorch's
// CUDA dropout): counter-based, so an element's bits are a pure function of (seed, step, table,
// element, stream); it passes TestU01 BigCrush, and ten rounds of 32×32→64 multiplies are cheap next
// to the memory traffic. key = (seed_lo, seed_hi); counter = (element / 4, table, step, stream);
// output word (element mod 4) decides element, so one Philox call serves four consecutive elements
// of a table's slab (element = row · cols + col, rows < rows this step).
//
// Philox4x32_10 is the prelude `philox.wgsl`.
//
// Bindings: 0 src (read), 1 dst (read_write), 2 params (uniform).
// Geometry: one invocation per group of four elements of one table, linear index folded into (x, y)
//   (gpu::grid); rows past `rows` are not touched.

override WG: u32 = 64u; // lavapipe runs 8 lanes, GPUs 32–64: a multiple of both

struct DropoutParams {
    rows: u32,
    cols: u32,
    rows_cap: u32,
    tables: u32,
    seed_lo: u32,
    seed_hi: u32,
    step: u32,
    stream: u32,    // distinguishes dropout layers sharing one seed
    threshold: u32, // drop when the 32-bit draw < threshold
    scale: f32,     // 1 / (1 − p)
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<uniform> params: DropoutParams;

@compute @workgroup_size(WG)
fn dropout(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let p = params;
    let quads = (p.rows_cap * p.cols + 3u) / 4u; // per table
    let lin = (wid.x + wid.y * nwg.x) * WG + lid;
    if lin >= quads * p.tables { return; }
    let t = lin / quads;
    let q = lin % quads;
    let n = p.rows * p.cols;
    if 4u * q >= n { return; }
    let bits = philox4x32_10(vec4<u32>(q, t, p.step, p.stream), vec2<u32>(p.seed_lo, p.seed_hi));
    let base = t * p.rows_cap * p.cols;
    for (var k = 0u; k < 4u; k++) {
        let e = 4u * q + k;
        if e < n {
            dst[base + e] = select(0.0, src[base + e] * p.scale, bits[k] >= p.threshold);
        }
    }
}
