//! Launchers of `gate.wgsl`: the learned gate that combines the M tables' outputs per sample (an
//! MMoE-style softmax gate, the alternative to the mean of [`combine`](super::combine)).
//!
//! With table outputs `h` `[M, rows_cap, W]` and gate logits `a` `[rows_cap, M]` (the caller
//! computes `a = concat(h) · W_gᵀ + b_g` with a GEMM and backpropagates `da` through it):
//!
//! - forward: `g[b, :] = softmax(a[b, :])` (max-shifted; saved `[rows_cap, M]`),
//!   `out[b, j] = Σ_m g[b, m] · h[m, b, j]`;
//! - backward from `d_out`: `dh[m, b, j] = g[b, m] · d_out[b, j]`, and with
//!   `dg[b, m] = Σ_j d_out[b, j] · h[m, b, j]`, `da[b, m] = g[b, m] · (dg[b, m] − Σ_k g[b, k] ·
//!   dg[b, k])`. Both gradients are overwritten.
//!
//! Dispatches, whatever M: two forward (the softmax, one invocation per row; the gated sum, one
//! per output element), one backward (one workgroup per row, its reductions in a fixed order, no
//! atomics). Rows past `rows` are not touched.

use super::check_len;
use super::norm::check_shape;
use crate::error::{Error, Result};
use crate::gpu::{rows_field, Access, Gpu, Grid, Kernel, Launch, Uniform};
use crate::shaders;

/// Invocations per workgroup (the WGSL `WG` override).
pub const GATE_WG: u32 = 64;

/// Most tables the gate takes (`MAX_TABLES` in `gate.wgsl`: the backward keeps a row's `dg` in
/// workgroup memory).
pub const GATE_MAX_TABLES: u32 = 256;

/// Mirrors `GateParams` in `gate.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct GateParams {
    /// Tables M.
    pub tables: u32,
    /// Rows of this step (≤ `rows_cap`).
    pub rows: u32,
    /// Row stride of a table's slab.
    pub rows_cap: u32,
    /// Columns W per table (and of the output).
    pub cols: u32,
}

rows_field!(GateParams);

const BINDINGS: &[Access] = &[
    Access::Read,
    Access::Read,
    Access::Read,
    Access::ReadWrite,
    Access::ReadWrite,
    Access::ReadWrite,
    Access::ReadWrite,
    Access::Uniform,
];

/// Gated sum `out = Σ_m g_m h_m` from the saved gate (forward, second dispatch).
pub const GATE_FORWARD: Kernel = Kernel::new(shaders::GATE, "gate_forward", BINDINGS);

/// Softmax of each row's logits into the gate `g` (forward, first dispatch).
pub const GATE_SOFTMAX: Kernel = Kernel::new(shaders::GATE, "gate_softmax", BINDINGS);

/// Gradients of the tables' outputs and of the gate logits.
pub const GATE_BACKWARD: Kernel = Kernel::new(shaders::GATE, "gate_backward", BINDINGS);

/// The caller's buffers of a [`GateCombine`] (f32).
pub struct GateCombineBuffers<'a> {
    /// Per-table outputs `[M, rows_cap, cols]` (read).
    pub h: &'a wgpu::Buffer,
    /// Gate logits `[rows_cap, M]` (read).
    pub logits: &'a wgpu::Buffer,
    /// Gate weights `[rows_cap, M]`: written by the forward, read by the backward.
    pub gate: &'a wgpu::Buffer,
    /// Combined output `[rows_cap, cols]`.
    pub out: &'a wgpu::Buffer,
    /// Gradient of the output `[rows_cap, cols]` (read).
    pub grad_out: &'a wgpu::Buffer,
    /// Gradient of `h`, `[M, rows_cap, cols]` (overwritten).
    pub grad_h: &'a wgpu::Buffer,
    /// Gradient of the logits, `[rows_cap, M]` (overwritten).
    pub grad_logits: &'a wgpu::Buffer,
}

/// A prepared learned-gate combine across M tables.
pub struct GateCombine {
    params: GateParams,
    uniform: Uniform<GateParams>,
    softmax: Launch,
    forward: Launch,
    backward: Launch,
}

impl GateCombine {
    /// Validates the shape (1 ≤ tables ≤ [`GATE_MAX_TABLES`], cols ≥ 1) and the buffer sizes,
    /// compiles both pipelines and binds them; rows start at `rows_cap`.
    pub fn new(
        gpu: &Gpu,
        tables: u32,
        rows_cap: u32,
        cols: u32,
        b: &GateCombineBuffers,
    ) -> Result<Self> {
        let name = GATE_FORWARD.entry;
        let elems = check_shape(name, tables, rows_cap, cols)?;
        if tables > GATE_MAX_TABLES {
            return Err(Error::kernel(
                name,
                format!("{tables} tables, at most {GATE_MAX_TABLES}"),
            ));
        }
        let outputs = rows_cap as u64 * cols as u64;
        let weights = rows_cap as u64 * tables as u64;
        for (what, buf, n) in [
            ("h", b.h, elems),
            ("grad_h", b.grad_h, elems),
            ("logits", b.logits, weights),
            ("gate", b.gate, weights),
            ("grad_logits", b.grad_logits, weights),
            ("out", b.out, outputs),
            ("grad_out", b.grad_out, outputs),
        ] {
            check_len(name, what, buf, n)?;
        }
        let params = GateParams {
            tables,
            rows: rows_cap,
            rows_cap,
            cols,
        };
        let uniform = Uniform::new(gpu, "gate params", &params);
        let constants = [("WG", GATE_WG as f64)];
        let buffers = [
            b.h,
            b.logits,
            b.grad_out,
            b.gate,
            b.out,
            b.grad_h,
            b.grad_logits,
            uniform.buffer(),
        ];
        let launch = |kernel: &Kernel, workgroups: u32| {
            let pipeline = gpu.pipeline(kernel, &constants)?;
            Launch::new(gpu, &pipeline, &buffers, Grid::Folded(workgroups))
        };
        let forward = launch(&GATE_FORWARD, outputs.div_ceil(GATE_WG as u64) as u32)?;
        let softmax = launch(&GATE_SOFTMAX, rows_cap.div_ceil(GATE_WG))?;
        let backward = launch(&GATE_BACKWARD, rows_cap)?;
        Ok(GateCombine {
            softmax,
            forward,
            backward,
            params,
            uniform,
        })
    }

    /// Sets this step's batch (≤ `rows_cap`); takes effect at the next submission.
    pub fn set_rows(&mut self, gpu: &Gpu, rows: u32) -> Result<()> {
        let cap = self.params.rows_cap;
        self.uniform
            .set_rows(gpu, GATE_FORWARD.entry, &mut self.params, rows, cap)
    }

    /// Tables M.
    pub fn tables(&self) -> u32 {
        self.params.tables
    }

    /// Dispatches recorded by (forward, backward): (2, 1), whatever M and the batch.
    pub fn dispatches(&self) -> (u64, u64) {
        (2, 1)
    }

    /// Records g from the logits, then out from g and h.
    pub fn record_forward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.softmax.record(gpu, pass);
        self.forward.record(gpu, pass);
    }

    /// Records dh and d(logits) from d_out and the saved g.
    pub fn record_backward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.backward.record(gpu, pass);
    }
}
