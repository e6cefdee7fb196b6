//! A mean-pooled sequence (the TIM ablation) plans no matrix of its own and keeps its field.

use crate::model::tests::{config, shapes, MODEL};
use crate::model::{ModelPlan, Owner};

fn mean_pooled() -> String {
    let text = MODEL.replace("time = { by = \"position\" }\n", "pooling = \"mean\"\n");
    assert_ne!(text, MODEL, "MODEL's history has a time line");
    text
}

#[test]
fn mean_pooled_sequence_plans_no_temporal_table_and_keeps_its_field() {
    let tim = ModelPlan::new(&config(MODEL), &shapes()).expect("TIM plans");
    let mean = ModelPlan::new(&config(&mean_pooled()), &shapes()).expect("mean plans");
    assert_eq!(tim.tables.len(), 15);
    assert_eq!(
        mean.tables.len(),
        12,
        "three tables × four features, no history.time"
    );
    assert!(mean.tables.iter().all(|t| t.owner == Owner::Shared));
    assert!(mean.tables.iter().all(|t| !t.name.contains("history")));
    let slabbed: usize = mean.slabs.iter().map(|s| s.parts.len()).sum();
    assert_eq!(
        slabbed, 12,
        "every matrix in a slab, nothing for the history"
    );
    assert_eq!(mean.fields, tim.fields, "the history is still field 0");
    assert_eq!(mean.n_fields(), tim.n_fields());
    let names = |p: &ModelPlan| -> Vec<String> {
        (p.tables.iter())
            .filter(|t| t.owner == Owner::Shared)
            .map(|t| t.name.clone())
            .collect()
    };
    assert_eq!(
        names(&mean),
        names(&tim),
        "the other matrices are unchanged"
    );
    assert!(mean.check().is_ok());
}
