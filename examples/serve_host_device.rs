//! A host program that owns its wgpu device trains a small model on synthetic data with wgrec's
//! `Trainer`, then serves it with a `Predictor` on the same device: encode rows from a file, score
//! them, and read the probabilities.
//!
//!     cargo run --release --example serve_host_device

use std::path::PathBuf;

use wgrec::data::synth::{write, Layout, Synth, SynthConfig};
use wgrec::serve::Predictor;
use wgrec::train::{Quiet, TrainOptions, Trainer};
use wgrec::Gpu;

const MODEL: &str = r#"
[model]
tables = 2
dim = 8
experts = [{ type = "dcn", layers = 1 }, { type = "ipnn" }]
expert_width = 32
hidden = [32]

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
name = "history"
kind = "sequence"
column = "hist_item"
item = "item_id"
side = ["item_cat"]
side_columns = ["hist_cat"]
max_len = 20

[train]
batch_size = 256
epochs = 2
"#;

fn main() -> anyhow::Result<()> {
    // The host's own device, opened however the host likes.
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapter = pollster::block_on(instance.request_adapter(&Default::default()))?;
    let (device, queue) = pollster::block_on(adapter.request_device(&Default::default()))?;
    let gpu = Gpu::from_wgpu(device, queue)?;
    println!("running on {}", gpu.describe());

    let dir: PathBuf = std::env::temp_dir().join("wgrec-serve-example");
    let synth = Synth::new(SynthConfig::new(3))?;
    write(&synth, 5000, Layout::Table, &dir.join("data"))?;
    let run = dir.join("run");
    let mut trainer = Trainer::new(
        &gpu,
        MODEL,
        "example.toml",
        &dir.join("data"),
        &run,
        // The example reuses one folder; a second run replaces the first's.
        TrainOptions {
            overwrite: true,
            ..TrainOptions::default()
        },
    )?;
    let report = trainer.run(&mut Quiet)?;
    println!(
        "trained: test AUC {:.4} at {:.0} samples/s",
        report
            .test
            .as_ref()
            .and_then(|t| t[0].auc)
            .unwrap_or(f64::NAN),
        report.train_samples_per_sec
    );
    drop(trainer);

    // Serving: load the checkpoint folder, encode a file's rows, score them.
    let mut predictor = Predictor::load(&gpu, &run)?;
    let schema = predictor.schema().clone();
    let mut reader = wgrec::data::TableReader::open(
        &dir.join("data").join("test.tsv"),
        &schema,
        wgrec::data::ReadOptions {
            batch_rows: 8,
            ..Default::default()
        },
    )?;
    let rows = reader.next_batch()?.expect("the test split has rows");
    let encoded = predictor.encoder().encode(&rows, "test.tsv")?;
    let p = predictor.predict(&gpu, &encoded)?;
    for (line, prob) in rows.lines.iter().zip(&p) {
        println!("test.tsv line {line}: p(click) = {prob:.4}");
    }
    Ok(())
}
