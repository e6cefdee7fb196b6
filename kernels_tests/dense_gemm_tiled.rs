//! The GEMM's variants other than the default (issue 20: the workgroup-memory tiled `tiled-*` of
//! `gemm_tiled.wgsl`, the wide register tiles `vec4-8x4`, `vec4-8x8` of `gemm_wide.wgsl`), each
//! forced on its own device, against the same f64 reference as the default
//! (`dense_gemm::run_checked`: NaN-poisoned C, NaN in every padding gap, untouched elements outside
//! the result) and bit for bit against the default kernel on the shared device: every variant
//! accumulates each output in the default's order, so their bits must agree (not only within the
//! tolerance). Shapes are awkward for every tile (m, n, k not multiples of 8, 32, 64 or BK = 16; k
//! below BK), with every transposition, gates, accumulation, bias and epilogues, several tables and
//! shared operands, dims below capacity and empty dims.
use std::sync::OnceLock;

use wgrec::gpu::Family;
use wgrec::kernels::dense::gemm::{Epilogue, Gate, GateKind, GemmSpec, Operand, VARIANTS};
use wgrec::Gpu;

use crate::common::gpu;
use crate::dense_gemm::{padded, run_checked};

/// The variants under test: every GEMM variant but the default.
fn tiled() -> impl Iterator<Item = &'static str> {
    VARIANTS.iter().filter(|v| !v.is_default()).map(|v| v.name)
}

/// A device of its own with `name` forced for the GEMM (never the shared device: other tests run
/// on it at the same time), one per variant for the whole binary.
fn forced(name: &'static str) -> &'static Gpu {
    static DEVICES: OnceLock<Vec<(&'static str, Gpu)>> = OnceLock::new();
    let devices = DEVICES.get_or_init(|| {
        tiled()
            .map(|n| {
                let gpu = Gpu::new().expect("kernel tests need a GPU adapter");
                gpu.force_variant(Family::Gemm, Some(n)).expect("force");
                (n, gpu)
            })
            .collect()
    });
    &devices.iter().find(|(n, _)| *n == name).expect("variant").1
}

/// Runs `s` at `dims` with every tiled variant (checked against the reference) and with the
/// default (checked too), and asserts the tiled runs took their variant and match the default's
/// bits.
fn check_all(s: &GemmSpec, dims: (u32, u32, u32), seed: u64) {
    let default = run_checked(gpu(), s, dims, seed);
    assert_eq!(default.variant, "default");
    for name in tiled() {
        let run = run_checked(forced(name), s, dims, seed);
        assert_eq!(run.variant, name, "{s:?} should run {name}");
        let differ = (0..run.c.len())
            .filter(|&i| run.c[i].to_bits() != default.c[i].to_bits())
            .count();
        assert_eq!(
            differ, 0,
            "{name}: {differ} elements of C differ in bits from the default at {dims:?}, {s:?}"
        );
    }
}

#[test]
fn tiled_gemm_matches_the_reference_and_the_default_for_every_transposition() {
    let mut seed = 2000;
    for (trans_a, trans_b) in [(false, false), (false, true), (true, false), (true, true)] {
        for (m, n, k) in [(37, 53, 29), (1, 1, 1), (70, 9, 5), (9, 130, 47)] {
            let s = padded(GemmSpec {
                bias: true,
                epilogue: Epilogue::Relu,
                ..GemmSpec::new(2, m, n, k, trans_a, trans_b)
            });
            check_all(&s, (m, n, k), seed);
            seed += 1;
        }
    }
}

#[test]
fn tiled_gemm_applies_gates_and_accumulates() {
    // Each gate kind on each operand, each with another layout (every pair is one more pipeline
    // per variant: the test stays bounded while every kind, operand and transposition is seen).
    let cases = [
        (Operand::A, GateKind::ReluMask, (false, true)),
        (Operand::A, GateKind::Product, (true, false)),
        (Operand::B, GateKind::ReluMask, (false, false)),
        (Operand::B, GateKind::Product, (true, true)),
    ];
    for (seed, (operand, kind, (trans_a, trans_b))) in (2100..).zip(cases) {
        let s = padded(GemmSpec {
            gate: Some(Gate { operand, kind }),
            accumulate: true,
            ..GemmSpec::new(3, 26, 15, 31, trans_a, trans_b)
        });
        check_all(&s, (26, 15, 31), seed);
    }
}

#[test]
fn tiled_gemm_shares_operands_across_tables_with_bias_and_sigmoid() {
    // One weight and one bias for four tables (stride 0), as a batched linear layer's forward.
    let s = padded(GemmSpec {
        stride_b: 0,
        bias: true,
        stride_bias: 0,
        epilogue: Epilogue::Sigmoid,
        ..GemmSpec::new(4, 67, 36, 40, false, true)
    });
    check_all(&s, (67, 36, 40), 2200);
    // A shared left operand, per-table right operands, k past two BK steps with a tail.
    let s = padded(GemmSpec {
        stride_a: 0,
        ..GemmSpec::new(3, 20, 65, 35, true, false)
    });
    check_all(&s, (20, 65, 35), 2201);
}

#[test]
fn tiled_gemm_runs_below_capacity_and_with_empty_dims() {
    let s = padded(GemmSpec {
        bias: true,
        accumulate: true,
        ..GemmSpec::new(2, 45, 38, 33, true, false)
    });
    check_all(&s, (45, 38, 33), 2300);
    check_all(&s, (30, 17, 16), 2301);
    check_all(&s, (45, 38, 0), 2302);
    check_all(&s, (0, 38, 33), 2303);
    check_all(&s, (45, 0, 33), 2304);
}

#[test]
fn tiled_gemm_falls_back_to_the_default_where_the_layout_is_not_vec4() {
    // ld = 39 is not a multiple of 4: the tiled variants need the vec4 layout, so the default's
    // scalar kernel runs (and still matches the reference).
    let s = GemmSpec::new(2, 21, 39, 39, false, true);
    for name in tiled() {
        let run = run_checked(forced(name), &s, (21, 39, 39), 2400);
        assert!(!run.vectorized);
        assert_eq!(run.variant, "default", "{name} on an unaligned layout");
    }
}
