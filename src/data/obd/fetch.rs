//! The download half of `wgrec data fetch obd`: pip fetches obp 0.4.1's wheel into a scratch
//! folder (the only network access; never run by the tests), which [`super::convert`] then reads.

use super::{err, OBP};
use crate::Result;
use std::path::{Path, PathBuf};

/// obp's wheel, downloaded with pip.
const WHEEL: crate::data::pip::Wheel<'static> = crate::data::pip::Wheel {
    requirement: OBP,
    file_prefix: "obp-",
    carries: "the wheel that ships the Open Bandit Dataset sample",
};

/// Runs `pip download … obp==0.4.1` into `scratch` and returns the wheel; `path` replaces the
/// search `PATH` (tests simulate a machine without pip).
pub fn pip_download(scratch: &Path, path: Option<&str>) -> Result<PathBuf> {
    crate::data::pip::download(WHEEL, scratch, path).map_err(err)
}
