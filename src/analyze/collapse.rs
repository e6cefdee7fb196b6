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
use usage::FieldUsage;

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
        for (m, width) in widths.iter_mut().enumerate() {
            let (data, shape) = subject.table(m, &field.name)?;
            *width = shape[1];
            let tensor = format!("emb.{m}.{}", field.name);
            let at = (subject.predictor.checkpoint(), tensor.as_str());
            tables.push(measure(gpu, field, data, shape, at)?);
        }
        fields.push(FieldCollapse {
            name: field.name.clone(),
            kind: field.kind.to_string(),
            rows_used: field.counts.len(),
            uses: field.total(),
            tables,
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

/// One field in one table: its field matrix, the two Grams on the GPU, the two spectra.
fn measure(
    gpu: &Gpu,
    field: &FieldUsage,
    data: &[f32],
    shape: [usize; 2],
    at: (&Path, &str),
) -> Result<FieldTable> {
    let (plain, weighted) = usage::field_matrix(field, data, shape, at)?;
    let (rows, width) = (field.counts.len(), shape[1]);
    let grams = gram::gram_gpu(gpu, &[&plain, &weighted], rows, width)?;
    let plain = Spectrum::from_gram(&grams[0], width, rows, at.1)?;
    let weighted = Spectrum::from_gram(&grams[1], width, rows, at.1)?;
    Ok(FieldTable {
        ia: plain.ia,
        ia_weighted: weighted.ia,
        all_zero: plain.all_zero,
        spectrum: plain.normalised(),
    })
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
    Collapse {
        split: "train".into(),
        tables,
        fields,
        mean_ia,
        mean_ia_weighted,
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
        md.push_str("\n|---|---|---:|---:|");
        md.push_str(&"---:|".repeat(self.tables.len()));
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
            md.push('\n');
        }
        md.push_str("| **mean** | | | |");
        for t in &self.tables {
            md.push_str(&format!(" {:.4} / {:.4} |", t.mean_ia, t.mean_ia_weighted));
        }
        md.push_str(&format!(
            "\n\nModel-level mean IA over fields and tables: {:.4} (weighted {:.4}).\n\n",
            self.mean_ia, self.mean_ia_weighted
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
