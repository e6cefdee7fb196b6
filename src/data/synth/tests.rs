//! The generator: determinism, calibration, a learnable planted signal, the file layouts.

use std::fs;
use std::path::Path;

use super::planted::CALIBRATION_ROWS;
use super::*;
use crate::metrics::auc;

mod content;
mod identity;
mod scenarios;
mod tasks;

fn small(seed: u64) -> SynthConfig {
    SynthConfig {
        vocabs: vec![10, 1000, 10_000_000],
        users: 1000,
        items: 10_000,
        ..SynthConfig::new(seed)
    }
}

fn tmp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("wgrec-synth-{name}-{}", std::process::id()))
}

#[test]
fn same_seed_writes_the_same_bytes_and_another_seed_does_not() {
    let read = |dir: &Path| fs::read(dir.join("train.tsv")).unwrap();
    let (a, b, c) = (tmp("det-a"), tmp("det-b"), tmp("det-c"));
    for (dir, seed) in [(&a, 7), (&b, 7), (&c, 8)] {
        let synth = Synth::new(SynthConfig::criteo(seed)).unwrap();
        write(&synth, 2000, Layout::Criteo, dir).unwrap();
    }
    assert_eq!(read(&a), read(&b));
    assert_ne!(read(&a), read(&c));
    for d in [a, b, c] {
        fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn labels_follow_the_planted_probabilities_within_a_binomial_bound_down_to_one_percent() {
    for rate in [0.2, 0.01] {
        let synth = Synth::new(SynthConfig {
            positive_rate: rate,
            ..small(3)
        })
        .unwrap();
        let n = 40_000u64;
        let (mut positives, mut expected, mut variance) = (0.0, 0.0, 0.0);
        for row in synth.rows(0..n) {
            positives += f64::from(row.labels[0]);
            expected += row.probs[0];
            variance += row.probs[0] * (1.0 - row.probs[0]);
        }
        // The label draw: 5 standard deviations of the exact Poisson-binomial.
        assert!(
            (positives - expected).abs() <= 5.0 * variance.sqrt(),
            "rate {rate}: {positives} vs {expected}"
        );
        // The calibration: the planted mean within 5 binomial deviations of the asked rate (the
        // calibration sample adds noise of sd ≤ √(r(1−r)/CALIBRATION_ROWS), small next to this set's).
        let bound =
            5.0 * (rate * (1.0 - rate) * (1.0 / n as f64 + 1.0 / CALIBRATION_ROWS as f64)).sqrt();
        assert!(
            (positives / n as f64 - rate).abs() <= bound,
            "rate {rate}: observed {}",
            positives / n as f64
        );
    }
}

#[test]
fn the_planted_model_ranks_well_and_a_logistic_regression_learns_it() {
    let synth = Synth::new(SynthConfig {
        vocabs: vec![10, 100, 1000],
        ..small(5)
    })
    .unwrap();
    let rows: Vec<SynthRow> = synth.rows(0..30_000).collect();
    let labels: Vec<f32> = rows.iter().map(|r| f32::from(r.labels[0])).collect();
    let probs: Vec<f32> = rows.iter().map(|r| r.probs[0] as f32).collect();
    let planted = auc(&probs, &labels, None).unwrap().unwrap();
    assert!(planted > 0.72, "planted AUC {planted}");
    // One-hot logistic regression (hashed, 2^16 rows) with SGD on 25,000 rows, AUC on 5,000 held out.
    let features = |r: &SynthRow| -> Vec<usize> {
        let mut f: Vec<usize> = r
            .ids
            .iter()
            .enumerate()
            .map(|(k, &id)| hash3(9, k as u64, id) as usize % 65536)
            .collect();
        f.extend(
            r.categorical
                .iter()
                .enumerate()
                .filter_map(|(k, v)| v.map(|id| hash3(9, 100 + k as u64, id) as usize % 65536)),
        );
        f.extend(
            r.hist_cats
                .iter()
                .filter(|&&c| c == r.ids[2])
                .map(|_| 65535),
        ); // "history matches target category"
        f
    };
    let mut w = vec![0.0f64; 65536];
    let mut bias = 0.0;
    for _ in 0..3 {
        for (r, &y) in rows[..25_000].iter().zip(&labels) {
            let f = features(r);
            let p = sigmoid(bias + f.iter().map(|&i| w[i]).sum::<f64>());
            let g = p - f64::from(y);
            bias -= 0.05 * g;
            for i in f {
                w[i] -= 0.05 * g;
            }
        }
    }
    let scores: Vec<f32> = rows[25_000..]
        .iter()
        .map(|r| (bias + features(r).iter().map(|&i| w[i]).sum::<f64>()) as f32)
        .collect();
    let learned = auc(&scores, &labels[25_000..], None).unwrap().unwrap();
    eprintln!("planted AUC {planted:.4}, learned AUC {learned:.4}");
    assert!(learned > 0.68, "learned AUC {learned} (planted {planted})");
    assert!(
        w[65535] > 0.05,
        "history in the target's category raises the click odds: {}",
        w[65535]
    );
}

#[test]
fn criteo_layout_has_40_columns_8_hex_digit_ids_and_empty_values() {
    let dir = tmp("criteo");
    let synth = Synth::new(SynthConfig::criteo(11)).unwrap();
    let stats = write(&synth, 3000, Layout::Criteo, &dir).unwrap();
    assert_eq!(stats.rows, [2400, 300, 300]);
    let text = fs::read_to_string(dir.join("train.tsv")).unwrap();
    let (mut empty, mut cells) = (0, 0);
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 40, "{line}");
        assert!(f[0] == "0" || f[0] == "1");
        assert!(
            f[1..14]
                .iter()
                .all(|v| v.is_empty() || v.parse::<u64>().is_ok()),
            "{line}"
        );
        assert!(f[14..].iter().all(|v| v.is_empty() || (v.len() == 8 && v.chars().all(|c| c.is_ascii_hexdigit()))), "{line}");
        empty += f[1..].iter().filter(|v| v.is_empty()).count();
        cells += 39;
    }
    let share = empty as f64 / cells as f64;
    assert!((share - 0.05).abs() < 0.01, "empty share {share}");
    let schema: toml::Value =
        toml::from_str(&fs::read_to_string(dir.join("schema.toml")).unwrap()).unwrap();
    assert_eq!(schema["header"].as_bool(), Some(false));
    assert_eq!(
        schema["columns"].as_str(),
        Some("label:click, numeric:I1-I13, categorical:C1-C26"),
        "the three-line compact schema"
    );
    let parsed = crate::data::Schema::load(&dir.join("schema.toml")).unwrap();
    assert_eq!(parsed.columns.len(), 40);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn table_layout_matches_its_schema_and_histories_are_earlier_than_the_event() {
    let dir = tmp("table");
    let synth = Synth::new(SynthConfig {
        second_task: Some((0.05, 0.7)),
        ..small(13)
    })
    .unwrap();
    write(&synth, 1000, Layout::Table, &dir).unwrap();
    let text = fs::read_to_string(dir.join("valid.tsv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let names: Vec<String> = synth.columns().into_iter().map(|c| c.0).collect();
    assert_eq!(header, names);
    let at = |n: &str| header.iter().position(|h| *h == n).unwrap();
    for line in lines {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), header.len());
        let t: i64 = f[at("timestamp")].parse().unwrap();
        let times: Vec<i64> = f[at("hist_time")]
            .split('|')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap())
            .collect();
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]) && times.iter().all(|&h| h < t),
            "{line}"
        );
        assert_eq!(
            times.len(),
            f[at("hist_item")]
                .split('|')
                .filter(|s| !s.is_empty())
                .count()
        );
    }
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn zipf_sampler_matches_the_exact_distribution_and_stays_in_range() {
    let mut rng = Rng::new(1);
    let (n_ids, s) = (50u64, 1.1);
    let z = ZipfSampler::new(n_ids, s);
    let total: f64 = (1..=n_ids).map(|k| (k as f64).powf(-s)).sum();
    let n = 200_000;
    let mut counts = vec![0u32; n_ids as usize];
    for _ in 0..n {
        counts[z.sample(&mut rng) as usize] += 1;
    }
    for k in [0usize, 1, 5, 20, 49] {
        let p = ((k + 1) as f64).powf(-s) / total;
        let got = counts[k] as f64 / n as f64;
        // 5 binomial standard deviations.
        assert!(
            (got - p).abs() <= 5.0 * (p * (1.0 - p) / n as f64).sqrt(),
            "rank {k}: {got} vs {p}"
        );
    }
    let big = ZipfSampler::new(10_000_000, 1.1);
    assert!((0..10_000).all(|_| big.sample(&mut rng) < 10_000_000));
    assert_eq!(ZipfSampler::new(1, 1.1).sample(&mut rng), 0);
}

#[test]
fn second_task_is_calibrated_and_correlated_with_the_first() {
    let synth = Synth::new(SynthConfig {
        second_task: Some((0.05, 0.7)),
        ..small(17)
    })
    .unwrap();
    assert_eq!(synth.tasks(), 2);
    let n = 40_000;
    let rows: Vec<SynthRow> = synth.rows(0..n).collect();
    let love: f64 = rows.iter().map(|r| f64::from(r.labels[1])).sum::<f64>() / n as f64;
    assert!(
        (love - 0.05).abs() <= 5.0 * (0.05f64 * 0.95 * 2.0 / n as f64).sqrt(),
        "love rate {love}"
    );
    let corr = pearson(rows.iter().map(|r| (r.probs[0], r.probs[1])));
    assert!(corr > 0.4, "planted probabilities correlate by {corr}");
}

fn pearson(pairs: impl Iterator<Item = (f64, f64)>) -> f64 {
    let v: Vec<(f64, f64)> = pairs.collect();
    let n = v.len() as f64;
    let (mx, my) = (
        v.iter().map(|p| p.0).sum::<f64>() / n,
        v.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let cov: f64 = v.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let vx: f64 = v.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let vy: f64 = v.iter().map(|p| (p.1 - my).powi(2)).sum();
    cov / (vx * vy).sqrt()
}

#[test]
fn bad_rates_are_errors() {
    for c in [
        SynthConfig {
            positive_rate: 0.0,
            ..small(1)
        },
        SynthConfig {
            missing_rate: 1.0,
            ..small(1)
        },
    ] {
        let e = Synth::new(c).unwrap_err().to_string();
        assert!(e.starts_with("dataset synth:"), "{e}");
    }
}

#[test]
fn a_batch_holds_the_same_rows_as_the_iterator_in_columns() {
    let synth = Synth::new(SynthConfig {
        missing_rate: 0.2,
        second_task: Some((0.1, 0.5)),
        ..small(21)
    })
    .unwrap();
    let b = synth.batch(100..350);
    let rows: Vec<SynthRow> = synth.rows(100..350).collect();
    assert_eq!((b.rows, b.tasks, b.hist_offsets.len()), (250, 2, 251));
    let fields = 3 + synth.config().vocabs.len();
    let numeric = synth.config().numeric;
    for (r, row) in rows.iter().enumerate() {
        assert_eq!(
            b.labels[2 * r..2 * r + 2],
            [f32::from(row.labels[0]), f32::from(row.labels[1])]
        );
        assert_eq!(b.ids[r * fields..r * fields + 3], row.ids[..]);
        let context: Vec<u64> = row
            .categorical
            .iter()
            .map(|v| v.unwrap_or(MISSING))
            .collect();
        assert_eq!(b.ids[r * fields + 3..(r + 1) * fields], context[..]);
        for (j, v) in row.numeric.iter().enumerate() {
            let got = b.numeric[r * numeric + j];
            assert!(v.map_or(got.is_nan(), |x| got == x as f32));
        }
        let (lo, hi) = (b.hist_offsets[r] as usize, b.hist_offsets[r + 1] as usize);
        assert_eq!(b.hist_items[lo..hi], row.hist_items[..]);
        assert_eq!(b.hist_times[lo..hi], row.hist_times[..]);
    }
    assert!(b.ids.contains(&MISSING) && b.numeric.iter().any(|x| x.is_nan()));
}

/// Both layouts keep the readers' contract: the written schema parses and every split reads back
/// whole with the generic table reader (the Criteo one from its compact three-line schema).
#[test]
fn written_files_read_back_through_the_schema_and_the_table_reader() {
    for (layout, name, config) in [
        (Layout::Table, "read-table", small(5)),
        (Layout::Criteo, "read-criteo", SynthConfig::criteo(5)),
    ] {
        let dir = tmp(name);
        let synth = Synth::new(config).unwrap();
        let stats = write(&synth, 3000, layout, &dir).unwrap();
        let schema = crate::data::Schema::load(&dir.join("schema.toml")).unwrap();
        for (split, rows) in ["train", "valid", "test"].into_iter().zip(stats.rows) {
            let path = dir.join(format!("{split}.tsv"));
            let mut reader =
                crate::data::TableReader::open(&path, &schema, crate::data::ReadOptions::default())
                    .unwrap();
            let mut read = 0u64;
            while let Some(batch) = reader.next_batch().unwrap() {
                read += batch.rows as u64;
            }
            assert_eq!(read, rows, "{name} {split}");
        }
        fs::remove_dir_all(dir).unwrap();
    }
}
