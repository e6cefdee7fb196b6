//! The whole compiled model against an independent f64 CPU forward (issue 5, item 8): the logits of
//! `Graph::train_logits`, and every gradient of one `train_step` — dense ones read back with
//! `FlatParams::read_grads`, embedding ones through the update (sparse SGD with lr = 1, so a table's
//! change is −gradient) — against central finite differences of the CPU loss.
//!
//! The CPU model follows `src/graph/mod.rs`'s module docs for the [`graph::TINY`] feature set (user,
//! item, genre bag, MNS age, a TIM history over item + genre), reading every weight from
//! `save_state` by its checkpoint name. Variants ([`Spec`]): M = 2 with a DCN expert on table 0
//! and a GwPFM expert on table 1 (mean combine, BCE + combined-pair), BatchNorm on (batch
//! statistics) and off (projection bias), with and without per-sample weights; and M = 6 with
//! FwFM, MLP, FwFM, low-rank DCN, IPNN, FM (tables 0 and 2 one group, so slots are not in table
//! order), concat combine and the combined-list loss, BatchNorm on and off.
//!
//! [`graph::TINY`]: crate::graph::TINY

use std::collections::BTreeMap;

use wgrec::checkpoint::Checkpoint;
use wgrec::config::ModelConfig;
use wgrec::data::encode::{FeatureInput, ModelBatch};
use wgrec::graph::Graph;
use wgrec::kernels::embedding::MnsBase;
use wgrec::rng::Rng;

use crate::common::gpu;
use crate::graph::{tiny_batch, tiny_shapes};

/// Parameters by checkpoint name, in f64.
pub(crate) type Params = BTreeMap<String, Vec<f64>>;

pub(crate) const K: usize = 4; // dim
pub(crate) const G: usize = 2; // GwPFM groups
pub(crate) const W: usize = 6; // expert_width
pub(crate) const HIDDEN: usize = 5;
const ALPHA: f64 = 0.7;
pub(crate) const BN_EPS: f64 = 1e-5;
/// Fields in the graph's order: the sequence first, then the others in config order.
const FIELDS: [&str; 5] = ["history", "user", "item", "genre", "age"];
/// GwPFM group of each field (in field order): user → 0, the rest of the listed → 1, age
/// (unlisted) → 0.
const PARTITION: [usize; 5] = [1, 0, 1, 1, 0];

/// One table's expert, as the CPU model computes it.
#[derive(Debug, Clone, PartialEq)]
pub enum CpuExpert {
    Dcn { layers: usize, rank: Option<usize> },
    Gwpfm,
    Fm,
    Fwfm,
    Ipnn,
    Mlp { widths: Vec<usize> },
}

impl CpuExpert {
    fn toml(&self) -> String {
        match self {
            CpuExpert::Dcn { layers, rank: None } => {
                format!("{{ type = \"dcn\", layers = {layers} }}")
            }
            CpuExpert::Dcn {
                layers,
                rank: Some(r),
            } => format!("{{ type = \"dcn\", layers = {layers}, rank = {r} }}"),
            CpuExpert::Gwpfm => {
                "{ type = \"gwpfm\", groups = [[\"user\"], [\"item\", \"genre\", \"history\"]] }"
                    .to_string()
            }
            CpuExpert::Fm => "{ type = \"fm\" }".to_string(),
            CpuExpert::Fwfm => "{ type = \"fwfm\" }".to_string(),
            CpuExpert::Ipnn => "{ type = \"ipnn\" }".to_string(),
            CpuExpert::Mlp { widths } => format!("{{ type = \"mlp\", widths = {widths:?} }}"),
        }
    }

    /// Embedding width of its tables.
    fn width(&self) -> usize {
        if *self == CpuExpert::Gwpfm {
            K * G
        } else {
            K
        }
    }
}

/// A model variant.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Expert of each table.
    pub experts: Vec<CpuExpert>,
    pub batch_norm: bool,
    /// Concatenate the tables (else their mean).
    pub concat: bool,
    /// The learned gate over the tables (overrides `concat`).
    pub gate: bool,
    /// Task 1's ranking loss is the list loss (else the pair loss).
    pub list: bool,
    pub weighted: bool,
}

impl Spec {
    /// The default variant: DCN (2 layers) on table 0, GwPFM on table 1, mean, pair loss.
    pub fn tiny(batch_norm: bool, weighted: bool) -> Spec {
        Spec {
            experts: vec![
                CpuExpert::Dcn {
                    layers: 2,
                    rank: None,
                },
                CpuExpert::Gwpfm,
            ],
            batch_norm,
            concat: false,
            gate: false,
            list: false,
            weighted,
        }
    }

    /// Expert groups (tables with equal experts, in order of first appearance): the slot order.
    fn groups(&self) -> Vec<(CpuExpert, Vec<usize>)> {
        let mut groups: Vec<(CpuExpert, Vec<usize>)> = Vec::new();
        for (m, e) in self.experts.iter().enumerate() {
            match groups.iter_mut().find(|(k, _)| k == e) {
                Some((_, t)) => t.push(m),
                None => groups.push((e.clone(), vec![m])),
            }
        }
        groups
    }
}

pub fn config_text(spec: &Spec) -> String {
    let experts: Vec<String> = spec.experts.iter().map(CpuExpert::toml).collect();
    let mut t = format!(
        r#"
[model]
tables = {tables}
dim = {K}
experts = [{experts}]
expert_width = {W}
hidden = [{HIDDEN}]
dropout = 0.0
batch_norm = {batch_norm}
combine = "{combine}"

[[feature]]
name = "user"
kind = "categorical"

[[feature]]
name = "item"
kind = "categorical"

[[feature]]
name = "genre"
kind = "bag"

[[feature]]
name = "age"
kind = "numeric"
radices = [2, 3]

[[feature]]
name = "history"
kind = "sequence"
item = "item"
side = ["genre"]
side_columns = ["hist_genre"]
max_len = 5
buckets = 8

[[task]]
name = "click"

[[task]]
name = "love"
loss = "{rank}"
alpha = {ALPHA}

[train]
sparse_optimizer = "sgd"
sparse_lr = 1.0
dense_lr = 0.01
seed = 13
"#,
        tables = spec.experts.len(),
        experts = experts.join(", "),
        batch_norm = spec.batch_norm,
        combine = if spec.gate {
            "gate"
        } else if spec.concat {
            "concat"
        } else {
            "mean"
        },
        rank = if spec.list { "list" } else { "pair" },
    );
    if spec.weighted {
        t.push_str("\n[train.weights]\npositive = 2.0\nnegative = 0.5\n");
    }
    t
}

fn mns() -> Vec<MnsBase> {
    tiny_shapes(0)[3].mns.clone()
}

fn ids(batch: &ModelBatch, f: usize, b: usize) -> &[u32] {
    match &batch.features[f] {
        FeatureInput::Ids { offsets, rows } => &rows[offsets[b] as usize..offsets[b + 1] as usize],
        FeatureInput::Sequence(_) => panic!("feature {f} is a sequence"),
    }
}

/// Row `r` of table `name` (width `w`).
fn row<'a>(p: &'a Params, name: &str, r: u32, w: usize) -> &'a [f64] {
    let t = &p[name];
    &t[r as usize * w..(r as usize + 1) * w]
}

fn add(acc: &mut [f64], v: &[f64]) {
    for (a, b) in acc.iter_mut().zip(v) {
        *a += b;
    }
}

/// Field embeddings of table `m` (width `w`) for sample `b`: `[F·w]` in field order.
pub(crate) fn fields(p: &Params, batch: &ModelBatch, m: usize, w: usize, b: usize) -> Vec<f64> {
    let mut x = vec![0.0; FIELDS.len() * w];
    // history: TIM over (item + genre + time) rows of table m.
    {
        let FeatureInput::Sequence(seq) = &batch.features[4] else {
            panic!("history is a sequence")
        };
        let start: usize = seq.lengths[..b].iter().map(|&l| l as usize).sum();
        let len = seq.lengths[b] as usize;
        let (item, genre, time) = (
            format!("emb.{m}.item"),
            format!("emb.{m}.genre"),
            format!("emb.{m}.history.time"),
        );
        // A model without the temporal table is mean-pooled (`pooling = "mean"`, docs/tim.md).
        if !p.contains_key(&time) {
            mean_history(&mut x[..w], p, seq, (&item, &genre), start..start + len);
        }
        let sum = |i: u32, g: u32, t: u32| -> Vec<f64> {
            let mut v = row(p, &item, i, w).to_vec();
            add(&mut v, row(p, &genre, g, w));
            add(&mut v, row(p, &time, t, w));
            v
        };
        if len > 0 && p.contains_key(&time) {
            let v = sum(seq.target[2 * b], seq.target[2 * b + 1], 0);
            let e: Vec<Vec<f64>> = (start..start + len)
                .map(|i| {
                    sum(
                        seq.behaviours[2 * i],
                        seq.behaviours[2 * i + 1],
                        seq.buckets[i],
                    )
                })
                .collect();
            let scale = 1.0 / (w as f64).sqrt();
            let s: Vec<f64> = e
                .iter()
                .map(|ei| ei.iter().zip(&v).map(|(a, b)| a * b).sum::<f64>() * scale)
                .collect();
            let max = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let ex: Vec<f64> = s.iter().map(|x| (x - max).exp()).collect();
            let total: f64 = ex.iter().sum();
            for j in 0..w {
                let a: f64 = (0..len).map(|i| ex[i] / total * e[i][j]).sum();
                x[j] = a * v[j];
            }
        }
    }
    // user, item: one row each.
    x[w..2 * w].copy_from_slice(row(p, &format!("emb.{m}.user"), ids(batch, 0, b)[0], w));
    x[2 * w..3 * w].copy_from_slice(row(p, &format!("emb.{m}.item"), ids(batch, 1, b)[0], w));
    // genre: mean of the bag (empty: zeros).
    let bag = ids(batch, 2, b);
    for &r in bag {
        let v = row(p, &format!("emb.{m}.genre"), r, w);
        for j in 0..w {
            x[3 * w + j] += v[j] / bag.len() as f64;
        }
    }
    // age: the sum of its MNS digit rows.
    for r in MnsBase::digit_rows(&mns(), ids(batch, 3, b)[0]) {
        add(&mut x[4 * w..5 * w], row(p, &format!("emb.{m}.age"), r, w));
    }
    x
}

/// The mean-pooled history: (1/n) Σ_i (item + genre rows of behaviour i), 0 when n = 0.
fn mean_history(
    x: &mut [f64],
    p: &Params,
    seq: &wgrec::kernels::tim::TimBatch,
    (item, genre): (&str, &str),
    behaviours: std::ops::Range<usize>,
) {
    let (w, n) = (x.len(), behaviours.len() as f64);
    for i in behaviours {
        let (a, g) = (seq.behaviours[2 * i], seq.behaviours[2 * i + 1]);
        for (j, (r, s)) in row(p, item, a, w)
            .iter()
            .zip(row(p, genre, g, w))
            .enumerate()
        {
            x[j] += (r + s) / n;
        }
    }
}

pub(crate) fn relu(v: f64) -> f64 {
    v.max(0.0)
}

/// Expert `kind` of table `local` of group `g` over its fields `x`, ReLU after it (every layer
/// of an MLP expert).
pub(crate) fn expert(p: &Params, g: usize, local: usize, kind: &CpuExpert, x: &[f64]) -> Vec<f64> {
    let t = |name: &str| &p[&format!("expert.{g}.{name}")];
    let f = FIELDS.len();
    let pairs = || (0..f).flat_map(move |i| (i + 1..f).map(move |j| (i, j)));
    let out: Vec<f64> = match kind {
        CpuExpert::Dcn { layers, rank } => {
            let d = x.len();
            let bias = &t("b")[local * layers * d..];
            let mut xl = x.to_vec();
            for l in 0..*layers {
                let z: Vec<f64> = match rank {
                    None => {
                        let w = &t("w")[(local * layers + l) * d * d..];
                        (0..d)
                            .map(|o| (0..d).map(|i| w[o * d + i] * xl[i]).sum::<f64>())
                            .collect()
                    }
                    Some(r) => {
                        // W = U Vᵀ, U and V [D, r].
                        let (u, v) = (
                            &t("u")[(local * layers + l) * d * r..],
                            &t("v")[(local * layers + l) * d * r..],
                        );
                        let xv: Vec<f64> = (0..*r)
                            .map(|k| (0..d).map(|i| v[i * r + k] * xl[i]).sum::<f64>())
                            .collect();
                        (0..d)
                            .map(|o| (0..*r).map(|k| u[o * r + k] * xv[k]).sum::<f64>())
                            .collect()
                    }
                };
                xl = (0..d)
                    .map(|o| x[o] * (z[o] + bias[l * d + o]) + xl[o])
                    .collect();
            }
            xl
        }
        CpuExpert::Gwpfm => {
            let r = &t("r")[local * G * G..];
            let mut out = vec![0.0; K];
            for (i, j) in pairs() {
                let (pi, pj) = (PARTITION[i], PARTITION[j]);
                for c in 0..K {
                    out[c] += r[pi * G + pj] * x[(i * G + pj) * K + c] * x[(j * G + pi) * K + c];
                }
            }
            out
        }
        CpuExpert::Fm | CpuExpert::Fwfm => {
            let mut out = vec![0.0; K];
            for (i, j) in pairs() {
                let r = match kind {
                    CpuExpert::Fwfm => t("r")[local * f * f + i * f + j],
                    _ => 1.0,
                };
                for c in 0..K {
                    out[c] += r * x[i * K + c] * x[j * K + c];
                }
            }
            out
        }
        CpuExpert::Ipnn => pairs()
            .map(|(i, j)| (0..K).map(|c| x[i * K + c] * x[j * K + c]).sum::<f64>())
            .collect(),
        CpuExpert::Mlp { widths } => {
            let mut a = x.to_vec();
            for (l, &out) in widths.iter().enumerate() {
                let fan_in = a.len();
                let w = &t(&format!("layer{l}.weight"))[local * out * fan_in..];
                let b = &t(&format!("layer{l}.bias"))[local * out..];
                a = (0..out)
                    .map(|o| {
                        relu((0..fan_in).map(|i| w[o * fan_in + i] * a[i]).sum::<f64>() + b[o])
                    })
                    .collect();
            }
            a
        }
    };
    out.into_iter().map(relu).collect()
}

fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// Per-task loss (`src/kernels/loss.rs`): weighted BCE, and with `rank = Some(list)`
/// α·BCE + (1−α)·(pair or list) (BCE alone without a positive or a negative of positive weight).
pub(crate) fn task_loss(rank: Option<bool>, z: &[f64], y: &[f64], w: &[f64]) -> f64 {
    let n = z.len();
    let sw: f64 = w.iter().sum();
    let bce: f64 = (0..n)
        .map(|i| w[i] * (z[i].max(0.0) - z[i] * y[i] + (-z[i].abs()).exp().ln_1p()))
        .sum::<f64>()
        / sw;
    let pos: Vec<bool> = y.iter().map(|&v| v > 0.5).collect();
    let wp: f64 = (0..n).filter(|&i| pos[i]).map(|i| w[i]).sum();
    let wn: f64 = (0..n).filter(|&i| !pos[i]).map(|i| w[i]).sum();
    let Some(list) = rank else { return bce };
    if wp == 0.0 || wn == 0.0 {
        return bce;
    }
    if list {
        // −Σ_{i∈P} w_i log(e^{z_i} / Σ_k w_k e^{z_k}) / W⁺
        let log_sum = (0..n).map(|k| w[k] * z[k].exp()).sum::<f64>().ln();
        let rank: f64 = (0..n)
            .filter(|&i| pos[i])
            .map(|i| -w[i] * (z[i] - log_sum))
            .sum();
        return ALPHA * bce + (1.0 - ALPHA) * rank / wp;
    }
    let mut rank = 0.0;
    for i in (0..n).filter(|&i| pos[i]) {
        for j in (0..n).filter(|&j| !pos[j]) {
            rank += w[i] * w[j] * softplus(z[j] - z[i]);
        }
    }
    ALPHA * bce + (1.0 - ALPHA) * rank / (wp * wn)
}

/// Logits `[B, 2]` and the summed loss of the two tasks.
fn forward(spec: &Spec, p: &Params, batch: &ModelBatch) -> (Vec<f64>, f64) {
    let n = batch.rows;
    let m_all = spec.experts.len();
    // Per slot (tables in group order): the projection's pre-activation [B, W].
    let mut z = Vec::new();
    for (g, (kind, tables)) in spec.groups().iter().enumerate() {
        let (weight, bias) = (
            &p[&format!("proj.{g}.weight")],
            p.get(&format!("proj.{g}.bias")),
        );
        for (local, &m) in tables.iter().enumerate() {
            let mut zs = vec![vec![0.0; W]; n];
            for b in 0..n {
                let x = fields(p, batch, m, kind.width(), b);
                let y = expert(p, g, local, kind, &x);
                let out = y.len();
                let wl = &weight[local * W * out..];
                for o in 0..W {
                    zs[b][o] = (0..out).map(|i| wl[o * out + i] * y[i]).sum::<f64>()
                        + bias.map_or(0.0, |bb| bb[local * W + o]);
                }
            }
            z.push(zs);
        }
    }
    // BatchNorm (batch statistics, biased variance) + ReLU, or ReLU of z + b; then the combine.
    let width = if spec.concat && !spec.gate {
        W * m_all
    } else {
        W
    };
    let mut c = vec![vec![0.0; width]; n];
    // With the gate: every table's activated output, slot-major, for the gate's logits.
    let mut hs = vec![vec![vec![0.0; W]; n]; m_all];
    for slot in 0..m_all {
        for o in 0..W {
            let (mut mean, mut var) = (0.0, 0.0);
            if spec.batch_norm {
                mean = (0..n).map(|b| z[slot][b][o]).sum::<f64>() / n as f64;
                var = (0..n).map(|b| (z[slot][b][o] - mean).powi(2)).sum::<f64>() / n as f64;
            }
            for b in 0..n {
                let h = if spec.batch_norm {
                    let i = slot * W + o;
                    let (g, be) = (p["proj.bn.weight"][i], p["proj.bn.bias"][i]);
                    g * (z[slot][b][o] - mean) / (var + BN_EPS).sqrt() + be
                } else {
                    z[slot][b][o]
                };
                if spec.gate {
                    hs[slot][b][o] = relu(h);
                } else if spec.concat {
                    c[b][slot * W + o] = relu(h);
                } else {
                    c[b][o] += relu(h) / m_all as f64;
                }
            }
        }
    }
    if spec.gate {
        // g = softmax(W_g [h_0; …; h_{M−1}] + b_g) per sample, c = Σ_m g_m h_m.
        let (wg, bg) = (&p["combine.gate.weight"], &p["combine.gate.bias"]);
        for b in 0..n {
            let a: Vec<f64> = (0..m_all)
                .map(|k| {
                    (0..m_all)
                        .flat_map(|slot| (0..W).map(move |o| (slot, o)))
                        .map(|(slot, o)| wg[k * m_all * W + slot * W + o] * hs[slot][b][o])
                        .sum::<f64>()
                        + bg[k]
                })
                .collect();
            let max = a.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = a.iter().map(|v| (v - max).exp()).collect();
            let sum: f64 = e.iter().sum();
            for o in 0..W {
                c[b][o] = (0..m_all).map(|k| e[k] / sum * hs[k][b][o]).sum();
            }
        }
    }
    let (w1, b1) = (&p["mlp.0.weight"], &p["mlp.0.bias"]);
    let (wh, bh) = (&p["head.weight"], &p["head.bias"]);
    let mut logits = vec![0.0; n * 2];
    for b in 0..n {
        let hidden: Vec<f64> = (0..HIDDEN)
            .map(|o| relu((0..width).map(|i| w1[o * width + i] * c[b][i]).sum::<f64>() + b1[o]))
            .collect();
        for t in 0..2 {
            logits[b * 2 + t] = (0..HIDDEN)
                .map(|i| wh[t * HIDDEN + i] * hidden[i])
                .sum::<f64>()
                + bh[t];
        }
    }
    let weights: Vec<f64> = match &batch.weights {
        Some(w) => w.iter().map(|&v| v as f64).collect(),
        None => vec![1.0; n],
    };
    let mut loss = 0.0;
    for t in 0..2 {
        let zt: Vec<f64> = (0..n).map(|b| logits[b * 2 + t]).collect();
        let yt: Vec<f64> = (0..n).map(|b| batch.labels[b * 2 + t] as f64).collect();
        loss += task_loss((t == 1).then_some(spec.list), &zt, &yt, &weights);
    }
    (logits, loss)
}

/// Learned tensors of a saved state (optimizer state, running statistics left out).
pub(crate) fn learned(ckpt: &Checkpoint) -> Params {
    ckpt.tensors()
        .iter()
        .filter(|(k, _)| {
            !k.ends_with(".state") && !k.starts_with("optim.") && !k.contains("running")
        })
        .map(|(k, t)| (k.clone(), t.data.iter().map(|&v| v as f64).collect()))
        .collect()
}

/// Central differences of the CPU loss in every coordinate of tensor `name`.
fn finite_differences(spec: &Spec, p: &Params, name: &str, batch: &ModelBatch) -> Vec<f64> {
    let h = 1e-6;
    let mut probe = p.clone();
    (0..p[name].len())
        .map(|i| {
            let x = p[name][i];
            probe.get_mut(name).expect("tensor")[i] = x + h;
            let up = forward(spec, &probe, batch).1;
            probe.get_mut(name).expect("tensor")[i] = x - h;
            let down = forward(spec, &probe, batch).1;
            probe.get_mut(name).expect("tensor")[i] = x;
            (up - down) / (2.0 * h)
        })
        .collect()
}

/// The GPU's f32 forward and backward through ~12 ops (gathers, TIM's softmax, a 2-layer cross
/// network, BatchNorm's centring, GEMMs, the loss) each add a few ulps (6e-8) relative to the terms
/// they sum, and a table's delta carries the f32 rounding of the new weight (≤ 6e-8·|w| ≤ 6e-8 of
/// the gradient scale here): observed worst error 2e-7 of (|fd| + max|fd|). 1e-4 of the value plus
/// 1e-5 of the model's largest gradient leaves 50× margin over that, while a wrong term (a missing
/// factor, a dropped path, a wrong index) moves a gradient by O(1) of itself. Finite differences in
/// f64 with h = 1e-6 are exact to ~1e-9 here (see `common::check_gradient`), except across a ReLU
/// kink, which the seeds avoid.
const RELATIVE: f64 = 1e-4;
const ABSOLUTE_OF_MAX: f64 = 1e-5;

pub(crate) fn check(what: &str, got: &[f64], want: &[f64], scale: f64) -> f64 {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst = 0.0f64;
    for i in 0..got.len() {
        let err = (got[i] - want[i]).abs();
        let bound = RELATIVE * want[i].abs() + ABSOLUTE_OF_MAX * scale;
        assert!(
            got[i].is_finite() && err <= bound,
            "{what}[{i}]: gpu {} vs finite difference {} (error {err:e} > {bound:e})",
            got[i],
            want[i]
        );
        worst = worst.max(err / (want[i].abs() + scale));
    }
    worst
}

fn run_case(spec: &Spec, seed: u64) {
    let tables = run_config(spec, &config_text(spec), seed);
    assert!(
        tables.contains(&"emb.0.history.time".to_string()),
        "TIM: {tables:?}"
    );
}

/// [`run_case`] on `text`, a config of the spec's model with edits its CPU model follows;
/// returns the names of the graph's tables.
fn run_config(spec: &Spec, text: &str, seed: u64) -> Vec<String> {
    let gpu = gpu();
    let weighted = spec.weighted;
    let what = format!("{spec:?}");
    let config = ModelConfig::parse(text, "gradcheck.toml").expect("gradcheck config");
    let mut graph =
        Graph::new(gpu, &config, &tiny_shapes(0), 16, 0.0, optimizers(&config)).expect("graph");
    assert_eq!(graph.fields().to_vec(), vec![4, 0, 1, 2, 3], "field order");
    let groups: Vec<Vec<u32>> = spec
        .groups()
        .into_iter()
        .map(|(_, t)| t.into_iter().map(|m| m as u32).collect())
        .collect();
    assert_eq!(graph.groups(), groups, "expert groups");
    let mut rng = Rng::new(seed);
    let mut batch = tiny_batch(&mut rng, 12, 0);
    if weighted {
        batch.weights = Some(
            (0..batch.rows)
                .map(|i| {
                    if i % 5 == 2 {
                        0.0
                    } else {
                        rng.uniform(0.2, 2.0)
                    }
                })
                .collect(),
        );
    }
    let positives = (0..batch.rows)
        .filter(|&b| batch.labels[b * 2 + 1] > 0.5)
        .count();
    assert!(
        positives > 0 && positives < batch.rows,
        "seed {seed}: the pair task needs both labels ({positives} positives)"
    );
    let prepared = graph.prepare(&batch).expect("prepare");

    let p = randomize_biases(&mut graph, &mut rng);

    // (a) Logits: f32 through the same ops; 1e-4 of the logit scale (+1e-5) covers the rounding.
    let gpu_logits = graph.train_logits(gpu, &prepared).expect("logits");
    let (cpu_logits, _) = forward(spec, &p, &batch);
    let scale = cpu_logits.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    for (i, (&g, &c)) in gpu_logits.iter().zip(&cpu_logits).enumerate() {
        assert!(
            (g as f64 - c).abs() <= 1e-4 * scale + 1e-5,
            "{what}: logit {i}: gpu {g} vs cpu {c}"
        );
    }

    // (b) Gradients of one step.
    graph
        .train_step(gpu, &prepared, rates(&graph))
        .expect("step");
    let grads = graph.params().read_grads(gpu).expect("grads");
    let mut after = Checkpoint::new();
    graph.save_state(gpu, &mut after).expect("state");
    let q = learned(&after);

    let mut fd: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for name in p.keys() {
        fd.insert(name.clone(), finite_differences(spec, &p, name, &batch));
    }
    let (worst, scale) = compare_step(&what, &graph, (&p, &q), &grads, &fd);
    eprintln!(
        "gradcheck {what}: worst |gpu − fd| / (|fd| + max|fd|) = {worst:.2e}, max|fd| = {scale:.3e}"
    );
    graph.tables().iter().map(|t| t.name.clone()).collect()
}

/// Random biases on the compiled model's state (loaded back); returns the learned tensors.
///
/// Biases start at 0, so a sample whose expert output is all 0 (every unit of a 3- or 4-wide
/// FM, FwFM or MLP expert dead) sits exactly on the next ReLU's kink, where the GPU (like
/// PyTorch) takes ReLU'(0) = 0 and central differences see 1/2. Random biases move every
/// pre-activation off the kink.
pub(crate) fn randomize_biases(graph: &mut Graph, rng: &mut Rng) -> Params {
    let gpu = gpu();
    let mut init = Checkpoint::new();
    graph.save_state(gpu, &mut init).expect("state");
    let biases: Vec<(String, Vec<usize>, usize)> = init
        .tensors()
        .iter()
        .filter(|(k, _)| k.ends_with("bias") || k.ends_with(".b"))
        .map(|(k, t)| (k.clone(), t.shape.clone(), t.data.len()))
        .collect();
    for (name, shape, n) in biases {
        let values = (0..n).map(|_| rng.uniform(-0.2, 0.2)).collect();
        init.insert_tensor(&name, &shape, values).expect("bias");
    }
    graph.load_state(gpu, &init, false).expect("load");
    let mut before = Checkpoint::new();
    graph.save_state(gpu, &mut before).expect("state");
    learned(&before)
}

/// One step's gradients against the finite differences `fd` of every learned tensor of `p`:
/// dense ones as `read_grads` gave them, tables as `p − q` (the state after an SGD step with
/// lr = 1). Returns the worst error relative to (|fd| + max|fd|) and max|fd|.
pub(crate) fn compare_step(
    what: &str,
    graph: &Graph,
    (p, q): (&Params, &Params),
    grads: &[(String, Vec<f32>)],
    fd: &BTreeMap<String, Vec<f64>>,
) -> (f64, f64) {
    let scale = fd.values().flatten().fold(0.0f64, |a, v| a.max(v.abs()));
    let mut worst = 0.0f64;
    let mut dense = 0;
    for (name, g) in grads {
        let got: Vec<f64> = g.iter().map(|&v| v as f64).collect();
        worst = worst.max(check(&format!("{what}: {name}"), &got, &fd[name], scale));
        dense += 1;
    }
    assert_eq!(
        dense,
        p.keys().filter(|k| !k.starts_with("emb.")).count(),
        "every dense tensor has a gradient"
    );
    let mut nonzero_rows = 0;
    for info in graph.tables() {
        let name = &info.name;
        // SGD with lr = 1: new − old = −gradient (plus the f32 rounding of new, ≤ 6e-8·|w|).
        let delta: Vec<f64> = q[name]
            .iter()
            .zip(&p[name])
            .map(|(a, b)| -(a - b))
            .collect();
        nonzero_rows += fd[name]
            .chunks(info.width as usize)
            .filter(|r| r.iter().any(|&v| v != 0.0))
            .count();
        worst = worst.max(check(&format!("{what}: {name}"), &delta, &fd[name], scale));
    }
    assert!(
        nonzero_rows > 40,
        "the batch touches rows of every table ({nonzero_rows})"
    );
    (worst, scale)
}

#[test]
fn whole_model_gradients_match_finite_differences_with_batch_norm() {
    run_case(&Spec::tiny(true, false), 21);
}

#[test]
fn whole_model_gradients_match_finite_differences_without_batch_norm() {
    run_case(&Spec::tiny(false, false), 24);
}

/// The TIM ablation: the history mean-pooled (no temporal table, no attention, no target).
#[test]
fn whole_model_gradients_match_finite_differences_with_a_mean_pooled_history() {
    let spec = Spec::tiny(true, false);
    let text = config_text(&spec).replace("buckets = 8\n", "pooling = \"mean\"\n");
    assert!(
        text.contains("pooling = \"mean\""),
        "the history is mean-pooled"
    );
    let tables = run_config(&spec, &text, 21);
    assert!(tables.contains(&"emb.1.item".to_string()), "{tables:?}");
    assert!(
        !tables.iter().any(|t| t.ends_with(".time")),
        "no temporal table: {tables:?}"
    );
}

#[test]
fn whole_model_gradients_match_finite_differences_with_sample_weights() {
    run_case(&Spec::tiny(true, true), 23);
}

/// Every other expert kind, two tables sharing one expert group (table-major parameters, slots
/// out of table order), concatenation, and the list loss; with and without BatchNorm.
fn every_expert(batch_norm: bool) -> Spec {
    Spec {
        experts: vec![
            CpuExpert::Fwfm,
            CpuExpert::Mlp { widths: vec![7, 3] },
            CpuExpert::Fwfm,
            CpuExpert::Dcn {
                layers: 1,
                rank: Some(2),
            },
            CpuExpert::Ipnn,
            CpuExpert::Fm,
        ],
        batch_norm,
        concat: true,
        gate: false,
        list: true,
        weighted: true,
    }
}

/// The learned gate over the tables: its gradient reaches h through the gated sum and through
/// the gate's logits (a stride-0 GEMM accumulating onto the gate's dh).
#[test]
fn whole_model_gradients_match_finite_differences_with_the_learned_gate() {
    let mut spec = Spec::tiny(true, false);
    spec.gate = true;
    run_case(&spec, 27);
    let mut spec = every_expert(false);
    spec.gate = true;
    run_case(&spec, 28);
}

#[test]
fn whole_model_gradients_match_finite_differences_for_every_expert_kind() {
    run_case(&every_expert(true), 25);
}

#[test]
fn whole_model_gradients_match_finite_differences_concat_without_batch_norm() {
    run_case(&every_expert(false), 26);
}

/// The rates of the graph's next step, as the trainer's policy gives them.
pub(crate) fn rates(graph: &wgrec::graph::Graph) -> wgrec::train::policy::StepRates {
    wgrec::train::policy::TrainPolicy::new(&graph.config().train).rates(graph.step() + 1)
}

/// The optimizers the trainer compiles `config` with.
pub(crate) fn optimizers(config: &wgrec::config::ModelConfig) -> wgrec::graph::Optimizers {
    wgrec::train::policy::TrainPolicy::new(&config.train).optimizers()
}
