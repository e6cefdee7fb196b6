//! The `tim-correlation` figure: two heat-maps side by side over the same cells (rows = relation to
//! the target, columns = temporal bucket), the data's MI on the left and the learned attention on
//! the right, each coloured on its own scale (white = its smallest value, blue = its largest) and
//! with every value written in its cell; undefined cells are grey with a dash.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::analyze::plot::Figure;

const CELL_W: i32 = 46;
const CELL_H: i32 = 40;
/// Room for the relation names left of each map.
const LEFT: i32 = 110;
const TOP: i32 = 72;
const BOTTOM: i32 = 52;
const GAP: i32 = 24;

/// One heat-map: its title, `[rows][columns]` values and how a value is printed.
pub struct Panel<'a> {
    /// Above the map.
    pub title: String,
    /// `[rows][columns]`, `None` where undefined.
    pub values: &'a [Vec<Option<f64>>],
    /// A value's text in its cell.
    pub text: fn(f64) -> String,
}

/// Two heat-maps over the same rows and columns.
pub struct Heatmaps<'a> {
    /// The figure's title.
    pub title: String,
    /// Row names.
    pub rows: &'a [String],
    /// Column names.
    pub columns: &'a [String],
    /// Left, right.
    pub panels: [Panel<'a>; 2],
}

impl Heatmaps<'_> {
    fn panel_width(&self) -> i32 {
        LEFT + CELL_W * self.columns.len().max(1) as i32
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn style(size: f64, h: HPos, v: VPos) -> TextStyle<'static> {
    TextStyle::from(("sans-serif", size).into_font()).pos(Pos::new(h, v))
}

/// White to blue as t goes 0 to 1.
fn shade(t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    let c = |x: f64| (255.0 - x * t).round() as u8;
    RGBColor(c(200.0), c(130.0), c(40.0))
}

impl Figure for Heatmaps<'_> {
    fn size(&self) -> (u32, u32) {
        let w = 2 * self.panel_width() + GAP + 16;
        let h = TOP + CELL_H * self.rows.len().max(1) as i32 + BOTTOM;
        (w as u32, h as u32)
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), String> {
        let centre = self.size().0 as i32 / 2;
        let title = style(18.0, HPos::Center, VPos::Top);
        root.draw(&Text::new(self.title.clone(), (centre, 8), title))
            .map_err(err)?;
        for (p, panel) in self.panels.iter().enumerate() {
            let x0 = 8 + p as i32 * (self.panel_width() + GAP);
            self.draw_panel(root, panel, x0)?;
        }
        Ok(())
    }
}

impl Heatmaps<'_> {
    fn draw_panel<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        panel: &Panel,
        x0: i32,
    ) -> std::result::Result<(), String> {
        let defined = panel.values.iter().flatten().flatten().copied();
        let (lo, hi) = defined.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        let span = if hi > lo { hi - lo } else { 1.0 };
        let grid_x = x0 + LEFT;
        let heading = style(14.0, HPos::Center, VPos::Bottom);
        let mid = grid_x + CELL_W * self.columns.len() as i32 / 2;
        root.draw(&Text::new(panel.title.clone(), (mid, TOP - 8), heading))
            .map_err(err)?;
        for (r, name) in self.rows.iter().enumerate() {
            let y = TOP + r as i32 * CELL_H;
            let label = style(13.0, HPos::Right, VPos::Center);
            root.draw(&Text::new(
                name.clone(),
                (grid_x - 6, y + CELL_H / 2),
                label,
            ))
            .map_err(err)?;
            for c in 0..self.columns.len() {
                let value = panel.values.get(r).and_then(|row| row.get(c)).copied();
                let x = grid_x + c as i32 * CELL_W;
                let (fill, text, ink) = match value.flatten() {
                    Some(v) => {
                        let t = (v - lo) / span;
                        let ink = if t > 0.6 { WHITE } else { BLACK };
                        (shade(t), (panel.text)(v), ink)
                    }
                    None => (RGBColor(215, 215, 215), "–".to_string(), BLACK),
                };
                let cell = [(x, y), (x + CELL_W - 1, y + CELL_H - 1)];
                root.draw(&Rectangle::new(cell, fill.filled()))
                    .map_err(err)?;
                let at = (x + CELL_W / 2, y + CELL_H / 2);
                let font = style(11.0, HPos::Center, VPos::Center).color(&ink);
                root.draw(&Text::new(text, at, font)).map_err(err)?;
            }
        }
        let bottom = TOP + CELL_H * self.rows.len() as i32;
        for (c, name) in self.columns.iter().enumerate() {
            let at = (grid_x + c as i32 * CELL_W + CELL_W / 2, bottom + 4);
            let label = style(12.0, HPos::Center, VPos::Top);
            root.draw(&Text::new(name.clone(), at, label))
                .map_err(err)?;
        }
        let caption = style(13.0, HPos::Center, VPos::Top);
        root.draw(&Text::new("temporal bucket", (mid, bottom + 26), caption))
            .map_err(err)
    }
}
