// prelude/team_sum_subgroup.wgsl — the sum over a row's team of lanes with subgroup operations:
// the "subgroup" variant of embedding_update.wgsl's row-wise Adagrad statistic (issue 20), the
// twin of team_sum.wgsl. Registered as its own shaders (src/shaders.rs: EMBEDDING_UPDATE_SUBGROUP
// and _F16), compiled only when chosen: a device without wgpu's SUBGROUP feature cannot create a
// module that uses subgroup builtins. naga 30 takes them without an `enable` directive
// (`enable subgroups;` is not implemented there).
//
// The launcher compiles it with WG == TEAM (one row per workgroup), so every subgroup holds lanes
// of one row only, whatever the subgroup size (8 on lavapipe/AVX2, 32 or 64 on GPUs; a workgroup
// may also be split into several subgroups). Each subgroup adds its lanes with subgroupAdd; its first
// active lane (subgroupBroadcastFirst; naga 30 has no subgroupElect) writes that sum at its own
// slot, the other lanes zero; every lane then adds the WG
// slots in slot order. The order inside subgroupAdd is the implementation's, fixed per device:
// deterministic on one device, not bit-identical to the tree of team_sum.wgsl.

var<workgroup> partial: array<f32, WG>;

fn team_sum(lid: u32, lane: u32, x: f32) -> f32 {
    let s = subgroupAdd(x);
    if subgroupBroadcastFirst(lid) == lid {
        partial[lid] = s;
    } else {
        partial[lid] = 0.0;
    }
    workgroupBarrier();
    var total = 0.0;
    for (var i = 0u; i < WG; i++) {
        total += partial[i];
    }
    workgroupBarrier();
    return total;
}

