//! The planted model: a row's features drawn from its own random stream, its per-task scores, and
//! the intercepts calibrated to the asked positive rates. See the formula in the module docs of
//! [`super`] and in `docs/data.md`.

use super::{hash3, mix, sigmoid, signed_unit, ConflictMode, Synth, SynthRow, LATENT};
use crate::rng::Rng;

/// Rows drawn to calibrate the intercept: its error (sd(p)/√200000, about 0.0005 at rate 0.2) is
/// under the binomial noise of any set up to ~10^6 rows; setup takes ~0.4 s.
pub(super) const CALIBRATION_ROWS: u64 = 200_000;
/// First timestamp; rows are one second apart, so a time split is meaningful.
const T0: i64 = 1_600_000_000;
/// Mean gap between behaviours, seconds (6 hours).
const BEHAVIOUR_GAP: f64 = 6.0 * 3600.0;
/// Half-life of a behaviour's relevance, seconds (one day).
const HALF_LIFE: f64 = 86_400.0;
/// Seeds the scenario stream and the scenario effects, apart from every older draw and hash, so
/// configurations without scenarios keep their bytes.
const SCENARIO_STREAM: u64 = 0x5ce0_a410;
/// Scale of a scenario's bias (uniform, sd 0.5 in logits: rates differ visibly between scenarios,
/// yet no scenario drowns the features).
const SCENARIO_BIAS: f64 = 0.5;
/// Seeds the extra tasks' own weights and vectors on the conflicting fields
/// ([`ConflictMode::Independent`]), apart from every other hash.
const CONFLICT_STREAM: u64 = 0xc0f1_1c75;

/// One extra task's departure from task 0 on the conflicting fields, summed over a row's fields
/// ([`ConflictMode::Independent`]): its first-order weights, and the change of the latent sum and
/// of the sum of squares when the task's vectors replace task 0's.
#[derive(Debug, Clone, Copy, Default)]
struct Departure {
    first: f64,
    dsum: [f64; LATENT],
    dsq: f64,
}

/// One row's planted scores before intercepts; [`Synth::task_score`] combines them per task.
#[derive(Debug, Clone, Default)]
pub(super) struct Scores {
    /// Task 0's score: the first-order, pairwise, numeric and sequence terms.
    shared: f64,
    /// The second task's own first-order score (independent weights).
    other: f64,
    /// The first-order weights of the conflicting fields c1, c3, … (a part of `shared`).
    conflicting: f64,
    /// Field c0's first-order weight (a part of `shared`), which each scenario scales.
    c0: f64,
    /// The row's scenario (0 when scenarios are off).
    scenario: u64,
    /// [`ConflictMode::Independent`] only: the whole score of each extra task (tasks 1 …),
    /// its own effects of the conflicting fields in place of task 0's.
    independent: Vec<f64>,
}

impl Synth {
    /// The score of task `t` without its intercept.
    pub(super) fn task_score(&self, t: usize, s: &Scores) -> f64 {
        let c = &self.config;
        let base = match (t, c.second_task) {
            (0, _) => s.shared,
            (_, Some((_, weight))) => weight * s.shared + (1.0 - weight) * s.other,
            _ if c.conflict_mode == ConflictMode::Independent => s.independent[t - 1],
            // (1 − 2·conflict)·w_f on the conflicting fields, the shared weights elsewhere.
            _ => s.shared - 2.0 * c.conflict * s.conflicting,
        };
        if c.scenarios == 0 {
            return base;
        }
        base + self.scenario_bias(s.scenario, t) + self.scenario_slope(s.scenario) * s.c0
    }

    /// The planted bias of scenario `s` on task `t`, uniform in ±√3·[`SCENARIO_BIAS`].
    pub fn scenario_bias(&self, s: u64, t: usize) -> f64 {
        SCENARIO_BIAS * signed_unit(hash3(self.config.seed ^ SCENARIO_STREAM, s, t as u64))
    }

    /// The extra slope of scenario `s` on field c0's weight (uniform in ±√3): c0 weighs
    /// (1 + slope)·w there.
    pub fn scenario_slope(&self, s: u64) -> f64 {
        signed_unit(hash3(self.config.seed ^ SCENARIO_STREAM, s, 1 << 32))
    }

    /// Draws the features of row `index` into `row` and returns its scores.
    pub(super) fn features(&self, index: u64, row: &mut SynthRow) -> Scores {
        let c = &self.config;
        let mut rng = Rng::new(mix(c.seed, index));
        let seed = c.seed;
        let (mut first, mut other) = (0.0, 0.0);
        let mut vsum = [0.0; LATENT];
        let mut vsq = 0.0;
        let mut add = |field: u64, id: u64, first: &mut f64, other: &mut f64| {
            let w = self.scale_w * signed_unit(hash3(seed, field, id));
            *first += w;
            *other += self.scale_w * signed_unit(hash3(seed ^ 0x5ec0d, field, id));
            for (k, s) in vsum.iter_mut().enumerate() {
                let v = self.scale_v * signed_unit(hash3(seed ^ (k as u64 + 1) << 40, field, id));
                *s += v;
                vsq += v * v;
            }
            w
        };
        row.timestamp = T0 + index as i64;
        let seq = self.behaviours(&mut rng, row);
        for (f, &id) in row.ids.iter().enumerate() {
            add(f as u64 + 1000, id, &mut first, &mut other);
        }
        let (mut conflicting, mut c0) = (0.0, 0.0);
        let independent = c.conflict_mode == ConflictMode::Independent;
        let mut departures =
            vec![Departure::default(); c.extra_task_rates.len() * usize::from(independent)];
        row.categorical.clear();
        for (f, zipf) in self.zipfs.iter().enumerate() {
            let id = (rng.unit() >= c.missing_rate).then(|| zipf.sample(&mut rng));
            if let Some(id) = id {
                let w = add(f as u64, id, &mut first, &mut other);
                match f {
                    0 => c0 = w,
                    f if f % 2 == 1 => {
                        conflicting += w;
                        self.depart(f as u64, id, w, &mut departures);
                    }
                    _ => {}
                }
            }
            row.categorical.push(id);
        }
        row.numeric.clear();
        for j in 0..c.numeric {
            // Log-normal counts, the shape of Criteo's integer features.
            let value =
                (rng.unit() >= c.missing_rate).then(|| (1.5 * rng.normal()).exp().floor() as u64);
            if let Some(x) = value {
                let beta = self.scale_num * signed_unit(hash3(seed, 2 << 50, j as u64));
                first += beta * (x as f64).ln_1p();
            }
            row.numeric.push(value);
        }
        let pairwise = 0.5 * (vsum.iter().map(|s| s * s).sum::<f64>() - vsq);
        let seq = self.gamma * seq;
        // Task t's score: task 0's with the conflicting fields' first-order and latent parts
        // swapped for its own.
        let independent = departures.iter().map(|d| {
            let sq: f64 = (vsum.iter().zip(&d.dsum))
                .map(|(s, e)| (s + e) * (s + e))
                .sum();
            let pairwise = 0.5 * (sq - (vsq + d.dsq));
            first - conflicting + d.first + pairwise + seq
        });
        let independent = independent.collect();
        // The scenario from its own stream: the draws above keep their order.
        row.scenario = (c.scenarios > 0)
            .then(|| Rng::new(mix(seed ^ SCENARIO_STREAM, index)).below(c.scenarios));
        Scores {
            shared: first + pairwise + seq,
            other,
            conflicting,
            c0,
            scenario: row.scenario.unwrap_or(0),
            independent,
        }
    }

    /// Adds conflicting field `field`'s id `id` (task 0's weight `w`) to each extra task's
    /// departure: the task's weight and vectors are a·(task 0's) + b·(its own draw), a = 1 −
    /// conflict, b = √(1 − a²), so each keeps task 0's variance.
    fn depart(&self, field: u64, id: u64, w: f64, departures: &mut [Departure]) {
        let seed = self.config.seed;
        let a = 1.0 - self.config.conflict;
        let b = (1.0 - a * a).max(0.0).sqrt();
        for (t, d) in departures.iter_mut().enumerate() {
            let own = seed ^ CONFLICT_STREAM ^ ((t as u64 + 1) << 48);
            d.first += a * w + b * self.scale_w * signed_unit(hash3(own, field, id));
            for (k, e) in d.dsum.iter_mut().enumerate() {
                let v = self.scale_v * signed_unit(hash3(seed ^ (k as u64 + 1) << 40, field, id));
                let u = self.scale_v * signed_unit(hash3(own ^ (k as u64 + 1) << 40, field, id));
                let vt = a * v + b * u;
                *e += vt - v;
                d.dsq += vt * vt - v * v;
            }
        }
    }

    /// Draws user, item, category and the behaviour sequence into `row` (nothing when sequences
    /// are off) and returns the sequence term: the decayed count of behaviours in the target's
    /// category.
    fn behaviours(&self, rng: &mut Rng, row: &mut SynthRow) -> f64 {
        let c = &self.config;
        row.ids.clear();
        row.hist_items.clear();
        row.hist_cats.clear();
        row.hist_times.clear();
        if c.max_history == 0 {
            return 0.0;
        }
        let mut seq = 0.0;
        let user = self.users.sample(rng);
        let favourite = hash3(c.seed, 1 << 50, user) % c.categories;
        let cat = if rng.unit() < 0.3 {
            favourite
        } else {
            rng.below(c.categories)
        };
        let item = cat + c.categories * self.per_category.sample(rng);
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
                .push(hc + c.categories * self.per_category.sample(rng));
            row.hist_cats.push(hc);
            row.hist_times.push(t as i64);
            if hc == cat {
                seq += (-(row.timestamp as f64 - t) / HALF_LIFE).exp2();
            }
        }
        row.hist_items.reverse();
        row.hist_cats.reverse();
        row.hist_times.reverse();
        seq
    }

    /// Sets each task's intercept so the mean planted probability over [`CALIBRATION_ROWS`] rows
    /// drawn from an independent stream equals its asked rate (bisection; the mean is monotone).
    pub(super) fn calibrate(&mut self) {
        let mut scratch = SynthRow::default();
        // Row indices far past any file: an independent stream of the same distribution.
        let offset = 1u64 << 62;
        let scores: Vec<Scores> = (0..CALIBRATION_ROWS)
            .map(|i| self.features(offset + i, &mut scratch))
            .collect();
        let rates = self.config.rates();
        self.intercepts = (0..rates.len())
            .map(|t| {
                let task: Vec<f64> = scores.iter().map(|s| self.task_score(t, s)).collect();
                let mean =
                    |b: f64| task.iter().map(|s| sigmoid(b + s)).sum::<f64>() / task.len() as f64;
                let (mut lo, mut hi) = (-40.0, 40.0);
                for _ in 0..60 {
                    let mid = 0.5 * (lo + hi);
                    if mean(mid) < rates[t] {
                        lo = mid
                    } else {
                        hi = mid
                    }
                }
                0.5 * (lo + hi)
            })
            .collect();
    }
}
