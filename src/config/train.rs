//! The `[train]` section: batch, epochs, learning rates and their schedule, the optimizers, weight
//! decay, sample weights, GAUC's user column, shuffling, the monitored metric; and the checks on
//! them.

use serde::Deserialize;

use super::{bad, unit, Task};
use crate::error::Result;

/// The training schedule.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Train {
    /// Samples per step.
    pub batch_size: u32,
    /// Passes over the training split.
    pub epochs: u32,
    /// Learning rate of the embedding tables (row-wise Adagrad).
    pub sparse_lr: f32,
    /// Learning rate of the dense parameters (Adam).
    pub dense_lr: f32,
    /// Linear warm-up steps of the dense learning rate.
    pub warmup_steps: u64,
    /// Global gradient-norm clipping of dense parameters (absent: off).
    pub clip_norm: Option<f32>,
    /// Epochs without a better monitored validation AUC (see `monitor`) before stopping (0: never
    /// stop early).
    pub patience: u32,
    /// Seed of initialisation, shuffling and dropout.
    pub seed: u64,
    /// Stop after this many steps in all (absent: run the epochs).
    pub steps: Option<u64>,
    /// Steps between progress lines (and loss read-backs).
    pub log_every: u64,
    /// The optimizer of the embedding tables.
    pub sparse_optimizer: SparseOptimizerName,
    /// L2 weight decay λ of the embedding tables, applied to the rows a step touches (added to
    /// the gradient for SGD and Adagrad, decoupled for Adam); `[[feature]] embedding_l2` overrides
    /// it per feature.
    pub sparse_weight_decay: f32,
    /// How λ applies to a touched row: `row` (once per step) or `frequency` (λ over the row's
    /// lookups in the batch).
    pub sparse_weight_decay_mode: SparseDecayMode,
    /// The optimizer of the dense parameters.
    pub dense_optimizer: DenseOptimizerName,
    /// The column whose ids are GAUC's users (e.g. `user_id`; absent: no GAUC). The key keeps
    /// GAUC's own name, "group AUC"; in the code these row sets are *users*
    /// (`wgrec::metrics`), as "group" means an expert group.
    pub group: Option<String>,
    /// Per-sample loss weights from a data column (METHODS.md §4.2; absent: every sample weighs 1).
    pub weights: Option<Weights>,
    /// Learning-rate decay after the warm-up, applied to both rates (absent: constant).
    pub lr_decay: Option<LrDecay>,
    /// Shuffle the training split within windows of this many batches (a streaming shuffle,
    /// reseeded each epoch). 0 (the default) keeps the file order: on time-split data the last
    /// steps then see the most recent events, which on MovieLens-100K scored as well as shuffling
    /// (three seeds each; BENCHMARKS.md) and is what online learning does.
    pub shuffle_window: u32,
    /// The validation metric early stopping and the best checkpoint follow: a task's name (its
    /// AUC) or `"mean"` (the mean AUC over the tasks that have one). Absent: the first task, as
    /// before the key existed. See [`Train::monitored_auc`].
    pub monitor: Option<String>,
    /// Round updated f16 embedding rows stochastically (FBGEMM's), seeded by `seed`: unbiased in
    /// expectation where round-to-nearest loses updates smaller than half an f16 ulp. Nothing
    /// changes for f32 tables.
    pub stochastic_rounding: bool,
}

/// The validation score a run follows, resolved from `[train] monitor` against the tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Monitor {
    /// The AUC of task `t` (config order).
    Task(usize),
    /// The mean AUC over the tasks that have one (in task order); none when no task has one.
    Mean,
}

impl Monitor {
    /// The score of one epoch's validation AUCs (per task, `None` where undefined).
    fn score(self, aucs: &[Option<f64>]) -> Option<f64> {
        match self {
            Monitor::Task(t) => aucs.get(t).copied().flatten(),
            Monitor::Mean => {
                let defined: Vec<f64> = aucs.iter().flatten().copied().collect();
                let n = defined.len();
                (n > 0).then(|| defined.iter().sum::<f64>() / n as f64)
            }
        }
    }
}

/// The `monitor` value that means the mean over the tasks.
const MEAN: &str = "mean";

impl Default for Train {
    fn default() -> Self {
        Train {
            batch_size: 2048,
            epochs: 3,
            sparse_lr: 0.05,
            dense_lr: 1e-3,
            warmup_steps: 0,
            clip_norm: None,
            patience: 1,
            seed: 1,
            steps: None,
            log_every: 100,
            sparse_optimizer: SparseOptimizerName::Adagrad,
            sparse_weight_decay: 0.0,
            sparse_weight_decay_mode: SparseDecayMode::Row,
            dense_optimizer: DenseOptimizerName::Adam,
            group: None,
            weights: None,
            lr_decay: None,
            shuffle_window: 0,
            monitor: None,
            stochastic_rounding: false,
        }
    }
}

/// A learning-rate schedule after the linear warm-up, as a factor on `sparse_lr` and `dense_lr`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum LrDecay {
    /// Half a cosine from 1 down to `floor` over `steps` steps after the warm-up, then `floor`.
    Cosine {
        /// Steps from the end of the warm-up to the floor.
        steps: u64,
        /// The final factor (0 ≤ floor ≤ 1).
        #[serde(default)]
        floor: f32,
    },
    /// `gamma^⌊(s − 1) / every⌋` (torch's StepLR stepped every step); no warm-up.
    Step {
        /// Steps between decays.
        every: u64,
        /// Factor per decay (0 < gamma ≤ 1).
        gamma: f32,
    },
}

/// The optimizer of the embedding tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SparseOptimizerName {
    /// Row-wise Adagrad (one accumulator per row; FBGEMM's default).
    #[default]
    Adagrad,
    /// Plain SGD.
    Sgd,
    /// Adam with per-element moments beside each row (3× the table memory), lazy: only touched
    /// rows move (β = 0.9, 0.999; ε = 1e-8).
    Adam,
}

/// How the embedding weight decay applies to a touched row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SparseDecayMode {
    /// λ once per touched row and step.
    #[default]
    Row,
    /// λ / n, n the row's lookups in the batch.
    Frequency,
}

/// The optimizer of the dense parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DenseOptimizerName {
    /// Adam (β = 0.9, 0.999; ε = 1e-8), as torch.optim.Adam.
    #[default]
    Adam,
    /// Plain SGD.
    Sgd,
}

/// Per-sample weights (METHODS.md §4.2): `w = exposure(count) · class(label)` where `count` is read
/// from `column` (a numeric or weight column), `exposure(c) = max(c, 1)^(−gamma)`, and the class
/// factor is `positive` or `negative` by the first task's label. Unequal class factors bias the
/// logit by `log(positive / negative)`, which prediction subtracts.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Weights {
    /// The exposure-count column (absent: no exposure part).
    #[serde(default)]
    pub column: Option<String>,
    /// The exponent γ ≥ 0 of the exposure part.
    #[serde(default)]
    pub gamma: f64,
    /// Class factor of positives.
    #[serde(default = "unit")]
    pub positive: f64,
    /// Class factor of negatives (a negative down-sampling keep rate r is `negative = r`).
    #[serde(default = "unit")]
    pub negative: f64,
}

impl Train {
    /// The monitored validation score of one epoch, from its per-task AUCs (`None` where
    /// undefined) in the order of `tasks`: the named task's AUC, the mean over the defined AUCs
    /// (`"mean"`), or by default the first task's. `None` when that is undefined.
    pub fn monitored_auc(&self, tasks: &[Task], aucs: &[Option<f64>]) -> Option<f64> {
        self.monitor_of(tasks).score(aucs)
    }

    /// The metric `monitor` names among `tasks` (validated: an unknown name is refused at load).
    fn monitor_of(&self, tasks: &[Task]) -> Monitor {
        match self.monitor.as_deref() {
            Some(MEAN) => Monitor::Mean,
            Some(name) => Monitor::Task(tasks.iter().position(|t| t.name == name).unwrap_or(0)),
            None => Monitor::Task(0),
        }
    }

    /// `monitor` is "mean" or a task's name, and not both.
    fn validate_monitor(&self, file: &str, tasks: &[Task]) -> Result<()> {
        let Some(m) = self.monitor.as_deref() else {
            return Ok(());
        };
        let is_task = tasks.iter().any(|t| t.name == m);
        let names: Vec<String> = tasks.iter().map(|t| format!("{:?}", t.name)).collect();
        if m == MEAN && is_task {
            return Err(bad(
                file,
                "train.monitor",
                "\"mean\" is both the mean over the tasks and a task's name: rename that task",
            ));
        }
        if m != MEAN && !is_task {
            return Err(bad(
                file,
                "train.monitor",
                format!(
                    "{m:?} is neither \"mean\" nor a task (tasks: {})",
                    names.join(", ")
                ),
            ));
        }
        Ok(())
    }

    /// Every key makes a schedule: a batch, positive rates, a progress interval and step count,
    /// sample weights, a decay and a clip norm that can be used, a monitor among `tasks`. Size
    /// bounds are `limits`'s.
    pub(super) fn validate(&self, file: &str, tasks: &[Task]) -> Result<()> {
        self.validate_monitor(file, tasks)?;
        if self.batch_size == 0 {
            return Err(bad(file, "train.batch_size", "0: must be at least 1"));
        }
        for (k, v) in [
            ("train.sparse_lr", self.sparse_lr),
            ("train.dense_lr", self.dense_lr),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(bad(file, k, format!("{v}: must be > 0")));
            }
        }
        if self.log_every == 0 {
            return Err(bad(file, "train.log_every", "0: must be at least 1"));
        }
        if self.steps == Some(0) {
            return Err(bad(file, "train.steps", "0: must be at least 1"));
        }
        if let Some(w) = &self.weights {
            w.validate(file)?;
        }
        if let Some(decay) = &self.lr_decay {
            decay.validate(file, self.warmup_steps)?;
        }
        if let Some(c) = self.clip_norm {
            if !(c.is_finite() && c > 0.0) {
                return Err(bad(file, "train.clip_norm", format!("{c}: must be > 0")));
            }
        }
        Ok(())
    }
}

impl Weights {
    /// Positive class factors, a γ ≥ 0, and a count column when γ > 0.
    fn validate(&self, file: &str) -> Result<()> {
        for (k, v) in [("positive", self.positive), ("negative", self.negative)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(bad(
                    file,
                    format!("train.weights.{k}"),
                    format!("{v}: must be > 0"),
                ));
            }
        }
        if !(self.gamma.is_finite() && self.gamma >= 0.0) {
            return Err(bad(
                file,
                "train.weights.gamma",
                format!("{}: must be ≥ 0", self.gamma),
            ));
        }
        if self.gamma > 0.0 && self.column.is_none() {
            return Err(bad(
                file,
                "train.weights.column",
                "gamma > 0 weights by an exposure count: name its column",
            ));
        }
        Ok(())
    }
}

impl LrDecay {
    /// A decay that ends, with a factor in range; step decay has no warm-up to follow.
    fn validate(&self, file: &str, warmup_steps: u64) -> Result<()> {
        match *self {
            LrDecay::Cosine { steps, floor } => {
                if steps == 0 {
                    return Err(bad(file, "train.lr_decay.steps", "0: must be at least 1"));
                }
                if !(0.0..=1.0).contains(&floor) {
                    return Err(bad(
                        file,
                        "train.lr_decay.floor",
                        format!("{floor}: must be in [0, 1]"),
                    ));
                }
            }
            LrDecay::Step { every, gamma } => {
                if every == 0 {
                    return Err(bad(file, "train.lr_decay.every", "0: must be at least 1"));
                }
                if !(gamma > 0.0 && gamma <= 1.0) {
                    return Err(bad(
                        file,
                        "train.lr_decay.gamma",
                        format!("{gamma}: must be in (0, 1]"),
                    ));
                }
                if warmup_steps > 0 {
                    return Err(bad(
                        file,
                        "train.lr_decay",
                        "step decay has no warm-up: drop train.warmup_steps or use kind = \"cosine\"",
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::ModelConfig;

    /// A model with the tasks `names` and `[train]` lines `train`.
    fn parse(names: &[&str], train: &str) -> crate::Result<ModelConfig> {
        let mut text = String::from("[[feature]]\nname = \"user\"\nkind = \"categorical\"\n");
        for n in names {
            text.push_str(&format!("[[task]]\nname = \"{n}\"\n"));
        }
        text.push_str(&format!("[train]\n{train}\n"));
        ModelConfig::parse(&text, "model.toml")
    }

    #[test]
    fn monitor_defaults_to_the_first_task_and_names_a_task_or_the_mean() {
        let aucs = [Some(0.7), None, Some(0.8)];
        let score = |monitor: &str| {
            let c = parse(&["click", "like", "buy"], monitor).unwrap();
            c.train.monitored_auc(&c.tasks, &aucs)
        };
        assert_eq!(score(""), Some(0.7), "default: the first task, as before");
        assert_eq!(score("monitor = \"click\""), Some(0.7));
        assert_eq!(score("monitor = \"buy\""), Some(0.8));
        assert_eq!(score("monitor = \"like\""), None, "like has no AUC");
        // The mean skips tasks without an AUC: (0.7 + 0.8) / 2.
        assert_eq!(score("monitor = \"mean\""), Some((0.7 + 0.8) / 2.0));
        let c = parse(&["click", "like"], "monitor = \"mean\"").unwrap();
        assert_eq!(c.train.monitored_auc(&c.tasks, &[None, None]), None);
        // One task: "mean" is that task's AUC.
        let c = parse(&["click"], "monitor = \"mean\"").unwrap();
        assert_eq!(c.train.monitored_auc(&c.tasks, &[Some(0.61)]), Some(0.61));
    }

    #[test]
    fn a_monitor_that_names_no_task_is_an_error_naming_the_key() {
        let e = parse(&["click", "buy"], "monitor = \"like\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("train.monitor"), "{e}");
        assert!(
            e.contains("\"like\" is neither \"mean\" nor a task (tasks: \"click\", \"buy\")"),
            "{e}"
        );
        let e = parse(&["mean", "buy"], "monitor = \"mean\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("train.monitor") && e.contains("rename"), "{e}");
        // A task named "mean" is fine while the monitor names another.
        assert!(parse(&["mean", "buy"], "monitor = \"buy\"").is_ok());
        let e = parse(&["click"], "monitor = 3").unwrap_err().to_string();
        assert!(e.contains("monitor"), "{e}");
    }
}
