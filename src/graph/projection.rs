//! The projection's activations and its BatchNorm. Each expert group's projection (in
//! [`super::experts`]) writes its rows of `h` `[M, B, W]` (groups in order) — or of `z` under
//! BatchNorm, which this layer then normalises per table and column over the batch (γ/β
//! `proj.bn.weight`/`proj.bn.bias` `[M, W]`, running statistics checkpointed) and follows with the
//! ReLU: `h^(m) = ReLU(BN(W^(m) y^(m)))`.

use super::layer::{Cost, Layer, LayerDispatches, Mode, Phase};
use super::params::FlatParams;
use crate::error::Result;
use crate::gpu::{storage_usage, Gpu};
use crate::kernels::dense::elementwise::Relu;
use crate::kernels::dense::norm::{BatchNorm, BatchNormBuffers, BatchNormSpec};
use crate::model::ModelPlan;

/// The activations between the projections, the combine and the towers, with their gradients.
pub(super) struct Activations {
    /// `[M, B, W]` projections after their activation.
    pub h: wgpu::Buffer,
    pub dh: wgpu::Buffer,
    /// `[M, B, W]` projections before BatchNorm (allocated either way).
    pub z: wgpu::Buffer,
    pub dz: wgpu::Buffer,
    /// `[B, combined]` the combine's output (`[U, B, W]`: each tower's mixture).
    pub c: wgpu::Buffer,
    pub dc: wgpu::Buffer,
}

/// A zeroed f32 buffer of at least 4 elements.
pub(super) fn f32s(gpu: &Gpu, label: &str, n: u64) -> wgpu::Buffer {
    gpu.buffer(label, n.max(4) * 4, storage_usage())
}

impl Activations {
    pub(super) fn new(gpu: &Gpu, plan: &ModelPlan, b: u32) -> Self {
        let m = &plan.config.model;
        let h_len = plan.n_tables() as u64 * b as u64 * m.expert_width as u64;
        // `[B, combined]`, or a multi-task model's `[U, B, W]` (one input per tower).
        let c_len = plan.towers.len() as u64 * b as u64 * plan.towers[0].input as u64;
        Activations {
            h: f32s(gpu, "h", h_len),
            dh: f32s(gpu, "dh", h_len),
            z: f32s(gpu, "z", h_len),
            dz: f32s(gpu, "dz", h_len),
            c: f32s(gpu, "combined", c_len),
            dc: f32s(gpu, "combined grad", c_len),
        }
    }
}

/// BatchNorm's running statistics (checkpointed).
#[derive(Clone)]
pub(super) struct RunningStats {
    pub mean: wgpu::Buffer,
    pub var: wgpu::Buffer,
}

/// BatchNorm over the projections, then ReLU.
pub(super) struct Norm {
    norm: BatchNorm,
    relu: Relu,
    stats: RunningStats,
}

impl Norm {
    /// The norm over `acts.z` into `acts.h`; its γ and β become the owned tensors
    /// `proj.bn.weight` / `proj.bn.bias` of `params`.
    pub(super) fn new(
        gpu: &Gpu,
        plan: &ModelPlan,
        acts: &Activations,
        params: &mut FlatParams,
        b: u32,
    ) -> Result<Self> {
        let (m, w) = (plan.n_tables(), plan.config.model.expert_width);
        let per = m as u64 * w as u64;
        let mk = |label: &str| gpu.buffer(label, per * 4, storage_usage());
        let (gamma, beta) = (mk("bn gamma"), mk("bn beta"));
        let (grad_gamma, grad_beta) = (mk("bn grad gamma"), mk("bn grad beta"));
        let stats = RunningStats {
            mean: mk("bn running mean"),
            var: mk("bn running var"),
        };
        gpu.queue.write_buffer(
            &stats.var,
            0,
            bytemuck::cast_slice(&vec![1.0f32; per as usize]),
        );
        let (mean, inv_std) = (mk("bn mean"), mk("bn inv std"));
        let buffers = BatchNormBuffers {
            x: &acts.z,
            y: &acts.h,
            gamma: &gamma,
            beta: &beta,
            running_mean: &stats.mean,
            running_var: &stats.var,
            mean: &mean,
            inv_std: &inv_std,
            grad_y: &acts.dh,
            grad_x: &acts.dz,
            grad_gamma: &grad_gamma,
            grad_beta: &grad_beta,
        };
        let norm = BatchNorm::new(gpu, BatchNormSpec::new(m, b, w), &buffers)?;
        let relu = Relu::new(gpu, m, b, w, &acts.h, &acts.dh)?;
        params.own("proj.bn.weight", &gamma, &grad_gamma)?;
        params.own("proj.bn.bias", &beta, &grad_beta)?;
        Ok(Norm { norm, relu, stats })
    }

    /// The running statistics.
    pub(super) fn stats(&self) -> RunningStats {
        self.stats.clone()
    }
}

impl Layer for Norm {
    fn set_rows(&mut self, gpu: &Gpu, rows: u32) -> Result<()> {
        self.norm.set_rows(gpu, rows)?;
        self.relu.set_rows(gpu, rows)
    }

    fn record_forward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>, mode: Mode) {
        match mode {
            Mode::Train => self.norm.record_train(gpu, pass),
            Mode::Eval => self.norm.record_eval(gpu, pass),
        }
        self.relu.record_forward(gpu, pass);
    }

    fn record_backward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.relu.record_backward(gpu, pass);
        self.norm.record_backward(gpu, pass);
    }

    fn dispatches(&self) -> LayerDispatches {
        LayerDispatches::same(2, 2)
    }

    fn name(&self) -> String {
        "batchnorm + relu".into()
    }

    /// Statistics then normalisation (`z` read twice, `h` written), the ReLU in place; the
    /// backward reads `dh`, `z` and `h` twice over and writes `dz`.
    fn cost(&self, phase: Phase, rows: u32) -> Cost {
        let s = self.norm.spec();
        let n = s.tables as u64 * rows as u64 * s.cols as u64;
        match phase {
            Phase::Forward => Cost::elementwise(n, 3, 2),
            Phase::Backward => Cost::elementwise(n, 5, 2),
            Phase::Update => Cost::default(),
        }
    }
}
