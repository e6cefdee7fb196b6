//! The loader: every row once in order, early drop, errors, skipped rows, panics, shuffling.

use std::sync::Arc;

use super::Loader;
use crate::data::encode::tests::*;

#[test]
fn the_loader_delivers_every_row_once_in_order_through_prepare() {
    let d = dir("loader");
    let schema = Schema::parse(NUMBERED_SCHEMA, "schema.toml").unwrap();
    let path = write(&d, "t.tsv", &numbered(50));
    let options = ReadOptions {
        batch_rows: 7,
        ..ReadOptions::default()
    };
    let encoder = Arc::new(
        Encoder::fit_file(&numbered_config(), &schema, "s", &path, options.clone()).unwrap(),
    );
    for prefetch in [0, 1, 4] {
        let loader = Loader::spawn(
            path.clone(),
            schema.clone(),
            options.clone(),
            Arc::clone(&encoder),
            prefetch,
            |b: ModelBatch| Ok((b.lines.clone(), b.rows, b.labels)),
        )
        .unwrap();
        let mut lines = Vec::new();
        let mut sizes = Vec::new();
        let mut loader = loader;
        for item in loader.by_ref() {
            let (l, rows, labels) = item.unwrap();
            assert_eq!(labels.len(), rows);
            for (k, &line) in l.iter().enumerate() {
                assert_eq!(labels[k], ((line - 2) % 2) as f32);
            }
            sizes.push(rows);
            lines.extend(l);
        }
        assert_eq!(lines, (2..52).collect::<Vec<u64>>());
        assert_eq!(sizes, [7, 7, 7, 7, 7, 7, 7, 1]);
        assert_eq!(loader.finish().unwrap().count, 0);
    }
    // A missing file fails at spawn.
    let e = Loader::spawn(
        d.join("none.tsv"),
        schema.clone(),
        options,
        encoder,
        1,
        |b: ModelBatch| Ok(b),
    )
    .err()
    .unwrap();
    assert!(short(e, &d).starts_with("none.tsv: cannot open"));
    fs::remove_dir_all(d).unwrap();
}

#[test]
fn dropping_the_loader_early_stops_its_thread() {
    let d = dir("loader-drop");
    let schema = Schema::parse(NUMBERED_SCHEMA, "schema.toml").unwrap();
    let path = write(&d, "t.tsv", &numbered(5000));
    let options = ReadOptions {
        batch_rows: 10,
        ..ReadOptions::default()
    };
    let encoder = Arc::new(
        Encoder::fit_file(&numbered_config(), &schema, "s", &path, options.clone()).unwrap(),
    );
    let prepared = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for prefetch in [0, 2] {
        prepared.store(0, std::sync::atomic::Ordering::SeqCst);
        let counter = Arc::clone(&prepared);
        let mut loader = Loader::spawn(
            path.clone(),
            schema.clone(),
            options.clone(),
            Arc::clone(&encoder),
            prefetch,
            move |b: ModelBatch| {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(b.rows)
            },
        )
        .unwrap();
        assert_eq!(loader.next().unwrap().unwrap(), 10);
        drop(loader); // joins: returns only once the thread has stopped
        let n = prepared.load(std::sync::atomic::Ordering::SeqCst);
        assert!(n < 500, "{n} batches prepared after an early drop");
    }
    // finish() early also stops the thread.
    let mut loader = Loader::spawn(
        path,
        schema,
        options,
        encoder,
        1,
        |b: ModelBatch| Ok(b.rows),
    )
    .unwrap();
    loader.next().unwrap().unwrap();
    assert_eq!(loader.finish().unwrap().count, 0);
    fs::remove_dir_all(d).unwrap();
}

#[test]
fn loader_errors_end_the_stream_once_and_skip_bad_rows_counts_reader_and_encoder_rejects() {
    let d = dir("loader-bad");
    let schema = Schema::parse(NUMBERED_SCHEMA, "schema.toml").unwrap();
    let good = write(&d, "good.tsv", &numbered(10));
    let mut text = numbered(10);
    // Line 4: a bad label (reader); line 7: a behaviour after its target (encoder); line 9: both
    // kinds in one batch, the encoder's.
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[3] = "2\tu0\t5\tu1\t1".into();
    lines[6] = "0\tu0\t5\tu1\t6".into();
    lines[8] = "0\tu0\t5\tu1|u2\t1|9".into();
    text = lines.join("\n") + "\n";
    let bad = write(&d, "bad.tsv", &text);
    let options = ReadOptions {
        batch_rows: 4,
        ..ReadOptions::default()
    };
    let encoder = Arc::new(
        Encoder::fit_file(&numbered_config(), &schema, "s", &good, options.clone()).unwrap(),
    );
    // Without skipping: the first bad row ends the stream, yielded once.
    let mut loader = Loader::spawn(
        bad.clone(),
        schema.clone(),
        options.clone(),
        Arc::clone(&encoder),
        2,
        |b: ModelBatch| Ok(b.lines),
    )
    .unwrap();
    let e = loader.next().unwrap().unwrap_err();
    assert_eq!(
        short(e, &d),
        "bad.tsv:4: column 1 \"click\": label \"2\" is not 0 or 1"
    );
    assert!(loader.next().is_none());
    assert!(loader.next().is_none());
    loader.finish().unwrap();
    // prepare's error ends it too.
    let mut loader = Loader::spawn(
        good.clone(),
        schema.clone(),
        options.clone(),
        Arc::clone(&encoder),
        2,
        |_: ModelBatch| -> Result<()> { Err(Error::data("prepare", "no room")) },
    )
    .unwrap();
    assert_eq!(
        loader.next().unwrap().unwrap_err().to_string(),
        "prepare: no room"
    );
    assert!(loader.next().is_none());
    // Skipping: every good row once, in order; the three bad rows counted, reasons by line.
    let skip = ReadOptions {
        skip_bad_rows: true,
        ..options
    };
    let mut loader =
        Loader::spawn(bad, schema, skip, encoder, 1, |b: ModelBatch| Ok(b.lines)).unwrap();
    let lines: Vec<u64> = loader.by_ref().flat_map(|b| b.unwrap()).collect();
    assert_eq!(lines, [2, 3, 5, 6, 8, 10, 11]);
    let bad_rows = loader.finish().unwrap();
    assert_eq!(bad_rows.count, 3);
    let reasons: Vec<String> = bad_rows.first.into_iter().map(|e| short(e, &d)).collect();
    assert_eq!(
        reasons,
        [
            "bad.tsv:4: column 1 \"click\": label \"2\" is not 0 or 1",
            "bad.tsv:7: column 5 \"hist_time\": behaviour 1 at time 6 is after its target at 5 \
             (column \"ts\")",
            "bad.tsv:9: column 5 \"hist_time\": behaviour 2 at time 9 is after its target at 5 \
             (column \"ts\")",
        ]
    );
    fs::remove_dir_all(d).unwrap();
}

#[test]
fn a_panic_in_prepare_is_an_error_not_a_hang() {
    let d = dir("loader-panic");
    let schema = Schema::parse(NUMBERED_SCHEMA, "schema.toml").unwrap();
    let path = write(&d, "t.tsv", &numbered(10));
    let encoder = Arc::new(
        Encoder::fit_file(
            &numbered_config(),
            &schema,
            "s",
            &path,
            ReadOptions::default(),
        )
        .unwrap(),
    );
    let mut loader = Loader::spawn(
        path,
        schema,
        ReadOptions::default(),
        encoder,
        1,
        |_: ModelBatch| -> Result<()> { panic!("boom") },
    )
    .unwrap();
    let e = short(loader.next().unwrap().unwrap_err(), &d);
    assert_eq!(e, "the loader thread: reading t.tsv: panicked: boom");
    assert!(loader.next().is_none());
    assert!(loader.finish().is_err());
    fs::remove_dir_all(d).unwrap();
}

#[test]
fn shuffled_loader_permutes_within_windows_reproducibly() {
    use crate::data::loader::Shuffle;
    let d = dir("loader-shuffle");
    let schema = Schema::parse(NUMBERED_SCHEMA, "schema.toml").unwrap();
    let path = write(&d, "rows.tsv", &numbered(50));
    // Windows of 20 rows (the read batch), cut into batches of 6: 6, 6, 6, 2 per full window.
    let options = ReadOptions {
        batch_rows: 20,
        ..ReadOptions::default()
    };
    let encoder = Arc::new(
        Encoder::fit_file(&numbered_config(), &schema, "s", &path, options.clone()).unwrap(),
    );
    let run = |seed: u64| -> Vec<Vec<u64>> {
        let mut loader = Loader::spawn_shuffled(
            path.clone(),
            schema.clone(),
            options.clone(),
            Arc::clone(&encoder),
            2,
            Some(Shuffle { batch: 6, seed }),
            |b: ModelBatch| Ok(b.lines),
        )
        .unwrap();
        let batches: Vec<Vec<u64>> = loader.by_ref().map(|b| b.unwrap()).collect();
        loader.finish().unwrap();
        batches
    };
    let a = run(1);
    let sizes: Vec<usize> = a.iter().map(Vec::len).collect();
    assert_eq!(sizes, [6, 6, 6, 2, 6, 6, 6, 2, 6, 4]);
    // Every row exactly once, and each window's rows stay in their window (lines 2..=21 first).
    let mut all: Vec<u64> = a.concat();
    let first_window: Vec<u64> = a[..4].concat();
    assert!(
        first_window.iter().all(|l| (2..=21).contains(l)),
        "{first_window:?}"
    );
    all.sort();
    assert_eq!(all, (2..=51).collect::<Vec<u64>>());
    assert_ne!(
        a.concat(),
        (2..=51).collect::<Vec<u64>>(),
        "the order changed"
    );
    assert_eq!(run(1), a, "one seed, one order");
    assert_ne!(run(2), a, "another seed, another order");
}
