//! Launcher of `tbe_update`: the fused embedding backward and sparse optimizer step.

use super::forward::TbeForward;
use super::layout::Element;
use super::layout::SparseOptimizer;
use super::plan::SparseUpdatePlan;
use super::storage::EmbeddingStorage;
use crate::error::{Error, Result};
use crate::gpu::Variant;
use crate::gpu::{size_class, storage_usage, Access, Family, Gpu, Grid, Kernel, Launch, Uniform};
use crate::shaders;

/// The fused update's variants ([`crate::gpu::variants`]); the first is the default path. Each
/// walks a row's lookups in plan order per column.
/// - `"default"`: TEAM ≤ 8 lanes per row, each holding COLS vec4 columns (see [`team_and_cols`]);
///   the Adagrad statistic a tree through workgroup memory.
/// - `"lanes"`: one vec4 column per lane (TEAM = the widest row's vec4s rounded up to a power of
///   two; the layout before issue 20): the same tree, so the same bits as the default; for GPUs,
///   whose lanes then read consecutive vec4s.
/// - `"subgroup"`: one row per workgroup, the Adagrad statistic summed with `subgroupAdd`
///   (`prelude/team_sum_subgroup.wgsl`): fixed per device, not the tree's bits. Needs the device's
///   SUBGROUP feature; f32 storage only (f16 storage uses the default: no f16 registration of it
///   was tested).
pub const UPDATE_VARIANTS: &[Variant] = &[
    Variant::DEFAULT,
    Variant {
        name: "lanes",
        subgroups: false,
        constants: &[("COLS", 1.0)],
    },
    Variant {
        name: "subgroup",
        subgroups: true,
        constants: &[],
    },
];

/// Invocations per workgroup of the update, unless one row needs more lanes.
pub const UPDATE_WG: u32 = 64;

/// Lanes per row of the update: at most llvmpipe's SIMD width (8 on AVX2) while a lane holds at
/// most [`UPDATE_MAX_COLS`] columns.
const UPDATE_TEAM: u32 = 8;
/// Vec4 columns a lane of the update holds at most (the WGSL `MAX_COLS`).
const UPDATE_MAX_COLS: u32 = 8;

/// (TEAM, COLS) of the update for rows of `widest4` vec4s: TEAM · COLS is the next power of two,
/// with COLS > 1 only once TEAM would pass [`UPDATE_TEAM`] (each lane then walks the row's
/// lookups once for COLS columns).
fn team_and_cols(widest4: u32) -> (u32, u32) {
    let full = widest4.next_power_of_two();
    let cols = (full / UPDATE_TEAM).clamp(1, UPDATE_MAX_COLS);
    (full / cols, cols)
}

/// The kernel, WG, TEAM and COLS of the variant the device picks for `storage` (shape class
/// `w<row floats bucket>-<element>`, as the gather's).
fn choose(gpu: &Gpu, storage: &EmbeddingStorage) -> (&'static str, Kernel, u32, u32, u32) {
    let layout = &storage.layout;
    let widest4 = layout.tables.iter().map(|t| t.width4).max().unwrap_or(1);
    let class = format!("w{}-{}", size_class(widest4 * 4), layout.element.name());
    let v = gpu.variant(Family::Update, &class);
    let (team, cols) = match v.name {
        "lanes" => (widest4.next_power_of_two(), 1),
        _ => team_and_cols(widest4),
    };
    if v.name == "subgroup" && layout.element == Element::F32 {
        let kernel = Kernel {
            shader: shaders::EMBEDDING_UPDATE_SUBGROUP,
            ..TBE_UPDATE
        };
        return ("subgroup", kernel, team, team, cols);
    }
    let name = if v.name == "lanes" {
        "lanes"
    } else {
        "default"
    };
    (
        name,
        storage.kernel(&TBE_UPDATE),
        team.max(UPDATE_WG),
        team,
        cols,
    )
}

/// Mirrors `UpdateParams` in `embedding_update.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct UpdateParams {
    /// Samples in the batch.
    pub batch_size: u32,
    /// Unique rows in the plan.
    pub unique_rows: u32,
    /// Meta section start of the features.
    pub features_at: u32,
    /// Batch section start of the offsets.
    pub offsets_at: u32,
    /// Batch section start of the weights, or `u32::MAX`.
    pub weights_at: u32,
    /// Plan section start of the CSR offsets.
    pub entry_offsets_at: u32,
    /// Plan section start of the entries.
    pub entries_at: u32,
    /// log2 vec4s per chunk.
    pub chunk_shift: u32,
    /// vec4s per chunk − 1.
    pub chunk_mask: u32,
    /// Learning rate.
    pub lr: f32,
    /// Plan section start of the per-table weight decay (f32 bits; L2 for SGD and Adagrad,
    /// decoupled for Adam).
    pub decay_at: u32,
    /// Optimizer epsilon.
    pub eps: f32,
    /// Adam β1.
    pub beta1: f32,
    /// Adam β2.
    pub beta2: f32,
    /// 1 / (1 − β1^step).
    pub bias1: f32,
    /// 1 / (1 − β2^step).
    pub bias2: f32,
    /// [`DecayMode`] code: 0 once per touched row, 1 over the row's lookups in the batch.
    pub decay_mode: u32,
    /// Rounding of updated f16 rows: 0 to nearest, 1 stochastic (f32 storage ignores it).
    pub rounding: u32,
    /// Stochastic rounding: the Philox key (from the seed).
    pub sr_seed: u32,
    /// Stochastic rounding: the step in the Philox counter (low 32 bits).
    pub sr_step: u32,
}

/// How a table's weight decay λ applies to a row the batch touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DecayMode {
    /// λ once per touched row and step, however many lookups touched it (DCN-style: the penalty
    /// on the rows in the batch).
    #[default]
    Row,
    /// λ / n, n the row's lookups in the batch: frequent rows, whose summed gradient is already
    /// n lookups strong, are held back less than rare ones (frequency-adaptive regularisation).
    Frequency,
}

/// The fused update kernel's description.
pub const TBE_UPDATE: Kernel = Kernel::new(
    shaders::EMBEDDING_UPDATE,
    "tbe_update",
    &[
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
        Access::ReadWrite,
        Access::ReadWrite,
        Access::ReadWrite,
        Access::Uniform,
    ],
);

/// The hyper-parameters of one sparse step; the learning rate is an input so schedules need no
/// recompilation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SparseStep {
    /// Learning rate.
    pub lr: f32,
    /// Weight decay of every table without its own (see [`TbeUpdate::set_table_decay`]).
    pub weight_decay: f32,
    /// 1-based step number (Adam's bias correction).
    pub step: u64,
}

/// A prepared fused backward + update over the same features and batch buffer as a [`TbeForward`].
pub struct TbeUpdate {
    launch: Launch,
    plan: wgpu::Buffer,
    params: Uniform<UpdateParams>,
    plan_capacity: u64,
    rows_per_workgroup: u32,
    state: UpdateParams,
    table_decay: Vec<Option<f32>>,
    variant: &'static str,
}

impl TbeUpdate {
    /// Builds buffers for plans of at most `max_touches` touched rows (MNS digits counted);
    /// `grad` holds dL/d(output) in the forward's output layout.
    pub fn new(
        gpu: &Gpu,
        storage: &EmbeddingStorage,
        forward: &TbeForward,
        grad: &wgpu::Buffer,
        max_touches: u64,
    ) -> Result<Self> {
        let layout = &storage.layout;
        let (variant, kernel, wg, team, cols) = choose(gpu, storage);
        let opt = layout.optimizer;
        let pipeline = gpu.pipeline(
            &kernel,
            &[
                ("WG", wg as f64),
                ("TEAM", team as f64),
                ("COLS", cols as f64),
                ("OPTIMIZER", opt.code() as f64),
                ("CHUNKS", if layout.chunks() == 1 { 1.0 } else { 4.0 }),
            ],
        )?;
        if grad.size() < forward.features.out_len * 4 {
            return Err(Error::kernel(
                TBE_UPDATE.entry,
                format!(
                    "gradient buffer of {} bytes; the output layout needs {}",
                    grad.size(),
                    forward.features.out_len * 4
                ),
            ));
        }
        let plan_capacity = SparseUpdatePlan::capacity_words(max_touches);
        let tables = layout.tables.len() as u64;
        // The per-table weight decay rides after the largest plan: no extra binding.
        let plan = gpu.buffer("tbe plan", (plan_capacity + tables) * 4, storage_usage());
        let params = Uniform::new(gpu, "tbe_update params", &UpdateParams::default());
        let c = &storage.chunks;
        let buffers = [
            &forward.meta,
            &forward.batch,
            &plan,
            grad,
            &c[0],
            &c[1],
            &c[2],
            &c[3],
            params.buffer(),
        ];
        // No plan yet: nothing to update until the first upload.
        let launch = Launch::new(gpu, &pipeline, &buffers, Grid::Folded(0))?;
        let (eps, beta1, beta2) = match opt {
            SparseOptimizer::Sgd => (0.0, 0.0, 0.0),
            SparseOptimizer::RowwiseAdagrad { eps } => (eps, 0.0, 0.0),
            SparseOptimizer::Adam { beta1, beta2, eps } => (eps, beta1, beta2),
        };
        let state = UpdateParams {
            features_at: forward.features.features_at,
            chunk_shift: layout.chunk_shift,
            chunk_mask: (layout.chunk4() - 1) as u32,
            eps,
            beta1,
            beta2,
            decay_at: plan_capacity as u32,
            ..Default::default()
        };
        Ok(TbeUpdate {
            launch,
            plan,
            params,
            plan_capacity,
            rows_per_workgroup: wg / team,
            variant,
            state,
            table_decay: vec![None; tables as usize],
        })
    }

    /// The update variant this launcher compiled (`"default"` where the device's choice does not
    /// suit the storage, see [`UPDATE_VARIANTS`]).
    pub fn variant(&self) -> &'static str {
        self.variant
    }

    /// Gives tables their own weight decay (`None`: the step's) and sets how it applies.
    pub fn set_table_decay(&mut self, per_table: &[Option<f32>], mode: DecayMode) -> Result<()> {
        if per_table.len() != self.table_decay.len() {
            return Err(Error::kernel(
                TBE_UPDATE.entry,
                format!(
                    "{} weight decays for {} tables",
                    per_table.len(),
                    self.table_decay.len()
                ),
            ));
        }
        self.table_decay = per_table.to_vec();
        self.state.decay_mode = match mode {
            DecayMode::Row => 0,
            DecayMode::Frequency => 1,
        };
        Ok(())
    }

    /// Rounds updated f16 rows stochastically with noise keyed by `seed` (and the step, table,
    /// row and column: deterministic for a seed), or to nearest with `None` (the default). f32
    /// storage stores exactly and ignores it.
    pub fn set_stochastic_rounding(&mut self, seed: Option<u64>) {
        self.state.rounding = seed.is_some() as u32;
        self.state.sr_seed = seed.map_or(0, |s| (s ^ (s >> 32)) as u32);
    }

    /// Writes the plan of the batch last uploaded to the forward, and the step's hyper-parameters.
    pub fn upload(
        &mut self,
        gpu: &Gpu,
        forward: &TbeForward,
        plan: &SparseUpdatePlan,
        step: SparseStep,
    ) -> Result<()> {
        let (words, [entry_offsets_at, entries_at]) = plan.words();
        if words.len() as u64 > self.plan_capacity {
            return Err(Error::kernel(
                TBE_UPDATE.entry,
                format!(
                    "plan needs {} words; buffers were built for {}",
                    words.len(),
                    self.plan_capacity
                ),
            ));
        }
        if step.step == 0 {
            return Err(Error::kernel(TBE_UPDATE.entry, "steps count from 1"));
        }
        gpu.queue
            .write_buffer(&self.plan, 0, bytemuck::cast_slice(&words));
        let decay: Vec<f32> = self
            .table_decay
            .iter()
            .map(|d| d.unwrap_or(step.weight_decay))
            .collect();
        gpu.queue.write_buffer(
            &self.plan,
            self.plan_capacity * 4,
            bytemuck::cast_slice(&decay),
        );
        let f = forward.params();
        let s = &mut self.state;
        s.batch_size = f.batch_size;
        s.offsets_at = f.offsets_at;
        s.weights_at = f.weights_at;
        s.unique_rows = plan.rows.len() as u32;
        s.entry_offsets_at = entry_offsets_at;
        s.entries_at = entries_at;
        s.lr = step.lr;
        s.sr_step = step.step as u32;
        // Bias corrections in f64 on the host: exact for any step count.
        let t = step.step.min(i32::MAX as u64) as i32;
        s.bias1 = (1.0 / (1.0 - (s.beta1 as f64).powi(t))) as f32;
        s.bias2 = (1.0 / (1.0 - (s.beta2 as f64).powi(t))) as f32;
        self.params.write(gpu, &self.state);
        let workgroups = self.state.unique_rows.div_ceil(self.rows_per_workgroup);
        self.launch.set_grid(Grid::Folded(workgroups));
        Ok(())
    }

    /// Records the update for the last uploaded plan.
    pub fn record(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        self.launch.record(gpu, pass);
    }
}
