//! Launchers of `combine.wgsl`: the M tables' outputs `[M, rows_cap, cols]` combined into one tensor
//! (the mean, `[rows_cap, cols]`, or the concatenation, `[rows_cap, M·cols]`) and the backward of
//! each. One dispatch per call; the mean sums m = 0..M−1 in order.

use super::check_len;
use super::norm::check_shape;
use crate::error::Result;
use crate::gpu::{rows_field, Access, Gpu, Grid, Kernel, Launch, Uniform};
use crate::shaders;

/// Invocations per workgroup (the WGSL `WG` override).
pub const COMBINE_WG: u32 = 64;

/// Mirrors `CombineParams` in `combine.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct CombineParams {
    /// Tables M.
    pub tables: u32,
    /// Rows of this step (≤ `rows_cap`).
    pub rows: u32,
    /// Row stride of a table's slab (and of the combined tensor).
    pub rows_cap: u32,
    /// Columns per table.
    pub cols: u32,
}

rows_field!(CombineParams);

/// How the tables are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CombineKind {
    /// h = (1/M) Σ_m x_m, `[rows_cap, cols]`.
    Mean,
    /// h = [x_0 | x_1 | …], `[rows_cap, M·cols]`.
    Concat,
}

const BINDINGS: &[Access] = &[Access::Read, Access::ReadWrite, Access::Uniform];

/// Mean over tables, forward.
pub const COMBINE_MEAN: Kernel = Kernel::new(shaders::COMBINE, "combine_mean", BINDINGS);
/// Mean over tables, backward (g / M to every table).
pub const COMBINE_MEAN_BACKWARD: Kernel =
    Kernel::new(shaders::COMBINE, "combine_mean_backward", BINDINGS);
/// Concatenation of the tables along columns.
pub const CONCAT: Kernel = Kernel::new(shaders::COMBINE, "concat", BINDINGS);
/// The split back into tables.
pub const CONCAT_BACKWARD: Kernel = Kernel::new(shaders::COMBINE, "concat_backward", BINDINGS);

/// The caller's buffers of a [`Combine`] (f32).
pub struct CombineBuffers<'a> {
    /// Per-table input `[M, rows_cap, cols]`.
    pub x: &'a wgpu::Buffer,
    /// Combined output: `[rows_cap, cols]` (mean) or `[rows_cap, M·cols]` (concat).
    pub h: &'a wgpu::Buffer,
    /// Gradient of the combined output, shaped as `h`.
    pub grad_h: &'a wgpu::Buffer,
    /// Gradient of the input, `[M, rows_cap, cols]`.
    pub grad_x: &'a wgpu::Buffer,
}

/// A prepared combine across M tables.
pub struct Combine {
    kind: CombineKind,
    params: CombineParams,
    uniform: Uniform<CombineParams>,
    forward: Launch,
    backward: Launch,
}

impl Combine {
    /// Validates the shape and buffers, compiles both pipelines and binds them; rows start at
    /// `rows_cap`.
    pub fn new(
        gpu: &Gpu,
        kind: CombineKind,
        tables: u32,
        rows_cap: u32,
        cols: u32,
        b: &CombineBuffers,
    ) -> Result<Self> {
        let (fwd, bwd) = match kind {
            CombineKind::Mean => (COMBINE_MEAN, COMBINE_MEAN_BACKWARD),
            CombineKind::Concat => (CONCAT, CONCAT_BACKWARD),
        };
        let elems = check_shape(fwd.entry, tables, rows_cap, cols)?;
        let combined = match kind {
            CombineKind::Mean => rows_cap as u64 * cols as u64,
            CombineKind::Concat => elems,
        };
        for (what, buf, n) in [
            ("x", b.x, elems),
            ("grad_x", b.grad_x, elems),
            ("h", b.h, combined),
            ("grad_h", b.grad_h, combined),
        ] {
            check_len(fwd.entry, what, buf, n)?;
        }
        let params = CombineParams {
            tables,
            rows: rows_cap,
            rows_cap,
            cols,
        };
        let uniform = Uniform::new(gpu, "combine params", &params);
        let constants = [("WG", COMBINE_WG as f64)];
        let forward = gpu.pipeline(&fwd, &constants)?;
        let backward = gpu.pipeline(&bwd, &constants)?;
        let groups = |n: u64| Grid::Folded(n.div_ceil(COMBINE_WG as u64) as u32);
        Ok(Combine {
            forward: Launch::new(
                gpu,
                &forward,
                &[b.x, b.h, uniform.buffer()],
                groups(combined),
            )?,
            backward: Launch::new(
                gpu,
                &backward,
                &[b.grad_h, b.grad_x, uniform.buffer()],
                groups(elems),
            )?,
            kind,
            params,
            uniform,
        })
    }

    /// Sets this step's batch (≤ `rows_cap`); takes effect at the next submission.
    pub fn set_rows(&mut self, gpu: &Gpu, rows: u32) -> Result<()> {
        let entry = match self.kind {
            CombineKind::Mean => COMBINE_MEAN.entry,
            CombineKind::Concat => CONCAT.entry,
        };
        let cap = self.params.rows_cap;
        self.uniform
            .set_rows(gpu, entry, &mut self.params, rows, cap)
    }

    /// Mean or concatenation.
    pub fn kind(&self) -> CombineKind {
        self.kind
    }

    /// Records h from x.
    pub fn record_forward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.forward.record(gpu, pass);
    }

    /// Records dx from dh.
    pub fn record_backward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.backward.record(gpu, pass);
    }
}
