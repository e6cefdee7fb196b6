//! What every hostile case shares: the binary, scratch folders, the exit checks and folder hashes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `wgrec` binary under test.
pub fn wgrec() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wgrec"))
}

/// A fresh scratch folder unique to this test and process.
pub fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wgrec-hostile-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts a clean success and returns stdout.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstderr:\n{}",
        out.status.code(),
        stderr(out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts a refusal as a user is owed it: exit status 1 or 2 (never a signal, never an abort's
/// 134 or a panic's 101), no panic text, and every one of `needles` in stderr. Returns stderr.
pub fn refused(out: &Output, needles: &[&str]) -> String {
    let err = stderr(out);
    let code = out.status.code();
    assert!(
        matches!(code, Some(1) | Some(2)),
        "expected exit 1 or 2, got {:?} (None = killed by a signal)\nstderr:\n{err}",
        code
    );
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "a panic:\n{err}"
    );
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}:\n{err}");
    }
    err
}

/// Every file under `dir` (relative path → bytes), to compare a folder before and after.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).expect("under root").to_path_buf();
                out.insert(rel, std::fs::read(&p).expect("read"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Asserts that `dir` holds exactly the files of `before`, byte for byte.
pub fn unchanged(dir: &Path, before: &BTreeMap<PathBuf, Vec<u8>>) {
    let after = snapshot(dir);
    let names = |m: &BTreeMap<PathBuf, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(before), names(&after), "files of {}", dir.display());
    for (k, v) in before {
        assert!(after[k] == *v, "{} changed", dir.join(k).display());
    }
}

/// A small synthetic data folder (`wgrec data synth`), written once per call.
pub fn synth_data(dir: &Path, rows: u32) -> PathBuf {
    let data = dir.join("data");
    ok(&wgrec()
        .args(["data", "synth", "--rows", &rows.to_string(), "--out"])
        .arg(&data)
        .output()
        .expect("run"));
    data
}

/// A small model for the synthetic sample tables: one of each feature kind, fast to train.
pub const SMALL_MODEL: &str = r#"
[model]
tables = 2
dim = 8
experts = [{ type = "dcn", layers = 1 }]
expert_width = 16
hidden = [16]

[[feature]]
name = "user_id"
kind = "categorical"

[[feature]]
name = "item_id"
kind = "categorical"

[[feature]]
name = "n0"
kind = "numeric"

[[feature]]
name = "history"
kind = "sequence"
column = "hist_item"
item = "item_id"
max_len = 10
buckets = 8

[[task]]
name = "click"

[train]
batch_size = 256
epochs = 1
"#;

/// Writes `text` as a model file in `dir` and returns its path.
pub fn model_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write model");
    p
}

/// Trains `model` on `data` into `out` and returns the finished run folder.
pub fn finished_run(model: &Path, data: &Path, out: &Path) -> PathBuf {
    ok(&wgrec()
        .args(["train", "--config"])
        .arg(model)
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(out)
        .output()
        .expect("run"));
    out.to_path_buf()
}
