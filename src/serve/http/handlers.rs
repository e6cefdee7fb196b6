//! The endpoints: `POST /score` and `POST /batch` parse the body into rows (on the request's own
//! task), send them to the GPU worker and answer `{"model_version": …, "scores": [{"p_<task>":
//! …}, …]}`, with a `"ranking"` beside for a ranked `/score` request (`rank.rs`); `GET /healthz`
//! and `GET /metrics`. Every error is a JSON `{"error": "…"}` with its status: 400 for a request the model cannot score, 413 for too many rows or too large a body,
//! 503 when no worker is serving, 500 for the server's own failure.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::ser::{Serialize, SerializeMap, Serializer};
use tokio::sync::oneshot;

use super::rank::job_ranking;
use super::rank::RankedAnswer;
use super::worker::{Failure, Job, Message, Scored};
use super::Shared;
use crate::serve::request::{parse_request, RequestError, Shape};

/// A JSON body with `status`.
fn json(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// `{"error": message}` with `status`.
fn error(status: StatusCode, message: &str) -> Response {
    json(status, serde_json::json!({ "error": message }).to_string())
}

/// One row's probabilities as `{"p_<task>": p, …}`, each f32 in its shortest exact form.
struct Row<'a> {
    names: &'a [String],
    values: &'a [f32],
}

impl Serialize for Row<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.names.len()))?;
        for (name, value) in self.names.iter().zip(self.values) {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

#[derive(serde::Serialize)]
struct Answer<'a> {
    model_version: Option<u64>,
    scores: Vec<Row<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ranking: Option<&'a RankedAnswer>,
}

fn answer(scored: &Scored) -> Response {
    let tasks = scored.names.len().max(1);
    let scores = (scored.probabilities.chunks(tasks))
        .map(|values| Row {
            names: &scored.names,
            values,
        })
        .collect();
    let body = Answer {
        model_version: scored.version,
        scores,
        ranking: scored.ranking.as_ref(),
    };
    match serde_json::to_string(&body) {
        Ok(text) => json(StatusCode::OK, text),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

fn request_error(e: &RequestError) -> Response {
    let status = match e {
        RequestError::Bad(_) => StatusCode::BAD_REQUEST,
        RequestError::TooManyRows { .. } => StatusCode::PAYLOAD_TOO_LARGE,
    };
    error(status, &e.to_string())
}

/// Parses, queues and awaits one scoring request.
async fn scored(shared: &Shared, body: Result<Bytes, BytesRejection>, shape: Shape) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return error(rejection.status(), &rejection.body_text()),
    };
    let columns = shared.columns();
    let request = match parse_request(&body, shape, &columns, shared.max_rows) {
        Ok(request) => request,
        Err(e) => return request_error(&e),
    };
    let (reply, answered) = oneshot::channel();
    let job = Job {
        rows: request.rows,
        shape,
        ranking: job_ranking(shape, request.ranking, shared.ranking),
        reply,
    };
    let sent = shared.sender().map(|s| s.send(Message::Score(job)));
    if !matches!(sent, Some(Ok(()))) {
        return error(StatusCode::SERVICE_UNAVAILABLE, "no model is serving");
    }
    match answered.await {
        Ok(Ok(scored)) => answer(&scored),
        Ok(Err(Failure::Request(e))) => request_error(&e),
        Ok(Err(Failure::Internal(message))) => error(StatusCode::INTERNAL_SERVER_ERROR, &message),
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the GPU worker ended before answering",
        ),
    }
}

/// Runs `handle` and counts its answer under `endpoint`.
async fn counted(
    shared: &Shared,
    endpoint: &'static str,
    handle: impl std::future::Future<Output = Response>,
) -> Response {
    let start = Instant::now();
    let response = handle.await;
    let seconds = start.elapsed().as_secs_f64();
    shared
        .metrics
        .request(endpoint, response.status().as_u16(), seconds);
    response
}

/// `POST /score`.
pub async fn score(
    State(shared): State<Arc<Shared>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    counted(&shared, "score", scored(&shared, body, Shape::Score)).await
}

/// `POST /batch`.
pub async fn batch(
    State(shared): State<Arc<Shared>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    counted(&shared, "batch", scored(&shared, body, Shape::Batch)).await
}

/// `GET /healthz`: 200 with the model version (a model is loaded before the server listens).
pub async fn healthz(State(shared): State<Arc<Shared>>) -> Response {
    let body = serde_json::json!({ "status": "ok", "model_version": shared.metrics.version() });
    counted(&shared, "healthz", async {
        json(StatusCode::OK, body.to_string())
    })
    .await
}

/// `GET /metrics`.
pub async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let text = shared.metrics.render();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        text,
    )
        .into_response()
}

/// Any other path.
pub async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "no such endpoint: POST /score, POST /batch, GET /healthz, GET /metrics",
    )
}
