//! Dense optimizers (`dense_step`) and the global-norm reduction (`norm_partials`, `norm_finish`)
//! against an f64 CPU reference over ten-plus steps, against torch.optim trajectories (fixture
//! `optim.safetensors`), on folded grids, and for determinism; the schedules; the launcher's checks.

use std::sync::OnceLock;

use wgrec::gpu::{adapter, storage_usage, AdapterChoice};
use wgrec::kernels::dense::optim::{
    DenseOptimizer, DenseOptimizerKind as Kind, OptimParams, MAX_PARTIALS,
};
use wgrec::kernels::run_once;
use wgrec::rng::Rng;
use wgrec::train::policy::Schedule;
use wgrec::{shaders, Gpu};

use crate::common::{download, gpu, poison, random_f32, upload, Tolerance};
use crate::fixtures::Fixture;
use crate::registry::{assert_layout, offsets};

/// Parameters after 12 f32 steps, against |p0| + Σ the absolute terms of each update (see
/// `Reference::p_mag`). A step rounds p (ε/2) and computes the update in about six roundings of its
/// terms (clip factor, L2 term, m or b, v, sqrt, division): 12 · 6.5 · ε(6e-8) ≈ 4.7e-6 at the worst.
/// Measured: ≤ 4.5e-7 of the magnitude, in the reference cases and against torch alike.
const PARAMS: Tolerance = Tolerance {
    relative: 5e-6,
    absolute: 1e-12,
};
/// Optimizer state (m, v, momentum buffer) against the absolute terms summed into it: the same
/// per-step growth without the parameter's rounding. Measured ≤ 4.5e-7.
const STATE: Tolerance = Tolerance {
    relative: 5e-6,
    absolute: 1e-12,
};
/// The gradient norm: an f32 sum of squares with ≤ 2·log2(256) tree levels and a few sequential
/// additions per term (≤ 30 roundings of ε relative, halved by the square root). Measured ≤ 1.2e-7.
const NORM: Tolerance = Tolerance {
    relative: 2e-6,
    absolute: 0.0,
};

fn adam(weight_decay: f64) -> Kind {
    Kind::Adam {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay,
    }
}
fn adamw(weight_decay: f64) -> Kind {
    Kind::AdamW {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay,
    }
}
fn sgd(nesterov: bool, weight_decay: f64) -> Kind {
    Kind::SgdMomentum {
        momentum: 0.9,
        nesterov,
        weight_decay,
    }
}

/// torch.optim semantics in f64, state laid out as the GPU's (planar m, v / momentum buffer).
struct Reference {
    kind: Kind,
    clip: Option<f64>,
    p: Vec<f64>,
    state: Vec<f64>,
    /// |p0| + Σ over steps of the absolute values of the terms that made each update: the scale of
    /// what the GPU's f32 arithmetic rounded. Where L2 decay cancels the gradient, Adam's normalised
    /// update is ill-conditioned and this magnitude grows with it, as the f32 error does.
    p_mag: Vec<f64>,
    /// The same for each state value: the absolute values of the terms summed into it.
    state_mag: Vec<f64>,
}

impl Reference {
    fn new(kind: Kind, clip: Option<f32>, p0: &[f32]) -> Self {
        let slots = DenseOptimizer::state_len(kind, p0.len() as u64) as usize;
        Reference {
            kind,
            clip: clip.map(f64::from),
            p: p0.iter().map(|&x| x as f64).collect(),
            state: vec![0.0; slots],
            p_mag: p0.iter().map(|&x| (x as f64).abs()).collect(),
            state_mag: vec![0.0; slots],
        }
    }

    /// One step at `lr`; returns (‖g‖₂, clip factor).
    fn step(&mut self, g: &[f32], lr: f64, step: u64) -> (f64, f64) {
        let n = self.p.len();
        let norm = g.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
        let scale = self.clip.map_or(1.0, |m| (m / (norm + 1e-6)).min(1.0));
        let t = step as f64;
        for i in 0..n {
            let (p, gc) = (self.p[i], g[i] as f64 * scale);
            let new_p = match self.kind {
                Kind::Adam {
                    beta1,
                    beta2,
                    eps,
                    weight_decay,
                }
                | Kind::AdamW {
                    beta1,
                    beta2,
                    eps,
                    weight_decay,
                } => {
                    let decoupled = matches!(self.kind, Kind::AdamW { .. });
                    let (q, gi) = match decoupled {
                        true => (p * (1.0 - lr * weight_decay), gc),
                        false => (p, gc + weight_decay * p),
                    };
                    let (m0, v0) = match step {
                        1 => (0.0, 0.0),
                        _ => (self.state[i], self.state[n + i]),
                    };
                    let m = beta1 * m0 + (1.0 - beta1) * gi;
                    let v = beta2 * v0 + (1.0 - beta2) * gi * gi;
                    let gmag = gc.abs() + (!decoupled as u8 as f64) * weight_decay * p.abs();
                    let m_mag = beta1 * self.state_mag[i] + (1.0 - beta1) * gmag;
                    let v_mag = beta2 * self.state_mag[n + i] + (1.0 - beta2) * gmag * gmag;
                    self.state_mag[i] = m_mag;
                    self.state_mag[n + i] = v_mag;
                    self.state[i] = m;
                    self.state[n + i] = v;
                    let step_size = lr / (1.0 - beta1.powf(t));
                    let denom = v.sqrt() / (1.0 - beta2.powf(t)).sqrt() + eps;
                    self.p_mag[i] += step_size * m_mag / denom + (p - q).abs();
                    q - step_size * m / denom
                }
                Kind::SgdMomentum {
                    momentum,
                    nesterov,
                    weight_decay,
                } => {
                    let gi = gc + weight_decay * p;
                    let gmag = gc.abs() + weight_decay * p.abs();
                    let b = match step {
                        1 => gi,
                        _ => momentum * self.state[i] + gi,
                    };
                    let b_mag = momentum * self.state_mag[i] + gmag;
                    self.state_mag[i] = b_mag;
                    self.state[i] = b;
                    let (d, d_mag) = match nesterov {
                        true => (gi + momentum * b, gmag + momentum * b_mag),
                        false => (b, b_mag),
                    };
                    self.p_mag[i] += lr * d_mag;
                    p - lr * d
                }
            };
            self.p[i] = new_p;
        }
        (norm, scale)
    }
}

/// What the GPU left after a run.
struct Run {
    params: Vec<f32>,
    state: Vec<f32>,
    /// (norm, clip factor) read after each step when clipping.
    norms: Vec<[f32; 2]>,
}

/// Runs one optimizer over `grads[k]` at `lrs[k]`, steps 1, 2, …; the state starts poisoned (step 1
/// must ignore it) and the norm buffer is poisoned before each step.
fn run_gpu(
    gpu: &Gpu,
    kind: Kind,
    clip: Option<f32>,
    p0: &[f32],
    grads: &[Vec<f32>],
    lrs: &[f32],
) -> Run {
    let len = p0.len();
    let params = upload(gpu, "params", p0);
    let grad = gpu.buffer("grads", len as u64 * 4, storage_usage());
    let slots = DenseOptimizer::state_len(kind, len as u64) as usize;
    let state = gpu.buffer("state", slots as u64 * 4, storage_usage());
    poison(gpu, &state);
    let opt = DenseOptimizer::new(gpu, kind, len as u64, &params, &grad, &state, clip)
        .expect("optimizer");
    let mut norms = Vec::new();
    for (k, (g, &lr)) in grads.iter().zip(lrs).enumerate() {
        if !g.is_empty() {
            gpu.queue.write_buffer(&grad, 0, bytemuck::cast_slice(g));
        }
        if let Some(b) = opt.norm_buffer() {
            poison(gpu, b);
        }
        opt.set_step(gpu, lr, k as u64 + 1).expect("set_step");
        run_once(gpu, |pass| opt.record(gpu, pass));
        if let Some(b) = opt.norm_buffer() {
            let v = download(gpu, b, 2);
            norms.push([v[0], v[1]]);
        }
    }
    gpu.sync().expect("device");
    Run {
        params: download(gpu, &params, len),
        state: download(gpu, &state, slots),
        norms,
    }
}

/// Compares a GPU run with the reference that took the same steps.
fn compare(what: &str, run: &Run, want: &Reference, want_norms: &[(f64, f64)]) {
    for i in 0..want.p.len() {
        PARAMS.check(
            &format!("{what} params"),
            i,
            run.params[i],
            want.p[i],
            want.p_mag[i],
        );
    }
    for i in 0..want.state.len() {
        let (s, m) = (want.state[i], want.state_mag[i]);
        STATE.check(&format!("{what} state"), i, run.state[i], s, m);
    }
    if want.clip.is_some() {
        assert_eq!(run.norms.len(), want_norms.len(), "{what}: norms logged");
        for (k, (got, &(norm, scale))) in run.norms.iter().zip(want_norms).enumerate() {
            NORM.check(&format!("{what} norm"), k, got[0], norm, norm);
            NORM.check(&format!("{what} clip factor"), k, got[1], scale, scale);
        }
    } else {
        assert!(
            run.norms.is_empty(),
            "{what}: no norm buffer without clipping"
        );
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Clip {
    Off,
    /// max_norm below every step's norm.
    Active,
    /// max_norm above every step's norm.
    Inactive,
}

/// `steps` random gradients (each step at its own scale), a clip threshold per `clip`, the reference
/// and the GPU on `gpu`; returns the GPU run.
fn check(
    gpu: &Gpu,
    kind: Kind,
    clip: Clip,
    len: usize,
    steps: usize,
    schedule: Schedule,
    seed: u64,
) -> Run {
    let mut rng = Rng::new(seed);
    let p0 = random_f32(&mut rng, len);
    let grads: Vec<Vec<f32>> = (0..steps)
        .map(|_| {
            let s = rng.uniform(0.25, 2.0);
            random_f32(&mut rng, len).iter().map(|g| g * s).collect()
        })
        .collect();
    let norms: Vec<f64> = grads
        .iter()
        .map(|g| g.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt())
        .collect();
    let max_norm = match clip {
        Clip::Off => None,
        Clip::Active => Some((0.5 * norms.iter().cloned().fold(f64::INFINITY, f64::min)) as f32),
        Clip::Inactive => Some((2.0 * norms.iter().cloned().fold(0.0, f64::max)) as f32),
    };
    let lrs: Vec<f32> = (1..=steps as u64).map(|s| schedule.lr(s)).collect();
    let mut want = Reference::new(kind, max_norm, &p0);
    let want_norms: Vec<(f64, f64)> = (0..steps)
        .map(|k| want.step(&grads[k], lrs[k] as f64, k as u64 + 1))
        .collect();
    match clip {
        Clip::Active => assert!(
            want_norms.iter().all(|&(_, s)| s < 0.6),
            "clipping must act"
        ),
        Clip::Inactive => assert!(
            want_norms.iter().all(|&(_, s)| s == 1.0),
            "clipping must not act"
        ),
        Clip::Off => {}
    }
    let run = run_gpu(gpu, kind, max_norm, &p0, &grads, &lrs);
    compare(
        &format!("{kind:?} {clip:?} len {len}"),
        &run,
        &want,
        &want_norms,
    );
    run
}

const WARMUP_COSINE: Schedule = Schedule::WarmupCosine {
    peak: 0.02,
    floor: 0.002,
    warmup: 3,
    total: 10,
};

/// Every clip mode, with and without weight decay, at len 1 and at a length that is no multiple of a
/// workgroup and spreads the reduction over 17 partial sums.
fn check_all(kinds: [Kind; 2], schedule: Schedule, seed: u64) {
    for kind in kinds {
        for clip in [Clip::Off, Clip::Active, Clip::Inactive] {
            for len in [1, 4099] {
                check(gpu(), kind, clip, len, 12, schedule, seed + len as u64);
            }
        }
    }
}

#[test]
fn adam_matches_reference_over_twelve_steps_with_l2_decay_and_clipping() {
    check_all([adam(0.0), adam(0.05)], WARMUP_COSINE, 1);
}

#[test]
fn adamw_matches_reference_over_twelve_steps_with_decoupled_decay_and_clipping() {
    check_all([adamw(0.0), adamw(0.1)], WARMUP_COSINE, 2);
}

#[test]
fn sgd_momentum_matches_reference_over_twelve_steps_with_decay_and_clipping() {
    let schedule = Schedule::StepDecay {
        lr: 0.05,
        gamma: 0.5,
        every: 4,
    };
    check_all([sgd(false, 0.0), sgd(false, 0.01)], schedule, 3);
}

#[test]
fn sgd_nesterov_matches_reference_over_twelve_steps_with_decay_and_clipping() {
    let schedule = Schedule::Constant { lr: 0.03 };
    check_all([sgd(true, 0.0), sgd(true, 0.01)], schedule, 4);
}

/// A device that folds any grid past 64 workgroups into (x, y), as a GPU does past 65,535.
fn folding_gpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| {
        let choice = AdapterChoice::from_env().expect("adapter choice");
        let (_instance, adapters) = adapter::enumerate(&choice);
        let adapter = adapters
            .into_iter()
            .find(|a| choice.accepts(&a.get_info()))
            .expect("kernel tests need a GPU adapter");
        let desc = wgpu::DeviceDescriptor {
            label: Some("folding"),
            required_limits: wgpu::Limits {
                max_compute_workgroups_per_dimension: 64,
                ..adapter.limits()
            },
            ..Default::default()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc)).expect("device");
        Gpu::from_wgpu(device, queue).expect("gpu")
    })
}

#[test]
fn million_element_buffer_matches_reference_and_folded_grids_give_the_same_bits() {
    // 1,000,003 elements: 3,907 update workgroups and 1,024 partial sums of ~4 elements per
    // invocation; on the folding device both grids fold, with padding workgroups past the end.
    let (kind, len) = (adam(0.01), 1_000_003);
    let schedule = Schedule::Constant { lr: 0.01 };
    let limit = folding_gpu().limits().max_compute_workgroups_per_dimension;
    assert_eq!(limit, 64, "the folding device must fold");
    let plain = check(gpu(), kind, Clip::Active, len, 3, schedule, 5);
    let folded = check(folding_gpu(), kind, Clip::Active, len, 3, schedule, 5);
    assert!(plain
        .params
        .iter()
        .zip(&folded.params)
        .all(|(a, b)| a.to_bits() == b.to_bits()));
    assert!(plain
        .state
        .iter()
        .zip(&folded.state)
        .all(|(a, b)| a.to_bits() == b.to_bits()));
    assert_eq!(plain.norms, folded.norms);
}

#[test]
fn two_runs_give_bit_identical_params_state_and_norms() {
    let runs: Vec<Run> = (0..2)
        .map(|_| {
            check(
                gpu(),
                sgd(true, 0.01),
                Clip::Active,
                300_007,
                3,
                WARMUP_COSINE,
                6,
            )
        })
        .collect();
    let bits = |r: &Run| -> Vec<u32> {
        r.params
            .iter()
            .chain(&r.state)
            .chain(r.norms.iter().flatten())
            .map(|x| x.to_bits())
            .collect()
    };
    assert_eq!(bits(&runs[0]), bits(&runs[1]));
}

/// The torch.optim fixture: flat params of three tensors (7×5, 5, 3×4×3), 12 steps of stored
/// gradients through clip_grad_norm_ (some steps clipped, some not) and a warm-up/cosine LambdaLR.
#[test]
fn optimizers_follow_torch_optim_trajectories_from_the_fixture() {
    let fx = Fixture::load("optim");
    for case in ["adam", "adamw", "sgd", "nesterov"] {
        let h = fx.f64(&format!("{case}.hyper"));
        let kind = match case {
            "adam" => Kind::Adam {
                beta1: h[0],
                beta2: h[1],
                eps: h[2],
                weight_decay: h[3],
            },
            "adamw" => Kind::AdamW {
                beta1: h[0],
                beta2: h[1],
                eps: h[2],
                weight_decay: h[3],
            },
            _ => Kind::SgdMomentum {
                momentum: h[0],
                nesterov: h[1] != 0.0,
                weight_decay: h[2],
            },
        };
        let sched = fx.f64(&format!("{case}.schedule"));
        let schedule = Schedule::WarmupCosine {
            peak: sched[0] as f32,
            floor: sched[1] as f32,
            warmup: sched[2] as u64,
            total: sched[3] as u64,
        };
        let max_norm = fx.f64(&format!("{case}.max_norm"))[0] as f32;
        let p0 = fx.f32(&format!("{case}.params"));
        let torch_lrs = fx.f64(&format!("{case}.lrs"));
        let torch_norms = fx.f64(&format!("{case}.norms"));
        let torch_final = fx.f64(&format!("{case}.final"));
        let key = format!("{case}.grads");
        assert_eq!(
            fx.shape(&key),
            &[torch_lrs.len(), p0.len()],
            "{case}: [steps, params]"
        );
        let grads: Vec<Vec<f32>> = fx.f32(&key).chunks(p0.len()).map(|c| c.to_vec()).collect();
        assert_eq!(
            grads.len(),
            torch_lrs.len(),
            "{case}: one gradient per step"
        );
        let lrs: Vec<f32> = (1..=grads.len() as u64).map(|s| schedule.lr(s)).collect();
        for (k, (&ours, &theirs)) in lrs.iter().zip(torch_lrs).enumerate() {
            // Both in f64, rounded once to f32.
            let tol = Tolerance {
                relative: 1.2e-7,
                absolute: 0.0,
            };
            tol.check(&format!("{case} schedule"), k, ours, theirs, theirs);
        }
        // The f64 reference must be torch itself, up to f64 rounding.
        let mut want = Reference::new(kind, Some(max_norm), &p0);
        let want_norms: Vec<(f64, f64)> = (0..grads.len())
            .map(|k| want.step(&grads[k], torch_lrs[k], k as u64 + 1))
            .collect();
        for (k, (&(n, _), &t)) in want_norms.iter().zip(torch_norms).enumerate() {
            assert!(
                (n - t).abs() <= 1e-12 * t,
                "{case} reference norm[{k}]: {n} vs torch {t}"
            );
        }
        assert!(
            want_norms.iter().any(|&(_, s)| s < 1.0) && want_norms.iter().any(|&(_, s)| s == 1.0)
        );
        for (i, (&p, &t)) in want.p.iter().zip(torch_final).enumerate() {
            assert!(
                (p - t).abs() <= 1e-12 * want.p_mag[i],
                "{case} reference p[{i}]: {p} vs torch {t}"
            );
        }
        let run = run_gpu(gpu(), kind, Some(max_norm), &p0, &grads, &lrs);
        for i in 0..p0.len() {
            PARAMS.check(
                &format!("{case} vs torch"),
                i,
                run.params[i],
                torch_final[i],
                want.p_mag[i],
            );
        }
        for (k, (got, &t)) in run.norms.iter().zip(torch_norms).enumerate() {
            NORM.check(&format!("{case} norm vs torch"), k, got[0], t, t);
        }
    }
}

/// A device of the test's own: dispatch and pipeline counters are per device, and tests on the
/// shared one run in parallel.
fn own_gpu() -> Gpu {
    Gpu::new().expect("kernel tests need a GPU adapter")
}

/// Dispatches one recorded step adds.
fn dispatches_of(gpu: &Gpu, opt: &DenseOptimizer) -> u64 {
    let before = gpu.dispatches();
    run_once(gpu, |pass| opt.record(gpu, pass));
    gpu.sync().expect("device");
    gpu.dispatches() - before
}

#[test]
fn a_step_records_a_fixed_number_of_dispatches_and_compiles_nothing() {
    let gpu = &own_gpu();
    for len in [1u64, 1_000_003] {
        let params = gpu.buffer("params", len * 4, storage_usage());
        let grads = gpu.buffer("grads", len * 4, storage_usage());
        let state = gpu.buffer("state", len * 8, storage_usage());
        for (clip, count) in [(None, 1), (Some(1.0), 3)] {
            let opt = DenseOptimizer::new(gpu, adam(0.0), len, &params, &grads, &state, clip)
                .expect("new");
            assert_eq!(opt.norm_buffer().is_some(), clip.is_some());
            let compiled = gpu.pipelines_compiled();
            for step in 1..=3 {
                opt.set_step(gpu, 1e-3, step).expect("set_step");
                assert_eq!(dispatches_of(gpu, &opt), count, "len {len}, clip {clip:?}");
            }
            assert_eq!(
                gpu.pipelines_compiled(),
                compiled,
                "a step compiled a pipeline"
            );
        }
    }
}

#[test]
fn empty_buffer_updates_nothing_and_logs_a_zero_norm() {
    let gpu = &own_gpu();
    let b = |label| gpu.buffer(label, 0, storage_usage());
    let (params, grads, state) = (b("params"), b("grads"), b("state"));
    let plain =
        DenseOptimizer::new(gpu, sgd(false, 0.0), 0, &params, &grads, &state, None).expect("new");
    plain.set_step(gpu, 0.1, 1).expect("set_step");
    assert_eq!(dispatches_of(gpu, &plain), 0);
    let clipped = DenseOptimizer::new(gpu, sgd(false, 0.0), 0, &params, &grads, &state, Some(1.0))
        .expect("new");
    assert_eq!(clipped.reduction_partials(), 1);
    let norm = clipped.norm_buffer().expect("norm buffer");
    poison(gpu, norm);
    clipped.set_step(gpu, 0.1, 1).expect("set_step");
    assert_eq!(
        dispatches_of(gpu, &clipped),
        2,
        "the reduction runs, the update has no work"
    );
    assert_eq!(download(gpu, norm, 2), vec![0.0, 1.0]);
}

#[test]
fn a_step_recorded_before_set_step_changes_nothing() {
    let gpu = gpu();
    let mut rng = Rng::new(7);
    let p0 = random_f32(&mut rng, 1000);
    let params = upload(gpu, "params", &p0);
    let grads = upload(gpu, "grads", &random_f32(&mut rng, 1000));
    let state = upload(gpu, "state", &random_f32(&mut rng, 2000));
    let opt = DenseOptimizer::new(gpu, adamw(0.1), 1000, &params, &grads, &state, Some(0.1))
        .expect("new");
    run_once(gpu, |pass| opt.record(gpu, pass));
    assert_eq!(download(gpu, &params, 1000), p0);
}

#[test]
fn reduction_caps_its_partial_sums() {
    let gpu = gpu();
    let len = 1_000_003u64;
    let buf = |n: u64| gpu.buffer("b", n * 4, storage_usage());
    let (p, g, s) = (buf(len), buf(len), buf(2 * len));
    let opt = DenseOptimizer::new(gpu, adam(0.0), len, &p, &g, &s, Some(1.0)).expect("new");
    assert_eq!(opt.reduction_partials(), MAX_PARTIALS);
    let opt = DenseOptimizer::new(gpu, adam(0.0), 4099, &p, &g, &s, Some(1.0)).expect("new");
    assert_eq!(opt.reduction_partials(), 17);
}

#[test]
fn launcher_rejects_short_buffers_and_bad_settings_with_numbers() {
    let gpu = gpu();
    let buf = |n: u64| gpu.buffer("b", n * 4, storage_usage());
    let (p, g, s) = (buf(100), buf(100), buf(150));
    let err = |r: wgrec::Result<DenseOptimizer>| r.err().expect("must fail").to_string();
    let e = err(DenseOptimizer::new(gpu, adam(0.0), 100, &p, &g, &s, None));
    assert!(e.contains("600 bytes") && e.contains("800 needed"), "{e}");
    let e = err(DenseOptimizer::new(
        gpu,
        adam(0.0),
        101,
        &p,
        &g,
        &buf(202),
        None,
    ));
    assert!(e.contains("params") && e.contains("404 needed"), "{e}");
    let e = err(DenseOptimizer::new(
        gpu,
        sgd(false, 0.0),
        100,
        &p,
        &buf(99),
        &s,
        None,
    ));
    assert!(e.contains("grads") && e.contains("400 needed"), "{e}");
    let nesterov0 = Kind::SgdMomentum {
        momentum: 0.0,
        nesterov: true,
        weight_decay: 0.0,
    };
    assert!(err(DenseOptimizer::new(gpu, nesterov0, 100, &p, &g, &s, None)).contains("Nesterov"));
    let beta_one = Kind::Adam {
        beta1: 1.0,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
    };
    assert!(err(DenseOptimizer::new(gpu, beta_one, 10, &p, &g, &s, None)).contains("betas"));
    assert!(
        err(DenseOptimizer::new(gpu, adamw(-0.1), 10, &p, &g, &s, None)).contains("weight decay")
    );
    assert!(err(DenseOptimizer::new(
        gpu,
        adam(0.0),
        10,
        &p,
        &g,
        &s,
        Some(0.0)
    ))
    .contains("max_norm"));
    let opt = DenseOptimizer::new(gpu, adam(0.0), 50, &p, &g, &s, None).expect("fits");
    assert!(opt.set_step(gpu, 1e-3, 0).is_err(), "steps count from 1");
    assert!(opt.set_step(gpu, f32::NAN, 1).is_err());
    assert!(opt.set_step(gpu, -1e-3, 1).is_err());
}

#[test]
fn step_params_carry_f64_bias_corrections_and_decoupled_decay() {
    let gpu = gpu();
    let buf = |n: u64| gpu.buffer("b", n * 4, storage_usage());
    let (p, g, s) = (buf(16), buf(16), buf(32));
    let opt = DenseOptimizer::new(gpu, adamw(0.1), 16, &p, &g, &s, None).expect("new");
    let u = opt.step_params(0.01, 3).expect("params");
    assert_eq!((u.len, u.first, u.weight_decay), (16, 0, 0.0));
    assert_eq!(u.decay, (1.0 - 0.01f32 as f64 * 0.1) as f32);
    assert_eq!(u.one_minus_beta2, (1.0f64 - 0.999) as f32);
    assert_eq!(
        u.step_size,
        (0.01f32 as f64 / (1.0 - 0.9f64.powi(3))) as f32
    );
    assert_eq!(
        u.inv_sqrt_bc2,
        (1.0 / (1.0 - 0.999f64.powi(3)).sqrt()) as f32
    );
    assert_eq!(opt.step_params(0.01, 1).expect("params").first, 1);
}

#[test]
fn warmup_cosine_schedule_rises_linearly_then_falls_to_its_floor() {
    let s = Schedule::WarmupCosine {
        peak: 1.0,
        floor: 0.1,
        warmup: 4,
        total: 14,
    };
    let lr: Vec<f32> = (1..=16).map(|t| s.lr(t)).collect();
    assert_eq!(&lr[..4], &[0.25, 0.5, 0.75, 1.0]);
    // Half-way through the decay (step 9) the cosine is at its midpoint.
    assert!((lr[8] - 0.55).abs() < 1e-7, "{}", lr[8]);
    assert!(lr[4..14].windows(2).all(|w| w[1] < w[0]), "{lr:?}");
    assert_eq!(&lr[13..], &[0.1, 0.1, 0.1]);
    let no_warmup = Schedule::WarmupCosine {
        peak: 2.0,
        floor: 0.0,
        warmup: 0,
        total: 4,
    };
    assert_eq!(no_warmup.lr(0), 2.0);
    assert!((no_warmup.lr(2) - 1.0).abs() < 1e-7);
}

#[test]
fn step_decay_and_constant_schedules() {
    let s = Schedule::StepDecay {
        lr: 0.8,
        gamma: 0.5,
        every: 3,
    };
    let lr: Vec<f32> = (1..=7).map(|t| s.lr(t)).collect();
    assert_eq!(lr, vec![0.8, 0.8, 0.8, 0.4, 0.4, 0.4, 0.2]);
    assert_eq!(
        Schedule::StepDecay {
            lr: 0.8,
            gamma: 0.5,
            every: 0
        }
        .lr(100),
        0.8
    );
    assert_eq!(Schedule::Constant { lr: 0.3 }.lr(12345), 0.3);
}

#[test]
fn optim_params_struct_matches_its_wgsl_layout() {
    assert_layout(
        &shaders::OPTIM,
        "OptimParams",
        std::mem::size_of::<OptimParams>(),
        offsets!(OptimParams: len, partial_count, first, max_norm, lr, weight_decay, decay, beta1, beta2,
                 one_minus_beta1, one_minus_beta2, eps, step_size, inv_sqrt_bc2, momentum),
    );
}
