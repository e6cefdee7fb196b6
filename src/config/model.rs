//! The `[model]` section: the network's shape (tables, width, experts, combine, shared MLP) and the
//! checks on it that need no other section.

use serde::Deserialize;

use super::{bad, Expert};
use crate::error::Result;

/// The network's shape.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Model {
    /// Embedding tables `M` (multi-embedding); 1 is single-embedding.
    pub tables: u32,
    /// Embedding width `K` of every field in every table (a multiple of 4).
    pub dim: u32,
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
}

impl Default for Model {
    fn default() -> Self {
        Model {
            tables: 2,
            dim: 16,
            experts: vec![Expert::Dcn {
                layers: 2,
                rank: None,
            }],
            expert_width: 400,
            batch_norm: true,
            combine: Combine::Mean,
            hidden: vec![400, 400],
            dropout: 0.2,
        }
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
}
