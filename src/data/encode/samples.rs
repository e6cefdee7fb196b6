//! What each sample carries besides its features: the task labels, the loss weight of
//! `[train.weights]` (from an exposure count column and the class weights) and the GAUC key (the
//! user, say) of `[train] group`: the samples GAUC averages over share one key. Resolved with the features ([`Samples::labels`], [`Samples::resolve`]),
//! checked per row (an exposure count is not negative) and encoded beside them.

use super::columns::{data_error, Lookup};
use super::scenario::Scenarios;
use crate::data::batch::{Batch, ColumnData};
use crate::data::schema::{ColumnKind, Schema};
use crate::data::vocab::stable_hash;
use crate::error::Result;
use crate::kernels::loss::{ExposureWeight, WeightRule};

/// The label, weight and GAUC key columns of a model, resolved in a schema.
#[derive(Debug, Clone)]
pub struct Samples {
    /// One label column per task, in config order.
    labels: Vec<usize>,
    /// The GAUC key's column (`[train] group`).
    gauc_key: Option<usize>,
    /// The exposure count column (if any) and the weight rule, when `[train.weights]` is set.
    weights: Option<(Option<usize>, WeightRule)>,
    /// The scenario column of a multi-scenario model: labels are spread over the outputs.
    scenarios: Option<Scenarios>,
}

/// The encoded labels, weights and GAUC keys of a batch's rows.
pub(super) struct EncodedSamples {
    pub labels: Vec<f32>,
    pub weights: Option<Vec<f32>>,
    pub groups: Option<Vec<u64>>,
}

impl Samples {
    /// The label column of each task (`task[i].label`, default the task's name).
    pub fn labels(lookup: &Lookup) -> Result<Vec<usize>> {
        let tasks = &lookup.model.tasks;
        let mut labels = Vec::with_capacity(tasks.len());
        for (i, task) in tasks.iter().enumerate() {
            let wanted = task.label.as_deref().unwrap_or(&task.name);
            let key = format!("task[{i}].label");
            if lookup.schema.index(wanted).is_none() {
                return Err(lookup.error(key, format!("no label column {wanted:?} in the schema")));
            }
            labels.push(lookup.column_of_type(&key, wanted, "label", |k| *k == ColumnKind::Label)?);
        }
        Ok(labels)
    }

    /// The GAUC key and weight columns of `[train]`, beside the tasks' `labels`.
    pub fn resolve(lookup: &Lookup, labels: Vec<usize>) -> Result<Self> {
        Ok(Samples {
            labels,
            gauc_key: gauc_key_column(lookup)?,
            weights: weights(lookup)?,
            scenarios: Scenarios::resolve(lookup)?,
        })
    }

    /// Label columns per row of the encoded labels: the model's outputs (the tasks, or each task
    /// in each scenario).
    pub fn tasks(&self) -> usize {
        self.labels.len() * self.scenarios.as_ref().map_or(1, Scenarios::len)
    }

    /// The logit offset of `[train.weights]` (0 without weights).
    pub fn logit_correction(&self) -> f64 {
        self.weights
            .as_ref()
            .map_or(0.0, |(_, rule)| rule.logit_correction())
    }

    /// `Err` if row `r`'s exposure count is negative or its scenario is not the model's.
    pub fn check_row(&self, schema: &Schema, batch: &Batch, file: &str, r: usize) -> Result<()> {
        if let Some(s) = &self.scenarios {
            s.of_row(schema, batch, file, r)?;
        }
        if let Some((Some(c), _)) = &self.weights {
            if let ColumnData::Numeric(x) = &batch.columns[*c] {
                if x[r] < 0.0 {
                    return Err(data_error(
                        schema,
                        file,
                        batch.lines[r],
                        *c,
                        format!("exposure count {} is negative", x[r]),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The labels, weights and GAUC keys of rows `rows` of `batch`.
    pub(super) fn encode(&self, batch: &Batch, rows: &[usize]) -> EncodedSamples {
        let labels = self.encode_labels(batch, rows);
        let weights = self.encode_weights(batch, rows, &labels);
        let labels = match &self.scenarios {
            Some(s) => s.spread(&labels, self.labels.len(), &s.rows(batch, rows)),
            None => labels,
        };
        EncodedSamples {
            weights,
            groups: self.encode_gauc_keys(batch, rows),
            labels,
        }
    }

    /// `[rows, tasks]` labels: 0, 1, or [`MISSING_LABEL`](crate::kernels::loss::MISSING_LABEL)
    /// where the row's field was empty (the loss and the metrics skip that row in that task).
    fn encode_labels(&self, batch: &Batch, rows: &[usize]) -> Vec<f32> {
        let mut labels = Vec::with_capacity(rows.len() * self.labels.len());
        for &r in rows {
            for &c in &self.labels {
                labels.push(match &batch.columns[c] {
                    ColumnData::Label(y) => y[r],
                    _ => unreachable!("label columns resolved"),
                });
            }
        }
        labels
    }

    fn encode_weights(&self, batch: &Batch, rows: &[usize], labels: &[f32]) -> Option<Vec<f32>> {
        let tasks = self.labels.len();
        self.weights.as_ref().map(|(column, rule)| {
            rows.iter()
                .enumerate()
                .map(|(k, &r)| {
                    let count = match column.map(|c| &batch.columns[c]) {
                        Some(ColumnData::Numeric(x)) => x[r],
                        Some(ColumnData::Weight(x)) => f64::from(x[r]),
                        _ => 1.0,
                    };
                    // The class weight follows the first task's label; a missing one (the
                    // sentinel) is neither class and takes class weight 1 (`WeightRule::weight`).
                    rule.weight(count, f64::from(labels[k * tasks])) as f32
                })
                .collect()
        })
    }

    fn encode_gauc_keys(&self, batch: &Batch, rows: &[usize]) -> Option<Vec<u64>> {
        self.gauc_key.map(|c| {
            rows.iter()
                .map(|&r| match &batch.columns[c] {
                    ColumnData::Categorical(t) => stable_hash(t.get(r)),
                    ColumnData::Numeric(x) => {
                        if x[r] == 0.0 {
                            0.0f64.to_bits()
                        } else {
                            x[r].to_bits()
                        }
                    }
                    ColumnData::Timestamp(t) => t[r] as u64,
                    _ => unreachable!("GAUC key column resolved"),
                })
                .collect()
        })
    }
}

/// The GAUC key column of `[train] group`: a column of that name, or else the column of the
/// feature of that name.
fn gauc_key_column(lookup: &Lookup) -> Result<Option<usize>> {
    let Some(name) = &lookup.model.train.group else {
        return Ok(None);
    };
    let found = lookup.schema.index(name).or_else(|| {
        let model = lookup.model;
        let feature = model.features.iter().find(|f| &f.name == name);
        feature.and_then(|f| lookup.schema.index(f.column()))
    });
    let fits = |k: &ColumnKind| {
        matches!(
            k,
            ColumnKind::Categorical | ColumnKind::Numeric | ColumnKind::Timestamp
        )
    };
    let wrong = |other: &ColumnKind| {
        format!(
            "column {name:?} is {}; groups come from a categorical, numeric or timestamp column",
            other.name()
        )
    };
    lookup
        .check("train.group", name, found, fits, wrong)
        .map(Some)
}

/// The exposure count column and the weight rule of `[train.weights]`.
fn weights(lookup: &Lookup) -> Result<Option<(Option<usize>, WeightRule)>> {
    let Some(w) = &lookup.model.train.weights else {
        return Ok(None);
    };
    let column = match &w.column {
        None => None,
        Some(name) => Some(lookup.column(
            "train.weights.column",
            name,
            |k| matches!(k, ColumnKind::Numeric | ColumnKind::Weight),
            |other| {
                format!(
                    "column {name:?} is {}; exposure counts come from a numeric or weight column",
                    other.name()
                )
            },
        )?),
    };
    let rule = WeightRule {
        exposure: if column.is_some() {
            ExposureWeight::Power { gamma: w.gamma }
        } else {
            ExposureWeight::None
        },
        positive: w.positive,
        negative: w.negative,
    };
    rule.validate()
        .map_err(|e| lookup.error("train.weights", e.to_string()))?;
    Ok(Some((column, rule)))
}
