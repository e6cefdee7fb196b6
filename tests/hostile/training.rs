//! Runs that go wrong while training: a diverging loss stops at its first bad step, before any
//! evaluation; a checkpoint whose step counter would wrap is refused naming the file and the key.

use std::path::Path;

use crate::common::{finished_run, model_file, refused, synth_data, temp, wgrec, SMALL_MODEL};

#[test]
fn a_diverging_run_stops_at_its_first_non_finite_step_before_evaluation() {
    let dir = temp("diverge");
    let data = synth_data(&dir, 2000);
    // 1600 training rows in batches of 256: 7 steps, fewer than log_every, so only the flag the
    // loss kernel keeps can report the step; evaluation must not run on NaN weights.
    let text = SMALL_MODEL.replace("epochs = 1", "epochs = 1\ndense_lr = 1e30");
    let model = model_file(&dir, "m.toml", &text);
    let out = wgrec()
        .args(["train", "--config"])
        .arg(&model)
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(dir.join("run"))
        .output()
        .expect("run");
    let err = refused(
        &out,
        &[
            "training diverged",
            "task 0 (click)",
            "at step 2",
            "train.clip_norm",
        ],
    );
    assert!(
        !err.contains("metrics:") && !err.contains("epoch 1 done"),
        "{err}"
    );
}

/// Rewrites metadata `key` of the safetensors file at `path` to the JSON text `value`.
fn set_metadata(path: &Path, key: &str, value: &str) {
    let bytes = std::fs::read(path).expect("read checkpoint");
    let len = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + len]).expect("json");
    header["__metadata__"][key] = serde_json::Value::String(value.to_string());
    let mut text = serde_json::to_string(&header).expect("json");
    while !text.len().is_multiple_of(8) {
        text.push(' ');
    }
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&bytes[8 + len..]);
    std::fs::write(path, out).expect("write checkpoint");
}

#[test]
fn a_checkpoint_step_counter_of_2_64_minus_1_is_refused_on_resume_naming_file_and_key() {
    let dir = temp("step-wrap");
    let data = synth_data(&dir, 600);
    let model = model_file(
        &dir,
        "m.toml",
        &SMALL_MODEL.replace("epochs = 1", "epochs = 2"),
    );
    // The run's own model (a resume with another file is refused before the counter is read).
    let run = finished_run(&model, &data, &dir.join("run"));
    let last = run.join("last.safetensors");
    set_metadata(&last, "graph.step", &u64::MAX.to_string());
    // Rewound to an unfinished run of two epochs, one done: resuming takes the next step from
    // the counter.
    let state = r#"{"epochs_done":1,"best_auc":0.5,"best_epoch":1,"since_best":0,"samples":600,"train_seconds":1.0,"finished":false}"#;
    set_metadata(&last, "train.run", state);
    let out = wgrec()
        .args(["train", "--resume", "--config"])
        .arg(&model)
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&run)
        .output()
        .expect("run");
    refused(
        &out,
        &["last.safetensors", "graph.step", "18446744073709551615"],
    );
}
