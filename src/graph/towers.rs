//! The towers and heads after the combine: per hidden width `ReLU(x Wᵀ + b)` (`mlp.{l}.weight`
//! `[out, in]`) with inverted dropout after it (none at evaluation, where the next layer reads the
//! pre-dropout activation), then a head `z = x Wᵀ + b` (`head.weight` `[T, in]`) giving each task
//! its logit.
//!
//! A multi-task model has one tower per task, all built as one table-batched stack (`U` towers
//! of equal widths, one dispatch per op for all): `tower.{l}.weight` `[U, out, in]` over the
//! mixture's `c` `[U, B, W]`, a head `tower.head.weight` `[U, 1, in]` writing `[U, B]`, and a
//! transpose into the `[B, U]` logits the loss reads (its backward transposes the gradient back).

use super::layer::{Cost, Layer, LayerDispatches, Mode, Phase, StepInputs};
use super::params::FlatParams;
use super::projection::f32s;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::dense::dropout::{Dropout, DropoutBuffers, DropoutSpec};
use crate::kernels::dense::linear::{At, Linear, LinearBuffers, LinearSpec};
use crate::kernels::dense::mix::{MixTranspose as Transpose, MixTransposeBuffers};
use crate::model::ModelPlan;

/// A linear layer with optional dropout after it (or, for a multi-task model's heads, the
/// transpose of their logits).
pub(super) struct DenseLayer {
    linear: Linear,
    dropout: Option<Dropout>,
    transpose: Option<Transpose>,
}

/// An activation as the next layer reads it: training input, evaluation input (before dropout,
/// when they differ) and the gradient.
struct Input {
    x: wgpu::Buffer,
    x_eval: Option<wgpu::Buffer>,
    dx: wgpu::Buffer,
}

/// The built tower and head, and the head's outputs.
pub(super) struct Towers {
    pub layers: Vec<DenseLayer>,
    /// `[B, T]` logits and their gradient (written by the loss).
    pub logits: wgpu::Buffer,
    pub grad_logits: wgpu::Buffer,
    /// The head's input as training and evaluation read it, and its width (the uncertainty
    /// heads read it too).
    pub head_input: HeadInput,
}

/// The activation the head reads: training (after dropout) and evaluation (before) inputs.
pub(super) struct HeadInput {
    pub x: wgpu::Buffer,
    pub x_eval: Option<wgpu::Buffer>,
    pub width: u32,
}

impl Towers {
    /// The plan's tower over `(c, dc)`, then its head.
    pub(super) fn new(
        gpu: &Gpu,
        plan: &ModelPlan,
        (c, dc): (&wgpu::Buffer, &wgpu::Buffer),
        params: &FlatParams,
        b: u32,
    ) -> Result<Self> {
        let multitask = plan.config.model.architecture.multitask();
        let build = Build {
            gpu,
            plan,
            params,
            b,
            units: if multitask {
                plan.towers.len() as u32
            } else {
                1
            },
            prefix: if multitask { "tower" } else { "mlp" },
        };
        let tower = &plan.towers[0];
        let mut input = Input {
            x: c.clone(),
            x_eval: None,
            dx: dc.clone(),
        };
        let mut layers = Vec::new();
        let mut fan_in = tower.input;
        for (l, &out) in tower.hidden.iter().enumerate() {
            let (layer, next) = build.hidden(l, (fan_in, out), &input)?;
            layers.push(layer);
            (input, fan_in) = (next, out);
        }
        let tasks = plan.config.outputs().len() as u32;
        let logits = f32s(gpu, "logits", b as u64 * tasks as u64);
        let grad_logits = f32s(gpu, "logits grad", b as u64 * tasks as u64);
        if !multitask {
            let spec = build.spec(fan_in, tasks, false);
            let head = build.linear("head", spec, &input, (&logits, &grad_logits))?;
            layers.push(DenseLayer {
                linear: head,
                dropout: None,
                transpose: None,
            });
        } else {
            // Each tower's logit `[U, B]`, then transposed into the loss's `[B, U]`.
            let unit_logits = f32s(gpu, "tower logits", b as u64 * tasks as u64);
            let unit_grad = f32s(gpu, "tower logits grad", b as u64 * tasks as u64);
            let spec = build.spec(fan_in, 1, false);
            let head = build.linear("tower.head", spec, &input, (&unit_logits, &unit_grad))?;
            let buffers = MixTransposeBuffers {
                by_unit: &unit_logits,
                by_row: &logits,
                grad_by_row: &grad_logits,
                grad_by_unit: &unit_grad,
            };
            let transpose = Transpose::new(gpu, tasks, b, &buffers)?;
            layers.push(DenseLayer {
                linear: head,
                dropout: None,
                transpose: Some(transpose),
            });
        }
        let head_input = HeadInput {
            x: input.x,
            x_eval: input.x_eval,
            width: fan_in,
        };
        Ok(Towers {
            layers,
            logits,
            grad_logits,
            head_input,
        })
    }
}

/// What building a tower's layers reads.
struct Build<'a> {
    gpu: &'a Gpu,
    plan: &'a ModelPlan,
    params: &'a FlatParams,
    b: u32,
    /// Towers in the batched stack (1 for the single-task model).
    units: u32,
    /// Hidden layers' tensor names: `{prefix}.{l}.weight`.
    prefix: &'a str,
}

impl Build<'_> {
    fn spec(&self, fan_in: u32, out: u32, relu: bool) -> LinearSpec {
        LinearSpec {
            tables: self.units,
            batch_cap: self.b,
            fan_in,
            out,
            relu,
        }
    }

    /// Hidden layer `l` (`mlp.{l}`) over `input`, with dropout after it when the tower has it;
    /// returns it and the next layer's input.
    fn hidden(
        &self,
        l: usize,
        (fan_in, out): (u32, u32),
        input: &Input,
    ) -> Result<(DenseLayer, Input)> {
        let (gpu, n) = (self.gpu, self.units as u64 * self.b as u64 * out as u64);
        let y = f32s(gpu, "mlp out", n);
        let dy = f32s(gpu, "mlp out grad", n);
        let spec = self.spec(fan_in, out, true);
        let name = format!("{}.{l}", self.prefix);
        let linear = self.linear(&name, spec, input, (&y, &dy))?;
        let p = self.plan.towers[0].dropout;
        if p <= 0.0 {
            let next = Input {
                x: y,
                x_eval: None,
                dx: dy,
            };
            return Ok((
                DenseLayer {
                    linear,
                    dropout: None,
                    transpose: None,
                },
                next,
            ));
        }
        let yd = f32s(gpu, "dropout out", n);
        let dyd = f32s(gpu, "dropout out grad", n);
        let spec = DropoutSpec {
            tables: self.units,
            rows_cap: self.b,
            cols: out,
            p,
            stream: l as u32,
        };
        let buffers = DropoutBuffers {
            x: &y,
            y: &yd,
            grad_y: &dyd,
            grad_x: &dy,
        };
        let dropout = Some(Dropout::new(gpu, spec, &buffers)?);
        let next = Input {
            x: yd,
            x_eval: Some(y),
            dx: dyd,
        };
        let transpose = None;
        Ok((
            DenseLayer {
                linear,
                dropout,
                transpose,
            },
            next,
        ))
    }

    /// The linear layer `{name}.weight` / `{name}.bias` of the flat parameters over `input`.
    fn linear(
        &self,
        name: &str,
        spec: LinearSpec,
        input: &Input,
        (y, dy): (&wgpu::Buffer, &wgpu::Buffer),
    ) -> Result<Linear> {
        let flat = |tensor: &str| {
            let param = self.plan.dense_param(&format!("{name}.{tensor}"));
            self.params
                .at(param.expect("the plan has every tower tensor").offset)
        };
        let buffers = LinearBuffers {
            x: &input.x,
            x_eval: input.x_eval.as_ref(),
            dx: Some(&input.dx),
            y: At::start(y),
            dy,
            weight: flat("weight"),
            bias: Some(flat("bias")),
        };
        Linear::new(self.gpu, spec, &buffers)
    }
}

impl Layer for DenseLayer {
    fn set_rows(&mut self, gpu: &Gpu, rows: u32) -> Result<()> {
        self.linear.set_rows(gpu, rows)?;
        if let Some(t) = &mut self.transpose {
            t.set_rows(gpu, rows)?;
        }
        match &mut self.dropout {
            Some(d) => d.set_rows(gpu, rows),
            None => Ok(()),
        }
    }

    fn upload(&mut self, gpu: &Gpu, inputs: &StepInputs<'_>) -> Result<()> {
        if let (Some(d), Some((seed, step))) = (&mut self.dropout, inputs.seed_step) {
            d.set_step(gpu, seed, step as u32);
        }
        Ok(())
    }

    fn record_forward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>, mode: Mode) {
        match mode {
            Mode::Train => {
                self.linear.record(gpu, pass);
                if let Some(d) = &self.dropout {
                    d.record_forward(gpu, pass);
                }
            }
            Mode::Eval => self.linear.record_eval(gpu, pass),
        }
        if let Some(t) = &self.transpose {
            t.record_forward(gpu, pass);
        }
    }

    fn record_backward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        if let Some(t) = &self.transpose {
            t.record_backward(gpu, pass);
        }
        if let Some(d) = &self.dropout {
            d.record_backward(gpu, pass);
        }
        self.linear.record_backward(gpu, pass);
    }

    fn dispatches(&self) -> LayerDispatches {
        let d = self.dropout.is_some() as u64;
        let t = self.transpose.is_some() as u64;
        let (f, b) = self.linear.dispatches();
        LayerDispatches {
            train_forward: f + d + t,
            eval_forward: f + t,
            backward: d + b + t,
            update: 0,
        }
    }

    /// "dense {in}→{out}" for a hidden layer, "head {in}→{out}" for the head; "towers ×U" before
    /// either when the layer is a multi-task stack of U towers.
    fn name(&self) -> String {
        let s = self.linear.spec();
        let kind = if s.relu { "dense" } else { "head" };
        let stack = match s.tables {
            1 => String::new(),
            u => format!("towers ×{u} "),
        };
        format!("{stack}{kind} {}→{}", s.fan_in, s.out)
    }

    /// The affine map's GEMMs, plus dropout's mask pass.
    fn cost(&self, phase: Phase, rows: u32) -> Cost {
        let s = self.linear.spec();
        let linear = Cost::linear(s.tables, rows, s.fan_in, s.out, phase);
        let n = s.tables as u64 * rows as u64 * s.out as u64;
        match (&self.dropout, phase) {
            (Some(_), Phase::Forward | Phase::Backward) => linear + Cost::elementwise(n, 1, 1),
            _ => linear,
        }
    }
}
