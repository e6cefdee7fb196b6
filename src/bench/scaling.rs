//! `wgrec bench --scaling DIR`: kernel-level scaling curves, each point timed as the suite times
//! (median of `repeats` submissions after a warm-up), written as `scaling.json` and one PNG per sweep.
//!
//! - **rows**: one table of R × 64 (row-wise Adagrad state beside each row) in f32 and in f16 (at
//!   twice the rows), batch 2048, bags of 8, Zipf 1.05; R grows past the device's storage-binding
//!   limit, where the table is cut into chunks bound side by side, and past one storage group
//!   ([`MAX_CHUNKS`] chunks), where it is split by rows over several storages gathered into one
//!   output ([`super::rows`]: at most [`MAX_GROUPS`](super::rows::MAX_GROUPS) groups and 1.5 GiB
//!   of table, so the sweep stays within a laptop's memory; on lavapipe the two largest points of
//!   each curve use 2 and 3 groups, every point records its `groups`). Gather and fused Adagrad
//!   update GB/s beside the copy ceiling.
//! - **batch**: 4 tables × 100,000 × 64, bags of 8, Zipf 1.05; batch 256 … 16384. Same figures.
//! - **tim**: TIM forward and backward milliseconds, batch 256, D 64, sequence length 10 … 1000
//!   (lengths whose per-lookup gradient rows exceed one storage binding are left out).
//!
//! Each point records the bytes wgrec allocated to build it ([`Gpu::allocated_bytes`] before and
//! after), the kernel's own storage, inputs and scratch. `quick` shrinks every sweep (a smoke run).

mod charts;

use serde::Serialize;

pub use charts::write;

use super::rows::{rows_point, rows_sweep, RowsShape};
use super::Runner;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, PassTimer};
use crate::kernels::copy::CopyVec4;
use crate::kernels::embedding::{Element, SparseStep, SparseUpdatePlan, TbeUpdate, MAX_CHUNKS};
use crate::rng::Rng;

/// Largest table (rows with their state, over every storage group) the rows sweep allocates:
/// 1.5 GiB keeps a point well within a 24 GiB machine (lavapipe's storage is host memory).
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
    /// Storage groups the point's tables span (1 unless the rows sweep splits its table: see
    /// [`super::rows`]).
    pub groups: u32,
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

/// The kernel sweeps, by name (`wgrec bench --scaling DIR --sweep NAME` runs one).
pub const SWEEPS: [&str; 3] = ["rows", "batch", "tim"];

/// Runs the three sweeps, or only `only` (one of [`SWEEPS`]).
pub fn run(gpu: &Gpu, quick: bool, repeats: u32, only: Option<&str>) -> Result<ScalingReport> {
    if let Some(name) = only.filter(|n| !SWEEPS.contains(n)) {
        return Err(Error::Config {
            file: "wgrec bench --scaling".into(),
            key: "--sweep".into(),
            message: format!(
                "no scaling sweep {name:?}; the sweeps are {}",
                SWEEPS.join(", ")
            ),
        });
    }
    let wanted = |name: &str| only.is_none_or(|o| o == name);
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
    let mut curves = Vec::new();
    if wanted("rows") {
        curves.extend(rows_curves(&runner, quick, copy_gbs)?);
    }
    if wanted("batch") {
        curves.extend(batch_curves(&runner, quick, copy_gbs)?);
    }
    if wanted("tim") {
        curves.extend(tim_curves(&runner, quick)?);
    }
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

/// Gather and update against table rows: past the binding limit and past one storage group (the
/// table split over groups, [`super::rows`]), within [`MAX_GROUPS`](super::rows::MAX_GROUPS)
/// groups and [`MAX_TABLE_BYTES`].
fn rows_curves(runner: &Runner, quick: bool, copy_gbs: f64) -> Result<Vec<ScalingCurve>> {
    let gpu = runner.gpu;
    let limit = gpu.limits().max_storage_buffer_binding_size;
    let chunk = limit.min(gpu.limits().max_buffer_size);
    let (batch, bag) = if quick { (512, 4) } else { (2048, 8) };
    let mut curves = Vec::new();
    // f16 rows are half as large: its curve reaches further within the same groups.
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
        for rows in rows_sweep(chunk, D, element, quick) {
            let shape = RowsShape {
                rows,
                width: D,
                batch,
                bag,
                element,
            };
            let (g, u) = rows_point(runner, shape, copy_gbs)?;
            gather.push(g);
            update.push(u);
        }
        let fixed = format!(
            "1 table × R × {D} {} (+ Adagrad state), batch {batch}, bags of {bag}, Zipf 1.05; binding limit {} MiB; split by rows over storage groups of {MAX_CHUNKS} chunks past one",
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
            groups: 1,
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
        groups: 1,
    };
    let f = point(runner.time(&|p| tim.record_forward(gpu, p))?);
    let bw = point(runner.time(&|p| tim.record_backward(gpu, p))?);
    Ok((f, bw))
}
