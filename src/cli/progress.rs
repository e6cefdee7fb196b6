//! The training progress on stderr: a spinner line on a terminal, plain lines otherwise.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use wgrec::train::{Event, Observer};

use super::report::metric_line;

/// Draws a progress bar on a terminal, prints plain lines otherwise (all on stderr).
pub struct Progress {
    pub bar: Option<ProgressBar>,
    verbose: bool,
    /// Names of the metrics (the tasks, then a scenario model's outputs).
    tasks: Vec<String>,
    /// Names of the step losses (the outputs).
    outputs: Vec<String>,
    started: Instant,
}

impl Progress {
    pub fn new(tasks: Vec<String>, outputs: Vec<String>, verbose: bool) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
                    .expect("a valid template"),
            );
            bar
        });
        Progress {
            bar,
            verbose,
            tasks,
            outputs,
            started: Instant::now(),
        }
    }

    pub fn line(&self, text: String) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }
}

impl Observer for Progress {
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Compiled {
                dispatches,
                dense_params,
                embedding_rows,
            } => {
                if self.verbose {
                    self.line(format!(
                        "compiled: {dispatches} dispatches and 1 submit per training step, \
                         {dense_params} dense parameters, {embedding_rows} embedding rows"
                    ));
                }
            }
            Event::Step {
                epoch,
                step,
                samples,
                samples_per_sec,
                loss,
            } => {
                let loss: Vec<String> = self
                    .outputs
                    .iter()
                    .zip(loss)
                    .map(|(t, l)| format!("{t} {l:.4}"))
                    .collect();
                let text = format!(
                    "epoch {epoch} step {step}: {samples} samples, {samples_per_sec:.0} samples/s, \
                     loss {}",
                    loss.join(", ")
                );
                match &self.bar {
                    Some(bar) => bar.set_message(text),
                    None => eprintln!("{text}"),
                }
            }
            Event::Epoch {
                epoch,
                valid,
                best,
                samples_per_sec,
            } => {
                self.line(format!(
                    "epoch {epoch} done ({samples_per_sec:.0} samples/s, {:.0} s in all): valid {}{}",
                    self.started.elapsed().as_secs_f64(),
                    metric_line(&self.tasks, valid),
                    if best { " (best)" } else { "" }
                ));
            }
        }
    }
}
