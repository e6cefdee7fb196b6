//! The packer without a GPU: next-fit in storage order, row splits, TIM units whole, one element
//! type per slab, and the plan's check of what a packing produced.

use super::*;
use crate::model::tests::{config, shapes, MODEL};
use crate::model::{ModelPlan, Owner};

/// Chunks of 4 vec4s: a slab holds 16 vec4s (256 bytes), 16 rows of width 4 under SGD.
const TINY: Packing = Packing {
    optimizer: SparseOptimizer::Sgd,
    chunk_bytes: 64,
};

fn table(name: &str, rows: u32, width: u32) -> TablePlan {
    TablePlan {
        name: name.into(),
        rows,
        width,
        element: Element::F32,
        owner: Owner::Shared,
        table: 0,
        feature: 0,
        l2: None,
    }
}

fn tables(rows: &[u32]) -> Vec<TablePlan> {
    (rows.iter().enumerate())
        .map(|(i, &r)| table(&format!("t{i}"), r, 4))
        .collect()
}

/// Each slab as its (table, rows) parts.
fn parts(slabs: &[SlabPlan]) -> Vec<Vec<(usize, Range<u32>)>> {
    (slabs.iter())
        .map(|s| s.parts.iter().map(|p| (p.table, p.rows.clone())).collect())
        .collect()
}

#[test]
fn tables_that_fit_one_slab_stay_whole_in_storage_order() {
    let slabs = pack(&tables(&[3, 5, 4]), &[], TINY).expect("fits");
    assert_eq!(parts(&slabs), [vec![(0, 0..3), (1, 0..5), (2, 0..4)]]);
    assert_eq!(slabs[0].element, Element::F32);
}

#[test]
fn next_fit_opens_a_slab_when_a_table_does_not_fit_the_open_one() {
    let slabs = pack(&tables(&[10, 10, 6]), &[], TINY).expect("fits");
    assert_eq!(
        parts(&slabs),
        [vec![(0, 0..10)], vec![(1, 0..10), (2, 0..6)]],
        "next-fit: table 2 joins the open slab, never the first"
    );
}

#[test]
fn a_table_larger_than_a_slab_is_split_by_rows_after_the_open_slabs_rest() {
    let slabs = pack(&tables(&[5, 40, 3]), &[], TINY).expect("fits");
    assert_eq!(
        parts(&slabs),
        [
            vec![(0, 0..5), (1, 0..11)],
            vec![(1, 11..27)],
            vec![(1, 27..40), (2, 0..3)],
        ]
    );
}

#[test]
fn optimizer_state_counts_in_the_rows_a_slab_holds() {
    let adagrad = Packing {
        optimizer: SparseOptimizer::RowwiseAdagrad { eps: 1e-8 },
        ..TINY
    };
    let slabs = pack(&tables(&[20]), &[], adagrad).expect("fits");
    assert_eq!(
        parts(&slabs),
        [vec![(0, 0..8)], vec![(0, 8..16)], vec![(0, 16..20)]],
        "two vec4s per row: 8 rows per 16-vec4 slab"
    );
}

#[test]
fn a_tim_unit_stays_whole_in_one_slab_and_pulls_its_later_matrix_forward() {
    let unit = TimUnit {
        feature: "history".into(),
        tables: vec![0, 2],
    };
    let slabs = pack(&tables(&[6, 8, 6]), &[unit], TINY).expect("fits");
    assert_eq!(parts(&slabs), [vec![(0, 0..6), (2, 0..6)], vec![(1, 0..8)]]);
}

#[test]
fn a_tim_unit_larger_than_a_slab_is_refused_with_the_sequence_and_the_bytes() {
    let unit = TimUnit {
        feature: "history".into(),
        tables: vec![0, 1],
    };
    let e = pack(&tables(&[10, 10]), &[unit], TINY)
        .expect_err("20 rows, 16 fit")
        .to_string();
    assert!(e.contains("sequence \"history\""), "{e}");
    assert!(e.contains("need 320 bytes"), "{e}");
    assert!(e.contains("(256 bytes: 4 chunks of 64 bytes)"), "{e}");
}

#[test]
fn a_row_larger_than_a_slab_is_refused_with_its_bytes() {
    let e = pack(&[table("wide", 2, 128)], &[], TINY)
        .expect_err("a 512-byte row")
        .to_string();
    assert!(e.contains("wide: one row takes 512 bytes"), "{e}");
}

#[test]
fn f16_and_f32_matrices_never_share_a_slab() {
    let mut t = tables(&[2, 2, 2]);
    t[1].element = Element::F16;
    let slabs = pack(&t, &[], TINY).expect("fits");
    let elements: Vec<Element> = slabs.iter().map(|s| s.element).collect();
    assert_eq!(elements, [Element::F32, Element::F16, Element::F32]);
}

/// The test model with a user table large enough to split at chunks of 4 KiB (slabs of 16 KiB).
fn split_plan() -> ModelPlan {
    let mut s = shapes();
    s[0].rows = 1001;
    let mut p = ModelPlan::new(&config(MODEL), &s).expect("plans");
    let packing = Packing {
        optimizer: SparseOptimizer::RowwiseAdagrad { eps: 1e-8 },
        chunk_bytes: 4096,
    };
    p.pack_slabs(packing).expect("packs and checks");
    p
}

#[test]
fn a_planned_model_packs_into_several_slabs_with_its_tim_units_whole() {
    let p = split_plan();
    assert!(p.slabs.len() >= 3, "{} slabs", p.slabs.len());
    let user = p.table_of(0, 0);
    assert!(p.parts_of(user).len() >= 2, "emb.0.user_id is split");
    for unit in p.tim_units() {
        let slabs: Vec<usize> = (unit.tables.iter())
            .flat_map(|&t| p.parts_of(t))
            .map(|(s, _)| s)
            .collect();
        assert_eq!(slabs.len(), unit.tables.len(), "each member whole");
        assert!(slabs.iter().all(|&s| s == slabs[0]), "{unit:?}: {slabs:?}");
    }
    let again = split_plan();
    assert_eq!(p.slabs, again.slabs, "deterministic");
}

#[test]
fn check_refuses_rows_in_no_slab_or_in_two() {
    let mut p = split_plan();
    let user = p.table_of(0, 0);
    let (s, i) = p.parts_of(user)[1];
    let removed = p.slabs[s].parts.remove(i);
    let e = p.check().expect_err("rows in no slab").to_string();
    assert!(e.contains("emb.0.user_id: slab"), "{e}");
    assert!(e.contains("each row in exactly one slab"), "{e}");
    p.slabs[s].parts.insert(i, removed.clone());
    p.check().expect("restored");
    p.slabs[0].parts.push(removed);
    let e = p.check().expect_err("rows in two slabs").to_string();
    assert!(e.contains("emb.0.user_id"), "{e}");
}

#[test]
fn check_refuses_a_tim_unit_split_over_slabs() {
    let mut p = ModelPlan::new(&config(MODEL), &shapes()).expect("plans");
    let time = p.time_table_of(0, 4);
    p.slabs[0].parts.retain(|x| x.table != time);
    p.slabs.push(SlabPlan {
        name: "time".into(),
        element: Element::F32,
        parts: vec![PartPlan {
            table: time,
            rows: 0..p.tables[time].rows,
        }],
    });
    let e = p.check().expect_err("apart from its item").to_string();
    assert!(e.contains("sequence \"history\""), "{e}");
    assert!(e.contains("must be whole in one slab"), "{e}");
}
