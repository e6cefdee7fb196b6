//! `wgrec simulate` (issue 18, docs/simulate.md): a closed-loop bandit simulation with a planted
//! truth, to compare ranking policies — greedy, ε-greedy, UCB and Thompson sampling, with an
//! oracle for reference — where the right answer is known.
//!
//! A [`World`] plants users and ads with hidden click probabilities and brings new ads in over
//! time; each round a policy ranks every request's candidates, the top ad is shown, its click is
//! drawn from the truth and the model learns from what was shown ([`Learner`], the streaming
//! trainer's calls); [`run_episode`] plays one policy for one seed. [`simulate`] plays every
//! policy for every seed (policies of a seed face the same world, requests and click uniforms),
//! and [`write_outputs`] writes the per-round log, the summary over seeds and the regret and
//! click curves into a folder.
//!
//! Why a simulation beside `wgrec ope`: off-policy estimates on a fixed log cannot show the loop
//! a policy closes on itself — what it shows decides what it learns — nor how new ads fare; a
//! planted truth makes regret measurable exactly.

mod config;
mod episode;
mod learner;
mod output;
mod plot;
mod world;

use std::path::Path;

pub use config::{SimConfig, SimPolicy};
pub use episode::{run_episode, RoundRecord};
pub use learner::{rows_batch, Learner, Row, SCHEMA, SCHEMA_NAME};
pub use output::{
    mean_sd, rounds_tsv, summarise, summary_markdown, summary_tsv, PolicySummary, RunLog,
    ROUNDS_FILE, ROUNDS_HEADER, SUMMARY_FILE, SUMMARY_MD,
};
pub use plot::Curve;
pub use world::{stream, Request, World};

use crate::config::ModelConfig;
use crate::error::{Error, Result};
use crate::gpu::Gpu;

/// The regret chart's file.
pub const REGRET_PNG: &str = "regret.png";
/// The clicks chart's file.
pub const CLICKS_PNG: &str = "clicks.png";

/// Plays every policy of `config` in the world of every seed `1..=seeds`, seeds outer, policies
/// in order; `progress(policy, seed, record)` after each round.
pub fn simulate(
    gpu: &Gpu,
    config: &SimConfig,
    model: &ModelConfig,
    progress: &mut dyn FnMut(SimPolicy, u64, &RoundRecord),
) -> Result<Vec<RunLog>> {
    let mut runs = Vec::new();
    for seed in 1..=u64::from(config.seeds) {
        let world = World::new(config, seed);
        for &policy in &config.policies {
            let rounds = run_episode(gpu, model, &world, policy, seed, &mut |r| {
                progress(policy, seed, r)
            })?;
            runs.push(RunLog {
                policy,
                seed,
                rounds,
            });
        }
    }
    Ok(runs)
}

/// Writes `rounds.tsv`, `summary.tsv`, `summary.md`, `regret.png` and `clicks.png` into `out`
/// (created if needed), each atomically; returns the summary.
pub fn write_outputs(out: &Path, runs: &[RunLog]) -> Result<Vec<PolicySummary>> {
    std::fs::create_dir_all(out).map_err(|e| Error::Output {
        file: out.to_path_buf(),
        message: format!("cannot create the folder: {e}"),
    })?;
    let summary = summarise(runs);
    output::write_text(&out.join(ROUNDS_FILE), &rounds_tsv(runs))?;
    output::write_text(&out.join(SUMMARY_FILE), &summary_tsv(&summary))?;
    output::write_text(&out.join(SUMMARY_MD), &summary_markdown(&summary))?;
    let title = "closed-loop simulation: cumulative expected regret";
    plot::draw(&out.join(REGRET_PNG), runs, Curve::Regret, title)?;
    let title = "closed-loop simulation: cumulative clicks";
    plot::draw(&out.join(CLICKS_PNG), runs, Curve::Clicks, title)?;
    Ok(summary)
}
