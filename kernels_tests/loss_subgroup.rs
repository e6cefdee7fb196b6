//! The loss's `subgroup` variant (its workgroup reductions as subgroup butterflies,
//! `prelude/loss_tree_subgroup`), forced on a device of the test's own, against the same f64
//! reference and tolerance as the default: three heads (BCE, pair, list), weighted, on batches of 0,
//! 1, 2, 37, 1000 and 4097 rows (not multiples of 8 or 32; more rows than the 256 threads); one head
//! of each ranking loss unweighted; the same bits on a second run.

use wgrec::gpu::Family;
use wgrec::kernels::loss::{LossKind, LOSS_REDUCE_WG};

use crate::common::private_gpu;
use crate::loss::{check_on, random_problem, run_loss_on, LIST, PAIR};

#[test]
fn subgroup_variant_matches_reference_on_awkward_single_row_and_empty_batches() {
    let gpu = private_gpu();
    let forced = gpu.force_variant(Family::Loss, Some("subgroup"));
    assert_eq!(forced.is_ok(), gpu.has_subgroups(), "{forced:?}");
    if forced.is_err() {
        return;
    }
    // where the subgroups divide the 256 threads (every device: subgroups ≤ 128) it must be in effect
    let suits = LOSS_REDUCE_WG.is_multiple_of(gpu.info().subgroup_max_size.max(1));
    let want = if suits { "subgroup" } else { "default" };
    for (c, rows) in [0usize, 1, 2, 37, 1000, 4097].into_iter().enumerate() {
        let seed = 900 + 10 * c as u64;
        let p = random_problem(
            vec![LossKind::Bce, PAIR, LIST],
            rows + c + 1,
            rows,
            &[0.3, 0.5, 0.05],
            true,
            seed,
        );
        let out = check_on(&gpu, &p, "subgroup 3 tasks weighted");
        assert_eq!(out.variant, want);
        let again = run_loss_on(&gpu, &p);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&out.loss), bits(&again.loss), "rows {rows}: loss");
        assert_eq!(bits(&out.dz), bits(&again.dz), "rows {rows}: dz");
        assert_eq!(bits(&out.stats), bits(&again.stats), "rows {rows}: stats");
        for (k, kind) in [PAIR, LIST].into_iter().enumerate() {
            let p = random_problem(
                vec![kind],
                rows.max(1),
                rows,
                &[0.2],
                false,
                seed + 1 + k as u64,
            );
            check_on(&gpu, &p, "subgroup 1 task");
        }
    }
}
