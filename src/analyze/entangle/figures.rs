//! The section's figures: `entangle-gates`, a heat map of each tower's mean gate weight over the
//! experts, and `entangle-splits`, each task's AUC across the comparable-sample splits.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::splits::Split;
use crate::analyze::plot::Figure;

type Drawn = std::result::Result<(), String>;

fn text<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// Towers × experts, each cell shaded by its mean weight (white 0, dark blue 1) and labelled.
pub struct GateHeatmap<'a> {
    /// Row labels.
    pub towers: &'a [String],
    /// Column labels.
    pub experts: &'a [String],
    /// `[towers][experts]`.
    pub mean: &'a [Vec<f64>],
    /// The caption.
    pub title: String,
}

/// Left margin for tower names and top band for the caption and expert names (pixels).
const LEFT: i32 = 150;
const TOP: i32 = 90;

/// Height of one tower's row (pixels).
const CELL_H: i32 = 80;

impl Figure for GateHeatmap<'_> {
    fn size(&self) -> (u32, u32) {
        (
            960,
            (TOP + CELL_H * self.towers.len().max(1) as i32 + 20) as u32,
        )
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn {
        let w = self.size().0;
        let cols = self.experts.len().max(1) as i32;
        let cell_w = (w as i32 - LEFT - 20) / cols;
        let cell_h = CELL_H;
        root.draw(&Text::new(
            self.title.as_str(),
            (16, 12),
            ("sans-serif", 22),
        ))
        .map_err(text)?;
        for (e, name) in self.experts.iter().enumerate() {
            let x = LEFT + e as i32 * cell_w + 6;
            root.draw(&Text::new(name.as_str(), (x, TOP - 26), ("sans-serif", 15)))
                .map_err(text)?;
        }
        for (u, (name, row)) in self.towers.iter().zip(self.mean).enumerate() {
            let y = TOP + u as i32 * cell_h;
            root.draw(&Text::new(
                name.as_str(),
                (12, y + cell_h / 2 - 8),
                ("sans-serif", 16),
            ))
            .map_err(text)?;
            for (e, &g) in row.iter().enumerate() {
                let x = LEFT + e as i32 * cell_w;
                let shade = (255.0 * (1.0 - g.clamp(0.0, 1.0))) as u8;
                let fill = RGBColor(shade, shade, 255);
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell_w - 2, y + cell_h - 2)],
                    fill.filled(),
                ))
                .map_err(text)?;
                let ink = if g > 0.5 { WHITE } else { BLACK };
                let label = format!("{g:.3}");
                let style = ("sans-serif", 16).into_font().color(&ink);
                root.draw(&Text::new(label, (x + 8, y + cell_h / 2 - 8), style))
                    .map_err(text)?;
            }
        }
        Ok(())
    }
}

/// Each task's AUC per split (the ratio bins, then `none`), one line per task; null AUCs leave a
/// gap.
pub struct SplitAucs<'a> {
    /// Line labels.
    pub tasks: &'a [String],
    /// The splits drawn, in x order.
    pub splits: &'a [Split],
    /// The caption.
    pub title: String,
}

impl Figure for SplitAucs<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn {
        let points: Vec<Vec<(f64, f64)>> = (0..self.tasks.len())
            .map(|t| {
                (self.splits.iter().enumerate())
                    .filter_map(|(x, s)| Some((x as f64, s.auc.get(t).copied().flatten()?)))
                    .collect()
            })
            .collect();
        let all = points.iter().flatten().map(|p| p.1);
        let lo = all.clone().fold(1.0f64, f64::min).min(0.5);
        let hi = all.fold(0.5f64, f64::max).max(lo + 0.05);
        let n = self.splits.len().max(1) as f64;
        let mut chart = ChartBuilder::on(root)
            .caption(self.title.as_str(), ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d(-0.5..n - 0.5, lo - 0.01..hi + 0.01)
            .map_err(text)?;
        let bin = |x: &f64| {
            let i = x.round();
            let name = (self.splits.get(i as usize)).filter(|_| (x - i).abs() < 1e-6 && i >= 0.0);
            name.map(|s| s.bin.clone()).unwrap_or_default()
        };
        chart
            .configure_mesh()
            .x_desc("split (ρ = task 0's share of the user's training positives)")
            .y_desc("AUC")
            .x_labels(self.splits.len() + 1)
            .x_label_formatter(&bin)
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 16))
            .draw()
            .map_err(text)?;
        for (t, (name, line)) in self.tasks.iter().zip(&points).enumerate() {
            let color = Palette99::pick(t).to_rgba();
            chart
                .draw_series(LineSeries::new(line.iter().copied(), color.stroke_width(2)))
                .map_err(text)?
                .label(name.as_str())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
            (chart.draw_series(line.iter().map(|&p| Circle::new(p, 4, color.filled()))))
                .map_err(text)?;
        }
        chart
            .configure_series_labels()
            .label_font(("sans-serif", 14))
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(text)
    }
}
