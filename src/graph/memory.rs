//! The memory statement: what a model will allocate, said before anything is — the bytes of each
//! embedding table (weights and optimizer state), of the storage groups that hold them (packed by
//! [`crate::model::pack`] as the graph packs them, each group's chunks under the device's binding
//! limit), of the activations at the batch capacity grouped
//! by what they hold, of the dense parameters and of the dense optimizer's state, and the total.
//!
//! It is computed from the same formulas as the memory check ([`super::sizes`] for the batch and
//! weight buffers, [`StorageLayout`] for the tables): [`check_memory`](super::check_memory) is
//! this report compared with the device's limits, so what `wgrec plan` prints is what the check
//! judged. Uniform buffers, staging buffers and the per-step input buffers (ids, labels) are not
//! counted: they are small and do not grow with the tables or the width keys.

use super::budget::table_width;
use super::sizes::{buffers, Kind, Need};
use super::{FeatureShape, Optimizers};
use crate::config::{FeatureKind, ModelConfig, SequencePooling};
use crate::kernels::embedding::{
    storage_capacity4, SparseOptimizer, StorageLayout, TableSpec, MAX_CHUNKS,
};
use crate::model::{pack, ModelPlan, Packing, SlabPlan};

/// One embedding table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableMemory {
    /// Checkpoint name, `emb.{m}.{feature}` (`.time` for a temporal table).
    pub name: String,
    /// Rows.
    pub rows: u32,
    /// Floats per row.
    pub width: u32,
    /// Bytes of the rows.
    pub weights: u64,
    /// Bytes of the sparse optimizer's state beside the rows.
    pub state: u64,
    /// The config key that sizes its rows (`feature[f].hash_rows`, `feature[f].buckets`, …).
    pub key: String,
    /// The config feature's name.
    pub feature: String,
}

impl TableMemory {
    /// Weights and state.
    pub fn bytes(&self) -> u64 {
        self.weights + self.state
    }
}

/// One storage group: the tables it packs, cut into chunk buffers a kernel binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupMemory {
    /// Tables it holds, whole or as a part (a row range of a table split over groups).
    pub tables: usize,
    /// Of those, parts of a split table.
    pub split: usize,
    /// Bytes of its tables.
    pub bytes: u64,
    /// Bytes of one chunk: the device's binding limit rounded down to a power of two vec4s.
    pub chunk_bytes: u64,
    /// Chunks it needs (at most [`MAX_CHUNKS`] fit).
    pub chunks: u64,
    /// The most one group can hold: [`MAX_CHUNKS`] chunks (and 2^32 vec4s).
    pub limit: u64,
}

impl GroupMemory {
    /// Whether the group fits its binding limit.
    pub fn fits(&self) -> bool {
        self.chunks <= MAX_CHUNKS as u64 && self.bytes <= self.limit
    }

    /// Bytes its chunk buffers take: each chunk up to `chunk_bytes`, and a 16-byte placeholder
    /// for each unused binding.
    pub fn allocated(&self) -> u64 {
        let used = self.chunks.clamp(1, MAX_CHUNKS as u64);
        self.bytes.max(16) + (MAX_CHUNKS as u64 - used) * 16
    }
}

/// The memory statement of one model (module docs).
pub struct MemoryReport {
    /// The batch capacity the activations are sized for.
    pub max_batch: u32,
    /// Every embedding table, in storage order.
    pub tables: Vec<TableMemory>,
    /// The storage groups.
    pub groups: Vec<GroupMemory>,
    /// Why the tables cannot be packed into groups at all (a TIM's matrices larger than one
    /// group, a row larger than one group), with the numbers; the check refuses with it.
    pub refusal: Option<String>,
    /// Tables `m` per feature (`model.tables`, for the refusal's text).
    pub(super) model_tables: u32,
    pub(super) needs: Vec<Need>,
}

/// The activations' groups, in the order the statement lists them, with their JSON names.
pub const ACTIVATION_KINDS: [(Kind, &str); 6] = [
    (Kind::ExpertInputs, "expert_inputs"),
    (Kind::Lookups, "lookups"),
    (Kind::Tim, "tim"),
    (Kind::ExpertActivations, "experts"),
    (Kind::Towers, "towers"),
    (Kind::Loss, "loss"),
];

impl MemoryReport {
    /// The statement of `config` on the data's `shapes` (one per feature) for batches of
    /// `max_batch` with `optimizers`, its tables packed in chunks of at most `binding` bytes.
    pub fn new(
        config: &ModelConfig,
        shapes: &[FeatureShape],
        max_batch: u32,
        optimizers: &Optimizers,
        binding: u64,
    ) -> Self {
        let sparse = optimizers.sparse;
        let tables = tables(config, shapes, sparse);
        let packing = Packing {
            optimizer: sparse,
            chunk_bytes: binding.max(16),
        };
        let (groups, refusal) = match storage_groups(config, shapes, packing) {
            Ok(groups) => (groups, None),
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
        MemoryReport {
            max_batch,
            tables,
            groups,
            refusal,
            model_tables: config.model.tables,
            needs: buffers(config, shapes, max_batch, optimizers.dense),
        }
    }

    /// Bytes of the buffers of `kind` (every copy).
    pub fn bytes_of(&self, kind: Kind) -> u64 {
        (self.needs.iter().filter(|n| n.kind == kind))
            .map(|n| n.bytes * n.copies)
            .sum()
    }

    /// The activations at the batch capacity, by group ([`ACTIVATION_KINDS`]).
    pub fn activations(&self) -> Vec<(&'static str, u64)> {
        (ACTIVATION_KINDS.iter())
            .map(|&(k, name)| (name, self.bytes_of(k)))
            .collect()
    }

    /// The dense parameters and their gradients (the experts' own weights included).
    pub fn dense(&self) -> u64 {
        self.bytes_of(Kind::Dense) + self.bytes_of(Kind::ExpertWeights)
    }

    /// The dense optimizer's state.
    pub fn dense_optimizer(&self) -> u64 {
        self.bytes_of(Kind::DenseOptimizer)
    }

    /// Bytes of the embedding storage's buffers.
    pub fn storage(&self) -> u64 {
        self.groups.iter().map(GroupMemory::allocated).sum()
    }

    /// Bytes of every batch-sized and weight buffer outside the embedding storage.
    pub fn buffers(&self) -> u64 {
        self.needs.iter().map(|n| n.bytes * n.copies).sum()
    }

    /// Everything the model allocates (module docs for what is left out).
    pub fn total(&self) -> u64 {
        self.storage() + self.buffers()
    }
}

/// Every embedding table, as [`ModelPlan`](crate::model::ModelPlan) lays them out: for each
/// table `m`, each feature in config order (a TIM sequence's temporal table; a mean-pooled
/// sequence has none).
fn tables(
    config: &ModelConfig,
    shapes: &[FeatureShape],
    sparse: SparseOptimizer,
) -> Vec<TableMemory> {
    let mut out = Vec::new();
    for m in 0..config.table_count() {
        let width = table_width(config, m);
        let w4 = width / 4;
        for (f, feature) in config.features.iter().enumerate() {
            let (rows, name, key) = match &feature.kind {
                FeatureKind::Sequence {
                    pooling: SequencePooling::Mean,
                    ..
                } => continue,
                FeatureKind::Sequence { buckets, .. } => (
                    *buckets,
                    format!("emb.{m}.{}.time", feature.name),
                    format!("feature[{f}].buckets"),
                ),
                kind => {
                    let key = match kind {
                        FeatureKind::Categorical {
                            hash_rows: Some(_), ..
                        } => format!("feature[{f}].hash_rows"),
                        _ => format!("feature[{f}]"),
                    };
                    let rows = shapes.get(f).map_or(0, |s| s.rows);
                    (rows, format!("emb.{m}.{}", feature.name), key)
                }
            };
            let element = config.dtype_of(f).element(); // f16: 8-byte units (layout.rs)
            let unit = element.unit_bytes();
            out.push(TableMemory {
                name,
                rows,
                width,
                weights: rows as u64 * w4 as u64 * unit,
                state: rows as u64 * element.state_units(sparse, w4) as u64 * unit,
                key,
                feature: feature.name.clone(),
            });
        }
    }
    out
}

/// The storage groups of the model, packed as the graph packs them for chunks of
/// `packing.chunk_bytes`.
fn storage_groups(
    config: &ModelConfig,
    shapes: &[FeatureShape],
    packing: Packing,
) -> crate::error::Result<Vec<GroupMemory>> {
    let plan = ModelPlan::new(config, shapes)?;
    let slabs = pack(&plan.tables, &plan.tim_units(), packing)?;
    (slabs.iter())
        .map(|s| group_memory(&plan, s, packing))
        .collect()
}

/// One group's bytes and chunks, from the layout its storage will have.
fn group_memory(
    plan: &ModelPlan,
    slab: &SlabPlan,
    packing: Packing,
) -> crate::error::Result<GroupMemory> {
    let specs: Vec<TableSpec> = (slab.parts.iter())
        .map(|p| TableSpec::whole(p.rows.len() as u32, plan.tables[p.table].width))
        .collect();
    let layout =
        StorageLayout::with_element(&specs, packing.optimizer, slab.element, packing.chunk_bytes)?;
    let split = (slab.parts.iter())
        .filter(|p| p.rows.len() as u32 != plan.tables[p.table].rows)
        .count();
    Ok(GroupMemory {
        tables: slab.parts.len(),
        split,
        bytes: layout.total4 * layout.unit_bytes(),
        chunk_bytes: layout.chunk4() * layout.unit_bytes(),
        chunks: layout.chunks() as u64,
        limit: storage_capacity4(packing.chunk_bytes, slab.element) * layout.unit_bytes(),
    })
}

#[cfg(test)]
#[path = "memory_tests.rs"]
mod tests;
