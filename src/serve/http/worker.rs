//! The GPU worker: one thread owns the serving [`Predictor`] and scores the handlers' requests in
//! micro-batches.
//!
//! # The bounded wait
//! The worker blocks for the first waiting request, then takes whatever else arrives within
//! `max_wait` of it (stopping early once `max_batch` rows are gathered), and scores all of them
//! in one GPU submission (several only when the rows exceed the graph's compiled batch). A lone
//! request therefore waits at most `max_wait` more than it would alone; under load the wait buys
//! fuller submissions. Each request is answered through its own oneshot.
//!
//! # Handing over to a newer model
//! A reload does not send a model to this thread (it would stop scoring while the new one
//! loads): the watcher builds the new predictor on a new thread, which then sends
//! [`Message::Takeover`] down the request channel. The old worker scores what it has gathered,
//! hands the channel's receiver over and ends; the new thread carries on from the next message.
//! No request is dropped: every message stays in the channel until one worker or the other
//! takes it.

use std::ops::Range;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::metrics::Metrics;
use super::rank::{rank_job, JobRanking, RankedAnswer};
use super::Shared;
use crate::error::Error;
use crate::explore::Belief;
use crate::gpu::Gpu;
use crate::serve::rank::append_belief;
use crate::serve::request::{append_rows, empty_batch, RequestColumns, RequestError, Rows, Shape};
use crate::serve::Predictor;

/// Probabilities for one request, with the model that gave them.
#[derive(Debug)]
pub struct Scored {
    /// The snapshot version that scored them.
    pub version: Option<u64>,
    /// `p_<task>` per output column.
    pub names: Arc<Vec<String>>,
    /// `[rows, tasks]`.
    pub probabilities: Vec<f32>,
    /// The ranking, for a ranked `/score` request.
    pub ranking: Option<RankedAnswer>,
}

/// Why a request got no scores.
#[derive(Debug)]
pub enum Failure {
    /// The request's fault (400 or 413).
    Request(RequestError),
    /// The server's (500).
    Internal(String),
}

/// One request for the worker.
pub struct Job {
    /// Its rows in the schema of the model the handler saw.
    pub rows: Rows,
    /// How its rows are named in errors.
    pub shape: Shape,
    /// How it is ranked (`None`: it is not).
    pub ranking: Option<JobRanking>,
    /// Where the answer goes.
    pub reply: oneshot::Sender<Result<Scored, Failure>>,
}

/// What the worker's channel carries.
pub enum Message {
    /// A request to score.
    Score(Job),
    /// A worker with a newer model asks for the channel.
    Takeover(Sender<Receiver<Message>>),
}

/// How the worker gathers a micro-batch.
#[derive(Debug, Clone, Copy)]
pub struct Batching {
    /// Stop gathering at this many rows.
    pub max_batch: usize,
    /// Wait at most this long after the first request.
    pub max_wait: Duration,
}

/// The model a worker serves: the predictor and its request columns.
pub struct Model {
    /// The predictor.
    pub predictor: Predictor,
    /// Its request columns.
    pub columns: RequestColumns,
}

/// Serves `receiver` with `model` until the channel closes or a newer worker takes it over.
pub fn run(
    mut model: Model,
    gpu: &Gpu,
    receiver: Receiver<Message>,
    batching: Batching,
    shared: &Shared,
) {
    let names: Arc<Vec<String>> = Arc::new(
        (model.predictor.tasks().iter())
            .map(|t| format!("p_{t}"))
            .collect(),
    );
    while let Ok(first) = receiver.recv() {
        let (jobs, takeover) = match first {
            Message::Score(job) => gather(job, &receiver, batching),
            Message::Takeover(to) => (Vec::new(), Some(to)),
        };
        if !jobs.is_empty() {
            score(&mut model, gpu, jobs, &names, shared);
        }
        if let Some(to) = takeover {
            // A newer worker that has gone away leaves this one serving.
            if let Err(back) = to.send(receiver) {
                return run(model, gpu, back.0, batching, shared);
            }
            return;
        }
    }
}

/// The first job and whatever else arrives within the wait, up to `max_batch` rows; stops at a
/// takeover (returned beside).
fn gather(
    first: Job,
    receiver: &Receiver<Message>,
    batching: Batching,
) -> (Vec<Job>, Option<Sender<Receiver<Message>>>) {
    let deadline = Instant::now() + batching.max_wait;
    let mut rows = first.rows.len();
    let mut jobs = vec![first];
    while rows < batching.max_batch {
        let left = deadline.saturating_duration_since(Instant::now());
        match receiver.recv_timeout(left) {
            Ok(Message::Score(job)) => {
                rows += job.rows.len();
                jobs.push(job);
            }
            Ok(Message::Takeover(to)) => return (jobs, Some(to)),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
        }
    }
    (jobs, None)
}

/// A row the encoder refuses, as a request error naming the row.
fn encode_error(e: Error, shape: Shape) -> Failure {
    let message = match e {
        Error::Data {
            line,
            column,
            message,
            ..
        } => {
            let row = line.map_or(String::new(), |l| format!(" {l}"));
            let column = column.map_or(String::new(), |c| format!(", column {c}"));
            format!("{}{row}{column}: {message}", shape.row_name())
        }
        other => other.to_string(),
    };
    Failure::Request(RequestError::Bad(message))
}

/// Parses the jobs' rows into one batch, answers the bad ones, scores the rest and answers them
/// (ranking those that ask, in queue order).
fn score(model: &mut Model, gpu: &Gpu, jobs: Vec<Job>, names: &Arc<Vec<String>>, shared: &Shared) {
    let (batch, accepted) = parse_jobs(model, jobs);
    let predictor = &mut model.predictor;
    let rows: Vec<usize> = accepted.iter().flat_map(|(_, r)| r.clone()).collect();
    let ranked = accepted.iter().any(|(job, _)| job.ranking.is_some());
    let belief = ranked && predictor.config().uncertainty().is_some();
    let result = predict(predictor, gpu, &batch, &rows, belief, &shared.metrics);
    let tasks = names.len();
    for (job, range) in accepted {
        let answer = match &result {
            Ok((p, belief)) => {
                let offset = rows.partition_point(|&r| r < range.start);
                let probabilities = p[offset * tasks..(offset + range.len()) * tasks].to_vec();
                let belief = belief.as_ref().map(|b| (b, offset));
                let ranking = (job.ranking.as_ref())
                    .map(|r| rank_job(shared, r, &probabilities, names, belief))
                    .transpose();
                ranking.map(|ranking| Scored {
                    version: predictor.version(),
                    names: Arc::clone(names),
                    probabilities,
                    ranking,
                })
            }
            Err(e) => Err(Failure::Internal(e.to_string())),
        };
        let _ = job.reply.send(answer);
    }
}

/// The jobs' rows in one batch; a job with a bad row is answered here and left out.
fn parse_jobs(model: &Model, jobs: Vec<Job>) -> (crate::data::Batch, Vec<(Job, Range<usize>)>) {
    let Model { predictor, columns } = model;
    let mut batch = empty_batch(columns.schema());
    let mut accepted = Vec::with_capacity(jobs.len());
    for job in jobs {
        let start = batch.rows;
        if let Err(e) = append_rows(columns, &job.rows, job.shape, &mut batch) {
            let _ = job.reply.send(Err(Failure::Request(e)));
            continue;
        }
        let encoder = predictor.encoder();
        match (start..batch.rows).try_for_each(|r| encoder.check_row(&batch, "request", r)) {
            Ok(()) => accepted.push((job, start..batch.rows)),
            Err(e) => {
                let shape = job.shape;
                let _ = job.reply.send(Err(encode_error(e, shape)));
            }
        }
    }
    (batch, accepted)
}

/// Probabilities of `rows` of `batch`, in submissions of at most the compiled batch, and with
/// `belief` the uncertainty head's belief over the same rows.
fn predict(
    predictor: &mut Predictor,
    gpu: &Gpu,
    batch: &crate::data::Batch,
    rows: &[usize],
    belief: bool,
    metrics: &Metrics,
) -> crate::Result<(Vec<f32>, Option<Belief>)> {
    let mut probabilities = Vec::with_capacity(rows.len() * predictor.tasks().len());
    let mut beliefs = None;
    let max = predictor.max_batch().max(1) as usize;
    for chunk in rows.chunks(max) {
        let encoded = predictor
            .encoder()
            .encode_checked(batch, "request", chunk)?;
        if belief {
            let (p, part) = predictor.predict_belief(gpu, &encoded)?;
            probabilities.extend(p);
            append_belief(&mut beliefs, part)?;
        } else {
            probabilities.extend(predictor.predict(gpu, &encoded)?);
        }
        metrics.submission(chunk.len());
    }
    Ok((probabilities, beliefs))
}
