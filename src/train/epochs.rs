//! The epoch loop of [`Trainer::run`]: a training pass over the split, the validation score, the
//! early-stopping bookkeeping, the checkpoints and timings of the epoch, and at the end the test
//! split scored with the best checkpoint.

use std::path::Path;
use std::time::Instant;

use super::{Event, Observer, Report, Trainer};
use crate::checkpoint::Checkpoint;
use crate::error::Result;
use crate::metrics::TaskMetrics;

/// What one training pass over the split did.
struct Pass {
    /// Samples trained on.
    samples: u64,
    /// Wall-clock seconds of the pass (until the GPU finished; evaluation excluded).
    seconds: f64,
    /// Whether the run's step budget ended it.
    budget_hit: bool,
}

impl Trainer<'_> {
    /// Trains until the epochs, the step budget or patience run out, then scores the test split
    /// with the best checkpoint.
    pub fn run(&mut self, observer: &mut dyn Observer) -> Result<Report> {
        observer.event(Event::Compiled {
            dispatches: self.graph.dispatches().train,
            dense_params: self.graph.params().layout.len(),
            embedding_rows: self.graph.tables().iter().map(|t| t.rows as u64).sum(),
        });
        let train_path = crate::data::split_path(&self.data, "train")?;
        let valid_path = crate::data::split_path(&self.data, "valid")?;
        let mut best_valid = None;
        let mut epochs_now = 0u32;
        while !self.state.finished && self.state.epochs_done < self.config.train.epochs {
            if self
                .options
                .stop_after_epochs
                .is_some_and(|n| epochs_now >= n)
            {
                break;
            }
            if let Some(valid) = self.epoch(&train_path, &valid_path, observer)? {
                best_valid = Some(valid);
            }
            epochs_now += 1;
        }
        let test = if self.state.finished {
            let best = Checkpoint::read(&self.folder.best())?;
            self.graph.load_state(self.gpu, &best, true)?;
            Some(self.evaluate(&crate::data::split_path(&self.data, "test")?)?)
        } else {
            None
        };
        Ok(self.report(test, best_valid))
    }

    /// One epoch: trains, scores the validation split, writes the checkpoints and timings.
    /// Returns the validation metrics when they are the best so far.
    fn epoch(
        &mut self,
        train_path: &Path,
        valid_path: &Path,
        observer: &mut dyn Observer,
    ) -> Result<Option<Vec<TaskMetrics>>> {
        let epoch = self.state.epochs_done + 1;
        let pass = self.train_pass(train_path, epoch, observer)?;
        self.state.samples += pass.samples;
        self.timings.record(epoch, pass.samples, pass.seconds);
        self.state.epochs_done = epoch;
        let valid = self.evaluate(valid_path)?;
        let best = self.score_epoch(epoch, &valid, pass.budget_hit);
        if best {
            self.checkpoint(&self.folder.best())?;
        }
        self.checkpoint(&self.folder.last())?;
        self.timings.save(&self.folder.timings_file())?;
        observer.event(Event::Epoch {
            epoch,
            valid: &valid,
            best,
            samples_per_sec: pass.samples as f64 / pass.seconds.max(1e-9),
        });
        Ok(best.then_some(valid))
    }

    /// Trains one pass over `path` (or until the step budget), reporting the loss every
    /// `log_every` steps.
    fn train_pass(&mut self, path: &Path, epoch: u32, observer: &mut dyn Observer) -> Result<Pass> {
        let log_every = self.config.train.log_every;
        let start = Instant::now();
        let mut samples = 0u64;
        let mut loader = self.train_loader(path, epoch)?;
        let mut budget_hit = false;
        for prepared in loader.by_ref() {
            let prepared = prepared?;
            let rates = self.policy.rates(self.graph.step() + 1);
            self.graph.train_step(self.gpu, &prepared, rates)?;
            samples += prepared.rows as u64;
            let step = self.graph.step();
            if step.is_multiple_of(log_every) {
                let loss = self.graph.last_loss(self.gpu)?;
                observer.event(Event::Step {
                    epoch,
                    step,
                    samples,
                    samples_per_sec: samples as f64 / start.elapsed().as_secs_f64(),
                    loss: &loss,
                });
            }
            if self.config.train.steps.is_some_and(|s| step >= s) {
                budget_hit = true;
                break;
            }
        }
        self.gpu.sync()?;
        let seconds = start.elapsed().as_secs_f64();
        if !budget_hit {
            let bad = loader.finish()?;
            self.count_bad_rows(path, &bad);
        } else {
            drop(loader);
        }
        Ok(Pass {
            samples,
            seconds,
            budget_hit,
        })
    }

    /// Updates the early-stopping counters with the epoch's monitored validation AUC (`[train]
    /// monitor`: the first task's by default) and decides whether the run is over; returns
    /// whether this epoch is the best so far. `RunState::best_auc` keeps the monitored value.
    fn score_epoch(&mut self, epoch: u32, valid: &[TaskMetrics], budget_hit: bool) -> bool {
        let aucs: Vec<Option<f64>> = valid.iter().map(|m| m.auc).collect();
        let train = &self.config.train;
        // The tasks' AUCs come first (a scenario model's outputs follow them).
        let tasks = &self.config.tasks;
        let auc = train.monitored_auc(tasks, &aucs[..tasks.len().min(aucs.len())]);
        let best = match (auc, self.state.best_auc) {
            (Some(a), Some(b)) => a > b,
            (Some(_), None) => true,
            (None, _) => self.state.best_auc.is_none(),
        };
        if best {
            self.state.best_auc = auc;
            self.state.best_epoch = epoch;
            self.state.since_best = 0;
        } else {
            self.state.since_best += 1;
        }
        let patience = self.config.train.patience;
        if budget_hit
            || (patience > 0 && self.state.since_best >= patience)
            || epoch >= self.config.train.epochs
        {
            self.state.finished = true;
        }
        best
    }

    fn report(&self, test: Option<Vec<TaskMetrics>>, valid: Option<Vec<TaskMetrics>>) -> Report {
        Report {
            tasks: self.config.metric_names(),
            test,
            valid,
            state: self.state.clone(),
            train_samples_per_sec: self.timings.samples_per_sec(),
            adapter: self.gpu.describe(),
            dispatches_per_step: self.graph.dispatches().train,
            steps: self.graph.step(),
            bad_rows: self.skipped_rows(),
            rows: self.split_rows(),
        }
    }
}
