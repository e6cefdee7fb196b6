//! The cells of the TIM maps and what is counted in them, one labelled sample at a time.
//!
//! A behaviour's cell is (relation to the target, temporal bucket). Relations, from the encoded
//! ids: `same item` (item row equal), `same <side>` (first side feature's row equal, e.g. the same
//! genre, item differing), `unrelated`; the out-of-vocabulary row never counts as equal (two unknown
//! ids are not known to be the same). Without a side feature there are two relations. Columns are
//! the temporal buckets in use (1..N_T−1), each its own column, until the first bucket that fewer
//! than max(50, 1 % of the samples) samples use, or the 24th column: that bucket and every later
//! one form one tail column, so a long thin tail does not become many undefined columns.
//!
//! Per sample the tally keeps its label and the set of cells it has a behaviour in (X_{r,b} = 1),
//! so the indicators of a merged column are exact; per cell and table it sums α_i·n (n the sequence
//! length, so 1 = uniform attention) and counts the behaviours.

use super::attention::TimRows;
use super::stats::Counts;
use crate::data::OOV_ROW;
use crate::error::{Error, Result};

/// Samples (X = 1 and X = 0 alike) a cell's MI needs, and behaviours its attention mean needs.
pub const MIN_SUPPORT: u64 = 50;
/// Columns at most (the last one being the tail): the figure stays legible.
pub const MAX_COLUMNS: usize = 24;

/// The relation of a behaviour to its target, as an index into the relation names (`[item, side…]`
/// semantic ids each): 0 same item, 1 same first side (only with a side feature), last unrelated.
pub fn relation(target: &[u32], behaviour: &[u32]) -> usize {
    let same = |k: usize| matches!((target.get(k), behaviour.get(k)), (Some(a), Some(b)) if a == b && *a != OOV_ROW);
    let sides = usize::from(target.len() > 1);
    if same(0) {
        0
    } else if sides == 1 && same(1) {
        1
    } else {
        1 + sides
    }
}

/// A column of the maps: temporal buckets `first..=last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// First bucket.
    pub first: u32,
    /// Last bucket.
    pub last: u32,
}

impl Column {
    /// `"3"`, or `"12-15"` for a merged tail.
    pub fn label(&self) -> String {
        if self.first == self.last {
            self.first.to_string()
        } else {
            format!("{}-{}", self.first, self.last)
        }
    }
}

/// What the samples hold, cell by cell (see the module docs).
pub struct Tally {
    relations: usize,
    buckets: usize,
    /// `[relations · buckets]` behaviours per (relation, bucket).
    behaviours: Vec<u64>,
    /// `[tables][relations · buckets]` Σ α_i·n.
    attention: Vec<Vec<f64>>,
    /// Per sample its distinct cells `r·buckets + b`, back to back.
    cells: Vec<u32>,
    offsets: Vec<usize>,
    labels: Vec<bool>,
    /// Per table, the α of the sample being added.
    alpha: Vec<Vec<f64>>,
    /// The cells of the sample being added.
    scratch: Vec<u32>,
}

/// The tallied maps over the chosen columns, relations not yet dropped.
pub struct Maps {
    /// The columns.
    pub columns: Vec<Column>,
    /// `[relations][columns]` the 2×2 counts of each cell's indicator with the label.
    pub counts: Vec<Vec<Counts>>,
    /// `[relations][columns]` behaviours in the cell.
    pub behaviours: Vec<Vec<u64>>,
    /// `[tables][relations][columns]` mean α_i·n, `None` under [`MIN_SUPPORT`] behaviours.
    pub attention: Vec<Vec<Vec<Option<f64>>>>,
}

impl Tally {
    /// An empty tally of `relations` × `buckets` (N_T) cells for `tables` TIMs.
    pub fn new(relations: usize, buckets: usize, tables: usize) -> Self {
        Tally {
            relations,
            buckets,
            behaviours: vec![0; relations * buckets],
            attention: vec![vec![0.0; relations * buckets]; tables],
            cells: Vec::new(),
            offsets: vec![0],
            labels: Vec::new(),
            alpha: vec![Vec::new(); tables],
            scratch: Vec::new(),
        }
    }

    /// Labelled samples so far.
    pub fn samples(&self) -> u64 {
        self.labels.len() as u64
    }

    /// Positive samples so far.
    pub fn positives(&self) -> u64 {
        self.labels.iter().filter(|&&y| y).count() as u64
    }

    /// Adds one labelled sample: `target` `[S]` and `behaviours` `[L, S]` semantic ids, `buckets`
    /// `[L]`, and the TIM of each table (`rows`, as many as the tally was made for). A bucket ≥ N_T
    /// or an id outside its table is an error.
    pub fn add(
        &mut self,
        label: bool,
        (target, behaviours, buckets): (&[u32], &[u32], &[u32]),
        rows: &[TimRows],
    ) -> Result<()> {
        let bad = |message: String| Error::data("the sequence feature", message);
        if rows.len() != self.attention.len() {
            let message = format!(
                "{} TIMs for a tally of {}",
                rows.len(),
                self.attention.len()
            );
            return Err(bad(message));
        }
        // Everything is computed before anything is counted: a rejected sample leaves no trace.
        let mut cells = std::mem::take(&mut self.scratch);
        cells.clear();
        for (ids, &b) in behaviours.chunks_exact(target.len().max(1)).zip(buckets) {
            if b as usize >= self.buckets || b == 0 {
                let message = format!("temporal bucket {b} outside 1..{}", self.buckets);
                return Err(bad(message));
            }
            cells.push((relation(target, ids) * self.buckets + b as usize) as u32);
        }
        for (tim, alpha) in rows.iter().zip(&mut self.alpha) {
            let v = tim.embed(target, 0)?;
            tim.attention(&v, behaviours, buckets, alpha)?;
        }
        let n = buckets.len() as f64;
        for (i, &cell) in cells.iter().enumerate() {
            self.behaviours[cell as usize] += 1;
            for (sums, alpha) in self.attention.iter_mut().zip(&self.alpha) {
                sums[cell as usize] += alpha[i] * n;
            }
        }
        cells.sort_unstable();
        cells.dedup();
        self.cells.extend_from_slice(&cells);
        self.offsets.push(self.cells.len());
        self.labels.push(label);
        self.scratch = cells;
        Ok(())
    }

    /// Samples using each bucket (any relation).
    fn bucket_support(&self) -> Vec<u64> {
        let mut support = vec![0; self.buckets];
        let mut seen = vec![usize::MAX; self.buckets];
        for (i, w) in self.offsets.windows(2).enumerate() {
            for &cell in &self.cells[w[0]..w[1]] {
                let b = cell as usize % self.buckets;
                if seen[b] != i {
                    seen[b] = i;
                    support[b] += 1;
                }
            }
        }
        support
    }

    /// The columns (module docs) and each bucket's column.
    pub fn columns(&self) -> (Vec<Column>, Vec<Option<usize>>) {
        let support = self.bucket_support();
        let thin = MIN_SUPPORT.max(self.samples() / 100);
        let used: Vec<u32> = (1..self.buckets as u32)
            .filter(|&b| support[b as usize] > 0)
            .collect();
        let tail = (used.iter().enumerate())
            .position(|(i, &b)| support[b as usize] < thin || i + 1 == MAX_COLUMNS)
            .unwrap_or(used.len());
        let mut columns: Vec<Column> = (used[..tail].iter())
            .map(|&b| Column { first: b, last: b })
            .collect();
        if let (Some(&first), Some(&last)) = (used.get(tail), used.last()) {
            columns.push(Column { first, last });
        }
        let mut of = vec![None; self.buckets];
        for (c, col) in columns.iter().enumerate() {
            for b in col.first..=col.last {
                of[b as usize] = Some(c);
            }
        }
        (columns, of)
    }

    /// The maps over [`Self::columns`].
    pub fn finish(&self) -> Maps {
        let (columns, of) = self.columns();
        let (r, c) = (self.relations, columns.len());
        let base = Counts {
            samples: self.samples(),
            positives: self.positives(),
            ..Counts::default()
        };
        let mut counts = vec![vec![base; c]; r];
        let mut seen = vec![usize::MAX; r * c.max(1)];
        for (i, w) in self.offsets.windows(2).enumerate() {
            for &cell in &self.cells[w[0]..w[1]] {
                let (rel, b) = (cell as usize / self.buckets, cell as usize % self.buckets);
                let Some(col) = of[b] else { continue };
                if seen[rel * c + col] != i {
                    seen[rel * c + col] = i;
                    counts[rel][col].with += 1;
                    counts[rel][col].with_positive += u64::from(self.labels[i]);
                }
            }
        }
        let sum_cells = |values: &[f64]| -> Vec<Vec<f64>> {
            let mut out = vec![vec![0.0; c]; r];
            for (cell, &x) in values.iter().enumerate() {
                if let Some(col) = of[cell % self.buckets] {
                    out[cell / self.buckets][col] += x;
                }
            }
            out
        };
        let counted: Vec<f64> = self.behaviours.iter().map(|&n| n as f64).collect();
        let behaviours = sum_cells(&counted);
        let attention = (self.attention.iter())
            .map(|sums| {
                let sums = sum_cells(sums);
                (sums.iter().zip(&behaviours))
                    .map(|(s, n)| {
                        (s.iter().zip(n))
                            .map(|(&s, &n)| (n >= MIN_SUPPORT as f64).then(|| s / n))
                            .collect()
                    })
                    .collect()
            })
            .collect();
        Maps {
            columns,
            counts,
            behaviours: (behaviours.iter())
                .map(|row| row.iter().map(|&n| n as u64).collect())
                .collect(),
            attention,
        }
    }
}
