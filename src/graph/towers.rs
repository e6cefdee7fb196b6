//! The towers and heads after the combine: per hidden width `ReLU(x Wᵀ + b)` (`mlp.{l}.weight`
//! `[out, in]`) with inverted dropout after it (none at evaluation, where the next layer reads the
//! pre-dropout activation), then a head `z = x Wᵀ + b` (`head.weight` `[T, in]`) giving each task
//! its logit.

use super::layer::{Layer, LayerDispatches, Mode, StepInputs};
use super::params::FlatParams;
use super::projection::f32s;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::dense::dropout::{Dropout, DropoutBuffers, DropoutSpec};
use crate::kernels::dense::linear::{At, Linear, LinearBuffers, LinearSpec};
use crate::model::ModelPlan;

/// A linear layer with optional dropout after it.
pub(super) struct DenseLayer {
    linear: Linear,
    dropout: Option<Dropout>,
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
        let tower = &plan.towers[0];
        let mut input = Input {
            x: c.clone(),
            x_eval: None,
            dx: dc.clone(),
        };
        let mut layers = Vec::new();
        let mut fan_in = tower.input;
        for (l, &out) in tower.hidden.iter().enumerate() {
            let y = f32s(gpu, "mlp out", b as u64 * out as u64);
            let dy = f32s(gpu, "mlp out grad", b as u64 * out as u64);
            let spec = LinearSpec {
                tables: 1,
                batch_cap: b,
                fan_in,
                out,
                relu: true,
            };
            let linear = linear(
                gpu,
                plan,
                params,
                &format!("mlp.{l}"),
                spec,
                &input,
                (&y, &dy),
            )?;
            let (next, dropout) = if tower.dropout > 0.0 {
                let yd = f32s(gpu, "dropout out", b as u64 * out as u64);
                let dyd = f32s(gpu, "dropout out grad", b as u64 * out as u64);
                let spec = DropoutSpec {
                    tables: 1,
                    rows_cap: b,
                    cols: out,
                    p: tower.dropout,
                    stream: l as u32,
                };
                let buffers = DropoutBuffers {
                    x: &y,
                    y: &yd,
                    grad_y: &dyd,
                    grad_x: &dy,
                };
                let d = Dropout::new(gpu, spec, &buffers)?;
                (
                    Input {
                        x: yd,
                        x_eval: Some(y),
                        dx: dyd,
                    },
                    Some(d),
                )
            } else {
                (
                    Input {
                        x: y,
                        x_eval: None,
                        dx: dy,
                    },
                    None,
                )
            };
            layers.push(DenseLayer { linear, dropout });
            input = next;
            fan_in = out;
        }
        let tasks = plan.heads[0].tasks.len() as u32;
        let logits = f32s(gpu, "logits", b as u64 * tasks as u64);
        let grad_logits = f32s(gpu, "logits grad", b as u64 * tasks as u64);
        let spec = LinearSpec {
            tables: 1,
            batch_cap: b,
            fan_in,
            out: tasks,
            relu: false,
        };
        let head = linear(
            gpu,
            plan,
            params,
            "head",
            spec,
            &input,
            (&logits, &grad_logits),
        )?;
        layers.push(DenseLayer {
            linear: head,
            dropout: None,
        });
        Ok(Towers {
            layers,
            logits,
            grad_logits,
        })
    }
}

/// The linear layer `{name}.weight` / `{name}.bias` of the flat parameters.
fn linear(
    gpu: &Gpu,
    plan: &ModelPlan,
    params: &FlatParams,
    name: &str,
    spec: LinearSpec,
    input: &Input,
    (y, dy): (&wgpu::Buffer, &wgpu::Buffer),
) -> Result<Linear> {
    let flat = |tensor: &str| {
        let offset = plan
            .dense_param(&format!("{name}.{tensor}"))
            .expect("planned")
            .offset;
        (
            At {
                buffer: &params.values,
                offset,
            },
            At {
                buffer: &params.grads,
                offset,
            },
        )
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
    Linear::new(gpu, spec, &buffers)
}

impl Layer for DenseLayer {
    fn set_rows(&mut self, gpu: &Gpu, rows: u32) -> Result<()> {
        self.linear.set_rows(gpu, rows)?;
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
    }

    fn record_backward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        if let Some(d) = &self.dropout {
            d.record_backward(gpu, pass);
        }
        self.linear.record_backward(gpu, pass);
    }

    fn dispatches(&self) -> LayerDispatches {
        let d = self.dropout.is_some() as u64;
        let (f, b) = self.linear.dispatches();
        LayerDispatches {
            train_forward: f + d,
            eval_forward: f,
            backward: d + b,
            update: 0,
        }
    }
}
