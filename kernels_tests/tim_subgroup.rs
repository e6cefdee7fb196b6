//! TIM's `subgroup` variant (its reductions as subgroup butterflies, `prelude/tim_reduce_subgroup`),
//! forced on a device of the test's own, against the same f64 reference as the default: lengths 0,
//! 1, 7, 50, 1000 and random ones (not multiples of 8 or 32) in one batch, widths 8 to 256, one and
//! three sets, chunked storage with optimizer state; the same bits on a second run.

use wgrec::gpu::{Family, Gpu};
use wgrec::kernels::embedding::SparseOptimizer;
use wgrec::kernels::tim::TIM_WG;
use wgrec::rng::Rng;

use crate::common::private_gpu;
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
