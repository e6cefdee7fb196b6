//! Data in: the bundled MovieLens-100K protocol and the synthetic generator.

pub mod ml100k;
pub mod synth;
