//! What the generator is asked for, and the checks that make a configuration one it can generate:
//! the layout of fields, the tasks (their rates and the planted conflict between them), the
//! scenario column.

use crate::{Error, Result};

/// How an extra task's effects of the conflicting fields K = {c1, c3, …} depart from task 0's
/// (see the module docs of [`super`] for why there are two).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConflictMode {
    /// The first-order weights on K times (1 − 2·conflict); the latent vectors are shared. One
    /// shared embedding coordinate can carry both tasks' weights, so this costs a shared bottom
    /// little.
    #[default]
    Flip,
    /// Each extra task t has its own first-order weights and latent vectors on K:
    /// a·(task 0's) + b·(task t's independent draw), a = 1 − conflict, b = √(1 − a²) (same
    /// variance). At conflict 1 the tasks' per-id factors on K are independent: T·(1 + LATENT)
    /// numbers per id, more than a shared embedding of small width holds.
    Independent,
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct SynthConfig {
    /// The seed: the same seed and config give the same rows, bit for bit.
    pub seed: u64,
    /// Vocabulary sizes of the context categorical fields (besides user, item and category).
    pub vocabs: Vec<u64>,
    /// Zipf exponent of every categorical field.
    pub zipf: f64,
    /// Number of numeric fields (non-negative integer counts).
    pub numeric: usize,
    /// Users, items, item categories; used by the behaviour sequences.
    pub users: u64,
    /// Items (ids are `category + categories × k`).
    pub items: u64,
    /// Item categories shared by targets and behaviours.
    pub categories: u64,
    /// Longest behaviour sequence; 0 disables sequences (the Criteo layout has none).
    pub max_history: usize,
    /// Mean of σ(logit) for the first task (task 0), in (0, 1).
    pub positive_rate: f64,
    /// Second task: (its positive rate, weight of the first task's score in its logit in [0, 1]).
    /// Exclusive with [`extra_task_rates`](Self::extra_task_rates).
    pub second_task: Option<(f64, f64)>,
    /// Positive rates of tasks 1, 2, … (each in (0, 1)) after task 0, whose rate is
    /// `positive_rate`: T = 1 + its length. These tasks share task 0's planted model except on
    /// the conflicting fields (the odd context fields c1, c3, …), see [`conflict`](Self::conflict).
    pub extra_task_rates: Vec<f64>,
    /// In [0, 1]: how far the extra tasks' effects of the conflicting fields are from task 0's;
    /// 0 = the tasks agree. What it does depends on [`conflict_mode`](Self::conflict_mode).
    pub conflict: f64,
    /// How the conflicting fields differ between tasks: a sign flip of the first-order weights
    /// (the default) or per-task independent first-order weights and latent vectors.
    pub conflict_mode: ConflictMode,
    /// Scenarios: 0 = none; S ≥ 1 adds a `scenario` column, uniform over 0..S, whose value adds a
    /// bias per (scenario, task) and a scenario-specific slope on field c0's weight.
    pub scenarios: u64,
    /// Share of context categorical and numeric values left empty.
    pub missing_rate: f64,
}

impl SynthConfig {
    /// Context fields with vocabularies log-spaced from 10 to 10^7, 4 numeric fields, sequences up
    /// to 20, one task, no scenarios.
    pub fn new(seed: u64) -> Self {
        SynthConfig {
            seed,
            vocabs: log_spaced(8),
            zipf: 1.1,
            numeric: 4,
            users: 100_000,
            items: 1_000_000,
            categories: 32,
            max_history: 20,
            positive_rate: 0.2,
            second_task: None,
            extra_task_rates: Vec::new(),
            conflict: 0.0,
            conflict_mode: ConflictMode::Flip,
            scenarios: 0,
            missing_rate: 0.0,
        }
    }

    /// The Criteo layout: 13 numeric and 26 categorical fields (vocabularies 10 … 10^7), no
    /// sequences, 5% empty values.
    pub fn criteo(seed: u64) -> Self {
        SynthConfig {
            vocabs: log_spaced(26),
            numeric: 13,
            max_history: 0,
            missing_rate: 0.05,
            ..SynthConfig::new(seed)
        }
    }

    /// Number of tasks: task 0, then the second task or the extra tasks.
    pub fn tasks(&self) -> usize {
        1 + usize::from(self.second_task.is_some()) + self.extra_task_rates.len()
    }

    /// The asked positive rate of each task.
    pub(super) fn rates(&self) -> Vec<f64> {
        let mut rates = vec![self.positive_rate];
        rates.extend(self.second_task.map(|t| t.0));
        rates.extend_from_slice(&self.extra_task_rates);
        rates
    }

    pub(super) fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Dataset(format!("synth: {m}")));
        let rate_ok = |r: f64| r > 0.0 && r < 1.0;
        if !rate_ok(self.positive_rate) {
            return bad(format!(
                "positive rate {} is not in (0, 1)",
                self.positive_rate
            ));
        }
        if let Some((r, mix)) = self.second_task {
            if !rate_ok(r) || !(0.0..=1.0).contains(&mix) {
                return bad(format!("second task rate {r} / mix {mix} out of range"));
            }
        }
        self.validate_tasks()?;
        if !(0.0..1.0).contains(&self.missing_rate) {
            return bad(format!(
                "missing rate {} is not in [0, 1)",
                self.missing_rate
            ));
        }
        if self.vocabs.contains(&0)
            || self.users == 0
            || self.categories == 0
            || self.items < self.categories
        {
            return bad("vocabularies must be ≥ 1 and items ≥ categories".into());
        }
        Ok(())
    }

    /// The extra tasks, the conflict and the scenarios; each message names the field.
    fn validate_tasks(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Dataset(format!("synth: {m}")));
        if let Some((t, &r)) =
            (self.extra_task_rates.iter().enumerate()).find(|(_, &r)| !(r > 0.0 && r < 1.0))
        {
            return bad(format!("extra_task_rates[{t}] = {r} is not in (0, 1)"));
        }
        if self.second_task.is_some() && !self.extra_task_rates.is_empty() {
            return bad("second_task and extra_task_rates cannot both be set".into());
        }
        if !(0.0..=1.0).contains(&self.conflict) {
            return bad(format!("conflict = {} is not in [0, 1]", self.conflict));
        }
        if self.scenarios > 0 && self.vocabs.is_empty() {
            return bad("scenarios need a context field c0 to weigh (vocabs is empty)".into());
        }
        Ok(())
    }
}

fn log_spaced(fields: usize) -> Vec<u64> {
    (0..fields)
        .map(|f| {
            let e = 1.0 + 6.0 * f as f64 / (fields.max(2) - 1) as f64;
            10f64.powf(e).round() as u64
        })
        .collect()
}
