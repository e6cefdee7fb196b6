//! Bag features: several ids per sample (a multi-hot column), the table rows of each sample's ids
//! as CSR (an empty bag is allowed), through one [`Vocabulary`] counted on the training split
//! with the feature's `min_count`. Saved as `vocab-<i>.json` beside `encoder.json`.

use std::path::Path;

use super::columns::{Lookup, Place};
use super::saved::{load_vocabulary, save_vocabulary, SavedFeature};
use super::{FeatureEncoder, FeatureInput};
use crate::config::{Feature, FeatureKind};
use crate::data::batch::{Batch, ColumnData, Ragged, Tokens};
use crate::data::schema::ColumnKind;
use crate::data::vocab::{Vocabulary, VocabularyCounter, OOV_ROW};
use crate::error::{Error, Result};

/// The encoder of one bag feature.
#[derive(Debug, Clone)]
pub struct Bag {
    /// The feature's name, for errors.
    name: String,
    column: usize,
    min_count: u32,
    counter: VocabularyCounter,
    /// Set by `finish` or `load`.
    vocab: Option<Vocabulary>,
}

impl Bag {
    /// Looks up the feature's column, which must be multi-hot with the feature's separator.
    pub fn new(lookup: &Lookup, index: usize, feature: &Feature) -> Result<Self> {
        let FeatureKind::Bag {
            ref separator,
            min_count,
            ..
        } = feature.kind
        else {
            unreachable!("a bag feature")
        };
        let column = lookup.feature_column(index, feature, |k| match k {
            ColumnKind::MultiHot { separator: s } if s != separator => Err(format!(
                "feature {:?} splits on {separator:?} but column {:?} on {s:?}",
                feature.name,
                feature.column()
            )),
            ColumnKind::MultiHot { .. } => Ok(true),
            _ => Ok(false),
        })?;
        Ok(Bag {
            name: feature.name.clone(),
            column,
            min_count,
            counter: VocabularyCounter::new(),
            vocab: None,
        })
    }

    fn vocab(&self) -> &Vocabulary {
        self.vocab.as_ref().expect("a fitted bag feature")
    }
}

impl FeatureEncoder for Bag {
    fn kind(&self) -> &'static str {
        "bag"
    }

    fn fit(&mut self, batch: &Batch, rows: &[usize]) {
        if let ColumnData::MultiHot(bags) = &batch.columns[self.column] {
            for &r in rows {
                bags.row(r).for_each(|t| self.counter.add(t));
            }
        }
    }

    fn finish(&mut self, _place: &Place, _data_file: Option<&str>) -> Result<()> {
        self.vocab = Some(Vocabulary::counted(
            &self.counter,
            u64::from(self.min_count),
        )?);
        self.counter = VocabularyCounter::new();
        Ok(())
    }

    fn encode(
        &self,
        batch: &Batch,
        file: &str,
        rows: &[usize],
        _features: &[Box<dyn FeatureEncoder>],
    ) -> Result<FeatureInput> {
        let bags = bags(batch, self.column);
        let vocab = self.vocab();
        let mut offsets = Vec::with_capacity(rows.len() + 1);
        let mut ids = Vec::new();
        offsets.push(0);
        for &r in rows {
            ids.extend(bags.row(r).map(|t| vocab.row(t)));
            offsets.push(u32::try_from(ids.len()).map_err(|_| {
                let message = format!("feature {:?}: more than 2^32 ids in one batch", self.name);
                Error::data(file, message)
            })?);
        }
        Ok(FeatureInput::Ids { offsets, rows: ids })
    }

    fn save(&self, dir: &Path, index: usize, saved: &mut SavedFeature) -> Result<()> {
        save_vocabulary(self.vocab(), dir, index, saved)
    }

    fn load(&mut self, dir: &Path, file: &Path, key: &str, saved: &SavedFeature) -> Result<()> {
        self.vocab = Some(load_vocabulary(dir, file, key, saved)?);
        Ok(())
    }

    fn vocabulary(&self) -> Option<&Vocabulary> {
        self.vocab.as_ref()
    }

    /// A bag's first id ([`OOV_ROW`] for an empty bag).
    fn target_row(&self, batch: &Batch, r: usize) -> Option<u32> {
        let first = bags(batch, self.column).row(r).next();
        Some(first.map_or(OOV_ROW, |t| self.vocab().row(t)))
    }

    fn boxed_clone(&self) -> Box<dyn FeatureEncoder> {
        Box::new(self.clone())
    }
}

fn bags(batch: &Batch, c: usize) -> &Ragged<Tokens> {
    match &batch.columns[c] {
        ColumnData::MultiHot(bags) => bags,
        _ => unreachable!("bag column resolved"),
    }
}
