//! The GEMM's spec (shapes, layouts, fused epilogue and gate), the uniform the shaders read, and
//! the checks that keep every index the shaders compute inside its buffer.

use super::GEMM;
use crate::error::{Error, Result};
use crate::kernels::dense::matrix::{check_matrix, extent, fits};

/// Mirrors `GemmParams` in `gemm.wgsl`: the host's (trans, ld) folded into element strides.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct GemmParams {
    /// Rows of C.
    pub m: u32,
    /// Columns of C.
    pub n: u32,
    /// Inner dimension.
    pub k: u32,
    /// Stride of A between rows `i` of op(A).
    pub a_row: u32,
    /// Stride of A between inner indices `p`.
    pub a_step: u32,
    /// Stride of B between inner indices `p`.
    pub b_step: u32,
    /// Stride of B between columns `j` of op(B).
    pub b_col: u32,
    /// Leading dimension of C.
    pub ldc: u32,
    /// Per-table stride of A (0 = shared).
    pub stride_a: u32,
    /// Per-table stride of B (0 = shared).
    pub stride_b: u32,
    /// Per-table stride of C.
    pub stride_c: u32,
    /// Per-table stride of the bias (0 = shared).
    pub stride_bias: u32,
    /// Element offset of table 0's A (and of the gate when it gates A).
    pub offset_a: u32,
    /// Element offset of table 0's B (and of the gate when it gates B).
    pub offset_b: u32,
    /// Element offset of table 0's C.
    pub offset_c: u32,
    /// Element offset of table 0's bias.
    pub offset_bias: u32,
}

/// The activation applied after the bias.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Epilogue {
    /// `x`
    #[default]
    Identity,
    /// `max(x, 0)`
    Relu,
    /// `1 / (1 + e^-x)`
    Sigmoid,
}

/// Which operand of the product a [`Gate`] applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operand {
    /// The left operand, A.
    A,
    /// The right operand, B.
    B,
}

/// How a gate value `p` modifies an operand value `x` on load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateKind {
    /// `x · (p > 0)`: ReLU backward through the stored ReLU output `p`.
    ReluMask,
    /// `x · p`.
    Product,
}

/// An elementwise gate on one operand; the gate buffer has the operand's layout (same leading
/// dimension, same per-table stride, same transposition).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gate {
    /// The gated operand.
    pub operand: Operand,
    /// The gate function.
    pub kind: GateKind,
}

/// The shape and layout of a strided-batched GEMM; see the module docs for the layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GemmSpec {
    /// Matrices in the batch (the z grid dimension).
    pub tables: u32,
    /// Capacity of rows of C.
    pub m: u32,
    /// Capacity of columns of C.
    pub n: u32,
    /// Capacity of the inner dimension.
    pub k: u32,
    /// A is stored `k × m` rather than `m × k`.
    pub trans_a: bool,
    /// B is stored `n × k` rather than `k × n`.
    pub trans_b: bool,
    /// Leading dimension of A as stored.
    pub lda: u32,
    /// Leading dimension of B as stored.
    pub ldb: u32,
    /// Leading dimension of C.
    pub ldc: u32,
    /// Elements between tables' A (0 = shared).
    pub stride_a: u64,
    /// Elements between tables' B (0 = shared).
    pub stride_b: u64,
    /// Elements between tables' C.
    pub stride_c: u64,
    /// Whether a bias `[tables, n]` is added.
    pub bias: bool,
    /// Elements between tables' bias (0 = shared).
    pub stride_bias: u64,
    /// The activation.
    pub epilogue: Epilogue,
    /// C += result instead of C = result.
    pub accumulate: bool,
    /// An optional gate on A or B (its buffer has the gated operand's layout and offset).
    pub gate: Option<Gate>,
    /// Element offset of table 0's A in its buffer: with the strides, tensors can live at any
    /// place of a larger buffer (a model's flat parameter buffer, one layer of a stack).
    pub offset_a: u64,
    /// Element offset of table 0's B.
    pub offset_b: u64,
    /// Element offset of table 0's C.
    pub offset_c: u64,
    /// Element offset of table 0's bias.
    pub offset_bias: u64,
}

impl GemmSpec {
    /// Contiguous tensors: leading dimensions as stored, strides one full matrix per table, no
    /// bias, identity, overwrite, no gate.
    pub fn new(tables: u32, m: u32, n: u32, k: u32, trans_a: bool, trans_b: bool) -> Self {
        GemmSpec {
            tables,
            m,
            n,
            k,
            trans_a,
            trans_b,
            lda: if trans_a { m } else { k },
            ldb: if trans_b { k } else { n },
            ldc: n,
            stride_a: m as u64 * k as u64,
            stride_b: k as u64 * n as u64,
            stride_c: m as u64 * n as u64,
            bias: false,
            stride_bias: n as u64,
            epilogue: Epilogue::Identity,
            accumulate: false,
            gate: None,
            offset_a: 0,
            offset_b: 0,
            offset_c: 0,
            offset_bias: 0,
        }
    }
}

/// `Err` naming the kernel unless every buffer holds its matrix at capacity, C's tables do not
/// overlap, and the optional buffers match the spec.
pub(super) fn check_buffers(
    spec: &GemmSpec,
    a: &wgpu::Buffer,
    b: &wgpu::Buffer,
    bias: Option<&wgpu::Buffer>,
    gate: Option<&wgpu::Buffer>,
    c: &wgpu::Buffer,
) -> Result<()> {
    let name = GEMM.entry;
    let s = spec;
    let (a_rows, a_cols) = if s.trans_a { (s.k, s.m) } else { (s.m, s.k) };
    let (b_rows, b_cols) = if s.trans_b { (s.n, s.k) } else { (s.k, s.n) };
    check_matrix(
        name, "A", a, s.offset_a, s.tables, s.stride_a, a_rows, a_cols, s.lda,
    )?;
    check_matrix(
        name, "B", b, s.offset_b, s.tables, s.stride_b, b_rows, b_cols, s.ldb,
    )?;
    check_matrix(
        name, "C", c, s.offset_c, s.tables, s.stride_c, s.m, s.n, s.ldc,
    )?;
    if s.tables > 1 && s.m > 0 && s.n > 0 && s.stride_c < extent(1, 0, s.m, s.n, s.ldc) {
        return Err(Error::kernel(
            name,
            format!(
                "C: per-table stride {} overlaps a {}×{} matrix with ldc {}",
                s.stride_c, s.m, s.n, s.ldc
            ),
        ));
    }
    if bias.is_some() != s.bias || gate.is_some() != s.gate.is_some() {
        return Err(Error::kernel(
            name,
            format!(
                "spec says bias {} gate {}, buffers given: bias {} gate {}",
                s.bias,
                s.gate.is_some(),
                bias.is_some(),
                gate.is_some()
            ),
        ));
    }
    if let Some(bias) = bias {
        check_matrix(
            name,
            "bias",
            bias,
            s.offset_bias,
            s.tables,
            s.stride_bias,
            1,
            s.n,
            s.n,
        )?;
    }
    if let (Some(g), Some(gate)) = (s.gate, gate) {
        let (offset, stride, rows, cols, ld) = match g.operand {
            Operand::A => (s.offset_a, s.stride_a, a_rows, a_cols, s.lda),
            Operand::B => (s.offset_b, s.stride_b, b_rows, b_cols, s.ldb),
        };
        check_matrix(name, "gate", gate, offset, s.tables, stride, rows, cols, ld)?;
    }
    Ok(())
}

/// The uniform at capacity: the host's (trans, ld) folded into element strides.
pub(super) fn base_params(s: &GemmSpec) -> Result<GemmParams> {
    let name = GEMM.entry;
    Ok(GemmParams {
        m: s.m,
        n: s.n,
        k: s.k,
        a_row: if s.trans_a { 1 } else { s.lda },
        a_step: if s.trans_a { s.lda } else { 1 },
        b_step: if s.trans_b { 1 } else { s.ldb },
        b_col: if s.trans_b { s.ldb } else { 1 },
        ldc: s.ldc,
        stride_a: fits(name, "stride_a", s.stride_a)?,
        stride_b: fits(name, "stride_b", s.stride_b)?,
        stride_c: fits(name, "stride_c", s.stride_c)?,
        stride_bias: fits(name, "stride_bias", s.stride_bias)?,
        offset_a: fits(name, "offset_a", s.offset_a)?,
        offset_b: fits(name, "offset_b", s.offset_b)?,
        offset_c: fits(name, "offset_c", s.offset_c)?,
        offset_bias: fits(name, "offset_bias", s.offset_bias)?,
    })
}
