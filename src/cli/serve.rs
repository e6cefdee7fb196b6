//! `wgrec serve`: the HTTP JSON API over a trained model (see `wgrec::serve::http` and
//! docs/serving.md).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use wgrec::explore::Policy;
use wgrec::serve::http::{Ranking, ServeOptions, Server};

/// The arguments of `wgrec serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A publish folder (its newest snapshot, reloaded as newer ones appear), one snapshot, or a
    /// run folder.
    #[arg(long)]
    model: PathBuf,
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Rows per GPU submission at most (the model is compiled for it).
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..))]
    max_batch: u32,
    /// Milliseconds the GPU worker waits for more requests after the first, to batch them.
    #[arg(long, default_value_t = 2)]
    max_wait_ms: u64,
    /// Rows one request may hold (more: 413).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    max_rows: u64,
    /// Seconds between looks for a newer snapshot (publish folders only).
    #[arg(long, default_value_t = 1.0)]
    reload_secs: f64,
    /// Rank the candidates of every `POST /score` by this policy (a request's own "policy"
    /// overrides it): greedy, epsilon:<ε>, ucb:<c> or thompson. UCB and Thompson need a model
    /// with an uncertainty head and are refused at start-up without one.
    #[arg(long, value_parser = Policy::parse)]
    policy: Option<Policy>,
    /// The seed of the ranking's random draws (ε's coin, Thompson's posterior draws).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// `wgrec serve`.
pub fn serve(args: ServeArgs) -> anyhow::Result<()> {
    if !(args.reload_secs.is_finite() && args.reload_secs > 0.0) {
        anyhow::bail!("--reload-secs must be a positive number of seconds");
    }
    let gpu = Arc::new(super::tune::gpu()?);
    let options = ServeOptions {
        model: args.model,
        addr: args.addr,
        max_batch: args.max_batch,
        max_wait: Duration::from_millis(args.max_wait_ms),
        max_rows: usize::try_from(args.max_rows)?,
        reload_every: Duration::from_secs_f64(args.reload_secs),
    };
    let ranking = Ranking {
        policy: args.policy,
        seed: args.seed,
    };
    let server = Server::start_ranked(Arc::clone(&gpu), options, ranking)?;
    server.run_until_signal(|server| {
        let version = server.metrics().version();
        let version = version.map_or("a run folder's model".into(), |v| format!("snapshot {v}"));
        eprintln!(
            "serving {version} on http://{} ({})",
            server.addr(),
            gpu.describe()
        );
    })?;
    Ok(())
}
