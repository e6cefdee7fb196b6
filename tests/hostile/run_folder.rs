//! The run folder: a failed or refused command leaves a finished run as it was, outputs never land
//! on the input or inside a run, one writer per folder, leftovers of killed writes are cleared,
//! and identical runs give identical checkpoint files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::common::*;

/// `wgrec train` of `model` on `data` into `out`, with `extra` flags.
fn train(model: &Path, data: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut c = wgrec();
    c.args(["train", "--config"]).arg(model);
    c.arg("--data").arg(data).arg("--out").arg(out).args(extra);
    c
}

fn run(mut command: Command) -> Output {
    command.output().expect("run wgrec")
}

/// A data folder, SMALL_MODEL's file and its finished run, under a fresh scratch folder.
fn setup(name: &str) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    let dir = temp(name);
    let data = synth_data(&dir, 3000);
    let model = model_file(&dir, "model.toml", SMALL_MODEL);
    let out = finished_run(&model, &data, &dir.join("run"));
    (dir, data, model, out)
}

#[test]
fn a_train_whose_graph_cannot_be_built_leaves_the_finished_run_intact_and_eval_works() {
    let (dir, data, _, out) = setup("failed-build");
    let before = snapshot(&out);
    let huge = SMALL_MODEL.replace("batch_size = 256", "batch_size = 1000000");
    let huge = model_file(&dir, "huge.toml", &huge);
    // --overwrite passes the refusal of a finished run, so the build itself fails (the memory
    // check refuses the batch after the encoder is fitted, before the folder is written).
    refused(
        &run(train(&huge, &data, &out, &["--overwrite"])),
        &["train.batch_size"],
    );
    unchanged(&out, &before);
    ok(&run({
        let mut c = wgrec();
        c.args(["eval", "--checkpoint"]).arg(&out);
        c
    }));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn training_into_a_finished_run_is_refused_naming_the_folder_and_overwrite() {
    let (dir, data, model, out) = setup("no-overwrite");
    let before = snapshot(&out);
    let err = refused(&run(train(&model, &data, &out, &[])), &["--overwrite"]);
    assert!(err.contains(&out.display().to_string()), "{err}");
    unchanged(&out, &before);
    ok(&run(train(&model, &data, &out, &["--overwrite"])));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn resume_with_another_model_file_is_refused_before_anything_is_written() {
    let (dir, data, _, out) = setup("resume-other");
    let before = snapshot(&out);
    let other = model_file(
        &dir,
        "other.toml",
        &SMALL_MODEL.replace("dim = 8", "dim = 16"),
    );
    let err = refused(
        &run(train(&other, &data, &out, &["--resume"])),
        &["differs"],
    );
    assert!(err.contains("other.toml"), "{err}");
    unchanged(&out, &before);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn predict_refuses_an_output_that_is_its_input_or_inside_a_run_folder() {
    let (dir, data, _, out) = setup("predict-out");
    let input = dir.join("rows.tsv");
    std::fs::copy(data.join("test.tsv"), &input).expect("copy");
    let link = dir.join("link.tsv");
    std::os::unix::fs::symlink(&input, &link).expect("symlink");
    let rows = std::fs::read(&input).expect("rows");
    let before = snapshot(&out);
    let predict = |output: &Path| {
        let mut c = wgrec();
        c.args(["predict", "--checkpoint"]).arg(&out);
        c.arg("--input").arg(&input).arg("--output").arg(output);
        run(c)
    };
    for inside in [out.join("best.safetensors"), out.join("scores.tsv")] {
        refused(&predict(&inside), &["inside the run folder"]);
    }
    for inside in [out.join("encoder/x.tsv"), out.clone()] {
        refused(&predict(&inside), &["inside the run folder"]);
    }
    for same in [dir.join(".").join("rows.tsv"), link.clone()] {
        refused(&predict(&same), &["is the input file"]);
    }
    unchanged(&out, &before);
    assert!(
        std::fs::read(&input).expect("rows") == rows,
        "the input changed"
    );
    // An output that cannot be written is an output error naming it, not a data error.
    let missing = dir.join("missing").join("scores.tsv");
    let err = refused(&predict(&missing), &["error: output "]);
    assert!(err.contains(&missing.display().to_string()), "{err}");
    ok(&predict(&dir.join("scores.tsv")));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_second_train_on_a_folder_in_use_is_refused_naming_the_holder_and_the_first_finishes() {
    let dir = temp("lock");
    let data = synth_data(&dir, 60_000);
    let model = SMALL_MODEL.replace("epochs = 1", "epochs = 4\npatience = 0");
    let model = model_file(&dir, "model.toml", &model);
    let out = dir.join("run");
    let mut first = train(&model, &data, &out, &[])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let started = Instant::now();
    while !out.join("lock").exists() {
        assert!(
            first.try_wait().expect("wait").is_none(),
            "the first run ended early"
        );
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no lock after 2 min"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // --overwrite: the strongest case, a run that would replace the first one's files.
    let holder = format!("pid {}", first.id());
    let second = run(train(&model, &data, &out, &["--overwrite"]));
    let err = refused(&second, &["in use by another training run", &holder]);
    assert!(err.contains(&out.display().to_string()), "{err}");
    assert!(
        first.wait().expect("wait").success(),
        "the first run failed"
    );
    assert!(
        !out.join("lock").exists(),
        "the lock is released at the end"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_temporary_left_by_a_killed_checkpoint_write_is_removed_on_the_next_train() {
    let (dir, data, model, out) = setup("leftover");
    let leftover = out.join(".last.safetensors.tmp-4194304-0");
    std::fs::write(&leftover, b"half a checkpoint").expect("leftover");
    let resumed = run(train(&model, &data, &out, &["--resume"]));
    ok(&resumed);
    assert!(!leftover.exists(), "the leftover is still there");
    let err = stderr(&resumed);
    assert!(err.contains("removed 1 temporary file"), "{err}");
    assert!(err.contains(".last.safetensors.tmp-4194304-0"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn two_identical_trains_give_byte_identical_checkpoint_files() {
    let (dir, data, model, out) = setup("identical");
    let again = finished_run(&model, &data, &dir.join("again"));
    for file in ["best.safetensors", "last.safetensors"] {
        let a = std::fs::read(out.join(file)).expect("first");
        assert!(
            a == std::fs::read(again.join(file)).expect("second"),
            "{file}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn eval_labels_its_metrics_by_the_split_or_as_a_file() {
    let (dir, data, _, out) = setup("eval-labels");
    let eval = |split: &str| {
        let mut c = wgrec();
        c.args(["eval", "--json", "--checkpoint"]).arg(&out);
        c.args(["--split", split]);
        let stdout = ok(&run(c));
        let last = stdout.lines().last().expect("a JSON line").to_string();
        serde_json::from_str::<serde_json::Value>(&last).expect("JSON")
    };
    let file = data.join("valid.tsv");
    for (split, prefix) in [("valid", "valid"), ("train", "train"), ("test", "test")] {
        let json = eval(split);
        assert!(json.get(format!("{prefix}_auc")).is_some(), "{json}");
    }
    let by_file = eval(file.to_str().expect("utf-8"));
    assert!(by_file.get("file_auc").is_some(), "{by_file}");
    assert!(by_file.get("test_auc").is_none(), "{by_file}");
    assert_eq!(by_file["file_auc"], eval("valid")["valid_auc"]);
    let _ = std::fs::remove_dir_all(dir);
}
