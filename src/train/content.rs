//! The content features' inputs, built where the device is (METHODS.md §1.3, §1.4): each HashID
//! feature's embedding file read and hashed by the SimHash kernel, each similarity feature's two
//! embedding files read. The result is handed to the encoder before its fit
//! ([`crate::data::encode::content`] says why this is the seam). Paths in the model file are
//! relative to the model file's folder (or absolute).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{FeatureKind, ModelConfig};
use crate::data::embeddings::EmbeddingTable;
use crate::data::encode::ContentTables;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::kernels::content::{hyperplanes, SimHash};

/// `path` as the model file `config_file` names it: relative to its folder unless absolute.
pub fn resolve_path(config_file: &str, path: &str) -> PathBuf {
    let folder = Path::new(config_file).parent().unwrap_or(Path::new(""));
    folder.join(path)
}

/// Reads the embedding file at model key `key`; an error names the model file, the key and the
/// embedding file's own error.
fn read_table(config_file: &str, key: String, path: &str) -> Result<Arc<EmbeddingTable>> {
    let full = resolve_path(config_file, path);
    EmbeddingTable::read(&full)
        .map(Arc::new)
        .map_err(|e| Error::Config {
            file: config_file.to_string(),
            key,
            message: format!("embedding file {}: {e}", full.display()),
        })
}

/// id → SimHash code of every row of `table` under the planes of (`seed`, `bits`), on `gpu`.
pub fn simhash_codes(
    gpu: &Gpu,
    table: &EmbeddingTable,
    bits: u32,
    seed: u64,
) -> Result<HashMap<String, u32>> {
    let planes = hyperplanes(seed, bits, table.dim);
    let codes = SimHash::new(gpu, table.dim, bits, &planes)?.codes(gpu, &table.vectors)?;
    Ok(table.ids.iter().cloned().zip(codes).collect())
}

/// What the content features of `config` (read from `config_file`) need; empty, and no device
/// work, for a model without them.
pub fn content_tables(gpu: &Gpu, config: &ModelConfig, config_file: &str) -> Result<ContentTables> {
    let mut content = ContentTables::default();
    for (i, feature) in config.features.iter().enumerate() {
        let key = |k: &str| format!("feature[{i}].{k}");
        match &feature.kind {
            FeatureKind::HashId {
                embeddings,
                bits,
                seed,
                ..
            } => {
                let table = read_table(config_file, key("embeddings"), embeddings)?;
                let codes = simhash_codes(gpu, &table, *bits, *seed)?;
                content.codes.insert(feature.name.clone(), Arc::new(codes));
            }
            FeatureKind::Similarity {
                user_embeddings,
                item_embeddings,
                ..
            } => {
                let users = read_table(config_file, key("user_embeddings"), user_embeddings)?;
                let items = if item_embeddings == user_embeddings {
                    Arc::clone(&users)
                } else {
                    read_table(config_file, key("item_embeddings"), item_embeddings)?
                };
                content
                    .similarity
                    .insert(feature.name.clone(), (users, items));
            }
            _ => {}
        }
    }
    Ok(content)
}
