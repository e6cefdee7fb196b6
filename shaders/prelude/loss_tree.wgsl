// loss_tree.wgsl — prelude of loss.wgsl (the default path): tree() as a fixed tree in workgroup
// memory (red, RWG: declared in loss.wgsl). Its subgroup alternative: loss_tree_subgroup.wgsl.

// Sums the (x, y, z) and maxes the w of red[0..RWG] in a fixed tree; every thread returns red[0].
// Called in uniform control flow.
fn tree(lid: u32, v: vec4<f32>) -> vec4<f32> {
    red[lid] = v;
    workgroupBarrier();
    for (var s = RWG / 2u; s > 0u; s >>= 1u) {
        if lid < s {
            let a = red[lid];
            let b = red[lid + s];
            red[lid] = vec4<f32>(a.xyz + b.xyz, max(a.w, b.w));
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

