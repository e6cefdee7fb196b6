//! Task entanglement (METHODS.md §3; Pan et al. KDD 2024 §4, the STEM paper, Su, Pan et al. AAAI
//! 2024): when one embedding serves several tasks, the task with fewer positives is pulled along by
//! the others. This section measures two symptoms on a trained run with several outputs:
//!
//! - **Gate usage** (`gates.rs`): over the test split, each tower's mean gate weight on each expert,
//!   the share of samples whose largest weight is on it, and the mean per-sample entropy. Read
//!   back from the mixture's saved softmax after each prediction (`Predictor::gate_weights`), so
//!   it is exactly what the towers mixed. A STEM tower that leans on its own and the shared
//!   experts, and little on the other tasks', has disentangled; an MMoE tower has only shared
//!   experts to choose from. A shared bottom has no gate: its weights are the uniform mean it uses
//!   (`mixture: "uniform"`). A `single` model with several tasks has one tower and no mixture
//!   (`mixture: "none"`, no gate rows).
//! - **Comparable samples** (`splits.rs`): test samples split by their user's share of training
//!   positives across the tasks; per split and task the exact AUC. Needs `train.group` (the user
//!   of each sample); without it the splits are skipped with the reason.
//!
//! One output is not entangled with anything: the section is then absent (`Ok(None)`).

mod figures;
mod gates;
mod splits;
#[cfg(test)]
mod tests;

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::plot;
use super::Subject;
use crate::data::{ReadOptions, TableReader};
use crate::error::{Error, Result};
use crate::gpu::Gpu;

pub use gates::{expert_labels, GateMeans, GateTally};
pub use splits::{assign_bins, comparable_splits, PositiveCounts, Scored, Split, QUANTILES};

/// How `ρ` is defined (also in `report.json`, so a reader of the numbers has it).
pub const RATIO: &str = "rho = positives of the first output / positives of all outputs, per user \
                         (train.group) over the training split";

/// Gate usage and comparable-sample AUCs.
#[derive(Debug, Clone, Serialize)]
pub struct Entanglement {
    /// `learned` (a softmax gate per tower), `uniform` (a shared bottom's mean, no gate) or `none`
    /// (`single`: one tower, no mixture; the gate fields are empty).
    pub mixture: String,
    /// Expert labels `<set owner>/t<table>` in slot order (the gate's last axis).
    pub experts: Vec<String>,
    /// The towers (outputs: `task` or `task@scenario`), the gate's first axis.
    pub towers: Vec<String>,
    /// Test samples the gate statistics average over.
    pub gate_rows: u64,
    /// `[towers][experts]`: mean gate weight (each row sums to 1).
    pub gate_mean: Vec<Vec<f64>>,
    /// `[towers][experts]`: share of samples whose largest weight is on the expert (a tie splits
    /// the sample equally).
    pub gate_top_share: Vec<Vec<f64>>,
    /// `[towers]`: mean per-sample entropy of the gate, nats.
    pub gate_entropy: Vec<f64>,
    /// The label columns the splits score (the outputs).
    pub tasks: Vec<String>,
    /// How the splits' ratio is defined ([`RATIO`]).
    pub ratio: String,
    /// The user column (`train.group`), when there is one.
    pub group: Option<String>,
    /// `q1`…`q5` by ascending ratio, `none` (no training positives), `all`; empty when skipped.
    pub splits: Vec<Split>,
    /// Why there are no splits, when there are none.
    pub splits_skipped: Option<String>,
    /// Figure files written (PNG and SVG), relative to the report folder.
    pub figures: Vec<String>,
}

/// The test split scored once: gate statistics and what the splits need.
struct TestPass {
    gates: Option<GateMeans>,
    users: Option<Vec<u64>>,
    labels: Vec<f32>,
    predictions: Vec<f32>,
}

/// Measures `subject`'s task entanglement, writing figures into `out`; `None` with one output.
pub fn analyze(gpu: &Gpu, subject: &mut Subject, out: &Path) -> Result<Option<Entanglement>> {
    let tasks = subject.predictor.tasks();
    if tasks.len() < 2 {
        return Ok(None);
    }
    let arch = subject.config().model.architecture;
    let mixture = match (arch.multitask(), arch.gated()) {
        (false, _) => "none",
        (true, false) => "uniform",
        (true, true) => "learned",
    };
    let plan = subject.predictor.plan();
    let experts = if arch.multitask() {
        expert_labels(plan)
    } else {
        Vec::new()
    };
    let towers = if arch.multitask() {
        tasks.clone()
    } else {
        Vec::new()
    };
    let test = score_test(gpu, subject, towers.len(), experts.len())?;
    let group = subject.config().train.group.clone();
    let (splits, splits_skipped) = match (&group, &test.users) {
        (Some(_), Some(users)) => (splits_of(subject, &test, users, tasks.len())?, None),
        _ => (Vec::new(), Some(NO_GROUP.to_string())),
    };
    let gates = test.gates.unwrap_or(GateMeans {
        rows: 0,
        mean: Vec::new(),
        top_share: Vec::new(),
        entropy: Vec::new(),
    });
    let mut section = Entanglement {
        mixture: mixture.into(),
        experts,
        towers,
        gate_rows: gates.rows,
        gate_mean: gates.mean,
        gate_top_share: gates.top_share,
        gate_entropy: gates.entropy,
        tasks,
        ratio: RATIO.into(),
        group,
        splits,
        splits_skipped,
        figures: Vec::new(),
    };
    section.figures = section.draw(out, arch.name())?;
    Ok(Some(section))
}

/// Predicts every test batch once, tallying the gates (`towers × experts`, none when 0 towers)
/// and keeping labels, predictions and users.
fn score_test(gpu: &Gpu, subject: &mut Subject, towers: usize, experts: usize) -> Result<TestPass> {
    let mut tally = (towers > 0).then(|| GateTally::new(towers, experts));
    let (mut labels, mut predictions) = (Vec::new(), Vec::new());
    let mut users: Option<Vec<u64>> = Some(Vec::new());
    for batch in subject.batches("test")? {
        let batch = batch?;
        predictions.extend(subject.predictor.predict(gpu, &batch)?);
        if let Some(tally) = &mut tally {
            let g = subject.predictor.gate_weights(gpu)?.ok_or_else(|| {
                Error::Graph("a model with towers over experts returned no gate weights".into())
            })?;
            tally.push(&g, batch.rows)?;
        }
        labels.extend_from_slice(&batch.labels);
        match (&mut users, &batch.groups) {
            (Some(all), Some(g)) => all.extend_from_slice(g),
            _ => users = None,
        }
    }
    if predictions.is_empty() {
        let file = subject.split("test")?;
        return Err(Error::Dataset(format!(
            "{}: the test split has no rows, so there is nothing to measure entanglement on",
            file.display()
        )));
    }
    Ok(TestPass {
        gates: tally.and_then(|t| t.means()),
        users,
        labels,
        predictions,
    })
}

/// Why a run without `train.group` has no splits.
const NO_GROUP: &str =
    "the run has no train.group column, so no sample has a user to take a ratio of positives over";

/// The comparable-sample splits of the scored test split, `users` its samples' users.
fn splits_of(
    subject: &Subject,
    test: &TestPass,
    users: &[u64],
    tasks: usize,
) -> Result<Vec<Split>> {
    let counts = count_positives(subject, tasks)?;
    let scored = Scored {
        tasks,
        users,
        labels: &test.labels,
        predictions: &test.predictions,
    };
    comparable_splits(&counts, scored)
}

/// Each user's positives per output over the training split: its labels and user ids only (the
/// features are not encoded, which would cost more than the whole test pass).
fn count_positives(subject: &Subject, tasks: usize) -> Result<PositiveCounts> {
    let file = subject.split("train")?;
    let name = file.display().to_string();
    let options = ReadOptions {
        batch_rows: subject.predictor.max_batch() as usize,
        ..ReadOptions::default()
    };
    let mut reader = TableReader::open(&file, subject.predictor.schema(), options)?;
    let mut counts = PositiveCounts::new(tasks);
    while let Some(batch) = reader.next_batch()? {
        let (labels, users) = subject.encoder().encode_samples(&batch, &name)?;
        let users = users.ok_or_else(|| {
            Error::data(
                &name,
                "the rows carry no train.group ids to count positives per user",
            )
        })?;
        counts.push(&users, &labels)?;
    }
    Ok(counts)
}

impl Entanglement {
    /// Writes `entangle-gates` (with a mixture) and `entangle-splits` (with splits) into `out`.
    fn draw(&self, out: &Path, architecture: &str) -> Result<Vec<String>> {
        let mut files = Vec::new();
        if !self.gate_mean.is_empty() {
            let fig = figures::GateHeatmap {
                towers: &self.towers,
                experts: &self.experts,
                mean: &self.gate_mean,
                title: format!(
                    "{architecture}: mean gate weight per tower ({})",
                    self.mixture
                ),
            };
            files.extend(plot::save(out, "entangle-gates", &fig)?);
        }
        let bins: Vec<Split> = (self.splits.iter())
            .filter(|s| s.bin != "all")
            .cloned()
            .collect();
        if !bins.is_empty() {
            let fig = figures::SplitAucs {
                tasks: &self.tasks,
                splits: &bins,
                title: format!("{architecture}: AUC per comparable-sample split"),
            };
            files.extend(plot::save(out, "entangle-splits", &fig)?);
        }
        Ok(files)
    }

    /// This section of `report.md`.
    pub fn markdown(&self) -> String {
        let mut md = String::from("## Task entanglement\n\n");
        md.push_str(&self.gates_markdown());
        md.push_str(&self.splits_markdown());
        md
    }

    fn gates_markdown(&self) -> String {
        let mut md = String::new();
        let _ = match self.mixture.as_str() {
            "none" => writeln!(
                md,
                "One tower scores every task (`single`): no mixture, no gate.\n"
            ),
            "uniform" => writeln!(
                md,
                "Shared bottom: no gate; every tower uses the uniform mean of its experts (the \
                 weights below), over {} test samples.\n",
                self.gate_rows
            ),
            _ => writeln!(
                md,
                "Gate usage over {} test samples: mean weight per tower (rows) and expert \
                 (columns), then the share of samples whose largest weight is on each expert (ties \
                 split equally).\n",
                self.gate_rows
            ),
        };
        if self.gate_mean.is_empty() {
            return md;
        }
        let header = format!(
            "| tower | {} | entropy (nats) |\n",
            self.experts.join(" | ")
        );
        let rule = format!("|---|{}---|\n", "---|".repeat(self.experts.len()));
        for (name, table) in [
            ("mean", &self.gate_mean),
            ("top share", &self.gate_top_share),
        ] {
            let _ = writeln!(md, "{name}:\n");
            md.push_str(&header);
            md.push_str(&rule);
            for (u, row) in table.iter().enumerate() {
                let cells: Vec<String> = row.iter().map(|g| format!("{g:.4}")).collect();
                let h = self.gate_entropy.get(u).copied().unwrap_or(f64::NAN);
                let _ = writeln!(
                    md,
                    "| {} | {} | {h:.4} |",
                    self.towers[u],
                    cells.join(" | ")
                );
            }
            md.push('\n');
        }
        if self.figures.iter().any(|f| f == "entangle-gates.png") {
            md.push_str("![gate usage](entangle-gates.png)\n\n");
        }
        md
    }

    fn splits_markdown(&self) -> String {
        let mut md = String::from("### Comparable samples\n\n");
        if let Some(why) = &self.splits_skipped {
            let _ = writeln!(md, "Skipped: {why}.\n");
            return md;
        }
        let _ = writeln!(
            md,
            "Test samples split by {} (user column `{}`): {QUANTILES} quantile bins, `none` for \
             users without training positives, `all` for every sample. AUC `–` where a split has \
             one class.\n",
            self.ratio,
            self.group.as_deref().unwrap_or("?")
        );
        let per_task = |what: &str| -> Vec<String> {
            self.tasks.iter().map(|t| format!("{what} {t}")).collect()
        };
        let cols = [per_task("AUC"), per_task("positives")].concat();
        let _ = writeln!(
            md,
            "| split | ρ range | users | rows | {} |",
            cols.join(" | ")
        );
        let _ = writeln!(md, "|---|---|---|---|{}", "---|".repeat(cols.len()));
        for s in &self.splits {
            let range = s
                .range
                .map_or("–".into(), |[lo, hi]| format!("{lo:.4}–{hi:.4}"));
            let aucs = s
                .auc
                .iter()
                .map(|a| a.map_or("–".into(), |a| format!("{a:.4}")));
            let pos = s.positives.iter().map(|p| p.to_string());
            let cells: Vec<String> = aucs.chain(pos).collect();
            let _ = writeln!(
                md,
                "| {} | {range} | {} | {} | {} |",
                s.bin,
                s.users,
                s.rows,
                cells.join(" | ")
            );
        }
        md.push('\n');
        if self.figures.iter().any(|f| f == "entangle-splits.png") {
            md.push_str("![AUC per split](entangle-splits.png)\n\n");
        }
        md
    }
}
