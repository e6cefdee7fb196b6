//! What a run reports while it trains: [`Event`]s handed to an [`Observer`] (the CLI draws a
//! progress bar or prints lines; [`Quiet`] ignores them).

use crate::metrics::TaskMetrics;

/// What happens during a run, for a progress display.
#[derive(Debug)]
pub enum Event<'a> {
    /// The model is compiled.
    Compiled {
        /// Dispatches per training step.
        dispatches: u64,
        /// Dense parameters.
        dense_params: u64,
        /// Embedding rows in all tables.
        embedding_rows: u64,
    },
    /// A training step finished (reported every `log_every` steps, with the loss read back).
    Step {
        /// 1-based epoch.
        epoch: u32,
        /// Global step.
        step: u64,
        /// Samples this epoch so far.
        samples: u64,
        /// Training throughput this epoch.
        samples_per_sec: f64,
        /// Loss per task of this step.
        loss: &'a [f32],
    },
    /// An epoch ended and the validation split was scored.
    Epoch {
        /// 1-based epoch.
        epoch: u32,
        /// Validation metrics per task.
        valid: &'a [TaskMetrics],
        /// Whether this is the best so far (checkpoint kept).
        best: bool,
        /// Training throughput of the epoch.
        samples_per_sec: f64,
    },
}

/// Receives [`Event`]s (the CLI draws a progress bar or prints lines).
pub trait Observer {
    /// One event.
    fn event(&mut self, event: Event<'_>);
}

/// An observer that ignores everything.
pub struct Quiet;

impl Observer for Quiet {
    fn event(&mut self, _: Event<'_>) {}
}
