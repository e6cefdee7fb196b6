// pairwise.wgsl — pairwise interaction experts of the multi-embedding model (METHODS.md §2.2), forward
// and backward, every table in one dispatch, with an optional fused ReLU on the output.
//
// Launcher: src/kernels/dense/pairwise.rs. Tests: kernels_tests/dense_pairwise.rs.
//
// Table t, row n: field i's G sub-embeddings v_{i,g} ∈ R^K sit at x[xrow + (i·G + g)·K + k], with
//   xrow = (t·rows_cap + n)·x_ld + x_offset; outputs at out[(t·rows_cap + n)·out_ld + out_offset + c].
//   FM    φ_k = Σ_{i<j} v_ik v_jk                                    (G = 1, out_cols = K)
//   FwFM  φ_k = Σ_{i<j} r_ij v_ik v_jk, r: [tables, F, F], entries i<j (G = 1, out_cols = K)
//   GwPFM φ_k = Σ_{i<j} R_{P(i)P(j)} v_{i,P(j),k} v_{j,P(i),k}, R: [tables, G, G], P: [F] u32
//   IPNN  p_c = ⟨v_i, v_j⟩, c = row-major index of the pair (i, j), i<j   (G = 1, out_cols = F(F−1)/2)
// Numerics: FM's forward is ½[(Σv)² − Σv²], O(F) per output instead of O(F²); its f32 error is
// ~F·ε·(Σ_{i<j}|v_i v_j| + Σv²) (the squares cancel), a little over the direct sum's ~F²/2·ε·Σ|terms|.
// FwFM, GwPFM and IPNN sum the pairs directly in a fixed order (i, then j > i). Every backward
// element is an O(F) gather over the other fields, so FM's backward needs no special form.
// ReLU (RELU = 1): out = max(φ, 0); the backward masks δ by the stored out > 0.
//
// Entry points (one bind-group layout for all; each uses a subset):
//   pairwise_forward    one invocation per (row, output column); grid (x·y folded, tables in z)
//   pairwise_backward_x FM, FwFM, GwPFM: one invocation per (row, k) writes the F·G gradients of
//                       column k; IPNN: one per (row, input column). dx (x's layout) overwritten;
//                       columns outside the expert's slice are never touched
//   pairwise_backward_r one workgroup per (entry of r, table): its RED_WG lanes stride over the rows,
//                       then a tree in workgroup memory: fixed order, no atomics; dr overwritten
//                       (FwFM entries i ≥ j are written 0)
// Bindings: 0 x, 1 r, 2 part (P and its members by block), 3 dout (read); 4 out, 5 dx, 6 dr
// (read_write; the backward only reads out, bound read_write because the layout is shared); 7 params.
// Variants: override KIND (0 FM, 1 FwFM, 2 GwPFM, 3 IPNN), RELU (0/1), WG.

override WG: u32 = 64u;  // invocations per workgroup of the row-parallel entries
override KIND: u32 = 0u;
override RELU: u32 = 0u;

const FM: u32 = 0u;
const FWFM: u32 = 1u;
const GWPFM: u32 = 2u;
const IPNN: u32 = 3u;
const RED_WG: u32 = 64u; // lanes of one dR reduction: a power of two for the tree

struct PairwiseParams {
    rows: u32,      // rows this step (≤ rows_cap)
    rows_cap: u32,  // rows per table slab
    fields: u32,    // F
    dim: u32,       // K
    blocks: u32,    // G field blocks (1 unless GwPFM)
    in_cols: u32,   // F·G·K
    out_cols: u32,  // K, or F(F−1)/2 for IPNN
    r_len: u32,     // r entries per table: F² (FwFM), G² (GwPFM), 0
    x_ld: u32,
    x_offset: u32,
    out_ld: u32,
    out_offset: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> r: array<f32>;
@group(0) @binding(2) var<storage, read> part: array<u32>;
@group(0) @binding(3) var<storage, read> dout: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;
@group(0) @binding(6) var<storage, read_write> dr: array<f32>;
@group(0) @binding(7) var<uniform> params: PairwiseParams;

var<workgroup> partial: array<f32, RED_WG>;

fn x_row(t: u32, n: u32) -> u32 {
    return (t * params.rows_cap + n) * params.x_ld + params.x_offset;
}

fn out_row(t: u32, n: u32) -> u32 {
    return (t * params.rows_cap + n) * params.out_ld + params.out_offset;
}

// The block of field a: P(a) under GwPFM, 0 otherwise (FwFM's weights are indexed by field).
fn block_of(a: u32) -> u32 {
    if KIND == GWPFM {
        return part[a];
    }
    return 0u;
}

// Upstream gradient at output element o, masked by the stored output under ReLU.
fn delta(o: u32) -> f32 {
    if RELU == 1u && !(out[o] > 0.0) {
        return 0.0;
    }
    return dout[o];
}

// GwPFM's part holds P (F words), then each block's first position (G + 1 words) in the list of
// fields ordered by block (F words, ascending within a block), so loops visit only a block's members.
fn block_start(g: u32) -> u32 {
    return part[params.fields + g];
}

// The field at position m of that list (FM, FwFM, IPNN: field m itself).
fn member(m: u32) -> u32 {
    if KIND == GWPFM {
        return part[params.fields + params.blocks + 1u + m];
    }
    return m;
}

// Row-major index of the pair (a, b), a < b.
fn pair_index(a: u32, b: u32) -> u32 {
    return a * params.fields - a * (a + 1u) / 2u + (b - a - 1u);
}

@compute @workgroup_size(WG)
fn pairwise_forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let id = (wid.x + wid.y * nwg.x) * WG + lid;
    let t = wid.z;
    let n = id / params.out_cols;
    let c = id % params.out_cols;
    if n >= params.rows {
        return;
    }
    let xr = x_row(t, n);
    let f = params.fields;
    var acc = 0.0;
    if KIND == IPNN {
        var i = 0u;
        var rest = c;
        while rest >= f - 1u - i {
            rest -= f - 1u - i;
            i += 1u;
        }
        let j = i + 1u + rest;
        for (var k = 0u; k < params.dim; k++) {
            acc += x[xr + i * params.dim + k] * x[xr + j * params.dim + k];
        }
    } else if KIND == FM {
        // ½[(Σv)² − Σv²]: O(F) instead of O(F²)
        var sum = 0.0;
        var squares = 0.0;
        for (var i = 0u; i < f; i++) {
            let v = x[xr + i * params.dim + c];
            sum += v;
            squares += v * v;
        }
        acc = 0.5 * (sum * sum - squares);
    } else {
        // weight(t, i, j) · (v_{i,P(j)} ⊙ v_{j,P(i)}) with the block lookups hoisted out of the
        // pair loop: 4 loads per pair instead of 7, the same products in the same order.
        let g = params.blocks;
        let rt = t * params.r_len;
        for (var i = 0u; i < f; i++) {
            let pi = block_of(i);
            for (var j = i + 1u; j < f; j++) {
                let pj = block_of(j);
                var w: f32;
                if KIND == FWFM {
                    w = r[rt + i * f + j];
                } else {
                    w = r[rt + pi * g + pj];
                }
                acc += w * (x[xr + (i * g + pj) * params.dim + c] * x[xr + (j * g + pi) * params.dim + c]);
            }
        }
    }
    if RELU == 1u {
        acc = max(acc, 0.0);
    }
    out[out_row(t, n) + c] = acc;
}

@compute @workgroup_size(WG)
fn pairwise_backward_x(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let id = (wid.x + wid.y * nwg.x) * WG + lid;
    let t = wid.z;
    if KIND == IPNN {
        backward_x_ipnn(t, id);
        return;
    }
    // FM, FwFM, GwPFM: one invocation per (row, k) writes every gradient of its column k
    let kk = params.dim;
    let n = id / kk;
    if n >= params.rows {
        return;
    }
    let k = id % kk;
    let xr = x_row(t, n);
    let d = delta(out_row(t, n) + k);
    if KIND == FM {
        // dv_ik = δ_k (S_k − v_ik) with S_k = Σ_j v_jk: the column summed once (O(F) per column)
        var s = 0.0;
        for (var j = 0u; j < params.fields; j++) {
            s += x[xr + j * kk + k];
        }
        for (var i = 0u; i < params.fields; i++) {
            dx[xr + i * kk + k] = d * (s - x[xr + i * kk + k]);
        }
        return;
    }
    backward_x_weighted(t, xr, k, d);
}

// FwFM, GwPFM: dv_{i,g,k} = δ_k Σ_{j≠i, P(j)=g} w_{min(i,j),max(i,j)} v_{j,P(i),k} for every (i, g)
// of column k, each summed over block g's members in ascending order. One invocation per (row, k)
// rather than per (row, column): δ_k, P(i) and the weights are loaded once per output instead of
// once per term, with no per-element div/mod; the terms and their order are those of the old
// per-element loop, so the bits are too.
fn backward_x_weighted(t: u32, xr: u32, k: u32, d: f32) {
    let f = params.fields;
    let g = params.blocks;
    let kk = params.dim;
    let rt = t * params.r_len;
    for (var i = 0u; i < f; i++) {
        let pi = block_of(i);
        for (var b = 0u; b < g; b++) {
            var first = 0u;
            var end = f;
            // GwPFM: every member j of block b has P(j) = b, so w = R[P(min), P(max)] is R[P(i), b]
            // for j > i and R[b, P(i)] for j < i
            var w_after = 0.0;
            var w_before = 0.0;
            if KIND == GWPFM {
                first = block_start(b);
                end = block_start(b + 1u);
                w_after = r[rt + pi * g + b];
                w_before = r[rt + b * g + pi];
            }
            var acc = 0.0;
            for (var m = first; m < end; m++) {
                let j = member(m);
                if j != i {
                    var w = select(w_before, w_after, j > i);
                    if KIND == FWFM {
                        w = r[rt + min(i, j) * f + max(i, j)];
                    }
                    acc += w * x[xr + (j * g + pi) * kk + k];
                }
            }
            dx[xr + (i * g + b) * kk + k] = d * acc;
        }
    }
}

// IPNN: one invocation per (row, input column): dv_ik = Σ_{j≠i} g_{pair(i,j)} v_jk.
fn backward_x_ipnn(t: u32, id: u32) {
    let n = id / params.in_cols;
    let c = id % params.in_cols;
    if n >= params.rows {
        return;
    }
    let xr = x_row(t, n);
    let orow = out_row(t, n);
    let kk = params.dim;
    let k = c % kk;
    let i = c / kk;
    var acc = 0.0;
    for (var j = 0u; j < params.fields; j++) {
        if j != i {
            let p = pair_index(min(i, j), max(i, j));
            acc += delta(orow + p) * x[xr + j * kk + k];
        }
    }
    dx[xr + c] = acc;
}

@compute @workgroup_size(RED_WG)
fn pairwise_backward_r(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let e = wid.x;
    let t = wid.z;
    // Entry e = (ea, eb) of an [F, F] (FwFM) or [G, G] (GwPFM) matrix.
    var side = params.fields;
    if KIND == GWPFM {
        side = params.blocks;
    }
    let ea = e / side;
    let eb = e % side;
    let kk = params.dim;
    // the blocks' member ranges, loaded once rather than per row and loop test
    var a0 = 0u;
    var a1 = 0u;
    var b0 = 0u;
    var b1 = 0u;
    if KIND == GWPFM {
        a0 = block_start(ea);
        a1 = block_start(ea + 1u);
        b0 = block_start(eb);
        b1 = block_start(eb + 1u);
    }
    var acc = 0.0;
    if KIND == GWPFM || ea < eb {
        for (var n = lid; n < params.rows; n += RED_WG) {
            let xr = x_row(t, n);
            let orow = out_row(t, n);
            if KIND == FWFM {
                for (var k = 0u; k < kk; k++) {
                    acc += delta(orow + k) * (x[xr + ea * kk + k] * x[xr + eb * kk + k]);
                }
            } else {
                // pairs i < j with (P(i), P(j)) = (ea, eb): δ · (v_{i,eb} ⊙ v_{j,ea})
                for (var mi = a0; mi < a1; mi++) {
                    let i = member(mi);
                    let vi = xr + (i * params.blocks + eb) * kk;
                    for (var mj = b0; mj < b1; mj++) {
                        let j = member(mj);
                        if j <= i {
                            continue;
                        }
                        let vj = xr + (j * params.blocks + ea) * kk;
                        for (var k = 0u; k < kk; k++) {
                            acc += delta(orow + k) * (x[vi + k] * x[vj + k]);
                        }
                    }
                }
            }
        }
    }
    partial[lid] = acc;
    workgroupBarrier();
    for (var s = RED_WG / 2u; s > 0u; s = s / 2u) {
        if lid < s {
            partial[lid] += partial[lid + s];
        }
        workgroupBarrier();
    }
    if lid == 0u {
        dr[t * params.r_len + e] = partial[0];
    }
}
