//! `wgrec tune`, the tune cache and `devices --verbose` (issue 20, point 4): a tune writes a cache
//! keyed by this adapter and wgrec version; `train` compiles with its choices and says so; a corrupt
//! cache is a warning, never a failure; a first-use tune (forced on here with `WGREC_TUNE=1`, since a
//! CPU driver does not tune by default) fills the cache once; a bad forced variant is a clear error.

use std::path::{Path, PathBuf};

use crate::{last_json, ok, synth_data, temp, wgrec, SYNTH_MODEL};

fn synth(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    synth_data(&data, 600);
    std::fs::write(
        dir.join("model.toml"),
        SYNTH_MODEL.replace("epochs = 2", "epochs = 1"),
    )
    .expect("model");
    data
}

fn train(dir: &Path, cache: &Path, out: &str, tune: Option<&str>) -> std::process::Output {
    let mut cmd = wgrec();
    cmd.args([
        "train",
        "--json",
        "--config",
        "model.toml",
        "--data",
        "data",
        "--out",
        out,
    ])
    .env("WGREC_TUNE_CACHE", cache)
    .env_remove("WGREC_VARIANT")
    .current_dir(dir);
    match tune {
        Some(v) => cmd.env("WGREC_TUNE", v),
        None => cmd.env_remove("WGREC_TUNE"),
    };
    cmd.output().expect("run")
}

#[test]
fn tune_writes_a_cache_that_train_compiles_with() {
    let dir = temp("tune-cache");
    synth(&dir);
    let cache = dir.join("cache").join("tune.json");
    let out = wgrec()
        .args(["tune", "--json", "--config", "model.toml", "--data", "data"])
        .args(["--steps", "1", "--rounds", "2", "--batches", "2", "--cache"])
        .arg(&cache)
        .env_remove("WGREC_VARIANT")
        .current_dir(&dir)
        .output()
        .expect("run");
    let report = last_json(&ok(&out));
    let trials = report["report"]["trials"]
        .as_array()
        .expect("trials")
        .clone();
    assert!(
        !trials.is_empty(),
        "the model makes tunable choices here: {report}"
    );
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cache).expect("cache")).expect("json");
    assert_eq!(saved["format"], "wgrec-tune-1");
    let entries = saved["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), trials.len());
    assert_eq!(entries[0]["device"]["wgrec"], env!("CARGO_PKG_VERSION"));
    for t in &trials {
        assert!(t["ms"].as_object().expect("ms").len() >= 2, "{t}");
    }
    // train on the same device compiles with the cached winners and lists them.
    let run = last_json(&ok(&train(&dir, &cache, "run", None)));
    let kernels = run["kernels"].as_array().expect("kernels");
    for t in &trials {
        let used = kernels
            .iter()
            .find(|k| k["family"] == t["family"] && k["class"] == t["class"])
            .unwrap_or_else(|| panic!("{t} not among {kernels:?}"));
        assert_eq!(used["variant"], t["winner"], "{used}");
        assert_eq!(used["source"], "tuned", "{used}");
    }
    // devices --verbose shows the cache's choices for this adapter.
    let out = wgrec()
        .args(["devices", "--verbose"])
        .env("WGREC_TUNE_CACHE", &cache)
        .output()
        .expect("run");
    let stdout = ok(&out);
    assert!(stdout.contains("gemm variants: default"), "{stdout}");
    let first = &trials[0];
    let line = format!(
        "{} {}: {}",
        first["family"].as_str().unwrap(),
        first["class"].as_str().unwrap(),
        first["winner"].as_str().unwrap()
    );
    assert!(stdout.contains(&line), "{line} in {stdout}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_corrupt_cache_is_a_warning_and_first_use_tunes_once() {
    let dir = temp("tune-first-use");
    synth(&dir);
    let cache = dir.join("tune.json");
    std::fs::write(&cache, b"\x00 not a cache").expect("write");
    let out = train(&dir, &cache, "run-corrupt", Some("0"));
    let stdout = ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("tune cache") && stderr.contains("ignored"),
        "{stderr}"
    );
    let defaults = last_json(&stdout)["kernels"].clone();
    assert!(
        defaults
            .as_array()
            .expect("kernels")
            .iter()
            .all(|k| k["source"] == "default"),
        "{defaults}"
    );
    std::fs::remove_file(&cache).expect("remove");
    let out = train(&dir, &cache, "run-first", Some("1"));
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("tuning") && stderr.contains("first use"),
        "{stderr}"
    );
    assert!(cache.is_file(), "the first-use tune writes the cache");
    let out = train(&dir, &cache, "run-second", Some("1"));
    let report = last_json(&ok(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("first use"),
        "the second run finds the cache: {stderr}"
    );
    assert!(report["kernels"]
        .as_array()
        .expect("kernels")
        .iter()
        .any(|k| k["source"] == "tuned"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_forced_variant_that_does_not_exist_is_a_clear_error() {
    let out = wgrec()
        .args(["bench", "--quick", "--filter", "copy"])
        .env("WGREC_VARIANT", "gemm=warp-speed")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("WGREC_VARIANT") && stderr.contains("no gemm variant named \"warp-speed\""),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn the_bench_model_tunes_and_its_export_compiles_with_the_cache() {
    let dir = temp("tune-bench-model");
    let cache = dir.join("tune.json");
    let out = wgrec()
        .args(["tune", "--bench-model", "--quick", "--json"])
        .args(["--steps", "1", "--rounds", "1", "--batches", "1"])
        .env("WGREC_TUNE_CACHE", &cache)
        .env_remove("WGREC_VARIANT")
        .output()
        .expect("run");
    let report = last_json(&ok(&out));
    let trials = report["report"]["trials"].as_array().expect("trials");
    assert!(!trials.is_empty(), "{report}");
    let out = wgrec()
        .args(["bench", "--export-model"])
        .arg(dir.join("model"))
        .args(["--quick", "--json"])
        .env("WGREC_TUNE_CACHE", &cache)
        .env_remove("WGREC_VARIANT")
        .output()
        .expect("run");
    let export = last_json(&ok(&out));
    let kernels = export["kernels"].as_array().expect("kernels");
    // Every choice the export's model makes was tuned for exactly this model.
    assert_eq!(
        kernels.len(),
        trials.len() + report["report"]["skipped"].as_array().unwrap().len()
    );
    for t in trials {
        assert!(
            kernels.iter().any(|k| k["family"] == t["family"]
                && k["class"] == t["class"]
                && k["variant"] == t["winner"]
                && k["source"] == "tuned"),
            "{t} in {kernels:?}"
        );
    }
    let out = wgrec()
        .args(["tune", "--bench-model", "--config", "model.toml"])
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(2),
        "--config and --bench-model exclude each other"
    );
    let _ = std::fs::remove_dir_all(dir);
}
