//! HashID features (METHODS.md §1.3): the id's SimHash code, plus 1, as an MNS value; 0 is the
//! feature's own "missing" value, for an id with no content vector (counted on the training split,
//! [`MissingIds`]). The codes come from the SimHash kernel through [`ContentTables`] (the data
//! layer is GPU-free; see [`super::content`]); the bases hold every value up to `2^bits`.
//! Saved as `hashid-<i>.json` (bits, seed, missing counts, the id → code map) beside
//! `encoder.json`, so a loaded encoder needs neither the embedding file nor the GPU.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::columns::{Lookup, Place};
use super::content::{bases_for, load_json, save_json, ContentTables, MissingIds};
use super::saved::SavedFeature;
use super::{FeatureEncoder, FeatureInput};
use crate::config::{Feature, FeatureKind};
use crate::data::batch::{Batch, ColumnData};
use crate::data::schema::ColumnKind;
use crate::error::{Error, Result};
use crate::kernels::embedding::MnsBase;

/// The encoder of one HashID feature.
#[derive(Debug, Clone)]
pub struct HashId {
    name: String,
    column: usize,
    bits: u32,
    seed: u64,
    radices: Vec<u32>,
    /// id → code; attached before the fit, or loaded.
    codes: Option<Arc<HashMap<String, u32>>>,
    missing: MissingIds,
    missing_seen: HashSet<String>,
    bases: Vec<MnsBase>,
}

/// `hashid-<i>.json`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedHashId {
    bits: u32,
    seed: u64,
    missing: MissingIds,
    codes: BTreeMap<String, u32>,
}

impl HashId {
    /// Looks up the feature's id column, which must be categorical.
    pub fn new(lookup: &Lookup, index: usize, feature: &Feature) -> Result<Self> {
        let FeatureKind::HashId {
            bits,
            seed,
            ref radices,
            ..
        } = feature.kind
        else {
            unreachable!("a hashid feature")
        };
        let column =
            lookup.feature_column(index, feature, |k| Ok(*k == ColumnKind::Categorical))?;
        Ok(HashId {
            name: feature.name.clone(),
            column,
            bits,
            seed,
            radices: radices.clone(),
            codes: None,
            missing: MissingIds::default(),
            missing_seen: HashSet::new(),
            bases: Vec::new(),
        })
    }

    fn value(&self, id: &str) -> u32 {
        let codes = self.codes.as_deref();
        codes.and_then(|c| c.get(id)).map_or(0, |&code| code + 1)
    }
}

impl FeatureEncoder for HashId {
    fn kind(&self) -> &'static str {
        "hashid"
    }

    fn attach_content(&mut self, place: &Place, content: &ContentTables) -> Result<()> {
        let codes = content.codes.get(&self.name).ok_or_else(|| {
            place.config_error("embeddings", "no codes were computed for this feature")
        })?;
        if let Some((id, code)) = codes.iter().find(|(_, &c)| u64::from(c) >> self.bits != 0) {
            let message = format!("id {id:?} has code {code}, past {} bits", self.bits);
            return Err(place.config_error("bits", message));
        }
        self.codes = Some(Arc::clone(codes));
        Ok(())
    }

    fn fit(&mut self, batch: &Batch, rows: &[usize]) {
        let (Some(codes), ColumnData::Categorical(tokens)) =
            (&self.codes, &batch.columns[self.column])
        else {
            return;
        };
        for &r in rows {
            let id = tokens.get(r);
            let missing = !codes.contains_key(id);
            self.missing.see(missing);
            if missing && self.missing_seen.insert(id.to_string()) {
                self.missing.missing_ids += 1;
            }
        }
    }

    fn finish(&mut self, place: &Place, _data_file: Option<&str>) -> Result<()> {
        if self.codes.is_none() {
            return Err(place.config_error(
                "embeddings",
                "the encoder was fitted without the feature's codes: compute them with the \
                 SimHash kernel and attach them first (Encoder::attach_content)",
            ));
        }
        self.bases = bases_for(&self.radices, 1u64 << self.bits);
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
        let ColumnData::Categorical(tokens) = &batch.columns[self.column] else {
            unreachable!("categorical column resolved")
        };
        Ok(FeatureInput::Ids {
            offsets: (0..=rows.len() as u32).collect(),
            rows: rows.iter().map(|&r| self.value(tokens.get(r))).collect(),
        })
    }

    fn save(&self, dir: &Path, index: usize, saved: &mut SavedFeature) -> Result<()> {
        let codes = self.codes.as_deref().cloned().unwrap_or_default();
        let name = format!("hashid-{index}.json");
        let file = SavedHashId {
            bits: self.bits,
            seed: self.seed,
            missing: self.missing,
            codes: codes.into_iter().collect(),
        };
        save_json(dir, &name, &file)?;
        saved.fitted = Some(name);
        saved.radices = Some(self.radices.clone());
        Ok(())
    }

    fn load(&mut self, dir: &Path, file: &Path, key: &str, s: &SavedFeature) -> Result<()> {
        let h: SavedHashId = load_json(dir, file, key, s.fitted.as_deref())?;
        if h.bits != self.bits || h.seed != self.seed || s.radices.as_ref() != Some(&self.radices) {
            return Err(Error::checkpoint(
                file,
                Some(key),
                format!(
                    "feature {:?}: saved bits {}, seed {} and radices {:?}; the model has {}, {} \
                     and {:?}",
                    s.name, h.bits, h.seed, s.radices, self.bits, self.seed, self.radices
                ),
            ));
        }
        if let Some((id, code)) = h
            .codes
            .iter()
            .find(|(_, &c)| u64::from(c) >> self.bits != 0)
        {
            let message = format!("id {id:?} has code {code}, past {} bits", self.bits);
            return Err(Error::checkpoint(file, Some(key), message));
        }
        self.missing = h.missing;
        self.codes = Some(Arc::new(h.codes.into_iter().collect()));
        self.bases = bases_for(&self.radices, 1u64 << self.bits);
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
