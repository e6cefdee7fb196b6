//! The bench model's file and batches per architecture (no GPU).

use super::{model_batch, model_text, shapes, synth, TrainShape};
use crate::config::{Architecture, ModelConfig};
use crate::model::{ModelPlan, RouteMode};

/// `model_text(TrainShape::quick(), 0.1)` as it was before the architectures: the one-task
/// bench model must stay the same model (its numbers are compared across versions).
const SINGLE_QUICK: &str = r#"[model]
tables = 2
dim = 16
experts = [{ type = "dcn", layers = 2 }, { type = "gwpfm", groups = [["user_id"], ["item_id", "item_cat", "history"]] }]
expert_width = 128
hidden = [128, 64]
dropout = 0.1

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

[[feature]]
name = "c1"
kind = "categorical"

[[feature]]
name = "c2"
kind = "categorical"

[[feature]]
name = "c3"
kind = "categorical"

[[feature]]
name = "n0"
kind = "numeric"
radices = [2, 3, 10]

[[feature]]
name = "n1"
kind = "numeric"
radices = [2, 3, 10]

[[feature]]
name = "history"
kind = "sequence"
column = "hist_item"
item = "item_id"
side = ["item_cat"]
side_columns = ["hist_cat"]
max_len = 20
buckets = 64
time = { by = "position" }

[[task]]
name = "click"

[train]
batch_size = 256
"#;

fn shape(architecture: Architecture) -> TrainShape {
    TrainShape {
        architecture,
        ..TrainShape::quick()
    }
}

#[test]
fn the_single_model_file_is_the_one_before_the_architectures() {
    assert_eq!(model_text(&TrainShape::quick(), 0.1), SINGLE_QUICK);
}

#[test]
fn every_architecture_plans_with_two_tasks_and_a_tower_each() {
    for (a, sets) in [
        (Architecture::Shared, 1),
        (Architecture::Mmoe, 1),
        (Architecture::Ple, 3),
        (Architecture::Stem, 3),
        (Architecture::Ame, 1),
    ] {
        let s = shape(a);
        let config = ModelConfig::parse(&model_text(&s, 0.0), "bench").expect("bench model");
        let plan = ModelPlan::new(&config, &shapes(&s)).expect("plan");
        let tasks: Vec<&str> = config.tasks.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(tasks, ["click", "like"], "{a:?}");
        assert_eq!((plan.sets.len(), plan.towers.len()), (sets, 2), "{a:?}");
        let stopped = plan
            .routes
            .iter()
            .filter(|r| r.mode == RouteMode::StopGradient);
        // STEM: each tower reads the other task's set under stop-gradient.
        let want = if a == Architecture::Stem { 2 } else { 0 };
        assert_eq!(stopped.count(), want, "{a:?}");
    }
}

#[test]
fn multitask_batches_carry_both_labels_and_single_ones_the_first() {
    let (single, stem) = (TrainShape::quick(), shape(Architecture::Stem));
    let rows = 64u64;
    let one = model_batch(&single, &synth(&single, 7).expect("synth").batch(0..rows));
    let two = model_batch(&stem, &synth(&stem, 7).expect("synth").batch(0..rows));
    assert_eq!((one.labels.len(), two.labels.len()), (64, 128));
    // The second task leaves the features' draws and the first task's labels alone.
    let first: Vec<f32> = two.labels.iter().step_by(2).copied().collect();
    assert_eq!(first, one.labels);
    assert_eq!(one.features, two.features);
    let second: Vec<f32> = two.labels.iter().skip(1).step_by(2).copied().collect();
    assert!(second.contains(&1.0) && second != first);
}
