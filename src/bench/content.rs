//! The content-feature kernels of the suite (METHODS.md §1.3, §1.4): SimHash over a content table
//! and the per-batch bucketed similarity, each beside the ceiling of what bounds it.
//!
//! SimHash runs `bits` dot products of width D per vector against planes that stay in cache:
//! arithmetic-bound, reported in GFLOP/s (2·n·D·bits) against the FMA ceiling. The similarity
//! reads two rows per sample and writes a word per copy: memory-bound, reported in GB/s (the ideal
//! traffic: both rows, the pair, the copies) against the copy ceiling.

use super::suite::{figure, Random};
use super::{BenchResult, Runner, Unit};
use crate::error::Result;
use crate::gpu::storage_usage;
use crate::kernels::content::{hyperplanes, Measure, SimHash, SimilarityOp};
use crate::rng::Rng;

/// SimHash codes of `n` content vectors.
pub(super) fn simhash(runner: &Runner, q: bool, random: Random<'_>) -> Result<BenchResult> {
    let gpu = runner.gpu;
    let (n, dim, bits) = if q {
        (8_192u32, 64usize, 32u32)
    } else {
        (131_072, 64, 32)
    };
    let hash = SimHash::new(gpu, dim, bits, &hyperplanes(1, bits, dim))?;
    let vectors = gpu.storage_from("bench simhash vectors", &random(n as u64 * dim as u64));
    let codes = gpu.buffer("bench simhash codes", n as u64 * 4, storage_usage());
    let launch = hash.launch(gpu, &vectors, &codes, n)?;
    let s = runner.time(&|p| launch.record(gpu, p))?;
    Ok(figure(
        "content_simhash",
        format!("{n} vectors × {dim}, {bits} bits"),
        s,
        2.0 * n as f64 * dim as f64 * bits as f64,
        Unit::GflopPerS,
    ))
}

/// The bucketed cosine of a batch of (user, item) pairs, written into two copies.
pub(super) fn similarity(runner: &Runner, q: bool, random: Random<'_>) -> Result<BenchResult> {
    let gpu = runner.gpu;
    let (rows, dim, batch) = if q {
        (10_000u32, 64usize, 512u32)
    } else {
        (100_000, 64, 4096)
    };
    let users = random(rows as u64 * dim as u64);
    let items = random(rows as u64 * dim as u64);
    let boundaries: Vec<f32> = (1..1024).map(|k| k as f32 / 512.0 - 1.0).collect();
    let target = gpu.buffer("bench similarity target", batch as u64 * 8, storage_usage());
    let op = SimilarityOp::new(
        gpu,
        &users,
        &items,
        dim,
        Measure::Cosine,
        &boundaries,
        batch,
        &target,
        2,
    )?;
    let mut rng = Rng::new(12);
    let pairs: Vec<[u32; 2]> = (0..batch)
        .map(|_| [rng.below(rows as u64) as u32, rng.below(rows as u64) as u32])
        .collect();
    op.set_batch(gpu, &pairs, &[0, batch])?;
    let s = runner.time(&|p| op.record(gpu, p))?;
    let bytes = batch as u64 * (2 * dim as u64 * 4 + 8 + 2 * 4);
    Ok(figure(
        "content_similarity",
        format!("{rows} users and items × {dim}, batch {batch}, cosine, 1023 boundaries, 2 copies"),
        s,
        bytes as f64,
        Unit::GbPerS,
    ))
}
