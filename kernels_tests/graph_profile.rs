//! The per-layer profiler (issue 20): a profiled step does exactly the training step's work — the
//! same dispatches, the same parameters bit for bit afterwards — under both timings (GPU
//! timestamps, and the host-submit fallback forced), and its report names every section once.

use wgrec::graph::{Graph, ProfileRequest, StepProfile, TimingMethod};
use wgrec::rng::Rng;
use wgrec::Gpu;

use crate::graph::{tiny_batch, tiny_shapes, TINY};

const STEPS: u64 = 6;

/// Every tensor of the graph's state (dense, tables, optimizer state, BatchNorm statistics) as
/// bits, with each step's loss statistics.
type Run = (Vec<(String, Vec<u32>)>, Vec<Vec<u32>>);

/// Trains [`TINY`] (two expert groups, TIM, bags, MNS) with BatchNorm and dropout — and
/// bootstrap uncertainty heads on `click` when `heads` — for [`STEPS`] steps on a private device,
/// inside `window` when given; returns the state, the dispatches counted, and the profile.
fn train(window: Option<ProfileRequest>, heads: bool) -> (Run, u64, Option<StepProfile>) {
    let gpu = Gpu::new().expect("a GPU adapter (lavapipe will do)");
    let mut text = TINY.to_string();
    if heads {
        let h = "name = \"click\"\nuncertainty = { kind = \"bootstrap\", heads = 4 }\n";
        text = text.replacen("name = \"click\"\n", h, 1);
    }
    let mut config = wgrec::config::ModelConfig::parse(&text, "tiny.toml").expect("config");
    config.model.batch_norm = true;
    config.model.dropout = 0.1;
    let policy = wgrec::train::policy::TrainPolicy::new(&config.train);
    let mut graph =
        Graph::new(&gpu, &config, &tiny_shapes(0), 64, 0.0, policy.optimizers()).expect("graph");
    if let Some(w) = window {
        graph.start_profile(w);
    }
    let mut rng = Rng::new(9);
    let mut losses = Vec::new();
    let d0 = gpu.dispatches();
    for step in 1..=STEPS {
        // Awkward batch sizes, one of them full.
        let rows = [61, 64, 37, 50, 1, 64][(step - 1) as usize];
        let b = graph
            .prepare(&tiny_batch(&mut rng, rows, 0))
            .expect("prepare");
        graph
            .train_step(&gpu, &b, policy.rates(step))
            .expect("step");
        let stats = graph.last_loss_stats(&gpu).expect("loss");
        losses.push(stats.iter().map(|v| v.to_bits()).collect());
    }
    gpu.sync().expect("steps run");
    let dispatches = gpu.dispatches() - d0;
    let mut ckpt = wgrec::checkpoint::Checkpoint::new();
    graph.save_state(&gpu, &mut ckpt).expect("state");
    let tensors = (ckpt.tensors().iter())
        .map(|(k, t)| (k.clone(), t.data.iter().map(|v| v.to_bits()).collect()))
        .collect();
    ((tensors, losses), dispatches, graph.take_profile())
}

fn window(host_timing: bool) -> ProfileRequest {
    ProfileRequest {
        first: 2,
        steps: 2,
        host_timing,
    }
}

/// The profile's sections: finite non-negative times, each (layer, phase) once, every layer of
/// the tiny model there.
fn check_sections(p: &StepProfile) {
    assert_eq!(p.steps, 2, "two profiled steps (2 and 4)");
    assert_eq!(
        p.step_wall_ms.map(|w| w > 0.0),
        Some(true),
        "plain steps 3, 5 timed"
    );
    let mut seen = std::collections::BTreeSet::new();
    for s in &p.sections {
        assert!(s.ms.is_finite() && s.ms >= 0.0, "{s:?}");
        assert!(
            seen.insert((s.layer.clone(), s.phase.clone())),
            "{s:?} twice"
        );
    }
    let has =
        |layer: &str, phase: &str| seen.iter().any(|(l, p)| l.starts_with(layer) && p == phase);
    for (layer, phase) in [
        ("embedding", "forward"),
        ("embedding", "update"),
        ("embedding·tim", "forward"),
        ("embedding·tim", "backward"),
        ("embedding·tim", "update"),
        ("expert 0 dcn", "forward"),
        ("expert 1 gwpfm", "backward"),
        ("batchnorm", "forward"),
        ("combine", "backward"),
        ("dense", "forward"),
        ("head", "backward"),
        ("loss", "loss"),
        ("dense optimizer", "update"),
        ("gradients → flat", "copy"),
        ("flat → values", "copy"),
    ] {
        assert!(has(layer, phase), "no {layer} {phase} in {seen:?}");
    }
    let gemm = p
        .sections
        .iter()
        .find(|s| s.layer.starts_with("dense"))
        .expect("dense");
    assert!(gemm.cost.flops > 0 && gemm.cost.bytes > 0, "{gemm:?}");
    let gather = (p.sections.iter())
        .find(|s| s.layer == "embedding" && s.phase == "forward")
        .expect("gather");
    assert!(gather.cost.bytes > 0, "{gather:?}");
}

#[test]
fn profiled_steps_keep_the_bits_and_the_dispatches_under_timestamps() {
    let (plain, plain_dispatches, none) = train(None, false);
    assert!(none.is_none(), "no window, no profile");
    let (profiled, dispatches, profile) = train(Some(window(false)), false);
    assert_eq!(dispatches, plain_dispatches, "the same dispatches");
    assert_eq!(
        profiled.1, plain.1,
        "every step's loss statistics, bit for bit"
    );
    assert_eq!(profiled.0, plain.0, "every tensor, bit for bit");
    let profile = profile.expect("a profile");
    assert_eq!(
        profile.method,
        TimingMethod::GpuTimestamps,
        "lavapipe has timestamps"
    );
    let per_step: u64 = profile.sections.iter().map(|s| s.dispatches).sum();
    assert_eq!(
        per_step * STEPS,
        dispatches,
        "the sections partition the step"
    );
    check_sections(&profile);
}

#[test]
fn the_host_submit_fallback_keeps_the_bits_too() {
    let (plain, plain_dispatches, _) = train(None, false);
    let (profiled, dispatches, profile) = train(Some(window(true)), false);
    assert_eq!(dispatches, plain_dispatches);
    assert_eq!(profiled, plain, "every tensor and loss, bit for bit");
    let profile = profile.expect("a profile");
    assert_eq!(profile.method, TimingMethod::HostSubmits);
    check_sections(&profile);
}

#[test]
fn a_window_past_the_run_gives_no_profile() {
    let (_, _, profile) = train(
        Some(ProfileRequest {
            first: STEPS + 1,
            steps: 3,
            host_timing: false,
        }),
        false,
    );
    assert!(profile.is_none());
}

#[test]
fn the_uncertainty_heads_are_a_section_and_keep_their_bits() {
    let (plain, plain_dispatches, _) = train(None, true);
    let (profiled, dispatches, profile) = train(Some(window(false)), true);
    assert_eq!(dispatches, plain_dispatches);
    assert_eq!(
        profiled, plain,
        "every tensor (the heads' too) and loss, bit for bit"
    );
    assert!(
        plain.0.iter().any(|(k, _)| k.contains("uncertainty")),
        "the heads are trained"
    );
    let profile = profile.expect("a profile");
    check_sections(&profile);
    let heads = (profile.sections.iter())
        .find(|s| s.layer == "uncertainty heads")
        .expect("the heads' section");
    assert_eq!(heads.phase, "forward");
    assert!(heads.cost.flops > 0, "{heads:?}");
}
