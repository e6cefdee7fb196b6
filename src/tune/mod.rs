//! Kernel tuning on the user's own device (issue 20, point 4; `wgrec tune`, and the first-use tune
//! in `wgrec train`).
//!
//! What is fastest depends on the GPU, its driver and the model's shapes, and this project rarely
//! sees a GPU, so wgrec measures on the device at hand instead of guessing here. The unit measured is
//! **the model's own training step on the model's own batches**: compiling the model asks each
//! launcher for its variant ([`crate::gpu::variants`]), which tells the tuner exactly which (family,
//! shape class) choices this model makes; each choice is then tried with every variant the device
//! can run, the rest of the model fixed, and the step's median time decides. Timing the whole step
//! rather than the kernel alone is slower to converge but cannot be fooled by a micro-benchmark that
//! misses the model's real cache and id patterns, and it needs no per-kernel harness.
//!
//! Noise: variants are timed in interleaved rounds (A, B, C, A, B, C, …) so drift in the machine's
//! load falls on all of them alike, and each round pairs a variant with the default timed beside
//! it. A variant replaces the default only when it is faster **in every round** (a sign test: by
//! chance alone a variant no faster than the default wins all 5 default rounds with probability
//! 1/32) and its median ratio to the default is below 1 − [`TuneOptions::margin`]. A close call
//! keeps the default, whose bits the project's quoted results were produced with. The screening's
//! winner must then win again in as many fresh rounds against the default alone (`confirm`):
//! picking the best of several variants favours a lucky one, and a fresh measurement is free of
//! that selection. Whole-step timing dilutes a kernel that is a small part of the step: such a
//! choice is rarely decided, and stays default — the honest outcome when the difference cannot be
//! seen in the step a user runs. The first rule (medians alone) crowned a "winner" for most choices
//! of a tiny model on a 2-core CPU driver out of pure noise (step times within ±20% of each other
//! for every variant); on the bench model at 3 rounds the sign test alone kept 4 of 25 choices
//! (BENCHMARKS.md has what the confirmation made of such picks).
//!
//! The winners go to the tune cache ([`cache`]), keyed by device, driver, wgrec version and shape
//! class; every later compile on that device uses them ([`cache::apply`]).

pub mod cache;
mod measure;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::ModelConfig;
use crate::data::encode::ModelBatch;
use crate::error::{Error, Result};
pub use crate::gpu::Source;
use crate::gpu::{Family, Gpu, Variant};
use crate::graph::FeatureShape;
pub use cache::{DeviceKey, Entry, TuneCache, Tuned};

/// What a tune measures: the model (its config and the data's feature shapes) and real batches.
pub struct TuneModel<'a> {
    /// The model file, parsed.
    pub config: &'a ModelConfig,
    /// The data's shape of each feature (as the trainer finds them).
    pub shapes: &'a [FeatureShape],
    /// The encoder's logit correction (as the trainer compiles with it).
    pub correction: f64,
    /// Batches of the training split, at most the model's batch size each.
    pub batches: &'a [ModelBatch],
}

/// How long to measure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TuneOptions {
    /// Training steps per timed window (one sync per window).
    pub steps: usize,
    /// Interleaved rounds: each variant is timed once per round.
    pub rounds: usize,
    /// A variant must beat the default in every round, and its median ratio to the default must be
    /// below 1 − this, to replace it.
    pub margin: f64,
}

impl Default for TuneOptions {
    fn default() -> Self {
        TuneOptions {
            steps: 4,
            rounds: 5,
            margin: 0.03,
        }
    }
}

/// One choice tried: its family and class, each variant's median step, and the winner.
#[derive(Debug, Clone, Serialize)]
pub struct Trial {
    /// The kernel family.
    pub family: Family,
    /// The launcher's shape class.
    pub class: String,
    /// Median milliseconds per training step with each variant.
    pub ms: BTreeMap<String, f64>,
    /// The variant kept.
    pub winner: String,
}

/// A tune's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct TuneReport {
    /// The device measured.
    pub device: DeviceKey,
    /// Every choice with more than one runnable variant, in the order tried.
    pub trials: Vec<Trial>,
    /// Choices not tried, with why (one variant runs here; forced by `WGREC_VARIANT`).
    pub skipped: Vec<(Family, String, String)>,
}

impl TuneReport {
    /// The report as cache entries.
    pub fn entries(&self) -> Vec<Entry> {
        self.trials.iter().map(|t| t.entry(&self.device)).collect()
    }
}

impl Trial {
    /// The trial as the cache entry of `device`.
    pub fn entry(&self, device: &DeviceKey) -> Entry {
        Entry {
            device: device.clone(),
            family: self.family.name().to_string(),
            class: self.class.clone(),
            variant: self.winner.clone(),
            ms: self.ms.clone(),
        }
    }
}

/// Tunes every choice `model` makes on `gpu` (see the module docs) and leaves the winners as the
/// device's tuned choices. The device's earlier tuned choices are set aside while it measures.
pub fn tune(gpu: &Gpu, model: &TuneModel<'_>, options: TuneOptions) -> Result<TuneReport> {
    tune_with(gpu, model, options, &mut |_| {})
}

/// [`tune`], calling `on_trial` with each choice's outcome as soon as it is measured (a tune takes
/// minutes on a big model: this is its progress).
pub fn tune_with(
    gpu: &Gpu,
    model: &TuneModel<'_>,
    options: TuneOptions,
    on_trial: &mut dyn FnMut(&Trial),
) -> Result<TuneReport> {
    if model.batches.is_empty() {
        return Err(Error::Variant(
            "tuning needs at least one batch of the training split; it is empty".into(),
        ));
    }
    let asked = measure::choices_of(gpu, model)?;
    let mut best = Tuned::new();
    let mut report = TuneReport {
        device: DeviceKey::of(gpu),
        trials: Vec::new(),
        skipped: Vec::new(),
    };
    for (family, class) in asked {
        let candidates = runnable(gpu, family);
        if let Some(why) = skip_reason(gpu, family, candidates.len()) {
            report.skipped.push((family, class, why));
            continue;
        }
        let samples = measure::trial(gpu, model, &best, (family, &class), &candidates, options)?;
        let winner = confirm(gpu, model, &best, (family, &class), &samples, options)?;
        best.insert((family, class.clone()), family.variant(winner)?);
        let ms = (samples.into_iter())
            .map(|(k, v)| (k.to_string(), measure::median(v)))
            .collect();
        let winner = winner.to_string();
        let trial = Trial {
            family,
            class,
            ms,
            winner,
        };
        on_trial(&trial);
        report.trials.push(trial);
    }
    gpu.set_tuned(best);
    Ok(report)
}

/// The variants of `family` this device can run, default first.
pub fn runnable(gpu: &Gpu, family: Family) -> Vec<&'static Variant> {
    let subgroups = gpu.has_subgroups();
    family
        .variants()
        .iter()
        .filter(|v| subgroups || !v.subgroups)
        .collect()
}

fn skip_reason(gpu: &Gpu, family: Family, candidates: usize) -> Option<String> {
    if gpu.forced_variant(family).is_some() {
        return Some("forced by WGREC_VARIANT or the host program".into());
    }
    (candidates < 2).then(|| "one variant runs on this device".into())
}

/// The screening's pick among `samples`, kept only if it wins again in `options.rounds` fresh
/// paired rounds against the default alone. The best of several variants that are no faster than
/// the default often passes a screening by luck (the more variants, the likelier); a fresh
/// measurement of that one variant is independent of the selection, so a lucky pick fails it with
/// the sign test's odds (1/32 at 5 rounds).
fn confirm(
    gpu: &Gpu,
    model: &TuneModel<'_>,
    best: &Tuned,
    choice: (Family, &str),
    samples: &BTreeMap<&'static str, Vec<f64>>,
    options: TuneOptions,
) -> Result<&'static str> {
    let screened = pick(samples, options.margin);
    if screened == "default" {
        return Ok(screened);
    }
    let pair = [&choice.0.variants()[0], choice.0.variant(screened)?];
    let again = measure::trial(gpu, model, best, choice, &pair, options)?;
    Ok(pick(&again, options.margin))
}

/// The variant to keep, from each variant's per-round samples (round order, the default's among
/// them): among the variants faster than the default in every round, the one with the lowest median
/// ratio to the default, if that median is below `1 - margin`; otherwise the default.
fn pick(samples: &BTreeMap<&'static str, Vec<f64>>, margin: f64) -> &'static str {
    let Some(default) = samples.get("default") else {
        return "default";
    };
    let ratio = |v: &[f64]| -> Option<f64> {
        let ratios: Vec<f64> = v.iter().zip(default).map(|(a, d)| a / d).collect();
        let every_round = !ratios.is_empty() && ratios.iter().all(|r| *r < 1.0);
        every_round.then(|| measure::median(ratios))
    };
    (samples.iter())
        .filter(|(name, _)| **name != "default")
        .filter_map(|(name, v)| ratio(v).map(|r| (*name, r)))
        .filter(|(_, r)| *r < 1.0 - margin)
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map_or("default", |(name, _)| name)
}

/// One choice a compiled model made.
#[derive(Debug, Clone, Serialize)]
pub struct Choice {
    /// The kernel family.
    pub family: Family,
    /// The launcher's shape class.
    pub class: String,
    /// The variant compiled.
    pub variant: &'static str,
    /// Why that one.
    pub source: Source,
}

/// The choices behind every launcher built on `gpu` so far (every (family, class) asked about),
/// as the device answers them now.
pub fn choices_in_force(gpu: &Gpu) -> Vec<Choice> {
    gpu.asked_variants()
        .into_iter()
        .map(|(family, class)| {
            let (variant, source) = gpu.variant_in_force(family, &class);
            Choice {
                family,
                class,
                variant: variant.name,
                source,
            }
        })
        .collect()
}

/// The (family, class) choices asked on `gpu` that neither a force nor the tune cache answers,
/// among those with more than one variant this device runs: what a first-use tune would measure.
pub fn untuned(gpu: &Gpu) -> Vec<(Family, String)> {
    gpu.asked_variants()
        .into_iter()
        .filter(|(f, c)| {
            gpu.variant_in_force(*f, c).1 == Source::Default && runnable(gpu, *f).len() > 1
        })
        .collect()
}
