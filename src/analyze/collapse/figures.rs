//! The collapse section's figures: `collapse-spectra` (σ_k/σ₁ on a log axis, a panel per field, a
//! line per table) and `collapse-ia` (IA per field, a bar per table).

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::Collapse;
use crate::analyze::plot::Figure;

/// Lowest ratio drawn: zeros (rank below the width) cannot sit on a log axis and are drawn here.
const FLOOR: f64 = 1e-6;

type Drawn = std::result::Result<(), String>;

fn text<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// The normalised spectra, one panel per field.
pub struct Spectra<'a>(pub &'a Collapse);

impl Figure for Spectra<'_> {
    fn size(&self) -> (u32, u32) {
        let rows = self.0.fields.len().div_ceil(4).max(1) as u32;
        (1280, 80 + 260 * rows)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn {
        let c = self.0;
        let root = root
            .titled(
                "Normalised singular spectra σ_k/σ₁ (plain), a line per table; zeros drawn at 1e-6",
                ("sans-serif", 20),
            )
            .map_err(text)?;
        let rows = c.fields.len().div_ceil(4).max(1);
        let panels = root.split_evenly((rows, 4));
        for (field, area) in c.fields.iter().zip(panels.iter()) {
            let width = field
                .tables
                .iter()
                .map(|t| t.spectrum.len())
                .max()
                .unwrap_or(1);
            let mut chart = ChartBuilder::on(area)
                .caption(&field.name, ("sans-serif", 15))
                .margin(6)
                .x_label_area_size(24)
                .y_label_area_size(52)
                .build_cartesian_2d(1f64..width.max(2) as f64, (FLOOR..1.5f64).log_scale())
                .map_err(text)?;
            chart
                .configure_mesh()
                .x_labels(5)
                .y_labels(4)
                .y_label_formatter(&|y| format!("{y:.0e}"))
                .x_label_formatter(&|x| format!("{x:.0}"))
                .label_style(("sans-serif", 11))
                .draw()
                .map_err(text)?;
            for (m, t) in field.tables.iter().enumerate() {
                let color = Palette99::pick(m).to_rgba();
                let points =
                    (t.spectrum.iter().enumerate()).map(|(k, &s)| ((k + 1) as f64, s.max(FLOOR)));
                chart
                    .draw_series(LineSeries::new(points, color.stroke_width(2)))
                    .map_err(text)?
                    .label(format!("table {m}"))
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color));
            }
            chart
                .configure_series_labels()
                .label_font(("sans-serif", 11))
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .position(SeriesLabelPosition::LowerLeft)
                .draw()
                .map_err(text)?;
        }
        Ok(())
    }
}

/// IA per field, a bar per table.
pub struct IaBars<'a>(pub &'a Collapse);

impl Figure for IaBars<'_> {
    fn size(&self) -> (u32, u32) {
        (1280, 600)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn {
        let c = self.0;
        let n = c.fields.len().max(1) as f64;
        let top = (c.fields.iter().flat_map(|f| &f.tables))
            .map(|t| t.ia)
            .fold(1.0f64, f64::max)
            * 1.1;
        let mut chart = ChartBuilder::on(root)
            .caption(
                "Information abundance IA = Σσ/σ₁ per field (plain), a bar per table",
                ("sans-serif", 20),
            )
            .margin(16)
            .x_label_area_size(56)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..n, 0f64..top)
            .map_err(text)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_desc("IA")
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(text)?;
        let m_count = c.tables.len().max(1);
        let bar = 0.8 / m_count as f64;
        for m in 0..m_count {
            let color = Palette99::pick(m).to_rgba();
            let bars = c.fields.iter().enumerate().filter_map(|(i, f)| {
                let x0 = i as f64 + 0.1 + m as f64 * bar;
                let ia = f.tables.get(m)?.ia;
                Some(Rectangle::new([(x0, 0.0), (x0 + bar, ia)], color.filled()))
            });
            chart
                .draw_series(bars)
                .map_err(text)?
                .label(format!("table {m}"))
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled())
                });
        }
        chart
            .configure_series_labels()
            .label_font(("sans-serif", 13))
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(text)?;
        for (i, f) in c.fields.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(i as f64 + 0.5, 0.0));
            // Alternate two rows of names so long neighbours do not overlap.
            let y = y + 8 + 18 * (i % 2) as i32;
            let style = TextStyle::from(("sans-serif", 13).into_font())
                .pos(Pos::new(HPos::Center, VPos::Top));
            root.draw(&Text::new(f.name.clone(), (x, y), style))
                .map_err(text)?;
        }
        Ok(())
    }
}
