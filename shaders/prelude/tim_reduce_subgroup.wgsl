// tim_reduce_subgroup.wgsl — prelude of tim.wgsl for the `subgroup` variant of Family::Tim: reduce
// with subgroup operations and two workgroup barriers instead of the tree's log2(WG) + 2 (barriers
// are what a workgroup reduction costs on most devices; on llvmpipe each is a coroutine switch).
//
// Each subgroup combines its lanes by a shuffle-xor butterfly (distances S/2, S/4, …, 1, with the
// subgroup size S counted at run time by subgroupAdd(1), never assumed); a + b = b + a, so every lane
// ends with the same bits. All WG invocations are active at every call, and the host uses this
// variant only where WG is a multiple of the adapter's largest subgroup size, so subgroups are full.
// The subgroup's first lane then writes its value at red_s[lid], every other lane the identity (0
// for a sum, −∞ for a max); after a barrier every lane folds red_s[0 .. WG] in index order. The order
// is fixed for a device (its subgroup size and assignment of invocations to subgroups), so the bits
// are; sums differ from the tree's by rounding only (tests: the same f64 reference).
// Uses red_s, WG and NEG_INF of tim.wgsl.

fn reduce(lid: u32, x: f32, op: u32) -> f32 {
    let size = subgroupAdd(1u);
    var v = x;
    for (var d = size / 2u; d > 0u; d >>= 1u) {
        let o = subgroupShuffleXor(v, d);
        if op == 0u {
            v += o;
        } else {
            v = max(v, o);
        }
    }
    var identity = 0.0;
    if op == 1u {
        identity = bitcast<f32>(NEG_INF);
    }
    red_s[lid] = select(identity, v, subgroupExclusiveAdd(1u) == 0u);
    workgroupBarrier();
    var r = identity;
    for (var l = 0u; l < WG; l++) {
        if op == 0u {
            r += red_s[l];
        } else {
            r = max(r, red_s[l]);
        }
    }
    workgroupBarrier();
    return r;
}
