//! The scenario column of a multi-scenario model (`[model] scenario`, docs/multitask.md): each
//! row's scenario, and its labels spread over the model's outputs — a row's task label lands in
//! its own scenario's output of that task and is missing ([`MISSING_LABEL`]) in the others, so a
//! row trains only its own scenario's towers.

use super::columns::{data_error, Lookup};
use crate::data::batch::{Batch, ColumnData};
use crate::data::schema::{ColumnKind, Schema};
use crate::error::Result;
use crate::kernels::loss::MISSING_LABEL;

/// The resolved scenario column and the model's scenario values.
#[derive(Debug, Clone)]
pub struct Scenarios {
    column: usize,
    values: Vec<String>,
}

impl Scenarios {
    /// The column `model.scenario` names (categorical), or `None` for a model without scenarios.
    pub fn resolve(lookup: &Lookup) -> Result<Option<Self>> {
        let Some(name) = &lookup.model.model.scenario else {
            return Ok(None);
        };
        let column = lookup.column_of_type("model.scenario", name, "categorical", |k| {
            *k == ColumnKind::Categorical
        })?;
        Ok(Some(Scenarios {
            column,
            values: lookup.model.model.scenarios.clone(),
        }))
    }

    /// Row `r`'s scenario index; `Err` naming the file, line and column when its value is empty
    /// or not one of `model.scenarios`.
    pub fn of_row(&self, schema: &Schema, batch: &Batch, file: &str, r: usize) -> Result<usize> {
        self.index(batch, r).ok_or_else(|| {
            let message = format!(
                "scenario {:?} is not one of model.scenarios {:?}",
                self.tokens(batch).get(r),
                self.values
            );
            data_error(schema, file, batch.lines[r], self.column, message)
        })
    }

    fn tokens<'b>(&self, batch: &'b Batch) -> &'b crate::data::batch::Tokens {
        match &batch.columns[self.column] {
            ColumnData::Categorical(tokens) => tokens,
            _ => unreachable!("the scenario column is categorical (resolved)"),
        }
    }

    /// Row `r`'s scenario index, `None` when its value is not one of the model's.
    fn index(&self, batch: &Batch, r: usize) -> Option<usize> {
        let value = self.tokens(batch).get(r);
        self.values.iter().position(|v| v == value)
    }

    /// Scenarios of the model.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the model has no scenario (never: resolved only with values).
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The scenario of each of `rows` (checked by [`Self::of_row`] before encoding; a value that
    /// slipped past it would land in no output: every label of the row missing).
    pub fn rows(&self, batch: &Batch, rows: &[usize]) -> Vec<usize> {
        (rows.iter())
            .map(|&r| self.index(batch, r).unwrap_or(usize::MAX))
            .collect()
    }

    /// Spreads `labels` (`[rows, tasks]`) over the outputs (`[rows, tasks · S]`, task-major:
    /// output `t·S + s` is task `t` in scenario `s`): a row's label in its own scenario's output,
    /// [`MISSING_LABEL`] in the others.
    pub fn spread(&self, labels: &[f32], tasks: usize, scenario_of: &[usize]) -> Vec<f32> {
        let s_count = self.values.len();
        let mut out = Vec::with_capacity(labels.len() * s_count);
        for (row, &own) in labels.chunks(tasks).zip(scenario_of) {
            for &y in row {
                for s in 0..s_count {
                    out.push(if s == own { y } else { MISSING_LABEL });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rows_labels_land_in_its_own_scenarios_outputs_only() {
        let s = Scenarios {
            column: 0,
            values: vec!["home".into(), "search".into(), "feed".into()],
        };
        // Two tasks, rows in scenarios 2 and 0; the second row's task 1 label is itself missing.
        let labels = [1.0, 0.0, 0.0, MISSING_LABEL];
        let m = MISSING_LABEL;
        let spread = s.spread(&labels, 2, &[2, 0]);
        assert_eq!(
            spread,
            [m, m, 1.0, m, m, 0.0, 0.0, m, m, m, m, m],
            "task-major outputs: click@home, click@search, click@feed, like@…"
        );
    }
}
