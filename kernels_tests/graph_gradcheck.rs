//! The whole compiled model against an independent f64 CPU forward (issue 5, item 8): the logits of
//! `Graph::train_logits`, and every gradient of one `train_step` — dense ones read back with
//! `FlatParams::read_grads`, embedding ones through the update (sparse SGD with lr = 1, so a table's
//! change is −gradient) — against central finite differences of the CPU loss.
//!
//! The CPU model follows `src/graph/mod.rs`'s module docs for the [`graph::TINY`] feature set (user,
//! item, genre bag, MNS age, a TIM history over item + genre), M = 2 with a DCN expert on table 0
//! and a GwPFM expert on table 1, reading every weight from `save_state` by its checkpoint name.
//! Variants: BatchNorm on (batch statistics) and off (projection bias), and per-sample weights.
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
type Params = BTreeMap<String, Vec<f64>>;

const K: usize = 4; // dim
const G: usize = 2; // GwPFM groups
const W: usize = 6; // expert_width
const HIDDEN: usize = 5;
const DCN_LAYERS: usize = 2;
const ALPHA: f64 = 0.7;
const BN_EPS: f64 = 1e-5;
/// Fields in the graph's order: the sequence first, then the others in config order.
const FIELDS: [&str; 5] = ["history", "user", "item", "genre", "age"];
/// GwPFM group of each field (in field order): user → 0, the rest of the listed → 1, age
/// (unlisted) → 0.
const PARTITION: [usize; 5] = [1, 0, 1, 1, 0];

pub fn config_text(batch_norm: bool, weighted: bool) -> String {
    let mut t = format!(
        r#"
[model]
tables = 2
dim = {K}
experts = [{{ type = "dcn", layers = {DCN_LAYERS} }}, {{ type = "gwpfm", groups = [["user"], ["item", "genre", "history"]] }}]
expert_width = {W}
hidden = [{HIDDEN}]
dropout = 0.0
batch_norm = {batch_norm}

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
loss = "pair"
alpha = {ALPHA}

[train]
sparse_optimizer = "sgd"
sparse_lr = 1.0
dense_lr = 0.01
seed = 13
"#
    );
    if weighted {
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
fn fields(p: &Params, batch: &ModelBatch, m: usize, w: usize, b: usize) -> Vec<f64> {
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
        let sum = |i: u32, g: u32, t: u32| -> Vec<f64> {
            let mut v = row(p, &item, i, w).to_vec();
            add(&mut v, row(p, &genre, g, w));
            add(&mut v, row(p, &time, t, w));
            v
        };
        if len > 0 {
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

fn relu(v: f64) -> f64 {
    v.max(0.0)
}

/// DCNv2 over `x0` (`D = F·K`), table 0 of group 0, then ReLU.
fn dcn(p: &Params, x0: &[f64]) -> Vec<f64> {
    let d = x0.len();
    let (w, bias) = (&p["expert.0.w"], &p["expert.0.b"]);
    let mut x = x0.to_vec();
    for l in 0..DCN_LAYERS {
        let next: Vec<f64> = (0..d)
            .map(|o| {
                let z: f64 =
                    (0..d).map(|i| w[(l * d + o) * d + i] * x[i]).sum::<f64>() + bias[l * d + o];
                x0[o] * z + x[o]
            })
            .collect();
        x = next;
    }
    x.into_iter().map(relu).collect()
}

/// GwPFM over `v` (`[F, G, K]`), table 0 of group 1, then ReLU.
fn gwpfm(p: &Params, v: &[f64]) -> Vec<f64> {
    let r = &p["expert.1.r"];
    let f = FIELDS.len();
    let mut out = vec![0.0; K];
    for i in 0..f {
        for j in i + 1..f {
            let (pi, pj) = (PARTITION[i], PARTITION[j]);
            for c in 0..K {
                out[c] += r[pi * G + pj] * v[(i * G + pj) * K + c] * v[(j * G + pi) * K + c];
            }
        }
    }
    out.into_iter().map(relu).collect()
}

fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// Per-task loss (`src/kernels/loss.rs`): weighted BCE, and for the pair task α·BCE + (1−α)·pair
/// (BCE alone without a positive or a negative of positive weight).
fn task_loss(pair: bool, z: &[f64], y: &[f64], w: &[f64]) -> f64 {
    let n = z.len();
    let sw: f64 = w.iter().sum();
    let bce: f64 = (0..n)
        .map(|i| w[i] * (z[i].max(0.0) - z[i] * y[i] + (-z[i].abs()).exp().ln_1p()))
        .sum::<f64>()
        / sw;
    let pos: Vec<bool> = y.iter().map(|&v| v > 0.5).collect();
    let wp: f64 = (0..n).filter(|&i| pos[i]).map(|i| w[i]).sum();
    let wn: f64 = (0..n).filter(|&i| !pos[i]).map(|i| w[i]).sum();
    if !pair || wp == 0.0 || wn == 0.0 {
        return bce;
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
fn forward(p: &Params, batch: &ModelBatch, batch_norm: bool) -> (Vec<f64>, f64) {
    let n = batch.rows;
    // Per table m: expert output, projection pre-activation z [B, W].
    let mut z = vec![vec![vec![0.0; W]; n]; 2];
    for m in 0..2 {
        let width = if m == 0 { K } else { K * G };
        let (weight, bias) = (
            &p[&format!("proj.{m}.weight")],
            p.get(&format!("proj.{m}.bias")),
        );
        for b in 0..n {
            let x = fields(p, batch, m, width, b);
            let y = if m == 0 { dcn(p, &x) } else { gwpfm(p, &x) };
            for o in 0..W {
                z[m][b][o] = (0..y.len())
                    .map(|i| weight[o * y.len() + i] * y[i])
                    .sum::<f64>()
                    + bias.map_or(0.0, |bb| bb[o]);
            }
        }
    }
    // BatchNorm (batch statistics, biased variance) + ReLU, or ReLU of z + b; then the mean.
    let mut c = vec![vec![0.0; W]; n];
    for m in 0..2 {
        for o in 0..W {
            let (mut mean, mut var) = (0.0, 0.0);
            if batch_norm {
                mean = (0..n).map(|b| z[m][b][o]).sum::<f64>() / n as f64;
                var = (0..n).map(|b| (z[m][b][o] - mean).powi(2)).sum::<f64>() / n as f64;
            }
            for b in 0..n {
                let h = if batch_norm {
                    let (g, be) = (p["proj.bn.weight"][m * W + o], p["proj.bn.bias"][m * W + o]);
                    g * (z[m][b][o] - mean) / (var + BN_EPS).sqrt() + be
                } else {
                    z[m][b][o]
                };
                c[b][o] += relu(h) / 2.0;
            }
        }
    }
    let (w1, b1) = (&p["mlp.0.weight"], &p["mlp.0.bias"]);
    let (wh, bh) = (&p["head.weight"], &p["head.bias"]);
    let mut logits = vec![0.0; n * 2];
    for b in 0..n {
        let hidden: Vec<f64> = (0..HIDDEN)
            .map(|o| relu((0..W).map(|i| w1[o * W + i] * c[b][i]).sum::<f64>() + b1[o]))
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
        loss += task_loss(t == 1, &zt, &yt, &weights);
    }
    (logits, loss)
}

/// Learned tensors of a saved state (optimizer state, running statistics left out).
fn learned(ckpt: &Checkpoint) -> Params {
    ckpt.tensors()
        .iter()
        .filter(|(k, _)| {
            !k.ends_with(".state") && !k.starts_with("optim.") && !k.contains("running")
        })
        .map(|(k, t)| (k.clone(), t.data.iter().map(|&v| v as f64).collect()))
        .collect()
}

/// Central differences of the CPU loss in every coordinate of tensor `name`.
fn finite_differences(p: &Params, name: &str, batch: &ModelBatch, bn: bool) -> Vec<f64> {
    let h = 1e-6;
    let mut probe = p.clone();
    (0..p[name].len())
        .map(|i| {
            let x = p[name][i];
            probe.get_mut(name).expect("tensor")[i] = x + h;
            let up = forward(&probe, batch, bn).1;
            probe.get_mut(name).expect("tensor")[i] = x - h;
            let down = forward(&probe, batch, bn).1;
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

fn check(what: &str, got: &[f64], want: &[f64], scale: f64) -> f64 {
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

fn run_case(batch_norm: bool, weighted: bool, seed: u64) {
    let gpu = gpu();
    let config = ModelConfig::parse(&config_text(batch_norm, weighted), "gradcheck.toml")
        .expect("gradcheck config");
    let mut graph = Graph::new(gpu, &config, &tiny_shapes(0), 16, 0.0).expect("graph");
    assert_eq!(graph.fields().to_vec(), vec![4, 0, 1, 2, 3], "field order");
    assert_eq!(graph.groups(), vec![vec![0], vec![1]], "expert groups");
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

    let mut before = Checkpoint::new();
    graph.save_state(gpu, &mut before).expect("state");
    let p = learned(&before);

    // (a) Logits: f32 through the same ops; 1e-4 of the logit scale (+1e-5) covers the rounding.
    let gpu_logits = graph.train_logits(gpu, &prepared).expect("logits");
    let (cpu_logits, _) = forward(&p, &batch, batch_norm);
    let scale = cpu_logits.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    for (i, (&g, &c)) in gpu_logits.iter().zip(&cpu_logits).enumerate() {
        assert!(
            (g as f64 - c).abs() <= 1e-4 * scale + 1e-5,
            "bn {batch_norm} w {weighted}: logit {i}: gpu {g} vs cpu {c}"
        );
    }

    // (b) Gradients of one step.
    graph.train_step(gpu, &prepared).expect("step");
    let grads = graph.params().read_grads(gpu).expect("grads");
    let mut after = Checkpoint::new();
    graph.save_state(gpu, &mut after).expect("state");
    let q = learned(&after);

    let mut fd: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for name in p.keys() {
        fd.insert(
            name.clone(),
            finite_differences(&p, name, &batch, batch_norm),
        );
    }
    let scale = fd.values().flatten().fold(0.0f64, |a, v| a.max(v.abs()));
    let mut worst = 0.0f64;
    let mut dense = 0;
    for (name, g) in &grads {
        let got: Vec<f64> = g.iter().map(|&v| v as f64).collect();
        worst = worst.max(check(
            &format!("bn {batch_norm} w {weighted}: {name}"),
            &got,
            &fd[name],
            scale,
        ));
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
        worst = worst.max(check(
            &format!("bn {batch_norm} w {weighted}: {name}"),
            &delta,
            &fd[name],
            scale,
        ));
    }
    assert!(
        nonzero_rows > 40,
        "the batch touches rows of every table ({nonzero_rows})"
    );
    eprintln!(
        "gradcheck bn {batch_norm} weighted {weighted}: worst |gpu − fd| / (|fd| + max|fd|) = {worst:.2e}, max|fd| = {scale:.3e}"
    );
}

#[test]
fn whole_model_gradients_match_finite_differences_with_batch_norm() {
    run_case(true, false, 21);
}

#[test]
fn whole_model_gradients_match_finite_differences_without_batch_norm() {
    run_case(false, false, 24);
}

#[test]
fn whole_model_gradients_match_finite_differences_with_sample_weights() {
    run_case(true, true, 23);
}
