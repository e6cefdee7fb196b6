//! `wgrec serve`: the HTTP JSON API over a [`Predictor`](crate::serve::Predictor).
//!
//! Threads: tokio's runtime runs the handlers (`handlers.rs`), which parse requests into rows
//! (`crate::serve::request`) and queue them; one GPU worker thread (`worker.rs`) owns the
//! predictor and scores the queued rows in micro-batches; a watcher thread (`watch.rs`) looks for
//! newer snapshots and starts the next worker, which takes the queue over between two
//! submissions; `metrics.rs` counts. The model is loaded before the server listens, so
//! `/healthz` answers 200 from the first request on.
//!
//! [`Server::start`] runs all of it in-process on an address (port 0: a free one), for `wgrec
//! serve`, the tests and `examples/serve_latency.rs`; [`Server::shutdown`] stops it cleanly,
//! answering the requests in flight.

mod handlers;
mod metrics;
mod rank;
mod watch;
mod worker;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;

use crate::error::{Error, Result};
use crate::explore::Policy;
use crate::gpu::Gpu;
use crate::run::snapshot::is_publish_folder;
use crate::serve::request::RequestColumns;
pub use metrics::Metrics;
use watch::{Channel, WorkerSetup};
use worker::{Batching, Message};

/// How `wgrec serve` serves.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// A publish folder, a snapshot or a run folder.
    pub model: PathBuf,
    /// Where to listen (port 0: any free port).
    pub addr: SocketAddr,
    /// Rows per GPU submission at most (the graph is compiled for it).
    pub max_batch: u32,
    /// How long the worker waits for more requests after the first.
    pub max_wait: Duration,
    /// Rows one request may hold (more: 413).
    pub max_rows: usize,
    /// How often to look for a newer snapshot.
    pub reload_every: Duration,
}

/// How `POST /score` ranks candidates (docs/serving.md, "Ranking"; `rank.rs`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Ranking {
    /// The server's policy (`--policy`); `None`: only requests naming one (or giving bids) are
    /// ranked.
    pub policy: Option<Policy>,
    /// The seed of the draws (`--seed`).
    pub seed: u64,
}

/// What the handlers, the worker and the watcher share.
pub struct Shared {
    /// The counters of `/metrics`.
    pub metrics: Metrics,
    columns: RwLock<Arc<RequestColumns>>,
    /// `None` once the server stops: the worker's queue then closes.
    sender: Mutex<Option<Sender<Message>>>,
    max_rows: usize,
    ranking: Ranking,
    /// Ranked requests so far: the next one's draw index.
    ranked: AtomicU64,
}

impl Shared {
    /// The request columns of the model serving.
    fn columns(&self) -> Arc<RequestColumns> {
        match self.columns.read() {
            Ok(c) => Arc::clone(&c),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// A sender into the worker's queue (`None` once the server stops).
    fn sender(&self) -> Option<Sender<Message>> {
        match self.sender.lock() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Closes the worker's queue (the worker ends once the senders in flight are gone).
    fn close(&self) {
        match self.sender.lock() {
            Ok(mut s) => *s = None,
            Err(poisoned) => *poisoned.into_inner() = None,
        }
    }

    /// A worker with a model of `version` and `columns` now serves.
    fn install(&self, version: Option<u64>, columns: RequestColumns) {
        let columns = Arc::new(columns);
        match self.columns.write() {
            Ok(mut c) => *c = columns,
            Err(poisoned) => *poisoned.into_inner() = columns,
        }
        self.metrics.set_version(version);
    }
}

/// A running server.
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    runtime: tokio::runtime::Runtime,
    stop_http: Option<tokio::sync::oneshot::Sender<()>>,
    http: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    watcher: Option<(Sender<()>, JoinHandle<()>)>,
    workers: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

fn server_error(message: String) -> Error {
    Error::Thread {
        thread: "the HTTP server",
        message,
    }
}

impl Server {
    /// Loads the model on `gpu`, starts the worker, the watcher (for a publish folder) and the
    /// HTTP server, and returns once it listens. `/score` ranks only requests that ask.
    pub fn start(gpu: Arc<Gpu>, options: ServeOptions) -> Result<Self> {
        Self::start_ranked(gpu, options, Ranking::default())
    }

    /// [`Self::start`] with a ranking policy in force for `/score`; a policy that needs an
    /// uncertainty head on a model without one is refused here.
    pub fn start_ranked(gpu: Arc<Gpu>, options: ServeOptions, ranking: Ranking) -> Result<Self> {
        if options.max_batch == 0 || options.max_rows == 0 {
            return Err(server_error(
                "--max-batch and --max-rows must be at least 1".into(),
            ));
        }
        let (sender, receiver) = mpsc::channel();
        let (ready, loaded) = mpsc::channel();
        let shared = Arc::new(Shared {
            metrics: Metrics::default(),
            columns: RwLock::new(Arc::new(placeholder_columns())),
            sender: Mutex::new(Some(sender)),
            max_rows: options.max_rows,
            ranking,
            ranked: AtomicU64::new(0),
        });
        let setup = WorkerSetup {
            gpu,
            model: options.model.clone(),
            batching: Batching {
                max_batch: options.max_batch as usize,
                max_wait: options.max_wait,
            },
            shared: Arc::clone(&shared),
        };
        let first = watch::spawn_worker(setup.clone(), Channel::Fresh(receiver), ready)?;
        loaded
            .recv()
            .map_err(|_| server_error("the GPU worker ended while loading".into()))??;
        let workers = Arc::new(Mutex::new(vec![first]));
        let watcher = is_publish_folder(&options.model)
            .then(|| spawn_watcher(&options, setup, Arc::clone(&workers)))
            .transpose()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| server_error(format!("cannot start the runtime: {e}")))?;
        let (addr, stop_http, http) = listen(&runtime, options.addr, &shared)?;
        Ok(Server {
            addr,
            shared,
            runtime,
            stop_http: Some(stop_http),
            http: Some(http),
            watcher,
            workers,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The metrics (the version serving, reloads).
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Serves until SIGINT or SIGTERM, then shuts down cleanly; `listening` runs once the signals
    /// are caught (so a signal sent after it never kills the process outright).
    pub fn run_until_signal(self, listening: impl FnOnce(&Server)) -> Result<()> {
        let stop = {
            let _context = self.runtime.enter();
            stop_signal().map_err(|e| server_error(format!("cannot catch signals: {e}")))?
        };
        listening(&self);
        self.runtime.block_on(stop);
        eprintln!("stopping: answering the requests in flight");
        self.shutdown()
    }

    /// Stops accepting connections, answers the requests in flight, stops the watcher and the
    /// worker.
    pub fn shutdown(mut self) -> Result<()> {
        if let Some(stop) = self.stop_http.take() {
            let _ = stop.send(());
        }
        let served = self.http.take().map(|h| self.runtime.block_on(h));
        if let Some((stop, handle)) = self.watcher.take() {
            let _ = stop.send(());
            let _ = handle.join();
        }
        drop(self.runtime);
        // The worker's queue closes and it ends.
        self.shared.close();
        let handles = match self.workers.lock() {
            Ok(mut list) => std::mem::take(&mut *list),
            Err(_) => Vec::new(),
        };
        for handle in handles {
            let _ = handle.join();
        }
        match served {
            Some(Ok(Err(e))) => Err(server_error(format!("serving failed: {e}"))),
            Some(Err(e)) => Err(server_error(format!("the server task failed: {e}"))),
            _ => Ok(()),
        }
    }
}

/// A stand-in until the first worker installs the model's columns (before any request).
fn placeholder_columns() -> RequestColumns {
    let schema = crate::data::Schema {
        delimiter: b'\t',
        quote: None,
        header: false,
        columns: Vec::new(),
    };
    RequestColumns::from_parts(schema, Vec::new())
}

fn spawn_watcher(
    options: &ServeOptions,
    setup: WorkerSetup,
    workers: Arc<Mutex<Vec<JoinHandle<()>>>>,
) -> Result<(Sender<()>, JoinHandle<()>)> {
    let (stop, stopped) = mpsc::channel();
    let (publish, every) = (options.model.clone(), options.reload_every);
    let handle = std::thread::Builder::new()
        .name("wgrec-serve-reload".into())
        .spawn(move || watch::watch(&publish, every, &stopped, &setup, &workers))
        .map_err(|e| server_error(format!("cannot start the reload watcher: {e}")))?;
    Ok((stop, handle))
}

type Listening = (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
);

/// Binds `addr` and serves the routes on `runtime` until the returned sender fires.
fn listen(
    runtime: &tokio::runtime::Runtime,
    addr: SocketAddr,
    shared: &Arc<Shared>,
) -> Result<Listening> {
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(addr))
        .map_err(|e| server_error(format!("cannot listen on {addr}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| server_error(format!("cannot read the address bound: {e}")))?;
    // Room for `max_rows` rows of a wide schema; axum's default (2 MiB) is too small.
    let body_limit = shared.max_rows.saturating_mul(16 << 10).max(1 << 20);
    let app = Router::new()
        .route("/score", post(handlers::score))
        .route("/batch", post(handlers::batch))
        .route("/healthz", get(handlers::healthz))
        .route("/metrics", get(handlers::metrics))
        .fallback(handlers::not_found)
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .with_state(Arc::clone(shared));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let http = runtime.spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    Ok((bound, stop, http))
}

/// A future that ends at SIGINT (Ctrl-C) or SIGTERM, listening from now on.
fn stop_signal() -> std::io::Result<std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(Box::pin(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        }))
    }
    #[cfg(not(unix))]
    Ok(Box::pin(async {
        let _ = tokio::signal::ctrl_c().await;
    }))
}
