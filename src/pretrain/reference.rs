//! The plain f64 CPU reference of the GraphSAGE model and loss (forward, loss, analytic gradients):
//! what the GPU path is tested against, and what its finite-difference test checks.
//!
//! Shapes (D the embedding width, every weight `[D, 2D]` row-major, `y = W a`):
//! `a¹_r = [x_{node r} ‖ mean x over r's S₁ sample]`, `h¹_r = ReLU(W¹ a¹_r)`,
//! `a²_t = [h¹_{own row of t} ‖ mean h¹ over t's S₂ rows]`, `y_t = W² a²_t`,
//! `z_t = y_t / sqrt(‖y_t‖² + ε)`; an empty sample means zeros. Loss per edge
//! `e = (u, i, n_1..n_Q)` with scores `s = zᵀz' / τ`:
//! `ℓ_e = softplus(−s_ui) + Σ_q softplus(s_{u n_q})` (= `−log σ(s_ui) − Σ_q log σ(−s_{u n_q})`,
//! Hamilton et al.'s `Q · E_n` with Q samples), and the batch loss is the mean of `ℓ_e`.

use super::sample::Computation;
use crate::rng::Rng;

/// ε in the ℓ2 normalisation: keeps an all-zero `y` finite (z = 0) without moving any other value.
pub const NORM_EPS: f64 = 1e-12;

/// The model's parameters in f64.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Embedding width D.
    pub dim: usize,
    /// Input embeddings `[nodes, D]`.
    pub x: Vec<f64>,
    /// Layer-1 weight `[D, 2D]`.
    pub w1: Vec<f64>,
    /// Layer-2 weight `[D, 2D]`.
    pub w2: Vec<f64>,
}

impl Params {
    /// Seeded initialisation: `x ~ U(−0.1, 0.1)` (small, as embedding tables start), weights
    /// Glorot-uniform `U(±sqrt(6 / (2D + D)))`. Values are f32-representable, so the GPU starts
    /// from the same bits.
    pub fn init(nodes: usize, dim: usize, seed: u64) -> Self {
        let mut rng = Rng::new(seed ^ 0x5A6E);
        let glorot = (6.0 / (3.0 * dim as f64)).sqrt() as f32;
        let mut draw =
            |n: usize, a: f32| -> Vec<f64> { (0..n).map(|_| rng.uniform(-a, a) as f64).collect() };
        let x = draw(nodes * dim, 0.1);
        let w1 = draw(2 * dim * dim, glorot);
        let w2 = draw(2 * dim * dim, glorot);
        Params { dim, x, w1, w2 }
    }
}

/// The forward's intermediate values.
#[derive(Debug, Clone, PartialEq)]
pub struct Forward {
    /// `[rows, 2D]`.
    pub a1: Vec<f64>,
    /// `[rows, D]`.
    pub h1: Vec<f64>,
    /// `[targets, 2D]`.
    pub a2: Vec<f64>,
    /// `[targets, D]` (before normalisation).
    pub y: Vec<f64>,
    /// `[targets, D]`.
    pub z: Vec<f64>,
}

/// Gradients of the batch loss.
#[derive(Debug, Clone, PartialEq)]
pub struct Gradients {
    /// The batch loss (mean over edges).
    pub loss: f64,
    /// Per-edge losses `ℓ_e`.
    pub edge_losses: Vec<f64>,
    /// dL/dx `[nodes, D]`.
    pub x: Vec<f64>,
    /// dL/dW¹.
    pub w1: Vec<f64>,
    /// dL/dW².
    pub w2: Vec<f64>,
}

/// `out[j] = Σ_k w[j, k] a[k]`.
fn linear(w: &[f64], a: &[f64], out: &mut [f64]) {
    let k = a.len();
    for (j, o) in out.iter_mut().enumerate() {
        *o = (0..k).map(|p| w[j * k + p] * a[p]).sum();
    }
}

/// `[own ‖ mean of rows]` into `out` (2·width).
fn concat_mean<'a>(own: &[f64], rows: impl Iterator<Item = &'a [f64]>, out: &mut [f64]) {
    let d = own.len();
    out[..d].copy_from_slice(own);
    out[d..].fill(0.0);
    let mut n = 0usize;
    for r in rows {
        n += 1;
        out[d..].iter_mut().zip(r).for_each(|(o, v)| *o += v);
    }
    if n > 0 {
        out[d..].iter_mut().for_each(|o| *o /= n as f64);
    }
}

/// The forward of computation `c`.
pub fn forward(p: &Params, c: &Computation) -> Forward {
    let d = p.dim;
    let (rows, targets) = (c.rows(), c.targets.len());
    let x = |n: u32| &p.x[n as usize * d..(n as usize + 1) * d];
    let mut a1 = vec![0.0; rows * 2 * d];
    let mut h1 = vec![0.0; rows * d];
    for r in 0..rows {
        let sample = &c.l1_neighbours[c.l1_offsets[r] as usize..c.l1_offsets[r + 1] as usize];
        let a = &mut a1[r * 2 * d..(r + 1) * 2 * d];
        concat_mean(x(c.l1_nodes[r]), sample.iter().map(|&n| x(n)), a);
        let h = &mut h1[r * d..(r + 1) * d];
        linear(&p.w1, a, h);
        h.iter_mut().for_each(|v| *v = v.max(0.0));
    }
    let mut a2 = vec![0.0; targets * 2 * d];
    let mut y = vec![0.0; targets * d];
    let mut z = vec![0.0; targets * d];
    for t in 0..targets {
        let members = &c.members[c.target_rows[t] as usize..c.target_rows[t + 1] as usize];
        let h = |r: &u32| &h1[*r as usize * d..(*r as usize + 1) * d];
        let a = &mut a2[t * 2 * d..(t + 1) * 2 * d];
        concat_mean(h(&members[0]), members[1..].iter().map(h), a);
        let yt = &mut y[t * d..(t + 1) * d];
        linear(&p.w2, a, yt);
        let norm = (yt.iter().map(|v| v * v).sum::<f64>() + NORM_EPS).sqrt();
        z[t * d..(t + 1) * d]
            .iter_mut()
            .zip(yt.iter())
            .for_each(|(o, v)| *o = v / norm);
    }
    Forward { a1, h1, a2, y, z }
}

/// `log(1 + e^x)`, stable for any x.
pub fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// `1 / (1 + e^−x)`.
pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Per-edge losses and dL/dz (L the mean over edges) of normalised outputs `z`.
pub fn link_loss(z: &[f64], d: usize, c: &Computation, tau: f64) -> (Vec<f64>, Vec<f64>) {
    let group = 2 + c.negatives as usize;
    let edges = c.edges as usize;
    let mut dz = vec![0.0; z.len()];
    let mut losses = Vec::with_capacity(edges);
    let row = |t: usize| &z[t * d..(t + 1) * d];
    for e in 0..edges {
        let u = e * group;
        let mut loss = 0.0;
        for k in 1..group {
            let s: f64 = row(u)
                .iter()
                .zip(row(u + k))
                .map(|(a, b)| a * b)
                .sum::<f64>()
                / tau;
            // The positive (k = 1) wants s high, the negatives low.
            let (l, g) = if k == 1 {
                (softplus(-s), -sigmoid(-s))
            } else {
                (softplus(s), sigmoid(s))
            };
            loss += l;
            let g = g / (tau * edges as f64);
            for j in 0..d {
                dz[u * d + j] += g * z[(u + k) * d + j];
                dz[(u + k) * d + j] += g * z[u * d + j];
            }
        }
        losses.push(loss);
    }
    (losses, dz)
}

/// `ga[k] += Σ_j w[j, k] g[j]` and `gw[j, k] += g[j] a[k]`: a linear layer's backward.
fn linear_backward(w: &[f64], a: &[f64], g: &[f64], gw: &mut [f64], ga: &mut [f64]) {
    let k = a.len();
    for (j, &gj) in g.iter().enumerate() {
        for p in 0..k {
            gw[j * k + p] += gj * a[p];
            ga[p] += w[j * k + p] * gj;
        }
    }
}

/// dL/dy of `z = y / sqrt(‖y‖² + ε)`: `(dz − z (z·dz)) / sqrt(‖y‖² + ε)`.
fn normalize_backward(y: &[f64], z: &[f64], dz: &[f64], out: &mut [f64]) {
    let norm = (y.iter().map(|v| v * v).sum::<f64>() + NORM_EPS).sqrt();
    let zdz: f64 = z.iter().zip(dz).map(|(a, b)| a * b).sum();
    for j in 0..y.len() {
        out[j] = (dz[j] - z[j] * zdz) / norm;
    }
}

/// dL/dh¹ of each layer-1 row from dL/da²: the own half to the target's own row, the mean half
/// shared out over its samples, summed over every target that reads the row.
fn layer1_gradient(c: &Computation, d: usize, da2: &[f64]) -> Vec<f64> {
    let mut dh1 = vec![0.0; c.rows() * d];
    for t in 0..c.targets.len() {
        let members = &c.members[c.target_rows[t] as usize..c.target_rows[t + 1] as usize];
        let g = &da2[t * 2 * d..(t + 1) * 2 * d];
        let share = 1.0 / (members.len() - 1).max(1) as f64;
        for (k, &r) in members.iter().enumerate() {
            let r = r as usize;
            for j in 0..d {
                dh1[r * d + j] += if k == 0 { g[j] } else { g[d + j] * share };
            }
        }
    }
    dh1
}

/// The loss and its analytic gradients for every parameter.
pub fn gradients(p: &Params, c: &Computation, tau: f64) -> Gradients {
    let d = p.dim;
    let f = forward(p, c);
    let (edge_losses, dz) = link_loss(&f.z, d, c, tau);
    let loss = edge_losses.iter().sum::<f64>() / (c.edges.max(1) as f64);
    let (mut w1, mut w2) = (vec![0.0; p.w1.len()], vec![0.0; p.w2.len()]);
    let mut da2 = vec![0.0; f.a2.len()];
    let mut dy = vec![0.0; d];
    for t in 0..c.targets.len() {
        let span = t * d..(t + 1) * d;
        normalize_backward(&f.y[span.clone()], &f.z[span.clone()], &dz[span], &mut dy);
        let a = &f.a2[t * 2 * d..(t + 1) * 2 * d];
        linear_backward(&p.w2, a, &dy, &mut w2, &mut da2[t * 2 * d..(t + 1) * 2 * d]);
    }
    let mut dh1 = layer1_gradient(c, d, &da2);
    let mut x = vec![0.0; p.x.len()];
    let mut da1 = vec![0.0; 2 * d];
    for r in 0..c.rows() {
        let g = &mut dh1[r * d..(r + 1) * d];
        g.iter_mut()
            .zip(&f.h1[r * d..(r + 1) * d])
            .for_each(|(g, &h)| *g = if h > 0.0 { *g } else { 0.0 });
        da1.fill(0.0);
        linear_backward(
            &p.w1,
            &f.a1[r * 2 * d..(r + 1) * 2 * d],
            g,
            &mut w1,
            &mut da1,
        );
        let own = c.l1_nodes[r] as usize;
        (0..d).for_each(|j| x[own * d + j] += da1[j]);
        let sample = &c.l1_neighbours[c.l1_offsets[r] as usize..c.l1_offsets[r + 1] as usize];
        for &n in sample {
            let share = 1.0 / sample.len() as f64;
            (0..d).for_each(|j| x[n as usize * d + j] += da1[d + j] * share);
        }
    }
    Gradients {
        loss,
        edge_losses,
        x,
        w1,
        w2,
    }
}
