//! The memory statement without a device: the tables' state follows the sparse optimizer, the
//! total is its parts, and the statement refuses exactly where the check does.

use super::*;
use crate::graph::{check_memory, MemoryLimits};
use crate::kernels::embedding::MnsBase;

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
hash_rows = 64

[train]
batch_size = 32
"#;

fn report(sparse: &str, rows: u32, binding: u64) -> MemoryReport {
    let text = format!("{MODEL}sparse_optimizer = \"{sparse}\"\n");
    let c = ModelConfig::parse(&text, "m.toml").expect("valid");
    let shape = FeatureShape {
        rows,
        mns: Vec::<MnsBase>::new(),
        max_ids: 1,
    };
    let shapes = [shape.clone(), FeatureShape { rows: 64, ..shape }];
    let optimizers = crate::train::policy::TrainPolicy::new(&c.train).optimizers();
    MemoryReport::new(&c, &shapes, 32, &optimizers, binding)
}

#[test]
fn each_table_carries_its_optimizers_state() {
    for (sparse, state_per_row) in [("sgd", 0), ("adagrad", 16), ("adam", 2 * 32)] {
        let r = report(sparse, 100, 128 << 20);
        let names: Vec<&str> = r.tables.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "emb.0.user_id",
                "emb.0.item_id",
                "emb.1.user_id",
                "emb.1.item_id"
            ]
        );
        for t in &r.tables {
            assert_eq!(t.weights, t.rows as u64 * 8 * 4, "{sparse} {}", t.name);
            assert_eq!(
                t.state,
                t.rows as u64 * state_per_row,
                "{sparse} {}",
                t.name
            );
        }
        assert_eq!(r.tables[1].key, "feature[1].hash_rows");
        assert_eq!(r.tables[0].key, "feature[0]");
        let tables: u64 = r.tables.iter().map(TableMemory::bytes).sum();
        assert_eq!(r.groups[0].bytes, tables);
        assert_eq!(r.total(), r.storage() + r.buffers());
        let acts: u64 = r.activations().iter().map(|a| a.1).sum();
        assert_eq!(r.buffers(), acts + r.dense() + r.dense_optimizer());
    }
}

#[test]
fn the_statement_splits_the_tables_over_groups_where_one_outgrows_its_chunks() {
    let limits = |binding| MemoryLimits {
        binding,
        buffer: 1 << 30,
        host: None,
        buffers_on_host: false,
    };
    // 2 × (100 000 + 64) rows × (32 + 16) bytes ≈ 9.6 MB: fits 4 chunks of 4 MiB, not of 2 MiB.
    for (binding, groups) in [(4u64 << 20, 1), (2 << 20, 2)] {
        let r = report("adagrad", 100_000, binding);
        assert_eq!(r.groups.len(), groups, "binding {binding}");
        assert!(r.groups.iter().all(|g| g.fits() && g.chunks <= 4));
        let tables: u64 = r.tables.iter().map(|t| t.bytes()).sum();
        assert_eq!(r.groups.iter().map(|g| g.bytes).sum::<u64>(), tables);
        r.check(&limits(binding)).expect("fits in groups");
        let text = format!("{MODEL}sparse_optimizer = \"adagrad\"\n");
        let c = ModelConfig::parse(&text, "m.toml").expect("valid");
        let shape = FeatureShape {
            rows: 100_000,
            mns: Vec::<MnsBase>::new(),
            max_ids: 1,
        };
        let shapes = [shape.clone(), FeatureShape { rows: 64, ..shape }];
        let optimizers = crate::train::policy::TrainPolicy::new(&c.train).optimizers();
        check_memory(&c, &shapes, 32, &optimizers, &limits(binding))
            .expect("check_memory agrees with the statement");
    }
}
