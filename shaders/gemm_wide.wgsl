// gemm_wide.wgsl — gemm.wgsl's gemm_vec4 with a larger register tile per invocation (issue 20):
// 8 × 4 (gemm_vec4_8x4, variant "vec4-8x4") or 8 × 8 (gemm_vec4_8x8, the default's vec4 kernel
// since issue 20: 2.0–2.6× gemm_vec4 on llvmpipe, BENCHMARKS.md) outputs instead of 4 × 4.
// Launcher: src/kernels/dense/gemm/ (variants.rs). Tests: kernels_tests/dense_gemm*.rs.
//
// Same function, layouts, bindings, parameters, fused epilogues and layout requirements as
// gemm_vec4 (see gemm.wgsl's header; the helpers, in the prelude, are copies of its). Why: on
// llvmpipe every storage load whose address is not a compile-time or push-constant uniform runs
// as a loop over the SIMD lanes, so the GEMM is bound by load instructions, not FMAs. A 4 × 4 tile
// issues 8 vec4 loads per 64 FMAs (4 k); 8 × 4 issues 12 per 128 and 8 × 8 16 per 256, at the
// price of 32 and 64 accumulator registers (AVX2 has 16: the rest spill to the stack, which is
// cheaper than a lane-loop load). Each output still accumulates fma over p = 0 … k − 1 in order
// from +0, so both give gemm_vec4's bits.
//
// Geometry: WG_X × WG_Y invocations per workgroup; invocation (x, y) owns rows 8y … 8y + 7 and
// columns 4x … 4x + 3 (8x4) or 8x … 8x + 7 (8x8) of its table's C. Tails as in gemm_vec4.
// The shared constants, bindings and helpers: prelude/gemm_vec4_io.wgsl.

@compute @workgroup_size(WG_X, WG_Y, 1)
fn gemm_vec4_8x4(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.z;
    let i0 = gid.y * 8u;
    let j0 = gid.x * 4u;
    if i0 >= params.m || j0 >= params.n {
        return;
    }
    let lane = vec4<u32>(0u, 1u, 2u, 3u);
    let rows0 = params.offset_a + t * params.stride_a + min(vec4<u32>(i0 + 0u) + lane, vec4<u32>(params.m - 1u)) * params.a_row;
    let rows1 = params.offset_a + t * params.stride_a + min(vec4<u32>(i0 + 4u) + lane, vec4<u32>(params.m - 1u)) * params.a_row;
    let cols0 = params.offset_b + t * params.stride_b + min(vec4<u32>(j0 + 0u) + lane, vec4<u32>(params.n - 1u)) * params.b_col;
    var acc0_0 = vec4<f32>(0.0);
    var acc1_0 = vec4<f32>(0.0);
    var acc2_0 = vec4<f32>(0.0);
    var acc3_0 = vec4<f32>(0.0);
    var acc4_0 = vec4<f32>(0.0);
    var acc5_0 = vec4<f32>(0.0);
    var acc6_0 = vec4<f32>(0.0);
    var acc7_0 = vec4<f32>(0.0);
    for (var p = 0u; p < params.k; p += 4u) {
        var ak0 = a_block(rows0, p);
        var ak1 = a_block(rows1, p);
        var bk0 = b_block(cols0, p);
        if p + 4u > params.k {
            ak0 = keep(ak0, params.k - p);
            ak1 = keep(ak1, params.k - p);
            bk0 = keep(bk0, params.k - p);
        }
        acc0_0 = fma(vec4<f32>(ak0[0].x), bk0[0], acc0_0);
        acc1_0 = fma(vec4<f32>(ak0[0].y), bk0[0], acc1_0);
        acc2_0 = fma(vec4<f32>(ak0[0].z), bk0[0], acc2_0);
        acc3_0 = fma(vec4<f32>(ak0[0].w), bk0[0], acc3_0);
        acc4_0 = fma(vec4<f32>(ak1[0].x), bk0[0], acc4_0);
        acc5_0 = fma(vec4<f32>(ak1[0].y), bk0[0], acc5_0);
        acc6_0 = fma(vec4<f32>(ak1[0].z), bk0[0], acc6_0);
        acc7_0 = fma(vec4<f32>(ak1[0].w), bk0[0], acc7_0);
        acc0_0 = fma(vec4<f32>(ak0[1].x), bk0[1], acc0_0);
        acc1_0 = fma(vec4<f32>(ak0[1].y), bk0[1], acc1_0);
        acc2_0 = fma(vec4<f32>(ak0[1].z), bk0[1], acc2_0);
        acc3_0 = fma(vec4<f32>(ak0[1].w), bk0[1], acc3_0);
        acc4_0 = fma(vec4<f32>(ak1[1].x), bk0[1], acc4_0);
        acc5_0 = fma(vec4<f32>(ak1[1].y), bk0[1], acc5_0);
        acc6_0 = fma(vec4<f32>(ak1[1].z), bk0[1], acc6_0);
        acc7_0 = fma(vec4<f32>(ak1[1].w), bk0[1], acc7_0);
        acc0_0 = fma(vec4<f32>(ak0[2].x), bk0[2], acc0_0);
        acc1_0 = fma(vec4<f32>(ak0[2].y), bk0[2], acc1_0);
        acc2_0 = fma(vec4<f32>(ak0[2].z), bk0[2], acc2_0);
        acc3_0 = fma(vec4<f32>(ak0[2].w), bk0[2], acc3_0);
        acc4_0 = fma(vec4<f32>(ak1[2].x), bk0[2], acc4_0);
        acc5_0 = fma(vec4<f32>(ak1[2].y), bk0[2], acc5_0);
        acc6_0 = fma(vec4<f32>(ak1[2].z), bk0[2], acc6_0);
        acc7_0 = fma(vec4<f32>(ak1[2].w), bk0[2], acc7_0);
        acc0_0 = fma(vec4<f32>(ak0[3].x), bk0[3], acc0_0);
        acc1_0 = fma(vec4<f32>(ak0[3].y), bk0[3], acc1_0);
        acc2_0 = fma(vec4<f32>(ak0[3].z), bk0[3], acc2_0);
        acc3_0 = fma(vec4<f32>(ak0[3].w), bk0[3], acc3_0);
        acc4_0 = fma(vec4<f32>(ak1[3].x), bk0[3], acc4_0);
        acc5_0 = fma(vec4<f32>(ak1[3].y), bk0[3], acc5_0);
        acc6_0 = fma(vec4<f32>(ak1[3].z), bk0[3], acc6_0);
        acc7_0 = fma(vec4<f32>(ak1[3].w), bk0[3], acc7_0);
    }
    store_row(t, i0 + 0u, j0 + 0u, acc0_0);
    store_row(t, i0 + 1u, j0 + 0u, acc1_0);
    store_row(t, i0 + 2u, j0 + 0u, acc2_0);
    store_row(t, i0 + 3u, j0 + 0u, acc3_0);
    store_row(t, i0 + 4u, j0 + 0u, acc4_0);
    store_row(t, i0 + 5u, j0 + 0u, acc5_0);
    store_row(t, i0 + 6u, j0 + 0u, acc6_0);
    store_row(t, i0 + 7u, j0 + 0u, acc7_0);
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn gemm_vec4_8x8(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.z;
    let i0 = gid.y * 8u;
    let j0 = gid.x * 8u;
    if i0 >= params.m || j0 >= params.n {
        return;
    }
    let lane = vec4<u32>(0u, 1u, 2u, 3u);
    let rows0 = params.offset_a + t * params.stride_a + min(vec4<u32>(i0 + 0u) + lane, vec4<u32>(params.m - 1u)) * params.a_row;
    let rows1 = params.offset_a + t * params.stride_a + min(vec4<u32>(i0 + 4u) + lane, vec4<u32>(params.m - 1u)) * params.a_row;
    let cols0 = params.offset_b + t * params.stride_b + min(vec4<u32>(j0 + 0u) + lane, vec4<u32>(params.n - 1u)) * params.b_col;
    let cols1 = params.offset_b + t * params.stride_b + min(vec4<u32>(j0 + 4u) + lane, vec4<u32>(params.n - 1u)) * params.b_col;
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
    for (var p = 0u; p < params.k; p += 4u) {
        var ak0 = a_block(rows0, p);
        var ak1 = a_block(rows1, p);
        var bk0 = b_block(cols0, p);
        var bk1 = b_block(cols1, p);
        if p + 4u > params.k {
            ak0 = keep(ak0, params.k - p);
            ak1 = keep(ak1, params.k - p);
            bk0 = keep(bk0, params.k - p);
            bk1 = keep(bk1, params.k - p);
        }
        acc0_0 = fma(vec4<f32>(ak0[0].x), bk0[0], acc0_0);
        acc0_1 = fma(vec4<f32>(ak0[0].x), bk1[0], acc0_1);
        acc1_0 = fma(vec4<f32>(ak0[0].y), bk0[0], acc1_0);
        acc1_1 = fma(vec4<f32>(ak0[0].y), bk1[0], acc1_1);
        acc2_0 = fma(vec4<f32>(ak0[0].z), bk0[0], acc2_0);
        acc2_1 = fma(vec4<f32>(ak0[0].z), bk1[0], acc2_1);
        acc3_0 = fma(vec4<f32>(ak0[0].w), bk0[0], acc3_0);
        acc3_1 = fma(vec4<f32>(ak0[0].w), bk1[0], acc3_1);
        acc4_0 = fma(vec4<f32>(ak1[0].x), bk0[0], acc4_0);
        acc4_1 = fma(vec4<f32>(ak1[0].x), bk1[0], acc4_1);
        acc5_0 = fma(vec4<f32>(ak1[0].y), bk0[0], acc5_0);
        acc5_1 = fma(vec4<f32>(ak1[0].y), bk1[0], acc5_1);
        acc6_0 = fma(vec4<f32>(ak1[0].z), bk0[0], acc6_0);
        acc6_1 = fma(vec4<f32>(ak1[0].z), bk1[0], acc6_1);
        acc7_0 = fma(vec4<f32>(ak1[0].w), bk0[0], acc7_0);
        acc7_1 = fma(vec4<f32>(ak1[0].w), bk1[0], acc7_1);
        acc0_0 = fma(vec4<f32>(ak0[1].x), bk0[1], acc0_0);
        acc0_1 = fma(vec4<f32>(ak0[1].x), bk1[1], acc0_1);
        acc1_0 = fma(vec4<f32>(ak0[1].y), bk0[1], acc1_0);
        acc1_1 = fma(vec4<f32>(ak0[1].y), bk1[1], acc1_1);
        acc2_0 = fma(vec4<f32>(ak0[1].z), bk0[1], acc2_0);
        acc2_1 = fma(vec4<f32>(ak0[1].z), bk1[1], acc2_1);
        acc3_0 = fma(vec4<f32>(ak0[1].w), bk0[1], acc3_0);
        acc3_1 = fma(vec4<f32>(ak0[1].w), bk1[1], acc3_1);
        acc4_0 = fma(vec4<f32>(ak1[1].x), bk0[1], acc4_0);
        acc4_1 = fma(vec4<f32>(ak1[1].x), bk1[1], acc4_1);
        acc5_0 = fma(vec4<f32>(ak1[1].y), bk0[1], acc5_0);
        acc5_1 = fma(vec4<f32>(ak1[1].y), bk1[1], acc5_1);
        acc6_0 = fma(vec4<f32>(ak1[1].z), bk0[1], acc6_0);
        acc6_1 = fma(vec4<f32>(ak1[1].z), bk1[1], acc6_1);
        acc7_0 = fma(vec4<f32>(ak1[1].w), bk0[1], acc7_0);
        acc7_1 = fma(vec4<f32>(ak1[1].w), bk1[1], acc7_1);
        acc0_0 = fma(vec4<f32>(ak0[2].x), bk0[2], acc0_0);
        acc0_1 = fma(vec4<f32>(ak0[2].x), bk1[2], acc0_1);
        acc1_0 = fma(vec4<f32>(ak0[2].y), bk0[2], acc1_0);
        acc1_1 = fma(vec4<f32>(ak0[2].y), bk1[2], acc1_1);
        acc2_0 = fma(vec4<f32>(ak0[2].z), bk0[2], acc2_0);
        acc2_1 = fma(vec4<f32>(ak0[2].z), bk1[2], acc2_1);
        acc3_0 = fma(vec4<f32>(ak0[2].w), bk0[2], acc3_0);
        acc3_1 = fma(vec4<f32>(ak0[2].w), bk1[2], acc3_1);
        acc4_0 = fma(vec4<f32>(ak1[2].x), bk0[2], acc4_0);
        acc4_1 = fma(vec4<f32>(ak1[2].x), bk1[2], acc4_1);
        acc5_0 = fma(vec4<f32>(ak1[2].y), bk0[2], acc5_0);
        acc5_1 = fma(vec4<f32>(ak1[2].y), bk1[2], acc5_1);
        acc6_0 = fma(vec4<f32>(ak1[2].z), bk0[2], acc6_0);
        acc6_1 = fma(vec4<f32>(ak1[2].z), bk1[2], acc6_1);
        acc7_0 = fma(vec4<f32>(ak1[2].w), bk0[2], acc7_0);
        acc7_1 = fma(vec4<f32>(ak1[2].w), bk1[2], acc7_1);
        acc0_0 = fma(vec4<f32>(ak0[3].x), bk0[3], acc0_0);
        acc0_1 = fma(vec4<f32>(ak0[3].x), bk1[3], acc0_1);
        acc1_0 = fma(vec4<f32>(ak0[3].y), bk0[3], acc1_0);
        acc1_1 = fma(vec4<f32>(ak0[3].y), bk1[3], acc1_1);
        acc2_0 = fma(vec4<f32>(ak0[3].z), bk0[3], acc2_0);
        acc2_1 = fma(vec4<f32>(ak0[3].z), bk1[3], acc2_1);
        acc3_0 = fma(vec4<f32>(ak0[3].w), bk0[3], acc3_0);
        acc3_1 = fma(vec4<f32>(ak0[3].w), bk1[3], acc3_1);
        acc4_0 = fma(vec4<f32>(ak1[3].x), bk0[3], acc4_0);
        acc4_1 = fma(vec4<f32>(ak1[3].x), bk1[3], acc4_1);
        acc5_0 = fma(vec4<f32>(ak1[3].y), bk0[3], acc5_0);
        acc5_1 = fma(vec4<f32>(ak1[3].y), bk1[3], acc5_1);
        acc6_0 = fma(vec4<f32>(ak1[3].z), bk0[3], acc6_0);
        acc6_1 = fma(vec4<f32>(ak1[3].z), bk1[3], acc6_1);
        acc7_0 = fma(vec4<f32>(ak1[3].w), bk0[3], acc7_0);
        acc7_1 = fma(vec4<f32>(ak1[3].w), bk1[3], acc7_1);
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
}
