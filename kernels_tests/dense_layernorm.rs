//! LayerNorm (`norm.wgsl`) against an f64 reference, its backward against finite differences, and
//! against the PyTorch fixture.

use wgrec::kernels::dense::norm::{LayerNorm, LayerNormBuffers, LayerNormSpec};
use wgrec::rng::Rng;
use wgrec::Gpu;

use crate::common::{check_gradient, download, gpu, random_f32, upload};
use crate::dense_norm::{check_all, run, to_f64, Shape, EPS, NORM};
use crate::fixtures::Fixture;

struct LnForward {
    y: Vec<f64>,
    mean: Vec<f64>,
    inv_std: Vec<f64>,
}

fn ln_forward_ref(s: Shape, x: &[f64], gamma: &[f64], beta: &[f64], eps: f64) -> LnForward {
    let mut out = LnForward {
        y: vec![f64::NAN; s.elems()],
        mean: vec![f64::NAN; s.tables * s.rows_cap],
        inv_std: vec![f64::NAN; s.tables * s.rows_cap],
    };
    let n = s.cols as f64;
    for t in 0..s.tables {
        for r in 0..s.rows {
            let mu = (0..s.cols).map(|c| x[s.at(t, r, c)]).sum::<f64>() / n;
            let var = (0..s.cols)
                .map(|c| (x[s.at(t, r, c)] - mu).powi(2))
                .sum::<f64>()
                / n;
            let is = 1.0 / (var + eps).sqrt();
            for c in 0..s.cols {
                let i = s.at(t, r, c);
                out.y[i] = (x[i] - mu) * is * gamma[t * s.cols + c] + beta[t * s.cols + c];
            }
            out.mean[t * s.rows_cap + r] = mu;
            out.inv_std[t * s.rows_cap + r] = is;
        }
    }
    out
}

fn ln_backward_ref(
    s: Shape,
    x: &[f64],
    gamma: &[f64],
    g: &[f64],
    mean: &[f64],
    inv_std: &[f64],
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut dx = vec![f64::NAN; s.elems()];
    let mut dgamma = vec![0.0; s.tables * s.cols];
    let mut dbeta = vec![0.0; s.tables * s.cols];
    let n = s.cols as f64;
    for t in 0..s.tables {
        for r in 0..s.rows {
            let (mu, is) = (mean[t * s.rows_cap + r], inv_std[t * s.rows_cap + r]);
            let xh = |c: usize| (x[s.at(t, r, c)] - mu) * is;
            let gg = |c: usize| gamma[t * s.cols + c] * g[s.at(t, r, c)];
            let s1: f64 = (0..s.cols).map(gg).sum();
            let s2: f64 = (0..s.cols).map(|c| gg(c) * xh(c)).sum();
            for c in 0..s.cols {
                dx[s.at(t, r, c)] = is * (gg(c) - s1 / n - xh(c) * s2 / n);
                dgamma[t * s.cols + c] += g[s.at(t, r, c)] * xh(c);
                dbeta[t * s.cols + c] += g[s.at(t, r, c)];
            }
        }
    }
    (dx, dgamma, dbeta)
}

#[test]
fn layernorm_reference_backward_matches_finite_differences() {
    for (tables, rows, cols) in [(2, 3, 5), (1, 2, 1), (1, 4, 2)] {
        let s = Shape {
            tables,
            rows,
            rows_cap: rows + 1,
            cols,
        };
        let mut rng = Rng::new(21 + cols as u64);
        let x = to_f64(&random_f32(&mut rng, s.elems()));
        let gamma = to_f64(&random_f32(&mut rng, tables * cols));
        let beta = to_f64(&random_f32(&mut rng, tables * cols));
        let w = to_f64(&random_f32(&mut rng, s.elems()));
        let fwd = |x: &[f64], gamma: &[f64], beta: &[f64]| {
            let y = ln_forward_ref(s, x, gamma, beta, EPS).y;
            (0..s.elems())
                .filter(|i| !y[*i].is_nan())
                .map(|i| w[i] * y[i])
                .sum::<f64>()
        };
        let f = ln_forward_ref(s, &x, &gamma, &beta, EPS);
        let (dx, dgamma, dbeta) = ln_backward_ref(s, &x, &gamma, &w, &f.mean, &f.inv_std);
        let dx: Vec<f64> = dx
            .iter()
            .map(|v| if v.is_nan() { 0.0 } else { *v })
            .collect();
        check_gradient("ln dx", &x, &dx, |x| fwd(x, &gamma, &beta));
        check_gradient("ln dgamma", &gamma, &dgamma, |g| fwd(&x, g, &beta));
        check_gradient("ln dbeta", &beta, &dbeta, |b| fwd(&x, &gamma, b));
    }
}

/// LayerNorm forward + backward on the GPU; returns (y, mean, inv_std, dx, dγ, dβ) as downloaded.
fn run_layernorm(
    gpu: &Gpu,
    s: Shape,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    g: &[f32],
) -> [Vec<f32>; 6] {
    let per_col = s.tables * s.cols;
    let per_row = s.tables * s.rows_cap;
    let (xb, gb) = (upload(gpu, "x", x), upload(gpu, "g", g));
    let (gammab, betab) = (upload(gpu, "gamma", gamma), upload(gpu, "beta", beta));
    let nan = |n: usize| upload(gpu, "out", &vec![f32::NAN; n]);
    let (y, mean, inv_std, dx, dgamma, dbeta) = (
        nan(s.elems()),
        nan(per_row),
        nan(per_row),
        nan(s.elems()),
        nan(per_col),
        nan(per_col),
    );
    let bufs = LayerNormBuffers {
        x: &xb,
        y: &y,
        gamma: &gammab,
        beta: &betab,
        mean: &mean,
        inv_std: &inv_std,
        grad_y: &gb,
        grad_x: &dx,
        grad_gamma: &dgamma,
        grad_beta: &dbeta,
    };
    let spec = LayerNormSpec::new(s.tables as u32, s.rows_cap as u32, s.cols as u32);
    let mut op = LayerNorm::new(gpu, spec, &bufs).expect("layernorm");
    op.set_rows(gpu, s.rows as u32).expect("rows");
    run(gpu, |pass| {
        op.record_forward(gpu, pass);
        op.record_backward(gpu, pass);
    });
    [
        (&y, s.elems()),
        (&mean, per_row),
        (&inv_std, per_row),
        (&dx, s.elems()),
        (&dgamma, per_col),
        (&dbeta, per_col),
    ]
    .map(|(b, n)| download(gpu, b, n))
}

fn check_layernorm(s: Shape, seed: u64) {
    let mut rng = Rng::new(seed);
    let x: Vec<f32> = random_f32(&mut rng, s.elems())
        .iter()
        .map(|v| 1.5 * v - 0.2)
        .collect();
    let gamma = random_f32(&mut rng, s.tables * s.cols);
    let beta = random_f32(&mut rng, s.tables * s.cols);
    let g = random_f32(&mut rng, s.elems());
    let [y, mean, inv_std, dx, dgamma, dbeta] = run_layernorm(gpu(), s, &x, &gamma, &beta, &g);
    let (x, gamma, beta, g) = (to_f64(&x), to_f64(&gamma), to_f64(&beta), to_f64(&g));
    let f = ln_forward_ref(s, &x, &gamma, &beta, EPS);
    let (wdx, wdgamma, wdbeta) = ln_backward_ref(s, &x, &gamma, &g, &f.mean, &f.inv_std);
    let n = s.elems();
    let tr = |i: usize| i / s.cols;
    let tc = |i: usize| (i / (s.rows_cap * s.cols)) * s.cols + i % s.cols;
    let xh = |i: usize| {
        if f.mean[tr(i)].is_nan() {
            0.0
        } else {
            (x[i] - f.mean[tr(i)]).abs() * f.inv_std[tr(i)]
        }
    };
    let mag_y: Vec<f64> = (0..n)
        .map(|i| gamma[tc(i)].abs() * (xh(i) + 1.0) + beta[tc(i)].abs())
        .collect();
    check_all("ln y", NORM, &y, &f.y, &mag_y);
    let mag_mean: Vec<f64> = f.mean.iter().map(|m| 1.0 + m.abs()).collect();
    check_all("ln mean", NORM, &mean, &f.mean, &mag_mean);
    check_all("ln inv_std", NORM, &inv_std, &f.inv_std, &f.inv_std);
    // Row sums of |γg| and |γg·x̂| bound the error of dx; column sums of |g|, |g·x̂| that of dγ, dβ.
    let (mut s1, mut s2) = (
        vec![0.0; s.tables * s.rows_cap],
        vec![0.0; s.tables * s.rows_cap],
    );
    let (mut sg, mut sgx) = (vec![0.0; s.tables * s.cols], vec![0.0; s.tables * s.cols]);
    for t in 0..s.tables {
        for r in 0..s.rows {
            for c in 0..s.cols {
                let i = s.at(t, r, c);
                s1[tr(i)] += (gamma[tc(i)] * g[i]).abs();
                s2[tr(i)] += (gamma[tc(i)] * g[i]).abs() * xh(i);
                sg[tc(i)] += g[i].abs();
                sgx[tc(i)] += g[i].abs() * xh(i);
            }
        }
    }
    let mag_dx: Vec<f64> = (0..n)
        .map(|i| {
            f.inv_std[tr(i)].abs()
                * ((gamma[tc(i)] * g[i]).abs() + (s1[tr(i)] + xh(i) * s2[tr(i)]) / s.cols as f64)
        })
        .collect();
    check_all("ln dx", NORM, &dx, &wdx, &mag_dx);
    check_all("ln dgamma", NORM, &dgamma, &wdgamma, &sgx);
    check_all("ln dbeta", NORM, &dbeta, &wdbeta, &sg);
}

#[test]
fn layernorm_matches_reference_for_awkward_sizes() {
    let cases = [
        (1, 1, 7),
        (1, 2, 1),
        (1, 33, 130),
        (1, 257, 400),
        (3, 1, 400),
        (3, 2, 7),
        (3, 33, 1),
        (3, 257, 130),
    ];
    for (i, (tables, rows, cols)) in cases.into_iter().enumerate() {
        check_layernorm(
            Shape {
                tables,
                rows,
                rows_cap: rows + i,
                cols,
            },
            700 + i as u64,
        );
    }
}

#[test]
fn layernorm_with_no_rows_writes_zero_parameter_gradients_only() {
    for tables in [1, 3] {
        check_layernorm(
            Shape {
                tables,
                rows: 0,
                rows_cap: 5,
                cols: 7,
            },
            800 + tables as u64,
        );
    }
}

#[test]
fn layernorm_is_bitwise_deterministic() {
    let s = Shape {
        tables: 3,
        rows: 257,
        rows_cap: 257,
        cols: 130,
    };
    let mut rng = Rng::new(900);
    let (x, gamma, beta, g) = (
        random_f32(&mut rng, s.elems()),
        random_f32(&mut rng, s.tables * s.cols),
        random_f32(&mut rng, s.tables * s.cols),
        random_f32(&mut rng, s.elems()),
    );
    let bits = || {
        run_layernorm(gpu(), s, &x, &gamma, &beta, &g)
            .map(|v| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>())
    };
    assert_eq!(bits(), bits());
}

#[test]
fn layernorm_matches_pytorch_fixture() {
    let fx = Fixture::load("layernorm");
    for case in ["t1", "t3"] {
        let key = |k: &str| format!("{case}.{k}");
        let shape = fx.shape(&key("x")).to_vec();
        let s = Shape {
            tables: shape[0],
            rows: shape[1],
            rows_cap: shape[1],
            cols: shape[2],
        };
        let [y, _, _, dx, dgamma, dbeta] = run_layernorm(
            gpu(),
            s,
            &fx.f32(&key("x")),
            &fx.f32(&key("gamma")),
            &fx.f32(&key("beta")),
            &fx.f32(&key("g")),
        );
        for (what, got) in [("y", y), ("dx", dx), ("dgamma", dgamma), ("dbeta", dbeta)] {
            let want = fx.f64(&key(what));
            // Fixture magnitudes: the largest reference value of each tensor.
            let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
            for i in 0..want.len() {
                NORM.check(&format!("{case}.{what}"), i, got[i], want[i], scale);
            }
        }
    }
}
