//! The encoder and the loader on small handmade tables, the ml-100k protocol's files and the
//! synthetic writer's files.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::*;
use crate::config::ModelConfig;
use crate::data::loader::Loader;
use crate::data::{ml100k, synth, Batch, ReadOptions, Schema, TableReader};

/// A fresh scratch directory for one test.
fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wgrec-encode-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, text).unwrap();
    p
}

fn config(text: &str) -> ModelConfig {
    ModelConfig::parse(&format!("[model]\ntables = 1\n{text}"), "model.toml").unwrap()
}

/// All rows of `path` in one batch.
fn read_all(path: &Path, schema: &Schema) -> Batch {
    let options = ReadOptions {
        batch_rows: 1 << 20,
        ..ReadOptions::default()
    };
    TableReader::open(path, schema, options)
        .unwrap()
        .next_batch()
        .unwrap()
        .unwrap()
}

fn ids(input: &FeatureInput) -> (&[u32], &[u32]) {
    match input {
        FeatureInput::Ids { offsets, rows } => (offsets, rows),
        FeatureInput::Sequence(_) => panic!("a sequence"),
    }
}

fn tim(input: &FeatureInput) -> &TimBatch {
    match input {
        FeatureInput::Sequence(t) => t,
        FeatureInput::Ids { .. } => panic!("not a sequence"),
    }
}

/// The error text with the scratch directory cut off.
fn short(e: Error, dir: &Path) -> String {
    e.to_string().replace(&format!("{}/", dir.display()), "")
}

const FLAT_SCHEMA: &str = "columns = \"label:click, categorical:user, categorical:city, \
                           multi_hot:tags, numeric:age\"";
const FLAT_TRAIN: &str = "click\tuser\tcity\ttags\tage\n\
1\ta\tx\tt1|t2\t20\n\
0\tb\tx\tt2\t30\n\
1\ta\ty\t\t25.5\n\
0\tc\tx\tt1|t3|t2\t\n";
const FLAT_EVAL: &str = "click\tuser\tcity\ttags\tage\n\
1\tz\tx\tt9|t3\t10\n\
0\tb\tq\t\t100\n\
1\tc\ty\tt2\t29.9\n";

fn flat_config(user: &str) -> ModelConfig {
    config(&format!(
        "[[feature]]\nname = \"user\"\nkind = \"categorical\"\n{user}\n\
         [[feature]]\nname = \"city\"\nkind = \"categorical\"\nhash_rows = 7\n\
         [[feature]]\nname = \"tag\"\nkind = \"bag\"\ncolumn = \"tags\"\n\
         [[feature]]\nname = \"age\"\nkind = \"numeric\"\nradices = [2, 3]\nstep = 1.0\n"
    ))
}

#[test]
fn categorical_bag_and_numeric_rows_are_exact_with_oov_min_count_and_hashing() {
    let d = dir("flat");
    let schema = Schema::parse(FLAT_SCHEMA, "schema.toml").unwrap();
    let train = write(&d, "train.tsv", FLAT_TRAIN);
    let eval = write(&d, "eval.tsv", FLAT_EVAL);
    let options = ReadOptions {
        batch_rows: 3,
        ..ReadOptions::default()
    };
    let e = Encoder::fit_file(
        &flat_config(""),
        &schema,
        "schema.toml",
        &train,
        options.clone(),
    )
    .unwrap();
    // Counts a:2, b:1, c:1 → a = 1, then b = 2, c = 3 by bytes; unseen z → OOV row 0.
    assert_eq!(e.table_rows(0), 4);
    assert_eq!(e.table_rows(1), 7);
    // Tags t2:3, t1:2, t3:1.
    assert_eq!(e.table_rows(2), 4);
    // age: min 20, max 30 → v_max = 11; 2^4 = 16 > 11, 3^3 = 27 > 11 ≥ 3^2.
    assert_eq!(
        e.mns(3),
        [
            MnsBase {
                radix: 2,
                digits: 4
            },
            MnsBase {
                radix: 3,
                digits: 3
            }
        ]
    );
    assert_eq!(e.table_rows(3), 2 * 4 + 3 * 3);
    assert_eq!(e.mns(0), []);
    assert_eq!(e.tasks(), 1);
    assert_eq!(e.logit_correction(), 0.0);
    let hashed = Vocabulary::hashed(7).unwrap();
    let h = |t: &str| ((u128::from(stable_hash(t)) * 7) >> 64) as u32;
    assert_eq!(hashed.row("x"), h("x"));

    let b = e.encode(&read_all(&train, &schema), "train.tsv").unwrap();
    assert_eq!(b.rows, 4);
    assert_eq!(b.lines, [2, 3, 4, 5]);
    assert_eq!(
        ids(&b.features[0]),
        (&[0, 1, 2, 3, 4][..], &[1, 2, 1, 3][..])
    );
    assert_eq!(ids(&b.features[1]).1, [h("x"), h("x"), h("y"), h("x")]);
    assert_eq!(
        ids(&b.features[2]),
        (&[0, 2, 3, 3, 6][..], &[2, 1, 1, 2, 3, 1][..])
    );
    // 20 → 1, 30 → 11, 25.5 → 1 + ⌊5.5⌋ = 6, missing → 0.
    assert_eq!(ids(&b.features[3]).1, [1, 11, 6, 0]);
    assert_eq!(b.labels, [1.0, 0.0, 1.0, 0.0]);
    assert_eq!((b.weights, b.groups), (None, None));

    // At eval: unseen ids → OOV, out-of-range numbers clamped to 1..=11.
    let b = e.encode(&read_all(&eval, &schema), "eval.tsv").unwrap();
    assert_eq!(ids(&b.features[0]).1, [0, 2, 3]);
    assert_eq!(ids(&b.features[1]).1, [h("x"), h("q"), h("y")]);
    assert_eq!(ids(&b.features[2]), (&[0, 2, 2, 3][..], &[0, 3, 1][..]));
    assert_eq!(ids(&b.features[3]).1, [1, 11, 10]);

    // A subset of rows, in the order asked; a row past the batch or another schema's batch is an
    // error.
    let batch = read_all(&train, &schema);
    let sub = e.encode_rows(&batch, "train.tsv", &[3, 0]).unwrap();
    assert_eq!((sub.rows, sub.lines.clone()), (2, vec![5, 2]));
    assert_eq!(
        ids(&sub.features[2]),
        (&[0, 3, 5][..], &[2, 3, 1, 2, 1][..])
    );
    assert_eq!(
        e.encode_rows(&batch, "train.tsv", &[4])
            .unwrap_err()
            .to_string(),
        "train.tsv: row 4 of a batch of 4 rows"
    );
    let other = Schema::parse(NUMBERED_SCHEMA, "s").unwrap();
    let numbered_file = write(&d, "n.tsv", &numbered(3));
    assert_eq!(
        e.encode(&read_all(&numbered_file, &other), "n.tsv")
            .unwrap_err()
            .to_string(),
        "n.tsv: the batch was not read with the encoder's schema"
    );

    // min_count 2: only a keeps a row.
    let e = Encoder::fit_file(
        &flat_config("min_count = 2"),
        &schema,
        "schema.toml",
        &train,
        options,
    )
    .unwrap();
    assert_eq!(e.table_rows(0), 2);
    let b = e.encode(&read_all(&train, &schema), "train.tsv").unwrap();
    assert_eq!(ids(&b.features[0]).1, [1, 0, 1, 0]);
    fs::remove_dir_all(d).unwrap();
}

#[test]
fn numeric_digits_are_the_fewest_that_hold_the_top_value() {
    let mut fit = NumericFit::new();
    fit.min = 0.0;
    fit.max = 7.0;
    fit.finish(&[2, 3, 10], 1.0).unwrap();
    // v_max = 8: 2^4 = 16 > 8 ≥ 2^3; 3^2 = 9 > 8; 10^1 > 8.
    assert_eq!(fit.top, 8);
    assert_eq!(
        fit.bases.iter().map(|b| b.digits).collect::<Vec<_>>(),
        [4, 2, 1]
    );
    fit.max = 6.0;
    fit.finish(&[2, 3, 10], 1.0).unwrap();
    // v_max = 7 < 2^3 = 8.
    assert_eq!(fit.bases[0].digits, 3);
    // Step 0.5 from min −1: −1 → 1, −0.6 → 1, −0.5 → 2, NaN → 0.
    fit.min = -1.0;
    fit.max = 1.0;
    fit.finish(&[2], 0.5).unwrap();
    assert_eq!(fit.top, 5);
    assert_eq!(
        [-1.0, -0.6, -0.5, 1.0, 9.0, -9.0, f64::NAN].map(|x| fit.value(x, 0.5)),
        [1, 1, 2, 5, 5, 1, 0]
    );
    // Nothing seen: everything is 0, one digit per radix.
    let mut none = NumericFit::new();
    none.finish(&[2, 3], 1.0).unwrap();
    assert_eq!((none.top, none.value(5.0, 1.0)), (0, 0));
    assert_eq!(MnsBase::rows(&none.bases), 5);
    // A span past u32 is an error.
    let mut wide = NumericFit::new();
    wide.min = 0.0;
    wide.max = 1e12;
    assert!(wide
        .finish(&[2], 1.0)
        .unwrap_err()
        .message
        .contains("raise the feature's step"));
}

const SEQ_SCHEMA: &str = r#"
[[column]]
name = "click"
type = "label"
[[column]]
name = "item"
type = "categorical"
[[column]]
name = "cat"
type = "categorical"
[[column]]
name = "genres"
type = "multi_hot"
[[column]]
name = "ts"
type = "timestamp"
[[column]]
name = "hist"
type = "sequence"
[[column]]
name = "hist_cat"
type = "sequence"
[[column]]
name = "hist_genre"
type = "sequence"
[[column]]
name = "hist_time"
type = "sequence_times"
sequence = "hist"
"#;

const SEQ_TRAIN: &str = "click\titem\tcat\tgenres\tts\thist\thist_cat\thist_genre\thist_time\n\
1\ti1\tc1\tg1|g2\t100\ti2|i3|i1|i2\tc2|c1|c1|c2\tg2|g1|g1|g3\t10|50|90|100\n\
0\ti2\tc2\t\t200\t\t\t\t\n\
1\ti3\tc1\tg3\t300\ti9\tc1\tg2\t290\n";

fn seq_config(time: &str, extra: &str) -> ModelConfig {
    config(&format!(
        "[[feature]]\nname = \"item\"\nkind = \"categorical\"\n\
         [[feature]]\nname = \"cat\"\nkind = \"categorical\"\n\
         [[feature]]\nname = \"genre\"\nkind = \"bag\"\ncolumn = \"genres\"\n\
         [[feature]]\nname = \"history\"\nkind = \"sequence\"\ncolumn = \"hist\"\nitem = \"item\"\n\
         side = [\"cat\", \"genre\"]\nside_columns = [\"hist_cat\", \"hist_genre\"]\n\
         max_len = 3\nbuckets = 5\ntime = {time}\n{extra}"
    ))
}

#[test]
fn sequences_keep_the_most_recent_with_target_side_ids_and_buckets() {
    let d = dir("seq");
    let schema = Schema::parse(SEQ_SCHEMA, "schema.toml").unwrap();
    let train = write(&d, "train.tsv", SEQ_TRAIN);
    let log = seq_config("{ by = \"log_delta\", unit_seconds = 10 }", "");
    let e =
        Encoder::fit_file(&log, &schema, "schema.toml", &train, ReadOptions::default()).unwrap();
    // item: i1, i2, i3 once each → 1, 2, 3 (i9 unseen → 0); cat c1:2, c2:1; genres g1, g2, g3.
    assert_eq!(e.table_rows(3), 0);
    let b = e.encode(&read_all(&train, &schema), "train.tsv").unwrap();
    let t = tim(&b.features[3]);
    assert_eq!(t.lengths, [3, 0, 1]);
    // Targets [item, cat, first genre]; row 1's empty bag → OOV.
    assert_eq!(t.target, [1, 1, 1, 2, 2, 0, 3, 1, 3]);
    // Row 0 keeps i3, i1, i2 (the last 3, oldest first); row 2 has i9 (OOV) with g2.
    assert_eq!(t.behaviours, [3, 1, 1, 1, 1, 1, 2, 2, 3, 0, 1, 2]);
    // Δt 50, 10, 0 at unit 10 → 1 + ⌊log2(6)⌋ = 3, 2, 1; row 2 Δt 10 → 2.
    assert_eq!(t.buckets, [3, 2, 1, 2]);
    let tb = TemporalBuckets::LogTime {
        buckets: 5,
        unit: 10.0,
    };
    assert_eq!(tb.assign(100, &[50, 90, 100]).unwrap(), [3, 2, 1]);
    assert_eq!(tb.assign(300, &[290]).unwrap(), [2]);

    // Position: the most recent 1, the one before 2, …; no times needed.
    let pos = seq_config("{ by = \"position\" }", "");
    let e =
        Encoder::fit_file(&pos, &schema, "schema.toml", &train, ReadOptions::default()).unwrap();
    let b = e.encode(&read_all(&train, &schema), "train.tsv").unwrap();
    assert_eq!(tim(&b.features[3]).buckets, [3, 2, 1, 1]);
    let tb = TemporalBuckets::Position { buckets: 5 };
    assert_eq!(tb.assign(0, &[0, 0, 0]).unwrap(), [3, 2, 1]);
    // With 6 buckets and max_len 5, 5 behaviours reach the clamp at N_T − 1 = 5 … and one less.
    let clamp = config(
        "[[feature]]\nname = \"item\"\nkind = \"categorical\"\n\
         [[feature]]\nname = \"history\"\nkind = \"sequence\"\ncolumn = \"hist\"\nitem = \"item\"\n\
         max_len = 5\nbuckets = 3\ntime = { by = \"position\" }\n",
    );
    let e = Encoder::fit_file(
        &clamp,
        &schema,
        "schema.toml",
        &train,
        ReadOptions::default(),
    )
    .unwrap();
    let b = e.encode(&read_all(&train, &schema), "train.tsv").unwrap();
    let t = tim(&b.features[1]);
    assert_eq!(t.lengths, [4, 0, 1]);
    assert_eq!(t.buckets, [2, 2, 2, 1, 1]);
    assert_eq!(t.behaviours, [2, 3, 1, 2, 0]);
    assert_eq!(t.target, [1, 2, 3]);
    fs::remove_dir_all(d).unwrap();
}

#[test]
fn bad_sequence_rows_name_file_line_and_column() {
    let d = dir("seq-errors");
    let schema = Schema::parse(SEQ_SCHEMA, "schema.toml").unwrap();
    let train = write(&d, "train.tsv", SEQ_TRAIN);
    let log = seq_config("{ by = \"log_delta\", unit_seconds = 10 }", "");
    let e =
        Encoder::fit_file(&log, &schema, "schema.toml", &train, ReadOptions::default()).unwrap();
    let header = SEQ_TRAIN.lines().next().unwrap();
    let cases = [
        (
            "1\ti1\tc1\tg1\t300\ti1|i2\tc1|c2\tg1|g1\t290|400\n",
            "bad.tsv:3: column 9 \"hist_time\": behaviour 2 at time 400 is after its target \
             at 300 (column \"ts\")",
        ),
        (
            "1\ti1\tc1\tg1\t300\ti1|i2\tc1\tg1|g1\t290|300\n",
            "bad.tsv:3: column 7 \"hist_cat\": 1 ids where sequence column \"hist\" has 2",
        ),
        (
            "1\ti1\tc1\tg1\t300\ti1\tc1\tg1|g2|g3\t290\n",
            "bad.tsv:3: column 8 \"hist_genre\": 3 ids where sequence column \"hist\" has 1",
        ),
        (
            "1\ti1\tc1\tg1\t300\ti1\tc1\tg1\t290.5\n",
            "bad.tsv:3: column 9 \"hist_time\": behaviour 1 has time 290.5, not an integer",
        ),
    ];
    for (row, want) in cases {
        let text = format!("{header}\n0\ti1\tc1\tg1\t5\t\t\t\t\n{row}");
        let path = write(&d, "bad.tsv", &text);
        let batch = read_all(&path, &schema);
        let got = e.encode(&batch, "bad.tsv").unwrap_err().to_string();
        assert_eq!(got, want);
        // Fitting on such a file fails alike, naming the path.
        let fit = Encoder::fit_file(&log, &schema, "schema.toml", &path, ReadOptions::default())
            .unwrap_err();
        assert_eq!(short(fit, &d), want);
    }
    fs::remove_dir_all(d).unwrap();
}

#[test]
fn unresolvable_columns_are_config_errors_naming_the_key() {
    let schema = Schema::parse(SEQ_SCHEMA, "schema.toml").unwrap();
    let log = "{ by = \"log_delta\" }";
    let err = |c: ModelConfig| {
        Encoder::new(&c, &schema, "schema.toml")
            .unwrap_err()
            .to_string()
    };
    let side = |cols: &str| {
        config(&format!(
            "[[feature]]\nname = \"item\"\nkind = \"categorical\"\n\
             [[feature]]\nname = \"cat\"\nkind = \"categorical\"\n\
             [[feature]]\nname = \"history\"\nkind = \"sequence\"\ncolumn = \"hist\"\n\
             item = \"item\"\nside = [\"cat\"]\nside_columns = [{cols}]\n"
        ))
    };
    assert_eq!(
        err(side("\"hist_cats\"")),
        "schema.toml: feature[2].side_columns[0]: no column \"hist_cats\" in the schema"
    );
    assert_eq!(
        err(side("\"cat\"")),
        "schema.toml: feature[2].side_columns[0]: column \"cat\" is categorical, not sequence"
    );
    assert_eq!(
        err(seq_config(log, "times = \"hist_cat\"")),
        "schema.toml: feature[3].times: column \"hist_cat\" is sequence, not sequence_times"
    );
    assert_eq!(
        err(seq_config(log, "timestamp = \"hist_time\"")),
        "schema.toml: feature[3].timestamp: column \"hist_time\" is sequence_times, not timestamp"
    );
    // No timestamp column at all: log-delta cannot work, position can.
    let no_ts = Schema::parse(
        &SEQ_SCHEMA.replace("type = \"timestamp\"", "type = \"skip\""),
        "s",
    )
    .unwrap();
    assert_eq!(
        Encoder::new(&seq_config(log, ""), &no_ts, "s")
            .unwrap_err()
            .to_string(),
        "s: feature[3].timestamp: log-delta buckets need the target's time: no timestamp column \
         in the schema"
    );
    Encoder::new(&seq_config("{ by = \"position\" }", ""), &no_ts, "s").unwrap();
    let no_times = Schema::parse(
        &SEQ_SCHEMA.replace(
            "type = \"sequence_times\"\nsequence = \"hist\"",
            "type = \"skip\"",
        ),
        "s",
    )
    .unwrap();
    assert_eq!(
        Encoder::new(&seq_config(log, ""), &no_times, "s")
            .unwrap_err()
            .to_string(),
        "s: feature[3].times: log-delta buckets need the behaviours' times: no sequence_times \
         column of \"hist\" in the schema"
    );
    // Times linked to a side column are found by default, or named explicitly.
    let side_times = Schema::parse(
        &SEQ_SCHEMA.replace("sequence = \"hist\"", "sequence = \"hist_genre\""),
        "s",
    )
    .unwrap();
    Encoder::new(&seq_config(log, ""), &side_times, "s").unwrap();
    Encoder::new(&seq_config(log, "times = \"hist_time\""), &side_times, "s").unwrap();
    let train = |t: &str| {
        config(&format!(
            "[[feature]]\nname = \"item\"\nkind = \"categorical\"\n[train]\n{t}"
        ))
    };
    assert_eq!(
        err(train("group = \"hist\"")),
        "schema.toml: train.group: column \"hist\" is sequence; groups come from a categorical, \
         numeric or timestamp column"
    );
    assert_eq!(
        err(train("group = \"user\"")),
        "schema.toml: train.group: no column \"user\" in the schema"
    );
    assert_eq!(
        err(train("[train.weights]\ncolumn = \"cat\"")),
        "schema.toml: train.weights.column: column \"cat\" is categorical; exposure counts come \
         from a numeric or weight column"
    );
    assert_eq!(
        err(train("[train.weights]\ncolumn = \"views\"")),
        "schema.toml: train.weights.column: no column \"views\" in the schema"
    );
    // check_model runs the same resolution.
    assert_eq!(
        schema
            .check_model(&side("\"hist_cats\""), "schema.toml")
            .unwrap_err()
            .to_string(),
        "schema.toml: feature[2].side_columns[0]: no column \"hist_cats\" in the schema"
    );
}

const TASK_SCHEMA: &str = "columns = \"label:click, label:love, categorical:user, numeric:views, \
                           numeric:score, timestamp:day\"";

#[test]
fn labels_weights_and_groups_follow_the_config() {
    let d = dir("tasks");
    let schema = Schema::parse(TASK_SCHEMA, "schema.toml").unwrap();
    let train = write(
        &d,
        "train.tsv",
        "click\tlove\tuser\tviews\tscore\tday\n\
         1\t0\tu1\t4\t-0\t7\n\
         0\t1\tu2\t\t2.5\t8\n\
         1\t1\tu1\t0.5\t0\t7\n\
         0\t0\tu3\t9\t\t9\n",
    );
    let model = |group: &str| {
        config(&format!(
            "[[feature]]\nname = \"user\"\nkind = \"categorical\"\n\
             [[task]]\nname = \"click\"\n[[task]]\nname = \"loved\"\nlabel = \"love\"\n\
             [train]\ngroup = \"{group}\"\n\
             [train.weights]\ncolumn = \"views\"\ngamma = 0.5\nnegative = 0.25\n"
        ))
    };
    let e = Encoder::fit_file(
        &model("user"),
        &schema,
        "schema.toml",
        &train,
        ReadOptions::default(),
    )
    .unwrap();
    assert_eq!(e.tasks(), 2);
    assert_eq!(e.logit_correction(), 4f64.ln());
    let batch = read_all(&train, &schema);
    let b = e.encode(&batch, "train.tsv").unwrap();
    assert_eq!(b.labels, [1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0]);
    // w = max(views, 1)^−0.5 × (1 for click = 1, 0.25 for click = 0); missing views count as 1.
    assert_eq!(
        b.weights.unwrap(),
        [0.5, 0.25, 1.0, 0.25 / 3.0].map(|w: f64| w as f32)
    );
    let h = |t: &str| stable_hash(t);
    assert_eq!(b.groups.unwrap(), [h("u1"), h("u2"), h("u1"), h("u3")]);
    // Numbers group by their bits (−0 as 0), timestamps by their value.
    let e = Encoder::fit_file(
        &model("score"),
        &schema,
        "schema.toml",
        &train,
        ReadOptions::default(),
    )
    .unwrap();
    let g = e.encode(&batch, "train.tsv").unwrap().groups.unwrap();
    assert_eq!(g, [0, 2.5f64.to_bits(), 0, f64::NAN.to_bits()]);
    let e = Encoder::fit_file(
        &model("day"),
        &schema,
        "schema.toml",
        &train,
        ReadOptions::default(),
    )
    .unwrap();
    assert_eq!(
        e.encode(&batch, "train.tsv").unwrap().groups.unwrap(),
        [7, 8, 7, 9]
    );
    // A negative exposure count is an error naming the row.
    let bad = write(
        &d,
        "bad.tsv",
        "click\tlove\tuser\tviews\tscore\tday\n1\t0\tu1\t4\t0\t7\n1\t0\tu1\t-2\t0\t7\n",
    );
    let e = Encoder::fit_file(
        &model("user"),
        &schema,
        "schema.toml",
        &train,
        ReadOptions::default(),
    )
    .unwrap();
    assert_eq!(
        e.encode(&read_all(&bad, &schema), "bad.tsv")
            .unwrap_err()
            .to_string(),
        "bad.tsv:3: column 4 \"views\": exposure count -2 is negative"
    );
    fs::remove_dir_all(d).unwrap();
}

#[test]
fn an_unfitted_encoder_does_not_encode() {
    let schema = Schema::parse(FLAT_SCHEMA, "schema.toml").unwrap();
    let d = dir("unfitted");
    let train = write(&d, "train.tsv", FLAT_TRAIN);
    let e = Encoder::new(&flat_config(""), &schema, "schema.toml").unwrap();
    assert!(!e.is_fitted());
    assert_eq!(e.table_rows(0), 0);
    let err = e
        .encode(&read_all(&train, &schema), "train.tsv")
        .unwrap_err();
    assert!(err.to_string().contains("not fitted"), "{err}");
    assert!(e.save(&d.join("enc")).is_err());
    fs::remove_dir_all(d).unwrap();
}

#[test]
fn save_and_load_round_trip_and_reject_another_model() {
    let d = dir("save");
    let schema = Schema::parse(
        &SEQ_SCHEMA.replace("\"timestamp\"", "\"numeric\""),
        "schema.toml",
    )
    .unwrap();
    let train = write(&d, "train.tsv", SEQ_TRAIN);
    let model = |extra: &str| {
        config(&format!(
            "[[feature]]\nname = \"item\"\nkind = \"categorical\"\n\
             [[feature]]\nname = \"cat\"\nkind = \"categorical\"\nhash_rows = 5\n\
             [[feature]]\nname = \"genre\"\nkind = \"bag\"\ncolumn = \"genres\"\nmin_count = 1\n\
             [[feature]]\nname = \"ts\"\nkind = \"numeric\"\nstep = 7.0\n{extra}\n\
             [[feature]]\nname = \"history\"\nkind = \"sequence\"\ncolumn = \"hist\"\n\
             item = \"item\"\nside = [\"cat\"]\nside_columns = [\"hist_cat\"]\n\
             time = {{ by = \"position\" }}\n"
        ))
    };
    let e = Encoder::fit_file(
        &model(""),
        &schema,
        "schema.toml",
        &train,
        ReadOptions::default(),
    )
    .unwrap();
    let out = d.join("checkpoint");
    e.save(&out).unwrap();
    let back = Encoder::load(&out, &model(""), &schema, "schema.toml").unwrap();
    let batch = read_all(&train, &schema);
    assert_eq!(
        back.encode(&batch, "t").unwrap(),
        e.encode(&batch, "t").unwrap()
    );
    for f in 0..5 {
        assert_eq!(back.table_rows(f), e.table_rows(f));
        assert_eq!(back.mns(f), e.mns(f));
    }
    assert_eq!(e.table_rows(3), MnsBase::rows(&e.mns(3)));
    // Leftover temporaries: none.
    let mut names: Vec<String> = fs::read_dir(&out)
        .unwrap()
        .map(|f| f.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "encoder.json",
            "vocab-0.json",
            "vocab-1.json",
            "vocab-2.json"
        ]
    );
    let err = |c: ModelConfig| {
        short(
            Encoder::load(&out, &c, &schema, "schema.toml").unwrap_err(),
            &d,
        )
    };
    assert_eq!(
        err(model("radices = [2, 5]")),
        "checkpoint checkpoint/encoder.json [features[3]]: feature \"ts\": saved step Some(7.0) \
         and radices Some([2, 3, 10]), the model has 7 and [2, 5]"
    );
    let renamed = config(
        "[[feature]]\nname = \"items\"\nkind = \"categorical\"\ncolumn = \"item\"\n\
         [[feature]]\nname = \"cat\"\nkind = \"categorical\"\n\
         [[feature]]\nname = \"genre\"\nkind = \"bag\"\ncolumn = \"genres\"\n\
         [[feature]]\nname = \"ts\"\nkind = \"numeric\"\nstep = 7.0\n\
         [[feature]]\nname = \"history\"\nkind = \"sequence\"\ncolumn = \"hist\"\n\
         item = \"items\"\nside = [\"cat\"]\nside_columns = [\"hist_cat\"]\n\
         time = { by = \"position\" }\n",
    );
    assert_eq!(
        err(renamed),
        "checkpoint checkpoint/encoder.json [features[0]]: saved categorical feature \"item\", \
         the model has categorical feature \"items\""
    );
    let unhashed = model("").features.clone();
    let mut c = model("");
    c.features = unhashed;
    if let crate::config::FeatureKind::Categorical { hash_rows, .. } = &mut c.features[1].kind {
        *hash_rows = None;
    }
    assert!(err(c).contains("does not match the model's hash_rows None"));
    assert!(err(config(
        "[[feature]]\nname = \"item\"\nkind = \"categorical\"\n"
    ))
    .contains("5 features saved, the model has 1"));
    fs::remove_file(out.join("encoder.json")).unwrap();
    assert!(err(model("")).starts_with("checkpoint checkpoint/encoder.json: cannot read"));
    fs::remove_dir_all(d).unwrap();
}

/// A table of `n` rows: user `u{i % 3}`, label `i % 2`, a sequence whose time is `i`, all valid.
fn numbered(n: usize) -> String {
    let mut s = String::from("click\tuser\tts\thist\thist_time\n");
    for i in 0..n {
        s.push_str(&format!(
            "{}\tu{}\t{}\tu{}\t{}\n",
            i % 2,
            i % 3,
            1000 + i,
            i % 5,
            999 + i
        ));
    }
    s
}

const NUMBERED_SCHEMA: &str = "columns = \"label:click, categorical:user, timestamp:ts, \
                               sequence:hist, sequence_times:hist_time\"";

fn numbered_config() -> ModelConfig {
    config(
        "[[feature]]\nname = \"user\"\nkind = \"categorical\"\n\
         [[feature]]\nname = \"hist\"\nkind = \"sequence\"\nitem = \"user\"\n",
    )
}

#[test]
fn the_loader_delivers_every_row_once_in_order_through_prepare() {
    let d = dir("loader");
    let schema = Schema::parse(NUMBERED_SCHEMA, "schema.toml").unwrap();
    let path = write(&d, "t.tsv", &numbered(50));
    let options = ReadOptions {
        batch_rows: 7,
        ..ReadOptions::default()
    };
    let encoder = Arc::new(
        Encoder::fit_file(&numbered_config(), &schema, "s", &path, options.clone()).unwrap(),
    );
    for prefetch in [0, 1, 4] {
        let loader = Loader::spawn(
            path.clone(),
            schema.clone(),
            options.clone(),
            Arc::clone(&encoder),
            prefetch,
            |b: ModelBatch| Ok((b.lines.clone(), b.rows, b.labels)),
        )
        .unwrap();
        let mut lines = Vec::new();
        let mut sizes = Vec::new();
        let mut loader = loader;
        for item in loader.by_ref() {
            let (l, rows, labels) = item.unwrap();
            assert_eq!(labels.len(), rows);
            for (k, &line) in l.iter().enumerate() {
                assert_eq!(labels[k], ((line - 2) % 2) as f32);
            }
            sizes.push(rows);
            lines.extend(l);
        }
        assert_eq!(lines, (2..52).collect::<Vec<u64>>());
        assert_eq!(sizes, [7, 7, 7, 7, 7, 7, 7, 1]);
        assert_eq!(loader.finish().unwrap().count, 0);
    }
    // A missing file fails at spawn.
    let e = Loader::spawn(
        d.join("none.tsv"),
        schema.clone(),
        options,
        encoder,
        1,
        |b: ModelBatch| Ok(b),
    )
    .err()
    .unwrap();
    assert!(short(e, &d).starts_with("none.tsv: cannot open"));
    fs::remove_dir_all(d).unwrap();
}

#[test]
fn dropping_the_loader_early_stops_its_thread() {
    let d = dir("loader-drop");
    let schema = Schema::parse(NUMBERED_SCHEMA, "schema.toml").unwrap();
    let path = write(&d, "t.tsv", &numbered(5000));
    let options = ReadOptions {
        batch_rows: 10,
        ..ReadOptions::default()
    };
    let encoder = Arc::new(
        Encoder::fit_file(&numbered_config(), &schema, "s", &path, options.clone()).unwrap(),
    );
    let prepared = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for prefetch in [0, 2] {
        prepared.store(0, std::sync::atomic::Ordering::SeqCst);
        let counter = Arc::clone(&prepared);
        let mut loader = Loader::spawn(
            path.clone(),
            schema.clone(),
            options.clone(),
            Arc::clone(&encoder),
            prefetch,
            move |b: ModelBatch| {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(b.rows)
            },
        )
        .unwrap();
        assert_eq!(loader.next().unwrap().unwrap(), 10);
        drop(loader); // joins: returns only once the thread has stopped
        let n = prepared.load(std::sync::atomic::Ordering::SeqCst);
        assert!(n < 500, "{n} batches prepared after an early drop");
    }
    // finish() early also stops the thread.
    let mut loader = Loader::spawn(
        path,
        schema,
        options,
        encoder,
        1,
        |b: ModelBatch| Ok(b.rows),
    )
    .unwrap();
    loader.next().unwrap().unwrap();
    assert_eq!(loader.finish().unwrap().count, 0);
    fs::remove_dir_all(d).unwrap();
}

#[test]
fn loader_errors_end_the_stream_once_and_skip_bad_rows_counts_reader_and_encoder_rejects() {
    let d = dir("loader-bad");
    let schema = Schema::parse(NUMBERED_SCHEMA, "schema.toml").unwrap();
    let good = write(&d, "good.tsv", &numbered(10));
    let mut text = numbered(10);
    // Line 4: a bad label (reader); line 7: a behaviour after its target (encoder); line 9: both
    // kinds in one batch, the encoder's.
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[3] = "2\tu0\t5\tu1\t1".into();
    lines[6] = "0\tu0\t5\tu1\t6".into();
    lines[8] = "0\tu0\t5\tu1|u2\t1|9".into();
    text = lines.join("\n") + "\n";
    let bad = write(&d, "bad.tsv", &text);
    let options = ReadOptions {
        batch_rows: 4,
        ..ReadOptions::default()
    };
    let encoder = Arc::new(
        Encoder::fit_file(&numbered_config(), &schema, "s", &good, options.clone()).unwrap(),
    );
    // Without skipping: the first bad row ends the stream, yielded once.
    let mut loader = Loader::spawn(
        bad.clone(),
        schema.clone(),
        options.clone(),
        Arc::clone(&encoder),
        2,
        |b: ModelBatch| Ok(b.lines),
    )
    .unwrap();
    let e = loader.next().unwrap().unwrap_err();
    assert_eq!(
        short(e, &d),
        "bad.tsv:4: column 1 \"click\": label \"2\" is not 0 or 1"
    );
    assert!(loader.next().is_none());
    assert!(loader.next().is_none());
    loader.finish().unwrap();
    // prepare's error ends it too.
    let mut loader = Loader::spawn(
        good.clone(),
        schema.clone(),
        options.clone(),
        Arc::clone(&encoder),
        2,
        |_: ModelBatch| -> Result<()> { Err(Error::data("prepare", "no room")) },
    )
    .unwrap();
    assert_eq!(
        loader.next().unwrap().unwrap_err().to_string(),
        "prepare: no room"
    );
    assert!(loader.next().is_none());
    // Skipping: every good row once, in order; the three bad rows counted, reasons by line.
    let skip = ReadOptions {
        skip_bad_rows: true,
        ..options
    };
    let mut loader =
        Loader::spawn(bad, schema, skip, encoder, 1, |b: ModelBatch| Ok(b.lines)).unwrap();
    let lines: Vec<u64> = loader.by_ref().flat_map(|b| b.unwrap()).collect();
    assert_eq!(lines, [2, 3, 5, 6, 8, 10, 11]);
    let bad_rows = loader.finish().unwrap();
    assert_eq!(bad_rows.count, 3);
    let reasons: Vec<String> = bad_rows.first.into_iter().map(|e| short(e, &d)).collect();
    assert_eq!(
        reasons,
        [
            "bad.tsv:4: column 1 \"click\": label \"2\" is not 0 or 1",
            "bad.tsv:7: column 5 \"hist_time\": behaviour 1 at time 6 is after its target at 5 \
             (column \"ts\")",
            "bad.tsv:9: column 5 \"hist_time\": behaviour 2 at time 9 is after its target at 5 \
             (column \"ts\")",
        ]
    );
    fs::remove_dir_all(d).unwrap();
}

#[test]
fn a_panic_in_prepare_is_an_error_not_a_hang() {
    let d = dir("loader-panic");
    let schema = Schema::parse(NUMBERED_SCHEMA, "schema.toml").unwrap();
    let path = write(&d, "t.tsv", &numbered(10));
    let encoder = Arc::new(
        Encoder::fit_file(
            &numbered_config(),
            &schema,
            "s",
            &path,
            ReadOptions::default(),
        )
        .unwrap(),
    );
    let mut loader = Loader::spawn(
        path,
        schema,
        ReadOptions::default(),
        encoder,
        1,
        |_: ModelBatch| -> Result<()> { panic!("boom") },
    )
    .unwrap();
    let e = short(loader.next().unwrap().unwrap_err(), &d);
    assert_eq!(e, "t.tsv: the loader thread panicked: boom");
    assert!(loader.next().is_none());
    assert!(loader.finish().is_err());
    fs::remove_dir_all(d).unwrap();
}

/// Raw ml-100k files for a small slice (typed headers as in the wheel).
const INTER: &str = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n\
1\t10\t5\t1000\n2\t11\t3\t500\n1\t11\t4\t1000\n1\t12\t2\t4600\n2\t10\t4\t2000\n3\t12\t5\t9000\n\
1\t10\t1\t200000\n3\t11\t4\t9000\n2\t12\t3\t300000\n1\t11\t5\t400000\n2\t13\t4\t650000\n\
3\t10\t2\t9001\n1\t12\t5\t500000\n4\t10\t4\t600000\n2\t11\t1\t700000\n";
const USER: &str = "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n\
1\t24\tM\ttechnician\t85711\n2\t53\tF\tother\tT8H1N\n3\t33\tM\twriter\t15213\n\
4\t40\tF\twriter\t55105\n";
const ITEM: &str = "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n\
10\tToy Story\t1995\tAnimation Children's Comedy\n11\tunkonwn\tunkonwn\tunknown\n\
12\tHeat\t1995\tAction Crime Thriller\n13\tOld\t1931\tDrama\n";

/// The ml-100k default model's features (DATA.md §1).
const ML100K_MODEL: &str = r#"
[[feature]]
name = "user_id"
kind = "categorical"
[[feature]]
name = "item_id"
kind = "categorical"
[[feature]]
name = "gender"
kind = "categorical"
[[feature]]
name = "occupation"
kind = "categorical"
[[feature]]
name = "zip"
kind = "categorical"
[[feature]]
name = "age"
kind = "numeric"
[[feature]]
name = "release_year"
kind = "numeric"
[[feature]]
name = "genre"
kind = "bag"
column = "genres"
[[feature]]
name = "hour"
kind = "categorical"
[[feature]]
name = "weekday"
kind = "categorical"
[[feature]]
name = "history"
kind = "sequence"
column = "hist_item"
item = "item_id"
side = ["genre"]
side_columns = ["hist_genre"]
max_len = 50
buckets = 64
time = { by = "log_delta", unit_seconds = 3600 }
[[task]]
name = "click"
[[task]]
name = "love"
[train]
group = "user_id"
"#;

#[test]
fn ml100k_slice_encodes_strictly_earlier_histories_with_the_protocol_buckets() {
    let d = dir("ml100k");
    let raw = d.join("raw");
    fs::create_dir_all(&raw).unwrap();
    for (file, text) in ml100k::RAW_FILES.iter().zip([INTER, USER, ITEM]) {
        fs::write(raw.join(file), text).unwrap();
    }
    ml100k::prepare(&raw, &d).unwrap();
    let schema_file = d.join("schema.toml").display().to_string();
    let schema = Schema::load(&d.join("schema.toml")).unwrap();
    let model = ModelConfig::parse(ML100K_MODEL, "ml100k.toml").unwrap();
    let e = Encoder::fit_file(
        &model,
        &schema,
        &schema_file,
        &d.join("train.tsv"),
        ReadOptions::default(),
    )
    .unwrap();
    // The protocol's buckets, read back from the column the schema skips.
    let checked = Schema::parse(
        &ml100k::schema_toml().replace(
            "name = \"hist_bucket\"\ntype = \"skip\"",
            "name = \"hist_bucket\"\ntype = \"sequence\"",
        ),
        "checked",
    )
    .unwrap();
    let bucket_column = checked.index("hist_bucket").unwrap();
    // Events in protocol order: by timestamp, then file order.
    let mut events: Vec<(i64, usize, &str, &str)> = INTER
        .lines()
        .skip(1)
        .enumerate()
        .map(|(k, l)| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[3].parse().unwrap(), k, f[0], f[1])
        })
        .collect();
    events.sort();
    let genre_of: HashMap<&str, &str> = [
        ("10", "Animation"),
        ("11", "unknown"),
        ("12", "Action"),
        ("13", "Drama"),
    ]
    .into_iter()
    .collect();
    let item_vocab = e.vocabulary(1).unwrap();
    let genre_vocab = e.vocabulary(7).unwrap();
    let mut seen = 0;
    for split in ml100k::SPLITS {
        let path = d.join(format!("{split}.tsv"));
        let batch = read_all(&path, &schema);
        let b = e.encode(&batch, split).unwrap();
        let protocol = read_all(&path, &checked);
        let ColumnData::Sequence(buckets) = &protocol.columns[bucket_column] else {
            panic!()
        };
        let t = tim(&b.features[10]);
        let mut first = 0;
        for r in 0..b.rows {
            let (_, _, user, item) = events[seen + r];
            // The history: that user's events strictly before this one in the global order.
            let earlier: Vec<&str> = events[..seen + r]
                .iter()
                .filter(|e| e.2 == user)
                .map(|e| e.3)
                .collect();
            let n = t.lengths[r] as usize;
            assert_eq!(n, earlier.len(), "{split} row {r}");
            let want: Vec<u32> = earlier
                .iter()
                .flat_map(|i| [item_vocab.row(i), genre_vocab.row(genre_of[i])])
                .collect();
            assert_eq!(t.behaviours[2 * first..2 * (first + n)], want[..]);
            let protocol_buckets: Vec<u32> = buckets.row(r).map(|x| x.parse().unwrap()).collect();
            assert_eq!(t.buckets[first..first + n], protocol_buckets[..]);
            assert_eq!(
                t.target[2 * r..2 * r + 2],
                [item_vocab.row(item), genre_vocab.row(genre_of[item])]
            );
            assert_eq!(b.groups.as_ref().unwrap()[r], stable_hash(user));
            first += n;
        }
        assert_eq!(first, t.behaviours.len() / 2);
        seen += b.rows;
    }
    assert_eq!(seen, events.len());
    // Vocabularies from train only: item 13 and user 4 first appear after the train split → OOV.
    assert_eq!(item_vocab.row("13"), OOV_ROW);
    assert_eq!(e.vocabulary(0).unwrap().row("4"), OOV_ROW);
    assert_eq!(e.vocabulary(0).unwrap().rows(), 4);
    // release_year: 1995 and missing ("unkonwn") → 1 + 0 and 0; 1931 only appears later (clamped).
    assert!(e.mns(6).iter().all(|b| b.digits == 1));
    fs::remove_dir_all(d).unwrap();
}

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
    let table_model = ModelConfig::parse(
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
    .unwrap();
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
    let criteo_model = ModelConfig::parse(&criteo_model, "criteo.toml").unwrap();
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

#[test]
fn seeded_random_sequences_match_a_direct_reference_in_batches_of_any_size() {
    let d = dir("seeded");
    let mut rng = crate::rng::Rng::new(17);
    let mut text = String::from(SEQ_TRAIN.lines().next().unwrap());
    text.push('\n');
    /// A behaviour: item, category, genre, time.
    type Behaviour = (String, String, String, i64);
    struct Row {
        item: String,
        cat: String,
        genres: Vec<String>,
        ts: i64,
        hist: Vec<Behaviour>,
    }
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

#[test]
fn shuffled_loader_permutes_within_windows_reproducibly() {
    use crate::data::loader::Shuffle;
    let d = dir("loader-shuffle");
    let schema = Schema::parse(NUMBERED_SCHEMA, "schema.toml").unwrap();
    let path = write(&d, "rows.tsv", &numbered(50));
    // Windows of 20 rows (the read batch), cut into batches of 6: 6, 6, 6, 2 per full window.
    let options = ReadOptions {
        batch_rows: 20,
        ..ReadOptions::default()
    };
    let encoder = Arc::new(
        Encoder::fit_file(&numbered_config(), &schema, "s", &path, options.clone()).unwrap(),
    );
    let run = |seed: u64| -> Vec<Vec<u64>> {
        let mut loader = Loader::spawn_shuffled(
            path.clone(),
            schema.clone(),
            options.clone(),
            Arc::clone(&encoder),
            2,
            Some(Shuffle { batch: 6, seed }),
            |b: ModelBatch| Ok(b.lines),
        )
        .unwrap();
        let batches: Vec<Vec<u64>> = loader.by_ref().map(|b| b.unwrap()).collect();
        loader.finish().unwrap();
        batches
    };
    let a = run(1);
    let sizes: Vec<usize> = a.iter().map(Vec::len).collect();
    assert_eq!(sizes, [6, 6, 6, 2, 6, 6, 6, 2, 6, 4]);
    // Every row exactly once, and each window's rows stay in their window (lines 2..=21 first).
    let mut all: Vec<u64> = a.concat();
    let first_window: Vec<u64> = a[..4].concat();
    assert!(
        first_window.iter().all(|l| (2..=21).contains(l)),
        "{first_window:?}"
    );
    all.sort();
    assert_eq!(all, (2..=51).collect::<Vec<u64>>());
    assert_ne!(
        a.concat(),
        (2..=51).collect::<Vec<u64>>(),
        "the order changed"
    );
    assert_eq!(run(1), a, "one seed, one order");
    assert_ne!(run(2), a, "another seed, another order");
}
