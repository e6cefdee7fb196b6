//! What `GET /metrics` reports, in the Prometheus text format: requests by endpoint and status,
//! a request-latency histogram, the model version being served, a histogram of rows per GPU
//! submission (how well micro-batching fills the device) and reloads done and failed.
//!
//! Counters are atomics or short mutexes: the handlers and the worker update them on every
//! request, and nothing here may hold a request up.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Request-latency bucket bounds, seconds: 1 ms to 10 s.
const LATENCY_BOUNDS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Rows-per-submission bucket bounds: powers of 2 up to the largest `--max-batch` worth having.
const ROWS_BOUNDS: [f64; 15] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0,
    16384.0,
];

/// A cumulative histogram with fixed bounds.
struct Histogram {
    bounds: &'static [f64],
    /// One per bound, then +Inf.
    counts: Vec<AtomicU64>,
    sum: Mutex<f64>,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: Mutex::new(0.0),
        }
    }

    fn observe(&self, value: f64) {
        let bucket = self.bounds.partition_point(|&b| b < value);
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        if let Ok(mut sum) = self.sum.lock() {
            *sum += value;
        }
    }

    fn write(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0u64;
        for (i, count) in self.counts.iter().enumerate() {
            cumulative += count.load(Ordering::Relaxed);
            let le = match self.bounds.get(i) {
                Some(b) => b.to_string(),
                None => "+Inf".to_string(),
            };
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let sum = self.sum.lock().map(|s| *s).unwrap_or(f64::NAN);
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {cumulative}");
    }
}

/// The server's metrics.
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    latency: Histogram,
    rows_per_submission: Histogram,
    /// The served model's version; `u64::MAX` for a run folder's model (no version).
    version: AtomicU64,
    reloads_done: AtomicU64,
    reloads_failed: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Mutex::new(BTreeMap::new()),
            latency: Histogram::new(&LATENCY_BOUNDS),
            rows_per_submission: Histogram::new(&ROWS_BOUNDS),
            version: AtomicU64::new(u64::MAX),
            reloads_done: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// One answered request.
    pub fn request(&self, endpoint: &'static str, status: u16, seconds: f64) {
        if let Ok(mut map) = self.requests.lock() {
            *map.entry((endpoint, status)).or_default() += 1;
        }
        self.latency.observe(seconds);
    }

    /// One GPU submission of `rows` rows.
    pub fn submission(&self, rows: usize) {
        self.rows_per_submission.observe(rows as f64);
    }

    /// The model now serving.
    pub fn set_version(&self, version: Option<u64>) {
        self.version
            .store(version.unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// The model version now serving.
    pub fn version(&self) -> Option<u64> {
        Some(self.version.load(Ordering::Relaxed)).filter(|&v| v != u64::MAX)
    }

    /// A reload that took effect (`true`) or failed.
    pub fn reload(&self, done: bool) {
        let counter = if done {
            &self.reloads_done
        } else {
            &self.reloads_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Reloads done and failed so far.
    pub fn reloads(&self) -> (u64, u64) {
        (
            self.reloads_done.load(Ordering::Relaxed),
            self.reloads_failed.load(Ordering::Relaxed),
        )
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP wgrec_requests_total Requests answered, by endpoint and status.\n");
        out.push_str("# TYPE wgrec_requests_total counter\n");
        if let Ok(map) = self.requests.lock() {
            for ((endpoint, status), n) in map.iter() {
                let _ = writeln!(
                    out,
                    "wgrec_requests_total{{endpoint=\"{endpoint}\",status=\"{status}\"}} {n}"
                );
            }
        }
        let (done, failed) = self.reloads();
        self.latency.write(
            &mut out,
            "wgrec_request_duration_seconds",
            "Request latency, from the body read to the answer.",
        );
        self.rows_per_submission.write(
            &mut out,
            "wgrec_rows_per_submission",
            "Rows scored per GPU submission.",
        );
        let version = self.version().map_or(-1.0, |v| v as f64);
        let _ = writeln!(
            out,
            "# HELP wgrec_model_version The snapshot version serving (-1: a run folder's model).\n\
             # TYPE wgrec_model_version gauge\nwgrec_model_version {version}\n\
             # HELP wgrec_reloads_total Snapshot reloads, by result.\n\
             # TYPE wgrec_reloads_total counter\n\
             wgrec_reloads_total{{result=\"done\"}} {done}\n\
             wgrec_reloads_total{{result=\"failed\"}} {failed}"
        );
        out
    }
}
