//! Categorical features: one id per sample, one table row per id from a [`Vocabulary`] counted on
//! the training split with the feature's `min_count` (rarer ids share [`OOV_ROW`]), or hashed
//! into `hash_rows` rows (nothing to count), or, with `capacity`, a dynamic [`IdMap`] seeded from
//! the counted vocabulary (its most frequent `capacity` ids) that admits new ids during online
//! training ([`FeatureEncoder::observe`]). Saved as `vocab-<i>.json` beside `encoder.json`, a
//! dynamic map with its full state.
//!
//! [`OOV_ROW`]: crate::data::OOV_ROW

use std::path::Path;

use super::columns::{Lookup, Place};
use super::saved::{load_vocabulary, save_vocabulary, SavedFeature};
use super::{FeatureEncoder, FeatureInput};
use crate::config::{Feature, FeatureKind};
use crate::data::batch::{Batch, ColumnData, Tokens};
use crate::data::idmap::{IdMap, IdMapOptions};
use crate::data::schema::ColumnKind;
use crate::data::vocab::{Vocabulary, VocabularyCounter};
use crate::error::{Error, Result};

/// The encoder of one categorical feature.
#[derive(Debug, Clone)]
pub struct Categorical {
    column: usize,
    min_count: u32,
    hash_rows: Option<u64>,
    /// `capacity` and its keys: the vocabulary is a dynamic id map.
    id_map: Option<IdMapOptions>,
    counter: VocabularyCounter,
    /// Set by `start_fit` when hashed, by `finish` when counted, or by `load`.
    vocab: Option<Vocabulary>,
}

impl Categorical {
    /// Looks up the feature's column, which must be categorical.
    pub fn new(lookup: &Lookup, index: usize, feature: &Feature) -> Result<Self> {
        let FeatureKind::Categorical {
            min_count,
            hash_rows,
            ..
        } = feature.kind
        else {
            unreachable!("a categorical feature")
        };
        let column =
            lookup.feature_column(index, feature, |k| Ok(*k == ColumnKind::Categorical))?;
        Ok(Categorical {
            column,
            min_count,
            hash_rows,
            id_map: feature.kind.id_map_options(),
            counter: VocabularyCounter::new(),
            vocab: None,
        })
    }

    fn vocab(&self) -> &Vocabulary {
        self.vocab.as_ref().expect("a fitted categorical feature")
    }
}

impl FeatureEncoder for Categorical {
    fn kind(&self) -> &'static str {
        "categorical"
    }

    fn start_fit(&mut self, place: &Place) -> Result<()> {
        if let Some(rows) = self.hash_rows {
            let hashed = Vocabulary::hashed(rows)
                .map_err(|e| place.config_error("hash_rows", e.to_string()))?;
            self.vocab = Some(hashed);
        }
        Ok(())
    }

    fn fit(&mut self, batch: &Batch, rows: &[usize]) {
        if self.vocab.is_some() {
            return;
        }
        if let ColumnData::Categorical(tokens) = &batch.columns[self.column] {
            rows.iter().for_each(|&r| self.counter.add(tokens.get(r)));
        }
    }

    fn finish(&mut self, place: &Place, _data_file: Option<&str>) -> Result<()> {
        if !self.vocab.as_ref().is_some_and(Vocabulary::is_hashed) {
            let counted = Vocabulary::counted(&self.counter, u64::from(self.min_count))?;
            self.vocab = Some(match self.id_map {
                Some(options) => {
                    let tokens = counted.tokens().iter().map(String::as_str);
                    let map = IdMap::from_fitted(options, tokens)
                        .map_err(|e| place.config_error("capacity", e.to_string()))?;
                    Vocabulary::dynamic(map)
                }
                None => counted,
            });
        }
        self.counter = VocabularyCounter::new();
        Ok(())
    }

    fn encode(
        &self,
        batch: &Batch,
        _file: &str,
        rows: &[usize],
        _features: &[Box<dyn FeatureEncoder>],
    ) -> Result<FeatureInput> {
        let tokens = tokens(batch, self.column);
        let vocab = self.vocab();
        Ok(FeatureInput::Ids {
            offsets: (0..=rows.len() as u32).collect(),
            rows: rows.iter().map(|&r| vocab.row(tokens.get(r))).collect(),
        })
    }

    fn save(&self, dir: &Path, index: usize, saved: &mut SavedFeature) -> Result<()> {
        save_vocabulary(self.vocab(), dir, index, saved)
    }

    fn load(&mut self, dir: &Path, file: &Path, key: &str, saved: &SavedFeature) -> Result<()> {
        let v = load_vocabulary(dir, file, key, saved)?;
        let hash_rows = self.hash_rows;
        let saved_map = v.id_map().map(IdMap::options);
        if saved_map != self.id_map {
            return Err(Error::checkpoint(
                file,
                Some(key),
                format!(
                    "feature {:?}: the saved id map ({saved_map:?}) does not match the model's \
                     capacity, admit_after and expire_after ({:?})",
                    saved.name, self.id_map
                ),
            ));
        }
        if v.is_hashed() != hash_rows.is_some()
            || hash_rows.is_some_and(|n| u64::from(v.rows()) != n)
        {
            return Err(Error::checkpoint(
                file,
                Some(key),
                format!(
                    "feature {:?}: the saved vocabulary ({} rows, {}) does not match the model's \
                     hash_rows {hash_rows:?}",
                    saved.name,
                    v.rows(),
                    if v.is_hashed() { "hashed" } else { "counted" }
                ),
            ));
        }
        self.vocab = Some(v);
        Ok(())
    }

    fn vocabulary(&self) -> Option<&Vocabulary> {
        self.vocab.as_ref()
    }

    fn id_map_mut(&mut self) -> Option<&mut IdMap> {
        self.vocab.as_mut().and_then(Vocabulary::id_map_mut)
    }

    fn observe(
        &mut self,
        batch: &Batch,
        file: &str,
        rows: &[usize],
        step: u64,
    ) -> Result<Vec<u32>> {
        let column = self.column;
        let Some(map) = self.id_map_mut() else {
            return Ok(Vec::new());
        };
        map.expire(step).map_err(|m| Error::data(file, m))?;
        let tokens = tokens(batch, column);
        let mut fresh = Vec::new();
        for &r in rows {
            if let Some(row) = map
                .observe(tokens.get(r), step)
                .map_err(|m| Error::data(file, m))?
            {
                fresh.push(row);
            }
        }
        Ok(fresh)
    }

    fn target_row(&self, batch: &Batch, r: usize) -> Option<u32> {
        Some(self.vocab().row(tokens(batch, self.column).get(r)))
    }

    fn boxed_clone(&self) -> Box<dyn FeatureEncoder> {
        Box::new(self.clone())
    }
}

/// Column `c` of `batch`, resolved as categorical.
pub(super) fn tokens(batch: &Batch, c: usize) -> &Tokens {
    match &batch.columns[c] {
        ColumnData::Categorical(t) => t,
        other => unreachable!(
            "column {c} resolved as categorical is {}",
            other.type_name()
        ),
    }
}
