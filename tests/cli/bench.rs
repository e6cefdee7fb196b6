//! `wgrec bench --scaling DIR --sweep NAME`: one kernel sweep alone. The rows sweep writes its JSON
//! as `scaling_rows.json` (every point with the storage groups its table spans) and its chart, and
//! no whole-model files.

use crate::{ok, temp, wgrec};

#[test]
fn bench_scaling_sweep_rows_writes_only_the_rows_curves_with_their_groups() {
    let dir = temp("scaling-rows");
    ok(&wgrec()
        .args([
            "bench",
            "--quick",
            "--repeats",
            "1",
            "--sweep",
            "rows",
            "--scaling",
        ])
        .arg(&dir)
        .output()
        .expect("run wgrec"));
    // Named after the sweep: a whole run's scaling.json in the same folder stays.
    let text = std::fs::read_to_string(dir.join("scaling_rows.json")).expect("scaling_rows.json");
    let report: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let curves = report["curves"].as_array().expect("curves");
    let kernels: Vec<&str> = curves
        .iter()
        .map(|c| c["kernel"].as_str().unwrap())
        .collect();
    assert_eq!(
        kernels,
        [
            "embedding_gather",
            "embedding_update_adagrad",
            "embedding_gather_f16",
            "embedding_update_adagrad_f16"
        ]
    );
    for c in curves {
        assert_eq!(c["sweep"], "rows");
        for p in c["points"].as_array().expect("points") {
            assert!(p["groups"].as_u64().unwrap() >= 1, "{p}");
            assert!(p["gb_per_s"].as_f64().unwrap() > 0.0, "{p}");
        }
    }
    let png = std::fs::read(dir.join("scaling_rows.png")).expect("chart");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    for absent in [
        "scaling.json",
        "training.json",
        "scaling_batch.png",
        "training_rows.png",
    ] {
        assert!(!dir.join(absent).exists(), "{absent} written");
    }
    // --sweep alone (no --scaling folder) is a usage error.
    let out = wgrec()
        .args(["bench", "--sweep", "rows"])
        .output()
        .expect("run wgrec");
    assert_eq!(out.status.code(), Some(2), "--sweep needs --scaling");
    std::fs::remove_dir_all(&dir).expect("clean up");
}
