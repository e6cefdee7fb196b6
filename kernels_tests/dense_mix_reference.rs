//! The f64 CPU reference of the multi-task mixture (`mix.wgsl`) and the GPU harness its tests
//! share: cases (shape, route, mode), seeded inputs, poisoned runs and the element-wise comparison.

use wgrec::kernels::dense::mix::{
    Mix, MixBuffers, MixSpec, ROUTE_PRESENT, ROUTE_READ, ROUTE_TRAIN,
};
use wgrec::rng::Rng;
use wgrec::Gpu;

use crate::common::{download, random_f32, upload, Tolerance};
use crate::dense_norm::{run, to_f64};

/// g, c and dh: as the gate's (dense_gate.rs): a softmax of E ≤ 5 terms and a gated sum of E
/// terms, a few roundings each on top of exp's 3 + 2|x| ulp (logits spread over ≤ 6: ≤ 15 ulp ≈
/// 1e-6); dh adds U ≤ 3 products and dx terms, a rounding each. 1e-5 of the magnitude (the sum of
/// the absolute values of the terms) leaves margin.
pub const FORWARD: Tolerance = Tolerance {
    relative: 1e-5,
    absolute: 1e-7,
};

/// da: as the gate's: dg is a serial f32 sum of W ≤ 257 products (≤ W·ε ≈ 3e-5 of Σ|dc·h| at
/// worst, ~√W·ε on random data), then g·(dg − Σ g·dg); magnitude g·(Σ_j|dc·h| + Σ_k g_k Σ_j|dc·h_k|).
pub const BACKWARD: Tolerance = Tolerance {
    relative: 1e-4,
    absolute: 1e-7,
};

pub const P: u32 = ROUTE_PRESENT;
pub const PT: u32 = ROUTE_PRESENT | ROUTE_TRAIN;
pub const ALL: u32 = ROUTE_PRESENT | ROUTE_TRAIN | ROUTE_READ;

/// STEM, 2 tasks, experts [task 0, task 1, shared]: the other task's expert under stop-gradient.
pub const STEM: [u32; 6] = [ALL, P, ALL, P, ALL, ALL];
/// PLE: the other task's expert is not in the mixture at all.
pub const PLE: [u32; 6] = [ALL, 0, ALL, 0, ALL, ALL];
/// 3 units × 5 experts with every bit pattern, READ without TRAIN and TRAIN without READ included.
pub const MIXED: [u32; 15] = [
    ALL,
    P,
    0,
    PT,
    P | ROUTE_READ,
    0,
    ALL,
    P,
    0,
    PT,
    P,
    P,
    P | ROUTE_READ,
    P,
    ALL,
];

/// One problem: shape, route and mode (a learned gate unless `uniform`; dx bound when `dx`).
#[derive(Debug, Clone)]
pub struct Case {
    pub units: usize,
    pub experts: usize,
    pub rows: usize,
    pub rows_cap: usize,
    pub cols: usize,
    pub route: Vec<u32>,
    pub uniform: bool,
    pub dx: bool,
}

impl Case {
    /// A learned gate with `route`, dx bound when any entry has READ.
    pub fn new(route: &[u32], units: usize, rows: usize, rows_cap: usize, cols: usize) -> Case {
        Case {
            units,
            experts: route.len() / units,
            rows,
            rows_cap,
            cols,
            route: route.to_vec(),
            uniform: false,
            dx: route.iter().any(|&r| r & ROUTE_READ != 0),
        }
    }
    /// The same routes with the gate made uniform (READ dropped: no gate, no gate input).
    pub fn uniform(mut self) -> Case {
        self.route.iter_mut().for_each(|r| *r &= !ROUTE_READ);
        (self.uniform, self.dx) = (true, false);
        self
    }
    pub fn bit(&self, u: usize, e: usize, bit: u32) -> bool {
        self.route[u * self.experts + e] & bit != 0
    }
    pub fn h(&self, e: usize, b: usize, j: usize) -> usize {
        (e * self.rows_cap + b) * self.cols + j
    }
    pub fn c(&self, u: usize, b: usize, j: usize) -> usize {
        (u * self.rows_cap + b) * self.cols + j
    }
    pub fn g(&self, u: usize, b: usize, e: usize) -> usize {
        (u * self.rows_cap + b) * self.experts + e
    }
    pub fn x(&self, u: usize, b: usize, e: usize, j: usize) -> usize {
        (u * self.rows_cap + b) * self.experts * self.cols + e * self.cols + j
    }
    pub fn sizes(&self) -> (usize, usize, usize, usize) {
        let (e, r, w) = (self.experts, self.rows_cap, self.cols);
        (
            e * r * w,
            self.units * r * w,
            self.units * r * e,
            self.units * r * e * w,
        )
    }
}

/// g [U, rows_cap, E] and c [U, rows_cap, W] (NaN past `rows`); `mix` picks, per (u, e), the h
/// the mixture reads (the finite-difference test freezes the stop-gradient experts there).
pub fn forward_ref(
    k: &Case,
    h: &[f64],
    a: &[f64],
    mix: impl Fn(usize, usize) -> bool,
    h0: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    let (_, outs, gates, _) = k.sizes();
    let (mut g, mut c) = (vec![f64::NAN; gates], vec![f64::NAN; outs]);
    for u in 0..k.units {
        let on: Vec<usize> = (0..k.experts).filter(|&e| k.bit(u, e, P)).collect();
        for b in 0..k.rows {
            let w: Vec<f64> = if k.uniform {
                on.iter().map(|_| 1.0 / on.len() as f64).collect()
            } else {
                let mx = on
                    .iter()
                    .map(|&e| a[k.g(u, b, e)])
                    .fold(f64::NEG_INFINITY, f64::max);
                let ex: Vec<f64> = on.iter().map(|&e| (a[k.g(u, b, e)] - mx).exp()).collect();
                let s: f64 = ex.iter().sum();
                ex.iter().map(|v| v / s).collect()
            };
            (0..k.experts).for_each(|e| g[k.g(u, b, e)] = 0.0);
            for (&e, &w) in on.iter().zip(&w) {
                g[k.g(u, b, e)] = w;
            }
            for j in 0..k.cols {
                let src = |e: usize| if mix(u, e) { h } else { h0 };
                c[k.c(u, b, j)] = on
                    .iter()
                    .map(|&e| g[k.g(u, b, e)] * src(e)[k.h(e, b, j)])
                    .sum();
            }
        }
    }
    (g, c)
}

/// dh [E, rows_cap, W] and da [U, rows_cap, E] (empty when uniform) from the saved g, dc and dx.
pub fn backward_ref(
    k: &Case,
    h: &[f64],
    g: &[f64],
    dc: &[f64],
    dx: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    let (hs, _, gates, _) = k.sizes();
    let mut dh = vec![f64::NAN; hs];
    let mut da = vec![f64::NAN; if k.uniform { 0 } else { gates }];
    for b in 0..k.rows {
        for u in (0..k.units).filter(|_| !k.uniform) {
            let dg: Vec<f64> = (0..k.experts)
                .map(|e| {
                    (0..k.cols)
                        .map(|j| dc[k.c(u, b, j)] * h[k.h(e, b, j)])
                        .sum()
                })
                .collect();
            let on = |e: usize| k.bit(u, e, P);
            let dot: f64 = (0..k.experts)
                .filter(|&e| on(e))
                .map(|e| g[k.g(u, b, e)] * dg[e])
                .sum();
            for e in 0..k.experts {
                da[k.g(u, b, e)] = if on(e) {
                    g[k.g(u, b, e)] * (dg[e] - dot)
                } else {
                    0.0
                };
            }
        }
        for e in 0..k.experts {
            for j in 0..k.cols {
                dh[k.h(e, b, j)] = (0..k.units)
                    .map(|u| {
                        let mix = if k.bit(u, e, ROUTE_TRAIN) {
                            g[k.g(u, b, e)] * dc[k.c(u, b, j)]
                        } else {
                            0.0
                        };
                        let read = if k.dx && k.bit(u, e, ROUTE_READ) {
                            dx[k.x(u, b, e, j)]
                        } else {
                            0.0
                        };
                        mix + read
                    })
                    .sum();
            }
        }
    }
    (dh, da)
}

/// Seeded inputs: h, dc, dx in [-1, 1), logits in [-3, 3) (never all zero); NaN where the kernel
/// must not look: absent experts' logits, and dx of the experts a unit does not READ.
pub struct Inputs {
    pub h: Vec<f32>,
    pub a: Vec<f32>,
    pub dc: Vec<f32>,
    pub dx: Vec<f32>,
}

pub fn inputs(k: &Case, seed: u64) -> Inputs {
    let (hs, outs, gates, xs) = k.sizes();
    let mut rng = Rng::new(seed);
    let mut i = Inputs {
        h: random_f32(&mut rng, hs),
        a: random_f32(&mut rng, gates)
            .into_iter()
            .map(|v| 3.0 * v)
            .collect(),
        dc: random_f32(&mut rng, outs),
        dx: random_f32(&mut rng, xs),
    };
    for (u, b, e) in (0..k.units)
        .flat_map(|u| (0..k.rows_cap).flat_map(move |b| (0..k.experts).map(move |e| (u, b, e))))
    {
        if !k.bit(u, e, P) {
            i.a[k.g(u, b, e)] = f32::NAN;
        }
        if !k.bit(u, e, ROUTE_READ) {
            (0..k.cols).for_each(|j| i.dx[k.x(u, b, e, j)] = f32::NAN);
        }
    }
    i
}

/// GPU outputs as downloaded (every output poisoned with NaN before the run; da empty if uniform).
pub struct Outputs {
    pub g: Vec<f32>,
    pub c: Vec<f32>,
    pub dh: Vec<f32>,
    pub da: Vec<f32>,
}

pub fn spec(k: &Case) -> MixSpec<'_> {
    MixSpec {
        units: k.units as u32,
        experts: k.experts as u32,
        rows_cap: k.rows_cap as u32,
        cols: k.cols as u32,
        uniform: k.uniform,
        gate_input_grad: k.dx,
        route: &k.route,
    }
}

/// Every buffer of a [`Mix`] for `k`: inputs uploaded from `i`, outputs filled with `fill`
/// (NaN to poison them).
pub struct Bufs {
    pub h: wgpu::Buffer,
    pub a: wgpu::Buffer,
    pub dc: wgpu::Buffer,
    pub dx: wgpu::Buffer,
    pub g: wgpu::Buffer,
    pub c: wgpu::Buffer,
    pub dh: wgpu::Buffer,
    pub da: wgpu::Buffer,
}

impl Bufs {
    pub fn new(gpu: &Gpu, k: &Case, i: &Inputs, fill: f32) -> Bufs {
        let (hs, outs, gates, _) = k.sizes();
        let out = |n: usize| upload(gpu, "output", &vec![fill; n]);
        Bufs {
            h: upload(gpu, "h", &i.h),
            a: upload(gpu, "a", &i.a),
            dc: upload(gpu, "dc", &i.dc),
            dx: upload(gpu, "dx", &i.dx),
            g: out(gates),
            c: out(outs),
            dh: out(hs),
            da: out(gates),
        }
    }

    /// The binding the mode of `k` asks for: logits and da when learned, dx when READ is used.
    pub fn mix(&self, k: &Case) -> MixBuffers<'_> {
        MixBuffers {
            h: &self.h,
            logits: (!k.uniform).then_some(&self.a),
            gate: &self.g,
            out: &self.c,
            grad_out: &self.dc,
            grad_h: &self.dh,
            grad_logits: (!k.uniform).then_some(&self.da),
            grad_x: k.dx.then_some(&self.dx),
        }
    }
}

/// One forward and backward on poisoned outputs, downloaded.
pub fn run_mix(gpu: &Gpu, k: &Case, i: &Inputs) -> Outputs {
    let (hs, outs, gates, _) = k.sizes();
    let b = Bufs::new(gpu, k, i, f32::NAN);
    let mut op = Mix::new(gpu, &spec(k), &b.mix(k)).expect("mix");
    op.set_rows(gpu, k.rows as u32).expect("rows");
    run(gpu, |pass| {
        op.record_forward(gpu, pass);
        op.record_backward(gpu, pass);
    });
    Outputs {
        g: download(gpu, &b.g, gates),
        c: download(gpu, &b.c, outs),
        dh: download(gpu, &b.dh, hs),
        da: if k.uniform {
            vec![]
        } else {
            download(gpu, &b.da, gates)
        },
    }
}

/// Every live value against the reference from the same f32 inputs; absent experts' g and da
/// exactly 0; nothing written past `rows`.
pub fn check_against_reference(k: &Case, i: &Inputs, o: &Outputs) {
    let (h, a, dc, dx) = (to_f64(&i.h), to_f64(&i.a), to_f64(&i.dc), to_f64(&i.dx));
    let (g, c) = forward_ref(k, &h, &a, |_, _| true, &h);
    let (dh, da) = backward_ref(k, &h, &g, &dc, &dx);
    let dg_mag = |u: usize, b: usize, e: usize| -> f64 {
        (0..k.cols)
            .map(|j| (dc[k.c(u, b, j)] * h[k.h(e, b, j)]).abs())
            .sum()
    };
    for b in 0..k.rows_cap {
        let live = b < k.rows;
        for u in 0..k.units {
            for e in 0..k.experts {
                let n = k.g(u, b, e);
                if !live {
                    assert!(
                        o.g[n].is_nan() && o.da.get(n).is_none_or(|v| v.is_nan()),
                        "g/da[{u}, {b}, {e}] written"
                    );
                } else if !k.bit(u, e, P) {
                    assert!(
                        o.g[n] == 0.0 && o.da.get(n).is_none_or(|&v| v == 0.0),
                        "absent g/da[{u}, {b}, {e}]"
                    );
                } else {
                    FORWARD.check("g", n, o.g[n], g[n], g[n]);
                    if !k.uniform {
                        let dot: f64 = (0..k.experts)
                            .map(|q| g[k.g(u, b, q)] * dg_mag(u, b, q))
                            .sum();
                        BACKWARD.check("da", n, o.da[n], da[n], g[n] * (dg_mag(u, b, e) + dot));
                    }
                }
            }
            for j in 0..k.cols {
                let n = k.c(u, b, j);
                if !live {
                    assert!(
                        o.c[n].is_nan(),
                        "c[{u}, {b}, {j}] written past the live rows"
                    );
                    continue;
                }
                let mag: f64 = (0..k.experts)
                    .map(|e| g[k.g(u, b, e)] * h[k.h(e, b, j)].abs())
                    .sum();
                FORWARD.check("c", n, o.c[n], c[n], mag);
            }
        }
        for e in 0..k.experts {
            for j in 0..k.cols {
                let n = k.h(e, b, j);
                if !live {
                    assert!(
                        o.dh[n].is_nan(),
                        "dh[{e}, {b}, {j}] written past the live rows"
                    );
                    continue;
                }
                let mag: f64 = (0..k.units)
                    .map(|u| {
                        (g[k.g(u, b, e)] * dc[k.c(u, b, j)]).abs()
                            + if k.dx && k.bit(u, e, ROUTE_READ) {
                                dx[k.x(u, b, e, j)].abs()
                            } else {
                                0.0
                            }
                    })
                    .sum();
                FORWARD.check("dh", n, o.dh[n], dh[n], mag);
            }
        }
    }
}
