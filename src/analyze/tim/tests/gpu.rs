//! The host recompute of α (`attention.rs`) against the model's own TIM kernel: `tim_forward` runs
//! on a seeded batch over two table sets, and u = (Σ_i α_i ẽ_i) ⊙ ṽ rebuilt from the host α must
//! match the GPU's u. If the host used another scale, forgot the temporal rows or the target's
//! bucket 0, or softmaxed differently, u would differ far beyond the tolerance.

use super::Tables;
use crate::gpu::{storage_usage, Gpu};
use crate::kernels::embedding::{EmbeddingStorage, SparseOptimizer, TableSpec};
use crate::kernels::run_once;
use crate::kernels::tim::{Tim, TimBatch, TimSet, TimSpec};
use crate::rng::Rng;

/// D = 20: not a power of two (the kernel's vec4 lanes do not divide evenly into 64).
const D: usize = 20;
/// Sequence lengths: empty, one, odd, long (past one 64-lane sweep), and past 3 sweeps.
const LENGTHS: [u32; 6] = [0, 1, 7, 50, 3, 200];
/// u comes from f32 dot products of 3·20 terms, an f32 exp and softmax-weighted sums of up to 200
/// rows: each term carries a few ulps and the sums ~1e-5 of their magnitude (Σ α_i |ẽ_ij| |ṽ_j|);
/// 1e-4 relative leaves an order of margin, the absolute part covers terms cancelling to ~0.
const RELATIVE: f64 = 1e-4;
const ABSOLUTE: f64 = 1e-6;

fn gpu() -> &'static Gpu {
    static GPU: std::sync::OnceLock<Gpu> = std::sync::OnceLock::new();
    GPU.get_or_init(|| match Gpu::new() {
        Ok(gpu) => gpu,
        Err(e) => panic!("this test needs a GPU adapter (lavapipe will do): {e}"),
    })
}

fn random_batch(rng: &mut Rng) -> TimBatch {
    let total: u32 = LENGTHS.iter().sum();
    let ids = |n: u32, rng: &mut Rng| -> Vec<u32> {
        (0..n)
            .flat_map(|_| [rng.below(10) as u32, rng.below(4) as u32])
            .collect()
    };
    TimBatch {
        lengths: LENGTHS.to_vec(),
        target: ids(LENGTHS.len() as u32, rng),
        behaviours: ids(total, rng),
        buckets: (0..total).map(|_| 1 + rng.below(4) as u32).collect(),
    }
}

/// The GPU's u `[2, max_batch, D]` for `batch` over the two sets' tables.
fn gpu_u(sets: &[Tables; 2], batch: &TimBatch, max_batch: u32) -> Vec<f32> {
    let gpu = gpu();
    let specs: Vec<TableSpec> = (0..2)
        .flat_map(|_| [10, 4, 5])
        .map(|rows| TableSpec {
            rows,
            width: D as u32,
        })
        .collect();
    let storage = EmbeddingStorage::new(gpu, &specs, SparseOptimizer::Sgd, None).expect("storage");
    for (m, t) in sets.iter().enumerate() {
        for (k, data) in [&t.item, &t.genre, &t.time].into_iter().enumerate() {
            storage.write_weights(gpu, 3 * m + k, data).expect("write");
        }
    }
    let spec = TimSpec {
        sets: (0..2)
            .map(|m| TimSet {
                semantic: vec![3 * m, 3 * m + 1],
                temporal: Some(3 * m + 2),
            })
            .collect(),
        max_batch,
        max_len: 256,
    };
    let n = 2 * max_batch as u64 * D as u64;
    let u = gpu.buffer("u", n * 4, storage_usage());
    let grad_u = gpu.buffer("grad_u", n * 4, storage_usage());
    let mut tim = Tim::new(gpu, &storage, spec, &u, &grad_u).expect("tim");
    tim.upload(gpu, &storage, batch).expect("upload");
    let nan = vec![f32::NAN; n as usize];
    gpu.queue.write_buffer(&u, 0, bytemuck::cast_slice(&nan));
    run_once(gpu, |pass| tim.record_forward(gpu, pass));
    gpu.sync().expect("gpu");
    gpu.read_all::<f32>(&u).expect("read u")
}

#[test]
fn host_attention_reproduces_the_gpu_tim_output() {
    let mut rng = Rng::new(2024);
    let sets = [Tables::random(31, D), Tables::random(32, D)];
    let batch = random_batch(&mut rng);
    let max_batch = 8;
    let u = gpu_u(&sets, &batch, max_batch);
    let mut alpha = Vec::new();
    for (m, tables) in sets.iter().enumerate() {
        let rows = tables.rows();
        let mut first = 0;
        for (b, &len) in LENGTHS.iter().enumerate() {
            let span = first..first + len as usize;
            first = span.end;
            let target = &batch.target[2 * b..2 * b + 2];
            let ids = &batch.behaviours[2 * span.start..2 * span.end];
            let buckets = &batch.buckets[span];
            let v = rows.embed(target, 0).expect("target");
            rows.attention(&v, ids, buckets, &mut alpha).expect("alpha");
            assert_eq!(alpha.len(), len as usize);
            let (mut a, mut mag) = (vec![0.0; D], vec![0.0; D]);
            for (i, &w) in alpha.iter().enumerate() {
                let e = rows.embed(&ids[2 * i..2 * i + 2], buckets[i]).expect("row");
                for j in 0..D {
                    a[j] += w * e[j];
                    mag[j] += w * e[j].abs();
                }
            }
            let at = (m * max_batch as usize + b) * D;
            for j in 0..D {
                let (got, want) = (u[at + j] as f64, a[j] * v[j]);
                let bound = ABSOLUTE + RELATIVE * mag[j] * v[j].abs();
                assert!(
                    (got - want).abs() <= bound,
                    "set {m} sample {b} (L = {len}) u[{j}]: gpu {got} vs host {want}"
                );
            }
        }
    }
    // The empty sequence gives u = 0 on both sides (no NaN left from the poison).
    assert!(u[..D].iter().all(|&x| x == 0.0), "{:?}", &u[..D]);
}
