//! The column lookup every feature kind shares: a name from the model config → a schema column of
//! a fitting type, or an [`Error::Config`] naming the model key (`feature[3].column`,
//! `train.group`) and the schema file; and where a feature's fit errors point ([`Place`]). It
//! knows no feature kind: the kinds call it.

use crate::config::{Feature, ModelConfig};
use crate::data::schema::{ColumnKind, Schema};
use crate::error::{Error, Result};

/// Looks up the columns a model reads in a schema; `file` names the schema in errors.
#[derive(Debug, Clone, Copy)]
pub struct Lookup<'a> {
    /// The schema searched.
    pub schema: &'a Schema,
    /// The schema's file name, for errors.
    pub file: &'a str,
    /// The model whose keys the errors name.
    pub model: &'a ModelConfig,
}

impl<'a> Lookup<'a> {
    /// A config error at model key `key`.
    pub fn error(&self, key: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Config {
            file: self.file.to_string(),
            key: key.into(),
            message: message.into(),
        }
    }

    /// The column called `name`, `Err` at `key` if there is none or if `fits` refuses its type
    /// (`wrong` says why, given the column's type).
    pub fn column(
        &self,
        key: &str,
        name: &str,
        fits: impl FnOnce(&ColumnKind) -> bool,
        wrong: impl FnOnce(&ColumnKind) -> String,
    ) -> Result<usize> {
        self.check(key, name, self.schema.index(name), fits, wrong)
    }

    /// [`Self::column`] for column `found`, looked up for `name` some other way.
    pub fn check(
        &self,
        key: &str,
        name: &str,
        found: Option<usize>,
        fits: impl FnOnce(&ColumnKind) -> bool,
        wrong: impl FnOnce(&ColumnKind) -> String,
    ) -> Result<usize> {
        let c =
            found.ok_or_else(|| self.error(key, format!("no column {name:?} in the schema")))?;
        let kind = &self.schema.columns[c].kind;
        if fits(kind) {
            Ok(c)
        } else {
            Err(self.error(key, wrong(kind)))
        }
    }

    /// [`Self::column`] for a column that must have one type, named `wanted` in the error.
    pub fn column_of_type(
        &self,
        key: &str,
        name: &str,
        wanted: &str,
        fits: impl FnOnce(&ColumnKind) -> bool,
    ) -> Result<usize> {
        self.column(key, name, fits, |other| {
            format!("column {name:?} is {}, not {wanted}", other.name())
        })
    }

    /// The column of feature `index` (`feature[i].column`). `reads` says whether the feature can
    /// read a column of that type: `Ok(false)` is the usual error, `Err` a message of its own.
    pub fn feature_column(
        &self,
        index: usize,
        feature: &Feature,
        reads: impl FnOnce(&ColumnKind) -> std::result::Result<bool, String>,
    ) -> Result<usize> {
        let key = format!("feature[{index}].column");
        let wanted = feature.column();
        let c = self
            .schema
            .index(wanted)
            .ok_or_else(|| self.error(&key, format!("no column {wanted:?} in the schema")))?;
        let kind = &self.schema.columns[c].kind;
        match reads(kind) {
            Ok(true) => Ok(c),
            Ok(false) => Err(self.error(
                key,
                format!(
                    "feature {:?} cannot read column {wanted:?} of type {}",
                    feature.name,
                    kind.name()
                ),
            )),
            Err(message) => Err(self.error(key, message)),
        }
    }

    /// The index of the model's feature called `name` (validated by `ModelConfig::validate`).
    pub fn feature_index(&self, name: &str) -> usize {
        self.model
            .features
            .iter()
            .position(|g| g.name == name)
            .expect("checked by ModelConfig::validate")
    }
}

/// Where a feature's fit errors point: the schema (its column names), its file, the feature.
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    /// The encoder's schema.
    pub schema: &'a Schema,
    /// The schema's file name.
    pub schema_file: &'a str,
    /// The feature's index in the model.
    pub feature: usize,
}

impl Place<'_> {
    /// A config error at key `feature[i].<key>`.
    pub fn config_error(&self, key: &str, message: impl Into<String>) -> Error {
        Error::Config {
            file: self.schema_file.to_string(),
            key: format!("feature[{}].{key}", self.feature),
            message: message.into(),
        }
    }
}

/// An [`Error::Data`] at `file:line: column N "name"` of `schema`.
pub fn data_error(schema: &Schema, file: &str, line: u64, column: usize, message: String) -> Error {
    Error::Data {
        file: file.to_string(),
        line: Some(line),
        column: Some(format!("{} {:?}", column + 1, schema.columns[column].name)),
        message,
    }
}
