//! The learned-gate combine (`gate.wgsl`) against an f64 reference, the reference's backward against
//! finite differences, and both against a PyTorch fixture.

use std::mem::size_of;

use wgrec::kernels::dense::gate::{GateCombine, GateCombineBuffers, GateParams, GATE_MAX_TABLES};
use wgrec::kernels::run_once;
use wgrec::rng::Rng;
use wgrec::shaders;
use wgrec::Gpu;

use crate::common::{check_gradient, download, gpu, private_gpu, random_f32, upload, Tolerance};
use crate::dense_norm::{run, to_f64, Shape};
use crate::fixtures::Fixture;
use crate::registry::{assert_layout, offsets};

/// g, out and dh: a softmax of M ≤ 5 terms and a gated sum of M terms, a few roundings each, on
/// top of exp's own error, which Vulkan bounds by 3 + 2|x| ulp: logits spread over ≤ 6 give
/// ≤ 15 ulp ≈ 1e-6 relative, so 1e-5 of Σ_m g|h| leaves margin.
const FORWARD: Tolerance = Tolerance {
    relative: 1e-5,
    absolute: 1e-7,
};

/// da: dg is a serial f32 sum of W ≤ 257 products (error ≤ W·ε ≈ 3e-5 of Σ|d·h| in the worst
/// case, ~√W·ε on random data), then g·(dg − Σ g·dg); the magnitude is g·(Σ_j|d·h| + Σ_k g_k
/// Σ_j|d·h_k|).
const BACKWARD: Tolerance = Tolerance {
    relative: 1e-4,
    absolute: 1e-7,
};

/// The reference's outputs: g [rows_cap, M], out [rows_cap, W] (NaN past `rows`).
struct Forward {
    g: Vec<f64>,
    out: Vec<f64>,
}

fn forward_ref(s: Shape, h: &[f64], a: &[f64]) -> Forward {
    let m_ = s.tables;
    let mut f = Forward {
        g: vec![f64::NAN; s.rows_cap * m_],
        out: vec![f64::NAN; s.rows_cap * s.cols],
    };
    for b in 0..s.rows {
        let row = &a[b * m_..(b + 1) * m_];
        let mx = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = row.iter().map(|&v| (v - mx).exp()).collect();
        let sum: f64 = e.iter().sum();
        for m in 0..m_ {
            f.g[b * m_ + m] = e[m] / sum;
        }
        for j in 0..s.cols {
            f.out[b * s.cols + j] = (0..m_).map(|m| f.g[b * m_ + m] * h[s.at(m, b, j)]).sum();
        }
    }
    f
}

/// dh [M, rows_cap, W] and da [rows_cap, M] of loss = Σ d_out · out, from the saved g.
fn backward_ref(s: Shape, h: &[f64], g: &[f64], d_out: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let m_ = s.tables;
    let mut dh = vec![f64::NAN; s.elems()];
    let mut da = vec![f64::NAN; s.rows_cap * m_];
    for b in 0..s.rows {
        let dg: Vec<f64> = (0..m_)
            .map(|m| {
                (0..s.cols)
                    .map(|j| d_out[b * s.cols + j] * h[s.at(m, b, j)])
                    .sum()
            })
            .collect();
        let dot: f64 = (0..m_).map(|k| g[b * m_ + k] * dg[k]).sum();
        for m in 0..m_ {
            da[b * m_ + m] = g[b * m_ + m] * (dg[m] - dot);
            for j in 0..s.cols {
                dh[s.at(m, b, j)] = g[b * m_ + m] * d_out[b * s.cols + j];
            }
        }
    }
    (dh, da)
}

/// GPU outputs, as downloaded (every output poisoned with NaN before the run).
struct Outputs {
    g: Vec<f32>,
    out: Vec<f32>,
    dh: Vec<f32>,
    da: Vec<f32>,
}

fn run_gate(gpu: &Gpu, s: Shape, h: &[f32], a: &[f32], d_out: &[f32]) -> Outputs {
    let weights = s.rows_cap * s.tables;
    let outputs = s.rows_cap * s.cols;
    let (hb, ab, db) = (
        upload(gpu, "h", h),
        upload(gpu, "a", a),
        upload(gpu, "d_out", d_out),
    );
    let nan = |n: usize| vec![f32::NAN; n];
    let (g, out, dh, da) = (
        upload(gpu, "g", &nan(weights)),
        upload(gpu, "out", &nan(outputs)),
        upload(gpu, "dh", &nan(s.elems())),
        upload(gpu, "da", &nan(weights)),
    );
    let bufs = GateCombineBuffers {
        h: &hb,
        logits: &ab,
        gate: &g,
        out: &out,
        grad_out: &db,
        grad_h: &dh,
        grad_logits: &da,
    };
    let (t, cap, c) = (s.tables as u32, s.rows_cap as u32, s.cols as u32);
    let mut op = GateCombine::new(gpu, t, cap, c, &bufs).expect("gate");
    op.set_rows(gpu, s.rows as u32).expect("rows");
    run(gpu, |pass| {
        op.record_forward(gpu, pass);
        op.record_backward(gpu, pass);
    });
    Outputs {
        g: download(gpu, &g, weights),
        out: download(gpu, &out, outputs),
        dh: download(gpu, &dh, s.elems()),
        da: download(gpu, &da, weights),
    }
}

/// Compares every live value with the reference computed from the same f32 inputs, and checks
/// that nothing past `rows` was written.
fn check_against_reference(s: Shape, h: &[f32], a: &[f32], d_out: &[f32], o: &Outputs) {
    let (h64, a64, d64) = (to_f64(h), to_f64(a), to_f64(d_out));
    let f = forward_ref(s, &h64, &a64);
    let (dh, da) = backward_ref(s, &h64, &f.g, &d64);
    let m_ = s.tables;
    // Σ_j |d_out · h_m| per (row, table): the magnitude of dg.
    let dg_mag = |b: usize, m: usize| -> f64 {
        (0..s.cols)
            .map(|j| (d64[b * s.cols + j] * h64[s.at(m, b, j)]).abs())
            .sum()
    };
    for b in 0..s.rows_cap {
        let live = b < s.rows;
        for m in 0..m_ {
            let i = b * m_ + m;
            if !live {
                assert!(
                    o.g[i].is_nan() && o.da[i].is_nan(),
                    "g/da[{b}, {m}] written"
                );
                continue;
            }
            FORWARD.check("g", i, o.g[i], f.g[i], f.g[i]);
            let mag = f.g[i]
                * (dg_mag(b, m) + (0..m_).map(|k| f.g[b * m_ + k] * dg_mag(b, k)).sum::<f64>());
            BACKWARD.check("da", i, o.da[i], da[i], mag);
        }
        for j in 0..s.cols {
            let i = b * s.cols + j;
            if !live {
                assert!(
                    o.out[i].is_nan(),
                    "out[{b}, {j}] written past the live rows"
                );
                for m in 0..m_ {
                    assert!(o.dh[s.at(m, b, j)].is_nan(), "dh[{m}, {b}, {j}] written");
                }
                continue;
            }
            let mag: f64 = (0..m_)
                .map(|m| f.g[b * m_ + m] * h64[s.at(m, b, j)].abs())
                .sum();
            FORWARD.check("out", i, o.out[i], f.out[i], mag);
            for m in 0..m_ {
                let k = s.at(m, b, j);
                FORWARD.check("dh", k, o.dh[k], dh[k], dh[k].abs());
            }
        }
    }
}

/// Seeded inputs: h, d_out in [-1, 1), logits in [-3, 3).
fn inputs(s: Shape, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut rng = Rng::new(seed);
    let h = random_f32(&mut rng, s.elems());
    let a: Vec<f32> = random_f32(&mut rng, s.rows_cap * s.tables)
        .into_iter()
        .map(|v| 3.0 * v)
        .collect();
    let d_out = random_f32(&mut rng, s.rows_cap * s.cols);
    (h, a, d_out)
}

#[test]
fn gate_reference_backward_matches_finite_differences() {
    for (i, (tables, rows, cols)) in [(1, 3, 4), (2, 3, 5), (5, 2, 7), (5, 1, 3)]
        .into_iter()
        .enumerate()
    {
        let s = Shape {
            tables,
            rows,
            rows_cap: rows,
            cols,
        };
        let (h, a, d_out) = inputs(s, 40 + i as u64);
        let (h, mut a, d_out) = (to_f64(&h), to_f64(&a), to_f64(&d_out));
        if tables > 1 {
            a[1] += 8.0; // a nearly saturated row: the gradient must still be right there
        }
        let loss = |h: &[f64], a: &[f64]| -> f64 {
            let f = forward_ref(s, h, a);
            f.out.iter().zip(&d_out).map(|(o, d)| o * d).sum()
        };
        let f = forward_ref(s, &h, &a);
        let (dh, da) = backward_ref(s, &h, &f.g, &d_out);
        check_gradient("dh", &h, &dh, |x| loss(x, &a));
        check_gradient("da", &a, &da, |x| loss(&h, x));
    }
}

/// (tables, rows, rows_cap, cols): M ∈ {1, 2, 5}, awkward widths (1, 7, 33, 130, 257: below, at
/// and past the lanes per table), rows = 0 and rows < cap; M = 40 and 70 take the backward's
/// one-lane-per-table path (M > WG / 2), 70 with tables past the workgroup size.
const SHAPES: [(usize, usize, usize, usize); 12] = [
    (1, 1, 1, 1),
    (1, 33, 40, 130),
    (2, 2, 2, 1),
    (2, 257, 260, 33),
    (2, 9, 9, 257),
    (5, 33, 35, 7),
    (5, 64, 64, 130),
    (5, 0, 6, 7),
    (1, 0, 3, 3),
    (5, 3, 7, 257),
    (40, 5, 6, 9),
    (70, 4, 4, 33),
];

#[test]
fn gate_forward_and_backward_match_reference() {
    for (i, (tables, rows, rows_cap, cols)) in SHAPES.into_iter().enumerate() {
        let s = Shape {
            tables,
            rows,
            rows_cap,
            cols,
        };
        let (h, a, d_out) = inputs(s, 50 + i as u64);
        let o = run_gate(gpu(), s, &h, &a, &d_out);
        check_against_reference(s, &h, &a, &d_out, &o);
    }
}

#[test]
fn gate_with_one_table_passes_its_input_through() {
    let s = Shape {
        tables: 1,
        rows: 17,
        rows_cap: 17,
        cols: 9,
    };
    let (h, a, d_out) = inputs(s, 60);
    let o = run_gate(gpu(), s, &h, &a, &d_out);
    // softmax of one logit is exactly 1: out = h, dh = d_out, da = 1·(dg − dg) = 0, bit for bit.
    assert!(o.g.iter().all(|&g| g == 1.0), "{:?}", o.g);
    assert_eq!(o.out, h);
    assert_eq!(o.dh, d_out);
    assert!(o.da.iter().all(|&v| v == 0.0), "{:?}", o.da);
}

/// One logit 500 above the others: exp(500) overflows f32, so only the max shift keeps this finite.
/// The cold weights underflow to exactly 0, the hot one is exactly 1: out is the hot table's h and
/// the gradients follow exactly.
#[test]
fn gate_saturates_on_a_hot_logit() {
    let s = Shape {
        tables: 5,
        rows: 30,
        rows_cap: 31,
        cols: 70,
    };
    let (h, mut a, d_out) = inputs(s, 70);
    let hot = |b: usize| (b * 3) % s.tables;
    for b in 0..s.rows_cap {
        a[b * s.tables + hot(b)] += 500.0;
    }
    let o = run_gate(gpu(), s, &h, &a, &d_out);
    for b in 0..s.rows {
        for m in 0..s.tables {
            let i = b * s.tables + m;
            let want = if m == hot(b) { 1.0 } else { 0.0 };
            assert_eq!(o.g[i], want, "g[{b}, {m}]");
            assert_eq!(o.da[i], 0.0, "da[{b}, {m}]");
            for j in 0..s.cols {
                let d = d_out[b * s.cols + j];
                assert_eq!(o.dh[s.at(m, b, j)], want * d, "dh[{m}, {b}, {j}]");
            }
        }
        for j in 0..s.cols {
            assert_eq!(
                o.out[b * s.cols + j],
                h[s.at(hot(b), b, j)],
                "out[{b}, {j}]"
            );
        }
    }
    // The same inputs against the reference, and the padding row untouched.
    check_against_reference(s, &h, &a, &d_out, &o);
}

#[test]
fn gate_is_bitwise_deterministic() {
    let s = Shape {
        tables: 5,
        rows: 257,
        rows_cap: 257,
        cols: 130,
    };
    let (h, a, d_out) = inputs(s, 80);
    let bits = || {
        let o = run_gate(gpu(), s, &h, &a, &d_out);
        [o.g, o.out, o.dh, o.da]
            .concat()
            .into_iter()
            .map(f32::to_bits)
            .collect::<Vec<_>>()
    };
    assert_eq!(bits(), bits());
}

#[test]
fn gate_matches_pytorch_fixture() {
    let fx = Fixture::load("gate");
    for case in ["m1", "m2", "m5"] {
        let key = |t: &str| format!("{case}.{t}");
        let shape = fx.shape(&key("h")).to_vec();
        let s = Shape {
            tables: shape[0],
            rows: shape[1],
            rows_cap: shape[1],
            cols: shape[2],
        };
        let (h, a, d_out) = (fx.f32(&key("h")), fx.f32(&key("a")), fx.f32(&key("d_out")));
        // The reference agrees with autograd to f64 rounding.
        let f = forward_ref(s, &to_f64(&h), &to_f64(&a));
        let (dh, da) = backward_ref(s, &to_f64(&h), &f.g, &to_f64(&d_out));
        for (name, mine, torch) in [
            ("g", &f.g, fx.f64(&key("g"))),
            ("out", &f.out, fx.f64(&key("out"))),
            ("dh", &dh, fx.f64(&key("dh"))),
            ("da", &da, fx.f64(&key("da"))),
        ] {
            assert_eq!(mine.len(), torch.len(), "{case}.{name} length");
            for (i, (x, y)) in mine.iter().zip(torch).enumerate() {
                assert!(
                    (x - y).abs() <= 1e-12 * (1.0 + y.abs()),
                    "{case}.{name}[{i}]: {x} vs {y}"
                );
            }
        }
        // The GPU against the fixture, with the reference's tolerances and magnitudes.
        let o = run_gate(gpu(), s, &h, &a, &d_out);
        check_against_reference(s, &h, &a, &d_out, &o);
        for (i, (&got, &want)) in o.out.iter().zip(fx.f64(&key("out"))).enumerate() {
            FORWARD.check("torch out", i, got, want, 1.0);
        }
        for (i, (&got, &want)) in o.da.iter().zip(fx.f64(&key("da"))).enumerate() {
            BACKWARD.check("torch da", i, got, want, s.cols as f64);
        }
    }
}

#[test]
fn gate_records_two_dispatches_forward_and_one_backward_whatever_the_tables() {
    let gpu = private_gpu();
    for tables in [1u32, 5, 100] {
        let (cap, cols) = (8u32, 3u32);
        let buf = |n: u32| upload(&gpu, "b", &vec![0.0; n as usize]);
        let (h, dh) = (buf(tables * cap * cols), buf(tables * cap * cols));
        let (a, g, da) = (buf(cap * tables), buf(cap * tables), buf(cap * tables));
        let (out, d_out) = (buf(cap * cols), buf(cap * cols));
        let bufs = GateCombineBuffers {
            h: &h,
            logits: &a,
            gate: &g,
            out: &out,
            grad_out: &d_out,
            grad_h: &dh,
            grad_logits: &da,
        };
        let op = GateCombine::new(&gpu, tables, cap, cols, &bufs).expect("gate");
        let before = gpu.dispatches();
        run_once(&gpu, |pass| op.record_forward(&gpu, pass));
        let forward = gpu.dispatches() - before;
        run_once(&gpu, |pass| op.record_backward(&gpu, pass));
        let backward = gpu.dispatches() - before - forward;
        gpu.sync().expect("gpu");
        assert_eq!((forward, backward), op.dispatches(), "{tables} tables");
        assert_eq!(op.dispatches(), (2, 1));
    }
}

#[test]
fn gate_rejects_bad_shapes_short_buffers_and_too_many_rows() {
    let gpu = gpu();
    let (t, cap, cols) = (3usize, 4usize, 5usize);
    let buf = |n: usize| upload(gpu, "b", &vec![1.0; n]);
    let (h, dh) = (buf(t * cap * cols), buf(t * cap * cols));
    let (a, g, da) = (buf(cap * t), buf(cap * t), buf(cap * t));
    let (out, d_out) = (buf(cap * cols), buf(cap * cols));
    let short_da = buf(cap * t - 1);
    let good = GateCombineBuffers {
        h: &h,
        logits: &a,
        gate: &g,
        out: &out,
        grad_out: &d_out,
        grad_h: &dh,
        grad_logits: &da,
    };
    let (t32, cap32, c32) = (t as u32, cap as u32, cols as u32);
    let mut op = GateCombine::new(gpu, t32, cap32, c32, &good).expect("fits");
    assert!(op.set_rows(gpu, 5).is_err());
    op.set_rows(gpu, 4).expect("rows = cap");
    let short = GateCombineBuffers {
        grad_logits: &short_da,
        ..good
    };
    let error = |tables: u32, cap: u32, cols: u32, b: &GateCombineBuffers| {
        GateCombine::new(gpu, tables, cap, cols, b)
            .err()
            .unwrap_or_else(|| panic!("{tables} tables × {cap} rows × {cols} cols accepted"))
            .to_string()
    };
    let e = error(t32, cap32, c32, &short);
    assert!(e.contains("grad_logits") && e.contains("12 f32"), "{e}");
    let e = error(GATE_MAX_TABLES + 1, 1, 1, &good);
    assert!(e.contains("257 tables, at most 256"), "{e}");
    for (tables, cols) in [(0, c32), (t32, 0)] {
        let e = error(tables, 1, cols, &good);
        assert!(e.contains("need tables, cols ≥ 1"), "{e}");
    }
}

#[test]
fn gate_params_match_wgsl_layout() {
    assert_layout(
        &shaders::GATE,
        "GateParams",
        size_of::<GateParams>(),
        offsets!(GateParams: tables, rows, rows_cap, cols),
    );
}
