// norm.wgsl — BatchNorm1d and LayerNorm over table-batched tensors [tables, rows_cap, cols].
//
// Launcher: src/kernels/dense/norm.rs. Tests: kernels_tests/dense_norm.rs (BatchNorm) and
// kernels_tests/dense_layernorm.rs.
//
// BatchNorm normalises each (table, column) over the batch rows; LayerNorm each (table, row) over its
// cols. γ, β and the statistics are per table: [tables, cols] (BN) and the saved LN statistics
// [tables, rows_cap]. x̂ = (x − mean) · inv_std, inv_std = 1 / sqrt(var_biased + eps), y = γ·x̂ + β.
//   bn_train:      batch mean and biased variance; saves mean, inv_std; running stats updated as
//                  PyTorch does: r = (1 − momentum)·r + momentum·stat, the variance unbiased.
//                  rows = 1: x̂ = 0 (y = β), running mean updated, running var kept (n − 1 = 0).
//                  rows = 0: nothing normalised, running stats kept, saved mean = inv_std = 0.
//   bn_eval:       y = γ·(x − running_mean)·inverseSqrt(running_var + eps) + β.
//   bn_backward:   dγ = Σ g·x̂, dβ = Σ g (overwritten; 0 when rows = 0),
//                  dx = γ·inv_std·(g − mean(g) − x̂·mean(g·x̂)).
//   ln_forward:    per row; saves mean, inv_std per (table, row).
//   ln_backward_dx:     dx = inv_std·(γg − mean_c(γg) − x̂·mean_c(γg·x̂)) per row.
//   ln_backward_params: dγ[c] = Σ_rows g·x̂, dβ[c] = Σ_rows g per (table, column).
// Every sum runs serially in index order inside one invocation: deterministic, no atomics.
//
// Bindings — forward (bn_train, bn_eval, ln_forward): 0 x, 1 γ, 2 β (read); 3 y, 4 mean, 5 inv_std,
//   6 running_mean, 7 running_var (read_write; bn_eval only reads 6, 7); 8 params. ln_forward stops
//   at 5 and takes its params at 6.
// Backward (bn_backward, ln_backward_dx, ln_backward_params): 0 x, 1 γ, 2 g, 3 mean, 4 inv_std
//   (read); 5 dx, 6 dγ, 7 dβ (read_write); 8 params.
// Geometry: one invocation per (table, column) for the BN kernels and ln_backward_params, per
//   (table, row) for ln_forward / ln_backward_dx; x of the grid covers columns (rows_cap rows), z the
//   tables. Adjacent invocations of the column kernels read adjacent words of a row (coalesced).
//   The row kernels walk a row serially, so their reads stride by cols across invocations: cheap
//   on lavapipe; a workgroup-per-row variant would coalesce them on discrete GPUs.

override WG: u32 = 64u; // columns (or rows) per workgroup; lavapipe runs 8-wide, GPUs 32–64

struct NormParams {
    tables: u32,
    rows: u32,     // actual batch this step, ≤ rows_cap
    rows_cap: u32, // row stride of a table's slab
    cols: u32,
    momentum: f32, // BN running-statistics momentum (PyTorch convention)
    eps: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> gamma: array<f32>;
@group(0) @binding(2) var<storage, read> beta: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> mean: array<f32>;
@group(0) @binding(5) var<storage, read_write> inv_std: array<f32>;
@group(0) @binding(6) var<storage, read_write> running_mean: array<f32>;
@group(0) @binding(7) var<storage, read_write> running_var: array<f32>;
@group(0) @binding(8) var<uniform> params: NormParams;
@group(0) @binding(6) var<uniform> ln_params: NormParams;
// Backward aliases of bindings 2..7 (each entry point uses one set only).
@group(0) @binding(2) var<storage, read> grad_y: array<f32>;
@group(0) @binding(3) var<storage, read> saved_mean: array<f32>;
@group(0) @binding(4) var<storage, read> saved_inv_std: array<f32>;
@group(0) @binding(5) var<storage, read_write> grad_x: array<f32>;
@group(0) @binding(6) var<storage, read_write> grad_gamma: array<f32>;
@group(0) @binding(7) var<storage, read_write> grad_beta: array<f32>;

@compute @workgroup_size(WG)
fn bn_train(@builtin(global_invocation_id) gid: vec3<u32>) {
    let p = params;
    let c = gid.x;
    if c >= p.cols { return; }
    let tc = gid.z * p.cols + c;
    let base = gid.z * p.rows_cap * p.cols + c;
    let n = p.rows;
    if n == 0u {
        mean[tc] = 0.0;
        inv_std[tc] = 0.0;
        return;
    }
    var s = 0.0;
    for (var r = 0u; r < n; r++) { s += x[base + r * p.cols]; }
    let mu = s / f32(n);
    // Two passes (sum of squared deviations) rather than E[x²] − E[x]²: no cancellation.
    var q = 0.0;
    for (var r = 0u; r < n; r++) {
        let d = x[base + r * p.cols] - mu;
        q += d * d;
    }
    let is = inverseSqrt(q / f32(n) + p.eps);
    let g = gamma[tc];
    let b = beta[tc];
    for (var r = 0u; r < n; r++) {
        let i = base + r * p.cols;
        y[i] = (x[i] - mu) * is * g + b;
    }
    mean[tc] = mu;
    inv_std[tc] = is;
    running_mean[tc] = (1.0 - p.momentum) * running_mean[tc] + p.momentum * mu;
    if n > 1u {
        running_var[tc] = (1.0 - p.momentum) * running_var[tc] + p.momentum * (q / f32(n - 1u));
    }
}

@compute @workgroup_size(WG)
fn bn_eval(@builtin(global_invocation_id) gid: vec3<u32>) {
    let p = params;
    let c = gid.x;
    if c >= p.cols { return; }
    let tc = gid.z * p.cols + c;
    let base = gid.z * p.rows_cap * p.cols + c;
    let mu = running_mean[tc];
    let k = gamma[tc] * inverseSqrt(running_var[tc] + p.eps);
    let b = beta[tc];
    for (var r = 0u; r < p.rows; r++) {
        let i = base + r * p.cols;
        y[i] = (x[i] - mu) * k + b;
    }
}

@compute @workgroup_size(WG)
fn bn_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let p = params;
    let c = gid.x;
    if c >= p.cols { return; }
    let tc = gid.z * p.cols + c;
    let base = gid.z * p.rows_cap * p.cols + c;
    let n = p.rows;
    let mu = saved_mean[tc];
    let is = saved_inv_std[tc];
    var sg = 0.0;
    var sgx = 0.0;
    for (var r = 0u; r < n; r++) {
        let i = base + r * p.cols;
        let g = grad_y[i];
        sg += g;
        sgx += g * ((x[i] - mu) * is);
    }
    grad_gamma[tc] = sgx;
    grad_beta[tc] = sg;
    if n == 0u { return; }
    let k = gamma[tc] * is;
    let mg = sg / f32(n);
    let mgx = sgx / f32(n);
    for (var r = 0u; r < n; r++) {
        let i = base + r * p.cols;
        grad_x[i] = k * (grad_y[i] - mg - (x[i] - mu) * is * mgx);
    }
}

@compute @workgroup_size(WG)
fn ln_forward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let p = ln_params;
    let r = gid.x;
    if r >= p.rows { return; }
    let tr = gid.z * p.rows_cap + r;
    let base = tr * p.cols;
    let tc = gid.z * p.cols;
    var s = 0.0;
    for (var c = 0u; c < p.cols; c++) { s += x[base + c]; }
    let mu = s / f32(p.cols);
    var q = 0.0;
    for (var c = 0u; c < p.cols; c++) {
        let d = x[base + c] - mu;
        q += d * d;
    }
    let is = inverseSqrt(q / f32(p.cols) + p.eps);
    for (var c = 0u; c < p.cols; c++) {
        y[base + c] = (x[base + c] - mu) * is * gamma[tc + c] + beta[tc + c];
    }
    mean[tr] = mu;
    inv_std[tr] = is;
}

@compute @workgroup_size(WG)
fn ln_backward_dx(@builtin(global_invocation_id) gid: vec3<u32>) {
    let p = params;
    let r = gid.x;
    if r >= p.rows { return; }
    let tr = gid.z * p.rows_cap + r;
    let base = tr * p.cols;
    let tc = gid.z * p.cols;
    let mu = saved_mean[tr];
    let is = saved_inv_std[tr];
    var s1 = 0.0;
    var s2 = 0.0;
    for (var c = 0u; c < p.cols; c++) {
        let gg = gamma[tc + c] * grad_y[base + c];
        s1 += gg;
        s2 += gg * ((x[base + c] - mu) * is);
    }
    let m1 = s1 / f32(p.cols);
    let m2 = s2 / f32(p.cols);
    for (var c = 0u; c < p.cols; c++) {
        let gg = gamma[tc + c] * grad_y[base + c];
        grad_x[base + c] = is * (gg - m1 - (x[base + c] - mu) * is * m2);
    }
}

@compute @workgroup_size(WG)
fn ln_backward_params(@builtin(global_invocation_id) gid: vec3<u32>) {
    let p = params;
    let c = gid.x;
    if c >= p.cols { return; }
    var sg = 0.0;
    var sgx = 0.0;
    for (var r = 0u; r < p.rows; r++) {
        let tr = gid.z * p.rows_cap + r;
        let g = grad_y[tr * p.cols + c];
        sg += g;
        sgx += g * ((x[tr * p.cols + c] - saved_mean[tr]) * saved_inv_std[tr]);
    }
    grad_gamma[gid.z * p.cols + c] = sgx;
    grad_beta[gid.z * p.cols + c] = sg;
}
