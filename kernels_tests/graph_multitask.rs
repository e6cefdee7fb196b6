//! Multi-task models compiled whole (issue 14, METHODS.md §3): the routes decide which parameters
//! a task's loss moves (STEM's "All Forward, Task-specific Backward"; PLE's private sets), two
//! graphs from one seed agree to the bit, a STEM model saved mid-run resumes bit for bit (a graph
//! from a checkpoint file, and the trainer's stop and resume), and a STEM step's dispatch count
//! does not grow with the features.
//!
//! The routing tests train one step on a batch where one task has no label on any row (−1), with
//! sparse Adagrad and dense SGD and no weight decay, so a parameter whose gradient is exactly 0
//! keeps its bits. BatchNorm's running statistics are not parameters: the forward updates them
//! for every expert, whichever task is labelled, so they are left out of the comparison.
//!
//! Tensor slices (`src/model/dense.rs`): an expert group's tensors and `proj.{g}.*` are
//! table-major over the group's tables; `proj.bn.*` `[E, W]` and the gate's logits are per slot;
//! `gate.*` and `tower.*` are `[U, …]`, tower `u`'s slice first-axis `u`.

use std::collections::BTreeMap;

use wgrec::checkpoint::Checkpoint;
use wgrec::config::ModelConfig;
use wgrec::data::encode::ModelBatch;
use wgrec::graph::Graph;
use wgrec::rng::Rng;
use wgrec::Gpu;

use crate::common::gpu;
use crate::graph::{tiny_batch, tiny_shapes, TINY};
use crate::graph_gradcheck::{optimizers, rates};

/// Tensors by name: shape and values.
type State = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

/// [`TINY`] (M = 2, DCN + GwPFM, BatchNorm, tasks `click` and `love`) as `arch`, with `extra`
/// more categorical features and `train` prepended to its `[train]` section.
/// `stem-al` is `stem` with task 1 (`love`) auxiliary.
fn config(arch: &str, extra: usize, train: &str) -> ModelConfig {
    let (arch, love) = match arch {
        "stem-al" => ("stem", "name = \"love\"\nauxiliary = true\n"),
        arch => (arch, "name = \"love\"\n"),
    };
    let mut text = TINY
        .replacen("name = \"love\"\n", love, 1)
        .replacen(
            "[model]\n",
            &format!("[model]\narchitecture = \"{arch}\"\n"),
            1,
        )
        .replacen("[train]\n", &format!("[train]\n{train}"), 1);
    for i in 0..extra {
        text.push_str(&format!(
            "\n[[feature]]\nname = \"c{i}\"\nkind = \"categorical\"\n"
        ));
    }
    ModelConfig::parse(&text, "multitask.toml").expect("multitask config")
}

/// Sparse Adagrad, dense SGD, no weight decay: a zero gradient leaves a parameter's bits.
const PLAIN: &str = "sparse_optimizer = \"adagrad\"\nsparse_weight_decay = 0.0\n\
                     dense_optimizer = \"sgd\"\n";

fn graph(gpu: &Gpu, config: &ModelConfig, max_batch: u32) -> Graph {
    Graph::new(
        gpu,
        config,
        &tiny_shapes(0),
        max_batch,
        0.0,
        optimizers(config),
    )
    .expect("graph")
}

fn state(gpu: &Gpu, graph: &Graph) -> State {
    let mut ckpt = Checkpoint::new();
    graph.save_state(gpu, &mut ckpt).expect("state");
    (ckpt.tensors().iter())
        .map(|(k, t)| (k.clone(), (t.shape.clone(), t.data.clone())))
        .collect()
}

/// The tensors whose bits differ between `a` and `b` (or that only one holds).
fn differing(a: &State, b: &State) -> Vec<String> {
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let mut names: Vec<String> = (a.iter())
        .filter(|(k, (_, v))| b.get(*k).is_none_or(|(_, w)| bits(v) != bits(w)))
        .map(|(k, _)| k.clone())
        .collect();
    names.extend(b.keys().filter(|k| !a.contains_key(*k)).cloned());
    names
}

/// What one step on a batch labelled for one task only did.
struct Step {
    graph: Graph,
    before: State,
    after: State,
    grads: BTreeMap<String, Vec<f32>>,
    loss: Vec<f32>,
}

/// One step of `arch` on 64 rows where task `silent` (if any) has no label.
fn one_step(arch: &str, silent: Option<usize>) -> Step {
    let gpu = gpu();
    let config = config(arch, 0, PLAIN);
    let mut graph = graph(gpu, &config, 64);
    let mut batch = tiny_batch(&mut Rng::new(41), 64, 0);
    if let Some(t) = silent {
        (0..batch.rows).for_each(|b| batch.labels[b * 2 + t] = -1.0);
    }
    let prepared = graph.prepare(&batch).expect("prepare");
    let before = state(gpu, &graph);
    graph
        .train_step(gpu, &prepared, rates(&graph))
        .expect("step");
    let grads = graph.params().read_grads(gpu).expect("grads");
    let loss = graph.last_loss(gpu).expect("loss");
    let after = state(gpu, &graph);
    Step {
        graph,
        before,
        after,
        grads: grads.into_iter().collect(),
        loss,
    }
}

/// A piece of a tensor and whose it is.
struct Slice {
    name: String,
    range: std::ops::Range<usize>,
    /// The embedding set (expert side) or the tower (gate and tower side) it belongs to.
    owner: Owner,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Owner {
    Set(usize),
    Tower(usize),
}

/// Every parameter tensor cut into the pieces a set or a tower owns.
fn slices(graph: &Graph, state: &State) -> Vec<Slice> {
    let plan = graph.plan();
    let mut out = Vec::new();
    for t in graph.tables() {
        out.push(Slice {
            name: t.name.clone(),
            range: 0..state[&t.name].1.len(),
            owner: Owner::Set(plan.set_of(t.table)),
        });
    }
    // Group `g`'s tensors (`expert.{g}.*`, `proj.{g}.*`) are table-major over its tables.
    let by_group = |rest: &str, len: usize| -> Vec<(usize, Owner)> {
        let g: usize = (rest.split('.').next().and_then(|x| x.parse().ok())).expect("group");
        let tables = &plan.groups[g].tables;
        (tables.iter())
            .map(|&m| (len / tables.len(), Owner::Set(plan.set_of(m))))
            .collect()
    };
    for (name, (shape, values)) in state {
        let parts: Vec<(usize, Owner)> = match name.split_once('.') {
            Some(("expert", rest)) => by_group(rest, values.len()),
            Some(("proj", rest)) if rest.starts_with("bn.running") => continue, // not learned
            Some(("proj", rest)) if rest.starts_with("bn.") => {
                let mut by_slot = vec![(0, Owner::Set(0)); shape[0]];
                for m in 0..plan.n_tables() {
                    by_slot[plan.slot_of(m) as usize] = (shape[1], Owner::Set(plan.set_of(m)));
                }
                by_slot
            }
            Some(("proj", rest)) => by_group(rest, values.len()),
            Some(("gate" | "tower", _)) => {
                let len = values.len() / shape[0];
                (0..shape[0]).map(|u| (len, Owner::Tower(u))).collect()
            }
            _ => continue, // embedding tables (above), optimizer state
        };
        let mut start = 0;
        for (len, owner) in parts {
            out.push(Slice {
                name: name.clone(),
                range: start..start + len,
                owner,
            });
            start += len;
        }
        assert_eq!(start, values.len(), "{name}: slices cover the tensor");
    }
    out
}

/// Every slice `still` owns kept its bits and got no gradient; each owner in `moving` changed in
/// more than 3 slices (not in every one: ReLU may zero the gradient of a slot's BatchNorm β).
fn assert_routes(step: &Step, what: &str, still: &[Owner], moving: &[Owner]) {
    let mut moved = vec![0; moving.len()];
    for s in slices(&step.graph, &step.before) {
        let r = s.range.clone();
        let (a, b) = (
            &step.before[&s.name].1[r.clone()],
            &step.after[&s.name].1[r.clone()],
        );
        let same = a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
        if still.contains(&s.owner) {
            assert!(same, "{what}: {} {r:?} ({:?}) moved", s.name, s.owner);
            let grad = step.grads.get(&s.name).map_or(&[][..], |g| &g[r.clone()]);
            assert!(
                grad.iter().all(|&v| v == 0.0),
                "{what}: {} {r:?} has a gradient",
                s.name
            );
        }
        if let Some(i) = moving.iter().position(|o| *o == s.owner) {
            moved[i] += !same as usize;
        }
    }
    for (owner, n) in moving.iter().zip(moved) {
        assert!(n > 3, "{what}: {owner:?} moved in only {n} slices");
    }
    assert!(
        step.loss.iter().all(|l| l.is_finite()),
        "{what}: {:?}",
        step.loss
    );
}

/// Task `silent`'s set and tower kept every bit; the labelled task's and the shared set moved;
/// the silent task's loss is 0.
fn assert_silent_task_untouched(step: &Step, silent: usize, arch: &str) {
    let labelled = 1 - silent;
    let what = format!("{arch}, task {silent} unlabelled");
    let still = [Owner::Set(1 + silent), Owner::Tower(silent)];
    let moving = [
        Owner::Set(0),
        Owner::Set(1 + labelled),
        Owner::Tower(labelled),
    ];
    assert_routes(step, &what, &still, &moving);
    assert_eq!(
        step.loss[silent], 0.0,
        "{what}: an unlabelled task has loss 0"
    );
    assert!(step.loss[labelled] > 0.0, "{what}: {:?}", step.loss);
}

/// Tower `labelled`'s gate weights on the experts of set `s` (its input columns, every logit
/// row) got gradient.
fn assert_gate_learns_on(step: &Step, labelled: usize, s: usize) {
    let n = step.graph.plan().n_tables() as usize;
    for e in slots_of(&step.graph, s) {
        let nonzero = (0..n)
            .flat_map(|k| gate_grad(step, labelled, k, e))
            .filter(|&&v| v != 0.0)
            .count();
        assert!(
            nonzero > 0,
            "tower {labelled}'s gate weights on slot {e} got no gradient"
        );
    }
}

/// The gate gradient of tower `u` at (logit of slot `k`, input of slot `e`).
fn gate_grad(step: &Step, u: usize, k: usize, e: usize) -> &[f32] {
    let plan = step.graph.plan();
    let (n, w) = (
        plan.n_tables() as usize,
        plan.config.model.expert_width as usize,
    );
    let start = ((u * n + k) * n + e) * w;
    &step.grads["gate.weight"][start..start + w]
}

/// The slots of set `s`.
fn slots_of(graph: &Graph, s: usize) -> Vec<usize> {
    let plan = graph.plan();
    (plan.sets[s].tables.iter())
        .map(|&m| plan.slot_of(m) as usize)
        .collect()
}

#[test]
fn stem_one_task_labelled_moves_only_its_own_and_the_shared_parameters() {
    for silent in [1, 0] {
        let labelled = 1 - silent;
        let step = one_step("stem", Some(silent));
        assert_silent_task_untouched(&step, silent, "stem");
        // All Forward, Task-specific Backward: the labelled tower's gate weights on the silent
        // task's experts learn, though no gradient reaches those experts.
        assert_gate_learns_on(&step, labelled, 1 + silent);
    }
}

/// STEM-AL: the auxiliary task (1) reads only its own set, the main task reads it under
/// stop-gradient; a step on the auxiliary task's labels alone leaves the shared set alone.
#[test]
fn stem_auxiliary_task_moves_only_its_own_set_and_tower() {
    let step = one_step("stem-al", Some(1));
    assert_silent_task_untouched(&step, 1, "stem-al");
    assert_gate_learns_on(&step, 0, 2);
    let step = one_step("stem-al", Some(0));
    let still = [Owner::Set(0), Owner::Set(1), Owner::Tower(0)];
    assert_routes(
        &step,
        "stem-al, main task unlabelled",
        &still,
        &[Owner::Set(2), Owner::Tower(1)],
    );
    assert_eq!(step.loss[0], 0.0);
}

#[test]
fn ple_one_task_labelled_moves_only_its_own_and_the_shared_parameters() {
    for silent in [1, 0] {
        let step = one_step("ple", Some(silent));
        assert_silent_task_untouched(&step, silent, "ple");
    }
}

/// PLE's tower `u` does not mix the other task's experts: their gate logits (rows of
/// `gate.weight[u]`, entries of `gate.bias[u]`) get exactly zero gradient. The gate's input is
/// still every expert's output (`src/graph/mixer.rs`), so the weights *from* them into the logits
/// of the experts it mixes do learn.
#[test]
fn ple_gate_logits_of_the_other_tasks_experts_get_no_gradient() {
    let step = one_step("ple", None);
    let n = step.graph.plan().n_tables() as usize;
    for u in 0..2 {
        let other = slots_of(&step.graph, 2 - u);
        let own = slots_of(&step.graph, 1 + u);
        for &k in &other {
            let row = (0..n).flat_map(|e| gate_grad(&step, u, k, e));
            assert!(
                row.into_iter().all(|&v| v == 0.0),
                "tower {u}, logit of slot {k}"
            );
            assert_eq!(
                step.grads["gate.bias"][u * n + k],
                0.0,
                "tower {u}, bias {k}"
            );
        }
        for &k in &own {
            assert_ne!(
                step.grads["gate.bias"][u * n + k],
                0.0,
                "tower {u}, bias {k}"
            );
            let from_other = other.iter().flat_map(|&e| gate_grad(&step, u, k, e));
            assert!(
                from_other.into_iter().any(|&v| v != 0.0),
                "tower {u}, row {k}"
            );
        }
    }
    assert!(step.loss.iter().all(|&l| l > 0.0));
}

/// `steps` batches of 61 rows from seed 5, the same for every caller.
fn batches(steps: usize) -> Vec<ModelBatch> {
    let mut rng = Rng::new(5);
    (0..steps).map(|_| tiny_batch(&mut rng, 61, 0)).collect()
}

fn train(gpu: &Gpu, graph: &mut Graph, batches: &[ModelBatch]) {
    for b in batches {
        let prepared = graph.prepare(b).expect("prepare");
        graph
            .train_step(gpu, &prepared, rates(graph))
            .expect("step");
    }
}

#[test]
fn stem_and_mmoe_give_bit_identical_weights_from_one_seed() {
    let gpu = gpu();
    for arch in ["stem", "mmoe"] {
        let run = || {
            // Dropout on, Adagrad + Adam state: everything a step depends on.
            let mut config = config(arch, 0, "");
            config.model.dropout = 0.1;
            let mut graph = graph(gpu, &config, 64);
            train(gpu, &mut graph, &batches(5));
            state(gpu, &graph)
        };
        let (a, b) = (run(), run());
        assert!(a.contains_key("gate.weight"), "{arch} is gated");
        assert_eq!(
            differing(&a, &b),
            Vec::<String>::new(),
            "{arch}: two runs, one seed"
        );
    }
}

#[test]
fn stem_saved_mid_run_resumes_bit_identically() {
    let gpu = gpu();
    let mut config = config("stem", 0, "");
    config.model.dropout = 0.1;
    let all = batches(5);
    let mut straight = graph(gpu, &config, 64);
    train(gpu, &mut straight, &all);

    let mut first = graph(gpu, &config, 64);
    train(gpu, &mut first, &all[..3]);
    let mut ckpt = Checkpoint::new();
    first.save_state(gpu, &mut ckpt).expect("state");
    let path = std::env::temp_dir().join(format!("wgrec-stem-resume-{}.st", std::process::id()));
    ckpt.write(&path).expect("write");
    drop(first);
    let read = Checkpoint::read(&path).expect("read");
    let _ = std::fs::remove_file(&path);
    // The run's config (its seed also keys the dropout masks), everything else from the file.
    let mut resumed = graph(gpu, &config, 64);
    resumed.load_state(gpu, &read, false).expect("load");
    assert_eq!(resumed.step(), 3);
    train(gpu, &mut resumed, &all[3..]);
    let (a, b) = (state(gpu, &straight), state(gpu, &resumed));
    assert_eq!(
        differing(&a, &b),
        Vec::<String>::new(),
        "5 steps = 3 + resume + 2"
    );
    // And training moved every parameter tensor from its initial value.
    let init = state(gpu, &graph(gpu, &config, 64));
    let moved = differing(&a, &init);
    assert!(moved.len() > 40, "{moved:?}");
}

#[test]
fn stem_dispatches_do_not_grow_with_the_features() {
    // A private device: its counters see only this test.
    let gpu = Gpu::new().expect("a GPU adapter (lavapipe will do)");
    let mut counts = Vec::new();
    for extra in [0usize, 5] {
        let config = config("stem", extra, "");
        let mut graph = Graph::new(
            &gpu,
            &config,
            &tiny_shapes(extra),
            64,
            0.0,
            optimizers(&config),
        )
        .expect("graph");
        let batch = graph
            .prepare(&tiny_batch(&mut Rng::new(3), 50, extra))
            .expect("prepare");
        graph
            .train_step(&gpu, &batch, rates(&graph))
            .expect("warm-up");
        gpu.sync().expect("runs");
        let (d0, s0, p0) = (gpu.dispatches(), gpu.submits(), gpu.pipelines_compiled());
        graph.train_step(&gpu, &batch, rates(&graph)).expect("step");
        gpu.sync().expect("runs");
        assert_eq!(gpu.submits() - s0, 1, "one submit per step");
        assert_eq!(
            gpu.pipelines_compiled(),
            p0,
            "no pipeline compiled in a step"
        );
        let d = gpu.dispatches() - d0;
        assert_eq!(
            d,
            graph.dispatches().train,
            "the stated count is the recorded one"
        );
        counts.push(d);
        assert!(graph
            .last_loss(&gpu)
            .expect("loss")
            .iter()
            .all(|l| l.is_finite()));
    }
    assert_eq!(
        counts[0], counts[1],
        "F = 5 and 2F = 10 features: the same dispatches"
    );
}

/// The trainer's resume test (`train.rs`: two epochs straight = one, stop, resume, one; every
/// checkpoint byte equal) on the same model as STEM, dropout, Adagrad + Adam and all.
#[test]
fn stem_trainer_stopped_and_resumed_equals_the_straight_run() {
    let model =
        (crate::train::MODEL).replacen("[model]\n", "[model]\narchitecture = \"stem\"\n", 1);
    let dir = crate::train::data("resume_stem", 1500);
    let tensors = crate::train::assert_resume_is_bit_identical(&model, &dir);
    assert!(
        tensors.iter().any(|(name, _)| name == "gate.weight"),
        "a STEM checkpoint"
    );
    let _ = std::fs::remove_dir_all(dir);
}
