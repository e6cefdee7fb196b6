//! PNG line charts for the scaling sweeps (`wgrec bench --scaling`) and whatever else plots a figure
//! against a size: one chart, several labelled series, linear or log-scaled x.
//!
//! Text is drawn with the DejaVu Sans Mono font compiled into the binary (`assets/fonts/`, Bitstream
//! Vera licence), through plotters' `ab_glyph` route, so a bare machine without fontconfig or fonts
//! draws the same chart.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use crate::error::{Error, Result};

/// The font every chart's text uses.
const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSansMono.ttf");

/// Chart size in pixels.
const SIZE: (u32, u32) = (960, 600);

/// One line of a chart: its legend label and its points `(x, y)`, drawn in the given order.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The legend label.
    pub label: String,
    /// The points.
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// A series from a label and points.
    pub fn new(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series {
            label: label.into(),
            points,
        }
    }
}

pub(crate) fn fonts() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        for family in ["sans-serif", "serif", "monospace"] {
            // The bytes are a valid TrueType font compiled in; a failure here is a build defect,
            // caught by the tests, and leaves text drawing to report FontUnavailable.
            let _ = register_font(family, FontStyle::Normal, FONT);
        }
    });
}

/// Writes a line chart of `series` to `path` (PNG, 960 × 600): `title` above, axis labels, a legend,
/// a marker at each point. `log_x` draws x on a log₁₀ scale (every x must then be > 0). The y axis
/// starts at 0 unless some y is negative.
///
/// Errors ([`Error::Plot`], naming `path`): no series, a series without points, a non-finite
/// coordinate, a non-positive x with `log_x`, or a failure to draw or write the file.
pub fn line_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_x: bool,
) -> Result<()> {
    line_chart_fitted(path, title, x_label, y_label, series, log_x, true)
}

/// [`line_chart`] with the choice of the y axis's start: from 0 (`y_from_zero`, as `line_chart`
/// draws) or fitted to the points with a 5 % margin, for metrics that move in a narrow band far
/// from 0 (the online AUC curves, `crate::online::curves`).
pub fn line_chart_fitted(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_x: bool,
    y_from_zero: bool,
) -> Result<()> {
    let bad = |message: String| Error::Plot {
        file: path.to_path_buf(),
        message,
    };
    if series.is_empty() {
        return Err(bad("no series to draw".into()));
    }
    for s in series {
        if s.points.is_empty() {
            return Err(bad(format!("series {:?} has no points", s.label)));
        }
        if let Some(p) = s
            .points
            .iter()
            .find(|(x, y)| !x.is_finite() || !y.is_finite())
        {
            return Err(bad(format!(
                "series {:?} has a non-finite point {p:?}",
                s.label
            )));
        }
        if log_x {
            if let Some(p) = s.points.iter().find(|(x, _)| *x <= 0.0) {
                return Err(bad(format!(
                    "series {:?}: x = {} cannot go on a log axis",
                    s.label, p.0
                )));
            }
        }
    }
    let ranges = ranges(series, log_x, y_from_zero);
    fonts();
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    render(root, title, x_label, y_label, series, log_x, ranges).map_err(|e| bad(e.to_string()))
}

/// The axes' ranges for `series` (checked: finite, positive x on a log axis).
fn ranges(series: &[Series], log_x: bool, y_from_zero: bool) -> Ranges {
    let all = || series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1) = all().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
        (a.min(p.0), b.max(p.0))
    });
    let y_start = if y_from_zero { 0.0 } else { f64::INFINITY };
    let (mut y0, mut y1) = all().fold((y_start, f64::NEG_INFINITY), |(a, b), p| {
        (a.min(p.1), b.max(p.1))
    });
    if !y_from_zero {
        y0 -= 0.05 * (y1 - y0);
    }
    if x0 == x1 {
        (x0, x1) = if log_x {
            (x0 / 2.0, x1 * 2.0)
        } else {
            (x0 - 1.0, x1 + 1.0)
        };
    }
    if y1 <= y0 {
        y1 = y0 + 1.0;
    }
    y1 += 0.05 * (y1 - y0);
    if y0 < 0.0 && y_from_zero {
        y0 -= 0.05 * (y1 - y0);
    }
    (x0, x1, y0, y1)
}

/// A tick label: 3 significant digits, k/M/G suffixes from 10⁴ on, no trailing zeros.
fn compact(v: f64) -> String {
    let (scaled, suffix) = match v.abs() {
        a if a >= 1e9 => (v / 1e9, "G"),
        a if a >= 1e6 => (v / 1e6, "M"),
        a if a >= 1e4 => (v / 1e3, "k"),
        _ => (v, ""),
    };
    let digits = if scaled.abs() >= 100.0 || scaled == scaled.round() {
        0
    } else if scaled.abs() >= 10.0 {
        1
    } else {
        2
    };
    let text = format!("{scaled:.digits$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    format!("{text}{suffix}")
}

type Ranges = (f64, f64, f64, f64);

/// Draws the chart on `root` (fonts registered, series checked) and presents it.
fn render<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_x: bool,
    (x0, x1, y0, y1): Ranges,
) -> std::result::Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72);
    macro_rules! body {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(x_label)
                .y_desc(y_label)
                .x_labels(8)
                .x_label_formatter(&|x| compact(*x))
                .y_label_formatter(&|y| compact(*y))
                .light_line_style(RGBColor(235, 235, 235))
                .label_style(("sans-serif", 14))
                .axis_desc_style(("sans-serif", 16))
                .draw()?;
            for (i, s) in series.iter().enumerate() {
                let color = Palette99::pick(i).to_rgba();
                chart
                    .draw_series(LineSeries::new(
                        s.points.iter().copied(),
                        color.stroke_width(2),
                    ))?
                    .label(s.label.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2))
                    });
                chart.draw_series(s.points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
            }
            chart
                .configure_series_labels()
                .label_font(("sans-serif", 14))
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .position(SeriesLabelPosition::UpperLeft)
                .draw()?;
        }};
    }
    if log_x {
        body!(builder.build_cartesian_2d((x0..x1).log_scale(), y0..y1)?);
    } else {
        body!(builder.build_cartesian_2d(x0..x1, y0..y1)?);
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("wgrec-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    /// A chart is a PNG of the stated size, and its text is drawn: the title band holds dark
    /// pixels (glyphs) that a chart without text would not have.
    #[test]
    fn writes_png_with_text() {
        let path = tmp("lines.png");
        let series = [
            Series::new("a", vec![(1.0, 1.0), (10.0, 4.0), (100.0, 2.0)]),
            Series::new("b", vec![(1.0, 0.5), (1000.0, 3.0)]),
        ];
        line_chart(&path, "Title", "x", "y", &series, true).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        // IHDR: width and height, big-endian, at bytes 16..24.
        assert_eq!(
            u32::from_be_bytes(bytes[16..20].try_into().unwrap()),
            SIZE.0
        );
        assert_eq!(
            u32::from_be_bytes(bytes[20..24].try_into().unwrap()),
            SIZE.1
        );
        // The same chart drawn into memory: the caption band (top 40 rows, middle third) must hold
        // glyph pixels; without a usable font it would be white.
        let mut buf = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut buf, SIZE).into_drawing_area();
            render(
                root,
                "Title",
                "x",
                "y",
                &series,
                true,
                (1.0, 1000.0, 0.0, 4.2),
            )
            .unwrap();
        }
        let dark = (0..40u32)
            .flat_map(|y| (320..640u32).map(move |x| (y * SIZE.0 + x) as usize * 3))
            .filter(|&i| buf[i] < 128)
            .count();
        assert!(dark > 20, "no glyph pixels in the caption band ({dark})");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_fitted_y_axis_hugs_the_points_and_the_default_starts_at_zero() {
        let series = [Series::new("auc", vec![(1.0, 0.70), (2.0, 0.75)])];
        let (_, _, y0, y1) = ranges(&series, false, false);
        assert!(
            y0 > 0.69 && y0 < 0.70 && y1 > 0.75 && y1 < 0.76,
            "{y0} {y1}"
        );
        let (_, _, y0, y1) = ranges(&series, false, true);
        assert_eq!(y0, 0.0);
        assert!(y1 > 0.75 && y1 < 0.80, "{y1}");
        let path = tmp("fitted.png");
        line_chart_fitted(&path, "t", "x", "y", &series, false, false).unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() > 1000);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn tick_labels() {
        let cases = [
            (0.0, "0"),
            (2.5, "2.5"),
            (0.126, "0.13"),
            (12.34, "12.3"),
            (300.0, "300"),
            (10_000.0, "10k"),
            (150_000.0, "150k"),
            (1_500_000.0, "1.5M"),
            (-20_000.0, "-20k"),
            (3e9, "3G"),
        ];
        for (v, want) in cases {
            assert_eq!(compact(v), want, "{v}");
        }
    }

    #[test]
    fn linear_axis_and_single_point() {
        let path = tmp("one.png");
        line_chart(
            &path,
            "t",
            "x",
            "y",
            &[Series::new("s", vec![(3.0, 2.0)])],
            false,
        )
        .unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() > 1000);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn rejects_unplottable_series() {
        let path = tmp("bad.png");
        let cases: [(&[Series], bool, &str); 4] = [
            (&[], false, "no series"),
            (&[Series::new("e", vec![])], false, "no points"),
            (
                &[Series::new("n", vec![(1.0, f64::NAN)])],
                false,
                "non-finite",
            ),
            (&[Series::new("z", vec![(0.0, 1.0)])], true, "log axis"),
        ];
        for (series, log_x, want) in cases {
            let e = line_chart(&path, "t", "x", "y", series, log_x).unwrap_err();
            let text = e.to_string();
            assert!(text.contains(want) && text.contains("bad.png"), "{text}");
        }
        assert!(!path.exists());
    }
}
