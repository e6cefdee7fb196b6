//! Ranking policies (METHODS.md §4.4): how one request's candidates are ordered from the point
//! model's probabilities and, for UCB and Thompson sampling, the uncertainty head's belief.
//!
//! | policy | score of candidate j |
//! |---|---|
//! | greedy | `p_j` |
//! | ε-greedy | `p_j`; with probability ε the request is served in a uniformly random order |
//! | UCB | `σ(m_j + c·s_j)`, m and s the belief's mean and deviation in logits |
//! | Thompson | `σ(z_j)`, z one posterior draw: one bootstrap head per request, or `μ_j + s_j·ε_j` |
//!
//! With bids the score is `bid_j · score_j` (rank by expected revenue); ε-greedy's random order
//! ignores bids, as exploration should. Every random choice comes from the [`Ranker`]'s own
//! seeded generator, one request after another, so a seed and the same requests in the same
//! order give the same rankings on every machine.

use super::belief::{sigmoid, Belief, Draw};
use crate::config::Uncertainty;
use crate::error::{Error, Result};
use crate::rng::Rng;

/// A ranking policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Policy {
    /// By the point model's probability.
    Greedy,
    /// Greedy, except a uniformly random order with probability ε.
    EpsilonGreedy(f64),
    /// By `σ(mean + c · sd)` of the belief.
    Ucb(f64),
    /// By one posterior draw per request.
    Thompson,
}

impl Policy {
    /// Parses `greedy`, `epsilon:<ε>`, `ucb:<c>` or `thompson` (the CLI and request form).
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let (name, arg) = match text.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (text, None),
        };
        let number = |default: Option<f64>| -> std::result::Result<f64, String> {
            match arg {
                Some(a) => (a.trim().parse::<f64>())
                    .map_err(|_| format!("{text:?}: {a:?} is not a number")),
                None => default.ok_or_else(|| format!("{text:?}: write {name}:<number>")),
            }
        };
        let policy = match name.trim() {
            "greedy" if arg.is_none() => Policy::Greedy,
            "epsilon" => Policy::EpsilonGreedy(number(None)?),
            "ucb" => Policy::Ucb(number(Some(1.0))?),
            "thompson" if arg.is_none() => Policy::Thompson,
            _ => {
                return Err(format!(
                    "{text:?}: a policy is greedy, epsilon:<ε>, ucb:<c> or thompson"
                ))
            }
        };
        policy.check().map_err(|m| format!("{text:?}: {m}"))?;
        Ok(policy)
    }

    fn check(self) -> std::result::Result<(), String> {
        match self {
            Policy::EpsilonGreedy(e) if !(0.0..=1.0).contains(&e) => {
                Err(format!("epsilon {e} is not in [0, 1]"))
            }
            Policy::Ucb(c) if !(c.is_finite() && c >= 0.0) => {
                Err(format!("ucb's c = {c} is not a finite number ≥ 0"))
            }
            _ => Ok(()),
        }
    }

    /// Whether the policy reads the uncertainty head.
    pub fn needs_belief(self) -> bool {
        matches!(self, Policy::Ucb(_) | Policy::Thompson)
    }
}

impl std::fmt::Display for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Policy::Greedy => write!(f, "greedy"),
            Policy::EpsilonGreedy(e) => write!(f, "epsilon:{e}"),
            Policy::Ucb(c) => write!(f, "ucb:{c}"),
            Policy::Thompson => write!(f, "thompson"),
        }
    }
}

/// One request's candidates as the policy sees them: rows `first..first + p.len()` of a scored
/// batch, for one output.
pub struct Candidates<'a> {
    /// The point model's probability of each candidate.
    pub p: &'a [f32],
    /// The batch's belief (UCB and Thompson), the candidates' first row in it, and the output.
    pub belief: Option<(&'a Belief, usize, usize)>,
    /// Bids (rank by bid · score), one per candidate.
    pub bids: Option<&'a [f32]>,
}

/// A seeded policy (see the module docs).
pub struct Ranker {
    policy: Policy,
    rng: Rng,
}

impl Ranker {
    /// `policy` drawing from `seed`.
    pub fn new(policy: Policy, seed: u64) -> Result<Self> {
        policy.check().map_err(|m| bad_policy(&policy, m))?;
        Ok(Ranker {
            policy,
            rng: Rng::new(seed),
        })
    }

    /// The policy.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// The candidates' order, best first, and the score each was ranked by (ε-greedy's random
    /// order keeps the greedy scores, bids applied, so a score means the same whichever way the
    /// coin fell). Ties keep the candidates' order.
    pub fn rank(&mut self, c: &Candidates<'_>) -> Result<(Vec<usize>, Vec<f64>)> {
        let n = c.p.len();
        if let Some(b) = c.bids {
            check_bids(b, n)?;
        }
        let with_bids = |mut scores: Vec<f64>| {
            if let Some(b) = c.bids {
                scores.iter_mut().zip(b).for_each(|(s, &b)| *s *= b as f64);
            }
            scores
        };
        if let Policy::EpsilonGreedy(e) = self.policy {
            if self.rng.unit() < e {
                let scores = with_bids(c.p.iter().map(|&p| p as f64).collect());
                return Ok((self.shuffled(n), scores));
            }
        }
        let scores = with_bids(self.scores(c)?);
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        Ok((order, scores))
    }

    /// The exact probability that each candidate is ranked first, where it has a closed form:
    /// greedy, ε-greedy (1 − ε on the greedy choice plus ε/n each), UCB, and Thompson over
    /// bootstrap heads (the share of heads whose draw puts it first). `None` for Thompson over a
    /// Gaussian head, whose probabilities need Monte Carlo ([`Ranker::rank`] draws). Ties go to
    /// the first candidate, as in [`Ranker::rank`]. Draws nothing.
    pub fn top_probabilities(&self, c: &Candidates<'_>) -> Result<Option<Vec<f64>>> {
        let n = c.p.len();
        if let Some(b) = c.bids {
            check_bids(b, n)?;
        }
        let bid = |j: usize| c.bids.map_or(1.0, |b| b[j] as f64);
        let first = |score: &dyn Fn(usize) -> f64| -> usize {
            (0..n).fold(0, |best, j| {
                if score(j) * bid(j) > score(best) * bid(best) {
                    j
                } else {
                    best
                }
            })
        };
        let one_hot = |j: usize| (0..n).map(|i| (i == j) as u8 as f64).collect::<Vec<f64>>();
        let greedy = || first(&|j| c.p[j] as f64);
        match self.policy {
            Policy::Greedy => Ok(Some(one_hot(greedy()))),
            Policy::EpsilonGreedy(e) => {
                let mut p: Vec<f64> = vec![e / n as f64; n];
                p[greedy()] += 1.0 - e;
                Ok(Some(p))
            }
            Policy::Ucb(k) => {
                let (belief, row, out) = self.belief_of(c)?;
                let score = |j: usize| {
                    sigmoid(belief.mean_logit(row + j, out) + k * belief.sd_logit(row + j, out))
                };
                Ok(Some(one_hot(first(&score))))
            }
            Policy::Thompson => {
                let (belief, row, out) = self.belief_of(c)?;
                let Uncertainty::Bootstrap { heads, .. } = belief.kind else {
                    return Ok(None);
                };
                let mut p = vec![0.0; n];
                for head in 0..heads as usize {
                    let draw = Draw { head, normal: 0.0 };
                    let score = |j: usize| sigmoid(belief.sample_logit(row + j, out, draw));
                    p[first(&score)] += 1.0 / heads as f64;
                }
                Ok(Some(p))
            }
        }
    }

    /// The candidates' belief, checked to cover them.
    fn belief_of<'a>(&self, c: &Candidates<'a>) -> Result<(&'a Belief, usize, usize)> {
        let n = c.p.len();
        let Some((belief, first, output)) = c.belief else {
            return Err(bad_policy(
                &self.policy,
                "needs a model with an uncertainty head ([[task]] uncertainty)".into(),
            ));
        };
        if first + n > belief.rows() || output >= belief.outputs || !belief.active[output] {
            return Err(bad_policy(
                &self.policy,
                format!(
                    "output {output} has no belief for rows {first}..{}",
                    first + n
                ),
            ));
        }
        Ok((belief, first, output))
    }

    /// The policy's score of each candidate, before bids.
    fn scores(&mut self, c: &Candidates<'_>) -> Result<Vec<f64>> {
        let n = c.p.len();
        if !self.policy.needs_belief() {
            return Ok(c.p.iter().map(|&p| p as f64).collect());
        }
        let (belief, first, output) = self.belief_of(c)?;
        Ok(match self.policy {
            Policy::Ucb(k) => (first..first + n)
                .map(|r| sigmoid(belief.mean_logit(r, output) + k * belief.sd_logit(r, output)))
                .collect(),
            _ => {
                let head = self.rng.below(belief.heads() as u64) as usize;
                (first..first + n)
                    .map(|r| {
                        let draw = Draw {
                            head,
                            normal: self.rng.normal(),
                        };
                        sigmoid(belief.sample_logit(r, output, draw))
                    })
                    .collect()
            }
        })
    }

    /// A uniformly random permutation of `0..n` (Fisher–Yates).
    fn shuffled(&mut self, n: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = self.rng.below(i as u64 + 1) as usize;
            order.swap(i, j);
        }
        order
    }
}

fn check_bids(bids: &[f32], n: usize) -> Result<()> {
    if bids.len() != n {
        return Err(Error::Data {
            file: "request".into(),
            line: None,
            column: Some("bid".into()),
            message: format!("{} bids for {n} candidates", bids.len()),
        });
    }
    if let Some((j, b)) = (bids.iter().enumerate()).find(|(_, b)| !(b.is_finite() && **b >= 0.0)) {
        return Err(Error::Data {
            file: "request".into(),
            line: None,
            column: Some("bid".into()),
            message: format!("candidate {j}'s bid {b} is not a finite number ≥ 0"),
        });
    }
    Ok(())
}

fn bad_policy(policy: &Policy, message: String) -> Error {
    Error::Config {
        file: "policy".into(),
        key: policy.to_string(),
        message,
    }
}
