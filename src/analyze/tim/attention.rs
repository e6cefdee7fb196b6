//! TIM's attention recomputed on the host in f64 from the checkpoint's rows, exactly as
//! `tim_forward` computes it (docs/tim.md, METHODS.md §1.1): for one embedding table's TIM,
//!
//! ```text
//! ẽ_i = Σ_k T_k[id_k(i)] + P[bucket_i],   ṽ = Σ_k T_k[id_k(target)] + P[0]
//! s_i = ẽ_iᵀṽ / √D,   α = softmax(s)      (max-shifted)
//! ```
//!
//! T_k are the semantic tables (the item's, then each side feature's), P the temporal table. The
//! kernel keeps only (max, Σexp) per sample; the analysis needs every α_i, and f64 keeps the
//! recompute exact to the f32 rows (`tests/gpu.rs` checks it reproduces the GPU's u).

use std::path::PathBuf;

use crate::error::{Error, Result};

/// One `[rows, width]` table of the checkpoint.
pub struct Table<'a> {
    /// Its checkpoint name (`emb.<m>.<feature>`), for errors.
    pub name: String,
    /// Row-major values.
    pub data: &'a [f32],
    /// Rows.
    pub rows: usize,
}

/// The tables of one TIM (one embedding table m of a multi-embedding model).
pub struct TimRows<'a> {
    file: PathBuf,
    semantic: Vec<Table<'a>>,
    temporal: Table<'a>,
    width: usize,
    scale: f64,
}

impl<'a> TimRows<'a> {
    /// The TIM over `semantic` tables (item first) and `temporal`, all `width` floats wide; `file`
    /// is the checkpoint named in errors. A table whose data is not `rows × width` floats, or no
    /// semantic table, is an error.
    pub fn new(
        file: PathBuf,
        semantic: Vec<Table<'a>>,
        temporal: Table<'a>,
        width: usize,
    ) -> Result<Self> {
        let bad = |t: &Table, message: String| Error::checkpoint(&file, Some(&t.name), message);
        if width == 0 || semantic.is_empty() {
            return Err(Error::checkpoint(
                &file,
                None,
                format!(
                    "TIM needs ≥ 1 semantic table and a width ≥ 1 (got {} tables, width {width})",
                    semantic.len()
                ),
            ));
        }
        for t in semantic.iter().chain([&temporal]) {
            if t.data.len() != t.rows * width {
                return Err(bad(
                    t,
                    format!(
                        "{} floats for {} rows of width {width}; every TIM table of a set has one \
                         width",
                        t.data.len(),
                        t.rows
                    ),
                ));
            }
        }
        Ok(TimRows {
            scale: 1.0 / (width as f64).sqrt(),
            file,
            semantic,
            temporal,
            width,
        })
    }

    fn row<'t>(&'t self, t: &'t Table<'a>, id: u32) -> Result<&'t [f32]> {
        let id = id as usize;
        if id >= t.rows {
            return Err(Error::checkpoint(
                &self.file,
                Some(&t.name),
                format!(
                    "row {id} asked of a table of {} rows: the checkpoint does not belong to the \
                     encoder",
                    t.rows
                ),
            ));
        }
        Ok(&t.data[id * self.width..(id + 1) * self.width])
    }

    /// The rows of `ids` (one per semantic table) and temporal row `bucket`, summed in f64: ẽ
    /// (ṽ with bucket 0).
    pub fn embed(&self, ids: &[u32], bucket: u32) -> Result<Vec<f64>> {
        if ids.len() != self.semantic.len() {
            return Err(Error::checkpoint(
                &self.file,
                None,
                format!(
                    "{} semantic ids for {} semantic tables",
                    ids.len(),
                    self.semantic.len()
                ),
            ));
        }
        let mut e = vec![0.0; self.width];
        let rows = (self.semantic.iter().zip(ids))
            .map(|(t, &id)| self.row(t, id))
            .chain([self.row(&self.temporal, bucket)]);
        for row in rows {
            for (a, &x) in e.iter_mut().zip(row?) {
                *a += x as f64;
            }
        }
        Ok(e)
    }

    /// α of a sequence (`behaviours` `[L, S]` semantic ids, `buckets` `[L]`) for target `v` (from
    /// [`Self::embed`] with bucket 0), written into `alpha` (cleared first; empty for L = 0).
    pub fn attention(
        &self,
        v: &[f64],
        behaviours: &[u32],
        buckets: &[u32],
        alpha: &mut Vec<f64>,
    ) -> Result<()> {
        let s = self.semantic.len();
        alpha.clear();
        if behaviours.len() != buckets.len() * s || v.len() != self.width {
            return Err(Error::checkpoint(
                &self.file,
                None,
                format!(
                    "{} behaviour ids and {} buckets for {s} semantic tables, target of width {}",
                    behaviours.len(),
                    buckets.len(),
                    v.len()
                ),
            ));
        }
        // ẽ_iᵀṽ = Σ_k T_k[id_k]ᵀṽ + P[b]ᵀṽ: the rows are dotted with ṽ one by one, unsummed.
        let dot = |row: &[f32]| row.iter().zip(v).map(|(&x, y)| x as f64 * y).sum::<f64>();
        let mut max = f64::NEG_INFINITY;
        for (ids, &b) in behaviours.chunks_exact(s.max(1)).zip(buckets) {
            let mut score = dot(self.row(&self.temporal, b)?);
            for (t, &id) in self.semantic.iter().zip(ids) {
                score += dot(self.row(t, id)?);
            }
            let score = score * self.scale;
            max = max.max(score);
            alpha.push(score);
        }
        let mut sum = 0.0;
        for a in alpha.iter_mut() {
            *a = (*a - max).exp();
            sum += *a;
        }
        for a in alpha.iter_mut() {
            *a /= sum;
        }
        Ok(())
    }
}
