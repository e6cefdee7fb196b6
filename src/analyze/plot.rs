//! The report's figures: each is drawn once through plotters' generic [`DrawingBackend`] and saved
//! twice, as PNG (for a quick look) and SVG (for papers and zooming), with the font the bench charts
//! use (compiled in, so a bare machine draws the same figure).

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, Result};

/// A figure of the report, drawable on any backend.
pub trait Figure {
    /// Size in pixels (PNG) and in SVG user units.
    fn size(&self) -> (u32, u32) {
        (960, 600)
    }

    /// Draws the figure on `root` (already cleared to white); a failure is reported as text.
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), String>;
}

/// Writes `fig` as `<stem>.png` and `<stem>.svg` into `dir` and returns the two file names (relative
/// to `dir`, as `report.md` links them). Errors are [`Error::Plot`] naming the file.
pub fn save(dir: &Path, stem: &str, fig: &impl Figure) -> Result<[String; 2]> {
    crate::bench::plot::fonts();
    let png = format!("{stem}.png");
    let svg = format!("{stem}.svg");
    let bad = |file: &str, message: String| Error::Plot {
        file: dir.join(file),
        message,
    };
    {
        let path = dir.join(&png);
        let root = BitMapBackend::new(&path, fig.size()).into_drawing_area();
        draw_on(&root, fig).map_err(|m| bad(&png, m))?;
    }
    {
        let path = dir.join(&svg);
        let root = SVGBackend::new(&path, fig.size()).into_drawing_area();
        draw_on(&root, fig).map_err(|m| bad(&svg, m))?;
    }
    Ok([png, svg])
}

fn draw_on<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    fig: &impl Figure,
) -> std::result::Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    fig.draw(root)?;
    root.present().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dot;

    impl Figure for Dot {
        fn size(&self) -> (u32, u32) {
            (64, 48)
        }

        fn draw<DB: DrawingBackend>(
            &self,
            root: &DrawingArea<DB, Shift>,
        ) -> std::result::Result<(), String> {
            root.draw(&Circle::new((32, 24), 5, RED.filled()))
                .map_err(|e| e.to_string())?;
            root.draw(&Text::new("x", (2, 2), ("sans-serif", 12)))
                .map_err(|e| e.to_string())
        }
    }

    #[test]
    fn a_figure_is_written_as_png_and_svg() {
        let dir = std::env::temp_dir().join(format!("wgrec-plot-both-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let names = save(&dir, "dot", &Dot).unwrap();
        assert_eq!(names, ["dot.png".to_string(), "dot.svg".to_string()]);
        let png = std::fs::read(dir.join("dot.png")).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let svg = std::fs::read_to_string(dir.join("dot.svg")).unwrap();
        assert!(svg.contains("<svg") && svg.contains("circle"), "{svg}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
