//! One run of the closed loop: one policy in the world of one seed, round after round.
//!
//! Each round: the world's requests (the same for every policy of a seed); the policy ranks each
//! request's candidates — the oracle by the truth, a model policy with a seeded
//! [`Ranker`] over the live model's probabilities (and belief, for UCB and Thompson) — and the top
//! ad is shown; its click is the round's uniform below the truth's probability; the model learns
//! from the shown rows ([`Learner::learn`]). The round's regret is expected regret, `Σ (max_j p_j
//! − p_shown)` over its requests under the truth, so it is ≥ 0 by construction and exactly 0 for
//! the oracle; clicks are the realised ones.

use crate::config::ModelConfig;
use crate::error::{Error, Result};
use crate::explore::{Candidates, Ranker};
use crate::gpu::Gpu;

use super::config::SimPolicy;
use super::learner::{Learner, Row};
use super::world::{stream, Request, World, RANKER};

/// What one round of one run did.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundRecord {
    /// 0-based round.
    pub round: u32,
    /// Requests served.
    pub requests: u32,
    /// Clicks drawn.
    pub clicks: u32,
    /// Σ p of the shown ads under the truth.
    pub expected_clicks: f64,
    /// Σ (best p − shown p) under the truth.
    pub regret: f64,
    /// Impressions of new ads (see [`World::is_new`]).
    pub new_impressions: u32,
    /// Candidate slots held by new ads.
    pub new_candidates: u32,
    /// Candidate slots in all.
    pub candidates: u32,
    /// For a policy that reads the belief: the sums of its standard deviation (logits) over the
    /// new candidates and over the others — whether the head is less sure of the ads it has
    /// seen least, which is what UCB and Thompson sampling count on.
    pub belief_sd: Option<(f64, f64)>,
}

/// What a model policy chose, and the belief's spread over new and other candidates.
struct Choice {
    shown: Vec<u32>,
    belief_sd: Option<(f64, f64)>,
}

/// The model side of a run: the learner and the ranker (none for the oracle).
struct ModelPolicy<'g> {
    learner: Learner<'g>,
    ranker: Ranker,
}

/// Runs `policy` for `world`'s rounds (`seed` seeds its ranker and model), calling `progress`
/// after each round.
pub fn run_episode(
    gpu: &Gpu,
    model: &ModelConfig,
    world: &World,
    policy: SimPolicy,
    seed: u64,
    progress: &mut dyn FnMut(&RoundRecord),
) -> Result<Vec<RoundRecord>> {
    let c = world.config();
    let mut live = match policy {
        SimPolicy::Oracle => None,
        SimPolicy::Model(p) => {
            check_belief(model, &c.model, p.needs_belief(), &p.to_string())?;
            let rows = c.requests * c.candidates;
            Some(ModelPolicy {
                learner: Learner::new(gpu, model, world, seed, rows)?,
                ranker: Ranker::new(p, stream(seed, RANKER, 0).next_u64())?,
            })
        }
    };
    let mut records = Vec::with_capacity(c.rounds as usize);
    for round in 0..c.rounds {
        let record = play_round(world, round, live.as_mut())?;
        progress(&record);
        records.push(record);
    }
    Ok(records)
}

/// A policy that reads the belief needs a model with an uncertainty head; the error names the
/// model file (`file`) and the key it lacks.
fn check_belief(
    model: &ModelConfig,
    file: &std::path::Path,
    needs: bool,
    name: &str,
) -> Result<()> {
    if needs && model.uncertainty().is_none() {
        return Err(Error::Config {
            file: file.display().to_string(),
            key: "task.uncertainty".into(),
            message: format!(
                "the world's policy {name} needs a model with an uncertainty head \
                 ([[task]] uncertainty = ...)"
            ),
        });
    }
    Ok(())
}

/// One round (see the module docs).
fn play_round(
    world: &World,
    round: u32,
    model: Option<&mut ModelPolicy<'_>>,
) -> Result<RoundRecord> {
    let requests = world.requests(round);
    let uniforms = world.click_uniforms(round);
    let (shown, belief_sd) = match model {
        None => (requests.iter().map(|r| best(world, r)).collect(), None),
        Some(m) => {
            let Choice { shown, belief_sd } = choose(world, round, &requests, m)?;
            let rows: Vec<Row> = (requests.iter().zip(&shown).zip(&uniforms))
                .map(|((r, &ad), &u)| Row {
                    user: r.user,
                    ad,
                    click: Some(u < world.p(r.user, ad)),
                })
                .collect();
            m.learner.learn(world, &rows)?;
            (shown, belief_sd)
        }
    };
    let mut record = tally(world, round, &requests, &shown, &uniforms);
    record.belief_sd = belief_sd;
    Ok(record)
}

/// The truly best candidate of `r` (ties: the first drawn).
fn best(world: &World, r: &Request) -> u32 {
    let p = |ad: u32| world.p(r.user, ad);
    (r.candidates.iter().copied())
        .reduce(|a, b| if p(b) > p(a) { b } else { a })
        .expect("a request has at least one candidate (checked: candidates ≥ 1)")
}

/// The model policy's shown ad per request: every candidate scored in one batch, each request
/// ranked in order by the seeded ranker.
fn choose(
    world: &World,
    round: u32,
    requests: &[Request],
    m: &mut ModelPolicy<'_>,
) -> Result<Choice> {
    let rows: Vec<Row> = (requests.iter())
        .flat_map(|r| {
            (r.candidates.iter()).map(|&ad| Row {
                user: r.user,
                ad,
                click: None,
            })
        })
        .collect();
    let needs = m.ranker.policy().needs_belief();
    let (p, belief) = m.learner.score(world, &rows, needs)?;
    let outputs = p.len() / rows.len().max(1);
    let mut first = 0;
    let mut shown = Vec::with_capacity(requests.len());
    for r in requests {
        let n = r.candidates.len();
        // Output 0 (the first task) of each candidate row.
        let probs: Vec<f32> = (first..first + n).map(|i| p[i * outputs]).collect();
        let candidates = Candidates {
            p: &probs,
            belief: belief.as_ref().map(|b| (b, first, 0)),
            bids: None,
        };
        let (order, _) = m.ranker.rank(&candidates)?;
        shown.push(r.candidates[order[0]]);
        first += n;
    }
    let belief_sd = belief.map(|b| {
        let sd = |new: bool| -> f64 {
            let mine = (rows.iter().enumerate()).filter(|(_, r)| world.is_new(r.ad, round) == new);
            mine.map(|(i, _)| b.sd_logit(i, 0)).sum()
        };
        (sd(true), sd(false))
    });
    Ok(Choice { shown, belief_sd })
}

/// The round's record from what was shown.
fn tally(
    world: &World,
    round: u32,
    requests: &[Request],
    shown: &[u32],
    uniforms: &[f64],
) -> RoundRecord {
    let mut rec = RoundRecord {
        round,
        requests: requests.len() as u32,
        clicks: 0,
        expected_clicks: 0.0,
        regret: 0.0,
        new_impressions: 0,
        new_candidates: 0,
        candidates: 0,
        belief_sd: None,
    };
    for ((r, &ad), &u) in requests.iter().zip(shown).zip(uniforms) {
        let p = world.p(r.user, ad);
        rec.clicks += u32::from(u < p);
        rec.expected_clicks += p;
        rec.regret += world.p(r.user, best(world, r)) - p;
        rec.new_impressions += u32::from(world.is_new(ad, round));
        let fresh = r.candidates.iter().filter(|&&a| world.is_new(a, round));
        rec.new_candidates += fresh.count() as u32;
        rec.candidates += r.candidates.len() as u32;
    }
    rec
}
