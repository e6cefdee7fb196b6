//! The simulation's curves (PNG, drawn with plotters and the benchmarks' compiled-in font): a
//! cumulative quantity against the round, one colour per policy, the mean over seeds as a thick
//! line and each seed as a thin, light one, so the seed spread is visible beside the mean.
//! Written atomically: drawn to a `.png` temporary beside the target, then moved into place.

use std::path::Path;

use plotters::prelude::*;

use super::output::RunLog;
use crate::bench::plot::fonts;
use crate::checkpoint::write_atomically;
use crate::error::{Error, Result};

/// Chart size in pixels.
const SIZE: (u32, u32) = (960, 600);

/// Which cumulative quantity a chart draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    /// Cumulative expected regret.
    Regret,
    /// Cumulative clicks.
    Clicks,
}

impl Curve {
    fn value(self, r: &super::episode::RoundRecord) -> f64 {
        match self {
            Curve::Regret => r.regret,
            Curve::Clicks => f64::from(r.clicks),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Curve::Regret => "cumulative regret",
            Curve::Clicks => "cumulative clicks",
        }
    }
}

/// One policy's lines: the per-seed cumulative curves and their mean.
struct Lines {
    label: String,
    seeds: Vec<Vec<(f64, f64)>>,
    mean: Vec<(f64, f64)>,
}

fn lines(runs: &[RunLog], curve: Curve) -> Vec<Lines> {
    let mut out: Vec<Lines> = Vec::new();
    for run in runs {
        let mut total = 0.0;
        let points: Vec<(f64, f64)> = (run.rounds.iter())
            .map(|r| {
                total += curve.value(r);
                (f64::from(r.round + 1), total)
            })
            .collect();
        let label = run.policy.to_string();
        match out.iter_mut().find(|l| l.label == label) {
            Some(l) => l.seeds.push(points),
            None => out.push(Lines {
                label,
                seeds: vec![points],
                mean: Vec::new(),
            }),
        }
    }
    for l in &mut out {
        let n = l.seeds.len() as f64;
        let len = l.seeds.iter().map(Vec::len).min().unwrap_or(0);
        l.mean = (0..len)
            .map(|i| {
                (
                    l.seeds[0][i].0,
                    l.seeds.iter().map(|s| s[i].1).sum::<f64>() / n,
                )
            })
            .collect();
    }
    out
}

/// Draws `curve` of `runs` into the PNG `path` (see the module docs).
pub fn draw(path: &Path, runs: &[RunLog], curve: Curve, title: &str) -> Result<()> {
    let lines = lines(runs, curve);
    let bad = |message: String| Error::Plot {
        file: path.to_path_buf(),
        message,
    };
    let all = || lines.iter().flat_map(|l| l.seeds.iter().flatten());
    let x1 = all().map(|p| p.0).fold(1.0, f64::max);
    let y1 = all().map(|p| p.1).fold(0.0, f64::max).max(1e-9) * 1.05;
    if lines.is_empty() || !y1.is_finite() {
        return Err(bad("no finite points to draw".into()));
    }
    fonts();
    write_atomically(path, |tmp| {
        let png = tmp.with_file_name(format!(
            "{}.png",
            tmp.file_name().and_then(|n| n.to_str()).unwrap_or("chart")
        ));
        let drawn = render(&png, title, curve.name(), &lines, (x1, y1));
        let moved = drawn.and_then(|()| std::fs::rename(&png, tmp).map_err(|e| e.into()));
        moved.map_err(|e| {
            let _ = std::fs::remove_file(&png);
            bad(e.to_string())
        })
    })
}

type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

fn render(
    png: &Path,
    title: &str,
    y_label: &str,
    lines: &[Lines],
    (x1, y1): (f64, f64),
) -> DrawResult {
    let root = BitMapBackend::new(png, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(0.0..x1, 0.0..y1)?;
    chart
        .configure_mesh()
        .x_desc("round")
        .y_desc(y_label)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .light_line_style(RGBColor(235, 235, 235))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .draw()?;
    for (i, l) in lines.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        for s in &l.seeds {
            chart.draw_series(LineSeries::new(
                s.iter().copied(),
                color.mix(0.3).stroke_width(1),
            ))?;
        }
        let label = format!("{} (mean of {} seeds)", l.label, l.seeds.len());
        chart
            .draw_series(LineSeries::new(
                l.mean.iter().copied(),
                color.stroke_width(3),
            ))?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 14))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}
