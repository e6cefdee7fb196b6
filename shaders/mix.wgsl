// mix.wgsl — multi-task mixing: U units (one per task) each mix E experts with their own gate.
//
// Launcher: src/kernels/dense/mix.rs. Tests: kernels_tests/dense_mix.rs.
//
//   h: expert outputs [E, rows_cap, W]. route [U, E], u32 bit flags: PRESENT (expert e is in unit
//   u's mixture), TRAIN (u's loss reaches h_e through the mixture; without it: stop-gradient), READ
//   (the gradient of u's gate input reaches h_e). a: gate logits [U, rows_cap, E] (caller's GEMM).
//   mix_softmax:  g[u, b, e] = softmax over present e of a[u, b, :] (max-shifted; absent e get
//                 exactly 0 and stay out of the max and the sum); UNIFORM flag: 1 / (present
//                 count), no logits read. g [U, rows_cap, E] is saved for the backward.
//   mix_forward:  c[u, b, j] = Σ_e g[u, b, e] · h[e, b, j], present e in expert order.
//                 c: [U, rows_cap, W]
//   mix_backward_gate (not in UNIFORM mode), from dc [U, rows_cap, W]:
//                 dg[u, b, e] = Σ_j dc[u, b, j] · h[e, b, j]  (present e, stop-gradient or not)
//                 da[u, b, e] = g · (dg − Σ_k g_k · dg_k)     (present e; 0 if absent; overwritten)
//   mix_backward_h: dh[e, b, j] = Σ_{u = 0..U−1} [TRAIN] g[u, b, e] · dc[u, b, j]
//                                              + [READ] dx[u, b, e·W + j]          (overwritten)
//                 dx [U, rows_cap, E·W]: the gradient of each unit's gate input (the concatenated
//                 experts), read only with the GATE_INPUT_GRAD flag. Fixed order: units in order,
//                 and for each unit its mixture term, then its dx term.
//   mix_to_rows:  dst[b, u] = src[u, b]  ([U, rows_cap] → [rows_cap, U]: tower logits to the loss)
//   mix_to_units: dst[u, b] = src[b, u]  (the logits' gradient, back to the towers)
// Rows past `rows` are not touched. No atomics; every sum in a fixed order: same bits per run.
//
// Bindings. Forward (mix_softmax, mix_forward): 0 h, 1 a, 2 route (read); 3 g, 4 c (read_write);
//   5 params. Backward (mix_backward_gate, mix_backward_h): 0 h, 1 dc, 2 route, 3 g, 4 dx (read);
//   5 dh, 6 da (read_write); 7 params. Transpose (mix_to_rows, mix_to_units): 0 src (read);
//   1 dst (read_write); 2 params. Split so that no entry point binds more than 8 storage buffers.
//
// Geometry. Live work is packed at the front of each grid (the launcher sizes it for rows_cap).
//   mix_softmax: one invocation per (u, b), b fastest.
//   mix_forward: one invocation per (u, b, j), j fastest: h reads coalesced across j, as
//     gate_forward (gate.wgsl measured this pair, softmax then gated sum, against fused variants).
//   mix_backward_gate: one workgroup per (u, b), gate_backward's layout: E·L slots, L = max(1,
//     WG / E) lanes per expert; slot (e, k) sums j = k, k + L, … in order; thread e sums its L
//     lanes in lane order, then da[e] with Σ_k g_k dg_k, k = 0..E−1. Two barriers whatever E.
//     E ≤ MAX_EXPERTS.
//   mix_backward_h: one invocation per (e, b, j), j fastest: dc and dx reads coalesced; one writer
//     per dh element, so the sum over units needs no atomics.
//   mix_to_rows / mix_to_units: one invocation per element, writes coalesced.

override WG: u32 = 64u; // lavapipe runs 8 lanes, GPUs 32–64: a multiple of both
const MAX_EXPERTS: u32 = 256u; // dg of one (u, b) lives in workgroup memory
const PRESENT: u32 = 1u;
const TRAIN: u32 = 2u;
const READ: u32 = 4u;
const UNIFORM: u32 = 1u;         // flags: the shared-bottom mean, no logits
const GATE_INPUT_GRAD: u32 = 2u; // flags: dx is bound and adds to dh where READ

struct MixParams {
    units: u32,    // U
    experts: u32,  // E
    rows: u32,     // actual batch this step, ≤ rows_cap
    rows_cap: u32,
    cols: u32,     // W
    flags: u32,    // UNIFORM | GATE_INPUT_GRAD
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> h: array<f32>;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> route: array<u32>;
@group(0) @binding(3) var<storage, read_write> gate: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<uniform> params: MixParams;

@group(0) @binding(1) var<storage, read> grad_out: array<f32>;
@group(0) @binding(3) var<storage, read> saved_gate: array<f32>;
@group(0) @binding(4) var<storage, read> grad_x: array<f32>;
@group(0) @binding(5) var<storage, read_write> grad_h: array<f32>;
@group(0) @binding(6) var<storage, read_write> grad_logits: array<f32>;
@group(0) @binding(7) var<uniform> bparams: MixParams;

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<uniform> tparams: MixParams;

var<workgroup> red: array<f32, WG>;
var<workgroup> dgs: array<f32, MAX_EXPERTS>;

fn linear(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

@compute @workgroup_size(WG)
fn mix_softmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let p = params;
    let i = linear(wid, nwg) * WG + lid; // = u · rows + b
    if i >= p.units * p.rows { return; }
    let u = i / p.rows;
    let row = (u * p.rows_cap + i % p.rows) * p.experts;
    let r = u * p.experts;
    if (p.flags & UNIFORM) != 0u {
        var n = 0u;
        for (var e = 0u; e < p.experts; e++) { n += route[r + e] & PRESENT; }
        let w = 1.0 / f32(n);
        for (var e = 0u; e < p.experts; e++) {
            gate[row + e] = select(0.0, w, (route[r + e] & PRESENT) != 0u);
        }
        return;
    }
    var mx = -3.4028235e38;
    for (var e = 0u; e < p.experts; e++) {
        if (route[r + e] & PRESENT) != 0u { mx = max(mx, logits[row + e]); }
    }
    var s = 0.0;
    for (var e = 0u; e < p.experts; e++) {
        if (route[r + e] & PRESENT) != 0u { s += exp(logits[row + e] - mx); }
    }
    for (var e = 0u; e < p.experts; e++) {
        var w = 0.0;
        if (route[r + e] & PRESENT) != 0u { w = exp(logits[row + e] - mx) / s; }
        gate[row + e] = w;
    }
}

@compute @workgroup_size(WG)
fn mix_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let p = params;
    let i = linear(wid, nwg) * WG + lid; // = (u · rows + b) · cols + j
    if i >= p.units * p.rows * p.cols { return; }
    let j = i % p.cols;
    let ub = i / p.cols;
    let u = ub / p.rows;
    let b = ub % p.rows;
    let row = (u * p.rows_cap + b) * p.experts;
    var acc = 0.0;
    for (var e = 0u; e < p.experts; e++) {
        if (route[u * p.experts + e] & PRESENT) != 0u {
            acc += gate[row + e] * h[(e * p.rows_cap + b) * p.cols + j];
        }
    }
    out[(u * p.rows_cap + b) * p.cols + j] = acc;
}

@compute @workgroup_size(WG)
fn mix_backward_gate(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
    let p = bparams;
    let w = linear(wid, nwg); // = u · rows + b, uniform over the workgroup: barriers stay uniform
    if w >= p.units * p.rows { return; }
    let u = w / p.rows;
    let b = w % p.rows;
    let experts = p.experts;
    let cols = p.cols;
    let row = (u * p.rows_cap + b) * experts;
    let dc = (u * p.rows_cap + b) * cols;
    let lanes = max(1u, WG / experts);
    let slots = experts * lanes; // ≤ WG when lanes > 1
    for (var s = lid; s < slots; s += WG) {
        let e = s / lanes;
        let base = (e * p.rows_cap + b) * cols;
        var acc = 0.0;
        if (route[u * experts + e] & PRESENT) != 0u {
            for (var j = s % lanes; j < cols; j += lanes) { acc += grad_out[dc + j] * h[base + j]; }
        }
        if lanes == 1u { dgs[e] = acc; } else { red[s] = acc; }
    }
    workgroupBarrier();
    if lanes > 1u && lid < experts {
        var d = 0.0;
        for (var k = 0u; k < lanes; k++) { d += red[lid * lanes + k]; }
        dgs[lid] = d;
    }
    workgroupBarrier();
    var dot = 0.0;
    for (var k = 0u; k < experts; k++) { dot += saved_gate[row + k] * dgs[k]; }
    for (var e = lid; e < experts; e += WG) {
        let on = (route[u * experts + e] & PRESENT) != 0u;
        grad_logits[row + e] = select(0.0, saved_gate[row + e] * (dgs[e] - dot), on);
    }
}

@compute @workgroup_size(WG)
fn mix_backward_h(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
    let p = bparams;
    let i = linear(wid, nwg) * WG + lid; // = (e · rows + b) · cols + j
    if i >= p.experts * p.rows * p.cols { return; }
    let j = i % p.cols;
    let eb = i / p.cols;
    let e = eb / p.rows;
    let b = eb % p.rows;
    let read = (p.flags & GATE_INPUT_GRAD) != 0u;
    let ecols = p.experts * p.cols;
    var acc = 0.0;
    for (var u = 0u; u < p.units; u++) {
        let flags = route[u * p.experts + e];
        let ub = u * p.rows_cap + b;
        if (flags & TRAIN) != 0u {
            acc += saved_gate[ub * p.experts + e] * grad_out[ub * p.cols + j];
        }
        if read && (flags & READ) != 0u { acc += grad_x[ub * ecols + e * p.cols + j]; }
    }
    grad_h[(e * p.rows_cap + b) * p.cols + j] = acc;
}

@compute @workgroup_size(WG)
fn mix_to_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let p = tparams;
    let i = linear(wid, nwg) * WG + lid; // = b · U + u
    if i >= p.rows * p.units { return; }
    dst[i] = src[(i % p.units) * p.rows_cap + i / p.units];
}

@compute @workgroup_size(WG)
fn mix_to_units(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let p = tparams;
    let i = linear(wid, nwg) * WG + lid; // = u · rows + b
    if i >= p.units * p.rows { return; }
    let u = i / p.rows;
    let b = i % p.rows;
    dst[u * p.rows_cap + b] = src[b * p.units + u];
}
