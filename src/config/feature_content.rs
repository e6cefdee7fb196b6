//! The file forms of the content feature kinds (`hashid`, `similarity`; docs/features.md), read by
//! `feature_file` like every other kind and turned into their [`FeatureKind`] here.

use serde::Deserialize;

use super::feature::{buckets_1024, default_radices, one_u64};
use super::{Dtype, Feature, FeatureKind};
use crate::kernels::content::Measure;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HashIdFile {
    name: String,
    /// The `kind` key, which chose this struct (serde's tagged path removes it before).
    #[serde(default, rename = "kind")]
    _kind: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    column: Option<String>,
    /// This feature's embedding weight decay (overrides `train.sparse_weight_decay`).
    #[serde(default)]
    embedding_l2: Option<f32>,
    /// This feature's table element type (overrides `model.dtype`).
    #[serde(default)]
    dtype: Option<Dtype>,
    embeddings: String,
    bits: u32,
    #[serde(default = "default_radices")]
    radices: Vec<u32>,
    #[serde(default = "one_u64")]
    seed: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SimilarityFile {
    name: String,
    /// The `kind` key, which chose this struct (serde's tagged path removes it before).
    #[serde(default, rename = "kind")]
    _kind: Option<serde::de::IgnoredAny>,
    /// This feature's embedding weight decay (overrides `train.sparse_weight_decay`).
    #[serde(default)]
    embedding_l2: Option<f32>,
    /// This feature's table element type (overrides `model.dtype`).
    #[serde(default)]
    dtype: Option<Dtype>,
    user: String,
    item: String,
    user_embeddings: String,
    item_embeddings: String,
    #[serde(default = "cosine")]
    measure: Measure,
    #[serde(default = "buckets_1024")]
    buckets: u32,
    #[serde(default = "default_radices")]
    radices: Vec<u32>,
}

fn cosine() -> Measure {
    Measure::Cosine
}

impl From<HashIdFile> for Feature {
    fn from(f: HashIdFile) -> Self {
        Feature {
            name: f.name,
            column: f.column,
            embedding_l2: f.embedding_l2,
            dtype: f.dtype,
            kind: FeatureKind::HashId {
                embeddings: f.embeddings,
                bits: f.bits,
                radices: f.radices,
                seed: f.seed,
            },
        }
    }
}

impl From<SimilarityFile> for Feature {
    fn from(f: SimilarityFile) -> Self {
        Feature {
            name: f.name,
            column: None,
            embedding_l2: f.embedding_l2,
            dtype: f.dtype,
            kind: FeatureKind::Similarity {
                user: f.user,
                item: f.item,
                user_embeddings: f.user_embeddings,
                item_embeddings: f.item_embeddings,
                measure: f.measure,
                buckets: f.buckets,
                radices: f.radices,
            },
        }
    }
}
