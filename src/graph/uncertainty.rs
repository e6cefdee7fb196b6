//! The uncertainty heads (`[[task]] uncertainty`, METHODS.md §4.4, docs/explore.md): a linear
//! layer on the head's input writing `H` values per output — K bootstrap logits, or a Gaussian
//! logit's μ and log s² — trained by `uncertainty.wgsl`'s loss.
//!
//! # Why the heads read the tower under stop-gradient
//! The heads' gradient stops at their own weights: the shared network is trained by the task's
//! loss alone, exactly as without heads. So adding heads leaves the point model — its
//! probabilities, AUC and checkpoints' other tensors — bit for bit what it was (their tensors are
//! last in flat order, their initial values drawn after every other; Adam is per element; with
//! `clip_norm` the global norm does include the heads' gradients, the one coupling). The ensemble
//! is then over the last layer on a shared representation ("neural-linear" posteriors, Riquelme
//! et al., ICLR 2018, the strongest simple baseline of their bandit showdown), at the cost of K
//! small heads; the same holds for the Gaussian head.
//!
//! # The step
//! Everything the heads do in a training step is in the forward walk, after the tower: the
//! forward, the loss and logit gradient, and the weight gradients (no input gradient). At
//! evaluation the forward alone, on the pre-dropout activation, so a prediction reads the heads'
//! values of its batch ([`UncertaintyLayer::belief`]).

use super::layer::{Cost, Layer, LayerDispatches, Mode, Phase, StepInputs};
use super::params::FlatParams;
use super::projection::f32s;
use super::towers::HeadInput;
use crate::config::Uncertainty;
use crate::error::Result;
use crate::explore::Belief;
use crate::gpu::Gpu;
use crate::kernels::dense::linear::{At, Linear, LinearBuffers, LinearSpec};
use crate::kernels::loss::uncertainty::{
    loss_scale, UncertaintyBuffers, UncertaintyLoss, UncertaintySpec,
};
use crate::model::ModelPlan;

/// The heads, their loss and their buffers (see the module docs).
pub(super) struct UncertaintyLayer {
    linear: Linear,
    loss: UncertaintyLoss,
    kind: Uncertainty,
    active: Vec<bool>,
    /// Over the task towers (`[U, cap, H]`) rather than the one tower (`[cap, U·H]`).
    towers: bool,
    cap: u32,
    y: wgpu::Buffer,
    scale: wgpu::Buffer,
    terms: wgpu::Buffer,
}

impl UncertaintyLayer {
    /// The heads of `plan` over the head's input, reading the objective's `labels`; `None` for a
    /// model without them.
    pub(super) fn new(
        gpu: &Gpu,
        plan: &ModelPlan,
        input: &HeadInput,
        labels: &wgpu::Buffer,
        params: &FlatParams,
        cap: u32,
    ) -> Result<Option<Self>> {
        let Some(kind) = plan.config.uncertainty() else {
            return Ok(None);
        };
        let active = plan.config.uncertain_outputs();
        let (u, h) = (active.len() as u32, kind.width());
        let towers = plan.config.model.architecture.multitask();
        let n = cap as u64 * u as u64 * h as u64;
        let (y, grad) = (
            f32s(gpu, "uncertainty out", n),
            f32s(gpu, "uncertainty grad", n),
        );
        let linear = heads_linear(gpu, plan, input, params, (&y, &grad), cap)?;
        let scale = f32s(gpu, "uncertainty scale", cap as u64 * u as u64);
        let terms = f32s(gpu, "uncertainty loss terms", cap as u64 * u as u64);
        let (stride_u, stride_b) = if towers { (cap * h, h) } else { (h, u * h) };
        let spec = UncertaintySpec {
            kind,
            outputs: u,
            rows_cap: cap,
            stride_u,
            stride_b,
        };
        let loss = UncertaintyLoss::new(
            gpu,
            spec,
            &UncertaintyBuffers {
                y: &y,
                labels,
                scale: &scale,
                grad: &grad,
                loss: &terms,
            },
        )?;
        Ok(Some(UncertaintyLayer {
            linear,
            loss,
            kind,
            active,
            towers,
            cap,
            y,
            scale,
            terms,
        }))
    }

    /// The heads' values for the first `rows` rows of the last forward.
    pub(super) fn belief(&self, gpu: &Gpu, rows: u32) -> Result<Belief> {
        let (u, h) = (self.active.len(), self.kind.width() as usize);
        let rows = rows as usize;
        let values = if self.towers {
            let all: Vec<f32> = gpu.read(&self.y, 0, (u * self.cap as usize * h) as u64)?;
            let mut v = Vec::with_capacity(rows * u * h);
            for b in 0..rows {
                for o in 0..u {
                    let at = (o * self.cap as usize + b) * h;
                    v.extend_from_slice(&all[at..at + h]);
                }
            }
            v
        } else {
            gpu.read(&self.y, 0, (rows * u * h) as u64)?
        };
        Ok(Belief {
            kind: self.kind,
            outputs: u,
            width: h,
            active: self.active.clone(),
            values,
        })
    }

    /// The heads' loss of the last training step (the sum of its terms over `rows`), per output.
    pub(super) fn loss(&self, gpu: &Gpu, rows: u32) -> Result<Vec<f64>> {
        let u = self.active.len();
        let all: Vec<f32> = gpu.read(&self.terms, 0, (u * self.cap as usize) as u64)?;
        Ok((0..u)
            .map(|o| {
                let at = o * self.cap as usize;
                all[at..at + rows as usize].iter().map(|&t| t as f64).sum()
            })
            .collect())
    }
}

/// The heads' linear layer `uncertainty.{weight,bias}` over the head's input, writing `(y, dy)`:
/// one layer of `U·H` outputs over the single tower, or `U` layers of `H` over the task towers.
/// No input gradient (the stop-gradient of the module docs).
fn heads_linear(
    gpu: &Gpu,
    plan: &ModelPlan,
    input: &HeadInput,
    params: &FlatParams,
    (y, grad): (&wgpu::Buffer, &wgpu::Buffer),
    cap: u32,
) -> Result<Linear> {
    let (u, h) = (
        plan.config.outputs().len() as u32,
        plan.config.uncertainty().map_or(1, |k| k.width()),
    );
    let towers = plan.config.model.architecture.multitask();
    let flat = |tensor: &str| {
        let param = plan.dense_param(&format!("uncertainty.{tensor}"));
        params.at(param.expect("the plan has the uncertainty heads").offset)
    };
    let spec = LinearSpec {
        tables: if towers { u } else { 1 },
        batch_cap: cap,
        fan_in: input.width,
        out: if towers { h } else { u * h },
        relu: false,
    };
    let buffers = LinearBuffers {
        x: &input.x,
        x_eval: input.x_eval.as_ref(),
        dx: None,
        y: At::start(y),
        dy: grad,
        weight: flat("weight"),
        bias: Some(flat("bias")),
    };
    Linear::new(gpu, spec, &buffers)
}

impl Layer for UncertaintyLayer {
    fn set_rows(&mut self, gpu: &Gpu, rows: u32) -> Result<()> {
        self.linear.set_rows(gpu, rows)?;
        self.loss.set_rows(gpu, rows)
    }

    fn upload(&mut self, gpu: &Gpu, inputs: &StepInputs<'_>) -> Result<()> {
        let Some((seed, step)) = inputs.seed_step else {
            return Ok(());
        };
        let batch = inputs.batch;
        let rows = batch.rows as usize;
        let scale = loss_scale(&batch.labels, batch.weights.as_deref(), rows, &self.active);
        gpu.queue
            .write_buffer(&self.scale, 0, bytemuck::cast_slice(&scale));
        self.loss.set_step(gpu, seed, step as u32);
        Ok(())
    }

    fn record_forward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>, mode: Mode) {
        match mode {
            Mode::Train => {
                self.linear.record(gpu, pass);
                self.loss.record(gpu, pass);
                self.linear.record_backward(gpu, pass);
            }
            Mode::Eval => self.linear.record_eval(gpu, pass),
        }
    }

    fn record_backward(&self, _gpu: &Gpu, _pass: &mut wgpu::ComputePass<'_>) {}

    fn dispatches(&self) -> LayerDispatches {
        let (forward, backward) = self.linear.dispatches();
        LayerDispatches {
            train_forward: forward + 1 + backward,
            eval_forward: forward,
            backward: 0,
            update: 0,
        }
    }

    fn name(&self) -> String {
        "uncertainty heads".into()
    }

    /// The heads' forward and weight-gradient GEMMs (their loss is a small elementwise pass).
    fn cost(&self, phase: Phase, rows: u32) -> Cost {
        let s = self.linear.spec();
        match phase {
            Phase::Forward => {
                let linear = |p| Cost::linear(s.tables, rows, s.fan_in, s.out, p);
                linear(Phase::Forward) + linear(Phase::Backward)
            }
            _ => Cost::default(),
        }
    }
}
