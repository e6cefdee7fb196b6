//! The compiled model (`wgrec::graph`): one submit per training step, a dispatch count that does
//! not depend on the number of features, learning on a planted signal, determinism.

use wgrec::config::ModelConfig;
use wgrec::data::encode::{FeatureInput, ModelBatch};
use wgrec::graph::{FeatureShape, Graph};
use wgrec::kernels::embedding::MnsBase;
use wgrec::kernels::tim::TimBatch;
use wgrec::rng::Rng;
use wgrec::Gpu;

use crate::common::gpu;

/// A model with every feature kind, M = 2 tables with two expert types, TIM, a 2-task head.
pub const TINY: &str = r#"
[model]
tables = 2
dim = 8
experts = [{ type = "dcn", layers = 2 }, { type = "gwpfm", groups = [["user"], ["item", "genre", "history"]] }]
expert_width = 12
hidden = [16]
dropout = 0.0

[[feature]]
name = "user"
kind = "categorical"

[[feature]]
name = "item"
kind = "categorical"

[[feature]]
name = "genre"
kind = "bag"

[[feature]]
name = "age"
kind = "numeric"
radices = [2, 3]

[[feature]]
name = "history"
kind = "sequence"
item = "item"
side = ["genre"]
side_columns = ["hist_genre"]
max_len = 5
buckets = 8

[[task]]
name = "click"

[[task]]
name = "love"
loss = "pair"
alpha = 0.7

[train]
sparse_lr = 0.05
dense_lr = 0.01
seed = 7
"#;

pub const USERS: u32 = 20;
pub const ITEMS: u32 = 30;
pub const GENRES: u32 = 8;

/// The shapes of [`TINY`]'s features, in config order, plus `extra` categorical features.
pub fn tiny_shapes(extra: usize) -> Vec<FeatureShape> {
    let mns = vec![
        MnsBase {
            radix: 2,
            digits: 4,
        },
        MnsBase {
            radix: 3,
            digits: 3,
        },
    ];
    let mut shapes = vec![
        FeatureShape {
            rows: USERS,
            mns: vec![],
            max_ids: 1,
        },
        FeatureShape {
            rows: ITEMS,
            mns: vec![],
            max_ids: 1,
        },
        FeatureShape {
            rows: GENRES,
            mns: vec![],
            max_ids: 3,
        },
        FeatureShape {
            rows: MnsBase::rows(&mns),
            mns,
            max_ids: 1,
        },
        FeatureShape {
            rows: 0,
            mns: vec![],
            max_ids: 0,
        },
    ];
    for _ in 0..extra {
        shapes.push(FeatureShape {
            rows: 11,
            mns: vec![],
            max_ids: 1,
        });
    }
    shapes
}

/// [`TINY`] with `extra` more categorical features `c0…`.
pub fn tiny_config(extra: usize) -> ModelConfig {
    let mut text = TINY.to_string();
    for i in 0..extra {
        text.push_str(&format!(
            "\n[[feature]]\nname = \"c{i}\"\nkind = \"categorical\"\n"
        ));
    }
    ModelConfig::parse(&text, "tiny.toml").expect("tiny config")
}

/// A random batch for [`tiny_config`]`(extra)` whose click label follows a planted rule on the
/// user and item ids (so a model can learn it).
pub fn tiny_batch(rng: &mut Rng, rows: usize, extra: usize) -> ModelBatch {
    let ids = |rng: &mut Rng, n: u32| -> (Vec<u32>, Vec<u32>) {
        let rows_v: Vec<u32> = (0..rows).map(|_| rng.below(n as u64) as u32).collect();
        ((0..=rows as u32).collect(), rows_v)
    };
    let (uo, users) = ids(rng, USERS);
    let (io, items) = ids(rng, ITEMS);
    let mut go = vec![0u32];
    let mut genres = Vec::new();
    for _ in 0..rows {
        let n = rng.below(4) as usize; // 0..=3, empty bags included
        for _ in 0..n {
            genres.push(rng.below(GENRES as u64) as u32);
        }
        go.push(genres.len() as u32);
    }
    let (ao, ages) = ids(rng, 16);
    let mut seq = TimBatch::default();
    for s in 0..rows {
        let len = rng.below(6) as u32;
        seq.lengths.push(len);
        seq.target.push(items[s]);
        seq.target.push(rng.below(GENRES as u64) as u32);
        for _ in 0..len {
            seq.behaviours.push(rng.below(ITEMS as u64) as u32);
            seq.behaviours.push(rng.below(GENRES as u64) as u32);
            seq.buckets.push(1 + rng.below(7) as u32);
        }
    }
    let mut features = vec![
        FeatureInput::Ids {
            offsets: uo,
            rows: users.clone(),
        },
        FeatureInput::Ids {
            offsets: io,
            rows: items.clone(),
        },
        FeatureInput::Ids {
            offsets: go,
            rows: genres,
        },
        FeatureInput::Ids {
            offsets: ao,
            rows: ages,
        },
        FeatureInput::Sequence(seq),
    ];
    for _ in 0..extra {
        let (o, r) = ids(rng, 11);
        features.push(FeatureInput::Ids {
            offsets: o,
            rows: r,
        });
    }
    let mut labels = Vec::with_capacity(rows * 2);
    for s in 0..rows {
        let click = ((users[s] + items[s]) % 3 == 0) as u32 as f32;
        labels.push(click);
        labels.push(if click > 0.0 {
            (items[s] % 2) as f32
        } else {
            0.0
        });
    }
    ModelBatch {
        rows,
        lines: (0..rows as u64).map(|l| l + 2).collect(),
        features,
        labels,
        weights: None,
        groups: None,
    }
}

fn private_gpu() -> Gpu {
    Gpu::new().expect("a GPU adapter (lavapipe will do)")
}

#[test]
fn one_submit_per_step_and_dispatches_independent_of_features() {
    // A private device: its counters see only this test.
    let gpu = private_gpu();
    let mut counts = Vec::new();
    for extra in [0usize, 27] {
        let config = tiny_config(extra);
        let mut graph = Graph::new(
            &gpu,
            &config,
            &tiny_shapes(extra),
            64,
            0.0,
            optimizers(&config),
        )
        .expect("graph compiles");
        let mut rng = Rng::new(3);
        let batch = graph
            .prepare(&tiny_batch(&mut rng, 50, extra))
            .expect("prepare");
        graph
            .train_step(&gpu, &batch, rates(&graph))
            .expect("warm-up step");
        gpu.sync().expect("step runs");
        let (d0, s0, p0) = (gpu.dispatches(), gpu.submits(), gpu.pipelines_compiled());
        graph.train_step(&gpu, &batch, rates(&graph)).expect("step");
        gpu.sync().expect("step runs");
        let (d1, s1, p1) = (gpu.dispatches(), gpu.submits(), gpu.pipelines_compiled());
        assert_eq!(s1 - s0, 1, "one submit per training step");
        assert_eq!(p1, p0, "no pipeline compiled inside a step");
        assert_eq!(
            d1 - d0,
            graph.dispatches().train,
            "the stated count is the recorded one"
        );
        counts.push(d1 - d0);
        let loss = graph.last_loss(&gpu).expect("loss");
        assert!(loss.iter().all(|l| l.is_finite() && *l > 0.0), "{loss:?}");
    }
    assert_eq!(
        counts[0], counts[1],
        "5 and 32 features record the same dispatches"
    );
}

#[test]
fn the_learned_gate_combine_compiles_counts_and_learns() {
    let gpu = private_gpu();
    let text = TINY.replace("hidden = [16]", "hidden = [16]\ncombine = \"gate\"");
    let config = ModelConfig::parse(&text, "gate.toml").expect("config");
    let mut graph = Graph::new(
        &gpu,
        &config,
        &tiny_shapes(0),
        128,
        0.0,
        optimizers(&config),
    )
    .expect("graph");
    let names: Vec<&str> = graph
        .params()
        .layout
        .params
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert!(names.contains(&"combine.gate.weight") && names.contains(&"combine.gate.bias"));
    let mut rng = Rng::new(11);
    let batches: Vec<_> = (0..8)
        .map(|_| {
            graph
                .prepare(&tiny_batch(&mut rng, 128, 0))
                .expect("prepare")
        })
        .collect();
    graph
        .train_step(&gpu, &batches[0], rates(&graph))
        .expect("step");
    gpu.sync().expect("runs");
    let d0 = gpu.dispatches();
    graph
        .train_step(&gpu, &batches[1], rates(&graph))
        .expect("step");
    gpu.sync().expect("runs");
    assert_eq!(gpu.dispatches() - d0, graph.dispatches().train);
    let mut first = None;
    let mut last = vec![];
    for epoch in 0..25 {
        for b in &batches {
            graph.train_step(&gpu, b, rates(&graph)).expect("step");
        }
        last = graph.last_loss(&gpu).expect("loss");
        if epoch == 0 {
            first = Some(last.clone());
        }
    }
    let first = first.expect("first");
    assert!(
        last[0] < 0.5 * first[0],
        "click loss {} → {} with the gate",
        first[0],
        last[0]
    );
    let grads = graph.params().read_grads(&gpu).expect("grads");
    let gate = grads
        .iter()
        .find(|(n, _)| n == "combine.gate.weight")
        .expect("gate weight");
    assert!(
        gate.1.iter().any(|g| *g != 0.0),
        "the gate's weights get gradients"
    );
}

#[test]
fn the_model_learns_a_planted_rule() {
    let gpu = gpu();
    let config = tiny_config(0);
    let mut graph =
        Graph::new(gpu, &config, &tiny_shapes(0), 128, 0.0, optimizers(&config)).expect("graph");
    let mut rng = Rng::new(11);
    let batches: Vec<_> = (0..8)
        .map(|_| {
            graph
                .prepare(&tiny_batch(&mut rng, 128, 0))
                .expect("prepare")
        })
        .collect();
    let mut first = None;
    let mut last = vec![];
    for epoch in 0..25 {
        for b in &batches {
            graph.train_step(gpu, b, rates(&graph)).expect("step");
        }
        last = graph.last_loss(gpu).expect("loss");
        if epoch == 0 {
            first = Some(last.clone());
        }
    }
    let first = first.expect("first epoch");
    assert!(
        last[0] < 0.5 * first[0],
        "click loss {} → {}: the planted rule is learnable",
        first[0],
        last[0]
    );
    let p = graph.predict(gpu, &batches[0]).expect("predict");
    assert_eq!(p.len(), 128 * 2);
    assert!(p.iter().all(|v| (0.0..=1.0).contains(v)));
}

#[test]
fn one_seed_gives_bit_identical_weights() {
    let gpu = gpu();
    let run = || {
        let config = tiny_config(0);
        let mut graph =
            Graph::new(gpu, &config, &tiny_shapes(0), 64, 0.0, optimizers(&config)).expect("graph");
        let mut rng = Rng::new(5);
        for _ in 0..4 {
            let b = graph
                .prepare(&tiny_batch(&mut rng, 61, 0))
                .expect("prepare");
            graph.train_step(gpu, &b, rates(&graph)).expect("step");
        }
        let mut ckpt = wgrec::checkpoint::Checkpoint::new();
        graph.save_state(gpu, &mut ckpt).expect("state");
        ckpt.tensors()
            .iter()
            .map(|(k, t)| {
                (
                    k.clone(),
                    t.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}

#[test]
fn compile_walks_the_plan_and_refuses_a_plan_that_breaks_its_invariants() {
    use wgrec::model::{ModelPlan, Route, RouteMode};
    let gpu = gpu();
    let config = tiny_config(0);
    let plan = ModelPlan::new(&config, &tiny_shapes(0)).expect("plan");
    let graph = Graph::compile(gpu, plan.clone(), optimizers(&config), 32, 0.0).expect("graph");
    assert_eq!(
        graph.plan().tables,
        plan.tables,
        "the graph keeps the plan it walked"
    );
    assert_eq!(graph.tables().len(), plan.tables.len());
    let params = &graph.params().layout.params;
    let planned: Vec<(&str, u64)> = plan
        .dense
        .iter()
        .map(|p| (p.name.as_str(), p.offset))
        .collect();
    let laid: Vec<(&str, u64)> = params.iter().map(|p| (p.name.as_str(), p.offset)).collect();
    assert_eq!(laid, planned, "flat layout = the plan's");
    assert_eq!(
        graph.describe(),
        plan.describe(32),
        "the description is the plan's"
    );
    // A route to a set the tower does not read: refused before anything is allocated.
    let mut bad = plan.clone();
    bad.routes.push(Route {
        tower: 0,
        set: 3,
        mode: RouteMode::StopGradient,
    });
    let e = Graph::compile(gpu, bad, optimizers(&config), 32, 0.0)
        .err()
        .expect("refused");
    assert!(e.to_string().contains("route 1 targets set 3"), "{e}");
    // A dense tensor moved off its packed place: the layout check names it.
    let mut moved = plan;
    let last = moved.dense.len() - 1;
    moved.dense[last].offset += 4;
    let e = Graph::compile(gpu, moved, optimizers(&config), 32, 0.0)
        .err()
        .expect("refused");
    assert!(
        e.to_string().contains("head.bias is planned at offset"),
        "{e}"
    );
}

/// The rates of the graph's next step, as the trainer's policy gives them.
fn rates(graph: &wgrec::graph::Graph) -> wgrec::train::policy::StepRates {
    wgrec::train::policy::TrainPolicy::new(&graph.config().train).rates(graph.step() + 1)
}

/// The optimizers the trainer compiles `config` with.
fn optimizers(config: &wgrec::config::ModelConfig) -> wgrec::graph::Optimizers {
    wgrec::train::policy::TrainPolicy::new(&config.train).optimizers()
}
