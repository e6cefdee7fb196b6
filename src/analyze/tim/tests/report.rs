//! The section's errors (never panics), the model file's sequence feature, and the report: every
//! number of the JSON in report.md, the figure written as PNG and SVG.

use super::{add_batch, batch, hand_result, sequence, Sample, Tables};
use crate::analyze::tim::attention::{Table, TimRows};
use crate::analyze::tim::cells::Tally;
use crate::analyze::tim::Sequence;
use crate::data::encode::FeatureInput;

#[test]
fn bad_buckets_ids_and_batches_are_errors() {
    let t = Tables::random(13, 4);
    let rows = [t.rows()];
    let mut tally = Tally::new(3, 5, 1);
    let run = |tally: &mut Tally, s: Sample| {
        add_batch(tally, &batch(&[s], 1), &sequence(), &rows, "t.tsv")
            .expect_err("rejected")
            .to_string()
    };
    let e = run(&mut tally, (1.0, [5, 2], vec![(7, 1, 5)]));
    assert!(e.contains("t.tsv") && e.contains("bucket 5"), "{e}");
    let e = run(&mut tally, (1.0, [5, 2], vec![(10, 1, 1)]));
    assert!(e.contains("row 10") && e.contains("emb.0.item"), "{e}");
    let e = run(&mut tally, (1.0, [5, 4], vec![]));
    assert!(e.contains("row 4") && e.contains("emb.0.genre"), "{e}");
    // The bad id of the second behaviour comes after a good first one; nothing of it is counted.
    let e = run(&mut tally, (1.0, [5, 2], vec![(7, 1, 1), (10, 1, 2)]));
    assert!(e.contains("row 10"), "{e}");
    let r = super::correlate(&sequence(), "click".into(), &tally);
    assert_eq!(r.samples, 0);
    assert!(
        r.relations.is_empty(),
        "rejected samples left {:?}",
        r.behaviours
    );
    let e = tally
        .add(true, (&[5, 2], &[], &[]), &[])
        .expect_err("no TIM");
    assert!(e.to_string().contains("0 TIMs for a tally of 1"), "{e}");
    let mut short = batch(&[(1.0, [5, 2], vec![(7, 1, 1)])], 1);
    if let FeatureInput::Sequence(tb) = &mut short.features[0] {
        tb.buckets.clear();
    }
    let e = add_batch(&mut tally, &short, &sequence(), &rows, "t.tsv").expect_err("short");
    assert!(e.to_string().contains("0 buckets"), "{e}");
    let wide = Table {
        name: "emb.0.time".into(),
        data: &t.time,
        rows: 4,
    };
    let narrow = Table {
        name: "emb.0.item".into(),
        data: &t.item,
        rows: 10,
    };
    let e = TimRows::new("x".into(), vec![narrow], wide, 4)
        .err()
        .expect("shape");
    assert!(e.to_string().contains("emb.0.time"), "{e}");
}

#[test]
fn sequence_feature_is_found_and_a_model_without_one_has_none() {
    let with = crate::config::ModelConfig::parse(
        include_str!("../../../../configs/ml100k.toml"),
        "ml100k.toml",
    )
    .expect("config");
    let seq = Sequence::of(&with).expect("history");
    assert_eq!(seq.name, "history");
    assert_eq!(seq.semantic, ["item_id", "genres"]);
    assert_eq!(seq.relations(), ["same item", "same genres", "unrelated"]);
    assert_eq!(
        (seq.buckets, seq.bucketing.as_str()),
        (64, "log_delta, unit 3600 s")
    );
    let text = "[model]\ndim = 8\n\n[[feature]]\nname = \"user_id\"\nkind = \"categorical\"\n\n\
                [[task]]\nname = \"click\"\n";
    let without = crate::config::ModelConfig::parse(text, "m.toml").expect("config");
    assert!(Sequence::of(&without).is_none());
}

#[test]
fn the_report_holds_every_number_and_the_figure_is_written() {
    let mut r = hand_result(&Tables::random(17, 8), 100);
    let dir = std::env::temp_dir().join(format!("wgrec-tim-report-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    r.figure = crate::analyze::plot::save(&dir, "tim-correlation", &r.figure()).expect("figure");
    let svg = std::fs::read_to_string(dir.join(&r.figure[1])).expect("svg");
    assert!(
        svg.contains("Spearman") && svg.contains("same genre"),
        "{svg}"
    );
    assert_eq!(
        &std::fs::read(dir.join(&r.figure[0])).expect("png")[1..4],
        b"PNG"
    );
    std::fs::remove_dir_all(&dir).expect("clean");
    let md = r.markdown();
    assert!(
        md.contains("![tim-correlation](tim-correlation.png)"),
        "{md}"
    );
    for v in r.mi.iter().flatten().flatten() {
        assert!(
            md.contains(&format!("{v:.3e}")),
            "MI {v} missing from\n{md}"
        );
    }
    let attention = r.attention.tables.iter().flatten().chain(&r.attention.mean);
    for v in attention.flatten().flatten() {
        assert!(md.contains(&format!("{v:.3}")), "attention {v} missing");
    }
    for n in r.support.iter().chain(&r.behaviours).flatten() {
        assert!(md.contains(&format!(" {n} |")), "count {n} missing");
    }
    let rho = r.spearman.expect("six cells");
    assert!(md.contains(&format!("**{rho:.3}**")) && md.contains(&format!("{} cells", r.cells)));
    assert!(md.contains(&format!("{} training samples", r.samples)));
    let json = serde_json::to_value(&r).expect("json");
    for key in [
        "relations",
        "buckets",
        "mi",
        "attention",
        "spearman",
        "cells",
        "samples",
    ] {
        assert!(json.get(key).is_some(), "{key} missing from {json}");
    }
}

#[test]
fn no_labelled_sample_gives_empty_maps_and_still_a_report() {
    // Every label missing: nothing is counted, no cell exists, ρ is undefined; the report and
    // the figure still render.
    let t = Tables::random(23, 4);
    let rows = [t.rows()];
    let mut tally = Tally::new(3, 5, 1);
    let samples: Vec<Sample> = vec![(-1.0, [5, 2], vec![(7, 2, 1)]); 80];
    add_batch(&mut tally, &batch(&samples, 1), &sequence(), &rows, "t.tsv").expect("tally");
    let mut r = super::correlate(&sequence(), "click".into(), &tally);
    assert_eq!((r.samples, r.cells, r.spearman), (0, 0, None));
    assert!(r.relations.is_empty() && r.buckets.is_empty() && r.mi.is_empty());
    let dir = std::env::temp_dir().join(format!("wgrec-tim-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    r.figure = crate::analyze::plot::save(&dir, "tim-correlation", &r.figure()).expect("figure");
    std::fs::remove_dir_all(&dir).expect("clean");
    assert!(r.markdown().contains("0 training samples"));
}
