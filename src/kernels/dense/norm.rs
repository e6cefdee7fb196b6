//! Launchers of `norm.wgsl`: BatchNorm1d ([`BatchNorm`]) and LayerNorm ([`LayerNorm`]) over
//! table-batched activations `[tables, rows_cap, cols]`, forward and backward, every table in one
//! dispatch. γ, β and BN's statistics are `[tables, cols]`; LN's saved statistics `[tables, rows_cap]`.
//!
//! Edge batches (PyTorch refuses BN training on one row; these are defined instead):
//! - BN, `rows = 1`: x̂ = 0 so y = β; the running mean moves towards the row, the running variance
//!   is kept (the unbiased variance needs two rows); backward gives dx = 0, dγ = 0, dβ = g.
//! - BN and LN, `rows = 0`: nothing is normalised; BN keeps its running statistics and saves
//!   mean = inv_std = 0; backward writes dγ = dβ = 0 (sums over no rows), no dx.

use super::check_len;
use crate::error::{Error, Result};
use crate::gpu::{rows_field, Access, Gpu, Grid, Kernel, Launch, Uniform};
use crate::shaders;

/// Invocations per workgroup of every norm kernel (the WGSL `WG` override).
pub const NORM_WG: u32 = 64;

/// Mirrors `NormParams` in `norm.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct NormParams {
    /// Tables M.
    pub tables: u32,
    /// Rows of this step (≤ `rows_cap`).
    pub rows: u32,
    /// Row stride of a table's slab.
    pub rows_cap: u32,
    /// Columns.
    pub cols: u32,
    /// BN running-statistics momentum (PyTorch convention).
    pub momentum: f32,
    /// Added to the variance.
    pub eps: f32,
    /// Padding to 16 bytes.
    pub _pad: [u32; 2],
}

rows_field!(NormParams);

use Access::{Read as R, ReadWrite as W, Uniform as U};
const FORWARD: &[Access] = &[R, R, R, W, W, W, W, W, U];
const BACKWARD: &[Access] = &[R, R, R, R, R, W, W, W, U];

/// BatchNorm training forward.
pub const BN_TRAIN: Kernel = Kernel::new(shaders::NORM, "bn_train", FORWARD);
/// BatchNorm inference forward (running statistics).
pub const BN_EVAL: Kernel = Kernel::new(shaders::NORM, "bn_eval", FORWARD);
/// BatchNorm backward: dx, dγ, dβ.
pub const BN_BACKWARD: Kernel = Kernel::new(shaders::NORM, "bn_backward", BACKWARD);
/// LayerNorm forward.
pub const LN_FORWARD: Kernel = Kernel::new(shaders::NORM, "ln_forward", &[R, R, R, W, W, W, U]);
/// LayerNorm backward, dx (one invocation per row).
pub const LN_BACKWARD_DX: Kernel = Kernel::new(shaders::NORM, "ln_backward_dx", BACKWARD);
/// LayerNorm backward, dγ and dβ (one invocation per column).
pub const LN_BACKWARD_PARAMS: Kernel = Kernel::new(shaders::NORM, "ln_backward_params", BACKWARD);

/// `Err` unless `tables, cols ≥ 1` and `tables · rows_cap · cols` elements index in u32.
pub(crate) fn check_shape(
    kernel: &'static str,
    tables: u32,
    rows_cap: u32,
    cols: u32,
) -> Result<u64> {
    let elems = tables as u64 * rows_cap as u64 * cols as u64;
    if tables == 0 || cols == 0 || elems > u32::MAX as u64 {
        return Err(Error::kernel(
            kernel,
            format!("tables {tables} × rows_cap {rows_cap} × cols {cols}: need tables, cols ≥ 1 and at most 2³² − 1 elements"),
        ));
    }
    Ok(elems)
}

/// `kernel` over `bufs` on a fixed 3-D grid (checked against the device's limit).
fn launch(gpu: &Gpu, kernel: &Kernel, bufs: &[&wgpu::Buffer], grid: [u32; 3]) -> Result<Launch> {
    let pipeline = gpu.pipeline(kernel, &[("WG", NORM_WG as f64)])?;
    pipeline.check_grid(gpu, grid)?;
    Launch::new(gpu, &pipeline, bufs, Grid::Dims(grid))
}

/// Shape and hyper-parameters of a [`BatchNorm`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchNormSpec {
    /// Tables M.
    pub tables: u32,
    /// Largest batch the buffers hold.
    pub rows_cap: u32,
    /// Features normalised (columns).
    pub cols: u32,
    /// Running-statistics momentum, in [0, 1].
    pub momentum: f32,
    /// Added to the variance, > 0.
    pub eps: f32,
}

impl BatchNormSpec {
    /// PyTorch's defaults: momentum 0.1, eps 1e-5.
    pub fn new(tables: u32, rows_cap: u32, cols: u32) -> Self {
        BatchNormSpec {
            tables,
            rows_cap,
            cols,
            momentum: 0.1,
            eps: 1e-5,
        }
    }
}

/// The caller's buffers of a [`BatchNorm`] (f32; `[M, rows_cap, cols]` activations, `[M, cols]`
/// parameters and statistics).
pub struct BatchNormBuffers<'a> {
    /// Input x `[M, rows_cap, cols]`.
    pub x: &'a wgpu::Buffer,
    /// Output y `[M, rows_cap, cols]`.
    pub y: &'a wgpu::Buffer,
    /// Scale γ `[M, cols]`.
    pub gamma: &'a wgpu::Buffer,
    /// Shift β `[M, cols]`.
    pub beta: &'a wgpu::Buffer,
    /// Running mean `[M, cols]`, updated by training forwards.
    pub running_mean: &'a wgpu::Buffer,
    /// Running (unbiased) variance `[M, cols]`, updated by training forwards.
    pub running_var: &'a wgpu::Buffer,
    /// Batch mean saved for backward `[M, cols]`.
    pub mean: &'a wgpu::Buffer,
    /// 1 / sqrt(biased batch variance + eps) saved for backward `[M, cols]`.
    pub inv_std: &'a wgpu::Buffer,
    /// Upstream gradient dy `[M, rows_cap, cols]`.
    pub grad_y: &'a wgpu::Buffer,
    /// dx `[M, rows_cap, cols]`.
    pub grad_x: &'a wgpu::Buffer,
    /// dγ `[M, cols]` (overwritten).
    pub grad_gamma: &'a wgpu::Buffer,
    /// dβ `[M, cols]` (overwritten).
    pub grad_beta: &'a wgpu::Buffer,
}

/// A prepared BatchNorm1d over M tables: one dispatch per call, whatever M.
pub struct BatchNorm {
    spec: BatchNormSpec,
    params: NormParams,
    uniform: Uniform<NormParams>,
    train: Launch,
    eval: Launch,
    backward: Launch,
}

impl BatchNorm {
    /// Validates `spec` and the buffer sizes, compiles the pipelines and binds the buffers; rows
    /// start at `rows_cap`.
    pub fn new(gpu: &Gpu, spec: BatchNormSpec, b: &BatchNormBuffers) -> Result<Self> {
        let name = BN_TRAIN.entry;
        let elems = check_shape(name, spec.tables, spec.rows_cap, spec.cols)?;
        let valid = (0.0..=1.0).contains(&spec.momentum) && spec.eps > 0.0 && spec.eps.is_finite();
        if !valid {
            return Err(Error::kernel(
                name,
                format!(
                    "momentum {} must be in [0, 1], eps {} positive",
                    spec.momentum, spec.eps
                ),
            ));
        }
        let per_col = spec.tables as u64 * spec.cols as u64;
        for (what, buf, n) in [
            ("x", b.x, elems),
            ("y", b.y, elems),
            ("grad_y", b.grad_y, elems),
            ("grad_x", b.grad_x, elems),
            ("gamma", b.gamma, per_col),
            ("beta", b.beta, per_col),
            ("running_mean", b.running_mean, per_col),
            ("running_var", b.running_var, per_col),
            ("mean", b.mean, per_col),
            ("inv_std", b.inv_std, per_col),
            ("grad_gamma", b.grad_gamma, per_col),
            ("grad_beta", b.grad_beta, per_col),
        ] {
            check_len(name, what, buf, n)?;
        }
        let params = NormParams {
            tables: spec.tables,
            rows: spec.rows_cap,
            rows_cap: spec.rows_cap,
            cols: spec.cols,
            momentum: spec.momentum,
            eps: spec.eps,
            _pad: [0; 2],
        };
        let uniform = Uniform::new(gpu, "batchnorm params", &params);
        let grid = [spec.cols.div_ceil(NORM_WG), 1, spec.tables];
        let fwd = [
            b.x,
            b.gamma,
            b.beta,
            b.y,
            b.mean,
            b.inv_std,
            b.running_mean,
            b.running_var,
            uniform.buffer(),
        ];
        let bwd = [
            b.x,
            b.gamma,
            b.grad_y,
            b.mean,
            b.inv_std,
            b.grad_x,
            b.grad_gamma,
            b.grad_beta,
            uniform.buffer(),
        ];
        Ok(BatchNorm {
            train: launch(gpu, &BN_TRAIN, &fwd, grid)?,
            eval: launch(gpu, &BN_EVAL, &fwd, grid)?,
            backward: launch(gpu, &BN_BACKWARD, &bwd, grid)?,
            spec,
            params,
            uniform,
        })
    }

    /// Sets this step's batch (≤ `rows_cap`); takes effect at the next submission.
    pub fn set_rows(&mut self, gpu: &Gpu, rows: u32) -> Result<()> {
        let cap = self.spec.rows_cap;
        self.uniform
            .set_rows(gpu, BN_TRAIN.entry, &mut self.params, rows, cap)
    }

    /// The spec it was built with.
    pub fn spec(&self) -> &BatchNormSpec {
        &self.spec
    }

    /// Records the training forward: y, saved mean and inv_std, running statistics updated.
    pub fn record_train(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.train.record(gpu, pass);
    }

    /// Records the inference forward from the running statistics (nothing else written).
    pub fn record_eval(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.eval.record(gpu, pass);
    }

    /// Records the backward of the last training forward: dx, dγ, dβ.
    pub fn record_backward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.backward.record(gpu, pass);
    }
}

/// Shape of a [`LayerNorm`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerNormSpec {
    /// Tables M.
    pub tables: u32,
    /// Largest batch the buffers hold.
    pub rows_cap: u32,
    /// Normalised width (the last dimension).
    pub cols: u32,
    /// Added to the variance, > 0.
    pub eps: f32,
}

impl LayerNormSpec {
    /// PyTorch's default eps 1e-5.
    pub fn new(tables: u32, rows_cap: u32, cols: u32) -> Self {
        LayerNormSpec {
            tables,
            rows_cap,
            cols,
            eps: 1e-5,
        }
    }
}

/// The caller's buffers of a [`LayerNorm`] (f32).
pub struct LayerNormBuffers<'a> {
    /// Input x `[M, rows_cap, cols]`.
    pub x: &'a wgpu::Buffer,
    /// Output y `[M, rows_cap, cols]`.
    pub y: &'a wgpu::Buffer,
    /// Scale γ `[M, cols]`.
    pub gamma: &'a wgpu::Buffer,
    /// Shift β `[M, cols]`.
    pub beta: &'a wgpu::Buffer,
    /// Row means saved for backward `[M, rows_cap]`.
    pub mean: &'a wgpu::Buffer,
    /// Row 1 / sqrt(var + eps) saved for backward `[M, rows_cap]`.
    pub inv_std: &'a wgpu::Buffer,
    /// Upstream gradient dy `[M, rows_cap, cols]`.
    pub grad_y: &'a wgpu::Buffer,
    /// dx `[M, rows_cap, cols]`.
    pub grad_x: &'a wgpu::Buffer,
    /// dγ `[M, cols]` (overwritten).
    pub grad_gamma: &'a wgpu::Buffer,
    /// dβ `[M, cols]` (overwritten).
    pub grad_beta: &'a wgpu::Buffer,
}

/// A prepared LayerNorm over M tables: forward one dispatch, backward two (dx by rows, dγ and dβ by
/// columns), whatever M.
pub struct LayerNorm {
    spec: LayerNormSpec,
    params: NormParams,
    uniform: Uniform<NormParams>,
    forward: Launch,
    backward_dx: Launch,
    backward_params: Launch,
}

impl LayerNorm {
    /// Validates `spec` and the buffer sizes, compiles the pipelines and binds the buffers; rows
    /// start at `rows_cap`.
    pub fn new(gpu: &Gpu, spec: LayerNormSpec, b: &LayerNormBuffers) -> Result<Self> {
        let name = LN_FORWARD.entry;
        let elems = check_shape(name, spec.tables, spec.rows_cap, spec.cols)?;
        if !(spec.eps > 0.0 && spec.eps.is_finite()) {
            return Err(Error::kernel(
                name,
                format!("eps {} must be positive", spec.eps),
            ));
        }
        let per_col = spec.tables as u64 * spec.cols as u64;
        let per_row = spec.tables as u64 * spec.rows_cap as u64;
        for (what, buf, n) in [
            ("x", b.x, elems),
            ("y", b.y, elems),
            ("grad_y", b.grad_y, elems),
            ("grad_x", b.grad_x, elems),
            ("gamma", b.gamma, per_col),
            ("beta", b.beta, per_col),
            ("mean", b.mean, per_row),
            ("inv_std", b.inv_std, per_row),
            ("grad_gamma", b.grad_gamma, per_col),
            ("grad_beta", b.grad_beta, per_col),
        ] {
            check_len(name, what, buf, n)?;
        }
        let params = NormParams {
            tables: spec.tables,
            rows: spec.rows_cap,
            rows_cap: spec.rows_cap,
            cols: spec.cols,
            momentum: 0.0,
            eps: spec.eps,
            _pad: [0; 2],
        };
        let uniform = Uniform::new(gpu, "layernorm params", &params);
        let by_rows = [spec.rows_cap.div_ceil(NORM_WG), 1, spec.tables];
        let by_cols = [spec.cols.div_ceil(NORM_WG), 1, spec.tables];
        let fwd = [
            b.x,
            b.gamma,
            b.beta,
            b.y,
            b.mean,
            b.inv_std,
            uniform.buffer(),
        ];
        let bwd = [
            b.x,
            b.gamma,
            b.grad_y,
            b.mean,
            b.inv_std,
            b.grad_x,
            b.grad_gamma,
            b.grad_beta,
            uniform.buffer(),
        ];
        Ok(LayerNorm {
            forward: launch(gpu, &LN_FORWARD, &fwd, by_rows)?,
            backward_dx: launch(gpu, &LN_BACKWARD_DX, &bwd, by_rows)?,
            backward_params: launch(gpu, &LN_BACKWARD_PARAMS, &bwd, by_cols)?,
            spec,
            params,
            uniform,
        })
    }

    /// Sets this step's batch (≤ `rows_cap`); takes effect at the next submission.
    pub fn set_rows(&mut self, gpu: &Gpu, rows: u32) -> Result<()> {
        let cap = self.spec.rows_cap;
        self.uniform
            .set_rows(gpu, LN_FORWARD.entry, &mut self.params, rows, cap)
    }

    /// The spec it was built with.
    pub fn spec(&self) -> &LayerNormSpec {
        &self.spec
    }

    /// Records the forward: y and the saved row statistics.
    pub fn record_forward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.forward.record(gpu, pass);
    }

    /// Records the backward (two dispatches): dx, then dγ and dβ.
    pub fn record_backward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.backward_dx.record(gpu, pass);
        self.backward_params.record(gpu, pass);
    }
}
