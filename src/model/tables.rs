//! The embedding matrices of a plan: one per (table `m`, feature), a temporal one per (table `m`,
//! TIM-pooled sequence feature), each stored in one storage slab or split by rows over several
//! (`slabs.rs` packs them). A mean-pooled sequence (the TIM
//! ablation, docs/tim.md) has no matrix of its own: no temporal rows, no optimizer state.

use super::{bad, FeatureShape, GroupPlan, ModelPlan};
use crate::config::{FeatureKind, ModelConfig, SequencePooling};
use crate::error::Result;

/// The element type a matrix is stored in (the kernels' own: a slab holds one type).
pub use crate::kernels::embedding::Element;

/// Who a matrix belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// Read by every tower (today's only kind of feature matrix).
    Shared,
    /// A sequence feature's temporal (time-bucket) matrix, read by TIM beside its item's matrix
    /// (`item`: the item matrix's storage index).
    Temporal {
        /// The storage index of the item feature's matrix of the same table `m`.
        item: usize,
    },
}

/// One embedding matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct TablePlan {
    /// Checkpoint name: `emb.{m}.{feature}` or `emb.{m}.{feature}.time`.
    pub name: String,
    /// Rows.
    pub rows: u32,
    /// Floats per row (the group's width).
    pub width: u32,
    /// Storage element type.
    pub element: Element,
    /// Who reads it.
    pub owner: Owner,
    /// The table `m` it belongs to.
    pub table: u32,
    /// The config feature.
    pub feature: usize,
    /// Its own L2 weight decay (the feature's `embedding_l2`; `None`: `train.sparse_weight_decay`).
    pub l2: Option<f32>,
}

/// For each `m`, each config feature in config order: its matrix, or for a TIM-pooled sequence
/// feature its temporal matrix of `buckets` rows, or for a mean-pooled one nothing (a sequence
/// reads its item's and side features' matrices).
pub(super) fn plan_tables(
    config: &ModelConfig,
    shapes: &[FeatureShape],
    groups: &[GroupPlan],
) -> Result<Vec<TablePlan>> {
    let mut width_of = vec![0u32; config.table_count() as usize];
    for g in groups {
        for &m in &g.tables {
            width_of[m as usize] = g.width;
        }
    }
    let mut tables = Vec::new();
    for m in 0..config.table_count() {
        let first = tables.len();
        for (f, feature) in config.features.iter().enumerate() {
            let (name, rows, owner) = match &feature.kind {
                FeatureKind::Sequence {
                    pooling: SequencePooling::Mean,
                    ..
                } => continue,
                FeatureKind::Sequence { item, .. } => {
                    let item = config.features.iter().position(|x| &x.name == item);
                    let item = first
                        + item.ok_or_else(|| {
                            bad(format!("sequence {:?}: no item feature", feature.name))
                        })?;
                    let name = format!("emb.{m}.{}.time", feature.name);
                    (
                        name,
                        sequence_buckets(&feature.kind),
                        Owner::Temporal { item },
                    )
                }
                _ if shapes[f].rows == 0 => {
                    return Err(bad(format!(
                        "feature {:?} has a table of 0 rows",
                        feature.name
                    )));
                }
                _ => (
                    format!("emb.{m}.{}", feature.name),
                    shapes[f].rows,
                    Owner::Shared,
                ),
            };
            tables.push(TablePlan {
                name,
                rows,
                width: width_of[m as usize],
                // A temporal matrix follows its sequence feature (config checks TIM's agree).
                element: config.dtype_of(f).element(),
                owner,
                table: m,
                feature: f,
                l2: feature.embedding_l2,
            });
        }
    }
    Ok(tables)
}

fn sequence_buckets(kind: &FeatureKind) -> u32 {
    match kind {
        FeatureKind::Sequence { buckets, .. } => *buckets,
        _ => 0,
    }
}

/// Every matrix's rows covered exactly once by the slabs' parts; a slab of one element type; each
/// TIM unit whole in one slab; a temporal matrix's item a shared matrix of the same table `m`.
pub(super) fn check_tables(plan: &ModelPlan) -> Result<()> {
    let mut parts: Vec<Vec<(u32, u32, usize)>> = vec![Vec::new(); plan.tables.len()];
    for (s, slab) in plan.slabs.iter().enumerate() {
        for p in &slab.parts {
            let table = plan.tables.get(p.table).ok_or_else(|| {
                bad(format!(
                    "slab {s} lists matrix {}, which does not exist",
                    p.table
                ))
            })?;
            if table.element != slab.element {
                return Err(bad(format!(
                    "{} is {} but slab {s} holds {}",
                    table.name,
                    table.element.name(),
                    slab.element.name()
                )));
            }
            parts[p.table].push((p.rows.start, p.rows.end, s));
        }
    }
    for (t, table) in plan.tables.iter().enumerate() {
        if table.rows == 0 || table.width == 0 {
            return Err(bad(format!(
                "{} has {} rows of width {}",
                table.name, table.rows, table.width
            )));
        }
        check_cover(table, &mut parts[t])?;
        if let Owner::Temporal { item } = table.owner {
            let i = plan.tables.get(item).ok_or_else(|| {
                bad(format!(
                    "{}: its item matrix {item} does not exist",
                    table.name
                ))
            })?;
            if i.table != table.table || i.owner != Owner::Shared {
                return Err(bad(format!(
                    "{} must live beside its item matrix {} (same table)",
                    table.name, i.name
                )));
            }
        }
    }
    check_units(plan, &parts)
}

/// Each TIM unit's matrices whole (one part each) in one slab; `parts` are (start, end, slab)
/// per matrix.
fn check_units(plan: &ModelPlan, parts: &[Vec<(u32, u32, usize)>]) -> Result<()> {
    for unit in plan.tim_units() {
        let slabs: Vec<Option<usize>> = (unit.tables.iter())
            .map(|&t| match parts[t].as_slice() {
                [(_, _, s)] => Some(*s),
                _ => None,
            })
            .collect();
        if slabs.iter().any(|s| s.is_none() || *s != slabs[0]) {
            let names: Vec<&str> = (unit.tables.iter())
                .map(|&t| plan.tables[t].name.as_str())
                .collect();
            return Err(bad(format!(
                "sequence {:?}: the matrices its TIM reads ({}) must be whole in one slab",
                unit.feature,
                names.join(", ")
            )));
        }
    }
    Ok(())
}

/// `parts` (start, end, slab) of `table` tile its rows exactly once.
fn check_cover(table: &TablePlan, parts: &mut [(u32, u32, usize)]) -> Result<()> {
    parts.sort_unstable();
    let mut next = 0u32;
    for &(start, end, s) in parts.iter() {
        if start != next || end <= start {
            return Err(bad(format!(
                "{}: slab {s} holds rows {start}..{end}, but rows from {next} come next (each row \
                 in exactly one slab)",
                table.name
            )));
        }
        next = end;
    }
    if next != table.rows {
        return Err(bad(format!(
            "{}: the slabs hold rows 0..{next} of {} (each row in exactly one slab)",
            table.name, table.rows
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests_mean;
