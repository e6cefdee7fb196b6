//! `wgrec bench --scaling DIR`: kernel-level scaling curves, each point timed as the suite times
//! (median of `repeats` submissions after a warm-up), written as `scaling.json` and one PNG per sweep.
//!
//! - **rows**: one table of R × 64 (row-wise Adagrad state beside each row), batch 2048, bags of 8,
//!   Zipf 1.05; R grows past the device's storage-binding limit, where the table is split into
//!   chunks bound side by side (at most 4 chunks, and at most 1.5 GiB of table in all, so the sweep
//!   stays within a laptop's memory). Gather and fused Adagrad update GB/s beside the copy ceiling.
//! - **batch**: 4 tables × 100,000 × 64, bags of 8, Zipf 1.05; batch 256 … 16384. Same figures.
//! - **tim**: TIM forward and backward milliseconds, batch 256, D 64, sequence length 10 … 1000
//!   (lengths whose per-lookup gradient rows exceed one storage binding are left out).
//!
//! Each point records the bytes wgrec allocated to build it ([`Gpu::allocated_bytes`] before and
//! after), the kernel's own storage, inputs and scratch. `quick` shrinks every sweep (a smoke run).

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::plot::{line_chart, Series};
use super::Runner;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, PassTimer};
use crate::kernels::copy::CopyVec4;
use crate::kernels::embedding::{Element, SparseStep, SparseUpdatePlan, TbeUpdate, MAX_CHUNKS};
use crate::rng::Rng;

/// Largest embedding storage the rows sweep allocates.
pub const MAX_TABLE_BYTES: u64 = 3 << 29;

/// One measured point of a curve.
#[derive(Debug, Clone, Serialize)]
pub struct ScalingPoint {
    /// The swept quantity (rows, batch, sequence length).
    pub x: f64,
    /// Median milliseconds per run.
    pub median_ms: f64,
    /// Effective bandwidth (ideal traffic / time) for the embedding kernels; `None` for TIM.
    pub gb_per_s: Option<f64>,
    /// `gb_per_s` as a share of the run's copy ceiling.
    pub of_copy: Option<f64>,
    /// Bytes wgrec allocated to build this point (storage, inputs, scratch; see
    /// [`Gpu::allocated_bytes`]).
    pub allocated_bytes: u64,
}

/// One kernel's curve along one sweep.
#[derive(Debug, Clone, Serialize)]
pub struct ScalingCurve {
    /// Sweep name: "rows", "batch" or "tim".
    pub sweep: &'static str,
    /// Kernel name ("embedding_gather", "embedding_update_adagrad", "tim_forward", "tim_backward").
    pub kernel: &'static str,
    /// What x is.
    pub x_label: &'static str,
    /// The shape held fixed, in words.
    pub fixed: String,
    /// Points in sweep order.
    pub points: Vec<ScalingPoint>,
}

/// A finished scaling run.
#[derive(Debug, Clone, Serialize)]
pub struct ScalingReport {
    /// `Gpu::describe()` of the device.
    pub adapter: String,
    /// "gpu timestamps" or "wall clock".
    pub clock: &'static str,
    /// The device's largest storage binding, bytes: tables larger than this are chunked.
    pub max_binding_bytes: u64,
    /// The vec4 copy ceiling of this run, GB/s.
    pub copy_gb_per_s: f64,
    /// Every curve.
    pub curves: Vec<ScalingCurve>,
}

/// Bytes of one row of `d` weights stored as `element` with its row-wise Adagrad state (one unit:
/// a vec4 in f32, 8 bytes in f16).
fn row_bytes(d: u32, element: Element) -> u64 {
    (d as u64 + 4) * element.bytes()
}

/// Table sizes of the rows sweep for a device binding `limit` bytes: a fixed list (doubled for
/// f16), cut where the storage (rows of `d` weights and their state) would pass
/// [`MAX_TABLE_BYTES`] or 15/16 of [`MAX_CHUNKS`] bindings.
fn rows_sweep(limit: u64, d: u32, element: Element, quick: bool) -> Vec<u32> {
    let cap = MAX_TABLE_BYTES.min(MAX_CHUNKS as u64 * limit * 15 / 16);
    let candidates: &[u32] = if quick {
        &[10_000, 100_000, 600_000]
    } else {
        &[
            10_000, 30_000, 100_000, 300_000, 1_000_000, 1_500_000, 3_000_000, 5_000_000,
        ]
    };
    // f16 rows are half the bytes: twice the rows gives the f32 sweep's table sizes, so both
    // curves cross the binding limit at the same points.
    let scale = 4 / element.bytes() as u32;
    candidates
        .iter()
        .map(|&r| r * scale)
        .filter(|&r| r as u64 * row_bytes(d, element) <= cap)
        .collect()
}

/// Runs the three sweeps.
pub fn run(gpu: &Gpu, quick: bool, repeats: u32) -> Result<ScalingReport> {
    let runner = Runner {
        gpu,
        timer: PassTimer::new(gpu),
        repeats: repeats.max(1),
    };
    let limit = gpu.limits().max_storage_buffer_binding_size;
    let copy_bytes: u64 = (if quick { 16u64 << 20 } else { 64 << 20 }).min(limit);
    let copy = CopyVec4::new(gpu, copy_bytes)?;
    let s = runner.time(&|p| copy.record(gpu, p))?;
    let copy_gbs = copy.traffic_bytes() as f64 / s / 1e9;
    let mut curves = rows_curves(&runner, quick, copy_gbs)?;
    curves.extend(batch_curves(&runner, quick, copy_gbs)?);
    curves.extend(tim_curves(&runner, quick)?);
    Ok(ScalingReport {
        adapter: gpu.describe(),
        clock: if runner.timer.is_some() {
            "gpu timestamps"
        } else {
            "wall clock"
        },
        max_binding_bytes: limit,
        copy_gb_per_s: copy_gbs,
        curves,
    })
}

/// Embedding width of the rows and batch sweeps.
const D: u32 = 64;

/// Gather and update against table rows: past the binding limit, within [`MAX_CHUNKS`] chunks
/// and [`MAX_TABLE_BYTES`].
fn rows_curves(runner: &Runner, quick: bool, copy_gbs: f64) -> Result<Vec<ScalingCurve>> {
    let limit = runner.gpu.limits().max_storage_buffer_binding_size;
    let (batch, bag) = if quick { (512, 4) } else { (2048, 8) };
    let mut curves = Vec::new();
    // f16 rows are half as large: its curve reaches further within the same chunks.
    for (element, names) in [
        (
            Element::F32,
            ["embedding_gather", "embedding_update_adagrad"],
        ),
        (
            Element::F16,
            ["embedding_gather_f16", "embedding_update_adagrad_f16"],
        ),
    ] {
        let mut gather = Vec::new();
        let mut update = Vec::new();
        for r in rows_sweep(limit, D, element, quick) {
            let (g, u) = embedding_point(runner, (1, element), r, batch, bag, copy_gbs)?;
            gather.push(g);
            update.push(u);
        }
        let fixed = format!(
            "1 table × R × {D} {} (+ Adagrad state), batch {batch}, bags of {bag}, Zipf 1.05; binding limit {} MiB",
            element.name(),
            limit >> 20
        );
        curves.push(curve("rows", names[0], "table rows", &fixed, gather));
        curves.push(curve("rows", names[1], "table rows", &fixed, update));
    }
    Ok(curves)
}

/// Gather and update against the batch size.
fn batch_curves(runner: &Runner, quick: bool, copy_gbs: f64) -> Result<Vec<ScalingCurve>> {
    let bag = if quick { 4 } else { 8 };
    let (t, r) = if quick { (2, 10_000) } else { (4, 100_000) };
    let batches: &[u32] = if quick {
        &[64, 256, 1024]
    } else {
        &[256, 1024, 4096, 16384]
    };
    let mut gather = Vec::new();
    let mut update = Vec::new();
    for &b in batches {
        let (g, u) = embedding_point(runner, (t, Element::F32), r, b, bag, copy_gbs)?;
        gather.push(g);
        update.push(u);
    }
    let fixed = format!("{t} tables × {r} × {D}, bags of {bag}, Zipf 1.05");
    Ok(vec![
        curve("batch", "embedding_gather", "batch", &fixed, gather),
        curve("batch", "embedding_update_adagrad", "batch", &fixed, update),
    ])
}

/// TIM forward and backward against the sequence length.
fn tim_curves(runner: &Runner, quick: bool) -> Result<Vec<ScalingCurve>> {
    let limit = runner.gpu.limits().max_storage_buffer_binding_size;
    let (b, d) = if quick { (32, 32) } else { (256, 64) };
    let lengths: &[u32] = if quick {
        &[10, 50, 200]
    } else {
        &[10, 20, 50, 100, 200, 500, 1000]
    };
    // The backward writes one gradient row per lookup (3 tables × b × (len + 1)) into one binding:
    // lengths past the device's limit are left out (lavapipe: L ≤ 681 at b 256, D 64).
    let fits = |len: u32| 3 * b as u64 * (len as u64 + 1) * d as u64 * 4 <= limit;
    let mut forward = Vec::new();
    let mut backward = Vec::new();
    for &len in lengths.iter().filter(|&&len| fits(len)) {
        let (f, bw) = tim_point(runner, b, len, d)?;
        forward.push(f);
        backward.push(bw);
    }
    let fixed = format!(
        "batch {b}, D {d}, one set (item + category + time rows); lengths whose gradient rows exceed the binding limit left out"
    );
    Ok(vec![
        curve("tim", "tim_forward", "sequence length", &fixed, forward),
        curve("tim", "tim_backward", "sequence length", &fixed, backward),
    ])
}

fn curve(
    sweep: &'static str,
    kernel: &'static str,
    x_label: &'static str,
    fixed: &str,
    points: Vec<ScalingPoint>,
) -> ScalingCurve {
    ScalingCurve {
        sweep,
        kernel,
        x_label,
        fixed: fixed.into(),
        points,
    }
}

/// Gather and update of `t` tables of `rows` × [`D`]: (gather point, update point) at x = rows
/// for one table, x = batch otherwise.
fn embedding_point(
    runner: &Runner,
    (t, element): (u32, Element),
    rows: u32,
    batch: u32,
    bag: u32,
    copy_gbs: f64,
) -> Result<(ScalingPoint, ScalingPoint)> {
    let (gpu, d) = (runner.gpu, D);
    let before = gpu.allocated_bytes();
    // Zeroed weights: a gather's speed does not depend on the values, and skipping the upload keeps
    // host memory at one copy of nothing.
    let (storage, fs, forward, bags) =
        super::gather_setup(gpu, t, rows, d, batch, (bag, element), None)?;
    let lookups = batch as u64 * t as u64 * bag as u64;
    let mut rng = Rng::new(6);
    let grad: Vec<f32> = (0..fs.out_len).map(|_| rng.uniform(-1.0, 1.0)).collect();
    let grad = gpu.storage_from("scaling grad", &grad);
    let mut update = TbeUpdate::new(gpu, &storage, &forward, &grad, lookups)?;
    let plan = SparseUpdatePlan::build(&fs, &bags);
    let step = SparseStep {
        lr: 0.01,
        weight_decay: 0.0,
        step: 1,
    };
    update.upload(gpu, &forward, &plan, step)?;
    let allocated = gpu.allocated_bytes() - before;
    let x = if t == 1 { rows } else { batch } as f64;
    let bt = batch as u64 * t as u64;
    let point = |seconds: f64, bytes: u64| {
        let gbs = bytes as f64 / seconds / 1e9;
        ScalingPoint {
            x,
            median_ms: seconds * 1e3,
            gb_per_s: Some(gbs),
            of_copy: Some(gbs / copy_gbs),
            allocated_bytes: allocated,
        }
    };
    // FBGEMM's effective bytes: rows as stored (`element`), outputs and gradients in f32.
    let (row, out) = (d as u64 * element.bytes(), d as u64 * 4);
    let s = runner.time(&|p| forward.record(gpu, p))?;
    let g = point(s, bt * bag as u64 * row + bt * out);
    let s = runner.time(&|p| update.record(gpu, p))?;
    let u = point(s, bt * out + 2 * bt * bag as u64 * row);
    Ok((g, u))
}

/// TIM forward and backward at batch `b`, length `len`, width `d`.
fn tim_point(runner: &Runner, b: u32, len: u32, d: u32) -> Result<(ScalingPoint, ScalingPoint)> {
    let gpu = runner.gpu;
    let before = gpu.allocated_bytes();
    // Zeroed tables: TIM's speed does not depend on the values.
    let (_storage, tim) = super::tim_setup(gpu, b, len, d, None)?;
    let allocated = gpu.allocated_bytes() - before;
    let point = |seconds: f64| ScalingPoint {
        x: len as f64,
        median_ms: seconds * 1e3,
        gb_per_s: None,
        of_copy: None,
        allocated_bytes: allocated,
    };
    let f = point(runner.time(&|p| tim.record_forward(gpu, p))?);
    let bw = point(runner.time(&|p| tim.record_backward(gpu, p))?);
    Ok((f, bw))
}

/// Writes `scaling.json` and the charts (`scaling_rows.png`, `scaling_batch.png`,
/// `scaling_tim.png`) under `dir` (created if missing); returns the paths written.
pub fn write(report: &ScalingReport, dir: &Path) -> Result<Vec<PathBuf>> {
    let io = |file: &Path, e: std::io::Error| Error::Output {
        file: file.to_path_buf(),
        message: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let json = dir.join("scaling.json");
    let text = serde_json::to_string_pretty(report).expect("plain data serialises");
    std::fs::write(&json, text).map_err(|e| io(&json, e))?;
    let mut written = vec![json];
    let adapter = report.adapter.split(" (").next().unwrap_or("");
    for (sweep, x_label, what) in [
        ("rows", "table rows (log)", "embedding GB/s vs table rows"),
        ("batch", "batch (log)", "embedding GB/s vs batch"),
        ("tim", "sequence length (log)", "TIM ms vs sequence length"),
    ] {
        let curves: Vec<&ScalingCurve> =
            report.curves.iter().filter(|c| c.sweep == sweep).collect();
        let Some(first) = curves.first() else {
            continue;
        };
        let bandwidth = first.points.iter().all(|p| p.gb_per_s.is_some());
        let mut series: Vec<Series> = curves
            .iter()
            .map(|c| {
                Series::new(
                    c.kernel,
                    c.points
                        .iter()
                        .map(|p| (p.x, p.gb_per_s.unwrap_or(p.median_ms)))
                        .collect(),
                )
            })
            .collect();
        if bandwidth {
            let xs: Vec<f64> = first.points.iter().map(|p| p.x).collect();
            series.push(Series::new(
                "copy ceiling",
                xs.iter().map(|&x| (x, report.copy_gb_per_s)).collect(),
            ));
        }
        let path = dir.join(format!("scaling_{sweep}.png"));
        line_chart(
            &path,
            &format!("{what} — {adapter}"),
            x_label,
            if bandwidth { "GB/s" } else { "ms" },
            &series,
            true,
        )?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_sweep_passes_the_binding_limit_within_the_caps() {
        // lavapipe: 128 MiB bindings, 4 chunks → 480 MiB cap; 272-byte rows.
        let lavapipe = rows_sweep(128 << 20, 64, Element::F32, false);
        assert_eq!(
            lavapipe,
            [10_000, 30_000, 100_000, 300_000, 1_000_000, 1_500_000]
        );
        assert!(*lavapipe.last().unwrap() as u64 * 272 > 128 << 20);
        // The quick sweep crosses it too.
        assert!(
            *rows_sweep(128 << 20, 64, Element::F32, true)
                .last()
                .unwrap() as u64
                * 272
                > 128 << 20
        );
        // A 2 GiB binding: the 1.5 GiB memory cap rules (5M rows = 1.36 GB fits).
        assert_eq!(
            rows_sweep(2 << 30, 64, Element::F32, false).last(),
            Some(&5_000_000)
        );
        // A tiny binding keeps only what 4 chunks hold.
        assert_eq!(rows_sweep(1 << 20, 64, Element::F32, false), [10_000]);
        // f16 rows (64 · 2 + 8 bytes with the Adagrad unit = 136) at twice the rows: up to 3M
        // on lavapipe, and the quick sweep crosses the binding too.
        let f16 = rows_sweep(128 << 20, 64, Element::F16, false);
        assert_eq!(f16.first(), Some(&20_000));
        assert_eq!(f16.last(), Some(&3_000_000));
        assert!(
            *rows_sweep(128 << 20, 64, Element::F16, true)
                .last()
                .unwrap() as u64
                * 136
                > 128 << 20
        );
    }
}
