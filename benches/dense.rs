//! Dense-kernel benches: GEMM GFLOP/s on CTR shapes beside the FMA-throughput ceiling measured in
//! the same run.
//!
//! Shapes (B = 4096 samples, M ∈ {1, 2, 4, 8} tables batched in one dispatch, one weight per
//! table): forward `Y = X · Wᵀ` of 400 → 400 (`fwd_400`), and of F·K → F·K for F·K ∈ {160, 390}
//! (`fwd_160`, `fwd_390`); the backward forms of the 400 layer at M = 1 and 8: `dX = dY · W`
//! (`dx_400`) and `dW = dYᵀ · X` (`dw_400`). FLOPs are 2·M·m·n·k. Each timed iteration records,
//! submits and waits for one pass; the time is the pass's GPU timestamps where the adapter has
//! them, else the wall clock around submit + wait. The summary prints medians and % of the FMA
//! ceiling.
//!
//! Experts (`expert/<kind>/M<t>/fwd` and `/train` = forward + backward): every expert family over
//! M ∈ {1, 4} tables of F = 16 fields × K = 10 (F·K = 160), B = 1024 rows, ReLU after the
//! interaction: DCNv2 full rank (2 layers) and rank 32, FM, FwFM, GwPFM (G = 4), IPNN, and an MLP
//! 160 → 256 → 128. Reported as samples/s (rows × tables per second), and for the GEMM-based
//! experts also as GFLOP/s against the FMA ceiling. `benches/torch/experts.py` runs the same
//! modules in PyTorch on the same shapes for the ratio.
//!
//! `WGREC_BENCH_SMOKE=1` shrinks every size so CI proves the bench runs (`cargo test --benches`).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use wgrec::gpu::PassTimer;
use wgrec::kernels::dense::expert::{Expert, ExpertKind, ExpertSpec};
use wgrec::kernels::dense::fma::FmaCeiling;
use wgrec::kernels::dense::gemm::{Gemm, GemmSpec};
use wgrec::kernels::dense::pairwise::PairwiseKind;
use wgrec::rng::Rng;
use wgrec::Gpu;

fn smoke() -> bool {
    std::env::var("WGREC_BENCH_SMOKE").is_ok_and(|v| v != "0")
}

/// (name, tables, m, n, k, trans_a, trans_b)
type Shape = (String, u32, u32, u32, u32, bool, bool);

fn shapes() -> Vec<Shape> {
    let (batch, wide, fks, tables): (u32, u32, [u32; 2], &[u32]) = if smoke() {
        (64, 40, [16, 39], &[1, 2])
    } else {
        (4096, 400, [160, 390], &[1, 2, 4, 8])
    };
    let mut out = Vec::new();
    for (name, width) in [("fwd_400", wide), ("fwd_160", fks[0]), ("fwd_390", fks[1])] {
        for &t in tables {
            out.push((format!("{name}/M{t}"), t, batch, width, width, false, true));
        }
    }
    for t in [1, *tables.last().expect("tables")] {
        out.push((format!("dx_400/M{t}"), t, batch, wide, wide, false, false));
        out.push((format!("dw_400/M{t}"), t, wide, wide, batch, true, false));
    }
    out
}

/// The expert benches: (name, kind), F = 16, K = 10, B = 1024, M ∈ {1, 4}.
fn experts() -> Vec<(&'static str, ExpertKind)> {
    let (fields, blocks) = if smoke() { (5, 2) } else { (16, 4) };
    vec![
        (
            "dcn_l2",
            ExpertKind::Dcn {
                layers: 2,
                rank: None,
            },
        ),
        (
            "dcn_l2_r32",
            ExpertKind::Dcn {
                layers: 2,
                rank: Some(if smoke() { 4 } else { 32 }),
            },
        ),
        ("fm", ExpertKind::Pairwise(PairwiseKind::Fm)),
        ("fwfm", ExpertKind::Pairwise(PairwiseKind::FwFm)),
        (
            "gwpfm_g4",
            ExpertKind::Pairwise(PairwiseKind::GwPfm {
                blocks,
                partition: (0..fields).map(|f| f % blocks).collect(),
            }),
        ),
        ("ipnn", ExpertKind::Pairwise(PairwiseKind::Ipnn)),
        (
            "mlp_256_128",
            ExpertKind::Mlp {
                widths: if smoke() { vec![8, 4] } else { vec![256, 128] },
            },
        ),
    ]
}

/// FLOPs of an expert's GEMMs (forward, forward + backward), or `None` when it is not GEMM-bound.
fn expert_flops(spec: &ExpertSpec) -> Option<(u64, u64)> {
    let (t, b, d) = (
        spec.tables as u64,
        spec.rows_cap as u64,
        spec.in_cols() as u64,
    );
    let fwd = match &spec.kind {
        ExpertKind::Dcn { layers, rank } => {
            let per = match rank {
                None => 2 * d * d,
                Some(r) => 4 * d * *r as u64,
            };
            t * *layers as u64 * b * per
        }
        ExpertKind::Mlp { widths } => {
            let mut fan_in = d;
            let mut f = 0;
            for &w in widths {
                f += 2 * t * b * fan_in * w as u64;
                fan_in = w as u64;
            }
            f
        }
        ExpertKind::Pairwise(_) => return None,
    };
    // The backward's GEMMs (dW and dX) cost twice the forward's.
    Some((fwd, 3 * fwd))
}

/// Per bench id: FLOPs per iteration (0: not GEMM-bound), samples per iteration, and the seconds
/// of each timed iteration.
static SAMPLES: Mutex<Vec<Sample>> = Mutex::new(Vec::new());

/// (bench id, FLOPs per iteration, samples per iteration, seconds of each timed iteration)
type Sample = (String, u64, u64, Vec<f64>);

fn run(
    gpu: &Gpu,
    timer: Option<&PassTimer>,
    record: &dyn Fn(&mut wgpu::ComputePass<'_>),
) -> Duration {
    let start = Instant::now();
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("bench"),
            timestamp_writes: timer.map(PassTimer::writes),
        });
        record(&mut pass);
    }
    if let Some(t) = timer {
        t.resolve(&mut encoder);
    }
    gpu.queue.submit([encoder.finish()]);
    gpu.sync().expect("device");
    let wall = start.elapsed();
    match timer {
        Some(t) => Duration::from_nanos(t.elapsed_ns(gpu).expect("timestamps") as u64),
        None => wall,
    }
}

fn bench_one(
    c: &mut Criterion,
    gpu: &Gpu,
    timer: Option<&PassTimer>,
    id: &str,
    (flops, samples_per_iter): (u64, u64),
    record: &dyn Fn(&mut wgpu::ComputePass<'_>),
) {
    let mut group = c.benchmark_group("dense");
    // Flat: the same iteration count per sample; linear sampling would run 55 iterations of a
    // multi-second GEMM.
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(if flops > 0 {
        flops
    } else {
        samples_per_iter
    }));
    let mut samples = Vec::new();
    group.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let d = run(gpu, timer, record);
                samples.push(d.as_secs_f64());
                total += d;
            }
            total
        })
    });
    group.finish();
    SAMPLES
        .lock()
        .expect("samples")
        .push((id.to_string(), flops, samples_per_iter, samples));
}

fn dense(c: &mut Criterion) {
    let gpu = Gpu::new().expect("a GPU adapter (lavapipe will do)");
    let timer = PassTimer::new(&gpu);
    eprintln!("adapter: {}", gpu.describe());
    let (invocations, iters) = if smoke() { (1024, 256) } else { (16384, 4096) };
    let fma = FmaCeiling::new(&gpu, invocations, iters).expect("fma");
    bench_one(
        c,
        &gpu,
        timer.as_ref(),
        "fma_ceiling",
        (fma.flops(), 0),
        &|p| fma.record(&gpu, p),
    );
    for (id, tables, m, n, k, ta, tb) in shapes() {
        let spec = GemmSpec::new(tables, m, n, k, ta, tb);
        let fill =
            |label, elems: u64, v: f32| gpu.storage_from::<f32>(label, &vec![v; elems as usize]);
        let a = fill("a", tables as u64 * m as u64 * k as u64, 0.01);
        let b = fill("b", tables as u64 * k as u64 * n as u64, 0.02);
        let out = fill("c", tables as u64 * m as u64 * n as u64, 0.0);
        let gemm = Gemm::new(&gpu, &spec, &a, &b, None, None, &out).expect("gemm");
        bench_one(c, &gpu, timer.as_ref(), &id, (gemm.flops(), 0), &|p| {
            gemm.record(&gpu, p)
        });
    }
    let (rows, fields, dim, tables): (u32, u32, u32, &[u32]) = if smoke() {
        (32, 5, 4, &[1, 2])
    } else {
        (1024, 16, 10, &[1, 4])
    };
    let mut rng = Rng::new(7);
    for (name, kind) in experts() {
        for &t in tables {
            let spec = ExpertSpec {
                kind: kind.clone(),
                tables: t,
                rows_cap: rows,
                fields,
                dim,
                relu: true,
            };
            let mut input = |label| {
                let n = (t * rows * spec.in_cols()) as usize;
                gpu.storage_from::<f32>(
                    label,
                    &(0..n).map(|_| rng.uniform(-1.0, 1.0)).collect::<Vec<_>>(),
                )
            };
            let x = input("x");
            let dx = input("dx");
            let expert = Expert::new(&gpu, &spec, &x, &dx).expect("expert");
            expert.init(&gpu, &mut rng);
            let out = (t * rows * spec.out_cols()) as usize;
            let dy: Vec<f32> = (0..out).map(|_| rng.uniform(-1.0, 1.0)).collect();
            gpu.queue
                .write_buffer(expert.grad_output(), 0, bytemuck::cast_slice(&dy));
            let (fwd_flops, train_flops) = expert_flops(&spec).unwrap_or((0, 0));
            let per_iter = t as u64 * rows as u64;
            bench_one(
                c,
                &gpu,
                timer.as_ref(),
                &format!("expert/{name}/M{t}/fwd"),
                (fwd_flops, per_iter),
                &|p| expert.record_forward(&gpu, p),
            );
            bench_one(
                c,
                &gpu,
                timer.as_ref(),
                &format!("expert/{name}/M{t}/train"),
                (train_flops, per_iter),
                &|p| {
                    expert.record_forward(&gpu, p);
                    expert.record_backward(&gpu, p);
                },
            );
        }
    }
    summary(&gpu, timer.is_some());
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn summary(gpu: &Gpu, timestamps: bool) {
    let mut rows = SAMPLES.lock().expect("samples");
    let rates: Vec<(String, f64, f64, f64)> = rows
        .iter_mut()
        .filter(|(_, _, _, s)| !s.is_empty()) // benches a filter left out
        .map(|(id, flops, per_iter, s)| {
            let t = median(s);
            (id.clone(), t, *flops as f64 / t / 1e9, *per_iter as f64 / t)
        })
        .collect();
    let ceiling = rates
        .iter()
        .find(|r| r.0 == "fma_ceiling")
        .map_or(f64::NAN, |r| r.2);
    println!("\nadapter: {}", gpu.describe());
    let clock = if timestamps {
        "GPU timestamps"
    } else {
        "wall clock"
    };
    println!("clock: {clock}");
    println!(
        "{:<30} {:>11} {:>9} {:>8} {:>12}",
        "kernel/shape", "median ms", "GFLOP/s", "of FMA", "samples/s"
    );
    for (id, t, rate, per_s) in &rates {
        let (gflops, share) = if *rate > 0.0 {
            (
                format!("{rate:.2}"),
                format!("{:.1}%", 100.0 * rate / ceiling),
            )
        } else {
            ("-".into(), "-".into())
        };
        let samples = if *per_s > 0.0 {
            format!("{per_s:.0}")
        } else {
            "-".into()
        };
        println!(
            "{:<30} {:>11.3} {:>9} {:>8} {:>12}",
            id,
            t * 1e3,
            gflops,
            share,
            samples
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(if smoke() { 100 } else { 500 }))
        .measurement_time(Duration::from_secs(if smoke() { 1 } else { 3 }));
    targets = dense
}
criterion_main!(benches);
