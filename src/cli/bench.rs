//! `wgrec bench`: the kernel suite with its ceilings, as a table or one JSON object.

use wgrec::bench::{self, BenchOptions, Unit};
use wgrec::Gpu;

/// Runs the suite and prints it.
pub fn run(options: BenchOptions, json: bool) -> anyhow::Result<()> {
    let gpu = Gpu::new()?;
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
