//! A group's TIMs: per sequence feature, one TIM per run of consecutive tables `m` whose TIM
//! matrices sit in one slab (all of the group's tables, in one run, when they share a slab), its
//! output copied into the sequence's field of `x` and its gradient taken from `dx`.
//!
//! [`EmbeddingTim`] is every group's TIMs as one layer after the gathers' ([`super::Embedding`]),
//! so the profile shows TIM apart from the gathers. Its forward runs after every group's gathers
//! and its updates after every group's gather updates: a group's TIMs write only their own
//! group's `x` columns and update only their own group's tables, so the order among groups
//! changes no value, and within a group it is what it always was (gathers, then TIMs; gather
//! updates, then TIM updates — the order the module docs of [`super`] promise a shared row).

use super::super::layer::{Cost, Layer, LayerDispatches, Mode, Phase, StepInputs};
use super::{bad, gather_traffic, Ctx};
use crate::config::{FeatureKind, SequencePooling};
use crate::error::Result;
use crate::gpu::{storage_usage, Gpu};
use crate::kernels::dense::elementwise::{Block, CopyColumns};
use crate::kernels::embedding::TbeUpdate;
use crate::kernels::tim::{Tim, TimSet, TimSpec};
use crate::model::GroupPlan;

/// A TIM over a run of a group's tables for one sequence feature.
pub(super) struct GroupTim {
    pub(super) slab: usize,
    pub(super) tim: Tim,
    pub(super) update: TbeUpdate,
    pub(super) to_x: CopyColumns,
    pub(super) from_dx: CopyColumns,
}

/// The run of group tables `first..first + sets.len()` in one slab.
struct Run {
    slab: usize,
    first: usize,
    sets: Vec<TimSet>,
}

impl Ctx<'_> {
    /// The TIMs of sequence feature `f` over the group's tables (none for another kind of
    /// feature), with their specs.
    pub(super) fn tims(
        &self,
        group: &GroupPlan,
        f: usize,
        x: &wgpu::Buffer,
        dx: &wgpu::Buffer,
    ) -> Result<Vec<(GroupTim, TimSpec)>> {
        let plan = self.plan;
        let FeatureKind::Sequence {
            item,
            side,
            max_len,
            pooling,
            ..
        } = &plan.config.features[f].kind
        else {
            return Ok(Vec::new());
        };
        let feature = |n: &String| plan.config.features.iter().position(|x| &x.name == n);
        let semantic: Vec<usize> = std::iter::once(item)
            .chain(side.iter())
            .map(|n| feature(n).ok_or_else(|| bad(format!("no feature {n:?}"))))
            .collect::<Result<_>>()?;
        let mut runs: Vec<Run> = Vec::new();
        for (local, &m) in group.tables.iter().enumerate() {
            let global = TimSet {
                semantic: semantic.iter().map(|&sf| plan.table_of(m, sf)).collect(),
                temporal: match pooling {
                    SequencePooling::Tim => Some(plan.time_table_of(m, f)),
                    SequencePooling::Mean => None,
                },
            };
            let (slab, set) = self.local_set(&global)?;
            match runs.last_mut() {
                Some(run) if run.slab == slab => run.sets.push(set),
                _ => runs.push(Run {
                    slab,
                    first: local,
                    sets: vec![set],
                }),
            }
        }
        (runs.into_iter())
            .map(|run| {
                let spec = TimSpec {
                    sets: run.sets.clone(),
                    max_batch: self.b,
                    max_len: *max_len,
                };
                let tim = self.group_tim(group, f, &run, spec.clone(), x, dx)?;
                Ok((tim, spec))
            })
            .collect()
    }

    /// `set` (global tables) as the slab that holds it whole and its tables in that slab.
    fn local_set(&self, set: &TimSet) -> Result<(usize, TimSet)> {
        let whole = |t: usize| match self.slabs.parts_of(t).as_slice() {
            [one] => Ok(*one),
            _ => Err(bad(format!(
                "{}: a TIM matrix split over slabs",
                self.plan.tables[t].name
            ))),
        };
        let semantic: Vec<(usize, usize)> = set
            .semantic
            .iter()
            .map(|&t| whole(t))
            .collect::<Result<_>>()?;
        let temporal = set.temporal.map(whole).transpose()?;
        let slab = semantic.first().map_or(0, |p| p.0);
        if semantic.iter().chain(&temporal).any(|p| p.0 != slab) {
            return Err(bad("a TIM's matrices in different slabs"));
        }
        let local = TimSet {
            semantic: semantic.iter().map(|p| p.1).collect(),
            temporal: temporal.map(|p| p.1),
        };
        Ok((slab, local))
    }

    /// The TIM of `run`, its update, and the copies between its output and the field of `x`.
    fn group_tim(
        &self,
        group: &GroupPlan,
        f: usize,
        run: &Run,
        spec: TimSpec,
        x: &wgpu::Buffer,
        dx: &wgpu::Buffer,
    ) -> Result<GroupTim> {
        let (gpu, plan, b): (&Gpu, _, _) = (self.gpu, self.plan, self.b);
        let storage = self.slabs.slab(run.slab);
        let (m_r, w) = (run.sets.len() as u32, group.width);
        let u_len = m_r as u64 * b as u64 * w as u64;
        let u = gpu.buffer("tim u", u_len * 4, storage_usage());
        let du = gpu.buffer("tim du", u_len * 4, storage_usage());
        let tim = Tim::new(gpu, storage, spec, &u, &du)?;
        let mut update = TbeUpdate::new(
            gpu,
            storage,
            tim.gather(),
            tim.row_grads(),
            tim.max_touches(),
        )?;
        update.set_table_decay(&self.decay_of(run.slab), self.decay_mode)?;
        update.set_stochastic_rounding(self.rounding_seed());
        let row_len = plan.n_fields() * w;
        let field = Block {
            at: run.first as u64 * b as u64 * row_len as u64 + plan.field_of(f) as u64 * w as u64,
            ld: row_len as u64,
            stride: b as u64 * row_len as u64,
        };
        let dense = Block::dense(b, w);
        let to_x = CopyColumns::new(gpu, m_r, b, w, &u, dense, x, field)?;
        let from_dx = CopyColumns::new(gpu, m_r, b, w, dx, field, &du, dense)?;
        Ok(GroupTim {
            slab: run.slab,
            tim,
            update,
            to_x,
            from_dx,
        })
    }
}

/// Every group's TIMs, in group order (see the module docs).
pub(in crate::graph) struct EmbeddingTim {
    groups: Vec<Vec<GroupTim>>,
    /// Ideal bytes of the last uploaded batch's TIM forward, backward and update.
    traffic: [u64; 3],
}

impl EmbeddingTim {
    pub(super) fn new(groups: Vec<Vec<GroupTim>>) -> Self {
        EmbeddingTim {
            groups,
            traffic: [0; 3],
        }
    }

    /// Whether any group has a TIM (a model without sequences leaves this layer out).
    pub(in crate::graph) fn is_empty(&self) -> bool {
        self.groups.iter().all(|g| g.is_empty())
    }

    fn tims(&self) -> impl Iterator<Item = &GroupTim> {
        self.groups.iter().flatten()
    }
}

impl Layer for EmbeddingTim {
    fn set_rows(&mut self, gpu: &Gpu, rows: u32) -> Result<()> {
        for t in self.groups.iter_mut().flatten() {
            t.to_x.set_rows(gpu, rows)?;
            t.from_dx.set_rows(gpu, rows)?;
        }
        Ok(())
    }

    fn upload(&mut self, gpu: &Gpu, inputs: &StepInputs<'_>) -> Result<()> {
        let mut tim_inputs = inputs.batch.tims.iter();
        let mut traffic = [0; 3];
        for t in self.groups.iter_mut().flatten() {
            let (bags, plan) =
                (tim_inputs.next()).ok_or_else(|| bad("the batch lacks a sequence input"))?;
            let storage = inputs.storage.slab(t.slab);
            t.tim.upload_bags(gpu, storage, bags)?;
            if let Some(step) = inputs.sparse {
                t.update.upload(gpu, t.tim.gather(), plan, step)?;
            }
            // As the bench's TIM figures: every row read, u written; the backward reads them
            // again and writes a gradient per row; the update as a gather's.
            let element = storage.layout.element.bytes();
            let [rows_read, update] = gather_traffic(t.tim.features(), element, bags);
            let u = bags.batch_size as u64
                * t.tim.features().widths.first().copied().unwrap_or(0) as u64
                * 4;
            traffic[0] += rows_read + u;
            traffic[1] += 2 * rows_read + u;
            traffic[2] += update;
        }
        self.traffic = traffic;
        Ok(())
    }

    fn record_forward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>, _mode: Mode) {
        for t in self.tims() {
            t.tim.record_forward(gpu, pass);
            t.to_x.record(gpu, pass);
        }
    }

    fn record_backward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        for t in self.tims() {
            t.from_dx.record(gpu, pass);
            t.tim.record_backward(gpu, pass);
        }
    }

    fn record_update(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        for t in self.tims() {
            t.update.record(gpu, pass);
        }
    }

    fn dispatches(&self) -> LayerDispatches {
        let tims = self.tims().count() as u64;
        LayerDispatches {
            update: tims,
            ..LayerDispatches::same(2 * tims, 2 * tims)
        }
    }

    fn name(&self) -> String {
        "embedding·tim".into()
    }

    fn cost(&self, phase: Phase, _rows: u32) -> Cost {
        let i = match phase {
            Phase::Forward => 0,
            Phase::Backward => 1,
            Phase::Update => 2,
        };
        Cost {
            bytes: self.traffic[i],
            flops: 0,
        }
    }
}
