//! The model configuration (DESIGN.md §Configuration): a TOML file naming the features, the
//! multi-embedding tables and the expert of each, the combine, the shared MLP, the tasks with their
//! losses, and the training schedule.
//!
//! Parsing is strict: an unknown key, a missing required key or a value of the wrong type is an
//! error naming the key, its line and column (from the `toml` crate); values that parse but make
//! no model (a width that is not a multiple of 4, two features with one name, an expert list that
//! does not match the table count) are errors naming the key path, e.g. `model.experts[1].layers`.
//! Defaults follow the multi-embedding paper's recipe (METHODS.md §2.2): K = 16, a 400-wide
//! per-table projection with BatchNorm and ReLU after each expert, mean combine, a 400-400 shared
//! MLP, dropout 0.2, Adam 1e-3 on dense parameters, row-wise Adagrad on the tables, batch 2048.
//!
//! One module per section of the file, each with its types and the checks that section can make
//! on its own: `model` (`[model]`), `expert` (`[[model.experts]]`), `feature` (`[[feature]]`, read
//! with positions by `feature_file`), `task` (`[[task]]`), `train` (`[train]`). Checks that need two
//! sections sit where they need the other one (a sequence's item among the features, a GwPFM
//! block's features) or here (each feature's weight decay against the train default); `limits`
//! bounds every size afterwards. [`ModelConfig::validate`] walks them in that order, and the first
//! error found is the one reported.
//!
//! The graph compiler (issue 5) turns a validated [`ModelConfig`] into buffers and recorded steps.

mod dtype;
mod expert;
mod feature;
mod feature_content;
mod feature_file;
mod limits;
mod model;
mod task;
mod train;

pub use expert::Expert;
pub use feature::{BagPooling, Feature, FeatureKind, SequencePooling, TimeBucket};
pub use limits::{human_bytes, MAX_FILE_BYTES, MAX_STEPS};
pub use model::{Architecture, Combine, Dtype, Model};
pub use task::{BootstrapMask, Loss, Task, Uncertainty};
pub use train::{
    DenseOptimizerName, LrDecay, SparseDecayMode, SparseOptimizerName, Train, Weights,
};

use std::io::Read;
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};
use task::default_tasks;

/// One output of a model: a task, or a task in one scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// `task`, or `task@scenario`.
    pub name: String,
    /// The config task.
    pub task: usize,
    /// The scenario (index into `model.scenarios`).
    pub scenario: Option<usize>,
}

/// A whole model file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The network.
    #[serde(default)]
    pub model: Model,
    /// Input features, in order (`[[feature]]` tables).
    #[serde(rename = "feature", default)]
    pub features: Vec<Feature>,
    /// Prediction tasks (`[[task]]` tables), one head each.
    #[serde(rename = "task", default = "default_tasks")]
    pub tasks: Vec<Task>,
    /// The training schedule.
    #[serde(default)]
    pub train: Train,
}

/// The file as read: the features kept as raw tables, so that each is read on its own with
/// positions (see `feature_file`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    model: Model,
    #[serde(rename = "feature", default)]
    features: Vec<feature_file::FeatureTable>,
    #[serde(rename = "task", default = "default_tasks")]
    tasks: Vec<Task>,
    #[serde(default)]
    train: Train,
}

/// A semantic error at `key`.
fn bad(file: &str, key: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Config {
        file: file.to_string(),
        key: key.into(),
        message: message.into(),
    }
}

/// The default of a factor or step that is 1 unless the file says otherwise.
fn unit() -> f64 {
    1.0
}

/// An error when a model file of `bytes` is over [`MAX_FILE_BYTES`].
fn check_file_size(file: &str, bytes: u64) -> Result<()> {
    if bytes > MAX_FILE_BYTES {
        return Err(bad(
            file,
            "",
            format!(
                "the model file is over {} (a model file is a few KiB; checkpoints embed its \
                 text): is this the right file?",
                human_bytes(MAX_FILE_BYTES)
            ),
        ));
    }
    Ok(())
}

impl ModelConfig {
    /// Reads and validates a model file.
    pub fn load(path: &Path) -> Result<Self> {
        let name = path.display().to_string();
        Self::parse(&Self::read_text(path)?, &name)
    }

    /// Reads a model file's text, refusing one over [`MAX_FILE_BYTES`] before reading it (the
    /// checkpoint embeds the text, and its header has a limit; a model file is a few KiB).
    pub fn read_text(path: &Path) -> Result<String> {
        let name = path.display().to_string();
        let io = |e: std::io::Error| bad(&name, "", e.to_string());
        let file = std::fs::File::open(path).map_err(io)?;
        let mut text = String::new();
        // One byte past the limit is enough to know it is too large.
        file.take(MAX_FILE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(io)?;
        check_file_size(&name, text.len() as u64)?;
        Ok(text)
    }

    /// Parses and validates TOML text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self> {
        check_file_size(file, text.len() as u64)?;
        let raw: FileConfig =
            toml::from_str(text).map_err(|e| bad(file, "", e.to_string().trim_end()))?;
        let config = ModelConfig {
            model: raw.model,
            features: feature_file::parse_features(text, file, raw.features)?,
            tasks: raw.tasks,
            train: raw.train,
        };
        config.validate(file)?;
        Ok(config)
    }

    /// The expert of table `t` (of [`ModelConfig::table_count`]): the single entry when one is
    /// given for all tables, else the entry of `t`'s place in its set.
    pub fn expert(&self, t: u32) -> &Expert {
        let e = &self.model.experts;
        if e.len() == 1 {
            &e[0]
        } else {
            &e[(t % self.model.tables) as usize]
        }
    }

    /// Embedding width of table `t`'s fields (before GwPFM's blocks): its entry of `dims`, or `dim`.
    pub fn dim_of(&self, t: u32) -> u32 {
        let d = &self.model.dims;
        if d.is_empty() {
            self.model.dim
        } else {
            d[(t % self.model.tables) as usize]
        }
    }

    /// Embedding sets: the shared one plus, for `stem` and `ple`, one per scenario (when the model
    /// has scenarios) or one per task.
    pub fn set_count(&self) -> u32 {
        if self.model.architecture.task_sets() {
            1 + self.owners() as u32
        } else {
            1
        }
    }

    /// What owns a set beside the shared one: the scenarios when there are, else the tasks.
    fn owners(&self) -> usize {
        match self.model.scenarios.len() {
            0 => self.tasks.len(),
            s => s,
        }
    }

    /// The names of the metrics evaluation reports, in order: the tasks, then (with scenarios)
    /// every output `task@scenario`. A scenario model's task metrics pool every row's
    /// own-scenario prediction ([`crate::metrics::MetricsAccumulator::finish_pooled`]).
    pub fn metric_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.tasks.iter().map(|t| t.name.clone()).collect();
        if !self.model.scenarios.is_empty() {
            names.extend(self.outputs().into_iter().map(|o| o.name));
        }
        names
    }

    /// The model's outputs (one tower and logit each): every task, or with scenarios every
    /// (task, scenario), task-major. Labels, losses, predictions and metrics have one column per
    /// output.
    pub fn outputs(&self) -> Vec<Output> {
        let mut outputs = Vec::new();
        for (t, task) in self.tasks.iter().enumerate() {
            if self.model.scenarios.is_empty() {
                outputs.push(Output {
                    name: task.name.clone(),
                    task: t,
                    scenario: None,
                });
            }
            for (s, scenario) in self.model.scenarios.iter().enumerate() {
                outputs.push(Output {
                    name: format!("{}@{scenario}", task.name),
                    task: t,
                    scenario: Some(s),
                });
            }
        }
        outputs
    }

    /// The model's uncertainty head (every task that has one has the same), if any.
    pub fn uncertainty(&self) -> Option<Uncertainty> {
        self.tasks.iter().find_map(|t| t.uncertainty)
    }

    /// Per output ([`Self::outputs`] order): whether its task has the uncertainty head.
    pub fn uncertain_outputs(&self) -> Vec<bool> {
        (self.outputs().iter())
            .map(|o| self.tasks[o.task].uncertainty.is_some())
            .collect()
    }

    /// Tables in all: `model.tables` per set.
    pub fn table_count(&self) -> u32 {
        self.set_count() * self.model.tables
    }

    /// Checks what parsing cannot: every value makes a model. The sections in file order, then
    /// the checks across sections, then the size bounds; the first error is returned.
    pub fn validate(&self, file: &str) -> Result<()> {
        self.model.validate(file)?;
        feature::validate_features(&self.features, file)?;
        let names: Vec<&str> = self.features.iter().map(|f| f.name.as_str()).collect();
        for (i, e) in self.model.experts.iter().enumerate() {
            e.validate(file, i, &names)?;
        }
        task::validate_tasks(&self.tasks, file)?;
        self.validate_architecture(file)?;
        self.train.validate(file, &self.tasks)?;
        self.check_sizes(file)?;
        self.validate_dtypes(file)?;
        self.validate_weight_decay(file)
    }

    /// Auxiliary tasks only in `stem`, and not every task auxiliary; the table sets fit the
    /// 64-table bound.
    fn validate_architecture(&self, file: &str) -> Result<()> {
        let arch = self.model.architecture;
        for (i, t) in self.tasks.iter().enumerate() {
            if t.auxiliary && !self.model.scenarios.is_empty() {
                return Err(bad(
                    file,
                    format!("task[{i}].auxiliary"),
                    "auxiliary tasks own table sets; with scenarios the sets are the scenarios'",
                ));
            }
            if t.auxiliary && arch != Architecture::Stem {
                return Err(bad(
                    file,
                    format!("task[{i}].auxiliary"),
                    "auxiliary tasks (STEM-AL) need architecture = \"stem\"",
                ));
            }
        }
        if self.tasks.iter().all(|t| t.auxiliary) {
            return Err(bad(
                file,
                "task",
                "every task is auxiliary: one must be a main task",
            ));
        }
        if self.table_count() > 64 {
            return Err(bad(
                file,
                "model.tables",
                format!(
                    "{} tables per set × {} sets (one per task and a shared one) = {}: at most 64",
                    self.model.tables,
                    self.set_count(),
                    self.table_count()
                ),
            ));
        }
        Ok(())
    }

    /// Every embedding weight decay (the train default and each feature's) is finite and ≥ 0.
    fn validate_weight_decay(&self, file: &str) -> Result<()> {
        let per_feature = self.features.iter().enumerate().filter_map(|(i, f)| {
            f.embedding_l2
                .map(|l2| (format!("feature[{i}].embedding_l2"), l2))
        });
        let all = std::iter::once((
            "train.sparse_weight_decay".to_string(),
            self.train.sparse_weight_decay,
        ))
        .chain(per_feature);
        for (key, l2) in all {
            if !(l2.is_finite() && l2 >= 0.0) {
                return Err(bad(file, key, format!("{l2}: must be ≥ 0")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_content;
#[cfg(test)]
mod tests_dtype;
#[cfg(test)]
mod tests_sizes;
#[cfg(test)]
mod tests_uncertainty;
