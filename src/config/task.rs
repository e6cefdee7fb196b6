//! The `[[task]]` section: the prediction tasks, one head, label and loss each (one `click` task
//! with BCE when the file names none), and the checks on them.

use std::collections::HashSet;

use serde::Deserialize;

use super::bad;
use crate::error::Result;

/// A prediction task: one head, one label column, one loss.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    /// Name (metrics are reported under it).
    pub name: String,
    /// The label column (0/1); defaults to `name`.
    #[serde(default)]
    pub label: Option<String>,
    /// The loss.
    #[serde(default)]
    pub loss: Loss,
    /// Weight of the BCE term in a combined loss (METHODS.md §4.1).
    #[serde(default = "default_alpha")]
    pub alpha: f32,
    /// STEM-AL: an auxiliary task, whose experts enter the other tasks' gates under stop-gradient
    /// while its own tower reads only its own experts (`architecture = "stem"` only).
    #[serde(default)]
    pub auxiliary: bool,
    /// An uncertainty head on this task's tower (METHODS.md §4.4, docs/explore.md): what
    /// Thompson sampling and UCB rank by. None by default.
    #[serde(default)]
    pub uncertainty: Option<Uncertainty>,
}

/// A task's uncertainty head. Every task that has one has the same (one batched head for all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawUncertainty")]
pub enum Uncertainty {
    /// `heads` bootstrap logits on the tower's last activation, each sample weighting each head's
    /// loss by a seeded `mask` draw.
    Bootstrap {
        /// Heads K (2 to 64; 8 by default).
        heads: u32,
        /// The per (sample, head) weight (Poisson by default).
        mask: BootstrapMask,
    },
    /// A Gaussian logit `N(μ, s²)`: two outputs μ and log s², trained on `μ + s·ε`.
    Gaussian,
}

/// The bootstrap weight of one (sample, head).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BootstrapMask {
    /// Poisson(1): the online bootstrap (Oza and Russell).
    #[default]
    Poisson,
    /// 2 · Bernoulli(½): every head sees about half the samples, at double weight.
    Bernoulli,
}

/// The table as written: a kind and the keys of that kind (checked in `try_from`, so a key of
/// the other kind is an error rather than ignored).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUncertainty {
    kind: String,
    heads: Option<u32>,
    mask: Option<BootstrapMask>,
}

impl TryFrom<RawUncertainty> for Uncertainty {
    type Error = String;

    fn try_from(raw: RawUncertainty) -> std::result::Result<Self, String> {
        match raw.kind.as_str() {
            "bootstrap" => Ok(Uncertainty::Bootstrap {
                heads: raw.heads.unwrap_or_else(default_heads),
                mask: raw.mask.unwrap_or_default(),
            }),
            "gaussian" if raw.heads.is_some() || raw.mask.is_some() => Err(
                "uncertainty: heads and mask belong to kind = \"bootstrap\", not \"gaussian\""
                    .into(),
            ),
            "gaussian" => Ok(Uncertainty::Gaussian),
            other => Err(format!(
                "uncertainty: kind {other:?} is not \"bootstrap\" or \"gaussian\""
            )),
        }
    }
}

impl Uncertainty {
    /// Values the head writes per output: K logits, or μ and log s².
    pub fn width(self) -> u32 {
        match self {
            Uncertainty::Bootstrap { heads, .. } => heads,
            Uncertainty::Gaussian => 2,
        }
    }
}

fn default_heads() -> u32 {
    8
}

/// Loss of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Loss {
    /// Binary cross-entropy with logits.
    #[default]
    Bce,
    /// BCE plus the combined-pair ranking loss.
    Pair,
    /// BCE plus the combined-list ranking loss.
    List,
}

fn default_alpha() -> f32 {
    0.6
}

/// The tasks of a file without `[[task]]`: one `click` task with BCE.
pub(super) fn default_tasks() -> Vec<Task> {
    vec![Task {
        name: "click".into(),
        label: None,
        loss: Loss::Bce,
        alpha: default_alpha(),
        auxiliary: false,
        uncertainty: None,
    }]
}

/// There is at least one task, names are unique, and each `alpha` is a weight in [0, 1].
pub(super) fn validate_tasks(tasks: &[Task], file: &str) -> Result<()> {
    if tasks.is_empty() {
        return Err(bad(file, "task", "no [[task]]: a model needs at least one"));
    }
    let mut seen = HashSet::new();
    for (i, t) in tasks.iter().enumerate() {
        if !seen.insert(t.name.as_str()) {
            return Err(bad(
                file,
                format!("task[{i}].name"),
                format!("{:?} is used twice", t.name),
            ));
        }
        if let Some(Uncertainty::Bootstrap { heads, .. }) = t.uncertainty {
            if !(2..=64).contains(&heads) {
                return Err(bad(
                    file,
                    format!("task[{i}].uncertainty.heads"),
                    format!("{heads}: a bootstrap ensemble has 2 to 64 heads"),
                ));
            }
        }
        let first = tasks.iter().find_map(|t| t.uncertainty);
        if t.uncertainty.is_some() && t.uncertainty != first {
            return Err(bad(
                file,
                format!("task[{i}].uncertainty"),
                "every task with an uncertainty head has the same one (one batched head serves all)",
            ));
        }
        if !(0.0..=1.0).contains(&t.alpha) {
            return Err(bad(
                file,
                format!("task[{i}].alpha"),
                format!("{}: must be in [0, 1]", t.alpha),
            ));
        }
    }
    Ok(())
}
