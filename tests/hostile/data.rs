//! Data in: schemas of hostile size, stray quotes, corrupt extremes, and the split files a user
//! brings (issue 12, data).

use std::path::Path;

use crate::common::*;

/// Rewrites field `column` (by header name) of line `line` (1-based) of `file` to `value`.
fn set_field(file: &Path, line: usize, column: &str, value: &str) {
    let text = std::fs::read_to_string(file).expect("read");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let c = lines[0]
        .split('\t')
        .position(|h| h == column)
        .expect("column");
    let mut fields: Vec<&str> = lines[line - 1].split('\t').collect();
    fields[c] = value;
    lines[line - 1] = fields.join("\t");
    std::fs::write(file, lines.join("\n") + "\n").expect("write");
}

fn train(dir: &Path, data: &Path, extra: &[&str]) -> std::process::Output {
    let model = model_file(dir, "model.toml", SMALL_MODEL);
    wgrec()
        .args(["train", "--config"])
        .arg(model)
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(dir.join("run"))
        .args(extra)
        .output()
        .expect("run")
}

#[test]
fn a_trillion_column_schema_is_refused_naming_the_columns_key_and_the_run_is_untouched() {
    let dir = temp("data-wide-schema");
    let data = synth_data(&dir, 200);
    let model = model_file(&dir, "model.toml", SMALL_MODEL);
    let run = finished_run(&model, &data, &dir.join("run"));
    let before = snapshot(&run);
    std::fs::write(
        data.join("schema.toml"),
        "columns = \"label:click, numeric:I1-I1099511627776\"\n",
    )
    .expect("write");
    refused(
        &train(&dir, &data, &[]),
        &["schema.toml", "columns", "over the limit of 100000"],
    );
    unchanged(&run, &before);
}

#[test]
fn an_unclosed_quote_under_skip_bad_rows_costs_one_row_and_the_report_counts_each_split() {
    let dir = temp("data-unclosed-quote");
    let data = synth_data(&dir, 2000);
    set_field(&data.join("train.tsv"), 5, "c1", "\"abc");
    let train_rows = std::fs::read_to_string(data.join("train.tsv"))
        .expect("read")
        .lines()
        .count() as u64
        - 1;
    let out = train(&dir, &data, &["--skip-bad-rows", "--json"]);
    let report: serde_json::Value = serde_json::from_str(ok(&out).trim()).expect("json");
    assert_eq!(report["bad_rows"], 1, "{report}");
    assert_eq!(report["rows"]["train"]["read"], train_rows, "{report}");
    assert_eq!(report["rows"]["train"]["used"], train_rows - 1, "{report}");
    assert_eq!(report["rows"]["train"]["skipped"], 1, "{report}");
    assert_eq!(report["rows"]["valid"]["skipped"], 0, "{report}");
    let line = format!(
        "rows read/used/skipped: train {train_rows}/{}/1, valid ",
        train_rows - 1
    );
    assert!(stderr(&out).contains(&line), "{}", stderr(&out));
}

#[test]
fn an_extreme_number_is_refused_naming_its_data_line() {
    let dir = temp("data-extreme");
    let data = synth_data(&dir, 400);
    set_field(&data.join("train.tsv"), 3, "n0", "1e300");
    set_field(&data.join("train.tsv"), 4, "n0", "-1e300");
    refused(
        &train(&dir, &data, &[]),
        &["train.tsv:3", "\"n0\"", "value 1e300"],
    );
}

#[test]
fn splits_named_csv_train_and_a_split_named_twice_is_refused() {
    let dir = temp("data-csv-splits");
    let data = synth_data(&dir, 400);
    for split in ["train", "valid", "test"] {
        let from = data.join(format!("{split}.tsv"));
        std::fs::rename(&from, data.join(format!("{split}.csv"))).expect("rename");
    }
    ok(&train(&dir, &data, &[]));
    std::fs::copy(data.join("valid.csv"), data.join("valid.tsv")).expect("copy");
    refused(
        &train(&dir, &data, &[]),
        &["both valid.tsv and valid.csv: keep one"],
    );
}
