//! What ranking shares between the paths that score many rows in pieces (`wgrec serve`'s
//! micro-batches, `wgrec predict --policy`, `wgrec policy`'s substituted rows): the beliefs of
//! consecutive submissions joined into one over all their rows, so a request whose candidates
//! straddle two submissions is ranked on one [`Belief`]; a `/score` request's ranking fields;
//! and one request's ranking ([`rank_request`]), which the server and `wgrec predict --policy`
//! both answer with.

mod file;

use serde_json::{Map, Value};

pub use file::FileRanking;

use super::request::{bad, RequestError};
use crate::error::{Error, Result};
use crate::explore::{Belief, Candidates, Policy, Ranker};

/// Appends `part` (the belief of the next rows) to `all`; `None` parts (a model without a head)
/// leave `all` as it is. Parts of another kind or shape are an error (one model gives them all).
pub fn append_belief(all: &mut Option<Belief>, part: Option<Belief>) -> Result<()> {
    let Some(part) = part else {
        return Ok(());
    };
    match all {
        None => *all = Some(part),
        Some(a) => {
            let same = a.kind == part.kind
                && a.outputs == part.outputs
                && a.width == part.width
                && a.active == part.active;
            if !same {
                return Err(Error::Graph(
                    "two submissions' beliefs have different shapes".into(),
                ));
            }
            a.values.extend_from_slice(&part.values);
        }
    }
    Ok(())
}

/// How a `/score` request asks to be ranked: `"policy"` (overriding the server's `--policy`)
/// and `"bids"` (one per candidate; rank by bid · score).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RankFields {
    /// The request's own policy.
    pub policy: Option<Policy>,
    /// The candidates' bids.
    pub bids: Option<Vec<f32>>,
}

impl RankFields {
    /// Reads `"policy"` and `"bids"` of a request with `candidates` candidates.
    pub fn parse(
        object: &Map<String, Value>,
        candidates: usize,
    ) -> std::result::Result<Self, RequestError> {
        let policy = match object.get("policy") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => {
                Some(Policy::parse(text).map_err(|m| bad(format!("policy {m}")))?)
            }
            Some(other) => return Err(bad(format!("policy must be a string, not {other}"))),
        };
        let bids = match object.get("bids") {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => Some(bids(items, candidates)?),
            Some(other) => return Err(bad(format!("bids must be an array, not {other}"))),
        };
        Ok(RankFields { policy, bids })
    }
}

/// One number ≥ 0 per candidate.
fn bids(items: &[Value], candidates: usize) -> std::result::Result<Vec<f32>, RequestError> {
    if items.len() != candidates {
        return Err(bad(format!(
            "{} bids for {candidates} candidates",
            items.len()
        )));
    }
    let number = |(j, v): (usize, &Value)| match v.as_f64() {
        Some(b) if b >= 0.0 && (b as f32).is_finite() => Ok(b as f32),
        _ => Err(bad(format!("bid {j} is {v}, not a number ≥ 0"))),
    };
    items.iter().enumerate().map(number).collect()
}

/// One request's ranking for one output: the order (candidate indices, best first), the score
/// each was ranked by, and, where the output has an uncertainty head, each candidate's belief
/// as mean and standard deviation of the logit.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Ranked {
    /// Candidate indices, best first.
    pub order: Vec<usize>,
    /// The policy's score of each candidate (bids applied).
    pub scores: Vec<f64>,
    /// The belief's mean logit per candidate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean: Option<Vec<f64>>,
    /// The belief's standard deviation in logits per candidate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sd: Option<Vec<f64>>,
}

/// Ranks one request's candidates on output `output`: `p` is their `[candidates, outputs]`
/// probabilities, `belief` the batch's belief and the candidates' first row in it.
pub fn rank_request(
    ranker: &mut Ranker,
    p: &[f32],
    outputs: usize,
    output: usize,
    belief: Option<(&Belief, usize)>,
    bids: Option<&[f32]>,
) -> Result<Ranked> {
    let column: Vec<f32> = p.chunks(outputs).map(|row| row[output]).collect();
    let belief = belief.map(|(b, first)| (b, first, output));
    let (order, scores) = ranker.rank(&Candidates {
        p: &column,
        belief,
        bids,
    })?;
    let active = belief.filter(|(b, _, _)| b.active.get(output) == Some(&true));
    let spread = |f: fn(&Belief, usize, usize) -> f64| {
        active.map(|(b, first, _)| {
            (first..first + column.len())
                .map(|r| f(b, r, output))
                .collect()
        })
    };
    Ok(Ranked {
        order,
        scores,
        mean: spread(Belief::mean_logit),
        sd: spread(Belief::sd_logit),
    })
}

/// The seed of the `n`-th ranked request of a server seeded `seed`: a SplitMix64 step of both,
/// so neighbouring requests' draws share nothing.
pub fn request_seed(seed: u64, n: u64) -> u64 {
    crate::rng::Rng::new(seed ^ n.wrapping_mul(0xD1B5_4A32_D192_ED03)).next_u64()
}
