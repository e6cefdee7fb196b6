//! The embedding stage: per expert group, one gather per storage slab it reads of every
//! non-sequence field of its tables (categorical rows, pooled bags, MNS digit sums) into the
//! expert input `x^(m)`, one TIM per sequence feature and slab copied into its field (a
//! mean-pooled sequence: TIM's mean variant, over no temporal table), and in the backward the
//! sequence fields' gradients handed to TIM. The sparse updates (one fused backward + update per
//! gather and per TIM) run after the whole backward, so the dispatch count grows with the slabs,
//! never with the features.
//!
//! A feature whose table is split by rows over several slabs is in each of their gathers: the
//! first (in slab order) writes its columns of `x`, the later ones add to them; each slab's update
//! plan holds only its own rows. TIM's matrices are whole in one slab (the packing keeps them
//! together); the tables `m` of a group whose TIM matrices sit in different slabs get one TIM per
//! run of consecutive `m` in one slab. A row that both a plain feature and a TIM read (the item table) gets the two
//! updates one after the other in that order — for SGD exactly one step with the summed gradient,
//! for row-wise Adagrad two accumulator steps.

use super::bad;
use super::layer::{Cost, Layer, LayerDispatches, Mode, Phase, StepInputs};
use super::slabs::Slabs;
use crate::config::{BagPooling, FeatureKind};
use crate::error::Result;
use crate::gpu::{storage_usage, Gpu};
use crate::kernels::embedding::{
    Bags, DecayMode, FeatureSet, FeatureSpec, Pooling, TbeForward, TbeUpdate,
};
use crate::kernels::tim::TimSpec;
use crate::model::{GroupPlan, ModelPlan};

#[path = "embedding_tim.rs"]
mod tim;

pub(super) use tim::EmbeddingTim;

/// One gather of a group over one slab, with its update.
struct SlabGather {
    slab: usize,
    gather: TbeForward,
    update: TbeUpdate,
}

/// One expert group's lookups.
pub(super) struct GroupLookups {
    gathers: Vec<SlabGather>,
    x: wgpu::Buffer,
    dx: wgpu::Buffer,
}

impl GroupLookups {
    /// The expert input `x` `[M_g, B, F·w]`.
    pub(super) fn x(&self) -> &wgpu::Buffer {
        &self.x
    }

    /// Its gradient.
    pub(super) fn dx(&self) -> &wgpu::Buffer {
        &self.dx
    }
}

/// What the host needs to prepare a batch for this stage.
pub(super) struct PreparerParts {
    /// Per gather in graph order (group by group, slab by slab): its feature set and the config
    /// feature of each feature.
    pub groups: Vec<(FeatureSet, Vec<usize>)>,
    /// Per TIM: (group, config feature, spec, feature set).
    pub tims: Vec<(usize, usize, TimSpec, FeatureSet)>,
}

/// Every group's gathers and their updates (see the module docs; the TIMs are the next layer,
/// [`EmbeddingTim`], so the profile shows them apart).
pub(super) struct Embedding {
    pub(super) groups: Vec<GroupLookups>,
    /// Ideal bytes of the last uploaded batch's gathers and updates (see [`Cost`]).
    traffic: [u64; 2],
}

/// One slab's share of a group's gather: its features (tables as the slab's own indices), the
/// config feature of each, and which of them add to an output an earlier slab wrote.
struct SlabFeatures {
    slab: usize,
    specs: Vec<FeatureSpec>,
    inputs: Vec<usize>,
    accumulate: Vec<usize>,
}

/// What building a group's lookups reads.
struct Ctx<'a> {
    gpu: &'a Gpu,
    plan: &'a ModelPlan,
    slabs: &'a Slabs,
    b: u32,
    decay_mode: DecayMode,
    /// Sparse updates built so far: each gets its own stochastic-rounding key.
    updates: std::cell::Cell<u64>,
}

impl Embedding {
    /// Builds every group's gathers and TIMs over `slabs` (the TIMs built after each group's
    /// gathers, as ever: the stochastic-rounding keys follow the build order).
    pub(super) fn new(
        gpu: &Gpu,
        plan: &ModelPlan,
        slabs: &Slabs,
        b: u32,
        decay_mode: DecayMode,
    ) -> Result<(Self, EmbeddingTim, PreparerParts)> {
        let ctx = Ctx {
            gpu,
            plan,
            slabs,
            b,
            decay_mode,
            updates: std::cell::Cell::new(0),
        };
        let mut parts = PreparerParts {
            groups: Vec::new(),
            tims: Vec::new(),
        };
        let (mut groups, mut group_tims) = (Vec::new(), Vec::new());
        for (g, group) in plan.groups.iter().enumerate() {
            let (gathers, x, dx) = ctx.gathers(g, group, &mut parts)?;
            let mut tims = Vec::new();
            for &f in &plan.fields {
                for (tim, spec) in ctx.tims(group, f, &x, &dx)? {
                    parts.tims.push((g, f, spec, tim.tim.features().clone()));
                    tims.push(tim);
                }
            }
            groups.push(GroupLookups { gathers, x, dx });
            group_tims.push(tims);
        }
        let embedding = Embedding {
            groups,
            traffic: [0; 2],
        };
        Ok((embedding, EmbeddingTim::new(group_tims), parts))
    }
}

/// The gather's features: for each table of the group, each non-sequence field in field order
/// (tables as global storage indices).
fn feature_specs(plan: &ModelPlan, group: &GroupPlan, b: u32) -> (Vec<FeatureSpec>, Vec<usize>) {
    let (w, row_len) = (group.width, plan.n_fields() * group.width);
    let mut specs = Vec::new();
    let mut inputs = Vec::new();
    for (local, &m) in group.tables.iter().enumerate() {
        for &f in &plan.fields {
            let pooling = match &plan.config.features[f].kind {
                FeatureKind::Sequence { .. } => continue,
                FeatureKind::Bag {
                    pooling: BagPooling::Mean,
                    ..
                } => Pooling::Mean,
                _ => Pooling::Sum,
            };
            specs.push(FeatureSpec {
                table: plan.table_of(m, f),
                pooling,
                mns: plan.shapes[f].mns.clone(),
                out_offset: local as u32 * b * row_len + plan.field_of(f) * w,
                out_stride: row_len,
                max_lookups: 0,
            });
            inputs.push(f);
        }
    }
    (specs, inputs)
}

/// `specs` over global tables, as one share per slab holding any of their rows (slab order); a
/// group with no gathered feature keeps one empty gather on slab 0.
fn by_slab(slabs: &Slabs, specs: &[FeatureSpec], inputs: &[usize]) -> Vec<SlabFeatures> {
    let mut shares: Vec<SlabFeatures> = Vec::new();
    for s in 0..slabs.storages().len() {
        let mut share = SlabFeatures {
            slab: s,
            specs: Vec::new(),
            inputs: Vec::new(),
            accumulate: Vec::new(),
        };
        for (spec, &f) in specs.iter().zip(inputs) {
            let parts = slabs.parts_of(spec.table);
            let Some(&(_, local)) = parts.iter().find(|p| p.0 == s) else {
                continue;
            };
            if parts.first().map(|p| p.0) != Some(s) {
                share.accumulate.push(share.specs.len());
            }
            share.specs.push(FeatureSpec {
                table: local,
                ..spec.clone()
            });
            share.inputs.push(f);
        }
        if !share.specs.is_empty() || (s + 1 == slabs.storages().len() && shares.is_empty()) {
            shares.push(share);
        }
    }
    shares
}

impl Ctx<'_> {
    /// Group `g`'s gathers (one per slab it reads) into one `x`, with `x` and its gradient; each
    /// gather's feature set goes to `parts`.
    fn gathers(
        &self,
        g: usize,
        group: &GroupPlan,
        parts: &mut PreparerParts,
    ) -> Result<(Vec<SlabGather>, wgpu::Buffer, wgpu::Buffer)> {
        let (plan, b) = (self.plan, self.b);
        let (specs, inputs) = feature_specs(plan, group, b);
        let mut sets = Vec::new();
        for share in by_slab(self.slabs, &specs, &inputs) {
            let layout = &self.slabs.slab(share.slab).layout;
            let set = FeatureSet::new(layout, share.specs, b)?.accumulate(&share.accumulate)?;
            sets.push((share.slab, set, share.inputs));
        }
        let out_len = sets.iter().map(|s| s.1.out_len).max().unwrap_or(0);
        let x_len = group.tables.len() as u64 * b as u64 * (plan.n_fields() * group.width) as u64;
        if out_len < x_len {
            return Err(bad(format!(
                "group {g}: the gather covers {out_len} of {x_len} floats"
            )));
        }
        let x = self.gpu.buffer("tbe out", out_len * 4, storage_usage());
        let dx = self.gpu.buffer("dx", x.size(), storage_usage());
        let mut gathers = Vec::new();
        for (slab, set, inputs) in sets {
            gathers.push(self.slab_gather(slab, &set, &inputs, &x, &dx)?);
            parts.groups.push((set, inputs));
        }
        Ok((gathers, x, dx))
    }

    /// One slab's gather of `set` into `x` and its update from `dx`.
    fn slab_gather(
        &self,
        slab: usize,
        set: &FeatureSet,
        inputs: &[usize],
        x: &wgpu::Buffer,
        dx: &wgpu::Buffer,
    ) -> Result<SlabGather> {
        let storage = self.slabs.slab(slab);
        let lookups: u64 = (inputs.iter())
            .map(|&f| self.b as u64 * self.plan.shapes[f].max_ids.max(1) as u64)
            .sum();
        let gather = TbeForward::with_output(self.gpu, storage, set.clone(), lookups, x.clone())?;
        let touches = self.touches(lookups, inputs);
        let mut update = TbeUpdate::new(self.gpu, storage, &gather, dx, touches)?;
        update.set_table_decay(&self.decay_of(slab), self.decay_mode)?;
        update.set_stochastic_rounding(self.rounding_seed());
        Ok(SlabGather {
            slab,
            gather,
            update,
        })
    }

    /// The L2 weight decay of each table of slab `slab`, in its storage order.
    fn decay_of(&self, slab: usize) -> Vec<Option<f32>> {
        (self.plan.slabs[slab].parts.iter())
            .map(|p| self.plan.tables[p.table].l2)
            .collect()
    }

    /// Rows the gather's update may touch: every lookup times the most MNS digits of a feature.
    fn touches(&self, lookups: u64, inputs: &[usize]) -> u64 {
        let digits = (inputs.iter())
            .map(|&f| {
                let mns = &self.plan.shapes[f].mns;
                mns.iter().map(|m| m.digits as u64).sum::<u64>().max(1)
            })
            .max()
            .unwrap_or(1);
        lookups * digits
    }
}

impl Layer for Embedding {
    fn set_rows(&mut self, _gpu: &Gpu, _rows: u32) -> Result<()> {
        Ok(())
    }

    fn upload(&mut self, gpu: &Gpu, inputs: &StepInputs<'_>) -> Result<()> {
        let batch = inputs.batch;
        let n_gathers: usize = self.groups.iter().map(|g| g.gathers.len()).sum();
        if batch.gathers.len() != n_gathers {
            return Err(bad("the batch was prepared for another graph"));
        }
        let gathers = self.groups.iter_mut().flat_map(|g| &mut g.gathers);
        let mut traffic = [0; 2];
        for (sg, (bags, plan)) in gathers.zip(&batch.gathers) {
            sg.gather.upload(gpu, inputs.storage.slab(sg.slab), bags)?;
            if let Some(step) = inputs.sparse {
                sg.update.upload(gpu, &sg.gather, plan, step)?;
            }
            let storage = inputs.storage.slab(sg.slab);
            let t = gather_traffic(&sg.gather.features, storage.layout.element.bytes(), bags);
            traffic = [traffic[0] + t[0], traffic[1] + t[1]];
        }
        self.traffic = traffic;
        Ok(())
    }

    fn record_forward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>, _mode: Mode) {
        for sg in self.groups.iter().flat_map(|g| &g.gathers) {
            sg.gather.record(gpu, pass);
        }
    }

    fn record_backward(&self, _gpu: &Gpu, _pass: &mut wgpu::ComputePass<'_>) {}

    fn record_update(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        for sg in self.groups.iter().flat_map(|g| &g.gathers) {
            sg.update.record(gpu, pass);
        }
    }

    fn dispatches(&self) -> LayerDispatches {
        let gathers: u64 = self.groups.iter().map(|g| g.gathers.len() as u64).sum();
        LayerDispatches {
            update: gathers,
            ..LayerDispatches::same(gathers, 0)
        }
    }

    fn name(&self) -> String {
        "embedding".into()
    }

    fn cost(&self, phase: Phase, _rows: u32) -> Cost {
        let bytes = match phase {
            Phase::Forward => self.traffic[0],
            Phase::Backward => 0,
            Phase::Update => self.traffic[1],
        };
        Cost { bytes, flops: 0 }
    }
}

/// FBGEMM's ideal traffic of one gather of `bags` and of its fused backward + update: every
/// looked-up row (MNS: every digit's row) read once and each pooled output written once; the
/// update reads each output gradient and reads and writes each touched row.
pub(super) fn gather_traffic(set: &FeatureSet, element: u64, bags: &Bags) -> [u64; 2] {
    let b = bags.batch_size as u64;
    let mut traffic = [0; 2];
    for (f, spec) in set.features.iter().enumerate() {
        let digits = spec.mns.iter().map(|m| m.digits as u64).sum::<u64>().max(1);
        let w = set.widths.get(f).copied().unwrap_or(0) as u64;
        let lookups = bags.feature_lookups(f).len() as u64 * digits;
        traffic[0] += lookups * w * element + b * w * 4;
        traffic[1] += b * w * 4 + 2 * lookups * w * element;
    }
    traffic
}

impl Ctx<'_> {
    /// `[train] stochastic_rounding`'s Philox key for the next sparse update built, or `None`:
    /// round f16 rows to nearest. Each update has its own key (the run's seed mixed with the
    /// update's place in the step), so the two updates one row can get in a step (its gather's and
    /// its TIM's) and the same local row of two storage groups draw independent noise.
    pub(super) fn rounding_seed(&self) -> Option<u64> {
        let train = &self.plan.config.train;
        let k = self.updates.get();
        self.updates.set(k + 1);
        let mixed = train.seed ^ k.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        train
            .stochastic_rounding
            .then(|| crate::rng::Rng::new(mixed).next_u64())
    }
}
