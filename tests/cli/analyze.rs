//! `wgrec analyze` end to end: after a `train`, the report folder (report.md, report.json, the
//! figures) and the JSON on stdout; a folder that is not a run, a foreign or torn checkpoint and a
//! bad `--out` are clear errors that leave nothing behind.

use std::path::Path;

use crate::{last_json, ok, temp, wgrec, SYNTH_MODEL};

/// Trains SYNTH_MODEL on 3000 synthetic rows into `dir/run`; returns the data folder.
fn trained(dir: &Path) -> std::path::PathBuf {
    let data = dir.join("data");
    ok(&wgrec()
        .args(["data", "synth", "--rows", "3000", "--out"])
        .arg(&data)
        .output()
        .expect("run"));
    let model = dir.join("model.toml");
    std::fs::write(&model, SYNTH_MODEL).unwrap();
    train(&model, &data, &dir.join("run"));
    data
}

/// `wgrec train --config model --data data --out run`, which must succeed.
fn train(model: &Path, data: &Path, run: &Path) {
    ok(&wgrec()
        .args(["train", "--config"])
        .arg(model)
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(run)
        .output()
        .expect("run"));
}

fn analyze(args: &[&std::ffi::OsStr]) -> std::process::Output {
    wgrec().arg("analyze").args(args).output().expect("run")
}

#[test]
fn analyze_writes_the_report_and_prints_every_number_as_json() {
    let dir = temp("analyze");
    trained(&dir);
    let run = dir.join("run");
    // No --data: the run's recorded data folder; no --out: `<run>-analysis` beside the run.
    let stdout = ok(&analyze(&[
        "--json".as_ref(),
        "--checkpoint".as_ref(),
        run.as_os_str(),
    ]));
    let report = last_json(&stdout);
    for key in ["subject", "collapse", "tim", "entanglement", "gradients"] {
        assert!(report.get(key).is_some(), "missing {key} in {report}");
    }
    assert_eq!(report["subject"]["tables"], 2);
    assert_eq!(report["subject"]["outputs"], serde_json::json!(["click"]));
    assert!(
        report["entanglement"].is_null(),
        "one task: no entanglement"
    );
    let grads = &report["gradients"]["outputs"][0];
    assert_eq!(grads["output"], "click");
    assert_eq!(grads["rows"], 2400, "the training split's rows");
    let bce = &grads["losses"][0];
    assert_eq!(bce["loss"], "bce");
    assert!(bce["negative"].as_f64().unwrap() > 0.0);
    let out = dir.join("run-analysis");
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("# wgrec analyze") && md.contains("Loss gradients"),
        "{md}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(json, report, "report.json holds what stdout printed");
    // Every figure report.md links exists, as PNG and SVG.
    for link in md.split("](").skip(1).filter_map(|s| s.split(')').next()) {
        assert!(out.join(link).is_file(), "{link} linked but not written");
    }
    // A second analyze replaces the report.
    ok(&analyze(&["--checkpoint".as_ref(), run.as_os_str()]));
    assert!(out.join("report.md").is_file());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn analyze_refuses_what_is_not_a_run_and_a_bad_out_with_a_clear_error() {
    let dir = temp("analyze-bad");
    let data = trained(&dir);
    let run = dir.join("run");
    let fails = |args: &[&std::ffi::OsStr], want: &str| {
        let out = analyze(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(want), "want {want:?} in:\n{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    };
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    fails(
        &["--checkpoint".as_ref(), empty.as_os_str()],
        "not a run folder",
    );
    // --out may not be a run folder, nor a folder holding something else.
    fails(
        &[
            "--checkpoint".as_ref(),
            run.as_os_str(),
            "--out".as_ref(),
            run.as_os_str(),
        ],
        "that is a run folder",
    );
    fails(
        &[
            "--checkpoint".as_ref(),
            run.as_os_str(),
            "--out".as_ref(),
            data.as_os_str(),
        ],
        "holds no report",
    );
    // A checkpoint of another model (one table instead of two) in the run folder.
    let other = dir.join("other");
    let model = dir.join("other.toml");
    std::fs::write(&model, SYNTH_MODEL.replace("tables = 2", "tables = 1")
        .replace(r#"experts = [{ type = "dcn", layers = 1 }, { type = "gwpfm", groups = [["user_id"], ["item_id", "item_cat", "history"]] }]"#,
                 r#"experts = [{ type = "dcn", layers = 1 }]"#)).unwrap();
    train(&model, &data, &other);
    let foreign = dir.join("foreign");
    copy_run(&run, &foreign);
    std::fs::copy(
        other.join("best.safetensors"),
        foreign.join("best.safetensors"),
    )
    .unwrap();
    fails(
        &["--checkpoint".as_ref(), foreign.as_os_str()],
        "checkpoint",
    );
    // A torn checkpoint.
    let torn = dir.join("torn");
    copy_run(&run, &torn);
    let bytes = std::fs::read(run.join("best.safetensors")).unwrap();
    std::fs::write(torn.join("best.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    fails(
        &["--checkpoint".as_ref(), torn.as_os_str()],
        "best.safetensors",
    );
    // Nothing was written for any failed analysis.
    for d in [&empty, &foreign, &torn] {
        let report = d.with_file_name(format!(
            "{}-analysis",
            d.file_name().unwrap().to_string_lossy()
        ));
        assert!(!report.exists(), "{} written", report.display());
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Copies a run folder's files (config, schema, encoder, data path, checkpoints).
fn copy_run(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.join("encoder")).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let p = entry.path();
        if p.is_file() {
            std::fs::copy(&p, to.join(entry.file_name())).unwrap();
        }
    }
    for entry in std::fs::read_dir(from.join("encoder")).unwrap().flatten() {
        std::fs::copy(entry.path(), to.join("encoder").join(entry.file_name())).unwrap();
    }
}

#[test]
fn a_mean_pooled_history_has_no_temporal_table_and_no_attention_to_measure() {
    let dir = temp("analyze-mean");
    let data = dir.join("data");
    ok(&wgrec()
        .args(["data", "synth", "--rows", "2000", "--out"])
        .arg(&data)
        .output()
        .expect("run"));
    let model = dir.join("model.toml");
    std::fs::write(
        &model,
        SYNTH_MODEL.replace("buckets = 16\n", "pooling = \"mean\"\n"),
    )
    .unwrap();
    let run = dir.join("run");
    train(&model, &data, &run);
    let report = last_json(&ok(&analyze(&[
        "--json".as_ref(),
        "--checkpoint".as_ref(),
        run.as_os_str(),
    ])));
    assert!(report["tim"].is_null(), "no attention: {}", report["tim"]);
    let fields: Vec<&str> = report["collapse"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["user_id", "item_id", "item_cat", "n0"]);
    let _ = std::fs::remove_dir_all(dir);
}
