//! The columns a sequence feature reads besides its own: one sequence column per side feature
//! (`side_columns`), the behaviours' `times` (default: the sequence_times column linked to the
//! sequence column, or else to one of its side columns) and the target's `timestamp` (default:
//! the schema's only one). Times and timestamp are only kept when log-delta buckets need them;
//! errors name the model key (`feature[3].side_columns[0]`, `feature[3].times`).

use super::columns::Lookup;
use crate::config::{Feature, FeatureKind, TimeBucket};
use crate::data::schema::ColumnKind;
use crate::error::Result;

/// What the config names, before the lookup.
#[derive(Debug, Clone)]
pub(super) struct Names {
    /// The feature's index, for the keys of errors.
    index: usize,
    /// The feature's own column.
    column: String,
    side_columns: Vec<String>,
    times: Option<String>,
    timestamp: Option<String>,
    /// Log-delta buckets need the times and the timestamp.
    needs_times: bool,
}

/// The columns found.
#[derive(Debug, Clone, Default)]
pub(super) struct LinkedColumns {
    /// Sequence columns of the side features' behaviour ids.
    pub side_columns: Vec<usize>,
    /// The behaviours' times (needed by log-delta buckets).
    pub times: Option<usize>,
    /// The target's timestamp (needed by log-delta buckets).
    pub timestamp: Option<usize>,
}

impl Names {
    pub(super) fn new(index: usize, feature: &Feature) -> Self {
        let FeatureKind::Sequence {
            time,
            side_columns,
            times,
            timestamp,
            ..
        } = &feature.kind
        else {
            unreachable!("a sequence feature")
        };
        Names {
            index,
            column: feature.column().to_string(),
            side_columns: side_columns.clone(),
            times: times.clone(),
            timestamp: timestamp.clone(),
            needs_times: matches!(time, TimeBucket::LogDelta { .. }),
        }
    }

    fn key(&self, k: &str) -> String {
        format!("feature[{}].{k}", self.index)
    }

    /// Looks the columns up; `column` is the sequence's own.
    pub(super) fn link(&self, lookup: &Lookup, column: usize) -> Result<LinkedColumns> {
        let mut sides = Vec::with_capacity(self.side_columns.len());
        for (j, name) in self.side_columns.iter().enumerate() {
            let key = self.key(&format!("side_columns[{j}]"));
            sides.push(lookup.column_of_type(&key, name, "sequence", |k| {
                matches!(k, ColumnKind::Sequence { .. })
            })?);
        }
        let times = self.times(lookup, column, &sides)?;
        let timestamp = self.timestamp(lookup)?;
        Ok(LinkedColumns {
            side_columns: sides,
            times: times.filter(|_| self.needs_times),
            timestamp: timestamp.filter(|_| self.needs_times),
        })
    }

    fn times(&self, lookup: &Lookup, column: usize, sides: &[usize]) -> Result<Option<usize>> {
        let key = self.key("times");
        if let Some(name) = &self.times {
            return lookup
                .column_of_type(&key, name, "sequence_times", |k| {
                    matches!(k, ColumnKind::SequenceTimes { .. })
                })
                .map(Some);
        }
        // Linked to the sequence column, or else to one of its side columns (as long as the
        // sequence: the ml-100k and synthetic schemas link `hist_time` to the nearest sequence
        // before it, a side column).
        let columns = &lookup.schema.columns;
        let linked_to = |owners: &[usize]| -> Vec<usize> {
            (0..columns.len())
                .filter(|&c| {
                    matches!(columns[c].kind,
                        ColumnKind::SequenceTimes { sequence, .. } if owners.contains(&sequence))
                })
                .collect()
        };
        let mut linked = linked_to(&[column]);
        if linked.is_empty() {
            linked = linked_to(sides);
        }
        match linked.as_slice() {
            [c] => Ok(Some(*c)),
            [] if self.needs_times => Err(lookup.error(
                key,
                format!(
                    "log-delta buckets need the behaviours' times: no sequence_times column of \
                     {:?} in the schema",
                    self.column
                ),
            )),
            [] => Ok(None),
            several => Err(lookup.error(
                key,
                format!(
                    "{} sequence_times columns belong to {:?}: name one",
                    several.len(),
                    self.column
                ),
            )),
        }
    }

    fn timestamp(&self, lookup: &Lookup) -> Result<Option<usize>> {
        let key = self.key("timestamp");
        if let Some(name) = &self.timestamp {
            return lookup
                .column_of_type(&key, name, "timestamp", |k| *k == ColumnKind::Timestamp)
                .map(Some);
        }
        let columns = &lookup.schema.columns;
        let all: Vec<usize> = (0..columns.len())
            .filter(|&c| columns[c].kind == ColumnKind::Timestamp)
            .collect();
        match all.as_slice() {
            [c] => Ok(Some(*c)),
            [] if self.needs_times => Err(lookup.error(
                key,
                "log-delta buckets need the target's time: no timestamp column in the schema",
            )),
            several if self.needs_times => Err(lookup.error(
                key,
                format!(
                    "{} timestamp columns in the schema: name one",
                    several.len()
                ),
            )),
            _ => Ok(None),
        }
    }
}
