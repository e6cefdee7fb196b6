//! `wgrec bench`: the kernel suite a user runs on their own GPU, each kernel beside the device's
//! ceilings measured in the same run — a vec4 copy for bandwidth, independent FMA chains for
//! arithmetic — so a figure reads as "this share of what the card can do".
//!
//! The suite is fixed and small (it must finish in a minute on a laptop GPU and in a few on
//! lavapipe): the copy and FMA ceilings; the batched GEMM on a CTR shape (4096 × 400 × 400); the
//! table-batched embedding gather and its fused backward + row-wise Adagrad update (8 tables of
//! 100,000 × 64, batch 2048, bags of 8, Zipf 1.05); TIM (B 256, L 100, D 64); and two interaction
//! experts (DCNv2, GwPFM, FM, IPNN; 16 fields × 10, batch 1024, 4 tables); the three losses (BCE,
//! combined-pair, combined-list; 4096 rows, one task); the content kernels (SimHash of 131,072 × 64
//! vectors into 32 bits; the bucketed cosine of a batch of 4096 over 100,000-row tables). `quick` shrinks every shape about
//! 16-fold. Each kernel runs once to warm up, then `repeats` times, each run its own submit and wait;
//! the figure is the median, timed by GPU timestamps where the adapter has them (wall clock else).
//! The criterion benches under `benches/` are the detailed sweeps; this is the one-command summary.
//!
//! The library measures; the CLI prints.

mod content;
pub mod plot;
pub mod profile;
pub mod rows;
pub mod scaling;
mod setup;
mod suite;
pub mod train;

use std::time::Instant;

use serde::Serialize;

use crate::error::Result;
use crate::gpu::{Gpu, PassTimer};
use crate::rng::Rng;
pub(crate) use setup::{gather_setup, tim_setup};

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

/// Runs the suite on `gpu`: the ceilings, then each family `options.filter` keeps, all drawing
/// their random inputs from one stream in this order.
pub fn run(gpu: &Gpu, options: &BenchOptions) -> Result<BenchReport> {
    let runner = Runner {
        gpu,
        timer: PassTimer::new(gpu),
        repeats: options.repeats.max(1),
    };
    let wanted = |name: &str| options.filter.as_deref().is_none_or(|f| name.contains(f));
    let q = options.quick;
    let mut results = suite::ceilings(&runner, q)?;
    let mut rng = Rng::new(5);
    let mut random = |n: u64| -> Vec<f32> { (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect() };
    if wanted("gemm") {
        results.push(suite::gemm(&runner, q, &mut random)?);
    }
    if wanted("embedding") {
        results.extend(suite::embedding(&runner, q, &mut random)?);
    }
    if wanted("tim") {
        results.extend(suite::tim(&runner, q, &mut random)?);
    }
    results.extend(suite::experts(&runner, q, &wanted, &mut random)?);
    results.extend(suite::losses(&runner, q, &wanted, &mut random)?);
    if wanted("content_simhash") {
        results.push(content::simhash(&runner, q, &mut random)?);
    }
    if wanted("content_similarity") {
        results.push(content::similarity(&runner, q, &mut random)?);
    }
    set_shares_of_ceiling(&mut results);
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

/// Sets each figure's share of the ceiling of its unit measured in the same run.
fn set_shares_of_ceiling(results: &mut [BenchResult]) {
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
        .map(|r| r.rate / ceiling(r.unit, results))
        .collect();
    for (r, share) in results.iter_mut().zip(shares) {
        r.of_ceiling = share;
    }
}
