//! The TIM section of `report.md` and its figure: both maps as tables (every number of the JSON),
//! the figure, and what ρ means.

use std::fmt::Write;

use super::figure::{Heatmaps, Panel};
use super::TimCorrelation;

/// `0.123`, or `–` for an undefined value.
fn fixed(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".to_string(), |v| format!("{v:.digits$}"))
}

/// A markdown table: a header of `columns`, one line per row name.
fn grid(rows: &[String], columns: &[String], cell: impl Fn(usize, usize) -> String) -> String {
    let mut md = format!("| relation \\ bucket | {} |\n", columns.join(" | "));
    md.push_str(&format!("|---|{}\n", "---:|".repeat(columns.len())));
    for (r, name) in rows.iter().enumerate() {
        let cells: Vec<String> = (0..columns.len()).map(|c| cell(r, c)).collect();
        md.push_str(&format!("| {name} | {} |\n", cells.join(" | ")));
    }
    md.push('\n');
    md
}

fn at(map: &[Vec<Option<f64>>], r: usize, c: usize) -> Option<f64> {
    map.get(r).and_then(|row| row.get(c)).copied().flatten()
}

impl TimCorrelation {
    /// This section of `report.md`.
    pub fn markdown(&self) -> String {
        let mut md = String::from("## TIM: semantic-temporal correlation\n\n");
        let _ = writeln!(
            md,
            "Sequence feature `{}` (temporal buckets by {}), label of task `{}`, {} training \
             samples with a label ({} positive). A cell is (relation of a behaviour to the target, \
             the behaviour's temporal bucket). Data: MI(X; label) in nats of X = \"the sample has \
             a behaviour in the cell\". Model: the mean over the cell's behaviours of α·n, TIM's \
             attention weight times the sequence length (1 = uniform attention). `–`: undefined \
             (fewer than 50 samples on a side of X, or fewer than 50 behaviours).\n",
            self.feature, self.bucketing, self.task, self.samples, self.positives
        );
        let _ = writeln!(md, "![tim-correlation]({})\n", self.figure[0]);
        let per_table: Vec<String> = self
            .attention
            .spearman
            .iter()
            .map(|&r| fixed(r, 3))
            .collect();
        let _ = writeln!(
            md,
            "Spearman's ρ between the two maps over the {} cells where both are defined: **{}** \
             (each table's map: {}). ρ near 1 means the model's attention ranks the cells in the \
             order of how much a behaviour there tells about the label, i.e. TIM learned the \
             semantic-temporal correlation the data holds; near 0 or below, it did not.\n",
            self.cells,
            fixed(self.spearman, 3),
            per_table.join(", ")
        );
        let (rows, cols) = (&self.relations, &self.buckets);
        md.push_str("### Data: MI(X; label), nats\n\n");
        md.push_str(&grid(rows, cols, |r, c| {
            at(&self.mi, r, c).map_or("–".into(), |v| format!("{v:.3e}"))
        }));
        md.push_str("### Model: mean α·n, mean over tables\n\n");
        md.push_str(&grid(rows, cols, |r, c| {
            fixed(at(&self.attention.mean, r, c), 3)
        }));
        for (m, table) in self.attention.tables.iter().enumerate() {
            let _ = writeln!(md, "### Model: mean α·n, table {m}\n");
            md.push_str(&grid(rows, cols, |r, c| fixed(at(table, r, c), 3)));
        }
        let count = |map: &[Vec<u64>], r: usize, c: usize| {
            map.get(r)
                .and_then(|row| row.get(c))
                .map_or("–".into(), |n| n.to_string())
        };
        md.push_str("### Samples with a behaviour in the cell (X = 1)\n\n");
        md.push_str(&grid(rows, cols, |r, c| count(&self.support, r, c)));
        md.push_str("### Behaviours in the cell\n\n");
        md.push_str(&grid(rows, cols, |r, c| count(&self.behaviours, r, c)));
        md
    }

    /// The `tim-correlation` figure.
    pub(super) fn figure(&self) -> Heatmaps<'_> {
        Heatmaps {
            title: format!(
                "TIM ({}): data MI vs learned attention, Spearman ρ = {} over {} cells",
                self.feature,
                fixed(self.spearman, 3),
                self.cells
            ),
            rows: &self.relations,
            columns: &self.buckets,
            panels: [
                Panel {
                    title: format!("data: MI(X; {}), millinats", self.task),
                    values: &self.mi,
                    text: |v| format!("{:.3}", v * 1e3),
                },
                Panel {
                    title: "model: mean α·n over tables (1 = uniform)".into(),
                    values: &self.attention.mean,
                    text: |v| format!("{v:.2}"),
                },
            ],
        }
    }
}
