//! Off-policy evaluation: what a target policy's expected reward (click rate) would have been,
//! estimated from a bandit log that another policy produced, with the logging policy's
//! propensities. Follows Open Bandit Pipeline's definitions (Saito et al. 2021, `obp.ope`) so
//! numbers are comparable with it; `docs/ope.md` has the formulas and the file formats.
//!
//! For each logged round i (action a_i, reward r_i, logging propensity p_i), the target policy's
//! probability π(a | x_i, k_i) of every action at the round's context and position, and optionally a
//! reward model q̂(x_i, a, k_i):
//! - IPS: (1/n) Σ w_i r_i, with w_i = π(a_i | x_i, k_i) / p_i;
//! - SNIPS: Σ w_i r_i / Σ w_i;
//! - DR: (1/n) Σ [Σ_a π(a | x_i, k_i) q̂(x_i, a, k_i) + w_i (r_i − q̂(x_i, a_i, k_i))];
//! - the on-policy mean reward of the log, (1/n) Σ r_i.
//!
//! Each comes with a percentile bootstrap interval ([`bootstrap`]). All sums are exact: the
//! per-round terms are f64 and are added with Shewchuk's algorithm ([`exact_sum`], Python's
//! `math.fsum`), so the result is the correctly rounded sum whatever the order or the length of
//! the log and a resample is bit-for-bit reproducible.
//!
//! [`files`] reads a log through a wgrec schema and the dense policy / reward-model files.
//! Everything here is host-side and GPU-free.

mod bootstrap;
pub mod files;
#[cfg(test)]
mod files_tests;
mod sum;
#[cfg(test)]
mod tests;

pub use bootstrap::{bootstrap, percentile, BootstrapOptions};
pub use sum::exact_sum;

use crate::{Error, Result};

/// How far a row of target probabilities may sum from 1: a policy file written with six
/// decimals per action drifts by at most 5·10⁻⁷ per action, so 10⁻⁴ admits 200 actions.
pub const PROBABILITY_SUM_TOLERANCE: f64 = 1e-4;

/// A logged bandit feedback: per round, the logged action (a column index into the action
/// space of the policy files), its reward and the logging policy's propensity of it.
#[derive(Debug, Clone, PartialEq)]
pub struct BanditLog {
    /// Logged action of each round, as an index in `0..actions`.
    pub actions: Vec<usize>,
    /// Reward of each round (a click: 0 or 1).
    pub rewards: Vec<f64>,
    /// The logging policy's probability of the logged action, in (0, 1].
    pub propensities: Vec<f64>,
}

/// A dense per-round table over the action space, row-major: the target policy's probabilities
/// π(a | x_i, k_i), or a reward model's q̂(x_i, a, k_i).
#[derive(Debug, Clone, PartialEq)]
pub struct ActionTable {
    /// Actions (columns).
    pub actions: usize,
    /// rounds × actions values.
    pub values: Vec<f64>,
}

impl ActionTable {
    /// The row of round `i`.
    pub fn row(&self, i: usize) -> &[f64] {
        &self.values[i * self.actions..(i + 1) * self.actions]
    }

    /// Rounds (rows).
    pub fn rounds(&self) -> usize {
        self.values.len() / self.actions.max(1)
    }
}

/// One estimate with its bootstrap interval.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Estimate {
    /// `on-policy`, `ips`, `snips` or `dr`.
    pub estimator: &'static str,
    /// The estimate on the whole log.
    pub estimate: f64,
    /// Lower end of the (1 − α) percentile interval.
    pub lower: f64,
    /// Upper end.
    pub upper: f64,
    /// Resamples the interval rests on (fewer than asked for SNIPS when some resample holds no
    /// round the target policy could have chosen, where it is undefined).
    pub resamples: usize,
}

fn invalid(what: &str, round: usize, message: impl std::fmt::Display) -> Error {
    Error::data(what, format!("round {round}: {message}"))
}

/// Checks the log and the tables: lengths agree, propensities in (0, 1], rewards and probabilities
/// finite in [0, 1], each target row sums to 1 within [`PROBABILITY_SUM_TOLERANCE`]. Errors name
/// the round (0-based row index) and the field.
pub fn validate(log: &BanditLog, policy: &ActionTable, model: Option<&ActionTable>) -> Result<()> {
    let n = log.actions.len();
    if log.rewards.len() != n || log.propensities.len() != n {
        return Err(Error::data(
            "log",
            format!(
                "{n} actions but {} rewards and {} propensities",
                log.rewards.len(),
                log.propensities.len()
            ),
        ));
    }
    if n == 0 {
        return Err(Error::data("log", "no rounds"));
    }
    for (name, table) in [("policy", Some(policy)), ("reward model", model)] {
        let Some(t) = table else { continue };
        if t.actions == 0 || t.values.len() != n * t.actions {
            return Err(Error::data(
                name,
                format!(
                    "{} values for {n} rounds × {} actions",
                    t.values.len(),
                    t.actions
                ),
            ));
        }
        if t.actions != policy.actions {
            return Err(Error::data(
                name,
                format!("{} actions, the policy has {}", t.actions, policy.actions),
            ));
        }
    }
    for i in 0..n {
        validate_round(log, policy, model, i)?;
    }
    Ok(())
}

fn validate_round(
    log: &BanditLog,
    policy: &ActionTable,
    model: Option<&ActionTable>,
    i: usize,
) -> Result<()> {
    let (a, r, p) = (log.actions[i], log.rewards[i], log.propensities[i]);
    if a >= policy.actions {
        return Err(invalid(
            "log",
            i,
            format!("action index {a} is outside the {} actions", policy.actions),
        ));
    }
    if !(p.is_finite() && p > 0.0 && p <= 1.0) {
        return Err(invalid(
            "log",
            i,
            format!("propensity {p} is not in (0, 1]"),
        ));
    }
    if !(0.0..=1.0).contains(&r) {
        return Err(invalid("log", i, format!("reward {r} is not in [0, 1]")));
    }
    for (name, table) in [("policy", Some(policy)), ("reward model", model)] {
        let Some(t) = table else { continue };
        if let Some((j, v)) = t
            .row(i)
            .iter()
            .enumerate()
            .find(|(_, v)| !(0.0..=1.0).contains(*v))
        {
            return Err(invalid(
                name,
                i,
                format!("action {j}: {v} is not a probability in [0, 1]"),
            ));
        }
    }
    let total = exact_sum(policy.row(i).iter().copied());
    if (total - 1.0).abs() > PROBABILITY_SUM_TOLERANCE {
        return Err(invalid(
            "policy",
            i,
            format!("probabilities sum to {total}, not 1 (tolerance {PROBABILITY_SUM_TOLERANCE})"),
        ));
    }
    Ok(())
}

/// The per-round terms every estimator is a function of; bootstrap resamples these.
#[derive(Debug, Clone)]
pub struct RoundTerms {
    /// r_i.
    pub reward: Vec<f64>,
    /// w_i = π(a_i) / p_i.
    pub weight: Vec<f64>,
    /// w_i r_i.
    pub weighted_reward: Vec<f64>,
    /// Σ_a π(a) q̂(a) + w_i (r_i − q̂(a_i)), when there is a reward model.
    pub doubly_robust: Option<Vec<f64>>,
}

/// Validates and computes the per-round terms.
pub fn round_terms(
    log: &BanditLog,
    policy: &ActionTable,
    model: Option<&ActionTable>,
) -> Result<RoundTerms> {
    validate(log, policy, model)?;
    let n = log.actions.len();
    let weight: Vec<f64> = (0..n)
        .map(|i| policy.row(i)[log.actions[i]] / log.propensities[i])
        .collect();
    let weighted_reward = (0..n).map(|i| weight[i] * log.rewards[i]).collect();
    let doubly_robust = model.map(|q| {
        (0..n)
            .map(|i| {
                let direct = exact_sum(policy.row(i).iter().zip(q.row(i)).map(|(p, q)| p * q));
                direct + weight[i] * (log.rewards[i] - q.row(i)[log.actions[i]])
            })
            .collect()
    });
    Ok(RoundTerms {
        reward: log.rewards.clone(),
        weight,
        weighted_reward,
        doubly_robust,
    })
}

fn mean(values: &[f64]) -> f64 {
    exact_sum(values.iter().copied()) / values.len() as f64
}

/// IPS: the mean of w_i r_i.
pub fn ips(log: &BanditLog, policy: &ActionTable) -> Result<f64> {
    Ok(mean(&round_terms(log, policy, None)?.weighted_reward))
}

/// SNIPS: Σ w_i r_i / Σ w_i; an error when Σ w_i = 0 (the target never picks a logged action).
pub fn snips(log: &BanditLog, policy: &ActionTable) -> Result<f64> {
    let t = round_terms(log, policy, None)?;
    snips_of(&t.weighted_reward, &t.weight).ok_or_else(|| {
        Error::data(
            "policy",
            "SNIPS is undefined: the target policy gives probability 0 to every logged action",
        )
    })
}

fn snips_of(weighted_reward: &[f64], weight: &[f64]) -> Option<f64> {
    let total = exact_sum(weight.iter().copied());
    (total > 0.0).then(|| exact_sum(weighted_reward.iter().copied()) / total)
}

/// DR with the reward model `model`.
pub fn doubly_robust(log: &BanditLog, policy: &ActionTable, model: &ActionTable) -> Result<f64> {
    let t = round_terms(log, policy, Some(model))?;
    Ok(mean(
        t.doubly_robust
            .as_deref()
            .expect("round_terms fills it when a model is given"),
    ))
}

/// The on-policy mean reward of the log.
pub fn on_policy(log: &BanditLog) -> f64 {
    mean(&log.rewards)
}

/// Every estimate with its interval: on-policy, IPS, SNIPS, and DR when `model` is given.
pub fn evaluate(
    log: &BanditLog,
    policy: &ActionTable,
    model: Option<&ActionTable>,
    options: &BootstrapOptions,
) -> Result<Vec<Estimate>> {
    let t = round_terms(log, policy, model)?;
    bootstrap(&t, options)
}
