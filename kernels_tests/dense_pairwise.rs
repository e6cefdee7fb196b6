//! Pairwise experts (FM, FwFM, GwPFM, IPNN): an f64 reference whose backward is checked by finite
//! differences; the GPU against it forward and backward (dx, dr) on awkward shapes, M = 1 and 3, empty
//! batches, ReLU on and off, slices of wider buffers with the columns around them left untouched; the
//! PyTorch fixtures; determinism; dispatches independent of the number of tables.

use std::mem::size_of;

use wgrec::kernels::dense::pairwise::{
    PairwiseBackward, PairwiseForward, PairwiseGradients, PairwiseKind, PairwiseParams,
    PairwiseSpec,
};
use wgrec::kernels::run_once;
use wgrec::rng::Rng;
use wgrec::shaders;

use crate::common::{check_gradient, download, gpu, poison, random_f32, upload, Tolerance};
use crate::fixtures::Fixture;
use crate::registry::{assert_layout, offsets};

/// Forward and dx: an f32 sum of at most F²/2 = 78 (F = 13) products of exact f32 inputs, each
/// rounded once and times a weight: error ≤ (78 + 2)·ε·Σ|terms| ≈ 4.8e-6 relative to the magnitude.
const FORWARD: Tolerance = Tolerance {
    relative: 1e-5,
    absolute: 1e-6,
};

/// dr: each lane sums its rows' terms in order (≤ 1 row here × ≤ 78 pairs × K ≤ 10 = 780 terms), then
/// a 6-level tree: error ≤ ~786·ε ≈ 4.7e-5 relative to Σ|terms|.
const REDUCED: Tolerance = Tolerance {
    relative: 1e-4,
    absolute: 1e-6,
};

// ---------------------------------------------------------------------------------------------
// Reference (f64), one row of one table. v: F·G·K values, r: the table's weights.

fn partition(spec: &PairwiseSpec) -> Vec<usize> {
    match &spec.kind {
        PairwiseKind::GwPfm { partition, .. } => partition.iter().map(|&g| g as usize).collect(),
        _ => vec![0; spec.fields as usize],
    }
}

/// Calls `term(a, b, w, o)` for every product of the row: `r[w] · v[a] · v[b]` adds to output `o`
/// (`w = None`: weight 1). The pair order is the shader's; the reference's backward scatters from
/// these terms while the shader gathers, so the two derivations are independent.
fn for_each_term(spec: &PairwiseSpec, mut term: impl FnMut(usize, usize, Option<usize>, usize)) {
    let (f, g, k) = (
        spec.fields as usize,
        spec.blocks() as usize,
        spec.dim as usize,
    );
    let p = partition(spec);
    let mut pair = 0;
    for i in 0..f {
        for j in i + 1..f {
            match spec.kind {
                PairwiseKind::Ipnn => {
                    for c in 0..k {
                        term(i * k + c, j * k + c, None, pair);
                    }
                    pair += 1;
                }
                _ => {
                    let w = match spec.kind {
                        PairwiseKind::FwFm => Some(i * f + j),
                        PairwiseKind::GwPfm { .. } => Some(p[i] * g + p[j]),
                        _ => None,
                    };
                    for c in 0..k {
                        term((i * g + p[j]) * k + c, (j * g + p[i]) * k + c, w, c);
                    }
                }
            }
        }
    }
}

/// Pre-activation outputs of one row.
fn reference_forward(spec: &PairwiseSpec, v: &[f64], r: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; spec.out_cols() as usize];
    for_each_term(spec, |a, b, w, o| {
        out[o] += w.map_or(1.0, |w| r[w]) * v[a] * v[b];
    });
    out
}

/// (dv, dr) of one row for upstream gradient `delta` (already masked by the ReLU).
fn reference_backward(
    spec: &PairwiseSpec,
    v: &[f64],
    r: &[f64],
    delta: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    let mut dv = vec![0.0; v.len()];
    let mut dr = vec![0.0; r.len()];
    for_each_term(spec, |a, b, w, o| {
        let wv = w.map_or(1.0, |w| r[w]);
        dv[a] += wv * delta[o] * v[b];
        dv[b] += wv * delta[o] * v[a];
        if let Some(w) = w {
            dr[w] += delta[o] * v[a] * v[b];
        }
    });
    (dv, dr)
}

fn abs(v: &[f64]) -> Vec<f64> {
    v.iter().map(|x| x.abs()).collect()
}

// ---------------------------------------------------------------------------------------------
// Specs and the GPU run.

/// A spec whose expert reads a slice of a wider `x` and writes into a wider `out` when `embedded`.
fn spec(
    kind: PairwiseKind,
    tables: u32,
    fields: u32,
    dim: u32,
    relu: bool,
    embedded: bool,
) -> PairwiseSpec {
    let mut s = PairwiseSpec {
        kind,
        tables,
        rows_cap: 37,
        fields,
        dim,
        x_ld: 0,
        x_offset: if embedded { 5 } else { 0 },
        out_ld: 0,
        out_offset: if embedded { 3 } else { 0 },
        relu,
    };
    s.x_ld = s.x_offset + s.in_cols() as u32 + if embedded { 2 } else { 0 };
    s.out_ld = s.out_offset + s.out_cols() as u32 + if embedded { 1 } else { 0 };
    s
}

fn gwpfm(blocks: u32, partition: &[u32]) -> PairwiseKind {
    PairwiseKind::GwPfm {
        blocks,
        partition: partition.to_vec(),
    }
}

/// What the GPU computed: whole buffers, as read back.
struct GpuRun {
    out: Vec<f32>,
    dx: Vec<f32>,
    dr: Vec<f32>,
}

/// Forward then backward on the GPU over NaN-poisoned outputs; the backward's stored output is the
/// forward's.
fn run_gpu(spec: &PairwiseSpec, rows: u32, x: &[f32], r: &[f32], dout: &[f32]) -> GpuRun {
    let gpu = gpu();
    let x_buf = upload(gpu, "x", x);
    let r_buf = (spec.r_len() > 0).then(|| upload(gpu, "r", r));
    let out_buf = upload(gpu, "out", &vec![0.0; spec.out_len() as usize]);
    let dout_buf = upload(gpu, "dout", dout);
    let dx_buf = upload(gpu, "dx", &vec![0.0; spec.x_len() as usize]);
    let dr_buf = (spec.r_len() > 0).then(|| upload(gpu, "dr", r));
    for b in [&out_buf, &dx_buf].into_iter().chain(dr_buf.as_ref()) {
        poison(gpu, b);
    }
    let mut forward =
        PairwiseForward::new(gpu, spec, &x_buf, r_buf.as_ref(), &out_buf).expect("forward");
    let grads = PairwiseGradients {
        x: &x_buf,
        r: r_buf.as_ref(),
        out: spec.relu.then_some(&out_buf),
        dout: &dout_buf,
        dx: &dx_buf,
        dr: dr_buf.as_ref(),
    };
    let mut backward = PairwiseBackward::new(gpu, spec, &grads).expect("backward");
    forward.set_rows(gpu, rows).expect("rows");
    backward.set_rows(gpu, rows).expect("rows");
    run_once(gpu, |pass| {
        forward.record(gpu, pass);
    });
    run_once(gpu, |pass| {
        backward.record(gpu, pass);
    });
    GpuRun {
        out: download(gpu, &out_buf, spec.out_len() as usize),
        dx: download(gpu, &dx_buf, spec.x_len() as usize),
        dr: dr_buf.map_or(vec![], |b| {
            download(gpu, &b, (spec.tables as u64 * spec.r_len()) as usize)
        }),
    }
}

fn random_inputs(spec: &PairwiseSpec, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut rng = Rng::new(seed);
    let x = random_f32(&mut rng, spec.x_len() as usize);
    let r: Vec<f32> = (0..spec.tables as u64 * spec.r_len())
        .map(|_| rng.uniform(0.5, 1.5))
        .collect();
    let dout = random_f32(&mut rng, spec.out_len() as usize);
    (x, r, dout)
}

fn assert_sentinel(what: &str, index: usize, got: f32) {
    assert_eq!(
        got.to_bits(),
        f32::NAN.to_bits(),
        "{what}[{index}] outside the expert's rows and columns was written: {got}"
    );
}

/// Runs `spec` on `rows` rows and checks out, dx and dr against the reference, and that nothing
/// outside the expert's rows and columns changed.
fn check_case(spec: &PairwiseSpec, rows: u32, seed: u64) {
    let (x, r, dout) = random_inputs(spec, seed);
    let got = run_gpu(spec, rows, &x, &r, &dout);
    let (ic, oc, rl) = (
        spec.in_cols() as usize,
        spec.out_cols() as usize,
        spec.r_len() as usize,
    );
    let (xo, oo) = (spec.x_offset as usize, spec.out_offset as usize);
    let (xl, ol, cap) = (
        spec.x_ld as usize,
        spec.out_ld as usize,
        spec.rows_cap as usize,
    );
    let f64s = |s: &[f32]| s.iter().map(|&v| v as f64).collect::<Vec<_>>();
    let mut dr_want = vec![0.0; rl * spec.tables as usize];
    let mut dr_mag = dr_want.clone();
    for t in 0..spec.tables as usize {
        let rt = f64s(&r[t * rl..(t + 1) * rl]);
        for n in 0..cap {
            let (xrow, orow) = ((t * cap + n) * xl, (t * cap + n) * ol);
            if n >= rows as usize {
                for c in 0..ol {
                    assert_sentinel("out", orow + c, got.out[orow + c]);
                }
                for c in 0..xl {
                    assert_sentinel("dx", xrow + c, got.dx[xrow + c]);
                }
                continue;
            }
            let v = f64s(&x[xrow + xo..xrow + xo + ic]);
            let phi = reference_forward(spec, &v, &rt);
            let mut mag = reference_forward(spec, &abs(&v), &abs(&rt));
            if spec.kind == PairwiseKind::Fm {
                // The shader's ½[(Σv)² − Σv²] cancels the squares: they count in its error.
                for (k, m) in mag.iter_mut().enumerate() {
                    *m += (0..spec.fields as usize)
                        .map(|i| v[i * spec.dim as usize + k].powi(2))
                        .sum::<f64>();
                }
            }
            let mut delta = vec![0.0; oc];
            for c in 0..ol {
                let i = orow + c;
                if c < oo || c >= oo + oc {
                    assert_sentinel("out", i, got.out[i]);
                    continue;
                }
                let want = if spec.relu {
                    phi[c - oo].max(0.0)
                } else {
                    phi[c - oo]
                };
                FORWARD.check("out", i, got.out[i], want, mag[c - oo]);
                // The backward masks with the stored (GPU) output, as documented.
                let on = !spec.relu || got.out[i] > 0.0;
                delta[c - oo] = if on { dout[i] as f64 } else { 0.0 };
            }
            let (dv, drow) = reference_backward(spec, &v, &rt, &delta);
            let (dv_mag, drow_mag) = reference_backward(spec, &abs(&v), &abs(&rt), &abs(&delta));
            for c in 0..xl {
                let i = xrow + c;
                if c < xo || c >= xo + ic {
                    assert_sentinel("dx", i, got.dx[i]);
                } else {
                    FORWARD.check("dx", i, got.dx[i], dv[c - xo], dv_mag[c - xo]);
                }
            }
            for e in 0..rl {
                dr_want[t * rl + e] += drow[e];
                dr_mag[t * rl + e] += drow_mag[e];
            }
        }
    }
    for (e, &g) in got.dr.iter().enumerate() {
        REDUCED.check("dr", e, g, dr_want[e], dr_mag[e]);
    }
}

/// The shapes every kind runs: F = 1 (no pairs), F = 2, F = 13, K ∈ {3, 10}, M ∈ {1, 3}, slices of
/// wider buffers, ReLU on and off, and an empty batch.
fn check_kind(kind: impl Fn(u32) -> PairwiseKind, seed: u64) {
    let cases = [
        (1, 1, 3, false, false, 29),
        (3, 2, 10, true, true, 29),
        (1, 13, 3, false, true, 37),
        (3, 13, 10, true, false, 11),
        (3, 5, 4, false, true, 0),
    ];
    for (i, &(tables, fields, dim, relu, embedded, rows)) in cases.iter().enumerate() {
        let s = spec(kind(fields), tables, fields, dim, relu, embedded);
        check_case(&s, rows, seed + i as u64);
    }
}

// ---------------------------------------------------------------------------------------------
// Tests.

#[test]
fn reference_backward_matches_finite_differences() {
    let kinds = [
        (PairwiseKind::Fm, 4, 3),
        (PairwiseKind::FwFm, 5, 2),
        (gwpfm(3, &[2, 0, 0, 1, 2, 0]), 6, 2),
        (gwpfm(1, &[0, 0, 0]), 3, 3),
        (PairwiseKind::Ipnn, 5, 3),
    ];
    let mut rng = Rng::new(71);
    for (kind, fields, dim) in kinds {
        let s = spec(kind, 1, fields, dim, false, false);
        let (ic, rl) = (s.in_cols() as usize, s.r_len() as usize);
        let theta: Vec<f64> = (0..ic + rl)
            .map(|_| rng.uniform(-1.0, 1.0) as f64)
            .collect();
        let delta: Vec<f64> = (0..s.out_cols())
            .map(|_| rng.uniform(-1.0, 1.0) as f64)
            .collect();
        let loss = |p: &[f64]| -> f64 {
            let out = reference_forward(&s, &p[..ic], &p[ic..]);
            out.iter().zip(&delta).map(|(o, d)| o * d).sum()
        };
        let (dv, dr) = reference_backward(&s, &theta[..ic], &theta[ic..], &delta);
        let analytic: Vec<f64> = dv.into_iter().chain(dr).collect();
        check_gradient(&format!("{:?}", s.kind), &theta, &analytic, loss);
    }
}

#[test]
fn reference_gwpfm_with_one_block_is_weighted_fm() {
    let mut rng = Rng::new(5);
    let fm = spec(PairwiseKind::Fm, 1, 6, 4, false, false);
    let g1 = spec(gwpfm(1, &[0; 6]), 1, 6, 4, false, false);
    let v: Vec<f64> = (0..24).map(|_| rng.uniform(-1.0, 1.0) as f64).collect();
    let plain = reference_forward(&fm, &v, &[]);
    let weighted = reference_forward(&g1, &v, &[0.75]);
    for (p, w) in plain.iter().zip(&weighted) {
        assert!((0.75 * p - w).abs() < 1e-12, "{p} vs {w}");
    }
}

#[test]
fn fm_matches_reference() {
    check_kind(|_| PairwiseKind::Fm, 100);
}

#[test]
fn fwfm_matches_reference() {
    check_kind(|_| PairwiseKind::FwFm, 200);
}

#[test]
fn gwpfm_matches_reference_with_uneven_blocks() {
    // Three blocks of unequal sizes (the last field alone in block 1), and one block.
    let uneven = |f: u32| -> Vec<u32> {
        (0..f)
            .map(|i| {
                if i + 1 == f {
                    1
                } else {
                    [2, 0, 2, 0, 0][i as usize % 5]
                }
            })
            .collect()
    };
    check_kind(|f| gwpfm(3, &uneven(f)), 300);
    check_kind(|f| gwpfm(1, &vec![0; f as usize]), 400);
}

#[test]
fn ipnn_matches_reference() {
    check_kind(|_| PairwiseKind::Ipnn, 500);
}

#[test]
fn gwpfm_matches_pytorch_fixture() {
    let fx = Fixture::load("gwpfm");
    for case in ["m2", "m1"] {
        let shape = fx.u32(&format!("{case}.shape"));
        let [tables, rows, fields, blocks, dim, relu] = shape[..] else {
            panic!("{case}.shape: {shape:?}");
        };
        let kind = gwpfm(blocks, &fx.u32(&format!("{case}.part")));
        check_fixture(
            &fx,
            case,
            spec(kind, tables, fields, dim, relu == 1, false),
            rows,
        );
    }
}

#[test]
fn ipnn_matches_pytorch_fixture() {
    let fx = Fixture::load("ipnn");
    for case in ["m3", "relu"] {
        let shape = fx.u32(&format!("{case}.shape"));
        let [tables, rows, fields, dim, relu] = shape[..] else {
            panic!("{case}.shape: {shape:?}");
        };
        let s = spec(PairwiseKind::Ipnn, tables, fields, dim, relu == 1, false);
        check_fixture(&fx, case, s, rows);
    }
}

/// Runs the fixture's case on the GPU (buffers exactly `rows` rows tall) and compares out, dx and,
/// where the module has weights, dr with torch's float64 autograd.
fn check_fixture(fx: &Fixture, case: &str, mut s: PairwiseSpec, rows: u32) {
    s.rows_cap = rows;
    let key = |name: &str| format!("{case}.{name}");
    let x_shape = [s.tables as usize, rows as usize, s.in_cols() as usize];
    assert_eq!(fx.shape(&key("x")), x_shape, "{case}.x shape");
    let r = if fx.has(&key("r")) {
        fx.f32(&key("r"))
    } else {
        vec![]
    };
    let got = run_gpu(&s, rows, &fx.f32(&key("x")), &r, &fx.f32(&key("delta")));
    compare_fixture(fx, &key("out"), &got.out, FORWARD);
    compare_fixture(fx, &key("grad_x"), &got.dx, FORWARD);
    assert_eq!(
        fx.has(&key("grad_r")),
        s.r_len() > 0,
        "{case}: grad_r present"
    );
    if s.r_len() > 0 {
        compare_fixture(fx, &key("grad_r"), &got.dr, REDUCED);
    }
}

/// The fixtures are small (|x| < 1, |r| < 1.5, ≤ 21 pairs, ≤ 7 rows): each value's magnitude is taken
/// as 1, which bounds its Σ|terms| within a small factor.
fn compare_fixture(fx: &Fixture, key: &str, got: &[f32], tol: Tolerance) {
    let want = fx.f64(key);
    assert_eq!(got.len(), want.len(), "{key} length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        tol.check(key, i, g, w, 1.0);
    }
}

#[test]
fn forward_and_backward_are_deterministic() {
    let kinds = [
        gwpfm(3, &[0, 1, 2, 0, 0, 1, 2, 2, 0, 1, 1, 2, 0]),
        PairwiseKind::FwFm,
    ];
    for kind in kinds {
        let mut s = spec(kind, 2, 13, 10, true, true);
        s.rows_cap = 200;
        let (x, r, dout) = random_inputs(&s, 9);
        let first = run_gpu(&s, 200, &x, &r, &dout);
        let second = run_gpu(&s, 200, &x, &r, &dout);
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&first.out), bits(&second.out), "out");
        assert_eq!(bits(&first.dx), bits(&second.dx), "dx");
        assert_eq!(bits(&first.dr), bits(&second.dr), "dr");
    }
}

#[test]
fn dispatches_do_not_grow_with_tables() {
    // A device of its own: the shared one counts the dispatches of tests running in parallel.
    let own = wgrec::Gpu::new().expect("a second device");
    let gpu = &own;
    for (kind, backward_dispatches) in [
        (gwpfm(2, &[0, 1, 1, 0, 1]), 2),
        (PairwiseKind::FwFm, 2),
        (PairwiseKind::Fm, 1),
        (PairwiseKind::Ipnn, 1),
    ] {
        let count = |tables: u32| -> (u64, u64) {
            let s = spec(kind.clone(), tables, 5, 4, true, false);
            let (x, r, dout) = random_inputs(&s, 3);
            let (xb, db) = (upload(gpu, "x", &x), upload(gpu, "dout", &dout));
            let rb = (s.r_len() > 0).then(|| upload(gpu, "r", &r));
            let drb = (s.r_len() > 0).then(|| upload(gpu, "dr", &r));
            let (ob, dxb) = (upload(gpu, "out", &dout), upload(gpu, "dx", &x));
            let mut fwd = PairwiseForward::new(gpu, &s, &xb, rb.as_ref(), &ob).expect("forward");
            let grads = PairwiseGradients {
                x: &xb,
                r: rb.as_ref(),
                out: Some(&ob),
                dout: &db,
                dx: &dxb,
                dr: drb.as_ref(),
            };
            let mut bwd = PairwiseBackward::new(gpu, &s, &grads).expect("backward");
            fwd.set_rows(gpu, 30).expect("rows");
            bwd.set_rows(gpu, 30).expect("rows");
            let before = gpu.dispatches();
            run_once(gpu, |pass| fwd.record(gpu, pass));
            let mid = gpu.dispatches();
            run_once(gpu, |pass| bwd.record(gpu, pass));
            (mid - before, gpu.dispatches() - mid)
        };
        assert_eq!(count(1), (1, backward_dispatches), "{kind:?}, M = 1");
        assert_eq!(count(8), (1, backward_dispatches), "{kind:?}, M = 8");
    }
}

#[test]
fn one_prepared_op_serves_batches_of_changing_size() {
    // A full batch then a short one through the same ops and bind groups: the short step's dr
    // (overwritten) covers only its own rows, and its out rows past the batch keep the full step's.
    let gpu = gpu();
    let s = spec(PairwiseKind::FwFm, 2, 5, 3, true, true);
    let (x, r, dout) = random_inputs(&s, 17);
    let (xb, rb, db) = (
        upload(gpu, "x", &x),
        upload(gpu, "r", &r),
        upload(gpu, "dout", &dout),
    );
    let (ob, dxb, drb) = (
        upload(gpu, "out", &dout),
        upload(gpu, "dx", &x),
        upload(gpu, "dr", &r),
    );
    let mut fwd = PairwiseForward::new(gpu, &s, &xb, Some(&rb), &ob).expect("forward");
    let grads = PairwiseGradients {
        x: &xb,
        r: Some(&rb),
        out: Some(&ob),
        dout: &db,
        dx: &dxb,
        dr: Some(&drb),
    };
    let mut bwd = PairwiseBackward::new(gpu, &s, &grads).expect("backward");
    let mut step = |rows: u32| -> (Vec<f32>, Vec<f32>) {
        fwd.set_rows(gpu, rows).expect("rows");
        bwd.set_rows(gpu, rows).expect("rows");
        run_once(gpu, |pass| {
            fwd.record(gpu, pass);
            bwd.record(gpu, pass);
        });
        let out = download(gpu, &ob, s.out_len() as usize);
        (out, download(gpu, &drb, r.len()))
    };
    let (full_out, _) = step(s.rows_cap);
    let (short_out, dr) = step(11);
    let (ol, cap, rl) = (s.out_ld as usize, s.rows_cap as usize, s.r_len() as usize);
    for t in 0..s.tables as usize {
        let start = (t * cap + 11) * ol;
        let end = (t + 1) * cap * ol;
        assert_eq!(
            short_out[start..end],
            full_out[start..end],
            "rows past the short batch"
        );
        let rt: Vec<f64> = r[t * rl..(t + 1) * rl].iter().map(|&v| v as f64).collect();
        let (mut want, mut mag) = (vec![0.0; rl], vec![0.0; rl]);
        for n in 0..11 {
            let (xrow, orow) = ((t * cap + n) * s.x_ld as usize, (t * cap + n) * ol);
            let v: Vec<f64> = (0..s.in_cols() as usize)
                .map(|c| x[xrow + s.x_offset as usize + c] as f64)
                .collect();
            let delta: Vec<f64> = (0..s.out_cols() as usize)
                .map(|c| orow + s.out_offset as usize + c)
                .map(|i| {
                    if short_out[i] > 0.0 {
                        dout[i] as f64
                    } else {
                        0.0
                    }
                })
                .collect();
            let (_, d) = reference_backward(&s, &v, &rt, &delta);
            let (_, m) = reference_backward(&s, &abs(&v), &abs(&rt), &abs(&delta));
            for e in 0..rl {
                want[e] += d[e];
                mag[e] += m[e];
            }
        }
        for e in 0..rl {
            REDUCED.check("dr", t * rl + e, dr[t * rl + e], want[e], mag[e]);
        }
    }
}

#[test]
fn launchers_reject_bad_shapes() {
    let gpu = gpu();
    let small = upload(gpu, "small", &[0.0; 8]);
    let good = spec(gwpfm(2, &[0, 1, 1]), 2, 3, 4, false, true);
    let big = upload(gpu, "big", &vec![0.0; good.x_len() as usize]);
    assert_eq!(good.initial_weights(), vec![1.0; 8], "R starts at 1");
    let r = upload(gpu, "r", &good.initial_weights());
    let out = upload(gpu, "out", &vec![0.0; good.out_len() as usize]);
    let fails = |s: &PairwiseSpec, x: &wgpu::Buffer, r: Option<&wgpu::Buffer>, what: &str| {
        match PairwiseForward::new(gpu, s, x, r, &out) {
            Ok(_) => panic!("{what}: accepted"),
            Err(e) => assert!(e.to_string().contains("pairwise_forward"), "{what}: {e}"),
        }
    };
    fails(&good, &small, Some(&r), "short x");
    fails(&good, &big, None, "missing r");
    let mut s = good.clone();
    s.x_offset += 3;
    fails(&s, &big, Some(&r), "slice past x_ld");
    let mut s = good.clone();
    s.kind = gwpfm(2, &[0, 2, 1]);
    fails(&s, &big, Some(&r), "block out of range");
    let mut s = good.clone();
    s.kind = gwpfm(2, &[0, 1]);
    fails(&s, &big, Some(&r), "partition too short");
    let mut s = good.clone();
    s.kind = PairwiseKind::Fm;
    fails(&s, &big, Some(&r), "weights given to FM");
    let mut ok = PairwiseForward::new(gpu, &good, &big, Some(&r), &out).expect("good spec");
    assert!(
        ok.set_rows(gpu, good.rows_cap + 1).is_err(),
        "rows past rows_cap"
    );
}

#[test]
fn params_struct_matches_wgsl() {
    assert_layout(
        &shaders::PAIRWISE,
        "PairwiseParams",
        size_of::<PairwiseParams>(),
        offsets!(PairwiseParams: rows, rows_cap, fields, dim, blocks, in_cols, out_cols, r_len,
                 x_ld, x_offset, out_ld, out_offset),
    );
}
