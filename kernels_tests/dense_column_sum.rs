//! Every column-sum variant (`Family::ColumnSum`: the default and the subgroup reductions), forced on
//! a device of the test's own, against the f64 reference of `dense_gemm`: awkward sizes (rows and
//! columns not multiples of 8 or 32, more rows than a workgroup has invocations), single-row and empty
//! batches, the gates, accumulation, and the same bits on a second run.

use wgrec::gpu::{Family, Gpu};
use wgrec::kernels::dense::column_sum::{ColumnSum, VARIANTS};
use wgrec::kernels::dense::gemm::GateKind;
use wgrec::kernels::run_once;
use wgrec::rng::Rng;

use crate::common::{download, poison, private_gpu, random_f32, upload, Tolerance};
use crate::dense_gemm::column_sum_reference;

const TABLES: u32 = 3;
const ROWS_CAP: u32 = 1001;
const COLS: u32 = 45;
const LD: u32 = 50;

/// The bound of a sum whose longest chain of additions is `depth`: each adds one rounding of at most
/// ε = 2⁻²⁴ relative to the sum of the magnitudes below it, so error ≤ depth · ε · Σ|terms|; doubled.
fn tolerance(depth: u32) -> Tolerance {
    Tolerance {
        relative: depth as f64 * f32::EPSILON as f64, // 2 · depth · 2⁻²⁴
        absolute: 1e-7,
    }
}

/// Longest addition chain of the variant: the default adds the rows one by one; a subgroup variant
/// has each lane add ⌈rows / WG⌉ rows, a butterfly of log2(subgroup) ≤ 7 levels, then at most WG / 4
/// subgroup sums; one more for accumulation.
fn depth(wg: Option<u32>, rows: u32) -> u32 {
    match wg {
        None => rows + 1,
        Some(wg) => rows.div_ceil(wg) + 7 + wg / 4 + 1,
    }
}

struct Case {
    rows: u32,
    gate: Option<GateKind>,
    accumulate: bool,
}

/// Runs one column sum on `gpu` (with whatever variant it is forced to) and returns its output.
fn run(gpu: &Gpu, case: &Case, x: &[f32], g: &[f32], init: &[f32]) -> (Vec<f32>, &'static str) {
    let stride = (ROWS_CAP * LD + 7) as u64;
    let (xb, gb) = (upload(gpu, "x", x), upload(gpu, "gate", g));
    let out = upload(gpu, "out", init);
    if !case.accumulate {
        poison(gpu, &out);
    }
    let op = ColumnSum::new(
        gpu,
        TABLES,
        ROWS_CAP,
        COLS,
        LD,
        stride,
        case.accumulate,
        case.gate,
        &xb,
        case.gate.map(|_| &gb),
        &out,
    )
    .expect("column_sum");
    op.set_rows(gpu, case.rows).expect("rows");
    run_once(gpu, |pass| op.record(gpu, pass));
    gpu.sync().expect("gpu");
    (download(gpu, &out, init.len()), op.entry())
}

#[test]
fn every_variant_matches_the_reference_on_awkward_single_and_empty_batches() {
    let gpu = private_gpu();
    let stride = (ROWS_CAP * LD + 7) as usize;
    let n = (TABLES as usize - 1) * stride + (ROWS_CAP as usize - 1) * LD as usize + COLS as usize;
    let mut rng = Rng::new(801);
    let x = random_f32(&mut rng, n);
    let g = random_f32(&mut rng, n);
    let init = random_f32(&mut rng, (TABLES * COLS) as usize);
    let cases = [
        (1001, None, false),
        (1000, Some(GateKind::ReluMask), true),
        (37, Some(GateKind::Product), false),
        (1, None, true),
        (0, None, false),
        (0, Some(GateKind::Product), true),
    ]
    .map(|(rows, gate, accumulate)| Case {
        rows,
        gate,
        accumulate,
    });
    let mut subgroup_runs = 0;
    for variant in VARIANTS {
        if variant.subgroups && !gpu.has_subgroups() {
            continue;
        }
        gpu.force_variant(Family::ColumnSum, Some(variant.name))
            .expect("force");
        for case in &cases {
            let (got, entry) = run(&gpu, case, &x, &g, &init);
            let wg = (entry == "column_sum_subgroup").then(|| {
                let wg = variant.constants.iter().find(|(n, _)| *n == "WG");
                wg.expect("a subgroup variant sets WG").1 as u32
            });
            subgroup_runs += wg.is_some() as u32;
            assert_eq!(
                wg.is_some(),
                variant.subgroups && wg_suits(&gpu, variant.constants),
                "{} ran {entry}",
                variant.name
            );
            let want = column_sum_reference(
                TABLES as usize,
                case.rows as usize,
                COLS as usize,
                LD as usize,
                stride,
                &x,
                case.gate.map(|k| (k, g.as_slice())),
            );
            let tol = tolerance(depth(wg, case.rows));
            let what = format!("{} rows {} {:?}", variant.name, case.rows, case.gate);
            for (i, &(v, mag)) in want.iter().enumerate() {
                let base = if case.accumulate { init[i] as f64 } else { 0.0 };
                tol.check(&what, i, got[i], v + base, mag + base.abs());
            }
            let (again, _) = run(&gpu, case, &x, &g, &init);
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&again), "{what}: not deterministic");
        }
    }
    // lavapipe has subgroups of 8 (or 4, 16): every subgroup variant suits it, so a device that has
    // the feature must have run them (or this test would check the default only)
    if gpu.has_subgroups() {
        assert!(subgroup_runs > 0, "no subgroup variant ran");
    }
}

/// The launcher's rule: WG a multiple of the adapter's largest subgroup size.
fn wg_suits(gpu: &Gpu, constants: &[(&str, f64)]) -> bool {
    let largest = gpu.info().subgroup_max_size.max(1);
    constants
        .iter()
        .any(|&(n, v)| n == "WG" && (v as u32).is_multiple_of(largest))
}

#[test]
fn forcing_a_subgroup_variant_without_the_feature_is_refused_or_runs() {
    let gpu = private_gpu();
    let forced = gpu.force_variant(Family::ColumnSum, Some("subgroup-128"));
    assert_eq!(forced.is_ok(), gpu.has_subgroups(), "{forced:?}");
    assert!(gpu
        .force_variant(Family::ColumnSum, Some("subgroup-7"))
        .is_err());
}
