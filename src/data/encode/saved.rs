//! The fitted encoder on disk: `encoder.json` (format `wgrec-encoder` version 1: each feature's
//! name and kind, and what numeric features fitted) beside one `vocab-<i>.json` per categorical or
//! bag feature `i` ([`Vocabulary::save`]). Every file is written atomically, `encoder.json` last.
//! A load checks the names and kinds against the model's and lets each kind read its part back.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::encoder::Encoder;
use crate::checkpoint::write_atomically;
use crate::config::ModelConfig;
use crate::data::schema::Schema;
use crate::data::vocab::Vocabulary;
use crate::error::{Error, Result};

const FORMAT: &str = "wgrec-encoder";
const FILE: &str = "encoder.json";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedEncoder {
    format: String,
    version: u32,
    features: Vec<SavedFeature>,
}

/// One feature's entry in `encoder.json` (fields a kind does not use are absent).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedFeature {
    /// The feature's name in the model.
    pub name: String,
    /// Its kind ([`super::FeatureEncoder::kind`]).
    pub kind: String,
    /// Categorical, bag: the vocabulary's file name, beside `encoder.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocabulary: Option<String>,
    /// Numeric: the smallest and largest training value (absent when none was seen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// See `min`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Numeric: the quantisation step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<f64>,
    /// Numeric, hashid, similarity: the MNS radices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub radices: Option<Vec<u32>>,
    /// Hashid, similarity: the file of what the feature fitted, beside `encoder.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fitted: Option<String>,
}

/// Saves `vocab`, feature `index`'s vocabulary, as `vocab-<index>.json` in `dir`, named in `saved`.
pub(super) fn save_vocabulary(
    vocab: &Vocabulary,
    dir: &Path,
    index: usize,
    saved: &mut SavedFeature,
) -> Result<()> {
    let name = format!("vocab-{index}.json");
    vocab.save(&dir.join(&name))?;
    saved.vocabulary = Some(name);
    Ok(())
}

/// Loads the vocabulary `saved` names (a plain file name in `dir`; `file` and `key` name the entry
/// of `encoder.json` in errors).
pub(super) fn load_vocabulary(
    dir: &Path,
    file: &Path,
    key: &str,
    saved: &SavedFeature,
) -> Result<Vocabulary> {
    let Some(name) = &saved.vocabulary else {
        return Err(Error::checkpoint(
            file,
            Some(key),
            format!("feature {:?} has no vocabulary file", saved.name),
        ));
    };
    if name.contains(['/', '\\']) || name.starts_with('.') {
        return Err(Error::checkpoint(
            file,
            Some(key),
            format!("vocabulary {name:?} is not a file name in the encoder's folder"),
        ));
    }
    Vocabulary::load(&dir.join(name))
}

impl Encoder {
    /// Writes the fitted encoder into `dir` (created if needed): `encoder.json` (each feature's
    /// name and kind, the numeric fits) and `vocab-<i>.json` per categorical or bag feature `i`
    /// ([`Vocabulary::save`]), every file atomically, `encoder.json` last.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let file = dir.join(FILE);
        if !self.is_fitted() {
            return Err(Error::checkpoint(&file, None, "the encoder is not fitted"));
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::checkpoint(dir, None, format!("cannot create: {e}")))?;
        let mut features = Vec::with_capacity(self.names.len());
        for (i, feature) in self.features().iter().enumerate() {
            let mut saved = SavedFeature {
                name: self.names[i].clone(),
                kind: feature.kind().into(),
                vocabulary: None,
                min: None,
                max: None,
                step: None,
                radices: None,
                fitted: None,
            };
            feature.save(dir, i, &mut saved)?;
            features.push(saved);
        }
        let json = serde_json::to_vec_pretty(&SavedEncoder {
            format: FORMAT.into(),
            version: 1,
            features,
        })
        .map_err(|e| Error::checkpoint(&file, None, e))?;
        write_atomically(&file, |temporary| {
            std::fs::write(temporary, &json)
                .map_err(|e| Error::checkpoint(temporary, None, format!("cannot write: {e}")))
        })
    }

    /// Reads an encoder written by [`Self::save`] for `config` and `schema`: the features must have
    /// the names and kinds the file records, numeric features the same step and radices.
    pub fn load(
        dir: &Path,
        config: &ModelConfig,
        schema: &Schema,
        schema_file: &str,
    ) -> Result<Encoder> {
        let mut encoder = Encoder::new(config, schema, schema_file)?;
        let file = dir.join(FILE);
        let saved = read(&file)?;
        if saved.features.len() != encoder.names.len() {
            return Err(Error::checkpoint(
                &file,
                Some("features"),
                format!(
                    "{} features saved, the model has {}",
                    saved.features.len(),
                    encoder.names.len()
                ),
            ));
        }
        let mut features = encoder.features().to_vec();
        for (i, (s, feature)) in saved.features.iter().zip(&mut features).enumerate() {
            let key = format!("features[{i}]");
            if s.name != encoder.names[i] || s.kind != feature.kind() {
                return Err(Error::checkpoint(
                    &file,
                    Some(&key),
                    format!(
                        "saved {} feature {:?}, the model has {} feature {:?}",
                        s.kind,
                        s.name,
                        feature.kind(),
                        encoder.names[i]
                    ),
                ));
            }
            feature.load(dir, &file, &key, s)?;
        }
        encoder.set_fitted(features);
        Ok(encoder)
    }
}

/// Reads `encoder.json` and checks its format and version.
fn read(file: &Path) -> Result<SavedEncoder> {
    let text = std::fs::read(file)
        .map_err(|e| Error::checkpoint(file, None, format!("cannot read: {e}")))?;
    let saved: SavedEncoder = serde_json::from_slice(&text)
        .map_err(|e| Error::checkpoint(file, None, format!("not an encoder file: {e}")))?;
    if saved.format != FORMAT || saved.version != 1 {
        return Err(Error::checkpoint(
            file,
            Some("format"),
            format!(
                "{:?} version {} (expected {FORMAT:?} version 1)",
                saved.format, saved.version
            ),
        ));
    }
    Ok(saved)
}
