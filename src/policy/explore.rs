//! The rules that read the uncertainty head (issue 18): UCB, greedy on `σ(mean + c·sd)`, and
//! Thompson sampling, the probability that each action ranks first under one posterior draw.
//!
//! Both go through the one policy core, [`crate::explore::Ranker`], so an action ranked first
//! here is the action `wgrec serve` and `wgrec predict` would put first for the same belief and
//! draw. Where the core has a closed form ([`Ranker::top_probabilities`]: UCB, and Thompson over
//! K bootstrap heads, whose π_e(a|x) is the share of heads that put `a` first) the table is
//! exact. Thompson over a Gaussian head has none: π_e(a|x) is then the share of `draws` seeded
//! posterior draws (one [`Ranker::rank`] each) in which `a` ranks first, an unbiased estimate
//! whose standard error is `√(π(1 − π)/draws) ≤ 1/(2√draws)` (0.016 at 1000 draws), so IPS on
//! these files stays unbiased and only its variance grows, by far less than the log's own. Rows
//! are drawn in log order from one seeded ranker, so a seed gives the same file bit for bit.

use crate::error::{Error, Result};
use crate::explore::{Belief, Candidates, Policy, Ranker};

/// π_e for every row of `p` (`[rows, actions]`, output `task`'s probabilities) with `belief`
/// over the same rows, row-major: UCB one-hot on its best action (ties: the first), Thompson
/// the exact share of bootstrap heads, or for a Gaussian head the share of `draws` draws, in
/// which each action ranks first. Greedy and ε-greedy are [`super::Rule`]'s and refused here.
pub fn belief_table(
    policy: Policy,
    p: &[f32],
    belief: &Belief,
    task: usize,
    actions: usize,
    draws: u32,
    seed: u64,
) -> Result<Vec<f64>> {
    let draws = match policy {
        Policy::Ucb(_) => 1,
        Policy::Thompson if draws > 0 => draws,
        Policy::Thompson => return Err(bad("draws", "--draws must be at least 1".into())),
        other => {
            let message = format!("{other} needs no belief: it is a greedy or epsilon rule");
            return Err(bad("policy", message));
        }
    };
    let mut ranker = Ranker::new(policy, seed)?;
    let mut table = Vec::with_capacity(p.len());
    for (i, row) in p.chunks(actions).enumerate() {
        let candidates = Candidates {
            p: row,
            belief: Some((belief, i * actions, task)),
            bids: None,
        };
        if let Some(exact) = ranker.top_probabilities(&candidates)? {
            table.extend(exact);
            continue;
        }
        let mut firsts = vec![0u32; actions];
        for _ in 0..draws {
            let (order, _) = ranker.rank(&candidates)?;
            firsts[order[0]] += 1;
        }
        table.extend(firsts.iter().map(|&k| k as f64 / draws as f64));
    }
    Ok(table)
}

fn bad(key: &str, message: String) -> Error {
    Error::Config {
        file: "policy".into(),
        key: key.into(),
        message,
    }
}
