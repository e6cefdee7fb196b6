//! Ranking in `POST /score` (docs/serving.md, "Ranking"): which requests are ranked and by
//! which policy, the per-request seed, and the check that the model can serve the policy.
//!
//! A request is ranked when a policy is in force: its own `"policy"`, else the server's
//! `--policy`, else greedy when it gives `"bids"`; otherwise its answer is what it always was.
//! Each ranked request gets a fresh [`Ranker`] seeded by `(--seed, n)`, `n` counting the ranked
//! requests in the order the GPU worker takes them from its queue (across reloads). The worker
//! takes requests in arrival order whatever micro-batches they fall into, and a ranking reads
//! only its own rows, so one client sending requests one at a time gets the same rankings from a
//! server started with the same seed and model; concurrent clients get the draws of whatever
//! order their requests reached the queue.

use std::sync::atomic::Ordering;

use super::worker::Failure;
use super::{Ranking, Shared};
use crate::error::{Error, Result};
use crate::explore::{Belief, Policy, Ranker};
use crate::serve::rank::{rank_request, request_seed, RankFields, Ranked};
use crate::serve::request::{RequestError, Shape};
use crate::serve::Predictor;

/// What a ranked request asks of the worker.
#[derive(Debug, Clone)]
pub struct JobRanking {
    /// The policy in force.
    pub policy: Policy,
    /// The candidates' bids.
    pub bids: Option<Vec<f32>>,
}

/// A ranked request's answer: the policy, the output ranked and the ranking.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RankedAnswer {
    /// The policy, as `Policy::parse` reads it.
    pub policy: String,
    /// The output ranked (the model's first).
    pub task: String,
    /// The ranking.
    #[serde(flatten)]
    pub ranked: Ranked,
}

/// The ranking a request of `shape` with `fields` gets on a server ranking by `server`.
pub fn job_ranking(shape: Shape, fields: RankFields, server: Ranking) -> Option<JobRanking> {
    if shape != Shape::Score {
        return None;
    }
    let bids = fields.bids;
    let policy =
        (fields.policy.or(server.policy)).or_else(|| bids.as_ref().map(|_| Policy::Greedy))?;
    Some(JobRanking { policy, bids })
}

/// Refuses a server policy that needs a belief on a model without an uncertainty head (at
/// start-up and for every reloaded snapshot).
pub fn check_model(ranking: Ranking, predictor: &Predictor) -> Result<()> {
    match ranking.policy {
        Some(p) if p.needs_belief() && predictor.config().uncertainty().is_none() => {
            Err(Error::Config {
                file: predictor.checkpoint().display().to_string(),
                key: "--policy".into(),
                message: format!(
                    "{p} needs a model with an uncertainty head ([[task]] uncertainty); this one has none"
                ),
            })
        }
        _ => Ok(()),
    }
}

/// Ranks one accepted request: `p` its `[candidates, outputs]` probabilities, `belief` the
/// batch's with the request's first row in it. A policy the model cannot serve, or bad bids,
/// is the request's fault (400).
pub fn rank_job(
    shared: &Shared,
    job: &JobRanking,
    p: &[f32],
    names: &[String],
    belief: Option<(&Belief, usize)>,
) -> std::result::Result<RankedAnswer, Failure> {
    let n = shared.ranked.fetch_add(1, Ordering::SeqCst);
    let refuse = |e: Error| Failure::Request(RequestError::Bad(e.to_string()));
    let mut ranker =
        Ranker::new(job.policy, request_seed(shared.ranking.seed, n)).map_err(refuse)?;
    let ranked = rank_request(&mut ranker, p, names.len(), 0, belief, job.bids.as_deref())
        .map_err(refuse)?;
    let task = names[0].strip_prefix("p_").unwrap_or(&names[0]).to_string();
    Ok(RankedAnswer {
        policy: job.policy.to_string(),
        task,
        ranked,
    })
}
