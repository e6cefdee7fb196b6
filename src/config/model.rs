//! The `[model]` section: the network's shape (tables, width, experts, combine, shared MLP) and the
//! checks on it that need no other section.

use serde::Deserialize;

use super::{bad, Expert};
use crate::error::Result;
use crate::kernels::embedding::Element;

/// The network's shape.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Model {
    /// How the tasks share the model (docs/multitask.md); `single` is one shared tower and head.
    pub architecture: Architecture,
    /// Embedding tables `M` (multi-embedding) of each embedding set; 1 is single-embedding. The
    /// `stem` and `ple` architectures have one set per task plus a shared one.
    pub tables: u32,
    /// Embedding width `K` of every field in every table (a multiple of 4).
    pub dim: u32,
    /// Per-table widths (one per table of a set, each a multiple of 4) instead of `dim`: the
    /// asymmetric tables of AME. Empty: every table is `dim` wide.
    pub dims: Vec<u32>,
    /// One expert per table, or a single entry used for every table.
    pub experts: Vec<Expert>,
    /// Width of the per-table projection after each expert (`h^(m) = ReLU(BN(W·I(x) + b))`).
    pub expert_width: u32,
    /// BatchNorm in the per-table projection.
    pub batch_norm: bool,
    /// How the tables' outputs are combined.
    pub combine: Combine,
    /// Hidden widths of the shared MLP.
    pub hidden: Vec<u32>,
    /// Dropout after each hidden layer (0 disables it).
    pub dropout: f32,
    /// The data column naming each row's scenario (multi-scenario models; needs `scenarios`).
    pub scenario: Option<String>,
    /// The scenario column's values, in tower order: each gets a tower per task (and, for `stem`
    /// and `ple`, its own table set); a row trains only its own scenario's towers.
    pub scenarios: Vec<String>,
    /// The element type of every embedding table (`[[feature]] dtype` overrides it per feature).
    pub dtype: Dtype,
}

/// How embedding rows are stored (issue 19): `f32`, or `f16` (half the table memory; arithmetic
/// and optimizer state stay f32, updated rows are rounded to f16 — to nearest, or stochastically
/// with `[train] stochastic_rounding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    /// 32-bit float rows.
    #[default]
    F32,
    /// 16-bit float rows.
    F16,
}

impl Dtype {
    /// The storage element type.
    pub fn element(self) -> Element {
        match self {
            Dtype::F32 => Element::F32,
            Dtype::F16 => Element::F16,
        }
    }
}

impl Default for Model {
    fn default() -> Self {
        Model {
            architecture: Architecture::Single,
            tables: 2,
            dim: 16,
            dims: Vec::new(),
            experts: vec![Expert::Dcn {
                layers: 2,
                rank: None,
            }],
            expert_width: 400,
            batch_norm: true,
            combine: Combine::Mean,
            hidden: vec![400, 400],
            dropout: 0.2,
            scenario: None,
            scenarios: Vec::new(),
            dtype: Dtype::F32,
        }
    }
}

/// How several tasks share the model (METHODS.md §3, docs/multitask.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    /// One combine, one shared MLP, one head with a logit per task (the multi-embedding model).
    #[default]
    Single,
    /// Shared bottom: one set of tables, the mean of their experts feeds one tower per task.
    Shared,
    /// One set of tables (one expert each), a softmax gate per task over the experts.
    Mmoe,
    /// Progressive layered extraction's gate: a table set per task plus a shared one; each task's
    /// gate mixes its own and the shared experts only.
    Ple,
    /// Shared and task-specific embeddings: a table set per task plus a shared one; each task's
    /// gate mixes every expert, other tasks' under stop-gradient (All Forward, Task-specific
    /// Backward).
    Stem,
    /// Asymmetric multi-embedding: one set of tables of different widths (`dims`), a gate per
    /// task over their experts.
    Ame,
}

impl Architecture {
    /// The name the model file uses (`"single"`, `"stem"`, …).
    pub fn name(self) -> &'static str {
        match self {
            Architecture::Single => "single",
            Architecture::Shared => "shared",
            Architecture::Mmoe => "mmoe",
            Architecture::Ple => "ple",
            Architecture::Stem => "stem",
            Architecture::Ame => "ame",
        }
    }

    /// Whether the model has per-task towers (every architecture but `single`).
    pub fn multitask(self) -> bool {
        self != Architecture::Single
    }

    /// Whether each task has its own table set beside the shared one.
    pub fn task_sets(self) -> bool {
        matches!(self, Architecture::Ple | Architecture::Stem)
    }

    /// Whether the tasks mix the experts with learned gates (`shared` takes their mean).
    pub fn gated(self) -> bool {
        !matches!(self, Architecture::Single | Architecture::Shared)
    }
}

/// How the tables' outputs meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Combine {
    /// `h = (1/M) Σ_m h^(m)`.
    Mean,
    /// Concatenation `[h^(1), …, h^(M)]`.
    Concat,
    /// A learned gate per sample: `h = Σ_m g_m h^(m)`, `g = softmax(W_g [h^(1); …; h^(M)] + b_g)`
    /// (MMoE-style, over the tables' outputs).
    Gate,
}

impl Model {
    /// The shape alone makes a network: tables, width, expert count, projection, hidden layers and
    /// dropout. Each expert's own keys are checked by [`Expert::validate`], once the features are
    /// known.
    pub(super) fn validate(&self, file: &str) -> Result<()> {
        if self.tables == 0 || self.tables > 64 {
            return Err(bad(
                file,
                "model.tables",
                format!("{}: must be 1 to 64", self.tables),
            ));
        }
        if self.dim == 0 || !self.dim.is_multiple_of(4) || self.dim > 1024 {
            return Err(bad(
                file,
                "model.dim",
                format!(
                    "{}: must be a multiple of 4 from 4 to 1024 (vec4 rows)",
                    self.dim
                ),
            ));
        }
        if self.experts.len() != 1 && self.experts.len() != self.tables as usize {
            return Err(bad(
                file,
                "model.experts",
                format!(
                    "{} experts for {} tables: give one for all tables or one per table",
                    self.experts.len(),
                    self.tables
                ),
            ));
        }
        self.validate_dims(file)?;
        self.validate_scenarios(file)?;
        if self.expert_width == 0 {
            return Err(bad(file, "model.expert_width", "0: must be at least 1"));
        }
        if self.hidden.contains(&0) {
            return Err(bad(file, "model.hidden", "every width must be at least 1"));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(bad(
                file,
                "model.dropout",
                format!("{}: must be in [0, 1)", self.dropout),
            ));
        }
        Ok(())
    }

    /// `scenario` and `scenarios` come together, with unique non-empty values, in a multi-task
    /// architecture (a scenario's towers are a multi-task model's towers).
    fn validate_scenarios(&self, file: &str) -> Result<()> {
        match (&self.scenario, self.scenarios.is_empty()) {
            (None, true) => return Ok(()),
            (Some(_), true) => {
                return Err(bad(
                    file,
                    "model.scenarios",
                    "a scenario column needs its values (scenarios = [\"home\", \"search\"])",
                ))
            }
            (None, false) => {
                return Err(bad(
                    file,
                    "model.scenario",
                    "scenarios need the column that names them (scenario = \"page\")",
                ))
            }
            (Some(_), false) => {}
        }
        let mut seen = std::collections::HashSet::new();
        for (i, v) in self.scenarios.iter().enumerate() {
            if v.is_empty() || !seen.insert(v.as_str()) {
                return Err(bad(
                    file,
                    format!("model.scenarios[{i}]"),
                    format!("{v:?}: values must be non-empty and unique"),
                ));
            }
        }
        if !self.architecture.multitask() {
            return Err(bad(
                file,
                "model.scenario",
                "scenarios need a multi-task architecture (shared, mmoe, ple, stem or ame): each \
                 scenario gets its own towers",
            ));
        }
        Ok(())
    }

    /// `dims`: one multiple of 4 per table; required by `ame`; the combine of a multi-task model is
    /// its gates (or the shared bottom's mean), so `combine` must stay `mean`.
    fn validate_dims(&self, file: &str) -> Result<()> {
        if !self.dims.is_empty() && self.dims.len() != self.tables as usize {
            return Err(bad(
                file,
                "model.dims",
                format!(
                    "{} widths for {} tables: give one per table",
                    self.dims.len(),
                    self.tables
                ),
            ));
        }
        if let Some(d) = self
            .dims
            .iter()
            .find(|&&d| d == 0 || d % 4 != 0 || d > 1024)
        {
            return Err(bad(
                file,
                "model.dims",
                format!("{d}: every width must be a multiple of 4 from 4 to 1024 (vec4 rows)"),
            ));
        }
        if self.architecture == Architecture::Ame && self.dims.is_empty() {
            return Err(bad(
                file,
                "model.dims",
                "architecture \"ame\" needs a width per table (e.g. dims = [16, 32, 64])",
            ));
        }
        if self.architecture.multitask() && self.combine != Combine::Mean {
            return Err(bad(
                file,
                "model.combine",
                "a multi-task architecture mixes the experts with its per-task gates: leave \
                 combine at \"mean\"",
            ));
        }
        Ok(())
    }
}
