//! Every kernel variant through the whole model (issue 20, point 4): each non-default variant of
//! each family, forced on a private device, runs the tiny model (DCNv2 and GwPFM experts, TIM, a
//! bag, MNS, a BCE and a pair-loss task) like the default path does, within stated tolerances. The
//! model is the graph tests' `TINY` at 64 floats per row, so the wide-row variants apply.
//!
//! What is compared, and why each tolerance:
//! - the forward at initialisation (probabilities of one batch): variants only reorder f32 sums,
//!   ~1e-6 relative per kernel over a dozen kernels: 1e-4 relative + 1e-6 absolute;
//! - the loss statistics of the first step (same forward): the same bound;
//! - every expert group's input gradient after the first step (the whole backward down to the
//!   gathered embeddings): 1e-4 of the tensor's largest magnitude (the GEMM and pairwise backward
//!   sum ~100 terms);
//! - every embedding table after the first step (row-wise Adagrad: the step is g/√mean(g²), smooth in
//!   g): 1e-4 of the table's largest movement + 1e-6;
//! - every dense tensor after the first step (Adam: the first step is lr·g/|g|, so an element whose
//!   gradient is float noise around zero may step either way): within 2·dense_lr + 1e-5.

use wgrec::checkpoint::Checkpoint;
use wgrec::config::ModelConfig;
use wgrec::gpu::Family;
use wgrec::graph::{Graph, Prepared};
use wgrec::rng::Rng;
use wgrec::train::policy::TrainPolicy;
use wgrec::Gpu;

use crate::graph::{tiny_batch, tiny_shapes, TINY};

const ROWS: usize = 53;

struct Outcome {
    init: Vec<f32>,
    stats: Vec<f32>,
    grads: Vec<Vec<f32>>,
    before: Checkpoint,
    after: Checkpoint,
}

fn wide_config() -> ModelConfig {
    let text = TINY.replace("dim = 8", "dim = 64");
    assert_ne!(text, TINY, "the tiny model's width moved: update this test");
    ModelConfig::parse(&text, "tiny-wide.toml").expect("config")
}

fn run(gpu: &Gpu) -> Outcome {
    let config = wide_config();
    let policy = TrainPolicy::new(&config.train);
    let mut graph =
        Graph::new(gpu, &config, &tiny_shapes(0), 64, 0.0, policy.optimizers()).expect("graph");
    let mut rng = Rng::new(11);
    let batch: Prepared = graph
        .prepare(&tiny_batch(&mut rng, ROWS, 0))
        .expect("prepare");
    let init = graph.predict(gpu, &batch).expect("predict");
    let before = state(gpu, &graph);
    graph
        .train_step(gpu, &batch, policy.rates(1))
        .expect("step");
    let stats = graph.last_loss_stats(gpu).expect("stats");
    let grads = (0..graph.groups().len())
        .map(|g| graph.input_grads(gpu, g).expect("grads"))
        .collect();
    let after = state(gpu, &graph);
    Outcome {
        init,
        stats,
        grads,
        before,
        after,
    }
}

fn state(gpu: &Gpu, graph: &Graph) -> Checkpoint {
    let mut ckpt = Checkpoint::new();
    graph.save_state(gpu, &mut ckpt).expect("state");
    ckpt
}

fn close(what: &str, got: &[f32], want: &[f32], bound: impl Fn(usize) -> f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let err = (*g as f64 - *w as f64).abs();
        assert!(
            g.is_finite() && err <= bound(i),
            "{what}[{i}]: {g} against the default's {w} (bound {})",
            bound(i)
        );
    }
}

fn largest(v: &[f32]) -> f64 {
    v.iter().fold(0.0f64, |m, x| m.max(x.abs() as f64))
}

fn compare(name: &str, got: &Outcome, want: &Outcome, dense_lr: f64) {
    close(&format!("{name} forward"), &got.init, &want.init, |i| {
        1e-4 * want.init[i].abs() as f64 + 1e-6
    });
    close(
        &format!("{name} loss stats"),
        &got.stats,
        &want.stats,
        |i| 1e-4 * want.stats[i].abs() as f64 + 1e-6,
    );
    for (g, (a, b)) in got.grads.iter().zip(&want.grads).enumerate() {
        let scale = largest(b);
        close(&format!("{name} group {g} input gradient"), a, b, |_| {
            1e-4 * scale + 1e-9
        });
    }
    for (key, t) in want.after.tensors() {
        let got_t = &got.after.tensors()[key];
        let moved: Vec<f32> = t
            .data
            .iter()
            .zip(&want.before.tensors()[key].data)
            .map(|(a, b)| a - b)
            .collect();
        let bound = if key.starts_with("emb.") {
            1e-4 * largest(&moved) + 1e-6
        } else {
            2.0 * dense_lr + 1e-5
        };
        close(&format!("{name} {key}"), &got_t.data, &t.data, |_| bound);
    }
}

#[test]
fn every_variant_runs_the_whole_model_like_the_default() {
    let reference = Gpu::new().expect("a GPU adapter (lavapipe will do)");
    let want = run(&reference);
    let dense_lr = wide_config().train.dense_lr as f64;
    let mut tried = Vec::new();
    for family in Family::ALL {
        for variant in family.variants().iter().skip(1) {
            let gpu = Gpu::new().expect("adapter");
            if variant.subgroups && !gpu.has_subgroups() {
                eprintln!(
                    "{} {}: this adapter has no subgroups",
                    family.name(),
                    variant.name
                );
                continue;
            }
            gpu.force_variant(family, Some(variant.name))
                .expect("force");
            let got = run(&gpu);
            assert!(
                gpu.asked_variants().iter().any(|(f, _)| *f == family),
                "the model never asked for a {} variant",
                family.name()
            );
            compare(
                &format!("{}={}", family.name(), variant.name),
                &got,
                &want,
                dense_lr,
            );
            tried.push(format!("{}={}", family.name(), variant.name));
        }
    }
    eprintln!("variants run through the model: {}", tried.join(", "));
    assert!(
        !tried.is_empty(),
        "no variant besides the defaults ran: the families list some (gpu::variants)"
    );
}
