//! Several tasks: the planted conflict shows in the labels, each task keeps its rate, bad task
//! settings name their field.

use super::*;

/// Four context fields of 40 ids each (c1 and c3 conflict, c0 and c2 do not), no sequences: each
/// id is seen often enough for its per-task effect to be measured from labels.
fn tasks(seed: u64, conflict: f64) -> SynthConfig {
    SynthConfig {
        vocabs: vec![40; 4],
        max_history: 0,
        numeric: 1,
        positive_rate: 0.3,
        extra_task_rates: vec![0.3],
        conflict,
        ..SynthConfig::new(seed)
    }
}

/// Pearson correlation, over the ids of context field `f` seen at least 300 times, between the
/// ids' mean labels of task 0 and of task 1.
fn per_id_label_correlation(rows: &[SynthRow], f: usize) -> f64 {
    let mut sums: std::collections::HashMap<u64, (f64, f64, f64)> = Default::default();
    for r in rows {
        if let Some(id) = r.categorical[f] {
            let e = sums.entry(id).or_default();
            *e = (
                e.0 + 1.0,
                e.1 + f64::from(r.labels[0]),
                e.2 + f64::from(r.labels[1]),
            );
        }
    }
    let means = sums.values().filter(|s| s.0 >= 300.0);
    let means: Vec<(f64, f64)> = means.map(|s| (s.1 / s.0, s.2 / s.0)).collect();
    assert!(
        means.len() >= 10,
        "field c{f}: only {} ids measured",
        means.len()
    );
    pearson(means.into_iter())
}

/// The planted effects: an id's weight w moves task 0's rate by about p(1−p)·w (sd ≈ 0.21 × 0.45
/// ≈ 0.09 across ids) and task 1's by (1 − 2·conflict) times that; a mean over ≥ 300 rows is off
/// by at most √(0.21/300) ≈ 0.026 (sd). Signal variance ≈ 8× each side's noise variance, so the
/// expected correlation is about ±0.85 (noise on both sides: r ≈ 1/(1 + 1/8)); ±0.5 leaves a wide
/// margin, yet a generator without the conflict (r ≈ +0.85 on c1) fails it.
#[test]
fn conflict_turns_the_tasks_label_correlation_negative_on_the_conflicting_fields_only() {
    for (conflict, sign) in [(0.0, 1.0), (1.0, -1.0)] {
        let synth = Synth::new(tasks(31, conflict)).unwrap();
        assert_eq!(synth.tasks(), 2);
        let rows: Vec<SynthRow> = synth.rows(0..60_000).collect();
        for (f, conflicting) in [(0, false), (1, true), (2, false), (3, true)] {
            let r = per_id_label_correlation(&rows, f);
            let want = if conflicting { sign } else { 1.0 };
            assert!(
                r * want > 0.5,
                "conflict {conflict}, field c{f}: correlation {r}, want sign {want}"
            );
        }
    }
}

/// Conflict 0 with equal rates plants the same task twice: same scores, same calibration, so the
/// same probabilities to the bit (the labels differ only by their independent draws).
#[test]
fn extra_tasks_without_conflict_plant_the_first_task_again() {
    let synth = Synth::new(tasks(5, 0.0)).unwrap();
    for row in synth.rows(0..2000) {
        assert_eq!(row.probs[0].to_bits(), row.probs[1].to_bits());
    }
}

/// The independent mode at conflict 0 is the agreement of the flip mode: the same probabilities up
/// to the rounding of its other order of summation (1e-12 on a probability).
#[test]
fn independent_conflict_zero_plants_the_first_task_again() {
    let synth = Synth::new(SynthConfig {
        conflict_mode: ConflictMode::Independent,
        ..tasks(5, 0.0)
    })
    .unwrap();
    for row in synth.rows(0..2000) {
        assert!(
            (row.probs[0] - row.probs[1]).abs() < 1e-12,
            "{:?}",
            row.probs
        );
    }
}

/// Independent effects on K: task 1's per-id rates on c1 and c3 are uncorrelated with task 0's
/// (expected r = 0; with the ~20–40 ids measured its sd is ≈ 0.2, so |r| < 0.5 is ~2.5 sd, while
/// a flip gives r ≈ −0.85 and agreement r ≈ +0.85), and still agree on c0 and c2 (r > 0.5, as in
/// the flip test above).
#[test]
fn independent_conflict_decorrelates_the_conflicting_fields_only() {
    let synth = Synth::new(SynthConfig {
        conflict_mode: ConflictMode::Independent,
        ..tasks(31, 1.0)
    })
    .unwrap();
    let rows: Vec<SynthRow> = synth.rows(0..100_000).collect();
    for (f, conflicting) in [(0, false), (1, true), (2, false), (3, true)] {
        let r = per_id_label_correlation(&rows, f);
        let ok = if conflicting { r.abs() < 0.5 } else { r > 0.5 };
        assert!(ok, "field c{f}: correlation {r}");
    }
}

/// Each task's observed rate within 5 standard errors of its asked rate: the binomial error of
/// these n rows plus the calibration sample's (both √(r(1−r)/n)); 5 sd is one false alarm in
/// ~1.7 million runs, while a task calibrated to another task's rate misses by ≥ 0.1, i.e. ≥ 30 sd.
#[test]
fn each_task_keeps_its_own_positive_rate_under_conflict_and_scenarios() {
    let rates = [0.2, 0.05, 0.5, 0.7];
    let synth = Synth::new(SynthConfig {
        positive_rate: rates[0],
        extra_task_rates: rates[1..].to_vec(),
        conflict: 0.7,
        scenarios: 3,
        ..small(8)
    })
    .unwrap();
    assert_eq!(synth.tasks(), 4);
    let n = 40_000u64;
    let mut positives = [0.0; 4];
    for row in synth.rows(0..n) {
        for (p, &l) in positives.iter_mut().zip(&row.labels) {
            *p += f64::from(l);
        }
    }
    for (t, (&rate, p)) in rates.iter().zip(positives).enumerate() {
        let observed = p / n as f64;
        let se = (rate * (1.0 - rate) * (1.0 / n as f64 + 1.0 / CALIBRATION_ROWS as f64)).sqrt();
        assert!(
            (observed - rate).abs() <= 5.0 * se,
            "task {t}: observed {observed}, asked {rate}"
        );
    }
}

#[test]
fn bad_task_settings_are_errors_that_name_the_field() {
    let cases = [
        (
            SynthConfig {
                extra_task_rates: vec![0.3, 1.0],
                ..small(1)
            },
            "extra_task_rates[1]",
        ),
        (
            SynthConfig {
                extra_task_rates: vec![0.0],
                ..small(1)
            },
            "extra_task_rates[0]",
        ),
        (
            SynthConfig {
                conflict: 1.5,
                ..small(1)
            },
            "conflict",
        ),
        (
            SynthConfig {
                conflict: f64::NAN,
                ..small(1)
            },
            "conflict",
        ),
        (
            SynthConfig {
                second_task: Some((0.2, 0.5)),
                extra_task_rates: vec![0.2],
                ..small(1)
            },
            "second_task and extra_task_rates",
        ),
        (
            SynthConfig {
                scenarios: 2,
                vocabs: vec![],
                ..small(1)
            },
            "scenarios",
        ),
    ];
    for (config, field) in cases {
        let e = Synth::new(config).unwrap_err().to_string();
        assert!(e.starts_with("dataset synth:") && e.contains(field), "{e}");
    }
}
