//! Dense kernels: the layers between the embedding gather and the loss.
//!
//! # Conventions every dense launcher follows
//!
//! - **Tensors** are `f32`, row-major and contiguous. A *table-batched* tensor holds one slab per
//!   embedding table (the multi-embedding paradigm, METHODS.md §2.2): `[tables, rows_cap, cols]`,
//!   slab `t` starting at `t · rows_cap · cols`. `rows_cap` is the maximum batch size the buffers were
//!   allocated for; the actual batch (≤ `rows_cap`) is a uniform that [`set_rows`]-style methods
//!   rewrite per step ([`Uniform::set_rows`](crate::gpu::Uniform::set_rows): checked against
//!   `rows_cap`, then written), so a smaller last batch needs no new buffers, bind groups or
//!   pipelines. A new op runs at capacity until its first `set_rows`.
//! - **Prepared ops**: `Op::new(gpu, spec, buffers…)` validates shapes and buffer sizes (returning
//!   [`Error::Kernel`] with the kernel name and the numbers, never panicking),
//!   compiles its pipelines once and builds its bind groups once; `record(&self, gpu, pass)` only
//!   records dispatches. Buffers belong to the caller (the graph compiler assigns them).
//! - **One dispatch for all tables**: tables are a grid dimension (usually `z`), never a host loop.
//! - **Backward** methods write gradients; parameter gradients are *overwritten* unless the spec
//!   says `accumulate`. No float atomics: every reduction (over the batch for a weight gradient,
//!   over a row for a norm) runs in a fixed order, so one seed on one device gives the same bits.
//! - **Learned parameters** of M tables are stored table-major too: `[tables, …]`.
//!
//! [`set_rows`]: gemm::Gemm::set_dims

use crate::error::{Error, Result};

pub mod column_sum;
pub mod combine;
pub mod cross;
pub mod dropout;
pub mod elementwise;
pub mod expert;
pub mod fma;
pub mod gate;
pub mod gemm;
pub mod linear;
mod matrix;
pub mod mix;
pub mod mlp;
pub mod norm;
pub mod optim;
pub mod pairwise;

/// `Err` naming `kernel` and `what` unless `buffer` holds at least `elems` f32s.
pub fn check_len(
    kernel: &'static str,
    what: &str,
    buffer: &wgpu::Buffer,
    elems: u64,
) -> Result<()> {
    let need = elems * 4;
    if buffer.size() < need {
        return Err(Error::kernel(
            kernel,
            format!(
                "buffer {what} holds {} bytes, {need} needed ({elems} f32)",
                buffer.size()
            ),
        ));
    }
    Ok(())
}
