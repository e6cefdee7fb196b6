//! `wgrec policy`: greedy, ε-greedy, UCB and Thompson-sampling ranking policies over a trained
//! model, written as `wgrec ope`'s policy and reward-model files (docs/ope.md, "Policies from a
//! model").

use std::path::PathBuf;

use anyhow::Context;
use wgrec::explore::Policy;
use wgrec::policy::{self, Candidates, LogText, Rule};
use wgrec::serve::Predictor;
use wgrec::Gpu;

/// `--policy`: `epsilon` (ε from --epsilon) or anything [`Policy::parse`] reads.
#[derive(Debug, Clone, Copy)]
pub enum RuleChoice {
    /// ε-greedy with --epsilon's ε.
    Epsilon,
    /// A policy given in full.
    Policy(Policy),
}

impl RuleChoice {
    fn parse(text: &str) -> Result<Self, String> {
        match text {
            "epsilon" => Ok(RuleChoice::Epsilon),
            _ => Policy::parse(text).map(RuleChoice::Policy),
        }
    }
}

impl std::fmt::Display for RuleChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RuleChoice::Epsilon => write!(f, "epsilon"),
            RuleChoice::Policy(p) => write!(f, "{p}"),
        }
    }
}

/// The options of `wgrec policy`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["candidates", "actions_from"])))]
pub struct PolicyArgs {
    /// The training output folder (or a serving snapshot) whose model scores the actions.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// The bandit log, in the model's schema; one policy line per row.
    #[arg(long)]
    pub log: PathBuf,
    /// The candidate actions: a TSV whose header names schema columns, the action id first, and
    /// one line per action with the values substituted into every log row.
    #[arg(long)]
    pub candidates: Option<PathBuf>,
    /// Take the candidates from a file in the model's schema (e.g. the training split): the first
    /// row of each distinct action, for the columns of --action-columns.
    #[arg(long)]
    pub actions_from: Option<PathBuf>,
    /// With --actions-from: the action's own columns, comma-separated, the action id first.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "item_id,item_feature_0,item_feature_1,item_feature_2,item_feature_3"
    )]
    pub action_columns: Vec<String>,
    /// The ranking rule: greedy (all mass on the highest score; ties: the first action in sorted
    /// order), epsilon (1 − ε on greedy plus ε uniformly; ε from --epsilon, or epsilon:<ε>),
    /// ucb:<c> (greedy on σ(mean + c·sd) of the uncertainty head's logit) or thompson (the share
    /// of --draws posterior draws in which each action ranks first).
    #[arg(long, alias = "rule", value_parser = RuleChoice::parse)]
    pub policy: RuleChoice,
    /// ε of --policy epsilon.
    #[arg(long, default_value_t = 0.1)]
    pub epsilon: f64,
    /// Thompson over a Gaussian head: posterior draws per log row (a probability's Monte-Carlo
    /// standard error is at most 1/(2√draws)); bootstrap heads give exact probabilities.
    #[arg(long, default_value_t = 1000)]
    pub draws: u32,
    /// Thompson: the seed of the draws.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The model output that scores (default: the first).
    #[arg(long)]
    pub task: Option<String>,
    /// Rows per GPU submission.
    #[arg(long, default_value_t = 4096)]
    pub batch: u32,
    /// The policy file (`p_<action> …`), written atomically.
    #[arg(long)]
    pub out: PathBuf,
    /// Also write the reward model (`q_<action> …`, the model's probabilities) here.
    #[arg(long)]
    pub reward_model: Option<PathBuf>,
}

/// Runs `wgrec policy`.
pub fn run(args: PolicyArgs) -> anyhow::Result<()> {
    let rule = match args.policy {
        RuleChoice::Epsilon => Some(Rule::epsilon(args.epsilon)?),
        RuleChoice::Policy(Policy::Greedy) => Some(Rule::Greedy),
        RuleChoice::Policy(Policy::EpsilonGreedy(e)) => Some(Rule::epsilon(e)?),
        RuleChoice::Policy(Policy::Ucb(_) | Policy::Thompson) => None,
    };
    let gpu = super::tune::gpu()?;
    let mut predictor = Predictor::load_with_batch(&gpu, &args.checkpoint, args.batch)?;
    if rule.is_none() && predictor.config().uncertainty().is_none() {
        anyhow::bail!(
            "--policy {} needs a model with an uncertainty head ([[task]] uncertainty); {} has none",
            args.policy,
            args.checkpoint.display()
        );
    }
    let task = task_index(&predictor, args.task.as_deref())?;
    let schema = predictor.schema().clone();
    let log = LogText::read(&args.log, &schema)?;
    let candidates = match (&args.candidates, &args.actions_from) {
        (Some(path), _) => Candidates::read(path, &schema)?,
        (None, Some(path)) => Candidates::from_log(
            &LogText::read(path, &schema)?,
            &schema,
            &args.action_columns,
        )?,
        (None, None) => anyhow::bail!("give --candidates or --actions-from"),
    };
    policy::check_actions(&log, &candidates)?;
    let actions = candidates.actions.len();
    let (scores, table) = match rule {
        Some(rule) => {
            let scores = policy::score_log(&gpu, &mut predictor, &log, &candidates, task)?;
            let table = policy::policy_table(rule, &scores, actions);
            (scores, table)
        }
        None => belief_rule(&args, &gpu, &mut predictor, &log, &candidates, task)?,
    };
    policy::write_table(&args.out, "p_", &candidates.actions, &table)?;
    if let Some(path) = &args.reward_model {
        policy::write_table(path, "q_", &candidates.actions, &scores)?;
    }
    eprintln!(
        "{} rows × {actions} actions scored ({} rows); wrote {}{}",
        log.rows.len(),
        scores.len(),
        args.out.display(),
        args.reward_model
            .as_ref()
            .map(|p| format!(" and {}", p.display()))
            .unwrap_or_default()
    );
    Ok(())
}

/// The UCB or Thompson rule's scores and table, from the head's belief over every substituted row.
fn belief_rule(
    args: &PolicyArgs,
    gpu: &Gpu,
    predictor: &mut Predictor,
    log: &LogText,
    candidates: &Candidates,
    task: usize,
) -> anyhow::Result<(Vec<f32>, Vec<f64>)> {
    let (scores, belief) = policy::score_log_belief(gpu, predictor, log, candidates, task, true)?;
    let belief =
        belief.with_context(|| format!("--policy {}: no belief came back", args.policy))?;
    let actions = candidates.actions.len();
    let p = match args.policy {
        RuleChoice::Policy(p) => p,
        RuleChoice::Epsilon => anyhow::bail!("--policy epsilon reads no belief"),
    };
    let (draws, seed) = (args.draws, args.seed);
    let table = policy::belief_table(p, &scores, &belief, task, actions, draws, seed)?;
    Ok((scores, table))
}

/// The output `--task` names (the first without it).
fn task_index(predictor: &Predictor, task: Option<&str>) -> anyhow::Result<usize> {
    let Some(name) = task else {
        return Ok(0);
    };
    let tasks = predictor.tasks();
    (tasks.iter().position(|t| t == name))
        .with_context(|| format!("--task {name:?}: the model's outputs are {tasks:?}"))
}
