//! Launcher of `dropout.wgsl`: inverted dropout over `[tables, rows_cap, cols]` with a counter-based
//! RNG (Philox4x32-10), so the mask is a pure function of (seed, step, table, element, stream): no
//! state buffer, no mask buffer. Backward recomputes the forward's mask from the same uniform, so
//! [`Dropout::record_forward`] and [`Dropout::record_backward`] must see the same [`Dropout::set_step`].

use super::check_len;
use super::norm::check_shape;
use crate::error::{Error, Result};
use crate::gpu::{rows_field, Access, Gpu, Grid, Kernel, Launch, Uniform};
use crate::shaders;

/// Invocations per workgroup (the WGSL `WG` override); each handles four elements.
pub const DROPOUT_WG: u32 = 64;

/// Mirrors `DropoutParams` in `dropout.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct DropoutParams {
    /// Rows of this step (≤ `rows_cap`).
    pub rows: u32,
    /// Columns.
    pub cols: u32,
    /// Row stride of a table's slab.
    pub rows_cap: u32,
    /// Tables M.
    pub tables: u32,
    /// Low word of the 64-bit seed (Philox key word 0).
    pub seed_lo: u32,
    /// High word of the seed (Philox key word 1).
    pub seed_hi: u32,
    /// Training step (Philox counter word 2).
    pub step: u32,
    /// Layer id (Philox counter word 3): dropout layers sharing a seed draw independent masks.
    pub stream: u32,
    /// An element is dropped when its 32-bit draw is below this: floor(p · 2³²).
    pub threshold: u32,
    /// 1 / (1 − p).
    pub scale: f32,
    /// Padding to 16 bytes.
    pub _pad: [u32; 2],
}

rows_field!(DropoutParams);

/// The dropout kernel (forward and backward alike).
pub const DROPOUT: Kernel = Kernel::new(
    shaders::DROPOUT,
    "dropout",
    &[Access::Read, Access::ReadWrite, Access::Uniform],
);

/// Shape and rate of a [`Dropout`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DropoutSpec {
    /// Tables M.
    pub tables: u32,
    /// Largest batch the buffers hold.
    pub rows_cap: u32,
    /// Columns.
    pub cols: u32,
    /// Drop probability, in [0, 1).
    pub p: f32,
    /// Layer id, so two dropout layers under one seed draw different masks.
    pub stream: u32,
}

/// The caller's buffers of a [`Dropout`], all `[M, rows_cap, cols]` f32.
pub struct DropoutBuffers<'a> {
    /// Forward input.
    pub x: &'a wgpu::Buffer,
    /// Forward output.
    pub y: &'a wgpu::Buffer,
    /// Upstream gradient dy.
    pub grad_y: &'a wgpu::Buffer,
    /// dx.
    pub grad_x: &'a wgpu::Buffer,
}

/// A prepared dropout: one dispatch for all tables, forward or backward.
pub struct Dropout {
    spec: DropoutSpec,
    params: DropoutParams,
    uniform: Uniform<DropoutParams>,
    forward: Launch,
    backward: Launch,
}

/// floor(p · 2³²) and 1 / (1 − p), the threshold and scale the shader applies.
pub fn dropout_threshold_and_scale(p: f32) -> (u32, f32) {
    let threshold = (p as f64 * 4_294_967_296.0).floor().min(u32::MAX as f64) as u32;
    (threshold, 1.0 / (1.0 - p))
}

impl Dropout {
    /// Validates `spec` and the buffers, compiles the pipeline and binds forward and backward; rows
    /// start at `rows_cap`, seed and step at 0.
    pub fn new(gpu: &Gpu, spec: DropoutSpec, b: &DropoutBuffers) -> Result<Self> {
        let name = DROPOUT.entry;
        let elems = check_shape(name, spec.tables, spec.rows_cap, spec.cols)?;
        if !(0.0..1.0).contains(&spec.p) {
            return Err(Error::kernel(
                name,
                format!("p = {} must be in [0, 1)", spec.p),
            ));
        }
        for (what, buf) in [
            ("x", b.x),
            ("y", b.y),
            ("grad_y", b.grad_y),
            ("grad_x", b.grad_x),
        ] {
            check_len(name, what, buf, elems)?;
        }
        let (threshold, scale) = dropout_threshold_and_scale(spec.p);
        let params = DropoutParams {
            rows: spec.rows_cap,
            cols: spec.cols,
            rows_cap: spec.rows_cap,
            tables: spec.tables,
            stream: spec.stream,
            threshold,
            scale,
            ..Default::default()
        };
        let uniform = Uniform::new(gpu, "dropout params", &params);
        let pipeline = gpu.pipeline(&DROPOUT, &[("WG", DROPOUT_WG as f64)])?;
        let quads = (spec.rows_cap as u64 * spec.cols as u64).div_ceil(4) * spec.tables as u64;
        let grid = Grid::Folded(quads.div_ceil(DROPOUT_WG as u64) as u32);
        let u = uniform.buffer();
        Ok(Dropout {
            forward: Launch::new(gpu, &pipeline, &[b.x, b.y, u], grid)?,
            backward: Launch::new(gpu, &pipeline, &[b.grad_y, b.grad_x, u], grid)?,
            spec,
            params,
            uniform,
        })
    }

    /// Sets this step's batch (≤ `rows_cap`); takes effect at the next submission.
    pub fn set_rows(&mut self, gpu: &Gpu, rows: u32) -> Result<()> {
        let cap = self.spec.rows_cap;
        self.uniform
            .set_rows(gpu, DROPOUT.entry, &mut self.params, rows, cap)
    }

    /// Sets the seed and step the next submission's masks are drawn from.
    pub fn set_step(&mut self, gpu: &Gpu, seed: u64, step: u32) {
        self.params.seed_lo = seed as u32;
        self.params.seed_hi = (seed >> 32) as u32;
        self.params.step = step;
        self.uniform.write(gpu, &self.params);
    }

    /// The spec it was built with.
    pub fn spec(&self) -> &DropoutSpec {
        &self.spec
    }

    /// Records y = mask · x / (1 − p).
    pub fn record_forward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.forward.record(gpu, pass);
    }

    /// Records dx = mask · dy / (1 − p), the forward's mask recomputed.
    pub fn record_backward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.backward.record(gpu, pass);
    }
}
