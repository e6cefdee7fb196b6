//! Gram matrices `G = EᵀE` of field matrices on the GPU with the existing GEMM
//! ([`crate::kernels::dense::gemm`], `trans_a`), and the f64 host reference.
//!
//! The rows of every matrix are cut into chunks of [`CHUNK_ROWS`] (the last padded with zero rows,
//! which add exactly nothing), and all chunks of all matrices of one call are the tables of one
//! strided-batched GEMM: table `t` computes its chunk's `D × D` Gram. The host sums the chunk
//! Grams in f64. Chunking does two things: each f32 sum has at most [`CHUNK_ROWS`] terms, so an
//! entry's error is bounded by `CHUNK_ROWS · ε₃₂ · Σ_p |E_pi E_pj|` whatever the number of rows
//! (the tolerance the tests use), and a matrix larger than a storage binding (128 MiB on lavapipe)
//! is split over several launches, each under the device's binding and workgroup-grid limits.

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::kernels::dense::gemm::{Gemm, GemmSpec};
use crate::kernels::run_once;

/// Rows per chunk: one f32 accumulation of the GEMM sums at most this many products.
pub const CHUNK_ROWS: usize = 256;

/// The f64 Grams (`dim × dim`, row-major) of `matrices`, each `rows × dim` row-major f32, computed
/// on `gpu`. All matrices share one shape; `rows` may be 0 (the Grams are then zero).
pub fn gram_gpu(gpu: &Gpu, matrices: &[&[f32]], rows: usize, dim: usize) -> Result<Vec<Vec<f64>>> {
    let per_launch = chunks_per_launch(gpu, dim).ok_or_else(|| {
        Error::kernel(
            "gemm",
            format!(
                "collapse Gram: one chunk of {CHUNK_ROWS} × {dim} floats exceeds a storage binding"
            ),
        )
    })?;
    gram_gpu_in_launches(gpu, matrices, rows, dim, per_launch)
}

/// [`gram_gpu`] with at most `per_launch` chunks per GEMM launch (≥ 1; [`gram_gpu`] takes the most
/// the device's limits allow). Exposed so the tests can split a small matrix over launches.
pub fn gram_gpu_in_launches(
    gpu: &Gpu,
    matrices: &[&[f32]],
    rows: usize,
    dim: usize,
    per_launch: usize,
) -> Result<Vec<Vec<f64>>> {
    let bad = |message: String| Error::kernel("gemm", format!("collapse Gram: {message}"));
    if let Some(m) = matrices.iter().find(|m| m.len() != rows * dim) {
        return Err(bad(format!(
            "a matrix of {} floats is not {rows} × {dim}",
            m.len()
        )));
    }
    let mut grams = vec![vec![0.0f64; dim * dim]; matrices.len()];
    if rows == 0 || dim == 0 {
        return Ok(grams);
    }
    let chunks = rows.div_ceil(CHUNK_ROWS);
    let jobs: Vec<(usize, usize)> = (0..matrices.len())
        .flat_map(|m| (0..chunks).map(move |c| (m, c)))
        .collect();
    for group in jobs.chunks(per_launch.max(1)) {
        let a: Vec<f32> = group
            .iter()
            .flat_map(|&(m, c)| chunk(matrices[m], c, rows, dim))
            .collect();
        let c = launch(gpu, &a, group.len(), dim)?;
        for (t, &(m, _)) in group.iter().enumerate() {
            let part = &c[t * dim * dim..(t + 1) * dim * dim];
            for (g, &v) in grams[m].iter_mut().zip(part) {
                *g += v as f64;
            }
        }
    }
    Ok(grams)
}

/// Chunk `c` of a `rows × dim` matrix, padded with zero rows to [`CHUNK_ROWS`].
fn chunk(matrix: &[f32], c: usize, rows: usize, dim: usize) -> Vec<f32> {
    let (start, end) = (c * CHUNK_ROWS, ((c + 1) * CHUNK_ROWS).min(rows));
    let mut out = matrix[start * dim..end * dim].to_vec();
    out.resize(CHUNK_ROWS * dim, 0.0);
    out
}

/// Chunks one launch can take: the A buffer and the C buffer each within a storage binding, the
/// tables within the grid's z limit. `None` when not even one fits.
fn chunks_per_launch(gpu: &Gpu, dim: usize) -> Option<usize> {
    let limits = gpu.limits();
    let binding = limits.max_storage_buffer_binding_size as usize;
    let per_a = CHUNK_ROWS * dim * 4;
    let per_c = dim * dim * 4;
    let n = (binding / per_a)
        .min(binding / per_c)
        .min(limits.max_compute_workgroups_per_dimension as usize);
    (n > 0).then_some(n)
}

/// One batched GEMM: `tables` chunks of `CHUNK_ROWS × dim` in `a` → `tables` Grams (f32).
fn launch(gpu: &Gpu, a: &[f32], tables: usize, dim: usize) -> Result<Vec<f32>> {
    let (t, d, k) = (tables as u32, dim as u32, CHUNK_ROWS as u32);
    // C = AᵀA: A stored k × m (trans_a), B the same buffer stored k × n.
    let spec = GemmSpec::new(t, d, d, k, true, false);
    let c_len = (tables * dim * dim) as u64;
    gpu.scoped("computing the collapse Gram matrices", || {
        let a = gpu.storage_from("collapse rows", a);
        // NaN until written: an entry the GEMM missed fails the spectrum's finiteness check.
        let c = gpu.storage_from("collapse gram", &vec![f32::NAN; c_len as usize]);
        let gemm = Gemm::new(gpu, &spec, &a, &a, None, None, &c)?;
        run_once(gpu, |pass| gemm.record(gpu, pass));
        gpu.read::<f32>(&c, 0, c_len)
    })?
}

/// The reference: `EᵀE` of a `rows × dim` row-major matrix, accumulated in f64.
pub fn gram_reference(matrix: &[f32], rows: usize, dim: usize) -> Vec<f64> {
    let mut g = vec![0.0f64; dim * dim];
    for r in 0..rows {
        let row = &matrix[r * dim..(r + 1) * dim];
        for (i, &x) in row.iter().enumerate() {
            for (j, &y) in row.iter().enumerate() {
                g[i * dim + j] += x as f64 * y as f64;
            }
        }
    }
    g
}

/// `Σ_p |E_pi E_pj|` per entry: the magnitude an entry's rounding error scales with (tests).
pub fn gram_magnitude(matrix: &[f32], rows: usize, dim: usize) -> Vec<f64> {
    let abs: Vec<f32> = matrix.iter().map(|x| x.abs()).collect();
    gram_reference(&abs, rows, dim)
}
