//! The one interface every stage of a compiled model implements. A training step is the layer
//! list walked forward, the loss, the list walked in reverse for the backward, then each layer's
//! sparse updates; evaluation is the forward walk in evaluation mode. What a step records and how
//! many dispatches it counts therefore cannot drift apart: [`Graph::dispatches`] is the sum of the
//! layers' [`Layer::dispatches`], and a test compares it to the device's own count.
//!
//! A new layer is one file implementing this trait plus one line in `Graph::new` placing it in
//! the list (`docs/graph.md` has a worked example). Its [`Layer::name`] and [`Layer::cost`] are
//! what the per-layer profiler (`super::profile`) reports: each phase's time against its ideal
//! work.
//!
//! [`Graph::dispatches`]: super::Graph::dispatches

use super::prepare::Prepared;
use super::slabs::Slabs;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::embedding::SparseStep;

/// Training (batch statistics, dropout) or evaluation (running statistics, no dropout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A training step (or its forward alone).
    Train,
    /// Evaluation and prediction.
    Eval,
}

/// A phase of the training step, as the profiler reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// The forward walk (training mode).
    Forward,
    /// The backward walk.
    Backward,
    /// The sparse (or dense) updates after the backward.
    Update,
}

impl Phase {
    /// The phase's name in the profile.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Forward => "forward",
            Phase::Backward => "backward",
            Phase::Update => "update",
        }
    }
}

/// The ideal work of one phase of a layer at a batch: the bytes an ideal kernel moves (each
/// input read and each output written once; FBGEMM's count for the gathers and updates: every
/// looked-up row read, the pooled output written, an updated row read and written) and its
/// floating-point operations (2·m·n·k per GEMM). The profiler rates a phase against the bound
/// that takes longer at the run's ceilings; zero for both shows "—".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cost {
    /// Ideal bytes moved.
    pub bytes: u64,
    /// Floating-point operations.
    pub flops: u64,
}

impl std::ops::Add for Cost {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Cost {
            bytes: self.bytes + o.bytes,
            flops: self.flops + o.flops,
        }
    }
}

impl Cost {
    /// A batched affine map `tables × [rows, fan_in] → [rows, out]` (weights `[out, fan_in]`):
    /// the forward's GEMM, or the backward's two (input and weight gradients).
    pub fn linear(tables: u32, rows: u32, fan_in: u32, out: u32, phase: Phase) -> Cost {
        let (t, r, i, o) = (tables as u64, rows as u64, fan_in as u64, out as u64);
        let forward = Cost {
            bytes: 4 * t * (r * i + i * o + r * o),
            flops: 2 * t * r * i * o,
        };
        match phase {
            Phase::Forward => forward,
            Phase::Backward => forward + forward,
            Phase::Update => Cost::default(),
        }
    }

    /// An elementwise pass over `floats` values reading `reads` and writing `writes` arrays.
    pub fn elementwise(floats: u64, reads: u64, writes: u64) -> Cost {
        Cost {
            bytes: 4 * floats * (reads + writes),
            flops: floats,
        }
    }
}

/// Dispatches one layer records per program.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerDispatches {
    /// Forward in training mode.
    pub train_forward: u64,
    /// Forward in evaluation mode.
    pub eval_forward: u64,
    /// Backward.
    pub backward: u64,
    /// Sparse updates after the backward.
    pub update: u64,
}

impl LayerDispatches {
    /// Forward counts equal in both modes, `backward` after them.
    pub fn same(forward: u64, backward: u64) -> Self {
        LayerDispatches {
            train_forward: forward,
            eval_forward: forward,
            backward,
            update: 0,
        }
    }
}

impl std::ops::Add for LayerDispatches {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        LayerDispatches {
            train_forward: self.train_forward + o.train_forward,
            eval_forward: self.eval_forward + o.eval_forward,
            backward: self.backward + o.backward,
            update: self.update + o.update,
        }
    }
}

/// What a step hands each layer before it is recorded.
pub struct StepInputs<'a> {
    /// The batch, prepared on the loader thread.
    pub batch: &'a Prepared,
    /// The embedding storage the batch's ids index (every slab).
    pub storage: &'a Slabs,
    /// The sparse step (rate, decay, step), when the step trains.
    pub sparse: Option<SparseStep>,
    /// The run's seed and the 1-based step (dropout masks), when the step trains.
    pub seed_step: Option<(u64, u64)>,
}

/// One stage of the recorded step (see the module docs).
pub trait Layer: Send {
    /// Rewrites the uniforms that hold the batch size (only called when it changes).
    fn set_rows(&mut self, gpu: &Gpu, rows: u32) -> Result<()>;

    /// Uploads what this layer needs of the step's inputs (ids, plans, dropout seeds).
    fn upload(&mut self, _gpu: &Gpu, _inputs: &StepInputs<'_>) -> Result<()> {
        Ok(())
    }

    /// Records the forward.
    fn record_forward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>, mode: Mode);

    /// Records the backward (its output gradient is written by the layer after it).
    fn record_backward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>);

    /// Records the sparse updates that follow the whole backward.
    fn record_update(&self, _gpu: &Gpu, _pass: &mut wgpu::ComputePass<'_>) {}

    /// Dispatches of each program.
    fn dispatches(&self) -> LayerDispatches;

    /// The layer's name in the profile ("embedding", "expert 0 dcn (tables 0,1)", "head", …).
    fn name(&self) -> String;

    /// The ideal work of `phase` at a batch of `rows` samples (see [`Cost`]); zero when unknown.
    fn cost(&self, _phase: Phase, _rows: u32) -> Cost {
        Cost::default()
    }
}
