//! Where every embedding row lives, and the metadata the gather and update kernels read.
//!
//! An embedding storage holds several tables in one vec4 address space, cut into chunks of
//! `2^chunk_shift` vec4s (each chunk one buffer, under the device's max storage-binding size). Rows
//! are packed back to back with their optimizer state after them, so a row — and a table — may
//! straddle a chunk boundary: the kernels split every vec4 address into (chunk, offset) with a shift
//! and a mask, which costs nothing next to the load.
//!
//! Addresses count *units*, one vec4 of weights each: 16 bytes (`vec4<f32>`) in an f32 storage, 8
//! bytes (`vec2<u32>`, four f16 packed in pairs) in an f16 one ([`Element::unit_bytes`]). The
//! optimizer state after a row is f32 either way, so it takes twice the units in f16: row-wise
//! Adagrad's accumulator one unit (f32 bits in `.x`), Adam's m and v two units per vec4 column
//! ([`Element::state_units`]). `base4`, `stride4`, `total4` and `chunk_shift` count units; the
//! host's raw view ([`StorageLayout::raw_stride`]) is f32 whatever the element.

use crate::error::{Error, Result};

/// Chunk buffers a kernel can bind. Four keeps the gather at 7 storage bindings (WebGPU's default
/// allows 8) and gives 4 × 128 MiB on lavapipe, 4 × 2 GiB where bindings reach 4 GiB.
pub const MAX_CHUNKS: usize = 4;
/// Words per table in the kernels' meta buffer (`TABLE_WORDS` in the embedding shaders).
pub const TABLE_WORDS: usize = 5;
/// Widest row, in floats: the update kernel gives each vec4 column of a row its own lane.
pub const MAX_WIDTH: u32 = 1024;

/// The element type a storage keeps its rows in. Arithmetic and optimizer state are f32 either
/// way; an f16 storage converts on load and store (issue 19).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Element {
    /// 32-bit float.
    #[default]
    F32,
    /// 16-bit float (IEEE binary16), packed two per u32.
    F16,
}

impl Element {
    /// Bytes of one element.
    pub fn bytes(&self) -> u64 {
        match self {
            Element::F32 => 4,
            Element::F16 => 2,
        }
    }

    /// Bytes of one address unit: one vec4 of weights as stored (see the module docs).
    pub fn unit_bytes(&self) -> u64 {
        4 * self.bytes()
    }

    /// Units of f32 optimizer state stored after a row of `width4` units of weights.
    pub fn state_units(&self, optimizer: SparseOptimizer, width4: u32) -> u32 {
        match (self, optimizer) {
            (Element::F32, _) => optimizer.state4(width4),
            // f32 state in 8-byte units: Adagrad's accumulator fits one, Adam's vec4s take two.
            (Element::F16, SparseOptimizer::RowwiseAdagrad { .. }) => 1,
            (Element::F16, _) => 2 * optimizer.state4(width4),
        }
    }

    /// The config spelling (`dtype = "f32" | "f16"`).
    pub fn name(&self) -> &'static str {
        match self {
            Element::F32 => "f32",
            Element::F16 => "f16",
        }
    }
}

/// Storage units ([`Element::unit_bytes`]: a vec4 of f32, or 4 packed halves) of one row of
/// `width` floats with `optimizer`'s state, stored as `element`: the one place a row's size is
/// defined (the layout and the model's slab packing, [`crate::model`], both use it).
pub fn row_stride4(width: u32, optimizer: SparseOptimizer, element: Element) -> u32 {
    let width4 = width / 4;
    width4 + element.state_units(optimizer, width4)
}

/// log2 of the `element` units per chunk of `chunk_bytes` (≥ one unit): rounded down to a
/// power of two.
pub fn chunk_shift_of(chunk_bytes: u64, element: Element) -> u32 {
    63 - (chunk_bytes / element.unit_bytes()).max(1).leading_zeros()
}

/// `element` units one storage holds at most with chunks of `chunk_bytes`: [`MAX_CHUNKS`]
/// chunks, and below 2^32 (the kernels' addresses are u32).
pub fn storage_capacity4(chunk_bytes: u64, element: Element) -> u64 {
    let chunk4 = 1u64
        .checked_shl(chunk_shift_of(chunk_bytes, element))
        .unwrap_or(u64::MAX);
    chunk4
        .saturating_mul(MAX_CHUNKS as u64)
        .min(u32::MAX as u64)
}

/// One logical embedding table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableSpec {
    /// Number of rows.
    pub rows: u32,
    /// Floats per row; a multiple of 4.
    pub width: u32,
}

impl TableSpec {
    /// A whole table of `rows` × `width`.
    pub fn whole(rows: u32, width: u32) -> Self {
        TableSpec { rows, width }
    }
}

/// The sparse optimizer of an embedding storage; it fixes the state kept beside each row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SparseOptimizer {
    /// Plain SGD with L2 weight decay.
    Sgd,
    /// FBGEMM's EXACT_ROWWISE_ADAGRAD: one accumulator per row.
    RowwiseAdagrad {
        /// Added to the root of the accumulator.
        eps: f32,
    },
    /// Adam with per-element moments, updated on touched rows only; decoupled weight decay.
    Adam {
        /// First-moment decay.
        beta1: f32,
        /// Second-moment decay.
        beta2: f32,
        /// Added to the root of the second moment.
        eps: f32,
    },
}

impl SparseOptimizer {
    /// The WGSL `OPTIMIZER` override value.
    pub fn code(&self) -> u32 {
        match self {
            SparseOptimizer::Sgd => 0,
            SparseOptimizer::RowwiseAdagrad { .. } => 1,
            SparseOptimizer::Adam { .. } => 2,
        }
    }

    /// vec4s of state stored after a row of `width4` vec4s.
    pub fn state4(&self, width4: u32) -> u32 {
        match self {
            SparseOptimizer::Sgd => 0,
            SparseOptimizer::RowwiseAdagrad { .. } => 1,
            SparseOptimizer::Adam { .. } => 2 * width4,
        }
    }
}

/// Where one table sits in the storage's vec4 address space. A table of a model split by rows
/// over several storages (issue 19's storage groups) is a *part* here: rows
/// `first_row..first_row + rows` of a table of `whole_rows`; ids index the whole table and the
/// kernels route each to the part that holds it (see [`StorageLayout::set_part`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TablePlacement {
    /// vec4 address of row 0 (of the part).
    pub base4: u64,
    /// Rows (of the part).
    pub rows: u32,
    /// The whole table's row of the part's row 0 (0 for a whole table).
    pub first_row: u32,
    /// Rows of the whole table: the bound ids are checked against (`rows` for a whole table).
    pub whole_rows: u32,
    /// vec4s of weights per row.
    pub width4: u32,
    /// vec4s per row including optimizer state.
    pub stride4: u32,
}

/// The placement of every table of an embedding storage.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageLayout {
    /// Tables in the order given.
    pub tables: Vec<TablePlacement>,
    /// The optimizer whose state is interleaved.
    pub optimizer: SparseOptimizer,
    /// The element type of the rows.
    pub element: Element,
    /// log2 of vec4s per chunk.
    pub chunk_shift: u32,
    /// vec4s used in all.
    pub total4: u64,
}

impl StorageLayout {
    /// Packs f32 `tables` with chunks of `chunk_bytes` rounded down to a power of two vec4s.
    pub fn new(tables: &[TableSpec], optimizer: SparseOptimizer, chunk_bytes: u64) -> Result<Self> {
        Self::with_element(tables, optimizer, Element::F32, chunk_bytes)
    }

    /// Packs `tables` of `element` rows with chunks of `chunk_bytes`.
    pub fn with_element(
        tables: &[TableSpec],
        optimizer: SparseOptimizer,
        element: Element,
        chunk_bytes: u64,
    ) -> Result<Self> {
        let unit = element.unit_bytes();
        if chunk_bytes < unit {
            return Err(Error::Layout(format!(
                "chunk size {chunk_bytes} bytes is below one {unit}-byte unit"
            )));
        }
        let chunk_shift = chunk_shift_of(chunk_bytes, element);
        let mut placed = Vec::with_capacity(tables.len());
        let mut next = 0u64;
        for (t, spec) in tables.iter().enumerate() {
            if spec.width == 0 || !spec.width.is_multiple_of(4) || spec.width > MAX_WIDTH {
                return Err(Error::Layout(format!(
                    "table {t}: width {} must be a positive multiple of 4, at most {MAX_WIDTH}",
                    spec.width
                )));
            }
            let width4 = spec.width / 4;
            let stride4 = row_stride4(spec.width, optimizer, element);
            placed.push(TablePlacement {
                base4: next,
                rows: spec.rows,
                first_row: 0,
                whole_rows: spec.rows,
                width4,
                stride4,
            });
            next += spec.rows as u64 * stride4 as u64;
        }
        let layout = StorageLayout {
            tables: placed,
            optimizer,
            element,
            chunk_shift,
            total4: next,
        };
        let chunks = layout.chunks();
        if chunks > MAX_CHUNKS || next > u32::MAX as u64 {
            return Err(Error::Layout(format!(
                "{} tables need {} bytes: {chunks} chunks of {} bytes, more than the {MAX_CHUNKS} \
                 a kernel binds (or past 2^32 vec4s); split them into several storage groups",
                tables.len(),
                next * unit,
                layout.chunk4() * unit
            )));
        }
        Ok(layout)
    }

    /// Bytes of one address unit ([`Element::unit_bytes`]).
    pub fn unit_bytes(&self) -> u64 {
        self.element.unit_bytes()
    }

    /// vec4s per chunk.
    pub fn chunk4(&self) -> u64 {
        1u64 << self.chunk_shift
    }

    /// Number of chunk buffers needed (at least one).
    pub fn chunks(&self) -> usize {
        self.total4.div_ceil(self.chunk4()).max(1) as usize
    }

    /// vec4s in chunk `c`.
    pub fn chunk_len4(&self, c: usize) -> u64 {
        let start = c as u64 * self.chunk4();
        self.total4.saturating_sub(start).min(self.chunk4()).max(1)
    }

    /// The (chunk, vec4 range inside it, range inside `[start4, end4)`) pieces of an address range.
    pub fn split(&self, start4: u64, end4: u64) -> Vec<(usize, u64, std::ops::Range<usize>)> {
        let mut pieces = Vec::new();
        let mut a = start4;
        while a < end4 {
            let chunk = (a >> self.chunk_shift) as usize;
            let chunk_end = (chunk as u64 + 1) << self.chunk_shift;
            let b = end4.min(chunk_end);
            let from = (a - start4) as usize;
            pieces.push((
                chunk,
                a & (self.chunk4() - 1),
                from..from + (b - a) as usize,
            ));
            a = b;
        }
        pieces
    }

    /// Floats per row of table `t` as the host sees it ([`EmbeddingStorage::read_raw`] and
    /// friends): the weights as f32, then the optimizer state as f32, whatever the element type
    /// the storage keeps them in. Host code sizes raw rows with this, never with `stride4`
    /// (which counts storage units).
    ///
    /// [`EmbeddingStorage::read_raw`]: super::EmbeddingStorage::read_raw
    pub fn raw_stride(&self, t: usize) -> usize {
        let p = &self.tables[t];
        (p.width4 + self.optimizer.state4(p.width4)) as usize * 4
    }

    /// Makes table `t` rows `first_row..first_row + rows` of a table of `whole_rows` (a part of a
    /// table split over storages). Addresses do not change: only what ids the part answers.
    pub fn set_part(&mut self, t: usize, first_row: u32, whole_rows: u32) -> Result<()> {
        let p = self
            .tables
            .get_mut(t)
            .ok_or_else(|| Error::Layout(format!("table {t} does not exist")))?;
        if first_row as u64 + p.rows as u64 > whole_rows as u64 {
            return Err(Error::Layout(format!(
                "table {t}: rows {first_row}..{} are past the whole table's {whole_rows}",
                first_row as u64 + p.rows as u64
            )));
        }
        p.first_row = first_row;
        p.whole_rows = whole_rows;
        Ok(())
    }

    /// Table words for the kernels' meta buffer ([`TABLE_WORDS`] per table): (base4, stride4,
    /// width4, rows, first_row) — rows and first_row of the part, so the gather reads id `v`
    /// only when `v - first_row < rows`.
    pub fn table_words(&self) -> Vec<u32> {
        self.tables
            .iter()
            .flat_map(|t| [t.base4 as u32, t.stride4, t.width4, t.rows, t.first_row])
            .collect()
    }
}
