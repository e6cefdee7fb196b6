// loss.wgsl — training losses on logits z [rows_cap, tasks] (one column per task/head), labels
// y [rows_cap, tasks] (f32; a row is a positive of task t when y > 0.5; y < 0 — the sentinel −1 —
// means the row has no label for task t) and per-sample weights w [rows_cap] (w ≥ 0; 1 when
// `weighted` = 0). METHODS.md §4.1. Every formula below reads w_i as the effective weight of row i
// in task t: w_i (or 1) when y[i, t] ≥ 0, else 0. So a missing label removes the row from that
// task only (its BCE mean, its pairs, its list) and a task with no labelled row has loss 0 and
// dz 0 (the Σw = 0 case); batches without a missing label give the same bits as before.
// For each task t:
//   BCE:   ℓ_i = max(z,0) − z·y + log1p(exp(−|z|)),  L_bce = Σ w_i ℓ_i / Σ w_i
//          (torch: BCEWithLogitsLoss(weight=w, reduction='sum')(z, y) / w.sum()),
//          dL_bce/dz_i = w_i (σ(z_i) − y_i) / Σ w.
//   Pair:  L_pair = Σ_{i∈P} Σ_{j∈N} w_i w_j softplus(z_j − z_i) / (W⁺ W⁻),  W± = Σ_{i∈P/N} w_i,
//          softplus(z_j − z_i) = −log σ(z_i − z_j). A weight-w sample counts as w copies, so the
//          pair (i, j) weighs w_i w_j and the normaliser Σ w_i w_j = W⁺W⁻; all-ones weights give the
//          paper's −1/(N⁺N⁻) Σ log σ(z_i − z_j).
//          dL/dz_i (i∈P) = −w_i Σ_j w_j σ(z_j − z_i) / (W⁺W⁻),  dL/dz_j (j∈N) = w_j Σ_i w_i σ(z_j − z_i) / (W⁺W⁻).
//   List:  L_list = −Σ_{i∈P} w_i (z_i − m − log S) / W⁺,  S = Σ_k w_k exp(z_k − m), m = max over w_k > 0
//          (copies again: the softmax denominator counts sample k w_k times),
//          dL/dz_k = w_k exp(z_k − m) / S − [k∈P] w_k / W⁺.
//   Combined: L = α·L_bce + (1 − α)·L_rank and dz likewise; a task whose batch has W⁺ = 0 or W⁻ = 0
//          (no positive or no negative of positive weight) uses BCE alone (α treated as 1), and its
//          dz and loss are then exactly the BCE kernel's. Σ w = 0: loss 0, dz 0. rows = 0: loss 0,
//          stats 0, dz not written.
// dz is the gradient of Σ_t L_t: column t is dL_t/dz[:, t]. Only the first `rows` rows of dz are
// written.
//
// Preludes: prelude/loss_tree.wgsl, or prelude/loss_tree_subgroup.wgsl for the subgroup variant.
// Launcher: src/kernels/loss/mod.rs (loss_stats, loss_rows, loss_reduce) and
// src/kernels/loss/predict.rs (loss_predict). Tests: kernels_tests/loss.rs, loss_missing.rs and
// kernels_tests/loss_flag.rs.
//
// Three dispatches per step, whatever the batch and the number of tasks (all entries share one
// bind group):
//   loss_stats:  one workgroup per task: Σw, W⁺, W⁻, m (fixed-order strided sums, then a fixed tree
//                over the workgroup), then S = Σ w exp(z − m) the same way → stats[t, 0..5].
//   loss_rows:   one invocation per (row, task): dz and the row's partials (w_i ℓ_i, rank term). The
//                pair kernel walks the whole batch in index order for each row: O(rows²) work, O(rows)
//                per invocation, no atomics.
//   loss_reduce: one workgroup per task: Σ partials in fixed order → loss[t], stats[t, 6..8].
// No float atomics anywhere; one device gives the same bits on every run.
//
// stats[t, ·] (8 f32 per task): 0 Σw, 1 W⁺, 2 W⁻, 3 m, 4 S, 5 rank term used (1/0), 6 L_bce, 7 L_rank.
// partial [rows_cap, tasks, 2]: (w_i ℓ_i, the row's un-normalised rank term).
//
// loss_predict (inference): p[i, t] = σ(z[i, t] − correction[t]) for i < rows, the class-weight logit
// correction of METHODS.md §4.2 (correction = log(w₊/w₋)). Bindings: 0 z, 1 correction [tasks]
// (read); 2 p [rows_cap, tasks] (read_write); 3 params. Rows past `rows` are not written.
//
// Bindings (loss_stats, loss_rows, loss_reduce): 0 z, 1 y, 2 w, 3 tasks' kind and α (read);
// 4 stats, 5 partial, 6 loss [tasks] or [5 · tasks], 7 dz (read_write); 8 params.
//
// Divergence flag: when the loss buffer holds 5 · tasks floats, loss_reduce also keeps, per task,
// a count of its runs at [tasks + 2t, +1] and, sticky, the count at the first run whose loss was
// NaN or infinite at [3 · tasks + 2t, +1] (0 = never). So the caller reading the loss every N steps
// learns whether any step since was non-finite, and which, with no extra dispatch or read-back.
// Counts are (lo, hi) f32 pairs, lo < 2^16: exact to 2^40 runs, with no bitcast integer (a
// denormal) to be flushed. Only the task's own workgroup, one thread, touches its slots: no atomics.
// The flag reads the loss's bits (exponent all ones), as a NaN test may be folded by the compiler.

override WG: u32 = 64u; // loss_rows / loss_predict invocations per workgroup (lavapipe 8, GPUs 32–64)
const RWG: u32 = 256u;  // loss_stats / loss_reduce: threads of the one workgroup per task

const KIND_BCE: u32 = 0u;
const KIND_PAIR: u32 = 1u;
const KIND_LIST: u32 = 2u;
const LOWEST: f32 = -3.4028235e38;
const FLAG_FLOATS: u32 = 5u;        // loss buffer floats per task that keep the divergence flag
const COUNT_BASE: f32 = 65536.0;    // lo of a (lo, hi) count wraps here
const EXPONENT: u32 = 0x7f800000u;  // an f32 whose exponent bits are all set is ±inf or NaN

struct LossParams {
    rows: u32,     // actual batch this step, ≤ rows_cap
    rows_cap: u32,
    tasks: u32,
    weighted: u32, // 0: w is not read, every weight is 1
}

struct TaskLoss {
    kind: u32,  // KIND_*
    alpha: f32, // weight of BCE in the combined losses
}

@group(0) @binding(0) var<storage, read> z: array<f32>;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> task_loss: array<TaskLoss>;
@group(0) @binding(4) var<storage, read_write> stats: array<f32>;
@group(0) @binding(5) var<storage, read_write> partial: array<f32>;
@group(0) @binding(6) var<storage, read_write> loss: array<f32>;
@group(0) @binding(7) var<storage, read_write> dz: array<f32>;
@group(0) @binding(8) var<uniform> params: LossParams;
// loss_predict's bindings 1..3.
@group(0) @binding(1) var<storage, read> correction: array<f32>;
@group(0) @binding(2) var<storage, read_write> prob: array<f32>;
@group(0) @binding(3) var<uniform> predict_params: LossParams;

var<workgroup> red: array<vec4<f32>, RWG>;

// The effective weight of row i in the task of element k = i · tasks + t: 0 when the label is
// missing (y < 0), else the sample weight (1 when unweighted).
fn weight(i: u32, k: u32) -> f32 {
    if y[k] < 0.0 { return 0.0; }
    if params.weighted == 0u { return 1.0; }
    return w[i];
}

// log(1 + x) for x ≥ 0, accurate for small x (Goldberg's trick; 1 + x is rounded once).
fn log1p_(x: f32) -> f32 {
    let u = 1.0 + x;
    if u == 1.0 { return x; }
    return log(u) * (x / (u - 1.0));
}

// σ(x) without overflow.
fn sigmoid(x: f32) -> f32 {
    let e = exp(-abs(x));
    if x >= 0.0 { return 1.0 / (1.0 + e); }
    return e / (1.0 + e);
}

// tree(lid, v): sums the (x, y, z) and maxes the w of v over the workgroup; every thread gets the
// result. From the prelude loss_tree (a fixed tree in workgroup memory, the default) or
// loss_tree_subgroup (the `subgroup` variant of Family::Loss), whichever the registry prepends.

@compute @workgroup_size(RWG)
fn loss_stats(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let p = params;
    let t = wid.x;
    // Thread lid owns rows lid, lid + RWG, … in order.
    var acc = vec4<f32>(0.0, 0.0, 0.0, LOWEST);
    for (var i = lid; i < p.rows; i += RWG) {
        let k = i * p.tasks + t;
        let wi = weight(i, k);
        acc.x += wi;
        if y[k] > 0.5 { acc.y += wi; } else { acc.z += wi; }
        if wi > 0.0 { acc.w = max(acc.w, z[k]); }
    }
    let s = tree(lid, acc);
    var e = 0.0;
    for (var i = lid; i < p.rows; i += RWG) {
        let k = i * p.tasks + t;
        let wi = weight(i, k);
        if wi > 0.0 { e += wi * exp(z[k] - s.w); }
    }
    let se = tree(lid, vec4<f32>(e, 0.0, 0.0, LOWEST));
    if lid == 0u {
        let o = t * 8u;
        let live = p.rows > 0u;
        stats[o] = s.x;
        stats[o + 1u] = s.y;
        stats[o + 2u] = s.z;
        stats[o + 3u] = select(0.0, s.w, live);
        stats[o + 4u] = se.x;
        let tl = task_loss[t];
        stats[o + 5u] = select(0.0, 1.0, tl.kind != KIND_BCE && s.y > 0.0 && s.z > 0.0);
    }
}

@compute @workgroup_size(WG)
fn loss_rows(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let p = params;
    let g = (wid.x + wid.y * nwg.x) * WG + lid; // = i · tasks + t
    if g >= p.rows * p.tasks { return; }
    let i = g / p.tasks;
    let t = g % p.tasks;
    let o = t * 8u;
    let sw = stats[o];
    let wp = stats[o + 1u];
    let wn = stats[o + 2u];
    let rank = stats[o + 5u] != 0.0;
    let tl = task_loss[t];

    let zi = z[g];
    let yi = y[g];
    let wi = weight(i, g);
    let e = exp(-abs(zi));
    let bce = wi * (max(zi, 0.0) - zi * yi + log1p_(e));
    // σ(z) − y, with σ(z) − 1 = −σ(−z) so that a confident positive keeps its relative accuracy.
    var d = sigmoid(zi) - yi;
    if yi == 1.0 { d = -sigmoid(-zi); }
    var g_bce = 0.0;
    if sw > 0.0 { g_bce = wi * d / sw; }

    var part = 0.0;
    var g_rank = 0.0;
    let pos = yi > 0.5;
    if rank && tl.kind == KIND_PAIR {
        var acc_g = 0.0;
        var acc_l = 0.0;
        for (var j = 0u; j < p.rows; j++) {
            let k = j * p.tasks + t;
            let wj = weight(j, k);
            if (y[k] > 0.5) == pos || wj == 0.0 { continue; }
            // δ = z_neg − z_pos; the pair's loss is softplus(δ), its gradient σ(δ).
            var dl = z[k] - zi;
            if !pos { dl = -dl; }
            let ed = exp(-abs(dl));
            let sg = select(ed / (1.0 + ed), 1.0 / (1.0 + ed), dl >= 0.0);
            acc_g += wj * sg;
            if pos { acc_l += wj * (max(dl, 0.0) + log1p_(ed)); }
        }
        let norm = wp * wn;
        if pos {
            g_rank = -wi * acc_g / norm;
            part = wi * acc_l;
        } else {
            g_rank = wi * acc_g / norm;
        }
    } else if rank && tl.kind == KIND_LIST {
        let m = stats[o + 3u];
        let s = stats[o + 4u];
        var soft = 0.0;
        if wi > 0.0 { soft = wi * exp(zi - m) / s; }
        if pos {
            g_rank = soft - wi / wp;
            part = -wi * (zi - m - log(s));
        } else {
            g_rank = soft;
        }
    }
    if rank {
        dz[g] = tl.alpha * g_bce + (1.0 - tl.alpha) * g_rank;
    } else {
        dz[g] = g_bce;
    }
    partial[2u * g] = bce;
    partial[2u * g + 1u] = part;
}

@compute @workgroup_size(RWG)
fn loss_reduce(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let p = params;
    let t = wid.x;
    var acc = vec4<f32>(0.0, 0.0, 0.0, LOWEST);
    for (var i = lid; i < p.rows; i += RWG) {
        let k = 2u * (i * p.tasks + t);
        acc.x += partial[k];
        acc.y += partial[k + 1u];
    }
    let s = tree(lid, acc);
    if lid == 0u {
        let o = t * 8u;
        let sw = stats[o];
        let tl = task_loss[t];
        var l_bce = 0.0;
        if sw > 0.0 { l_bce = s.x / sw; }
        var l_rank = 0.0;
        var l = l_bce;
        if stats[o + 5u] != 0.0 {
            var norm = stats[o + 1u];
            if tl.kind == KIND_PAIR { norm *= stats[o + 2u]; }
            l_rank = s.y / norm;
            l = tl.alpha * l_bce + (1.0 - tl.alpha) * l_rank;
        }
        stats[o + 6u] = l_bce;
        stats[o + 7u] = l_rank;
        loss[t] = l;
        if arrayLength(&loss) >= FLAG_FLOATS * p.tasks {
            flag_step(t, p.tasks, l);
        }
    }
}

// Counts this run of task t and, the first time its loss `l` is not finite, keeps the count.
fn flag_step(t: u32, tasks: u32, l: f32) {
    let c = tasks + 2u * t;
    var lo = loss[c] + 1.0;
    var hi = loss[c + 1u];
    if lo >= COUNT_BASE {
        lo = 0.0;
        hi += 1.0;
    }
    loss[c] = lo;
    loss[c + 1u] = hi;
    let f = 3u * tasks + 2u * t;
    let bad = (bitcast<u32>(l) & EXPONENT) == EXPONENT;
    if bad && loss[f] == 0.0 && loss[f + 1u] == 0.0 {
        loss[f] = lo;
        loss[f + 1u] = hi;
    }
}

@compute @workgroup_size(WG)
fn loss_predict(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let p = predict_params;
    let g = (wid.x + wid.y * nwg.x) * WG + lid; // = i · tasks + t
    if g >= p.rows * p.tasks { return; }
    prob[g] = sigmoid(z[g] - correction[g % p.tasks]);
}
