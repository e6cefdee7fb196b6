//! Progressive-validation curves: a metric per window against the stream row, one line per run,
//! read from the runs' JSON-lines logs (format: [`crate::online::log`]) and drawn with the
//! benchmarks' chart ([`crate::bench::plot`]) on a linear x axis and a y axis fitted to the
//! values (AUCs move in a narrow band far from 0).
//!
//! Each window is a point at x = the number of stream rows seen at its end (its last row + 1) and
//! y = the window's metric for the task. Lines whose `"event"` is not `"window"` are skipped (the
//! log holds the trainer's other events too); a window where the metric is undefined (`null`, e.g.
//! AUC with one class) or that lacks the task is left out. A line that is not JSON, or a window
//! line that is not a window report, is an error naming the file and line; so is a log with no
//! point to draw.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::rolling::{WindowMetrics, WindowReport};
use crate::bench::plot::{line_chart_fitted, Series};
use crate::{Error, Result};

/// The metrics a curve can show.
const METRICS: [&str; 5] = ["auc", "logloss", "calibration", "mean_p", "observed_rate"];

fn metric_of(m: &WindowMetrics, metric: &str) -> Option<f64> {
    match metric {
        "auc" => m.auc,
        "logloss" => m.logloss,
        "calibration" => m.calibration,
        "mean_p" => m.mean_p,
        "observed_rate" => m.observed_rate,
        _ => None,
    }
}

/// Draws `metric` (`auc`, `logloss`, `calibration`, `mean_p` or `observed_rate`) of `task` per
/// window for each `(label, log)` into the PNG `out`.
pub fn plot_curves(logs: &[(String, PathBuf)], metric: &str, task: &str, out: &Path) -> Result<()> {
    if !METRICS.contains(&metric) {
        return Err(Error::Plot {
            file: out.to_path_buf(),
            message: format!("metric {metric:?} is not one of {}", METRICS.join(", ")),
        });
    }
    let mut series = Vec::with_capacity(logs.len());
    for (label, path) in logs {
        let points = read_points(path, metric, task)?;
        if points.is_empty() {
            return Err(Error::data(
                path.display(),
                format!("no window with a {metric} for task {task:?} to draw"),
            ));
        }
        series.push(Series::new(label.clone(), points));
    }
    let title = format!("progressive validation: {metric} of {task} per window");
    line_chart_fitted(out, &title, "stream rows", metric, &series, false, false)
}

/// The `(rows seen, metric)` points of one log's window lines.
pub fn read_points(path: &Path, metric: &str, task: &str) -> Result<Vec<(f64, f64)>> {
    let name = path.display().to_string();
    let file =
        std::fs::File::open(path).map_err(|e| Error::data(&name, format!("cannot open: {e}")))?;
    let mut points = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let at = |message: String| Error::Data {
            file: name.clone(),
            line: Some(i as u64 + 1),
            column: None,
            message,
        };
        let line = line.map_err(|e| at(format!("read failed: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| at(format!("not JSON: {e}")))?;
        if value.get("event").and_then(|e| e.as_str()) != Some("window") {
            continue;
        }
        let report: WindowReport =
            serde_json::from_value(value).map_err(|e| at(format!("not a window report: {e}")))?;
        if let Some(y) = report.tasks.get(task).and_then(|m| metric_of(m, metric)) {
            points.push((report.rows[1] as f64 + 1.0, y));
        }
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::online::rolling::RollingMetrics;

    fn scratch(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wgrec-curves-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A log of windows of 4 rows with an event line between them.
    fn log(path: &Path, lean: f32) {
        let mut metrics = RollingMetrics::new(vec!["click".into()], 4).unwrap();
        let mut text = String::from("{\"event\":\"start\",\"source\":\"x.tsv\"}\n");
        for k in 0..5u8 {
            let labels = [0.0, 1.0, 0.0, 1.0];
            let scores = labels.map(|y| 0.5 + lean * (y - 0.5) * f32::from(k + 1) / 5.0);
            for report in metrics.push(&scores, &labels, 4).unwrap() {
                text += &report.to_json_line();
                text.push('\n');
            }
            text += "{\"event\":\"checkpoint\",\"step\":1}\n";
        }
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn draws_a_png_from_two_logs() {
        let dir = scratch("two");
        let (a, b) = (dir.join("a.jsonl"), dir.join("b.jsonl"));
        log(&a, 0.5);
        log(&b, -0.3);
        assert_eq!(
            read_points(&a, "logloss", "click")
                .unwrap()
                .iter()
                .map(|p| p.0)
                .collect::<Vec<_>>(),
            [4.0, 8.0, 12.0, 16.0, 20.0]
        );
        let out = dir.join("curves.png");
        let logs = [("a".to_string(), a), ("b".to_string(), b)];
        plot_curves(&logs, "logloss", "click", &out).unwrap();
        assert_eq!(&std::fs::read(&out).unwrap()[..8], b"\x89PNG\r\n\x1a\n");
        let e = plot_curves(&logs, "auc", "like", &out)
            .unwrap_err()
            .to_string();
        assert!(e.contains("a.jsonl") && e.contains("no window"), "{e}");
        let e = plot_curves(&logs, "accuracy", "click", &out)
            .unwrap_err()
            .to_string();
        assert!(e.contains("accuracy"), "{e}");
    }

    #[test]
    fn malformed_json_is_an_error_naming_file_and_line() {
        let path = scratch("bad").join("log.jsonl");
        std::fs::write(&path, "{\"event\":\"start\"}\n\n{\"event\":\"window\",\n").unwrap();
        let e = read_points(&path, "auc", "click").unwrap_err().to_string();
        assert!(e.contains("log.jsonl:3") && e.contains("not JSON"), "{e}");
        std::fs::write(&path, "{\"event\":\"window\",\"window\":0}\n").unwrap();
        let e = read_points(&path, "auc", "click").unwrap_err().to_string();
        assert!(
            e.contains("log.jsonl:1") && e.contains("not a window report"),
            "{e}"
        );
    }
}
