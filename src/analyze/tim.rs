//! TIM correlation (METHODS.md §1.1; TIN, Zhou, Pan et al., WWW 2024, arXiv 2308.08487): does the
//! trained TIM attend to the behaviours whose presence tells about the label?
//!
//! TIN's analysis puts two maps side by side over the cells (semantic relation of a behaviour to
//! the target × temporal bucket). Ours, on the training split, over the samples labelled for the
//! first task:
//!
//! - **data**: for each cell, the indicator X = 1 if the sample has at least one behaviour in it;
//!   MI(X; Y) in nats from the 2×2 counts with the label (`stats.rs`). A cell with fewer than
//!   50 samples on either side of X is undefined (null): MI of a rare event is mostly noise.
//! - **model**: α_i of every behaviour recomputed on the host in f64 from the checkpoint's rows
//!   exactly as `tim_forward` does (`attention.rs`; a test reproduces the GPU's u from it), per
//!   embedding table (each table of a multi-embedding model has its own TIM over its own rows);
//!   per cell the mean of α_i·n over its behaviours (n the sequence length, so 1 = uniform
//!   attention, 2 = twice the uniform share), null under 50 behaviours; the map of the model is
//!   the mean of the tables' maps.
//!
//! Relations and columns are chosen in `cells.rs` (same item / same first side feature /
//! unrelated; one column per used bucket, the thin tail merged). A relation no behaviour has is
//! dropped. Spearman's ρ (average ranks for ties) of the two maps over the cells where both are
//! defined says whether the model ranks the cells as the data does. Only the first sequence
//! feature is analysed; a model without one has no section.

mod attention;
mod cells;
mod figure;
mod markdown;
mod stats;
#[cfg(test)]
mod tests;

use std::path::Path;

use serde::Serialize;

use super::Subject;
use crate::config::{FeatureKind, ModelConfig, SequencePooling, TimeBucket};
use crate::data::encode::{FeatureInput, ModelBatch};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::kernels::loss::MISSING_LABEL;
use attention::{Table, TimRows};
use cells::{Maps, Tally, MIN_SUPPORT};

/// The data's MI map and the learned attention map (rows = [`Self::relations`], columns =
/// [`Self::buckets`]).
#[derive(Debug, Clone, Serialize)]
pub struct TimCorrelation {
    /// The sequence feature analysed.
    pub feature: String,
    /// The task whose label the MI is taken with (the first).
    pub task: String,
    /// How the temporal buckets were formed (`log_delta, unit 3600 s` or `position`).
    pub bucketing: String,
    /// Row names: `same item`, `same <side feature>`, `unrelated` (rows nothing uses dropped).
    pub relations: Vec<String>,
    /// Column names: a temporal bucket, or `a-b` for the merged tail.
    pub buckets: Vec<String>,
    /// Training samples with a label for the task.
    pub samples: u64,
    /// Of which positive.
    pub positives: u64,
    /// `[relations][buckets]` samples with at least one behaviour in the cell (X = 1).
    pub support: Vec<Vec<u64>>,
    /// `[relations][buckets]` behaviours in the cell.
    pub behaviours: Vec<Vec<u64>>,
    /// `[relations][buckets]` MI(X; label) in nats; null where undefined.
    pub mi: Vec<Vec<Option<f64>>>,
    /// The learned map.
    pub attention: Attention,
    /// Spearman's ρ of `mi` and `attention.mean` over the cells where both are defined; null
    /// with fewer than 3 such cells or a constant map.
    pub spearman: Option<f64>,
    /// Cells where both maps are defined.
    pub cells: usize,
    /// The figure's files (PNG, SVG) in the report folder.
    pub figure: [String; 2],
}

/// Mean α_i·n per cell (1 = uniform attention).
#[derive(Debug, Clone, Serialize)]
pub struct Attention {
    /// `[tables][relations][buckets]`, one map per embedding table's TIM.
    pub tables: Vec<Vec<Vec<Option<f64>>>>,
    /// `[relations][buckets]` the mean over tables.
    pub mean: Vec<Vec<Option<f64>>>,
    /// Per table, Spearman's ρ of its map with the MI map.
    pub spearman: Vec<Option<f64>>,
}

/// The sequence feature analysed and its parts.
struct Sequence {
    index: usize,
    name: String,
    /// Item feature, then side features: the semantic tables.
    semantic: Vec<String>,
    buckets: u32,
    bucketing: String,
}

impl Sequence {
    /// The first sequence feature of `config` that TIM pools (a mean-pooled sequence,
    /// `pooling = "mean"`, has no attention and no temporal table to measure).
    fn of(config: &ModelConfig) -> Option<Self> {
        config.features.iter().enumerate().find_map(|(index, f)| {
            let FeatureKind::Sequence {
                item,
                side,
                buckets,
                time,
                pooling: SequencePooling::Tim,
                ..
            } = &f.kind
            else {
                return None;
            };
            Some(Sequence {
                index,
                name: f.name.clone(),
                semantic: std::iter::once(item).chain(side).cloned().collect(),
                buckets: *buckets,
                bucketing: match time {
                    TimeBucket::Position => "position".into(),
                    TimeBucket::LogDelta { unit_seconds } => {
                        format!("log_delta, unit {unit_seconds} s")
                    }
                },
            })
        })
    }

    /// Row names, by the index [`cells::relation`] gives.
    fn relations(&self) -> Vec<String> {
        let side = self.semantic.get(1).map(|s| format!("same {s}"));
        std::iter::once("same item".to_string())
            .chain(side)
            .chain(["unrelated".to_string()])
            .collect()
    }
}

/// Measures `subject`'s TIM against its training data, writing `tim-correlation.{png,svg}` into
/// `out`; `None` for a model without a TIM-pooled sequence feature.
pub fn analyze(_gpu: &Gpu, subject: &mut Subject, out: &Path) -> Result<Option<TimCorrelation>> {
    let Some(seq) = Sequence::of(subject.config()) else {
        return Ok(None);
    };
    let task = (subject.config().tasks.first())
        .map(|t| t.name.clone())
        .ok_or_else(|| Error::Metrics("the model has no task to take the label of".into()))?;
    let tables = tim_rows(subject, &seq)?;
    let tally = tally(subject, &seq, &tables)?;
    let mut result = correlate(&seq, task, &tally);
    result.figure = super::plot::save(out, "tim-correlation", &result.figure())?;
    Ok(Some(result))
}

/// Each embedding table's TIM tables from the checkpoint.
fn tim_rows<'a>(subject: &'a Subject, seq: &Sequence) -> Result<Vec<TimRows<'a>>> {
    let file = subject.predictor.checkpoint().to_path_buf();
    let table = |m: usize, feature: &str| -> Result<(Table<'a>, usize)> {
        let (data, [rows, width]) = subject.table(m, feature)?;
        let name = format!("emb.{m}.{feature}");
        Ok((Table { name, data, rows }, width))
    };
    (0..subject.config().table_count() as usize)
        .map(|m| {
            let (temporal, width) = table(m, &format!("{}.time", seq.name))?;
            let mut semantic = Vec::new();
            for feature in &seq.semantic {
                let (t, w) = table(m, feature)?;
                if w != width {
                    let message = format!("width {w}; the temporal table's is {width}");
                    return Err(Error::checkpoint(&file, Some(&t.name), message));
                }
                semantic.push(t);
            }
            TimRows::new(file.clone(), semantic, temporal, width)
        })
        .collect()
}

/// One pass over the training split: every labelled sample's cells and attention.
fn tally(subject: &Subject, seq: &Sequence, tables: &[TimRows]) -> Result<Tally> {
    let file = subject.split("train")?.display().to_string();
    let mut tally = Tally::new(seq.relations().len(), seq.buckets as usize, tables.len());
    for batch in subject.batches("train")? {
        add_batch(&mut tally, &batch?, seq, tables, &file)?;
    }
    Ok(tally)
}

/// Adds the samples of `batch` (read from `file`) labelled for the first task to `tally`.
fn add_batch(
    tally: &mut Tally,
    batch: &ModelBatch,
    seq: &Sequence,
    tables: &[TimRows],
    file: &str,
) -> Result<()> {
    let bad = |message: String| Error::data(file, message);
    let s = seq.semantic.len();
    let Some(FeatureInput::Sequence(tb)) = batch.features.get(seq.index) else {
        return Err(bad(format!(
            "feature {:?} is not encoded as a sequence",
            seq.name
        )));
    };
    let rows = batch.rows;
    let stride = batch.labels.len().checked_div(rows).unwrap_or(0);
    let total: usize = tb.lengths.iter().map(|&l| l as usize).sum();
    if stride == 0
        || batch.labels.len() != rows * stride
        || batch.lines.len() != rows
        || tb.lengths.len() != rows
        || tb.target.len() != rows * s
        || tb.behaviours.len() != total * s
        || tb.buckets.len() != total
    {
        return Err(bad(format!(
            "a batch of {rows} rows with {} labels and a sequence of {} lengths, {} target ids, \
             {} behaviour ids, {} buckets ({s} semantic ids each)",
            batch.labels.len(),
            tb.lengths.len(),
            tb.target.len(),
            tb.behaviours.len(),
            tb.buckets.len()
        )));
    }
    let mut first = 0;
    for (row, &len) in tb.lengths.iter().enumerate() {
        let span = first..first + len as usize;
        first = span.end;
        let y = batch.labels[row * stride];
        if y == MISSING_LABEL {
            continue;
        }
        let target = &tb.target[row * s..(row + 1) * s];
        let behaviours = &tb.behaviours[span.start * s..span.end * s];
        let sample = (target, behaviours, &tb.buckets[span]);
        tally
            .add(y >= 0.5, sample, tables)
            .map_err(|e| bad(format!("line {}: {e}", batch.lines[row])))?;
    }
    Ok(())
}

/// The maps, relations nothing uses dropped, and their correlations.
fn correlate(seq: &Sequence, task: String, tally: &Tally) -> TimCorrelation {
    let Maps {
        columns,
        counts,
        behaviours,
        attention,
    } = tally.finish();
    let keep: Vec<usize> = (0..counts.len())
        .filter(|&r| behaviours[r].iter().sum::<u64>() > 0)
        .collect();
    let rows = |m: &[Vec<Option<f64>>]| -> Vec<Vec<Option<f64>>> {
        keep.iter().map(|&r| m[r].clone()).collect()
    };
    let mi: Vec<Vec<Option<f64>>> = (keep.iter())
        .map(|&r| {
            counts[r]
                .iter()
                .map(|c| c.mutual_information(MIN_SUPPORT))
                .collect()
        })
        .collect();
    let tables: Vec<_> = attention.iter().map(|t| rows(t)).collect();
    let mean = mean_map(&tables);
    let (spearman, cells) = rank_correlation(&mi, &mean);
    let names = seq.relations();
    TimCorrelation {
        feature: seq.name.clone(),
        task,
        bucketing: seq.bucketing.clone(),
        relations: keep.iter().map(|&r| names[r].clone()).collect(),
        buckets: columns.iter().map(|c| c.label()).collect(),
        samples: tally.samples(),
        positives: tally.positives(),
        support: keep
            .iter()
            .map(|&r| counts[r].iter().map(|c| c.with).collect())
            .collect(),
        behaviours: keep.iter().map(|&r| behaviours[r].clone()).collect(),
        attention: Attention {
            spearman: tables.iter().map(|t| rank_correlation(&mi, t).0).collect(),
            tables,
            mean,
        },
        mi,
        spearman,
        cells,
        figure: Default::default(),
    }
}

/// The cell-wise mean of the tables' maps (defined where every table's is).
fn mean_map(tables: &[Vec<Vec<Option<f64>>>]) -> Vec<Vec<Option<f64>>> {
    let Some(first) = tables.first() else {
        return Vec::new();
    };
    let n = tables.len() as f64;
    (0..first.len())
        .map(|r| {
            (0..first[r].len())
                .map(|c| {
                    let all: Option<Vec<f64>> = tables.iter().map(|t| t[r][c]).collect();
                    all.map(|v| v.iter().sum::<f64>() / n)
                })
                .collect()
        })
        .collect()
}

/// Spearman's ρ of two maps over the cells where both are defined, and the number of such cells.
fn rank_correlation(a: &[Vec<Option<f64>>], b: &[Vec<Option<f64>>]) -> (Option<f64>, usize) {
    let (x, y): (Vec<f64>, Vec<f64>) = (a.iter().flatten())
        .zip(b.iter().flatten())
        .filter_map(|(x, y)| Some(((*x)?, (*y)?)))
        .unzip();
    (stats::spearman(&x, &y), x.len())
}
