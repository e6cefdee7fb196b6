// prelude/gemm_vec4_io.wgsl — what the vec4 GEMM variants share (gemm_wide.wgsl, gemm_wider.wgsl,
// gemm_tiled.wgsl): the override constants, parameters and bindings of gemm.wgsl's gemm_vec4 and
// its vec4 helpers (gated loads, A and B blocks of four k, the tail mask, the fused epilogue's row
// store). Not a shader on its own: the registry (src/shaders.rs) prepends it to each. gemm.wgsl
// keeps its own copy beside its scalar kernel and column sums, whose bindings differ; a change here
// must keep gemm_vec4's semantics (the tests compare every variant with the default bit for bit).

override WG_X: u32 = 8u;     // invocations along n per workgroup
override WG_Y: u32 = 8u;     // invocations along m per workgroup
override EPILOGUE: u32 = 0u; // 0 identity, 1 ReLU, 2 sigmoid
override HAS_BIAS: bool = false;
override ACCUMULATE: bool = false;
override GATE: u32 = 0u;     // 0 none, 1 ReLU mask x·(g > 0), 2 product x·g
override GATE_ON_B: bool = false; // the gated operand: A when false
override A_ALONG_K: bool = true;  // A stored m×k (vec4 along k), else k×m (vec4 along m)
override B_ALONG_K: bool = true;  // B stored n×k (vec4 along k), else k×n (vec4 along n)

const TN: u32 = 4u; // columns store_row writes: one vec4

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

@group(0) @binding(0) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> b4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read> gate4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;
@group(0) @binding(5) var<uniform> params: GemmParams;

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
