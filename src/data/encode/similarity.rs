//! Similarity features (METHODS.md §1.4): the cosine (or dot) of a user's and an item's
//! pre-trained vectors, quantised into ordered buckets and fed to MNS like a numeric value.
//!
//! Fit: every training row with both ids in their files gives `s` (f64,
//! [`similarity_value_f64`]); the `K = buckets − 1` boundaries are the `k/buckets` quantiles of
//! those values, each placed midway between the two sorted neighbours it separates (so no training
//! value sits on a boundary, where f32 and f64 could disagree), then deduplicated. Encode: value
//! `1 + #{k : s ≥ boundary_k}` ([`bucket_of`]), or 0 when either id has no vector (counted on the
//! training split, [`MissingIds`]). The value is computed here, on the host, in f64: the same
//! values as the kernel's reference.
//!
//! Why not the GPU op ([`crate::kernels::content::SimilarityOp`]) inside the step: the value picks
//! which MNS digit rows the step reads and updates, and the step's sparse update plan (rows
//! touched, lookups per row; DESIGN.md §One training step) and the gather's range checks are built
//! on the host from the batch's values before upload. A value born on the GPU would need that plan
//! built on the GPU (a sort) or read back every step. The op is ready for a path without a plan
//! (inference), or for the day the plan moves to the GPU.
//!
//! Saved as `similarity-<i>.json` (boundaries, missing counts) and the two pre-trained tables as
//! `similarity-<i>-users` and `-items` beside `encoder.json` (`.safetensors` when the ids are
//! integers, else `.txt`), so serving needs no file of the user's.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::columns::{Lookup, Place};
use super::content::{bases_for, load_json, save_json, ContentTables, MissingIds};
use super::saved::SavedFeature;
use super::{FeatureEncoder, FeatureInput};
use crate::config::{Feature, FeatureKind};
use crate::data::batch::{Batch, ColumnData};
use crate::data::embeddings::EmbeddingTable;
use crate::data::schema::ColumnKind;
use crate::error::{Error, Result};
use crate::kernels::content::{bucket_of, similarity_value_f64, Measure};
use crate::kernels::embedding::MnsBase;

/// The two pre-trained tables and their id → row maps.
#[derive(Debug, Clone)]
struct Tables {
    users: Arc<EmbeddingTable>,
    items: Arc<EmbeddingTable>,
    user_rows: Arc<HashMap<String, u32>>,
    item_rows: Arc<HashMap<String, u32>>,
}

/// The encoder of one similarity feature.
#[derive(Debug, Clone)]
pub struct Similarity {
    name: String,
    columns: [usize; 2],
    measure: Measure,
    buckets: u32,
    radices: Vec<u32>,
    tables: Option<Tables>,
    values: Vec<f64>,
    missing: MissingIds,
    missing_seen: HashSet<(bool, String)>,
    boundaries: Vec<f32>,
    bases: Vec<MnsBase>,
}

/// `similarity-<i>.json`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedSimilarity {
    measure: Measure,
    boundaries: Vec<f32>,
    missing: MissingIds,
}

impl Similarity {
    /// Looks up the `user` and `item` columns, which must be categorical.
    pub fn new(lookup: &Lookup, index: usize, feature: &Feature) -> Result<Self> {
        let FeatureKind::Similarity {
            ref user,
            ref item,
            measure,
            buckets,
            ref radices,
            ..
        } = feature.kind
        else {
            unreachable!("a similarity feature")
        };
        let column = |key: &str, name: &str| {
            let key = format!("feature[{index}].{key}");
            lookup.column_of_type(&key, name, "categorical", |k| *k == ColumnKind::Categorical)
        };
        Ok(Similarity {
            name: feature.name.clone(),
            columns: [column("user", user)?, column("item", item)?],
            measure,
            buckets,
            radices: radices.clone(),
            tables: None,
            values: Vec::new(),
            missing: MissingIds::default(),
            missing_seen: HashSet::new(),
            boundaries: Vec::new(),
            bases: Vec::new(),
        })
    }

    /// The ids of row `r` (user, item) and their table rows, `None` for an id with no vector.
    fn rows_of<'b>(&self, batch: &'b Batch, r: usize) -> [(Option<u32>, &'b str); 2] {
        let t = self
            .tables
            .as_ref()
            .expect("tables attached before fit and encode");
        let id = |c: usize| match &batch.columns[self.columns[c]] {
            ColumnData::Categorical(tokens) => tokens.get(r),
            _ => unreachable!("categorical columns resolved"),
        };
        let (u, i) = (id(0), id(1));
        [
            (t.user_rows.get(u).copied(), u),
            (t.item_rows.get(i).copied(), i),
        ]
    }

    /// Sets the pre-trained tables; `Err` (the message) unless their widths match.
    fn set_tables(
        &mut self,
        users: Arc<EmbeddingTable>,
        items: Arc<EmbeddingTable>,
    ) -> std::result::Result<(), String> {
        if users.dim != items.dim {
            return Err(format!(
                "user vectors have {} components, item vectors {}: they must match",
                users.dim, items.dim
            ));
        }
        self.tables = Some(Tables {
            user_rows: Arc::new(users.index()),
            item_rows: Arc::new(items.index()),
            users,
            items,
        });
        Ok(())
    }

    fn similarity(&self, u: u32, i: u32) -> f64 {
        let t = self.tables.as_ref().expect("tables attached");
        let (u, i) = (t.users.row(u as usize), t.items.row(i as usize));
        similarity_value_f64(u, i, self.measure)
    }
}

/// `K = buckets − 1` quantile boundaries of `values` (sorted here), each midway between the sorted
/// neighbours it separates, as strictly ascending f32.
pub fn quantile_boundaries(values: &mut [f64], buckets: u32) -> Vec<f32> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let mut out: Vec<f32> = (1..buckets as usize)
        .map(|k| k * n / buckets as usize)
        .filter(|&at| at > 0 && at < n)
        .map(|at| ((values[at - 1] + values[at]) / 2.0) as f32)
        .collect();
    out.dedup();
    out
}

impl FeatureEncoder for Similarity {
    fn kind(&self) -> &'static str {
        "similarity"
    }

    fn attach_content(&mut self, place: &Place, content: &ContentTables) -> Result<()> {
        let (users, items) = content.similarity.get(&self.name).ok_or_else(|| {
            place.config_error("user_embeddings", "no tables were read for this feature")
        })?;
        let (users, items) = (Arc::clone(users), Arc::clone(items));
        self.set_tables(users, items)
            .map_err(|m| place.config_error("item_embeddings", m))
    }

    fn fit(&mut self, batch: &Batch, rows: &[usize]) {
        if self.tables.is_none() {
            return;
        }
        for &r in rows {
            let [(u, user), (i, item)] = self.rows_of(batch, r);
            self.missing.see(u.is_none() || i.is_none());
            for (side, (row, id)) in [(false, (u, user)), (true, (i, item))] {
                if row.is_none() && self.missing_seen.insert((side, id.to_string())) {
                    self.missing.missing_ids += 1;
                }
            }
            if let (Some(u), Some(i)) = (u, i) {
                let s = self.similarity(u, i);
                self.values.push(s);
            }
        }
    }

    fn finish(&mut self, place: &Place, _data_file: Option<&str>) -> Result<()> {
        if self.tables.is_none() {
            return Err(place.config_error(
                "user_embeddings",
                "the encoder was fitted without the feature's tables: read them and attach them \
                 first (Encoder::attach_content)",
            ));
        }
        let mut values = std::mem::take(&mut self.values);
        self.boundaries = quantile_boundaries(&mut values, self.buckets);
        if values.is_empty() {
            return Err(place.config_error(
                "user_embeddings",
                "no training row has both its user and its item id in the embedding files",
            ));
        }
        self.bases = bases_for(&self.radices, self.boundaries.len() as u64 + 1);
        self.missing_seen = HashSet::new();
        Ok(())
    }

    fn encode(
        &self,
        batch: &Batch,
        _file: &str,
        rows: &[usize],
        _features: &[Box<dyn FeatureEncoder>],
    ) -> Result<FeatureInput> {
        let value = |r: usize| match self.rows_of(batch, r) {
            [(Some(u), _), (Some(i), _)] => bucket_of(self.similarity(u, i), &self.boundaries),
            _ => 0,
        };
        Ok(FeatureInput::Ids {
            offsets: (0..=rows.len() as u32).collect(),
            rows: rows.iter().map(|&r| value(r)).collect(),
        })
    }

    fn save(&self, dir: &Path, index: usize, saved: &mut SavedFeature) -> Result<()> {
        let t = self.tables.as_ref().expect("a fitted similarity feature");
        save_table(&t.users, dir, &format!("similarity-{index}-users"))?;
        save_table(&t.items, dir, &format!("similarity-{index}-items"))?;
        let name = format!("similarity-{index}.json");
        let file = SavedSimilarity {
            measure: self.measure,
            boundaries: self.boundaries.clone(),
            missing: self.missing,
        };
        save_json(dir, &name, &file)?;
        saved.fitted = Some(name);
        saved.radices = Some(self.radices.clone());
        Ok(())
    }

    fn load(&mut self, dir: &Path, file: &Path, key: &str, s: &SavedFeature) -> Result<()> {
        let saved: SavedSimilarity = load_json(dir, file, key, s.fitted.as_deref())?;
        let ascending = saved.boundaries.windows(2).all(|w| w[0] < w[1]);
        if saved.measure != self.measure || s.radices.as_ref() != Some(&self.radices) || !ascending
        {
            return Err(Error::checkpoint(
                file,
                Some(key),
                format!(
                    "feature {:?}: saved measure {:?}, radices {:?} and boundaries (ascending: \
                     {ascending}); the model has {:?} and {:?}",
                    s.name, saved.measure, s.radices, self.measure, self.radices
                ),
            ));
        }
        let prefix = s
            .fitted
            .as_deref()
            .unwrap_or_default()
            .trim_end_matches(".json");
        let table = |side: &str| load_table(dir, &format!("{prefix}-{side}")).map(Arc::new);
        self.set_tables(table("users")?, table("items")?)
            .map_err(|m| Error::checkpoint(file, Some(key), m))?;
        self.missing = saved.missing;
        self.bases = bases_for(&self.radices, saved.boundaries.len() as u64 + 1);
        self.boundaries = saved.boundaries;
        Ok(())
    }

    fn missing_ids(&self) -> Option<MissingIds> {
        Some(self.missing)
    }

    fn table_rows(&self) -> u32 {
        MnsBase::rows(&self.bases)
    }

    fn mns(&self) -> Vec<MnsBase> {
        self.bases.clone()
    }

    fn boxed_clone(&self) -> Box<dyn FeatureEncoder> {
        Box::new(self.clone())
    }
}

/// Writes a pre-trained table beside `encoder.json` as `<stem>.safetensors` when its ids are
/// integers (binary: a million rows of width 32 are 136 MB, against ~350 MB of text), else as
/// `<stem>.txt`, the format that holds any id.
fn save_table(table: &EmbeddingTable, dir: &Path, stem: &str) -> Result<()> {
    if table.ids_are_integers() {
        table.write(&dir.join(format!("{stem}.safetensors")))
    } else {
        table.write_text(&dir.join(format!("{stem}.txt")))
    }
}

/// Reads back what [`save_table`] wrote: the `.safetensors` file when there is one, else the text.
fn load_table(dir: &Path, stem: &str) -> Result<EmbeddingTable> {
    let binary = dir.join(format!("{stem}.safetensors"));
    if binary.exists() {
        EmbeddingTable::read(&binary)
    } else {
        EmbeddingTable::read(&dir.join(format!("{stem}.txt")))
    }
}
