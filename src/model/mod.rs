//! What a model *is*, built from its config and the data's shapes with no GPU: the [`ModelPlan`].
//!
//! The plan is the single description every other part reads. The graph compiler
//! ([`crate::graph`]) walks it to allocate buffers and record kernels; the memory check, the
//! PyTorch description ([`ModelPlan::describe`]) and the checkpoint's tensor names come from it; the
//! tests of this module run without an adapter. A new model capability (task towers, per-task
//! tables, several storage slabs, f16 tables) starts here, as data, with an invariant in
//! [`ModelPlan::check`], before any kernel is involved.
//!
//! # Words (one per meaning)
//! - **table** `m` (`0..M`): one of the multi-embedding paradigm's `M` copies of the model's
//!   embeddings; *a table* in [`TablePlan`] is one embedding matrix `emb.{m}.{feature}`.
//! - **field**: one feature's slot in an expert's input row `x^(m)` ([`ModelPlan::fields`]).
//! - **group**: tables `m` that share one expert config, computed by one expert ([`GroupPlan`]).
//! - **slab**: one storage allocation of embedding matrices ([`SlabPlan`]; chunked, one sparse
//!   optimizer state), what a gradient route targets.
//! - **tower**: the dense layers after the combine; a **head** gives each task its logit.
//! - **route**: which tower's backward reaches which slab, and how ([`Route`]).
//!
//! The field, group, table and dense-parameter orders are part of the file formats (checkpoint
//! names, flat offsets, the order of the initialising random draws): they are documented on each
//! builder and a change to them changes every trained model's bits.

mod dense;
mod describe;
mod slabs;
mod tables;
mod tasks;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_tasks;

pub use dense::{DenseParam, Init, ParamOwner};
pub use slabs::{pack, Packing, PartPlan, SlabPlan, TimUnit};
pub use tables::{Element, Owner, TablePlan};
pub use tasks::{SetOwner, SetPlan, PRESENT, READ, TRAIN};

use std::collections::HashMap;

use crate::config::{Combine, Expert as ExpertConfig, FeatureKind, ModelConfig};
use crate::error::{Error, Result};
use crate::kernels::dense::expert::{ExpertKind, ExpertSpec};
use crate::kernels::dense::pairwise::PairwiseKind;
use crate::kernels::embedding::MnsBase;

/// What the data says about one feature's table (the encoder's fit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureShape {
    /// Table rows (vocabulary with its OOV row, hash rows, or MNS digit rows); 0 for sequences.
    pub rows: u32,
    /// MNS bases of a numeric feature (its values are encoded on the GPU); empty otherwise.
    pub mns: Vec<MnsBase>,
    /// Ids per sample the buffers are sized for: 1 for categorical and numeric features; for a
    /// bag, an average over the batch (a batch's total must fit `max_batch` times it).
    pub max_ids: u32,
}

/// Tables `m` with one expert config (order of first appearance in `0..M`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPlan {
    /// The interaction every table of the group runs (its own parameters per table).
    pub expert: ExpertKind,
    /// Table indices `m`, ascending.
    pub tables: Vec<u32>,
    /// Embedding width of a field's sub-embedding (`dim`, or the tables' entry of `dims`).
    pub dim: u32,
    /// Floats per field of `x^(m)`: `dim`, or `dim · blocks` for GwPFM.
    pub width: u32,
    /// The group's first table slot in the `[M, B, W]` projection output (groups in order).
    pub slot: u32,
}

impl GroupPlan {
    /// The expert's spec for batches of `rows_cap` (ReLU after the interaction, always).
    pub fn expert_spec(&self, fields: u32, rows_cap: u32) -> ExpertSpec {
        ExpertSpec {
            kind: self.expert.clone(),
            tables: self.tables.len() as u32,
            rows_cap,
            fields,
            dim: self.dim,
            relu: true,
        }
    }
}

/// The dense layers after the combine, shared by the tasks whose heads read it.
#[derive(Debug, Clone, PartialEq)]
pub struct TowerPlan {
    /// Input width (the combine's output).
    pub input: u32,
    /// Hidden widths, input side first (ReLU, then dropout, after each).
    pub hidden: Vec<u32>,
    /// Dropout probability after each hidden layer (0: none).
    pub dropout: f32,
    /// The embedding sets whose tables this tower's input is computed from.
    pub reads: Vec<usize>,
}

impl TowerPlan {
    /// The width of the tower's output (its last hidden layer, or its input).
    pub fn output(&self) -> u32 {
        self.hidden.last().copied().unwrap_or(self.input)
    }
}

/// One linear head over a tower: a logit per output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadPlan {
    /// The tower it reads.
    pub tower: usize,
    /// The outputs it scores ([`crate::config::ModelConfig::outputs`]: the tasks, or each task in
    /// each scenario), in logit column order.
    pub outputs: Vec<usize>,
}

/// Whether a route's gradient reaches the set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteMode {
    /// The tower's backward reaches the set's experts and tables.
    Train,
    /// The tower reads the set's experts, but no gradient flows back into them (STEM's
    /// stop-gradient); the tower's gate weights on them still learn.
    StopGradient,
}

/// A gradient route: which tower reads which embedding set, and whether its loss trains it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The tower.
    pub tower: usize,
    /// The embedding set.
    pub set: usize,
    /// Train or stop-gradient.
    pub mode: RouteMode,
}

/// What a model is (see the module docs).
#[derive(Debug, Clone)]
pub struct ModelPlan {
    /// The config it was planned from.
    pub config: ModelConfig,
    /// The data's shape per config feature.
    pub shapes: Vec<FeatureShape>,
    /// Field order: the config feature index of field `i`. Sequence features first (config order),
    /// then the others (config order): the gather writes the non-sequence fields in place and TIM's
    /// output is copied into the sequence fields, so the gather's output spans the full row.
    pub fields: Vec<usize>,
    /// Expert groups in order of first appearance.
    pub groups: Vec<GroupPlan>,
    /// Every embedding matrix in storage order: for each `m`, each config feature in config order
    /// (a sequence feature's entry is its temporal table).
    pub tables: Vec<TablePlan>,
    /// Storage slabs; each matrix's rows live in exactly one (a matrix larger than a slab is
    /// split by rows). [`ModelPlan::new`] packs for no device ([`Packing::UNBOUNDED`]); the graph
    /// packs again for its device ([`ModelPlan::pack_slabs`]).
    pub slabs: Vec<SlabPlan>,
    /// Embedding sets (the shared one first, then one per task for `stem` and `ple`).
    pub sets: Vec<SetPlan>,
    /// Dense parameters in flat-buffer order.
    pub dense: Vec<DenseParam>,
    /// Towers after the combine.
    pub towers: Vec<TowerPlan>,
    /// Heads: every task is scored by exactly one.
    pub heads: Vec<HeadPlan>,
    /// Gradient routes from towers to slabs.
    pub routes: Vec<Route>,
}

fn bad(message: impl Into<String>) -> Error {
    Error::Graph(message.into())
}

impl ModelPlan {
    /// Plans `config` (already validated) for the data's `shapes` (one per config feature), and
    /// checks the plan's invariants.
    pub fn new(config: &ModelConfig, shapes: &[FeatureShape]) -> Result<Self> {
        if shapes.len() != config.features.len() {
            return Err(bad(format!(
                "{} feature shapes for {} features",
                shapes.len(),
                config.features.len()
            )));
        }
        let fields = field_order(config);
        let groups = plan_groups(config, &fields);
        let tables = tables::plan_tables(config, shapes, &groups)?;
        let sets = tasks::plan_sets(config);
        let (towers, heads, routes) = tasks::plan_towers(config, combine_width(config));
        let mut plan = ModelPlan {
            config: config.clone(),
            shapes: shapes.to_vec(),
            fields,
            groups,
            tables,
            slabs: Vec::new(),
            sets,
            dense: Vec::new(),
            towers,
            heads,
            routes,
        };
        plan.dense = dense::plan_dense(&plan);
        plan.pack_slabs(Packing::UNBOUNDED)?;
        Ok(plan)
    }

    /// Tables `m` in all (every set's), one expert each.
    pub fn n_tables(&self) -> u32 {
        self.config.table_count()
    }

    /// Fields per expert input row.
    pub fn n_fields(&self) -> u32 {
        self.fields.len() as u32
    }

    /// The field index of config feature `f`.
    pub fn field_of(&self, f: usize) -> u32 {
        self.fields
            .iter()
            .position(|&x| x == f)
            .expect("every feature has a field") as u32
    }

    /// The storage index of table `m`'s matrix of (non-sequence) config feature `f`.
    pub fn table_of(&self, m: u32, f: usize) -> usize {
        self.find_table(m, f, false)
    }

    /// The storage index of table `m`'s temporal matrix of sequence feature `f`.
    pub fn time_table_of(&self, m: u32, f: usize) -> usize {
        self.find_table(m, f, true)
    }

    fn find_table(&self, m: u32, f: usize, temporal: bool) -> usize {
        self.tables
            .iter()
            .position(|t| {
                t.table == m
                    && t.feature == f
                    && matches!(t.owner, Owner::Temporal { .. }) == temporal
            })
            .expect("the plan holds every (table, feature) matrix")
    }

    /// The dense parameter named `name`.
    pub fn dense_param(&self, name: &str) -> Option<&DenseParam> {
        self.dense.iter().find(|p| p.name == name)
    }

    /// Elements of the flat dense buffers (a multiple of 4, at least 4).
    pub fn dense_len(&self) -> u64 {
        dense::flat_len(&self.dense)
    }

    /// The plan's invariants; [`ModelPlan::new`] checks them, and so can a test of a hand-edited
    /// plan. Each failure names the table, tower or route.
    pub fn check(&self) -> Result<()> {
        tables::check_tables(self)?;
        tasks::check_sets(self)?;
        self.check_groups()?;
        self.check_routes()?;
        dense::check_dense(&self.dense)
    }

    fn check_groups(&self) -> Result<()> {
        let m = self.n_tables();
        let mut seen = vec![0u32; m as usize];
        for g in &self.groups {
            for &t in &g.tables {
                *seen
                    .get_mut(t as usize)
                    .ok_or_else(|| bad(format!("group table {t} ≥ M")))? += 1;
            }
        }
        if let Some(t) = seen.iter().position(|&n| n != 1) {
            return Err(bad(format!(
                "table {t} is in {} expert groups, not 1",
                seen[t]
            )));
        }
        let mut sorted = self.fields.clone();
        sorted.sort_unstable();
        if sorted != (0..self.config.features.len()).collect::<Vec<_>>() {
            return Err(bad("the field order is not a permutation of the features"));
        }
        Ok(())
    }

    fn check_routes(&self) -> Result<()> {
        for (i, r) in self.routes.iter().enumerate() {
            let tower = self.towers.get(r.tower).ok_or_else(|| {
                bad(format!(
                    "route {i} starts at tower {}, which does not exist",
                    r.tower
                ))
            })?;
            if !tower.reads.contains(&r.set) {
                return Err(bad(format!(
                    "route {i} targets set {} that tower {} does not read",
                    r.set, r.tower
                )));
            }
        }
        let mut scored = vec![0; self.config.outputs().len()];
        for h in &self.heads {
            if h.tower >= self.towers.len() {
                return Err(bad(format!(
                    "a head reads tower {}, which does not exist",
                    h.tower
                )));
            }
            for &t in &h.outputs {
                *scored.get_mut(t).ok_or_else(|| {
                    bad(format!("a head scores output {t}, which does not exist"))
                })? += 1;
            }
        }
        if let Some(t) = scored.iter().position(|&n| n != 1) {
            return Err(bad(format!(
                "output {t} is scored by {} heads, not 1",
                scored[t]
            )));
        }
        Ok(())
    }
}

/// Sequence features first, then the others, each in config order.
fn field_order(config: &ModelConfig) -> Vec<usize> {
    let is_seq = |f: &usize| matches!(config.features[*f].kind, FeatureKind::Sequence { .. });
    let n = config.features.len();
    let mut fields: Vec<usize> = (0..n).filter(is_seq).collect();
    fields.extend((0..n).filter(|f| !is_seq(f)));
    fields
}

/// The expert each config expert names, GwPFM's blocks given as a field partition.
fn expert_kind(config: &ModelConfig, fields: &[usize], e: &ExpertConfig) -> ExpertKind {
    match e {
        ExpertConfig::Dcn { layers, rank } => ExpertKind::Dcn {
            layers: *layers,
            rank: *rank,
        },
        ExpertConfig::Fm => ExpertKind::Pairwise(PairwiseKind::Fm),
        ExpertConfig::Fwfm => ExpertKind::Pairwise(PairwiseKind::FwFm),
        ExpertConfig::Ipnn => ExpertKind::Pairwise(PairwiseKind::Ipnn),
        ExpertConfig::Mlp { widths } => ExpertKind::Mlp {
            widths: widths.clone(),
        },
        ExpertConfig::Gwpfm { blocks } => {
            let feature: HashMap<&str, usize> = (config.features.iter().enumerate())
                .map(|(i, f)| (f.name.as_str(), i))
                .collect();
            let mut partition = vec![0u32; fields.len()];
            for (b, names) in blocks.iter().enumerate() {
                for n in names {
                    let f = feature[n.as_str()];
                    let field = fields
                        .iter()
                        .position(|&x| x == f)
                        .expect("a field per feature");
                    partition[field] = b as u32;
                }
            }
            ExpertKind::Pairwise(PairwiseKind::GwPfm {
                blocks: blocks.len().max(1) as u32,
                partition,
            })
        }
    }
}

/// Sub-embeddings per field an expert reads (GwPFM's blocks), else 1.
fn blocks_of(kind: &ExpertKind) -> u32 {
    match kind {
        ExpertKind::Pairwise(PairwiseKind::GwPfm { blocks, .. }) => *blocks,
        _ => 1,
    }
}

/// Tables with equal expert kinds and widths form a group, in order of first appearance.
fn plan_groups(config: &ModelConfig, fields: &[usize]) -> Vec<GroupPlan> {
    let mut groups: Vec<GroupPlan> = Vec::new();
    for m in 0..config.table_count() {
        let kind = expert_kind(config, fields, config.expert(m));
        let dim = config.dim_of(m);
        match groups.iter_mut().find(|g| g.expert == kind && g.dim == dim) {
            Some(g) => g.tables.push(m),
            None => groups.push(GroupPlan {
                dim,
                width: dim * blocks_of(&kind),
                expert: kind,
                tables: vec![m],
                slot: 0,
            }),
        }
    }
    let mut slot = 0;
    for g in &mut groups {
        g.slot = slot;
        slot += g.tables.len() as u32;
    }
    groups
}

/// The combine's output width: `W` for mean and gate, `M·W` for concat.
fn combine_width(config: &ModelConfig) -> u32 {
    let w = config.model.expert_width;
    match config.model.combine {
        Combine::Mean | Combine::Gate => w,
        Combine::Concat => w * config.model.tables,
    }
}
