//! Writing a scaling run: its JSON and one chart per sweep.

use std::path::{Path, PathBuf};

use super::{ScalingCurve, ScalingReport};
use crate::bench::plot::{line_chart, Series};
use crate::error::{Error, Result};

/// Writes `scaling.json` (`scaling_<sweep>.json` when the report holds one sweep) and the charts
/// (`scaling_rows.png`, `scaling_batch.png`, `scaling_tim.png`, those the report has) under `dir`
/// (created if missing); returns the paths written.
pub fn write(report: &ScalingReport, dir: &Path) -> Result<Vec<PathBuf>> {
    let io = |file: &Path, e: std::io::Error| Error::Output {
        file: file.to_path_buf(),
        message: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    // A one-sweep run (`--sweep`) names its JSON after the sweep, so it never replaces the whole
    // run's `scaling.json` in the same folder.
    let mut sweeps: Vec<&str> = report.curves.iter().map(|c| c.sweep).collect();
    sweeps.dedup();
    let json = match sweeps[..] {
        [one] => dir.join(format!("scaling_{one}.json")),
        _ => dir.join("scaling.json"),
    };
    let text = serde_json::to_string_pretty(report).expect("plain data serialises");
    std::fs::write(&json, text).map_err(|e| io(&json, e))?;
    let mut written = vec![json];
    for (sweep, x_label, what) in [
        ("rows", "table rows (log)", "embedding GB/s vs table rows"),
        ("batch", "batch (log)", "embedding GB/s vs batch"),
        ("tim", "sequence length (log)", "TIM ms vs sequence length"),
    ] {
        let path = dir.join(format!("scaling_{sweep}.png"));
        if chart(report, sweep, (x_label, what), &path)? {
            written.push(path);
        }
    }
    Ok(written)
}

/// Draws `sweep`'s curves (GB/s beside the copy ceiling, or ms) into `path`; false when the report
/// has no such sweep. The title says how many storage groups the largest tables span.
fn chart(
    report: &ScalingReport,
    sweep: &str,
    (x_label, what): (&str, &str),
    path: &Path,
) -> Result<bool> {
    let curves: Vec<&ScalingCurve> = report.curves.iter().filter(|c| c.sweep == sweep).collect();
    let Some(first) = curves.first() else {
        return Ok(false);
    };
    let bandwidth = first.points.iter().all(|p| p.gb_per_s.is_some());
    let mut series: Vec<Series> = (curves.iter())
        .map(|c| {
            let points = c.points.iter();
            Series::new(
                c.kernel,
                points
                    .map(|p| (p.x, p.gb_per_s.unwrap_or(p.median_ms)))
                    .collect(),
            )
        })
        .collect();
    if bandwidth {
        // Every curve's x (the f16 rows reach twice as far), so the ceiling spans them all.
        let mut xs: Vec<f64> = curves
            .iter()
            .flat_map(|c| c.points.iter().map(|p| p.x))
            .collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        series.push(Series::new(
            "copy ceiling",
            xs.iter().map(|&x| (x, report.copy_gb_per_s)).collect(),
        ));
    }
    let groups = curves
        .iter()
        .flat_map(|c| &c.points)
        .map(|p| p.groups)
        .max();
    let split = match groups {
        Some(g) if g > 1 => format!(" (up to {g} storage groups)"),
        _ => String::new(),
    };
    let adapter = report.adapter.split(" (").next().unwrap_or("");
    line_chart(
        path,
        &format!("{what}{split} — {adapter}"),
        x_label,
        if bandwidth { "GB/s" } else { "ms" },
        &series,
        true,
    )?;
    Ok(true)
}
