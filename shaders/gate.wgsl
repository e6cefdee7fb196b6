// gate.wgsl — the learned (MMoE-style) gate combine of the M tables' outputs, per sample.
//
// Launcher: src/kernels/dense/gate.rs. Tests: kernels_tests/dense_gate.rs.
//
//   h: [M, rows_cap, cols] (table-batched), a: gate logits [rows_cap, M] (the caller's GEMM),
//   gate_softmax:  g[b, :] = softmax(a[b, :]) (shifted by the row's max)      g: [rows_cap, M]
//                  (saved for the backward)
//   gate_forward:  out[b, j] = Σ_m g[b, m] · h[m, b, j]                        out: [rows_cap, cols]
//   gate_backward: from d_out [rows_cap, cols]:
//                  dh[m, b, j] = g[b, m] · d_out[b, j]                          (overwritten)
//                  dg[b, m]    = Σ_j d_out[b, j] · h[m, b, j]
//                  da[b, m]    = g[b, m] · (dg[b, m] − Σ_k g[b, k] · dg[b, k])  (overwritten)
// Rows past `rows` are not touched. Every sum runs in a fixed order: no atomics, same bits per run.
//
// Bindings (all entries, one bind group): 0 h, 1 a, 2 d_out (read); 3 g, 4 out, 5 dh, 6 da
// (read_write); 7 params.
//
// Geometry.
//   gate_softmax: one invocation per row b: max, Σ exp in table order, g = e / Σ e.
//   gate_forward: one invocation per element (b, j) of out, linear index folded into (x, y); reads
//     of h coalesced across j, g read from the first dispatch. Measured on lavapipe (B = 4096, M ∈
//     {2, 4, 8}): these two dispatches take about half the time of one fused dispatch in which
//     every invocation recomputes its row's softmax (M exps per element), and less than one
//     workgroup per row sharing the softmax through workgroup memory (a barrier per row: llvmpipe
//     runs barriers by switching between the workgroup's invocations) for W ≤ 128. On a GPU the
//     extra dispatch costs one small launch.
//   gate_backward: one workgroup per row b (folded into (x, y)). The M·cols products are split into
//     M·L slots, L = max(1, WG / M) lanes per table: slot (m, k) walks j = k, k + L, … in order,
//     writing dh and summing d_out·h (adjacent lanes read adjacent words). Partials meet in
//     workgroup memory; thread m sums its table's L lanes in lane order (dg[m]), then thread m
//     forms da[m] with Σ_k g_k dg_k summed k = 0..M−1. Two barriers per row whatever M.
//     M ≤ MAX_TABLES (the launcher checks).

override WG: u32 = 64u; // lavapipe runs 8 lanes, GPUs 32–64: a multiple of both
const MAX_TABLES: u32 = 256u;

struct GateParams {
    tables: u32, // M
    rows: u32,   // actual batch this step, ≤ rows_cap
    rows_cap: u32,
    cols: u32,   // W
}

@group(0) @binding(0) var<storage, read> h: array<f32>;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> grad_out: array<f32>;
@group(0) @binding(3) var<storage, read_write> gate: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> grad_h: array<f32>;
@group(0) @binding(6) var<storage, read_write> grad_logits: array<f32>;
@group(0) @binding(7) var<uniform> params: GateParams;

var<workgroup> red: array<f32, WG>;
var<workgroup> dgs: array<f32, MAX_TABLES>;

@compute @workgroup_size(WG)
fn gate_softmax(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let p = params;
    let b = (wid.x + wid.y * nwg.x) * WG + lid;
    if b >= p.rows { return; }
    let row = b * p.tables;
    var mx = logits[row];
    for (var m = 1u; m < p.tables; m++) { mx = max(mx, logits[row + m]); }
    var s = 0.0;
    for (var m = 0u; m < p.tables; m++) { s += exp(logits[row + m] - mx); }
    for (var m = 0u; m < p.tables; m++) { gate[row + m] = exp(logits[row + m] - mx) / s; }
}

@compute @workgroup_size(WG)
fn gate_forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let p = params;
    let i = (wid.x + wid.y * nwg.x) * WG + lid; // = b · cols + j
    if i >= p.rows * p.cols { return; }
    let b = i / p.cols;
    let j = i % p.cols;
    let row = b * p.tables;
    var acc = 0.0;
    for (var m = 0u; m < p.tables; m++) {
        acc += gate[row + m] * h[(m * p.rows_cap + b) * p.cols + j];
    }
    out[i] = acc;
}

@compute @workgroup_size(WG)
fn gate_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let p = params;
    let b = wid.x + wid.y * nwg.x; // uniform over the workgroup: the return keeps barriers uniform
    if b >= p.rows { return; }
    let tables = p.tables;
    let cols = p.cols;
    let row = b * tables;
    let lanes = max(1u, WG / tables);
    let slots = tables * lanes; // ≤ WG when lanes > 1
    for (var s = lid; s < slots; s += WG) {
        let m = s / lanes;
        let gm = gate[row + m];
        let base = (m * p.rows_cap + b) * cols;
        var acc = 0.0;
        for (var j = s % lanes; j < cols; j += lanes) {
            let d = grad_out[b * cols + j];
            acc += d * h[base + j];
            grad_h[base + j] = gm * d;
        }
        if lanes == 1u {
            dgs[m] = acc;
        } else {
            red[s] = acc;
        }
    }
    workgroupBarrier();
    if lanes > 1u && lid < tables {
        var d = 0.0;
        for (var k = 0u; k < lanes; k++) { d += red[lid * lanes + k]; }
        dgs[lid] = d;
    }
    workgroupBarrier();
    if lid < tables {
        var dot = 0.0;
        for (var k = 0u; k < tables; k++) { dot += gate[row + k] * dgs[k]; }
        for (var m = lid; m < tables; m += WG) {
            grad_logits[row + m] = gate[row + m] * (dgs[m] - dot);
        }
    }
}
