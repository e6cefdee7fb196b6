//! The whole compiled multi-task model (issue 14, METHODS.md §3) against an independent f64 CPU
//! forward and central finite differences: `Graph::train_logits` and every gradient of one
//! `train_step` — dense ones read back with `FlatParams::read_grads`, embedding ones through the
//! update (sparse SGD with lr = 1, so a table's change is −gradient) — for `mmoe`, `stem` (with
//! and without an auxiliary task), `ple`, `shared` and `ame` (tables of two widths).
//!
//! The CPU model reuses `graph_gradcheck`'s per-table pieces (fields, experts, the loss) over the
//! TINY feature set and adds what a multi-task model has (`src/model/tasks.rs`,
//! `src/graph/mixer.rs`): `S` embedding sets of `M` tables (set `s` = tables `s·M..(s+1)·M`; set 0
//! shared, set `1 + t` task `t`'s for `stem` and `ple`); every table's expert → projection →
//! BN/ReLU gives `h_e` `[B, W]` in slot order (expert groups in order of first appearance);
//! tower `u` (one per task, head `u` scores task `u`):
//! - gated: `a_u = concat_e(h_e) · gate.weight[u]ᵀ + gate.bias[u]` (the concatenation of *every*
//!   expert, slot-major), `g_u = softmax` over the experts of the sets tower `u` reads (others
//!   get 0), `c_u = Σ_e g_{u,e} h_e`;
//! - `shared`: `c_u` = the mean of the experts it reads;
//! - `ReLU(tower.0[u] c_u)`, then `z_u = tower.head[u] · …`; loss = Σ_t loss_t, each task's loss
//!   over its labelled rows (a label −1 is missing).
//!
//! # The reference gradient under stop-gradient
//! With a stop-gradient route (STEM: tower `u` reads task `t ≠ u`'s set) the graph's gradient is
//! *not* the gradient of the full loss: tower `u`'s loss reaches the experts of a set only where
//! its route to that set trains (through the mixture and the gate's input alike), while the gate
//! weights on the blocked experts still learn. The reference is therefore the gradient of
//! `L_ref(θ) = Σ_u loss_u(h_u(θ))`, where `h_u` is `h(θ)` on the experts of the sets `u`'s route
//! trains and `h(θ₀)` (frozen at the point of differentiation) on every other expert — those it
//! reads under stop-gradient and, for the gate input, those it does not read at all. For an
//! expert-side parameter of set `s` this is the finite difference of only the losses of the towers
//! whose route to `s` trains; for a gate or tower parameter it is the plain finite difference. A
//! check on a task table of STEM and of PLE shows the full loss's finite difference differs (the
//! test would see a missing stop-gradient).

use std::collections::BTreeMap;

use wgrec::checkpoint::Checkpoint;
use wgrec::config::ModelConfig;
use wgrec::data::encode::ModelBatch;
use wgrec::graph::Graph;
use wgrec::rng::Rng;

use crate::common::gpu;
use crate::graph::{tiny_batch, tiny_shapes};
use crate::graph_gradcheck::{
    compare_step, config_text, expert, fields, learned, optimizers, randomize_biases, rates, relu,
    task_loss, CpuExpert, Params, Spec, BN_EPS, G, HIDDEN, K, W,
};

/// Tasks of the TINY config: `click` (BCE) and `love` (combined-pair).
const TASKS: usize = 2;

/// Every expert's output `[slot][b][o]`.
type Experts = Vec<Vec<Vec<f64>>>;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Arch {
    Shared,
    Mmoe,
    Ple,
    Stem,
    Ame,
}

/// A multi-task model variant.
#[derive(Debug, Clone)]
pub struct MtSpec {
    pub arch: Arch,
    /// The expert of each table of a set.
    pub experts: Vec<CpuExpert>,
    /// The width of each table of a set (`model.dims`; empty: `K`).
    pub dims: Vec<usize>,
    pub batch_norm: bool,
    /// Task 1 is auxiliary (STEM-AL).
    pub auxiliary: bool,
    pub weighted: bool,
}

impl MtSpec {
    pub fn new(arch: Arch, experts: Vec<CpuExpert>) -> MtSpec {
        MtSpec {
            arch,
            experts,
            dims: vec![],
            batch_norm: true,
            auxiliary: false,
            weighted: false,
        }
    }

    fn m(&self) -> usize {
        self.experts.len()
    }

    fn sets(&self) -> usize {
        1 + TASKS * matches!(self.arch, Arch::Ple | Arch::Stem) as usize
    }

    fn gated(&self) -> bool {
        self.arch != Arch::Shared
    }

    fn dim_of(&self, m: usize) -> usize {
        self.dims.get(m % self.m()).copied().unwrap_or(K)
    }

    /// Floats per field of table `m`.
    fn width_of(&self, m: usize) -> usize {
        match self.experts[m % self.m()] {
            CpuExpert::Gwpfm => self.dim_of(m) * G,
            _ => self.dim_of(m),
        }
    }

    /// Expert groups (equal expert and width, order of first appearance): the slot order.
    pub fn groups(&self) -> Vec<(CpuExpert, usize, Vec<usize>)> {
        let mut groups: Vec<(CpuExpert, usize, Vec<usize>)> = Vec::new();
        for m in 0..self.sets() * self.m() {
            let (e, d) = (&self.experts[m % self.m()], self.dim_of(m));
            match groups.iter_mut().find(|(k, w, _)| k == e && *w == d) {
                Some((_, _, t)) => t.push(m),
                None => groups.push((e.clone(), d, vec![m])),
            }
        }
        groups
    }

    /// The table of each slot.
    pub fn slot_tables(&self) -> Vec<usize> {
        self.groups().into_iter().flat_map(|(_, _, t)| t).collect()
    }

    /// Tower `u`'s route to set `s` (`docs` of `src/model/tasks.rs`): `None` (not read),
    /// `Some(true)` (train) or `Some(false)` (stop-gradient).
    pub fn route(&self, u: usize, s: usize) -> Option<bool> {
        match self.arch {
            Arch::Shared | Arch::Mmoe | Arch::Ame => Some(true),
            Arch::Ple => (s == 0 || s == 1 + u).then_some(true),
            Arch::Stem if self.auxiliary && u == 1 => (s == 1 + u).then_some(true),
            Arch::Stem => Some(s == 0 || s == 1 + u),
        }
    }

    pub fn config(&self) -> String {
        let single = Spec {
            experts: self.experts.clone(),
            batch_norm: self.batch_norm,
            concat: false,
            gate: false,
            list: false,
            weighted: self.weighted,
        };
        let arch = format!("{:?}", self.arch).to_lowercase();
        let mut head = format!("[model]\narchitecture = \"{arch}\"\n");
        if !self.dims.is_empty() {
            head.push_str(&format!("dims = {:?}\n", self.dims));
        }
        let mut text = config_text(&single).replacen("[model]\n", &head, 1);
        if self.auxiliary {
            text = text.replacen(
                "name = \"love\"\n",
                "name = \"love\"\nauxiliary = true\n",
                1,
            );
        }
        text
    }
}

/// Every expert's `h` (slot order): fields → expert → projection → BatchNorm (batch statistics)
/// or bias → ReLU.
fn experts_out(spec: &MtSpec, p: &Params, batch: &ModelBatch) -> Experts {
    let n = batch.rows;
    let mut z = Vec::new();
    for (g, (kind, _, tables)) in spec.groups().iter().enumerate() {
        let weight = &p[&format!("proj.{g}.weight")];
        let bias = p.get(&format!("proj.{g}.bias"));
        for (local, &m) in tables.iter().enumerate() {
            let zs: Vec<Vec<f64>> = (0..n)
                .map(|b| {
                    let x = fields(p, batch, m, spec.width_of(m), b);
                    let y = expert(p, g, local, kind, &x);
                    let out = y.len();
                    let wl = &weight[local * W * out..];
                    (0..W)
                        .map(|o| {
                            (0..out).map(|i| wl[o * out + i] * y[i]).sum::<f64>()
                                + bias.map_or(0.0, |bb| bb[local * W + o])
                        })
                        .collect()
                })
                .collect();
            z.push(zs);
        }
    }
    for (slot, zs) in z.iter_mut().enumerate() {
        for o in 0..W {
            if !spec.batch_norm {
                continue;
            }
            let mean = (0..n).map(|b| zs[b][o]).sum::<f64>() / n as f64;
            let var = (0..n).map(|b| (zs[b][o] - mean).powi(2)).sum::<f64>() / n as f64;
            let i = slot * W + o;
            let (g, be) = (p["proj.bn.weight"][i], p["proj.bn.bias"][i]);
            for row in zs.iter_mut() {
                row[o] = g * (row[o] - mean) / (var + BN_EPS).sqrt() + be;
            }
        }
        zs.iter_mut().flatten().for_each(|v| *v = relu(*v));
    }
    z
}

/// Tower `u`'s input `c_u` for sample `b` over its view `h` of the experts (`present`: the
/// experts of the sets it reads).
fn mixture(
    spec: &MtSpec,
    p: &Params,
    (u, b): (usize, usize),
    h: &[&Vec<Vec<f64>>],
    present: &[bool],
) -> Vec<f64> {
    let e_all = h.len();
    let g: Vec<f64> = if spec.gated() {
        let (wg, bg) = (&p["gate.weight"], &p["gate.bias"]);
        let a: Vec<f64> = (0..e_all)
            .map(|k| {
                let row = &wg[(u * e_all + k) * e_all * W..];
                (0..e_all * W)
                    .map(|i| row[i] * h[i / W][b][i % W])
                    .sum::<f64>()
                    + bg[u * e_all + k]
            })
            .collect();
        let max = (0..e_all)
            .filter(|&k| present[k])
            .map(|k| a[k])
            .fold(f64::NEG_INFINITY, f64::max);
        let ex: Vec<f64> = (0..e_all)
            .map(|k| if present[k] { (a[k] - max).exp() } else { 0.0 })
            .collect();
        let sum: f64 = ex.iter().sum();
        ex.iter().map(|v| v / sum).collect()
    } else {
        let count = present.iter().filter(|&&x| x).count() as f64;
        present.iter().map(|&x| x as u8 as f64 / count).collect()
    };
    (0..W)
        .map(|o| (0..e_all).map(|k| g[k] * h[k][b][o]).sum())
        .collect()
}

/// Logits `[B, T]` and `Σ_t loss_t`; with `frozen`, each tower sees `frozen` on the experts its
/// route does not train (the module docs' `L_ref`).
fn forward(
    spec: &MtSpec,
    p: &Params,
    batch: &ModelBatch,
    frozen: Option<&Experts>,
) -> (Vec<f64>, f64) {
    let n = batch.rows;
    let h = experts_out(spec, p, batch);
    let slots = spec.slot_tables();
    let (w1, b1) = (&p["tower.0.weight"], &p["tower.0.bias"]);
    let (wh, bh) = (&p["tower.head.weight"], &p["tower.head.bias"]);
    let mut logits = vec![0.0; n * TASKS];
    for u in 0..TASKS {
        let view: Vec<&Vec<Vec<f64>>> = (slots.iter().enumerate())
            .map(|(e, &t)| match frozen {
                Some(f) if spec.route(u, t / spec.m()) != Some(true) => &f[e],
                _ => &h[e],
            })
            .collect();
        let present: Vec<bool> = (slots.iter())
            .map(|&t| spec.route(u, t / spec.m()).is_some())
            .collect();
        for b in 0..n {
            let c = mixture(spec, p, (u, b), &view, &present);
            let hidden: Vec<f64> = (0..HIDDEN)
                .map(|o| {
                    let row = &w1[(u * HIDDEN + o) * W..];
                    relu((0..W).map(|i| row[i] * c[i]).sum::<f64>() + b1[u * HIDDEN + o])
                })
                .collect();
            logits[b * TASKS + u] = (0..HIDDEN)
                .map(|i| wh[u * HIDDEN + i] * hidden[i])
                .sum::<f64>()
                + bh[u];
        }
    }
    let weights: Vec<f64> = match &batch.weights {
        Some(w) => w.iter().map(|&v| v as f64).collect(),
        None => vec![1.0; n],
    };
    let mut loss = 0.0;
    for t in 0..TASKS {
        let rows: Vec<usize> = (0..n)
            .filter(|&b| batch.labels[b * TASKS + t] >= 0.0)
            .collect();
        if rows.is_empty() {
            continue;
        }
        let zt: Vec<f64> = rows.iter().map(|&b| logits[b * TASKS + t]).collect();
        let yt: Vec<f64> = (rows.iter())
            .map(|&b| batch.labels[b * TASKS + t] as f64)
            .collect();
        let wt: Vec<f64> = rows.iter().map(|&b| weights[b]).collect();
        loss += task_loss((t == 1).then_some(false), &zt, &yt, &wt);
    }
    (logits, loss)
}

/// Central differences of `L_ref` (frozen at `p`'s experts) in every coordinate of `name`;
/// `frozen: false` differentiates the full loss instead.
fn finite_differences(
    spec: &MtSpec,
    p: &Params,
    name: &str,
    batch: &ModelBatch,
    frozen: bool,
) -> Vec<f64> {
    let h0 = experts_out(spec, p, batch);
    let frozen = frozen.then_some(&h0);
    let h = 1e-6;
    let mut probe = p.clone();
    (0..p[name].len())
        .map(|i| {
            let x = p[name][i];
            probe.get_mut(name).expect("tensor")[i] = x + h;
            let up = forward(spec, &probe, batch, frozen).1;
            probe.get_mut(name).expect("tensor")[i] = x - h;
            let down = forward(spec, &probe, batch, frozen).1;
            probe.get_mut(name).expect("tensor")[i] = x;
            (up - down) / (2.0 * h)
        })
        .collect()
}

/// A batch of 13 rows (not a multiple of any workgroup); with `missing`, task 0's label is
/// missing (−1) on rows `b % 5 == 3` and task 1's on rows `b % 4 == 1`.
fn batch(spec: &MtSpec, rng: &mut Rng, missing: bool) -> ModelBatch {
    let mut batch = tiny_batch(rng, 13, 0);
    if spec.weighted {
        // Every fifth row weighs 0 (it must drop out of every sum).
        let w = (0..batch.rows).map(|i| (i % 5 != 2) as u8 as f32 * rng.uniform(0.2, 2.0));
        batch.weights = Some(w.collect());
    }
    if missing {
        for b in 0..batch.rows {
            if b % 5 == 3 {
                batch.labels[b * TASKS] = -1.0;
            }
            if b % 4 == 1 {
                batch.labels[b * TASKS + 1] = -1.0;
            }
        }
    }
    let task1 = |v: f32| (0..batch.rows).any(|b| batch.labels[b * TASKS + 1] == v);
    assert!(task1(1.0) && task1(0.0), "the pair task needs both labels");
    batch
}

fn run_case(spec: &MtSpec, seed: u64, missing: bool) {
    let gpu = gpu();
    let what = format!("{spec:?} missing={missing}");
    let config = ModelConfig::parse(&spec.config(), "gradcheck_multitask.toml").expect("config");
    let mut graph =
        Graph::new(gpu, &config, &tiny_shapes(0), 16, 0.0, optimizers(&config)).expect("graph");
    assert_eq!(graph.fields().to_vec(), vec![4, 0, 1, 2, 3], "field order");
    let groups: Vec<Vec<u32>> = (spec.groups().into_iter())
        .map(|(_, _, t)| t.into_iter().map(|m| m as u32).collect())
        .collect();
    assert_eq!(graph.groups(), groups, "{what}: expert groups");
    let mut rng = Rng::new(seed);
    let p = randomize_biases(&mut graph, &mut rng);
    let batch = batch(spec, &mut rng, missing);
    let prepared = graph.prepare(&batch).expect("prepare");

    // (a) Logits: f32 through the same ops; 1e-4 of the logit scale (+1e-5) covers the rounding.
    let gpu_logits = graph.train_logits(gpu, &prepared).expect("logits");
    let (cpu_logits, _) = forward(spec, &p, &batch, None);
    assert_eq!(gpu_logits.len(), cpu_logits.len(), "{what}: [B, T] logits");
    let scale = cpu_logits.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    for (i, (&g, &c)) in gpu_logits.iter().zip(&cpu_logits).enumerate() {
        assert!(
            (g as f64 - c).abs() <= 1e-4 * scale + 1e-5,
            "{what}: logit {i} (row {}, task {}): gpu {g} vs cpu {c}",
            i / TASKS,
            i % TASKS
        );
    }

    // (b) Gradients of one step against central differences of L_ref. The tolerance is
    // `graph_gradcheck`'s (`check`): the mixture adds a softmax and a weighted sum, a few ulps
    // like the combine gate there, far below the 50× margin it leaves.
    graph
        .train_step(gpu, &prepared, rates(&graph))
        .expect("step");
    let grads = graph.params().read_grads(gpu).expect("grads");
    let mut after = Checkpoint::new();
    graph.save_state(gpu, &mut after).expect("state");
    let q = learned(&after);
    let fd: BTreeMap<String, Vec<f64>> = (p.keys())
        .map(|name| {
            (
                name.clone(),
                finite_differences(spec, &p, name, &batch, true),
            )
        })
        .collect();
    let (worst, scale) = compare_step(&what, &graph, (&p, &q), &grads, &fd);
    if matches!(spec.arch, Arch::Stem | Arch::Ple) {
        stop_gradient_matters(spec, &p, &batch, &fd, scale);
    }
    eprintln!(
        "gradcheck {what}: worst |gpu − fd| / (|fd| + max|fd|) = {worst:.2e}, max|fd| = {scale:.3e}"
    );
}

/// On task 1's user table (set 2, which tower 0 reads under stop-gradient in STEM, and only
/// through its gate's input in PLE) the full loss's finite difference is far from `L_ref`'s: a
/// graph that let tower 0's loss through would fail.
fn stop_gradient_matters(
    spec: &MtSpec,
    p: &Params,
    batch: &ModelBatch,
    fd: &BTreeMap<String, Vec<f64>>,
    scale: f64,
) {
    let name = format!("emb.{}.user", 2 * spec.m());
    let full = finite_differences(spec, p, &name, batch, false);
    let gap = (full.iter().zip(&fd[&name]))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f64, f64::max);
    assert!(
        gap > 1e-3 * scale,
        "{name}: the full loss's gradient differs from L_ref's by only {gap:e}"
    );
}

fn dcn(layers: usize) -> CpuExpert {
    CpuExpert::Dcn { layers, rank: None }
}

#[test]
fn mmoe_gradients_match_finite_differences() {
    // Tables 0 and 2 share the FwFM group: slots 0, 1, 2 hold tables 0, 2, 1.
    let spec = MtSpec::new(
        Arch::Mmoe,
        vec![CpuExpert::Fwfm, CpuExpert::Gwpfm, CpuExpert::Fwfm],
    );
    run_case(&spec, 31, false);
}

#[test]
fn stem_gradients_match_finite_differences_of_the_stop_gradient_loss() {
    // Three sets of two tables; groups DCN {0, 2, 4} and GwPFM {1, 3, 5}.
    let spec = MtSpec::new(Arch::Stem, vec![dcn(1), CpuExpert::Gwpfm]);
    run_case(&spec, 32, false);
}

#[test]
fn stem_with_an_auxiliary_task_gradients_match_finite_differences() {
    // STEM-AL: tower 1 reads only its own set; tower 0 reads set 2 under stop-gradient.
    let mut spec = MtSpec::new(Arch::Stem, vec![CpuExpert::Mlp { widths: vec![5] }, dcn(1)]);
    spec.auxiliary = true;
    spec.batch_norm = false;
    spec.weighted = true;
    run_case(&spec, 33, false);
}

#[test]
fn ame_gradients_match_finite_differences_with_tables_of_two_widths() {
    // dims [8, 4, 8]: groups (DCN, 8) {0, 2} and (DCN, 4) {1}.
    let mut spec = MtSpec::new(Arch::Ame, vec![dcn(1), dcn(1), dcn(1)]);
    spec.dims = vec![8, 4, 8];
    run_case(&spec, 34, false);
}

#[test]
fn ple_gradients_match_finite_differences() {
    // Tower u mixes only the shared and its own set, yet its gate reads every expert.
    let spec = MtSpec::new(Arch::Ple, vec![dcn(1), CpuExpert::Gwpfm]);
    run_case(&spec, 35, false);
}

#[test]
fn shared_bottom_gradients_match_finite_differences() {
    let mut spec = MtSpec::new(
        Arch::Shared,
        vec![CpuExpert::Mlp { widths: vec![3] }, CpuExpert::Ipnn],
    );
    spec.batch_norm = false;
    run_case(&spec, 36, false);
}

#[test]
fn stem_gradients_match_finite_differences_with_missing_labels() {
    let spec = MtSpec::new(Arch::Stem, vec![dcn(1), CpuExpert::Gwpfm]);
    run_case(&spec, 37, true);
}
