//! The resolution of a whole model in a schema, in the order its errors come: every feature's own
//! column (each kind's `new`, through [`feature_encoder`]), the task labels, what features read
//! besides (a sequence's side, times and timestamp columns), the GAUC key column, the weight
//! column. [`Schema::check_model`] runs it without building an encoder.

use super::columns::Lookup;
use super::samples::Samples;
use super::{feature_encoder, FeatureEncoder};
use crate::config::ModelConfig;
use crate::data::schema::Schema;
use crate::error::Result;

/// Everything a model reads from a schema: each feature's encoder (unfitted) and the samples'
/// labels, weights and GAUC keys.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// One per model feature, in config order.
    pub features: Vec<Box<dyn FeatureEncoder>>,
    /// Labels, weights and GAUC keys.
    pub samples: Samples,
}

/// Resolves every column `model` reads in `schema` (`file` names the schema in errors), in the
/// order the errors come: the features' own columns, the task labels, what sequence features read
/// besides, the GAUC key column, the weight column.
pub fn resolve(model: &ModelConfig, schema: &Schema, file: &str) -> Result<Resolved> {
    let lookup = Lookup {
        schema,
        file,
        model,
    };
    let mut features = model
        .features
        .iter()
        .enumerate()
        .map(|(i, feature)| feature_encoder(&lookup, i, feature))
        .collect::<Result<Vec<_>>>()?;
    let labels = Samples::labels(&lookup)?;
    for feature in &mut features {
        feature.link(&lookup)?;
    }
    let samples = Samples::resolve(&lookup, labels)?;
    Ok(Resolved { features, samples })
}

impl Schema {
    /// Checks that every feature and task of `model` reads a column of a fitting type: categorical
    /// features a categorical column, bags a multi-hot column with the same separator, numeric
    /// features a numeric column, sequence features a sequence column (their `side_columns`
    /// sequence columns, `times` a sequence_times column and `timestamp` a timestamp column, found
    /// by default when log-delta buckets need them), task labels a label column, `train.group` a
    /// categorical, numeric or timestamp column, `train.weights.column` a numeric or weight column.
    /// `file` (the schema's) names it in errors; the key is the model file's.
    pub fn check_model(&self, model: &ModelConfig, file: &str) -> Result<()> {
        resolve(model, self, file).map(|_| ())
    }
}
