//! Sequence features: the most recent behaviours, target and side ids, buckets, bad rows.

use super::*;

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
