//! Launcher of `similarity`: the embedding-similarity feature of METHODS.md §1.4, per batch.
//!
//! The pre-trained user and item tables are uploaded once ([`SimilarityOp::new`]); per step the
//! caller hands the batch's `(user_row, item_row)` pairs and, for each copy of the feature in the
//! gather's batch words, where its values start ([`SimilarityOp::set_batch`]). The kernel computes
//! `s = cos(v_u, v_i)` (or the dot), its bucket `1 + #{k : s ≥ boundaries[k]}` — the MNS value the
//! gather then encodes — or 0 when either row is [`MISSING`], and writes it into each copy. So the
//! value never makes a host round trip. The training step does not run it yet: its sparse update
//! plan is built on the host from the values (see `data::encode::similarity`), so the encoder
//! computes the same values on the host with [`similarity_reference`]'s arithmetic.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::gpu::{storage_usage, Access, Gpu, Grid, Kernel, Launch, Pipeline, Uniform};
use crate::shaders;

use super::{check_rows_of, CONTENT_WG, MISSING};

/// How the two vectors are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// `uᵀv / (|u| |v|)`, 0 when either vector is zero (the paper's choice).
    Cosine,
    /// `uᵀv`.
    Dot,
}

impl Measure {
    fn code(self) -> u32 {
        match self {
            Measure::Cosine => 0,
            Measure::Dot => 1,
        }
    }
}

/// Mirrors `SimilarityParams` in `content.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct SimilarityParams {
    /// Samples this step.
    pub batch: u32,
    /// Width of both tables.
    pub dim: u32,
    /// Copies written (entries of `starts` used).
    pub copies: u32,
    /// Boundaries (≥ 1).
    pub k: u32,
    /// 0 cosine, 1 dot.
    pub measure: u32,
    /// Rows of the user table.
    pub users: u32,
    /// Rows of the item table.
    pub items: u32,
    /// Padding to 32 bytes.
    pub _pad: u32,
}

/// The similarity kernel's description.
pub const SIMILARITY: Kernel = Kernel::new(
    shaders::CONTENT,
    "similarity",
    &[
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
        Access::Uniform,
    ],
);

/// The similarity of two vectors in f64 (0 for cosine when either is zero).
pub fn similarity_value_f64(u: &[f32], v: &[f32], measure: Measure) -> f64 {
    let (mut dot, mut uu, mut vv) = (0.0f64, 0.0f64, 0.0f64);
    for (&a, &b) in u.iter().zip(v) {
        let (a, b) = (a as f64, b as f64);
        dot += a * b;
        uu += a * a;
        vv += b * b;
    }
    match measure {
        Measure::Dot => dot,
        Measure::Cosine if uu == 0.0 || vv == 0.0 => 0.0,
        Measure::Cosine => dot / (uu.sqrt() * vv.sqrt()),
    }
}

/// The bucket of `s`: `1 + #{k : s ≥ boundaries[k]}`.
pub fn bucket_of(s: f64, boundaries: &[f32]) -> u32 {
    1 + boundaries.iter().filter(|&&b| s >= b as f64).count() as u32
}

/// The CPU reference: each pair's MNS value (0 when either row is [`MISSING`]), in f64.
pub fn similarity_reference(
    users: &[f32],
    items: &[f32],
    dim: usize,
    pairs: &[[u32; 2]],
    measure: Measure,
    boundaries: &[f32],
) -> Vec<u32> {
    pairs
        .iter()
        .map(|&[u, i]| {
            if u == MISSING || i == MISSING {
                return 0;
            }
            let (u, i) = (u as usize * dim, i as usize * dim);
            let s = similarity_value_f64(&users[u..u + dim], &items[i..i + dim], measure);
            bucket_of(s, boundaries)
        })
        .collect()
}

/// A prepared similarity op over resident user and item tables, writing into `target`.
pub struct SimilarityOp {
    launch: Launch,
    pairs: wgpu::Buffer,
    starts: wgpu::Buffer,
    uniform: Uniform<SimilarityParams>,
    params: SimilarityParams,
    max_batch: u32,
    max_copies: u32,
    target_words: u64,
    batch: AtomicU32,
}

/// The tables' shapes, checked: (user rows, item rows).
fn check_tables(users: &[f32], items: &[f32], dim: usize, gpu: &Gpu) -> Result<(u32, u32)> {
    let nu = check_rows_of(SIMILARITY.entry, "users", users, dim)?;
    let ni = check_rows_of(SIMILARITY.entry, "items", items, dim)?;
    let max = gpu.limits().max_storage_buffer_binding_size;
    for (what, rows) in [("users", nu), ("items", ni)] {
        if rows as u64 * dim as u64 * 4 > max || rows >= MISSING as usize {
            return Err(Error::kernel(
                SIMILARITY.entry,
                format!("{what}: {rows} rows × {dim} exceed the {max}-byte binding limit"),
            ));
        }
    }
    Ok((nu as u32, ni as u32))
}

fn check_boundaries(boundaries: &[f32]) -> Result<()> {
    let ascending = boundaries.windows(2).all(|w| w[0] < w[1]);
    if boundaries.is_empty() || !ascending || boundaries.iter().any(|b| !b.is_finite()) {
        return Err(Error::kernel(
            SIMILARITY.entry,
            format!(
                "{} boundaries: need ≥ 1, finite, strictly ascending",
                boundaries.len()
            ),
        ));
    }
    Ok(())
}

impl SimilarityOp {
    /// Uploads the tables (`[Nu, dim]`, `[Ni, dim]`, finite) and `boundaries` (≥ 1, strictly
    /// ascending) and binds `target`, the u32 words the values go to; `max_batch` samples and
    /// `max_copies` copies per step at most. Nothing runs until [`SimilarityOp::set_batch`].
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        gpu: &Gpu,
        users: &[f32],
        items: &[f32],
        dim: usize,
        measure: Measure,
        boundaries: &[f32],
        max_batch: u32,
        target: &wgpu::Buffer,
        max_copies: u32,
    ) -> Result<Self> {
        let (nu, ni) = check_tables(users, items, dim, gpu)?;
        check_boundaries(boundaries)?;
        let pipeline: Arc<Pipeline> = gpu.pipeline(&SIMILARITY, &[("WG", CONTENT_WG as f64)])?;
        let params = SimilarityParams {
            batch: 0,
            dim: dim as u32,
            copies: 0,
            k: boundaries.len() as u32,
            measure: measure.code(),
            users: nu,
            items: ni,
            _pad: 0,
        };
        let uniform = Uniform::new(gpu, "similarity params", &params);
        let pairs = gpu.buffer("similarity pairs", max_batch as u64 * 8, storage_usage());
        let starts = gpu.buffer("similarity starts", max_copies as u64 * 4, storage_usage());
        let buffers = [
            &gpu.storage_from("similarity users", users),
            &gpu.storage_from("similarity items", items),
            &pairs,
            &starts,
            &gpu.storage_from("similarity boundaries", boundaries),
            target,
            uniform.buffer(),
        ];
        let launch = Launch::new(gpu, &pipeline, &buffers, Grid::Folded(0))?;
        Ok(SimilarityOp {
            launch,
            pairs,
            starts,
            uniform,
            params,
            max_batch,
            max_copies,
            target_words: target.size() / 4,
            batch: AtomicU32::new(0),
        })
    }

    /// Sets this step's samples: `pairs[b] = [user_row, item_row]` (each a row of its table or
    /// [`MISSING`]), and the first word of each copy in the target (`starts[c] + pairs.len()` words
    /// must fit it). Checked before anything is written.
    pub fn set_batch(&self, gpu: &Gpu, pairs: &[[u32; 2]], starts: &[u32]) -> Result<()> {
        self.check_batch(pairs, starts)?;
        if !pairs.is_empty() {
            gpu.queue
                .write_buffer(&self.pairs, 0, bytemuck::cast_slice(pairs));
        }
        if !starts.is_empty() {
            gpu.queue
                .write_buffer(&self.starts, 0, bytemuck::cast_slice(starts));
        }
        let mut params = self.params;
        params.batch = pairs.len() as u32;
        params.copies = starts.len() as u32;
        self.uniform.write(gpu, &params);
        self.batch.store(params.batch, Ordering::Relaxed);
        Ok(())
    }

    fn check_batch(&self, pairs: &[[u32; 2]], starts: &[u32]) -> Result<()> {
        let fail = |message: String| Err(Error::kernel(SIMILARITY.entry, message));
        if pairs.len() > self.max_batch as usize || starts.len() > self.max_copies as usize {
            return fail(format!(
                "{} samples × {} copies exceed the {} × {} the buffers were built for",
                pairs.len(),
                starts.len(),
                self.max_batch,
                self.max_copies
            ));
        }
        let (nu, ni) = (self.params.users, self.params.items);
        if let Some(b) = pairs
            .iter()
            .position(|&[u, i]| (u >= nu && u != MISSING) || (i >= ni && i != MISSING))
        {
            let [u, i] = pairs[b];
            return fail(format!(
                "sample {b}: rows ({u}, {i}) outside tables of {nu} users and {ni} items"
            ));
        }
        let n = pairs.len() as u64;
        if let Some(&s) = starts.iter().find(|&&s| s as u64 + n > self.target_words) {
            return fail(format!(
                "a copy at word {s} of {n} values overruns the {}-word target",
                self.target_words
            ));
        }
        Ok(())
    }

    /// Records the dispatch for the batch last set (nothing for an empty one).
    pub fn record(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) {
        let batch = self.batch.load(Ordering::Relaxed);
        let grid = Grid::Folded(batch.div_ceil(CONTENT_WG));
        self.launch.record_grid(gpu, pass, grid);
    }
}
