//! The memory statement (`wgrec::graph::MemoryReport`) against what `Graph::new` really allocates,
//! read from `Gpu::allocated_bytes` on a device of the test's own (the shared one counts every
//! test's buffers): per table, the storage layout's bytes exactly; the storage group's chunk
//! buffers exactly; in total, within a tolerance.
//!
//! The tolerance: the statement counts the tables and every buffer that grows with the batch, the
//! tables or a width key (the buffers the memory check judges), not the small ones: uniforms and
//! kernel parameter blocks (a few hundred bytes each), the per-step input buffers (ids, offsets,
//! labels, weights: `tbe batch`), BatchNorm's vectors, TIM's statistics, the logits. The part it
//! leaves out is a share that shrinks as the tables and widths grow, and the statement stays below
//! the allocation on both models: on the plain model (tables dominate) the statement is ≥ 95% of the allocation; on
//! the tiny every-feature-kind model (batch buffers dominate, tables of a few rows) ≥ 80% (86%
//! measured on lavapipe).

use wgrec::config::ModelConfig;
use wgrec::graph::{FeatureShape, Graph, MemoryLimits, MemoryReport};
use wgrec::kernels::embedding::{EmbeddingStorage, TableSpec};
use wgrec::Gpu;

use crate::graph::{tiny_config, tiny_shapes};

fn optimizers(config: &ModelConfig) -> wgrec::graph::Optimizers {
    wgrec::train::policy::TrainPolicy::new(&config.train).optimizers()
}

/// A plain two-table model with a wide categorical feature, so the tables dominate.
const PLAIN: &str = r#"
[model]
tables = 2
dim = 16
hidden = [32]
expert_width = 16

[[feature]]
name = "user"
kind = "categorical"

[[feature]]
name = "item"
kind = "categorical"

[train]
batch_size = 64
"#;

fn plain_shapes() -> Vec<FeatureShape> {
    [5000u32, 3000]
        .iter()
        .map(|&rows| FeatureShape {
            rows,
            mns: vec![],
            max_ids: 1,
        })
        .collect()
}

/// Builds the graph on a fresh device and returns (report, bytes allocated by `Graph::new`).
fn measure(
    config: &ModelConfig,
    shapes: &[FeatureShape],
    batch: u32,
) -> (MemoryReport, u64, Graph) {
    let gpu = Gpu::new().expect("a device");
    let limits = MemoryLimits::of(&gpu);
    let report = MemoryReport::new(config, shapes, batch, &optimizers(config), limits.binding);
    let before = gpu.allocated_bytes();
    let graph = Graph::new(&gpu, config, shapes, batch, 0.0, optimizers(config)).expect("graph");
    (report, gpu.allocated_bytes() - before, graph)
}

/// Each table of the statement is a table of the graph: same name, rows, width, and the bytes the
/// storage layout gives it (rows × stride).
fn tables_match(report: &MemoryReport, graph: &Graph) {
    assert_eq!(
        graph.storage().storages().len(),
        1,
        "these models fit one group"
    );
    let placed = &graph.storage().slab(0).layout.tables;
    assert_eq!(report.tables.len(), graph.tables().len());
    for ((t, plan), p) in report.tables.iter().zip(graph.tables()).zip(placed) {
        assert_eq!(
            (&t.name, t.rows, t.width),
            (&plan.name, plan.rows, plan.width)
        );
        assert_eq!(
            t.bytes(),
            p.rows as u64 * p.stride4 as u64 * 16,
            "{}",
            t.name
        );
        assert_eq!(
            t.weights,
            p.rows as u64 * p.width4 as u64 * 16,
            "{}",
            t.name
        );
    }
    let storage: u64 = report.groups.iter().map(|g| g.bytes).sum();
    let allocated: u64 = (graph.storage().storages().iter())
        .map(|s| s.layout.total4 * 16)
        .sum();
    assert_eq!(storage, allocated);
}

/// The storage group's chunk buffers, allocated alone, are the statement's storage bytes exactly.
fn storage_matches(config: &ModelConfig, report: &MemoryReport, graph: &Graph) {
    let gpu = Gpu::new().expect("a device");
    let specs: Vec<TableSpec> = (graph.tables().iter())
        .map(|t| TableSpec {
            rows: t.rows,
            width: t.width,
        })
        .collect();
    let before = gpu.allocated_bytes();
    let sparse = optimizers(config).sparse;
    EmbeddingStorage::new(&gpu, &specs, sparse, None).expect("storage");
    assert_eq!(gpu.allocated_bytes() - before, report.storage());
}

fn report_ratio(name: &str, report: &MemoryReport, allocated: u64) -> f64 {
    let total = report.total();
    eprintln!(
        "{name}: statement {total} bytes (storage {}, buffers {}), allocated {allocated}",
        report.storage(),
        report.buffers()
    );
    total as f64 / allocated as f64
}

#[test]
fn the_statement_matches_a_plain_models_allocation() {
    let config = ModelConfig::parse(PLAIN, "plain.toml").expect("config");
    let (report, allocated, graph) = measure(&config, &plain_shapes(), 64);
    tables_match(&report, &graph);
    storage_matches(&config, &report, &graph);
    let ratio = report_ratio("plain", &report, allocated);
    assert!((0.95..=1.0).contains(&ratio), "ratio {ratio}");
}

#[test]
fn the_statement_matches_every_feature_kind() {
    let config = tiny_config(0);
    let (report, allocated, graph) = measure(&config, &tiny_shapes(0), 128);
    tables_match(&report, &graph);
    storage_matches(&config, &report, &graph);
    let ratio = report_ratio("tiny", &report, allocated);
    assert!((0.8..=1.0).contains(&ratio), "ratio {ratio}");
}

#[test]
fn the_storage_group_counts_the_chunks_the_layout_cuts() {
    let config = ModelConfig::parse(PLAIN, "plain.toml").expect("config");
    let shapes = plain_shapes();
    let sparse = optimizers(&config).sparse;
    for binding in [64 << 20, 512 << 10, 300 << 10, 4096] {
        let report = MemoryReport::new(&config, &shapes, 64, &optimizers(&config), binding);
        let mut plan = wgrec::model::ModelPlan::new(&config, &shapes).expect("plan");
        let packing = wgrec::model::Packing {
            optimizer: sparse,
            chunk_bytes: binding,
        };
        plan.pack_slabs(packing).expect("packs");
        assert_eq!(report.groups.len(), plan.slabs.len(), "binding {binding}");
        for (group, slab) in report.groups.iter().zip(&plan.slabs) {
            let specs: Vec<TableSpec> = (slab.parts.iter())
                .map(|p| TableSpec::whole(p.rows.len() as u32, plan.tables[p.table].width))
                .collect();
            let layout = wgrec::kernels::embedding::StorageLayout::new(&specs, sparse, binding)
                .expect("a packed group fits its chunks");
            assert!(group.fits(), "binding {binding}");
            assert_eq!(group.chunks, layout.chunks() as u64);
            assert_eq!(group.chunk_bytes, layout.chunk4() * 16);
            assert_eq!(group.bytes, layout.total4 * 16);
        }
    }
    let small = MemoryReport::new(&config, &shapes, 64, &optimizers(&config), 4096);
    assert!(small.groups.len() > 1, "4 KiB chunks split the tables");
}
