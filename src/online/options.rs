//! What `wgrec online` is asked to do: where rows come from, where the run lives, how often it
//! checkpoints and publishes, and whether it learns at all (the frozen baseline).

use std::path::PathBuf;
use std::time::Duration;

use super::source::SourceSpec;

/// Publishing serving snapshots while streaming (see [`crate::run::snapshot`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PublishOptions {
    /// The publish folder (`snapshot-<step>/` folders appear in it).
    pub dir: PathBuf,
    /// Publish after every this many steps (None: not by steps).
    pub every_steps: Option<u64>,
    /// Publish when this long has passed since the last snapshot (None: not by time).
    pub every: Option<Duration>,
    /// Snapshots kept (older ones removed), at least 1.
    pub keep: usize,
}

/// A streaming run's choices (none of them is part of the model file).
#[derive(Debug, Clone)]
pub struct OnlineOptions {
    /// Where rows come from.
    pub source: SourceSpec,
    /// The run folder to warm-start from (a `train` run: its weights with their optimizer state,
    /// and its vocabularies). Required for a fresh online run, refused with `resume`.
    pub from: Option<PathBuf>,
    /// The online run's own folder.
    pub out: PathBuf,
    /// Continue the online run in `out` from its last checkpoint.
    pub resume: bool,
    /// Replace an online run `out` already holds.
    pub overwrite: bool,
    /// Wait for more rows at the end of the source (`tail -f`).
    pub follow: bool,
    /// With `follow`: end after this long without a new row.
    pub idle_exit: Option<Duration>,
    /// Rows per window of the rolling progressive-validation metrics.
    pub window: u64,
    /// Checkpoint after every this many steps (and always when the stream ends or is stopped).
    pub checkpoint_every: u64,
    /// Publish serving snapshots.
    pub publish: Option<PublishOptions>,
    /// Score only: no training, no new ids (the frozen model on the same stream).
    pub frozen: bool,
    /// Learn, but keep the vocabularies as they are: new ids read the OOV row (the baseline for
    /// id admission).
    pub no_admission: bool,
    /// Count malformed rows and go on instead of failing on the first.
    pub skip_bad_rows: bool,
    /// Stop after this many steps of this invocation (as if signalled): for tests and benches.
    pub max_steps: Option<u64>,
}
