//! Hot reload: a watcher thread looks at the publish folder every `--reload-secs` and, for a
//! newer snapshot, starts a worker on a new thread that loads it off the request path (the old
//! worker keeps serving meanwhile) and then takes the request channel over between two
//! submissions (see [`super::worker`]). A snapshot that fails to load is logged and counted, the
//! old model keeps serving, and that version is not tried again (a newer one is).

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::worker::{self, Batching, Message};
use super::Shared;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::run::snapshot::latest;
use crate::serve::request::RequestColumns;
use crate::serve::Predictor;

/// Where a new worker gets its requests from.
pub enum Channel {
    /// The first worker: the channel's receiver.
    Fresh(Receiver<Message>),
    /// A reload: the receiver is asked of the serving worker through this sender.
    Takeover(Sender<Message>),
}

/// What a worker needs besides its channel.
#[derive(Clone)]
pub struct WorkerSetup {
    pub gpu: Arc<Gpu>,
    pub model: PathBuf,
    pub batching: Batching,
    pub shared: Arc<Shared>,
}

/// Starts a worker thread: it loads the model, takes its channel, publishes its version and
/// request columns, reports the version loaded on `ready` (or the load's error) and serves.
pub fn spawn_worker(
    setup: WorkerSetup,
    channel: Channel,
    ready: Sender<Result<Option<u64>>>,
) -> Result<JoinHandle<()>> {
    let thread = std::thread::Builder::new().name("wgrec-serve-gpu".into());
    let spawned = thread.spawn(move || {
        let max_batch = setup.batching.max_batch as u32;
        let predictor = match Predictor::load_with_batch(&setup.gpu, &setup.model, max_batch) {
            Ok(p) => p,
            Err(e) => return drop(ready.send(Err(e))),
        };
        if let Err(e) = super::rank::check_model(setup.shared.ranking, &predictor) {
            return drop(ready.send(Err(e)));
        }
        let columns = RequestColumns::new(predictor.config(), predictor.schema());
        let receiver = match channel {
            Channel::Fresh(receiver) => receiver,
            Channel::Takeover(sender) => match take_over(sender) {
                Some(receiver) => receiver,
                None => return drop(ready.send(Err(stopped()))),
            },
        };
        setup.shared.install(predictor.version(), columns.clone());
        let _ = ready.send(Ok(predictor.version()));
        let model = worker::Model { predictor, columns };
        worker::run(model, &setup.gpu, receiver, setup.batching, &setup.shared);
    });
    spawned.map_err(|e| Error::Thread {
        thread: "the serving GPU worker",
        message: format!("cannot start: {e}"),
    })
}

fn stopped() -> Error {
    Error::Thread {
        thread: "the serving GPU worker",
        message: "the server stopped during the reload".into(),
    }
}

/// Asks the serving worker for the request channel; `None` when it has ended (shutdown).
fn take_over(sender: Sender<Message>) -> Option<Receiver<Message>> {
    let (to, from) = mpsc::channel();
    sender.send(Message::Takeover(to)).ok()?;
    drop(sender);
    from.recv().ok()
}

/// The watcher's loop: until `stop` says so (or is dropped), every `every` looks for a snapshot
/// newer than the one serving and starts a worker for it; the workers started go to `workers`.
pub fn watch(
    publish: &Path,
    every: Duration,
    stop: &Receiver<()>,
    setup: &WorkerSetup,
    workers: &Mutex<Vec<JoinHandle<()>>>,
) {
    let metrics = &setup.shared.metrics;
    let mut failed: Option<u64> = None;
    while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(every) {
        let newest = match latest(publish) {
            Ok(Some((version, _))) => version,
            Ok(None) => continue,
            Err(e) => {
                eprintln!("warning: reload: {e}");
                continue;
            }
        };
        if Some(newest) <= metrics.version() || Some(newest) <= failed {
            continue;
        }
        let Some(sender) = setup.shared.sender() else {
            return; // The server is stopping.
        };
        let (ready, outcome) = mpsc::channel();
        let channel = Channel::Takeover(sender);
        let result =
            spawn_worker(setup.clone(), channel, ready).and_then(|handle| match outcome.recv() {
                Ok(Ok(version)) => Ok((handle, version)),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(stopped()),
            });
        match result {
            Ok((handle, version)) => {
                metrics.reload(true);
                eprintln!("serving snapshot {}", version.unwrap_or(newest));
                if let Ok(mut list) = workers.lock() {
                    list.push(handle);
                }
            }
            Err(e) => {
                metrics.reload(false);
                failed = Some(newest);
                let serving = metrics.version().map_or("-".into(), |v| v.to_string());
                eprintln!(
                    "warning: snapshot {newest} failed to load ({e}); still serving {serving}"
                );
            }
        }
    }
}
