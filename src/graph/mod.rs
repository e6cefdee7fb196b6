//! The graph compiler (DESIGN.md §One training step, `docs/graph.md`): a [`ModelPlan`] — what
//! the model is — becomes every buffer, pipeline and bind group of the model, built once for a
//! maximum batch, and three recorded programs: a training step (forward, loss, backward, sparse
//! and dense updates), an evaluation forward, and prediction.
//!
//! # Layers
//! The step is a list of [`Layer`](layer::Layer)s: the embedding stage ([`embedding`]: gathers
//! and their sparse updates, then the TIMs as a layer of their own), one expert layer per expert group ([`experts`]: the interaction and its
//! projection), BatchNorm when configured ([`projection`]), the combine ([`combine`]), the
//! tower's hidden layers and the head ([`towers`]). The forward walk is the list, the backward the
//! list reversed, the sparse updates the list again; the loss ([`objective`]) sits between the
//! walks. Initial values are drawn in [`init`]. A model with uncertainty heads (`[[task]]
//! uncertainty`) records them after the forward walk ([`uncertainty`]: forward, loss and weight
//! gradients at once, under stop-gradient, so they take no part in the backward walk).
//!
//! A training step writes its inputs with `queue.write_buffer`, records every dispatch into one
//! encoder and submits once; nothing is allocated or compiled inside it. The number of dispatches
//! is the sum of the layers' counts ([`Graph::dispatches`]): it grows with the number of expert
//! groups, hidden layers and sequence features, never with the number of features (they are
//! columns of one gather) or of tables (a grid dimension everywhere).
//!
//! # The model (METHODS.md §1.1, §1.2, §2.2; the names and orders are [`crate::model`]'s)
//! - **Tables.** For each of the `M` tables and each feature `f`, an embedding table `E_f^(m)`
//!   (`emb.{m}.{f}`) of width `w_m = K·G_m` (`G_m` the GwPFM blocks of table `m`'s expert, else
//!   1); each sequence feature adds a temporal table `emb.{m}.{f}.time` of `buckets` rows.
//!   Categorical features read one row, bags pool theirs (mean or sum), numeric features sum their
//!   MNS digit rows, sequence features are TIM over the item's (+ side) rows of the same `m`.
//! - **Fields.** `x^(m) = [e_1^(m); …; e_F^(m)]`, sequence features first.
//! - **Experts.** Tables with the same expert config form a *group*, each group one expert over
//!   its tables with ReLU after the interaction: `y^(m) = ReLU(I^(m)(x^(m)))`.
//! - **Projection.** `h^(m) = ReLU(BN(W^(m) y^(m)))` or `ReLU(W^(m) y^(m) + b^(m))`.
//! - **Combine.** Mean, concat, or a learned per-sample gate over the tables.
//! - **Tower and head.** `ReLU(x Wᵀ + b)` per hidden width with dropout, then one logit per task.
//! - **Loss.** Per task BCE, combined-pair or combined-list (METHODS.md §4.1), per-sample weights.

mod budget;
mod combine;
mod divergence;
mod embedding;
mod experts;
mod init;
mod layer;
mod memory;
mod mixer;
mod objective;
mod optimizers;
mod params;
mod prepare;
mod profile;
mod projection;
mod reset;
mod sizes;
mod slabs;
mod state;
mod step;
mod towers;
mod uncertainty;

pub use crate::model::FeatureShape;
pub use budget::{check_memory, MemoryLimits};
pub use layer::{Cost, Layer, LayerDispatches, Mode, Phase, StepInputs};
pub use memory::{GroupMemory, MemoryReport, TableMemory, ACTIVATION_KINDS};
pub use optimizers::{Optimizers, StepRates};
pub use params::{FlatParams, NamedTensor, Param, ParamLayout};
pub use prepare::{Prepared, Preparer};
pub use profile::{ProfileRequest, SectionTime, StepProfile, TimingMethod};
pub use sizes::Kind as MemoryKind;
pub use slabs::{GraphOptions, Slabs};
pub use state::STEP_KEY;

use crate::config::ModelConfig;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::kernels::dense::expert::Expert;
use crate::kernels::dense::optim::DenseOptimizer;
use crate::model::{ModelPlan, Packing, TablePlan};

use embedding::Embedding;
use experts::ExpertLayer;
use objective::Objective;
use projection::{f32s, Activations, Norm, RunningStats};
use towers::Towers;
use uncertainty::UncertaintyLayer;

/// Dispatch counts of the programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dispatches {
    /// One training step.
    pub train: u64,
    /// One evaluation forward (logits and probabilities).
    pub eval: u64,
}

/// The compiled model (see the module docs).
pub struct Graph {
    plan: ModelPlan,
    max_batch: u32,
    storage: Slabs,
    /// The step, in forward order.
    layers: Vec<Box<dyn Layer>>,
    objective: Objective,
    /// The uncertainty heads, recorded after the layers' forward walk.
    heads: Option<UncertaintyLayer>,
    params: FlatParams,
    optimizer: DenseOptimizer,
    optimizer_state: wgpu::Buffer,
    /// BatchNorm's running statistics, when the model has BatchNorm.
    bn_stats: Option<RunningStats>,
    /// The mixture's gate weights `[towers, max_batch, experts]` (multi-task towers only).
    mix_gate: Option<wgpu::Buffer>,
    /// Each expert group's input `x` and its gradient (for tests).
    group_io: Vec<(wgpu::Buffer, wgpu::Buffer)>,
    rows: u32,
    /// Training steps taken (the next is `step + 1`).
    step: u64,
    /// The step at which the loss kernel's divergence counts were zeroed (see `divergence`).
    flag_base: u64,
    /// The last step whose divergence flag was read (evaluation reads it if training moved on).
    checked_step: std::cell::Cell<u64>,
    preparer: Preparer,
    /// The open profile window, if any (see [`profile`]).
    profiler: Option<profile::Profiler>,
}

fn bad(message: impl Into<String>) -> Error {
    Error::Graph(message.into())
}

impl Graph {
    /// Plans `config` for the data's `shapes` (one per config feature) and compiles it for
    /// batches of at most `max_batch` samples with `optimizers` (a trainer's
    /// `TrainPolicy::optimizers`, or [`Optimizers::inference`]). Parameters are initialised from
    /// `config.train.seed`.
    pub fn new(
        gpu: &Gpu,
        config: &ModelConfig,
        shapes: &[FeatureShape],
        max_batch: u32,
        logit_correction: f64,
        optimizers: Optimizers,
    ) -> Result<Self> {
        let plan = ModelPlan::new(config, shapes)?;
        Self::compile(gpu, plan, optimizers, max_batch, logit_correction)
    }

    /// Compiles `plan` (see the module docs): the memory check, then each layer in step order.
    pub fn compile(
        gpu: &Gpu,
        plan: ModelPlan,
        optimizers: Optimizers,
        max_batch: u32,
        logit_correction: f64,
    ) -> Result<Self> {
        let options = GraphOptions::default();
        Self::compile_with(gpu, plan, optimizers, max_batch, logit_correction, options)
    }

    /// [`compile`](Self::compile) with `options` (tests force tiny storage chunks to split a
    /// model over several storage groups).
    pub fn compile_with(
        gpu: &Gpu,
        mut plan: ModelPlan,
        optimizers: Optimizers,
        max_batch: u32,
        logit_correction: f64,
        options: GraphOptions,
    ) -> Result<Self> {
        let b = max_batch;
        if b == 0 {
            return Err(bad("max_batch must be at least 1"));
        }
        let storage = storage_groups(gpu, &mut plan, &optimizers, b, options)?;
        let mut params = FlatParams::for_plan(gpu, &plan)?;
        let acts = Activations::new(gpu, &plan, b);
        let (embedding, tims, parts) =
            Embedding::new(gpu, &plan, &storage, b, optimizers.decay_mode)?;
        let group_io: Vec<_> = (embedding.groups.iter())
            .map(|g| (g.x().clone(), g.dx().clone()))
            .collect();
        let experts = expert_layers(gpu, &plan, &group_io, &acts, &mut params, b)?;
        let norm = (plan.config.model.batch_norm)
            .then(|| Norm::new(gpu, &plan, &acts, &mut params, b))
            .transpose()?;
        let (combine, mix_gate) = combine_layer(gpu, &plan, &acts, &params, b)?;
        let towers = Towers::new(gpu, &plan, (&acts.c, &acts.dc), &params, b)?;
        let objective = Objective::new(gpu, &plan, &towers, b, logit_correction)?;
        let heads = UncertaintyLayer::new(
            gpu,
            &plan,
            &towers.head_input,
            &objective.labels,
            &params,
            b,
        )?;
        let (optimizer, optimizer_state) = dense_optimizer(gpu, &params, optimizers)?;
        let expert_ops: Vec<&Expert> = experts.iter().map(|e| &e.expert).collect();
        init::initialise(gpu, &plan, &storage, &expert_ops, &params)?;
        let bn_stats = norm.as_ref().map(Norm::stats);
        let mut layers: Vec<Box<dyn Layer>> = vec![Box::new(embedding)];
        if !tims.is_empty() {
            layers.push(Box::new(tims));
        }
        layers.extend(experts.into_iter().map(|e| Box::new(e) as Box<dyn Layer>));
        layers.extend(norm.map(|n| Box::new(n) as Box<dyn Layer>));
        layers.push(combine);
        layers.extend(towers.layers.into_iter().map(|l| Box::new(l) as _));
        let preparer = Preparer::new(&plan.config, b, parts.groups, parts.tims)?;
        let mut graph = Graph {
            plan,
            max_batch: b,
            storage,
            layers,
            objective,
            heads,
            params,
            optimizer,
            optimizer_state,
            bn_stats,
            mix_gate,
            group_io,
            rows: u32::MAX,
            step: 0,
            flag_base: 0,
            checked_step: std::cell::Cell::new(0),
            preparer,
            profiler: None,
        };
        graph.set_rows(gpu, b)?;
        gpu.sync()?;
        Ok(graph)
    }

    /// The plan it was compiled from.
    pub fn plan(&self) -> &ModelPlan {
        &self.plan
    }

    /// The config it was compiled from.
    pub fn config(&self) -> &ModelConfig {
        &self.plan.config
    }

    /// The largest batch.
    pub fn max_batch(&self) -> u32 {
        self.max_batch
    }

    /// Config feature index of each field of `x^(m)`, in field order.
    pub fn fields(&self) -> &[usize] {
        &self.plan.fields
    }

    /// Every embedding table, in storage order.
    pub fn tables(&self) -> &[TablePlan] {
        &self.plan.tables
    }

    /// The dense parameters.
    pub fn params(&self) -> &FlatParams {
        &self.params
    }

    /// The embedding storage: every slab's, by global table index.
    pub fn storage(&self) -> &Slabs {
        &self.storage
    }

    /// The expert groups' tables (indices m), in group order.
    pub fn groups(&self) -> Vec<Vec<u32>> {
        self.plan.groups.iter().map(|g| g.tables.clone()).collect()
    }

    /// The gradient of the last training step with respect to group `g`'s expert input
    /// `x` (`[M_g, max_batch, F·w]`, fields in [`fields`](Self::fields) order): for tests.
    pub fn input_grads(&self, gpu: &Gpu, g: usize) -> Result<Vec<f32>> {
        let (_, dx) = self
            .group_io
            .get(g)
            .ok_or_else(|| bad(format!("no group {g}")))?;
        gpu.read_all(dx)
    }

    /// The expert input `x` of group `g` as the last forward gathered it: for tests.
    pub fn inputs(&self, gpu: &Gpu, g: usize) -> Result<Vec<f32>> {
        let (x, _) = self
            .group_io
            .get(g)
            .ok_or_else(|| bad(format!("no group {g}")))?;
        gpu.read_all(x)
    }

    /// The gate weights of the last forward (a prediction's, or a training step's), `[towers,
    /// rows, experts]` row-major for that batch's `rows`: each tower's softmax over the experts it
    /// reads (a shared bottom's uniform `1 / experts read`), exactly 0 on the others. Experts are
    /// in slot order ([`ModelPlan::slot_of`]), towers in output order. `None` without towers over
    /// experts (`single`). One read of the buffer the forward saves anyway: the forward itself
    /// never copies it, so a caller that does not ask pays nothing.
    pub fn gate_weights(&self, gpu: &Gpu) -> Result<Option<Vec<f32>>> {
        let Some(buffer) = &self.mix_gate else {
            return Ok(None);
        };
        let (towers, experts) = (self.plan.towers.len(), self.plan.n_tables() as usize);
        let (cap, rows) = (
            self.max_batch as usize,
            self.rows.min(self.max_batch) as usize,
        );
        if towers == 0 || rows == 0 {
            return Ok(Some(Vec::new()));
        }
        // Tower u's rows start at u · cap; one read up to the last tower's last row.
        let span = ((towers - 1) * cap + rows) * experts;
        let all: Vec<f32> = gpu.read(buffer, 0, span as u64)?;
        let mut out = Vec::with_capacity(towers * rows * experts);
        for u in 0..towers {
            out.extend_from_slice(&all[u * cap * experts..(u * cap + rows) * experts]);
        }
        Ok(Some(out))
    }

    /// Training steps taken.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// A clone of the host-side batch preparation (runs on the loader thread).
    pub fn preparer(&self) -> Preparer {
        self.preparer.clone()
    }

    /// Outputs (logit columns: the tasks, or each task in each scenario).
    pub fn tasks(&self) -> usize {
        self.plan.heads.iter().map(|h| h.outputs.len()).sum()
    }

    /// The compiled model as plain data (see [`ModelPlan::describe`]).
    pub fn describe(&self) -> serde_json::Value {
        self.plan.describe(self.max_batch)
    }
}

/// Attaches group `g`'s expert tensors to the flat parameters, checking the plan's lengths.
/// The memory check on the plan as `gpu` will cut it, then the plan's tables packed into storage
/// groups and each group allocated: nothing is allocated before the check passes.
fn storage_groups(
    gpu: &Gpu,
    plan: &mut ModelPlan,
    optimizers: &Optimizers,
    b: u32,
    options: GraphOptions,
) -> Result<Slabs> {
    let chunk_bytes = slabs::chunk_bytes(gpu, options.chunk_bytes);
    let limits = MemoryLimits::of(gpu);
    MemoryReport::new(&plan.config, &plan.shapes, b, optimizers, chunk_bytes).check(&limits)?;
    plan.pack_slabs(Packing {
        optimizer: optimizers.sparse,
        chunk_bytes,
    })?;
    Slabs::new(gpu, plan, optimizers.sparse, chunk_bytes)
}

/// One expert layer per expert group, over the group's input and its gradient, each owning its
/// slice of the dense parameters.
fn expert_layers(
    gpu: &Gpu,
    plan: &ModelPlan,
    group_io: &[(wgpu::Buffer, wgpu::Buffer)],
    acts: &Activations,
    params: &mut FlatParams,
    b: u32,
) -> Result<Vec<ExpertLayer>> {
    let mut experts = Vec::new();
    for (g, (x, dx)) in group_io.iter().enumerate() {
        let layer = ExpertLayer::new(gpu, plan, g, (x, dx), acts, params, b)?;
        own_expert(params, g, &layer.expert)?;
        experts.push(layer);
    }
    Ok(experts)
}

/// The layer after the experts: the multi-task mixture (with its gate weights) or the combine.
fn combine_layer(
    gpu: &Gpu,
    plan: &ModelPlan,
    acts: &Activations,
    params: &FlatParams,
    b: u32,
) -> Result<(Box<dyn Layer>, Option<wgpu::Buffer>)> {
    if plan.config.model.architecture.multitask() {
        let mixer = mixer::Mixer::new(gpu, plan, acts, params, b)?;
        let weights = mixer.weights().clone();
        Ok((Box::new(mixer), Some(weights)))
    } else {
        let combiner = combine::Combiner::new(gpu, plan, acts, params, b)?;
        Ok((Box::new(combiner), None))
    }
}

fn own_expert(params: &mut FlatParams, g: usize, expert: &Expert) -> Result<()> {
    let prefix = format!("expert.{g}.");
    let planned = (params.layout.params.iter())
        .filter(|p| p.name.starts_with(&prefix))
        .count();
    let tensors = expert.parameters();
    if planned != tensors.len() {
        return Err(bad(format!(
            "group {g}: the plan has {planned} expert tensors, the expert {}",
            tensors.len()
        )));
    }
    for p in tensors {
        let name = format!("{prefix}{}", p.name);
        let planned = params.layout.get(&name).map(|x| x.len);
        if planned != Some(p.len) {
            return Err(bad(format!(
                "{name}: the expert holds {} values, the plan {planned:?}",
                p.len
            )));
        }
        params.own(&name, p.value, p.grad)?;
    }
    Ok(())
}

/// The dense optimizer over the flat parameters, with its state buffer.
fn dense_optimizer(
    gpu: &Gpu,
    params: &FlatParams,
    o: Optimizers,
) -> Result<(DenseOptimizer, wgpu::Buffer)> {
    let len = params.layout.len();
    let state = f32s(
        gpu,
        "dense optimizer state",
        DenseOptimizer::state_len(o.dense, len),
    );
    let optimizer = DenseOptimizer::new(
        gpu,
        o.dense,
        len,
        &params.values,
        &params.grads,
        &state,
        o.clip_norm,
    )?;
    Ok((optimizer, state))
}
