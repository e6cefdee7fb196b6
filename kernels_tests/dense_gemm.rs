//! `gemm` and `column_sum` against f64 CPU references: every transposition, bias, epilogue,
//! accumulation, gate, shared and per-table operands, awkward sizes, empty dims, dims below the
//! capacities, validation errors and determinism.

use std::mem::size_of;

use wgrec::kernels::dense::fma::{FmaCeiling, FmaParams};
use wgrec::kernels::dense::gemm::{
    ColumnSum, ColumnSumParams, Epilogue, Gate, GateKind, Gemm, GemmParams, GemmSpec, Operand,
};
use wgrec::kernels::dense::mlp::{MlpSpec, MlpStack};
use wgrec::kernels::run_once;
use wgrec::rng::Rng;
use wgrec::Gpu;

use crate::common::{download, gpu, poison, random_f32, upload, Tolerance};
use crate::registry::{assert_layout, offsets};

/// Sequential f32 accumulation of k products: |error| ≤ γ_k · Σ|terms| with γ_k ≈ k · 6e-8 (plus
/// the bias add, the accumulate add and the activation's rounding: + 4); doubled for margin.
/// Sigmoid's slope is ≤ 1/4, so it does not amplify the error; 1e-6 absolute covers exp's ulps.
fn tolerance(k: u32) -> Tolerance {
    Tolerance {
        relative: 1.2e-7 * (k as f64 + 4.0),
        absolute: 1e-6,
    }
}

/// Inputs of one GEMM run, as uploaded (f32) at the spec's capacities.
pub struct Inputs {
    pub a: Vec<f32>,
    pub b: Vec<f32>,
    pub bias: Vec<f32>,
    pub gate: Vec<f32>,
    pub c: Vec<f32>,
}

fn len(tables: u32, stride: u64, rows: u32, cols: u32, ld: u32) -> usize {
    if rows == 0 || cols == 0 {
        return 0;
    }
    ((tables as u64 - 1) * stride + (rows as u64 - 1) * ld as u64 + cols as u64) as usize
}

fn stored(s: &GemmSpec) -> ((u32, u32), (u32, u32)) {
    let a = if s.trans_a { (s.k, s.m) } else { (s.m, s.k) };
    let b = if s.trans_b { (s.n, s.k) } else { (s.k, s.n) };
    (a, b)
}

/// Seeded values at every element of a table-batched matrix, NaN in the gaps (leading-dimension
/// padding, stride gaps and the round-up to a whole vec4), which no result may depend on.
fn matrix(rng: &mut Rng, tables: u32, stride: u64, rows: u32, cols: u32, ld: u32) -> Vec<f32> {
    let n = len(tables, stride, rows, cols, ld);
    let mut v = vec![f32::NAN; n.next_multiple_of(4)];
    for t in 0..tables as usize {
        for i in 0..rows as usize {
            for j in 0..cols as usize {
                v[t * stride as usize + i * ld as usize + j] = rng.uniform(-1.0, 1.0);
            }
        }
    }
    v
}

pub fn random_inputs(s: &GemmSpec, rng: &mut Rng) -> Inputs {
    let ((ar, ac), (br, bc)) = stored(s);
    let a = matrix(rng, s.tables, s.stride_a, ar, ac, s.lda);
    let b = matrix(rng, s.tables, s.stride_b, br, bc, s.ldb);
    let gate = match s.gate.map(|g| g.operand) {
        Some(Operand::A) => matrix(rng, s.tables, s.stride_a, ar, ac, s.lda),
        Some(Operand::B) => matrix(rng, s.tables, s.stride_b, br, bc, s.ldb),
        None => vec![],
    };
    Inputs {
        bias: random_f32(rng, len(s.tables, s.stride_bias, 1, s.n, s.n)),
        c: random_f32(rng, len(s.tables, s.stride_c, s.m, s.n, s.ldc)),
        a,
        b,
        gate,
    }
}

fn gated(kind: GateKind, x: f64, g: f64) -> f64 {
    match kind {
        GateKind::ReluMask if g > 0.0 => x,
        GateKind::ReluMask => 0.0,
        GateKind::Product => x * g,
    }
}

/// The reference: every C index the run writes, with (value, magnitude) in f64.
pub fn reference(s: &GemmSpec, dims: (u32, u32, u32), x: &Inputs) -> Vec<(usize, f64, f64)> {
    let (m, n, k) = dims;
    let load = |which: Operand, idx: usize| -> f64 {
        let v = match which {
            Operand::A => x.a[idx],
            Operand::B => x.b[idx],
        } as f64;
        match s.gate {
            Some(g) if g.operand == which => gated(g.kind, v, x.gate[idx] as f64),
            _ => v,
        }
    };
    let mut out = Vec::new();
    for t in 0..s.tables as usize {
        for i in 0..m as usize {
            for j in 0..n as usize {
                let (mut sum, mut mag) = (0.0f64, 0.0f64);
                for p in 0..k as usize {
                    let ai = t * s.stride_a as usize
                        + if s.trans_a {
                            p * s.lda as usize + i
                        } else {
                            i * s.lda as usize + p
                        };
                    let bi = t * s.stride_b as usize
                        + if s.trans_b {
                            j * s.ldb as usize + p
                        } else {
                            p * s.ldb as usize + j
                        };
                    let term = load(Operand::A, ai) * load(Operand::B, bi);
                    sum += term;
                    mag += term.abs();
                }
                if s.bias {
                    let bv = x.bias[t * s.stride_bias as usize + j] as f64;
                    sum += bv;
                    mag += bv.abs();
                }
                let mut v = match s.epilogue {
                    Epilogue::Identity => sum,
                    Epilogue::Relu => sum.max(0.0),
                    Epilogue::Sigmoid => 1.0 / (1.0 + (-sum).exp()),
                };
                let ci = t * s.stride_c as usize + i * s.ldc as usize + j;
                if s.accumulate {
                    v += x.c[ci] as f64;
                    mag += (x.c[ci] as f64).abs();
                }
                out.push((ci, v, mag));
            }
        }
    }
    out
}

/// What one checked run produced: C as read back, and which kernel ran.
pub struct Run {
    pub c: Vec<f32>,
    pub vectorized: bool,
    pub variant: &'static str,
}

/// Runs `spec` at `dims` (set with `set_dims` when below the capacities) on `gpu` and checks every
/// written element against the reference and every other element of C against its initial bits.
pub fn run_checked(gpu: &Gpu, s: &GemmSpec, dims: (u32, u32, u32), seed: u64) -> Run {
    let mut rng = Rng::new(seed);
    let x = random_inputs(s, &mut rng);
    let a = upload(gpu, "a", &x.a);
    let b = upload(gpu, "b", &x.b);
    let bias = s.bias.then(|| upload(gpu, "bias", &x.bias));
    let gate = s.gate.map(|_| upload(gpu, "gate", &x.gate));
    let c = upload(gpu, "c", &x.c);
    if !s.accumulate {
        poison(gpu, &c);
    }
    let before: Vec<f32> = download(gpu, &c, x.c.len());
    let gemm = Gemm::new(gpu, s, &a, &b, bias.as_ref(), gate.as_ref(), &c).expect("gemm");
    if dims != (s.m, s.n, s.k) {
        gemm.set_dims(gpu, dims.0, dims.1, dims.2).expect("dims");
    }
    run_once(gpu, |pass| gemm.record(gpu, pass));
    gpu.sync().expect("gpu");
    let got = download(gpu, &c, x.c.len());
    let want = reference(s, dims, &x);
    let tol = tolerance(dims.2);
    let mut written = vec![false; got.len()];
    for &(i, v, mag) in &want {
        tol.check("gemm C", i, got[i], v, mag);
        written[i] = true;
    }
    for i in (0..got.len()).filter(|&i| !written[i]) {
        assert_eq!(
            got[i].to_bits(),
            before[i].to_bits(),
            "gemm C[{i}] outside the {dims:?} result was written"
        );
    }
    Run {
        c: got,
        vectorized: gemm.vectorized(),
        variant: gemm.variant(),
    }
}

/// [`run_checked`] on the shared device; whether the vec4 variant ran.
fn check(s: &GemmSpec, dims: (u32, u32, u32), seed: u64) -> bool {
    run_checked(gpu(), s, dims, seed).vectorized
}

/// `spec` with every leading dimension of A and B rounded up to a multiple of 4 (and strides to
/// match): the layout the vec4 variant needs, with NaN in the padding.
pub fn padded(s: GemmSpec) -> GemmSpec {
    let ((ar, _), (br, _)) = stored(&s);
    let (lda, ldb) = (s.lda.next_multiple_of(4), s.ldb.next_multiple_of(4));
    GemmSpec {
        lda,
        ldb,
        stride_a: if s.stride_a == 0 {
            0
        } else {
            (ar * lda) as u64
        },
        stride_b: if s.stride_b == 0 {
            0
        } else {
            (br * ldb) as u64
        },
        ..s
    }
}

#[test]
fn gemm_vec4_variant_matches_reference_for_every_layout_gate_and_tail() {
    let mut seed = 1300;
    for (trans_a, trans_b) in [(false, false), (false, true), (true, false), (true, true)] {
        for (m, n, k) in [(37, 53, 29), (1, 1, 1), (8, 12, 4), (130, 7, 66)] {
            let s = padded(GemmSpec {
                bias: true,
                epilogue: Epilogue::Relu,
                ..GemmSpec::new(2, m, n, k, trans_a, trans_b)
            });
            assert!(
                check(&s, (m, n, k), seed),
                "{s:?} should take the vec4 path"
            );
            seed += 1;
        }
        for operand in [Operand::A, Operand::B] {
            for kind in [GateKind::ReluMask, GateKind::Product] {
                let s = padded(GemmSpec {
                    gate: Some(Gate { operand, kind }),
                    accumulate: true,
                    stride_b: 0,
                    ..GemmSpec::new(3, 26, 15, 31, trans_a, trans_b)
                });
                assert!(check(&s, (26, 15, 31), seed));
                assert!(check(&s, (21, 10, 6), seed + 1), "below capacity");
                seed += 2;
            }
        }
    }
}

#[test]
fn gemm_matches_reference_for_every_transposition_bias_and_epilogue() {
    let mut seed = 1;
    for (trans_a, trans_b) in [(false, false), (false, true), (true, false), (true, true)] {
        for bias in [false, true] {
            for epilogue in [Epilogue::Identity, Epilogue::Relu, Epilogue::Sigmoid] {
                let s = GemmSpec {
                    bias,
                    epilogue,
                    ..GemmSpec::new(2, 37, 53, 29, trans_a, trans_b)
                };
                check(&s, (37, 53, 29), seed);
                seed += 1;
            }
        }
    }
}

#[test]
fn gemm_matches_reference_at_awkward_sizes() {
    for (i, (m, n, k)) in [
        (1, 1, 1),
        (130, 7, 260),
        (5, 130, 3),
        (4, 4, 4),
        (33, 1, 65),
    ]
    .into_iter()
    .enumerate()
    {
        for trans in [(false, true), (true, false)] {
            let s = GemmSpec {
                bias: true,
                ..GemmSpec::new(1, m, n, k, trans.0, trans.1)
            };
            check(&s, (m, n, k), 100 + i as u64);
        }
    }
}

#[test]
fn gemm_shares_stride_zero_operands_across_tables() {
    // One weight and one bias for all four tables (stride 0), per-table activations.
    let s = GemmSpec {
        stride_b: 0,
        bias: true,
        stride_bias: 0,
        epilogue: Epilogue::Relu,
        ..GemmSpec::new(4, 19, 23, 17, false, true)
    };
    check(&s, (19, 23, 17), 200);
    // And a shared left operand with per-table right operands.
    let s = GemmSpec {
        stride_a: 0,
        ..GemmSpec::new(3, 9, 41, 12, true, false)
    };
    check(&s, (9, 41, 12), 201);
}

#[test]
fn gemm_accumulates_into_c() {
    for (seed, epilogue) in [(300, Epilogue::Identity), (301, Epilogue::Sigmoid)] {
        let s = GemmSpec {
            accumulate: true,
            bias: true,
            epilogue,
            ..GemmSpec::new(3, 21, 18, 35, true, false)
        };
        check(&s, (21, 18, 35), seed);
    }
}

#[test]
fn gemm_applies_gates_on_either_operand() {
    let mut seed = 400;
    for operand in [Operand::A, Operand::B] {
        for kind in [GateKind::ReluMask, GateKind::Product] {
            for (trans_a, trans_b) in [(false, false), (true, true), (true, false)] {
                let s = GemmSpec {
                    gate: Some(Gate { operand, kind }),
                    ..GemmSpec::new(2, 26, 15, 31, trans_a, trans_b)
                };
                check(&s, (26, 15, 31), seed);
                seed += 1;
            }
        }
    }
}

#[test]
fn gemm_honours_padded_leading_dimensions_and_strides() {
    let s = GemmSpec {
        lda: 40,
        ldb: 31,
        ldc: 29,
        stride_a: 40 * 13 + 5,
        stride_b: 31 * 30 + 2,
        stride_c: 29 * 13 + 11,
        bias: true,
        stride_bias: 27,
        ..GemmSpec::new(3, 13, 22, 30, false, true)
    };
    check(&s, (13, 22, 30), 500);
}

#[test]
fn gemm_runs_below_capacity_and_with_empty_dims() {
    let s = GemmSpec {
        bias: true,
        epilogue: Epilogue::Relu,
        ..GemmSpec::new(2, 40, 50, 30, false, true)
    };
    check(&s, (17, 23, 11), 600);
    // No rows: nothing written (one dispatch still recorded).
    check(&s, (0, 50, 30), 601);
    check(&s, (40, 0, 30), 602);
    // k = 0 is the empty sum: C = act(bias).
    check(&s, (40, 50, 0), 603);
    let s = GemmSpec {
        accumulate: true,
        ..GemmSpec::new(2, 40, 50, 30, true, true)
    };
    // k = 0 accumulating the identity of an empty sum leaves C as it was.
    check(&s, (40, 50, 0), 604);
    check(&s, (0, 0, 0), 605);
}

#[test]
fn gemm_is_bitwise_deterministic() {
    let gpu = gpu();
    let s = GemmSpec::new(2, 45, 38, 77, false, true);
    let x = random_inputs(&s, &mut Rng::new(700));
    let (a, b) = (upload(gpu, "a", &x.a), upload(gpu, "b", &x.b));
    let c = upload(gpu, "c", &x.c);
    let gemm = Gemm::new(gpu, &s, &a, &b, None, None, &c).expect("gemm");
    let mut runs = Vec::new();
    for _ in 0..2 {
        poison(gpu, &c);
        run_once(gpu, |pass| gemm.record(gpu, pass));
        gpu.sync().expect("gpu");
        runs.push(download(gpu, &c, x.c.len()));
    }
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&runs[0]), bits(&runs[1]));
    assert_eq!(gemm.flops(), 2 * 2 * 45 * 38 * 77);
}

#[test]
fn gemm_records_one_dispatch_for_all_tables_even_when_empty() {
    // A device of its own: the shared one counts the dispatches of tests running in parallel.
    let gpu = wgrec::Gpu::new().expect("adapter");
    let s = GemmSpec::new(8, 33, 20, 9, false, true);
    let x = random_inputs(&s, &mut Rng::new(900));
    let (a, b, c) = (
        upload(&gpu, "a", &x.a),
        upload(&gpu, "b", &x.b),
        upload(&gpu, "c", &x.c),
    );
    let gemm = Gemm::new(&gpu, &s, &a, &b, None, None, &c).expect("gemm");
    for dims in [(33, 20, 9), (0, 20, 9), (33, 0, 0)] {
        gemm.set_dims(&gpu, dims.0, dims.1, dims.2).expect("dims");
        let before = gpu.dispatches();
        run_once(&gpu, |pass| gemm.record(&gpu, pass));
        gpu.sync().expect("gpu");
        assert_eq!(gpu.dispatches() - before, 1, "{dims:?}");
    }
    // An MLP stack of three layers over eight tables: three dispatches forward, and per layer
    // dW, db, dX backward.
    let spec = MlpSpec {
        tables: 8,
        batch_cap: 10,
        widths: vec![6, 5, 4, 3],
        relu_last: false,
    };
    let x = upload(&gpu, "x", &vec![0.5; 8 * 10 * 6]);
    let dx = upload(&gpu, "dx", &vec![0.0; 8 * 10 * 6]);
    let mlp = MlpStack::new(&gpu, &spec, &x, Some(&dx)).expect("mlp");
    let before = gpu.dispatches();
    run_once(&gpu, |pass| mlp.record_forward(&gpu, pass));
    assert_eq!(gpu.dispatches() - before, 3);
    run_once(&gpu, |pass| mlp.record_backward(&gpu, pass));
    assert_eq!(gpu.dispatches() - before, 3 + 9);
    gpu.sync().expect("gpu");
}

#[test]
fn gemm_rejects_bad_shapes_with_numbers() {
    let gpu = gpu();
    let s = GemmSpec::new(2, 8, 8, 8, false, false);
    let small = gpu.storage_from("small", &[0f32; 100]);
    let ok = gpu.storage_from("ok", &[0f32; 128]);
    let gemm = Gemm::new(gpu, &s, &ok, &ok, None, None, &ok).expect("fits");
    assert!(gemm.vectorized(), "8×8 contiguous: vec4 layout");
    let odd = GemmSpec::new(1, 5, 3, 7, false, false);
    let gemm = Gemm::new(gpu, &odd, &ok, &ok, None, None, &ok).expect("fits");
    assert!(!gemm.vectorized(), "ld 7 and 3: scalar loads");
    let err = Gemm::new(gpu, &s, &small, &ok, None, None, &ok)
        .err()
        .expect("A too small");
    assert!(err.to_string().contains("128"), "{err}");
    let bad_ld = GemmSpec { lda: 7, ..s };
    assert!(Gemm::new(gpu, &bad_ld, &ok, &ok, None, None, &ok).is_err());
    let overlapping = GemmSpec { stride_c: 10, ..s };
    assert!(Gemm::new(gpu, &overlapping, &ok, &ok, None, None, &ok).is_err());
    let with_bias = GemmSpec { bias: true, ..s };
    assert!(Gemm::new(gpu, &with_bias, &ok, &ok, None, None, &ok).is_err());
    let gemm = Gemm::new(gpu, &s, &ok, &ok, None, None, &ok).expect("fits");
    assert!(gemm.set_dims(gpu, 9, 8, 8).is_err());
    assert!(gemm.set_dims(gpu, 8, 8, 9).is_err());
    assert_eq!(gemm.dims(), (8, 8, 8));
}

/// Column sums in f64 of a `[tables, rows, cols]` view with `ld` and `stride`.
#[allow(clippy::too_many_arguments)]
pub fn column_sum_reference(
    tables: usize,
    rows: usize,
    cols: usize,
    ld: usize,
    stride: usize,
    x: &[f32],
    gate: Option<(GateKind, &[f32])>,
) -> Vec<(f64, f64)> {
    let mut out = vec![(0.0, 0.0); tables * cols];
    for t in 0..tables {
        for j in 0..cols {
            let (mut s, mut mag) = (0.0f64, 0.0f64);
            for i in 0..rows {
                let at = t * stride + i * ld + j;
                let v = match gate {
                    Some((kind, g)) => gated(kind, x[at] as f64, g[at] as f64),
                    None => x[at] as f64,
                };
                s += v;
                mag += v.abs();
            }
            out[t * cols + j] = (s, mag);
        }
    }
    out
}

#[test]
fn column_sum_matches_reference_with_gates_accumulation_and_empty_batch() {
    let gpu = gpu();
    let (tables, rows_cap, cols, ld) = (3u32, 70u32, 45u32, 50u32);
    let stride = (rows_cap * ld + 7) as u64;
    let n = len(tables, stride, rows_cap, cols, ld);
    let mut rng = Rng::new(800);
    let x = random_f32(&mut rng, n);
    let g = random_f32(&mut rng, n);
    let init = random_f32(&mut rng, (tables * cols) as usize);
    let (xb, gb) = (upload(gpu, "x", &x), upload(gpu, "gate", &g));
    let mut seed_rows = [70u32, 33, 0].into_iter().cycle();
    for gate in [None, Some(GateKind::ReluMask), Some(GateKind::Product)] {
        for accumulate in [false, true] {
            let rows = seed_rows.next().expect("cycle");
            let out = upload(gpu, "out", &init);
            if !accumulate {
                poison(gpu, &out);
            }
            let op = ColumnSum::new(
                gpu,
                tables,
                rows_cap,
                cols,
                ld,
                stride,
                accumulate,
                gate,
                &xb,
                gate.map(|_| &gb),
                &out,
            )
            .expect("column_sum");
            op.set_rows(gpu, rows).expect("rows");
            run_once(gpu, |pass| op.record(gpu, pass));
            gpu.sync().expect("gpu");
            let got = download(gpu, &out, init.len());
            let want = column_sum_reference(
                tables as usize,
                rows as usize,
                cols as usize,
                ld as usize,
                stride as usize,
                &x,
                gate.map(|k| (k, g.as_slice())),
            );
            // Sequential f32 sum of ≤ 70 terms (+1 accumulate): γ ≈ 71 · 6e-8, doubled.
            let tol = Tolerance {
                relative: 1e-5,
                absolute: 1e-7,
            };
            for (i, &(v, mag)) in want.iter().enumerate() {
                let base = if accumulate { init[i] as f64 } else { 0.0 };
                tol.check("column_sum", i, got[i], v + base, mag + base.abs());
            }
            assert!(op.set_rows(gpu, rows_cap + 1).is_err());
        }
    }
}

#[test]
fn gemm_params_match_wgsl_layout() {
    let gemm = &wgrec::shaders::GEMM;
    assert_layout(
        gemm,
        "GemmParams",
        size_of::<GemmParams>(),
        offsets!(GemmParams: m, n, k, a_row, a_step, b_step, b_col, ldc, stride_a, stride_b,
                 stride_c, stride_bias, offset_a, offset_b, offset_c, offset_bias),
    );
    assert_layout(
        gemm,
        "ColumnSumParams",
        size_of::<ColumnSumParams>(),
        offsets!(ColumnSumParams: rows, cols, ld, stride, out_offset, out_stride, in_offset),
    );
    assert_layout(
        &wgrec::shaders::FMA,
        "FmaParams",
        size_of::<FmaParams>(),
        offsets!(FmaParams: invocations, iters, mul, add),
    );
}

#[test]
fn fma_ceiling_computes_its_chains() {
    let gpu = gpu();
    let (invocations, iters) = (333u32, 50u32);
    let fma = FmaCeiling::new(gpu, invocations, iters).expect("fma");
    poison(gpu, &fma.out);
    run_once(gpu, |pass| fma.record(gpu, pass));
    gpu.sync().expect("gpu");
    let got = download(gpu, &fma.out, invocations as usize);
    // The same chains in f64: x ← x·0.9999 + 1e-4 contracts, so f32 rounding stays ~iters·ε.
    let tol = Tolerance {
        relative: 1e-5,
        absolute: 1e-6,
    };
    let (mul, add) = (0.9999f32 as f64, 1e-4f32 as f64);
    for i in 0..invocations as usize {
        let seed = (i as f32 * 1e-6) as f64;
        let mut sum = 0.0;
        for chain in 0..16 {
            let mut x = seed + (chain as f32 * 0.1) as f64;
            for _ in 0..iters {
                x = x * mul + add;
            }
            sum += x;
        }
        tol.check("fma out", i, got[i], sum, sum.abs());
    }
    assert_eq!(fma.flops(), 2 * 16 * 333 * 50);
    assert!(FmaCeiling::new(gpu, 0, 1).is_err());
}
