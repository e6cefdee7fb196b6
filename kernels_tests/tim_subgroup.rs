//! TIM's `subgroup` variant (its reductions as subgroup butterflies, `prelude/tim_reduce_subgroup`),
//! forced on a device of the test's own, against the same f64 reference as the default: lengths 0,
//! 1, 7, 50, 1000 and random ones (not multiples of 8 or 32) in one batch, widths 8 to 256, one and
//! three sets, chunked storage with optimizer state; the same bits on a second run; over f16 tables
//! (the `TIM_SUBGROUP_F16` registration) the same bits as over f32 tables holding their values.

use half::f16;
use wgrec::gpu::{storage_usage, Family, Gpu};
use wgrec::kernels::embedding::{Element, EmbeddingStorage, SparseOptimizer, TableSpec};
use wgrec::kernels::run_once;
use wgrec::kernels::tim::{Tim, TimBatch, TimSet, TimSpec, TIM_WG};
use wgrec::rng::Rng;

use crate::common::{poison, private_gpu, random_f32};
use crate::tim_reference::Case;

/// A device of this test's own with TIM forced to `subgroup` (never the shared device: other tests
/// run on it at the same time), or `None` where the adapter has no subgroups (forcing is refused).
fn subgroup_gpu() -> Option<&'static Gpu> {
    let gpu: &'static Gpu = Box::leak(Box::new(private_gpu()));
    let forced = gpu.force_variant(Family::Tim, Some("subgroup"));
    assert_eq!(forced.is_ok(), gpu.has_subgroups(), "{forced:?}");
    forced.ok().map(|_| gpu)
}

#[test]
fn subgroup_variant_matches_reference_for_lengths_widths_sets_and_chunks() {
    let Some(gpu) = subgroup_gpu() else {
        return;
    };
    let mut rng = Rng::new(143);
    let adagrad = SparseOptimizer::RowwiseAdagrad { eps: 1e-8 };
    for (d, sets, small, opt, lengths) in [
        (
            8,
            1,
            false,
            SparseOptimizer::Sgd,
            vec![50, 0, 1000, 1, 7, 13],
        ),
        (64, 3, false, SparseOptimizer::Sgd, vec![1000, 1, 0, 33]),
        (16, 2, true, adagrad, vec![3, 300, 0, 65, 64]),
        (256, 1, false, adagrad, vec![1, 999]),
    ] {
        let max_len = *lengths.iter().max().expect("lengths");
        let shape = (lengths.len() as u32, max_len);
        let mut case = Case::on(gpu, d, sets, shape, 300 + d as u64, small, opt);
        // where the subgroups divide TIM_WG (lavapipe: 8 lanes) the variant must be in effect
        let suits = TIM_WG.is_multiple_of(gpu.info().subgroup_max_size.max(1));
        let want = if suits { "subgroup" } else { "default" };
        assert_eq!(case.tim.variant(), want, "D {d}");
        let batch = case.random_batch(&lengths, &mut rng);
        let (bags, g, u, rows) = case.run(&batch, &mut rng);
        case.check(&bags, &g, &u, &rows);
        let (u2, rows2) = case.forward_backward();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&u), bits(&u2), "D {d}: u not deterministic");
        assert_eq!(
            bits(&rows),
            bits(&rows2),
            "D {d}: gradients not deterministic"
        );
    }
}

/// u and gradient rows of the subgroup TIM over `element` tables holding `tables` (f16-exact values).
fn run_over(gpu: &Gpu, element: Element, tables: &[Vec<f32>], batch: &TimBatch) -> Vec<Vec<u32>> {
    let (d, sets, max_batch) = (12u32, 2usize, batch.lengths.len() as u32);
    let specs: Vec<TableSpec> = (0..sets)
        .flat_map(|_| [37, 11, 16].map(|r| TableSpec::whole(r, d)))
        .collect();
    let spec = TimSpec {
        sets: (0..sets)
            .map(|m| TimSet {
                semantic: vec![3 * m, 3 * m + 1],
                temporal: Some(3 * m + 2),
            })
            .collect(),
        max_batch,
        max_len: 40,
    };
    let opt = SparseOptimizer::RowwiseAdagrad { eps: 1e-8 };
    let storage = EmbeddingStorage::with_element(gpu, &specs, opt, element, None).expect("storage");
    for (t, w) in tables.iter().enumerate() {
        storage.write_weights(gpu, t, w).expect("write");
    }
    let n = sets as u64 * max_batch as u64 * d as u64 * 4;
    let u = gpu.buffer("u", n, storage_usage());
    let grad_u = gpu.storage_from("grad_u", &random_f32(&mut Rng::new(7), (n / 4) as usize));
    let mut tim = Tim::new(gpu, &storage, spec, &u, &grad_u).expect("tim");
    let suits = TIM_WG.is_multiple_of(gpu.info().subgroup_max_size.max(1));
    assert_eq!(tim.variant() == "subgroup", suits, "{element:?}");
    tim.upload(gpu, &storage, batch).expect("upload");
    poison(gpu, &u);
    poison(gpu, tim.row_grads());
    run_once(gpu, |pass| {
        tim.record_forward(gpu, pass);
        tim.record_backward(gpu, pass);
    });
    gpu.sync().expect("gpu");
    let u: Vec<u32> = gpu.read_all(&u).expect("u");
    let rows: Vec<u32> = gpu.read_all(tim.row_grads()).expect("rows");
    assert!(
        u.iter().all(|&x| f32::from_bits(x).is_finite()),
        "u written"
    );
    vec![u, rows]
}

#[test]
fn subgroup_variant_over_f16_tables_is_the_variant_over_their_values() {
    let Some(gpu) = subgroup_gpu() else {
        return;
    };
    let mut rng = Rng::new(144);
    let lengths = vec![3u32, 40, 0, 17, 1];
    let total: u32 = lengths.iter().sum();
    let rows = [37u32, 11];
    let ids = |n: u32, rng: &mut Rng| -> Vec<u32> {
        (0..2 * n)
            .map(|i| rng.below(rows[(i % 2) as usize] as u64) as u32)
            .collect()
    };
    let batch = TimBatch {
        target: ids(lengths.len() as u32, &mut rng),
        behaviours: ids(total, &mut rng),
        buckets: (0..total).map(|_| 1 + rng.below(15) as u32).collect(),
        lengths,
    };
    let tables: Vec<Vec<f32>> = (0..2)
        .flat_map(|_| [37usize, 11, 16])
        .map(|r| random_f32(&mut rng, r * 12))
        .map(|w| w.iter().map(|&x| f16::from_f32(x).to_f32()).collect())
        .collect();
    let f16_out = run_over(gpu, Element::F16, &tables, &batch);
    let f32_out = run_over(gpu, Element::F32, &tables, &batch);
    assert_eq!(f16_out, f32_out, "u and gradient rows");
}
