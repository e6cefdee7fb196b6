// graphsage.wgsl — the GraphSAGE glue between the embedding gather and the GEMMs (METHODS.md §1.4).
//
// Launcher: src/pretrain/kernels.rs. Tests: kernels_tests/graphsage.rs. CPU reference:
// src/pretrain/reference.rs. Target t reads layer-1 rows members[target_rows[t] .. target_rows[t+1]],
// its own first; row r is read by entries[row_offsets[r] .. row_offsets[r+1]], each 2·t (own) or
// 2·t + 1 (a sample), in target order (structure = [target_rows | members | row_offsets | entries]).
//
//   gather_concat          out[t] = [a[own] ‖ mean a[samples]]   (a = h¹ [rows, D]; zeros
//                          when t has no sampled neighbours)             → a² [T, 2D]
//   l2_normalize           out[t] = a[t] / sqrt(‖a[t]‖² + ε)             → z [T, D]
//   link_loss              edge e owns targets e·G .. e·G + G (G = 2 + Q): u, positive, negatives;
//                          s_k = z_u·z_k / τ; out2[loss_at + e] = softplus(−s_1) + Σ softplus(s_k);
//                          out = dL/dz for the edge's rows, L the mean over `edges`
//   l2_normalize_backward  out[t] = (b[t] − z (z·b[t])) / n, z and n recomputed from a = y
//   scatter_relu_backward  out[r] = Σ_entries (own ? b[t, :D] : b[t, D:] / S₂(t)) · (a[r] > 0)
//                          (b = dL/da², a = h¹: ReLU backward through the stored output)
// Every output element has one writer, sums run in a fixed order: no atomics, same bits each run.
//
// Bindings (one layout for every entry): 0 structure (read, u32), 1 a, 2 b (read), 3 out,
// 4 out2 (read_write), 5 params (uniform).
// Geometry: gather_concat and scatter_relu_backward one invocation per (row, column); the others
// one per target or edge (D is small: a row's loop stays in one invocation). Folded into (x, y).

override WG: u32 = 64u; // small kernels over thousands of rows: 64 keeps every core busy

const NORM_EPS: f32 = 1e-12; // as reference::NORM_EPS: z = 0 for an all-zero y, nothing else moves

struct SageParams {
    targets: u32,   // T this batch
    rows: u32,      // layer-1 rows this batch
    dim: u32,       // D
    edges: u32,     // loss edges this batch
    group: u32,     // targets per edge, 2 + Q
    members_at: u32,     // start of members[] in structure (targets + 1)
    row_offsets_at: u32, // start of row_offsets[]
    entries_at: u32,     // start of entries[]
    loss_at: u32,        // out2 index of edge 0's loss
    inv_tau: f32,        // 1 / τ
    inv_edges: f32,      // 1 / edges: the batch loss is the mean
    _pad0: u32,
}

@group(0) @binding(0) var<storage, read> structure: array<u32>;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read_write> out2: array<f32>;
@group(0) @binding(5) var<uniform> params: SageParams;

fn linear_id(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.x + wid.y * nwg.x) * WG + lid;
}

@compute @workgroup_size(WG)
fn gather_concat(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let d = params.dim;
    let i = linear_id(wid, nwg, lid);
    if i >= params.targets * d { return; }
    let t = i / d;
    let j = i % d;
    let first = params.members_at + structure[t];
    let end = params.members_at + structure[t + 1u];
    var sum = 0.0;
    for (var m = first + 1u; m < end; m++) { sum += a[structure[m] * d + j]; }
    out[t * 2u * d + j] = a[structure[first] * d + j];
    out[t * 2u * d + d + j] = select(0.0, sum / f32(end - first - 1u), end > first + 1u);
}

fn inv_norm(t: u32) -> f32 {
    var sq = 0.0;
    for (var j = 0u; j < params.dim; j++) { let v = a[t * params.dim + j]; sq += v * v; }
    return 1.0 / sqrt(sq + NORM_EPS);
}

@compute @workgroup_size(WG)
fn l2_normalize(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let t = linear_id(wid, nwg, lid);
    if t >= params.targets { return; }
    let inv = inv_norm(t);
    for (var j = 0u; j < params.dim; j++) { out[t * params.dim + j] = a[t * params.dim + j] * inv; }
}

fn softplus(x: f32) -> f32 { return max(x, 0.0) + log(1.0 + exp(-abs(x))); }

fn sigmoid(x: f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }

@compute @workgroup_size(WG)
fn link_loss(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let e = linear_id(wid, nwg, lid);
    if e >= params.edges { return; }
    let d = params.dim;
    let u = e * params.group;
    for (var j = 0u; j < d; j++) { out[u * d + j] = 0.0; }
    var loss = 0.0;
    for (var k = 1u; k < params.group; k++) {
        let v = u + k;
        var dot = 0.0;
        for (var j = 0u; j < d; j++) { dot += a[u * d + j] * a[v * d + j]; }
        let s = dot * params.inv_tau;
        // The positive (k = 1) wants s high, the negatives low.
        var g = sigmoid(s);
        if k == 1u { loss += softplus(-s); g = -sigmoid(-s); } else { loss += softplus(s); }
        g *= params.inv_tau * params.inv_edges;
        for (var j = 0u; j < d; j++) {
            out[u * d + j] += g * a[v * d + j];
            out[v * d + j] = g * a[u * d + j];
        }
    }
    out2[params.loss_at + e] = loss;
}

@compute @workgroup_size(WG)
fn l2_normalize_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                         @builtin(local_invocation_index) lid: u32) {
    let t = linear_id(wid, nwg, lid);
    if t >= params.targets { return; }
    let d = params.dim;
    let inv = inv_norm(t);
    var zdz = 0.0;
    for (var j = 0u; j < d; j++) { zdz += a[t * d + j] * inv * b[t * d + j]; }
    for (var j = 0u; j < d; j++) { out[t * d + j] = (b[t * d + j] - a[t * d + j] * inv * zdz) * inv; }
}

@compute @workgroup_size(WG)
fn scatter_relu_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                         @builtin(local_invocation_index) lid: u32) {
    let d = params.dim;
    let i = linear_id(wid, nwg, lid);
    if i >= params.rows * d { return; }
    let r = i / d;
    let j = i % d;
    var g = 0.0;
    let first = structure[params.row_offsets_at + r];
    let last = structure[params.row_offsets_at + r + 1u];
    for (var e = first; e < last; e++) {
        let entry = structure[params.entries_at + e];
        let t = entry / 2u;
        if entry % 2u == 0u {
            g += b[t * 2u * d + j];
        } else {
            g += b[t * 2u * d + d + j] / f32(structure[t + 1u] - structure[t] - 1u);
        }
    }
    // select, not a product: a NaN behind a dead unit stays out.
    out[r * d + j] = select(0.0, g, a[r * d + j] > 0.0);
}
