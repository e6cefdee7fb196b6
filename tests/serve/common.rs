//! What the serving tests share: one tiny trained model (trained once per test binary on a small
//! synthetic data folder), snapshots published from it, the reference scores of a `Predictor`,
//! and a plain HTTP/1.1 client on 127.0.0.1.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use wgrec::checkpoint::Checkpoint;
use wgrec::data::{ReadOptions, TableReader};
use wgrec::run::snapshot::{publish, MODEL_FILE};
use wgrec::serve::Predictor;
use wgrec::Gpu;

/// user, item, its category, a number and a behaviour sequence: every kind of column a request
/// sends (the synthetic schema's other columns are not read, so requests may leave them out).
const MODEL: &str = r#"
[model]
tables = 1
dim = 4
experts = [{ type = "dcn", layers = 1 }]
expert_width = 16
hidden = [16]

[[feature]]
name = "user_id"
kind = "categorical"

[[feature]]
name = "item_id"
kind = "categorical"

[[feature]]
name = "item_cat"
kind = "categorical"

[[feature]]
name = "n0"
kind = "numeric"

[[feature]]
name = "history"
kind = "sequence"
column = "hist_item"
item = "item_id"
side = ["item_cat"]
side_columns = ["hist_cat"]
max_len = 8
buckets = 8

[[task]]
name = "click"

[train]
batch_size = 128
epochs = 1
"#;

/// The trained runs and the data, made once.
pub struct Fixture {
    pub dir: PathBuf,
    /// The test split (rows in the model's schema).
    pub rows_file: PathBuf,
    /// A run trained for one epoch.
    pub run: PathBuf,
    /// The same model, wider (`dim = 8`): another graph.
    pub wide_run: PathBuf,
    pub gpu: Arc<Gpu>,
}

fn wgrec(args: &[&str], paths: &[&Path]) {
    let out = Command::new(env!("CARGO_BIN_EXE_wgrec"))
        .args(args)
        .args(paths)
        .output()
        .expect("run wgrec");
    assert!(
        out.status.success(),
        "wgrec {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn train_run(dir: &Path, name: &str, model_text: &str, data: &Path) -> PathBuf {
    let model = dir.join(format!("{name}.toml"));
    std::fs::write(&model, model_text).expect("model file");
    let run = dir.join(name);
    let (data_flag, out_flag) = (Path::new("--data"), Path::new("--out"));
    wgrec(
        &["train", "--config"],
        &[&model, data_flag, data, out_flag, &run],
    );
    run
}

/// The fixture, built on first use.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("wgrec-serve-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch folder");
        let data = dir.join("data");
        wgrec(&["data", "synth", "--rows", "1500", "--out"], &[&data]);
        let run = train_run(&dir, "run", MODEL, &data);
        let wide_run = train_run(&dir, "wide", &MODEL.replace("dim = 4", "dim = 8"), &data);
        Fixture {
            rows_file: data.join("test.tsv"),
            dir,
            run,
            wide_run,
            gpu: Arc::new(Gpu::new().expect("a GPU adapter")),
        }
    })
}

/// The fixture's model with 4 bootstrap uncertainty heads on its task, trained on first use (the
/// ranking tests' UCB and Thompson).
pub fn head_run() -> &'static PathBuf {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    RUN.get_or_init(|| {
        let f = fixture();
        let text = MODEL.replace(
            "name = \"click\"\n",
            "name = \"click\"\nuncertainty = { kind = \"bootstrap\", heads = 4 }\n",
        );
        assert_ne!(text, MODEL, "the head went in");
        train_run(&f.dir, "head", &text, &f.dir.join("data"))
    })
}

/// How a published snapshot's weights relate to the run's.
#[derive(Debug, Clone, Copy)]
pub enum Weights {
    /// The run's last checkpoint.
    Trained,
    /// Every tensor scaled by this factor: another model with the same graph.
    Scaled(f32),
    /// Not a safetensors file at all.
    Broken,
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("list") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

fn write_weights(run: &Path, weights: Weights, target: &Path) {
    let trained = Checkpoint::read(&run.join("last.safetensors")).expect("checkpoint");
    let factor = match weights {
        Weights::Broken => {
            std::fs::write(target, b"not a safetensors file").expect("write");
            return;
        }
        Weights::Trained => 1.0,
        Weights::Scaled(f) => f,
    };
    let mut out = Checkpoint::new();
    for (name, tensor) in trained.tensors() {
        let data = tensor.data.iter().map(|v| v * factor).collect();
        out.insert_tensor(name, &tensor.shape, data)
            .expect("tensor");
    }
    for key in trained.metadata_keys() {
        out.insert_metadata(key, trained.metadata(key).expect("metadata"));
    }
    out.write(target).expect("write the model file");
}

/// Publishes `run` (with `weights`) as snapshot `version` of `publish_dir`, keeping 3.
pub fn publish_run(publish_dir: &Path, version: u64, run: &Path, weights: Weights) -> PathBuf {
    publish(publish_dir, version, 3, |tmp| {
        for file in ["config.toml", "schema.toml"] {
            std::fs::copy(run.join(file), tmp.join(file)).expect("copy");
        }
        copy_tree(&run.join("encoder"), &tmp.join("encoder"));
        write_weights(run, weights, &tmp.join(MODEL_FILE));
        Ok(())
    })
    .expect("publish")
}

/// Rows of the test split used in requests.
pub const ROWS: usize = 64;

/// The first [`ROWS`] rows of the test split, each as (column name, field text) pairs.
pub fn row_texts() -> Vec<Vec<(String, String)>> {
    let text = std::fs::read_to_string(&fixture().rows_file).expect("test split");
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .expect("header")
        .split('\t')
        .map(String::from)
        .collect();
    lines
        .take(ROWS)
        .map(|line| {
            header
                .iter()
                .cloned()
                .zip(line.split('\t').map(String::from))
                .collect()
        })
        .collect()
}

/// A `Predictor`'s probabilities for the first [`ROWS`] rows of the test split, read as a file.
pub fn reference_scores(predictor: &mut Predictor, gpu: &Gpu) -> Vec<f32> {
    let options = ReadOptions {
        batch_rows: ROWS,
        ..ReadOptions::default()
    };
    let mut reader = TableReader::open(&fixture().rows_file, predictor.schema(), options)
        .expect("open the test split");
    let batch = reader.next_batch().expect("read").expect("rows");
    let encoded = predictor.encoder().encode(&batch, "test").expect("encode");
    predictor.predict(gpu, &encoded).expect("predict")
}

/// The reference scores of the model in `folder`.
pub fn reference_of(folder: &Path) -> Vec<f32> {
    let gpu = &fixture().gpu;
    let mut predictor = Predictor::load(gpu, folder).expect("load the model");
    reference_scores(&mut predictor, gpu)
}

/// A scratch folder under the fixture's.
pub fn scratch(name: &str) -> PathBuf {
    let dir = fixture().dir.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch");
    dir
}

/// One HTTP/1.1 exchange with the server at `addr`: (status, body).
pub fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect to 127.0.0.1");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read the answer");
    let (head, body) = response.split_once("\r\n\r\n").expect("a head and a body");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    (status, body.to_string())
}

/// The `p_click` of each row of a scoring answer, with its model version.
pub fn scores_of(body: &str) -> (Option<u64>, Vec<f32>) {
    let answer: serde_json::Value = serde_json::from_str(body).expect("a JSON answer");
    let version = answer["model_version"].as_u64();
    let scores = answer["scores"]
        .as_array()
        .expect("scores")
        .iter()
        .map(|row| row["p_click"].as_f64().expect("p_click") as f32)
        .collect();
    (version, scores)
}

/// The columns the tiny model reads (its sequence's log-delta buckets read the timestamp and the
/// behaviour times); requests to `/score` send only these.
pub const READ: [&str; 8] = [
    "user_id",
    "item_id",
    "item_cat",
    "n0",
    "timestamp",
    "hist_item",
    "hist_cat",
    "hist_time",
];

/// A field as a `/score` request sends it: numbers as numbers, sequences as arrays.
fn json_value(column: &str, text: &str) -> serde_json::Value {
    match column {
        "n0" if text.is_empty() => serde_json::Value::Null,
        "n0" => serde_json::json!(text.parse::<f64>().expect("a number")),
        "timestamp" => serde_json::json!(text.parse::<i64>().expect("an integer")),
        "hist_time" if text.is_empty() => serde_json::json!([]),
        "hist_time" => serde_json::json!(text
            .split('|')
            .map(|t| t.parse::<i64>().expect("an integer"))
            .collect::<Vec<_>>()),
        "hist_item" | "hist_cat" if text.is_empty() => serde_json::json!([]),
        "hist_item" | "hist_cat" => serde_json::json!(text.split('|').collect::<Vec<_>>()),
        _ => serde_json::json!(text),
    }
}

/// `POST /batch` of test rows `rows`: every column, as the file's text.
pub fn batch_body(all: &[Vec<(String, String)>], rows: &[usize]) -> String {
    let rows: Vec<serde_json::Map<String, serde_json::Value>> = rows
        .iter()
        .map(|&r| {
            all[r]
                .iter()
                .map(|(c, t)| (c.clone(), serde_json::json!(t)))
                .collect()
        })
        .collect();
    serde_json::json!({ "rows": rows }).to_string()
}

/// `POST /score` of test rows `rows`: only the columns the model reads, those equal in every row
/// in the context, the others per candidate.
pub fn score_body(all: &[Vec<(String, String)>], rows: &[usize]) -> String {
    let field = |r: usize, column: &str| -> String {
        let found = all[r].iter().find(|(c, _)| c == column).expect("column");
        found.1.clone()
    };
    let shared: Vec<&str> = READ
        .iter()
        .copied()
        .filter(|c| rows.iter().all(|&r| field(r, c) == field(rows[0], c)))
        .collect();
    let context: serde_json::Map<String, serde_json::Value> = shared
        .iter()
        .map(|c| (c.to_string(), json_value(c, &field(rows[0], c))))
        .collect();
    let candidates: Vec<serde_json::Map<String, serde_json::Value>> = rows
        .iter()
        .map(|&r| {
            (READ.iter().filter(|c| !shared.contains(c)))
                .map(|c| (c.to_string(), json_value(c, &field(r, c))))
                .collect()
        })
        .collect();
    serde_json::json!({ "context": context, "candidates": candidates }).to_string()
}

/// Server options for the tests: small batches so that requests are split and merged.
pub fn options(model: &Path, reload_ms: u64) -> wgrec::serve::http::ServeOptions {
    wgrec::serve::http::ServeOptions {
        model: model.to_path_buf(),
        addr: "127.0.0.1:0".parse().expect("an address"),
        max_batch: 32,
        max_wait: Duration::from_millis(2),
        max_rows: 16,
        reload_every: Duration::from_millis(reload_ms),
    }
}

/// Waits (at most 60 s) until `done` holds.
pub fn wait_until(what: &str, done: impl Fn() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Checks an answer against the reference scores of its rows.
pub fn assert_scores(body: &str, rows: &[usize], reference: &[f32]) {
    let (_, scores) = scores_of(body);
    let expected: Vec<f32> = rows.iter().map(|&r| reference[r]).collect();
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        bits(&scores),
        bits(&expected),
        "scores {scores:?} vs {expected:?}"
    );
}
