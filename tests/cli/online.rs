//! `wgrec online` end to end: a run killed with SIGKILL at random points and resumed each time
//! ends with the same bytes (checkpoint and log) as one uninterrupted pass; new ids are admitted
//! (or, with `--no-admission`, read the OOV row); `--frozen` learns nothing; SIGTERM while
//! following an idle file stops cleanly and the run resumes; snapshots are published and pruned.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{last_json, lcg, ok, temp, wgrec};

/// A small model with a dynamic id map on both id features: users 0–9 of the training split never
/// come back in the stream, so their rows expire; the items outnumber their capacity, so rows are
/// evicted.
const ONLINE_MODEL: &str = r#"
[model]
tables = 1
dim = 4
experts = [{ type = "dcn", layers = 1 }]
expert_width = 8
hidden = [8]
dropout = 0.0

[[feature]]
name = "user"
kind = "categorical"
capacity = 40
admit_after = 2
expire_after = 6

[[feature]]
name = "item"
kind = "categorical"
capacity = 30
admit_after = 1

[[task]]
name = "click"

[train]
batch_size = 32
epochs = 2
"#;

/// `rows` rows (click, user, item) drawn from `users` users and `items` items, starting at id
/// `first` (a later part of the stream brings ids training never saw).
fn split(rows: usize, seed: u64, first: u64, users: u64, items: u64) -> String {
    let mut next = lcg(seed);
    let mut text = String::from("click,user,item\n");
    for _ in 0..rows {
        let (u, i) = (first + next() % users, first + next() % items);
        let click = (next() % 8 < (u + i) % 5) as u8;
        text.push_str(&format!("{click},u{u},i{i}\n"));
    }
    text
}

/// A trained warm-start run and a stream file of 640 rows (20 batches) with new ids.
fn setup(name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let dir = temp(name);
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("schema.toml"),
        "delimiter = \",\"\ncolumns = \"label:click, categorical:user, categorical:item\"\n",
    )
    .unwrap();
    std::fs::write(data.join("train.csv"), split(400, 1, 0, 20, 25)).unwrap();
    std::fs::write(data.join("valid.csv"), split(100, 2, 0, 20, 25)).unwrap();
    std::fs::write(data.join("test.csv"), split(100, 3, 0, 20, 25)).unwrap();
    let model = dir.join("model.toml");
    std::fs::write(&model, ONLINE_MODEL).unwrap();
    let run = dir.join("run");
    let out = wgrec()
        .args(["train", "--config"])
        .arg(&model)
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&run)
        .output()
        .unwrap();
    ok(&out);
    let stream = dir.join("stream.csv");
    std::fs::write(&stream, split(640, 4, 10, 30, 40)).unwrap();
    (dir, run, stream)
}

fn online(run: &Path, stream: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut cmd = wgrec();
    cmd.args([
        "online",
        "--checkpoint-every",
        "1",
        "--window",
        "64",
        "--stream",
    ])
    .arg(stream)
    .arg("--out")
    .arg(out)
    .args(extra);
    if !extra.contains(&"--resume") {
        cmd.arg("--from").arg(run);
    }
    cmd
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Starts `cmd`, waits until it has written a new checkpoint at `ckpt` (so every kill lands after
/// some progress), then `delay` more, and kills it with SIGKILL; returns whether it was still
/// running then (false: it finished first).
fn kill_after_progress(mut cmd: Command, ckpt: &Path, delay: Duration) -> bool {
    let before = modified(ckpt);
    let mut child: Child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while modified(ckpt) == before {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        assert!(Instant::now() < deadline, "no checkpoint within 60 s");
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(delay);
    let running = child.try_wait().unwrap().is_none();
    child.kill().unwrap();
    child.wait().unwrap();
    running
}

#[test]
fn a_run_killed_at_random_points_and_resumed_ends_bit_identical_to_an_uninterrupted_one() {
    let (dir, run, stream) = setup("online-sigkill");
    let straight = dir.join("straight");
    let report = last_json(&ok(&online(&run, &stream, &straight, &["--json"])
        .output()
        .unwrap()));
    assert_eq!(report["rows"], 640, "{report}");
    let ids = report["ids"].as_array().unwrap();
    assert!(
        ids.iter()
            .any(|s| s["counters"]["evicted"].as_u64() > Some(0)),
        "{report}"
    );
    assert!(
        ids.iter()
            .any(|s| s["counters"]["expired"].as_u64() > Some(0)),
        "{report}"
    );

    let killed = dir.join("killed");
    let ckpt = killed.join("last.safetensors");
    let mut delays = lcg(17);
    let mut kills = 0;
    for attempt in 0..6 {
        let extra: &[&str] = if attempt == 0 { &[] } else { &["--resume"] };
        // A kill anywhere in the next few steps: a step, a checkpoint write, a window's log lines.
        let delay = Duration::from_millis(delays() % 120);
        if !kill_after_progress(online(&run, &stream, &killed, extra), &ckpt, delay) {
            break;
        }
        kills += 1;
    }
    assert!(
        kills >= 2,
        "only {kills} kills landed while the run was running"
    );
    ok(&online(&run, &stream, &killed, &["--resume"])
        .output()
        .unwrap());
    assert!(read(&killed.join("last.safetensors")) == read(&straight.join("last.safetensors")));
    assert_eq!(
        String::from_utf8(read(&killed.join("stream.jsonl"))).unwrap(),
        String::from_utf8(read(&straight.join("stream.jsonl"))).unwrap()
    );
}

#[test]
fn admission_gives_new_ids_rows_and_no_admission_and_frozen_do_not() {
    let (dir, run, stream) = setup("online-admission");
    let learn = last_json(&ok(&online(&run, &stream, &dir.join("a"), &["--json"])
        .output()
        .unwrap()));
    let oov = last_json(&ok(&online(
        &run,
        &stream,
        &dir.join("b"),
        &["--json", "--no-admission"],
    )
    .output()
    .unwrap()));
    let frozen = last_json(&ok(&online(
        &run,
        &stream,
        &dir.join("c"),
        &["--json", "--frozen"],
    )
    .output()
    .unwrap()));
    let admitted = |r: &serde_json::Value| -> u64 {
        r["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["counters"]["admitted"].as_u64().unwrap())
            .sum()
    };
    assert!(admitted(&learn) > 0, "{learn}");
    assert_eq!(admitted(&oov), 0, "{oov}");
    assert_eq!(admitted(&frozen), 0, "{frozen}");
    // Every report scores every row before learning from it: the windows cover the stream.
    for r in [&learn, &oov, &frozen] {
        assert_eq!(r["rows"], 640);
        assert_eq!(r["windows"].as_array().unwrap().len(), 640 / 64, "{r}");
    }
    // The windows of two logs drawn into one chart; a malformed --log is a clear error.
    let png = dir.join("auc.png");
    let learnt = format!("online={}", dir.join("a/stream.jsonl").display());
    let still = format!("frozen={}", dir.join("c/stream.jsonl").display());
    ok(&wgrec()
        .args(["online-curves", "--log", &learnt, "--log", &still, "--out"])
        .arg(&png)
        .output()
        .unwrap());
    assert!(read(&png).starts_with(b"\x89PNG"));
    let bad = wgrec()
        .args(["online-curves", "--log", "nolabel", "--out"])
        .arg(&png)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("expected LABEL=PATH"));
    // A frozen run has nothing to publish.
    let refused = online(
        &run,
        &stream,
        &dir.join("d"),
        &["--frozen", "--publish", "x"],
    )
    .output()
    .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--publish"));
    // The frozen run's weights are the warm start's.
    let warm = wgrec::checkpoint::Checkpoint::read(&run.join("best.safetensors")).unwrap();
    let after = wgrec::checkpoint::Checkpoint::read(&dir.join("c/last.safetensors")).unwrap();
    for name in ["emb.0.user", "emb.0.item"] {
        let shape = &warm.tensors()[name].shape;
        assert_eq!(
            warm.tensor(name, shape).unwrap(),
            after.tensor(name, shape).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn sigterm_while_following_stops_cleanly_and_the_run_resumes_where_it_stopped() {
    let (dir, run, stream) = setup("online-sigterm");
    let out = dir.join("followed");
    let child = online(&run, &stream, &out, &["--follow", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the whole file is consumed (the log has its last window, rows 576–639), then
    // signal while the run waits for more.
    let log = out.join("stream.jsonl");
    let deadline = Instant::now() + Duration::from_secs(60);
    let windows = |t: String| {
        t.lines()
            .filter(|l| l.starts_with("{\"event\":\"window\""))
            .count()
    };
    while std::fs::read_to_string(&log).map_or(0, windows) < 10 {
        assert!(
            Instant::now() < deadline,
            "the followed run did not get through the file"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let output = child.wait_with_output().unwrap();
    let report = last_json(&ok(&output));
    assert_eq!(report["reason"], "Stopped", "{report}");
    assert_eq!(report["rows"], 640, "{report}");
    // More rows arrive; the resumed run reads only them.
    let mut text = std::fs::read_to_string(&stream).unwrap();
    text.push_str(split(64, 9, 10, 30, 40).split_once('\n').unwrap().1);
    std::fs::write(&stream, text).unwrap();
    let resumed = last_json(&ok(&online(&run, &stream, &out, &["--resume", "--json"])
        .output()
        .unwrap()));
    assert_eq!(resumed["rows"], 64, "{resumed}");
    assert_eq!(resumed["total_steps"], 22, "{resumed}");
}

#[test]
fn snapshots_are_published_on_schedule_and_only_the_last_k_kept() {
    let (dir, run, stream) = setup("online-publish");
    let publish = dir.join("publish");
    let args = [
        "--json",
        "--publish",
        publish.to_str().unwrap(),
        "--publish-every-steps",
        "5",
        "--keep",
        "2",
    ];
    let report = last_json(&ok(&online(&run, &stream, &dir.join("p"), &args)
        .output()
        .unwrap()));
    let published = report["published"].as_array().unwrap();
    assert_eq!(published.len(), 4, "{report}");
    let mut names: Vec<String> = std::fs::read_dir(&publish)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    let last = published.last().unwrap().as_u64().unwrap();
    assert_eq!(names[1], format!("snapshot-{last:020}"));
    // The newest snapshot scores the stream like the online run's own checkpoint would.
    let scored = dir.join("scores.tsv");
    ok(&wgrec()
        .args(["predict", "--checkpoint"])
        .arg(&publish)
        .arg("--input")
        .arg(&stream)
        .arg("--output")
        .arg(&scored)
        .output()
        .unwrap());
    assert_eq!(
        std::fs::read_to_string(&scored).unwrap().lines().count(),
        641
    );
    // The online run's own folder scores the same: its checkpoint carries the id maps that go
    // with its weights (its encoder/ holds the warm start's).
    let from_run = dir.join("scores-run.tsv");
    ok(&wgrec()
        .args(["predict", "--checkpoint"])
        .arg(dir.join("p"))
        .arg("--input")
        .arg(&stream)
        .arg("--output")
        .arg(&from_run)
        .output()
        .unwrap());
    assert_eq!(read(&from_run), read(&scored));
}

#[test]
fn standard_input_streams_the_same_rows_into_the_same_weights_as_the_file() {
    let (dir, run, stream) = setup("online-stdin");
    ok(&online(&run, &stream, &dir.join("file"), &[])
        .output()
        .unwrap());
    let mut child = online(&run, Path::new("-"), &dir.join("stdin"), &["--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut input, &read(&stream)).unwrap();
    drop(input);
    let report = last_json(&ok(&child.wait_with_output().unwrap()));
    assert_eq!(report["rows"], 640, "{report}");
    let a = wgrec::checkpoint::Checkpoint::read(&dir.join("file/last.safetensors")).unwrap();
    let b = wgrec::checkpoint::Checkpoint::read(&dir.join("stdin/last.safetensors")).unwrap();
    assert_eq!(a.tensors(), b.tensors());
}

#[test]
fn a_bad_row_stops_the_stream_naming_file_and_line_unless_skipped() {
    let (dir, run, stream) = setup("online-bad-row");
    let mut text = std::fs::read_to_string(&stream).unwrap();
    text = text.replacen("\n0,", "\nmaybe,", 1);
    std::fs::write(&stream, text).unwrap();
    let failed = online(&run, &stream, &dir.join("strict"), &[])
        .output()
        .unwrap();
    assert!(!failed.status.success());
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("stream.csv") && stderr.contains("click"),
        "{stderr}"
    );
    let report = last_json(&ok(&online(
        &run,
        &stream,
        &dir.join("lenient"),
        &["--skip-bad-rows", "--json"],
    )
    .output()
    .unwrap()));
    // The malformed row is counted, the other 639 are scored and trained on.
    assert_eq!(report["bad_rows"], 1, "{report}");
    assert_eq!(report["rows"], 639, "{report}");
}
