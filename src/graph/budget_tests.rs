//! The memory check on lavapipe's limits, with no device.

use super::*;
use crate::kernels::embedding::MnsBase;

const LAVAPIPE: MemoryLimits = MemoryLimits {
    binding: 128 << 20,
    buffer: 2 << 30,
    host: None,
    buffers_on_host: true,
};

const MODEL: &str = r#"
[model]
tables = 2
dim = 8
hidden = [16]
expert_width = 16

[[feature]]
name = "user_id"
kind = "categorical"

[[feature]]
name = "item_id"
kind = "categorical"

[train]
batch_size = 256
"#;

fn config(text: &str) -> ModelConfig {
    ModelConfig::parse(text, "m.toml").expect("valid")
}

fn shapes(rows: u32) -> Vec<FeatureShape> {
    let shape = FeatureShape {
        rows,
        mns: Vec::<MnsBase>::new(),
        max_ids: 1,
    };
    vec![shape.clone(), shape]
}

fn refusal(text: &str, rows: u32, limits: &MemoryLimits) -> String {
    let c = config(text);
    check_memory(
        &c,
        &shapes(rows),
        c.train.batch_size,
        &optimizers(&c),
        limits,
    )
    .expect_err("must not fit")
    .to_string()
}

#[test]
fn a_small_model_fits_lavapipe() {
    let c = config(MODEL);
    check_memory(&c, &shapes(1000), 256, &optimizers(&c), &LAVAPIPE).expect("fits");
}

#[test]
fn a_batch_over_one_binding_is_blamed_on_batch_size_with_the_batch_that_fits() {
    // The gathered fields: 2 tables × 2 fields × 16 floats × 4 bytes = 256 B per sample.
    let text = MODEL
        .replace("dim = 8", "dim = 16")
        .replace("256", "1048576");
    let e = refusal(&text, 1000, &LAVAPIPE);
    assert!(
        e.contains("train.batch_size: expert group 0's gathered fields"),
        "{e}"
    );
    assert!(
        e.contains("256 MiB needed, limit 128 MiB (one buffer binding)"),
        "{e}"
    );
    assert!(
        e.contains("lower it from 1048576: at most 524288 samples fit"),
        "{e}"
    );
}

#[test]
fn tables_over_four_chunks_are_split_into_groups_and_fit() {
    // 2 tables × 2 features × 20M rows × (8 floats + the Adagrad vec4) × 4 bytes ≈ 2.2 GiB: five
    // groups of at most 4 chunks of 128 MiB.
    let c = config(MODEL);
    let report = MemoryReport::new(&c, &shapes(20_000_000), 256, &optimizers(&c), 128 << 20);
    assert!(report.groups.len() >= 5, "{} groups", report.groups.len());
    assert!(report.groups.iter().all(|g| g.fits() && g.chunks <= 4));
    assert!(
        report.groups.iter().any(|g| g.split > 0),
        "a 320 MB table splits"
    );
    let tables: u64 = report.tables.iter().map(|t| t.bytes()).sum();
    let groups: u64 = report.groups.iter().map(|g| g.bytes).sum();
    assert_eq!(groups, tables, "every table's bytes in exactly one group");
    check_memory(&c, &shapes(20_000_000), 256, &optimizers(&c), &LAVAPIPE).expect("fits");
}

#[test]
fn tables_over_the_host_memory_are_blamed_on_the_largest_feature_with_the_bytes() {
    let host = MemoryLimits {
        host: Some(2 << 30),
        ..LAVAPIPE
    };
    let e = refusal(MODEL, 20_000_000, &host);
    assert!(e.contains("feature[0]"), "{e}");
    assert!(e.contains("2 GiB of host memory"), "{e}");
    assert!(
        e.contains("3.6 GiB needed"),
        "2.2 GiB of tables and the buffers: {e}"
    );
    let hashed = MODEL.replacen(
        "kind = \"categorical\"",
        "kind = \"categorical\"\nhash_rows = 20000000",
        1,
    );
    let e = refusal(&hashed, 20_000_000, &host);
    assert!(e.contains("feature[0].hash_rows"), "{e}");
}

#[test]
fn a_tim_unit_larger_than_one_group_is_refused_naming_the_sequence_and_the_bytes() {
    let text = MODEL.replace(
        "[train]",
        "[[feature]]\nname = \"history\"\nkind = \"sequence\"\nitem = \"item_id\"\n\
         time = { by = \"position\" }\n\n[train]",
    );
    let c = config(&text);
    let mut s = shapes(20_000_000);
    s.push(FeatureShape {
        rows: 0,
        mns: Vec::new(),
        max_ids: 1,
    });
    let e = check_memory(&c, &s, 256, &optimizers(&c), &LAVAPIPE)
        .expect_err("a 960 MB item table read by TIM")
        .to_string();
    assert!(e.contains("sequence \"history\""), "{e}");
    assert!(
        e.contains("more than one storage group holds (536870912 bytes"),
        "{e}"
    );
    assert!(e.contains("need 9"), "{e}");
}

#[test]
fn a_wide_hidden_layer_is_blamed_on_its_key_when_one_sample_is_too_large() {
    // 65536 × 1024 weights: 256 MiB in one buffer whatever the batch.
    let text = MODEL.replace("hidden = [16]", "hidden = [1024, 65536]");
    let e = refusal(&text, 1000, &LAVAPIPE);
    assert!(
        e.contains("model.hidden[1]") && e.contains("lower model.hidden[1]"),
        "{e}"
    );
}

#[test]
fn buffers_over_the_host_memory_are_refused_naming_the_largest() {
    let small_host = MemoryLimits {
        host: Some(1 << 20),
        ..LAVAPIPE
    };
    // 2 tables × 2 features × 100,000 rows × 12 floats: 18 MiB of tables, over a 1 MiB host.
    let e = refusal(MODEL, 100_000, &small_host);
    assert!(e.contains("host memory") && e.contains("1 MiB"), "{e}");
    assert!(
        e.contains("feature[0]: ") && e.contains("the embedding tables"),
        "{e}"
    );
    // On a CPU adapter the activations live on the host too: 256 × 65,536 floats per batch.
    let wide = MODEL.replace("hidden = [16]", "hidden = [65536]");
    let e = refusal(
        &wide,
        10,
        &MemoryLimits {
            host: Some(64 << 20),
            ..LAVAPIPE
        },
    );
    assert!(
        e.contains("model.hidden[0]: ") && e.contains("hidden layer 0"),
        "{e}"
    );
    // On a GPU they live in device memory: the host only stages the tables.
    let gpu = MemoryLimits {
        host: Some(64 << 20),
        buffers_on_host: false,
        ..LAVAPIPE
    };
    let c = config(&wide);
    check_memory(&c, &shapes(10), 256, &optimizers(&c), &gpu).expect("fits a GPU");
}

#[test]
fn the_shipped_ml100k_and_synth_models_fit_lavapipe() {
    for (name, text) in [
        ("ml100k", include_str!("../../configs/ml100k.toml")),
        ("synth", include_str!("../../configs/synth.toml")),
    ] {
        let c = config(text);
        // Vocabularies a little larger than MovieLens-100K's (1,682 items) and bags of 6 ids.
        let shape = FeatureShape {
            rows: 5000,
            mns: Vec::new(),
            max_ids: 6,
        };
        let shapes = vec![shape; c.features.len()];
        check_memory(&c, &shapes, c.train.batch_size, &optimizers(&c), &LAVAPIPE)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// The optimizers the trainer compiles `c` with.
fn optimizers(c: &ModelConfig) -> crate::graph::Optimizers {
    crate::train::policy::TrainPolicy::new(&c.train).optimizers()
}
