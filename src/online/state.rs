//! What an online checkpoint holds beside the graph's tensors: the stream counters and position,
//! the rolling metrics' partial window and the log's length (under [`ONLINE_KEY`]), and every
//! dynamic id map (under [`IDS_KEY`]). All of it is written in the one checkpoint file, atomically,
//! so the weights, the maps and the position a resume continues from always belong together.

use serde::{Deserialize, Serialize};

use super::rolling::RollingMetrics;
use super::source::StreamPosition;

/// Metadata key of [`OnlineState`] in an online checkpoint.
pub const ONLINE_KEY: &str = "online.state";
/// Metadata key of the encoder's dynamic id maps (`Encoder::online_state`).
pub const IDS_KEY: &str = "online.ids";
/// The JSON-lines log of an online run folder.
pub const LOG_FILE: &str = "stream.jsonl";
/// Where a fresh online run recorded the run it started from.
pub const WARM_START_FILE: &str = "warm-start.txt";

/// The counters of an online run (see the module docs).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OnlineState {
    /// Batches consumed (scored, and trained on unless frozen).
    pub steps: u64,
    /// Rows consumed.
    pub rows: u64,
    /// Rows the encoder refused under `skip_bad_rows` (the reader counts the rows it could not
    /// parse).
    pub rejected: u64,
    /// Where the source stands after the last batch consumed (None before the first).
    pub position: Option<StreamPosition>,
    /// The progressive-validation windows, the current partial one included.
    pub rolling: RollingMetrics,
    /// Bytes of the log that belong to this state (a resume truncates the log to it).
    pub log_len: u64,
    /// The step (graph step) of the last published snapshot.
    pub published: Option<u64>,
    /// Whether the model learns (false: the frozen baseline).
    pub learning: bool,
    /// Whether new ids are admitted.
    pub admission: bool,
}
