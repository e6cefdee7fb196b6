//! Kernel variants and the device's choice among them (issue 20).
//!
//! A *family* is one job with several tested kernels that do it: the GEMM (the portable register
//! tile, a workgroup-memory tiled one), the embedding gather (an invocation per vec4, a subgroup or
//! workgroup per row), the fused update, TIM, the loss and the column sums (the current path, a
//! subgroup reduction). Every variant of a family computes the same function and is checked against
//! the same CPU reference; which one is fastest depends on the GPU, its driver and the shape, so the
//! choice is measured on the user's device (`wgrec tune`) rather than fixed here.
//!
//! The choice lives on the [`Gpu`](super::Gpu), because what is fastest is a fact about the device:
//! a launcher asks [`Gpu::variant`](super::Gpu::variant) for its family and *shape class* (a short
//! string naming the size bucket of its shape, built with [`size_class`]) when it is built, and
//! compiles that variant's entry point with that variant's override constants. The answer is, in
//! order:
//! 1. a variant *forced* for the family ([`Gpu::force_variant`](super::Gpu::force_variant), or the
//!    environment: `WGREC_VARIANT=gemm=tiled,gather=wide`) — tests use this to run each variant
//!    through the whole model;
//! 2. the variant *tuned* for the (family, class) ([`Gpu::set_tuned`](super::Gpu::set_tuned), loaded
//!    from the tune cache);
//! 3. the family's first variant, the portable default path.
//!
//! A variant the device cannot run (subgroup operations without the `SUBGROUP` feature) is never
//! returned: forcing one is an error, a tuned one falls back to the default. A launcher that gets a
//! variant its shape does not suit (a wide-row gather for 16-float rows) uses the default and says so
//! in its docs. Every (family, class) a launcher asks about is recorded
//! ([`Gpu::asked_variants`](super::Gpu::asked_variants)): compiling a model on a device tells the
//! tuner which choices that model makes.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A job with several kernels that do it (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// The strided-batched GEMM (`kernels::dense::gemm`).
    Gemm,
    /// The embedding gather (`kernels::embedding::forward`).
    Gather,
    /// The fused backward + sparse optimizer (`kernels::embedding::update`).
    Update,
    /// Temporal interest attention (`kernels::tim`).
    Tim,
    /// The loss kernels' reductions (`kernels::loss`).
    Loss,
    /// Column sums: bias gradients (`kernels::dense::column_sum`).
    ColumnSum,
}

impl Family {
    /// Every family, in a fixed order.
    pub const ALL: [Family; 6] = [
        Family::Gemm,
        Family::Gather,
        Family::Update,
        Family::Tim,
        Family::Loss,
        Family::ColumnSum,
    ];

    /// The family's name as written in the environment, the cache and reports.
    pub fn name(self) -> &'static str {
        match self {
            Family::Gemm => "gemm",
            Family::Gather => "gather",
            Family::Update => "update",
            Family::Tim => "tim",
            Family::Loss => "loss",
            Family::ColumnSum => "column-sum",
        }
    }

    /// The family named `name`, if any.
    pub fn parse(name: &str) -> Option<Family> {
        Family::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The family's variants; the first is the default path.
    pub fn variants(self) -> &'static [Variant] {
        use crate::kernels;
        match self {
            Family::Gemm => kernels::dense::gemm::VARIANTS,
            Family::Gather => kernels::embedding::GATHER_VARIANTS,
            Family::Update => kernels::embedding::UPDATE_VARIANTS,
            Family::Tim => kernels::tim::VARIANTS,
            Family::Loss => kernels::loss::VARIANTS,
            Family::ColumnSum => kernels::dense::column_sum::VARIANTS,
        }
    }

    /// The variant of this family named `name`.
    pub fn variant(self, name: &str) -> Result<&'static Variant> {
        self.variants()
            .iter()
            .find(|v| v.name == name)
            .ok_or_else(|| {
                let known: Vec<&str> = self.variants().iter().map(|v| v.name).collect();
                Error::Variant(format!(
                    "no {} variant named {name:?} (variants: {})",
                    self.name(),
                    known.join(", ")
                ))
            })
    }
}

/// One kernel of a family: its name, what the device must have, and the override constants its
/// pipelines compile with (tile and workgroup sizes). Launchers map the name to their entry point.
#[derive(Debug, PartialEq)]
pub struct Variant {
    /// Short name (`"default"`, `"tiled-64"`, `"subgroup"`, `"wide"`).
    pub name: &'static str,
    /// Whether it uses subgroup operations (needs `wgpu::Features::SUBGROUP`).
    pub subgroups: bool,
    /// Override constants, as `(name, value)`.
    pub constants: &'static [(&'static str, f64)],
}

impl Variant {
    /// The portable default path of a family with no other variant yet.
    pub const DEFAULT: Variant = Variant {
        name: "default",
        subgroups: false,
        constants: &[],
    };

    /// Whether this is its family's default path.
    pub fn is_default(&self) -> bool {
        self.name == "default"
    }
}

/// `n` rounded up to a power of two (at least 1): the bucket a launcher names in its shape class,
/// so that nearby shapes share a tuned choice.
pub fn size_class(n: u32) -> u32 {
    n.max(1).next_power_of_two()
}

/// Where a choice in force came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Forced (`WGREC_VARIANT` or the host program).
    Forced,
    /// From the tune cache or a tune just run.
    Tuned,
    /// The family's default path (not tuned, or one variant runs here).
    Default,
}

/// The device's choices: forced, tuned, and the (family, class) pairs launchers asked about.
#[derive(Debug, Default)]
pub(super) struct Choices {
    forced: BTreeMap<Family, &'static Variant>,
    tuned: BTreeMap<(Family, String), &'static Variant>,
    asked: BTreeSet<(Family, String)>,
}

impl Choices {
    /// The variant for `family` at `class` (forced, tuned, default), recording the question.
    pub(super) fn pick(
        &mut self,
        family: Family,
        class: &str,
        subgroups: bool,
    ) -> &'static Variant {
        self.asked.insert((family, class.to_string()));
        self.resolve(family, class, subgroups).0
    }

    /// The variant for `family` at `class` and where it comes from, without recording the question:
    /// the forced one, else the tuned one, else the default — a subgroup variant only where the
    /// device has subgroups.
    pub(super) fn resolve(
        &self,
        family: Family,
        class: &str,
        subgroups: bool,
    ) -> (&'static Variant, Source) {
        let runnable = |v: &&'static Variant| subgroups || !v.subgroups;
        let forced = self.forced.get(&family).copied().filter(runnable);
        let tuned = || {
            let key = (family, class.to_string());
            self.tuned.get(&key).copied().filter(runnable)
        };
        match (forced, tuned()) {
            (Some(v), _) => (v, Source::Forced),
            (None, Some(v)) => (v, Source::Tuned),
            (None, None) => (&family.variants()[0], Source::Default),
        }
    }

    pub(super) fn force(&mut self, family: Family, variant: Option<&'static Variant>) {
        match variant {
            Some(v) => self.forced.insert(family, v),
            None => self.forced.remove(&family),
        };
    }

    pub(super) fn set_tuned(&mut self, tuned: BTreeMap<(Family, String), &'static Variant>) {
        self.tuned = tuned;
    }

    pub(super) fn tuned(&self) -> BTreeMap<(Family, String), &'static Variant> {
        self.tuned.clone()
    }

    pub(super) fn asked(&self) -> Vec<(Family, String)> {
        self.asked.iter().cloned().collect()
    }

    pub(super) fn clear_asked(&mut self) {
        self.asked.clear();
    }

    pub(super) fn forced(&self, family: Family) -> Option<&'static Variant> {
        self.forced.get(&family).copied()
    }
}

/// Parses `WGREC_VARIANT` (`family=variant,…`) into forced choices; `Err` says why not.
pub(super) fn parse_forced(
    text: &str,
) -> std::result::Result<Vec<(Family, &'static Variant)>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            let (family, name) = item.split_once('=').ok_or_else(|| {
                format!(
                    "{item:?} is not family=variant (families: {})",
                    family_names()
                )
            })?;
            let family = Family::parse(family.trim()).ok_or_else(|| {
                format!("no kernel family {family:?} (families: {})", family_names())
            })?;
            Ok((
                family,
                family.variant(name.trim()).map_err(|e| e.to_string())?,
            ))
        })
        .collect()
}

fn family_names() -> String {
    Family::ALL.map(Family::name).join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_starts_with_its_default_and_names_are_unique() {
        for family in Family::ALL {
            let variants = family.variants();
            assert!(
                variants[0].is_default() && !variants[0].subgroups,
                "{family:?}"
            );
            let names: BTreeSet<&str> = variants.iter().map(|v| v.name).collect();
            assert_eq!(names.len(), variants.len(), "{family:?}");
            assert_eq!(Family::parse(family.name()), Some(family));
        }
    }

    #[test]
    fn forced_beats_tuned_beats_default_and_subgroups_need_the_feature() {
        static SUB: Variant = Variant {
            name: "sub",
            subgroups: true,
            constants: &[],
        };
        let mut c = Choices::default();
        assert!(c.pick(Family::Gemm, "a", true).is_default());
        c.set_tuned(BTreeMap::from([((Family::Gemm, "a".to_string()), &SUB)]));
        assert_eq!(c.pick(Family::Gemm, "a", true).name, "sub");
        assert!(c.pick(Family::Gemm, "a", false).is_default());
        assert!(c.pick(Family::Gemm, "b", true).is_default());
        c.force(Family::Gemm, Some(&Family::Gemm.variants()[0]));
        assert!(c.pick(Family::Gemm, "a", true).is_default());
        assert_eq!(c.asked().len(), 2);
    }

    #[test]
    fn the_environment_names_families_and_variants_or_fails_clearly() {
        let forced = parse_forced(" gemm=default , tim=default").unwrap();
        assert_eq!(forced.len(), 2);
        assert!(parse_forced("").unwrap().is_empty());
        let e = parse_forced("gemm").unwrap_err();
        assert!(e.contains("family=variant"), "{e}");
        let e = parse_forced("gem=default").unwrap_err();
        assert!(e.contains("no kernel family \"gem\""), "{e}");
        let e = parse_forced("gemm=fast").unwrap_err();
        assert!(e.contains("no gemm variant named \"fast\""), "{e}");
    }
}
