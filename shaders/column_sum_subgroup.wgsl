// column_sum_subgroup.wgsl — the column sum out[t, j] (= or +=) Σ_{i < rows} gate(X[t, i, j]) (the
// bias gradient) as a subgroup reduction: the `subgroup-*` variants of Family::ColumnSum. The default
// path (column_sum in gemm.wgsl) gives each (column, table) one invocation that walks every row; a
// GPU then has only cols × tables busy lanes (128 for a 128-wide bias) each doing `rows` dependent
// loads. Here a workgroup of WG invocations owns one (column, table): it splits the rows, reduces
// across each subgroup with subgroupShuffleXor, then across subgroups in workgroup memory.
//
// Launcher: src/kernels/dense/column_sum.rs (its own registered shader: a device without the
// SUBGROUP feature cannot create this module, so it is compiled only when chosen).
// Tests: kernels_tests/dense_column_sum.rs.
//
// Order (fixed on a device; no atomics): invocation l sums rows l, l + WG, l + 2·WG, … in ascending
// order; each subgroup combines its lanes by a butterfly (xor distance S/2, S/4, …, 1, S the
// subgroup size read from the `subgroup_size` builtin, never assumed), which leaves the same bits in
// every lane because a + b = b + a; invocation 0 then adds the subgroups' sums in subgroup_id order.
// The result differs from the default's row-by-row sum by rounding only (tests: same f64 reference).
// The butterfly needs full subgroups: the host uses this variant only when WG is a multiple of the
// adapter's largest subgroup size.
//
// Bindings (as column_sum's): 0 x, 1 gate (read; a dummy when GATE = 0), 2 out (read_write), 3 params.
// Geometry: grid (cols, tables), one workgroup each.

override WG: u32 = 128u;       // invocations per workgroup, ≤ MAX_WG, a multiple of the subgroup size
override ACCUMULATE: bool = false;
override GATE: u32 = 0u;       // 0 none, 1 ReLU mask x·(g > 0), 2 product x·g

const MAX_WG: u32 = 256u;      // the largest WG the host asks for
const MIN_SUBGROUP: u32 = 4u;  // WebGPU's smallest subgroup size: at most MAX_WG / 4 subgroups

struct ColumnSumParams {
    rows: u32,
    cols: u32,
    ld: u32,
    stride: u32,
    out_offset: u32, // out[t, j] at out_offset + t·out_stride + j
    out_stride: u32,
    in_offset: u32,  // X[t, i, j] (and its gate) at in_offset + t·stride + i·ld + j
    _pad0: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> x_gate: array<f32>;
@group(0) @binding(2) var<storage, read_write> sums: array<f32>;
@group(0) @binding(3) var<uniform> cs: ColumnSumParams;

var<workgroup> partials: array<f32, MAX_WG / MIN_SUBGROUP>;

fn gated(at: u32) -> f32 {
    var v = x[at];
    if GATE == 1u {
        v = select(0.0, v, x_gate[at] > 0.0);
    } else if GATE == 2u {
        v *= x_gate[at];
    }
    return v;
}

@compute @workgroup_size(WG)
fn column_sum_subgroup(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_size) sg_size: u32,
    @builtin(subgroup_invocation_id) sg_lane: u32,
    @builtin(subgroup_id) sg_id: u32,
    @builtin(num_subgroups) sg_count: u32,
) {
    let j = wid.x;
    let t = wid.y;
    let base = cs.in_offset + t * cs.stride + j;
    var s = 0.0;
    for (var i = lid; i < cs.rows; i += WG) {
        s += gated(base + i * cs.ld);
    }
    for (var d = sg_size / 2u; d > 0u; d /= 2u) {
        s += subgroupShuffleXor(s, d);
    }
    if sg_lane == 0u {
        partials[sg_id] = s;
    }
    workgroupBarrier();
    if lid == 0u {
        var total = 0.0;
        for (var g = 0u; g < sg_count; g++) {
            total += partials[g];
        }
        let o = cs.out_offset + t * cs.out_stride + j;
        if ACCUMULATE {
            total += sums[o];
        }
        sums[o] = total;
    }
}
