//! Request latency of `wgrec serve` beside the in-process `Predictor` on the same rows.
//!
//!     cargo run --release --example serve_latency -- --model <dir> [--requests N] [--data FILE]
//!
//! Starts the server in-process on 127.0.0.1 (a free port), then for 1, 100 and 1,000 candidates
//! per request at 1 and 16 concurrent clients (keep-alive HTTP/1.1, `POST /batch` with every
//! column as its file text) times `--requests` requests after a warm-up, and times the
//! `Predictor` encoding and scoring the same rows in one call. Rows come from `--data` (default:
//! the test split of the data folder a run folder records). Prints a markdown table.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use wgrec::data::{ReadOptions, TableReader};
use wgrec::serve::http::{ServeOptions, Server};
use wgrec::serve::Predictor;
use wgrec::Gpu;

const CANDIDATES: [usize; 3] = [1, 100, 1000];
const CLIENTS: [usize; 2] = [1, 16];

struct Args {
    model: PathBuf,
    requests: usize,
    data: Option<PathBuf>,
}

fn args() -> anyhow::Result<Args> {
    let mut args = Args {
        model: PathBuf::new(),
        requests: 200,
        data: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--model" => args.model = value.into(),
            "--requests" => args.requests = value.parse()?,
            "--data" => args.data = Some(value.into()),
            _ => bail!("unknown flag {flag}"),
        }
    }
    if args.model.as_os_str().is_empty() || args.requests == 0 {
        bail!("usage: serve_latency --model <dir> [--requests N] [--data FILE]");
    }
    Ok(args)
}

/// The rows file: `--data`, or the test split of the run's data folder.
fn rows_file(args: &Args) -> anyhow::Result<PathBuf> {
    if let Some(data) = &args.data {
        return Ok(data.clone());
    }
    let recorded = std::fs::read_to_string(args.model.join("data-path.txt"))
        .context("no --data and the model folder records no data folder")?;
    Ok(Path::new(recorded.trim()).join("test.tsv"))
}

/// `POST /batch` bodies of `n` rows (cycling through the file's first 1,000).
fn body(header: &[String], lines: &[String], n: usize) -> String {
    let rows: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let fields = lines[i % lines.len()].split('\t');
            let row: serde_json::Map<_, _> = header
                .iter()
                .cloned()
                .zip(fields.map(|f| f.into()))
                .collect();
            serde_json::Value::Object(row)
        })
        .collect();
    serde_json::json!({ "rows": rows }).to_string()
}

/// A keep-alive HTTP/1.1 client.
struct Client(BufReader<TcpStream>);

impl Client {
    fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(120)))?;
        Ok(Client(BufReader::new(stream)))
    }

    fn post(&mut self, path: &str, body: &str) -> anyhow::Result<()> {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        );
        let stream = self.0.get_mut();
        stream.write_all(head.as_bytes())?;
        stream.write_all(body.as_bytes())?;
        let (mut status, mut length, mut line) = (String::new(), 0usize, String::new());
        self.0.read_line(&mut status)?;
        loop {
            line.clear();
            self.0.read_line(&mut line)?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse()?;
                }
            }
        }
        let mut answer = vec![0; length];
        self.0.read_exact(&mut answer)?;
        if !status.contains(" 200 ") {
            bail!("{}: {}", status.trim(), String::from_utf8_lossy(&answer));
        }
        Ok(())
    }
}

/// p50 and p99 of `times`, milliseconds.
fn percentiles(mut times: Vec<Duration>) -> (f64, f64) {
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3;
    (at(0.5), at(0.99))
}

/// Latencies of `requests` requests of `body` from `clients` concurrent clients (after a warm-up
/// of `clients` × 2 requests), and the wall time.
fn load(
    addr: SocketAddr,
    body: &str,
    clients: usize,
    requests: usize,
) -> anyhow::Result<(Vec<Duration>, Duration)> {
    let each = requests.div_ceil(clients);
    let warm = std::sync::Barrier::new(clients + 1);
    let (warm, mut start) = (&warm, Instant::now());
    let times = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                scope.spawn(move || -> anyhow::Result<Vec<Duration>> {
                    let mut client = Client::connect(addr)?;
                    let warmed = (0..2).try_for_each(|_| client.post("/batch", body));
                    warm.wait();
                    warmed?;
                    (0..each)
                        .map(|_| {
                            let t = Instant::now();
                            client.post("/batch", body).map(|()| t.elapsed())
                        })
                        .collect()
                })
            })
            .collect();
        warm.wait();
        start = Instant::now();
        let mut all = Vec::new();
        for h in handles {
            all.extend(
                h.join()
                    .map_err(|_| anyhow::anyhow!("a client panicked"))??,
            );
        }
        anyhow::Ok(all)
    })?;
    Ok((times, start.elapsed()))
}

/// p50 and p99 of the in-process predictor encoding and scoring `n` rows per call.
fn in_process(gpu: &Gpu, args: &Args, file: &Path, n: usize) -> anyhow::Result<(f64, f64)> {
    let mut predictor = Predictor::load_with_batch(gpu, &args.model, 4096)?;
    let options = ReadOptions {
        batch_rows: n,
        ..ReadOptions::default()
    };
    let mut reader = TableReader::open(file, predictor.schema(), options)?;
    let batch = reader.next_batch()?.context("no rows")?;
    let mut times = Vec::new();
    for i in 0..args.requests.min(200) + 3 {
        let t = Instant::now();
        let encoded = predictor.encoder().encode(&batch, "rows")?;
        predictor.predict(gpu, &encoded)?;
        if i >= 3 {
            times.push(t.elapsed());
        }
    }
    Ok(percentiles(times))
}

fn main() -> anyhow::Result<()> {
    let args = args()?;
    let file = rows_file(&args)?;
    let text = std::fs::read_to_string(&file).with_context(|| file.display().to_string())?;
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .context("empty")?
        .split('\t')
        .map(String::from)
        .collect();
    let lines: Vec<String> = lines.take(1000).map(String::from).collect();
    let gpu = Arc::new(Gpu::new()?);
    let options = ServeOptions {
        model: args.model.clone(),
        addr: "127.0.0.1:0".parse()?,
        max_batch: 4096,
        max_wait: Duration::from_millis(2),
        max_rows: 10_000,
        reload_every: Duration::from_secs(1),
    };
    let server = Server::start(Arc::clone(&gpu), options)?;
    println!(
        "adapter: {}; {} requests per row, max-wait 2 ms, max-batch 4096\n",
        gpu.describe(),
        args.requests
    );
    println!("| candidates | clients | p50 ms | p99 ms | requests/s | candidates/s | Predictor p50 ms | Predictor p99 ms |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for n in CANDIDATES {
        let body = body(&header, &lines, n);
        let (p50_local, p99_local) = in_process(&gpu, &args, &file, n.min(lines.len()))?;
        for clients in CLIENTS {
            let (times, wall) = load(server.addr(), &body, clients, args.requests)?;
            let count = times.len() as f64;
            let (p50, p99) = percentiles(times);
            let rate = count / wall.as_secs_f64();
            println!(
                "| {n} | {clients} | {p50:.2} | {p99:.2} | {rate:.0} | {:.0} | {p50_local:.2} | {p99_local:.2} |",
                rate * n as f64
            );
        }
    }
    server.shutdown()?;
    Ok(())
}
