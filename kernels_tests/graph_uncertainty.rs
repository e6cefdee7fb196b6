//! The uncertainty heads in the compiled model (`src/graph/uncertainty.rs`): the point model is
//! bit-identical with and without them, their weight gradients match finite differences of
//! their own loss in the one-tower and the task-tower layouts, a step records the dispatches it
//! states, and the belief a prediction returns has the plan's shape.

use wgrec::checkpoint::Checkpoint;
use wgrec::config::ModelConfig;
use wgrec::graph::Graph;
use wgrec::rng::Rng;

use crate::common::{gpu, private_gpu};
use crate::graph::{tiny_batch, tiny_shapes, TINY};

const BOOTSTRAP: &str = "uncertainty = { kind = \"bootstrap\", heads = 4 }";
const GAUSSIAN: &str = "uncertainty = { kind = \"gaussian\" }";

/// [`TINY`] (tasks `click` and `love`) as `arch`, the heads `heads` on `click` only when
/// `only_click`, else on both tasks.
fn config(arch: &str, heads: Option<&str>, only_click: bool) -> ModelConfig {
    let mut text = TINY.replacen(
        "[model]\n",
        &format!("[model]\narchitecture = \"{arch}\"\n"),
        1,
    );
    if let Some(h) = heads {
        text = text.replacen("name = \"click\"\n", &format!("name = \"click\"\n{h}\n"), 1);
        if !only_click {
            text = text.replacen("name = \"love\"\n", &format!("name = \"love\"\n{h}\n"), 1);
        }
    }
    ModelConfig::parse(&text, "tiny.toml").expect("config")
}

fn graph(gpu: &wgrec::Gpu, config: &ModelConfig) -> Graph {
    let o = wgrec::train::policy::TrainPolicy::new(&config.train).optimizers();
    Graph::new(gpu, config, &tiny_shapes(0), 64, 0.0, o).expect("graph")
}

fn step(gpu: &wgrec::Gpu, g: &mut Graph, rng: &mut Rng, rows: usize) -> wgrec::graph::Prepared {
    let b = g.prepare(&tiny_batch(rng, rows, 0)).expect("prepare");
    let rates = wgrec::train::policy::TrainPolicy::new(&g.config().train).rates(g.step() + 1);
    g.train_step(gpu, &b, rates).expect("step");
    b
}

/// Every tensor of the model's state but the heads' and the dense optimizer's flat state (whose
/// layout holds the heads' moments too; the values it produces are compared instead), as bits.
fn point_state(gpu: &wgrec::Gpu, g: &Graph) -> Vec<(String, Vec<u32>)> {
    let mut ckpt = Checkpoint::new();
    g.save_state(gpu, &mut ckpt).expect("state");
    let mut out: Vec<(String, Vec<u32>)> = (ckpt.tensors().iter())
        .filter(|(k, _)| !k.contains("uncertainty") && k.as_str() != "optim.dense.state")
        .map(|(k, t)| (k.clone(), t.data.iter().map(|v| v.to_bits()).collect()))
        .collect();
    out.sort();
    out
}

#[test]
fn the_point_model_is_bit_identical_with_and_without_heads() {
    let gpu = gpu();
    for arch in ["single", "mmoe"] {
        let mut runs = Vec::new();
        for heads in [None, Some(BOOTSTRAP), Some(GAUSSIAN)] {
            let mut g = graph(gpu, &config(arch, heads, false));
            let mut rng = Rng::new(11);
            for _ in 0..3 {
                step(gpu, &mut g, &mut rng, 45);
            }
            let eval = g.prepare(&tiny_batch(&mut rng, 30, 0)).expect("prepare");
            let (p, belief) = g.predict_belief(gpu, &eval).expect("predict");
            assert_eq!(belief.is_some(), heads.is_some(), "{arch} {heads:?}");
            let state = point_state(gpu, &g);
            assert!(state.len() > 5, "the state holds the model");
            runs.push((p.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), state));
        }
        assert!(
            runs[1] == runs[0],
            "{arch}: bootstrap heads changed the point model"
        );
        assert!(
            runs[2] == runs[0],
            "{arch}: the Gaussian head changed the point model"
        );
    }
}

/// The heads' loss at the graph's current weights, recomputed by a training-mode forward with the
/// last step's draws and scale.
fn head_loss(gpu: &wgrec::Gpu, g: &mut Graph, batch: &wgrec::graph::Prepared) -> f64 {
    g.train_logits(gpu, batch).expect("forward");
    let loss = g.last_uncertainty_loss(gpu).expect("read").expect("heads");
    loss.iter().sum()
}

fn gradcheck(arch: &str, heads: &str, only_click: bool) {
    let gpu = gpu();
    let mut g = graph(gpu, &config(arch, Some(heads), only_click));
    let mut rng = Rng::new(23);
    step(gpu, &mut g, &mut rng, 40);
    let batch = step(gpu, &mut g, &mut rng, 37);
    let base = head_loss(gpu, &mut g, &batch);
    assert!(
        base.is_finite() && base > 0.0,
        "{arch} {heads}: loss {base}"
    );
    let grads = g.params().read_grads(gpu).expect("grads");
    let values = g.params().read_all(gpu).expect("values");
    let mut checked = 0;
    for name in ["uncertainty.weight", "uncertainty.bias"] {
        let grad = &grads.iter().find(|(n, _)| n == name).expect(name).1;
        let value = values.iter().find(|t| t.0 == name).expect(name).2.clone();
        // Every fifth entry, so both outputs, every head and a spread of inputs are covered.
        for i in (0..value.len()).step_by(5) {
            let h = 1e-2f32;
            let mut probe = value.clone();
            probe[i] = value[i] + h;
            g.params().write(gpu, name, &probe).expect("write");
            let up = head_loss(gpu, &mut g, &batch);
            probe[i] = value[i] - h;
            g.params().write(gpu, name, &probe).expect("write");
            let down = head_loss(gpu, &mut g, &batch);
            g.params().write(gpu, name, &value).expect("restore");
            let fd = (up - down) / (2.0 * h as f64);
            // f32 losses of ~1 summed over 37 rows carry ~1e-6 rounding, over 2h = 0.02 that is
            // ~1e-4 in the quotient; the O(h²) truncation of a smooth BCE is ~1e-5 here.
            let bound = 5e-4 + 1e-2 * (grad[i] as f64).abs();
            assert!(
                (fd - grad[i] as f64).abs() <= bound,
                "{arch} {heads} {name}[{i}]: finite difference {fd} vs gradient {}",
                grad[i]
            );
            checked += 1;
        }
    }
    assert!(checked >= 8, "{checked} entries checked");
}

#[test]
fn bootstrap_head_gradients_match_finite_differences_over_one_tower() {
    gradcheck("single", BOOTSTRAP, false);
}

#[test]
fn gaussian_head_gradients_match_finite_differences_over_task_towers() {
    gradcheck("mmoe", GAUSSIAN, false);
}

#[test]
fn bootstrap_heads_on_one_task_of_two_over_task_towers() {
    gradcheck("shared", BOOTSTRAP, true);
}

#[test]
fn a_step_records_the_dispatches_it_states_and_the_belief_has_the_plans_shape() {
    let gpu = private_gpu();
    let config = config("single", Some(BOOTSTRAP), true);
    let mut g = graph(&gpu, &config);
    let mut rng = Rng::new(5);
    let batch = step(&gpu, &mut g, &mut rng, 50);
    gpu.sync().expect("step");
    let d0 = gpu.dispatches();
    let rates = wgrec::train::policy::TrainPolicy::new(&config.train).rates(g.step() + 1);
    g.train_step(&gpu, &batch, rates).expect("step");
    gpu.sync().expect("step");
    assert_eq!(gpu.dispatches() - d0, g.dispatches().train);
    let d0 = gpu.dispatches();
    let (p, belief) = g.predict_belief(&gpu, &batch).expect("predict");
    assert_eq!(gpu.dispatches() - d0, g.dispatches().eval);
    let belief = belief.expect("a belief");
    assert_eq!((belief.rows(), belief.outputs, belief.width), (50, 2, 4));
    assert_eq!(belief.active, vec![true, false]);
    assert_eq!(p.len(), 100);
    assert!(belief.values.iter().all(|v| v.is_finite()));
    // Four differently initialised heads disagree.
    assert!((0..50).all(|r| belief.sd_logit(r, 0) > 0.0));
}

#[test]
fn a_run_with_heads_resumes_bit_identically_and_the_predictor_reads_their_belief() {
    // The heads' masks are a function of (seed, step, row): a resumed run must redraw them.
    let model = crate::train::MODEL.replacen(
        "name = \"click\"\n",
        "name = \"click\"\nuncertainty = { kind = \"bootstrap\", heads = 3 }\n",
        1,
    );
    let dir = crate::train::data("resume_heads", 900);
    let tensors = crate::train::assert_resume_is_bit_identical(&model, &dir);
    let weight = tensors.iter().find(|(n, _)| n == "uncertainty.weight");
    assert!(weight.is_some(), "the heads are in the checkpoint");
    let gpu = gpu();
    let mut predictor = wgrec::serve::Predictor::load(gpu, &dir.join("straight")).expect("load");
    let (metrics, _, spread) = predictor
        .evaluate_file_spread(gpu, &dir.join("test.tsv"), Default::default(), 4)
        .expect("eval");
    let spread = spread.expect("a model with heads reports their spread");
    assert_eq!(spread.len(), 1, "only click has heads");
    assert_eq!(spread[0].output, "click");
    let rows: usize = spread[0].buckets.iter().map(|b| b.rows).sum();
    assert_eq!(rows, metrics[0].rows, "every labelled row is in a bucket");
    let _ = std::fs::remove_dir_all(dir);
}
