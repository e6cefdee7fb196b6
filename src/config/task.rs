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
