// embedding_update.wgsl — fused embedding backward + optimizer, one writer per touched row, no atomics.
//
// Launcher: src/kernels/embedding/update.rs. Tests: kernels_tests/embedding_update.rs (reference:
// embedding_reference.rs; f16: embedding_f16.rs). Preludes: prelude/chunks.wgsl,
// prelude/chunks_store.wgsl (load4/store4, the storage element type, the f32 state accessors
// state_at/load_state4/store_state4/load_acc/store_acc and store_row4); the EMBEDDING_UPDATE_F16
// variant has prelude/chunks_f16.wgsl, philox.wgsl, chunks_store_f16.wgsl instead: the same
// functions over f16 rows with f32 state, and store_row4's optional stochastic rounding.
//
// The host's SparseUpdatePlan lists the unique (table, row) pairs a batch touched and, for each, the
// lookups that touched it (CSR, in lookup order). For unique row u and vec4 column c:
//   g = sum over its entries (l, bag) of coef(l) * dOut[slot(l, bag)][c]   (fixed order: deterministic)
//   coef(l) = w_l (or 1) * (1 / bag length for mean pooling)
//   slot = the sample's pooled output row, or the lookup's own row for pooling none
// then applies the optimizer to the row in place (state stored beside the row, after its width4 vec4s):
// with wd = this table's L2 weight decay (the plan's decay section, one f32 per table), divided by
// the row's lookups in the batch (its CSR segment length) when DECAY_FREQUENCY is set:
//   OPT_SGD:     w -= lr * (g + wd * w)
//   OPT_ADAGRAD: FBGEMM EXACT_ROWWISE_ADAGRAD: g += wd * w; acc += mean(g^2) over the row;
//                w -= lr * g / (sqrt(acc) + eps); one accumulator per row (state vec4 .x)
//   OPT_ADAM:    per-element m, v on touched rows only (lazy Adam), bias-corrected with the global step;
//                decoupled weight decay (AdamW): w -= lr * (m^ / (sqrt(v^) + eps) + wd * w)
//
// Bindings: 0 tables_meta (read), 1 batch (read), 2 plan (read: rows as (table,row) pairs, CSR offsets,
// entries as (lookup,bag) pairs, per-table weight decay as f32 bits), 3 grad (read: dOut, same layout as the forward output),
// 4..7 chunk0..3 (read_write), 8 params (uniform).
// Geometry: a team of TEAM lanes per unique row (TEAM · COLS = next power of two >= the widest
// width4), WG / TEAM rows per workgroup; lane c owns vec4 columns c + k·TEAM, k < COLS, and walks
// the row's entries once for all of them. COLS > 1 (issue 20) amortises each entry's words (plan,
// feature, offsets, weight: lane-serial loads on llvmpipe) over several columns. The row-wise
// Adagrad sum is a tree reduction over TEAM · COLS columns, its first log2(COLS) levels inside the
// lane, the rest across the team by team_sum (prelude/team_sum.wgsl: a tree through workgroup
// memory; the "subgroup" variant's prelude/team_sum_subgroup.wgsl: subgroupAdd): the tree's order
// is the same for every COLS, so the same bits.

override WG: u32 = 64u;      // invocations per workgroup, a multiple of TEAM
override TEAM: u32 = 16u;    // lanes per row; TEAM * COLS: a power of two >= widest width4
override COLS: u32 = 1u;     // vec4 columns per lane (lane + k * TEAM), a power of two <= MAX_COLS
const MAX_COLS: u32 = 8u;
override OPTIMIZER: u32 = 1u; // 0 SGD, 1 row-wise Adagrad, 2 Adam

const POOL_NONE: u32 = 0u;
const POOL_MEAN: u32 = 2u;
const TABLE_WORDS: u32 = 5u;
const FEATURE_WORDS: u32 = 8u;
const NO_WEIGHTS: u32 = 0xffffffffu;
const DECAY_ROW: u32 = 0u;       // wd once per touched row
const DECAY_FREQUENCY: u32 = 1u; // wd / (the row's lookups in the batch)

struct UpdateParams {
    batch_size: u32,
    unique_rows: u32,
    features_at: u32,
    offsets_at: u32,
    weights_at: u32,
    entry_offsets_at: u32, // plan sections (words); rows start at 0
    entries_at: u32,
    chunk_shift: u32,
    chunk_mask: u32,
    lr: f32,
    decay_at: u32,         // plan section of the per-table weight decay (f32 bits)
    eps: f32,
    beta1: f32,
    beta2: f32,
    bias1: f32,            // 1 / (1 - beta1^step)
    bias2: f32,            // 1 / (1 - beta2^step)
    decay_mode: u32,       // DECAY_ROW or DECAY_FREQUENCY
    rounding: u32,         // f16 rows: 0 round to nearest, 1 stochastic (unused by f32 storage)
    sr_seed: u32,          // stochastic rounding: Philox key
    sr_step: u32,          // and the step in its counter
}

@group(0) @binding(0) var<storage, read> tables_meta: array<u32>;
@group(0) @binding(1) var<storage, read> batch: array<u32>;
@group(0) @binding(2) var<storage, read> plan: array<u32>;
@group(0) @binding(3) var<storage, read> grad: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> chunk0: array<Chunk4>;
@group(0) @binding(5) var<storage, read_write> chunk1: array<Chunk4>;
@group(0) @binding(6) var<storage, read_write> chunk2: array<Chunk4>;
@group(0) @binding(7) var<storage, read_write> chunk3: array<Chunk4>;
@group(0) @binding(8) var<uniform> params: UpdateParams;

// Reduced gradients of unique row u at this lane's vec4 columns lane + k * TEAM (k < COLS, those
// inside the row): one walk of the row's entries for all of them, each column summed in entry order.
fn row_gradients(u: u32, lane: u32, width4: u32, g: ptr<function, array<vec4<f32>, MAX_COLS>>) {
    let first = plan[params.entry_offsets_at + u];
    let last = plan[params.entry_offsets_at + u + 1u];
    for (var e = first; e < last; e++) {
        let l = plan[params.entries_at + 2u * e];
        let bag = plan[params.entries_at + 2u * e + 1u];
        let f = bag / params.batch_size;
        let fm = params.features_at + f * FEATURE_WORDS;
        let pooling = tables_meta[fm + 1u];
        var coef = 1.0;
        if params.weights_at != NO_WEIGHTS {
            coef = bitcast<f32>(batch[params.weights_at + l]);
        }
        var slot = bag % params.batch_size;
        if pooling == POOL_NONE {
            slot = l - batch[params.offsets_at + f * params.batch_size];
        } else if pooling == POOL_MEAN {
            coef /= f32(batch[params.offsets_at + bag + 1u] - batch[params.offsets_at + bag]);
        }
        let at = tables_meta[fm + 2u] + slot * tables_meta[fm + 3u];
        for (var k = 0u; k < COLS; k++) {
            let col = lane + k * TEAM;
            if col < width4 {
                (*g)[k] += coef * grad[at + col];
            }
        }
    }
}

// The weight decay of unique row u of `table`: the table's, or that over the row's lookup count.
fn row_decay(u: u32, table: u32) -> f32 {
    let wd = bitcast<f32>(plan[params.decay_at + table]);
    if params.decay_mode == DECAY_FREQUENCY {
        let lookups = plan[params.entry_offsets_at + u + 1u] - plan[params.entry_offsets_at + u];
        return wd / f32(max(lookups, 1u));
    }
    return wd;
}

@compute @workgroup_size(WG)
fn tbe_update(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let u = (wid.x + wid.y * nwg.x) * (WG / TEAM) + lid / TEAM;
    let lane = lid % TEAM;
    let live = u < params.unique_rows;
    var width4 = 0u;
    var row_at = 0u;
    var table = 0u;
    var w: array<vec4<f32>, MAX_COLS>;
    var g: array<vec4<f32>, MAX_COLS>;
    var acc = 0.0;
    var wd = 0.0;
    if live {
        table = plan[2u * u];
        wd = row_decay(u, table);
        width4 = tables_meta[table * TABLE_WORDS + 2u];
        row_at = tables_meta[table * TABLE_WORDS] + plan[2u * u + 1u] * tables_meta[table * TABLE_WORDS + 1u];
        for (var k = 0u; k < COLS; k++) {
            if lane + k * TEAM < width4 {
                w[k] = load4(row_at + lane + k * TEAM);
            }
        }
        row_gradients(u, lane, width4, &g);
        if OPTIMIZER == 1u {
            acc = load_acc(state_at(row_at, width4, 0u));
        }
    }
    if OPTIMIZER == 1u {
        acc = adagrad_statistic(lid, lane, width4, acc, wd, &w, &g);
    }
    for (var k = 0u; k < COLS; k++) {
        let col = lane + k * TEAM;
        if live && col < width4 {
            // (row, table, column, step): stochastic rounding's Philox counter
            let key = vec4<u32>(plan[2u * u + 1u], table, col, params.sr_step);
            update_column(row_at, width4, col, w[k], g[k], acc, wd, key);
        }
    }
    if OPTIMIZER == 1u && live && lane == 0u {
        store_acc(state_at(row_at, width4, 0u), acc);
    }
}

// Row-wise Adagrad: adds the weight decay to this lane's gradients and returns the row's new
// accumulator, acc + mean(g^2). The sum of the squares runs in the same fixed tree whatever COLS
// is: a lane first folds its columns as the tree's first levels would (column k with k + COLS/2,
// …), then the lanes reduce in workgroup memory.
fn adagrad_statistic(lid: u32, lane: u32, width4: u32, acc: f32, wd: f32,
                     w: ptr<function, array<vec4<f32>, MAX_COLS>>,
                     g: ptr<function, array<vec4<f32>, MAX_COLS>>) -> f32 {
    var d: array<f32, MAX_COLS>;
    for (var k = 0u; k < COLS; k++) {
        (*g)[k] += wd * (*w)[k];
        d[k] = dot((*g)[k], (*g)[k]);
    }
    for (var s = COLS / 2u; s > 0u; s >>= 1u) {
        for (var k = 0u; k < s; k++) {
            d[k] += d[k + s];
        }
    }
    return acc + team_sum(lid, lane, d[0]) / f32(4u * max(width4, 1u));
}

// The optimizer step of one vec4 column (its weights w, reduced gradient g).
fn update_column(row_at: u32, width4: u32, col: u32, w: vec4<f32>, g: vec4<f32>, acc: f32,
                 wd: f32, key: vec4<u32>) {
    let a = row_at + col;
    if OPTIMIZER == 0u {
        store_row4(a, w - params.lr * (g + wd * w), key);
    } else if OPTIMIZER == 1u {
        store_row4(a, w - params.lr * g / (sqrt(acc) + params.eps), key);
    } else {
        let m_at = state_at(row_at, width4, col);
        let v_at = state_at(row_at, width4, width4 + col);
        let m = params.beta1 * load_state4(m_at) + (1.0 - params.beta1) * g;
        let v = params.beta2 * load_state4(v_at) + (1.0 - params.beta2) * g * g;
        store_state4(m_at, m);
        store_state4(v_at, v);
        let step = (m * params.bias1) / (sqrt(v * params.bias2) + params.eps);
        store_row4(a, w - params.lr * (step + wd * w), key);
    }
}
