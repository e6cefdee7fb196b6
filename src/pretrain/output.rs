//! What `wgrec pretrain graphsage` leaves in its output folder: `users` and `items` embedding
//! files in the [`EmbeddingTable`] format (`.safetensors` when every id is an integer, `.tsv`
//! otherwise) and `pretrain.json` (the configuration, the graph's size and each epoch's loss,
//! held-out AUC, seconds and edges/s). Every file is written atomically.

use std::path::{Path, PathBuf};

use super::edges::EdgeList;
use super::graph::Graph;
use super::train::Trained;
use super::GraphSageConfig;
use crate::checkpoint::write_atomically;
use crate::data::EmbeddingTable;
use crate::error::{Error, Result};

/// The run's summary, as `pretrain.json` holds it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary<'a> {
    /// The hyper-parameters.
    pub config: &'a GraphSageConfig,
    /// The data folders read (`--data`, then each `--extra`).
    pub data: Vec<String>,
    /// User nodes.
    pub users: u32,
    /// Item nodes.
    pub items: u32,
    /// Unique training edges.
    pub train_edges: usize,
    /// Held-out edges.
    pub held_out_edges: usize,
    /// Per epoch.
    pub epochs: &'a [super::train::EpochReport],
    /// The adapter it ran on.
    pub adapter: String,
}

/// Writes one side's table; returns the path written.
fn write_side(
    dir: &Path,
    name: &str,
    ids: &[String],
    dim: usize,
    vectors: &[f32],
) -> Result<PathBuf> {
    let table = EmbeddingTable::new(ids.to_vec(), dim, vectors.to_vec())?;
    if table.ids_are_integers() {
        let path = dir.join(format!("{name}.safetensors"));
        table.write(&path)?;
        Ok(path)
    } else {
        let path = dir.join(format!("{name}.tsv"));
        table.write_text(&path)?;
        Ok(path)
    }
}

/// Writes the two embedding files and `pretrain.json` into `dir` (created if missing); returns
/// the paths written.
pub fn write_outputs(
    dir: &Path,
    list: &EdgeList,
    graph: &Graph,
    run: &Trained,
    summary: &Summary<'_>,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::output(dir, format!("cannot create: {e}")))?;
    let d = summary.config.dim as usize;
    let split = graph.users as usize * d;
    let (users, items) = run.embeddings.split_at(split);
    let mut written = vec![
        write_side(dir, "users", &list.users.names, d, users)?,
        write_side(dir, "items", &list.items.names, d, items)?,
    ];
    let json = dir.join("pretrain.json");
    let text = serde_json::to_string_pretty(summary)
        .map_err(|e| Error::output(&json, format!("cannot serialise: {e}")))?;
    write_atomically(&json, |tmp| {
        std::fs::write(tmp, text.as_bytes())
            .map_err(|e| Error::output(tmp, format!("write failed: {e}")))
    })?;
    written.push(json);
    Ok(written)
}
