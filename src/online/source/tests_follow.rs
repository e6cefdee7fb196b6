//! The stream reader while it waits: a writer at work on a followed file or folder, a silent
//! producer on stdin, stops, and a followed file that shrinks.

use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::tests::{
    all_users, drain, options, rows, schema, scratch, users, write_partition, HEADER,
};
use super::*;
use crate::data::ColumnData;

#[test]
fn a_partial_last_line_is_not_parsed_until_completed() {
    let path = scratch("partial").join("rows.tsv");
    std::fs::write(&path, format!("{HEADER}1\tu1\t1\n0\tu2\t2")).unwrap();
    let mut o = options(10, true);
    o.idle_exit = Some(Duration::from_millis(400));
    let mut reader =
        StreamReader::open(&SourceSpec::File(path.clone()), &schema(), o, None).unwrap();
    let writer = {
        let path = path.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .unwrap();
            f.write_all(b".5\n").unwrap();
        })
    };
    let batches = drain(&mut reader);
    writer.join().unwrap();
    assert_eq!(all_users(&batches), ["u1", "u2"]);
    let last = &batches.last().unwrap().batch;
    assert_eq!(
        last.columns[2],
        ColumnData::Numeric(vec![2.5]),
        "the row was read whole"
    );
    assert_eq!(last.lines, [3]);
}

#[test]
fn a_stop_while_waiting_returns_none_promptly_and_drops_the_partial_batch() {
    let path = scratch("stop").join("rows.tsv");
    std::fs::write(&path, format!("{HEADER}{}", rows(0, 2))).unwrap();
    let mut o = options(5, true);
    o.flush_after = Duration::from_secs(60);
    o.poll = Duration::from_millis(50);
    let mut reader = StreamReader::open(&SourceSpec::File(path), &schema(), o, None).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stopper = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            stop.store(true, Ordering::Relaxed);
        })
    };
    let started = Instant::now();
    assert!(reader.next_batch(&stop).unwrap().is_none());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    stopper.join().unwrap();
    assert!(
        reader
            .next_batch(&AtomicBool::new(false))
            .unwrap()
            .is_none(),
        "ended for good"
    );
}

#[test]
fn a_followed_folder_picks_up_new_partitions_and_rejects_late_ones() {
    let dir = scratch("follow");
    write_partition(&dir, "b.tsv", &rows(0, 2));
    let mut o = options(10, true);
    o.idle_exit = Some(Duration::from_millis(300));
    let spec = SourceSpec::Folder(dir.clone());
    let mut reader = StreamReader::open(&spec, &schema(), o, None).unwrap();
    let stop = AtomicBool::new(false);
    assert_eq!(
        users(&reader.next_batch(&stop).unwrap().unwrap().batch),
        ["u0", "u1"]
    );
    write_partition(&dir, "c.tsv", &rows(2, 3));
    let next = reader.next_batch(&stop).unwrap().unwrap();
    assert_eq!(
        (users(&next.batch), next.position.partition),
        (vec!["u2".to_string()], Some("c.tsv".into()))
    );
    write_partition(&dir, "a.tsv", &rows(3, 4));
    let e = reader
        .next_batch(&stop)
        .err()
        .expect("a late partition is an error")
        .to_string();
    assert!(e.contains("a.tsv") && e.contains("late partition"), "{e}");
}

#[test]
fn a_truncated_file_is_an_error_naming_it() {
    let path = scratch("truncated").join("rows.tsv");
    std::fs::write(&path, format!("{HEADER}{}", rows(0, 4))).unwrap();
    let spec = SourceSpec::File(path.clone());
    let mut reader = StreamReader::open(&spec, &schema(), options(4, true), None).unwrap();
    let stop = AtomicBool::new(false);
    let first = reader.next_batch(&stop).unwrap().unwrap();
    std::fs::write(&path, HEADER).unwrap();
    let e = reader.next_batch(&stop).err().expect("shrunk").to_string();
    assert!(e.contains("rows.tsv") && e.contains("shrank"), "{e}");
    let e = StreamReader::open(&spec, &schema(), options(4, true), Some(&first.position));
    let e = e.err().expect("shorter than the position").to_string();
    assert!(e.contains("rows.tsv") && e.contains("shrank"), "{e}");
}

#[test]
fn a_followed_file_created_empty_waits_for_its_header() {
    let path = scratch("empty").join("rows.tsv");
    std::fs::write(&path, "").unwrap();
    let mut o = options(10, true);
    o.idle_exit = Some(Duration::from_millis(400));
    let mut reader =
        StreamReader::open(&SourceSpec::File(path.clone()), &schema(), o, None).unwrap();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"click\tus").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        f.write_all(format!("er\tx\n{}", rows(0, 3)).as_bytes())
            .unwrap();
    });
    let batches = drain(&mut reader);
    writer.join().unwrap();
    assert_eq!(all_users(&batches), ["u0", "u1", "u2"]);
}

#[test]
fn stdin_flushes_while_the_producer_is_silent_and_a_stop_ends_it() {
    let (input, mut producer) = std::io::pipe().unwrap();
    producer
        .write_all(format!("{HEADER}{}1\tu2", rows(0, 2)).as_bytes())
        .unwrap();
    let mut o = options(10, false);
    o.poll = Duration::from_millis(20);
    let input = std::io::BufReader::new(input);
    let mut reader = StreamReader::from_reader(input, &schema(), o, None).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let first = reader.next_batch(&stop).unwrap().expect("flushed");
    assert_eq!(users(&first.batch), ["u0", "u1"]);
    assert_eq!(first.position.rows(), 2);
    let stopper = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            stop.store(true, Ordering::Relaxed);
        })
    };
    let started = Instant::now();
    assert!(reader.next_batch(&stop).unwrap().is_none());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    stopper.join().unwrap();
    drop(producer);
}
