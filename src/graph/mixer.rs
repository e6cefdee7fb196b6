//! The per-task mixture of a multi-task model (docs/multitask.md): each tower `u` mixes the
//! experts' outputs `h` `[E, B, W]` into its own input `c_u` (`c` `[U, B, W]`).
//!
//! - Gated architectures (`mmoe`, `ple`, `stem`, `ame`): the gate logits of every tower read the
//!   concatenation of all experts' outputs, `a_u = concat(h) · W_uᵀ + b_u` (`gate.weight`
//!   `[U, E, E·W]`, `gate.bias` `[U, E]`, one batched linear layer whose towers share the input),
//!   `g_u = softmax` over the experts the tower reads, `c_u = Σ_e g_{u,e} h_e`.
//! - `shared`: no gate; `c_u` is the mean of the experts (the shared bottom).
//!
//! The routes ([`ModelPlan::mix_routes`]) decide the backward: tower `u`'s loss reaches expert
//! `e`'s output through the mixture and through the gate's input only where its route trains;
//! under stop-gradient only the gate weights on `e` learn. Order of the backward: the gate
//! logits' gradient, the gate's linear backward (weights, bias, the per-tower input gradient
//! `dx` `[U, B, E·W]`), then `dh`, which sums both paths per expert in tower order.

use super::layer::{Layer, LayerDispatches, Mode};
use super::params::FlatParams;
use super::projection::{f32s, Activations};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::dense::combine::{Combine, CombineBuffers, CombineKind};
use crate::kernels::dense::linear::{At, Linear, LinearBuffers, LinearSpec};
use crate::kernels::dense::mix::{Mix, MixBuffers, MixSpec};
use crate::model::ModelPlan;

/// The mixture stage of a multi-task model.
pub(super) struct Mixer {
    gate: Option<Gate>,
    mix: Mix,
    /// The gate weights `g` `[U, B, E]` the forward saves for the backward (read back by
    /// [`Graph::gate_weights`](super::Graph::gate_weights)).
    weights: wgpu::Buffer,
}

/// The learned gates: the experts' concatenation and the batched logits layer.
struct Gate {
    concat: Combine,
    logits: Linear,
}

impl Mixer {
    /// Over `acts.h` into `acts.c` (`[U, B, W]`), with the plan's routes.
    pub(super) fn new(
        gpu: &Gpu,
        plan: &ModelPlan,
        acts: &Activations,
        params: &FlatParams,
        b: u32,
    ) -> Result<Self> {
        let (e, w) = (plan.n_tables(), plan.config.model.expert_width);
        let u = plan.towers.len() as u32;
        let gated = plan.config.model.architecture.gated();
        let n = |k: u32| b as u64 * k as u64;
        let g = f32s(gpu, "mix gate", n(u * e));
        let (a, da) = (
            f32s(gpu, "gate logits", n(u * e)),
            f32s(gpu, "gate logits grad", n(u * e)),
        );
        let dx = f32s(gpu, "gate input grad", if gated { n(u * e * w) } else { 0 });
        let gate = gated
            .then(|| Self::gate(gpu, plan, acts, params, b, (&a, &da, &dx)))
            .transpose()?;
        // Without a gate there is no gate input whose gradient could reach an expert.
        let read = if gated { u32::MAX } else { !crate::model::READ };
        let routes: Vec<u32> = plan.mix_routes().iter().map(|&f| f & read).collect();
        let spec = MixSpec {
            units: u,
            experts: e,
            rows_cap: b,
            cols: w,
            uniform: !gated,
            gate_input_grad: gated,
            route: &routes,
        };
        let buffers = MixBuffers {
            h: &acts.h,
            logits: gated.then_some(&a),
            gate: &g,
            out: &acts.c,
            grad_out: &acts.dc,
            grad_h: &acts.dh,
            grad_logits: gated.then_some(&da),
            grad_x: gated.then_some(&dx),
        };
        let mix = Mix::new(gpu, &spec, &buffers)?;
        Ok(Mixer {
            gate,
            mix,
            weights: g,
        })
    }

    /// The gate weights `[U, B, E]` of the last forward (a handle to the buffer, not a copy).
    pub(super) fn weights(&self) -> &wgpu::Buffer {
        &self.weights
    }

    /// The concatenation of the experts and the gate logits layer over it.
    fn gate(
        gpu: &Gpu,
        plan: &ModelPlan,
        acts: &Activations,
        params: &FlatParams,
        b: u32,
        (a, da, dx): (&wgpu::Buffer, &wgpu::Buffer, &wgpu::Buffer),
    ) -> Result<Gate> {
        let (e, w) = (plan.n_tables(), plan.config.model.expert_width);
        let hc = f32s(gpu, "gate input", b as u64 * (e * w) as u64);
        // The concat's backward is never recorded (the gate input's gradient reaches h through
        // the mix's dh); its bind group still needs buffers of the right sizes.
        let concat_buffers = CombineBuffers {
            x: &acts.h,
            h: &hc,
            grad_h: &hc,
            grad_x: &acts.z,
        };
        let concat = Combine::new(gpu, CombineKind::Concat, e, b, w, &concat_buffers)?;
        let flat = |name: &str| params.at(plan.dense_param(name).expect("planned").offset);
        let spec = LinearSpec {
            tables: plan.towers.len() as u32,
            batch_cap: b,
            fan_in: e * w,
            out: e,
            relu: false,
        };
        let buffers = LinearBuffers {
            x: &hc,
            x_eval: None,
            dx: Some(dx),
            y: At::start(a),
            dy: da,
            weight: flat("gate.weight"),
            bias: Some(flat("gate.bias")),
        };
        let logits = Linear::over_shared_input(gpu, spec, &buffers)?;
        Ok(Gate { concat, logits })
    }
}

impl Layer for Mixer {
    fn set_rows(&mut self, gpu: &Gpu, rows: u32) -> Result<()> {
        if let Some(g) = &mut self.gate {
            g.concat.set_rows(gpu, rows)?;
            g.logits.set_rows(gpu, rows)?;
        }
        self.mix.set_rows(gpu, rows)
    }

    fn record_forward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>, _mode: Mode) {
        if let Some(g) = &self.gate {
            g.concat.record_forward(gpu, pass);
            g.logits.record(gpu, pass);
        }
        self.mix.record_forward(gpu, pass);
    }

    fn record_backward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        if let Some(g) = &self.gate {
            self.mix.record_backward_gate(gpu, pass);
            g.logits.record_backward(gpu, pass);
        }
        self.mix.record_backward_h(gpu, pass);
    }

    fn dispatches(&self) -> LayerDispatches {
        let (forward, backward) = self.mix.dispatches();
        let mut out = LayerDispatches::same(forward, backward);
        if let Some(g) = &self.gate {
            let (lf, lb) = g.logits.dispatches();
            out = out + LayerDispatches::same(1 + lf, lb);
        }
        out
    }

    fn name(&self) -> String {
        match self.gate {
            Some(_) => "mixer (gates)".into(),
            None => "mixer".into(),
        }
    }
}
