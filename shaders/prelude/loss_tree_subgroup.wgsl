// loss_tree_subgroup.wgsl — prelude of loss.wgsl for the `subgroup` variant of Family::Loss: tree()
// with subgroup operations and two workgroup barriers instead of log2(RWG) + 2 = 10.
//
// Each subgroup combines its lanes by a shuffle-xor butterfly (distances S/2, …, 1, the subgroup size
// S counted at run time by subgroupAdd(1), never assumed); a + b = b + a and max is exact, so every
// lane ends with the same bits. RWG = 256 is a multiple of every subgroup size (≤ 128) and all its
// invocations are active at each call, so subgroups are full. The subgroup's first lane writes its
// value at red[lid], every other lane the identity (0, 0, 0, −∞); after a barrier thread 0 folds
// red[0 .. RWG] in index order into red_total, which every thread reads after a second barrier (the
// next call's writes to red come after that barrier, to red_total after the next call's first).
// The order is fixed for a device (its subgroup size and assignment of invocations to subgroups), so
// the bits are; sums differ from the tree's by rounding only (tests: the same f64 reference).
// Uses red, RWG of loss.wgsl.

var<workgroup> red_total: vec4<f32>;

fn combine(a: vec4<f32>, b: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(a.xyz + b.xyz, max(a.w, b.w));
}

fn tree(lid: u32, v: vec4<f32>) -> vec4<f32> {
    let size = subgroupAdd(1u);
    var a = v;
    for (var d = size / 2u; d > 0u; d >>= 1u) {
        a = combine(a, subgroupShuffleXor(a, d));
    }
    let identity = vec4<f32>(0.0, 0.0, 0.0, bitcast<f32>(0xff800000u));
    red[lid] = select(identity, a, subgroupExclusiveAdd(1u) == 0u);
    workgroupBarrier();
    if lid == 0u {
        var r = identity;
        for (var l = 0u; l < RWG; l++) {
            r = combine(r, red[l]);
        }
        red_total = r;
    }
    workgroupBarrier();
    return red_total;
}
