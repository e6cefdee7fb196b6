//! The gate read-back of a multi-task graph (`Graph::gate_weights`, what `wgrec analyze`'s
//! entanglement section tallies; docs/multitask.md): per (tower, row) a softmax over the experts
//! the tower reads and exactly 0 on the others, the uniform mean for a shared bottom, the last
//! batch's rows only, deterministic, and reading it changes no prediction's bits.
//!
//! The models are [`TINY`] (M = 2, DCN + GwPFM, tasks `click` and `love`) as each architecture,
//! trained 3 steps from their seed so the gates are not left at their initial values.

use wgrec::analyze::entangle::{expert_labels, GateTally};
use wgrec::config::ModelConfig;
use wgrec::graph::Graph;
use wgrec::model::PRESENT;
use wgrec::rng::Rng;
use wgrec::Gpu;

use crate::common::gpu;
use crate::graph::{tiny_batch, tiny_shapes, TINY};
use crate::graph_gradcheck::{optimizers, rates};

const MAX_BATCH: u32 = 64;

fn trained(gpu: &Gpu, arch: &str) -> Graph {
    let text = TINY.replacen(
        "[model]\n",
        &format!("[model]\narchitecture = \"{arch}\"\n"),
        1,
    );
    let config = ModelConfig::parse(&text, "gates.toml").expect("config");
    let shapes = tiny_shapes(0);
    let mut graph =
        Graph::new(gpu, &config, &shapes, MAX_BATCH, 0.0, optimizers(&config)).expect("graph");
    let mut rng = Rng::new(5);
    for _ in 0..3 {
        let batch = graph
            .prepare(&tiny_batch(&mut rng, 64, 0))
            .expect("prepare");
        let r = rates(&graph);
        graph.train_step(gpu, &batch, r).expect("step");
    }
    graph
}

/// Predicts `rows` fresh samples (seed `seed`) and returns the probabilities' bits.
fn predict(gpu: &Gpu, graph: &mut Graph, seed: u64, rows: usize) -> Vec<u32> {
    let batch = tiny_batch(&mut Rng::new(seed), rows, 0);
    let prepared = graph.prepare(&batch).expect("prepare");
    let p = graph.predict(gpu, &prepared).expect("predict");
    p.iter().map(|v| v.to_bits()).collect()
}

/// Checks `[towers, rows, experts]` weights against the plan's mixture: each (tower, row) sums to
/// 1 over the present experts (f32 softmax: a few ulps of 1 per term), absent experts exactly 0;
/// returns the largest distance of a present weight from its tower's uniform value.
fn check_mixture(graph: &Graph, g: &[f32], rows: usize) -> f32 {
    let plan = graph.plan();
    let (u_n, e_n) = (plan.towers.len(), plan.n_tables() as usize);
    assert_eq!(g.len(), u_n * rows * e_n, "[towers, rows, experts]");
    let routes = plan.mix_routes();
    let mut spread = 0.0f32;
    for u in 0..u_n {
        let present: Vec<bool> = (0..e_n)
            .map(|e| routes[u * e_n + e] & PRESENT != 0)
            .collect();
        let k = present.iter().filter(|&&p| p).count() as f32;
        for b in 0..rows {
            let row = &g[(u * rows + b) * e_n..][..e_n];
            let sum: f64 = row.iter().map(|&w| f64::from(w)).sum();
            assert!(
                (sum - 1.0).abs() < 1e-5,
                "tower {u} row {b} sums to {sum}: {row:?}"
            );
            for (e, &w) in row.iter().enumerate() {
                if present[e] {
                    assert!(
                        w.is_finite() && w > 0.0,
                        "tower {u} row {b} expert {e}: {w}"
                    );
                    spread = spread.max((w - 1.0 / k).abs());
                } else {
                    assert_eq!(
                        w.to_bits(),
                        0,
                        "tower {u} row {b}: absent expert {e} weighs {w}"
                    );
                }
            }
        }
    }
    spread
}

#[test]
fn gates_are_a_softmax_over_the_experts_each_tower_reads_and_learned_ones_vary() {
    let gpu = gpu();
    for arch in ["mmoe", "ple", "stem", "shared"] {
        let mut graph = trained(gpu, arch);
        // A full batch first, then an awkward smaller one: only its 37 rows come back.
        predict(gpu, &mut graph, 11, 64);
        let full = graph.gate_weights(gpu).expect("read").expect("multi-task");
        predict(gpu, &mut graph, 12, 37);
        let g = graph.gate_weights(gpu).expect("read").expect("multi-task");
        let spread = check_mixture(&graph, &g, 37);
        if arch == "shared" {
            assert_eq!(spread, 0.0, "a shared bottom's weights are exactly uniform");
        } else {
            // Three steps from a random start: the softmax is far from flat somewhere.
            assert!(spread > 1e-3, "{arch}: gates stayed uniform ({spread})");
            let e_n = graph.plan().n_tables() as usize;
            assert_ne!(
                g[..37 * e_n],
                full[..37 * e_n],
                "{arch}: the second batch's gates"
            );
        }
    }
}

#[test]
fn reading_the_gates_leaves_every_prediction_bit_identical() {
    let gpu = gpu();
    for arch in ["stem", "mmoe"] {
        let (mut quiet, mut reader) = (trained(gpu, arch), trained(gpu, arch));
        let mut gates = Vec::new();
        for (seed, rows) in [(21, 64), (22, 37), (23, 1), (21, 64)] {
            let a = predict(gpu, &mut quiet, seed, rows);
            let b = predict(gpu, &mut reader, seed, rows);
            gates.push(reader.gate_weights(gpu).expect("read").expect("gates"));
            assert_eq!(a, b, "{arch}: batch {seed} of {rows} rows");
        }
        // The same batch again gives the same gates, bit for bit.
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&gates[0]), bits(&gates[3]), "{arch}: deterministic");
    }
}

#[test]
fn gate_means_match_a_host_mean_of_the_per_sample_read_back() {
    let gpu = gpu();
    let mut graph = trained(gpu, "stem");
    let plan = graph.plan();
    let (u_n, e_n) = (plan.towers.len(), plan.n_tables() as usize);
    let labels = expert_labels(plan);
    let want = [
        "shared/t0",
        "shared/t1",
        "click/t0",
        "click/t1",
        "love/t0",
        "love/t1",
    ];
    let mut by_table = vec![String::new(); e_n];
    for m in 0..e_n as u32 {
        by_table[m as usize] = labels[plan.slot_of(m) as usize].clone();
    }
    assert_eq!(by_table, want, "labels follow the tables through the slots");
    let mut tally = GateTally::new(u_n, e_n);
    let mut sum = vec![0.0f64; u_n * e_n];
    let mut rows = 0;
    for (seed, n) in [(31, 64), (32, 19)] {
        predict(gpu, &mut graph, seed, n);
        let g = graph.gate_weights(gpu).expect("read").expect("gates");
        tally.push(&g, n).expect("tally");
        for u in 0..u_n {
            for b in 0..n {
                for e in 0..e_n {
                    sum[u * e_n + e] += f64::from(g[(u * n + b) * e_n + e]);
                }
            }
        }
        rows += n;
    }
    let means = tally.means().expect("rows");
    assert_eq!(means.rows, rows as u64);
    for u in 0..u_n {
        let total: f64 = means.mean[u].iter().sum();
        assert!((total - 1.0).abs() < 1e-5, "tower {u}: {total}");
        for e in 0..e_n {
            // The same f64 sums in the same order: equal to the bit.
            assert_eq!(
                means.mean[u][e],
                sum[u * e_n + e] / rows as f64,
                "[{u}][{e}]"
            );
        }
        let top: f64 = means.top_share[u].iter().sum();
        assert!(
            (top - 1.0).abs() < 1e-12,
            "each sample has one largest weight"
        );
    }
}

#[test]
fn a_single_model_has_no_gates_to_read() {
    let gpu = gpu();
    let config = ModelConfig::parse(TINY, "single.toml").expect("config");
    let mut graph =
        Graph::new(gpu, &config, &tiny_shapes(0), 8, 0.0, optimizers(&config)).expect("graph");
    predict(gpu, &mut graph, 3, 5);
    assert_eq!(graph.gate_weights(gpu).expect("read"), None);
}
