//! Rolling metrics against the one-shot metrics over the same rows, and an exact checkpoint.

use super::*;
use crate::metrics::{auc, calibration, logloss};
use crate::rng::Rng;

const TASKS: usize = 2;

/// `rows` scored rows for two tasks; task 1's labels are missing on a third of the rows, and
/// scores lean towards the label so AUCs are not ½.
fn stream(rows: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = Rng::new(seed);
    let (mut scores, mut labels) = (Vec::new(), Vec::new());
    for _ in 0..rows * TASKS {
        let y = rng.below(2) as f32;
        scores.push((0.3 * y + 0.7 * rng.unit() as f32).clamp(0.0, 1.0));
        labels.push(if rng.below(3) == 0 && labels.len() % 2 == 1 {
            MISSING_LABEL
        } else {
            y
        });
    }
    (scores, labels)
}

fn column(values: &[f32], task: usize, rows: std::ops::Range<usize>) -> Vec<f32> {
    rows.map(|r| values[r * TASKS + task]).collect()
}

fn names() -> Vec<String> {
    vec!["click".into(), "like".into()]
}

/// Pushes the stream in uneven batches (so batches straddle windows) and collects the reports.
fn push_all(
    metrics: &mut RollingMetrics,
    scores: &[f32],
    labels: &[f32],
    from: usize,
    to: usize,
) -> Vec<WindowReport> {
    let sizes = [7usize, 13, 1, 20, 3];
    let (mut r, mut k, mut out) = (from, 0, Vec::new());
    while r < to {
        let n = sizes[k % sizes.len()].min(to - r);
        let span = r * TASKS..(r + n) * TASKS;
        out.extend(
            metrics
                .push(&scores[span.clone()], &labels[span], n)
                .unwrap(),
        );
        (r, k) = (r + n, k + 1);
    }
    out
}

#[test]
fn windows_and_totals_equal_the_metrics_of_the_concatenated_rows() {
    let (scores, labels) = stream(95, 7);
    let mut metrics = RollingMetrics::new(names(), 25).unwrap();
    let reports = push_all(&mut metrics, &scores, &labels, 0, 95);
    assert_eq!(reports.len(), 3);
    let partial = metrics.partial().unwrap().expect("20 rows left");
    assert_eq!(partial.rows, [75, 94]);
    for (k, report) in reports.iter().chain([&partial]).enumerate() {
        assert_eq!(report.window, k as u64);
        let rows = report.rows[0] as usize..report.rows[1] as usize + 1;
        for (t, name) in names().iter().enumerate() {
            let (s, y) = (
                column(&scores, t, rows.clone()),
                column(&labels, t, rows.clone()),
            );
            let got = &report.tasks[name];
            assert_eq!(got.auc, auc(&s, &y, None).unwrap(), "{name} window {k}");
            assert_eq!(got.logloss, logloss(&s, &y, None).unwrap());
            assert_eq!(got.calibration, calibration(&s, &y, None).unwrap());
            assert_eq!(
                got.labelled,
                y.iter().filter(|&&v| v != MISSING_LABEL).count() as u64
            );
            let all = 0..rows.end;
            let (s, y) = (column(&scores, t, all.clone()), column(&labels, t, all));
            let total = &report.total[name];
            assert_eq!(
                total.logloss,
                logloss(&s, &y, None).unwrap(),
                "{name} total {k}"
            );
            assert_eq!(total.calibration, calibration(&s, &y, None).unwrap());
        }
    }
    assert!(
        reports[0].tasks["like"].labelled < 25,
        "some labels are missing"
    );
}

#[test]
fn a_restored_state_emits_the_windows_of_an_uninterrupted_run() {
    let (scores, labels) = stream(90, 11);
    let mut straight = RollingMetrics::new(names(), 20).unwrap();
    let want = push_all(&mut straight, &scores, &labels, 0, 90);
    let mut first = RollingMetrics::new(names(), 20).unwrap();
    let mut got = push_all(&mut first, &scores, &labels, 0, 47);
    let saved = serde_json::to_string(&first).unwrap();
    let mut restored: RollingMetrics = serde_json::from_str(&saved).unwrap();
    assert_eq!(restored, first);
    got.extend(push_all(&mut restored, &scores, &labels, 47, 90));
    assert_eq!(got, want);
    assert_eq!(restored.partial().unwrap(), straight.partial().unwrap());
}

#[test]
fn a_report_is_one_json_line_tagged_window() {
    let mut metrics = RollingMetrics::new(vec!["click".into()], 2).unwrap();
    let reports = metrics.push(&[0.25, 0.75], &[0.0, 1.0], 2).unwrap();
    let line = reports[0].to_json_line();
    assert!(
        line.starts_with(
            r#"{"event":"window","window":0,"rows":[0,1],"tasks":{"click":{"auc":1.0,"#
        ),
        "{line}"
    );
    assert!(!line.contains('\n'));
    let back: WindowReport = serde_json::from_str(&line).unwrap();
    assert_eq!(back, reports[0]);
}

#[test]
fn bad_input_is_an_error_naming_the_row_and_leaves_the_state_alone() {
    let mut metrics = RollingMetrics::new(names(), 4).unwrap();
    metrics.push(&[0.5, 0.5], &[1.0, 0.0], 1).unwrap();
    let before = metrics.clone();
    let e = metrics
        .push(&[0.5, 0.5, 0.5, 1.5], &[1.0, 0.0, 1.0, 0.0], 2)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("stream row 2") && e.contains("\"like\"") && e.contains("1.5"),
        "{e}"
    );
    let e = metrics
        .push(&[0.5, 0.5], &[2.0, 0.0], 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("label 2"), "{e}");
    assert!(
        metrics.push(&[0.5], &[1.0], 1).is_err(),
        "one score for two tasks"
    );
    assert_eq!(metrics, before);
    assert!(RollingMetrics::new(names(), 0).is_err());
}
