// tim_reduce.wgsl — prelude of tim.wgsl (the default path): reduce over the workgroup as a tree in
// workgroup memory (red_s, WG: declared in tim.wgsl). Its subgroup alternative: tim_reduce_subgroup.

// Fixed-order tree reductions over the workgroup (op 0 sum, 1 max); the result reaches every lane.
fn reduce(lid: u32, x: f32, op: u32) -> f32 {
    red_s[lid] = x;
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        workgroupBarrier();
        if lid < s {
            if op == 0u {
                red_s[lid] += red_s[lid + s];
            } else {
                red_s[lid] = max(red_s[lid], red_s[lid + s]);
            }
        }
    }
    workgroupBarrier();
    let r = red_s[0];
    workgroupBarrier();
    return r;
}

