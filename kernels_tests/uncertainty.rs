//! The uncertainty heads' loss (`uncertainty.wgsl`): an f64 reference checked by finite
//! differences and against PyTorch autograd (`fixtures/fx_uncertainty.py`, the draws given), then
//! the GPU against the reference with the GPU's own Philox draws recomputed on the host, in both
//! head layouts, with poisoned outputs, missing labels, hot logits and an empty batch; the
//! Poisson(1) masks against their distribution.

use std::mem::size_of;

use wgrec::config::{BootstrapMask, Uncertainty};
use wgrec::explore::LOG_VAR_RANGE;
use wgrec::kernels::loss::uncertainty::{
    loss_scale, mask, normal, UncertaintyBuffers, UncertaintyLoss, UncertaintyParams,
    UncertaintySpec,
};
use wgrec::rng::Rng;
use wgrec::shaders;

use crate::common::{check_gradient, download, gpu, poison, upload, Tolerance};
use crate::dense_norm::run;
use crate::fixtures::Fixture;
use crate::registry::{assert_layout, offsets};

fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        x.exp() / (1.0 + x.exp())
    }
}

fn bce(z: f64, y: f64) -> f64 {
    z.max(0.0) - z * y + (-z.abs()).exp().ln_1p()
}

/// One (row, output)'s loss term and the gradient of its `width` values, from the values, the
/// label, the scale and the draws (masks, or ε in `draws[0]`).
fn reference(kind: Uncertainty, v: &[f64], y: f64, s: f64, draws: &[f64]) -> (f64, Vec<f64>) {
    if s == 0.0 {
        return (0.0, vec![0.0; v.len()]);
    }
    match kind {
        Uncertainty::Gaussian => {
            let (lo, hi) = (LOG_VAR_RANGE.0 as f64, LOG_VAR_RANGE.1 as f64);
            let (eps, inside) = (draws[0], (lo..=hi).contains(&v[1]));
            let sd = (0.5 * v[1].clamp(lo, hi)).exp();
            let z = v[0] + sd * eps;
            let g = s * (sigmoid(z) - y);
            let dv = if inside { g * eps * sd / 2.0 } else { 0.0 };
            (s * bce(z, y), vec![g, dv])
        }
        Uncertainty::Bootstrap { .. } => {
            let loss = (v.iter().zip(draws))
                .map(|(&z, &m)| m * s * bce(z, y))
                .sum();
            let grad = (v.iter().zip(draws))
                .map(|(&z, &m)| m * s * (sigmoid(z) - y))
                .collect();
            (loss, grad)
        }
    }
}

#[test]
fn params_layout_matches_the_shader() {
    assert_layout(
        &shaders::UNCERTAINTY,
        "UncertaintyParams",
        size_of::<UncertaintyParams>(),
        offsets!(
            UncertaintyParams: rows,
            outputs,
            width,
            kind,
            stride_u,
            stride_b,
            seed_lo,
            seed_hi,
            step,
            rows_cap,
            log_var_lo,
            log_var_hi,
            poisson
        ),
    );
}

#[test]
fn reference_matches_pytorch_autograd_and_finite_differences() {
    let fx = Fixture::load("uncertainty");
    let (rows, outs, k) = (37, 3, 5);
    let boot = Uncertainty::Bootstrap {
        heads: k as u32,
        mask: BootstrapMask::Poisson,
    };
    let (z, m, y, s) = (
        fx.f64("bootstrap.z"),
        fx.f64("bootstrap.m"),
        fx.f64("bootstrap.y"),
        fx.f64("bootstrap.s"),
    );
    let total = |z: &[f64]| -> (f64, Vec<f64>) {
        let mut grad = Vec::new();
        let mut loss = 0.0;
        for i in 0..rows * outs {
            let (l, g) = reference(
                boot,
                &z[i * k..(i + 1) * k],
                y[i],
                s[i],
                &m[i * k..(i + 1) * k],
            );
            loss += l;
            grad.extend(g);
        }
        (loss, grad)
    };
    let (loss, grad) = total(z);
    // f64 on both sides: only summation order differs (≈ 1e-16 relative).
    assert!(
        (loss - fx.f64("bootstrap.loss")[0]).abs() < 1e-12,
        "bootstrap loss"
    );
    for (i, (a, b)) in grad.iter().zip(fx.f64("bootstrap.dz")).enumerate() {
        assert!((a - b).abs() < 1e-12, "bootstrap dz[{i}]: {a} vs torch {b}");
    }
    check_gradient("bootstrap dz", z, &grad, |z| total(z).0);
    let (mu, v, eps, y, s) = (
        fx.f64("gaussian.mu"),
        fx.f64("gaussian.v"),
        fx.f64("gaussian.eps"),
        fx.f64("gaussian.y"),
        fx.f64("gaussian.s"),
    );
    let total = |x: &[f64]| -> (f64, Vec<f64>) {
        let (mut loss, mut grad) = (0.0, Vec::new());
        for i in 0..rows * outs {
            let (l, g) = reference(
                Uncertainty::Gaussian,
                &x[2 * i..2 * i + 2],
                y[i],
                s[i],
                &eps[i..],
            );
            loss += l;
            grad.extend(g);
        }
        (loss, grad)
    };
    let x: Vec<f64> = (0..rows * outs).flat_map(|i| [mu[i], v[i]]).collect();
    let (loss, grad) = total(&x);
    assert!(
        (loss - fx.f64("gaussian.loss")[0]).abs() < 1e-12,
        "gaussian loss"
    );
    for i in 0..rows * outs {
        let (dmu, dv) = (fx.f64("gaussian.dmu")[i], fx.f64("gaussian.dv")[i]);
        assert!(
            (grad[2 * i] - dmu).abs() < 1e-12,
            "dμ[{i}]: {} vs torch {dmu}",
            grad[2 * i]
        );
        assert!(
            (grad[2 * i + 1] - dv).abs() < 1e-12,
            "dv[{i}]: {} vs torch {dv}",
            grad[2 * i + 1]
        );
    }
    check_gradient("gaussian dμ, dv", &x, &grad, |x| total(x).0);
}

/// One GPU case: `rows` of `rows_cap`, `outputs`, in the single-tower (`[cap, U·H]`) or the task
/// towers' (`[U, cap, H]`) layout.
struct Case {
    kind: Uncertainty,
    rows: usize,
    rows_cap: usize,
    outputs: usize,
    towers: bool,
    seed: u64,
    step: u32,
}

impl Case {
    fn strides(&self) -> (usize, usize) {
        let h = self.kind.width() as usize;
        if self.towers {
            (self.rows_cap * h, h)
        } else {
            (h, self.outputs * h)
        }
    }

    fn draws(&self, b: usize, u: usize) -> Vec<f64> {
        match self.kind {
            Uncertainty::Gaussian => vec![normal(self.seed, self.step, b as u32, u as u32)],
            Uncertainty::Bootstrap { heads, mask: m } => (0..heads)
                .map(|k| mask(m, self.seed, self.step, b as u32, u as u32, k) as f64)
                .collect(),
        }
    }

    fn run(&self) {
        let gpu = gpu();
        let (h, (su, sb)) = (self.kind.width() as usize, self.strides());
        let n = self.outputs * self.rows_cap * h;
        let mut rng = Rng::new(self.seed ^ 0x5eed);
        // Logits of either sign, some hot (|z| up to 30); log s² across and past the clamp range.
        let y: Vec<f32> = (0..n)
            .map(|_| (rng.normal() * 4.0) as f32 * if rng.unit() < 0.1 { 7.0 } else { 1.0 })
            .collect();
        let labels: Vec<f32> = (0..self.rows_cap * self.outputs)
            .map(|_| match rng.below(5) {
                0 => -1.0,
                1 => 1.0,
                _ => 0.0,
            })
            .collect();
        let weights: Vec<f32> = (0..self.rows_cap).map(|_| rng.uniform(0.1, 2.0)).collect();
        let active: Vec<bool> = (0..self.outputs)
            .map(|u| u != 1 || self.outputs == 1)
            .collect();
        let mut scale = loss_scale(&labels, Some(&weights), self.rows, &active);
        scale.resize(self.rows_cap * self.outputs, 0.0);
        let (yb, lb, scb) = (
            upload(gpu, "y", &y),
            upload(gpu, "labels", &labels),
            upload(gpu, "scale", &scale),
        );
        let grad = upload(gpu, "grad", &vec![0.0; n]);
        let loss = upload(gpu, "loss", &vec![0.0; self.rows_cap * self.outputs]);
        poison(gpu, &grad);
        poison(gpu, &loss);
        let spec = UncertaintySpec {
            kind: self.kind,
            outputs: self.outputs as u32,
            rows_cap: self.rows_cap as u32,
            stride_u: su as u32,
            stride_b: sb as u32,
        };
        let buffers = UncertaintyBuffers {
            y: &yb,
            labels: &lb,
            scale: &scb,
            grad: &grad,
            loss: &loss,
        };
        let mut kernel = UncertaintyLoss::new(gpu, spec, &buffers).expect("kernel");
        kernel.set_rows(gpu, self.rows as u32).expect("rows");
        kernel.set_step(gpu, self.seed, self.step);
        run(gpu, |pass| kernel.record(gpu, pass));
        let (got, got_loss) = (
            download(gpu, &grad, n),
            download(gpu, &loss, self.rows_cap * self.outputs),
        );
        // exp, log, cos and sqrt of WGSL are within a few ULP (plus 2|x| ULP for exp): 2e-5 of the
        // terms' magnitude covers them, ε's Box–Muller included; the absolute part covers σ(z) − y
        // terms that cancel to ~1e-7 at y = 1, z ≫ 0.
        let tol = Tolerance {
            relative: 2e-5,
            absolute: 1e-7,
        };
        for b in 0..self.rows_cap {
            for u in 0..self.outputs {
                let at = u * su + b * sb;
                let lt = got_loss[u * self.rows_cap + b];
                if b >= self.rows {
                    assert!(
                        lt.is_nan() && got[at..at + h].iter().all(|g| g.is_nan()),
                        "row {b} past rows was written"
                    );
                    continue;
                }
                let v: Vec<f64> = y[at..at + h].iter().map(|&x| x as f64).collect();
                let (s, lbl) = (
                    scale[b * self.outputs + u] as f64,
                    labels[b * self.outputs + u].max(0.0) as f64,
                );
                let draws = self.draws(b, u);
                let (want_loss, want) = reference(self.kind, &v, lbl, s, &draws);
                let mag = s
                    * (1.0 + v.iter().map(|x| x.abs()).sum::<f64>())
                    * draws.iter().map(|d| d.abs().max(1.0)).sum::<f64>();
                tol.check("loss", b * self.outputs + u, lt, want_loss, mag);
                for k in 0..h {
                    tol.check("grad", at + k, got[at + k], want[k], mag);
                }
            }
        }
    }
}

#[test]
fn gpu_matches_the_reference_with_its_own_draws() {
    let poisson = Uncertainty::Bootstrap {
        heads: 5,
        mask: BootstrapMask::Poisson,
    };
    let bernoulli = Uncertainty::Bootstrap {
        heads: 9,
        mask: BootstrapMask::Bernoulli,
    };
    for (kind, towers) in [
        (poisson, false),
        (poisson, true),
        (bernoulli, true),
        (Uncertainty::Gaussian, false),
        (Uncertainty::Gaussian, true),
    ] {
        Case {
            kind,
            rows: 37,
            rows_cap: 40,
            outputs: 3,
            towers,
            seed: 0x1234_5678_9abc,
            step: 7,
        }
        .run();
    }
    // One output, one row; and an empty batch (nothing written: every row is "past rows").
    Case {
        kind: poisson,
        rows: 1,
        rows_cap: 3,
        outputs: 1,
        towers: false,
        seed: 3,
        step: 1,
    }
    .run();
    Case {
        kind: Uncertainty::Gaussian,
        rows: 0,
        rows_cap: 4,
        outputs: 2,
        towers: true,
        seed: 3,
        step: 2,
    }
    .run();
}

#[test]
fn poisson_masks_follow_poisson_one_and_bernoulli_masks_are_fair() {
    // 60,000 draws (all heads of 1,000 rows × 4 outputs × 15 heads). Chi-square over the counts
    // 0, 1, 2, 3, 4, ≥ 5 (5 degrees of freedom): the 1e-6 critical value is 35.9, so this fails
    // by chance once in a million runs; a mask off by one, or the thresholds of another
    // distribution, gives thousands.
    let pmf = |k: u32| (-1.0f64).exp() / (1..=k).map(|i| i as f64).product::<f64>();
    let mut counts = [0u64; 6];
    let mut ones = 0u64;
    let n = 1_000 * 4 * 15;
    for row in 0..1_000 {
        for output in 0..4 {
            for head in 0..15 {
                let m = mask(BootstrapMask::Poisson, 42, 9, row, output, head);
                counts[(m as usize).min(5)] += 1;
                ones += (mask(BootstrapMask::Bernoulli, 42, 9, row, output, head) == 2) as u64;
            }
        }
    }
    let expect: Vec<f64> = (0..5)
        .map(pmf)
        .chain([1.0 - (0..5).map(pmf).sum::<f64>()])
        .collect();
    let chi2: f64 = (counts.iter().zip(&expect))
        .map(|(&c, &p)| (c as f64 - n as f64 * p).powi(2) / (n as f64 * p))
        .sum();
    assert!(
        chi2 < 35.9,
        "Poisson(1) masks: chi-square {chi2} over {counts:?}"
    );
    // Bernoulli(½): a z-test at 1e-6 (|z| < 4.89).
    let z = (ones as f64 - n as f64 / 2.0) / (n as f64 / 4.0).sqrt();
    assert!(z.abs() < 4.89, "Bernoulli(½) masks: z = {z}");
}
