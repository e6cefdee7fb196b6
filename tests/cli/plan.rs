//! `wgrec plan`: the memory statement without training. On a synthetic data folder it prints a
//! total, says the model fits, exits 0 and writes nothing; `--json` parses and agrees with what
//! `train --json` reports for the same model; a model whose tables cannot fit exits non-zero
//! naming the bytes, the limit and the key. (ml-100k is not in a fresh clone, so no test reads it;
//! docs/graph.md shows `wgrec plan` on it.)

use std::path::{Path, PathBuf};

use crate::{last_json, ok, temp, wgrec, SYNTH_MODEL};

/// A synthetic data folder for [`SYNTH_MODEL`] in `dir/data`.
fn synth(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    ok(&wgrec()
        .args(["data", "synth", "--rows", "800", "--out"])
        .arg(&data)
        .output()
        .expect("run"));
    data
}

/// Every file under `dir`, sorted, with its length.
fn listing(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(listing(&path));
        } else {
            let len = std::fs::metadata(&path).expect("metadata").len();
            out.push((path, len));
        }
    }
    out.sort();
    out
}

#[test]
fn plan_states_the_memory_says_it_fits_and_writes_nothing() {
    let dir = temp("plan-fits");
    let data = synth(&dir);
    std::fs::write(dir.join("model.toml"), SYNTH_MODEL).expect("model");
    let before = listing(&dir);
    let out = wgrec()
        .args(["plan", "--config", "model.toml", "--data", "data"])
        .current_dir(&dir)
        .output()
        .expect("run");
    let stdout = ok(&out);
    assert!(stdout.contains("emb.0.user_id"), "{stdout}");
    assert!(stdout.contains("storage group 0"), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.trim().starts_with("total ")),
        "{stdout}"
    );
    assert_eq!(stdout.lines().last(), Some("fits"), "{stdout}");
    assert_eq!(listing(&dir), before, "plan wrote or changed a file");
    let _ = data;
}

#[test]
fn plan_json_parses_and_matches_train_json() {
    let dir = temp("plan-json");
    synth(&dir);
    std::fs::write(dir.join("model.toml"), SYNTH_MODEL).expect("model");
    let args = ["--config", "model.toml", "--data", "data", "--json"];
    let plan = last_json(&ok(&wgrec()
        .arg("plan")
        .args(args)
        .current_dir(&dir)
        .output()
        .expect("run")));
    assert_eq!(plan["fits"], true);
    let memory = &plan["memory"];
    let total = memory["total"].as_u64().expect("a total");
    let tables: u64 = (memory["tables"].as_array().expect("tables").iter())
        .map(|t| t["bytes"].as_u64().expect("bytes"))
        .sum();
    assert!(tables > 0 && total > tables, "{memory}");
    assert_eq!(memory["groups"][0]["bytes"].as_u64(), Some(tables));
    for key in [
        "expert_inputs",
        "lookups",
        "tim",
        "experts",
        "towers",
        "loss",
    ] {
        assert!(memory["activations"][key].is_u64(), "{key} in {memory}");
    }
    assert!(memory["dense"].as_u64() > Some(0));
    assert!(memory["dense_optimizer"].as_u64() > Some(0));
    assert!(plan["limits"]["binding"].as_u64() > Some(0));
    let train = last_json(&ok(&wgrec()
        .arg("train")
        .args(args)
        .args(["--out", "run"])
        .current_dir(&dir)
        .output()
        .expect("run")));
    assert_eq!(
        &train["memory"], memory,
        "train and plan state the same memory"
    );
}

/// [`SYNTH_MODEL`] with `user_id` hashed into 2^31 rows of 64 floats (128 in the GwPFM table): terabytes.
fn oversized() -> String {
    SYNTH_MODEL.replace("dim = 8", "dim = 64").replacen(
        "name = \"user_id\"\nkind = \"categorical\"",
        "name = \"user_id\"\nkind = \"categorical\"\nhash_rows = 2147483648",
        1,
    )
}

#[test]
fn plan_refuses_a_model_whose_tables_cannot_fit() {
    let dir = temp("plan-huge");
    synth(&dir);
    let model = oversized();
    assert!(model.contains("hash_rows"), "the replacement applied");
    std::fs::write(dir.join("model.toml"), model).expect("model");
    for json in [false, true] {
        let mut cmd = wgrec();
        cmd.args(["plan", "--config", "model.toml", "--data", "data"]);
        if json {
            cmd.arg("--json");
        }
        let out = cmd.current_dir(&dir).output().expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "must exit non-zero: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(stderr.contains("feature[0].hash_rows"), "{stderr}");
        assert!(
            stderr.contains("TiB needed, limit"),
            "names the bytes: {stderr}"
        );
        // The tables pack into as many storage groups as they need; what refuses them is the
        // memory that must hold them.
        assert!(
            stderr.contains("of host memory"),
            "names the limit: {stderr}"
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        if json {
            let v = last_json(&stdout);
            assert_eq!(v["fits"], false);
            let groups = v["memory"]["groups"].as_array().expect("groups");
            assert!(groups.len() > 1, "the tables span several groups");
            assert!(groups
                .iter()
                .all(|g| g["fits"] == true && g["chunks"].as_u64() <= Some(4)));
            assert!(v["error"].as_str().expect("error").contains("hash_rows"));
        } else {
            assert_eq!(stdout.lines().last(), Some("does not fit"), "{stdout}");
        }
    }
}
