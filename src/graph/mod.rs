//! The graph compiler (DESIGN.md §One training step, `docs/graph.md`): a validated
//! [`ModelConfig`] and the data's shapes become every buffer, pipeline and bind group of the model,
//! built once for a maximum batch, and three recorded programs — a training step (forward, loss,
//! backward, sparse and dense updates), an evaluation forward, and prediction.
//!
//! A training step writes its inputs with `queue.write_buffer`, records every dispatch into one
//! encoder and submits once; nothing is allocated or compiled inside it. The number of dispatches
//! is a sum of per-op constants ([`Graph::dispatches`]): it grows with the number of expert groups,
//! hidden layers and sequence features, never with the number of features (they are columns of one
//! gather) or of tables (a grid dimension everywhere).
//!
//! # The model (METHODS.md §1.1, §1.2, §2.2)
//! - **Tables.** For each of the `M` tables and each feature `f`, an embedding table `E_f^(m)`
//!   (`emb.{m}.{f}`) of width `w_m = K·G_m` (`G_m` the GwPFM groups of table `m`'s expert, else 1);
//!   each sequence feature adds a temporal table `emb.{m}.{f}.time` of `buckets` rows.
//!   Categorical features read one row, bags pool theirs (mean or sum), numeric features sum their
//!   MNS digit rows, sequence features are TIM over the item's (+ side) rows of the same `m`.
//! - **Fields.** `x^(m) = [e_1^(m); …; e_F^(m)]`, sequence features first (in config order), then
//!   the others (in config order). (The gather writes the non-sequence fields in place; the
//!   sequence fields are copied from TIM's output. Putting them first keeps the gather's output the
//!   full `[M, B, F·w]` extent.)
//! - **Experts.** Tables with the same expert config form a *group* (order of first appearance),
//!   each group one [`Expert`] over its tables with ReLU after the interaction:
//!   `y^(m) = ReLU(I^(m)(x^(m)))`.
//! - **Projection.** `h^(m) = ReLU(BN(W^(m) y^(m)))` (`proj.{g}.weight` `[M_g, W, out]`; BatchNorm
//!   over the batch per table and column, γ/β `proj.bn.weight`/`proj.bn.bias` `[M, W]`), or
//!   `ReLU(W^(m) y^(m) + b^(m))` without BatchNorm. (Under BatchNorm `b` cancels exactly, so it is
//!   not allocated.) `h` is `[M, B, W]` with groups in order.
//! - **Combine.** Mean over the tables `(1/M) Σ_m h^(m)`, their concatenation in group order, or a
//!   learned gate per sample `Σ_m g_m h^(m)` with `g = softmax(W_g concat(h) + b_g)`
//!   (`combine.gate.weight` `[M, M·W]`, `combine.gate.bias` `[M]`).
//! - **Shared MLP.** `ReLU(x Wᵀ + b)` per hidden width (`mlp.{l}.weight` `[out, in]`), dropout
//!   after each (inverted; none at evaluation).
//! - **Heads.** One logit per task: `z = x Wᵀ + b` (`head.weight` `[T, in]`).
//! - **Loss.** Per task BCE, combined-pair or combined-list (METHODS.md §4.1), per-sample weights.
//!
//! # Sparse updates
//! Each group's gather has a fused backward + update over its tables; each TIM one over its lookups.
//! A row that both a plain feature and a TIM read (the item table) gets the two updates one after
//! the other in that order — for SGD exactly one step with the summed gradient, for row-wise
//! Adagrad two accumulator steps. (STEM routing later is the same mechanism: which backward writes
//! into which tables' gradients.)

mod budget;
mod divergence;
mod params;
mod prepare;
mod state;

pub use budget::{check_memory, MemoryLimits};
pub use params::{FlatParams, NamedTensor, Param, ParamLayout};
pub use prepare::{Prepared, Preparer};
pub use state::STEP_KEY;

use std::collections::HashMap;

use crate::config::{
    BagPooling, Combine as CombineConfig, DenseOptimizerName, Expert as ExpertConfig, FeatureKind,
    Loss as LossConfig, LrDecay, ModelConfig, SparseDecayMode, SparseOptimizerName,
};
use crate::data::encode::ModelBatch;
use crate::error::{Error, Result};
use crate::gpu::{storage_usage, Gpu};
use crate::kernels::dense::column_sum::{ColumnSum, SumOutput};
use crate::kernels::dense::combine::{Combine, CombineBuffers, CombineKind};
use crate::kernels::dense::dropout::{Dropout, DropoutBuffers, DropoutSpec};
use crate::kernels::dense::elementwise::{Block, CopyColumns, Relu};
use crate::kernels::dense::expert::{Expert, ExpertKind, ExpertSpec};
use crate::kernels::dense::gate::{GateCombine, GateCombineBuffers};
use crate::kernels::dense::gemm::{Epilogue, Gate, GateKind, Gemm, GemmSpec, Operand};
use crate::kernels::dense::norm::{BatchNorm, BatchNormBuffers, BatchNormSpec};
use crate::kernels::dense::optim::{DenseOptimizer, DenseOptimizerKind, Schedule};
use crate::kernels::dense::pairwise::PairwiseKind;
use crate::kernels::embedding::{
    DecayMode, EmbeddingStorage, FeatureSet, FeatureSpec, MnsBase, Pooling, SparseOptimizer,
    SparseStep, TableSpec, TbeForward, TbeUpdate,
};
use crate::kernels::loss::{Loss, LossBuffers, LossKind, Predict, LOSS_WITH_FLAG, STATS_PER_TASK};
use crate::kernels::tim::{Tim, TimSet, TimSpec};
use crate::rng::Rng;

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

/// One table of the storage group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    /// Checkpoint name (`emb.{m}.{feature}` or `emb.{m}.{feature}.time`).
    pub name: String,
    /// Rows.
    pub rows: u32,
    /// Floats per row.
    pub width: u32,
}

/// Dispatch counts of the three programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dispatches {
    /// One training step.
    pub train: u64,
    /// One evaluation forward (logits and probabilities).
    pub eval: u64,
}

/// A linear layer `Y = act(X Wᵀ + b)` over the flat parameter buffer, with its backward.
struct Linear {
    forward: Gemm,
    /// The same layer reading the pre-dropout input (evaluation), when dropout sits before it.
    forward_eval: Option<Gemm>,
    grad_weight: Gemm,
    grad_bias: ColumnSum,
    grad_input: Option<Gemm>,
    shape: (u32, u32),
}

impl Linear {
    fn set_rows(&self, gpu: &Gpu, rows: u32) -> Result<()> {
        let (fan_in, out) = self.shape;
        self.forward.set_dims(gpu, rows, out, fan_in)?;
        if let Some(f) = &self.forward_eval {
            f.set_dims(gpu, rows, out, fan_in)?;
        }
        self.grad_weight.set_dims(gpu, out, fan_in, rows)?;
        self.grad_bias.set_rows(gpu, rows)?;
        if let Some(g) = &self.grad_input {
            g.set_dims(gpu, rows, fan_in, out)?;
        }
        Ok(())
    }
}

struct Projection {
    forward: Gemm,
    grad_weight: Gemm,
    grad_bias: Option<ColumnSum>,
    grad_input: Gemm,
    out_cols: u32,
}

/// A TIM over one group's tables for one sequence feature.
struct GroupTim {
    tim: Tim,
    update: TbeUpdate,
    to_x: CopyColumns,
    from_dx: CopyColumns,
}

/// Tables with one expert config.
struct Group {
    /// Table indices m (in the config's table order).
    tables: Vec<u32>,
    gather: TbeForward,
    update: TbeUpdate,
    dx: wgpu::Buffer,
    tims: Vec<GroupTim>,
    expert: Expert,
    projection: Projection,
}

struct Hidden {
    linear: Linear,
    dropout: Option<Dropout>,
}

/// How the tables' outputs meet: the mean / concat kernel, or the learned gate (concat → logits
/// GEMM → softmax-gated sum; backward: the gate's dh, the logits' weight gradients, and the logits'
/// input gradient accumulated onto dh per table).
enum Combiner {
    Plain(Combine),
    Gate(Box<GateOps>),
}

struct GateOps {
    concat: Combine,
    logits: Linear,
    gate: GateCombine,
    to_h: Gemm,
}

impl Combiner {
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

    fn record_forward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        match self {
            Combiner::Plain(c) => c.record_forward(gpu, pass),
            Combiner::Gate(ops) => {
                let GateOps {
                    concat,
                    logits,
                    gate,
                    ..
                } = &**ops;
                concat.record_forward(gpu, pass);
                logits.forward.record(gpu, pass);
                gate.record_forward(gpu, pass);
            }
        }
    }

    fn record_backward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        match self {
            Combiner::Plain(c) => c.record_backward(gpu, pass),
            Combiner::Gate(ops) => {
                let GateOps {
                    logits, gate, to_h, ..
                } = &**ops;
                gate.record_backward(gpu, pass);
                logits.grad_weight.record(gpu, pass);
                logits.grad_bias.record(gpu, pass);
                to_h.record(gpu, pass);
            }
        }
    }

    /// (forward, backward) dispatches.
    fn dispatches(&self) -> (u64, u64) {
        match self {
            Combiner::Plain(_) => (1, 1),
            Combiner::Gate(ops) => {
                let (f, b) = ops.gate.dispatches();
                (2 + f, 3 + b)
            }
        }
    }
}

/// The compiled model (see the module docs).
pub struct Graph {
    config: ModelConfig,
    max_batch: u32,
    /// Field order: config feature index of field i.
    fields: Vec<usize>,
    tables: Vec<TableInfo>,
    storage: EmbeddingStorage,
    groups: Vec<Group>,
    bn: Option<(BatchNorm, Relu, BnState)>,
    combine: Combiner,
    hidden: Vec<Hidden>,
    head: Linear,
    loss: Loss,
    predict: Predict,
    params: FlatParams,
    optimizer: DenseOptimizer,
    optimizer_state: wgpu::Buffer,
    labels: wgpu::Buffer,
    weights: Option<wgpu::Buffer>,
    loss_value: wgpu::Buffer,
    logits: wgpu::Buffer,
    probs: wgpu::Buffer,
    /// Learning-rate factor per step (warm-up and decay), applied to both rates.
    schedule: Schedule,
    rows: u32,
    /// Training steps taken (the next is `step + 1`).
    step: u64,
    /// The step at which the loss kernel's divergence counts were zeroed (see `divergence`).
    flag_base: u64,
    /// The last step whose divergence flag was read (evaluation reads it if training moved on).
    checked_step: std::cell::Cell<u64>,
    preparer: Preparer,
}

/// BatchNorm's running statistics (checkpointed) and its learned γ, β (owned, in the flat set).
struct BnState {
    running_mean: wgpu::Buffer,
    running_var: wgpu::Buffer,
    _scratch: [wgpu::Buffer; 2],
}

fn bad(message: impl Into<String>) -> Error {
    Error::Graph(message.into())
}

/// Xavier-uniform values for a `[fan_out, fan_in]` weight (`n` values, several tables).
fn xavier(rng: &mut Rng, n: u64, fan_in: u32, fan_out: u32) -> Vec<f32> {
    let bound = (6.0 / (fan_in as f32 + fan_out as f32)).sqrt();
    (0..n).map(|_| rng.uniform(-bound, bound)).collect()
}

impl Graph {
    /// Compiles `config` for batches of at most `max_batch` samples, `shapes` holding one entry per
    /// config feature. Parameters are initialised from `config.train.seed`.
    pub fn new(
        gpu: &Gpu,
        config: &ModelConfig,
        shapes: &[FeatureShape],
        max_batch: u32,
        logit_correction: f64,
    ) -> Result<Self> {
        let m_tables = config.model.tables;
        let k = config.model.dim;
        let b = max_batch;
        if b == 0 {
            return Err(bad("max_batch must be at least 1"));
        }
        if shapes.len() != config.features.len() {
            return Err(bad(format!(
                "{} feature shapes for {} features",
                shapes.len(),
                config.features.len()
            )));
        }
        check_memory(config, shapes, max_batch, &MemoryLimits::of(gpu))?;
        let is_seq = |f: usize| matches!(config.features[f].kind, FeatureKind::Sequence { .. });
        let n_features = config.features.len();
        let mut fields: Vec<usize> = (0..n_features).filter(|&f| is_seq(f)).collect();
        fields.extend((0..n_features).filter(|&f| !is_seq(f)));
        let field_of: HashMap<usize, u32> = fields
            .iter()
            .enumerate()
            .map(|(i, &f)| (f, i as u32))
            .collect();
        let name_to_feature: HashMap<&str, usize> = config
            .features
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name.as_str(), i))
            .collect();
        let n_fields = fields.len() as u32;

        // Expert kinds per table and the widths they need.
        let kind_of = |e: &ExpertConfig| -> ExpertKind {
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
                ExpertConfig::Gwpfm { groups } => {
                    let mut partition = vec![0u32; fields.len()];
                    for (g, names) in groups.iter().enumerate() {
                        for n in names {
                            let f = name_to_feature[n.as_str()];
                            partition[field_of[&f] as usize] = g as u32;
                        }
                    }
                    ExpertKind::Pairwise(PairwiseKind::GwPfm {
                        blocks: groups.len().max(1) as u32,
                        partition,
                    })
                }
            }
        };
        let groups_of = |kind: &ExpertKind| match kind {
            ExpertKind::Pairwise(PairwiseKind::GwPfm { blocks, .. }) => *blocks,
            _ => 1,
        };
        let mut group_tables: Vec<(ExpertKind, Vec<u32>)> = Vec::new();
        for m in 0..m_tables {
            let kind = kind_of(config.expert(m));
            match group_tables.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, t)) => t.push(m),
                None => group_tables.push((kind, vec![m])),
            }
        }
        let mut width_of = vec![0u32; m_tables as usize];
        for (kind, tables) in &group_tables {
            for &m in tables {
                width_of[m as usize] = k * groups_of(kind);
            }
        }

        // The storage group: every table of every m.
        let mut tables = Vec::new();
        let mut specs = Vec::new();
        let mut table_l2 = Vec::new(); // each table's own weight decay, from its feature
        let mut table_of: HashMap<(u32, usize), usize> = HashMap::new();
        let mut time_table_of: HashMap<(u32, usize), usize> = HashMap::new();
        for m in 0..m_tables {
            let w = width_of[m as usize];
            for (f, feature) in config.features.iter().enumerate() {
                let (name, rows) = match &feature.kind {
                    FeatureKind::Sequence { buckets, .. } => {
                        time_table_of.insert((m, f), tables.len());
                        (format!("emb.{m}.{}.time", feature.name), *buckets)
                    }
                    _ => {
                        if shapes[f].rows == 0 {
                            return Err(bad(format!(
                                "feature {:?} has a table of 0 rows",
                                feature.name
                            )));
                        }
                        table_of.insert((m, f), tables.len());
                        (format!("emb.{m}.{}", feature.name), shapes[f].rows)
                    }
                };
                specs.push(TableSpec { rows, width: w });
                table_l2.push(feature.embedding_l2);
                tables.push(TableInfo {
                    name,
                    rows,
                    width: w,
                });
            }
        }
        let sparse = sparse_optimizer(config.train.sparse_optimizer);
        let decay_mode = match config.train.sparse_weight_decay_mode {
            SparseDecayMode::Row => DecayMode::Row,
            SparseDecayMode::Frequency => DecayMode::Frequency,
        };
        let storage = EmbeddingStorage::new(gpu, &specs, sparse, None)?;
        let mut rng = Rng::new(config.train.seed);
        for (t, info) in tables.iter().enumerate() {
            let values = xavier(
                &mut rng,
                info.rows as u64 * info.width as u64,
                info.rows,
                info.width,
            );
            storage.write_weights(gpu, t, &values)?;
        }

        // Groups: gather, TIM, expert.
        let w_proj = config.model.expert_width;
        let h_len = m_tables as u64 * b as u64 * w_proj as u64;
        let mut layout = ParamLayout::default();
        let mut groups = Vec::new();
        let mut preparer_groups = Vec::new();
        let mut preparer_tims = Vec::new();
        let mut slot = 0u32;
        for (g, (kind, members)) in group_tables.into_iter().enumerate() {
            let w = width_of[members[0] as usize];
            let m_g = members.len() as u32;
            let row_len = n_fields * w;
            let mut feature_specs = Vec::new();
            let mut inputs = Vec::new();
            for (local, &m) in members.iter().enumerate() {
                for &f in &fields {
                    let pooling = match &config.features[f].kind {
                        FeatureKind::Sequence { .. } => continue,
                        FeatureKind::Bag { pooling, .. } => match pooling {
                            BagPooling::Mean => Pooling::Mean,
                            BagPooling::Sum => Pooling::Sum,
                        },
                        _ => Pooling::Sum,
                    };
                    feature_specs.push(FeatureSpec {
                        table: table_of[&(m, f)],
                        pooling,
                        mns: shapes[f].mns.clone(),
                        out_offset: local as u32 * b * row_len + field_of[&f] * w,
                        out_stride: row_len,
                        max_lookups: 0,
                    });
                    inputs.push(f);
                }
            }
            let lookups: u64 = m_g as u64
                * b as u64
                * inputs
                    .iter()
                    .take(inputs.len() / m_g as usize)
                    .map(|&f| shapes[f].max_ids.max(1) as u64)
                    .sum::<u64>();
            let feature_set = FeatureSet::new(&storage.layout, feature_specs, b)?;
            let x_len = m_g as u64 * b as u64 * row_len as u64;
            if feature_set.out_len < x_len {
                return Err(bad(format!(
                    "group {g}: the gather covers {} of {x_len} floats",
                    feature_set.out_len
                )));
            }
            let touches: u64 = lookups
                * inputs
                    .iter()
                    .map(|&f| {
                        shapes[f]
                            .mns
                            .iter()
                            .map(|m| m.digits as u64)
                            .sum::<u64>()
                            .max(1)
                    })
                    .max()
                    .unwrap_or(1);
            let gather = TbeForward::new(gpu, &storage, feature_set.clone(), lookups)?;
            let x = gather.output().clone();
            let dx = gpu.buffer("dx", x.size(), storage_usage());
            let mut update = TbeUpdate::new(gpu, &storage, &gather, &dx, touches)?;
            update.set_table_decay(&table_l2, decay_mode)?;
            preparer_groups.push((feature_set, inputs));

            let mut tims = Vec::new();
            for &f in &fields {
                let FeatureKind::Sequence {
                    item,
                    side,
                    max_len,
                    ..
                } = &config.features[f].kind
                else {
                    continue;
                };
                let semantic_features: Vec<usize> = std::iter::once(item)
                    .chain(side.iter())
                    .map(|n| name_to_feature[n.as_str()])
                    .collect();
                let spec = TimSpec {
                    sets: members
                        .iter()
                        .map(|&m| TimSet {
                            semantic: semantic_features
                                .iter()
                                .map(|&sf| table_of[&(m, sf)])
                                .collect(),
                            temporal: time_table_of[&(m, f)],
                        })
                        .collect(),
                    max_batch: b,
                    max_len: *max_len,
                };
                let u_len = m_g as u64 * b as u64 * w as u64;
                let u = gpu.buffer("tim u", u_len * 4, storage_usage());
                let du = gpu.buffer("tim du", u_len * 4, storage_usage());
                let tim = Tim::new(gpu, &storage, spec.clone(), &u, &du)?;
                let mut tim_update = TbeUpdate::new(
                    gpu,
                    &storage,
                    tim.gather(),
                    tim.row_grads(),
                    tim.max_touches(),
                )?;
                tim_update.set_table_decay(&table_l2, decay_mode)?;
                let field_block = Block {
                    at: field_of[&f] as u64 * w as u64,
                    ld: row_len as u64,
                    stride: b as u64 * row_len as u64,
                };
                let dense = Block::dense(b, w);
                let to_x = CopyColumns::new(gpu, m_g, b, w, &u, dense, &x, field_block)?;
                let from_dx = CopyColumns::new(gpu, m_g, b, w, &dx, field_block, &du, dense)?;
                preparer_tims.push((g, f, spec, tim.features().clone()));
                tims.push(GroupTim {
                    tim,
                    update: tim_update,
                    to_x,
                    from_dx,
                });
            }

            let spec = ExpertSpec {
                kind,
                tables: m_g,
                rows_cap: b,
                fields: n_fields,
                dim: k,
                relu: true,
            };
            let expert = Expert::new(gpu, &spec, &x, &dx)?;
            expert.init(gpu, &mut rng);
            for p in expert.parameters() {
                layout.owned(
                    format!("expert.{g}.{}", p.name),
                    &[p.len as usize],
                    p.value,
                    p.grad,
                );
            }
            groups.push((members, slot, gather, update, dx, tims, expert));
            slot += m_g;
        }

        // Parameter layout of the dense layers.
        let bn_on = config.model.batch_norm;
        let proj_offsets: Vec<(u64, Option<u64>)> = groups
            .iter()
            .enumerate()
            .map(|(g, grp)| {
                let m_g = grp.0.len();
                let out = grp.6.spec().out_cols() as usize;
                let w_off = layout.flat(format!("proj.{g}.weight"), &[m_g, w_proj as usize, out]);
                let b_off = (!bn_on)
                    .then(|| layout.flat(format!("proj.{g}.bias"), &[m_g, w_proj as usize]));
                (w_off, b_off)
            })
            .collect();
        let bn_buffers = if bn_on {
            let per = m_tables as u64 * w_proj as u64;
            let mk = |label: &str| gpu.buffer(label, per * 4, storage_usage());
            let (gamma, beta) = (mk("bn gamma"), mk("bn beta"));
            let (grad_gamma, grad_beta) = (mk("bn grad gamma"), mk("bn grad beta"));
            let shape = [m_tables as usize, w_proj as usize];
            layout.owned("proj.bn.weight", &shape, &gamma, &grad_gamma);
            layout.owned("proj.bn.bias", &shape, &beta, &grad_beta);
            gpu.queue
                .write_buffer(&gamma, 0, bytemuck::cast_slice(&vec![1.0f32; per as usize]));
            let running_var = mk("bn running var");
            gpu.queue.write_buffer(
                &running_var,
                0,
                bytemuck::cast_slice(&vec![1.0f32; per as usize]),
            );
            Some((
                gamma,
                beta,
                grad_gamma,
                grad_beta,
                mk("bn running mean"),
                running_var,
                mk("bn mean"),
                mk("bn inv std"),
            ))
        } else {
            None
        };
        let combined = match config.model.combine {
            CombineConfig::Mean | CombineConfig::Gate => w_proj,
            CombineConfig::Concat => w_proj * m_tables,
        };
        let gate_offsets = (config.model.combine == CombineConfig::Gate).then(|| {
            let (m, w) = (m_tables as usize, w_proj as usize);
            (
                layout.flat("combine.gate.weight", &[m, m * w]),
                layout.flat("combine.gate.bias", &[m]),
            )
        });
        let mut widths = vec![combined];
        widths.extend(config.model.hidden.iter().copied());
        let hidden_offsets: Vec<(u64, u64)> = widths
            .windows(2)
            .enumerate()
            .map(|(l, w)| {
                (
                    layout.flat(format!("mlp.{l}.weight"), &[w[1] as usize, w[0] as usize]),
                    layout.flat(format!("mlp.{l}.bias"), &[w[1] as usize]),
                )
            })
            .collect();
        let tasks = config.tasks.len() as u32;
        let last = *widths.last().expect("combine width");
        let head_offsets = (
            layout.flat("head.weight", &[tasks as usize, last as usize]),
            layout.flat("head.bias", &[tasks as usize]),
        );
        let params = FlatParams::new(gpu, layout);

        // Activations.
        let f32s = |label: &str, n: u64| gpu.buffer(label, n.max(4) * 4, storage_usage());
        let h = f32s("h", h_len);
        let dh = f32s("dh", h_len);
        let z = f32s("z", h_len);
        let dz = f32s("dz", h_len);
        let c = f32s("combined", b as u64 * combined as u64);
        let dc = f32s("combined grad", b as u64 * combined as u64);

        // Projections.
        let mut built_groups = Vec::new();
        for ((members, slot, gather, update, dx, tims, expert), (w_off, b_off)) in
            groups.into_iter().zip(proj_offsets)
        {
            let m_g = members.len() as u32;
            let out = expert.spec().out_cols();
            let at = slot as u64 * b as u64 * w_proj as u64;
            let target = if bn_on { &z } else { &h };
            let grad_target = if bn_on { &dz } else { &dh };
            let relu_gate = (!bn_on).then_some(Gate {
                operand: Operand::A,
                kind: GateKind::ReluMask,
            });
            let fwd = GemmSpec {
                bias: b_off.is_some(),
                stride_bias: w_proj as u64,
                offset_b: w_off,
                offset_bias: b_off.unwrap_or(0),
                offset_c: at,
                epilogue: if bn_on {
                    Epilogue::Identity
                } else {
                    Epilogue::Relu
                },
                ..GemmSpec::new(m_g, b, w_proj, out, false, true)
            };
            let forward = Gemm::new(
                gpu,
                &fwd,
                expert.output(),
                &params.values,
                b_off.map(|_| &params.values),
                None,
                target,
            )?;
            let dw = GemmSpec {
                offset_a: at,
                offset_c: w_off,
                gate: relu_gate,
                ..GemmSpec::new(m_g, w_proj, out, b, true, false)
            };
            let grad_weight = Gemm::new(
                gpu,
                &dw,
                grad_target,
                expert.output(),
                None,
                relu_gate.map(|_| &h),
                &params.grads,
            )?;
            let grad_bias = match b_off {
                Some(b_at) => Some(
                    ColumnSum::new_at(
                        gpu,
                        m_g,
                        b,
                        w_proj,
                        w_proj,
                        b as u64 * w_proj as u64,
                        false,
                        Some(GateKind::ReluMask),
                        &dh,
                        Some(&h),
                        &params.grads,
                        SumOutput {
                            offset: b_at,
                            stride: w_proj as u64,
                        },
                    )?
                    .with_input_offset(gpu, at)?,
                ),
                None => None,
            };
            let di = GemmSpec {
                offset_a: at,
                offset_b: w_off,
                gate: relu_gate,
                ..GemmSpec::new(m_g, b, out, w_proj, false, false)
            };
            let grad_input = Gemm::new(
                gpu,
                &di,
                grad_target,
                &params.values,
                None,
                relu_gate.map(|_| &h),
                expert.grad_output(),
            )?;
            built_groups.push(Group {
                tables: members,
                gather,
                update,
                dx,
                tims,
                expert,
                projection: Projection {
                    forward,
                    grad_weight,
                    grad_bias,
                    grad_input,
                    out_cols: out,
                },
            });
        }
        let bn = match bn_buffers {
            Some((
                gamma,
                beta,
                grad_gamma,
                grad_beta,
                running_mean,
                running_var,
                mean,
                inv_std,
            )) => {
                let norm = BatchNorm::new(
                    gpu,
                    BatchNormSpec::new(m_tables, b, w_proj),
                    &BatchNormBuffers {
                        x: &z,
                        y: &h,
                        gamma: &gamma,
                        beta: &beta,
                        running_mean: &running_mean,
                        running_var: &running_var,
                        mean: &mean,
                        inv_std: &inv_std,
                        grad_y: &dh,
                        grad_x: &dz,
                        grad_gamma: &grad_gamma,
                        grad_beta: &grad_beta,
                    },
                )?;
                let relu = Relu::new(gpu, m_tables, b, w_proj, &h, &dh)?;
                Some((
                    norm,
                    relu,
                    BnState {
                        running_mean,
                        running_var,
                        _scratch: [mean, inv_std],
                    },
                ))
            }
            None => None,
        };
        let combine = match gate_offsets {
            None => Combiner::Plain(Combine::new(
                gpu,
                match config.model.combine {
                    CombineConfig::Concat => CombineKind::Concat,
                    _ => CombineKind::Mean,
                },
                m_tables,
                b,
                w_proj,
                &CombineBuffers {
                    x: &h,
                    h: &c,
                    grad_h: &dc,
                    grad_x: &dh,
                },
            )?),
            Some((w_off, b_off)) => {
                let mw = m_tables * w_proj;
                let hc = f32s("gate input", b as u64 * mw as u64);
                // The concat's backward is never recorded (the gate's gradient reaches h through
                // `to_h`); its bind group still needs buffers of the right sizes.
                let concat = Combine::new(
                    gpu,
                    CombineKind::Concat,
                    m_tables,
                    b,
                    w_proj,
                    &CombineBuffers {
                        x: &h,
                        h: &hc,
                        grad_h: &hc,
                        grad_x: &z,
                    },
                )?;
                let a = f32s("gate logits", b as u64 * m_tables as u64);
                let da = f32s("gate logits grad", b as u64 * m_tables as u64);
                let g = f32s("gate", b as u64 * m_tables as u64);
                let logits = Self::linear(
                    gpu,
                    &params,
                    b,
                    (mw, m_tables),
                    (w_off, b_off),
                    (&hc, None, None),
                    (&a, &da),
                    false,
                )?;
                let gate = GateCombine::new(
                    gpu,
                    m_tables,
                    b,
                    w_proj,
                    &GateCombineBuffers {
                        h: &h,
                        logits: &a,
                        gate: &g,
                        out: &c,
                        grad_out: &dc,
                        grad_h: &dh,
                        grad_logits: &da,
                    },
                )?;
                // dh[m] += da · W_g[:, m·W .. (m+1)·W]: table m reads its column block of W_g
                // (stride W) and the same da (stride 0), accumulating onto the gate's own dh.
                let spec = GemmSpec {
                    lda: m_tables,
                    stride_a: 0,
                    ldb: mw,
                    stride_b: w_proj as u64,
                    offset_b: w_off,
                    accumulate: true,
                    ..GemmSpec::new(m_tables, b, w_proj, m_tables, false, false)
                };
                let to_h = Gemm::new(gpu, &spec, &da, &params.values, None, None, &dh)?;
                Combiner::Gate(Box::new(GateOps {
                    concat,
                    logits,
                    gate,
                    to_h,
                }))
            }
        };

        // Shared MLP and heads.
        let p = config.model.dropout;
        let mut hidden: Vec<Hidden> = Vec::new();
        // (input, input before dropout, input gradient) of the next layer.
        let mut input = (c.clone(), None::<wgpu::Buffer>, dc.clone());
        let mut acts = Vec::new();
        for (l, w) in widths.windows(2).enumerate() {
            let (fan_in, out) = (w[0], w[1]);
            let y = f32s("mlp out", b as u64 * out as u64);
            let dy = f32s("mlp out grad", b as u64 * out as u64);
            let (w_off, b_off) = hidden_offsets[l];
            let linear = Self::linear(
                gpu,
                &params,
                b,
                (fan_in, out),
                (w_off, b_off),
                (&input.0, input.1.as_ref(), Some(&input.2)),
                (&y, &dy),
                true,
            )?;
            let (next, dropout) = if p > 0.0 {
                let yd = f32s("dropout out", b as u64 * out as u64);
                let dyd = f32s("dropout out grad", b as u64 * out as u64);
                let d = Dropout::new(
                    gpu,
                    DropoutSpec {
                        tables: 1,
                        rows_cap: b,
                        cols: out,
                        p,
                        stream: l as u32,
                    },
                    &DropoutBuffers {
                        x: &y,
                        y: &yd,
                        grad_y: &dyd,
                        grad_x: &dy,
                    },
                )?;
                ((yd, Some(y.clone()), dyd), Some(d))
            } else {
                ((y.clone(), None, dy.clone()), None)
            };
            acts.push((y, dy));
            hidden.push(Hidden { linear, dropout });
            input = next;
        }
        let logits = f32s("logits", b as u64 * tasks as u64);
        let grad_logits = f32s("logits grad", b as u64 * tasks as u64);
        let head = Self::linear(
            gpu,
            &params,
            b,
            (last, tasks),
            head_offsets,
            (&input.0, input.1.as_ref(), Some(&input.2)),
            (&logits, &grad_logits),
            false,
        )?;

        let kinds: Vec<LossKind> = config
            .tasks
            .iter()
            .map(|t| match t.loss {
                LossConfig::Bce => LossKind::Bce,
                LossConfig::Pair => LossKind::CombinedPair { alpha: t.alpha },
                LossConfig::List => LossKind::CombinedList { alpha: t.alpha },
            })
            .collect();
        let labels = f32s("labels", b as u64 * tasks as u64);
        let weights = config
            .train
            .weights
            .is_some()
            .then(|| f32s("weights", b as u64));
        // The loss and the kernel's divergence flag, read back together (zeroed at creation).
        let loss_value = f32s("loss", LOSS_WITH_FLAG as u64 * tasks as u64);
        let loss = Loss::new(
            gpu,
            &kinds,
            b,
            &LossBuffers {
                logits: &logits,
                labels: &labels,
                weights: weights.as_ref(),
                loss: &loss_value,
                grad_logits: &grad_logits,
            },
        )?;
        let probs = f32s("probabilities", b as u64 * tasks as u64);
        let mut correction = vec![0.0f32; tasks as usize];
        correction[0] = logit_correction as f32;
        let predict = Predict::new(gpu, b, &correction, &logits, &probs)?;

        let kind = match config.train.dense_optimizer {
            DenseOptimizerName::Adam => DenseOptimizerKind::Adam {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.0,
            },
            DenseOptimizerName::Sgd => DenseOptimizerKind::SgdMomentum {
                momentum: 0.0,
                nesterov: false,
                weight_decay: 0.0,
            },
        };
        let len = params.layout.len();
        let optimizer_state = f32s(
            "dense optimizer state",
            DenseOptimizer::state_len(kind, len),
        );
        let optimizer = DenseOptimizer::new(
            gpu,
            kind,
            len,
            &params.values,
            &params.grads,
            &optimizer_state,
            config.train.clip_norm,
        )?;
        // The schedule as a factor (peak 1) applied to both learning rates.
        let warmup = config.train.warmup_steps;
        let schedule = match config.train.lr_decay {
            None => Schedule::WarmupCosine {
                peak: 1.0,
                floor: 1.0,
                warmup,
                total: warmup,
            },
            Some(LrDecay::Cosine { steps, floor }) => Schedule::WarmupCosine {
                peak: 1.0,
                floor,
                warmup,
                total: warmup + steps,
            },
            Some(LrDecay::Step { every, gamma }) => Schedule::StepDecay {
                lr: 1.0,
                gamma,
                every,
            },
        };

        // Initial dense weights: Xavier-uniform weights, zero biases; the experts wrote theirs.
        for prm in &params.layout.params {
            if prm.owned.is_some() {
                continue;
            }
            let values = if prm.name.ends_with(".bias") {
                vec![0.0; prm.len as usize]
            } else {
                let (fan_out, fan_in) = match prm.shape[..] {
                    [_, o, i] => (o, i),
                    [o, i] => (o, i),
                    _ => (1, prm.len as usize),
                };
                xavier(&mut rng, prm.len, fan_in as u32, fan_out as u32)
            };
            params.write(gpu, &prm.name, &values)?;
        }
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        params.gather_values(&mut encoder);
        gpu.queue.submit([encoder.finish()]);

        let preparer = Preparer::new(config, b, preparer_groups, preparer_tims)?;
        let mut graph = Graph {
            config: config.clone(),
            max_batch: b,
            fields,
            tables,
            storage,
            groups: built_groups,
            bn,
            combine,
            hidden,
            head,
            loss,
            predict,
            params,
            optimizer,
            optimizer_state,
            labels,
            weights,
            loss_value,
            logits,
            probs,
            schedule,
            rows: u32::MAX,
            step: 0,
            flag_base: 0,
            checked_step: std::cell::Cell::new(0),
            preparer,
        };
        drop(acts);
        graph.set_rows(gpu, b)?;
        gpu.sync()?;
        Ok(graph)
    }

    /// A linear layer over the flat parameters: input `x` (`x_eval` the pre-dropout input for
    /// evaluation), its gradient `dx` (absent for the first layer of nothing), output `y`, `dy`.
    #[allow(clippy::too_many_arguments)]
    fn linear(
        gpu: &Gpu,
        params: &FlatParams,
        b: u32,
        (fan_in, out): (u32, u32),
        (w_off, b_off): (u64, u64),
        (x, x_eval, dx): (&wgpu::Buffer, Option<&wgpu::Buffer>, Option<&wgpu::Buffer>),
        (y, dy): (&wgpu::Buffer, &wgpu::Buffer),
        relu: bool,
    ) -> Result<Linear> {
        let fwd = GemmSpec {
            bias: true,
            offset_b: w_off,
            offset_bias: b_off,
            epilogue: if relu {
                Epilogue::Relu
            } else {
                Epilogue::Identity
            },
            ..GemmSpec::new(1, b, out, fan_in, false, true)
        };
        let forward = Gemm::new(gpu, &fwd, x, &params.values, Some(&params.values), None, y)?;
        let forward_eval = match x_eval {
            Some(xe) => Some(Gemm::new(
                gpu,
                &fwd,
                xe,
                &params.values,
                Some(&params.values),
                None,
                y,
            )?),
            None => None,
        };
        let gate = relu.then_some(Gate {
            operand: Operand::A,
            kind: GateKind::ReluMask,
        });
        let dw = GemmSpec {
            offset_c: w_off,
            gate,
            ..GemmSpec::new(1, out, fan_in, b, true, false)
        };
        let grad_weight = Gemm::new(gpu, &dw, dy, x, None, relu.then_some(y), &params.grads)?;
        let grad_bias = ColumnSum::new_at(
            gpu,
            1,
            b,
            out,
            out,
            b as u64 * out as u64,
            false,
            relu.then_some(GateKind::ReluMask),
            dy,
            relu.then_some(y),
            &params.grads,
            SumOutput {
                offset: b_off,
                stride: out as u64,
            },
        )?;
        let grad_input = match dx {
            Some(dx) => {
                let spec = GemmSpec {
                    offset_b: w_off,
                    gate,
                    ..GemmSpec::new(1, b, fan_in, out, false, false)
                };
                Some(Gemm::new(
                    gpu,
                    &spec,
                    dy,
                    &params.values,
                    None,
                    relu.then_some(y),
                    dx,
                )?)
            }
            None => None,
        };
        Ok(Linear {
            forward,
            forward_eval,
            grad_weight,
            grad_bias,
            grad_input,
            shape: (fan_in, out),
        })
    }

    /// The config it was compiled from.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The largest batch.
    pub fn max_batch(&self) -> u32 {
        self.max_batch
    }

    /// Config feature index of each field of `x^(m)`, in field order.
    pub fn fields(&self) -> &[usize] {
        &self.fields
    }

    /// Every embedding table, in storage order.
    pub fn tables(&self) -> &[TableInfo] {
        &self.tables
    }

    /// The dense parameters.
    pub fn params(&self) -> &FlatParams {
        &self.params
    }

    /// The embedding storage.
    pub fn storage(&self) -> &EmbeddingStorage {
        &self.storage
    }

    /// The expert groups' tables (indices m), in group order.
    pub fn groups(&self) -> Vec<Vec<u32>> {
        self.groups.iter().map(|g| g.tables.clone()).collect()
    }

    /// The gradient of the last training step with respect to group `g`'s expert input
    /// `x` (`[M_g, max_batch, F·w]`, fields in [`fields`](Self::fields) order): for tests.
    pub fn input_grads(&self, gpu: &Gpu, g: usize) -> Result<Vec<f32>> {
        let group = self
            .groups
            .get(g)
            .ok_or_else(|| bad(format!("no group {g}")))?;
        gpu.read_all(&group.dx)
    }

    /// The expert input `x` of group `g` as the last forward gathered it: for tests.
    pub fn inputs(&self, gpu: &Gpu, g: usize) -> Result<Vec<f32>> {
        let group = self
            .groups
            .get(g)
            .ok_or_else(|| bad(format!("no group {g}")))?;
        gpu.read_all(group.gather.output())
    }

    /// Training steps taken.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// A clone of the host-side batch preparation (runs on the loader thread).
    pub fn preparer(&self) -> Preparer {
        self.preparer.clone()
    }

    /// Tasks (heads).
    pub fn tasks(&self) -> usize {
        self.config.tasks.len()
    }

    fn set_rows(&mut self, gpu: &Gpu, rows: u32) -> Result<()> {
        if rows == self.rows {
            return Ok(());
        }
        if rows > self.max_batch {
            return Err(bad(format!(
                "batch of {rows} samples exceeds the graph's maximum {}",
                self.max_batch
            )));
        }
        let w = self.config.model.expert_width;
        for g in &mut self.groups {
            g.expert.set_rows(gpu, rows)?;
            let p = &g.projection;
            p.forward.set_dims(gpu, rows, w, p.out_cols)?;
            p.grad_weight.set_dims(gpu, w, p.out_cols, rows)?;
            if let Some(s) = &p.grad_bias {
                s.set_rows(gpu, rows)?;
            }
            p.grad_input.set_dims(gpu, rows, p.out_cols, w)?;
            for t in &mut g.tims {
                t.to_x.set_rows(gpu, rows)?;
                t.from_dx.set_rows(gpu, rows)?;
            }
        }
        if let Some((norm, relu, _)) = &mut self.bn {
            norm.set_rows(gpu, rows)?;
            relu.set_rows(gpu, rows)?;
        }
        self.combine.set_rows(gpu, rows)?;
        for h in &mut self.hidden {
            h.linear.set_rows(gpu, rows)?;
            if let Some(d) = &mut h.dropout {
                d.set_rows(gpu, rows)?;
            }
        }
        self.head.set_rows(gpu, rows)?;
        self.loss.set_rows(gpu, rows)?;
        self.predict.set_rows(gpu, rows)?;
        self.rows = rows;
        Ok(())
    }

    /// Uploads a prepared batch's ids and labels; `plans` also uploads the sparse update plans
    /// for step `step` at sparse learning rate `lr`.
    fn upload(&mut self, gpu: &Gpu, batch: &Prepared, sparse: Option<SparseStep>) -> Result<()> {
        if batch.gathers.len() != self.groups.len() {
            return Err(bad("the batch was prepared for another graph"));
        }
        self.set_rows(gpu, batch.rows)?;
        let mut tim_inputs = batch.tims.iter();
        for (g, (bags, plan)) in self.groups.iter_mut().zip(&batch.gathers) {
            g.gather.upload(gpu, &self.storage, bags)?;
            if let Some(step) = sparse {
                g.update.upload(gpu, &g.gather, plan, step)?;
            }
            for t in &mut g.tims {
                let (bags, plan) = tim_inputs
                    .next()
                    .ok_or_else(|| bad("the batch lacks a sequence input"))?;
                t.tim.upload_bags(gpu, &self.storage, bags)?;
                if let Some(step) = sparse {
                    t.update.upload(gpu, t.tim.gather(), plan, step)?;
                }
            }
        }
        Ok(())
    }

    fn record_forward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>, train: bool) {
        for g in &self.groups {
            g.gather.record(gpu, pass);
            for t in &g.tims {
                t.tim.record_forward(gpu, pass);
                t.to_x.record(gpu, pass);
            }
        }
        for g in &self.groups {
            g.expert.record_forward(gpu, pass);
            g.projection.forward.record(gpu, pass);
        }
        if let Some((norm, relu, _)) = &self.bn {
            if train {
                norm.record_train(gpu, pass);
            } else {
                norm.record_eval(gpu, pass);
            }
            relu.record_forward(gpu, pass);
        }
        self.combine.record_forward(gpu, pass);
        for h in &self.hidden {
            match (&h.linear.forward_eval, train) {
                (Some(f), false) => f.record(gpu, pass),
                _ => h.linear.forward.record(gpu, pass),
            }
            if let (Some(d), true) = (&h.dropout, train) {
                d.record_forward(gpu, pass);
            }
        }
        match (&self.head.forward_eval, train) {
            (Some(f), false) => f.record(gpu, pass),
            _ => self.head.forward.record(gpu, pass),
        }
    }

    fn record_backward(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        let back = |l: &Linear, pass: &mut wgpu::ComputePass<'_>| {
            l.grad_weight.record(gpu, pass);
            l.grad_bias.record(gpu, pass);
            if let Some(g) = &l.grad_input {
                g.record(gpu, pass);
            }
        };
        back(&self.head, pass);
        for h in self.hidden.iter().rev() {
            if let Some(d) = &h.dropout {
                d.record_backward(gpu, pass);
            }
            back(&h.linear, pass);
        }
        self.combine.record_backward(gpu, pass);
        if let Some((norm, relu, _)) = &self.bn {
            relu.record_backward(gpu, pass);
            norm.record_backward(gpu, pass);
        }
        for g in &self.groups {
            let p = &g.projection;
            p.grad_weight.record(gpu, pass);
            if let Some(s) = &p.grad_bias {
                s.record(gpu, pass);
            }
            p.grad_input.record(gpu, pass);
            g.expert.record_backward(gpu, pass);
            for t in &g.tims {
                t.from_dx.record(gpu, pass);
                t.tim.record_backward(gpu, pass);
            }
        }
    }

    /// One training step on `batch`: forward, loss, backward, sparse and dense updates, recorded
    /// into one encoder and submitted once. Returns without waiting for the GPU.
    pub fn train_step(&mut self, gpu: &Gpu, batch: &Prepared) -> Result<()> {
        let step = self.step + 1;
        let factor = self.schedule.lr(step);
        let sparse = SparseStep {
            lr: self.config.train.sparse_lr * factor,
            weight_decay: self.config.train.sparse_weight_decay,
            step,
        };
        self.upload(gpu, batch, Some(sparse))?;
        gpu.queue
            .write_buffer(&self.labels, 0, bytemuck::cast_slice(&batch.labels));
        if let Some(w) = &self.weights {
            let given = batch
                .weights
                .as_ref()
                .ok_or_else(|| bad("the model is weighted but the batch has no weights"))?;
            gpu.queue.write_buffer(w, 0, bytemuck::cast_slice(given));
        }
        let seed = self.config.train.seed;
        for h in &mut self.hidden {
            if let Some(d) = &mut h.dropout {
                d.set_step(gpu, seed, step as u32);
            }
        }
        self.optimizer
            .set_step(gpu, self.config.train.dense_lr * factor, step)?;
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            self.record_forward(gpu, &mut pass, true);
            self.loss.record(gpu, &mut pass);
            self.record_backward(gpu, &mut pass);
            for g in &self.groups {
                g.update.record(gpu, &mut pass);
                for t in &g.tims {
                    t.update.record(gpu, &mut pass);
                }
            }
        }
        self.params.gather_grads(&mut encoder);
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            self.optimizer.record(gpu, &mut pass);
        }
        self.params.scatter_values(&mut encoder);
        gpu.submit(encoder);
        self.step = step;
        Ok(())
    }

    /// The loss statistics of the last step (`[tasks, 8]`, see [`Loss::stats`]).
    pub fn last_loss_stats(&self, gpu: &Gpu) -> Result<Vec<f32>> {
        gpu.read(self.loss.stats(), 0, (self.tasks() * STATS_PER_TASK) as u64)
    }

    /// Probabilities `[rows, tasks]` of `batch` (evaluation mode: BatchNorm's running statistics,
    /// no dropout, the class-weight logit correction applied). One submit, then a read-back.
    pub fn predict(&mut self, gpu: &Gpu, batch: &Prepared) -> Result<Vec<f32>> {
        self.check_trained(gpu)?;
        self.upload(gpu, batch, None)?;
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            self.record_forward(gpu, &mut pass, false);
            self.predict.record(gpu, &mut pass);
        }
        gpu.submit(encoder);
        gpu.read(&self.probs, 0, batch.rows as u64 * self.tasks() as u64)
    }

    /// Logits `[rows, tasks]` of `batch` in training mode without updating anything (batch
    /// statistics, dropout of the next step): for gradient tests.
    pub fn train_logits(&mut self, gpu: &Gpu, batch: &Prepared) -> Result<Vec<f32>> {
        self.upload(gpu, batch, None)?;
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            self.record_forward(gpu, &mut pass, true);
        }
        gpu.submit(encoder);
        gpu.read(&self.logits, 0, batch.rows as u64 * self.tasks() as u64)
    }

    /// Prepares `batch` on this thread (the loader thread uses [`Graph::preparer`]).
    pub fn prepare(&self, batch: &ModelBatch) -> Result<Prepared> {
        self.preparer.prepare(batch)
    }

    /// Dispatches each program records (a sum of per-op constants).
    pub fn dispatches(&self) -> Dispatches {
        let mut fwd = 0u64;
        let mut bwd = 0u64;
        let mut updates = 0u64;
        for g in &self.groups {
            let (ef, eb) = g.expert.dispatches();
            fwd += 1 + ef + 1;
            bwd += eb + 2 + g.projection.grad_bias.is_some() as u64;
            updates += 1;
            for _ in &g.tims {
                fwd += 2;
                bwd += 2;
                updates += 1;
            }
        }
        if self.bn.is_some() {
            fwd += 2;
            bwd += 2;
        }
        let (cf, cb) = self.combine.dispatches();
        fwd += cf;
        bwd += cb;
        for h in &self.hidden {
            let d = h.dropout.is_some() as u64;
            fwd += 1 + d;
            bwd += d + 2 + h.linear.grad_input.is_some() as u64;
        }
        fwd += 1;
        bwd += 2 + self.head.grad_input.is_some() as u64;
        let eval_fwd = fwd - self.hidden.iter().filter(|h| h.dropout.is_some()).count() as u64;
        let optimizer = 1 + if self.config.train.clip_norm.is_some() {
            2
        } else {
            0
        };
        Dispatches {
            train: fwd + self.loss.dispatches() as u64 + bwd + updates + optimizer,
            eval: eval_fwd + 1,
        }
    }
}

/// The table optimizer a config names, with its fixed hyper-parameters (one place for the graph
/// and its memory check).
pub(crate) fn sparse_optimizer(name: SparseOptimizerName) -> SparseOptimizer {
    match name {
        SparseOptimizerName::Adagrad => SparseOptimizer::RowwiseAdagrad { eps: 1e-8 },
        SparseOptimizerName::Sgd => SparseOptimizer::Sgd,
        SparseOptimizerName::Adam => SparseOptimizer::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        },
    }
}
