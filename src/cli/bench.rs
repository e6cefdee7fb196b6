//! `wgrec bench`: the kernel suite with its ceilings, as a table or one JSON object.

use wgrec::bench::{self, BenchOptions, Unit};
use wgrec::config::Architecture;

/// Runs the suite and prints it.
pub fn run(options: BenchOptions, json: bool) -> anyhow::Result<()> {
    let gpu = super::tune::gpu()?;
    if !json {
        eprintln!("benchmarking on {} …", gpu.describe());
    }
    let report = bench::run(&gpu, &options)?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    println!("adapter: {}", report.adapter);
    println!(
        "clock:   {}, median of {} runs",
        report.clock, options.repeats
    );
    println!(
        "{:<26} {:>11} {:>15} {:>8}  shape",
        "kernel", "median ms", "rate", "of ceil."
    );
    for r in &report.results {
        let unit = match r.unit {
            Unit::GbPerS => "GB/s",
            Unit::GflopPerS => "GFLOP/s",
        };
        println!(
            "{:<26} {:>11.3} {:>15} {:>7.1}%  {}",
            r.kernel,
            r.median_ms,
            format!("{:.2} {unit}", r.rate),
            100.0 * r.of_ceiling,
            r.shape
        );
    }
    println!("Bandwidth figures are shares of copy_ceiling, arithmetic ones of fma_ceiling.");
    Ok(())
}

/// `wgrec bench --profile`: the bench model's training step, per layer (see
/// [`bench::profile`]), as a table or one JSON object.
pub fn profile(quick: bool, steps: u32, json: bool) -> anyhow::Result<()> {
    let gpu = super::tune::gpu()?;
    if !json {
        eprintln!("profiling the bench model on {} …", gpu.describe());
    }
    let report = bench::profile::bench_model(&gpu, quick, 2, steps)?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", bench::profile::table(&report));
    }
    Ok(())
}

/// Runs the scaling sweeps (or only the kernel sweep `only`, without the whole-model ones), writes
/// their JSON and charts under `dir`, and prints the curves (or the report as one JSON object).
pub fn scaling(
    dir: &std::path::Path,
    (quick, repeats): (bool, u32),
    only: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    let gpu = super::tune::gpu()?;
    if !json {
        eprintln!("scaling sweeps on {} …", gpu.describe());
    }
    let report = bench::scaling::run(&gpu, quick, repeats, only)?;
    let mut written = bench::scaling::write(&report, dir)?;
    // One kernel sweep alone leaves the whole-model sweeps (and their files) out.
    let mut training = Vec::new();
    if only.is_none() {
        if !json {
            eprintln!("whole-model training sweeps …");
        }
        training = bench::train::sweep(&gpu, quick)?;
        written.extend(bench::train::write_sweep(&training, dir)?);
    }
    if json {
        let mut value = serde_json::to_value(&report)?;
        value["training"] = serde_json::to_value(&training)?;
        println!("{value}");
        return Ok(());
    }
    print_kernel_curves(&report, repeats);
    if only.is_none() {
        print_training_sweeps(&training);
    }
    for path in written {
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// The bench model's shape: standard or `--quick`, with `architecture` (the config's own names).
pub fn shape(quick: bool, architecture: &str) -> anyhow::Result<bench::train::TrainShape> {
    // The CLI offers the architectures' own names, so this is the config's reading of them.
    let architecture: Architecture =
        serde_json::from_value(serde_json::Value::String(architecture.into()))
            .map_err(|e| anyhow::anyhow!("--architecture {architecture}: {e}"))?;
    let base = if quick {
        bench::train::TrainShape::quick()
    } else {
        bench::train::TrainShape::standard()
    };
    Ok(bench::train::TrainShape {
        architecture,
        ..base
    })
}

/// `wgrec bench --export-model DIR [--architecture A]`: the whole bench model and its batches for
/// the PyTorch side.
pub fn export_model(
    dir: &std::path::Path,
    quick: bool,
    architecture: &str,
    json: bool,
) -> anyhow::Result<()> {
    let shape = shape(quick, architecture)?;
    let gpu = super::tune::gpu()?;
    let (windows, steps) = if quick { (1, 2) } else { (3, 5) };
    let report = bench::train::export(&gpu, &shape, dir, 8, windows, steps)?;
    if json {
        // The kernels the timed model compiled with: which of them the tune cache chose.
        let mut value = serde_json::to_value(&report)?;
        value["kernels"] = serde_json::json!(wgrec::tune::choices_in_force(&gpu));
        println!("{value}");
    } else {
        println!(
            "wrote {} (model.json, init.safetensors, batches.safetensors, wgrec.json): training {:.0} \
             samples/s, inference {:.0} samples/s, first loss {:?}, {} dispatches per step on {}",
            dir.display(),
            report.train_samples_per_sec,
            report.infer_samples_per_sec,
            report.first_loss,
            report.dispatches,
            report.adapter
        );
    }
    Ok(())
}

/// The kernel curves of a scaling run, one line per point.
fn print_kernel_curves(report: &bench::scaling::ScalingReport, repeats: u32) {
    println!("adapter: {}", report.adapter);
    println!(
        "clock:   {}, median of {repeats} runs; copy ceiling {:.2} GB/s; binding limit {} MiB",
        report.clock,
        report.copy_gb_per_s,
        report.max_binding_bytes >> 20
    );
    println!(
        "{:<7} {:<28} {:>10} {:>11} {:>9} {:>8} {:>12} {:>6}",
        "sweep", "kernel", "x", "median ms", "GB/s", "of copy", "alloc MiB", "groups"
    );
    for c in &report.curves {
        for p in &c.points {
            let gbs = p.gb_per_s.map_or("-".into(), |g| format!("{g:.2}"));
            let share = p
                .of_copy
                .map_or("-".into(), |s| format!("{:.1}%", 100.0 * s));
            println!(
                "{:<7} {:<28} {:>10} {:>11.3} {:>9} {:>8} {:>12.1} {:>6}",
                c.sweep,
                c.kernel,
                p.x,
                p.median_ms,
                gbs,
                share,
                p.allocated_bytes as f64 / (1u64 << 20) as f64,
                p.groups
            );
        }
    }
}

/// The whole-model sweeps, one line per point, with the values left out.
fn print_training_sweeps(training: &[bench::train::TrainSweep]) {
    println!(
        "{:<8} {:>9} {:>14} {:>14} {:>10} {:>11}",
        "sweep", "x", "train samp/s", "infer samp/s", "model MiB", "dispatches"
    );
    for s in training {
        for why in &s.skipped {
            println!("skipped {why}");
        }
        for p in &s.points {
            println!(
                "{:<8} {:>9} {:>14.0} {:>14.0} {:>10.1} {:>11}",
                s.sweep,
                p.x,
                p.train_samples_per_sec,
                p.infer_samples_per_sec,
                p.model_bytes as f64 / (1u64 << 20) as f64,
                p.dispatches
            );
        }
    }
}
