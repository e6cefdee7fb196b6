//! Embedding kernel benches: the table-batched gather (`tbe_forward`) and the fused backward +
//! row-wise Adagrad (`tbe_update`), swept over tables, rows, width, batch, bag length and Zipf α.
//!
//! Effective bandwidth uses FBGEMM's ideal-traffic definition: every looked-up row is read once per
//! lookup and every output written once (forward: (B·T·L + B·T)·D·4 bytes); the update reads the
//! output gradient once and reads and writes a row once per lookup (B·T·D·4 + 2·B·T·L·D·4). The
//! ceiling is a vec4 copy kernel measured in the same run; the summary prints the ratio. Each timed
//! iteration records, submits and waits for the device (synchronised inside the timed region).
//!
//! `WGREC_BENCH_SMOKE=1` shrinks every size so CI proves the benches run (`cargo test --benches`
//! runs each once).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use wgrec::kernels::copy::CopyVec4;
use wgrec::kernels::embedding::{
    Bags, EmbeddingStorage, FeatureSet, Pooling, SparseOptimizer, SparseStep, SparseUpdatePlan,
    TableSpec, TbeForward, TbeUpdate,
};
use wgrec::kernels::run_once;
use wgrec::rng::{Rng, Zipf};
use wgrec::Gpu;

#[derive(Debug, Clone, Copy)]
struct Shape {
    tables: u32,
    rows: u32,
    width: u32,
    batch: u32,
    bag: u32,
    alpha: f64,
}

impl Shape {
    fn name(&self) -> String {
        format!(
            "T{}_R{}_D{}_B{}_L{}_a{}",
            self.tables, self.rows, self.width, self.batch, self.bag, self.alpha
        )
    }
    fn forward_bytes(&self) -> u64 {
        let bt = self.batch as u64 * self.tables as u64;
        (bt * self.bag as u64 + bt) * self.width as u64 * 4
    }
    fn update_bytes(&self) -> u64 {
        let bt = self.batch as u64 * self.tables as u64;
        (bt + 2 * bt * self.bag as u64) * self.width as u64 * 4
    }
}

fn smoke() -> bool {
    std::env::var("WGREC_BENCH_SMOKE").is_ok_and(|v| v != "0")
}

/// One dimension varied at a time around a base shape.
fn shapes() -> Vec<Shape> {
    if smoke() {
        let s = Shape {
            tables: 2,
            rows: 1000,
            width: 16,
            batch: 64,
            bag: 4,
            alpha: 1.05,
        };
        return vec![s, Shape { alpha: 0.0, ..s }];
    }
    let base = Shape {
        tables: 8,
        rows: 100_000,
        width: 64,
        batch: 2048,
        bag: 8,
        alpha: 1.05,
    };
    let mut out = vec![base];
    out.extend([1, 16].map(|tables| Shape { tables, ..base }));
    out.extend([10_000, 200_000].map(|rows| Shape { rows, ..base }));
    out.extend([16, 128].map(|width| Shape { width, ..base }));
    out.extend([512, 8192].map(|batch| Shape { batch, ..base }));
    out.extend([1, 32].map(|bag| Shape { bag, ..base }));
    out.extend([0.0, 1.5].map(|alpha| Shape { alpha, ..base }));
    out
}

struct Setup {
    storage: EmbeddingStorage,
    forward: TbeForward,
    update: TbeUpdate,
}

fn setup(gpu: &Gpu, s: &Shape) -> Setup {
    let tables = vec![
        TableSpec {
            rows: s.rows,
            width: s.width
        };
        s.tables as usize
    ];
    let optimizer = SparseOptimizer::RowwiseAdagrad { eps: 1e-8 };
    let storage = EmbeddingStorage::new(gpu, &tables, optimizer, None).expect("storage");
    let mut rng = Rng::new(7);
    for t in 0..tables.len() {
        let w: Vec<f32> = (0..s.rows as usize * s.width as usize)
            .map(|_| rng.uniform(-0.05, 0.05))
            .collect();
        storage.write_weights(gpu, t, &w).expect("init");
    }
    let features: Vec<_> = (0..s.tables as usize)
        .map(|t| (t, Pooling::Sum, vec![]))
        .collect();
    let fs = FeatureSet::concatenated(&storage.layout, &features, s.batch, 1).expect("features");
    let lookups = s.batch as u64 * s.tables as u64 * s.bag as u64;
    let mut forward = TbeForward::new(gpu, &storage, fs.clone(), lookups).expect("forward");
    let zipf = Zipf::new(s.rows as u64, s.alpha);
    // Scatter Zipf ranks over the table so hot rows are not neighbours (as real hashed ids are not).
    let scatter = |r: u64| ((r * 2_654_435_761) % s.rows as u64) as u32;
    let bags = Bags {
        batch_size: s.batch,
        offsets: (0..=s.batch * s.tables).map(|i| i * s.bag).collect(),
        indices: (0..lookups)
            .map(|_| scatter(zipf.sample(&mut rng)))
            .collect(),
        weights: None,
    };
    forward.upload(gpu, &storage, &bags).expect("upload");
    let grad: Vec<f32> = (0..fs.out_len).map(|_| rng.uniform(-1.0, 1.0)).collect();
    let grad = gpu.storage_from("grad", &grad);
    let mut update = TbeUpdate::new(gpu, &storage, &forward, &grad, lookups).expect("update");
    let plan = SparseUpdatePlan::build(&fs, &bags);
    let step = SparseStep {
        lr: 0.01,
        weight_decay: 0.0,
        step: 1,
    };
    update.upload(gpu, &forward, &plan, step).expect("plan");
    Setup {
        storage,
        forward,
        update,
    }
}

/// Median seconds per iteration, per bench id, collected while criterion measures.
static MEDIANS: Mutex<Vec<(String, u64, Vec<f64>)>> = Mutex::new(Vec::new());

fn timed(
    gpu: &Gpu,
    iters: u64,
    record: &dyn Fn(&mut wgpu::ComputePass<'_>),
) -> (Duration, Vec<f64>) {
    let mut total = Duration::ZERO;
    let mut each = Vec::with_capacity(iters as usize);
    for _ in 0..iters {
        let start = Instant::now();
        run_once(gpu, record);
        gpu.sync().expect("device");
        let d = start.elapsed();
        total += d;
        each.push(d.as_secs_f64());
    }
    (total, each)
}

fn bench_one(
    c: &mut Criterion,
    gpu: &Gpu,
    id: String,
    bytes: u64,
    record: &dyn Fn(&mut wgpu::ComputePass<'_>),
) {
    let mut group = c.benchmark_group("embedding");
    group.throughput(Throughput::Bytes(bytes));
    let mut samples = Vec::new();
    group.bench_function(&id, |b| {
        b.iter_custom(|iters| {
            let (total, each) = timed(gpu, iters, record);
            samples.extend(each);
            total
        })
    });
    group.finish();
    MEDIANS.lock().expect("medians").push((id, bytes, samples));
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

fn embedding(c: &mut Criterion) {
    let gpu = Gpu::new().expect("a GPU adapter (lavapipe will do)");
    eprintln!("adapter: {}", gpu.describe());
    let copy_bytes = if smoke() { 1 << 20 } else { 64 << 20 };
    let copy = CopyVec4::new(&gpu, copy_bytes).expect("copy");
    bench_one(c, &gpu, "copy_ceiling".into(), copy.traffic_bytes(), &|p| {
        copy.record(&gpu, p)
    });
    for s in shapes() {
        let setup = setup(&gpu, &s);
        let (f, u) = (&setup.forward, &setup.update);
        bench_one(
            c,
            &gpu,
            format!("forward/{}", s.name()),
            s.forward_bytes(),
            &|p| f.record(&gpu, p),
        );
        bench_one(
            c,
            &gpu,
            format!("update_adagrad/{}", s.name()),
            s.update_bytes(),
            &|p| u.record(&gpu, p),
        );
        drop(setup.storage);
    }
    summary(&gpu);
}

fn summary(gpu: &Gpu) {
    let mut rows = MEDIANS.lock().expect("medians");
    let rates: Vec<(String, f64, f64)> = rows
        .iter_mut()
        .filter(|(_, _, samples)| !samples.is_empty()) // benches a filter left out
        .map(|(id, bytes, samples)| {
            let t = median(samples);
            (id.clone(), t, *bytes as f64 / t / 1e9)
        })
        .collect();
    let ceiling = rates
        .iter()
        .find(|r| r.0 == "copy_ceiling")
        .map_or(f64::NAN, |r| r.2);
    println!("\nadapter: {}", gpu.describe());
    println!(
        "{:<52} {:>11} {:>9} {:>8}",
        "kernel/shape", "median ms", "GB/s", "of copy"
    );
    for (id, t, rate) in &rates {
        println!(
            "{:<52} {:>11.3} {:>9.2} {:>7.1}%",
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
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(if smoke() { 1 } else { 3 }));
    targets = embedding
}
criterion_main!(benches);
