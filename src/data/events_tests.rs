//! Event logs into sample tables on a tiny log.

use super::*;
use crate::data::{ColumnData, Schema};

const SCHEMA: &str = r#"
[[column]]
name = "click"
type = "label"
[[column]]
name = "user"
type = "categorical"
[[column]]
name = "item"
type = "categorical"
[[column]]
name = "genres"
type = "multi_hot"
separator = ";"
[[column]]
name = "price"
type = "numeric"
[[column]]
name = "note"
type = "skip"
[[column]]
name = "t"
type = "timestamp"
"#;

/// Out of time order on purpose; a tie at t = 50 between lines 3 and 5 (file order decides).
const LOG: &str = "click\tuser\titem\tgenres\tprice\tnote\tt\n\
1\tu1\ti1\tg1;g2\t1.5\tx\t100\n\
0\tu1\ti2\tg2\t\tx\t50\n\
1\tu2\t\"i\t3\"\tg3\t2\tx\t70\n\
1\tu1\ti3\tg1\t3\tx\t50\n\
0\tu1\ti4\t\t4\tx\t200\n\
1\tu2\ti1\tg1\t5\tx\t300\n";

/// LOG with a genre for every event (a behaviour needs a side id).
fn full_log() -> String {
    LOG.replace("\ti4\t\t", "\ti4\tg4\t")
}

fn run(
    name: &str,
    behaviours: Behaviours,
    max_len: usize,
) -> Result<(String, String, SequenceStats)> {
    run_log(name, &full_log(), behaviours, max_len)
}

/// [`run`] on the log `text`.
fn run_log(
    name: &str,
    text: &str,
    behaviours: Behaviours,
    max_len: usize,
) -> Result<(String, String, SequenceStats)> {
    let dir = std::env::temp_dir().join(format!("wgrec-events-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("log.tsv");
    std::fs::write(&log, text).unwrap();
    let schema = Schema::parse(SCHEMA, "schema.toml").unwrap();
    let options = SequenceOptions {
        user: "user".into(),
        item: "item".into(),
        time: "t".into(),
        side: vec!["genres".into()],
        behaviours,
        max_len,
    };
    let out = dir.join("samples.tsv");
    let schema_out = dir.join("samples.schema.toml");
    let stats = build_sequences(
        &log,
        &schema,
        "schema.toml",
        &options,
        ReadOptions::default(),
        &out,
        &schema_out,
    );
    let result = stats.map(|s| {
        (
            std::fs::read_to_string(&out).unwrap(),
            std::fs::read_to_string(&schema_out).unwrap(),
            s,
        )
    });
    std::fs::remove_dir_all(&dir).unwrap();
    result
}

#[test]
fn histories_are_the_users_earlier_events_in_time_then_file_order() {
    let (table, schema_text, stats) = run("all", Behaviours::All, 50).unwrap();
    assert_eq!(
        table,
        "click\tuser\titem\tgenres\tprice\tt\thist_item\thist_genres\thist_time\n\
         0\tu1\ti2\tg2\t\t50\t\t\t\n\
         1\tu1\ti3\tg1\t3\t50\ti2\tg2\t50\n\
         1\tu2\t\"i\t3\"\tg3\t2\t70\t\t\t\n\
         1\tu1\ti1\tg1;g2\t1.5\t100\ti2|i3\tg2|g1\t50|50\n\
         0\tu1\ti4\tg4\t4\t200\ti2|i3|i1\tg2|g1|g1\t50|50|100\n\
         1\tu2\ti1\tg1\t5\t300\t\"i\t3\"\tg3\t70\n"
    );
    assert_eq!((stats.rows, stats.users), (6, 2));
    // History lengths 0, 1, 0, 2, 3, 1.
    assert_eq!(stats.mean_history, 7.0 / 6.0);
    // The written schema reads the written table back.
    let schema = Schema::parse(&schema_text, "samples.schema.toml").unwrap();
    let batch = crate::data::TableReader::new(
        table.as_bytes(),
        "samples.tsv",
        &schema,
        ReadOptions::default(),
    )
    .unwrap()
    .next_batch()
    .unwrap()
    .unwrap();
    let ColumnData::SequenceTimes(times) = &batch.columns[8] else {
        panic!("{schema_text}")
    };
    assert_eq!(times.row(4), [50.0, 50.0, 100.0]);
    assert!(matches!(
        schema.columns[8].kind,
        crate::data::ColumnKind::SequenceTimes { sequence: 6, .. }
    ));
    // And the encoder reads it: histories, side ids and log-delta buckets.
    let config = crate::config::ModelConfig::parse(
        "[[feature]]\nname = \"item\"\nkind = \"categorical\"\n\
         [[feature]]\nname = \"genre\"\nkind = \"bag\"\ncolumn = \"genres\"\nseparator = \";\"\n\
         [[feature]]\nname = \"history\"\nkind = \"sequence\"\ncolumn = \"hist_item\"\n\
         item = \"item\"\nside = [\"genre\"]\nside_columns = [\"hist_genres\"]\n\
         time = { by = \"log_delta\", unit_seconds = 10 }\n",
        "model.toml",
    )
    .unwrap();
    let mut encoder = crate::data::Encoder::new(&config, &schema, "samples.schema.toml").unwrap();
    encoder.fit(&batch);
    encoder.finish_fit().unwrap();
    let b = encoder.encode(&batch, "samples.tsv").unwrap();
    let crate::data::FeatureInput::Sequence(t) = &b.features[2] else {
        panic!("not a sequence")
    };
    assert_eq!(t.lengths, [0, 1, 0, 2, 3, 1]);
    // Δt 0 → 1; 50, 50 → 1 + ⌊log2 6⌋ = 3; 150, 150, 100 → 5, 5, 4; 230 → 5.
    assert_eq!(t.buckets, [1, 3, 3, 5, 5, 4, 5]);
    let item = encoder.vocabulary(0).unwrap();
    let genre = encoder.vocabulary(1).unwrap();
    assert_eq!(
        t.behaviours[..4],
        [
            item.row("i2"),
            genre.row("g2"),
            item.row("i2"),
            genre.row("g2")
        ]
    );
}

#[test]
fn positive_behaviours_only_and_max_len_keeps_the_most_recent() {
    let (table, _, _) = run(
        "positive",
        Behaviours::Positive {
            label: "click".into(),
        },
        1,
    )
    .unwrap();
    // i2 (click 0) is no behaviour; max_len 1 keeps the latest positive only.
    let lines: Vec<&str> = table.lines().skip(1).collect();
    assert_eq!(
        lines,
        [
            "0\tu1\ti2\tg2\t\t50\t\t\t",
            "1\tu1\ti3\tg1\t3\t50\t\t\t",
            "1\tu2\t\"i\t3\"\tg3\t2\t70\t\t\t",
            "1\tu1\ti1\tg1;g2\t1.5\t100\ti3\tg1\t50",
            "0\tu1\ti4\tg4\t4\t200\ti1\tg1\t100",
            "1\tu2\ti1\tg1\t5\t300\t\"i\t3\"\tg3\t70",
        ]
    );
}

#[test]
fn an_event_without_a_label_stays_unlabelled_and_is_no_positive_behaviour() {
    // i3's click (line 5) is empty: the sample keeps an empty label, and with positive behaviours
    // only it joins no history.
    let log = full_log().replace("1\tu1\ti3\t", "\tu1\ti3\t");
    let positive = Behaviours::Positive {
        label: "click".into(),
    };
    let (table, schema_text, _) = run_log("unlabelled", &log, positive, 5).unwrap();
    let lines: Vec<&str> = table.lines().skip(1).collect();
    assert_eq!(
        lines,
        [
            "0\tu1\ti2\tg2\t\t50\t\t\t",
            "\tu1\ti3\tg1\t3\t50\t\t\t",
            "1\tu2\t\"i\t3\"\tg3\t2\t70\t\t\t",
            "1\tu1\ti1\tg1;g2\t1.5\t100\t\t\t",
            "0\tu1\ti4\tg4\t4\t200\ti1\tg1\t100",
            "1\tu2\ti1\tg1\t5\t300\t\"i\t3\"\tg3\t70",
        ]
    );
    // The written table reads back with the label missing.
    let schema = Schema::parse(&schema_text, "samples.schema.toml").unwrap();
    let batch = crate::data::TableReader::new(
        table.as_bytes(),
        "samples.tsv",
        &schema,
        ReadOptions::default(),
    )
    .unwrap()
    .next_batch()
    .unwrap()
    .unwrap();
    let missing = crate::kernels::loss::MISSING_LABEL;
    assert_eq!(
        batch.columns[0],
        ColumnData::Label(vec![0.0, missing, 1.0, 1.0, 0.0, 1.0])
    );
}

#[test]
fn bad_options_and_rows_are_errors_naming_key_or_line() {
    let err = |options: SequenceOptions| {
        let dir = std::env::temp_dir().join(format!("wgrec-events-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("log.tsv"), LOG).unwrap();
        let schema = Schema::parse(SCHEMA, "schema.toml").unwrap();
        let e = build_sequences(
            &dir.join("log.tsv"),
            &schema,
            "schema.toml",
            &options,
            ReadOptions::default(),
            &dir.join("o.tsv"),
            &dir.join("o.toml"),
        )
        .unwrap_err()
        .to_string()
        .replace(&format!("{}/", dir.display()), "");
        std::fs::remove_dir_all(&dir).unwrap();
        e
    };
    let base = SequenceOptions {
        user: "user".into(),
        item: "item".into(),
        time: "t".into(),
        side: vec![],
        behaviours: Behaviours::All,
        max_len: 50,
    };
    assert_eq!(
        err(SequenceOptions {
            time: "price".into(),
            ..base.clone()
        }),
        "schema.toml: --time: column \"price\" is numeric, not timestamp"
    );
    assert_eq!(
        err(SequenceOptions {
            side: vec!["genre".into()],
            ..base.clone()
        }),
        "schema.toml: --side 1: no column \"genre\" in the schema"
    );
    assert_eq!(
        err(SequenceOptions {
            behaviours: Behaviours::Positive {
                label: "user".into()
            },
            ..base.clone()
        }),
        "schema.toml: --label: column \"user\" is categorical, not label"
    );
    // Line 6's empty genres cannot be a behaviour's side id.
    assert_eq!(
        err(SequenceOptions {
            side: vec!["genres".into()],
            ..base
        }),
        "log.tsv:6: column 4 \"genres\": empty: a behaviour needs an id"
    );
}
