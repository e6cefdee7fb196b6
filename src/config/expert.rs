//! One table's interaction expert (`[[model.experts]]`, METHODS.md §2.2) and the checks on its keys.
//!
//! Words: an *expert group* (in the graph) is the tables that share one expert config. GwPFM's own
//! partition of the fields is called *blocks* here, so that "group" keeps that one meaning; the
//! TOML key stays `groups = [[...], ...]` (the paper's word), so model files keep working, and
//! error messages name that key (`model.experts[1].groups[0]`).

use std::collections::HashSet;

use serde::Deserialize;

use super::bad;
use crate::error::Result;

/// One table's interaction expert (METHODS.md §2.2).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Expert {
    /// DCNv2 cross network.
    Dcn {
        /// Cross layers.
        #[serde(default = "two")]
        layers: u32,
        /// Low rank of `W_l = U_l V_lᵀ`; absent for full rank.
        #[serde(default)]
        rank: Option<u32>,
    },
    /// Factorisation machine (vector form).
    Fm,
    /// Field-weighted FM.
    Fwfm,
    /// GwPFM (the paper's group-weighted part-aware FM): the fields split into blocks, a table row
    /// holds one `dim`-wide part per block, and a pair of fields interacts through the parts of
    /// each other's block.
    Gwpfm {
        /// The features of each block, by feature name (TOML key `groups`); features not listed
        /// go to block 0.
        #[serde(default, rename = "groups")]
        blocks: Vec<Vec<String>>,
    },
    /// Inner-product network.
    Ipnn,
    /// A plain MLP over the concatenated fields.
    Mlp {
        /// Output width of each layer.
        widths: Vec<u32>,
    },
}

fn two() -> u32 {
    2
}

impl Expert {
    /// The keys of `model.experts[i]` make an expert; `features` are the feature names a GwPFM
    /// block may list.
    pub(super) fn validate(&self, file: &str, i: usize, features: &[&str]) -> Result<()> {
        let key = |k: &str| format!("model.experts[{i}].{k}");
        match self {
            Expert::Dcn { layers, rank } => {
                if *layers == 0 || *layers > 16 {
                    return Err(bad(
                        file,
                        key("layers"),
                        format!("{layers}: must be 1 to 16"),
                    ));
                }
                if *rank == Some(0) {
                    return Err(bad(file, key("rank"), "0: a rank is at least 1"));
                }
            }
            Expert::Gwpfm { blocks } => validate_blocks(file, i, blocks, features)?,
            Expert::Mlp { widths } => {
                if widths.is_empty() || widths.contains(&0) {
                    return Err(bad(file, key("widths"), "need at least one layer, all > 0"));
                }
            }
            Expert::Fm | Expert::Fwfm | Expert::Ipnn => {}
        }
        Ok(())
    }

    /// Floats per table row under this expert, in units of `model.dim`: one part per GwPFM block
    /// (at least one), else 1.
    pub fn parts_per_row(&self) -> u32 {
        match self {
            Expert::Gwpfm { blocks } => blocks.len().max(1) as u32,
            _ => 1,
        }
    }
}

/// Every feature a GwPFM block lists exists and sits in one block only.
fn validate_blocks(file: &str, i: usize, blocks: &[Vec<String>], features: &[&str]) -> Result<()> {
    let mut seen = HashSet::new();
    for (b, block) in blocks.iter().enumerate() {
        let key = || format!("model.experts[{i}].groups[{b}]");
        for f in block {
            if !features.contains(&f.as_str()) {
                return Err(bad(file, key(), format!("no feature named {f:?}")));
            }
            if !seen.insert(f) {
                return Err(bad(file, key(), format!("feature {f:?} is in two groups")));
            }
        }
    }
    Ok(())
}
