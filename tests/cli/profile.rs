//! `wgrec train --profile` and `wgrec bench --profile` (issue 20): the per-layer table with every
//! (layer, phase) once and shares summing to 100%, the JSON object, and a profiled run whose
//! result is bit-identical to the same run without `--profile`.

use crate::{last_json, ok, synth_data, temp, wgrec, SYNTH_MODEL};

const PHASES: [&str; 5] = ["forward", "backward", "update", "loss", "copy"];

/// The (layer, phase) of each JSON row, checking the shares sum to 1 and the rows are sorted.
fn json_rows(profile: &serde_json::Value) -> Vec<(String, String)> {
    let rows = profile["rows"].as_array().expect("rows");
    assert!(!rows.is_empty(), "{profile}");
    let share: f64 = rows.iter().map(|r| r["share"].as_f64().unwrap()).sum();
    assert!((share - 1.0).abs() < 1e-9, "shares sum to {share}");
    let ms: Vec<f64> = rows.iter().map(|r| r["ms"].as_f64().unwrap()).collect();
    assert!(ms.windows(2).all(|w| w[0] >= w[1]), "slowest first: {ms:?}");
    for key in [
        "adapter",
        "timing",
        "steps",
        "batch",
        "total_ms",
        "step_wall_ms",
    ] {
        assert!(profile.get(key).is_some(), "missing {key}");
    }
    assert_eq!(
        profile["timing"], "gpu_timestamps",
        "lavapipe has timestamps"
    );
    let ceilings = &profile["ceilings"];
    assert!(
        ceilings["copy_gb_per_s"].as_f64().unwrap() > 0.0,
        "{ceilings}"
    );
    assert!(
        ceilings["fma_gflop_per_s"].as_f64().unwrap() > 0.0,
        "{ceilings}"
    );
    (rows.iter())
        .map(|r| {
            (
                r["layer"].as_str().unwrap().into(),
                r["phase"].as_str().unwrap().into(),
            )
        })
        .collect()
}

/// Every (layer, phase) once, and the sections every model has.
fn check_once(rows: &[(String, String)]) {
    let mut seen = std::collections::BTreeSet::new();
    for r in rows {
        assert!(seen.insert(r.clone()), "{r:?} twice in {rows:?}");
    }
    for (layer, phase) in [
        ("embedding", "forward"),
        ("embedding", "update"),
        ("embedding·tim", "backward"),
        ("dense optimizer", "update"),
    ] {
        assert!(
            seen.contains(&(layer.into(), phase.into())),
            "no {layer} {phase}"
        );
    }
    for phase in ["forward", "backward"] {
        assert!(seen
            .iter()
            .any(|(l, p)| l.starts_with("expert 0 dcn") && p == phase));
        assert!(seen
            .iter()
            .any(|(l, p)| l.starts_with("head") && p == phase));
    }
}

#[test]
fn train_profile_prints_every_layer_once_per_phase_and_keeps_the_result() {
    let dir = temp("profile");
    let data = dir.join("data");
    synth_data(&data, 3000);
    let model = dir.join("model.toml");
    std::fs::write(&model, SYNTH_MODEL.replace("epochs = 2", "epochs = 1")).unwrap();
    let train = |run: &str, extra: &[&str]| {
        ok(&wgrec()
            .arg("train")
            .args(extra)
            .arg("--config")
            .arg(&model)
            .arg("--data")
            .arg(&data)
            .arg("--out")
            .arg(dir.join(run))
            .output()
            .expect("run"))
    };
    let plain = last_json(&train("plain", &["--json"]));
    let profiled = last_json(&train(
        "json",
        &["--json", "--profile", "--profile-steps", "3"],
    ));
    for key in ["test_auc", "test_logloss", "valid_auc"] {
        assert_eq!(
            plain[key], profiled[key],
            "{key}: --profile changed the run"
        );
    }
    let profile = &profiled["profile"];
    assert_eq!(profile["steps"], 3);
    check_once(&json_rows(profile));

    let table = train("table", &["--profile", "--profile-steps", "2"]);
    let head = table
        .lines()
        .position(|l| l.starts_with("layer"))
        .expect("header");
    let lines: Vec<&str> = table.lines().skip(head + 1).collect();
    let (total, rows) = lines.split_last().expect("a total line");
    assert!(total.starts_with("total (sum of sections)"), "{total}");
    assert!(total.contains("unprofiled step wall time"), "{total}");
    let parsed: Vec<(String, String, f64)> = rows
        .iter()
        .map(|l| {
            // Columns: layer (words), phase, ms, share, rate, of ceiling.
            let words: Vec<&str> = l.split_whitespace().collect();
            let at = (words.iter())
                .rposition(|w| PHASES.contains(w))
                .unwrap_or_else(|| panic!("no phase in {l:?}"));
            let share = words[at + 2].trim_end_matches('%').parse().unwrap();
            (words[..at].join(" "), words[at].to_string(), share)
        })
        .collect();
    let share: f64 = parsed.iter().map(|r| r.2).sum();
    assert!(
        (share - 100.0).abs() < 0.1 * parsed.len() as f64,
        "{share}%\n{table}"
    );
    let names: Vec<(String, String)> = parsed.into_iter().map(|r| (r.0, r.1)).collect();
    check_once(&names);
    assert!(table.contains("timing:  GPU timestamps"), "{table}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bench_profile_json_is_one_object_over_the_bench_model() {
    let out = ok(&wgrec()
        .args([
            "bench",
            "--profile",
            "--quick",
            "--profile-steps",
            "2",
            "--json",
        ])
        .output()
        .expect("run"));
    let report: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_eq!(report["batch"], 256);
    let rows = json_rows(&report);
    check_once(&rows);
    assert!(
        rows.iter().any(|(l, _)| l.starts_with("expert 1 gwpfm")),
        "{rows:?}"
    );
    assert!(
        rows.iter().any(|(l, _)| l == "batchnorm + relu"),
        "{rows:?}"
    );
    // --profile-steps alone is a usage error, and --profile excludes the other modes.
    let out = wgrec()
        .args(["bench", "--profile-steps", "2"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let out = wgrec()
        .args(["bench", "--profile", "--scaling", "/nonexistent"])
        .output()
        .expect("run");
    assert!(!out.status.success());
}
