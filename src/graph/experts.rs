//! One expert group's dense stage: the group's interaction expert over its tables
//! (`y^(m) = ReLU(I^(m)(x^(m)))`) and its projection to the expert width,
//! `ReLU(W^(m) y^(m) + b^(m))` into the group's rows of `h` — or, under BatchNorm, `W^(m) y^(m)`
//! into `z` (the bias cancels exactly under BatchNorm, so it is not allocated; the ReLU follows
//! the norm, see [`super::projection`]).

use super::layer::{Layer, LayerDispatches, Mode};
use super::projection::Activations;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::dense::expert::Expert;
use crate::kernels::dense::linear::{At, Linear, LinearBuffers, LinearSpec};
use crate::model::{GroupPlan, ModelPlan};

use super::params::FlatParams;

/// A group's expert and projection.
pub(super) struct ExpertLayer {
    pub(super) expert: Expert,
    projection: Linear,
}

impl ExpertLayer {
    /// Group `g` of `plan` over its gathered input `x` (gradient `dx`), projecting into `acts`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        gpu: &Gpu,
        plan: &ModelPlan,
        g: usize,
        (x, dx): (&wgpu::Buffer, &wgpu::Buffer),
        acts: &Activations,
        params: &FlatParams,
        b: u32,
    ) -> Result<Self> {
        let group: &GroupPlan = &plan.groups[g];
        let spec = group.expert_spec(plan.n_fields(), b);
        let expert = Expert::new(gpu, &spec, x, dx)?;
        let bn = plan.config.model.batch_norm;
        let w = plan.config.model.expert_width;
        let at = group.slot as u64 * b as u64 * w as u64;
        let (y, dy) = if bn {
            (&acts.z, &acts.dz)
        } else {
            (&acts.h, &acts.dh)
        };
        let place = |name: String| plan.dense_param(&name).map(|p| params.at(p.offset));
        let weight = place(format!("proj.{g}.weight")).expect("the plan has every projection");
        let buffers = LinearBuffers {
            x: expert.output(),
            x_eval: None,
            dx: Some(expert.grad_output()),
            y: At {
                buffer: y,
                offset: at,
            },
            dy,
            weight,
            bias: place(format!("proj.{g}.bias")),
        };
        let linear = LinearSpec {
            tables: group.tables.len() as u32,
            batch_cap: b,
            fan_in: spec.out_cols(),
            out: w,
            relu: !bn,
        };
        let projection = Linear::new(gpu, linear, &buffers)?;
        Ok(ExpertLayer { expert, projection })
    }
}

impl Layer for ExpertLayer {
    fn set_rows(&mut self, gpu: &Gpu, rows: u32) -> Result<()> {
        self.expert.set_rows(gpu, rows)?;
        self.projection.set_rows(gpu, rows)
    }

    fn record_forward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>, _mode: Mode) {
        self.expert.record_forward(gpu, pass);
        self.projection.record(gpu, pass);
    }

    fn record_backward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.projection.record_backward(gpu, pass);
        self.expert.record_backward(gpu, pass);
    }

    fn dispatches(&self) -> LayerDispatches {
        let (ef, eb) = self.expert.dispatches();
        let (pf, pb) = self.projection.dispatches();
        LayerDispatches::same(ef + pf, eb + pb)
    }
}
