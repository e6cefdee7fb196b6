//! The trainer and the predictor on synthetic files: resume is bit-identical, the predictor scores
//! what evaluation scored, early stopping keeps the best checkpoint.

use std::path::{Path, PathBuf};

use wgrec::checkpoint::Checkpoint;
use wgrec::data::synth::{write, Layout, Synth, SynthConfig};
use wgrec::serve::Predictor;
use wgrec::train::{Quiet, TrainOptions, Trainer};

use crate::common::gpu;

/// A small model over the synthetic sample table: every feature kind, M = 2 with two experts,
/// TIM, BatchNorm, dropout (so resume must restore its step), Adagrad + Adam state, and the
/// shuffled loader (so resume must reproduce the epoch's order).
pub(crate) const MODEL: &str = r#"
[model]
tables = 2
dim = 8
experts = [{ type = "dcn", layers = 1 }, { type = "fwfm" }]
expert_width = 16
hidden = [16]
dropout = 0.2

[[feature]]
name = "user_id"
kind = "categorical"

[[feature]]
name = "item_id"
kind = "categorical"

[[feature]]
name = "item_cat"
kind = "categorical"

[[feature]]
name = "c0"
kind = "categorical"
hash_rows = 64

[[feature]]
name = "n0"
kind = "numeric"

[[feature]]
name = "history"
kind = "sequence"
column = "hist_item"
item = "item_id"
side = ["item_cat"]
side_columns = ["hist_cat"]
max_len = 10
buckets = 16

[[task]]
name = "click"

[[task]]
name = "love"
loss = "pair"

[train]
batch_size = 200
epochs = 2
patience = 0
shuffle_window = 3
group = "user_id"
log_every = 3
"#;

pub(crate) fn data(name: &str, rows: u64) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wgrec-train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = SynthConfig::new(9);
    config.second_task = Some((0.3, 0.5));
    config.max_history = 12;
    let synth = Synth::new(config).expect("synth");
    write(&synth, rows, Layout::Table, &dir).expect("write");
    dir
}

fn bits(path: &Path) -> Vec<(String, Vec<u32>)> {
    let ckpt = Checkpoint::read(path).expect("checkpoint");
    ckpt.tensors()
        .iter()
        .map(|(k, t)| (k.clone(), t.data.iter().map(|v| v.to_bits()).collect()))
        .collect()
}

/// Trains `model` two epochs straight and one + one with a resume between; every tensor of the
/// two last checkpoints must have the same bits. Returns the straight run's tensors.
pub(crate) fn assert_resume_is_bit_identical(model: &str, dir: &Path) -> Vec<(String, Vec<u32>)> {
    let gpu = gpu();
    let straight = dir.join("straight");
    let mut t = Trainer::new(
        gpu,
        model,
        "m.toml",
        dir,
        &straight,
        TrainOptions::default(),
    )
    .expect("trainer");
    let report = t.run(&mut Quiet).expect("2 epochs");
    assert_eq!(report.state.epochs_done, 2);
    assert!(report.test.is_some());

    let resumed = dir.join("resumed");
    let first = TrainOptions {
        stop_after_epochs: Some(1),
        ..TrainOptions::default()
    };
    let mut t = Trainer::new(gpu, model, "m.toml", dir, &resumed, first).expect("trainer");
    let report = t.run(&mut Quiet).expect("1 epoch");
    assert_eq!(report.state.epochs_done, 1);
    assert!(
        report.test.is_none(),
        "an interrupted run scores no test split"
    );
    drop(t);
    let again = TrainOptions {
        resume: true,
        ..TrainOptions::default()
    };
    let mut t = Trainer::new(gpu, model, "m.toml", dir, &resumed, again).expect("resume");
    let report = t.run(&mut Quiet).expect("resumed epoch");
    assert_eq!(report.state.epochs_done, 2);
    let a = bits(&straight.join("last.safetensors"));
    let b = bits(&resumed.join("last.safetensors"));
    assert_eq!(a.len(), b.len());
    for ((na, va), (nb, vb)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        assert!(va == vb, "tensor {na} differs after resume");
    }
    // Whole files, byte for byte (as `cmp` compares them): header, metadata and counters too.
    for file in ["last.safetensors", "best.safetensors"] {
        let same =
            std::fs::read(straight.join(file)).ok() == std::fs::read(resumed.join(file)).ok();
        assert!(
            same,
            "{file} differs between the straight and the resumed run"
        );
    }
    // Timings stay out of the checkpoints, in the run log, which covers both invocations.
    assert!(report.train_samples_per_sec > 0.0);
    let log = std::fs::read_to_string(resumed.join("timings.json")).expect("run log");
    assert_eq!(log.matches("\"epoch\"").count(), 2, "{log}");
    a
}

#[test]
fn two_epochs_straight_equal_one_epoch_stop_and_resume() {
    let gpu = gpu();
    let dir = data("resume", 1500);
    let a = assert_resume_is_bit_identical(MODEL, &dir);
    // And the checkpoint really moved: epoch 1's weights are not epoch 2's.
    let straight_again = Trainer::new(
        gpu,
        MODEL,
        "m.toml",
        &dir,
        &dir.join("one"),
        TrainOptions {
            stop_after_epochs: Some(1),
            ..TrainOptions::default()
        },
    )
    .and_then(|mut t| t.run(&mut Quiet))
    .expect("one epoch");
    assert_eq!(straight_again.state.epochs_done, 1);
    assert_ne!(bits(&dir.join("one").join("last.safetensors")), a);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn resume_with_sparse_adam_and_per_feature_frequency_decay_is_bit_identical() {
    let model = MODEL
        .replace(
            "[train]\n",
            "[train]\nsparse_optimizer = \"adam\"\nsparse_lr = 0.01\n\
             sparse_weight_decay = 0.001\nsparse_weight_decay_mode = \"frequency\"\n",
        )
        .replace(
            "name = \"item_id\"\nkind = \"categorical\"\n",
            "name = \"item_id\"\nkind = \"categorical\"\nembedding_l2 = 0.05\n",
        );
    assert!(model.contains("embedding_l2") && model.contains("\"adam\""));
    let dir = data("resume_adam", 1500);
    let tensors = assert_resume_is_bit_identical(&model, &dir);
    // Adam keeps m and v beside each row: the state tensor holds twice the weights.
    let len = |name: &str| {
        tensors
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.len())
    };
    let weights = len("emb.0.item_id").expect("item table saved");
    assert_eq!(len("emb.0.item_id.state"), Some(2 * weights));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn resume_without_a_checkpoint_is_an_error_naming_it() {
    let gpu = gpu();
    let dir = data("noresume", 300);
    let opts = TrainOptions {
        resume: true,
        ..TrainOptions::default()
    };
    let e = Trainer::new(gpu, MODEL, "m.toml", &dir, &dir.join("empty"), opts)
        .err()
        .expect("nothing to resume")
        .to_string();
    assert!(
        e.contains("last.safetensors") && e.contains("nothing to resume"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_predictor_scores_what_evaluation_scored() {
    let gpu = gpu();
    let dir = data("predict", 1500);
    let out = dir.join("run");
    let mut t =
        Trainer::new(gpu, MODEL, "m.toml", &dir, &out, TrainOptions::default()).expect("trainer");
    let report = t.run(&mut Quiet).expect("train");
    let test = report.test.expect("test metrics");
    drop(t);

    let mut p = Predictor::load(gpu, &out).expect("predictor");
    assert!(p.checkpoint().ends_with("best.safetensors"));
    let scored = dir.join("scores.tsv");
    let (rows, bad) = p
        .predict_file(gpu, &dir.join("test.tsv"), &scored, false)
        .expect("predict");
    assert_eq!(rows, 150);
    assert_eq!(bad.count, 0);
    // The written probabilities, with the test labels, give exactly the evaluation's metrics.
    let text = std::fs::read_to_string(&scored).expect("scores");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("p_click\tp_love"));
    let probs: Vec<f32> = lines
        .flat_map(|l| l.split('\t').map(|v| v.parse::<f32>().expect("a number")))
        .collect();
    assert_eq!(probs.len(), 300);
    let labels = test_labels(&dir.join("test.tsv"));
    let metrics = wgrec::metrics::evaluate(
        &wgrec::metrics::Batch {
            predictions: &probs,
            labels: &labels,
            weights: None,
            users: None,
        },
        2,
    )
    .expect("metrics");
    for (m, want) in metrics.iter().zip(&test) {
        assert_eq!(m.auc, want.auc, "AUC from the predictor's file");
        assert_eq!(
            m.logloss, want.logloss,
            "logloss: the same probabilities to the bit"
        );
    }
    let (again, _) = p
        .evaluate_file(gpu, &dir.join("test.tsv"), Default::default())
        .expect("evaluate");
    assert_eq!(again[0].auc, test[0].auc);
    assert_eq!(again[1].gauc, test[1].gauc);
    let _ = std::fs::remove_dir_all(dir);
}

/// `[rows, 2]` labels (click, love) of a synthetic table.
fn test_labels(path: &Path) -> Vec<f32> {
    let text = std::fs::read_to_string(path).expect("test split");
    text.lines()
        .skip(1)
        .flat_map(|l| {
            let mut f = l.split('\t');
            let c: f32 = f.next().unwrap().parse().unwrap();
            let v: f32 = f.next().unwrap().parse().unwrap();
            [c, v]
        })
        .collect()
}
