// gemm_tiled.wgsl — the strided-batched GEMM with workgroup-memory tiling (issue 20): the
// GPU-shaped variant of gemm.wgsl's gemm_vec4, chosen through gpu::Family::Gemm (variants
// "tiled-32x32", "tiled-64x32", "tiled-64x64"; launcher src/kernels/dense/gemm/, tests
// kernels_tests/dense_gemm_tiled.rs).
//
// Same function, layouts, bindings, parameters and fused epilogues as gemm_vec4 (see gemm.wgsl's
// header): C[t] = act(op(A[t]) · op(B[t]) + bias[t]) (+ C[t]), operand gates applied on load. It
// runs only where gemm_vec4 can (leading dimensions, strides and offsets multiples of 4, buffers
// holding their extent rounded up to whole vec4s); the host falls back to the default otherwise.
//
// Geometry: a workgroup of WG_X × WG_Y invocations owns a BM × BN = 4·WG_Y × 4·WG_X block of C;
// each invocation a 4 × 4 register tile (four vec4 accumulators), as in gemm_vec4. k advances BK
// at a time: the workgroup loads the A block (BM × BK) and the B block (BK × BN) into workgroup
// memory with vec4 loads (4 × 4 operand blocks, transposed where the operand is stored along k),
// a barrier, then BK rank-1 updates read from workgroup memory, a barrier. Each operand element is
// read from global memory once per workgroup instead of once per invocation that needs it: on a
// GPU the k loop then runs out of on-chip memory.
//
// Bits: every output accumulates fma(a[i, p], b[p, j], acc) for p = 0, 1, …, k − 1 in order,
// starting from +0, exactly as gemm_vec4 (and gemm) do; k is padded with zeros to a multiple of BK
// and fma(0, 0, acc) leaves acc unchanged (a sum started at +0 is never −0). So this variant gives
// the default's bits, and a tuned choice never changes a model's results.
//
// Tails: rows and columns past m, n load clamped (valid) addresses and are never stored; k lanes
// past k are zeroed. Every invocation reaches both barriers (no early return; the step count is
// uniform).

override BK: u32 = 16u;      // k per barrier-separated step; a multiple of 4

// The other override constants (WG_X, WG_Y: BN = 4·WG_X, BM = 4·WG_Y), the parameters, the
// bindings, the gated loads and the epilogue's store_row: prelude/gemm_vec4_io.wgsl, shared with
// the register-tile kernels (same operations in the same order, so the same bits).

// tile_a[kk · WG_Y + g]: op(A) at k = p0 + kk over the block's rows 4g … 4g + 3;
// tile_b[kk · WG_X + h]: op(B) at k = p0 + kk over the block's columns 4h … 4h + 3.
var<workgroup> tile_a: array<vec4<f32>, BK * WG_Y>;
var<workgroup> tile_b: array<vec4<f32>, BK * WG_X>;

// Columns q of a 4 × 4 operand block whose k runs p … p + 3: zero where p + q ≥ k (also for p ≥ k,
// the padding of k to BK, where the prelude's keep would wrap).
fn keep_k(x: mat4x4<f32>, p: u32) -> mat4x4<f32> {
    let z = vec4<f32>(0.0);
    let k = params.k;
    return mat4x4<f32>(select(z, x[0], p < k), select(z, x[1], p + 1u < k),
                       select(z, x[2], p + 2u < k), select(z, x[3], p + 3u < k));
}

// The 4 × 4 block of an operand: column q = vec4 over the 4 rows (or columns) starting at `i` of
// op(X)[·, p + q]. `along_k`: stored with k contiguous; `row`: stride between rows of op(X);
// `step`: stride between k; `last`: last valid row; `load`: 0 A, 1 B.
fn block(base: u32, i: u32, p: u32, along_k: bool, row: u32, step: u32, last: u32, b: bool) -> mat4x4<f32> {
    var x: mat4x4<f32>;
    if along_k {
        // Four rows, four k each (p clamped to the last whole vec4 of k; keep_k zeroes the rest).
        let pc = min(p, (params.k - 1u) & ~3u);
        let r = min(vec4<u32>(i) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(last)) * row + base + pc;
        if b {
            x = transpose(mat4x4<f32>(load_b4(r.x), load_b4(r.y), load_b4(r.z), load_b4(r.w)));
        } else {
            x = transpose(mat4x4<f32>(load_a4(r.x), load_a4(r.y), load_a4(r.z), load_a4(r.w)));
        }
    } else {
        // Four k, a vec4 of rows each (the group start clamped to the last whole vec4 of rows).
        let r = base + min(i, last & ~3u) * row;
        let kl = params.k - 1u;
        let q = min(vec4<u32>(p) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(kl)) * step + r;
        if b {
            x = mat4x4<f32>(load_b4(q.x), load_b4(q.y), load_b4(q.z), load_b4(q.w));
        } else {
            x = mat4x4<f32>(load_a4(q.x), load_a4(q.y), load_a4(q.z), load_a4(q.w));
        }
    }
    return keep_k(x, p);
}

// Loads the step's A and B blocks (k = p0 … p0 + BK − 1) into workgroup memory, 4 × 4 operand
// blocks spread over the workgroup's invocations.
fn fill(t: u32, bm: u32, bn: u32, p0: u32, li: u32) {
    let threads = WG_X * WG_Y;
    let base_a = params.offset_a + t * params.stride_a;
    for (var e = li; e < WG_Y * (BK / 4u); e += threads) {
        let g = e % WG_Y;
        let p = p0 + 4u * (e / WG_Y);
        let x = block(base_a, bm + 4u * g, p, A_ALONG_K, params.a_row, params.a_step,
                      params.m - 1u, false);
        let at = (p - p0) * WG_Y + g;
        tile_a[at] = x[0];
        tile_a[at + WG_Y] = x[1];
        tile_a[at + 2u * WG_Y] = x[2];
        tile_a[at + 3u * WG_Y] = x[3];
    }
    let base_b = params.offset_b + t * params.stride_b;
    for (var e = li; e < WG_X * (BK / 4u); e += threads) {
        let h = e % WG_X;
        let p = p0 + 4u * (e / WG_X);
        let x = block(base_b, bn + 4u * h, p, B_ALONG_K, params.b_col, params.b_step,
                      params.n - 1u, true);
        let at = (p - p0) * WG_X + h;
        tile_b[at] = x[0];
        tile_b[at + WG_X] = x[1];
        tile_b[at + 2u * WG_X] = x[2];
        tile_b[at + 3u * WG_X] = x[3];
    }
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn gemm_tiled(@builtin(workgroup_id) wid: vec3<u32>,
              @builtin(local_invocation_id) lid: vec3<u32>,
              @builtin(local_invocation_index) li: u32) {
    let t = wid.z;
    let bm = wid.y * 4u * WG_Y;
    let bn = wid.x * 4u * WG_X;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    // Workgroups wholly past m or n (a grid sized at capacity) still take part in no barrier of
    // another workgroup, so they may skip the k loop; the condition is uniform in the workgroup.
    let live = bm < params.m && bn < params.n;
    let steps = select(0u, (params.k + BK - 1u) / BK, live);
    for (var s = 0u; s < steps; s++) {
        let p0 = s * BK;
        fill(t, bm, bn, p0, li);
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            let av = tile_a[kk * WG_Y + lid.y];
            let bv = tile_b[kk * WG_X + lid.x];
            acc0 = fma(vec4<f32>(av.x), bv, acc0);
            acc1 = fma(vec4<f32>(av.y), bv, acc1);
            acc2 = fma(vec4<f32>(av.z), bv, acc2);
            acc3 = fma(vec4<f32>(av.w), bv, acc3);
        }
        workgroupBarrier();
    }
    let i0 = bm + 4u * lid.y;
    let j0 = bn + 4u * lid.x;
    if !live || i0 >= params.m || j0 >= params.n {
        return;
    }
    store_row(t, i0, j0, acc0);
    store_row(t, i0 + 1u, j0, acc1);
    store_row(t, i0 + 2u, j0, acc2);
    store_row(t, i0 + 3u, j0, acc3);
}
