//! `Graph::reset_rows` (online learning's re-initialisation of a row a new id takes over): the
//! chosen rows of every matrix of the feature — one per table `m`; the item feature's matrices are
//! also TIM's item table — get fresh Xavier values inside the model's own bound and zeroed
//! optimizer state, every other row keeps its bits, and the values depend only on (seed, matrix,
//! row, nonce).

use wgrec::graph::Graph;
use wgrec::model::Owner;
use wgrec::rng::Rng;

use crate::common::gpu;
use crate::graph::{tiny_batch, tiny_config, tiny_shapes};

fn trained_graph() -> Graph {
    let config = tiny_config(0);
    let optimizers = wgrec::train::policy::TrainPolicy::new(&config.train).optimizers();
    let mut graph = Graph::new(gpu(), &config, &tiny_shapes(0), 64, 0.0, optimizers).unwrap();
    let policy = wgrec::train::policy::TrainPolicy::new(&config.train);
    let mut rng = Rng::new(11);
    for step in 1..=3 {
        let batch = graph.prepare(&tiny_batch(&mut rng, 64, 0)).unwrap();
        graph.train_step(gpu(), &batch, policy.rates(step)).unwrap();
    }
    graph
}

/// Every matrix's raw rows (weights then optimizer state).
fn raw(graph: &Graph) -> Vec<Vec<f32>> {
    (0..graph.tables().len())
        .map(|t| graph.storage().read_raw(gpu(), t).unwrap())
        .collect()
}

#[test]
fn reset_rows_reinitialises_exactly_the_rows_of_the_features_matrices() {
    let graph = trained_graph();
    let before = raw(&graph);
    let item = 1; // the config's second feature; TIM reads its matrices too
    let rows = [0u32, 3, 29];
    graph.reset_rows(gpu(), item, &rows, 5).unwrap();
    let after = raw(&graph);
    let mut touched = 0;
    for (t, table) in graph.tables().iter().enumerate() {
        let stride = graph.storage().raw_stride(t);
        let width = table.width as usize;
        let mine = table.feature == item && table.owner == Owner::Shared;
        let bound = (6.0 / (table.rows as f32 + table.width as f32)).sqrt();
        for r in 0..table.rows as usize {
            let (old, new) = (
                &before[t][r * stride..][..stride],
                &after[t][r * stride..][..stride],
            );
            if !(mine && rows.contains(&(r as u32))) {
                assert_eq!(
                    old.to_bits_vec(),
                    new.to_bits_vec(),
                    "{} row {r} moved",
                    table.name
                );
                continue;
            }
            touched += 1;
            assert!(
                new[..width].iter().all(|x| x.abs() <= bound),
                "{} row {r}",
                table.name
            );
            assert!(new[..width].iter().any(|&x| x != 0.0));
            assert_ne!(old[..width].to_bits_vec(), new[..width].to_bits_vec());
            assert!(
                new[width..].iter().all(|&x| x == 0.0),
                "state of {} row {r}",
                table.name
            );
        }
    }
    assert_eq!(touched, 2 * rows.len(), "M = 2 tables, one matrix each");

    // The same (row, nonce) gives the same bits, another nonce others.
    graph.reset_rows(gpu(), item, &rows, 5).unwrap();
    assert_eq!(flat(&raw(&graph)), flat(&after));
    graph.reset_rows(gpu(), item, &rows, 6).unwrap();
    assert_ne!(flat(&raw(&graph)), flat(&after));
}

#[test]
fn reset_rows_refuses_a_row_past_the_table_and_a_feature_without_a_matrix() {
    let graph = trained_graph();
    assert!(graph.reset_rows(gpu(), 1, &[30_000], 1).is_err());
    // Feature 4 is the sequence: it reads its item's matrix and has none to reset.
    assert!(graph.reset_rows(gpu(), 4, &[1], 1).is_err());
}

fn flat(tables: &[Vec<f32>]) -> Vec<u32> {
    tables.iter().flatten().map(|x| x.to_bits()).collect()
}

trait Bits {
    fn to_bits_vec(&self) -> Vec<u32>;
}

impl Bits for [f32] {
    fn to_bits_vec(&self) -> Vec<u32> {
        self.iter().map(|x| x.to_bits()).collect()
    }
}
