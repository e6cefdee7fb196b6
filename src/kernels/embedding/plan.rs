//! The sparse update plan: for one batch, the unique rows each table had touched and, per row, the
//! lookups that touched it (CSR, in lookup order). Built on the host, which knows every id before the
//! GPU does; it makes the backward one-writer-per-row and so deterministic without float atomics.

use super::bags::Bags;
use super::features::FeatureSet;

/// Unique touched rows and their lookups, for the `tbe_update` kernel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SparseUpdatePlan {
    /// `(table, row)` of each unique row, sorted.
    pub rows: Vec<(u32, u32)>,
    /// `rows.len() + 1` offsets into `entries`.
    pub entry_offsets: Vec<u32>,
    /// `(lookup, bag)` pairs, grouped by row, in lookup order within a row.
    pub entries: Vec<(u32, u32)>,
}

impl SparseUpdatePlan {
    /// Builds the plan of a validated batch. An MNS lookup touches one row per digit of each base.
    /// Rows are the storage's own: a feature whose storage holds a part of its table (rows
    /// `first..first + n` of the whole table) keeps only touches inside it, as rows `0..n`.
    pub fn build(features: &FeatureSet, bags: &Bags) -> Self {
        let b = bags.batch_size as usize;
        let mut touches: Vec<(u64, u32, u32)> = Vec::with_capacity(bags.indices.len());
        for (f, spec) in features.features.iter().enumerate() {
            let table = spec.table as u64;
            let part = features.parts[f].clone();
            for sample in 0..b {
                let bag = f * b + sample;
                for l in bags.offsets[bag] as usize..bags.offsets[bag + 1] as usize {
                    let v = bags.indices[l];
                    let key = |row: u32| ((table << 32) | row as u64, l as u32, bag as u32);
                    let local = |row: &u32| part.contains(row).then(|| key(*row - part.start));
                    if spec.mns.is_empty() {
                        touches.extend(local(&v));
                    } else {
                        let rows = super::MnsBase::digit_rows(&spec.mns, v);
                        touches.extend(rows.filter_map(|r| local(&r)));
                    }
                }
            }
        }
        // Stable: entries of a row keep their lookup order (a fixed summation order).
        touches.sort_by_key(|t| (t.0, t.1));
        let mut plan = SparseUpdatePlan::default();
        for (key, l, bag) in touches {
            let row = ((key >> 32) as u32, key as u32);
            if plan.rows.last() != Some(&row) {
                plan.rows.push(row);
                plan.entry_offsets.push(plan.entries.len() as u32);
            }
            plan.entries.push((l, bag));
        }
        plan.entry_offsets.push(plan.entries.len() as u32);
        plan
    }

    /// The plan buffer's words and the starts of its (entry offsets, entries) sections.
    pub(crate) fn words(&self) -> (Vec<u32>, [u32; 2]) {
        let mut words = Vec::with_capacity(2 * self.rows.len() + 1 + 2 * self.entries.len());
        words.extend(self.rows.iter().flat_map(|&(t, r)| [t, r]));
        let offsets_at = words.len() as u32;
        words.extend_from_slice(&self.entry_offsets);
        let entries_at = words.len() as u32;
        words.extend(self.entries.iter().flat_map(|&(l, g)| [l, g]));
        (words, [offsets_at, entries_at])
    }

    /// Words a plan needs at most when a batch touches `touches` rows (digit rows included).
    pub fn capacity_words(touches: u64) -> u64 {
        5 * touches + 1
    }
}
