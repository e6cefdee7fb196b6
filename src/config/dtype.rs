//! The element type of each feature's embedding tables (issue 19): `[model] dtype`, overridden
//! per feature by `[[feature]] dtype`. A TIM-pooled sequence reads its item's and side features'
//! tables and its own temporal table in one kernel over one storage group, and a storage group
//! holds one element type: their dtypes must agree.

use super::{bad, Dtype, FeatureKind, ModelConfig, SequencePooling};
use crate::error::Result;

impl ModelConfig {
    /// The dtype of feature `f`'s tables (its own, or the model's).
    pub fn dtype_of(&self, f: usize) -> Dtype {
        self.features
            .get(f)
            .and_then(|x| x.dtype)
            .unwrap_or(self.model.dtype)
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
