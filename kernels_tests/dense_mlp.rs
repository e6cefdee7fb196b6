//! `MlpStack` against an f64 reference MLP (whose backward is checked by finite differences) and
//! against PyTorch's Linear+ReLU and a 2-layer MLP (fixture `linear`, float64 autograd).

use wgrec::kernels::dense::mlp::{MlpSpec, MlpStack};
use wgrec::kernels::run_once;
use wgrec::rng::Rng;

use crate::common::{check_gradient, download, gpu, poison, upload, Tolerance};
use crate::fixtures::Fixture;

/// Per-layer parameters of a reference MLP over `tables` stacks: weights `[tables, out, in]`,
/// biases `[tables, out]`.
pub struct MlpParams {
    pub widths: Vec<usize>,
    pub relu_last: bool,
    pub w: Vec<Vec<f64>>,
    pub b: Vec<Vec<f64>>,
}

impl MlpParams {
    fn relu(&self, l: usize) -> bool {
        l + 2 < self.widths.len() || self.relu_last
    }
}

/// Reference forward over `x [tables, rows, widths[0]]`: each layer's output `[tables, rows, out]`.
/// With `masks`, ReLU keeps exactly the masked elements (used to bound magnitudes).
pub fn mlp_forward(
    p: &MlpParams,
    tables: usize,
    rows: usize,
    x: &[f64],
    masks: Option<&[Vec<bool>]>,
) -> Vec<Vec<f64>> {
    let mut outs: Vec<Vec<f64>> = Vec::new();
    for l in 0..p.widths.len() - 1 {
        let (fan_in, out) = (p.widths[l], p.widths[l + 1]);
        let input = if l == 0 { x } else { &outs[l - 1] };
        let mut y = vec![0.0; tables * rows * out];
        for t in 0..tables {
            for i in 0..rows {
                for o in 0..out {
                    let mut z = p.b[l][t * out + o];
                    for q in 0..fan_in {
                        z +=
                            input[(t * rows + i) * fan_in + q] * p.w[l][(t * out + o) * fan_in + q];
                    }
                    let at = (t * rows + i) * out + o;
                    y[at] = match masks {
                        Some(m) if p.relu(l) => z * (m[l][at] as u8 as f64),
                        _ if p.relu(l) => z.max(0.0),
                        _ => z,
                    };
                }
            }
        }
        outs.push(y);
    }
    outs
}

/// Reference backward from `gy` (gradient of the last output): (grad_x, grad_w, grad_b), with
/// ReLU's derivative taken from `masks` (output > 0 of the real forward).
pub fn mlp_backward(
    p: &MlpParams,
    tables: usize,
    rows: usize,
    x: &[f64],
    outs: &[Vec<f64>],
    gy: &[f64],
    masks: &[Vec<bool>],
) -> (Vec<f64>, Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let layers = p.widths.len() - 1;
    let mut gw: Vec<Vec<f64>> = p.w.iter().map(|w| vec![0.0; w.len()]).collect();
    let mut gb: Vec<Vec<f64>> = p.b.iter().map(|b| vec![0.0; b.len()]).collect();
    let mut dy = gy.to_vec();
    for l in (0..layers).rev() {
        let (fan_in, out) = (p.widths[l], p.widths[l + 1]);
        let input = if l == 0 { x } else { &outs[l - 1] };
        let dz: Vec<f64> = (0..dy.len())
            .map(|at| {
                if p.relu(l) && !masks[l][at] {
                    0.0
                } else {
                    dy[at]
                }
            })
            .collect();
        let mut dx = vec![0.0; tables * rows * fan_in];
        for t in 0..tables {
            for i in 0..rows {
                for o in 0..out {
                    let g = dz[(t * rows + i) * out + o];
                    gb[l][t * out + o] += g;
                    for q in 0..fan_in {
                        let xi = (t * rows + i) * fan_in + q;
                        let wi = (t * out + o) * fan_in + q;
                        gw[l][wi] += g * input[xi];
                        dx[xi] += g * p.w[l][wi];
                    }
                }
            }
        }
        dy = dx;
    }
    (dy, gw, gb)
}

fn masks_of(p: &MlpParams, outs: &[Vec<f64>]) -> Vec<Vec<bool>> {
    outs.iter()
        .enumerate()
        .map(|(l, y)| y.iter().map(|&v| !p.relu(l) || v > 0.0).collect())
        .collect()
}

fn abs(v: &[f64]) -> Vec<f64> {
    v.iter().map(|x| x.abs()).collect()
}

#[test]
fn mlp_reference_backward_matches_finite_differences() {
    let mut rng = Rng::new(1000);
    let (tables, rows) = (2, 3);
    let widths = vec![4, 5, 3];
    let mut draw =
        |n: usize| -> Vec<f64> { (0..n).map(|_| rng.uniform(-1.0, 1.0) as f64).collect() };
    let p = MlpParams {
        w: (0..2)
            .map(|l| draw(tables * widths[l] * widths[l + 1]))
            .collect(),
        b: (0..2).map(|l| draw(tables * widths[l + 1])).collect(),
        widths: widths.clone(),
        relu_last: false,
    };
    let x = draw(tables * rows * widths[0]);
    let gy = draw(tables * rows * widths[2]);
    let outs = mlp_forward(&p, tables, rows, &x, None);
    let masks = masks_of(&p, &outs);
    let (gx, gw, gb) = mlp_backward(&p, tables, rows, &x, &outs, &gy, &masks);
    let loss = |p: &MlpParams, x: &[f64]| -> f64 {
        let y = mlp_forward(p, tables, rows, x, None);
        y[1].iter().zip(&gy).map(|(a, b)| a * b).sum()
    };
    check_gradient("mlp grad_x", &x, &gx, |v| loss(&p, v));
    for l in 0..2 {
        let with_w = |v: &[f64]| {
            let mut q = MlpParams {
                w: p.w.clone(),
                b: p.b.clone(),
                widths: widths.clone(),
                relu_last: false,
            };
            q.w[l] = v.to_vec();
            loss(&q, &x)
        };
        check_gradient("mlp grad_w", &p.w[l], &gw[l], with_w);
        let with_b = |v: &[f64]| {
            let mut q = MlpParams {
                w: p.w.clone(),
                b: p.b.clone(),
                widths: widths.clone(),
                relu_last: false,
            };
            q.b[l] = v.to_vec();
            loss(&q, &x)
        };
        check_gradient("mlp grad_b", &p.b[l], &gb[l], with_b);
    }
}

/// Reads `[tables, cap, w]` GPU activations back as `[tables, rows, w]`.
fn compact(
    gpu: &wgrec::Gpu,
    buffer: &wgpu::Buffer,
    tables: usize,
    cap: usize,
    rows: usize,
    w: usize,
) -> Vec<f32> {
    let all = download(gpu, buffer, tables * cap * w);
    (0..tables)
        .flat_map(|t| all[t * cap * w..(t * cap + rows) * w].to_vec())
        .collect()
}

/// Builds an MlpStack, writes `p`, runs forward and backward on `rows` rows of `x` and `gy`, and
/// returns (outputs per layer, grad_x, grad_w, grad_b) as compact f32 vectors.
#[allow(clippy::type_complexity)]
fn run_mlp(
    spec: &MlpSpec,
    rows: u32,
    p: &MlpParams,
    x: &[f32],
    gy: &[f32],
) -> (Vec<Vec<f32>>, Vec<f32>, Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let gpu = gpu();
    let (t, cap) = (spec.tables as usize, spec.batch_cap as usize);
    let w0 = spec.widths[0] as usize;
    let mut xs = vec![0f32; t * cap * w0];
    for tb in 0..t {
        for i in 0..rows as usize * w0 {
            xs[tb * cap * w0 + i] = x[tb * rows as usize * w0 + i];
        }
    }
    let xb = upload(gpu, "x", &xs);
    let gx = gpu.buffer("grad x", (xs.len() * 4) as u64, wgrec::gpu::storage_usage());
    poison(gpu, &gx);
    let mlp = MlpStack::new(gpu, spec, &xb, Some(&gx)).expect("mlp");
    mlp.set_rows(gpu, rows).expect("rows");
    for (l, layer) in mlp.layers.iter().enumerate() {
        let w: Vec<f32> = p.w[l].iter().map(|&v| v as f32).collect();
        let b: Vec<f32> = p.b[l].iter().map(|&v| v as f32).collect();
        gpu.queue
            .write_buffer(&layer.weight, 0, bytemuck::cast_slice(&w));
        gpu.queue
            .write_buffer(&layer.bias, 0, bytemuck::cast_slice(&b));
        for buf in [
            &layer.output,
            &layer.grad_output,
            &layer.grad_weight,
            &layer.grad_bias,
        ] {
            poison(gpu, buf);
        }
    }
    let last = mlp.layers.last().expect("a layer");
    let wl = last.shape.1 as usize;
    let mut gys = vec![0f32; t * cap * wl];
    for tb in 0..t {
        for i in 0..rows as usize * wl {
            gys[tb * cap * wl + i] = gy[tb * rows as usize * wl + i];
        }
    }
    gpu.queue
        .write_buffer(&last.grad_output, 0, bytemuck::cast_slice(&gys));
    run_once(gpu, |pass| {
        mlp.record_forward(gpu, pass);
        mlp.record_backward(gpu, pass);
    });
    gpu.sync().expect("gpu");
    let r = rows as usize;
    let outs = mlp
        .layers
        .iter()
        .map(|l| compact(gpu, &l.output, t, cap, r, l.shape.1 as usize))
        .collect();
    let gxs = compact(gpu, &gx, t, cap, r, w0);
    let gw = mlp
        .layers
        .iter()
        .map(|l| download(gpu, &l.grad_weight, t * (l.shape.0 * l.shape.1) as usize))
        .collect();
    let gb = mlp
        .layers
        .iter()
        .map(|l| download(gpu, &l.grad_bias, t * l.shape.1 as usize))
        .collect();
    (outs, gxs, gw, gb)
}

/// Each MLP value is at most a few chained f32 sums (≤ 40 terms: the batch, for dW), whose errors
/// are each ≤ γ_40 ≈ 2.4e-6 of the sum of absolute terms; 1e-5 of the magnitude from the
/// absolute-value network (same ReLU masks) leaves margin for three layers.
const MLP: Tolerance = Tolerance {
    relative: 1e-5,
    absolute: 1e-6,
};

fn check_mlp(spec: &MlpSpec, rows: u32, seed: u64) {
    let mut rng = Rng::new(seed);
    let (t, r) = (spec.tables as usize, rows as usize);
    let widths: Vec<usize> = spec.widths.iter().map(|&w| w as usize).collect();
    let layers = widths.len() - 1;
    let mut draw =
        |n: usize| -> Vec<f64> { (0..n).map(|_| rng.uniform(-1.0, 1.0) as f64).collect() };
    let p = MlpParams {
        w: (0..layers)
            .map(|l| draw(t * widths[l] * widths[l + 1]))
            .collect(),
        b: (0..layers).map(|l| draw(t * widths[l + 1])).collect(),
        widths: widths.clone(),
        relu_last: spec.relu_last,
    };
    let x = draw(t * r * widths[0]);
    let gy = draw(t * r * widths[layers]);
    let to32 = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<_>>();
    let (outs, gx, gw, gb) = run_mlp(spec, rows, &p, &to32(&x), &to32(&gy));
    let want = mlp_forward(&p, t, r, &x, None);
    let masks = masks_of(&p, &want);
    let pa = MlpParams {
        w: p.w.iter().map(|w| abs(w)).collect(),
        b: p.b.iter().map(|b| abs(b)).collect(),
        widths: widths.clone(),
        relu_last: spec.relu_last,
    };
    let mag = mlp_forward(&pa, t, r, &abs(&x), Some(&masks));
    let (wx, ww, wb) = mlp_backward(&p, t, r, &x, &want, &gy, &masks);
    let (mx, mw, mb) = mlp_backward(&pa, t, r, &abs(&x), &mag, &abs(&gy), &masks);
    for l in 0..layers {
        for i in 0..want[l].len() {
            MLP.check("mlp output", i, outs[l][i], want[l][i], mag[l][i]);
        }
        for i in 0..ww[l].len() {
            MLP.check("mlp grad_w", i, gw[l][i], ww[l][i], mw[l][i]);
        }
        for i in 0..wb[l].len() {
            MLP.check("mlp grad_b", i, gb[l][i], wb[l][i], mb[l][i]);
        }
    }
    for i in 0..wx.len() {
        MLP.check("mlp grad_x", i, gx[i], wx[i], mx[i]);
    }
}

#[test]
fn mlp_stack_forward_and_backward_match_reference() {
    let spec = MlpSpec {
        tables: 3,
        batch_cap: 40,
        widths: vec![7, 12, 9, 4],
        relu_last: false,
    };
    check_mlp(&spec, 33, 1100);
    let spec = MlpSpec {
        tables: 1,
        batch_cap: 19,
        widths: vec![5, 6],
        relu_last: true,
    };
    check_mlp(&spec, 19, 1101);
}

#[test]
fn mlp_stack_with_empty_batch_writes_zero_parameter_gradients() {
    let spec = MlpSpec {
        tables: 2,
        batch_cap: 8,
        widths: vec![3, 4, 2],
        relu_last: false,
    };
    check_mlp(&spec, 0, 1200);
}

#[test]
fn mlp_stack_matches_pytorch_linear_relu_and_two_layer_mlp() {
    let fx = Fixture::load("linear");
    // float64 autograd vs f32 sums of ≤ 11 terms of magnitude ≤ 1: error ≤ 11 · 6e-8 · 11 ≈ 1e-5.
    let tol = Tolerance {
        relative: 1e-5,
        absolute: 2e-5,
    };
    for (case, widths, relu_last) in [("lin", vec![6u32, 5], true), ("mlp", vec![7, 8, 3], false)] {
        let key = |name: &str| format!("{case}.{name}");
        let rows = fx.shape(&key("x"))[0] as u32;
        let layers = widths.len() - 1;
        let p = MlpParams {
            w: (0..layers)
                .map(|l| fx.f64(&key(&format!("w{l}"))).to_vec())
                .collect(),
            b: (0..layers)
                .map(|l| fx.f64(&key(&format!("b{l}"))).to_vec())
                .collect(),
            widths: widths.iter().map(|&w| w as usize).collect(),
            relu_last,
        };
        let spec = MlpSpec {
            tables: 1,
            batch_cap: rows + 3,
            widths,
            relu_last,
        };
        let (outs, gx, gw, gb) = run_mlp(&spec, rows, &p, &fx.f32(&key("x")), &fx.f32(&key("gy")));
        let compare = |what: &str, got: &[f32], want: &[f64]| {
            assert_eq!(got.len(), want.len(), "{case} {what} length");
            for i in 0..got.len() {
                tol.check(&format!("{case} {what}"), i, got[i], want[i], want[i].abs());
            }
        };
        compare("y", &outs[layers - 1], fx.f64(&key("y")));
        if fx.has(&key("h")) {
            compare("h", &outs[0], fx.f64(&key("h")));
        }
        compare("grad_x", &gx, fx.f64(&key("grad_x")));
        for l in 0..layers {
            compare("grad_w", &gw[l], fx.f64(&key(&format!("grad_w{l}"))));
            compare("grad_b", &gb[l], fx.f64(&key(&format!("grad_b{l}"))));
        }
    }
}
