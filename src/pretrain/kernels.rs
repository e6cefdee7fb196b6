//! Launchers of `shaders/graphsage.wgsl`: the gather of computed h¹ rows, the ℓ2 normalisation and
//! its backward, the link loss, and the scatter + ReLU backward (see the shader header for the
//! formulas). One params uniform serves all five; [`SageKernels::set_batch`] rewrites it per batch.

use super::sample::Computation;
use crate::error::{Error, Result};
use crate::gpu::{Access, Gpu, Grid, Kernel, Launch, Uniform};
use crate::shaders;

/// Invocations per workgroup (the shader's `WG`).
pub const SAGE_WG: u32 = 64;

/// Mirrors `SageParams` in `graphsage.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct SageParams {
    /// Targets this batch.
    pub targets: u32,
    /// Layer-1 rows this batch.
    pub rows: u32,
    /// Embedding width D.
    pub dim: u32,
    /// Loss edges this batch.
    pub edges: u32,
    /// Targets per edge (2 + Q).
    pub group: u32,
    /// Start of `members[]` in the structure buffer.
    pub members_at: u32,
    /// Start of `row_offsets[]`.
    pub row_offsets_at: u32,
    /// Start of `entries[]`.
    pub entries_at: u32,
    /// Index in the loss buffer of edge 0's loss.
    pub loss_at: u32,
    /// 1 / τ.
    pub inv_tau: f32,
    /// 1 / edges.
    pub inv_edges: f32,
    /// Padding to 16 bytes.
    pub _pad: u32,
}

const BINDINGS: &[Access] = &[
    Access::Read,
    Access::Read,
    Access::Read,
    Access::ReadWrite,
    Access::ReadWrite,
    Access::Uniform,
];

/// `gather_concat`: a² = [h¹_own ‖ mean h¹ of the target's sampled rows].
pub const GATHER_CONCAT: Kernel = Kernel::new(shaders::GRAPHSAGE, "gather_concat", BINDINGS);
/// `l2_normalize`: z = y / sqrt(‖y‖² + ε).
pub const L2_NORMALIZE: Kernel = Kernel::new(shaders::GRAPHSAGE, "l2_normalize", BINDINGS);
/// `link_loss`: per-edge loss and dL/dz.
pub const LINK_LOSS: Kernel = Kernel::new(shaders::GRAPHSAGE, "link_loss", BINDINGS);
/// `l2_normalize_backward`: dL/dy from dL/dz.
pub const L2_NORMALIZE_BACKWARD: Kernel =
    Kernel::new(shaders::GRAPHSAGE, "l2_normalize_backward", BINDINGS);
/// `scatter_relu_backward`: dL/d(W¹a¹) per layer-1 row from dL/da².
pub const SCATTER_RELU_BACKWARD: Kernel =
    Kernel::new(shaders::GRAPHSAGE, "scatter_relu_backward", BINDINGS);

/// The buffers the five kernels read and write (see the shader header for each one's role).
pub struct SageBuffers<'a> {
    /// `[target_rows | members | row_offsets | entries]` (u32; see the shader header).
    pub structure: &'a wgpu::Buffer,
    /// h¹ `[rows, D]`.
    pub h1: &'a wgpu::Buffer,
    /// a² `[T, 2D]`.
    pub a2: &'a wgpu::Buffer,
    /// y `[T, D]`.
    pub y: &'a wgpu::Buffer,
    /// z `[T, D]`.
    pub z: &'a wgpu::Buffer,
    /// dL/dz `[T, D]`.
    pub dz: &'a wgpu::Buffer,
    /// dL/dy `[T, D]`.
    pub dy: &'a wgpu::Buffer,
    /// dL/da² `[T, 2D]`.
    pub da2: &'a wgpu::Buffer,
    /// dL/d(pre-activation of h¹) `[rows, D]`.
    pub dpre1: &'a wgpu::Buffer,
    /// Per-edge losses.
    pub losses: &'a wgpu::Buffer,
}

/// The five prepared launches over fixed buffers.
pub struct SageKernels {
    gather: Launch,
    normalize: Launch,
    loss: Launch,
    normalize_backward: Launch,
    scatter: Launch,
    uniform: Uniform<SageParams>,
    state: SageParams,
}

impl SageKernels {
    /// Compiles the pipelines and binds `buffers`; `dim` ≥ 1, `tau` > 0.
    pub fn new(gpu: &Gpu, dim: u32, tau: f32, buffers: &SageBuffers<'_>) -> Result<Self> {
        if dim == 0 || !(tau.is_finite() && tau > 0.0) {
            return Err(Error::kernel(
                GATHER_CONCAT.entry,
                format!("dim {dim}, τ {tau}: need dim ≥ 1 and a finite τ > 0"),
            ));
        }
        let b = buffers;
        let state = SageParams {
            dim,
            inv_tau: 1.0 / tau,
            ..Default::default()
        };
        let uniform = Uniform::new(gpu, "graphsage params", &state);
        let u = uniform.buffer();
        let launch = |k: &Kernel, a: &wgpu::Buffer, bb: &wgpu::Buffer, o: &wgpu::Buffer| {
            let pipeline = gpu.pipeline(k, &[("WG", SAGE_WG as f64)])?;
            let bufs = [b.structure, a, bb, o, b.losses, u];
            Launch::new(gpu, &pipeline, &bufs, Grid::Folded(0))
        };
        Ok(SageKernels {
            gather: launch(&GATHER_CONCAT, b.h1, b.h1, b.a2)?,
            normalize: launch(&L2_NORMALIZE, b.y, b.y, b.z)?,
            loss: launch(&LINK_LOSS, b.z, b.z, b.dz)?,
            normalize_backward: launch(&L2_NORMALIZE_BACKWARD, b.y, b.dz, b.dy)?,
            scatter: launch(&SCATTER_RELU_BACKWARD, b.h1, b.da2, b.dpre1)?,
            uniform,
            state,
        })
    }

    /// Sets the batch's sizes for the next recorded runs: `members` entries per target list,
    /// losses from `loss_at`.
    pub fn set_batch(&mut self, gpu: &Gpu, c: &Computation, loss_at: u32) {
        let (targets, rows, members) = (
            c.targets.len() as u32,
            c.rows() as u32,
            c.members.len() as u32,
        );
        let s = &mut self.state;
        s.targets = targets;
        s.rows = rows;
        s.edges = c.edges;
        s.group = 2 + c.negatives;
        s.members_at = targets + 1;
        s.row_offsets_at = s.members_at + members;
        s.entries_at = s.row_offsets_at + rows + 1;
        s.loss_at = loss_at;
        s.inv_edges = 1.0 / c.edges.max(1) as f32;
        self.uniform.write(gpu, &self.state);
        let groups = |n: u32| Grid::Folded(n.div_ceil(SAGE_WG));
        let d = self.state.dim;
        self.gather.set_grid(groups(targets * d));
        self.normalize.set_grid(groups(targets));
        self.loss.set_grid(groups(c.edges));
        self.normalize_backward.set_grid(groups(targets));
        self.scatter.set_grid(groups(rows * d));
    }

    /// The structure buffer's words for `c`: `[target_rows | members | row_offsets | entries]`.
    pub fn structure(c: &Computation) -> Vec<u32> {
        let (offsets, entries) = c.row_entries();
        let mut words =
            Vec::with_capacity(c.target_rows.len() + 2 * c.members.len() + offsets.len());
        words.extend_from_slice(&c.target_rows);
        words.extend_from_slice(&c.members);
        words.extend(offsets);
        words.extend(entries);
        words
    }

    /// Records the gather of a² and the normalisation of y (after the layer-2 GEMM).
    pub fn record_gather(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.gather.record(gpu, pass);
    }

    /// Records z = normalize(y).
    pub fn record_normalize(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.normalize.record(gpu, pass);
    }

    /// Records the loss, dL/dz and dL/dy.
    pub fn record_loss_backward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.loss.record(gpu, pass);
        self.normalize_backward.record(gpu, pass);
    }

    /// Records dL/d(pre-activation of h¹) from dL/da².
    pub fn record_scatter(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.scatter.record(gpu, pass);
    }
}
