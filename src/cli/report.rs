//! How `train` and `eval` show metrics: one line per run on stderr, and the `--json` object
//! (one value per task, or a `{task: value}` map when there are several). With several tasks each
//! task also shows the rows its metrics cover: the rows with a label for it (a row whose label is
//! missing counts for the other tasks only).

use serde_json::{json, Map, Value};
use wgrec::metrics::TaskMetrics;
use wgrec::train::Report;

/// The metrics of every task on one line (with each task's labelled rows when there are several).
pub fn metric_line(tasks: &[String], metrics: &[TaskMetrics]) -> String {
    let fmt = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.4}"));
    let several = tasks.len() > 1;
    tasks
        .iter()
        .zip(metrics)
        .map(|(t, m)| {
            let rows = if several {
                format!(" ({} rows)", m.rows)
            } else {
                String::new()
            };
            format!(
                "{t}: auc {} gauc {} logloss {} calibration {}{rows}",
                fmt(m.auc),
                fmt(m.gauc.map(|g| g.value)),
                fmt(m.logloss),
                fmt(m.calibration)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// `{"name": value}` per task when there are several, the value itself for one.
fn per_task(tasks: &[String], values: Vec<Value>) -> Value {
    if tasks.len() == 1 {
        return values.into_iter().next().unwrap_or(Value::Null);
    }
    let mut map = Map::new();
    for (t, v) in tasks.iter().zip(values) {
        map.insert(t.clone(), v);
    }
    Value::Object(map)
}

/// `{prefix}_auc`, `_gauc`, `_logloss`, `_calibration` and `_rows` (the rows each task's metrics
/// cover), each a value for one task or a `{task: value}` map for several.
pub fn metrics_json(
    prefix: &str,
    tasks: &[String],
    metrics: &[TaskMetrics],
    out: &mut Map<String, Value>,
) {
    let pick = |f: &dyn Fn(&TaskMetrics) -> Option<f64>| -> Value {
        per_task(tasks, metrics.iter().map(|m| json!(f(m))).collect())
    };
    out.insert(format!("{prefix}_auc"), pick(&|m| m.auc));
    out.insert(format!("{prefix}_gauc"), pick(&|m| m.gauc.map(|g| g.value)));
    out.insert(format!("{prefix}_logloss"), pick(&|m| m.logloss));
    out.insert(format!("{prefix}_calibration"), pick(&|m| m.calibration));
    let rows = metrics.iter().map(|m| json!(m.rows)).collect();
    out.insert(format!("{prefix}_rows"), per_task(tasks, rows));
}

pub fn report_json(report: &Report) -> Value {
    let mut out = Map::new();
    if let Some(test) = &report.test {
        metrics_json("test", &report.tasks, test, &mut out);
    }
    if let Some(valid) = &report.valid {
        metrics_json("valid", &report.tasks, valid, &mut out);
    }
    out.insert(
        "train_samples_per_sec".into(),
        json!(report.train_samples_per_sec),
    );
    out.insert("adapter".into(), json!(report.adapter));
    out.insert("epochs".into(), json!(report.state.epochs_done));
    out.insert("best_epoch".into(), json!(report.state.best_epoch));
    out.insert("steps".into(), json!(report.steps));
    out.insert(
        "dispatches_per_step".into(),
        json!(report.dispatches_per_step),
    );
    out.insert("bad_rows".into(), json!(report.bad_rows));
    let rows: serde_json::Map<String, Value> = report
        .rows
        .iter()
        .map(|(split, r)| {
            let counts = json!({"read": r.read, "used": r.used(), "skipped": r.skipped});
            (split.clone(), counts)
        })
        .collect();
    out.insert("rows".into(), Value::Object(rows));
    Value::Object(out)
}
