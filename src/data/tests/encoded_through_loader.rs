//! The encoder through the loader on generated data: the synthetic writer's files in both
//! layouts, and seeded random sequences against a direct reference, in batches of any size. They
//! sit above `encode` and `loader` both, so neither module's tests reach into the other.

use std::sync::Arc;

use crate::data::encode::tests::*;
use crate::data::loader::Loader;
use crate::rng::Rng;

#[test]
fn the_synthetic_writers_files_encode_in_both_layouts() {
    let d = dir("synth");
    let config = synth::SynthConfig {
        users: 50,
        items: 200,
        categories: 5,
        vocabs: vec![10, 1000],
        numeric: 2,
        missing_rate: 0.1,
        ..synth::SynthConfig::new(3)
    };
    let table = synth::Synth::new(config).unwrap();
    synth::write(&table, 400, synth::Layout::Table, &d.join("table")).unwrap();
    let criteo = synth::Synth::new(synth::SynthConfig::criteo(4)).unwrap();
    synth::write(&criteo, 300, synth::Layout::Criteo, &d.join("criteo")).unwrap();
    let table_model = synth_table_model();
    let criteo_model = synth_criteo_model();
    for (sub, model) in [("table", &table_model), ("criteo", &criteo_model)] {
        let dir = d.join(sub);
        let schema = Schema::load(&dir.join("schema.toml")).unwrap();
        let options = ReadOptions {
            batch_rows: 64,
            ..ReadOptions::default()
        };
        let e = Encoder::fit_file(
            model,
            &schema,
            "schema.toml",
            &dir.join("train.tsv"),
            options.clone(),
        )
        .unwrap();
        for split in ["train", "valid", "test"] {
            let path = dir.join(format!("{split}.tsv"));
            let loader = Loader::spawn(
                path,
                schema.clone(),
                options.clone(),
                Arc::new(e.clone()),
                2,
                Ok,
            )
            .unwrap();
            let mut rows = 0;
            for b in loader {
                let b = b.unwrap();
                rows += b.rows;
                assert_eq!(b.labels.len(), b.rows);
                assert_rows_in_tables(&e, &b, sub);
            }
            let want = match (sub, split) {
                ("table", "train") => 320,
                ("table", _) => 40,
                (_, "train") => 240,
                _ => 30,
            };
            assert_eq!(rows, want, "{sub} {split}");
        }
        if sub == "criteo" {
            // Empty values in the Criteo layout are missing numbers → value 0.
            let b = e
                .encode(&read_all(&dir.join("train.tsv"), &schema), "t")
                .unwrap();
            let zeros: usize = (0..13)
                .map(|f| ids(&b.features[f]).1.iter().filter(|&&v| v == 0).count())
                .sum();
            assert!(zeros > 0);
        }
    }
    fs::remove_dir_all(d).unwrap();
}

/// The model of the synthetic writer's table layout: every kind of feature and a group.
fn synth_table_model() -> ModelConfig {
    ModelConfig::parse(
        r#"
[[feature]]
name = "user_id"
kind = "categorical"
[[feature]]
name = "item_id"
kind = "categorical"
[[feature]]
name = "item_cat"
kind = "categorical"
[[feature]]
name = "c0"
kind = "categorical"
[[feature]]
name = "c1"
kind = "categorical"
hash_rows = 64
[[feature]]
name = "n0"
kind = "numeric"
[[feature]]
name = "n1"
kind = "numeric"
step = 2.0
[[feature]]
name = "history"
kind = "sequence"
column = "hist_item"
item = "item_id"
side = ["item_cat"]
side_columns = ["hist_cat"]
max_len = 8
[train]
group = "user_id"
"#,
        "synth.toml",
    )
    .unwrap()
}

/// The model of the synthetic writer's Criteo layout: 13 numeric, 26 hashed categorical features.
fn synth_criteo_model() -> ModelConfig {
    let mut criteo_model = String::new();
    for j in 1..=13 {
        criteo_model.push_str(&format!(
            "[[feature]]\nname = \"I{j}\"\nkind = \"numeric\"\n"
        ));
    }
    for f in 1..=26 {
        criteo_model.push_str(&format!(
            "[[feature]]\nname = \"C{f}\"\nkind = \"categorical\"\nhash_rows = 1000\n"
        ));
    }
    ModelConfig::parse(&criteo_model, "criteo.toml").unwrap()
}

/// Every id of `b` is a row of its table (or below its MNS limit), every sequence well formed.
fn assert_rows_in_tables(e: &Encoder, b: &ModelBatch, sub: &str) {
    for (f, input) in b.features.iter().enumerate() {
        match input {
            FeatureInput::Ids { offsets, rows: ids } => {
                assert_eq!(offsets.len(), b.rows + 1);
                let limit = if e.mns(f).is_empty() {
                    e.table_rows(f)
                } else {
                    MnsBase::limit(&e.mns(f)) as u32
                };
                assert!(ids.iter().all(|&i| i < limit), "{sub} feature {f}");
            }
            FeatureInput::Sequence(t) => {
                let total: u32 = t.lengths.iter().sum();
                assert!(t.lengths.iter().all(|&l| l <= 8));
                assert_eq!(t.target.len(), 2 * b.rows);
                assert_eq!(t.behaviours.len(), 2 * total as usize);
                assert_eq!(t.buckets.len(), total as usize);
                assert!(t.buckets.iter().all(|&k| (1..64).contains(&k)));
                assert!(t
                    .behaviours
                    .chunks(2)
                    .all(|p| p[0] < e.table_rows(1) && p[1] < e.table_rows(2)));
            }
        }
    }
}

/// A behaviour: item, category, genre, time.
type Behaviour = (String, String, String, i64);

/// A sample row of `SEQ_SCHEMA`, as written.
struct Row {
    item: String,
    cat: String,
    genres: Vec<String>,
    ts: i64,
    hist: Vec<Behaviour>,
}

/// 300 random rows of `SEQ_SCHEMA` (up to 11 behaviours each, oldest first) and their file text.
fn random_rows(rng: &mut Rng) -> (Vec<Row>, String) {
    let mut text = String::from(SEQ_TRAIN.lines().next().unwrap());
    text.push('\n');
    let mut rows = Vec::new();
    for _ in 0..300 {
        let ts = 10_000 + rng.below(100_000) as i64;
        let n = rng.below(12) as usize;
        let mut times: Vec<i64> = (0..n).map(|_| ts - rng.below(50_000) as i64).collect();
        times.sort();
        let hist: Vec<_> = times
            .into_iter()
            .map(|t| {
                (
                    format!("i{}", rng.below(25)),
                    format!("c{}", rng.below(4)),
                    format!("g{}", rng.below(6)),
                    t,
                )
            })
            .collect();
        let genres: Vec<String> = (0..rng.below(3))
            .map(|_| format!("g{}", rng.below(8)))
            .collect();
        let row = Row {
            item: format!("i{}", rng.below(30)),
            cat: format!("c{}", rng.below(5)),
            genres,
            ts,
            hist,
        };
        let join =
            |f: &dyn Fn(&Behaviour) -> String| row.hist.iter().map(f).collect::<Vec<_>>().join("|");
        text.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            rng.below(2),
            row.item,
            row.cat,
            row.genres.join("|"),
            row.ts,
            join(&|h| h.0.clone()),
            join(&|h| h.1.clone()),
            join(&|h| h.2.clone()),
            join(&|h| h.3.to_string()),
        ));
        rows.push(row);
    }
    (rows, text)
}

#[test]
fn seeded_random_sequences_match_a_direct_reference_in_batches_of_any_size() {
    let d = dir("seeded");
    let mut rng = Rng::new(17);
    let (rows, text) = random_rows(&mut rng);
    let path = write(&d, "t.tsv", &text);
    let schema = Schema::parse(SEQ_SCHEMA, "schema.toml").unwrap();
    let mut model = seq_config("{ by = \"log_delta\", unit_seconds = 600 }", "");
    if let crate::config::FeatureKind::Sequence {
        max_len, buckets, ..
    } = &mut model.features[3].kind
    {
        *max_len = 5;
        *buckets = 8;
    }
    let e = Encoder::fit_file(&model, &schema, "s", &path, ReadOptions::default()).unwrap();
    let rule = TemporalBuckets::LogTime {
        buckets: 8,
        unit: 600.0,
    };
    let (item, cat, genre) = (
        e.vocabulary(0).unwrap(),
        e.vocabulary(1).unwrap(),
        e.vocabulary(2).unwrap(),
    );
    for batch_rows in [1, 7, 300] {
        let options = ReadOptions {
            batch_rows,
            ..ReadOptions::default()
        };
        let loader = Loader::spawn(
            path.clone(),
            schema.clone(),
            options,
            Arc::new(e.clone()),
            1,
            Ok,
        )
        .unwrap();
        let mut r = 0;
        for b in loader {
            let b = b.unwrap();
            let t = tim(&b.features[3]);
            let mut first = 0;
            for k in 0..b.rows {
                let row = &rows[r];
                let kept = &row.hist[row.hist.len().saturating_sub(5)..];
                assert_eq!(t.lengths[k] as usize, kept.len());
                let first_genre = row.genres.first().map_or(OOV_ROW, |g| genre.row(g));
                assert_eq!(
                    t.target[3 * k..3 * k + 3],
                    [item.row(&row.item), cat.row(&row.cat), first_genre]
                );
                let want: Vec<u32> = kept
                    .iter()
                    .flat_map(|h| [item.row(&h.0), cat.row(&h.1), genre.row(&h.2)])
                    .collect();
                assert_eq!(t.behaviours[3 * first..3 * (first + kept.len())], want[..]);
                let times: Vec<i64> = kept.iter().map(|h| h.3).collect();
                assert_eq!(
                    t.buckets[first..first + kept.len()],
                    rule.assign(row.ts, &times).unwrap()[..]
                );
                first += kept.len();
                r += 1;
            }
        }
        assert_eq!(r, rows.len());
    }
    fs::remove_dir_all(d).unwrap();
}
