//! The whole-model sweeps of `wgrec bench --scaling`: one knob at a time from the standard
//! shape, measured, written as `training.json` and charts.

use std::path::{Path, PathBuf};

use super::{measure, TrainShape};
use crate::bench::plot::{line_chart, Series};
use crate::error::{Error, Result};
use crate::gpu::Gpu;

/// One training sweep: a knob and its measured points.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TrainSweep {
    /// `batch`, `tables`, `seq_len` or `rows`.
    pub sweep: &'static str,
    /// The knob's values with their measurements.
    pub points: Vec<TrainSweepPoint>,
    /// Values left out, with why (tables whose storage passes the 4 chunks a kernel binds).
    pub skipped: Vec<String>,
}

/// A point of a [`TrainSweep`].
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct TrainSweepPoint {
    /// The knob's value.
    pub x: u64,
    /// Training samples per second.
    pub train_samples_per_sec: f64,
    /// Inference samples per second.
    pub infer_samples_per_sec: f64,
    /// GPU buffer bytes of the model.
    pub model_bytes: u64,
    /// Dispatches per training step.
    pub dispatches: u64,
}

/// Training throughput and model memory as the batch size, the number of tables, the sequence
/// length and the table rows grow (one knob at a time from [`TrainShape::standard`]). The rows
/// sweep goes past one storage binding (chunked tables) and past one storage group (several
/// groups). `quick`: fewer, smaller points.
pub fn sweep(gpu: &Gpu, quick: bool) -> Result<Vec<TrainSweep>> {
    let base = if quick {
        TrainShape::quick()
    } else {
        TrainShape::standard()
    };
    let (windows, steps) = if quick { (1, 2) } else { (3, 5) };
    knobs(quick)
        .into_iter()
        .map(|(name, values)| sweep_knob(gpu, base, name, values, windows, steps))
        .collect()
}

/// Each knob with its values.
fn knobs(quick: bool) -> Vec<(&'static str, Vec<u32>)> {
    if quick {
        vec![
            ("batch", vec![64, 256]),
            ("tables", vec![1, 2]),
            ("seq_len", vec![5, 20]),
            ("rows", vec![1_000, 10_000]),
        ]
    } else {
        vec![
            ("batch", vec![128, 256, 512, 1024, 2048, 4096]),
            ("tables", vec![1, 2, 3, 4, 6, 8]),
            ("seq_len", vec![10, 25, 50, 100, 200]),
            // 100,000 rows of the standard model (1.5 KB a row over its 20 tables with their
            // Adagrad state) already pass a 128 MiB binding; 300,000 fill 3.5 of the 4 chunks;
            // 1,000,000 (1.5 GB) need three storage groups (issue 19).
            ("rows", vec![10_000, 30_000, 100_000, 300_000, 1_000_000]),
        ]
    }
}

/// Measures `base` with knob `name` set to each of `values`; a value whose tables cannot be laid
/// out is left out with why.
fn sweep_knob(
    gpu: &Gpu,
    base: TrainShape,
    name: &'static str,
    values: Vec<u32>,
    windows: usize,
    steps: usize,
) -> Result<TrainSweep> {
    let mut points = Vec::new();
    let mut skipped = Vec::new();
    for v in values {
        let mut shape = base;
        match name {
            "batch" => shape.batch = v,
            "tables" => shape.tables = v,
            "seq_len" => shape.seq_len = v,
            _ => shape.rows = v,
        }
        let p = match measure(gpu, &shape, 4, windows, steps) {
            Ok(p) => p,
            // A point the device cannot hold is skipped with the reason: the memory check refuses
            // it before anything is allocated (TooLarge), the storage layout after (Layout).
            Err(e @ (Error::TooLarge { .. } | Error::Layout(_))) => {
                skipped.push(format!("{name} = {v}: {e}"));
                continue;
            }
            Err(e) => return Err(e),
        };
        points.push(TrainSweepPoint {
            x: v as u64,
            train_samples_per_sec: p.train_samples_per_sec,
            infer_samples_per_sec: p.infer_samples_per_sec,
            model_bytes: p.model_bytes,
            dispatches: p.dispatches,
        });
    }
    Ok(TrainSweep {
        sweep: name,
        points,
        skipped,
    })
}

/// Writes `training.json` and, per sweep, `training_<sweep>.png` (samples/s, train and inference)
/// and `training_<sweep>_memory.png` (model MiB) under `dir`.
pub fn write_sweep(sweeps: &[TrainSweep], dir: &Path) -> Result<Vec<PathBuf>> {
    let io = |file: &Path, e: std::io::Error| Error::Output {
        file: file.to_path_buf(),
        message: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let json = dir.join("training.json");
    let text = serde_json::to_string_pretty(sweeps).expect("plain data serialises");
    std::fs::write(&json, text).map_err(|e| io(&json, e))?;
    let mut written = vec![json];
    for s in sweeps {
        let label = match s.sweep {
            "batch" => "batch size",
            "tables" => "embedding tables M",
            "seq_len" => "behaviour sequence length L",
            _ => "rows per table",
        };
        let log_x = matches!(s.sweep, "batch" | "rows" | "seq_len");
        let xy = |f: &dyn Fn(&TrainSweepPoint) -> f64| -> Vec<(f64, f64)> {
            s.points.iter().map(|p| (p.x as f64, f(p))).collect()
        };
        let path = dir.join(format!("training_{}.png", s.sweep));
        line_chart(
            &path,
            &format!("whole-model throughput vs {label}"),
            label,
            "samples/s",
            &[
                Series::new("training", xy(&|p| p.train_samples_per_sec)),
                Series::new("inference", xy(&|p| p.infer_samples_per_sec)),
            ],
            log_x,
        )?;
        written.push(path);
        let path = dir.join(format!("training_{}_memory.png", s.sweep));
        line_chart(
            &path,
            &format!("model GPU memory vs {label}"),
            label,
            "MiB",
            &[Series::new(
                "buffers",
                xy(&|p| p.model_bytes as f64 / (1u64 << 20) as f64),
            )],
            log_x,
        )?;
        written.push(path);
    }
    Ok(written)
}
