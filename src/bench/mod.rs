//! `wgrec bench`: the kernel suite a user runs on their own GPU, each kernel beside the device's
//! ceilings measured in the same run — a vec4 copy for bandwidth, independent FMA chains for
//! arithmetic — so a figure reads as "this share of what the card can do".
//!
//! The suite is fixed and small (it must finish in a minute on a laptop GPU and in a few on
//! lavapipe): the copy and FMA ceilings; the batched GEMM on a CTR shape (4096 × 400 × 400); the
//! table-batched embedding gather and its fused backward + row-wise Adagrad update (8 tables of
//! 100,000 × 64, batch 2048, bags of 8, Zipf 1.05); TIM (B 256, L 100, D 64); and two interaction
//! experts (DCNv2, GwPFM, FM, IPNN; 16 fields × 10, batch 1024, 4 tables); the three losses (BCE,
//! combined-pair, combined-list; 4096 rows, one task). `quick` shrinks every shape about
//! 16-fold. Each kernel runs once to warm up, then `repeats` times, each run its own submit and wait;
//! the figure is the median, timed by GPU timestamps where the adapter has them (wall clock else).
//! The criterion benches under `benches/` are the detailed sweeps; this is the one-command summary.
//!
//! The library measures; the CLI prints.

pub mod plot;
pub mod scaling;
pub mod train;

use std::time::Instant;

use serde::Serialize;

use crate::error::Result;
use crate::gpu::{storage_usage, Gpu, PassTimer};
use crate::kernels::copy::CopyVec4;
use crate::kernels::dense::expert::{Expert, ExpertKind, ExpertSpec};
use crate::kernels::dense::fma::FmaCeiling;
use crate::kernels::dense::gemm::{Gemm, GemmSpec};
use crate::kernels::dense::pairwise::PairwiseKind;
use crate::kernels::embedding::{
    Bags, EmbeddingStorage, FeatureSet, Pooling, SparseOptimizer, SparseStep, SparseUpdatePlan,
    TableSpec, TbeForward, TbeUpdate,
};
use crate::kernels::loss::{Loss, LossBuffers, LossKind};
use crate::kernels::tim::{Tim, TimBatch, TimSet, TimSpec};
use crate::rng::{Rng, Zipf};

/// What a figure measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Effective bandwidth (ideal traffic / time), GB/s; compared with the copy ceiling.
    GbPerS,
    /// Arithmetic, GFLOP/s; compared with the FMA ceiling.
    GflopPerS,
}

/// One kernel's figure.
#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    /// Kernel name.
    pub kernel: String,
    /// Its shape, in words.
    pub shape: String,
    /// Median milliseconds per run.
    pub median_ms: f64,
    /// The rate in `unit`.
    pub rate: f64,
    /// GB/s or GFLOP/s.
    pub unit: Unit,
    /// `rate` as a share of the ceiling of its unit measured in this run (1.0 for the ceilings).
    pub of_ceiling: f64,
}

/// Options of a run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Shapes about 16× smaller (a smoke run).
    pub quick: bool,
    /// Timed runs per kernel (the median is reported).
    pub repeats: u32,
    /// Only kernels whose name contains this (the ceilings always run).
    pub filter: Option<String>,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            quick: false,
            repeats: 10,
            filter: None,
        }
    }
}

/// A finished run: the device, the clock used and every figure.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// `Gpu::describe()` of the device.
    pub adapter: String,
    /// "gpu timestamps" or "wall clock".
    pub clock: &'static str,
    /// Figures, ceilings first.
    pub results: Vec<BenchResult>,
}

struct Runner<'a> {
    gpu: &'a Gpu,
    timer: Option<PassTimer>,
    repeats: u32,
}

impl Runner<'_> {
    /// Median seconds of `repeats` runs of `record` (after one warm-up run).
    fn time(&self, record: &dyn Fn(&mut wgpu::ComputePass<'_>)) -> Result<f64> {
        let mut times = Vec::with_capacity(self.repeats as usize);
        for i in 0..=self.repeats {
            let start = Instant::now();
            let mut encoder = self.gpu.device.create_command_encoder(&Default::default());
            {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("wgrec bench"),
                    timestamp_writes: self.timer.as_ref().map(PassTimer::writes),
                });
                record(&mut pass);
            }
            if let Some(t) = &self.timer {
                t.resolve(&mut encoder);
            }
            self.gpu.queue.submit([encoder.finish()]);
            self.gpu.sync()?;
            let seconds = match &self.timer {
                Some(t) => t.elapsed_ns(self.gpu)? * 1e-9,
                None => start.elapsed().as_secs_f64(),
            };
            if i > 0 {
                times.push(seconds);
            }
        }
        times.sort_by(f64::total_cmp);
        Ok(times[times.len() / 2])
    }
}

/// Runs the suite on `gpu`.
pub fn run(gpu: &Gpu, options: &BenchOptions) -> Result<BenchReport> {
    let runner = Runner {
        gpu,
        timer: PassTimer::new(gpu),
        repeats: options.repeats.max(1),
    };
    let wanted = |name: &str| options.filter.as_deref().is_none_or(|f| name.contains(f));
    let q = options.quick;
    let mut results = Vec::new();
    let mut push = |kernel: &str, shape: String, seconds: f64, amount: f64, unit: Unit| {
        results.push(BenchResult {
            kernel: kernel.into(),
            shape,
            median_ms: seconds * 1e3,
            rate: amount / seconds / 1e9,
            unit,
            of_ceiling: f64::NAN,
        });
    };

    // Ceilings.
    let copy_bytes: u64 = if q { 4 << 20 } else { 64 << 20 };
    let copy = CopyVec4::new(
        gpu,
        copy_bytes.min(gpu.limits().max_storage_buffer_binding_size),
    )?;
    let s = runner.time(&|p| copy.record(gpu, p))?;
    push(
        "copy_ceiling",
        format!("{} MiB", copy_bytes >> 20),
        s,
        copy.traffic_bytes() as f64,
        Unit::GbPerS,
    );
    let (invocations, iters) = if q { (4096, 1024) } else { (16384, 4096) };
    let fma = FmaCeiling::new(gpu, invocations, iters)?;
    let s = runner.time(&|p| fma.record(gpu, p))?;
    push(
        "fma_ceiling",
        format!("{invocations} × {iters} vec4 FMA chains"),
        s,
        fma.flops() as f64,
        Unit::GflopPerS,
    );

    let mut rng = Rng::new(5);
    let mut random = |n: u64| -> Vec<f32> { (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect() };

    if wanted("gemm") {
        let (m, n, k) = if q { (512, 128, 128) } else { (4096, 400, 400) };
        let spec = GemmSpec::new(1, m, n, k, false, true);
        let a = gpu.storage_from("bench a", &random(m as u64 * k as u64));
        let b = gpu.storage_from("bench b", &random(n as u64 * k as u64));
        let c = gpu.buffer("bench c", m as u64 * n as u64 * 4, storage_usage());
        let gemm = Gemm::new(gpu, &spec, &a, &b, None, None, &c)?;
        let s = runner.time(&|p| gemm.record(gpu, p))?;
        push(
            "gemm",
            format!("{m} × {n} × {k}, Y = X·Wᵀ"),
            s,
            gemm.flops() as f64,
            Unit::GflopPerS,
        );
    }

    if wanted("embedding") {
        let (t, rows, d, batch, bag) = if q {
            (4u32, 10_000u32, 32u32, 512u32, 4u32)
        } else {
            (8, 100_000, 64, 2048, 8)
        };
        let (storage, fs, forward, bags) =
            gather_setup(gpu, t, rows, d, batch, bag, Some(&mut random))?;
        let lookups = batch as u64 * t as u64 * bag as u64;
        let shape = format!("{t} tables × {rows} × {d}, batch {batch}, bags of {bag}, Zipf 1.05");
        let bt = batch as u64 * t as u64;
        let s = runner.time(&|p| forward.record(gpu, p))?;
        let bytes = (bt * bag as u64 + bt) * d as u64 * 4;
        push(
            "embedding_gather",
            shape.clone(),
            s,
            bytes as f64,
            Unit::GbPerS,
        );
        let grad = gpu.storage_from("bench grad", &random(fs.out_len));
        let mut update = TbeUpdate::new(gpu, &storage, &forward, &grad, lookups)?;
        let plan = SparseUpdatePlan::build(&fs, &bags);
        let step = SparseStep {
            lr: 0.01,
            weight_decay: 0.0,
            step: 1,
        };
        update.upload(gpu, &forward, &plan, step)?;
        let s = runner.time(&|p| update.record(gpu, p))?;
        let bytes = (bt + 2 * bt * bag as u64) * d as u64 * 4;
        push(
            "embedding_update_adagrad",
            shape,
            s,
            bytes as f64,
            Unit::GbPerS,
        );
    }

    if wanted("tim") {
        let (batch, len, d) = if q {
            (32u32, 50u32, 32u32)
        } else {
            (256, 100, 64)
        };
        let (_storage, tim) = tim_setup(gpu, batch, len, d, Some(&mut random))?;
        let lookups = batch as u64 * 3 * (len as u64 + 1);
        let shape = format!("batch {batch}, length {len}, D {d}, item + category + time rows");
        let s = runner.time(&|p| tim.record_forward(gpu, p))?;
        push(
            "tim_forward",
            shape.clone(),
            s,
            ((lookups + batch as u64) * d as u64 * 4) as f64,
            Unit::GbPerS,
        );
        let s = runner.time(&|p| tim.record_backward(gpu, p))?;
        push(
            "tim_backward",
            shape,
            s,
            ((2 * lookups + batch as u64) * d as u64 * 4) as f64,
            Unit::GbPerS,
        );
    }

    let (rows, fields, dim, tables) = if q { (128, 8, 8, 2) } else { (1024, 16, 10, 4) };
    let experts = [
        (
            "expert_dcn",
            ExpertKind::Dcn {
                layers: 2,
                rank: None,
            },
        ),
        (
            "expert_gwpfm",
            ExpertKind::Pairwise(PairwiseKind::GwPfm {
                blocks: 4,
                partition: (0..fields).map(|f| f % 4).collect(),
            }),
        ),
        ("expert_fm", ExpertKind::Pairwise(PairwiseKind::Fm)),
        ("expert_ipnn", ExpertKind::Pairwise(PairwiseKind::Ipnn)),
    ];
    for (name, kind) in experts {
        if !wanted(name) {
            continue;
        }
        let spec = ExpertSpec {
            kind,
            tables,
            rows_cap: rows,
            fields,
            dim,
            relu: true,
        };
        let n = tables as u64 * rows as u64 * spec.in_cols() as u64;
        let x = gpu.storage_from("bench expert x", &random(n));
        let dx = gpu.buffer("bench expert dx", n * 4, storage_usage());
        let expert = Expert::new(gpu, &spec, &x, &dx)?;
        expert.init(gpu, &mut Rng::new(8));
        let out = tables as u64 * rows as u64 * spec.out_cols() as u64;
        gpu.queue
            .write_buffer(expert.grad_output(), 0, bytemuck::cast_slice(&random(out)));
        let s = runner.time(&|p| {
            expert.record_forward(gpu, p);
            expert.record_backward(gpu, p);
        })?;
        // Useful FLOPs: the cross network's GEMMs (forward + backward = 3 × forward); the pair
        // products of GwPFM and IPNN (2 FLOPs per pair and element forward, 4 backward); FM's
        // sum-square form (4 per field and element forward, 8 backward).
        let flops = match &spec.kind {
            ExpertKind::Dcn { layers, .. } => {
                let d = spec.in_cols() as f64;
                3.0 * 2.0 * (*layers as f64) * (tables * rows) as f64 * d * d
            }
            ExpertKind::Pairwise(PairwiseKind::Fm) => {
                12.0 * (fields * dim) as f64 * (tables * rows) as f64
            }
            _ => {
                let pairs = (fields * (fields - 1) / 2) as f64;
                6.0 * pairs * dim as f64 * (tables * rows) as f64
            }
        };
        push(
            name,
            format!("{tables} tables, batch {rows}, {fields} fields × {dim}, forward + backward"),
            s,
            flops,
            Unit::GflopPerS,
        );
    }

    let n = if q { 1024u32 } else { 4096 };
    for (name, kind) in [
        ("loss_bce", LossKind::Bce),
        ("loss_combined_pair", LossKind::CombinedPair { alpha: 0.6 }),
        ("loss_combined_list", LossKind::CombinedList { alpha: 0.9 }),
    ] {
        if !wanted(name) {
            continue;
        }
        let logits: Vec<f32> = random(n as u64).iter().map(|z| 3.0 * z).collect();
        let mut rng = Rng::new(9);
        let labels: Vec<f32> = (0..n)
            .map(|_| f32::from(rng.uniform(0.0, 1.0) < 0.25))
            .collect();
        let z = gpu.storage_from("bench loss z", &logits);
        let y = gpu.storage_from("bench loss y", &labels);
        let loss_out = gpu.buffer("bench loss", 4, storage_usage());
        let dz = gpu.buffer("bench loss dz", n as u64 * 4, storage_usage());
        let buffers = LossBuffers {
            logits: &z,
            labels: &y,
            weights: None,
            loss: &loss_out,
            grad_logits: &dz,
        };
        let loss = Loss::new(gpu, &[kind], n, &buffers)?;
        let s = runner.time(&|p| loss.record(gpu, p))?;
        // Bytes: logits and labels read, d(logits) written; the pair loss's O(n²) walk re-reads
        // the batch from cache and is not counted.
        push(
            name,
            format!("{n} rows, 1 task, loss + d(logits)"),
            s,
            (3 * n as u64 * 4) as f64,
            Unit::GbPerS,
        );
    }

    let ceiling = |unit: Unit, results: &[BenchResult]| {
        let name = match unit {
            Unit::GbPerS => "copy_ceiling",
            Unit::GflopPerS => "fma_ceiling",
        };
        results
            .iter()
            .find(|r| r.kernel == name)
            .map_or(f64::NAN, |r| r.rate)
    };
    let shares: Vec<f64> = results
        .iter()
        .map(|r| r.rate / ceiling(r.unit, &results))
        .collect();
    for (r, share) in results.iter_mut().zip(shares) {
        r.of_ceiling = share;
    }
    Ok(BenchReport {
        adapter: gpu.describe(),
        clock: if runner.timer.is_some() {
            "gpu timestamps"
        } else {
            "wall clock"
        },
        results,
    })
}

/// The TIM benches' setup: item (100,000 rows), category (1,000) and temporal (64) tables of width
/// `d` (`weights` fills them; none: zeroed), one table set, `batch` sequences of `len` Zipf-
/// distributed items with uniform categories and position buckets (most recent 1), uploaded, and a
/// random dL/du.
pub(crate) fn tim_setup(
    gpu: &Gpu,
    batch: u32,
    len: u32,
    d: u32,
    weights: Option<&mut dyn FnMut(u64) -> Vec<f32>>,
) -> Result<(EmbeddingStorage, Tim)> {
    let (items, cats, buckets) = (100_000u32, 1000u32, 64u32);
    let tables: Vec<TableSpec> = [items, cats, buckets]
        .iter()
        .map(|&rows| TableSpec { rows, width: d })
        .collect();
    let storage = EmbeddingStorage::new(
        gpu,
        &tables,
        SparseOptimizer::RowwiseAdagrad { eps: 1e-8 },
        None,
    )?;
    if let Some(fill) = weights {
        for (table, spec) in tables.iter().enumerate() {
            storage.write_weights(gpu, table, &fill(spec.rows as u64 * d as u64))?;
        }
    }
    let spec = TimSpec {
        sets: vec![TimSet {
            semantic: vec![0, 1],
            temporal: 2,
        }],
        max_batch: batch,
        max_len: len,
    };
    let mut rng = Rng::new(7);
    let n = batch as u64 * d as u64;
    let u = gpu.buffer("bench tim u", n * 4, storage_usage());
    let du: Vec<f32> = (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect();
    let grad_u = gpu.storage_from("bench tim du", &du);
    let mut tim = Tim::new(gpu, &storage, spec, &u, &grad_u)?;
    let zipf = Zipf::new(items as u64, 1.05);
    let mut ids = |count: u32| -> Vec<u32> {
        (0..count)
            .flat_map(|_| {
                [
                    ((zipf.sample(&mut rng) * 2_654_435_761) % items as u64) as u32,
                    rng.below(cats as u64) as u32,
                ]
            })
            .collect()
    };
    let total = batch * len;
    let tim_batch = TimBatch {
        lengths: vec![len; batch as usize],
        target: ids(batch),
        behaviours: ids(total),
        buckets: (0..total)
            .map(|i| (len - i % len).min(buckets - 1))
            .collect(),
    };
    tim.upload(gpu, &storage, &tim_batch)?;
    Ok((storage, tim))
}

/// The embedding benches' setup: `t` tables of `rows × d` (row-wise Adagrad state), one summed
/// feature per table, Zipf(1.05) bags of `bag` ids scattered over the rows, uploaded. `weights`
/// fills the tables (none: zeroed — a gather's speed does not depend on the values).
#[allow(clippy::type_complexity)]
pub(crate) fn gather_setup(
    gpu: &Gpu,
    t: u32,
    rows: u32,
    d: u32,
    batch: u32,
    bag: u32,
    weights: Option<&mut dyn FnMut(u64) -> Vec<f32>>,
) -> Result<(EmbeddingStorage, FeatureSet, TbeForward, Bags)> {
    let tables = vec![TableSpec { rows, width: d }; t as usize];
    let storage = EmbeddingStorage::new(
        gpu,
        &tables,
        SparseOptimizer::RowwiseAdagrad { eps: 1e-8 },
        None,
    )?;
    if let Some(fill) = weights {
        for table in 0..t as usize {
            storage.write_weights(gpu, table, &fill(rows as u64 * d as u64))?;
        }
    }
    let features: Vec<_> = (0..t as usize)
        .map(|table| (table, Pooling::Sum, vec![]))
        .collect();
    let fs = FeatureSet::concatenated(&storage.layout, &features, batch, 1)?;
    let lookups = batch as u64 * t as u64 * bag as u64;
    let mut forward = TbeForward::new(gpu, &storage, fs.clone(), lookups)?;
    let zipf = Zipf::new(rows as u64, 1.05);
    let mut rng = Rng::new(6);
    let bags = Bags {
        batch_size: batch,
        offsets: (0..=batch * t).map(|i| i * bag).collect(),
        indices: (0..lookups)
            .map(|_| ((zipf.sample(&mut rng) * 2_654_435_761) % rows as u64) as u32)
            .collect(),
        weights: None,
    };
    forward.upload(gpu, &storage, &bags)?;
    Ok((storage, fs, forward, bags))
}
