//! The streaming loop of [`OnlineTrainer::run`]: per batch, in arrival order — new ids recorded
//! (rows re-owned are re-initialised), the batch scored (progressive validation: every row is
//! scored before the model learns from it), then trained on; every `checkpoint_every` steps a
//! checkpoint, on the publish schedule a serving snapshot. A stop (a signal sets the flag) or the
//! end of the stream ends it after the batch in hand, with a last checkpoint.

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use serde_json::json;

use super::rolling::WindowReport;
use super::source::StreamBatch;
use super::trainer::OnlineTrainer;
use crate::data::IdMapStats;
use crate::error::Result;

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The source ended (stdin closed, a file read without `follow`, `idle_exit`).
    SourceEnded,
    /// The stop flag was set (SIGINT/SIGTERM).
    Stopped,
    /// `max_steps` of this invocation were taken.
    StepLimit,
}

/// What a streaming run did (this invocation).
#[derive(Debug, Clone)]
pub struct OnlineReport {
    /// Why it ended.
    pub reason: StopReason,
    /// Batches and rows consumed by this invocation.
    pub steps: u64,
    /// Rows consumed by this invocation.
    pub rows: u64,
    /// Rows per second of this invocation (scoring, admission and training; checkpoints and
    /// snapshots included).
    pub rows_per_sec: f64,
    /// The run's counters after it.
    pub total_steps: u64,
    /// Windows completed by this invocation.
    pub windows: Vec<WindowReport>,
    /// The id maps' counters.
    pub ids: Vec<IdMapStats>,
    /// Snapshots published by this invocation (their versions).
    pub published: Vec<u64>,
    /// Rows skipped as malformed.
    pub bad_rows: u64,
}

/// Receives a streaming run's progress (the CLI prints it).
pub trait OnlineObserver {
    /// A window of the rolling metrics completed.
    fn window(&mut self, report: &WindowReport, ids: &[IdMapStats], rows_per_sec: f64);
    /// A snapshot was published.
    fn published(&mut self, version: u64, path: &std::path::Path);
}

impl OnlineTrainer<'_> {
    /// Streams until the source ends, `stop` is set or `max_steps` (see the module docs).
    pub fn run(
        &mut self,
        stop: &AtomicBool,
        observer: &mut dyn OnlineObserver,
    ) -> Result<OnlineReport> {
        let start = Instant::now();
        let (steps0, rows0) = (self.state.steps, self.state.rows);
        let mut report = OnlineReport {
            reason: StopReason::SourceEnded,
            steps: 0,
            rows: 0,
            rows_per_sec: 0.0,
            total_steps: 0,
            windows: Vec::new(),
            ids: Vec::new(),
            published: Vec::new(),
            bad_rows: 0,
        };
        loop {
            if self
                .options
                .max_steps
                .is_some_and(|m| self.state.steps - steps0 >= m)
            {
                report.reason = StopReason::StepLimit;
                break;
            }
            let Some(batch) = self.reader.next_batch(stop)? else {
                if stop.load(std::sync::atomic::Ordering::SeqCst) {
                    report.reason = StopReason::Stopped;
                }
                break;
            };
            let rate = (self.state.rows - rows0) as f64 / start.elapsed().as_secs_f64().max(1e-9);
            for w in self.step(batch)? {
                observer.window(&w, &self.encoder.id_map_stats(), rate);
                report.windows.push(w);
            }
            if (self.state.steps).is_multiple_of(self.options.checkpoint_every.max(1)) {
                self.checkpoint()?;
            }
            if let Some((version, path)) = self.publish_if_due()? {
                observer.published(version, &path);
                report.published.push(version);
            }
        }
        self.gpu.sync()?;
        self.checkpoint()?;
        if let Some((version, path)) = self.publish_final()? {
            observer.published(version, &path);
            report.published.push(version);
        }
        report.steps = self.state.steps - steps0;
        report.rows = self.state.rows - rows0;
        report.rows_per_sec = report.rows as f64 / start.elapsed().as_secs_f64().max(1e-9);
        report.total_steps = self.state.steps;
        report.ids = self.encoder.id_map_stats();
        report.bad_rows = self.reader.bad_rows().count + self.state.rejected;
        Ok(report)
    }

    /// One batch: ids recorded, scored, trained on; returns the windows it completed (each also
    /// written to the log).
    fn step(&mut self, sb: StreamBatch) -> Result<Vec<WindowReport>> {
        let step = self.state.steps + 1;
        let rows = self.good_rows(&sb);
        if self.state.admission {
            let fresh = self
                .encoder
                .observe_rows(&sb.batch, &sb.file, &rows, step)?;
            for f in fresh {
                self.graph.reset_rows(self.gpu, f.feature, &f.rows, step)?;
            }
        }
        self.state.rejected += (sb.batch.rows - rows.len()) as u64;
        if rows.is_empty() {
            self.state.rows += sb.batch.rows as u64;
            self.state.position = Some(sb.position);
            return Ok(Vec::new());
        }
        let encoded = if self.options.skip_bad_rows {
            // `good_rows` checked each of them already.
            self.encoder.encode_checked(&sb.batch, &sb.file, &rows)?
        } else {
            self.encoder.encode_rows(&sb.batch, &sb.file, &rows)?
        };
        let prepared = self.graph.prepare(&encoded)?;
        let probs = self.graph.predict(self.gpu, &prepared)?;
        if self.state.learning {
            let rates = self.policy.rates(self.graph.step() + 1);
            self.graph.train_step(self.gpu, &prepared, rates)?;
        }
        let windows = self
            .state
            .rolling
            .push(&probs, &prepared.labels, prepared.rows as usize)?;
        for w in &windows {
            self.log.write(w)?;
            let ids =
                json!({"event": "ids", "window": w.window, "ids": self.encoder.id_map_stats()});
            self.log.write(&ids)?;
        }
        self.state.steps = step;
        self.state.rows += sb.batch.rows as u64;
        self.state.position = Some(sb.position);
        Ok(windows)
    }

    /// The batch's rows to use: all of them, or with `skip_bad_rows` those the encoder accepts
    /// (the others are counted in [`OnlineState::rejected`](super::OnlineState)). Without it a
    /// bad row is the error `encode_rows` reports, before anything is trained.
    fn good_rows(&self, sb: &StreamBatch) -> Vec<usize> {
        let all = 0..sb.batch.rows;
        if !self.options.skip_bad_rows {
            return all.collect();
        }
        all.filter(|&r| self.encoder.check_row(&sb.batch, &sb.file, r).is_ok())
            .collect()
    }
}
