//! The HTTP API's contract: each 4xx with its status and message (and the server answering the
//! next good request), `/healthz` and `/metrics`, a broken snapshot, the binary's clean stop.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

use wgrec::serve::http::Server;

use crate::common::*;

/// A `/batch` body of test row 0 with `change` applied to its fields.
fn row_with(change: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) -> String {
    let all = row_texts();
    let body: serde_json::Value = serde_json::from_str(&batch_body(&all, &[0])).expect("json");
    let mut row = body["rows"][0].as_object().expect("a row").clone();
    change(&mut row);
    serde_json::json!({ "rows": [row] }).to_string()
}

#[test]
fn each_bad_request_gets_its_status_and_message_and_the_next_good_one_is_answered() {
    let f = fixture();
    let reference = reference_of(&f.run);
    let server = Server::start(Arc::clone(&f.gpu), options(&f.run, 1000)).expect("start");
    let addr = server.addr();
    let all = row_texts();
    let eleven_rows: Vec<usize> = (0..17).collect();
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("/score", "{\"candidates\": [".into(), 400, "malformed JSON"),
        (
            "/batch",
            row_with(|r| drop(r.insert("colour".into(), "red".into()))),
            400,
            "unknown feature \"colour\" in row 0",
        ),
        (
            "/batch",
            row_with(|r| drop(r.insert("n0".into(), "lots".into()))),
            400,
            "row 0, column \"n0\": number \"lots\" is not a number",
        ),
        (
            "/batch",
            row_with(|r| drop(r.remove("item_id"))),
            400,
            "row 0: missing feature \"item_id\"",
        ),
        (
            "/batch",
            row_with(|r| drop(r.insert("hist_cat".into(), "1|2|3|4|5|6|7|8|9".into()))),
            400,
            "row 0",
        ),
        (
            "/batch",
            batch_body(&all, &eleven_rows),
            413,
            "17 rows in one request",
        ),
        ("/nowhere", "{}".into(), 404, "no such endpoint"),
    ];
    for (path, body, status, message) in cases {
        let (got, answer) = http(addr, "POST", path, &body);
        let error: serde_json::Value = serde_json::from_str(&answer).expect("a JSON error");
        let text = error["error"].as_str().expect("an error message");
        assert_eq!(got, status, "{path} {body}: {text}");
        assert!(text.contains(message), "{path}: {text:?} lacks {message:?}");
        let (got, answer) = http(addr, "POST", "/score", &score_body(&all, &[0, 1]));
        assert_eq!(got, 200, "after {message}: {answer}");
        assert_eq!(scores_of(&answer).0, None, "a run folder has no version");
        assert_scores(&answer, &[0, 1], &reference);
    }
    server.shutdown().expect("a clean stop");
}

#[test]
fn healthz_and_metrics_parse() {
    let f = fixture();
    let server = Server::start(Arc::clone(&f.gpu), options(&f.run, 1000)).expect("start");
    let addr = server.addr();
    let (status, body) = http(addr, "GET", "/healthz", "");
    let health: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        (status, health["status"].as_str()),
        (200, Some("ok")),
        "{body}"
    );
    let all = row_texts();
    assert_eq!(
        http(addr, "POST", "/score", &score_body(&all, &[5, 6])).0,
        200
    );
    assert_eq!(http(addr, "POST", "/batch", "[]").0, 400);
    let (status, text) = http(addr, "GET", "/metrics", "");
    assert_eq!(status, 200);
    let mut samples = std::collections::BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (name, value) = line.rsplit_once(' ').expect("name value");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        samples.insert(name.to_string(), value);
    }
    let get = |name: &str| {
        samples
            .get(name)
            .copied()
            .unwrap_or_else(|| panic!("no {name}"))
    };
    assert_eq!(
        get("wgrec_requests_total{endpoint=\"score\",status=\"200\"}"),
        1.0
    );
    assert_eq!(
        get("wgrec_requests_total{endpoint=\"batch\",status=\"400\"}"),
        1.0
    );
    assert_eq!(
        get("wgrec_request_duration_seconds_count"),
        3.0,
        "healthz, score, batch"
    );
    assert_eq!(get("wgrec_rows_per_submission_count"), 1.0);
    assert_eq!(get("wgrec_rows_per_submission_bucket{le=\"2\"}"), 1.0);
    assert_eq!(get("wgrec_model_version"), -1.0);
    assert_eq!(get("wgrec_reloads_total{result=\"failed\"}"), 0.0);
    server.shutdown().expect("a clean stop");
}

#[test]
fn a_broken_snapshot_keeps_the_old_version_serving_until_a_good_one_comes() {
    let f = fixture();
    let dir = scratch("broken");
    let first = publish_run(&dir, 1, &f.run, Weights::Trained);
    let reference = reference_of(&first);
    let server = Server::start(Arc::clone(&f.gpu), options(&dir, 10)).expect("start");
    let addr = server.addr();
    publish_run(&dir, 2, &f.run, Weights::Broken);
    wait_until("the failed reload", || server.metrics().reloads() == (0, 1));
    let (status, body) = http(addr, "GET", "/healthz", "");
    assert!(
        status == 200 && body.contains("\"model_version\":1"),
        "{body}"
    );
    let all = row_texts();
    let (status, body) = http(addr, "POST", "/score", &score_body(&all, &[7]));
    assert_eq!((status, scores_of(&body).0), (200, Some(1)), "{body}");
    assert_scores(&body, &[7], &reference);

    let third = publish_run(&dir, 3, &f.run, Weights::Scaled(1.25));
    wait_until("version 3", || server.metrics().version() == Some(3));
    let (status, body) = http(addr, "POST", "/score", &score_body(&all, &[7]));
    assert_eq!((status, scores_of(&body).0), (200, Some(3)), "{body}");
    assert_scores(&body, &[7], &reference_of(&third));
    assert_eq!(server.metrics().reloads(), (1, 1));
    server.shutdown().expect("a clean stop");
}

/// A child process killed if the test ends before it does.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn the_binary_serves_and_stops_cleanly_on_sigterm() {
    let f = fixture();
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_wgrec"))
            .args(["serve", "--addr", "127.0.0.1:0", "--model"])
            .arg(&f.run)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start wgrec serve"),
    );
    let child = &mut child.0;
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    while !line.contains(" on http://") {
        line.clear();
        if stderr.read_line(&mut line).expect("read stderr") == 0 {
            panic!("wgrec serve ended before listening");
        }
    }
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|s| s.split(' ').next());
    let addr: std::net::SocketAddr = addr.expect("an address").parse().expect("an address");
    assert_eq!(http(addr, "GET", "/healthz", "").0, 200);
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(killed.expect("kill").success());
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        let waited = start.elapsed();
        assert!(
            waited < std::time::Duration::from_secs(20),
            "no stop after SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(status.success(), "exit {status:?}");
}
