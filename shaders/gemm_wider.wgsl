// gemm_wider.wgsl — gemm.wgsl's gemm_vec4 with a 16 × 8 register tile per invocation
// (gemm_vec4_16x8, variant "vec4-16x8"; issue 20). Launcher: src/kernels/dense/gemm/ (variants.rs).
// Tests: kernels_tests/dense_gemm_tiled.rs.
//
// gemm_wide.wgsl's reasoning taken one step further (see its header): 24 vec4 loads per 512 FMAs
// (21 FMAs per load, against 16 for 8 × 8 and 8 for gemm_vec4's 4 × 4), 128 accumulator registers,
// nearly all spilled, so the FMAs are issued accumulator by accumulator (its four k in order, one
// reload and one spill per four FMAs). Each output still accumulates fma over p = 0 … k − 1 in
// order from +0: gemm_vec4's bits. The helpers (the prelude) are copies of gemm_vec4's.
//
// Geometry: WG_X × WG_Y invocations per workgroup; invocation (x, y) owns rows 16y … 16y + 15 and
// columns 8x … 8x + 7 of its table's C. Tails as in gemm_vec4.
// The shared constants, bindings and helpers: prelude/gemm_vec4_io.wgsl.

@compute @workgroup_size(WG_X, WG_Y, 1)
fn gemm_vec4_16x8(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.z;
    let i0 = gid.y * 16u;
    let j0 = gid.x * 8u;
    if i0 >= params.m || j0 >= params.n {
        return;
    }
    let lane = vec4<u32>(0u, 1u, 2u, 3u);
    let last_i = vec4<u32>(params.m - 1u);
    let last_j = vec4<u32>(params.n - 1u);
    let base_a = params.offset_a + t * params.stride_a;
    let base_b = params.offset_b + t * params.stride_b;
    let rows0 = base_a + min(vec4<u32>(i0 + 0u) + lane, last_i) * params.a_row;
    let rows1 = base_a + min(vec4<u32>(i0 + 4u) + lane, last_i) * params.a_row;
    let rows2 = base_a + min(vec4<u32>(i0 + 8u) + lane, last_i) * params.a_row;
    let rows3 = base_a + min(vec4<u32>(i0 + 12u) + lane, last_i) * params.a_row;
    let cols0 = base_b + min(vec4<u32>(j0 + 0u) + lane, last_j) * params.b_col;
    let cols1 = base_b + min(vec4<u32>(j0 + 4u) + lane, last_j) * params.b_col;
    var acc0_0 = vec4<f32>(0.0);
    var acc0_1 = vec4<f32>(0.0);
    var acc1_0 = vec4<f32>(0.0);
    var acc1_1 = vec4<f32>(0.0);
    var acc2_0 = vec4<f32>(0.0);
    var acc2_1 = vec4<f32>(0.0);
    var acc3_0 = vec4<f32>(0.0);
    var acc3_1 = vec4<f32>(0.0);
    var acc4_0 = vec4<f32>(0.0);
    var acc4_1 = vec4<f32>(0.0);
    var acc5_0 = vec4<f32>(0.0);
    var acc5_1 = vec4<f32>(0.0);
    var acc6_0 = vec4<f32>(0.0);
    var acc6_1 = vec4<f32>(0.0);
    var acc7_0 = vec4<f32>(0.0);
    var acc7_1 = vec4<f32>(0.0);
    var acc8_0 = vec4<f32>(0.0);
    var acc8_1 = vec4<f32>(0.0);
    var acc9_0 = vec4<f32>(0.0);
    var acc9_1 = vec4<f32>(0.0);
    var acc10_0 = vec4<f32>(0.0);
    var acc10_1 = vec4<f32>(0.0);
    var acc11_0 = vec4<f32>(0.0);
    var acc11_1 = vec4<f32>(0.0);
    var acc12_0 = vec4<f32>(0.0);
    var acc12_1 = vec4<f32>(0.0);
    var acc13_0 = vec4<f32>(0.0);
    var acc13_1 = vec4<f32>(0.0);
    var acc14_0 = vec4<f32>(0.0);
    var acc14_1 = vec4<f32>(0.0);
    var acc15_0 = vec4<f32>(0.0);
    var acc15_1 = vec4<f32>(0.0);
    for (var p = 0u; p < params.k; p += 4u) {
        var ak0 = a_block(rows0, p);
        var ak1 = a_block(rows1, p);
        var ak2 = a_block(rows2, p);
        var ak3 = a_block(rows3, p);
        var bk0 = b_block(cols0, p);
        var bk1 = b_block(cols1, p);
        if p + 4u > params.k {
            ak0 = keep(ak0, params.k - p);
            ak1 = keep(ak1, params.k - p);
            ak2 = keep(ak2, params.k - p);
            ak3 = keep(ak3, params.k - p);
            bk0 = keep(bk0, params.k - p);
            bk1 = keep(bk1, params.k - p);
        }
        // Accumulator by accumulator, its four k in order: one spill reload per 4 FMAs.
        acc0_0 = fma(vec4<f32>(ak0[3].x), bk0[3], fma(vec4<f32>(ak0[2].x), bk0[2], fma(vec4<f32>(ak0[1].x), bk0[1], fma(vec4<f32>(ak0[0].x), bk0[0], acc0_0))));
        acc0_1 = fma(vec4<f32>(ak0[3].x), bk1[3], fma(vec4<f32>(ak0[2].x), bk1[2], fma(vec4<f32>(ak0[1].x), bk1[1], fma(vec4<f32>(ak0[0].x), bk1[0], acc0_1))));
        acc1_0 = fma(vec4<f32>(ak0[3].y), bk0[3], fma(vec4<f32>(ak0[2].y), bk0[2], fma(vec4<f32>(ak0[1].y), bk0[1], fma(vec4<f32>(ak0[0].y), bk0[0], acc1_0))));
        acc1_1 = fma(vec4<f32>(ak0[3].y), bk1[3], fma(vec4<f32>(ak0[2].y), bk1[2], fma(vec4<f32>(ak0[1].y), bk1[1], fma(vec4<f32>(ak0[0].y), bk1[0], acc1_1))));
        acc2_0 = fma(vec4<f32>(ak0[3].z), bk0[3], fma(vec4<f32>(ak0[2].z), bk0[2], fma(vec4<f32>(ak0[1].z), bk0[1], fma(vec4<f32>(ak0[0].z), bk0[0], acc2_0))));
        acc2_1 = fma(vec4<f32>(ak0[3].z), bk1[3], fma(vec4<f32>(ak0[2].z), bk1[2], fma(vec4<f32>(ak0[1].z), bk1[1], fma(vec4<f32>(ak0[0].z), bk1[0], acc2_1))));
        acc3_0 = fma(vec4<f32>(ak0[3].w), bk0[3], fma(vec4<f32>(ak0[2].w), bk0[2], fma(vec4<f32>(ak0[1].w), bk0[1], fma(vec4<f32>(ak0[0].w), bk0[0], acc3_0))));
        acc3_1 = fma(vec4<f32>(ak0[3].w), bk1[3], fma(vec4<f32>(ak0[2].w), bk1[2], fma(vec4<f32>(ak0[1].w), bk1[1], fma(vec4<f32>(ak0[0].w), bk1[0], acc3_1))));
        acc4_0 = fma(vec4<f32>(ak1[3].x), bk0[3], fma(vec4<f32>(ak1[2].x), bk0[2], fma(vec4<f32>(ak1[1].x), bk0[1], fma(vec4<f32>(ak1[0].x), bk0[0], acc4_0))));
        acc4_1 = fma(vec4<f32>(ak1[3].x), bk1[3], fma(vec4<f32>(ak1[2].x), bk1[2], fma(vec4<f32>(ak1[1].x), bk1[1], fma(vec4<f32>(ak1[0].x), bk1[0], acc4_1))));
        acc5_0 = fma(vec4<f32>(ak1[3].y), bk0[3], fma(vec4<f32>(ak1[2].y), bk0[2], fma(vec4<f32>(ak1[1].y), bk0[1], fma(vec4<f32>(ak1[0].y), bk0[0], acc5_0))));
        acc5_1 = fma(vec4<f32>(ak1[3].y), bk1[3], fma(vec4<f32>(ak1[2].y), bk1[2], fma(vec4<f32>(ak1[1].y), bk1[1], fma(vec4<f32>(ak1[0].y), bk1[0], acc5_1))));
        acc6_0 = fma(vec4<f32>(ak1[3].z), bk0[3], fma(vec4<f32>(ak1[2].z), bk0[2], fma(vec4<f32>(ak1[1].z), bk0[1], fma(vec4<f32>(ak1[0].z), bk0[0], acc6_0))));
        acc6_1 = fma(vec4<f32>(ak1[3].z), bk1[3], fma(vec4<f32>(ak1[2].z), bk1[2], fma(vec4<f32>(ak1[1].z), bk1[1], fma(vec4<f32>(ak1[0].z), bk1[0], acc6_1))));
        acc7_0 = fma(vec4<f32>(ak1[3].w), bk0[3], fma(vec4<f32>(ak1[2].w), bk0[2], fma(vec4<f32>(ak1[1].w), bk0[1], fma(vec4<f32>(ak1[0].w), bk0[0], acc7_0))));
        acc7_1 = fma(vec4<f32>(ak1[3].w), bk1[3], fma(vec4<f32>(ak1[2].w), bk1[2], fma(vec4<f32>(ak1[1].w), bk1[1], fma(vec4<f32>(ak1[0].w), bk1[0], acc7_1))));
        acc8_0 = fma(vec4<f32>(ak2[3].x), bk0[3], fma(vec4<f32>(ak2[2].x), bk0[2], fma(vec4<f32>(ak2[1].x), bk0[1], fma(vec4<f32>(ak2[0].x), bk0[0], acc8_0))));
        acc8_1 = fma(vec4<f32>(ak2[3].x), bk1[3], fma(vec4<f32>(ak2[2].x), bk1[2], fma(vec4<f32>(ak2[1].x), bk1[1], fma(vec4<f32>(ak2[0].x), bk1[0], acc8_1))));
        acc9_0 = fma(vec4<f32>(ak2[3].y), bk0[3], fma(vec4<f32>(ak2[2].y), bk0[2], fma(vec4<f32>(ak2[1].y), bk0[1], fma(vec4<f32>(ak2[0].y), bk0[0], acc9_0))));
        acc9_1 = fma(vec4<f32>(ak2[3].y), bk1[3], fma(vec4<f32>(ak2[2].y), bk1[2], fma(vec4<f32>(ak2[1].y), bk1[1], fma(vec4<f32>(ak2[0].y), bk1[0], acc9_1))));
        acc10_0 = fma(vec4<f32>(ak2[3].z), bk0[3], fma(vec4<f32>(ak2[2].z), bk0[2], fma(vec4<f32>(ak2[1].z), bk0[1], fma(vec4<f32>(ak2[0].z), bk0[0], acc10_0))));
        acc10_1 = fma(vec4<f32>(ak2[3].z), bk1[3], fma(vec4<f32>(ak2[2].z), bk1[2], fma(vec4<f32>(ak2[1].z), bk1[1], fma(vec4<f32>(ak2[0].z), bk1[0], acc10_1))));
        acc11_0 = fma(vec4<f32>(ak2[3].w), bk0[3], fma(vec4<f32>(ak2[2].w), bk0[2], fma(vec4<f32>(ak2[1].w), bk0[1], fma(vec4<f32>(ak2[0].w), bk0[0], acc11_0))));
        acc11_1 = fma(vec4<f32>(ak2[3].w), bk1[3], fma(vec4<f32>(ak2[2].w), bk1[2], fma(vec4<f32>(ak2[1].w), bk1[1], fma(vec4<f32>(ak2[0].w), bk1[0], acc11_1))));
        acc12_0 = fma(vec4<f32>(ak3[3].x), bk0[3], fma(vec4<f32>(ak3[2].x), bk0[2], fma(vec4<f32>(ak3[1].x), bk0[1], fma(vec4<f32>(ak3[0].x), bk0[0], acc12_0))));
        acc12_1 = fma(vec4<f32>(ak3[3].x), bk1[3], fma(vec4<f32>(ak3[2].x), bk1[2], fma(vec4<f32>(ak3[1].x), bk1[1], fma(vec4<f32>(ak3[0].x), bk1[0], acc12_1))));
        acc13_0 = fma(vec4<f32>(ak3[3].y), bk0[3], fma(vec4<f32>(ak3[2].y), bk0[2], fma(vec4<f32>(ak3[1].y), bk0[1], fma(vec4<f32>(ak3[0].y), bk0[0], acc13_0))));
        acc13_1 = fma(vec4<f32>(ak3[3].y), bk1[3], fma(vec4<f32>(ak3[2].y), bk1[2], fma(vec4<f32>(ak3[1].y), bk1[1], fma(vec4<f32>(ak3[0].y), bk1[0], acc13_1))));
        acc14_0 = fma(vec4<f32>(ak3[3].z), bk0[3], fma(vec4<f32>(ak3[2].z), bk0[2], fma(vec4<f32>(ak3[1].z), bk0[1], fma(vec4<f32>(ak3[0].z), bk0[0], acc14_0))));
        acc14_1 = fma(vec4<f32>(ak3[3].z), bk1[3], fma(vec4<f32>(ak3[2].z), bk1[2], fma(vec4<f32>(ak3[1].z), bk1[1], fma(vec4<f32>(ak3[0].z), bk1[0], acc14_1))));
        acc15_0 = fma(vec4<f32>(ak3[3].w), bk0[3], fma(vec4<f32>(ak3[2].w), bk0[2], fma(vec4<f32>(ak3[1].w), bk0[1], fma(vec4<f32>(ak3[0].w), bk0[0], acc15_0))));
        acc15_1 = fma(vec4<f32>(ak3[3].w), bk1[3], fma(vec4<f32>(ak3[2].w), bk1[2], fma(vec4<f32>(ak3[1].w), bk1[1], fma(vec4<f32>(ak3[0].w), bk1[0], acc15_1))));
    }
    store_row(t, i0 + 0u, j0 + 0u, acc0_0);
    store_row(t, i0 + 0u, j0 + 4u, acc0_1);
    store_row(t, i0 + 1u, j0 + 0u, acc1_0);
    store_row(t, i0 + 1u, j0 + 4u, acc1_1);
    store_row(t, i0 + 2u, j0 + 0u, acc2_0);
    store_row(t, i0 + 2u, j0 + 4u, acc2_1);
    store_row(t, i0 + 3u, j0 + 0u, acc3_0);
    store_row(t, i0 + 3u, j0 + 4u, acc3_1);
    store_row(t, i0 + 4u, j0 + 0u, acc4_0);
    store_row(t, i0 + 4u, j0 + 4u, acc4_1);
    store_row(t, i0 + 5u, j0 + 0u, acc5_0);
    store_row(t, i0 + 5u, j0 + 4u, acc5_1);
    store_row(t, i0 + 6u, j0 + 0u, acc6_0);
    store_row(t, i0 + 6u, j0 + 4u, acc6_1);
    store_row(t, i0 + 7u, j0 + 0u, acc7_0);
    store_row(t, i0 + 7u, j0 + 4u, acc7_1);
    store_row(t, i0 + 8u, j0 + 0u, acc8_0);
    store_row(t, i0 + 8u, j0 + 4u, acc8_1);
    store_row(t, i0 + 9u, j0 + 0u, acc9_0);
    store_row(t, i0 + 9u, j0 + 4u, acc9_1);
    store_row(t, i0 + 10u, j0 + 0u, acc10_0);
    store_row(t, i0 + 10u, j0 + 4u, acc10_1);
    store_row(t, i0 + 11u, j0 + 0u, acc11_0);
    store_row(t, i0 + 11u, j0 + 4u, acc11_1);
    store_row(t, i0 + 12u, j0 + 0u, acc12_0);
    store_row(t, i0 + 12u, j0 + 4u, acc12_1);
    store_row(t, i0 + 13u, j0 + 0u, acc13_0);
    store_row(t, i0 + 13u, j0 + 4u, acc13_1);
    store_row(t, i0 + 14u, j0 + 0u, acc14_0);
    store_row(t, i0 + 14u, j0 + 4u, acc14_1);
    store_row(t, i0 + 15u, j0 + 0u, acc15_0);
    store_row(t, i0 + 15u, j0 + 4u, acc15_1);
}
