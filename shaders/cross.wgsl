// cross.wgsl — the element-wise halves of a DCNv2 cross layer (METHODS.md §2.2); the matrix halves
// (z_l = x_l W_lᵀ + b_l, dW_l = uᵀ x_l, u W_l) are GEMMs (gemm.wgsl), recorded by
// src/kernels/dense/cross/ around these kernels.
//
// Launcher: src/kernels/dense/cross/mod.rs. Tests: kernels_tests/dense_cross.rs.
//
//   cross_forward:  x_{l+1} = x_0 ⊙ z_l + x_l            (ReLU on the result when RELU is set:
//                                                        the expert's fused output non-linearity)
//   cross_backward: g  = MASK ? g_in ⊙ [y > 0] : g_in   (the ReLU's backward, top layer only)
//                   u  = x_0 ⊙ g                          (the GEMMs' left operand for dW_l and dx_l)
//                   g_out = g                             (the residual path; the dx GEMM adds u W_l)
//                   dx_0 = (ACCUMULATE ? dx_0 : 0) + g ⊙ z_l
//   cross_finish:   dx_0 += g_0                           (x_0's gradient through the residual chain)
//
// Tensors are table-batched, [tables, rows_cap, dim] row-major; only the first `rows` rows of each
// table's slab are read or written. One invocation per element (t, r, c) with r < rows; the linear
// element index over tables · rows · dim is rebuilt from a folded (x, y) grid (gpu::grid).
// Bindings are per entry point (read-only inputs, then outputs, then params), see each below.

override WG: u32 = 256u;

struct CrossParams {
    tables: u32,
    rows: u32,      // actual rows this step (≤ rows_cap)
    rows_cap: u32,  // rows each table's slab was allocated for
    dim: u32,       // F·K, the cross network's width
    flags: u32,     // bit 0: RELU (forward) / MASK (backward); bit 1: ACCUMULATE (backward)
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

const RELU_OR_MASK: u32 = 1u;
const ACCUMULATE: u32 = 2u;

// The slab address of the linear element `i` of the active [tables, rows, dim] region, or
// 0xffffffff past its end.
fn address(i: u32, p: CrossParams) -> u32 {
    let per_table = p.rows * p.dim;
    if i >= p.tables * per_table {
        return 0xffffffffu;
    }
    let t = i / per_table;
    let rest = i - t * per_table;
    return t * p.rows_cap * p.dim + rest;
}

fn linear(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.x + wid.y * nwg.x) * WG + lid;
}

// ---- forward: bindings 0 x0, 1 z, 2 xl (read), 3 x_next (read_write), 4 params ----
@group(0) @binding(0) var<storage, read> f_x0: array<f32>;
@group(0) @binding(1) var<storage, read> f_z: array<f32>;
@group(0) @binding(2) var<storage, read> f_xl: array<f32>;
@group(0) @binding(3) var<storage, read_write> f_next: array<f32>;
@group(0) @binding(4) var<uniform> f_params: CrossParams;

@compute @workgroup_size(WG)
fn cross_forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let p = f_params;
    let a = address(linear(wid, nwg, lid), p);
    if a == 0xffffffffu {
        return;
    }
    var v = fma(f_x0[a], f_z[a], f_xl[a]);
    if (p.flags & RELU_OR_MASK) != 0u {
        v = max(v, 0.0);
    }
    f_next[a] = v;
}

// ---- backward: bindings 0 g_in, 1 x0, 2 z, 3 y (read), 4 u, 5 g_out, 6 dx0 (read_write), 7 params ----
@group(0) @binding(0) var<storage, read> b_g: array<f32>;
@group(0) @binding(1) var<storage, read> b_x0: array<f32>;
@group(0) @binding(2) var<storage, read> b_z: array<f32>;
@group(0) @binding(3) var<storage, read> b_y: array<f32>;
@group(0) @binding(4) var<storage, read_write> b_u: array<f32>;
@group(0) @binding(5) var<storage, read_write> b_gout: array<f32>;
@group(0) @binding(6) var<storage, read_write> b_dx0: array<f32>;
@group(0) @binding(7) var<uniform> b_params: CrossParams;

@compute @workgroup_size(WG)
fn cross_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let p = b_params;
    let a = address(linear(wid, nwg, lid), p);
    if a == 0xffffffffu {
        return;
    }
    var g = b_g[a];
    if (p.flags & RELU_OR_MASK) != 0u && !(b_y[a] > 0.0) {
        g = 0.0;
    }
    b_u[a] = b_x0[a] * g;
    b_gout[a] = g;
    var dx = g * b_z[a];
    if (p.flags & ACCUMULATE) != 0u {
        dx = dx + b_dx0[a];
    }
    b_dx0[a] = dx;
}

// ---- finish: bindings 0 g0 (read), 1 dx0 (read_write), 2 params ----
@group(0) @binding(0) var<storage, read> e_g0: array<f32>;
@group(0) @binding(1) var<storage, read_write> e_dx0: array<f32>;
@group(0) @binding(2) var<uniform> e_params: CrossParams;

@compute @workgroup_size(WG)
fn cross_finish(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let p = e_params;
    let a = address(linear(wid, nwg, lid), p);
    if a == 0xffffffffu {
        return;
    }
    e_dx0[a] = e_dx0[a] + e_g0[a];
}
