//! Packing a plan's embedding matrices into storage slabs (issue 19's storage groups), with no GPU:
//! a pure function of the matrices, the sparse optimizer (its state sits beside each row) and the
//! chunk size (the device's binding limit, or a tiny size a test forces).
//!
//! Rules: a slab holds at most [`MAX_CHUNKS`] chunks and fewer than 2^32 vec4s
//! ([`storage_capacity4`]); it holds one element type; the matrices one TIM reads together (its
//! item matrix, side-feature matrices and temporal matrix of the same table `m`: a *unit*) stay
//! whole in one slab, and a unit that cannot fit one is refused with the sequence feature, the
//! bytes and the limit; a matrix larger than one slab is split by rows into parts, each a row
//! range in one slab.
//!
//! The packing is *next-fit* over units in storage order (a unit at its first matrix): a unit goes
//! into the open slab if it fits and has the same element type, else it opens a new slab; a
//! matrix too large for any slab fills the open slab's rest, then whole slabs, then starts the
//! next. Next-fit never reorders matrices (slab `k`'s matrices come before slab `k + 1`'s except
//! where a TIM unit pulls a later matrix forward), is deterministic, and packs a model that fits
//! one slab exactly as before: one slab, every matrix in storage order. First-fit would save a
//! slab now and then at the price of scattering a table `m`'s matrices.

use std::ops::Range;

use super::tables::{Element, TablePlan};
use super::ModelPlan;
use crate::config::FeatureKind;
use crate::error::{Error, Result};
use crate::kernels::embedding::{
    chunk_shift_of, row_stride4, storage_capacity4, SparseOptimizer, MAX_CHUNKS,
};

/// Rows `rows` of matrix `table` (storage index), stored in one slab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartPlan {
    /// The matrix's storage index.
    pub table: usize,
    /// Its rows this part holds.
    pub rows: Range<u32>,
}

/// One storage allocation of matrices or parts of them (chunked, one sparse optimizer state,
/// one element type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlabPlan {
    /// A name for messages.
    pub name: String,
    /// The element type of every row it holds.
    pub element: Element,
    /// Its parts, ascending by matrix: the slab's storage order.
    pub parts: Vec<PartPlan>,
}

impl SlabPlan {
    /// The storage indices of the matrices it holds (part or whole), in storage order.
    pub fn tables(&self) -> impl Iterator<Item = usize> + '_ {
        self.parts.iter().map(|p| p.table)
    }
}

/// The matrices one TIM reads together, named by its sequence feature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimUnit {
    /// The sequence feature's name.
    pub feature: String,
    /// Storage indices, ascending.
    pub tables: Vec<usize>,
}

/// What the packing reads besides the matrices.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Packing {
    /// The sparse optimizer (its state is stored beside each row).
    pub optimizer: SparseOptimizer,
    /// Bytes of one chunk buffer (rounded down to a power of two vec4s, as the layout does).
    pub chunk_bytes: u64,
}

impl Packing {
    /// No device yet: chunks as large as the kernels address (a slab below 2^32 vec4s), SGD's
    /// stateless rows. What [`ModelPlan::new`] packs with; the graph packs for its device.
    pub const UNBOUNDED: Packing = Packing {
        optimizer: SparseOptimizer::Sgd,
        chunk_bytes: u64::MAX,
    };

    /// Storage units one row of `t` takes, with its state.
    fn stride4(&self, t: &TablePlan) -> u64 {
        row_stride4(t.width, self.optimizer, t.element) as u64
    }

    /// Storage units one slab of `element` holds.
    fn cap4(&self, element: Element) -> u64 {
        storage_capacity4(self.chunk_bytes, element)
    }
}

/// A slab being filled.
struct Open {
    slab: SlabPlan,
    used4: u64,
}

/// Packs `tables` into slabs (module docs); `units` are the TIM units (a matrix in none is a unit
/// of its own).
pub fn pack(tables: &[TablePlan], units: &[TimUnit], packing: Packing) -> Result<Vec<SlabPlan>> {
    let units = merge(units);
    let unit_of = unit_of(tables.len(), &units)?;
    let mut slabs: Vec<SlabPlan> = Vec::new();
    let mut open: Option<Open> = None;
    for (t, table) in tables.iter().enumerate() {
        let members: Vec<usize> = match unit_of[t] {
            Some(u) if units[u].tables.first() != Some(&t) => continue,
            Some(u) => units[u].tables.clone(),
            None => vec![t],
        };
        one_element(tables, t, &members)?;
        let need4: u64 = members.iter().map(|&m| rows4(&tables[m], packing)).sum();
        let cap4 = packing.cap4(table.element);
        let fits_open = open
            .as_ref()
            .is_some_and(|o| o.slab.element == table.element && o.used4 + need4 <= cap4);
        if !fits_open && need4 <= cap4 {
            close(&mut slabs, open.take());
            open = Some(new_slab(slabs.len(), table.element));
        }
        if need4 <= cap4 {
            let o = open.as_mut().expect("a slab was opened for the unit");
            for &m in &members {
                o.slab.parts.push(PartPlan {
                    table: m,
                    rows: 0..tables[m].rows,
                });
            }
            o.used4 += need4;
        } else if let Some(u) = unit_of[t] {
            return Err(unit_too_large(
                &units[u],
                need4,
                packing.chunk_bytes,
                table.element,
            ));
        } else {
            split(t, table, packing, &mut slabs, &mut open)?;
        }
    }
    close(&mut slabs, open);
    Ok(slabs)
}

/// The TIM unit of each matrix (`None`: a unit of its own).
fn unit_of(tables: usize, units: &[TimUnit]) -> Result<Vec<Option<usize>>> {
    let mut unit_of: Vec<Option<usize>> = vec![None; tables];
    for (u, unit) in units.iter().enumerate() {
        for &t in &unit.tables {
            *unit_of.get_mut(t).ok_or_else(|| {
                Error::Graph(format!(
                    "sequence {:?} reads matrix {t}, which does not exist",
                    unit.feature
                ))
            })? = Some(u);
        }
    }
    Ok(unit_of)
}

/// The matrices of one TIM unit (led by `t`) share `t`'s element type: one group holds them.
fn one_element(tables: &[TablePlan], t: usize, members: &[usize]) -> Result<()> {
    let table = &tables[t];
    match members
        .iter()
        .find(|&&m| tables[m].element != table.element)
    {
        None => Ok(()),
        Some(&m) => Err(Error::Graph(format!(
            "{} and {} are read together by one TIM but stored as {} and {}: give them one dtype",
            table.name,
            tables[m].name,
            table.element.name(),
            tables[m].element.name()
        ))),
    }
}

/// Units that share a matrix (two sequences over one item) become one, named by the first.
fn merge(units: &[TimUnit]) -> Vec<TimUnit> {
    let mut merged: Vec<TimUnit> = Vec::new();
    for unit in units {
        let mut tables = unit.tables.clone();
        let mut feature = unit.feature.clone();
        let mut k = 0;
        while k < merged.len() {
            if merged[k].tables.iter().any(|t| tables.contains(t)) {
                let other = merged.remove(k);
                tables.extend(other.tables);
                feature = other.feature;
            } else {
                k += 1;
            }
        }
        tables.sort_unstable();
        tables.dedup();
        merged.push(TimUnit { feature, tables });
    }
    merged
}

/// Bytes of one chunk of `chunk_bytes` as the layout rounds it for `element`.
fn chunk_size(chunk_bytes: u64, element: Element) -> u64 {
    element.unit_bytes() << chunk_shift_of(chunk_bytes, element).min(59)
}

/// vec4s of a whole matrix with its state.
fn rows4(t: &TablePlan, packing: Packing) -> u64 {
    t.rows as u64 * packing.stride4(t)
}

fn new_slab(k: usize, element: Element) -> Open {
    Open {
        slab: SlabPlan {
            name: format!("group {k} ({})", element.name()),
            element,
            parts: Vec::new(),
        },
        used4: 0,
    }
}

/// Ends the open slab (its parts in storage order).
fn close(slabs: &mut Vec<SlabPlan>, open: Option<Open>) {
    if let Some(mut o) = open {
        o.slab.parts.sort_by_key(|p| (p.table, p.rows.start));
        slabs.push(o.slab);
    }
}

/// Splits matrix `t` (larger than one slab) by rows: the open slab's rest, whole slabs, and the
/// last part left open for what follows.
fn split(
    t: usize,
    table: &TablePlan,
    packing: Packing,
    slabs: &mut Vec<SlabPlan>,
    open: &mut Option<Open>,
) -> Result<()> {
    let cap4 = packing.cap4(table.element);
    let unit = table.element.unit_bytes();
    let stride4 = packing.stride4(table);
    if stride4 > cap4 {
        return Err(Error::Graph(format!(
            "{}: one row takes {} bytes with its optimizer state, more than a storage group's {} \
             ({MAX_CHUNKS} chunks of {} bytes)",
            table.name,
            stride4 * unit,
            cap4 * unit,
            chunk_size(packing.chunk_bytes, table.element)
        )));
    }
    let mut next = 0u32;
    while next < table.rows {
        let room = open
            .as_ref()
            .filter(|o| o.slab.element == table.element)
            .map_or(0, |o| (cap4 - o.used4) / stride4);
        if room == 0 {
            close(slabs, open.take());
            *open = Some(new_slab(slabs.len(), table.element));
            continue;
        }
        let end = (next as u64 + room).min(table.rows as u64) as u32;
        let o = open.as_mut().expect("room implies an open slab");
        o.slab.parts.push(PartPlan {
            table: t,
            rows: next..end,
        });
        o.used4 += (end - next) as u64 * stride4;
        next = end;
    }
    Ok(())
}

fn unit_too_large(unit: &TimUnit, need4: u64, chunk_bytes: u64, element: Element) -> Error {
    let bytes = element.unit_bytes();
    Error::Graph(format!(
        "sequence {:?}: the matrices its TIM reads together ({} of them) need {} bytes with their \
         optimizer state, more than one storage group holds ({} bytes: {MAX_CHUNKS} chunks of {} \
         bytes); they must stay in one group — fewer item or side rows, or a smaller dim",
        unit.feature,
        unit.tables.len(),
        need4 * bytes,
        storage_capacity4(chunk_bytes, element) * bytes,
        chunk_size(chunk_bytes, element)
    ))
}

impl ModelPlan {
    /// The matrices each TIM reads together: for every table `m` and sequence feature (TIM or
    /// mean pooled), its item and side features' matrices and its temporal matrix.
    pub fn tim_units(&self) -> Vec<TimUnit> {
        let config = &self.config;
        let position = |n: &String| config.features.iter().position(|x| &x.name == n);
        let mut units = Vec::new();
        for m in 0..self.n_tables() {
            for (f, feature) in config.features.iter().enumerate() {
                let FeatureKind::Sequence { item, side, .. } = &feature.kind else {
                    continue;
                };
                let mut tables: Vec<usize> = std::iter::once(item)
                    .chain(side)
                    .filter_map(position)
                    .map(|sf| self.table_of(m, sf))
                    .collect();
                tables.extend(
                    (self.tables.iter().enumerate())
                        .filter(|(_, t)| t.table == m && t.feature == f)
                        .map(|(t, _)| t),
                );
                tables.sort_unstable();
                tables.dedup();
                units.push(TimUnit {
                    feature: feature.name.clone(),
                    tables,
                });
            }
        }
        units
    }

    /// Packs the plan's matrices into slabs for `packing` (replacing the slabs [`ModelPlan::new`]
    /// planned without a device) and checks the plan again.
    pub fn pack_slabs(&mut self, packing: Packing) -> Result<()> {
        self.slabs = pack(&self.tables, &self.tim_units(), packing)?;
        self.check()
    }

    /// The slabs holding rows of matrix `t`, with the part's index in the slab, in slab order.
    pub fn parts_of(&self, t: usize) -> Vec<(usize, usize)> {
        (self.slabs.iter().enumerate())
            .flat_map(|(s, slab)| {
                (slab.parts.iter().enumerate())
                    .filter(move |(_, p)| p.table == t)
                    .map(move |(i, _)| (s, i))
            })
            .collect()
    }
}

#[cfg(test)]
#[path = "slabs_tests.rs"]
mod tests;
