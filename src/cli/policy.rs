//! `wgrec policy`: greedy and ε-greedy ranking policies over a trained model, written as `wgrec
//! ope`'s policy and reward-model files (docs/ope.md, "Policies from a model").

use std::path::PathBuf;

use anyhow::Context;
use wgrec::policy::{self, Candidates, LogText, Rule};
use wgrec::serve::Predictor;
use wgrec::Gpu;

/// `--policy` of `wgrec policy`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RuleChoice {
    /// All mass on the highest-scoring action (ties: the first action in sorted order).
    Greedy,
    /// 1 − ε on the greedy action plus ε uniformly over all actions.
    Epsilon,
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
    /// The ranking rule.
    #[arg(long, value_enum)]
    pub policy: RuleChoice,
    /// ε of --policy epsilon.
    #[arg(long, default_value_t = 0.1)]
    pub epsilon: f64,
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
        RuleChoice::Greedy => Rule::Greedy,
        RuleChoice::Epsilon => Rule::epsilon(args.epsilon)?,
    };
    let gpu = Gpu::new()?;
    let mut predictor = Predictor::load_with_batch(&gpu, &args.checkpoint, args.batch)?;
    let task = match &args.task {
        None => 0,
        Some(name) => predictor
            .tasks()
            .iter()
            .position(|t| t == name)
            .with_context(|| {
                format!(
                    "--task {name:?}: the model's outputs are {:?}",
                    predictor.tasks()
                )
            })?,
    };
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
    let scores = policy::score_log(&gpu, &mut predictor, &log, &candidates, task)?;
    let actions = candidates.actions.len();
    let table = policy::policy_table(rule, &scores, actions);
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
