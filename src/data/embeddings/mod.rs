//! Embedding files: pre-trained vectors by id (issue 16; METHODS.md §1.3 and §1.4). A content
//! embedding feeds HashID's SimHash, a user-side and an item-side embedding feed the similarity
//! feature, and `wgrec pretrain graphsage` writes one. This module reads and writes them; it knows
//! nothing about what the vectors mean. GPU-free.
//!
//! An [`EmbeddingTable`] is `N` ids, each with a vector of `D` f32 components. Ids are strings,
//! spelt as wgrec's data files spell them (an integer id is its decimal text), unique and non-empty;
//! every component is finite.
//!
//! # Formats
//! [`EmbeddingTable::read`] picks the format by the file's extension:
//! - **`.safetensors`**: a tensor `vectors` of shape `[N, D]` (dtype F32; F64, F16 and BF16 are
//!   converted to f32) and a tensor `ids` of shape `[N]` (I64, I32, U32 or U64; each id becomes its
//!   decimal text). Other tensors are ignored. safetensors holds no strings: ids that are not
//!   integers need the text format. [`EmbeddingTable::write`] writes this format (I64 ids, F32
//!   vectors); from Python: `safetensors.numpy.save_file({"ids": ids, "vectors": v}, path)`.
//! - **`.npy`**: `X.npy` holds the vectors, `[N, D]`, dtype `<f4` or `<f8`, C order (as
//!   `numpy.save` writes a C-contiguous array; a Fortran-order array or any other dtype is refused).
//!   The ids live beside it, in `X.ids.npy` (`[N]`, dtype `<i8`, `<i4`, `<u4` or `<u8`) or, for
//!   string ids, in `X.ids.txt` (one id per line, nothing else on the line); exactly one of the two.
//! - **anything else: text**, one row per line: `id<TAB>v1 v2 …`, the components separated by
//!   spaces or by commas. A line without a tab may separate the id from the components by spaces
//!   (`id v1 v2 …`), so its id cannot hold a space. Lines whose first non-blank character is `#`
//!   and blank lines are skipped. `D` is the first row's width; every row must have it.
//!   [`EmbeddingTable::write_text`] writes `id<TAB>v1 v2 …` with each component in the shortest
//!   form that reads back to the same f32.
//!
//! # Errors
//! Every problem is a [`crate::Error::Data`] naming the file: in a text file the 1-based line and,
//! for a component, its 1-based index as the column (`emb.txt:7: column 3: …`); in a binary file
//! the tensor or array and the 0-based row. Refused: a wrong width, a component that is not a
//! number, NaN or infinite (also after conversion to f32), an empty or duplicate id (both rows
//! named), no rows, `D = 0`, and any dtype, rank or shape other than the above.

mod check;
mod decode;
#[cfg(test)]
mod error_tests;
mod npy;
mod npy_header;
mod safetensors;
#[cfg(test)]
mod tests;
mod text;

use std::collections::HashMap;
use std::path::Path;

use crate::Result;
use check::Source;

/// A table of pre-trained vectors: `ids[i]`'s vector is `vectors[i*dim..(i+1)*dim]`.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingTable {
    /// One unique, non-empty id per row.
    pub ids: Vec<String>,
    /// Components per vector (≥ 1).
    pub dim: usize,
    /// `ids.len() * dim` finite values, row after row.
    pub vectors: Vec<f32>,
}

impl EmbeddingTable {
    /// Checks shapes, finiteness (no NaN/inf), non-empty unique ids; errors name the table as
    /// `embedding table (in memory)` and the 0-based row.
    pub fn new(ids: Vec<String>, dim: usize, vectors: Vec<f32>) -> Result<Self> {
        let source = Source::rows("embedding table (in memory)", None);
        check::table(&source, &source, ids, dim, vectors)
    }

    /// Reads by extension: `.safetensors`, `.npy`, anything else = delimited text (see the
    /// module docs for each format).
    pub fn read(path: &Path) -> Result<Self> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("safetensors") => safetensors::read(path),
            Some("npy") => npy::read(path),
            _ => text::read(path),
        }
    }

    /// Writes safetensors (`ids` as I64, `vectors` as F32) atomically. Every id must be an
    /// integer in its canonical decimal spelling ([`Self::ids_are_integers`]); otherwise this is
    /// an error that says to use the text format.
    pub fn write(&self, path: &Path) -> Result<()> {
        safetensors::write(self, path)
    }

    /// Writes delimited text `id<TAB>v1 v2 …` atomically (for people to read, and for string ids).
    /// An id the text format cannot hold (one with a tab or line break, or that starts with `#`) is
    /// an error, and so is a path ending in `.safetensors` or `.npy` (reading would take it for
    /// that format).
    pub fn write_text(&self, path: &Path) -> Result<()> {
        text::write(self, path)
    }

    /// Whether every id is an i64 spelt as Rust and Python print it (`-12`, not `+12` or `012`),
    /// so that [`Self::write`] can store it and reading gives back the same text. (A U64 id past
    /// i64's range, which reading accepts, is not: such a table is written as text.)
    pub fn ids_are_integers(&self) -> bool {
        self.ids.iter().all(|id| integer_id(id).is_some())
    }

    /// Number of rows (ids).
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the table has no rows (never true of a checked table).
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Row `i`'s vector; panics if `i >= self.len()`, like slice indexing.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.vectors[i * self.dim..(i + 1) * self.dim]
    }

    /// id → row index (built once; the table's ids are unique).
    pub fn index(&self) -> HashMap<String, u32> {
        self.ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), i as u32))
            .collect()
    }
}

/// `id` as an i64 when it is one in canonical decimal spelling.
fn integer_id(id: &str) -> Option<i64> {
    id.parse::<i64>().ok().filter(|v| v.to_string() == id)
}
