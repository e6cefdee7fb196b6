//! Numeric features (MNS, METHODS.md §1.2): the fit is the smallest and largest training value
//! after the feature's transform ([`NumericFit`]); a value `x` encodes as
//! `v = 1 + ⌊(x − min)/step⌋` clamped to `1..=v_max`, a missing value as 0, and each radix gets
//! the fewest digits that hold `v_max`. Saved as `min`, `max`, `step` and `radices` in
//! `encoder.json`; a load checks the step and radices against the model's.

use std::path::Path;

use super::columns::{data_error, Lookup, Place};
use super::saved::SavedFeature;
use super::{FeatureEncoder, FeatureInput};
use crate::config::{Feature, FeatureKind};
use crate::data::batch::{Batch, ColumnData};
use crate::data::numeric::{NumericTransform, SpanTooWide};
use crate::data::schema::ColumnKind;
use crate::error::{Error, Result};
use crate::kernels::embedding::MnsBase;

/// The encoder of one numeric feature.
#[derive(Debug, Clone)]
pub struct Numeric {
    column: usize,
    radices: Vec<u32>,
    step: f64,
    transform: NumericTransform,
    fit: NumericFit,
}

impl Numeric {
    /// Looks up the feature's column, which must be numeric.
    pub fn new(lookup: &Lookup, index: usize, feature: &Feature) -> Result<Self> {
        let FeatureKind::Numeric {
            ref radices,
            step,
            transform,
        } = feature.kind
        else {
            unreachable!("a numeric feature")
        };
        let column = lookup.feature_column(index, feature, |k| Ok(*k == ColumnKind::Numeric))?;
        Ok(Numeric {
            column,
            radices: radices.clone(),
            step,
            transform,
            fit: NumericFit::new(),
        })
    }
}

impl FeatureEncoder for Numeric {
    fn kind(&self) -> &'static str {
        "numeric"
    }

    fn fit(&mut self, batch: &Batch, rows: &[usize]) {
        if let ColumnData::Numeric(x) = &batch.columns[self.column] {
            for &r in rows {
                let x = self.transform.apply(x[r]);
                if !x.is_nan() {
                    self.fit.see(x, batch.lines.get(r).copied().unwrap_or(0));
                }
            }
        }
    }

    /// A range wider than 2^32 − 3 steps is an error: with the training file's name an
    /// [`Error::Data`] naming the file, line and column of the offending value, else an
    /// [`Error::Config`] naming the feature's `step`.
    fn finish(&mut self, place: &Place, data_file: Option<&str>) -> Result<()> {
        self.fit
            .finish(&self.radices, self.step)
            .map_err(|e| match data_file {
                Some(file) => data_error(place.schema, file, e.line, self.column, e.message),
                None => place.config_error("step", format!("line {}: {}", e.line, e.message)),
            })
    }

    fn encode(
        &self,
        batch: &Batch,
        _file: &str,
        rows: &[usize],
        _features: &[Box<dyn FeatureEncoder>],
    ) -> Result<FeatureInput> {
        let ColumnData::Numeric(x) = &batch.columns[self.column] else {
            unreachable!("numeric column resolved")
        };
        let value = |r: usize| self.fit.value(self.transform.apply(x[r]), self.step);
        Ok(FeatureInput::Ids {
            offsets: (0..=rows.len() as u32).collect(),
            rows: rows.iter().map(|&r| value(r)).collect(),
        })
    }

    fn save(&self, _dir: &Path, _index: usize, saved: &mut SavedFeature) -> Result<()> {
        if self.fit.seen() {
            saved.min = Some(self.fit.min);
            saved.max = Some(self.fit.max);
        }
        saved.step = Some(self.step);
        saved.radices = Some(self.radices.clone());
        Ok(())
    }

    fn load(&mut self, _dir: &Path, file: &Path, key: &str, s: &SavedFeature) -> Result<()> {
        let (radices, step) = (&self.radices, self.step);
        if s.step != Some(step) || s.radices.as_ref() != Some(radices) {
            return Err(Error::checkpoint(
                file,
                Some(key),
                format!(
                    "feature {:?}: saved step {:?} and radices {:?}, the model has {step} and \
                     {radices:?}",
                    s.name, s.step, s.radices
                ),
            ));
        }
        let mut fit = NumericFit::new();
        match (s.min, s.max) {
            (Some(min), Some(max)) if min.is_finite() && max.is_finite() && min <= max => {
                fit.min = min;
                fit.max = max;
            }
            (None, None) => {}
            _ => {
                return Err(Error::checkpoint(
                    file,
                    Some(key),
                    format!("feature {:?}: min {:?} and max {:?}", s.name, s.min, s.max),
                ))
            }
        }
        fit.finish(radices, step)
            .map_err(|m| Error::checkpoint(file, Some(key), m.message))?;
        self.fit = fit;
        Ok(())
    }

    fn table_rows(&self) -> u32 {
        MnsBase::rows(&self.fit.bases)
    }

    fn mns(&self) -> Vec<MnsBase> {
        self.fit.bases.clone()
    }

    fn boxed_clone(&self) -> Box<dyn FeatureEncoder> {
        Box::new(self.clone())
    }
}

/// The numeric fit of one feature: the smallest and largest finite value seen in training.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NumericFit {
    pub(crate) min: f64,
    pub(crate) max: f64,
    /// The data lines of `min` and `max` (0 when unknown), to name a corrupt extreme.
    min_line: u64,
    max_line: u64,
    /// `v_max`, the largest value (set by `finish`).
    pub(crate) top: u32,
    pub(crate) bases: Vec<MnsBase>,
}

impl NumericFit {
    pub(crate) fn new() -> Self {
        NumericFit {
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            min_line: 0,
            max_line: 0,
            top: 0,
            bases: Vec::new(),
        }
    }

    fn seen(&self) -> bool {
        self.min <= self.max
    }

    /// Sets `top` and the digits per radix from `min` and `max`.
    pub(crate) fn finish(
        &mut self,
        radices: &[u32],
        step: f64,
    ) -> std::result::Result<(), SpanTooWide> {
        self.top = if self.seen() {
            let span = ((self.max - self.min) / step).floor();
            if span >= f64::from(u32::MAX - 1) {
                return Err(self.span_too_wide(span, step));
            }
            1 + span as u32
        } else {
            0
        };
        self.bases = radices
            .iter()
            .map(|&radix| {
                let mut digits = 1;
                while u64::from(radix).saturating_pow(digits) <= u64::from(self.top) {
                    digits += 1;
                }
                MnsBase { radix, digits }
            })
            .collect();
        Ok(())
    }

    fn span_too_wide(&self, span: f64, step: f64) -> SpanTooWide {
        let ((x, line), (other, other_line)) = if self.max.abs() >= self.min.abs() {
            ((self.max, self.max_line), (self.min, self.min_line))
        } else {
            ((self.min, self.min_line), (self.max, self.max_line))
        };
        SpanTooWide {
            line,
            message: format!(
                "value {x:e} is {span:e} steps of {step} from the other end of the training range \
                 ({other:e}, line {other_line}); at most {} steps fit: fix the value, or raise the \
                 feature's step or give it transform = \"log\"",
                u32::MAX - 2
            ),
        }
    }

    /// Widens the range to `x` (not NaN), read on data line `line`.
    fn see(&mut self, x: f64, line: u64) {
        if x < self.min {
            self.min_line = line;
        }
        if x > self.max {
            self.max_line = line;
        }
        self.min = self.min.min(x);
        self.max = self.max.max(x);
    }

    /// The value of `x` (see the module docs).
    pub(crate) fn value(&self, x: f64, step: f64) -> u32 {
        if x.is_nan() || self.top == 0 {
            return 0;
        }
        let v = 1.0 + ((x - self.min) / step).floor();
        v.clamp(1.0, f64::from(self.top)) as u32
    }
}
