//! Checkpoint files: named f32 tensors, and f16 ones for f16 tables (`half.rs`) (shape + data: embedding tables, dense weights, optimizer
//! state, BatchNorm statistics…) and string metadata (the config text, step/epoch counters as JSON)
//! in one safetensors file, replaced atomically (see [`write_atomically`]) so that a crash never
//! loses the previous checkpoint or leaves a torn one.
//!
//! Reading validates everything and never panics: a missing or truncated file, a tensor of another
//! dtype, a tensor or key that is absent or has another shape than the caller expects are each an
//! [`Error::Checkpoint`] naming the file and the tensor or key. This layer knows nothing about models;
//! the trainer decides the names.

mod atomic;
mod half;
mod header;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_half;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use safetensors::tensor::Metadata;
use safetensors::Dtype;
use serde::{de::DeserializeOwned, Serialize};

use crate::{Error, Result};
pub(crate) use atomic::fsync_directory;
pub use atomic::{remove_leftover_temporaries, write_atomically};
pub use half::HalfTensor;

/// One named tensor: row-major f32 data and its shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Dimensions, outermost first (empty for a scalar).
    pub shape: Vec<usize>,
    /// `shape.iter().product()` values.
    pub data: Vec<f32>,
}

/// Tensors and metadata, in memory; written and read as one safetensors file.
#[derive(Debug, Clone, Default)]
pub struct Checkpoint {
    tensors: BTreeMap<String, Tensor>,
    /// f16 tensors (`half.rs`); no name is in both maps.
    halves: BTreeMap<String, HalfTensor>,
    metadata: BTreeMap<String, String>,
    /// The file it was read from, for error messages.
    file: Option<PathBuf>,
}

/// safetensors stores its metadata under this key, so no tensor may use it.
const RESERVED: &str = "__metadata__";

impl Checkpoint {
    /// An empty checkpoint.
    pub fn new() -> Self {
        Self::default()
    }

    fn error(&self, key: Option<&str>, message: impl std::fmt::Display) -> Error {
        let file = self.file.clone().unwrap_or_else(|| "(not written)".into());
        Error::checkpoint(file, key, message)
    }

    /// Adds (or replaces) tensor `name`; `data` must hold the product of `shape` values.
    pub fn insert_tensor(&mut self, name: &str, shape: &[usize], data: Vec<f32>) -> Result<()> {
        let expected = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        if expected != Some(data.len()) {
            let message = format!("shape {shape:?} does not hold {} values", data.len());
            return Err(self.error(Some(name), message));
        }
        if name == RESERVED {
            return Err(self.error(Some(name), "the name is reserved by safetensors"));
        }
        let shape = shape.to_vec();
        self.halves.remove(name);
        self.tensors.insert(name.to_owned(), Tensor { shape, data });
        Ok(())
    }

    /// Adds (or replaces) the metadata string `key`.
    pub fn insert_metadata(&mut self, key: &str, value: impl Into<String>) {
        self.metadata.insert(key.to_owned(), value.into());
    }

    /// Stores `value` as JSON under `key` (counters, small structured state).
    pub fn insert_json<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<()> {
        let text = serde_json::to_string(value)
            .map_err(|e| self.error(Some(key), format!("cannot encode as JSON: {e}")))?;
        self.insert_metadata(key, text);
        Ok(())
    }

    /// f32 tensor names, sorted (f16 ones: [`halves`](Self::halves)).
    pub fn tensor_names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// Metadata keys, sorted.
    pub fn metadata_keys(&self) -> impl Iterator<Item = &str> {
        self.metadata.keys().map(String::as_str)
    }

    /// Every tensor by name.
    pub fn tensors(&self) -> &BTreeMap<String, Tensor> {
        &self.tensors
    }

    /// Tensor `name`, which must exist and have exactly `shape`.
    pub fn tensor(&self, name: &str, shape: &[usize]) -> Result<&[f32]> {
        let tensor = self.tensors.get(name).ok_or_else(|| {
            let names = self.tensors.keys().take(8).cloned().collect::<Vec<_>>();
            if self.halves.contains_key(name) {
                return self.error(Some(name), "an F16 tensor where F32 is expected");
            }
            let message = format!(
                "no such tensor (the file has {}: {names:?}{})",
                self.tensors.len(),
                if self.tensors.len() > 8 { " …" } else { "" }
            );
            self.error(Some(name), message)
        })?;
        if tensor.shape != shape {
            let message = format!("shape {:?} where {shape:?} is expected", tensor.shape);
            return Err(self.error(Some(name), message));
        }
        Ok(&tensor.data)
    }

    /// Removes and returns tensor `name`, which must exist and have exactly `shape` (moves the data
    /// out without a copy, for loading large tables).
    pub fn take_tensor(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        self.tensor(name, shape)?;
        let tensor = self.tensors.remove(name).expect("tensor() found it");
        Ok(tensor.data)
    }

    /// Metadata string `key`, which must exist.
    pub fn metadata(&self, key: &str) -> Result<&str> {
        self.metadata
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| self.error(Some(key), "no such metadata key"))
    }

    /// Metadata `key` decoded from JSON.
    pub fn json<T: DeserializeOwned>(&self, key: &str) -> Result<T> {
        serde_json::from_str(self.metadata(key)?)
            .map_err(|e| self.error(Some(key), format!("not the JSON expected: {e}")))
    }

    /// Writes the checkpoint to `path` atomically: the previous file at `path`, if any, stays
    /// readable until the new one is complete and durable. The same checkpoint always gives the
    /// same bytes (sorted header; see `header.rs`), so two identical runs give identical files.
    pub fn write(&self, path: &Path) -> Result<()> {
        write_atomically(path, |temporary| {
            header::write_file(temporary, &self.tensors, &self.halves, &self.metadata)
        })
    }

    /// Reads and validates the checkpoint at `path`: every tensor must be f32 or f16 and the file exactly
    /// as long as its header says. Tensors are read straight into their vectors, so the peak memory
    /// is the checkpoint's size, not twice it.
    pub fn read(path: &Path) -> Result<Checkpoint> {
        let fail = |key: Option<&str>, message: String| Error::checkpoint(path, key, message);
        let io = |e: std::io::Error| fail(None, format!("cannot read: {e}"));
        let mut file = File::open(path).map_err(io)?;
        let file_len = file.metadata().map_err(io)?.len();
        let torn = |what: String| {
            let message = format!(
                "not a complete safetensors file ({file_len} bytes; truncated or torn?): {what}"
            );
            fail(None, message)
        };
        let header = read_header(&mut file, file_len).map_err(torn)?;
        let mut tensors = BTreeMap::new();
        let mut halves = BTreeMap::new();
        for name in header.offset_keys() {
            let info = header.info(&name).expect("offset_keys lists known tensors");
            let bytes = info.data_offsets.1 - info.data_offsets.0;
            let read = |file: &mut File, into: &mut [u8]| {
                file.read_exact(into)
                    .map_err(|e| fail(Some(&name), format!("reading the data failed: {e}")))
            };
            let shape = info.shape.clone();
            if info.dtype == Dtype::F16 {
                let mut bits = vec![0u16; bytes / 2];
                read(&mut file, bytemuck::cast_slice_mut(&mut bits))?;
                bits.iter_mut().for_each(|v| *v = u16::from_le(*v));
                halves.insert(name, HalfTensor { shape, bits });
                continue;
            }
            if info.dtype != Dtype::F32 {
                let message = format!(
                    "dtype {:?}, but checkpoints hold F32 and F16 tensors",
                    info.dtype
                );
                return Err(fail(Some(&name), message));
            }
            let mut data = vec![0f32; bytes / 4];
            read(&mut file, bytemuck::cast_slice_mut(&mut data))?;
            if cfg!(target_endian = "big") {
                data.iter_mut()
                    .for_each(|v| *v = f32::from_bits(v.to_bits().swap_bytes()));
            }
            tensors.insert(name, Tensor { shape, data });
        }
        let metadata = header
            .metadata()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        Ok(Checkpoint {
            tensors,
            halves,
            metadata,
            file: Some(path.to_path_buf()),
        })
    }
}

/// The largest header safetensors itself accepts.
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// Reads and validates the header (safetensors checks the offsets are contiguous and match each
/// shape and dtype) and that the file holds exactly the data it promises; leaves `file` at the data.
fn read_header(file: &mut File, file_len: u64) -> std::result::Result<Metadata, String> {
    let mut len = [0u8; 8];
    file.read_exact(&mut len)
        .map_err(|e| format!("no 8-byte header length: {e}"))?;
    let header_len = u64::from_le_bytes(len);
    if header_len > MAX_HEADER_BYTES || 8 + header_len > file_len {
        return Err(format!("header length {header_len} does not fit"));
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header)
        .map_err(|e| format!("cannot read the header: {e}"))?;
    let metadata: Metadata =
        serde_json::from_slice(&header).map_err(|e| format!("the header is not valid: {e}"))?;
    let promised = 8 + header_len + metadata.data_len() as u64;
    if promised != file_len {
        return Err(format!("the header promises {promised} bytes"));
    }
    Ok(metadata)
}
