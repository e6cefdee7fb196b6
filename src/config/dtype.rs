//! The element type of each feature's embedding tables (issue 19): `[model] dtype`, overridden
//! per feature by `[[feature]] dtype`. A TIM-pooled sequence reads its item's and side features'
//! tables and its own temporal table in one kernel over one storage group, and a storage group
//! holds one element type: their dtypes must agree.

use super::{bad, Dtype, FeatureKind, ModelConfig, SequencePooling};
use crate::error::{Error, Result};

impl ModelConfig {
    /// The dtype of feature `f`'s tables (its own, or the model's).
    pub fn dtype_of(&self, f: usize) -> Dtype {
        self.features
            .get(f)
            .and_then(|x| x.dtype)
            .unwrap_or(self.model.dtype)
    }

    /// The one dtype of every table, for a model built in one storage group; an error when
    /// features differ (mixed dtypes need several storage groups, one per dtype).
    pub fn storage_dtype(&self) -> Result<Dtype> {
        let mut dtypes = (0..self.features.len()).map(|f| (f, self.dtype_of(f)));
        let Some((first, dtype)) = dtypes.next() else {
            return Ok(self.model.dtype);
        };
        match dtypes.find(|&(_, d)| d != dtype) {
            None => Ok(dtype),
            Some((other, d)) => Err(Error::Layout(format!(
                "feature {:?} is {} and feature {:?} is {}: a model of mixed dtypes needs \
                 several storage groups (one per dtype), which this build does not have; give \
                 every feature the same dtype",
                self.features[first].name,
                dtype.element().name(),
                self.features[other].name,
                d.element().name()
            ))),
        }
    }

    /// Every TIM-pooled sequence has the dtype of its item and side features.
    pub(super) fn validate_dtypes(&self, file: &str) -> Result<()> {
        for (i, feature) in self.features.iter().enumerate() {
            let FeatureKind::Sequence {
                item,
                side,
                pooling: SequencePooling::Tim,
                ..
            } = &feature.kind
            else {
                continue;
            };
            let own = self.dtype_of(i);
            for name in std::iter::once(item).chain(side) {
                let Some(j) = self.features.iter().position(|x| &x.name == name) else {
                    continue; // validate_features names the missing feature
                };
                if self.dtype_of(j) != own {
                    return Err(bad(
                        file,
                        format!("feature[{i}].dtype"),
                        format!(
                            "sequence {:?} is {} but the feature {name:?} it reads is {}: TIM \
                             reads them together from one storage group, which holds one dtype; \
                             give them the same dtype",
                            feature.name,
                            own.element().name(),
                            self.dtype_of(j).element().name()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}
