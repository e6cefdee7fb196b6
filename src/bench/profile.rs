//! `--profile` of `wgrec train` and `wgrec bench`: a graph's profile window
//! ([`Graph::start_profile`]) turned into a report — each section of the training step with its
//! median GPU time, its share of the step and its rate against the ceiling measured in the same
//! run (GB/s against the vec4 copy, GFLOP/s against the FMA chains; `suite::ceilings`),
//! sorted by time — as a table or one JSON object.
//!
//! A section's rate is against the bound that takes longer at the ceilings (its ideal bytes at
//! the copy rate or its FLOPs at the FMA rate, [`Cost`]): "of ceiling" is then how close the
//! section comes to the faster of what the device could do for that work. Sections whose cost is
//! unknown show "—".
//!
//! [`bench_model`] profiles the bench model ([`super::train`]: M = 2, DCNv2 + GwPFM, TIM, MNS,
//! BatchNorm, MLP 128–64, batch 1024, the model `--export-model` writes for the PyTorch
//! comparison).

use serde::Serialize;

use super::train::{model_batch, model_text, shapes, synth, TrainShape};
use super::{BenchResult, Runner};
use crate::config::ModelConfig;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::graph::{Cost, Graph, Prepared, ProfileRequest, StepProfile, TimingMethod};
use crate::train::policy::TrainPolicy;

/// The ceilings a profile's rates are shares of, measured in the same run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Ceilings {
    /// The vec4 copy's effective bandwidth, GB/s.
    pub copy_gb_per_s: f64,
    /// Independent FMA chains, GFLOP/s.
    pub fma_gflop_per_s: f64,
}

/// Measures both ceilings (median of `repeats` runs each, GPU timestamps where the adapter has
/// them; the suite's full-size shapes unless `quick`).
pub fn ceilings(gpu: &Gpu, quick: bool, repeats: u32) -> Result<Ceilings> {
    let runner = Runner {
        gpu,
        timer: crate::gpu::PassTimer::new(gpu),
        repeats: repeats.max(1),
    };
    let figures = super::suite::ceilings(&runner, quick)?;
    let rate = |name: &str| {
        (figures.iter())
            .find(|r: &&BenchResult| r.kernel == name)
            .map_or(f64::NAN, |r| r.rate)
    };
    Ok(Ceilings {
        copy_gb_per_s: rate("copy_ceiling"),
        fma_gflop_per_s: rate("fma_ceiling"),
    })
}

/// One row of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProfileRow {
    /// The layer ("embedding", "expert 0 dcn (tables 0)", "loss (1 tasks)", …).
    pub layer: String,
    /// "forward", "backward", "update", "loss" or "copy".
    pub phase: String,
    /// Median milliseconds over the profiled steps.
    pub ms: f64,
    /// `ms` as a share of the sum of every row.
    pub share: f64,
    /// Ideal bytes at the profiled batch.
    pub bytes: u64,
    /// FLOPs at the profiled batch.
    pub flops: u64,
    /// The rate against the binding ceiling, in `unit`; `None` for an unknown cost.
    pub rate: Option<f64>,
    /// "GB/s" or "GFLOP/s" (`None` with `rate`).
    pub unit: Option<&'static str>,
    /// `rate` as a share of its ceiling.
    pub of_ceiling: Option<f64>,
    /// Dispatches the section records.
    pub dispatches: u64,
}

/// A finished profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProfileReport {
    /// `Gpu::describe()` of the device.
    pub adapter: String,
    /// How the sections were timed.
    pub timing: TimingMethod,
    /// The ceilings, measured in the same run.
    pub ceilings: Ceilings,
    /// Profiled steps (each row is a median over them).
    pub steps: usize,
    /// Samples per profiled step.
    pub batch: u32,
    /// Sum of the rows, ms.
    pub total_ms: f64,
    /// Median wall time of the plain (unprofiled) steps alternated with the profiled ones, ms.
    pub step_wall_ms: Option<f64>,
    /// Every section, slowest first.
    pub rows: Vec<ProfileRow>,
}

/// The report of `profile` at `ceilings`: shares, rates, slowest first.
pub fn report(adapter: String, profile: &StepProfile, ceilings: Ceilings) -> ProfileReport {
    let total_ms: f64 = profile.sections.iter().map(|s| s.ms).sum();
    let mut rows: Vec<ProfileRow> = (profile.sections.iter())
        .map(|s| {
            let (rate, unit, of_ceiling) = rate(s.cost, s.ms, ceilings);
            ProfileRow {
                layer: s.layer.clone(),
                phase: s.phase.clone(),
                ms: s.ms,
                share: s.ms / total_ms,
                bytes: s.cost.bytes,
                flops: s.cost.flops,
                rate,
                unit,
                of_ceiling,
                dispatches: s.dispatches,
            }
        })
        .collect();
    rows.sort_by(|a, b| b.ms.total_cmp(&a.ms));
    ProfileReport {
        adapter,
        timing: profile.method,
        ceilings,
        steps: profile.steps,
        batch: profile.rows,
        total_ms,
        step_wall_ms: profile.step_wall_ms,
        rows,
    }
}

/// The rate of `cost` done in `ms` against the bound that takes longer at `c`.
fn rate(cost: Cost, ms: f64, c: Ceilings) -> (Option<f64>, Option<&'static str>, Option<f64>) {
    let seconds = ms * 1e-3;
    if (cost.bytes == 0 && cost.flops == 0) || seconds <= 0.0 {
        return (None, None, None);
    }
    let (gb, gflop) = (cost.bytes as f64 / 1e9, cost.flops as f64 / 1e9);
    if gb / c.copy_gb_per_s >= gflop / c.fma_gflop_per_s {
        let r = gb / seconds;
        (Some(r), Some("GB/s"), Some(r / c.copy_gb_per_s))
    } else {
        let r = gflop / seconds;
        (Some(r), Some("GFLOP/s"), Some(r / c.fma_gflop_per_s))
    }
}

/// The report as the CLI prints it: a header, one line per row, the total line.
pub fn table(r: &ProfileReport) -> String {
    let mut s = format!(
        "adapter: {}\ntiming:  {}, median of {} profiled steps of {} samples\n\
         ceilings: copy {:.2} GB/s, FMA {:.2} GFLOP/s (measured in this run)\n",
        r.adapter,
        r.timing.describe(),
        r.steps,
        r.batch,
        r.ceilings.copy_gb_per_s,
        r.ceilings.fma_gflop_per_s
    );
    let w = (r.rows.iter())
        .map(|row| row.layer.chars().count())
        .chain([23])
        .max()
        .unwrap_or(0);
    s += &format!(
        "{:<w$} {:<8} {:>9} {:>7} {:>16} {:>9} {:>5}\n",
        "layer", "phase", "ms", "share", "rate", "of ceil.", "disp."
    );
    for row in &r.rows {
        let (rate, of) = match (row.rate, row.unit, row.of_ceiling) {
            (Some(v), Some(u), Some(o)) => (format!("{v:.2} {u}"), format!("{:.1}%", 100.0 * o)),
            _ => ("—".into(), "—".into()),
        };
        s += &format!(
            "{:<w$} {:<8} {:>9.3} {:>6.1}% {:>16} {:>9} {:>5}\n",
            row.layer,
            row.phase,
            row.ms,
            100.0 * row.share,
            rate,
            of,
            row.dispatches
        );
    }
    let wall = r.step_wall_ms.map_or("—".into(), |w| format!("{w:.3} ms"));
    s += &format!(
        "{:<w$} {:<8} {:>9.3} {:>6.1}%   unprofiled step wall time {wall}\n",
        "total (sum of sections)", "", r.total_ms, 100.0
    );
    s
}

/// Profiles the bench model (`quick`: its smoke size): `warmup` plain steps, then `steps`
/// profiled steps alternating with as many plain ones, over 8 pre-built batches; the ceilings
/// measured after, on the same device.
pub fn bench_model(gpu: &Gpu, quick: bool, warmup: u64, steps: u32) -> Result<ProfileReport> {
    let shape = if quick {
        TrainShape::quick()
    } else {
        TrainShape::standard()
    };
    let config = ModelConfig::parse(&model_text(&shape, 0.1), "bench model")?;
    let policy = TrainPolicy::new(&config.train);
    let mut graph = Graph::new(
        gpu,
        &config,
        &shapes(&shape),
        shape.batch,
        0.0,
        policy.optimizers(),
    )?;
    let generator = synth(&shape, 7)?;
    let prepared: Vec<Prepared> = (0..8u64)
        .map(|i| {
            let b = generator.batch(i * shape.batch as u64..(i + 1) * shape.batch as u64);
            graph.prepare(&model_batch(&shape, &b))
        })
        .collect::<Result<_>>()?;
    graph.start_profile(ProfileRequest {
        first: warmup + 1,
        steps,
        host_timing: false,
    });
    for k in 0..warmup + 2 * steps as u64 {
        let batch = &prepared[k as usize % prepared.len()];
        graph.train_step(gpu, batch, policy.rates(graph.step() + 1))?;
    }
    gpu.sync()?;
    let profile = graph
        .take_profile()
        .ok_or_else(|| crate::error::Error::Graph("no step was profiled".into()))?;
    let ceilings = ceilings(gpu, quick, 10)?;
    Ok(report(gpu.describe(), &profile, ceilings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::SectionTime;

    fn section(layer: &str, phase: &str, ms: f64, bytes: u64, flops: u64) -> SectionTime {
        SectionTime {
            layer: layer.into(),
            phase: phase.into(),
            ms,
            cost: Cost { bytes, flops },
            dispatches: 1,
        }
    }

    const CEILINGS: Ceilings = Ceilings {
        copy_gb_per_s: 10.0,
        fma_gflop_per_s: 100.0,
    };

    fn profile() -> StepProfile {
        StepProfile {
            method: TimingMethod::GpuTimestamps,
            steps: 3,
            rows: 512,
            sections: vec![
                // 1 GB in 1 s at a 10 GB/s ceiling: 10%.
                section("embedding", "forward", 1000.0, 1_000_000_000, 0),
                // 20 GFLOP (0.2 s at the FMA ceiling) beats its 0.1 s of bytes: FLOP-bound, 50%.
                section(
                    "dense 8→8",
                    "backward",
                    400.0,
                    1_000_000_000,
                    20_000_000_000,
                ),
                section("combine", "forward", 100.0, 0, 0),
            ],
            step_wall_ms: Some(1600.0),
        }
    }

    #[test]
    fn rows_are_sorted_shared_and_rated_against_the_binding_ceiling() {
        let r = report("test".into(), &profile(), CEILINGS);
        let order: Vec<&str> = r.rows.iter().map(|r| r.layer.as_str()).collect();
        assert_eq!(order, ["embedding", "dense 8→8", "combine"]);
        assert!((r.total_ms - 1500.0).abs() < 1e-9);
        let shares: f64 = r.rows.iter().map(|r| r.share).sum();
        assert!((shares - 1.0).abs() < 1e-12);
        let (gather, gemm, combine) = (&r.rows[0], &r.rows[1], &r.rows[2]);
        assert_eq!(gather.unit, Some("GB/s"));
        assert!((gather.rate.unwrap() - 1.0).abs() < 1e-9);
        assert!((gather.of_ceiling.unwrap() - 0.1).abs() < 1e-9);
        assert_eq!(gemm.unit, Some("GFLOP/s"));
        assert!((gemm.rate.unwrap() - 50.0).abs() < 1e-9);
        assert!((gemm.of_ceiling.unwrap() - 0.5).abs() < 1e-9);
        assert_eq!(
            (combine.rate, combine.unit, combine.of_ceiling),
            (None, None, None)
        );
    }

    #[test]
    fn the_table_has_a_line_per_row_a_dash_for_unknown_cost_and_the_total() {
        let t = table(&report("test".into(), &profile(), CEILINGS));
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[1].contains("GPU timestamps") && lines[1].contains("3 profiled steps"));
        let head = lines.iter().position(|l| l.starts_with("layer")).unwrap();
        assert_eq!(lines.len(), head + 1 + 3 + 1, "{t}");
        assert!(lines[head + 1].starts_with("embedding") && lines[head + 1].contains("10.0%"));
        assert!(lines[head + 3].starts_with("combine") && lines[head + 3].contains('—'));
        let total = lines.last().unwrap();
        assert!(
            total.contains("1500.000") && total.contains("1600.000 ms"),
            "{total}"
        );
    }
}
