//! The scenario column: per-scenario rates follow the planted biases, the column reaches the
//! batch and the files like any categorical column.

use std::fs;

use super::*;

/// Rows per scenario: (rows, positives, planted mean) of task 0, over rows where c0 is empty (so
/// only the scenario's bias, not its slope on c0, separates scenarios) or over all rows.
fn per_scenario(rows: &[SynthRow], scenarios: usize, c0_empty: bool) -> Vec<(f64, f64, f64)> {
    let mut out = vec![(0.0, 0.0, 0.0); scenarios];
    for r in rows
        .iter()
        .filter(|r| !c0_empty || r.categorical[0].is_none())
    {
        let e = &mut out[r.scenario.expect("scenarios are on") as usize];
        *e = (e.0 + 1.0, e.1 + f64::from(r.labels[0]), e.2 + r.probs[0]);
    }
    out
}

/// Where c0 is empty, a row's other features do not depend on its scenario (the scenario comes
/// from its own stream), so a scenario's rate is E σ(b + β_s + X): strictly increasing in β_s.
/// Pairs whose biases differ by ≥ 0.4 logits differ in rate by ≈ 0.16 × 0.4 × ~0.8 ≈ 0.05, about
/// 7 standard errors of a difference of two rates over ~5,000 rows each (√(2·0.16/5000) ≈ 0.008).
#[test]
fn per_scenario_rates_follow_the_planted_scenario_biases() {
    let s = 5;
    let synth = Synth::new(SynthConfig {
        scenarios: s,
        missing_rate: 0.4,
        ..small(12)
    })
    .unwrap();
    let rows: Vec<SynthRow> = synth.rows(0..70_000).collect();
    let counts = per_scenario(&rows, s as usize, true);
    let mut compared = 0;
    for a in 0..s {
        for b in 0..s {
            if synth.scenario_bias(a, 0) - synth.scenario_bias(b, 0) < 0.4 {
                continue;
            }
            let (ra, rb) = (counts[a as usize], counts[b as usize]);
            assert!(
                ra.1 / ra.0 > rb.1 / rb.0,
                "scenario {a} {ra:?} vs {b} {rb:?}"
            );
            compared += 1;
        }
    }
    assert!(
        compared >= 2,
        "only {compared} pairs of scenarios far enough apart"
    );
    // Over all rows: each scenario's labels follow its planted mean (5 sd of the binomial), and
    // the scenarios' rates spread far beyond that noise, so ignoring the scenario costs.
    let all = per_scenario(&rows, s as usize, false);
    for (k, &(n, pos, planted)) in all.iter().enumerate() {
        let sd = (planted / n * (1.0 - planted / n) / n).sqrt();
        assert!(
            (pos - planted).abs() / n <= 5.0 * sd,
            "scenario {k}: {pos} vs {planted}"
        );
    }
    let rates: Vec<f64> = all.iter().map(|c| c.1 / c.0).collect();
    let spread = rates.iter().cloned().fold(f64::MIN, f64::max)
        - rates.iter().cloned().fold(f64::MAX, f64::min);
    assert!(spread > 0.05, "scenario rates {rates:?}");
}

#[test]
fn the_scenario_column_reaches_the_batch_and_the_files_as_a_categorical_column() {
    let synth = Synth::new(SynthConfig {
        scenarios: 3,
        extra_task_rates: vec![0.4, 0.1],
        conflict: 1.0,
        ..small(6)
    })
    .unwrap();
    let names: Vec<String> = synth.columns().into_iter().map(|c| c.0).collect();
    let c2 = names.iter().position(|n| n == "c2").unwrap();
    assert_eq!(names[..3], ["click", "task1", "task2"]);
    assert_eq!(names[c2 + 1..c2 + 3], ["scenario", "n0"]);
    let b = synth.batch(0..200);
    let fields = 3 + synth.config().vocabs.len() + 1;
    for (r, row) in synth.rows(0..200).enumerate() {
        assert_eq!(Some(b.ids[(r + 1) * fields - 1]), row.scenario);
        assert!(row.scenario.unwrap() < 3);
    }
    let dir = tmp("scenario-files");
    let stats = write(&synth, 1000, Layout::Table, &dir).unwrap();
    assert_eq!(stats.positive_rate.len(), 3);
    let schema = crate::data::Schema::load(&dir.join("schema.toml")).unwrap();
    let path = dir.join("train.tsv");
    let opts = crate::data::ReadOptions::default();
    let mut reader = crate::data::TableReader::open(&path, &schema, opts).unwrap();
    let mut read = 0;
    while let Some(batch) = reader.next_batch().unwrap() {
        read += batch.rows as u64;
    }
    assert_eq!(read, stats.rows[0]);
    let header = fs::read_to_string(&path).unwrap();
    assert_eq!(
        header.lines().next().unwrap().split('\t').count(),
        names.len()
    );
    let e = write(&synth, 10, Layout::Criteo, &dir)
        .unwrap_err()
        .to_string();
    assert!(e.contains("scenario"), "{e}");
    fs::remove_dir_all(dir).unwrap();
}

/// The scenario comes from its own stream, so the same seed without scenarios draws the same
/// features: its probabilities are the planted model blind to the scenario, and they rank the
/// scenario generator's labels worse than the planted probabilities that know it.
#[test]
fn the_scenario_draws_leave_the_features_alone_and_ignoring_the_scenario_loses_auc() {
    let config = SynthConfig {
        scenarios: 6,
        ..small(14)
    };
    let with = Synth::new(config.clone()).unwrap();
    let blind = Synth::new(SynthConfig {
        scenarios: 0,
        ..config
    })
    .unwrap();
    let (mut labels, mut knowing, mut ignoring) = (vec![], vec![], vec![]);
    for (a, b) in with.rows(0..30_000).zip(blind.rows(0..30_000)) {
        assert_eq!(
            (&a.ids, &a.categorical, &a.numeric),
            (&b.ids, &b.categorical, &b.numeric)
        );
        assert_eq!((&a.hist_items, b.scenario), (&b.hist_items, None));
        labels.push(f32::from(a.labels[0]));
        knowing.push(a.probs[0] as f32);
        ignoring.push(b.probs[0] as f32);
    }
    let knowing = auc(&knowing, &labels, None).unwrap().unwrap();
    let ignoring = auc(&ignoring, &labels, None).unwrap().unwrap();
    // The planted gain is about 0.015 here (6 scenarios, c0 weighs −0.7…2.7 times its weight);
    // a paired AUC difference of two scores this correlated varies by ~0.002 over 30,000 rows,
    // so 0.005 keeps about 5 sd of margin and a scenario column without effect fails it.
    assert!(
        knowing > ignoring + 0.005,
        "AUC {knowing} knowing, {ignoring} blind"
    );
}
