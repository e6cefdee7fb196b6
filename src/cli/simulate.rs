//! `wgrec simulate`: the closed-loop simulation with a planted truth (docs/simulate.md).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use wgrec::config::ModelConfig;
use wgrec::simulate::{self, SimConfig, SimPolicy};

/// The options of `wgrec simulate`.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// The world file (sizes, arrivals, rounds, seeds, policies, model file).
    #[arg(long, default_value = "configs/worlds/simulate.toml")]
    pub world: PathBuf,
    /// The output folder: rounds.tsv, summary.tsv, summary.md, regret.png, clicks.png.
    #[arg(long)]
    pub out: PathBuf,
    /// Override the world file's `rounds`.
    #[arg(long)]
    pub rounds: Option<u32>,
    /// Override the world file's `seeds` (seeds 1..=N).
    #[arg(long)]
    pub seeds: Option<u32>,
    /// Override the world file's `policies` (comma-separated: oracle, greedy, epsilon:<ε>,
    /// ucb:<c>, thompson).
    #[arg(long, value_delimiter = ',')]
    pub policies: Option<Vec<String>>,
    /// Override the world file's `model`.
    #[arg(long)]
    pub model: Option<PathBuf>,
}

/// Runs `wgrec simulate`.
pub fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let config = world_config(&args)?;
    let model = ModelConfig::load(&config.model)?;
    let gpu = super::tune::gpu()?;
    let start = Instant::now();
    let every = (config.rounds / 4).max(1);
    let mut progress = |policy: SimPolicy, seed: u64, r: &simulate::RoundRecord| {
        if (r.round + 1).is_multiple_of(every) {
            eprintln!(
                "seed {seed} {policy}: round {}/{} ({:.0} s)",
                r.round + 1,
                config.rounds,
                start.elapsed().as_secs_f64()
            );
        }
    };
    let runs = simulate::simulate(&gpu, &config, &model, &mut progress)?;
    let summary = simulate::write_outputs(&args.out, &runs)?;
    print!("{}", simulate::summary_markdown(&summary));
    eprintln!(
        "{} runs × {} rounds in {:.1} s on {}; wrote {}",
        runs.len(),
        config.rounds,
        start.elapsed().as_secs_f64(),
        gpu.describe(),
        args.out.display()
    );
    Ok(())
}

/// The world file with the flags' overrides, checked again.
fn world_config(args: &SimulateArgs) -> anyhow::Result<SimConfig> {
    let mut config = SimConfig::load(&args.world)?;
    if let Some(rounds) = args.rounds {
        config.rounds = rounds;
    }
    if let Some(seeds) = args.seeds {
        config.seeds = seeds;
    }
    if let Some(model) = &args.model {
        config.model = model.clone();
    }
    if let Some(list) = &args.policies {
        config.policies = (list.iter())
            .map(|p| SimPolicy::parse(p).map_err(anyhow::Error::msg))
            .collect::<anyhow::Result<_>>()
            .context("--policies")?;
    }
    config.check("the command line")?;
    Ok(config)
}
