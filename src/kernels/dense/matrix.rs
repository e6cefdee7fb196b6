//! Table-batched matrices in flat buffers, as the GEMM and the column sum address them: table `t`'s
//! `rows × cols` matrix starts `offset + t · stride` elements in, rows `ld` apart. The bounds checks
//! every launcher runs against its buffers at capacity, and whether `gemm_vec4`'s vec4 loads fit.

use super::check_len;
use super::gemm::{GemmSpec, Operand};
use crate::error::{Error, Result};

/// Largest element index + 1 of a table-batched matrix stored `rows × cols` with `ld`.
pub(crate) fn extent(tables: u32, stride: u64, rows: u32, cols: u32, ld: u32) -> u64 {
    if tables == 0 || rows == 0 || cols == 0 {
        return 0;
    }
    (tables as u64 - 1) * stride + (rows as u64 - 1) * ld as u64 + cols as u64
}

pub(crate) fn fits(kernel: &'static str, what: &str, value: u64) -> Result<u32> {
    u32::try_from(value).map_err(|_| {
        Error::kernel(
            kernel,
            format!("{what} = {value} does not fit the shader's u32 indices"),
        )
    })
}

/// Checks `ld ≥ cols`, that the buffer holds the matrix (starting at element `offset`) and that
/// its extent fits in `u32`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn check_matrix(
    kernel: &'static str,
    what: &str,
    buffer: &wgpu::Buffer,
    offset: u64,
    tables: u32,
    stride: u64,
    rows: u32,
    cols: u32,
    ld: u32,
) -> Result<()> {
    if ld < cols {
        return Err(Error::kernel(
            kernel,
            format!("{what}: leading dimension {ld} < {cols} stored columns"),
        ));
    }
    let need = offset + extent(tables, stride, rows, cols, ld);
    fits(kernel, &format!("{what} extent"), need)?;
    check_len(kernel, what, buffer, need)
}

/// Whether `gemm_vec4` can run: A's and B's leading dimensions and strides are multiples of 4
/// and their buffers (and the gate's) hold the extent rounded up to whole vec4s.
pub(crate) fn vec4_fits(
    s: &GemmSpec,
    a: &wgpu::Buffer,
    b: &wgpu::Buffer,
    gate: Option<&wgpu::Buffer>,
) -> bool {
    let (a_rows, a_cols) = if s.trans_a { (s.k, s.m) } else { (s.m, s.k) };
    let (b_rows, b_cols) = if s.trans_b { (s.n, s.k) } else { (s.k, s.n) };
    let aligned = [
        s.lda as u64,
        s.ldb as u64,
        s.stride_a,
        s.stride_b,
        s.offset_a,
        s.offset_b,
    ]
    .iter()
    .all(|v| v % 4 == 0);
    let holds = |buf: &wgpu::Buffer, offset: u64, stride, rows, cols, ld| {
        (offset + extent(s.tables, stride, rows, cols, ld)).next_multiple_of(4) * 4 <= buf.size()
    };
    let gate_holds = match (s.gate.map(|g| g.operand), gate) {
        (Some(Operand::A), Some(g)) => holds(g, s.offset_a, s.stride_a, a_rows, a_cols, s.lda),
        (Some(Operand::B), Some(g)) => holds(g, s.offset_b, s.stride_b, b_rows, b_cols, s.ldb),
        _ => true,
    };
    let fits_u32 = s.offset_a + extent(s.tables, s.stride_a, a_rows, a_cols, s.lda)
        < u32::MAX as u64 - 4
        && s.offset_b + extent(s.tables, s.stride_b, b_rows, b_cols, s.ldb) < u32::MAX as u64 - 4;
    aligned
        && fits_u32
        && gate_holds
        && holds(a, s.offset_a, s.stride_a, a_rows, a_cols, s.lda)
        && holds(b, s.offset_b, s.stride_b, b_rows, b_cols, s.ldb)
}
