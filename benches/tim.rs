//! TIM benches: `tim_forward` and `tim_backward` (gradient rows for every lookup) over a small
//! (B, L, D, M) sweep, each set reading item + category + temporal rows (K = 3 tables).
//!
//! Rates: behaviours/s = B·M·L / t. Effective bandwidth uses the ideal traffic of the fused kernels,
//! every row read once per lookup and every output written once: forward (B·M·(K·(L+1)) + B·M)·D·4
//! bytes (rows, then u); backward (2·B·M·K·(L+1) + B·M)·D·4 (rows read, gradient rows written, dL/du
//! read). The kernels read the rows twice (scores, then weighted sums), so they can exceed neither.
//! The ceiling is a vec4 copy measured in the same run. Each timed iteration records, submits and
//! waits for the device. `benches/torch/tim.py` times the same module in PyTorch on the CPU.
//!
//! `WGREC_BENCH_SMOKE=1` shrinks every size so CI proves the bench runs.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use wgrec::gpu::storage_usage;
use wgrec::kernels::copy::CopyVec4;
use wgrec::kernels::embedding::{EmbeddingStorage, SparseOptimizer, TableSpec};
use wgrec::kernels::run_once;
use wgrec::kernels::tim::{Tim, TimBatch, TimSet, TimSpec};
use wgrec::rng::{Rng, Zipf};
use wgrec::Gpu;

const ITEMS: u32 = 100_000;
const CATS: u32 = 1000;
const BUCKETS: u32 = 64;
const K: u64 = 3;

#[derive(Debug, Clone, Copy)]
struct Shape {
    batch: u32,
    len: u32,
    dim: u32,
    sets: u32,
}

impl Shape {
    fn name(&self) -> String {
        format!("B{}_L{}_D{}_M{}", self.batch, self.len, self.dim, self.sets)
    }
    fn bm(&self) -> u64 {
        self.batch as u64 * self.sets as u64
    }
    fn behaviours(&self) -> u64 {
        self.bm() * self.len as u64
    }
    fn lookups(&self) -> u64 {
        self.bm() * K * (self.len as u64 + 1)
    }
    fn forward_bytes(&self) -> u64 {
        (self.lookups() + self.bm()) * self.dim as u64 * 4
    }
    fn backward_bytes(&self) -> u64 {
        (2 * self.lookups() + self.bm()) * self.dim as u64 * 4
    }
}

fn smoke() -> bool {
    std::env::var("WGREC_BENCH_SMOKE").is_ok_and(|v| v != "0")
}

/// One dimension varied at a time around a base shape (the torch script uses the same list).
fn shapes() -> Vec<Shape> {
    if smoke() {
        let s = Shape {
            batch: 16,
            len: 20,
            dim: 16,
            sets: 1,
        };
        return vec![s, Shape { sets: 2, ..s }];
    }
    let base = Shape {
        batch: 256,
        len: 100,
        dim: 64,
        sets: 1,
    };
    let mut out = vec![base];
    out.extend([20, 500].map(|len| Shape { len, ..base }));
    out.extend([16, 256].map(|dim| Shape { dim, ..base }));
    out.push(Shape { sets: 3, ..base });
    out.push(Shape {
        batch: 1024,
        ..base
    });
    out
}

struct Setup {
    _storage: EmbeddingStorage,
    tim: Tim,
    _buffers: (wgpu::Buffer, wgpu::Buffer),
}

fn setup(gpu: &Gpu, s: &Shape) -> Setup {
    let mut rng = Rng::new(11);
    let tables: Vec<TableSpec> = (0..s.sets)
        .flat_map(|_| [ITEMS, CATS, BUCKETS])
        .map(|rows| TableSpec { rows, width: s.dim })
        .collect();
    let optimizer = SparseOptimizer::RowwiseAdagrad { eps: 1e-8 };
    let storage = EmbeddingStorage::new(gpu, &tables, optimizer, None).expect("storage");
    for (t, spec) in tables.iter().enumerate() {
        let w: Vec<f32> = (0..spec.rows as usize * s.dim as usize)
            .map(|_| rng.uniform(-0.05, 0.05))
            .collect();
        storage.write_weights(gpu, t, &w).expect("init");
    }
    let spec = TimSpec {
        sets: (0..s.sets as usize)
            .map(|m| TimSet {
                semantic: vec![3 * m, 3 * m + 1],
                temporal: Some(3 * m + 2),
            })
            .collect(),
        max_batch: s.batch,
        max_len: s.len,
    };
    let n = s.bm() * s.dim as u64 * 4;
    let u = gpu.buffer("u", n, storage_usage());
    let g: Vec<f32> = (0..n / 4).map(|_| rng.uniform(-1.0, 1.0)).collect();
    let grad_u = gpu.storage_from("grad_u", &g);
    let mut tim = Tim::new(gpu, &storage, spec, &u, &grad_u).expect("tim");
    // Zipf items scattered over the table (hot items are not neighbours), uniform categories.
    let zipf = Zipf::new(ITEMS as u64, 1.05);
    let item = |rng: &mut Rng| ((zipf.sample(rng) * 2_654_435_761) % ITEMS as u64) as u32;
    let total = s.batch * s.len;
    let ids = |n: u32, rng: &mut Rng| -> Vec<u32> {
        (0..n)
            .flat_map(|_| [item(rng), rng.below(CATS as u64) as u32])
            .collect()
    };
    let batch = TimBatch {
        lengths: vec![s.len; s.batch as usize],
        target: ids(s.batch, &mut rng),
        behaviours: ids(total, &mut rng),
        buckets: (0..total)
            .map(|i| (s.len - i % s.len).min(BUCKETS - 1))
            .collect(),
    };
    tim.upload(gpu, &storage, &batch).expect("upload");
    Setup {
        _storage: storage,
        tim,
        _buffers: (u, grad_u),
    }
}

/// One bench id's ideal bytes, behaviours and per-iteration seconds.
type Samples = (String, u64, u64, Vec<f64>);

/// Median seconds per iteration, per bench id, collected while criterion measures.
static MEDIANS: Mutex<Vec<Samples>> = Mutex::new(Vec::new());

fn bench_one(
    c: &mut Criterion,
    gpu: &Gpu,
    id: String,
    (bytes, behaviours): (u64, u64),
    record: &dyn Fn(&mut wgpu::ComputePass<'_>),
) {
    let mut group = c.benchmark_group("tim");
    group.throughput(Throughput::Bytes(bytes));
    let mut samples = Vec::new();
    group.bench_function(&id, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                run_once(gpu, record);
                gpu.sync().expect("device");
                let d = start.elapsed();
                total += d;
                samples.push(d.as_secs_f64());
            }
            total
        })
    });
    group.finish();
    let mut all = MEDIANS.lock().expect("medians");
    all.push((id, bytes, behaviours, samples));
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

fn tim(c: &mut Criterion) {
    let gpu = Gpu::new().expect("a GPU adapter (lavapipe will do)");
    eprintln!("adapter: {}", gpu.describe());
    let copy_bytes = if smoke() { 1 << 20 } else { 64 << 20 };
    let copy = CopyVec4::new(&gpu, copy_bytes).expect("copy");
    let ceiling = (copy.traffic_bytes(), 0);
    bench_one(c, &gpu, "copy_ceiling".into(), ceiling, &|p| {
        copy.record(&gpu, p)
    });
    for s in shapes() {
        let setup = setup(&gpu, &s);
        let t = &setup.tim;
        let fwd = (s.forward_bytes(), s.behaviours());
        bench_one(c, &gpu, format!("forward/{}", s.name()), fwd, &|p| {
            t.record_forward(&gpu, p)
        });
        let bwd = (s.backward_bytes(), s.behaviours());
        bench_one(c, &gpu, format!("backward/{}", s.name()), bwd, &|p| {
            t.record_backward(&gpu, p)
        });
    }
    summary(&gpu);
}

fn summary(gpu: &Gpu) {
    let mut rows = MEDIANS.lock().expect("medians");
    let rates: Vec<(String, f64, f64, f64)> = rows
        .iter_mut()
        .filter(|r| !r.3.is_empty())
        .map(|(id, bytes, behaviours, samples)| {
            let t = median(samples);
            (
                id.clone(),
                t,
                *bytes as f64 / t / 1e9,
                *behaviours as f64 / t,
            )
        })
        .collect();
    let ceiling = rates
        .iter()
        .find(|r| r.0 == "copy_ceiling")
        .map_or(f64::NAN, |r| r.2);
    println!("\nadapter: {}", gpu.describe());
    println!(
        "{:<32} {:>10} {:>13} {:>8} {:>8}",
        "kernel/shape", "median ms", "behaviours/s", "GB/s", "of copy"
    );
    for (id, t, rate, per_s) in &rates {
        println!(
            "{:<32} {:>10.3} {:>13.3e} {:>8.2} {:>7.1}%",
            id,
            t * 1e3,
            per_s,
            rate,
            100.0 * rate / ceiling
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(if smoke() { 1 } else { 2 }));
    targets = tim
}
criterion_main!(benches);
