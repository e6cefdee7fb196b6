// prelude/team_sum.wgsl — the sum over a row's team of lanes, through workgroup memory: the
// portable path of embedding_update.wgsl's row-wise Adagrad statistic (its twin
// team_sum_subgroup.wgsl is the "subgroup" variant's). Not a shader on its own: src/shaders.rs
// appends it to the update's preludes. The including shader declares the overrides WG and TEAM.
//
// A tree over the team's TEAM lanes, halving strides (lane c adds lane c + s), a fixed order:
// deterministic. Every invocation of the workgroup must call it (it has barriers).

var<workgroup> partial: array<f32, WG>;

// The sum of x over the TEAM lanes of this invocation's team (lane = lid % TEAM).
fn team_sum(lid: u32, lane: u32, x: f32) -> f32 {
    partial[lid] = x;
    for (var s = TEAM / 2u; s > 0u; s >>= 1u) {
        workgroupBarrier();
        if lane < s {
            partial[lid] += partial[lid + s];
        }
    }
    workgroupBarrier();
    return partial[lid - lane];
}

