//! Exploration (METHODS.md §4.4, docs/explore.md): what the uncertainty heads believe about a
//! batch ([`Belief`]) and the ranking policies that act on it ([`Ranker`]).

mod belief;
mod rank;
#[cfg(test)]
pub(crate) mod rank_tests;
#[cfg(test)]
mod tests;

pub use belief::{gaussian_sd, sigmoid, Belief, Draw, LOG_VAR_RANGE};
pub use rank::{Candidates, Policy, Ranker};
