// combine.wgsl — combining the M tables' outputs [M, rows_cap, cols] into one tensor, and back.
//
// Launcher: src/kernels/dense/combine.rs. Tests: kernels_tests/dense_combine.rs.
//
//   combine_mean:          h[b, j] = (1/M) · Σ_{m = 0..M−1} x[m, b, j]      h: [rows_cap, cols]
//   combine_mean_backward: dx[m, b, j] = g[b, j] / M
//   concat:                h[b, m·cols + j] = x[m, b, j]                    h: [rows_cap, M·cols]
//   concat_backward:       dx[m, b, j] = g[b, m·cols + j]                  (the split)
// The mean sums m = 0..M−1 in order inside one invocation (deterministic, no atomics) and divides
// once, so M = 1 is exact. Rows past `rows` are not touched.
//
// Bindings: 0 src (read), 1 dst (read_write), 2 params (uniform).
// Geometry: one invocation per element of dst (rows_cap rows), linear index folded into (x, y).

override WG: u32 = 64u; // lavapipe runs 8 lanes, GPUs 32–64: a multiple of both

struct CombineParams {
    tables: u32, // M
    rows: u32,   // actual batch this step, ≤ rows_cap
    rows_cap: u32,
    cols: u32,   // per table
}

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<uniform> params: CombineParams;

fn linear(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.x + wid.y * nwg.x) * WG + lid;
}

@compute @workgroup_size(WG)
fn combine_mean(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let p = params;
    let i = linear(wid, nwg, lid); // = b · cols + j
    if i >= p.rows * p.cols { return; }
    let slab = p.rows_cap * p.cols;
    var s = 0.0;
    for (var m = 0u; m < p.tables; m++) { s += src[m * slab + i]; }
    dst[i] = s / f32(p.tables);
}

@compute @workgroup_size(WG)
fn combine_mean_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let p = params;
    let i = linear(wid, nwg, lid); // = m · slab + b · cols + j
    let slab = p.rows_cap * p.cols;
    if i >= p.tables * slab || i % slab >= p.rows * p.cols { return; }
    dst[i] = src[i % slab] / f32(p.tables);
}

@compute @workgroup_size(WG)
fn concat(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let p = params;
    let i = linear(wid, nwg, lid); // = b · M·cols + m · cols + j
    let width = p.tables * p.cols;
    if i >= p.rows * width { return; }
    let b = i / width;
    let m = (i % width) / p.cols;
    let j = i % p.cols;
    dst[i] = src[(m * p.rows_cap + b) * p.cols + j];
}

@compute @workgroup_size(WG)
fn concat_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let p = params;
    let i = linear(wid, nwg, lid); // = (m · rows_cap + b) · cols + j
    let slab = p.rows_cap * p.cols;
    if i >= p.tables * slab || i % slab >= p.rows * p.cols { return; }
    let m = i / slab;
    let b = (i % slab) / p.cols;
    let j = i % p.cols;
    dst[i] = src[b * p.tables * p.cols + m * p.cols + j];
}
