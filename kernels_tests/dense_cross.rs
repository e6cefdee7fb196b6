//! DCNv2 cross network: f64 reference (checked by finite differences), GPU against it for full and
//! low rank, M = 1 and M > 1, rows below capacity and rows = 0, the PyTorch fixture, dispatch counts.

use wgrec::kernels::dense::cross::{
    CrossBuffers, CrossNetwork, CrossParams, CrossSpec, CrossWeights,
};
use wgrec::kernels::run_once;
use wgrec::rng::Rng;
use wgrec::shaders;

use wgrec::Gpu;

use crate::common::{
    check_gradient, download, gpu, poison, private_gpu, random_f32, upload, Tolerance,
};
use crate::fixtures::Fixture;
use crate::registry::{assert_layout, offsets};

/// Parameters of one table's network, f64: `w[l]` is `[D, D]` (or `u[l]`, `v[l]` `[D, r]`), `b[l]`.
#[derive(Clone)]
struct Net {
    dim: usize,
    layers: usize,
    rank: Option<usize>,
    relu: bool,
    w: Vec<f64>, // [layers, D, D] or, low rank, u then v: 2 × [layers, D, r]
    b: Vec<f64>, // [layers, D]
}

impl Net {
    fn r(&self) -> usize {
        self.rank.unwrap_or(self.dim)
    }

    /// Effective W_l as [D, D] row-major (out, in).
    fn w_l(&self, l: usize) -> Vec<f64> {
        let d = self.dim;
        match self.rank {
            None => self.w[l * d * d..(l + 1) * d * d].to_vec(),
            Some(r) => {
                let half = self.layers * d * r;
                let (u, v) = (&self.w[l * d * r..], &self.w[half + l * d * r..]);
                let mut w = vec![0.0; d * d];
                for o in 0..d {
                    for i in 0..d {
                        w[o * d + i] = (0..r).map(|k| u[o * r + k] * v[i * r + k]).sum();
                    }
                }
                w
            }
        }
    }

    /// Forward of one row: returns (y, xs[0..=L], zs[0..L]).
    fn forward(&self, x0: &[f64]) -> (Vec<f64>, Vec<Vec<f64>>, Vec<Vec<f64>>) {
        let d = self.dim;
        let mut xs = vec![x0.to_vec()];
        let mut zs = Vec::new();
        for l in 0..self.layers {
            let w = self.w_l(l);
            let xl = &xs[l];
            let z: Vec<f64> = (0..d)
                .map(|o| self.b[l * d + o] + (0..d).map(|i| w[o * d + i] * xl[i]).sum::<f64>())
                .collect();
            let next: Vec<f64> = (0..d).map(|c| x0[c] * z[c] + xl[c]).collect();
            zs.push(z);
            xs.push(next);
        }
        let last = &xs[self.layers];
        let y = last
            .iter()
            .map(|&v| if self.relu { v.max(0.0) } else { v })
            .collect();
        (y, xs, zs)
    }

    /// Backward of one row from dy: (dx0, dw (same layout as w), db), METHODS.md §2.2's formulas.
    fn backward(&self, x0: &[f64], dy: &[f64]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let d = self.dim;
        let (_, xs, zs) = self.forward(x0);
        let mut g: Vec<f64> = (0..d)
            .map(|c| {
                if self.relu && xs[self.layers][c] <= 0.0 {
                    0.0
                } else {
                    dy[c]
                }
            })
            .collect();
        let mut dx0 = vec![0.0; d];
        let mut dw = vec![0.0; self.w.len()];
        let mut db = vec![0.0; self.b.len()];
        for l in (0..self.layers).rev() {
            let w = self.w_l(l);
            let u: Vec<f64> = (0..d).map(|c| x0[c] * g[c]).collect();
            for c in 0..d {
                dx0[c] += g[c] * zs[l][c];
                db[l * d + c] += u[c];
            }
            match self.rank {
                None => {
                    for o in 0..d {
                        for i in 0..d {
                            dw[l * d * d + o * d + i] += u[o] * xs[l][i];
                        }
                    }
                }
                Some(r) => {
                    let half = self.layers * d * r;
                    let (uw, vw) = (&self.w[l * d * r..], &self.w[half + l * d * r..]);
                    // t = V_lᵀ x_l, dt = U_lᵀ u.
                    let t: Vec<f64> = (0..r)
                        .map(|k| (0..d).map(|i| vw[i * r + k] * xs[l][i]).sum())
                        .collect();
                    let dt: Vec<f64> = (0..r)
                        .map(|k| (0..d).map(|o| uw[o * r + k] * u[o]).sum())
                        .collect();
                    for o in 0..d {
                        for k in 0..r {
                            dw[l * d * r + o * r + k] += u[o] * t[k];
                            dw[half + l * d * r + o * r + k] += xs[l][o] * dt[k];
                        }
                    }
                }
            }
            let next: Vec<f64> = (0..d)
                .map(|i| g[i] + (0..d).map(|o| w[o * d + i] * u[o]).sum::<f64>())
                .collect();
            g = next;
        }
        for c in 0..d {
            dx0[c] += g[c];
        }
        (dx0, dw, db)
    }
}

fn random_net(rng: &mut Rng, dim: usize, layers: usize, rank: Option<usize>, relu: bool) -> Net {
    let r = rank.unwrap_or(dim);
    let wlen = layers * dim * r * if rank.is_some() { 2 } else { 1 };
    let scale = 1.0 / (dim as f64).sqrt();
    Net {
        dim,
        layers,
        rank,
        relu,
        w: random_f32(rng, wlen)
            .iter()
            .map(|&v| v as f64 * scale)
            .collect(),
        b: random_f32(rng, layers * dim)
            .iter()
            .map(|&v| v as f64 * 0.1)
            .collect(),
    }
}

#[test]
fn reference_backward_matches_finite_differences() {
    let mut rng = Rng::new(71);
    for (rank, relu) in [
        (None, false),
        (Some(2), false),
        (None, true),
        (Some(3), true),
    ] {
        let net = random_net(&mut rng, 5, 3, rank, relu);
        let d = net.dim;
        // Keep pre-ReLU values away from the kink so the finite difference is smooth.
        let x0: Vec<f64> = random_f32(&mut rng, d).iter().map(|&v| v as f64).collect();
        let dy: Vec<f64> = random_f32(&mut rng, d).iter().map(|&v| v as f64).collect();
        let loss = |n: &Net, x: &[f64]| -> f64 {
            let (y, _, _) = n.forward(x);
            y.iter().zip(&dy).map(|(a, b)| a * b).sum()
        };
        let (dx, dw, db) = net.backward(&x0, &dy);
        check_gradient("cross dx", &x0, &dx, |x| loss(&net, x));
        check_gradient("cross dw", &net.w, &dw, |w| {
            let mut n = net.clone();
            n.w = w.to_vec();
            loss(&n, &x0)
        });
        check_gradient("cross db", &net.b, &db, |b| {
            let mut n = net.clone();
            n.b = b.to_vec();
            loss(&n, &x0)
        });
    }
}

/// One GPU run: `nets` (one per table) over `x` [tables, rows_cap, D] at `rows` rows.
struct Run {
    y: Vec<f32>,
    dx: Vec<f32>,
    dw: Vec<f32>,
    db: Vec<f32>,
    dispatches_forward: u64,
    dispatches_backward: u64,
    /// (vectorized GEMMs, GEMMs)
    vec4: (usize, usize),
}

/// Table-major f32 copies of the nets' parameters in the launcher's layout.
fn pack(nets: &[Net]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let n = &nets[0];
    let (d, r, l) = (n.dim, n.r(), n.layers);
    let per = l * d * r;
    let mut w = Vec::new();
    let mut v = Vec::new();
    let mut b = Vec::new();
    for net in nets {
        w.extend(net.w[..per].iter().map(|&x| x as f32));
        if n.rank.is_some() {
            v.extend(net.w[per..].iter().map(|&x| x as f32));
        }
        b.extend(net.b.iter().map(|&x| x as f32));
    }
    (w, v, b)
}

fn run_gpu(nets: &[Net], x: &[f32], dy: &[f32], rows_cap: usize, rows: usize) -> Run {
    run_on(gpu(), nets, x, dy, rows_cap, rows)
}

fn run_on(gpu: &Gpu, nets: &[Net], x: &[f32], dy: &[f32], rows_cap: usize, rows: usize) -> Run {
    let n = &nets[0];
    let spec = CrossSpec {
        tables: nets.len() as u32,
        rows_cap: rows_cap as u32,
        dim: n.dim as u32,
        layers: n.layers as u32,
        rank: n.rank.map(|r| r as u32),
        relu: n.relu,
    };
    let (w, v, b) = pack(nets);
    let x0 = upload(gpu, "x0", x);
    let dyb = upload(gpu, "dy", dy);
    let wb = upload(gpu, "w", &w);
    let vb = upload(gpu, "v", &v);
    let bb = upload(gpu, "b", &b);
    let act = spec.act_len() as usize;
    let nan = vec![f32::NAN; act];
    let y = upload(gpu, "y", &nan);
    let dx = upload(gpu, "dx", &nan);
    let dw = upload(gpu, "dw", &vec![f32::NAN; w.len()]);
    let dv = upload(gpu, "dv", &vec![f32::NAN; v.len()]);
    let db = upload(gpu, "db", &vec![f32::NAN; b.len()]);
    let (weights, dweights) = match n.rank {
        None => (CrossWeights::Full(&wb), CrossWeights::Full(&dw)),
        Some(_) => (
            CrossWeights::LowRank(&wb, &vb),
            CrossWeights::LowRank(&dw, &dv),
        ),
    };
    let net = CrossNetwork::new(
        gpu,
        spec,
        &CrossBuffers {
            x0: &x0,
            weights,
            bias: &bb,
            y: &y,
            dy: &dyb,
            dx: &dx,
            dweights,
            dbias: &db,
        },
    )
    .expect("cross network");
    net.set_rows(gpu, rows as u32).expect("rows");
    for buf in [&y, &dx, &dw, &dv, &db] {
        poison(gpu, buf);
    }
    let before = gpu.dispatches();
    run_once(gpu, |pass| net.record_forward(gpu, pass));
    let mid = gpu.dispatches();
    run_once(gpu, |pass| net.record_backward(gpu, pass));
    let after = gpu.dispatches();
    gpu.sync().expect("cross run");
    let mut dwv = download(gpu, &dw, w.len());
    if n.rank.is_some() {
        dwv.extend(download(gpu, &dv, v.len()));
    }
    Run {
        y: download(gpu, &y, act),
        dx: download(gpu, &dx, act),
        dw: dwv,
        db: download(gpu, &db, b.len()),
        dispatches_forward: mid - before,
        dispatches_backward: after - mid,
        vec4: net.vectorized_gemms(),
    }
}

/// Tolerances. Forward: each layer is an f32 dot product of D terms plus an FMA, so the error
/// grows like L·D·ε relative to the magnitude of the terms; backward sums over D (input gradient)
/// or over the batch (weights), again f32 accumulation of bounded terms. Magnitudes here are O(1).
const FORWARD: Tolerance = Tolerance {
    relative: 1e-5,
    absolute: 1e-5,
};
const BACKWARD: Tolerance = Tolerance {
    relative: 3e-5,
    absolute: 3e-5,
};

fn check_against_reference(nets: &[Net], rows_cap: usize, rows: usize, seed: u64) -> Run {
    let mut rng = Rng::new(seed);
    let (t, d) = (nets.len(), nets[0].dim);
    let x = random_f32(&mut rng, t * rows_cap * d);
    let dy = random_f32(&mut rng, t * rows_cap * d);
    let run = run_gpu(nets, &x, &dy, rows_cap, rows);
    let mut dw_want = vec![0.0; run.dw.len()];
    let mut db_want = vec![0.0; run.db.len()];
    let per_w = run.dw.len() / t;
    let per_b = run.db.len() / t;
    for (ti, net) in nets.iter().enumerate() {
        let (d, r, l) = (net.dim, net.r(), net.layers);
        for row in 0..rows {
            let at = (ti * rows_cap + row) * d;
            let x0: Vec<f64> = x[at..at + d].iter().map(|&v| v as f64).collect();
            let g: Vec<f64> = dy[at..at + d].iter().map(|&v| v as f64).collect();
            let (y, _, _) = net.forward(&x0);
            let (dx, dw, db) = net.backward(&x0, &g);
            for c in 0..d {
                FORWARD.check("y", at + c, run.y[at + c], y[c], 1.0);
                BACKWARD.check("dx", at + c, run.dx[at + c], dx[c], 1.0);
            }
            // dw in the launcher's layout: full [t, per_w]; low rank u block then v block.
            match net.rank {
                None => {
                    for i in 0..per_w {
                        dw_want[ti * per_w + i] += dw[i];
                    }
                }
                Some(_) => {
                    let half = l * d * r;
                    let t_all = nets.len() * half;
                    for i in 0..half {
                        dw_want[ti * half + i] += dw[i];
                        dw_want[t_all + ti * half + i] += dw[half + i];
                    }
                }
            }
            for i in 0..per_b {
                db_want[ti * per_b + i] += db[i];
            }
        }
    }
    // Weight gradients sum `rows` rows of O(1) terms.
    let mag = rows.max(1) as f64;
    for i in 0..run.dw.len() {
        BACKWARD.check("dw", i, run.dw[i], dw_want[i], mag);
    }
    for i in 0..run.db.len() {
        BACKWARD.check("db", i, run.db[i], db_want[i], mag);
    }
    run
}

#[test]
fn full_rank_matches_reference_one_table() {
    let mut rng = Rng::new(1);
    let nets = vec![random_net(&mut rng, 13, 3, None, true)];
    check_against_reference(&nets, 37, 37, 2);
}

#[test]
fn full_rank_matches_reference_many_tables_rows_below_capacity() {
    let mut rng = Rng::new(3);
    let nets: Vec<Net> = (0..3)
        .map(|_| random_net(&mut rng, 10, 2, None, false))
        .collect();
    check_against_reference(&nets, 50, 33, 4);
}

#[test]
fn low_rank_matches_reference() {
    let mut rng = Rng::new(5);
    let nets: Vec<Net> = (0..2)
        .map(|_| random_net(&mut rng, 17, 2, Some(3), true))
        .collect();
    check_against_reference(&nets, 21, 19, 6);
    let one = vec![random_net(&mut rng, 6, 1, Some(1), false)];
    check_against_reference(&one, 5, 5, 7);
}

#[test]
fn one_layer_width_one_and_wide() {
    let mut rng = Rng::new(8);
    check_against_reference(&[random_net(&mut rng, 1, 1, None, true)], 3, 3, 9);
    check_against_reference(&[random_net(&mut rng, 130, 2, None, true)], 9, 9, 10);
}

/// Widths and ranks that are multiples of 4 take the GEMM's vec4-load path, with every layer's
/// weights at a non-zero offset of the shared weight buffer.
#[test]
fn vec4_aligned_shapes_match_reference() {
    let mut rng = Rng::new(14);
    let full: Vec<Net> = (0..2)
        .map(|_| random_net(&mut rng, 16, 3, None, true))
        .collect();
    let run = check_against_reference(&full, 12, 11, 15);
    assert_eq!(run.vec4, (9, 9), "every GEMM on the vec4 path");
    let low: Vec<Net> = (0..3)
        .map(|_| random_net(&mut rng, 16, 2, Some(4), false))
        .collect();
    let run = check_against_reference(&low, 8, 8, 16);
    assert_eq!(run.vec4, (12, 12), "every GEMM on the vec4 path");
}

#[test]
fn zero_rows_writes_nothing_and_zeroes_parameter_gradients() {
    let mut rng = Rng::new(11);
    let nets = vec![random_net(&mut rng, 8, 2, None, true)];
    let x = random_f32(&mut rng, 4 * 8);
    let run = run_gpu(&nets, &x, &x, 4, 0);
    assert!(run.y.iter().all(|v| v.is_nan()), "no row is written");
    assert!(run.dx.iter().all(|v| v.is_nan()), "no row is written");
    assert!(
        run.dw.iter().chain(&run.db).all(|&v| v == 0.0),
        "an empty batch has zero parameter gradients"
    );
}

#[test]
fn dispatch_count_does_not_grow_with_tables() {
    let mut rng = Rng::new(12);
    for rank in [None, Some(2)] {
        let one = vec![random_net(&mut rng, 6, 3, rank, true)];
        let eight: Vec<Net> = (0..8)
            .map(|_| random_net(&mut rng, 6, 3, rank, true))
            .collect();
        let x1 = random_f32(&mut rng, 6 * 4);
        let x8 = random_f32(&mut rng, 8 * 6 * 4);
        let own = private_gpu();
        let a = run_on(&own, &one, &x1, &x1, 4, 4);
        let b = run_on(&own, &eight, &x8, &x8, 4, 4);
        let (fwd, bwd) = match rank {
            None => (2 * 3, 4 * 3 + 1),
            Some(_) => (3 * 3, 6 * 3 + 1),
        };
        assert_eq!((a.dispatches_forward, a.dispatches_backward), (fwd, bwd));
        assert_eq!((b.dispatches_forward, b.dispatches_backward), (fwd, bwd));
    }
}

#[test]
fn same_inputs_give_identical_bits() {
    let mut rng = Rng::new(13);
    let nets: Vec<Net> = (0..2)
        .map(|_| random_net(&mut rng, 12, 2, None, true))
        .collect();
    let x = random_f32(&mut rng, 2 * 40 * 12);
    let a = run_gpu(&nets, &x, &x, 40, 40);
    let b = run_gpu(&nets, &x, &x, 40, 40);
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&a.y), bits(&b.y));
    assert_eq!(bits(&a.dx), bits(&b.dx));
    assert_eq!(bits(&a.dw), bits(&b.dw));
    assert_eq!(bits(&a.db), bits(&b.db));
}

#[test]
fn matches_pytorch_fixture() {
    let fx = Fixture::load("dcn");
    for case in ["full_m1", "full_m3", "lowrank_m2"] {
        let key = |k: &str| format!("{case}.{k}");
        let shape = fx.shape(&key("x")).to_vec();
        let (m, b, d) = (shape[0], shape[1], shape[2]);
        let layers = fx.shape(&key("b"))[1];
        let relu = fx.f64(&key("relu"))[0] != 0.0;
        let rank = fx.has(&key("u")).then(|| fx.shape(&key("u"))[3]);
        // Rebuild the nets in the reference's layout from the fixture's (exact f32) parameters.
        let per_b = layers * d;
        let nets: Vec<Net> = (0..m)
            .map(|t| {
                let w = match rank {
                    None => {
                        let per = layers * d * d;
                        fx.f64(&key("w"))[t * per..(t + 1) * per].to_vec()
                    }
                    Some(r) => {
                        let per = layers * d * r;
                        let mut w = fx.f64(&key("u"))[t * per..(t + 1) * per].to_vec();
                        w.extend_from_slice(&fx.f64(&key("v"))[t * per..(t + 1) * per]);
                        w
                    }
                };
                Net {
                    dim: d,
                    layers,
                    rank,
                    relu,
                    w,
                    b: fx.f64(&key("b"))[t * per_b..(t + 1) * per_b].to_vec(),
                }
            })
            .collect();
        let run = run_gpu(&nets, &fx.f32(&key("x")), &fx.f32(&key("gy")), b, b);
        let compare = |what: &str, got: &[f32], want: &[f64], tol: Tolerance, mag: f64| {
            assert_eq!(got.len(), want.len(), "{case}.{what} length");
            for i in 0..got.len() {
                tol.check(&format!("{case}.{what}"), i, got[i], want[i], mag);
            }
        };
        compare("y", &run.y, fx.f64(&key("y")), FORWARD, 1.0);
        compare("dx", &run.dx, fx.f64(&key("dx")), BACKWARD, 1.0);
        compare("db", &run.db, fx.f64(&key("db")), BACKWARD, b as f64);
        let dw_want: Vec<f64> = match rank {
            None => fx.f64(&key("dw")).to_vec(),
            Some(_) => [fx.f64(&key("du")), fx.f64(&key("dv"))].concat(),
        };
        compare("dw", &run.dw, &dw_want, BACKWARD, b as f64);
    }
}

#[test]
fn bad_shapes_are_errors_not_panics() {
    let gpu = gpu();
    let small = gpu.storage_from("small", &[0f32; 4]);
    let spec = CrossSpec {
        tables: 2,
        rows_cap: 8,
        dim: 5,
        layers: 2,
        rank: None,
        relu: false,
    };
    let bufs = CrossBuffers {
        x0: &small,
        weights: CrossWeights::Full(&small),
        bias: &small,
        y: &small,
        dy: &small,
        dx: &small,
        dweights: CrossWeights::Full(&small),
        dbias: &small,
    };
    let err = CrossNetwork::new(gpu, spec, &bufs)
        .err()
        .expect("short buffers are refused")
        .to_string();
    assert!(err.contains("cross_forward") && err.contains("x0"), "{err}");
    let err = CrossNetwork::new(gpu, CrossSpec { layers: 0, ..spec }, &bufs)
        .err()
        .expect("zero layers is refused")
        .to_string();
    assert!(err.contains("layers 0"), "{err}");
}

#[test]
fn params_struct_matches_wgsl() {
    assert_layout(
        &shaders::CROSS,
        "CrossParams",
        std::mem::size_of::<CrossParams>(),
        offsets!(CrossParams: tables, rows, rows_cap, dim, flags),
    );
}
