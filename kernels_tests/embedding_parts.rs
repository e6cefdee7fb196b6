//! Tables split by rows over several storages (issue 19's storage groups): each storage holds a
//! part (rows `first..first + n`) and its gather routes every id — a plain id's row, each MNS
//! digit row on its own — to the part that holds it. Gathering every storage into one output
//! (the first writes, the later ones add) matches the f64 reference of the whole tables for
//! sum, mean and none pooling; each storage's update plan holds only its own rows, and the update
//! moves exactly the rows of each part the reference moves.

use std::ops::Range;

use wgrec::kernels::embedding::{
    Bags, DecayMode, EmbeddingStorage, FeatureSet, MnsBase, Pooling, SparseStep, SparseUpdatePlan,
    StorageLayout, TableSpec, TbeForward, TbeUpdate,
};
use wgrec::kernels::run_once;
use wgrec::rng::Rng;

use crate::common::{gpu, poison, Tolerance};
use crate::embedding_reference::{self as reference, Ids, Problem, RefTable};
use crate::embedding_update::ADAGRAD;

/// f32 sums of at most a few dozen O(1) terms against f64 (the magnitude is Σ|terms|).
const GATHER: Tolerance = Tolerance {
    relative: 1e-5,
    absolute: 1e-6,
};

/// Three steps of row-wise Adagrad in f32: a few ulps per step, amplified by 1/√acc.
const UPDATE: Tolerance = Tolerance {
    relative: 2e-5,
    absolute: 2e-5,
};

/// Each table's parts, one per storage: rows `PARTS[t][k]` of table `t` in storage `k`.
const PARTS: [[Range<u32>; 3]; 2] = [[0..10, 10..25, 25..37], [0..6, 6..12, 12..17]];

fn mns() -> Vec<MnsBase> {
    vec![
        MnsBase {
            radix: 2,
            digits: 4,
        },
        MnsBase {
            radix: 3,
            digits: 3,
        },
    ]
}

/// Whole tables: 37 × 8 plain, 17 × 4 MNS digit rows (8 base-2 rows, then 9 base-3 rows, so a
/// value's digits land in different parts). Features: sum, mean, none over the plain table, sum
/// over the MNS table.
fn problem() -> Problem {
    Problem {
        tables: vec![TableSpec::whole(37, 8), TableSpec::whole(17, 4)],
        features: vec![
            (0, Pooling::Sum, vec![]),
            (0, Pooling::Mean, vec![]),
            (0, Pooling::None, vec![]),
            (1, Pooling::Sum, mns()),
        ],
        max_batch: 16,
        max_bag: 4,
        weighted: true,
        ids: Ids::Uniform,
    }
}

/// One storage's share: a 3-row filler table first (so parts do not start at address 0), then
/// part `k` of each table; chunks of 256 bytes (16 vec4s) so rows straddle chunks.
struct Share {
    storage: EmbeddingStorage,
    features: FeatureSet,
}

fn share(k: usize, p: &Problem, whole: &[Vec<f32>], accumulate: bool) -> Share {
    let g = gpu();
    let mut specs = vec![TableSpec::whole(3, 4)];
    specs.extend((0..2).map(|t| TableSpec::whole(PARTS[t][k].len() as u32, p.tables[t].width)));
    let mut storage = EmbeddingStorage::new(g, &specs, ADAGRAD, Some(256)).expect("storage");
    assert!(storage.layout.chunks() > 1, "rows straddle chunks");
    for t in 0..2 {
        let rows = &PARTS[t][k];
        storage
            .layout
            .set_part(t + 1, rows.start, p.tables[t].rows)
            .expect("part");
        let w = p.tables[t].width as usize;
        let part = &whole[t][rows.start as usize * w..rows.end as usize * w];
        storage.write_weights(g, t + 1, part).expect("weights");
    }
    let local: Vec<_> = (p.features.iter())
        .map(|(t, pool, m)| (t + 1, *pool, m.clone()))
        .collect();
    let lookups = (p.max_batch * p.max_bag).max(1);
    let features =
        FeatureSet::concatenated(&storage.layout, &local, p.max_batch, lookups).expect("features");
    let all: Vec<usize> = (0..local.len()).collect();
    let features = if accumulate {
        features.accumulate(&all).expect("accumulate")
    } else {
        features
    };
    Share { storage, features }
}

/// The whole-table feature set the reference reads.
fn whole_features(p: &Problem) -> FeatureSet {
    let layout = StorageLayout::new(&p.tables, ADAGRAD, 1 << 20).expect("layout");
    let lookups = (p.max_batch * p.max_bag).max(1);
    FeatureSet::concatenated(&layout, &p.features, p.max_batch, lookups).expect("features")
}

/// Bags whose plain ids reach every part and whose MNS values have digits in several parts.
fn bags(p: &Problem, rng: &mut Rng) -> Bags {
    let layout = StorageLayout::new(&p.tables, ADAGRAD, 1 << 20).expect("layout");
    let bags = p.bags(&layout, p.max_batch, rng);
    let plain: Vec<u32> = (0..3)
        .flat_map(|f| bags.feature_lookups(f))
        .map(|l| bags.indices[l])
        .collect();
    for part in &PARTS[0] {
        assert!(
            plain.iter().any(|v| part.contains(v)),
            "an id in rows {part:?}"
        );
    }
    let spans = bags.feature_lookups(3).any(|l| {
        let rows: Vec<u32> = MnsBase::digit_rows(&mns(), bags.indices[l]).collect();
        let part_of = |r: &u32| PARTS[1].iter().position(|p| p.contains(r));
        rows.iter().any(|r| part_of(r) != part_of(&rows[0]))
    });
    assert!(spans, "an MNS value whose digit rows sit in two parts");
    bags
}

#[test]
fn gather_over_three_parts_matches_the_whole_tables_reference_with_every_pooling() {
    let g = gpu();
    let p = problem();
    let mut rng = Rng::new(31);
    let whole = reference::random_tables(&p.tables, &mut rng);
    let mut shares: Vec<Share> = (0..3).map(|k| share(k, &p, &whole, k > 0)).collect();
    let e = shares[1].storage.layout.set_part(1, 30, 37);
    assert!(e.is_err(), "a 15-row part cannot start at row 30 of 37");
    let out_len = shares[0].features.out_len;
    let out = g.buffer("parts out", out_len * 4, wgrec::gpu::storage_usage());
    poison(g, &out);
    let bags = bags(&p, &mut rng);
    let mut gathers: Vec<TbeForward> = (shares.iter())
        .map(|s| {
            TbeForward::with_output(
                g,
                &s.storage,
                s.features.clone(),
                p.max_lookups(),
                out.clone(),
            )
            .expect("gather")
        })
        .collect();
    for (gather, s) in gathers.iter_mut().zip(&shares) {
        gather.upload(g, &s.storage, &bags).expect("upload");
    }
    run_once(g, |pass| gathers.iter().for_each(|x| x.record(g, pass)));
    let got: Vec<f32> = g.read_all(&out).expect("read");
    let want = reference::forward(&whole_features(&p), &whole, &bags);
    assert!(!want.is_empty());
    for (&at, &(value, magnitude)) in &want {
        GATHER.check("split gather", at, got[at], value, magnitude);
    }
}

#[test]
fn update_plans_hold_only_their_parts_rows_and_move_exactly_the_references_rows() {
    let g = gpu();
    let p = problem();
    let mut rng = Rng::new(32);
    let whole = reference::random_tables(&p.tables, &mut rng);
    let shares: Vec<Share> = (0..3).map(|k| share(k, &p, &whole, k > 0)).collect();
    let fs = whole_features(&p);
    let out = g.buffer("parts out", fs.out_len * 4, wgrec::gpu::storage_usage());
    let grad_buffer = g.buffer("grad", fs.out_len * 4, wgrec::gpu::storage_usage());
    let mut want: Vec<RefTable> = (whole.iter().zip(&p.tables))
        .map(|(w, t)| RefTable::new(w, t.width as usize, ADAGRAD))
        .collect();
    let mut kernels: Vec<(TbeForward, TbeUpdate)> = (shares.iter())
        .map(|s| {
            let f = TbeForward::with_output(
                g,
                &s.storage,
                s.features.clone(),
                p.max_lookups(),
                out.clone(),
            )
            .expect("gather");
            let mut u =
                TbeUpdate::new(g, &s.storage, &f, &grad_buffer, p.max_touches()).expect("update");
            u.set_table_decay(&[None; 3], DecayMode::Frequency)
                .expect("decay");
            (f, u)
        })
        .collect();
    for step in 1..=3u64 {
        let bags = bags(&p, &mut rng);
        let grad: Vec<f32> = (0..fs.out_len).map(|_| rng.uniform(-1.0, 1.0)).collect();
        g.queue
            .write_buffer(&grad_buffer, 0, bytemuck::cast_slice(&grad));
        let hyper = SparseStep {
            lr: 0.05,
            weight_decay: 0.01,
            step,
        };
        let mut touched = Vec::new();
        for (k, ((f, u), s)) in kernels.iter_mut().zip(&shares).enumerate() {
            f.upload(g, &s.storage, &bags).expect("upload");
            let plan = SparseUpdatePlan::build(&s.features, &bags);
            for &(t, r) in &plan.rows {
                assert!(t >= 1, "the filler table is never touched");
                let part = &PARTS[t as usize - 1][k];
                assert!(r < part.len() as u32, "local row {r} of part {part:?}");
                touched.push((t as usize - 1, part.start + r));
            }
            u.upload(g, f, &plan, hyper).expect("plan");
        }
        run_once(g, |pass| {
            kernels.iter().for_each(|(_, u)| u.record(g, pass))
        });
        let grads = reference::row_gradients(&fs, &bags, &grad);
        touched.sort_unstable();
        let keys: Vec<(usize, u32)> = grads.keys().copied().collect();
        assert_eq!(
            touched, keys,
            "the parts' plans touch exactly the reference's rows"
        );
        let wd = reference::row_decay(&fs, &bags, &[0.01, 0.01], true);
        reference::apply_update(&mut want, &grads, ADAGRAD, 0.05, &wd, step as i32);
    }
    g.sync().expect("gpu");
    for (k, s) in shares.iter().enumerate() {
        let filler = s.storage.read_weights(g, 0).expect("filler");
        assert!(
            filler.iter().all(|&x| x == 0.0),
            "the filler table keeps its zeros"
        );
        for t in 0..2 {
            let raw = s.storage.read_raw(g, t + 1).expect("read");
            let (w, stride) = (want[t].width, s.storage.layout.raw_stride(t + 1));
            for (i, row) in raw.chunks(stride).enumerate() {
                let r = PARTS[t][k].start as usize + i;
                for d in 0..w {
                    let x = want[t].w[r * w + d];
                    UPDATE.check(
                        &format!("table {t} part {k} row {r}"),
                        d,
                        row[d],
                        x,
                        x.abs(),
                    );
                }
                let acc = want[t].state[r];
                UPDATE.check(
                    &format!("table {t} part {k} row {r} state"),
                    0,
                    row[w],
                    acc,
                    acc,
                );
            }
        }
    }
}
