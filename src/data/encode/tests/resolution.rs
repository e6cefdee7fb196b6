//! Column resolution errors naming the model key; labels, weights and GAUC group keys; an
//! unfitted encoder.

use super::*;
use crate::kernels::loss::MISSING_LABEL;

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
fn labels_weights_and_gauc_keys_follow_the_config() {
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
fn missing_labels_encode_as_the_sentinel_and_take_class_weight_one() {
    let d = dir("missing-labels");
    let schema = Schema::parse(TASK_SCHEMA, "schema.toml").unwrap();
    let train = write(
        &d,
        "train.tsv",
        "click\tlove\tuser\tviews\tscore\tday\n\
         1\t\tu1\t4\t0\t7\n\
         \t1\tu2\t4\t0\t8\n\
         0\t0\tu1\t4\t0\t7\n\
         \t\tu3\t1\t0\t9\n",
    );
    let model = config(
        "[[feature]]\nname = \"user\"\nkind = \"categorical\"\n\
         [[task]]\nname = \"click\"\n[[task]]\nname = \"loved\"\nlabel = \"love\"\n\
         [train.weights]\ncolumn = \"views\"\ngamma = 0.5\npositive = 3\nnegative = 0.25\n",
    );
    let e = Encoder::fit_file(
        &model,
        &schema,
        "schema.toml",
        &train,
        ReadOptions::default(),
    )
    .unwrap();
    let b = e.encode(&read_all(&train, &schema), "train.tsv").unwrap();
    let m = MISSING_LABEL;
    assert_eq!(b.labels, [1.0, m, m, 1.0, 0.0, 0.0, m, m]);
    // The class weight follows click: 3 for 1, 0.25 for 0, 1 where click is missing (rows 2 and
    // 4), times the exposure part max(views, 1)^−0.5.
    assert_eq!(b.weights.unwrap(), [1.5, 0.5, 0.125, 1.0]);
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
