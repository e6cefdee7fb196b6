use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::*;

/// A scratch folder removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("wgrec-snapshot-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("scratch folder");
        Scratch(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

const FILES: [&str; 3] = ["config.toml", "encoder/vocab.txt", MODEL_FILE];

/// A file's content for `version`: the version, the file name and a checksum of both, padded so
/// that a torn write would show as a short or mixed file.
fn content(version: u64, name: &str) -> String {
    let body = format!("{version} {name} {}", "x".repeat(4096));
    let sum: u64 = body.bytes().map(u64::from).sum();
    format!("{body} {sum}")
}

fn write_snapshot(dir: &Path, version: u64) -> Result<()> {
    for name in FILES {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| io_error(parent, "mkdir", e))?;
        }
        fs::write(&path, content(version, name)).map_err(|e| io_error(&path, "write", e))?;
    }
    Ok(())
}

/// Reads every file of the snapshot; `None` when it was removed under the reader.
fn read_snapshot(path: &Path) -> Option<Vec<String>> {
    FILES
        .iter()
        .map(|name| fs::read_to_string(path.join(name)).ok())
        .collect()
}

#[test]
fn publish_is_atomic_a_reader_never_sees_a_torn_snapshot() {
    let tmp = Scratch::new("atomic");
    let dir = tmp.path().to_path_buf();
    const VERSIONS: u64 = 60;
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (dir, done) = (dir.clone(), Arc::clone(&done));
        std::thread::spawn(move || {
            let (mut seen, mut last) = (0u64, 0u64);
            while !done.load(Ordering::Acquire) {
                let Some((version, path)) = latest(&dir).unwrap() else {
                    continue;
                };
                assert!(version >= last, "latest went back from {last} to {version}");
                last = version;
                assert_eq!(snapshot_version(&path), Some(version));
                if let Some(files) = read_snapshot(&path) {
                    for (name, got) in FILES.iter().zip(files) {
                        assert_eq!(got, content(version, name), "{name} of {version}");
                    }
                    seen += 1;
                }
            }
            seen
        })
    };
    for version in 1..=VERSIONS {
        publish(&dir, version, 2, |tmp| write_snapshot(tmp, version)).unwrap();
    }
    done.store(true, Ordering::Release);
    let seen = reader.join().expect("the reader saw only whole snapshots");
    assert!(seen > 0, "the reader read no snapshot at all");
    let left: Vec<u64> = snapshots(&dir).unwrap().iter().map(|s| s.0).collect();
    assert_eq!(left, vec![VERSIONS - 1, VERSIONS]);
}

#[test]
fn a_crashed_publish_is_ignored_by_latest_and_cleaned_by_the_next() {
    let tmp = Scratch::new("crash");
    let dir = tmp.path();
    publish(dir, 1, 3, |t| write_snapshot(t, 1)).unwrap();
    // A crash half way through version 2: a temporary with one file.
    let torn = dir.join(format!("{TEMPORARY_PREFIX}{:020}", 2));
    fs::create_dir_all(&torn).unwrap();
    fs::write(torn.join(MODEL_FILE), "half").unwrap();
    fs::write(dir.join("notes.txt"), "not a snapshot").unwrap();
    let (version, path) = latest(dir).unwrap().unwrap();
    assert_eq!((version, path.clone()), (1, dir.join(snapshot_name(1))));
    assert!(is_publish_folder(dir));

    let path = publish(dir, 2, 3, |t| write_snapshot(t, 2)).unwrap();
    assert!(!torn.exists(), "the leftover temporary was not removed");
    assert_eq!(latest(dir).unwrap(), Some((2, path.clone())));
    assert_eq!(read_snapshot(&path).unwrap()[2], content(2, MODEL_FILE));
}

#[test]
fn a_failed_write_leaves_nothing_and_an_existing_version_is_refused() {
    let tmp = Scratch::new("failed");
    let dir = tmp.path();
    let failed = publish(dir, 5, 1, |_| Err(Error::run_folder(dir, "disk full")));
    assert!(failed.unwrap_err().to_string().contains("disk full"));
    assert_eq!(fs::read_dir(dir).unwrap().count(), 0);
    assert_eq!(latest(dir).unwrap(), None);

    publish(dir, 5, 1, |t| write_snapshot(t, 5)).unwrap();
    let again = publish(dir, 5, 1, |t| write_snapshot(t, 5)).unwrap_err();
    assert!(again.to_string().contains("exists already"), "{again}");
    assert!(publish(dir, 6, 0, |t| write_snapshot(t, 6)).is_err());
}

#[test]
fn versions_parse_only_in_their_exact_form() {
    assert_eq!(parse_version(&snapshot_name(42)), Some(42));
    assert_eq!(parse_version(&snapshot_name(u64::MAX)), Some(u64::MAX));
    assert_eq!(parse_version("snapshot-42"), None);
    assert_eq!(parse_version("snapshot-0000000000000000004x"), None);
    assert_eq!(parse_version(".tmp-snapshot-00000000000000000042"), None);
}
