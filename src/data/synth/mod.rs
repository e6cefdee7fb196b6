//! Synthetic click data with a planted model (DATA.md §3): sizes are free and learning is measurable.
//!
//! Every row is a pure function of (seed, row index), so generation streams in O(1) memory, is
//! bit-reproducible, and could be split across threads. The planted model, all from hashed
//! per-(field, id) weights so a 10^7-id vocabulary costs no memory:
//! score = Σ_f w_f(id_f) + Σ_{f<g} ⟨v_f(id_f), v_g(id_g)⟩ + Σ_j β_j·log1p(x_j)
//!         + γ·Σ_t [cat_t = cat_target]·2^(−Δt_t / half-life),
//! click ~ Bernoulli(σ(b_0 + score)), with b_0 calibrated so the mean of σ is the asked positive
//! rate. Categorical ids are Zipf-distributed (rejection-inversion, O(1) per draw for any
//! vocabulary).
//!
//! More tasks, one of two ways: the second task (love) mixes the first task's score with its own
//! independent score; or extra tasks t = 1 … T−1 share the first task's score except on the
//! conflicting fields K = {c1, c3, …}, whose weights they take times (1 − 2·conflict):
//! score_t = score − 2·conflict·Σ_{f∈K} w_f(id_f) ([`ConflictMode::Flip`]). A flip need not cost
//! a shared bottom anything: every task has its own tower, which can read −w off the embedding
//! coordinate another reads w off (measured, its gap to STEM is erratic: 0.023, 0.009, 0.000 AUC
//! over 3 seeds, `kernels_tests/train_multitask.rs`). A conflict a shared embedding cannot absorb needs more
//! independent numbers per id than its width holds, so in [`ConflictMode::Independent`] each extra
//! task t takes, on K, its own first-order weights and latent vectors a·(task 0's) + b·(its own
//! draw), a = 1 − conflict, b = √(1 − a²): at conflict 1 a conflicting id carries T·(1 + LATENT)
//! independent numbers, more than a shared table of width 4 holds, while STEM's per-task tables
//! give each task its own. Scenarios (optional, uniform over 0..S, drawn
//! from their own stream so older configurations keep their bytes) add to every task's score
//! β_{s,t} + λ_s·w_{c0}(id_{c0}): a bias per (scenario, task) and a slope on field c0's weight.
//! Each task has its own intercept b_t. The files are in `files.rs`, the model in `planted.rs`,
//! the content vectors that carry the planted item and user signal (issue 16) in `content.rs`.

use crate::rng::Rng;
use crate::Result;

/// Latent width of the planted pairwise interactions.
pub const LATENT: usize = 4;

/// One generated row. Categorical values are Zipf ranks (`None` = empty); the Criteo writer hashes
/// them into 8 hex digits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SynthRow {
    /// Labels, one per task (0 or 1).
    pub labels: Vec<u8>,
    /// The planted probability of each label.
    pub probs: Vec<f64>,
    /// user, item, item category: always present (none when sequences are off).
    pub ids: Vec<u64>,
    /// Context categorical fields.
    pub categorical: Vec<Option<u64>>,
    /// Numeric fields.
    pub numeric: Vec<Option<u64>>,
    /// Event time (Unix seconds).
    pub timestamp: i64,
    /// Behaviour items, oldest first.
    pub hist_items: Vec<u64>,
    /// Behaviour categories, parallel to `hist_items`.
    pub hist_cats: Vec<u64>,
    /// Behaviour times, parallel to `hist_items`.
    pub hist_times: Vec<i64>,
    /// The scenario, when the config asks for scenarios.
    pub scenario: Option<u64>,
}

/// An empty categorical value in a [`SynthBatch`].
pub const MISSING: u64 = u64::MAX;

/// Rows in columns, as [`Synth::batch`] returns them. Row-major within each array.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SynthBatch {
    /// Rows in the batch.
    pub rows: usize,
    /// Tasks per row.
    pub tasks: usize,
    /// `[rows, tasks]` labels, 0.0 or 1.0.
    pub labels: Vec<f32>,
    /// `[rows, fields]` ids: user, item, category (when sequences are on), the context fields,
    /// then the scenario (when scenarios are on); [`MISSING`] where empty.
    pub ids: Vec<u64>,
    /// `[rows, numeric]` values, NaN where empty.
    pub numeric: Vec<f32>,
    /// Event times.
    pub timestamps: Vec<i64>,
    /// Behaviours of row r are `hist_offsets[r]..hist_offsets[r + 1]` (rows + 1 entries).
    pub hist_offsets: Vec<u32>,
    /// Behaviour items, oldest first within a row.
    pub hist_items: Vec<u64>,
    /// Behaviour categories.
    pub hist_cats: Vec<u64>,
    /// Behaviour times.
    pub hist_times: Vec<i64>,
}

/// The generator: [`Synth::row`] is random access; iterate with [`Synth::rows`].
#[derive(Debug, Clone)]
pub struct Synth {
    config: SynthConfig,
    zipfs: Vec<ZipfSampler>,
    users: ZipfSampler,
    per_category: ZipfSampler,
    scale_w: f64,
    scale_v: f64,
    scale_num: f64,
    gamma: f64,
    /// One per task, from [`Synth::calibrate`].
    intercepts: Vec<f64>,
}

impl Synth {
    /// A generator for `config`, with its intercepts calibrated to the asked positive rates.
    pub fn new(config: SynthConfig) -> Result<Self> {
        config.validate()?;
        let fields = config.vocabs.len() + if config.max_history > 0 { 3 } else { 0 };
        let pairs = (fields * fields.saturating_sub(1) / 2).max(1) as f64;
        let mut s = Synth {
            zipfs: config
                .vocabs
                .iter()
                .map(|&n| ZipfSampler::new(n, config.zipf))
                .collect(),
            users: ZipfSampler::new(config.users, config.zipf),
            per_category: ZipfSampler::new(config.items / config.categories, config.zipf),
            // Variance budget of the logit: 0.8 first order, 0.6 pairwise, 0.3 numeric, ~0.5 sequence.
            scale_w: (0.8 / fields.max(1) as f64).sqrt(),
            scale_v: (0.6 / (pairs * LATENT as f64)).powf(0.25),
            scale_num: (0.3 / config.numeric.max(1) as f64).sqrt(),
            gamma: 0.7,
            intercepts: Vec::new(),
            config,
        };
        s.calibrate();
        Ok(s)
    }

    /// The configuration.
    pub fn config(&self) -> &SynthConfig {
        &self.config
    }

    /// Number of tasks: 1, 2 with the second task, 1 + the extra tasks.
    pub fn tasks(&self) -> usize {
        self.config.tasks()
    }

    /// Rows `start..end` as an iterator.
    pub fn rows(&self, range: std::ops::Range<u64>) -> impl Iterator<Item = SynthRow> + '_ {
        range.map(|i| {
            let mut row = SynthRow::default();
            self.row(i, &mut row);
            row
        })
    }

    /// Rows `range` as one column-major batch (for benchmarks that feed a model without files).
    pub fn batch(&self, range: std::ops::Range<u64>) -> SynthBatch {
        let mut b = SynthBatch {
            tasks: self.tasks(),
            hist_offsets: vec![0],
            ..SynthBatch::default()
        };
        let mut row = SynthRow::default();
        for i in range {
            self.row(i, &mut row);
            b.rows += 1;
            b.labels.extend(row.labels.iter().map(|&l| f32::from(l)));
            b.ids.extend(
                row.ids
                    .iter()
                    .copied()
                    .chain(row.categorical.iter().map(|v| v.unwrap_or(MISSING)))
                    .chain(row.scenario),
            );
            b.numeric
                .extend(row.numeric.iter().map(|v| v.map_or(f32::NAN, |x| x as f32)));
            b.timestamps.push(row.timestamp);
            b.hist_items.extend_from_slice(&row.hist_items);
            b.hist_cats.extend_from_slice(&row.hist_cats);
            b.hist_times.extend_from_slice(&row.hist_times);
            b.hist_offsets.push(b.hist_items.len() as u32);
        }
        b
    }

    /// Fills `row` with row `index` (buffers are reused).
    pub fn row(&self, index: u64, row: &mut SynthRow) {
        let scores = self.features(index, row);
        let mut rng = Rng::new(mix(self.config.seed ^ 0x1abe1, index));
        row.labels.clear();
        row.probs.clear();
        for (t, intercept) in self.intercepts.iter().enumerate() {
            let p = sigmoid(intercept + self.task_score(t, &scores));
            row.probs.push(p);
            row.labels.push(u8::from(rng.unit() < p));
        }
    }

    /// The schema columns, in file order, for the sample-table layout.
    pub fn columns(&self) -> Vec<(String, &'static str)> {
        let mut cols = vec![("click".to_owned(), "label")];
        if self.config.second_task.is_some() {
            cols.push(("love".into(), "label"));
        }
        cols.extend(
            (1..=self.config.extra_task_rates.len()).map(|t| (format!("task{t}"), "label")),
        );
        if self.config.max_history > 0 {
            cols.extend([
                ("user_id".into(), "categorical"),
                ("item_id".into(), "categorical"),
                ("item_cat".into(), "categorical"),
            ]);
        }
        cols.extend((0..self.config.vocabs.len()).map(|f| (format!("c{f}"), "categorical")));
        if self.config.scenarios > 0 {
            cols.push(("scenario".into(), "categorical"));
        }
        cols.extend((0..self.config.numeric).map(|j| (format!("n{j}"), "numeric")));
        if self.config.max_history > 0 {
            cols.extend([
                ("timestamp".into(), "timestamp"),
                ("hist_item".into(), "sequence"),
                ("hist_cat".into(), "sequence"),
                ("hist_time".into(), "sequence_times"),
            ]);
        }
        cols
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn hash3(seed: u64, field: u64, id: u64) -> u64 {
    mix(mix(seed, field), id)
}

/// Uniform in [−√3, √3): unit variance.
fn signed_unit(h: u64) -> f64 {
    ((h >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) * 3f64.sqrt()
}

mod config;
mod content;
mod files;
mod planted;
mod zipf;

pub use config::{ConflictMode, SynthConfig};
pub use content::{write_content, ContentKind, ContentOptions, DEFAULT_CONTENT_NOISE};
pub use files::{schema_toml, write, Layout, WriteStats};
pub use zipf::ZipfSampler;

#[cfg(test)]
mod tests;
