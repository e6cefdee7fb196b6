//! Synthetic click data with a planted model (DATA.md §3): sizes are free and learning is measurable.
//!
//! Every row is a pure function of (seed, row index), so generation streams in O(1) memory, is
//! bit-reproducible, and could be split across threads. The planted model, all from hashed
//! per-(field, id) weights so a 10^7-id vocabulary costs no memory:
//! logit = b + Σ_f w_f(id_f) + Σ_{f<g} ⟨v_f(id_f), v_g(id_g)⟩ + Σ_j β_j·log1p(x_j)
//!         + γ·Σ_t [cat_t = cat_target]·2^(−Δt_t / half-life),
//! click ~ Bernoulli(σ(logit)), with b calibrated so the mean of σ is the asked positive rate. An
//! optional second task (love) mixes the first task's score with its own independent score.
//! Categorical ids are Zipf-distributed (rejection-inversion, O(1) per draw for any vocabulary).

use crate::rng::Rng;
use crate::{Error, Result};

/// Latent width of the planted pairwise interactions.
pub const LATENT: usize = 4;
/// Rows drawn to calibrate the intercept: its error (sd(p)/√200000, about 0.0005 at rate 0.2) is
/// under the binomial noise of any set up to ~10^6 rows; setup takes ~0.4 s.
const CALIBRATION_ROWS: u64 = 200_000;
/// First timestamp; rows are one second apart, so a time split is meaningful.
const T0: i64 = 1_600_000_000;
/// Mean gap between behaviours, seconds (6 hours).
const BEHAVIOUR_GAP: f64 = 6.0 * 3600.0;
/// Half-life of a behaviour's relevance, seconds (one day).
const HALF_LIFE: f64 = 86_400.0;

/// What to generate.
#[derive(Debug, Clone)]
pub struct SynthConfig {
    /// The seed: the same seed and config give the same rows, bit for bit.
    pub seed: u64,
    /// Vocabulary sizes of the context categorical fields (besides user, item and category).
    pub vocabs: Vec<u64>,
    /// Zipf exponent of every categorical field.
    pub zipf: f64,
    /// Number of numeric fields (non-negative integer counts).
    pub numeric: usize,
    /// Users, items, item categories; used by the behaviour sequences.
    pub users: u64,
    /// Items (ids are `category + categories × k`).
    pub items: u64,
    /// Item categories shared by targets and behaviours.
    pub categories: u64,
    /// Longest behaviour sequence; 0 disables sequences (the Criteo layout has none).
    pub max_history: usize,
    /// Mean of σ(logit) for the first task, in (0, 1).
    pub positive_rate: f64,
    /// Second task: (its positive rate, weight of the first task's score in its logit in [0, 1]).
    pub second_task: Option<(f64, f64)>,
    /// Share of context categorical and numeric values left empty.
    pub missing_rate: f64,
}

impl SynthConfig {
    /// Context fields with vocabularies log-spaced from 10 to 10^7, 4 numeric fields, sequences up
    /// to 20, one task.
    pub fn new(seed: u64) -> Self {
        SynthConfig {
            seed,
            vocabs: log_spaced(8),
            zipf: 1.1,
            numeric: 4,
            users: 100_000,
            items: 1_000_000,
            categories: 32,
            max_history: 20,
            positive_rate: 0.2,
            second_task: None,
            missing_rate: 0.0,
        }
    }

    /// The Criteo layout: 13 numeric and 26 categorical fields (vocabularies 10 … 10^7), no
    /// sequences, 5% empty values.
    pub fn criteo(seed: u64) -> Self {
        SynthConfig {
            vocabs: log_spaced(26),
            numeric: 13,
            max_history: 0,
            missing_rate: 0.05,
            ..SynthConfig::new(seed)
        }
    }

    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Dataset(format!("synth: {m}")));
        let rate_ok = |r: f64| r > 0.0 && r < 1.0;
        if !rate_ok(self.positive_rate) {
            return bad(format!(
                "positive rate {} is not in (0, 1)",
                self.positive_rate
            ));
        }
        if let Some((r, mix)) = self.second_task {
            if !rate_ok(r) || !(0.0..=1.0).contains(&mix) {
                return bad(format!("second task rate {r} / mix {mix} out of range"));
            }
        }
        if !(0.0..1.0).contains(&self.missing_rate) {
            return bad(format!(
                "missing rate {} is not in [0, 1)",
                self.missing_rate
            ));
        }
        if self.vocabs.contains(&0)
            || self.users == 0
            || self.categories == 0
            || self.items < self.categories
        {
            return bad("vocabularies must be ≥ 1 and items ≥ categories".into());
        }
        Ok(())
    }
}

fn log_spaced(fields: usize) -> Vec<u64> {
    (0..fields)
        .map(|f| {
            let e = 1.0 + 6.0 * f as f64 / (fields.max(2) - 1) as f64;
            10f64.powf(e).round() as u64
        })
        .collect()
}

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
    /// `[rows, fields]` ids: user, item, category (when sequences are on), then the context
    /// fields; [`MISSING`] where empty.
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
    intercepts: [f64; 2],
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
            intercepts: [0.0; 2],
            config,
        };
        s.calibrate();
        Ok(s)
    }

    /// The configuration.
    pub fn config(&self) -> &SynthConfig {
        &self.config
    }

    /// Number of tasks (1 or 2).
    pub fn tasks(&self) -> usize {
        1 + usize::from(self.config.second_task.is_some())
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
                    .chain(row.categorical.iter().map(|v| v.unwrap_or(MISSING))),
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
        for (t, score) in scores.iter().take(self.tasks()).enumerate() {
            let p = sigmoid(self.intercepts[t] + score);
            row.probs.push(p);
            row.labels.push(u8::from(rng.unit() < p));
        }
    }

    /// Draws the features of row `index` and returns the scores without intercepts, per task.
    fn features(&self, index: u64, row: &mut SynthRow) -> [f64; 2] {
        let c = &self.config;
        let mut rng = Rng::new(mix(c.seed, index));
        let seed = c.seed;
        let mut first = 0.0;
        let mut other = 0.0;
        let mut vsum = [0.0; LATENT];
        let mut vsq = 0.0;
        let mut add = |field: u64, id: u64, first: &mut f64, other: &mut f64| {
            *first += self.scale_w * signed_unit(hash3(seed, field, id));
            *other += self.scale_w * signed_unit(hash3(seed ^ 0x5ec0d, field, id));
            for (k, s) in vsum.iter_mut().enumerate() {
                let v = self.scale_v * signed_unit(hash3(seed ^ (k as u64 + 1) << 40, field, id));
                *s += v;
                vsq += v * v;
            }
        };
        row.ids.clear();
        row.hist_items.clear();
        row.hist_cats.clear();
        row.hist_times.clear();
        row.timestamp = T0 + index as i64;
        let mut seq = 0.0;
        if c.max_history > 0 {
            let user = self.users.sample(&mut rng);
            let favourite = hash3(seed, 1 << 50, user) % c.categories;
            let cat = if rng.unit() < 0.3 {
                favourite
            } else {
                rng.below(c.categories)
            };
            let item = cat + c.categories * self.per_category.sample(&mut rng);
            row.ids.extend([user, item, cat]);
            let len = rng.below(c.max_history as u64 + 1) as usize;
            let mut t = row.timestamp as f64;
            for _ in 0..len {
                t -= 1.0 + BEHAVIOUR_GAP * -(1.0 - rng.unit()).ln();
                let hc = if rng.unit() < 0.5 {
                    favourite
                } else {
                    rng.below(c.categories)
                };
                row.hist_items
                    .push(hc + c.categories * self.per_category.sample(&mut rng));
                row.hist_cats.push(hc);
                row.hist_times.push(t as i64);
                if hc == cat {
                    seq += (-(row.timestamp as f64 - t) / HALF_LIFE).exp2();
                }
            }
            row.hist_items.reverse();
            row.hist_cats.reverse();
            row.hist_times.reverse();
            for (f, &id) in row.ids.iter().enumerate() {
                add(f as u64 + 1000, id, &mut first, &mut other);
            }
        }
        row.categorical.clear();
        for (f, zipf) in self.zipfs.iter().enumerate() {
            let id = (rng.unit() >= c.missing_rate).then(|| zipf.sample(&mut rng));
            if let Some(id) = id {
                add(f as u64, id, &mut first, &mut other);
            }
            row.categorical.push(id);
        }
        row.numeric.clear();
        for j in 0..c.numeric {
            // Log-normal counts, the shape of Criteo's integer features.
            let value = (rng.unit() >= c.missing_rate)
                .then(|| (1.5 * normal(&mut rng)).exp().floor() as u64);
            if let Some(x) = value {
                let beta = self.scale_num * signed_unit(hash3(seed, 2 << 50, j as u64));
                first += beta * (x as f64).ln_1p();
            }
            row.numeric.push(value);
        }
        let pairwise = 0.5 * (vsum.iter().map(|s| s * s).sum::<f64>() - vsq);
        let score = first + pairwise + self.gamma * seq;
        let mix_weight = c.second_task.map_or(0.0, |t| t.1);
        [score, mix_weight * score + (1.0 - mix_weight) * other]
    }

    /// Sets each intercept so the mean planted probability over [`CALIBRATION_ROWS`] rows drawn
    /// from an independent stream equals the asked rate (bisection; the mean is monotone in b).
    fn calibrate(&mut self) {
        let mut scratch = SynthRow::default();
        // Row indices far past any file: an independent stream of the same distribution.
        let offset = 1u64 << 62;
        let scores: Vec<[f64; 2]> = (0..CALIBRATION_ROWS)
            .map(|i| self.features(offset + i, &mut scratch))
            .collect();
        let rates = [
            self.config.positive_rate,
            self.config.second_task.map_or(0.5, |t| t.0),
        ];
        for t in 0..2 {
            let mean = |b: f64| {
                scores.iter().map(|s| sigmoid(b + s[t])).sum::<f64>() / scores.len() as f64
            };
            let (mut lo, mut hi) = (-40.0, 40.0);
            for _ in 0..60 {
                let mid = 0.5 * (lo + hi);
                if mean(mid) < rates[t] {
                    lo = mid
                } else {
                    hi = mid
                }
            }
            self.intercepts[t] = 0.5 * (lo + hi);
        }
    }

    /// The schema columns, in file order, for the sample-table layout.
    pub fn columns(&self) -> Vec<(String, &'static str)> {
        let mut cols = vec![("click".to_owned(), "label")];
        if self.config.second_task.is_some() {
            cols.push(("love".into(), "label"));
        }
        if self.config.max_history > 0 {
            cols.extend([
                ("user_id".into(), "categorical"),
                ("item_id".into(), "categorical"),
                ("item_cat".into(), "categorical"),
            ]);
        }
        cols.extend((0..self.config.vocabs.len()).map(|f| (format!("c{f}"), "categorical")));
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

fn normal(rng: &mut Rng) -> f64 {
    let (u, v) = (1.0 - rng.unit(), rng.unit());
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
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

mod files;
mod zipf;

pub use files::{schema_toml, write, Layout, WriteStats};
pub use zipf::ZipfSampler;

#[cfg(test)]
mod tests;
