// tim.wgsl — TIM, temporal interest attention (METHODS.md §1.1), fused with the behaviour gather.
//
// Launcher: src/kernels/tim/launch.rs. Tests: kernels_tests/tim.rs (reference: tim_reference.rs).
// Preludes: prelude/chunks.wgsl (load4, the storage element type), then prelude/tim_reduce.wgsl
// or, for the `subgroup` variant, prelude/tim_reduce_subgroup.wgsl (reduce).
//
// For table set m and sample b, with K components per set (semantic tables, then the temporal table)
// and bag (f = m*K + k, b) = [target id, behaviour ids 1..L] of component k:
//   e~_p = sum_k T_k[id_k(p)]                   (p = 0 the target v~, p = 1..L the behaviours)
//   s_i  = e~_i . v~ * scale,  scale = 1/sqrt(D);  alpha = softmax_i(s)   (stable: max-shifted)
//   u    = (sum_i alpha_i e~_i) * v~;           L = 0 gives u = 0
// Forward keeps (max_i s_i, sum_i exp(s_i - max)) per (m, b); no [B, L, D] buffer is written.
// Backward, with g = dL/du, w = g * v~, c_i = w . e~_i, delta_i = alpha_i (c_i - sum_j alpha_j c_j):
//   dL/de~_i = alpha_i w + delta_i scale v~,    dL/dv~ = g * A + scale sum_i delta_i e~_i
// written to every component's slot of the lookup (the tbe gather's pooling-none output layout), so
// tbe_update applies them through the SparseUpdatePlan: no atomics, fixed-order sums everywhere.
//
// Variant tim_mean_forward / tim_mean_backward (the TIM ablation, `pooling = "mean"`): K semantic
// tables only, bags of the behaviour ids only (no target lookup, so p = 0.. are behaviours):
//   u = (sum_i e~_i) / n,  n = 0 gives u = 0;   dL/de~_i = g / n;   nothing to any target row.
//
// Bindings: 0 batch (read: Bags words), 1..4 chunk0..3 (read), 5 grad_u (read; backward only),
// 6 stats (read_write: vec2 per (m, b)), 7 out (read_write: u [M, rows_cap, D] in the forward, the
// per-lookup gradient rows in the backward), 8 params (uniform).
// Geometry: one workgroup per (set, sample), groups folded into (x, y). Scores: lane t owns behaviours
// i = t mod WG (dot products over whole rows); sums of rows: lane (c, j) owns vec4 column c and
// behaviours i = j mod (WG / width4), then partial vectors are summed in order of j. Both shapes keep
// every lane busy for any D <= 256 and need only three short tree reductions (barriers are costly on
// llvmpipe; one barrier per behaviour would dominate). Measured on lavapipe: WG = 64 beats 128 and 256
// (up to 1.3x and 1.8x slower); staging row addresses in workgroup memory gained nothing; skipping
// the chunk switch for one-chunk storages (CHUNKS = 1) saves ~25%.

override WG: u32 = 64u;        // a power of two >= MAX_WIDTH4 (the tree reductions need it)
const MAX_LEN: u32 = 1024u;    // behaviours per sequence: scores and c_i live in workgroup memory
const MAX_WIDTH4: u32 = 64u;   // D <= 256
const MAX_FEATURES: u32 = 32u; // sets * components
const NEG_INF: u32 = 0xff800000u;

struct TimParams {
    batch_size: u32,
    sets: u32,
    components: u32,   // K: semantic tables + 1 temporal (mean variant: semantic tables only)
    width4: u32,
    offsets_at: u32,   // Bags sections in batch (words)
    indices_at: u32,
    chunk_shift: u32,
    chunk_mask: u32,
    rows_cap: u32,     // u, grad_u and stats are [sets, rows_cap, ...]
    scale: f32,        // 1 / sqrt(D)
    _pad0: u32,
    _pad1: u32,
    features: array<vec4<u32>, MAX_FEATURES>, // per feature m*K+k: base4, stride4, grad_offset4, grad_stride4
}

@group(0) @binding(0) var<storage, read> batch: array<u32>;
@group(0) @binding(1) var<storage, read> chunk0: array<Chunk4>;
@group(0) @binding(2) var<storage, read> chunk1: array<Chunk4>;
@group(0) @binding(3) var<storage, read> chunk2: array<Chunk4>;
@group(0) @binding(4) var<storage, read> chunk3: array<Chunk4>;
@group(0) @binding(5) var<storage, read> grad_u: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> stats: array<vec2<f32>>;
@group(0) @binding(7) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(8) var<uniform> params: TimParams;

var<workgroup> alpha: array<f32, MAX_LEN>;
var<workgroup> cdot: array<f32, MAX_LEN>;
var<workgroup> vt: array<vec4<f32>, MAX_WIDTH4>;  // v~
var<workgroup> wv: array<vec4<f32>, MAX_WIDTH4>;  // g * v~
var<workgroup> red_a: array<vec4<f32>, WG>;
var<workgroup> red_b: array<vec4<f32>, WG>;
var<workgroup> red_s: array<f32, WG>;

// Word index of bag (m*K + k, b) in the offsets section.
fn bag_at(m: u32, k: u32, b: u32) -> u32 {
    return params.offsets_at + (m * params.components + k) * params.batch_size + b;
}

// vec4 address of row 0 column 0 of the lookup at position p of bag (m, k, b).
fn row_at(m: u32, k: u32, b: u32, p: u32) -> u32 {
    let fw = params.features[m * params.components + k];
    return fw.x + batch[params.indices_at + batch[bag_at(m, k, b)] + p] * fw.y;
}

// vec4 index, in out, of column 0 of the gradient slot of lookup p of bag (m, k, b).
fn slot_at(m: u32, k: u32, b: u32, p: u32) -> u32 {
    let fw = params.features[m * params.components + k];
    let first = batch[params.offsets_at + (m * params.components + k) * params.batch_size];
    return fw.z + (batch[bag_at(m, k, b)] - first + p) * fw.w;
}

fn column(m: u32, b: u32, p: u32, c: u32) -> vec4<f32> {
    var e = vec4<f32>(0.0);
    for (var k = 0u; k < params.components; k++) {
        e += load4(row_at(m, k, b, p) + c);
    }
    return e;
}

// (e~_p . v~, e~_p . w); the second only when `with_w`.
fn dots(m: u32, b: u32, p: u32, with_w: bool) -> vec2<f32> {
    var s = vec2<f32>(0.0);
    for (var k = 0u; k < params.components; k++) {
        let a = row_at(m, k, b, p);
        for (var c = 0u; c < params.width4; c++) {
            let x = load4(a + c);
            s.x += dot(x, vt[c]);
            if with_w {
                s.y += dot(x, wv[c]);
            }
        }
    }
    return s;
}

// reduce(lid, x, op): from the prelude tim_reduce (a tree in workgroup memory, the default) or
// tim_reduce_subgroup (the `subgroup` variant of Family::Tim), whichever the registry prepends.

// Sum over partitions j of red[j * width4 + c], j in order.
fn gather_parts(c: u32, parts: u32, second: bool) -> vec4<f32> {
    var a = vec4<f32>(0.0);
    for (var j = 0u; j < parts; j++) {
        if second {
            a += red_b[j * params.width4 + c];
        } else {
            a += red_a[j * params.width4 + c];
        }
    }
    return a;
}

@compute @workgroup_size(WG)
fn tim_forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let g = wid.x + wid.y * nwg.x;
    if g >= params.batch_size * params.sets {
        return;
    }
    let m = g / params.batch_size;
    let b = g % params.batch_size;
    let w4 = params.width4;
    let len = batch[bag_at(m, 0u, b) + 1u] - batch[bag_at(m, 0u, b)] - 1u;
    if lid < w4 {
        vt[lid] = column(m, b, 0u, lid);
    }
    workgroupBarrier();
    var mx = bitcast<f32>(NEG_INF);
    for (var i = lid; i < len; i += WG) {
        let s = dots(m, b, i + 1u, false).x * params.scale;
        alpha[i] = s;
        mx = max(mx, s);
    }
    let row_max = reduce(lid, mx, 1u);
    var sum = 0.0;
    for (var i = lid; i < len; i += WG) {
        let e = exp(alpha[i] - row_max);
        alpha[i] = e;
        sum += e;
    }
    let row_sum = reduce(lid, sum, 0u); // its barriers publish alpha
    let parts = WG / w4;
    let c = lid % w4;
    var acc = vec4<f32>(0.0);
    for (var i = lid / w4; i < len && lid < parts * w4; i += parts) {
        acc += alpha[i] * column(m, b, i + 1u, c);
    }
    red_a[lid] = acc;
    workgroupBarrier();
    let at = m * params.rows_cap + b;
    if lid < w4 {
        var a = vec4<f32>(0.0);
        if len > 0u {
            a = gather_parts(lid, parts, false) / row_sum;
        }
        out[at * w4 + lid] = a * vt[lid];
    }
    if lid == 0u {
        stats[at] = vec2<f32>(row_max, row_sum);
    }
}

@compute @workgroup_size(WG)
fn tim_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let g = wid.x + wid.y * nwg.x;
    if g >= params.batch_size * params.sets {
        return;
    }
    let m = g / params.batch_size;
    let b = g % params.batch_size;
    let w4 = params.width4;
    let len = batch[bag_at(m, 0u, b) + 1u] - batch[bag_at(m, 0u, b)] - 1u;
    let at = m * params.rows_cap + b;
    let st = stats[at];
    if lid < w4 {
        let v = column(m, b, 0u, lid);
        vt[lid] = v;
        wv[lid] = grad_u[at * w4 + lid] * v;
    }
    workgroupBarrier();
    var part = 0.0;
    for (var i = lid; i < len; i += WG) {
        let d = dots(m, b, i + 1u, true);
        let a = exp(d.x * params.scale - st.x) / st.y;
        alpha[i] = a;
        cdot[i] = d.y;
        part += a * d.y;
    }
    let mean_c = reduce(lid, part, 0u); // sum_j alpha_j c_j; its barriers publish alpha and cdot
    let parts = WG / w4;
    let c = lid % w4;
    var sum_a = vec4<f32>(0.0);
    var sum_d = vec4<f32>(0.0);
    for (var i = lid / w4; i < len && lid < parts * w4; i += parts) {
        let a = alpha[i];
        let delta = a * (cdot[i] - mean_c);
        let de = a * wv[c] + (delta * params.scale) * vt[c];
        var e = vec4<f32>(0.0);
        for (var k = 0u; k < params.components; k++) {
            e += load4(row_at(m, k, b, i + 1u) + c);
            out[slot_at(m, k, b, i + 1u) + c] = de;
        }
        sum_a += a * e;
        sum_d += delta * e;
    }
    red_a[lid] = sum_a;
    red_b[lid] = sum_d;
    workgroupBarrier();
    if lid < w4 {
        let dv = grad_u[at * w4 + lid] * gather_parts(lid, parts, false)
            + params.scale * gather_parts(lid, parts, true);
        for (var k = 0u; k < params.components; k++) {
            out[slot_at(m, k, b, 0u) + lid] = dv;
        }
    }
}

// Behaviours of sample b of set m in the mean variant (its bags hold no target).
fn mean_len(m: u32, b: u32) -> u32 {
    return batch[bag_at(m, 0u, b) + 1u] - batch[bag_at(m, 0u, b)];
}

@compute @workgroup_size(WG)
fn tim_mean_forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let g = wid.x + wid.y * nwg.x;
    if g >= params.batch_size * params.sets {
        return;
    }
    let m = g / params.batch_size;
    let b = g % params.batch_size;
    let w4 = params.width4;
    let len = mean_len(m, b);
    let parts = WG / w4;
    let c = lid % w4;
    var acc = vec4<f32>(0.0);
    for (var i = lid / w4; i < len && lid < parts * w4; i += parts) {
        acc += column(m, b, i, c);
    }
    red_a[lid] = acc;
    workgroupBarrier();
    if lid < w4 {
        var a = vec4<f32>(0.0);
        if len > 0u {
            a = gather_parts(lid, parts, false) / f32(len);
        }
        out[(m * params.rows_cap + b) * w4 + lid] = a;
    }
}

@compute @workgroup_size(WG)
fn tim_mean_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let g = wid.x + wid.y * nwg.x;
    if g >= params.batch_size * params.sets {
        return;
    }
    let m = g / params.batch_size;
    let b = g % params.batch_size;
    let w4 = params.width4;
    let len = mean_len(m, b);
    let parts = WG / w4;
    let c = lid % w4;
    if len == 0u || lid >= parts * w4 {
        return;
    }
    let de = grad_u[(m * params.rows_cap + b) * w4 + c] / f32(len);
    for (var i = lid / w4; i < len; i += parts) {
        for (var k = 0u; k < params.components; k++) {
            out[slot_at(m, k, b, i) + c] = de;
        }
    }
}
