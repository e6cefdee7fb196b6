// optim.wgsl — dense optimizers over flat buffers, with global-norm gradient clipping.
//
// Launcher: src/kernels/dense/optim.rs. Tests: kernels_tests/dense_optim.rs.
//
// The graph compiler places every dense tensor of a model at an offset in one flat f32 buffer of
// parameters; the gradients sit at the same offsets in a second buffer and the optimizer state in a
// third, planar (Adam: m at [0, len), v at [len, 2·len); SGD: the momentum buffer at [0, len)), so one
// dispatch updates the whole model and a checkpoint slices each state tensor like its parameter.
//
// norm_partials  partials[w] = Σ g[i]² for i = w·RED_WG + lid + k·partial_count·RED_WG, k = 0, 1, … (each
//                invocation in index order), then a fixed tree over the workgroup;
// norm_finish    one workgroup: total = sqrt(Σ partials), fixed order; norm[0] = total,
//                norm[1] = min(1, max_norm / (total + 1e-6))      (torch.nn.utils.clip_grad_norm_)
// dense_step     one invocation per element: g = grad[i] (· norm[1] when CLIP), then per OPTIMIZER
//   0 Adam       g += wd·p; m = β1 m + (1 − β1) g; v = β2 v + (1 − β2) g²;
//                p −= step_size · m / (sqrt(v) · inv_sqrt_bc2 + eps)               (torch.optim.Adam)
//   1 AdamW      p ·= decay (= 1 − lr·wd), then Adam without the L2 term          (torch.optim.AdamW)
//   2 SGD        g += wd·p; b = μ b + g; p −= lr · b             (torch.optim.SGD, dampening 0)
//   3 Nesterov   as SGD with p −= lr · (g + μ b)
// On step 1 (`first`) the state's old contents are ignored (torch starts from m = v = 0 and b = g), so
// a fresh state buffer needs no clearing. Gradients are only read: clipping scales them on the fly.
//
// Bindings (one layout for all three entry points): 0 grad (read), 1 param, 2 state, 3 partials,
// 4 norm (read_write), 5 params (uniform).
// Geometry: dense_step one element per invocation, WG per workgroup; norm_partials `partial_count` workgroups
// of RED_WG; norm_finish one workgroup of RED_WG. Grids fold into (x, y) past 65,535 (gpu::grid).

override WG: u32 = 256u;      // dense_step: memory-bound, wide enough to keep memory pipes busy
override RED_WG: u32 = 256u;  // reductions: a power of two (the tree halves it)
override OPTIMIZER: u32 = 0u; // 0 Adam, 1 AdamW, 2 SGD momentum, 3 SGD Nesterov
override CLIP: u32 = 0u;      // 1: scale gradients by norm[1]

const ADAMW: u32 = 1u;
const SGD: u32 = 2u;
const NESTEROV: u32 = 3u;
const CLIP_EPS: f32 = 1e-6; // torch's guard against a zero norm

struct OptimParams {
    len: u32,             // elements of param and grad
    partial_count: u32,   // partial sums written by norm_partials (its workgroup count)
    first: u32,           // 1 on step 1: ignore the state's old contents
    max_norm: f32,        // clipping threshold
    lr: f32,
    weight_decay: f32,    // L2 term added to g (Adam, SGD); 0 for AdamW
    decay: f32,           // AdamW: 1 − lr·wd; 1 otherwise
    beta1: f32,
    beta2: f32,
    one_minus_beta1: f32, // from the host in f64: 1 − f32(β) would lose digits
    one_minus_beta2: f32,
    eps: f32,
    step_size: f32,       // lr / (1 − β1^step)
    inv_sqrt_bc2: f32,    // 1 / sqrt(1 − β2^step)
    momentum: f32,        // SGD μ
    _pad0: u32,
}

@group(0) @binding(0) var<storage, read> grad: array<f32>;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read_write> state: array<f32>;
@group(0) @binding(3) var<storage, read_write> partials: array<f32>;
@group(0) @binding(4) var<storage, read_write> norm: array<f32>;
@group(0) @binding(5) var<uniform> params: OptimParams;

var<workgroup> sums: array<f32, RED_WG>;

// Sums sums[0..RED_WG) by halving, a fixed order; every invocation gets the total.
fn tree_sum(lid: u32) -> f32 {
    for (var half = RED_WG / 2u; half > 0u; half >>= 1u) {
        workgroupBarrier();
        if lid < half {
            sums[lid] += sums[lid + half];
        }
    }
    return workgroupUniformLoad(&sums[0]);
}

@compute @workgroup_size(RED_WG)
fn norm_partials(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let w = wid.x + wid.y * nwg.x;
    if w >= params.partial_count {
        return; // the padding of a folded grid: uniform per workgroup
    }
    var s = 0.0;
    let stride = params.partial_count * RED_WG;
    for (var i = w * RED_WG + lid; i < params.len; i += stride) {
        let g = grad[i];
        s += g * g;
    }
    sums[lid] = s;
    let total = tree_sum(lid);
    if lid == 0u {
        partials[w] = total;
    }
}

@compute @workgroup_size(RED_WG)
fn norm_finish(@builtin(local_invocation_index) lid: u32) {
    var s = 0.0;
    for (var i = lid; i < params.partial_count; i += RED_WG) {
        s += partials[i];
    }
    sums[lid] = s;
    let total = sqrt(tree_sum(lid));
    if lid == 0u {
        norm[0] = total;
        norm[1] = min(1.0, params.max_norm / (total + CLIP_EPS));
    }
}

@compute @workgroup_size(WG)
fn dense_step(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    if i >= params.len {
        return;
    }
    var g = grad[i];
    if CLIP != 0u {
        g *= norm[1];
    }
    var p = param[i];
    let fresh = params.first != 0u;
    if OPTIMIZER >= SGD {
        g += params.weight_decay * p;
        var b = g;
        if !fresh {
            b = params.momentum * state[i] + g;
        }
        state[i] = b;
        var d = b;
        if OPTIMIZER == NESTEROV {
            d = g + params.momentum * b;
        }
        p -= params.lr * d;
    } else {
        if OPTIMIZER == ADAMW {
            p *= params.decay;
        } else {
            g += params.weight_decay * p;
        }
        var m = 0.0;
        var v = 0.0;
        if !fresh {
            m = state[i];
            v = state[params.len + i];
        }
        m = params.beta1 * m + params.one_minus_beta1 * g;
        v = params.beta2 * v + params.one_minus_beta2 * g * g;
        state[i] = m;
        state[params.len + i] = v;
        p -= params.step_size * (m / (sqrt(v) * params.inv_sqrt_bc2 + params.eps));
    }
    param[i] = p;
}
