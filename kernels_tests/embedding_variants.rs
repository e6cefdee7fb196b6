//! Issue 20's gather and update variants, each forced on its own device (never on the shared test
//! device) and checked against the same CPU reference as the default: mixed widths, MNS, weights,
//! hot and Zipf ids, empty bags and batches, rows straddling chunks, rows of 1024 floats, f16
//! storage. Variants that keep the default's summation order must also give its bits.

use wgrec::gpu::Family;
use wgrec::kernels::embedding::{
    Element, EmbeddingStorage, FeatureSet, Pooling, TableSpec, TbeForward, GATHER_VARIANTS,
    UPDATE_VARIANTS,
};
use wgrec::kernels::run_once;
use wgrec::rng::Rng;
use wgrec::Gpu;

use crate::common::{poison, Tolerance};
use crate::embedding_forward::{check_forward_on, mixed_problem};
use crate::embedding_reference::{self as reference, Ids, Problem};
use crate::embedding_update::{
    check_update_on, update_problem, wide_problem, Decay, ADAGRAD, ADAM, SGD,
};

/// As the default's: f32 sums of at most a few hundred terms (error ≤ n·ε·Σ|x|, n ≤ 300).
const GATHER: Tolerance = Tolerance {
    relative: 2e-5,
    absolute: 1e-6,
};

/// A device with `name` forced for `family`.
fn forced(family: Family, name: &str) -> Gpu {
    let gpu = Gpu::new().expect("kernel tests need a GPU adapter (lavapipe will do)");
    gpu.force_variant(family, Some(name)).expect("force");
    gpu
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Every gather output of `problem` on a device forcing `name`, checked against the reference.
fn gather_cases(gpu: &Gpu, wide: &Problem) -> Vec<Vec<f32>> {
    let mut empty = mixed_problem(Ids::Uniform, false);
    empty.max_bag = 1; // about half the bags are empty
    vec![
        check_forward_on(gpu, &mixed_problem(Ids::Hot, true), 61, 4, true).1,
        check_forward_on(gpu, &mixed_problem(Ids::Zipf(1.2), false), 67, 5, false).1,
        check_forward_on(gpu, &empty, 67, 6, false).1,
        check_forward_on(gpu, &empty, 0, 7, false).1,
        check_forward_on(gpu, wide, 5, 8, true).1,
    ]
}

#[test]
fn every_gather_variant_matches_the_reference_and_order_keeping_ones_give_the_default_bits() {
    let wide = wide_problem();
    let default = gather_cases(&forced(Family::Gather, "default"), &wide);
    for v in &GATHER_VARIANTS[1..] {
        let got = gather_cases(&forced(Family::Gather, v.name), &wide);
        if !v.name.starts_with("wide-workgroup") {
            for (case, (g, d)) in got.iter().zip(&default).enumerate() {
                assert_eq!(
                    bits(g),
                    bits(d),
                    "{} case {case}: the default's order",
                    v.name
                );
            }
        }
    }
}

/// One table of `width` floats (and one of 4), a sum feature over each.
fn gather_of_width(gpu: &Gpu, width: u32) -> TbeForward {
    let tables = [
        TableSpec { rows: 50, width },
        TableSpec { rows: 7, width: 4 },
    ];
    let storage = EmbeddingStorage::new(gpu, &tables, ADAGRAD, None).expect("storage");
    let specs = [(0, Pooling::Sum, vec![]), (1, Pooling::Sum, vec![])];
    let fs = FeatureSet::concatenated(&storage.layout, &specs, 4, 8).expect("features");
    TbeForward::new(gpu, &storage, fs, 64).expect("forward")
}

#[test]
fn wide_row_gathers_take_rows_of_64_floats_up_and_leave_narrower_ones_to_the_default() {
    let gpu = forced(Family::Gather, "wide-workgroup");
    assert_eq!(gather_of_width(&gpu, 64).variant(), "wide-workgroup");
    assert_eq!(gather_of_width(&gpu, 256).variant(), "wide-workgroup");
    assert_eq!(gather_of_width(&gpu, 60).variant(), "default");
    // 1024 floats: 256 lanes do not fit a workgroup of 64.
    assert_eq!(gather_of_width(&gpu, 1024).variant(), "default");
    let gpu = forced(Family::Gather, "wide-workgroup-256");
    assert_eq!(gather_of_width(&gpu, 1024).variant(), "wide-workgroup-256");
    let gpu = forced(Family::Gather, "per-bag-8");
    assert_eq!(gather_of_width(&gpu, 16).variant(), "per-bag-8");
}

/// The f16 gather of `problem` on `gpu` against the reference over the weights as stored.
fn check_f16_gather(gpu: &Gpu, problem: &Problem, batch: u32, seed: u64) {
    let mut rng = Rng::new(seed);
    let storage = EmbeddingStorage::with_element(gpu, &problem.tables, ADAGRAD, Element::F16, None)
        .expect("storage");
    let mut tables = vec![];
    for (t, w) in reference::random_tables(&problem.tables, &mut rng)
        .iter()
        .enumerate()
    {
        storage.write_weights(gpu, t, w).expect("write");
        tables.push(storage.read_weights(gpu, t).expect("read"));
    }
    let lookups = (problem.max_batch * problem.max_bag).max(1);
    let fs = FeatureSet::concatenated(
        &storage.layout,
        &problem.features,
        problem.max_batch,
        lookups,
    )
    .expect("features");
    let mut forward =
        TbeForward::new(gpu, &storage, fs.clone(), problem.max_lookups()).expect("forward");
    let bags = problem.bags(&storage.layout, batch, &mut rng);
    forward.upload(gpu, &storage, &bags).expect("upload");
    poison(gpu, forward.output());
    run_once(gpu, |pass| forward.record(gpu, pass));
    let got: Vec<f32> = gpu.read_all(forward.output()).expect("read");
    for (&i, &(value, magnitude)) in &reference::forward(&fs, &tables, &bags) {
        GATHER.check("f16 gather out", i, got[i], value, magnitude);
    }
}

#[test]
fn every_gather_variant_matches_the_reference_over_f16_rows() {
    for v in GATHER_VARIANTS {
        let gpu = forced(Family::Gather, v.name);
        check_f16_gather(&gpu, &mixed_problem(Ids::Zipf(1.1), true), 41, 21);
    }
}

/// The update cases of every optimizer on a device; returns the raw tables of each.
fn update_cases(gpu: &Gpu) -> Vec<Vec<Vec<f32>>> {
    let p = update_problem(Ids::Hot, true);
    let decay = Decay::uniform(p.tables.len());
    let wide = wide_problem();
    let wide_decay = Decay::uniform(wide.tables.len());
    let zipf = update_problem(Ids::Zipf(1.2), false);
    vec![
        check_update_on(gpu, &p, ADAGRAD, &decay, 6, 15, true),
        check_update_on(gpu, &zipf, ADAGRAD, &decay, 4, 16, false),
        check_update_on(gpu, &p, ADAM, &decay, 3, 17, false),
        check_update_on(gpu, &p, SGD, &decay, 3, 18, true),
        check_update_on(gpu, &wide, ADAGRAD, &wide_decay, 3, 19, false),
    ]
}

#[test]
fn every_update_variant_matches_the_reference_and_lanes_gives_the_default_bits() {
    let gpu = Gpu::new().expect("gpu");
    let default = update_cases(&gpu);
    for v in &UPDATE_VARIANTS[1..] {
        if v.subgroups && !gpu.has_subgroups() {
            continue; // forcing it is an error on such a device (gpu::variants)
        }
        let got = update_cases(&forced(Family::Update, v.name));
        if v.name == "lanes" {
            for (case, (g, d)) in got.iter().zip(&default).enumerate() {
                for (t, (g, d)) in g.iter().zip(d).enumerate() {
                    assert_eq!(bits(g), bits(d), "lanes case {case} table {t}");
                }
            }
        }
    }
}

#[test]
fn the_subgroup_update_is_deterministic_and_leaves_f16_storage_to_the_default() {
    let gpu = Gpu::new().expect("gpu");
    if !gpu.has_subgroups() {
        return; // nothing to check: the variant cannot be forced on this adapter
    }
    let sub = forced(Family::Update, "subgroup");
    let p = update_problem(Ids::Zipf(1.05), true);
    let decay = Decay::uniform(p.tables.len());
    let a = check_update_on(&sub, &p, ADAGRAD, &decay, 3, 31, false);
    let b = check_update_on(&sub, &p, ADAGRAD, &decay, 3, 31, false);
    assert_eq!(
        a.iter().map(|t| bits(t)).collect::<Vec<_>>(),
        b.iter().map(|t| bits(t)).collect::<Vec<_>>()
    );
    let tables = [TableSpec { rows: 5, width: 8 }];
    for (element, want) in [(Element::F32, "subgroup"), (Element::F16, "default")] {
        let storage =
            EmbeddingStorage::with_element(&sub, &tables, ADAGRAD, element, None).expect("storage");
        let specs = [(0, Pooling::Sum, vec![])];
        let fs = FeatureSet::concatenated(&storage.layout, &specs, 2, 4).expect("features");
        let forward = TbeForward::new(&sub, &storage, fs.clone(), 8).expect("forward");
        let grad = sub.buffer("grad", fs.out_len * 4, wgrec::gpu::storage_usage());
        let update = wgrec::kernels::embedding::TbeUpdate::new(&sub, &storage, &forward, &grad, 8)
            .expect("update");
        assert_eq!(update.variant(), want, "{element:?}");
    }
}

#[test]
fn adagrad_on_the_subgroup_variant_is_not_sgd_in_disguise() {
    // A check that the statistic is used: Adagrad and SGD must differ on the same inputs.
    let gpu = Gpu::new().expect("gpu");
    if !gpu.has_subgroups() {
        return;
    }
    let sub = forced(Family::Update, "subgroup");
    let p = update_problem(Ids::Uniform, false);
    let decay = Decay::uniform(p.tables.len());
    let a = check_update_on(&sub, &p, ADAGRAD, &decay, 2, 41, false);
    let s = check_update_on(&sub, &p, SGD, &decay, 2, 41, false);
    assert_ne!(bits(&a[2]), bits(&s[2]));
}
