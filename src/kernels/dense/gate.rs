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

use std::sync::Arc;

use super::check_len;
use super::norm::{check_rows, check_shape};
use crate::error::{Error, Result};
use crate::gpu::{Access, Gpu, Kernel, Pipeline};
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
pub const GATE_FORWARD: Kernel = Kernel {
    shader: shaders::GATE,
    entry: "gate_forward",
    bindings: BINDINGS,
};

/// Softmax of each row's logits into the gate `g` (forward, first dispatch).
pub const GATE_SOFTMAX: Kernel = Kernel {
    shader: shaders::GATE,
    entry: "gate_softmax",
    bindings: BINDINGS,
};

/// Gradients of the tables' outputs and of the gate logits.
pub const GATE_BACKWARD: Kernel = Kernel {
    shader: shaders::GATE,
    entry: "gate_backward",
    bindings: BINDINGS,
};

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
    uniform: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
    softmax: (Arc<Pipeline>, u32),
    forward: (Arc<Pipeline>, u32),
    backward: (Arc<Pipeline>, u32),
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
        let uniform = gpu.uniform_from("gate params", &params);
        let constants = [("WG", GATE_WG as f64)];
        let forward = gpu.pipeline(&GATE_FORWARD, &constants)?;
        let softmax = gpu.pipeline(&GATE_SOFTMAX, &constants)?;
        let backward = gpu.pipeline(&GATE_BACKWARD, &constants)?;
        let bind_group = forward.bind(
            gpu,
            &[
                b.h,
                b.logits,
                b.grad_out,
                b.gate,
                b.out,
                b.grad_h,
                b.grad_logits,
                &uniform,
            ],
        )?;
        Ok(GateCombine {
            softmax: (softmax, rows_cap.div_ceil(GATE_WG)),
            forward: (forward, outputs.div_ceil(GATE_WG as u64) as u32),
            backward: (backward, rows_cap),
            params,
            uniform,
            bind_group,
        })
    }

    /// Sets this step's batch (≤ `rows_cap`); takes effect at the next submission.
    pub fn set_rows(&mut self, gpu: &Gpu, rows: u32) -> Result<()> {
        check_rows(GATE_FORWARD.entry, rows, self.params.rows_cap)?;
        self.params.rows = rows;
        gpu.queue
            .write_buffer(&self.uniform, 0, bytemuck::bytes_of(&self.params));
        Ok(())
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
        let (pipeline, groups) = &self.softmax;
        pipeline.dispatch(gpu, pass, &self.bind_group, *groups);
        let (pipeline, groups) = &self.forward;
        pipeline.dispatch(gpu, pass, &self.bind_group, *groups);
    }

    /// Records dh and d(logits) from d_out and the saved g.
    pub fn record_backward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        let (pipeline, groups) = &self.backward;
        pipeline.dispatch(gpu, pass, &self.bind_group, *groups);
    }
}
