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
//! `WGREC_BENCH_SMOKE=1` shrinks every size so CI proves the bench runs (`cargo test --benches`).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use wgrec::gpu::PassTimer;
use wgrec::kernels::dense::fma::FmaCeiling;
use wgrec::kernels::dense::gemm::{Gemm, GemmSpec};
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

/// Per bench id: FLOPs per iteration and the seconds of each timed iteration.
static SAMPLES: Mutex<Vec<(String, u64, Vec<f64>)>> = Mutex::new(Vec::new());

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
    flops: u64,
    record: &dyn Fn(&mut wgpu::ComputePass<'_>),
) {
    let mut group = c.benchmark_group("dense");
    // Flat: the same iteration count per sample; linear sampling would run 55 iterations of a
    // multi-second GEMM.
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(flops));
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
        .push((id.to_string(), flops, samples));
}

fn dense(c: &mut Criterion) {
    let gpu = Gpu::new().expect("a GPU adapter (lavapipe will do)");
    let timer = PassTimer::new(&gpu);
    eprintln!("adapter: {}", gpu.describe());
    let (invocations, iters) = if smoke() { (1024, 256) } else { (16384, 4096) };
    let fma = FmaCeiling::new(&gpu, invocations, iters).expect("fma");
    bench_one(c, &gpu, timer.as_ref(), "fma_ceiling", fma.flops(), &|p| {
        fma.record(&gpu, p)
    });
    for (id, tables, m, n, k, ta, tb) in shapes() {
        let spec = GemmSpec::new(tables, m, n, k, ta, tb);
        let fill =
            |label, elems: u64, v: f32| gpu.storage_from::<f32>(label, &vec![v; elems as usize]);
        let a = fill("a", tables as u64 * m as u64 * k as u64, 0.01);
        let b = fill("b", tables as u64 * k as u64 * n as u64, 0.02);
        let out = fill("c", tables as u64 * m as u64 * n as u64, 0.0);
        let gemm = Gemm::new(&gpu, &spec, &a, &b, None, None, &out).expect("gemm");
        bench_one(c, &gpu, timer.as_ref(), &id, gemm.flops(), &|p| {
            gemm.record(&gpu, p)
        });
    }
    summary(&gpu, timer.is_some());
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn summary(gpu: &Gpu, timestamps: bool) {
    let mut rows = SAMPLES.lock().expect("samples");
    let rates: Vec<(String, f64, f64)> = rows
        .iter_mut()
        .filter(|(_, _, s)| !s.is_empty()) // benches a filter left out
        .map(|(id, flops, s)| {
            let t = median(s);
            (id.clone(), t, *flops as f64 / t / 1e9)
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
        "{:<20} {:>11} {:>9} {:>8}",
        "kernel/shape", "median ms", "GFLOP/s", "of FMA"
    );
    for (id, t, rate) in &rates {
        println!(
            "{:<20} {:>11.3} {:>9.2} {:>7.1}%",
            id,
            t * 1e3,
            rate,
            100.0 * rate / ceiling
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
