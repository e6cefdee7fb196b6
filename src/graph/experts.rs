//! One expert group's dense stage: the group's interaction expert over its tables
//! (`y^(m) = ReLU(I^(m)(x^(m)))`) and its projection to the expert width,
//! `ReLU(W^(m) y^(m) + b^(m))` into the group's rows of `h` — or, under BatchNorm, `W^(m) y^(m)`
//! into `z` (the bias cancels exactly under BatchNorm, so it is not allocated; the ReLU follows
//! the norm, see [`super::projection`]).

use super::layer::{Cost, Layer, LayerDispatches, Mode, Phase};
use super::projection::Activations;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::dense::expert::{Expert, ExpertKind};
use crate::kernels::dense::linear::{At, Linear, LinearBuffers, LinearSpec};
use crate::kernels::dense::pairwise::PairwiseKind;
use crate::model::{GroupPlan, ModelPlan};

use super::params::FlatParams;

/// A group's expert and projection.
pub(super) struct ExpertLayer {
    pub(super) expert: Expert,
    projection: Linear,
    /// "expert {g} {kind} (tables …)", for the profile.
    name: String,
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
        let tables: Vec<String> = group.tables.iter().map(|t| t.to_string()).collect();
        let name = format!(
            "expert {g} {} (tables {})",
            kind_name(&spec.kind),
            tables.join(",")
        );
        Ok(ExpertLayer {
            expert,
            projection,
            name,
        })
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

    fn name(&self) -> String {
        self.name.clone()
    }

    /// The interaction's input read and output written (DCNv2 also its cross layers' GEMMs;
    /// the pairwise experts' arithmetic is left out), plus the projection's GEMM.
    fn cost(&self, phase: Phase, rows: u32) -> Cost {
        let s = self.expert.spec();
        let p = self.projection.spec();
        let projection = Cost::linear(p.tables, rows, p.fan_in, p.out, phase);
        let (t, r, i) = (s.tables as u64, rows as u64, s.in_cols() as u64);
        let flops = match s.kind {
            ExpertKind::Dcn { layers, rank } => {
                let per_row = rank.map_or(i * i, |k| 2 * i * k as u64);
                2 * t * r * per_row * layers as u64
            }
            _ => 0,
        };
        let forward = Cost {
            bytes: 4 * t * r * (i + s.out_cols() as u64),
            flops,
        };
        let expert = match phase {
            Phase::Forward => forward,
            Phase::Backward => forward + forward,
            Phase::Update => Cost::default(),
        };
        expert + projection
    }
}

/// The expert's kind in the profile's layer names.
fn kind_name(kind: &ExpertKind) -> &'static str {
    match kind {
        ExpertKind::Dcn { .. } => "dcn",
        ExpertKind::Pairwise(PairwiseKind::Fm) => "fm",
        ExpertKind::Pairwise(PairwiseKind::FwFm) => "fwfm",
        ExpertKind::Pairwise(PairwiseKind::GwPfm { .. }) => "gwpfm",
        ExpertKind::Pairwise(PairwiseKind::Ipnn) => "ipnn",
        ExpertKind::Mlp { .. } => "mlp",
    }
}
