//! Dimensional collapse (METHODS.md §2.1): per field and per embedding table, the singular spectrum
//! of the field's embedding matrix and its information abundance `IA = Σσ / max σ` (Guo, Pan et
//! al., "On the embedding collapse when scaling up recommendation models", ICML 2024). IA near 1
//! means the field's embeddings span a line (collapsed); its ceiling is `min(rows, width)`. The
//! paper's claim is that multi-embedding keeps IA higher than one table of the same total width.
//!
//! # What is measured
//! - **Rows.** The training split (`subject.batches("train")`) is read once and every use of a
//!   key is counted: a categorical id or each id of a bag is a use of that table row; a numeric
//!   (MNS) feature's key is its quantised value (0 = missing, which the kernel encodes like any
//!   value), and its vector is the sum of the value's digit rows in every base, as the gather sums
//!   them (`MnsBase::digit_rows`); one vector per distinct value used. A sequence feature has no
//!   matrix of its own (it reads the item's table, measured with the item's field): its temporal
//!   table `emb.<m>.<name>.time` is the field `<name>.time`, whose keys are the buckets (0 once per
//!   sample for the target, then each behaviour's bucket). The field matrix `E_f` has one row per
//!   key used at least once, keys ascending; rows never used (untrained) are left out.
//! - **Weighting.** Beside the plain `E_f`, the frequency-weighted one scales each row by
//!   `√(count / total)`, so `EᵀE = Σ p_key e eᵀ` is the Gram under the data's distribution; both
//!   IAs are reported (`ia`, `ia_weighted`), the plain spectrum is plotted.
//! - **Width.** A row is the table's whole width: under a GwPFM expert that is `blocks × dim` floats,
//!   analysed as one vector (the JSON gives each table's width), so its IA can reach the width.
//! - **Spectrum.** `G = EᵀE` on the GPU with the GEMM (row chunks of [`gram::CHUNK_ROWS`], summed
//!   in f64, see [`gram`]); its eigenvalues in f64 on the host ([`spectrum`]);
//!   `σ_k = √max(λ_k, 0)`, at most `min(rows, width)` non-zero. Squaring costs precision: a
//!   singular value below about `√(CHUNK_ROWS · ε₃₂) ≈ 4e-3 · σ₁` is at the f32 Gram's noise floor
//!   (in practice well below it: planted zeros measure under 1e-3 · σ₁), which bounds how much a
//!   fully collapsed field's IA can read above its rank.
//! - **Edge cases.** A field with one used row has IA = 1 (one direction); a field whose rows are
//!   all zero (or that has none) has σ₁ = 0, reported as IA 0 with `all_zero` set. Means leave
//!   all-zero fields out (they have no direction to count).
//!
//! # JSON (`collapse`)
//! `mean_ia` / `mean_ia_weighted` (over every (field, table)), `tables[m].{table, width, mean_ia,
//! mean_ia_weighted}` (over fields), `fields[i].{name, kind, rows_used, uses}`, and per table
//! `fields[i].tables[m].{ia, ia_weighted, all_zero, spectrum}` (`spectrum[k] = σ_{k+1}/σ₁`).

mod figures;
pub mod gram;
pub mod spectrum;
#[cfg(test)]
mod tests;
pub mod usage;

use std::path::Path;

use serde::Serialize;

use super::plot;
use super::Subject;
use crate::error::Result;
use crate::gpu::Gpu;
use spectrum::Spectrum;

/// Spectra and information abundance per field and table.
#[derive(Debug, Clone, Serialize)]
pub struct Collapse {
    /// The split whose rows were counted (`train`).
    pub split: String,
    /// Per embedding table `m`: its width and mean IA.
    pub tables: Vec<TableCollapse>,
    /// Per analysed field, in config order.
    pub fields: Vec<FieldCollapse>,
    /// Mean plain IA over every (field, table) not all-zero.
    pub mean_ia: f64,
    /// Mean frequency-weighted IA over the same.
    pub mean_ia_weighted: f64,
    /// Mean plain IA of the fields' concatenated embeddings (`fields[i].concat`), not all-zero.
    pub mean_ia_concat: f64,
    /// Mean frequency-weighted IA of the same.
    pub mean_ia_concat_weighted: f64,
    /// The figures written (PNG and SVG of `collapse-spectra` and `collapse-ia`).
    pub figures: Vec<String>,
}

/// One embedding table `m`.
#[derive(Debug, Clone, Serialize)]
pub struct TableCollapse {
    /// `m`.
    pub table: usize,
    /// Floats per row (`blocks × dim` under GwPFM).
    pub width: usize,
    /// Mean plain IA over its fields not all-zero.
    pub mean_ia: f64,
    /// Mean weighted IA over the same.
    pub mean_ia_weighted: f64,
}

/// One field (a feature, or a sequence's `<name>.time`).
#[derive(Debug, Clone, Serialize)]
pub struct FieldCollapse {
    /// The field.
    pub name: String,
    /// `categorical`, `bag`, `numeric` or `time`.
    pub kind: String,
    /// Distinct keys used in the split (the rows of the field matrix).
    pub rows_used: usize,
    /// Uses counted (the weights' denominator).
    pub uses: u64,
    /// Per table `m`.
    pub tables: Vec<FieldTable>,
    /// Every table's rows of the field side by side (width Σ widths): the field's whole embedding,
    /// the matrix to compare with a single table of that width (the Multi-Embedding paper's
    /// comparison at equal parameters). With one table it is that table's.
    pub concat: FieldTable,
}

/// One field in one table.
#[derive(Debug, Clone, Serialize)]
pub struct FieldTable {
    /// Plain IA = Σσ / σ₁.
    pub ia: f64,
    /// Frequency-weighted IA.
    pub ia_weighted: f64,
    /// σ₁ = 0 (IA reported as 0).
    pub all_zero: bool,
    /// σ_k / σ₁, k = 1..width, of the plain matrix.
    pub spectrum: Vec<f64>,
}

/// Measures `subject`'s embeddings, writing figures into `out`.
pub fn analyze(gpu: &Gpu, subject: &mut Subject, out: &Path) -> Result<Collapse> {
    let usage = usage::count_usage(subject)?;
    let m_count = subject.config().table_count() as usize;
    let mut widths = vec![0usize; m_count];
    let mut fields = Vec::with_capacity(usage.len());
    for field in &usage {
        let mut tables = Vec::with_capacity(m_count);
        let mut matrices = Vec::with_capacity(m_count);
        for (m, width) in widths.iter_mut().enumerate() {
            let (data, shape) = subject.table(m, &field.name)?;
            *width = shape[1];
            let tensor = format!("emb.{m}.{}", field.name);
            let at = (subject.predictor.checkpoint(), tensor.as_str());
            let (plain, weighted) = usage::field_matrix(field, data, shape, at)?;
            tables.push(measure(gpu, &plain, &weighted, shape[1], &tensor)?);
            matrices.push((plain, weighted, shape[1]));
        }
        let (plain, weighted, width) = concatenate(&matrices, field.counts.len());
        let concat = measure(
            gpu,
            &plain,
            &weighted,
            width,
            &format!("emb.*.{}", field.name),
        )?;
        fields.push(FieldCollapse {
            name: field.name.clone(),
            kind: field.kind.to_string(),
            rows_used: field.counts.len(),
            uses: field.total(),
            tables,
            concat,
        });
    }
    let mut collapse = summarise(fields, &widths);
    let spectra = figures::Spectra(&collapse);
    collapse
        .figures
        .extend(plot::save(out, "collapse-spectra", &spectra)?);
    let bars = figures::IaBars(&collapse);
    collapse
        .figures
        .extend(plot::save(out, "collapse-ia", &bars)?);
    Ok(collapse)
}

/// One field matrix (plain and frequency-weighted, `[rows, width]` row-major): the two Grams on
/// the GPU, the two spectra; `what` names it in errors.
fn measure(
    gpu: &Gpu,
    plain: &[f32],
    weighted: &[f32],
    width: usize,
    what: &str,
) -> Result<FieldTable> {
    let rows = plain.len() / width.max(1);
    let grams = gram::gram_gpu(gpu, &[plain, weighted], rows, width)?;
    let plain = Spectrum::from_gram(&grams[0], width, rows, what)?;
    let weighted = Spectrum::from_gram(&grams[1], width, rows, what)?;
    Ok(FieldTable {
        ia: plain.ia,
        ia_weighted: weighted.ia,
        all_zero: plain.all_zero,
        spectrum: plain.normalised(),
    })
}

/// The field's rows of every table side by side: `[rows, Σ widths]` (plain, weighted, width). The
/// field matrices of all tables list the same keys in the same order, so row r of each is one key.
fn concatenate(
    matrices: &[(Vec<f32>, Vec<f32>, usize)],
    rows: usize,
) -> (Vec<f32>, Vec<f32>, usize) {
    let width: usize = matrices.iter().map(|m| m.2).sum();
    let (mut plain, mut weighted) = (
        Vec::with_capacity(rows * width),
        Vec::with_capacity(rows * width),
    );
    for r in 0..rows {
        for (p, w, k) in matrices {
            plain.extend_from_slice(&p[r * k..(r + 1) * k]);
            weighted.extend_from_slice(&w[r * k..(r + 1) * k]);
        }
    }
    (plain, weighted, width)
}

/// The means over fields per table and over everything.
fn summarise(fields: Vec<FieldCollapse>, widths: &[usize]) -> Collapse {
    let mean = |items: Vec<(f64, f64)>| -> (f64, f64) {
        let n = items.len().max(1) as f64;
        let (a, b) = items.iter().fold((0.0, 0.0), |s, x| (s.0 + x.0, s.1 + x.1));
        (a / n, b / n)
    };
    let pairs = |m: Option<usize>| -> Vec<(f64, f64)> {
        (fields.iter())
            .flat_map(|f| f.tables.iter().enumerate())
            .filter(|(i, t)| m.is_none_or(|m| m == *i) && !t.all_zero)
            .map(|(_, t)| (t.ia, t.ia_weighted))
            .collect()
    };
    let tables = (widths.iter().enumerate())
        .map(|(m, &width)| {
            let (mean_ia, mean_ia_weighted) = mean(pairs(Some(m)));
            TableCollapse {
                table: m,
                width,
                mean_ia,
                mean_ia_weighted,
            }
        })
        .collect();
    let (mean_ia, mean_ia_weighted) = mean(pairs(None));
    let (mean_ia_concat, mean_ia_concat_weighted) = mean(
        (fields.iter())
            .filter(|f| !f.concat.all_zero)
            .map(|f| (f.concat.ia, f.concat.ia_weighted))
            .collect(),
    );
    Collapse {
        split: "train".into(),
        tables,
        fields,
        mean_ia,
        mean_ia_weighted,
        mean_ia_concat,
        mean_ia_concat_weighted,
        figures: Vec::new(),
    }
}

impl Collapse {
    /// This section of `report.md`: the IA table (field × table, plain / weighted), the means,
    /// the figures, and every spectrum in a folded block.
    pub fn markdown(&self) -> String {
        let mut md = String::from("## Dimensional collapse\n\n");
        md.push_str(&format!(
            "Information abundance IA = Σσ/σ₁ of each field's embedding rows used by the `{}` split \
             (METHODS.md §2.1): plain / frequency-weighted. IA near 1 is a collapsed field; its \
             ceiling is min(rows used, width); a field with one row used has IA 1 by \
             definition, an all-zero one is reported as 0 and flagged. Means leave all-zero fields \
             out.\n\n",
            self.split
        ));
        md.push_str("| field | kind | rows used | uses |");
        for t in &self.tables {
            md.push_str(&format!(" table {} (width {}) |", t.table, t.width));
        }
        let total: usize = self.tables.iter().map(|t| t.width).sum();
        md.push_str(&format!(" all tables side by side (width {total}) |"));
        md.push_str("\n|---|---|---:|---:|");
        md.push_str(&"---:|".repeat(self.tables.len() + 1));
        md.push('\n');
        for f in &self.fields {
            md.push_str(&format!(
                "| {} | {} | {} | {} |",
                f.name, f.kind, f.rows_used, f.uses
            ));
            for t in &f.tables {
                let flag = if t.all_zero { " (all-zero)" } else { "" };
                md.push_str(&format!(" {:.4} / {:.4}{flag} |", t.ia, t.ia_weighted));
            }
            let c = &f.concat;
            md.push_str(&format!(" {:.4} / {:.4} |", c.ia, c.ia_weighted));
            md.push('\n');
        }
        md.push_str("| **mean** | | | |");
        for t in &self.tables {
            md.push_str(&format!(" {:.4} / {:.4} |", t.mean_ia, t.mean_ia_weighted));
        }
        md.push_str(&format!(
            " {:.4} / {:.4} |",
            self.mean_ia_concat, self.mean_ia_concat_weighted
        ));
        md.push_str(&format!(
            "\n\nModel-level mean IA over fields and tables: {:.4} (weighted {:.4}); of the fields' \
             tables side by side, the whole embedding of each field: {:.4} (weighted {:.4}).\n\n",
            self.mean_ia, self.mean_ia_weighted, self.mean_ia_concat, self.mean_ia_concat_weighted
        ));
        for png in self.figures.iter().filter(|f| f.ends_with(".png")) {
            md.push_str(&format!("![{png}]({png})\n\n"));
        }
        md.push_str(&self.spectra_markdown());
        md
    }

    /// Every plotted spectrum as numbers, folded.
    fn spectra_markdown(&self) -> String {
        let mut md = String::from("<details><summary>Spectra σ_k/σ₁ (plain)</summary>\n\n");
        for f in &self.fields {
            for (m, t) in f.tables.iter().enumerate() {
                let values: Vec<String> = t.spectrum.iter().map(|s| format!("{s:.4e}")).collect();
                md.push_str(&format!("- {} table {m}: {}\n", f.name, values.join(" ")));
            }
        }
        md.push_str("\n</details>\n\n");
        md
    }
}
