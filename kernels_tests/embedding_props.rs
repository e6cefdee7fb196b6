//! Property tests over (tables, rows, width, batch, bag length, pooling, weights): the gather and the
//! fused Adagrad update agree with the reference on every drawn configuration.

use proptest::prelude::*;
use wgrec::kernels::embedding::{Pooling, TableSpec};

use crate::embedding_forward::check_forward;
use crate::embedding_reference::{Ids, Problem};
use crate::embedding_update::{check_update, ADAGRAD};

fn problem() -> impl Strategy<Value = (Problem, u32, u64)> {
    let table = (1u32..200, 1u32..=16).prop_map(|(rows, w4)| TableSpec {
        rows,
        width: 4 * w4,
    });
    let pooling = prop_oneof![Just(Pooling::None), Just(Pooling::Sum), Just(Pooling::Mean)];
    (
        prop::collection::vec(table, 1..5),
        prop::collection::vec((any::<prop::sample::Index>(), pooling), 1..6),
        1u32..40,
        0u32..6,
        any::<bool>(),
        prop_oneof![
            Just(Ids::Uniform),
            Just(Ids::Hot),
            (0.5f64..1.5).prop_map(Ids::Zipf)
        ],
        any::<u64>(),
    )
        .prop_map(|(tables, feats, max_batch, max_bag, weighted, ids, seed)| {
            let n = tables.len();
            let features = feats
                .into_iter()
                .map(|(i, p)| (i.index(n), p, vec![]))
                .collect();
            let problem = Problem {
                tables,
                features,
                max_batch,
                max_bag,
                weighted,
                ids,
            };
            (problem, max_batch, seed)
        })
}

proptest! {
    // Each case compiles nothing new (pipelines are cached) but runs on lavapipe: keep the count modest.
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn gather_and_update_match_reference_on_random_configurations((p, batch, seed) in problem()) {
        check_forward(&p, batch, seed, seed % 2 == 0);
        check_update(&p, ADAGRAD, 2, seed, seed % 2 == 1);
    }
}
