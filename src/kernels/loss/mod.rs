//! Training losses (`loss.wgsl`, METHODS.md §4.1): BCE with logits, combined-pair and combined-list
//! ranking losses, each with per-sample weights, computing the loss per task and d(logits) in one
//! compute pass of three dispatches, whatever the batch and the number of tasks; the inference-side
//! class-weight logit correction ([`Predict`]) and the repeated-exposure weight rule
//! ([`WeightRule`], §4.2).
//!
//! # Layouts
//! - logits `z` and labels `y`: `[rows_cap, tasks]` f32, row-major (column `t` is task/head `t`);
//!   a row is a positive of task `t` when `y > 0.5` (BCE itself uses `y` as given). A label below
//!   0 — the data layer writes [`MISSING_LABEL`], −1 — means the row has no label for task `t`:
//!   its weight in that task is 0 (below), in the other tasks unchanged.
//! - weights `w`: `[rows_cap]` f32, `w ≥ 0`, shared by the tasks; absent = all ones.
//! - outputs: `loss` `[tasks]` (overwritten each step; small, read it back for logging) and
//!   `dz` `[rows_cap, tasks]` (its first `rows` rows overwritten; later rows untouched). `dz` is the
//!   gradient of `Σ_t loss[t]`.
//!
//! # Definitions (per task)
//! - BCE: `L = Σ w_i ℓ_i / Σ w_i`, `ℓ_i = max(z,0) − z·y + log1p(exp(−|z|))` — torch's
//!   `BCEWithLogitsLoss(weight=w, reduction='sum')(z, y) / w.sum()`.
//! - Weights in the ranking terms: a sample of weight `w` counts as `w` copies. The pair `(i, j)`
//!   weighs `w_i w_j` and the pair loss is normalised by `Σ w_i w_j = W⁺W⁻`; the list loss is
//!   `−Σ_{i∈P} w_i log(e^{z_i} / Σ_k w_k e^{z_k}) / W⁺`. With all-ones weights both are exactly the
//!   paper's (`1/(N⁺N⁻)`, `1/N⁺`).
//! - Combined: `L = α·BCE + (1 − α)·L_rank`. A task with `W⁺ = 0` or `W⁻ = 0` in this batch (no
//!   positive or no negative of positive weight) uses BCE alone (α treated as 1): loss and `dz` are
//!   then bit-identical to [`LossKind::Bce`]'s.
//! - `Σ w = 0`: loss 0 and `dz` 0. `rows = 0`: loss 0, stats 0, nothing written to `dz`.
//! - Missing labels: every formula reads `w_i` as the effective weight `w_i` (or 1) when
//!   `y[i, t] ≥ 0`, else 0. So BCE is the mean over the labelled rows, pairs and the list use
//!   labelled rows only, a missing row's `dz` is 0, and a task without a labelled row in the batch
//!   has loss 0 and `dz` 0 (the `Σ w = 0` case). A batch without missing labels gives the bits it
//!   gave before labels could be missing.
//!
//! The pair loss is `O(rows²)` work per task (each row walks the batch in index order): at a batch of
//! 4096 that is 16.8 M pair terms per task, one small dispatch on a GPU.

use crate::error::{Error, Result};
use std::sync::Arc;

use crate::gpu::{
    rows_field, size_class, storage_usage, Access, Family, Gpu, Grid, Kernel, Launch, Pipeline,
    Uniform, Variant,
};
use crate::kernels::dense::check_len;
use crate::shaders;

mod predict;
pub mod uncertainty;
mod weights;

pub use predict::Predict;
pub use weights::{class_weight_correction, downsampled_probability, ExposureWeight, WeightRule};

/// The loss reductions's variants ([`crate::gpu::variants`]); the first is the default path.
/// `subgroup` compiles `loss.wgsl` with `prelude/loss_tree_subgroup.wgsl` (subgroup butterflies, two
/// barriers per reduction) in place of the tree of `prelude/loss_tree.wgsl`; it is used where
/// [`LOSS_REDUCE_WG`] is a multiple of the adapter's largest subgroup size (full subgroups), on
/// every shape (class `r{rows_cap}t{tasks}`, power-of-two buckets).
pub const VARIANTS: &[Variant] = &[
    Variant::DEFAULT,
    Variant {
        name: "subgroup",
        subgroups: true,
        constants: &[],
    },
];

/// The label of a row that has none for a task (an empty label field): the loss gives the row
/// weight 0 in that task, the metrics skip it there. Any label below 0 reads as missing.
pub const MISSING_LABEL: f32 = -1.0;

/// Invocations per workgroup of `loss_rows` and `loss_predict` (the WGSL `WG` override).
pub const LOSS_WG: u32 = 64;
/// Threads of the one workgroup per task of `loss_stats` and `loss_reduce` (WGSL `RWG`).
pub const LOSS_REDUCE_WG: u32 = 256;
/// f32 per task in the [`Loss::stats`] buffer.
pub const STATS_PER_TASK: usize = 8;
/// f32s per task of a loss buffer that keeps the divergence flag (`loss.wgsl`): the loss, the
/// count of steps as (lo, hi), and the count at the first non-finite loss as (lo, hi).
pub const LOSS_WITH_FLAG: usize = 5;

/// The first task whose loss went NaN or infinite, and at which of the kernel's runs (1-based,
/// counted since the flag part was zeroed), from a read-back of a `[LOSS_WITH_FLAG · tasks]` loss
/// buffer; `None` when every loss was finite. The earliest run wins; among equal runs the lowest
/// task.
pub fn first_non_finite(values: &[f32], tasks: usize) -> Option<(usize, u64)> {
    let flags = values.get(3 * tasks..LOSS_WITH_FLAG * tasks)?;
    flags
        .chunks_exact(2)
        .map(|c| c[1] as u64 * 65536 + c[0] as u64)
        .enumerate()
        .filter(|&(_, run)| run > 0)
        .min_by_key(|&(t, run)| (run, t))
}

/// Mirrors `LossParams` in `loss.wgsl` (also the params of `loss_predict`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct LossParams {
    /// Rows of this step (≤ `rows_cap`).
    pub rows: u32,
    /// Rows the buffers hold.
    pub rows_cap: u32,
    /// Tasks (columns of `z`, `y`, `dz`).
    pub tasks: u32,
    /// 1 when the weights buffer is read, 0 for all-ones weights.
    pub weighted: u32,
}

rows_field!(LossParams);

/// Mirrors `TaskLoss` in `loss.wgsl`: one per task, in a storage buffer.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct TaskLoss {
    /// [`LossKind`] as its WGSL code (0 BCE, 1 pair, 2 list).
    pub kind: u32,
    /// Weight of BCE in the combined losses.
    pub alpha: f32,
}

/// The loss of one task.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LossKind {
    /// Binary cross-entropy with logits.
    Bce,
    /// `α·BCE + (1 − α)·L_pair` (METHODS.md §4.1; the paper's base config uses α = 0.6).
    CombinedPair {
        /// Weight of BCE, in [0, 1].
        alpha: f32,
    },
    /// `α·BCE + (1 − α)·L_list` (α ≈ 0.9 in the paper).
    CombinedList {
        /// Weight of BCE, in [0, 1].
        alpha: f32,
    },
}

impl LossKind {
    fn task_loss(self) -> TaskLoss {
        match self {
            LossKind::Bce => TaskLoss {
                kind: 0,
                alpha: 1.0,
            },
            LossKind::CombinedPair { alpha } => TaskLoss { kind: 1, alpha },
            LossKind::CombinedList { alpha } => TaskLoss { kind: 2, alpha },
        }
    }
}

/// The loss kernels' description: one shader, three entry points over one bind group.
const BINDINGS: &[Access] = &[
    Access::Read,
    Access::Read,
    Access::Read,
    Access::Read,
    Access::ReadWrite,
    Access::ReadWrite,
    Access::ReadWrite,
    Access::ReadWrite,
    Access::Uniform,
];

/// Per-task sums of the batch (Σw, W⁺, W⁻, the max logit, the list denominator).
pub const LOSS_STATS: Kernel = Kernel::new(shaders::LOSS, "loss_stats", BINDINGS);
/// Per-(row, task) gradient and loss partials.
pub const LOSS_ROWS: Kernel = Kernel::new(shaders::LOSS, "loss_rows", BINDINGS);
/// Per-task fixed-order sum of the partials into the loss.
pub const LOSS_REDUCE: Kernel = Kernel::new(shaders::LOSS, "loss_reduce", BINDINGS);
/// `p = σ(z − correction)` at inference.
pub const LOSS_PREDICT: Kernel = Kernel::new(
    shaders::LOSS,
    "loss_predict",
    &[
        Access::Read,
        Access::Read,
        Access::ReadWrite,
        Access::Uniform,
    ],
);

/// The caller's buffers of a [`Loss`] (f32).
pub struct LossBuffers<'a> {
    /// Logits `[rows_cap, tasks]`.
    pub logits: &'a wgpu::Buffer,
    /// Labels `[rows_cap, tasks]`, 0 or 1 (BCE accepts soft labels), or [`MISSING_LABEL`].
    pub labels: &'a wgpu::Buffer,
    /// Per-sample weights `[rows_cap]` (≥ 0); `None` for all ones.
    pub weights: Option<&'a wgpu::Buffer>,
    /// Loss per task `[tasks]`, or `[LOSS_WITH_FLAG · tasks]` to keep the divergence flag (see
    /// [`first_non_finite`]); zero the flag part before the first step.
    pub loss: &'a wgpu::Buffer,
    /// Gradient of the logits `[rows_cap, tasks]`.
    pub grad_logits: &'a wgpu::Buffer,
}

/// A prepared loss over `tasks` heads: three dispatches per step.
pub struct Loss {
    params: LossParams,
    uniform: Uniform<LossParams>,
    stats: wgpu::Buffer,
    _partial: wgpu::Buffer,
    /// Statistics, rows, reduction.
    stages: [Launch; 3],
    variant: &'static str,
}

/// The variant's name and the pipelines of statistics, rows and reduction.
fn pipelines(gpu: &Gpu, rows_cap: u32, tasks: u32) -> Result<(&'static str, [Arc<Pipeline>; 3])> {
    let class = format!("r{}t{}", size_class(rows_cap), size_class(tasks));
    let variant = gpu.variant(Family::Loss, &class);
    let suits =
        variant.subgroups && LOSS_REDUCE_WG.is_multiple_of(gpu.info().subgroup_max_size.max(1));
    let (name, shader) = match suits {
        true => (variant.name, shaders::LOSS_SUBGROUP),
        false => ("default", shaders::LOSS),
    };
    let constants = [("WG", LOSS_WG as f64)];
    let compile = |k: &Kernel| gpu.pipeline(&Kernel { shader, ..*k }, &constants);
    let stages = [
        compile(&LOSS_STATS)?,
        compile(&LOSS_ROWS)?,
        compile(&LOSS_REDUCE)?,
    ];
    Ok((name, stages))
}

/// Elements of `[rows_cap, tasks]`, or `Err` when tasks is 0 or the tensor is too large.
fn check_shape(kernel: &'static str, rows_cap: u32, tasks: usize) -> Result<u64> {
    let elems = rows_cap as u64 * tasks as u64;
    // The partials hold 2 f32 per element; the shader indexes them in u32.
    if tasks == 0 || 2 * elems > u32::MAX as u64 {
        return Err(Error::kernel(
            kernel,
            format!(
                "rows_cap {rows_cap} × tasks {tasks}: need tasks ≥ 1 and at most 2³¹ − 1 elements"
            ),
        ));
    }
    Ok(elems)
}

impl Loss {
    /// Validates the spec (`tasks = kinds.len() ≥ 1`, every α in [0, 1]) and the buffers, compiles
    /// the three pipelines and binds them once; rows start at `rows_cap`.
    pub fn new(gpu: &Gpu, kinds: &[LossKind], rows_cap: u32, b: &LossBuffers) -> Result<Self> {
        let name = LOSS_ROWS.entry;
        let elems = check_shape(name, rows_cap, kinds.len())?;
        let tasks = kinds.len() as u32;
        for (t, k) in kinds.iter().enumerate() {
            if let LossKind::CombinedPair { alpha } | LossKind::CombinedList { alpha } = k {
                if !(0.0..=1.0).contains(alpha) {
                    return Err(Error::kernel(
                        name,
                        format!("task {t}: α = {alpha} is outside [0, 1]"),
                    ));
                }
            }
        }
        for (what, buf, n) in [
            ("logits", b.logits, elems),
            ("labels", b.labels, elems),
            ("grad_logits", b.grad_logits, elems),
            ("loss", b.loss, tasks as u64),
        ] {
            check_len(name, what, buf, n)?;
        }
        if let Some(w) = b.weights {
            check_len(name, "weights", w, rows_cap as u64)?;
        }
        let params = LossParams {
            rows: rows_cap,
            rows_cap,
            tasks,
            weighted: b.weights.is_some() as u32,
        };
        let uniform = Uniform::new(gpu, "loss params", &params);
        let table: Vec<TaskLoss> = kinds.iter().map(|k| k.task_loss()).collect();
        let task_buf = gpu.storage_from("loss tasks", &table);
        let stats = gpu.buffer(
            "loss stats",
            tasks as u64 * STATS_PER_TASK as u64 * 4,
            storage_usage(),
        );
        let partial = gpu.buffer("loss partials", (2 * elems).max(1) * 4, storage_usage());
        // Binding 2 needs a buffer even when the shader does not read it.
        let ones = gpu.storage_from("loss unit weight", &[1.0f32; 4]);
        let weights = b.weights.unwrap_or(&ones);
        let (variant, [stats_p, rows_p, reduce_p]) = pipelines(gpu, rows_cap, tasks)?;
        stats_p.check_grid(gpu, [tasks, 1, 1])?;
        let buffers = [
            b.logits,
            b.labels,
            weights,
            &task_buf,
            &stats,
            &partial,
            b.loss,
            b.grad_logits,
            uniform.buffer(),
        ];
        let row_groups = elems.div_ceil(LOSS_WG as u64) as u32;
        let stages = [
            Launch::new(gpu, &stats_p, &buffers, Grid::Folded(tasks))?,
            Launch::new(gpu, &rows_p, &buffers, Grid::Folded(row_groups))?,
            Launch::new(gpu, &reduce_p, &buffers, Grid::Folded(tasks))?,
        ];
        Ok(Loss {
            variant,
            params,
            uniform,
            stats,
            _partial: partial,
            stages,
        })
    }

    /// Sets this step's batch (≤ `rows_cap`); takes effect at the next submission.
    pub fn set_rows(&mut self, gpu: &Gpu, rows: u32) -> Result<()> {
        let cap = self.params.rows_cap;
        self.uniform
            .set_rows(gpu, LOSS_ROWS.entry, &mut self.params, rows, cap)
    }

    /// Tasks (heads).
    pub fn tasks(&self) -> u32 {
        self.params.tasks
    }

    /// The variant it compiled: `"default"`, or `"subgroup"` where chosen and suited.
    pub fn variant(&self) -> &'static str {
        self.variant
    }

    /// Per-task statistics of the last step, `[tasks, 8]` f32: Σw, W⁺, W⁻, the max logit over
    /// weighted rows, the list denominator `Σ w e^{z−m}`, 1 when the ranking term was used (0 on the
    /// BCE fallback), the BCE component and the ranking component of the loss.
    pub fn stats(&self) -> &wgpu::Buffer {
        &self.stats
    }

    /// Dispatches [`record`](Self::record) adds: 3, whatever the batch and the number of tasks.
    pub fn dispatches(&self) -> u32 {
        self.stages.len() as u32
    }

    /// Records the loss and `dz`: statistics, rows, reduction.
    pub fn record(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        for stage in &self.stages {
            stage.record(gpu, pass);
        }
    }
}
