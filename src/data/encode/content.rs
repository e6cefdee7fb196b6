//! What the content features (HashID, similarity; METHODS.md §1.3, §1.4) need from outside the
//! data layer, and what they report back.
//!
//! The data layer is GPU-free, but HashID codes come from the SimHash kernel. So the caller that
//! owns the device (`wgrec train` through [`crate::train::content_tables`]) reads the embedding
//! files, computes the codes, and hands both in as a [`ContentTables`] before the fit
//! ([`super::Encoder::attach_content`], or [`super::Encoder::fit_file_with`]). That is the one
//! seam: the encoder never opens an embedding file itself (it would need the model file's folder
//! to resolve its path) and never runs a kernel. What the features fit (the id → code map, the
//! pre-trained tables, the bucket boundaries) is saved with the encoder, so a loaded encoder
//! (a `Predictor`, a resumed run) needs neither the files nor the GPU.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::checkpoint::write_atomically;
use crate::data::embeddings::EmbeddingTable;
use crate::error::{Error, Result};
use crate::kernels::embedding::MnsBase;

/// The content each feature needs, keyed by feature name.
#[derive(Debug, Clone, Default)]
pub struct ContentTables {
    /// HashID features: id → SimHash code (computed by the kernel).
    pub codes: HashMap<String, Arc<HashMap<String, u32>>>,
    /// Similarity features: (user table, item table) as read from their files.
    pub similarity: HashMap<String, (Arc<EmbeddingTable>, Arc<EmbeddingTable>)>,
}

/// Ids of the training split with no vector in a content feature's embedding file: they encode
/// as the feature's missing value 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingIds {
    /// Training rows the feature read.
    pub rows: u64,
    /// Of those, rows with an id that has no vector (similarity: either side).
    pub missing_rows: u64,
    /// Distinct ids without a vector (similarity: user and item ids together).
    pub missing_ids: u64,
}

impl MissingIds {
    /// Counts one training row, `missing` when one of its ids had no vector.
    pub(super) fn see(&mut self, missing: bool) {
        self.rows += 1;
        self.missing_rows += u64::from(missing);
    }
}

/// Writes `value` as JSON to `dir/name`, atomically.
pub(super) fn save_json<T: Serialize>(dir: &std::path::Path, name: &str, value: &T) -> Result<()> {
    let path = dir.join(name);
    let json = serde_json::to_vec(value).map_err(|e| Error::data(path.display(), e))?;
    write_atomically(&path, |temporary| {
        std::fs::write(temporary, &json).map_err(|e| Error::data(temporary.display(), e))
    })
}

/// Reads the JSON file `dir/name` that `saved`'s entry of `encoder.json` (`file`, `key`) names.
pub(super) fn load_json<T: for<'de> Deserialize<'de>>(
    dir: &std::path::Path,
    file: &std::path::Path,
    key: &str,
    name: Option<&str>,
) -> Result<T> {
    let bad = |m: String| Error::checkpoint(file, Some(key), m);
    let name = name.ok_or_else(|| bad("the feature names no file of what it fitted".into()))?;
    let path = dir.join(name);
    let text = std::fs::read(&path).map_err(|e| bad(format!("cannot read {name}: {e}")))?;
    serde_json::from_slice(&text).map_err(|e| bad(format!("{name}: {e}")))
}

/// The MNS bases of values `0..=top`: per radix the fewest digits `d ≥ 1` with `r^d > top`.
pub(super) fn bases_for(radices: &[u32], top: u64) -> Vec<MnsBase> {
    radices
        .iter()
        .map(|&radix| {
            let mut digits = 1;
            while u64::from(radix).saturating_pow(digits) <= top {
                digits += 1;
            }
            MnsBase { radix, digits }
        })
        .collect()
}
