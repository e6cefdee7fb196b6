//! `wgrec analyze`: the paper's diagnoses measured on a trained run (METHODS.md §1.1, §2.1, §3).
//!
//! A [`Subject`] is a run folder loaded for serving (its model file, schema, encoder and serving
//! checkpoint, on the GPU through a [`Predictor`]) together with the checkpoint's tensors and the
//! data folder it was trained on. Each section reads it and returns a serialisable result that also
//! renders its part of `report.md` and writes its figures (PNG and SVG) into the report folder:
//!
//! - [`collapse`]: per field and per table, the singular spectrum of the embedding rows the data
//!   uses and the information abundance IA = Σσ / max σ (dimensional collapse, §2.1);
//! - [`tim`]: the label-wise mutual information of (semantic relation to the target × temporal
//!   bucket) from the data beside the learned attention over the same cells (§1.1);
//! - [`entangle`]: with several tasks, each task's gate usage over the experts and the per-task AUC
//!   of comparable-sample splits (§3);
//! - [`gradients`]: the mean gradient magnitude of the BCE and of the model's loss on negatives and
//!   positives (the ranking-loss paper's measurement, §4.1).
//!
//! [`analyze`] runs them in that order and [`Report::write`] writes `report.md` and `report.json`.

pub mod collapse;
pub mod entangle;
pub mod gradients;
pub mod plot;
mod report;
mod subject;
pub mod tim;

use std::path::Path;

use serde::Serialize;

use crate::error::Result;
use crate::gpu::Gpu;

pub use subject::{Batches, Subject};

/// Every number `wgrec analyze` reports; serialises to the JSON object the command prints.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The run folder and checkpoint analysed, the data folder, the model's shape.
    pub subject: report::SubjectInfo,
    /// Dimensional collapse: spectra and information abundance.
    pub collapse: collapse::Collapse,
    /// TIM's semantic-temporal correlation (absent without a sequence feature).
    pub tim: Option<tim::TimCorrelation>,
    /// Task entanglement (absent with one task).
    pub entanglement: Option<entangle::Entanglement>,
    /// Gradient magnitudes of the losses on negatives and positives.
    pub gradients: gradients::Gradients,
}

/// Runs every section on `subject`, writing the figures into `out` (which must exist).
pub fn analyze(gpu: &Gpu, subject: &mut Subject, out: &Path) -> Result<Report> {
    let info = report::SubjectInfo::of(subject);
    let collapse = collapse::analyze(gpu, subject, out)?;
    let tim = tim::analyze(gpu, subject, out)?;
    let entanglement = entangle::analyze(gpu, subject, out)?;
    let gradients = gradients::analyze(gpu, subject, out)?;
    Ok(Report {
        subject: info,
        collapse,
        tim,
        entanglement,
        gradients,
    })
}
