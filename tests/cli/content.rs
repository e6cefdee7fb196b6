//! The content features end to end (METHODS.md §1.3, §1.4): a run with a hashid and a
//! similarity feature on a small synthetic table, its missing-id counts in `train --json`, a
//! Predictor scoring from the run folder alone (the embedding files deleted), a missing
//! embedding file named with its key, and `wgrec data hashid`.

use std::collections::HashSet;
use std::path::Path;

use serde_json::Value;

use crate::{last_json, ok, temp, wgrec};

const MODEL: &str = r#"
[model]
tables = 1
dim = 8
hidden = [16]

[[feature]]
name = "user_id"
kind = "categorical"

[[feature]]
name = "item_id"
kind = "categorical"

[[feature]]
name = "item_hash"
kind = "hashid"
column = "item_id"
embeddings = "emb/items.txt"
bits = 12
radices = [2, 4, 16]
seed = 7

[[feature]]
name = "user_item_sim"
kind = "similarity"
user = "user_id"
item = "item_id"
user_embeddings = "emb/users.txt"
item_embeddings = "emb/items.txt"
buckets = 32

[[task]]
name = "click"

[train]
batch_size = 128
epochs = 1
"#;

/// The (user, item) ids of every row of `file` (synth's columns 1 and 2).
fn pairs(file: &Path) -> Vec<(u64, u64)> {
    let text = std::fs::read_to_string(file).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[1].parse().unwrap(), f[2].parse().unwrap())
        })
        .collect()
}

/// Text embedding files of every id of `data` except items ≡ 0 (mod 5) and users ≡ 3 (mod 7),
/// which have no vector.
fn write_embeddings(data: &Path, dir: &Path) {
    let mut users = HashSet::new();
    let mut items = HashSet::new();
    for split in ["train", "valid", "test"] {
        for (u, i) in pairs(&data.join(format!("{split}.tsv"))) {
            users.insert(u);
            items.insert(i);
        }
    }
    std::fs::create_dir_all(dir).unwrap();
    for (name, ids, skip) in [("users", users, (7, 3)), ("items", items, (5, 0))] {
        let mut text = String::new();
        for id in ids.into_iter().filter(|id| id % skip.0 != skip.1) {
            let v: Vec<String> = (0..6)
                .map(|k| format!("{}", ((id * 31 + k * 17) % 13) as f32 / 6.0 - 1.0))
                .collect();
            text += &format!("{id}\t{}\n", v.join(" "));
        }
        std::fs::write(dir.join(format!("{name}.txt")), text).unwrap();
    }
}

/// Items without a vector (see [`write_embeddings`]).
fn no_item(i: u64) -> bool {
    i.is_multiple_of(5)
}

/// Users without a vector.
fn no_user(u: u64) -> bool {
    u % 7 == 3
}

/// A missing id of a row, keyed by side (false: user, true: item), or `None`.
type DistinctKey = dyn Fn(&(u64, u64)) -> Option<(bool, u64)>;

fn train(model: &Path, data: &Path, run: &Path) -> std::process::Output {
    wgrec()
        .args(["train", "--json", "--config"])
        .arg(model)
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(run)
        .output()
        .expect("run")
}

#[test]
fn hashid_and_similarity_train_report_missing_ids_and_serve_from_the_run_folder() {
    let dir = temp("content");
    let data = dir.join("data");
    ok(&wgrec()
        .args(["data", "synth", "--rows", "1500", "--out"])
        .arg(&data)
        .output()
        .expect("run"));
    write_embeddings(&data, &dir.join("emb"));
    let model = dir.join("model.toml");
    std::fs::write(&model, MODEL).unwrap();
    let run = dir.join("run");
    let out = train(&model, &data, &run);
    let report = last_json(&ok(&out));
    let rows = pairs(&data.join("train.tsv"));
    let count = |f: &dyn Fn(&(u64, u64)) -> bool| rows.iter().filter(|p| f(p)).count() as u64;
    let distinct = |f: &DistinctKey| rows.iter().filter_map(f).collect::<HashSet<_>>().len() as u64;
    let hash = &report["missing_content"]["item_hash"];
    assert_eq!(hash["rows"], rows.len() as u64);
    assert_eq!(hash["missing_rows"], count(&|&(_, i)| no_item(i)));
    assert_eq!(
        hash["missing_ids"],
        distinct(&|&(_, i)| no_item(i).then_some((true, i)))
    );
    let sim = &report["missing_content"]["user_item_sim"];
    assert_eq!(
        sim["missing_rows"],
        count(&|&(u, i)| no_user(u) || no_item(i))
    );
    let ids = distinct(&|&(u, _)| no_user(u).then_some((false, u)))
        + distinct(&|&(_, i)| no_item(i).then_some((true, i)));
    assert_eq!(sim["missing_ids"], ids);
    assert!(
        hash["missing_rows"].as_u64().unwrap() > 0,
        "the test must miss some ids"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("item_hash: "), "{stderr}");
    assert!(report["test_auc"]
        .as_f64()
        .is_some_and(|a| (0.0..=1.0).contains(&a)));

    serves_without_the_embedding_files(&dir, &data, &run, &report);
    let _ = std::fs::remove_dir_all(dir);
}

/// Serving needs neither the embedding files nor the SimHash pass: delete them, then predict and
/// eval from the run folder alone (eval reproduces the run's test AUC).
fn serves_without_the_embedding_files(dir: &Path, data: &Path, run: &Path, report: &Value) {
    std::fs::remove_dir_all(dir.join("emb")).unwrap();
    let scores = dir.join("scores.tsv");
    ok(&wgrec()
        .args(["predict", "--checkpoint"])
        .arg(run)
        .arg("--input")
        .arg(data.join("test.tsv"))
        .arg("--output")
        .arg(&scores)
        .output()
        .expect("run"));
    let text = std::fs::read_to_string(&scores).unwrap();
    let test_rows = pairs(&data.join("test.tsv")).len();
    assert_eq!(text.lines().count(), 1 + test_rows);
    let eval = last_json(&ok(&wgrec()
        .args(["eval", "--json", "--checkpoint"])
        .arg(run)
        .output()
        .expect("run")));
    assert_eq!(eval["test_auc"], report["test_auc"]);
}

#[test]
fn a_missing_embedding_file_names_the_key_and_the_file() {
    let dir = temp("content-missing");
    let data = dir.join("data");
    ok(&wgrec()
        .args(["data", "synth", "--rows", "300", "--out"])
        .arg(&data)
        .output()
        .expect("run"));
    let model = dir.join("model.toml");
    std::fs::write(&model, MODEL).unwrap();
    let run = dir.join("run");
    let out = train(&model, &data, &run);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("feature[2].embeddings: embedding file"),
        "{stderr}"
    );
    assert!(stderr.contains("emb/items.txt"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!run.exists(), "nothing written before the failure");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn data_hashid_writes_each_id_code_in_decimal_and_binary_the_same_every_time() {
    let dir = temp("content-hashid");
    let emb = dir.join("v.txt");
    let rows: Vec<String> = (0..300)
        .map(|i| {
            format!(
                "id{i}\t{} {} {}",
                (i % 7) as f32 - 3.0,
                (i % 5) as f32 - 2.0,
                1.5
            )
        })
        .collect();
    std::fs::write(&emb, rows.join("\n")).unwrap();
    let run = |out: &Path| {
        ok(&wgrec()
            .args([
                "data",
                "hashid",
                "--bits",
                "10",
                "--seed",
                "3",
                "--embeddings",
            ])
            .arg(&emb)
            .arg("--out")
            .arg(out)
            .output()
            .expect("run"))
    };
    let (a, b) = (dir.join("a.tsv"), dir.join("b.tsv"));
    run(&a);
    run(&b);
    let text = std::fs::read_to_string(&a).unwrap();
    assert_eq!(text, std::fs::read_to_string(&b).unwrap(), "deterministic");
    assert_eq!(text.lines().count(), 300);
    for (i, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split('\t').collect();
        let code: u32 = f[1].parse().unwrap();
        assert_eq!(f[0], format!("id{i}"));
        assert!(code < 1 << 10);
        assert_eq!(u32::from_str_radix(f[2], 2).unwrap(), code);
        assert_eq!(f[2].len(), 10);
    }
    // Equal vectors (i and i + 35 share i mod 7 and i mod 5) share a code.
    let codes: Vec<&str> = text
        .lines()
        .map(|l| l.split('\t').nth(1).unwrap())
        .collect();
    assert_eq!(codes[0], codes[35]);
    let _ = std::fs::remove_dir_all(dir);
}
