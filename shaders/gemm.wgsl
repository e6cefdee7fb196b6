// gemm.wgsl — strided-batched GEMM with fused epilogues, and the fixed-order column sum.
//
// Launcher: src/kernels/dense/gemm/mod.rs (gemm, gemm_vec4) and src/kernels/dense/column_sum.rs
// (column_sum). Tests: kernels_tests/dense_gemm.rs.
//
// gemm:       C[t] = act(op(A[t]) · op(B[t]) + bias[t]) (+ C[t] if ACCUMULATE), t = workgroup_id.z
//             A element (t, i, p) at offset_a + t·stride_a + i·a_row + p·a_step; B element (t, p, j) at
//             t·stride_b + p·b_step + j·b_col. The host turns (trans, ld) into these four strides, so
//             every transposition is one pipeline and no transpose is ever materialised.
//             A gate (GATE ≠ 0) multiplies one operand elementwise by a buffer of the same layout on
//             load: GATE 1 x·(g > 0) (ReLU backward through the stored output), GATE 2 x·g.
//             k = 0 is the empty sum: C = act(bias or 0) (+ C).
// column_sum: out[t, j] (= or +=) Σ_{i < rows} gate(X[t, i, j]), i ascending (deterministic); X may
// start at an element offset (a group's tables inside a larger table-batched tensor).
//
// Bindings gemm: 0 a, 1 b, 2 bias, 3 gate (read; a 16-byte dummy when unused), 4 c (read_write),
// 5 params. column_sum: 0 x, 1 gate (read), 2 out (read_write), 3 params.
// Geometry gemm: WG_X × WG_Y invocations per workgroup, each owning a TM × TN = 4 × 4 register tile
// (rows i0..i0+3, columns j0..j0+3: four vec4 accumulators); grid (⌈n/(4·WG_X)⌉, ⌈m/(4·WG_Y)⌉,
// tables). Tails: out-of-range rows/columns load a clamped (valid) index and are not stored, so the
// k loop has no branches. No workgroup memory and no barriers: on llvmpipe each invocation is a
// SIMD lane and barriers are slow, so operands stream from the CPU caches.
// column_sum: one invocation per (column, table); grid (⌈cols/WG⌉, tables).
//
// Measured on llvmpipe (2 shared cores, 4096×400×400, % of fma.wgsl in the same run; noisy ±5
// points): scalar loads 11–17%; vec4 loads (gemm_vec4) 25–45%, so the host picks a vec4 kernel
// whenever the layout allows (since issue 20 gemm_wide.wgsl's 8 × 8 tile by default). Workgroups
// (WG_X × WG_Y) 8×8 ≈ 16×16 ≈ 16×4 > 4×4 > 4×16: 8×8 kept. Built
// without wgpu's bounds checks the kernel was no faster, so it keeps them (see gemm/mod.rs).
// Variants of gemm_vec4 chosen per device (issue 20): gemm_tiled.wgsl (workgroup-memory tiling)
// and gemm_wide.wgsl (larger register tiles); src/kernels/dense/gemm/variants.rs.

override WG_X: u32 = 8u;     // invocations along n per workgroup
override WG_Y: u32 = 8u;     // invocations along m per workgroup
override WG: u32 = 64u;      // column_sum invocations per workgroup
override EPILOGUE: u32 = 0u; // 0 identity, 1 ReLU, 2 sigmoid
override HAS_BIAS: bool = false;
override ACCUMULATE: bool = false;
override GATE: u32 = 0u;     // 0 none, 1 ReLU mask x·(g > 0), 2 product x·g
override GATE_ON_B: bool = false; // the gated operand: A when false

const TM: u32 = 4u; // register tile rows: four vec4 accumulators fill the 16 AVX2 registers
const TN: u32 = 4u; // register tile columns: one vec4

struct GemmParams {
    m: u32,
    n: u32,
    k: u32,
    a_row: u32,
    a_step: u32,
    b_step: u32,
    b_col: u32,
    ldc: u32,
    stride_a: u32,
    stride_b: u32,
    stride_c: u32,
    stride_bias: u32,
    offset_a: u32,    // element offsets of table 0's matrices (a gate shares its operand's)
    offset_b: u32,
    offset_c: u32,
    offset_bias: u32,
}

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

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read> gate: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;
@group(0) @binding(5) var<uniform> params: GemmParams;

fn gated(x: f32, g: f32) -> f32 {
    if GATE == 1u {
        return select(0.0, x, g > 0.0);
    }
    return x * g;
}

fn load_a(i: u32) -> f32 {
    if GATE != 0u && !GATE_ON_B {
        return gated(a[i], gate[i]);
    }
    return a[i];
}

fn load_b(i: u32) -> f32 {
    if GATE != 0u && GATE_ON_B {
        return gated(b[i], gate[i]);
    }
    return b[i];
}

fn activate(x: f32) -> f32 {
    switch EPILOGUE {
        case 1u: { return max(x, 0.0); }
        case 2u: { return 1.0 / (1.0 + exp(-x)); }
        default: { return x; }
    }
}

fn store_row(t: u32, i: u32, j0: u32, acc: vec4<f32>) {
    if i >= params.m {
        return;
    }
    let row = params.offset_c + t * params.stride_c + i * params.ldc;
    for (var q = 0u; q < TN; q++) {
        let j = j0 + q;
        if j < params.n {
            var v = acc[q];
            if HAS_BIAS {
                v += bias[params.offset_bias + t * params.stride_bias + j];
            }
            v = activate(v);
            if ACCUMULATE {
                v += c[row + j];
            }
            c[row + j] = v;
        }
    }
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn gemm(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.z;
    let i0 = gid.y * TM;
    let j0 = gid.x * TN;
    if i0 >= params.m || j0 >= params.n {
        return;
    }
    let last_i = params.m - 1u;
    let last_j = params.n - 1u;
    let base_a = params.offset_a + t * params.stride_a;
    let base_b = params.offset_b + t * params.stride_b;
    let a0 = base_a + i0 * params.a_row;
    let a1 = base_a + min(i0 + 1u, last_i) * params.a_row;
    let a2 = base_a + min(i0 + 2u, last_i) * params.a_row;
    let a3 = base_a + min(i0 + 3u, last_i) * params.a_row;
    let b0 = base_b + j0 * params.b_col;
    let b1 = base_b + min(j0 + 1u, last_j) * params.b_col;
    let b2 = base_b + min(j0 + 2u, last_j) * params.b_col;
    let b3 = base_b + min(j0 + 3u, last_j) * params.b_col;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var p = 0u; p < params.k; p++) {
        let pa = p * params.a_step;
        let pb = p * params.b_step;
        let av = vec4<f32>(load_a(a0 + pa), load_a(a1 + pa), load_a(a2 + pa), load_a(a3 + pa));
        let bv = vec4<f32>(load_b(b0 + pb), load_b(b1 + pb), load_b(b2 + pb), load_b(b3 + pb));
        acc0 = fma(vec4<f32>(av.x), bv, acc0);
        acc1 = fma(vec4<f32>(av.y), bv, acc1);
        acc2 = fma(vec4<f32>(av.z), bv, acc2);
        acc3 = fma(vec4<f32>(av.w), bv, acc3);
    }
    store_row(t, i0, j0, acc0);
    store_row(t, i0 + 1u, j0, acc1);
    store_row(t, i0 + 2u, j0, acc2);
    store_row(t, i0 + 3u, j0, acc3);
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> x_gate: array<f32>;
@group(0) @binding(2) var<storage, read_write> sums: array<f32>;
@group(0) @binding(3) var<uniform> cs: ColumnSumParams;

@compute @workgroup_size(WG)
fn column_sum(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    let t = gid.y;
    if j >= cs.cols {
        return;
    }
    var s = 0.0;
    var at = cs.in_offset + t * cs.stride + j;
    for (var i = 0u; i < cs.rows; i++) {
        var v = x[at];
        if GATE == 1u {
            v = select(0.0, v, x_gate[at] > 0.0);
        } else if GATE == 2u {
            v *= x_gate[at];
        }
        s += v;
        at += cs.ld;
    }
    let o = cs.out_offset + t * cs.out_stride + j;
    if ACCUMULATE {
        s += sums[o];
    }
    sums[o] = s;
}

// gemm_vec4: the same product when both operands (and the gate) have leading dimensions and
// per-table strides and offsets that are multiples of 4, loading each 4 × 4 operand block as four vec4s:
// 8 vector loads per 64 FMAs instead of 32 scalar ones. A_ALONG_K: A stored m×k (vec4 along k),
// else k×m (vec4 along m); B_ALONG_K: B stored n×k, else k×n (vec4 along n). The host checks that
// every buffer holds its extent rounded up to whole vec4s. Lanes past m, n or k read row padding
// (never past the extent); k lanes past k are zeroed with select (the padding may hold NaN).
override A_ALONG_K: bool = true;
override B_ALONG_K: bool = true;

@group(0) @binding(0) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> b4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> gate4: array<vec4<f32>>;

fn gated4(x: vec4<f32>, g: vec4<f32>) -> vec4<f32> {
    if GATE == 1u {
        return select(vec4<f32>(0.0), x, g > vec4<f32>(0.0));
    }
    return x * g;
}

fn load_a4(e: u32) -> vec4<f32> {
    if GATE != 0u && !GATE_ON_B {
        return gated4(a4[e >> 2u], gate4[e >> 2u]);
    }
    return a4[e >> 2u];
}

fn load_b4(e: u32) -> vec4<f32> {
    if GATE != 0u && GATE_ON_B {
        return gated4(b4[e >> 2u], gate4[e >> 2u]);
    }
    return b4[e >> 2u];
}

// Columns q of the A block: vec4 over the tile's rows of op(A)[i, p + q]. rows: element offsets of
// the tile's (clamped) rows when A_ALONG_K, else the offset of row i0 at k = 0.
fn a_block(rows: vec4<u32>, p: u32) -> mat4x4<f32> {
    if A_ALONG_K {
        return transpose(mat4x4<f32>(load_a4(rows.x + p), load_a4(rows.y + p),
                                     load_a4(rows.z + p), load_a4(rows.w + p)));
    }
    let last = params.k - 1u;
    let s = params.a_step;
    return mat4x4<f32>(load_a4(rows.x + p * s), load_a4(rows.x + min(p + 1u, last) * s),
                       load_a4(rows.x + min(p + 2u, last) * s), load_a4(rows.x + min(p + 3u, last) * s));
}

// Rows q of the B block: vec4 over the tile's columns of op(B)[p + q, j].
fn b_block(cols: vec4<u32>, p: u32) -> mat4x4<f32> {
    if B_ALONG_K {
        return transpose(mat4x4<f32>(load_b4(cols.x + p), load_b4(cols.y + p),
                                     load_b4(cols.z + p), load_b4(cols.w + p)));
    }
    let last = params.k - 1u;
    let s = params.b_step;
    return mat4x4<f32>(load_b4(cols.x + p * s), load_b4(cols.x + min(p + 1u, last) * s),
                       load_b4(cols.x + min(p + 2u, last) * s), load_b4(cols.x + min(p + 3u, last) * s));
}

fn keep(m: mat4x4<f32>, kk: u32) -> mat4x4<f32> {
    let z = vec4<f32>(0.0);
    return mat4x4<f32>(m[0], select(z, m[1], kk > 1u), select(z, m[2], kk > 2u), select(z, m[3], kk > 3u));
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn gemm_vec4(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.z;
    let i0 = gid.y * TM;
    let j0 = gid.x * TN;
    if i0 >= params.m || j0 >= params.n {
        return;
    }
    let ri = min(vec4<u32>(i0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(params.m - 1u));
    let cj = min(vec4<u32>(j0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(params.n - 1u));
    let rows = params.offset_a + t * params.stride_a + ri * params.a_row;
    let cols = params.offset_b + t * params.stride_b + cj * params.b_col;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var p = 0u; p < params.k; p += 4u) {
        var ak = a_block(rows, p);
        var bk = b_block(cols, p);
        if p + 4u > params.k {
            ak = keep(ak, params.k - p);
            bk = keep(bk, params.k - p);
        }
        acc0 = fma(vec4<f32>(ak[0].x), bk[0], acc0);
        acc1 = fma(vec4<f32>(ak[0].y), bk[0], acc1);
        acc2 = fma(vec4<f32>(ak[0].z), bk[0], acc2);
        acc3 = fma(vec4<f32>(ak[0].w), bk[0], acc3);
        acc0 = fma(vec4<f32>(ak[1].x), bk[1], acc0);
        acc1 = fma(vec4<f32>(ak[1].y), bk[1], acc1);
        acc2 = fma(vec4<f32>(ak[1].z), bk[1], acc2);
        acc3 = fma(vec4<f32>(ak[1].w), bk[1], acc3);
        acc0 = fma(vec4<f32>(ak[2].x), bk[2], acc0);
        acc1 = fma(vec4<f32>(ak[2].y), bk[2], acc1);
        acc2 = fma(vec4<f32>(ak[2].z), bk[2], acc2);
        acc3 = fma(vec4<f32>(ak[2].w), bk[2], acc3);
        acc0 = fma(vec4<f32>(ak[3].x), bk[3], acc0);
        acc1 = fma(vec4<f32>(ak[3].y), bk[3], acc1);
        acc2 = fma(vec4<f32>(ak[3].z), bk[3], acc2);
        acc3 = fma(vec4<f32>(ak[3].w), bk[3], acc3);
    }
    store_row(t, i0, j0, acc0);
    store_row(t, i0 + 1u, j0, acc1);
    store_row(t, i0 + 2u, j0, acc2);
    store_row(t, i0 + 3u, j0, acc3);
}
