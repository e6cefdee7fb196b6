//! BatchNorm1d and LayerNorm (`norm.wgsl`) against f64 references, their backward against finite
//! differences, and both against PyTorch fixtures.

use std::mem::size_of;

use wgrec::kernels::dense::norm::{
    BatchNorm, BatchNormBuffers, BatchNormSpec, LayerNorm, LayerNormBuffers, LayerNormSpec,
    NormParams,
};
use wgrec::kernels::run_once;
use wgrec::rng::Rng;
use wgrec::shaders;
use wgrec::Gpu;

use crate::common::{check_gradient, download, gpu, poison, random_f32, upload, Tolerance};
use crate::fixtures::Fixture;
use crate::registry::{assert_layout, offsets};

/// Normalised outputs and gradients: the mean and variance are serial f32 sums (≤ 400 terms for
/// LN, up to 4096 rows for BN) whose rounding error on random data grows like √n·ε ≤ 4e-6 of
/// Σ|x|/n (σ-scale; the worst case n·ε is 2.4e-5 at 400 terms), carried through x̂ = O(1) and one
/// more reduction in backward; magnitudes are the Σ|terms| of each value, so 1e-4 leaves margin.
pub const NORM: Tolerance = Tolerance {
    relative: 1e-4,
    absolute: 1e-5,
};

/// PyTorch's defaults, which `BatchNormSpec::new` and `LayerNormSpec::new` take.
const MOMENTUM: f64 = 0.1;
pub const EPS: f64 = 1e-5;

/// Eval forward and running statistics: a handful of f32 operations per value (≤ 4 roundings)
/// on top of the batch statistics' own NORM-level error.
const SHORT: Tolerance = Tolerance {
    relative: 1e-4,
    absolute: 1e-6,
};

pub fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&a| a as f64).collect()
}

/// Runs `record` in one pass and waits, failing on any GPU error.
pub fn run(gpu: &Gpu, record: impl FnOnce(&mut wgpu::ComputePass<'_>)) {
    run_once(gpu, record);
    gpu.sync().expect("gpu");
}

/// Shape of one problem: `rows` live rows in slabs of `rows_cap`.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub tables: usize,
    pub rows: usize,
    pub rows_cap: usize,
    pub cols: usize,
}

impl Shape {
    pub fn at(&self, t: usize, r: usize, c: usize) -> usize {
        (t * self.rows_cap + r) * self.cols + c
    }
    pub fn elems(&self) -> usize {
        self.tables * self.rows_cap * self.cols
    }
}

// ---------------------------------------------------------------- BatchNorm reference

struct BnForward {
    y: Vec<f64>,
    mean: Vec<f64>,
    inv_std: Vec<f64>,
    running_mean: Vec<f64>,
    running_var: Vec<f64>,
}

/// Training forward over the live rows of `[tables, rows_cap, cols]` (the defined edge cases as in
/// norm.rs: rows = 1 keeps the running variance, rows = 0 keeps both and saves zeros).
fn bn_train_ref(
    s: Shape,
    x: &[f64],
    gamma: &[f64],
    beta: &[f64],
    rm: &[f64],
    rv: &[f64],
) -> BnForward {
    let (momentum, eps) = (MOMENTUM, EPS);
    let mut out = BnForward {
        y: vec![f64::NAN; s.elems()],
        mean: vec![0.0; s.tables * s.cols],
        inv_std: vec![0.0; s.tables * s.cols],
        running_mean: rm.to_vec(),
        running_var: rv.to_vec(),
    };
    let n = s.rows as f64;
    for t in 0..s.tables {
        for c in 0..s.cols {
            let tc = t * s.cols + c;
            if s.rows == 0 {
                continue;
            }
            let mu = (0..s.rows).map(|r| x[s.at(t, r, c)]).sum::<f64>() / n;
            let q: f64 = (0..s.rows).map(|r| (x[s.at(t, r, c)] - mu).powi(2)).sum();
            let is = 1.0 / (q / n + eps).sqrt();
            for r in 0..s.rows {
                let i = s.at(t, r, c);
                out.y[i] = (x[i] - mu) * is * gamma[tc] + beta[tc];
            }
            out.mean[tc] = mu;
            out.inv_std[tc] = is;
            out.running_mean[tc] = (1.0 - momentum) * rm[tc] + momentum * mu;
            if s.rows > 1 {
                out.running_var[tc] = (1.0 - momentum) * rv[tc] + momentum * q / (n - 1.0);
            }
        }
    }
    out
}

/// dx, dγ, dβ of loss = Σ g·y given the saved statistics.
fn bn_backward_ref(
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
    for t in 0..s.tables {
        for c in 0..s.cols {
            let tc = t * s.cols + c;
            let xh = |r: usize| (x[s.at(t, r, c)] - mean[tc]) * inv_std[tc];
            let sg: f64 = (0..s.rows).map(|r| g[s.at(t, r, c)]).sum();
            let sgx: f64 = (0..s.rows).map(|r| g[s.at(t, r, c)] * xh(r)).sum();
            dgamma[tc] = sgx;
            dbeta[tc] = sg;
            let n = s.rows as f64;
            for r in 0..s.rows {
                let i = s.at(t, r, c);
                dx[i] = gamma[tc] * inv_std[tc] * (g[i] - sg / n - xh(r) * sgx / n);
            }
        }
    }
    (dx, dgamma, dbeta)
}

fn bn_eval_ref(
    s: Shape,
    x: &[f64],
    gamma: &[f64],
    beta: &[f64],
    rm: &[f64],
    rv: &[f64],
    eps: f64,
) -> Vec<f64> {
    let mut y = vec![f64::NAN; s.elems()];
    for t in 0..s.tables {
        for r in 0..s.rows {
            for c in 0..s.cols {
                let (i, tc) = (s.at(t, r, c), t * s.cols + c);
                y[i] = (x[i] - rm[tc]) / (rv[tc] + eps).sqrt() * gamma[tc] + beta[tc];
            }
        }
    }
    y
}

#[test]
fn batchnorm_reference_backward_matches_finite_differences() {
    for (tables, rows, cols) in [(2, 5, 3), (1, 2, 2), (1, 1, 2)] {
        let s = Shape {
            tables,
            rows,
            rows_cap: rows + 1,
            cols,
        };
        let mut rng = Rng::new(11 + rows as u64);
        let x = to_f64(&random_f32(&mut rng, s.elems()));
        let gamma = to_f64(&random_f32(&mut rng, tables * cols));
        let beta = to_f64(&random_f32(&mut rng, tables * cols));
        let w = to_f64(&random_f32(&mut rng, s.elems()));
        let stats = vec![0.5; tables * cols];
        let fwd = |x: &[f64], gamma: &[f64], beta: &[f64]| {
            let y = bn_train_ref(s, x, gamma, beta, &stats, &stats).y;
            (0..s.elems())
                .filter(|i| !y[*i].is_nan())
                .map(|i| w[i] * y[i])
                .sum::<f64>()
        };
        let f = bn_train_ref(s, &x, &gamma, &beta, &stats, &stats);
        let (dx, dgamma, dbeta) = bn_backward_ref(s, &x, &gamma, &w, &f.mean, &f.inv_std);
        // Padding rows do not reach the loss: their gradient is 0.
        let dx: Vec<f64> = dx
            .iter()
            .map(|v| if v.is_nan() { 0.0 } else { *v })
            .collect();
        check_gradient("bn dx", &x, &dx, |x| fwd(x, &gamma, &beta));
        check_gradient("bn dgamma", &gamma, &dgamma, |g| fwd(&x, g, &beta));
        check_gradient("bn dbeta", &beta, &dbeta, |b| fwd(&x, &gamma, b));
    }
}

// ---------------------------------------------------------------- BatchNorm on the GPU

struct BnCase {
    s: Shape,
    x: Vec<f32>,
    gamma: Vec<f32>,
    beta: Vec<f32>,
    rm: Vec<f32>,
    rv: Vec<f32>,
    g: Vec<f32>,
}

impl BnCase {
    fn random(s: Shape, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let per_col = s.tables * s.cols;
        BnCase {
            x: random_f32(&mut rng, s.elems())
                .iter()
                .map(|v| 2.0 * v + 0.3)
                .collect(),
            gamma: random_f32(&mut rng, per_col),
            beta: random_f32(&mut rng, per_col),
            rm: random_f32(&mut rng, per_col),
            rv: (0..per_col).map(|_| rng.uniform(0.5, 1.5)).collect(),
            g: random_f32(&mut rng, s.elems()),
            s,
        }
    }
}

/// The GPU side of a BatchNorm problem: the op and every buffer it binds.
struct BnGpu {
    op: BatchNorm,
    x: wgpu::Buffer,
    y: wgpu::Buffer,
    rm: wgpu::Buffer,
    rv: wgpu::Buffer,
    mean: wgpu::Buffer,
    inv_std: wgpu::Buffer,
    g: wgpu::Buffer,
    dx: wgpu::Buffer,
    dgamma: wgpu::Buffer,
    dbeta: wgpu::Buffer,
}

impl BnGpu {
    fn new(gpu: &Gpu, case: &BnCase) -> Self {
        let s = case.s;
        let gamma = upload(gpu, "gamma", &case.gamma);
        let beta = upload(gpu, "beta", &case.beta);
        let out = |label| upload(gpu, label, &vec![f32::NAN; s.elems()]);
        let stat = |label| upload(gpu, label, &vec![f32::NAN; s.tables * s.cols]);
        let (x, y, g, dx) = (
            upload(gpu, "x", &case.x),
            out("y"),
            upload(gpu, "g", &case.g),
            out("dx"),
        );
        let (rm, rv) = (upload(gpu, "rm", &case.rm), upload(gpu, "rv", &case.rv));
        let (mean, inv_std, dgamma, dbeta) =
            (stat("mean"), stat("inv_std"), stat("dgamma"), stat("dbeta"));
        let spec = BatchNormSpec::new(s.tables as u32, s.rows_cap as u32, s.cols as u32);
        let bufs = BatchNormBuffers {
            x: &x,
            y: &y,
            gamma: &gamma,
            beta: &beta,
            running_mean: &rm,
            running_var: &rv,
            mean: &mean,
            inv_std: &inv_std,
            grad_y: &g,
            grad_x: &dx,
            grad_gamma: &dgamma,
            grad_beta: &dbeta,
        };
        let mut op = BatchNorm::new(gpu, spec, &bufs).expect("batchnorm");
        op.set_rows(gpu, s.rows as u32).expect("rows");
        BnGpu {
            op,
            x,
            y,
            rm,
            rv,
            mean,
            inv_std,
            g,
            dx,
            dgamma,
            dbeta,
        }
    }
}

pub fn check_all(what: &str, tol: Tolerance, got: &[f32], want: &[f64], magnitude: &[f64]) {
    for i in 0..want.len() {
        if want[i].is_nan() {
            assert!(
                got[i].is_nan(),
                "{what}[{i}] = {} written outside the live rows",
                got[i]
            );
        } else {
            tol.check(what, i, got[i], want[i], magnitude[i]);
        }
    }
}

/// One training step (forward + backward) and then an eval forward, all against the reference.
fn check_batchnorm(s: Shape, seed: u64) {
    let gpu = gpu();
    let case = BnCase::random(s, seed);
    let b = BnGpu::new(gpu, &case);
    run(gpu, |pass| {
        b.op.record_train(gpu, pass);
        b.op.record_backward(gpu, pass);
    });
    let (x, gamma, beta, g) = (
        to_f64(&case.x),
        to_f64(&case.gamma),
        to_f64(&case.beta),
        to_f64(&case.g),
    );
    let f = bn_train_ref(s, &x, &gamma, &beta, &to_f64(&case.rm), &to_f64(&case.rv));
    let (dx, dgamma, dbeta) = bn_backward_ref(s, &x, &gamma, &g, &f.mean, &f.inv_std);
    let per_col = s.tables * s.cols;
    let n = s.elems();
    let tc = |i: usize| (i / (s.rows_cap * s.cols)) * s.cols + i % s.cols;
    let xh = |i: usize| (x[i] - f.mean[tc(i)]).abs() * f.inv_std[tc(i)];
    let mag_y: Vec<f64> = (0..n)
        .map(|i| gamma[tc(i)].abs() * (xh(i) + 1.0) + beta[tc(i)].abs())
        .collect();
    check_all("bn y", NORM, &download(gpu, &b.y, n), &f.y, &mag_y);
    let mag_mean: Vec<f64> = (0..per_col).map(|i| 1.0 + f.mean[i].abs()).collect();
    check_all(
        "bn mean",
        NORM,
        &download(gpu, &b.mean, per_col),
        &f.mean,
        &mag_mean,
    );
    check_all(
        "bn inv_std",
        NORM,
        &download(gpu, &b.inv_std, per_col),
        &f.inv_std,
        &f.inv_std,
    );
    let rm_mag: Vec<f64> = f.running_mean.iter().map(|v| v.abs() + 1.0).collect();
    check_all(
        "bn running_mean",
        SHORT,
        &download(gpu, &b.rm, per_col),
        &f.running_mean,
        &rm_mag,
    );
    check_all(
        "bn running_var",
        SHORT,
        &download(gpu, &b.rv, per_col),
        &f.running_var,
        &f.running_var,
    );
    let mut sum_g = vec![0.0; per_col];
    let mut sum_gx = vec![0.0; per_col];
    for t in 0..s.tables {
        for r in 0..s.rows {
            for c in 0..s.cols {
                let i = s.at(t, r, c);
                sum_g[tc(i)] += g[i].abs();
                sum_gx[tc(i)] += (g[i] * xh(i)).abs();
            }
        }
    }
    let rows = s.rows.max(1) as f64;
    let mag_dx: Vec<f64> = (0..n)
        .map(|i| {
            (gamma[tc(i)] * f.inv_std[tc(i)]).abs()
                * (g[i].abs() + (sum_g[tc(i)] + xh(i) * sum_gx[tc(i)]) / rows)
        })
        .collect();
    check_all("bn dx", NORM, &download(gpu, &b.dx, n), &dx, &mag_dx);
    check_all(
        "bn dgamma",
        NORM,
        &download(gpu, &b.dgamma, per_col),
        &dgamma,
        &sum_gx,
    );
    check_all(
        "bn dbeta",
        NORM,
        &download(gpu, &b.dbeta, per_col),
        &dbeta,
        &sum_g,
    );

    // Eval from the running statistics the GPU just updated.
    poison(gpu, &b.y);
    run(gpu, |pass| b.op.record_eval(gpu, pass));
    let (rm, rv) = (
        to_f64(&download(gpu, &b.rm, per_col)),
        to_f64(&download(gpu, &b.rv, per_col)),
    );
    let want = bn_eval_ref(s, &x, &gamma, &beta, &rm, &rv, EPS);
    let mag: Vec<f64> = (0..n)
        .map(|i| {
            (x[i].abs() + rm[tc(i)].abs()) * gamma[tc(i)].abs() / (rv[tc(i)] + EPS).sqrt()
                + beta[tc(i)].abs()
        })
        .collect();
    check_all("bn eval y", SHORT, &download(gpu, &b.y, n), &want, &mag);
}

#[test]
fn batchnorm_matches_reference_for_one_table_and_awkward_sizes() {
    for (i, (rows, cols)) in [(1, 7), (2, 1), (33, 130), (257, 400), (5, 1), (4096, 3)]
        .into_iter()
        .enumerate()
    {
        check_batchnorm(
            Shape {
                tables: 1,
                rows,
                rows_cap: rows + 3,
                cols,
            },
            100 + i as u64,
        );
    }
}

#[test]
fn batchnorm_matches_reference_for_three_tables() {
    for (i, (rows, cols)) in [(1, 400), (2, 7), (33, 1), (257, 130), (40, 64)]
        .into_iter()
        .enumerate()
    {
        check_batchnorm(
            Shape {
                tables: 3,
                rows,
                rows_cap: rows + 2 * i,
                cols,
            },
            200 + i as u64,
        );
    }
}

#[test]
fn batchnorm_with_no_rows_keeps_running_stats_and_zeroes_parameter_gradients() {
    for tables in [1, 3] {
        check_batchnorm(
            Shape {
                tables,
                rows: 0,
                rows_cap: 9,
                cols: 7,
            },
            300 + tables as u64,
        );
    }
}

#[test]
fn batchnorm_running_stats_follow_pytorch_momentum_over_steps() {
    let gpu = gpu();
    let s = Shape {
        tables: 3,
        rows: 33,
        rows_cap: 33,
        cols: 130,
    };
    let case = BnCase::random(s, 400);
    let mut b = BnGpu::new(gpu, &case);
    let (gamma, beta) = (to_f64(&case.gamma), to_f64(&case.beta));
    let (mut rm, mut rv) = (to_f64(&case.rm), to_f64(&case.rv));
    let mut rng = Rng::new(401);
    for (step, rows) in [33, 17, 1, 0, 33].into_iter().enumerate() {
        let x = random_f32(&mut rng, s.elems())
            .iter()
            .map(|v| v * (1.0 + step as f32))
            .collect::<Vec<_>>();
        gpu.queue.write_buffer(&b.x, 0, bytemuck::cast_slice(&x));
        b.op.set_rows(gpu, rows as u32).expect("rows");
        run(gpu, |pass| b.op.record_train(gpu, pass));
        let sr = Shape { rows, ..s };
        let f = bn_train_ref(sr, &to_f64(&x), &gamma, &beta, &rm, &rv);
        (rm, rv) = (f.running_mean, f.running_var);
        let n = s.tables * s.cols;
        let mag: Vec<f64> = rm.iter().map(|v| v.abs() + 1.0 + step as f64).collect();
        check_all(
            &format!("step {step} running_mean"),
            SHORT,
            &download(gpu, &b.rm, n),
            &rm,
            &mag,
        );
        check_all(
            &format!("step {step} running_var"),
            SHORT,
            &download(gpu, &b.rv, n),
            &rv,
            &rv,
        );
    }
}

#[test]
fn batchnorm_is_bitwise_deterministic() {
    let gpu = gpu();
    let s = Shape {
        tables: 3,
        rows: 257,
        rows_cap: 257,
        cols: 130,
    };
    let case = BnCase::random(s, 500);
    let outputs = || {
        let b = BnGpu::new(gpu, &case);
        run(gpu, |pass| {
            b.op.record_train(gpu, pass);
            b.op.record_backward(gpu, pass);
        });
        let n = s.tables * s.cols;
        [
            (&b.y, s.elems()),
            (&b.dx, s.elems()),
            (&b.rm, n),
            (&b.rv, n),
            (&b.dgamma, n),
            (&b.dbeta, n),
        ]
        .map(|(buf, len)| {
            download(gpu, buf, len)
                .iter()
                .map(|v| v.to_bits())
                .collect::<Vec<_>>()
        })
    };
    assert_eq!(outputs(), outputs());
}

#[test]
fn batchnorm_matches_pytorch_fixture() {
    let gpu = gpu();
    let fx = Fixture::load("batchnorm");
    for case in ["t1", "t3"] {
        let key = |k: &str| format!("{case}.{k}");
        let shape = fx.shape(&key("x")).to_vec();
        let s = Shape {
            tables: shape[0],
            rows: shape[1],
            rows_cap: shape[1],
            cols: shape[2],
        };
        let c = BnCase {
            s,
            x: fx.f32(&key("x")),
            gamma: fx.f32(&key("gamma")),
            beta: fx.f32(&key("beta")),
            rm: fx.f32(&key("running_mean")),
            rv: fx.f32(&key("running_var")),
            g: fx.f32(&key("g")),
        };
        let mut b = BnGpu::new(gpu, &c);
        run(gpu, |pass| {
            b.op.record_train(gpu, pass);
            b.op.record_backward(gpu, pass);
        });
        let n = s.elems();
        let per_col = s.tables * s.cols;
        // Fixture magnitudes: the largest reference value of each tensor (σ-scale inputs).
        let cmp = |what: &str, buf: &wgpu::Buffer, len: usize| {
            let want = fx.f64(&key(what));
            let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
            let got = download(gpu, buf, len);
            for i in 0..len {
                NORM.check(&format!("{case}.{what}"), i, got[i], want[i], scale);
            }
        };
        cmp("y", &b.y, n);
        cmp("running_mean_after", &b.rm, per_col);
        cmp("running_var_after", &b.rv, per_col);
        cmp("dx", &b.dx, n);
        cmp("dgamma", &b.dgamma, per_col);
        cmp("dbeta", &b.dbeta, per_col);
        let eval_rows = fx.shape(&key("x_eval"))[1];
        let mut x_eval = vec![0.0f32; n];
        let xe = fx.f32(&key("x_eval"));
        for t in 0..s.tables {
            let (from, to) = (t * eval_rows * s.cols, s.at(t, 0, 0));
            x_eval[to..to + eval_rows * s.cols]
                .copy_from_slice(&xe[from..from + eval_rows * s.cols]);
        }
        gpu.queue
            .write_buffer(&b.x, 0, bytemuck::cast_slice(&x_eval));
        b.op.set_rows(gpu, eval_rows as u32).expect("rows");
        run(gpu, |pass| b.op.record_eval(gpu, pass));
        let got = download(gpu, &b.y, n);
        let want = fx.f64(&key("y_eval"));
        for t in 0..s.tables {
            for r in 0..eval_rows {
                for col in 0..s.cols {
                    let w = want[(t * eval_rows + r) * s.cols + col];
                    SHORT.check(
                        &format!("{case}.y_eval"),
                        r,
                        got[s.at(t, r, col)],
                        w,
                        1.0 + w.abs(),
                    );
                }
            }
        }
    }
}

#[test]
fn batchnorm_rejects_bad_shapes_with_numbers() {
    let gpu = gpu();
    let s = Shape {
        tables: 2,
        rows: 4,
        rows_cap: 4,
        cols: 3,
    };
    let mut b = BnGpu::new(gpu, &BnCase::random(s, 600));
    let e = b.op.set_rows(gpu, 5).expect_err("rows > cap").to_string();
    assert!(e.contains('5') && e.contains('4'), "{e}");
    let small = upload(gpu, "small", &[1.0; 5]);
    let spec = BatchNormSpec::new(2, 4, 3);
    let bufs = BatchNormBuffers {
        x: &b.x,
        y: &b.y,
        gamma: &small,
        beta: &small,
        running_mean: &b.rm,
        running_var: &b.rv,
        mean: &b.mean,
        inv_std: &b.inv_std,
        grad_y: &b.g,
        grad_x: &b.dx,
        grad_gamma: &b.dgamma,
        grad_beta: &b.dbeta,
    };
    let e = BatchNorm::new(gpu, spec, &bufs)
        .err()
        .expect("small gamma")
        .to_string();
    assert!(e.contains("gamma") && e.contains("24"), "{e}");
    let bad = BatchNormSpec {
        momentum: 1.5,
        ..spec
    };
    assert!(BatchNorm::new(gpu, bad, &bufs).is_err());
    let empty = BatchNormSpec { cols: 0, ..spec };
    assert!(BatchNorm::new(gpu, empty, &bufs).is_err());
}

#[test]
fn norm_params_match_wgsl_layout() {
    assert_layout(
        &shaders::NORM,
        "NormParams",
        size_of::<NormParams>(),
        offsets!(NormParams: tables, rows, rows_cap, cols, momentum, eps),
    );
}

#[test]
fn norm_ops_record_a_fixed_number_of_dispatches_whatever_the_tables() {
    // A device of its own: the shared one's counter moves with tests running in parallel.
    let gpu = Gpu::new().expect("gpu");
    for tables in [1usize, 5] {
        let s = Shape {
            tables,
            rows: 9,
            rows_cap: 9,
            cols: 70,
        };
        let case = BnCase::random(s, 950);
        let b = BnGpu::new(&gpu, &case);
        let before = gpu.dispatches();
        run(&gpu, |pass| b.op.record_train(&gpu, pass));
        run(&gpu, |pass| b.op.record_eval(&gpu, pass));
        run(&gpu, |pass| b.op.record_backward(&gpu, pass));
        assert_eq!(gpu.dispatches() - before, 3, "batchnorm, {tables} tables");
        let f = |n: usize| upload(&gpu, "buf", &vec![0.5; n]);
        let (x, y, g, dx) = (f(s.elems()), f(s.elems()), f(s.elems()), f(s.elems()));
        let (p1, p2, p3, p4, m, v) = (
            f(70 * tables),
            f(70 * tables),
            f(70 * tables),
            f(70 * tables),
            f(9 * tables),
            f(9 * tables),
        );
        let bufs = LayerNormBuffers {
            x: &x,
            y: &y,
            gamma: &p1,
            beta: &p2,
            mean: &m,
            inv_std: &v,
            grad_y: &g,
            grad_x: &dx,
            grad_gamma: &p3,
            grad_beta: &p4,
        };
        let ln = LayerNorm::new(&gpu, LayerNormSpec::new(tables as u32, 9, 70), &bufs).expect("ln");
        let before = gpu.dispatches();
        run(&gpu, |pass| {
            ln.record_forward(&gpu, pass);
            ln.record_backward(&gpu, pass);
        });
        assert_eq!(gpu.dispatches() - before, 3, "layernorm, {tables} tables");
    }
}
