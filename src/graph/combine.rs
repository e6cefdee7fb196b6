//! How the tables' projections meet, `h` `[M, B, W]` → `c`: their mean `(1/M) Σ_m h^(m)`, their
//! concatenation in group order, or a learned gate per sample `Σ_m g_m h^(m)` with
//! `g = softmax(W_g concat(h) + b_g)` (`combine.gate.weight` `[M, M·W]`, `combine.gate.bias`
//! `[M]`). The gate's backward: the gated sum's `dh` and logit gradient, the logits' weight
//! gradients, and the logits' input gradient accumulated onto `dh` per table.

use super::layer::{Layer, LayerDispatches, Mode};
use super::params::FlatParams;
use super::projection::{f32s, Activations};
use crate::config::Combine as CombineConfig;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::dense::combine::{Combine, CombineBuffers, CombineKind};
use crate::kernels::dense::gate::{GateCombine, GateCombineBuffers};
use crate::kernels::dense::gemm::{Gemm, GemmSpec};
use crate::kernels::dense::linear::{At, Linear, LinearBuffers, LinearSpec};
use crate::model::ModelPlan;

/// The combine stage.
pub(super) enum Combiner {
    /// Mean or concat: one kernel each way.
    Plain(Combine),
    /// The learned gate.
    Gate(Box<GateOps>),
}

pub(super) struct GateOps {
    concat: Combine,
    logits: Linear,
    gate: GateCombine,
    to_h: Gemm,
}

impl Combiner {
    pub(super) fn new(
        gpu: &Gpu,
        plan: &ModelPlan,
        acts: &Activations,
        params: &FlatParams,
        b: u32,
    ) -> Result<Self> {
        let (m, w) = (plan.n_tables(), plan.config.model.expert_width);
        let kind = match plan.config.model.combine {
            CombineConfig::Gate => return Self::gate(gpu, plan, acts, params, b),
            CombineConfig::Concat => CombineKind::Concat,
            CombineConfig::Mean => CombineKind::Mean,
        };
        let buffers = CombineBuffers {
            x: &acts.h,
            h: &acts.c,
            grad_h: &acts.dc,
            grad_x: &acts.dh,
        };
        Ok(Combiner::Plain(Combine::new(gpu, kind, m, b, w, &buffers)?))
    }

    fn gate(
        gpu: &Gpu,
        plan: &ModelPlan,
        acts: &Activations,
        params: &FlatParams,
        b: u32,
    ) -> Result<Self> {
        let (m, w) = (plan.n_tables(), plan.config.model.expert_width);
        let mw = m * w;
        let hc = f32s(gpu, "gate input", b as u64 * mw as u64);
        // The concat's backward is never recorded (the gate's gradient reaches h through `to_h`);
        // its bind group still needs buffers of the right sizes.
        let concat_buffers = CombineBuffers {
            x: &acts.h,
            h: &hc,
            grad_h: &hc,
            grad_x: &acts.z,
        };
        let concat = Combine::new(gpu, CombineKind::Concat, m, b, w, &concat_buffers)?;
        let a = f32s(gpu, "gate logits", b as u64 * m as u64);
        let da = f32s(gpu, "gate logits grad", b as u64 * m as u64);
        let g = f32s(gpu, "gate", b as u64 * m as u64);
        let w_off = plan
            .dense_param("combine.gate.weight")
            .expect("planned")
            .offset;
        let b_off = plan
            .dense_param("combine.gate.bias")
            .expect("planned")
            .offset;
        let flat = |offset| params.at(offset);
        let spec = LinearSpec {
            tables: 1,
            batch_cap: b,
            fan_in: mw,
            out: m,
            relu: false,
        };
        let buffers = LinearBuffers {
            x: &hc,
            x_eval: None,
            dx: None,
            y: At::start(&a),
            dy: &da,
            weight: flat(w_off),
            bias: Some(flat(b_off)),
        };
        let logits = Linear::new(gpu, spec, &buffers)?;
        let gate_buffers = GateCombineBuffers {
            h: &acts.h,
            logits: &a,
            gate: &g,
            out: &acts.c,
            grad_out: &acts.dc,
            grad_h: &acts.dh,
            grad_logits: &da,
        };
        let gate = GateCombine::new(gpu, m, b, w, &gate_buffers)?;
        // dh[m] += da · W_g[:, m·W .. (m+1)·W]: table m reads its column block of W_g (stride W)
        // and the same da (stride 0), accumulating onto the gate's own dh.
        let spec = GemmSpec {
            lda: m,
            stride_a: 0,
            ldb: mw,
            stride_b: w as u64,
            offset_b: w_off,
            accumulate: true,
            ..GemmSpec::new(m, b, w, m, false, false)
        };
        let to_h = Gemm::new(gpu, &spec, &da, &params.values, None, None, &acts.dh)?;
        Ok(Combiner::Gate(Box::new(GateOps {
            concat,
            logits,
            gate,
            to_h,
        })))
    }
}

impl Layer for Combiner {
    fn set_rows(&mut self, gpu: &Gpu, rows: u32) -> Result<()> {
        match self {
            Combiner::Plain(c) => c.set_rows(gpu, rows),
            Combiner::Gate(ops) => {
                let GateOps {
                    concat,
                    logits,
                    gate,
                    to_h,
                } = &mut **ops;
                concat.set_rows(gpu, rows)?;
                logits.set_rows(gpu, rows)?;
                gate.set_rows(gpu, rows)?;
                let (_, n, k) = to_h.dims();
                to_h.set_dims(gpu, rows, n, k)
            }
        }
    }

    fn record_forward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>, _mode: Mode) {
        match self {
            Combiner::Plain(c) => c.record_forward(gpu, pass),
            Combiner::Gate(ops) => {
                ops.concat.record_forward(gpu, pass);
                ops.logits.record(gpu, pass);
                ops.gate.record_forward(gpu, pass);
            }
        }
    }

    fn record_backward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        match self {
            Combiner::Plain(c) => c.record_backward(gpu, pass),
            Combiner::Gate(ops) => {
                ops.gate.record_backward(gpu, pass);
                ops.logits.record_backward(gpu, pass);
                ops.to_h.record(gpu, pass);
            }
        }
    }

    fn dispatches(&self) -> LayerDispatches {
        match self {
            Combiner::Plain(_) => LayerDispatches::same(1, 1),
            Combiner::Gate(ops) => {
                let (f, b) = ops.gate.dispatches();
                let (lf, lb) = ops.logits.dispatches();
                LayerDispatches::same(1 + lf + f, lb + b + 1)
            }
        }
    }

    fn name(&self) -> String {
        match self {
            Combiner::Plain(_) => "combine".into(),
            Combiner::Gate(_) => "combine (gate)".into(),
        }
    }
}
