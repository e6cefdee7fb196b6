//! The load test: concurrent clients, a snapshot published in the middle; every request is
//! answered, each with the scores of the version it names.

use std::collections::BTreeMap;
use std::sync::{Arc, Barrier};

use wgrec::serve::http::Server;

use crate::common::*;

const CLIENTS: usize = 8;
const REQUESTS: usize = 50;

/// The rows of request `i` of client `c`: 1 to 8 consecutive test rows.
fn rows_of(c: usize, i: usize) -> Vec<usize> {
    let start = (c * 7 + i * 3) % ROWS;
    let len = 1 + (c + i) % 8;
    (start..(start + len).min(ROWS)).collect()
}

/// One client's requests, alternating /score and /batch; waits at `half` half way.
fn client(addr: std::net::SocketAddr, c: usize, half: &Barrier) -> Vec<(Vec<usize>, u16, String)> {
    let all = row_texts();
    (0..REQUESTS)
        .map(|i| {
            if i == REQUESTS / 2 {
                half.wait();
            }
            let rows = rows_of(c, i);
            let (path, body) = if (c + i).is_multiple_of(2) {
                ("/score", score_body(&all, &rows))
            } else {
                ("/batch", batch_body(&all, &rows))
            };
            let (status, answer) = http(addr, "POST", path, &body);
            (rows, status, answer)
        })
        .collect()
}

#[test]
fn under_load_and_a_reload_every_request_gets_the_scores_of_the_version_it_names() {
    let f = fixture();
    let publish_dir = scratch("load");
    let first = publish_run(&publish_dir, 1, &f.run, Weights::Trained);
    let mut reference = BTreeMap::from([(1u64, reference_of(&first))]);
    let server = Server::start(Arc::clone(&f.gpu), options(&publish_dir, 20)).expect("start");
    let addr = server.addr();
    let half = Arc::new(Barrier::new(CLIENTS + 1));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let half = Arc::clone(&half);
            std::thread::spawn(move || client(addr, c, &half))
        })
        .collect();
    half.wait();
    let second = publish_run(&publish_dir, 2, &f.run, Weights::Scaled(1.5));
    reference.insert(2, reference_of(&second));
    assert_ne!(reference[&1], reference[&2], "the two versions score alike");

    let mut seen = BTreeMap::<u64, usize>::new();
    for handle in clients {
        for (rows, status, body) in handle.join().expect("a client panicked") {
            assert_eq!(status, 200, "{body}");
            let version = scores_of(&body).0.expect("a snapshot version");
            assert_scores(&body, &rows, &reference[&version]);
            *seen.entry(version).or_default() += 1;
        }
    }
    assert_eq!(seen.values().sum::<usize>(), CLIENTS * REQUESTS);
    assert!(
        seen.contains_key(&1),
        "no request was scored by version 1: {seen:?}"
    );

    wait_until("version 2", || server.metrics().version() == Some(2));
    let all = row_texts();
    let (status, body) = http(addr, "POST", "/score", &score_body(&all, &[3, 4, 5]));
    assert_eq!((status, scores_of(&body).0), (200, Some(2)), "{body}");
    assert_scores(&body, &[3, 4, 5], &reference[&2]);
    assert_eq!(server.metrics().reloads(), (1, 0));
    eprintln!("answers per version: {seen:?}");
    server.shutdown().expect("a clean stop");
}
