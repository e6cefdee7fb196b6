//! The GPU side of an embedding storage: its chunk buffers, and moving table rows and optimizer
//! state in and out of them. The host sees f32 rows whatever the element type (convert.rs).

use super::convert;
use super::layout::{Element, SparseOptimizer, StorageLayout, TableSpec, MAX_CHUNKS};
use crate::error::{Error, Result};
use crate::gpu::{storage_usage, Gpu, Kernel};
use crate::shaders;

/// Embedding tables of one storage, resident on the GPU.
pub struct EmbeddingStorage {
    /// Where every row lives.
    pub layout: StorageLayout,
    /// `MAX_CHUNKS` buffers; those past `layout.chunks()` are 16-byte placeholders.
    pub(crate) chunks: Vec<wgpu::Buffer>,
}

impl EmbeddingStorage {
    /// Allocates `tables` (zeroed) with chunks as large as the device binds, or `chunk_bytes` when
    /// given (tests force tiny chunks to exercise rows that straddle them).
    pub fn new(
        gpu: &Gpu,
        tables: &[TableSpec],
        optimizer: SparseOptimizer,
        chunk_bytes: Option<u64>,
    ) -> Result<Self> {
        Self::with_element(gpu, tables, optimizer, Element::F32, chunk_bytes)
    }

    /// [`new`](Self::new) for rows stored as `element`.
    pub fn with_element(
        gpu: &Gpu,
        tables: &[TableSpec],
        optimizer: SparseOptimizer,
        element: Element,
        chunk_bytes: Option<u64>,
    ) -> Result<Self> {
        let device_max = gpu
            .limits()
            .max_storage_buffer_binding_size
            .min(gpu.limits().max_buffer_size);
        let chunk_bytes = chunk_bytes.unwrap_or(device_max).min(device_max);
        let layout = StorageLayout::with_element(tables, optimizer, element, chunk_bytes)?;
        let chunks = (0..MAX_CHUNKS)
            .map(|c| {
                let len4 = if c < layout.chunks() {
                    layout.chunk_len4(c)
                } else {
                    1
                };
                let bytes = len4 * layout.unit_bytes();
                gpu.buffer(&format!("embedding chunk {c}"), bytes, storage_usage())
            })
            .collect();
        Ok(EmbeddingStorage { layout, chunks })
    }

    fn table_rows(&self, table: usize) -> Result<u32> {
        let t = self
            .layout
            .tables
            .get(table)
            .ok_or_else(|| Error::Layout(format!("table {table} does not exist")))?;
        Ok(t.rows)
    }

    /// The vec4 address range of rows `rows` of table `table`.
    fn rows_range(&self, table: usize, rows: std::ops::Range<u32>) -> Result<(u64, u64)> {
        let t = *self
            .layout
            .tables
            .get(table)
            .ok_or_else(|| Error::Layout(format!("table {table} does not exist")))?;
        if rows.start > rows.end || rows.end > t.rows {
            return Err(Error::Layout(format!(
                "table {table}: rows {}..{} of {}",
                rows.start, rows.end, t.rows
            )));
        }
        let at = |r: u32| t.base4 + r as u64 * t.stride4 as u64;
        Ok((at(rows.start), at(rows.end)))
    }

    /// Reads table `table` whole, rows with their optimizer state, as f32 (`raw_stride` floats per
    /// row, whatever the element type: see convert.rs).
    pub fn read_raw(&self, gpu: &Gpu, table: usize) -> Result<Vec<f32>> {
        let rows = self.table_rows(table)?;
        self.read_raw_rows(gpu, table, 0..rows)
    }

    /// Reads rows `rows` of table `table`, each with its optimizer state: what a checkpoint of a
    /// table too large for one host copy reads block by block.
    pub fn read_raw_rows(
        &self,
        gpu: &Gpu,
        table: usize,
        rows: std::ops::Range<u32>,
    ) -> Result<Vec<f32>> {
        let (start, end) = self.rows_range(table, rows)?;
        let words = self.read_words(gpu, start, end)?;
        Ok(convert::to_raw(&self.layout, table, &words))
    }

    /// The stored u32 words of units `[start, end)`.
    fn read_words(&self, gpu: &Gpu, start: u64, end: u64) -> Result<Vec<u32>> {
        let per = self.layout.unit_bytes() / 4;
        let mut out = vec![0u32; ((end - start) * per) as usize];
        for (chunk, at4, range) in self.layout.split(start, end) {
            let part: Vec<u32> =
                gpu.read(&self.chunks[chunk], at4 * per, range.len() as u64 * per)?;
            out[range.start * per as usize..range.end * per as usize].copy_from_slice(&part);
        }
        Ok(out)
    }

    /// Queues stored words for units `[start, end)`.
    fn write_words(&self, gpu: &Gpu, start: u64, end: u64, words: &[u32]) {
        let (per, unit) = (
            self.layout.unit_bytes() as usize / 4,
            self.layout.unit_bytes(),
        );
        for (chunk, at4, range) in self.layout.split(start, end) {
            let part = &words[range.start * per..range.end * per];
            gpu.queue
                .write_buffer(&self.chunks[chunk], at4 * unit, bytemuck::cast_slice(part));
        }
    }

    /// Writes table `table` whole, rows with their optimizer state (f32, `raw_stride` per row).
    pub fn write_raw(&self, gpu: &Gpu, table: usize, data: &[f32]) -> Result<()> {
        let rows = self.table_rows(table)?;
        let (start, end) = self.rows_range(table, 0..rows)?;
        self.write_span(gpu, table, start, end, data)
    }

    /// Writes rows `first_row..` of table `table` (as many as `data` holds, each row with its
    /// optimizer state): initialisation and restore of a table block by block.
    pub fn write_raw_rows(
        &self,
        gpu: &Gpu,
        table: usize,
        first_row: u32,
        data: &[f32],
    ) -> Result<()> {
        self.table_rows(table)?;
        let n = (data.len() / self.layout.raw_stride(table)) as u32;
        let (start, end) = self.rows_range(table, first_row..first_row.saturating_add(n))?;
        self.write_span(gpu, table, start, end, data)
    }

    fn write_span(
        &self,
        gpu: &Gpu,
        table: usize,
        start: u64,
        end: u64,
        data: &[f32],
    ) -> Result<()> {
        let rows = (end - start) / self.layout.tables[table].stride4.max(1) as u64;
        let expected = rows * self.layout.raw_stride(table) as u64;
        if data.len() as u64 != expected {
            return Err(Error::Layout(format!(
                "table {table} holds {expected} floats with state, {} given",
                data.len()
            )));
        }
        let words = convert::from_raw(&self.layout, table, data);
        self.write_words(gpu, start, end, &words);
        Ok(())
    }

    /// Writes whole rows of table `table` (weights and optimizer state, `raw_stride` floats per
    /// row, rows given as `(row, values)`), leaving the other rows as they are: online learning
    /// re-initialises the rows a new id takes over (`Graph::reset_rows`). Queued before the next
    /// submission, so a step submitted after this call reads the new values.
    pub fn write_rows(&self, gpu: &Gpu, table: usize, rows: &[(u32, &[f32])]) -> Result<()> {
        let t = *self
            .layout
            .tables
            .get(table)
            .ok_or_else(|| Error::Layout(format!("table {table} does not exist")))?;
        let stride = self.layout.raw_stride(table);
        for &(row, values) in rows {
            if row >= t.rows || values.len() != stride {
                return Err(Error::Layout(format!(
                    "table {table}: row {row} of {} with {} floats, {stride} expected",
                    t.rows,
                    values.len()
                )));
            }
            let start = t.base4 + row as u64 * t.stride4 as u64;
            let words = convert::from_raw(&self.layout, table, values);
            self.write_words(gpu, start, start + t.stride4 as u64, &words);
        }
        Ok(())
    }

    /// The weights of table `table`, `rows × width`, without optimizer state.
    pub fn read_weights(&self, gpu: &Gpu, table: usize) -> Result<Vec<f32>> {
        let raw = self.read_raw(gpu, table)?;
        let t = self.layout.tables[table];
        let (w, s) = (t.width4 as usize * 4, self.layout.raw_stride(table));
        Ok(raw.chunks(s).flat_map(|row| &row[..w]).copied().collect())
    }

    /// Sets the weights of table `table` (`rows × width`) and zeroes its optimizer state.
    pub fn write_weights(&self, gpu: &Gpu, table: usize, weights: &[f32]) -> Result<()> {
        let t = *self
            .layout
            .tables
            .get(table)
            .ok_or_else(|| Error::Layout(format!("table {table} does not exist")))?;
        let (w, s) = (t.width4 as usize * 4, self.layout.raw_stride(table));
        if weights.len() != t.rows as usize * w {
            return Err(Error::Layout(format!(
                "table {table} is {} × {w}, {} floats given",
                t.rows,
                weights.len()
            )));
        }
        let mut raw = vec![0f32; t.rows as usize * s];
        for (dst, src) in raw.chunks_mut(s).zip(weights.chunks(w)) {
            dst[..w].copy_from_slice(src);
        }
        self.write_raw(gpu, table, &raw)
    }

    /// The kernel `kernel` compiled for this storage's element type: the same entry point in the
    /// shader's variant with the element's chunk preludes (src/shaders.rs).
    pub fn kernel(&self, kernel: &Kernel) -> Kernel {
        Kernel {
            shader: shaders::for_element(kernel.shader, self.layout.element),
            ..*kernel
        }
    }

    /// The optimizer every table of the storage uses.
    pub fn optimizer(&self) -> SparseOptimizer {
        self.layout.optimizer
    }
}
