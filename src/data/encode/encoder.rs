//! The [`Encoder`]: the model's features in config order, each a [`FeatureEncoder`] of its kind,
//! beside the samples' labels, weights and GAUC keys. It walks the features to fit them on the
//! training split, to check and encode a batch's rows, and (in [`super::saved`]) to save and load
//! them.

use std::collections::BTreeMap;
use std::path::Path;

use super::columns::Place;
use super::resolve::{resolve, Resolved};
use super::{ContentTables, FeatureEncoder, MissingIds, ModelBatch};
use crate::config::ModelConfig;
use crate::data::batch::Batch;
use crate::data::schema::Schema;
use crate::data::table::{BadRows, ReadOptions, TableReader};
use crate::data::vocab::Vocabulary;
use crate::error::{Error, Result};
use crate::kernels::embedding::MnsBase;

/// Turns read batches into [`ModelBatch`]es (see the module docs of [`crate::data::encode`]).
#[derive(Debug, Clone)]
pub struct Encoder {
    schema: Schema,
    schema_file: String,
    /// The features' names, in config order.
    pub(super) names: Vec<String>,
    resolved: Resolved,
    fitted: bool,
}

impl Encoder {
    /// Resolves every column `config` reads in `schema` (`schema_file` names it in errors): each
    /// feature's column, the task labels, the side, times and timestamp columns of sequence
    /// features, the GAUC key column and the weight column. An unfitted encoder: fit it next.
    pub fn new(config: &ModelConfig, schema: &Schema, schema_file: &str) -> Result<Self> {
        let mut resolved = resolve(config, schema, schema_file)?;
        for (i, feature) in resolved.features.iter_mut().enumerate() {
            feature.start_fit(&Place {
                schema,
                schema_file,
                feature: i,
            })?;
        }
        Ok(Encoder {
            schema: schema.clone(),
            schema_file: schema_file.to_string(),
            names: config.features.iter().map(|f| f.name.clone()).collect(),
            resolved,
            fitted: false,
        })
    }

    /// Fits a new encoder on a whole training file, streamed with `options` (with
    /// `skip_bad_rows`, rows the reader or the encoder rejects are left out of the fit).
    pub fn fit_file(
        config: &ModelConfig,
        schema: &Schema,
        schema_file: &str,
        path: &Path,
        options: ReadOptions,
    ) -> Result<Encoder> {
        let content = ContentTables::default();
        Self::fit_file_with(config, schema, schema_file, path, options, &content)
    }

    /// [`Self::fit_file`] for a model with content features: `content` is attached
    /// ([`Self::attach_content`]) before the fit.
    pub fn fit_file_with(
        config: &ModelConfig,
        schema: &Schema,
        schema_file: &str,
        path: &Path,
        options: ReadOptions,
        content: &ContentTables,
    ) -> Result<Encoder> {
        let mut encoder = Encoder::new(config, schema, schema_file)?;
        encoder.attach_content(content)?;
        let file = path.display().to_string();
        let skip = options.skip_bad_rows;
        let mut reader = TableReader::open(path, schema, options)?;
        for batch in reader.by_ref() {
            let batch = batch?;
            if skip {
                let good: Vec<usize> = (0..batch.rows)
                    .filter(|&r| encoder.check_row(&batch, &file, r).is_ok())
                    .collect();
                if !encoder.fitted {
                    encoder.fit_rows(&batch, &good);
                }
            } else {
                for r in 0..batch.rows {
                    encoder.check_row(&batch, &file, r)?;
                }
                encoder.fit(&batch);
            }
        }
        encoder.finish_fit_of(Some(&file))?;
        Ok(encoder)
    }

    /// Hands the content features (HashID, similarity) what they need from outside the data
    /// layer, before the fit (see [`super::content`]); other features ignore it.
    pub fn attach_content(&mut self, content: &ContentTables) -> Result<()> {
        for (i, feature) in self.resolved.features.iter_mut().enumerate() {
            let place = Place {
                schema: &self.schema,
                schema_file: &self.schema_file,
                feature: i,
            };
            feature.attach_content(&place, content)?;
        }
        Ok(())
    }

    /// Each content feature's name and its training ids with no vector (fitted or loaded).
    pub fn missing_content(&self) -> Vec<(String, MissingIds)> {
        let features = self.resolved.features.iter();
        let names = self.names.iter();
        (names.zip(features))
            .filter_map(|(n, f)| Some((n.clone(), f.missing_ids()?)))
            .collect()
    }

    /// Counts the ids and numeric ranges of one training batch (read with this encoder's schema).
    /// Fitting is one pass: once [`Self::finish_fit`] has run (or the encoder was loaded), further
    /// batches are ignored.
    pub fn fit(&mut self, batch: &Batch) {
        if self.fitted {
            return;
        }
        let all: Vec<usize> = (0..batch.rows).collect();
        self.fit_rows(batch, &all);
    }

    fn fit_rows(&mut self, batch: &Batch, rows: &[usize]) {
        for feature in &mut self.resolved.features {
            feature.fit(batch, rows);
        }
    }

    /// Builds the vocabularies and the numeric fits from what [`Self::fit`] counted. A numeric
    /// feature whose training values span more than 2^32 − 3 steps is an error naming its `step`.
    pub fn finish_fit(&mut self) -> Result<()> {
        self.finish_fit_of(None)
    }

    /// [`Self::finish_fit`]; with the training file's name a numeric range too wide for its step is
    /// an [`Error::Data`] naming the file, line and column of the offending value.
    fn finish_fit_of(&mut self, data_file: Option<&str>) -> Result<()> {
        if self.fitted {
            return Ok(());
        }
        for (i, feature) in self.resolved.features.iter_mut().enumerate() {
            let place = Place {
                schema: &self.schema,
                schema_file: &self.schema_file,
                feature: i,
            };
            feature.finish(&place, data_file)?;
        }
        self.fitted = true;
        Ok(())
    }

    /// The features, in config order.
    pub(super) fn features(&self) -> &[Box<dyn FeatureEncoder>] {
        &self.resolved.features
    }

    /// The features, in config order, to record sightings in their id maps.
    pub(super) fn features_mut(&mut self) -> &mut [Box<dyn FeatureEncoder>] {
        &mut self.resolved.features
    }

    /// Replaces the features with fitted (loaded) ones.
    pub(super) fn set_fitted(&mut self, features: Vec<Box<dyn FeatureEncoder>>) {
        self.resolved.features = features;
        self.fitted = true;
    }

    /// Whether the encoder is fitted (or loaded) and can encode.
    pub fn is_fitted(&self) -> bool {
        self.fitted
    }

    /// The schema the encoder reads.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Rows of feature `feature`'s table: the vocabulary's rows (OOV row included) for categorical
    /// and bag features, [`MnsBase::rows`] for numeric ones, 0 for sequences (they read other
    /// features' tables) and for an unfitted encoder. Panics if `feature` is past the features.
    pub fn table_rows(&self, feature: usize) -> u32 {
        let f = &self.resolved.features[feature];
        if self.fitted {
            f.table_rows()
        } else {
            0
        }
    }

    /// The MNS bases of numeric feature `feature` (empty for other features and before fitting).
    pub fn mns(&self, feature: usize) -> Vec<MnsBase> {
        let f = &self.resolved.features[feature];
        if self.fitted {
            f.mns()
        } else {
            Vec::new()
        }
    }

    /// The vocabulary of categorical or bag feature `feature` once fitted.
    pub fn vocabulary(&self, feature: usize) -> Option<&Vocabulary> {
        let f = &self.resolved.features[feature];
        f.vocabulary().filter(|_| self.fitted)
    }

    /// Tasks (label columns per row of [`ModelBatch::labels`]).
    pub fn tasks(&self) -> usize {
        self.resolved.samples.tasks()
    }

    /// The logit offset prediction subtracts, `log(positive / negative)` of `[train.weights]`
    /// (0 without weights).
    pub fn logit_correction(&self) -> f64 {
        self.resolved.samples.logit_correction()
    }

    /// `Err` unless `batch` has this encoder's schema's columns and row `r` (if any) exists.
    pub(super) fn check_batch(&self, batch: &Batch, file: &str, r: Option<usize>) -> Result<()> {
        let same = batch.columns.len() == self.schema.columns.len()
            && batch
                .columns
                .iter()
                .zip(&self.schema.columns)
                .all(|(data, column)| data.type_name() == column.kind.name());
        if !same || batch.lines.len() != batch.rows {
            return Err(Error::data(
                file,
                "the batch was not read with the encoder's schema",
            ));
        }
        if let Some(r) = r.filter(|&r| r >= batch.rows) {
            return Err(Error::data(
                file,
                format!("row {r} of a batch of {} rows", batch.rows),
            ));
        }
        Ok(())
    }

    /// Checks that row `r` of `batch` can be encoded (`file` names it in errors): sequence side
    /// and times columns as long as the sequence, integer behaviour times not after the target,
    /// exposure counts ≥ 0 (and that `batch` was read with the encoder's schema and has row `r`).
    /// [`Self::encode`] runs this on every row.
    pub fn check_row(&self, batch: &Batch, file: &str, r: usize) -> Result<()> {
        self.check_batch(batch, file, Some(r))?;
        for feature in &self.resolved.features {
            feature.check_row(&self.schema, batch, file, r)?;
        }
        self.resolved
            .samples
            .check_row(&self.schema, batch, file, r)
    }

    /// The labels `[rows, tasks]` (as [`ModelBatch::labels`]) and GAUC keys of every row of
    /// `batch`, without encoding the features: for a pass that only counts labels per user
    /// (`wgrec analyze`'s comparable samples). A row whose label, weight or key field is bad is
    /// the error.
    pub fn encode_samples(
        &self,
        batch: &Batch,
        file: &str,
    ) -> Result<(Vec<f32>, Option<Vec<u64>>)> {
        self.check_batch(batch, file, None)?;
        for r in 0..batch.rows {
            (self.resolved.samples).check_row(&self.schema, batch, file, r)?;
        }
        let all: Vec<usize> = (0..batch.rows).collect();
        let samples = self.resolved.samples.encode(batch, &all);
        Ok((samples.labels, samples.groups))
    }

    /// Encodes every row of `batch` (read with this encoder's schema; `file` names it in errors).
    /// The first row [`Self::check_row`] rejects is the error.
    pub fn encode(&self, batch: &Batch, file: &str) -> Result<ModelBatch> {
        for r in 0..batch.rows {
            self.check_row(batch, file, r)?;
        }
        let all: Vec<usize> = (0..batch.rows).collect();
        self.encode_checked(batch, file, &all)
    }

    /// Encodes the rows `rows` of `batch`, in that order (a row [`Self::check_row`] rejects is an
    /// error).
    pub fn encode_rows(&self, batch: &Batch, file: &str, rows: &[usize]) -> Result<ModelBatch> {
        for &r in rows {
            self.check_row(batch, file, r)?;
        }
        self.encode_checked(batch, file, rows)
    }

    /// [`Self::encode_rows`] for rows that passed [`Self::check_row`].
    pub(crate) fn encode_checked(
        &self,
        batch: &Batch,
        file: &str,
        rows: &[usize],
    ) -> Result<ModelBatch> {
        if !self.fitted {
            return Err(Error::data(
                file,
                "the encoder is not fitted: fit it on the training split (or load it) first",
            ));
        }
        self.check_batch(batch, file, None)?;
        let all = &self.resolved.features;
        let features = all
            .iter()
            .map(|feature| feature.encode(batch, file, rows, all))
            .collect::<Result<Vec<_>>>()?;
        let samples = self.resolved.samples.encode(batch, rows);
        Ok(ModelBatch {
            rows: rows.len(),
            lines: rows.iter().map(|&r| batch.lines[r]).collect(),
            features,
            labels: samples.labels,
            weights: samples.weights,
            groups: samples.groups,
        })
    }
}

/// Merges the reader's and the encoder's skipped rows, by line, keeping at most `kept` reasons.
pub(crate) fn merge_bad_rows(a: BadRows, b: BadRows, kept: usize) -> BadRows {
    let line = |e: &Error| match e {
        Error::Data { line, .. } => line.unwrap_or(0),
        _ => 0,
    };
    let mut first: BTreeMap<(u64, usize), Error> = BTreeMap::new();
    for (k, e) in a.first.into_iter().chain(b.first).enumerate() {
        first.insert((line(&e), k), e);
    }
    BadRows {
        count: a.count + b.count,
        rows_read: a.rows_read + b.rows_read,
        first: first.into_values().take(kept).collect(),
    }
}
