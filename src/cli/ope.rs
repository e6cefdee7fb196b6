//! `wgrec ope` (off-policy evaluation of a target policy on a bandit log) and `wgrec data fetch
//! obd` (the Open Bandit Dataset as sample tables). docs/ope.md has the estimators and formats.

use std::path::{Path, PathBuf};
use wgrec::data::obd::{self, Campaign};
use wgrec::ope::{self, files::LogColumns, BootstrapOptions};

/// `--campaign` of `wgrec data fetch obd`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CampaignChoice {
    /// All items.
    All,
    /// Men's fashion.
    Men,
    /// Women's fashion.
    Women,
}

/// The options of `wgrec ope`.
#[derive(Debug, clap::Args)]
pub struct OpeArgs {
    /// The bandit log: a sample table with the action, position, reward and propensity columns.
    #[arg(long)]
    pub log: PathBuf,
    /// The log's schema.toml.
    #[arg(long)]
    pub schema: PathBuf,
    /// The target policy: a TSV with a header `p_<action> …` and one line per log row holding the
    /// policy's probability of each action at that row (docs/ope.md).
    #[arg(long)]
    pub policy: PathBuf,
    /// A reward model in the same layout (`q_<action> …`), for the doubly robust estimate.
    #[arg(long)]
    pub reward_model: Option<PathBuf>,
    /// The action column (categorical).
    #[arg(long, default_value = "item_id")]
    pub action: String,
    /// The position column (categorical).
    #[arg(long, default_value = "position")]
    pub position: String,
    /// The reward column (label).
    #[arg(long, default_value = "click")]
    pub reward: String,
    /// The logging propensity column (numeric, in (0, 1]).
    #[arg(long, default_value = "propensity")]
    pub propensity: String,
    /// Bootstrap resamples.
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
    /// The intervals cover 1 − alpha.
    #[arg(long, default_value_t = 0.05)]
    pub alpha: f64,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Runs `wgrec ope` and prints the table (or the JSON object).
pub fn run(args: OpeArgs) -> anyhow::Result<()> {
    let columns = LogColumns {
        action: args.action,
        position: args.position,
        reward: args.reward,
        propensity: args.propensity,
    };
    let input = ope::files::load(
        &args.log,
        &args.schema,
        &columns,
        &args.policy,
        args.reward_model.as_deref(),
    )?;
    let options = BootstrapOptions {
        resamples: args.bootstrap,
        alpha: args.alpha,
        seed: args.seed,
    };
    let estimates = ope::evaluate(&input.log, &input.policy, input.model.as_ref(), &options)?;
    if args.json {
        let object = serde_json::json!({
            "log": args.log.display().to_string(),
            "rounds": input.log.actions.len(),
            "actions": input.action_ids.len(),
            "positions": input.positions,
            "bootstrap": options.resamples,
            "alpha": options.alpha,
            "seed": options.seed,
            "estimates": estimates,
        });
        println!("{object}");
        return Ok(());
    }
    println!(
        "ope: {} rounds, {} actions, {} positions; {} bootstrap resamples, seed {}",
        input.log.actions.len(),
        input.action_ids.len(),
        input.positions,
        options.resamples,
        options.seed
    );
    let level = 100.0 * (1.0 - options.alpha);
    println!("estimator  estimate  {level}% interval");
    for e in &estimates {
        println!(
            "{:<9}  {:.6}  [{:.6}, {:.6}]",
            e.estimator, e.estimate, e.lower, e.upper
        );
    }
    Ok(())
}

/// Fetches the Open Bandit Dataset sample into `dir` and prints its facts.
pub fn fetch_obd(dir: &Path, campaign: CampaignChoice) -> anyhow::Result<()> {
    let campaign = match campaign {
        CampaignChoice::All => Campaign::All,
        CampaignChoice::Men => Campaign::Men,
        CampaignChoice::Women => Campaign::Women,
    };
    let stats = obd::fetch(dir, campaign)?;
    print_obd(dir, campaign, &stats);
    Ok(())
}

fn print_obd(dir: &Path, campaign: Campaign, stats: &obd::ObdStats) {
    println!(
        "obd ({}): train.tsv {} / valid.tsv {} / test.tsv {} rows (random log), bts.tsv, schema.toml in {}",
        campaign.name(),
        stats.splits[0],
        stats.splits[1],
        stats.splits[2],
        dir.display()
    );
    println!("policy  rows    clicks  click_rate  actions  positions");
    for p in &stats.policies {
        println!(
            "{:<6}  {:>6}  {:>6}  {:.6}    {:>7}  {:>9}",
            p.policy,
            p.rows,
            p.clicks,
            p.click_rate(),
            p.actions,
            p.positions
        );
    }
}
