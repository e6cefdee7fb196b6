//! The loader thread: reads a sample table, encodes each batch, runs the caller's `prepare` (the
//! trainer builds its upload plans there) and hands the results over through a bounded channel, so
//! reading and encoding run ahead of the GPU by at most `prefetch` batches.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::batch::Batch;
use super::encode::{merge_bad_rows, Encoder, ModelBatch};
use super::schema::Schema;
use super::table::{BadRows, ReadOptions, TableReader};
use crate::error::{Error, Result};

/// A streaming shuffle (see [`Loader::spawn_shuffled`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shuffle {
    /// Rows per emitted batch.
    pub batch: usize,
    /// Seed (the trainer uses the run's seed and the epoch).
    pub seed: u64,
}

/// Batches of one file, read, encoded and prepared on a thread of their own; an iterator of
/// `Result<T>` in file order (or shuffled within windows, see
/// [`Loader::spawn_shuffled`]). An error ends the stream after it is yielded once. Dropping the loader
/// early stops the thread (after the batch in hand) and joins it.
pub struct Loader<T> {
    file: String,
    receiver: Option<Receiver<Result<T>>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<BadRows>>,
    bad: Option<BadRows>,
    panic: Option<String>,
    done: bool,
}

impl<T: Send + 'static> Loader<T> {
    /// Opens `path` (a missing file or a bad header is an error here) and starts the thread:
    /// batches of `options.batch_rows` rows are encoded with `encoder`, passed through `prepare`
    /// and queued, at most `prefetch` waiting (0: each waits for the consumer). With
    /// `options.skip_bad_rows`, rows the reader or the encoder rejects are left out and counted
    /// ([`Self::finish`]); otherwise the first is the stream's error.
    pub fn spawn(
        path: PathBuf,
        schema: Schema,
        options: ReadOptions,
        encoder: Arc<Encoder>,
        prefetch: usize,
        prepare: impl FnMut(ModelBatch) -> Result<T> + Send + 'static,
    ) -> Result<Self> {
        Self::spawn_shuffled(path, schema, options, encoder, prefetch, None, prepare)
    }

    /// As [`spawn`](Self::spawn), and with `shuffle` each read batch of `options.batch_rows` rows
    /// (the shuffle window) is permuted (Fisher–Yates, seeded by `shuffle.seed` and the window's
    /// index, so a run is reproducible) and cut into batches of `shuffle.batch` rows: a streaming
    /// shuffle whose memory is one window.
    pub fn spawn_shuffled(
        path: PathBuf,
        schema: Schema,
        options: ReadOptions,
        encoder: Arc<Encoder>,
        prefetch: usize,
        shuffle: Option<Shuffle>,
        mut prepare: impl FnMut(ModelBatch) -> Result<T> + Send + 'static,
    ) -> Result<Self> {
        let file = path.display().to_string();
        let skip = options.skip_bad_rows;
        let kept = options.kept_reasons;
        let mut reader = TableReader::open(&path, &schema, options)?;
        let (sender, receiver) = sync_channel(prefetch);
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let stop = Arc::clone(&stop);
            let name = file.clone();
            std::thread::Builder::new()
                .name("wgrec-loader".into())
                .spawn(move || {
                    let mut rejected = BadRows::default();
                    let mut window = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let batch = match reader.next_batch() {
                            Ok(Some(batch)) => batch,
                            Ok(None) => break,
                            Err(e) => {
                                let _ = sender.send(Err(e));
                                break;
                            }
                        };
                        let mut good =
                            checked_rows(&encoder, &batch, &name, skip, kept, &mut rejected);
                        if good.is_empty() {
                            continue;
                        }
                        let chunk = match &shuffle {
                            Some(s) => shuffle_window(&mut good, s, window),
                            None => good.len(),
                        };
                        window += 1;
                        let mut stopped = false;
                        for rows in good.chunks(chunk) {
                            let encoded = if skip {
                                encoder.encode_checked(&batch, &name, rows)
                            } else if shuffle.is_some() {
                                encoder.encode_rows(&batch, &name, rows)
                            } else {
                                encoder.encode(&batch, &name)
                            };
                            let item = encoded.and_then(&mut prepare);
                            let failed = item.is_err();
                            if sender.send(item).is_err() || failed {
                                stopped = true;
                                break;
                            }
                        }
                        if stopped {
                            break;
                        }
                    }
                    merge_bad_rows(reader.into_bad_rows(), rejected, kept)
                })
                .map_err(|e| Error::Thread {
                    thread: "the loader",
                    message: format!("cannot start it for {file}: {e}"),
                })?
        };
        Ok(Loader {
            file,
            receiver: Some(receiver),
            stop,
            handle: Some(handle),
            bad: None,
            panic: None,
            done: false,
        })
    }
}

/// The rows of `batch` to encode: all of them, or with `skip` those `encoder` accepts (the others
/// counted in `rejected`, at most `kept` reasons kept).
fn checked_rows(
    encoder: &Encoder,
    batch: &Batch,
    name: &str,
    skip: bool,
    kept: usize,
    rejected: &mut BadRows,
) -> Vec<usize> {
    let mut good = Vec::with_capacity(batch.rows);
    for r in 0..batch.rows {
        if !skip {
            good.push(r);
            continue;
        }
        match encoder.check_row(batch, name, r) {
            Ok(()) => good.push(r),
            Err(e) => {
                rejected.count += 1;
                if rejected.first.len() < kept {
                    rejected.first.push(e);
                }
            }
        }
    }
    good
}

/// Permutes the rows of shuffle window `window` (Fisher–Yates, seeded by the shuffle's seed and
/// the window's index) and returns the rows per emitted batch.
fn shuffle_window(good: &mut [usize], shuffle: &Shuffle, window: u64) -> usize {
    let mut rng = crate::rng::Rng::new(shuffle.seed ^ window.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    for i in (1..good.len()).rev() {
        good.swap(i, rng.below(i as u64 + 1) as usize);
    }
    shuffle.batch.max(1)
}

impl<T> Loader<T> {
    /// Stops the thread if it still runs, joins it and hands over the rows skipped under
    /// `skip_bad_rows` (all of them once the stream has ended; those so far when called early).
    /// A panic on the thread (in `prepare`) is an error.
    pub fn finish(mut self) -> Result<BadRows> {
        self.join();
        if let Some(message) = &self.panic {
            return Err(self.panic_error(message));
        }
        Ok(self.bad.take().unwrap_or_default())
    }

    fn panic_error(&self, message: &str) -> Error {
        Error::Thread {
            thread: "the loader",
            message: format!("reading {}: panicked: {message}", self.file),
        }
    }

    /// Stops and joins the thread (once), keeping its result.
    fn join(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Dropping the receiver makes the thread's next send fail, so it cannot block.
        self.receiver = None;
        if let Some(handle) = self.handle.take() {
            match handle.join() {
                Ok(bad) => self.bad = Some(bad),
                Err(payload) => {
                    let message = payload
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| payload.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "(no message)".into());
                    self.panic = Some(message);
                }
            }
        }
    }
}

impl<T> Iterator for Loader<T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        if self.done {
            return None;
        }
        let received = self.receiver.as_ref()?.recv();
        match received {
            Ok(item) => {
                self.done = item.is_err();
                Some(item)
            }
            Err(_) => {
                // The thread has ended: the file is exhausted, or it panicked.
                self.done = true;
                self.join();
                self.panic.clone().map(|m| Err(self.panic_error(&m)))
            }
        }
    }
}

impl<T> Drop for Loader<T> {
    fn drop(&mut self) {
        self.join();
    }
}

#[cfg(test)]
#[path = "loader_tests.rs"]
mod tests;
