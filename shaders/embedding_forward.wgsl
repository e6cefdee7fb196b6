// embedding_forward.wgsl — table-batched embedding gather with pooling and MNS, one dispatch for
// every feature of an embedding storage (FBGEMM's TBE forward, in WGSL).
//
// Launcher: src/kernels/embedding/forward.rs. Tests: kernels_tests/embedding_forward.rs (reference:
// embedding_reference.rs; properties: embedding_props.rs). Prelude: prelude/chunks.wgsl (load4, the
// storage element type).
//
// Computes, for every feature f and sample b, the bag of lookups l in [offsets[f*B+b], offsets[f*B+b+1]):
//   plain feature: row(l)   = T_f[indices[l]]
//   MNS feature:   row(l)   = sum over bases (base, digits, row_off) and k < digits of
//                             T_f[row_off + base*k + (indices[l] / base^k) % base]        (METHODS §1.2)
//   pooling sum:   out[b]   = sum_l w_l * row(l);   mean: the same / bag length (empty bag -> 0)
//   pooling none:  out[l']  = w_l * row(l), l' = l - offsets[f*B] (one output row per lookup)
// with w_l the optional per-lookup weight. Accumulation is f32 in lookup order: deterministic.
//
// Parts (issue 19's storage groups): a table split by rows over several storages is, in each, a
// part holding rows [first_row, first_row + rows) (table words). Ids index the whole table; a
// lookup row outside this storage's part contributes nothing (a plain id, or each MNS digit row on
// its own). A feature whose table spans several storages is gathered once per storage: the first
// gather writes its output, the later ones (feature word ACCUMULATE = 1) add to it; pooling sum,
// mean and none are linear, so the sum of the partial outputs is the output. A split table's sums
// are therefore associated differently from one storage's (not bit-identical to the unsplit
// table); a whole table reads every row here and its output is bit-identical.
//
// Storage: rows live in up to four chunk buffers, read through load4 (prelude/chunks.wgsl, which
// describes the addressing and holds the CHUNKS override), so a table may span chunks.
//
// Bindings: 0 tables_meta (read: tables, features, column map, MNS bases), 1 batch (read: offsets, indices,
// weight bits), 2..5 chunk0..3 (read), 6 out (read_write, vec4), 7 params (uniform).
//
// Entry points (the launcher's variants, src/kernels/embedding/forward.rs; every one sums a bag's
// lookups in bag order into one output vec4, so they give the same bits):
// - tbe_forward (variant "default"): one invocation per (sample, vec4 column of the concatenated
//   features), WG per workgroup folded into (x, y): consecutive invocations read consecutive vec4s
//   of one row, a coalesced pattern for GPUs.
// - tbe_forward_bag (variants "per-bag", "per-bag-8"): one workgroup per bag (feature, sample), TEAM lanes, lane c
//   owns vec4 columns c, c + TEAM, … (COLS of them per walk of the bag's ids). Everything but the column — the feature and table words, the
//   bag's offsets, each lookup's id and weight, its part check and chunk — depends on the workgroup
//   id only, so it is uniform: on llvmpipe (SIMD lanes, one lane at a time for a non-uniform load)
//   each is one scalar load instead of one per lane, and the chunk switch takes one branch instead of
//   every case under a mask. Measured no faster than tbe_forward on lavapipe (BENCHMARKS.md §Issue
//   20): Mesa 22's llvmpipe loads storage lane by lane even at a uniform address, so the uniform
//   words saved little; kept as variants for devices where it pays.
// - tbe_forward_wide (variant "wide-workgroup", rows >= 64 floats): one workgroup of WG lanes per bag,
//   WG / TEAM lookup slots of TEAM lanes; slot s sums lookups s, s + slots, … (in bag order), then
//   slot 0 adds the slots' sums in slot order through workgroup memory: a fixed order, but not the
//   default's, so its pooled outputs differ from the default's in the last bits.

override WG: u32 = 64u; // two NVIDIA warps; measured no slower than 128/256 on lavapipe
override TEAM: u32 = 16u; // lanes per row (tbe_forward_bag, tbe_forward_wide): a power of two
override COLS: u32 = 1u;  // vec4 columns per lane (tbe_forward_bag; 1 elsewhere), <= MAX_COLS
const MAX_COLS: u32 = 8u;

const POOL_NONE: u32 = 0u;
const POOL_SUM: u32 = 1u;
const POOL_MEAN: u32 = 2u;
const TABLE_WORDS: u32 = 5u;   // base4, stride4, width4, rows, first_row (of the part)
const FEATURE_WORDS: u32 = 8u; // table, pooling, out_offset4, out_stride4, mns_first, mns_count, col4_first, accumulate
const NO_WEIGHTS: u32 = 0xffffffffu;

struct ForwardParams {
    batch_size: u32,
    cols4: u32,          // sum of width4 over features: threads per sample
    features_at: u32,    // section starts in tables_meta (words)
    colmap_at: u32,
    mns_at: u32,
    offsets_at: u32,     // section starts in batch (words)
    indices_at: u32,
    weights_at: u32,     // NO_WEIGHTS when the batch has none
    chunk_shift: u32,
    chunk_mask: u32,
    bags: u32,           // features * batch_size
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> tables_meta: array<u32>;
@group(0) @binding(1) var<storage, read> batch: array<u32>;
@group(0) @binding(2) var<storage, read> chunk0: array<Chunk4>;
@group(0) @binding(3) var<storage, read> chunk1: array<Chunk4>;
@group(0) @binding(4) var<storage, read> chunk2: array<Chunk4>;
@group(0) @binding(5) var<storage, read> chunk3: array<Chunk4>;
@group(0) @binding(6) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(7) var<uniform> params: ForwardParams;

// Row r of the whole table at vec4 column `col` when this storage's part holds it, else zero
// (r - first wraps past `rows` for r < first).
fn part_row(t: TablePart, r: u32, col: u32) -> vec4<f32> {
    let local = r - t.first;
    if local >= t.rows {
        return vec4<f32>(0.0);
    }
    return load4(t.base4 + local * t.stride4 + col);
}

// The table words a gather reads, once per invocation.
struct TablePart {
    base4: u32,
    stride4: u32,
    rows: u32,
    first: u32,
}

// Sum of the rows one lookup selects at vec4 column `col`; the table and MNS words are read once
// per invocation by the caller, not once per lookup.
fn lookup_row(t: TablePart, mns_first: u32, mns_count: u32, value: u32, col: u32) -> vec4<f32> {
    if mns_count == 0u {
        return part_row(t, value, col);
    }
    var acc = vec4<f32>(0.0);
    for (var m = 0u; m < mns_count; m++) {
        let e = params.mns_at + (mns_first + m) * 3u;
        let radix = tables_meta[e];
        let digits = tables_meta[e + 1u];
        var row = tables_meta[e + 2u];
        var rest = value;
        for (var k = 0u; k < digits; k++) {
            acc += part_row(t, row + rest % radix, col);
            rest /= radix;
            row += radix;
        }
    }
    return acc;
}

// Gathers bag (feature f, sample b) at the vec4 columns col0 + k * step, k < COLS (those inside
// the row), and writes (or, for a later storage of a split table, adds) their outputs: the whole
// default computation of COLS output vec4s, walking the bag's ids once for all of them. Each
// column sums its lookups in bag order, whatever COLS is: the same bits for every COLS.
fn gather_columns(f: u32, b: u32, col0: u32, step: u32) {
    let fm = params.features_at + f * FEATURE_WORDS;
    let table = tables_meta[fm];
    let tw = table * TABLE_WORDS;
    let part = TablePart(tables_meta[tw], tables_meta[tw + 1u], tables_meta[tw + 3u], tables_meta[tw + 4u]);
    let width4 = tables_meta[tw + 2u];
    let accumulate = tables_meta[fm + 7u] != 0u;
    let mns_first = tables_meta[fm + 4u];
    let mns_count = tables_meta[fm + 5u];
    let pooling = tables_meta[fm + 1u];
    let out_offset4 = tables_meta[fm + 2u];
    let out_stride4 = tables_meta[fm + 3u];
    let bag = f * params.batch_size + b;
    let start = batch[params.offsets_at + bag];
    let end = batch[params.offsets_at + bag + 1u];
    let first = batch[params.offsets_at + f * params.batch_size];
    var acc: array<vec4<f32>, MAX_COLS>;
    for (var l = start; l < end; l++) {
        let w = lookup_weight(l);
        let id = batch[params.indices_at + l];
        for (var k = 0u; k < COLS; k++) {
            let col = col0 + k * step;
            if col < width4 {
                let row = w * lookup_row(part, mns_first, mns_count, id, col);
                if pooling == POOL_NONE {
                    write_out(out_offset4 + (l - first) * out_stride4 + col, row, accumulate);
                } else {
                    acc[k] += row;
                }
            }
        }
    }
    if pooling == POOL_NONE {
        return;
    }
    for (var k = 0u; k < COLS; k++) {
        let col = col0 + k * step;
        if col < width4 {
            var v = acc[k];
            if pooling == POOL_MEAN && end > start {
                v /= f32(end - start);
            }
            write_out(out_offset4 + b * out_stride4 + col, v, accumulate);
        }
    }
}

// Lookup l's weight (1 without weights).
fn lookup_weight(l: u32) -> f32 {
    if params.weights_at != NO_WEIGHTS {
        return bitcast<f32>(batch[params.weights_at + l]);
    }
    return 1.0;
}

fn write_out(o: u32, v: vec4<f32>, accumulate: bool) {
    if accumulate {
        out[o] += v;
    } else {
        out[o] = v;
    }
}

// The bag a workgroup gathers (tbe_forward_bag, tbe_forward_wide): workgroups fold into (x, y).
fn workgroup_bag(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

@compute @workgroup_size(TEAM)
fn tbe_forward_bag(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let bag = workgroup_bag(wid, nwg);
    if bag >= params.bags {
        return;
    }
    let f = bag / params.batch_size;
    let width4 = tables_meta[tables_meta[params.features_at + f * FEATURE_WORDS] * TABLE_WORDS + 2u];
    for (var col0 = lid; col0 < width4; col0 += TEAM * COLS) {
        gather_columns(f, bag % params.batch_size, col0, TEAM);
    }
}

var<workgroup> slot_sums: array<vec4<f32>, WG>;

// The launcher compiles it only for tables of width4 <= TEAM (one column per lane).
@compute @workgroup_size(WG)
fn tbe_forward_wide(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let bag = workgroup_bag(wid, nwg);
    if bag >= params.bags {
        return; // the whole workgroup: the barrier below stays in uniform control flow
    }
    let slots = WG / TEAM;
    let slot = lid / TEAM;
    let col = lid % TEAM;
    let f = bag / params.batch_size;
    let b = bag % params.batch_size;
    let fm = params.features_at + f * FEATURE_WORDS;
    let tw = tables_meta[fm] * TABLE_WORDS;
    let part = TablePart(tables_meta[tw], tables_meta[tw + 1u], tables_meta[tw + 3u], tables_meta[tw + 4u]);
    let width4 = tables_meta[tw + 2u];
    let accumulate = tables_meta[fm + 7u] != 0u;
    let pooling = tables_meta[fm + 1u];
    let out_offset4 = tables_meta[fm + 2u];
    let out_stride4 = tables_meta[fm + 3u];
    let start = batch[params.offsets_at + bag];
    let end = batch[params.offsets_at + bag + 1u];
    var acc = vec4<f32>(0.0);
    if col < width4 {
        let first = batch[params.offsets_at + f * params.batch_size];
        for (var l = start + slot; l < end; l += slots) {
            let id = batch[params.indices_at + l];
            let row = lookup_weight(l) * lookup_row(part, tables_meta[fm + 4u], tables_meta[fm + 5u], id, col);
            if pooling == POOL_NONE {
                write_out(out_offset4 + (l - first) * out_stride4 + col, row, accumulate);
            } else {
                acc += row;
            }
        }
    }
    slot_sums[lid] = acc;
    workgroupBarrier();
    if slot != 0u || col >= width4 || pooling == POOL_NONE {
        return;
    }
    for (var s = 1u; s < slots; s++) {
        acc += slot_sums[s * TEAM + col];
    }
    if pooling == POOL_MEAN && end > start {
        acc /= f32(end - start);
    }
    write_out(out_offset4 + b * out_stride4 + col, acc, accumulate);
}

// The default, unchanged since before issue 20 (its speed and bits are the reference point).
@compute @workgroup_size(WG)
fn tbe_forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let g = (wid.x + wid.y * nwg.x) * WG + lid;
    if g >= params.batch_size * params.cols4 {
        return;
    }
    let b = g / params.cols4;
    let c = g % params.cols4;
    let f = tables_meta[params.colmap_at + c];
    let fm = params.features_at + f * FEATURE_WORDS;
    let table = tables_meta[fm];
    let tw = table * TABLE_WORDS;
    let part = TablePart(tables_meta[tw], tables_meta[tw + 1u], tables_meta[tw + 3u], tables_meta[tw + 4u]);
    let accumulate = tables_meta[fm + 7u] != 0u;
    let mns_first = tables_meta[fm + 4u];
    let mns_count = tables_meta[fm + 5u];
    let pooling = tables_meta[fm + 1u];
    let out_offset4 = tables_meta[fm + 2u];
    let out_stride4 = tables_meta[fm + 3u];
    let col = c - tables_meta[fm + 6u];
    let bag = f * params.batch_size + b;
    let start = batch[params.offsets_at + bag];
    let end = batch[params.offsets_at + bag + 1u];
    let first = batch[params.offsets_at + f * params.batch_size];
    var acc = vec4<f32>(0.0);
    for (var l = start; l < end; l++) {
        var w = 1.0;
        if params.weights_at != NO_WEIGHTS {
            w = bitcast<f32>(batch[params.weights_at + l]);
        }
        let row = w * lookup_row(part, mns_first, mns_count, batch[params.indices_at + l], col);
        if pooling == POOL_NONE {
            let o = out_offset4 + (l - first) * out_stride4 + col;
            if accumulate {
                out[o] += row;
            } else {
                out[o] = row;
            }
        } else {
            acc += row;
        }
    }
    if pooling == POOL_NONE {
        return;
    }
    if pooling == POOL_MEAN && end > start {
        acc /= f32(end - start);
    }
    let o = out_offset4 + b * out_stride4 + col;
    if accumulate {
        out[o] += acc;
    } else {
        out[o] = acc;
    }
}
