//! Launcher of `simhash`: HashID codes of content embeddings (METHODS.md §1.3).
//!
//! `h_j(x) = 1[w_jᵀx ≥ 0]` with `w_j ~ N(0, I)` drawn from a seed ([`hyperplanes`]:
//! [`Rng::normal_pair`](crate::rng::Rng::normal_pair), so a seed means the same planes
//! everywhere), and the code
//! `Σ_j h_j 2^j` for `j < bits`. One invocation per vector computes all `bits` dot products and
//! assembles the code in a register: codes are one word per vector, so per-(vector, bit)
//! invocations would need an atomic OR or a second pass to combine their bits, and a content
//! table has far more vectors than a GPU has lanes, so per-vector parallelism already fills it.
//!
//! [`SimHash::codes`] is a one-off pass over an embedding file: it uploads the vectors in chunks
//! that each fit the device's storage-binding limit (128 MiB on lavapipe), dispatches, and reads
//! the codes back.

use crate::error::{Error, Result};
use crate::gpu::{storage_usage, Access, Gpu, Grid, Kernel, Launch, Uniform};
use crate::rng::Rng;
use crate::shaders;

use super::{check_rows_of, CONTENT_WG};

/// Mirrors `SimHashParams` in `content.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct SimHashParams {
    /// Vectors in this chunk.
    pub rows: u32,
    /// Width of a vector.
    pub dim: u32,
    /// Bits per code, 1..=32.
    pub bits: u32,
    /// Padding to 16 bytes.
    pub _pad: u32,
}

/// The SimHash kernel's description.
pub const SIMHASH: Kernel = Kernel::new(
    shaders::CONTENT,
    "simhash",
    &[
        Access::Read,
        Access::Read,
        Access::ReadWrite,
        Access::Uniform,
    ],
);

/// `bits` hyperplanes of width `dim`, `[bits, dim]` row-major, each element N(0, 1), both draws
/// of each [`Rng::normal_pair`] over [`Rng::new`]`(seed)`: deterministic for a seed.
pub fn hyperplanes(seed: u64, bits: u32, dim: usize) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let n = bits as usize * dim;
    let mut out: Vec<f32> = (0..n.div_ceil(2))
        .flat_map(|_| {
            let (a, b) = rng.normal_pair();
            [a as f32, b as f32]
        })
        .collect();
    out.truncate(n);
    out
}

/// The CPU reference: the code of each row of `vectors` (`[n, dim]`) under `planes`
/// (`[bits, dim]`), dot products accumulated in f64.
pub fn simhash_reference(vectors: &[f32], dim: usize, planes: &[f32], bits: u32) -> Vec<u32> {
    vectors
        .chunks_exact(dim.max(1))
        .map(|x| {
            (0..bits as usize).fold(0u32, |code, j| {
                let w = &planes[j * dim..(j + 1) * dim];
                let dot: f64 = x.iter().zip(w).map(|(&a, &b)| a as f64 * b as f64).sum();
                code | (u32::from(dot >= 0.0) << j)
            })
        })
        .collect()
}

/// `[bits, dim]` planes as the shader reads them: `[dim, ⌈bits/4⌉, 4]`, so one vec4 load gives
/// element d of four planes; the padding planes past `bits` are zero.
fn transposed_by_four(planes: &[f32], bits: u32, dim: usize) -> Vec<f32> {
    let groups = (bits as usize).div_ceil(4);
    let mut out = vec![0.0; dim * groups * 4];
    for j in 0..bits as usize {
        for d in 0..dim {
            out[(d * groups + j / 4) * 4 + j % 4] = planes[j * dim + d];
        }
    }
    out
}

/// A prepared SimHash: the planes resident on the device, the pipeline compiled.
pub struct SimHash {
    pipeline: std::sync::Arc<crate::gpu::Pipeline>,
    planes: wgpu::Buffer,
    dim: u32,
    bits: u32,
    chunk_rows: u32,
}

impl SimHash {
    /// Uploads `planes` (`[bits, dim]`, e.g. from [`hyperplanes`]); `bits` in 1..=32, `dim` ≥ 1.
    pub fn new(gpu: &Gpu, dim: usize, bits: u32, planes: &[f32]) -> Result<Self> {
        if !(1..=32).contains(&bits) {
            return Err(Error::kernel(
                SIMHASH.entry,
                format!("bits = {bits}: must be 1..=32 (one u32 per code)"),
            ));
        }
        let rows = check_rows_of(SIMHASH.entry, "planes", planes, dim)?;
        if rows != bits as usize {
            return Err(Error::kernel(
                SIMHASH.entry,
                format!("{rows} planes of width {dim} given for {bits} bits"),
            ));
        }
        let max = gpu.limits().max_storage_buffer_binding_size;
        let row_bytes = dim as u64 * 4;
        if row_bytes * bits as u64 > max || dim > u32::MAX as usize {
            return Err(Error::kernel(
                SIMHASH.entry,
                format!("planes of {bits} × {dim} exceed the {max}-byte binding limit"),
            ));
        }
        Ok(SimHash {
            pipeline: gpu.pipeline(&SIMHASH, &[("WG", CONTENT_WG as f64)])?,
            planes: gpu.storage_from("simhash planes", &transposed_by_four(planes, bits, dim)),
            dim: dim as u32,
            bits,
            chunk_rows: (max / row_bytes).min(1 << 20) as u32,
        })
    }

    /// Vectors per dispatch: as many as fit one storage binding (at most 2^20).
    pub fn chunk_rows(&self) -> u32 {
        self.chunk_rows
    }

    /// Lowers the vectors per dispatch (at least 1): tests cross chunk boundaries with small inputs.
    pub fn set_chunk_rows(&mut self, rows: u32) {
        self.chunk_rows = rows.clamp(1, self.chunk_rows);
    }

    /// The code of each row of `vectors` (`[n, dim]`, finite), computed on the device chunk by chunk
    /// (the output poisoned with `u32::MAX` before each, so an unwritten code shows).
    pub fn codes(&self, gpu: &Gpu, vectors: &[f32]) -> Result<Vec<u32>> {
        let n = check_rows_of(SIMHASH.entry, "vectors", vectors, self.dim as usize)?;
        let cap = (n as u64).min(self.chunk_rows as u64);
        let mut codes = Vec::with_capacity(n);
        if n == 0 {
            return Ok(codes);
        }
        let dim = self.dim as usize;
        let input = gpu.buffer("simhash vectors", cap * dim as u64 * 4, storage_usage());
        let output = gpu.buffer("simhash codes", cap * 4, storage_usage());
        // Poisoned before each chunk: an unwritten code reads u32::MAX, out of range when bits < 32.
        let poison = vec![u32::MAX; cap as usize];
        for chunk in vectors.chunks(self.chunk_rows as usize * dim) {
            let rows = (chunk.len() / dim) as u32;
            gpu.queue
                .write_buffer(&input, 0, bytemuck::cast_slice(chunk));
            gpu.queue
                .write_buffer(&output, 0, bytemuck::cast_slice(&poison));
            let launch = self.launch(gpu, &input, &output, rows)?;
            crate::kernels::run_once(gpu, |pass| launch.record(gpu, pass));
            codes.extend(gpu.read::<u32>(&output, 0, rows as u64)?);
        }
        Ok(codes)
    }

    /// One dispatch hashing the first `rows` vectors of `vectors` (`[rows, dim]` f32, within one
    /// storage binding) into `codes` (u32): what [`SimHash::codes`] runs per chunk, and what a
    /// bench times without the transfers.
    pub fn launch(
        &self,
        gpu: &Gpu,
        vectors: &wgpu::Buffer,
        codes: &wgpu::Buffer,
        rows: u32,
    ) -> Result<Launch> {
        let need = rows as u64 * self.dim as u64 * 4;
        let max = gpu.limits().max_storage_buffer_binding_size;
        if vectors.size() < need || codes.size() < rows as u64 * 4 || need > max {
            return Err(Error::kernel(
                SIMHASH.entry,
                format!(
                    "{rows} rows × {}: vectors of {} bytes or codes of {} bytes too small \
                     (or over the {max}-byte binding limit)",
                    self.dim,
                    vectors.size(),
                    codes.size()
                ),
            ));
        }
        let params = SimHashParams {
            rows,
            dim: self.dim,
            bits: self.bits,
            _pad: 0,
        };
        let uniform = Uniform::new(gpu, "simhash params", &params);
        let buffers = [vectors, &self.planes, codes, uniform.buffer()];
        Launch::new(
            gpu,
            &self.pipeline,
            &buffers,
            Grid::Folded(rows.div_ceil(CONTENT_WG)),
        )
    }
}
