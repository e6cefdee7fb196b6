//! The embedding stage: per expert group, one gather of every non-sequence field of its tables
//! (categorical rows, pooled bags, MNS digit sums) into the expert input `x^(m)`, one TIM per
//! sequence feature copied into its field (a mean-pooled sequence: TIM's mean variant, over no
//! temporal table), and in the backward the sequence fields' gradients handed to TIM. The sparse updates (one fused backward + update per gather and per TIM) run after
//! the whole backward. A row that both a plain feature and a TIM read (the item table) gets the two
//! updates one after the other in that order — for SGD exactly one step with the summed gradient,
//! for row-wise Adagrad two accumulator steps.

use super::bad;
use super::layer::{Layer, LayerDispatches, Mode, StepInputs};
use crate::config::{BagPooling, FeatureKind, SequencePooling};
use crate::error::Result;
use crate::gpu::{storage_usage, Gpu};
use crate::kernels::dense::elementwise::{Block, CopyColumns};
use crate::kernels::embedding::{
    DecayMode, EmbeddingStorage, FeatureSet, FeatureSpec, Pooling, TbeForward, TbeUpdate,
};
use crate::kernels::tim::{Tim, TimSet, TimSpec};
use crate::model::{GroupPlan, ModelPlan};

/// A TIM over one group's tables for one sequence feature.
struct GroupTim {
    tim: Tim,
    update: TbeUpdate,
    to_x: CopyColumns,
    from_dx: CopyColumns,
}

/// One expert group's lookups.
pub(super) struct GroupLookups {
    gather: TbeForward,
    update: TbeUpdate,
    dx: wgpu::Buffer,
    tims: Vec<GroupTim>,
}

impl GroupLookups {
    /// The expert input `x` `[M_g, B, F·w]`.
    pub(super) fn x(&self) -> &wgpu::Buffer {
        self.gather.output()
    }

    /// Its gradient.
    pub(super) fn dx(&self) -> &wgpu::Buffer {
        &self.dx
    }
}

/// What the host needs to prepare a batch for this stage.
pub(super) struct PreparerParts {
    /// Per group: its feature set and the config feature of each feature.
    pub groups: Vec<(FeatureSet, Vec<usize>)>,
    /// Per TIM: (group, config feature, spec, feature set).
    pub tims: Vec<(usize, usize, TimSpec, FeatureSet)>,
}

/// Every group's lookups (see the module docs).
pub(super) struct Embedding {
    pub(super) groups: Vec<GroupLookups>,
}

/// A group's gather with what else building it produced.
struct Gather {
    gather: TbeForward,
    set: FeatureSet,
    /// The config feature of each of the set's features.
    inputs: Vec<usize>,
    /// Lookups the gather is sized for.
    lookups: u64,
}

/// What building a group's lookups reads.
struct Ctx<'a> {
    gpu: &'a Gpu,
    plan: &'a ModelPlan,
    storage: &'a EmbeddingStorage,
    b: u32,
    decay: (&'a [Option<f32>], DecayMode),
}

impl Embedding {
    /// Builds every group's gather and TIMs over `storage`.
    pub(super) fn new(
        gpu: &Gpu,
        plan: &ModelPlan,
        storage: &EmbeddingStorage,
        b: u32,
        decay_mode: DecayMode,
    ) -> Result<(Self, PreparerParts)> {
        let l2: Vec<Option<f32>> = plan.tables.iter().map(|t| t.l2).collect();
        let ctx = Ctx {
            gpu,
            plan,
            storage,
            b,
            decay: (&l2, decay_mode),
        };
        let mut parts = PreparerParts {
            groups: Vec::new(),
            tims: Vec::new(),
        };
        let mut groups = Vec::new();
        for (g, group) in plan.groups.iter().enumerate() {
            let Gather {
                gather,
                set,
                inputs,
                lookups,
            } = ctx.gather(g, group)?;
            let dx = gpu.buffer("dx", gather.output().size(), storage_usage());
            let touches = ctx.touches(lookups, &inputs);
            let mut update = TbeUpdate::new(gpu, storage, &gather, &dx, touches)?;
            update.set_table_decay(ctx.decay.0, decay_mode)?;
            update.set_stochastic_rounding(rounding_seed(plan));
            parts.groups.push((set, inputs));
            let mut tims = Vec::new();
            for &f in &plan.fields {
                if let Some((tim, spec)) = ctx.tim(group, f, gather.output(), &dx)? {
                    parts.tims.push((g, f, spec, tim.tim.features().clone()));
                    tims.push(tim);
                }
            }
            groups.push(GroupLookups {
                gather,
                update,
                dx,
                tims,
            });
        }
        Ok((Embedding { groups }, parts))
    }
}

/// The gather's features: for each table of the group, each non-sequence field in field order.
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

impl Ctx<'_> {
    /// Group `g`'s gather, its feature set and the config feature of each of its features.
    fn gather(&self, g: usize, group: &GroupPlan) -> Result<Gather> {
        let (plan, b) = (self.plan, self.b);
        let (specs, inputs) = feature_specs(plan, group, b);
        let m_g = group.tables.len();
        let per_sample: u64 = (inputs.iter().take(inputs.len() / m_g))
            .map(|&f| plan.shapes[f].max_ids.max(1) as u64)
            .sum();
        let lookups = m_g as u64 * b as u64 * per_sample;
        let set = FeatureSet::new(&self.storage.layout, specs, b)?;
        let x_len = m_g as u64 * b as u64 * (plan.n_fields() * group.width) as u64;
        if set.out_len < x_len {
            return Err(bad(format!(
                "group {g}: the gather covers {} of {x_len} floats",
                set.out_len
            )));
        }
        let gather = TbeForward::new(self.gpu, self.storage, set.clone(), lookups)?;
        Ok(Gather {
            gather,
            set,
            inputs,
            lookups,
        })
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

    /// TIM of sequence feature `f` over the group's tables (none for another kind of feature).
    fn tim(
        &self,
        group: &GroupPlan,
        f: usize,
        x: &wgpu::Buffer,
        dx: &wgpu::Buffer,
    ) -> Result<Option<(GroupTim, TimSpec)>> {
        let (gpu, plan, b) = (self.gpu, self.plan, self.b);
        let FeatureKind::Sequence {
            item,
            side,
            max_len,
            pooling,
            ..
        } = &plan.config.features[f].kind
        else {
            return Ok(None);
        };
        let feature = |n: &String| plan.config.features.iter().position(|x| &x.name == n);
        let semantic: Vec<usize> = std::iter::once(item)
            .chain(side.iter())
            .map(|n| feature(n).ok_or_else(|| bad(format!("no feature {n:?}"))))
            .collect::<Result<_>>()?;
        let spec = TimSpec {
            sets: (group.tables.iter())
                .map(|&m| TimSet {
                    semantic: semantic.iter().map(|&sf| plan.table_of(m, sf)).collect(),
                    temporal: match pooling {
                        SequencePooling::Tim => Some(plan.time_table_of(m, f)),
                        SequencePooling::Mean => None,
                    },
                })
                .collect(),
            max_batch: b,
            max_len: *max_len,
        };
        let (m_g, w) = (group.tables.len() as u32, group.width);
        let u_len = m_g as u64 * b as u64 * w as u64;
        let u = gpu.buffer("tim u", u_len * 4, storage_usage());
        let du = gpu.buffer("tim du", u_len * 4, storage_usage());
        let tim = Tim::new(gpu, self.storage, spec.clone(), &u, &du)?;
        let mut update = TbeUpdate::new(
            gpu,
            self.storage,
            tim.gather(),
            tim.row_grads(),
            tim.max_touches(),
        )?;
        update.set_table_decay(self.decay.0, self.decay.1)?;
        update.set_stochastic_rounding(rounding_seed(self.plan));
        let row_len = plan.n_fields() * w;
        let field = Block {
            at: plan.field_of(f) as u64 * w as u64,
            ld: row_len as u64,
            stride: b as u64 * row_len as u64,
        };
        let dense = Block::dense(b, w);
        let to_x = CopyColumns::new(gpu, m_g, b, w, &u, dense, x, field)?;
        let from_dx = CopyColumns::new(gpu, m_g, b, w, dx, field, &du, dense)?;
        let tim = GroupTim {
            tim,
            update,
            to_x,
            from_dx,
        };
        Ok(Some((tim, spec)))
    }
}

impl Layer for Embedding {
    fn set_rows(&mut self, gpu: &Gpu, rows: u32) -> Result<()> {
        for g in &mut self.groups {
            for t in &mut g.tims {
                t.to_x.set_rows(gpu, rows)?;
                t.from_dx.set_rows(gpu, rows)?;
            }
        }
        Ok(())
    }

    fn upload(&mut self, gpu: &Gpu, inputs: &StepInputs<'_>) -> Result<()> {
        let batch = inputs.batch;
        if batch.gathers.len() != self.groups.len() {
            return Err(bad("the batch was prepared for another graph"));
        }
        let mut tim_inputs = batch.tims.iter();
        for (g, (bags, plan)) in self.groups.iter_mut().zip(&batch.gathers) {
            g.gather.upload(gpu, inputs.storage, bags)?;
            if let Some(step) = inputs.sparse {
                g.update.upload(gpu, &g.gather, plan, step)?;
            }
            for t in &mut g.tims {
                let (bags, plan) =
                    (tim_inputs.next()).ok_or_else(|| bad("the batch lacks a sequence input"))?;
                t.tim.upload_bags(gpu, inputs.storage, bags)?;
                if let Some(step) = inputs.sparse {
                    t.update.upload(gpu, t.tim.gather(), plan, step)?;
                }
            }
        }
        Ok(())
    }

    fn record_forward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>, _mode: Mode) {
        for g in &self.groups {
            g.gather.record(gpu, pass);
            for t in &g.tims {
                t.tim.record_forward(gpu, pass);
                t.to_x.record(gpu, pass);
            }
        }
    }

    fn record_backward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        for g in &self.groups {
            for t in &g.tims {
                t.from_dx.record(gpu, pass);
                t.tim.record_backward(gpu, pass);
            }
        }
    }

    fn record_update(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        for g in &self.groups {
            g.update.record(gpu, pass);
            for t in &g.tims {
                t.update.record(gpu, pass);
            }
        }
    }

    fn dispatches(&self) -> LayerDispatches {
        let tims: u64 = self.groups.iter().map(|g| g.tims.len() as u64).sum();
        let groups = self.groups.len() as u64;
        LayerDispatches {
            update: groups + tims,
            ..LayerDispatches::same(groups + 2 * tims, 2 * tims)
        }
    }
}

/// `[train] stochastic_rounding`'s seed (the run's), or `None`: round f16 rows to nearest.
fn rounding_seed(plan: &ModelPlan) -> Option<u64> {
    let train = &plan.config.train;
    train.stochastic_rounding.then_some(train.seed)
}
