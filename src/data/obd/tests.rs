//! The conversion on a tiny wheel built here (no network), and a machine without pip.

use super::*;
use std::io::Write;
use std::path::PathBuf;

const LOG_HEADER: &str =
    ",timestamp,item_id,position,click,propensity_score,user_feature_0,user_feature_1,\
user_feature_2,user_feature_3,user-item_affinity_0,user-item_affinity_1";
const CONTEXT: &str = ",item_id,item_feature_0,item_feature_1,item_feature_2,item_feature_3\n\
0,0,-0.5,aa,bb,cc\n1,1,0.75,ab,bb,cd\n";

/// Ten random-policy rounds, the last two out of time order, and three bts rounds.
fn random_log() -> String {
    let mut s = format!("{LOG_HEADER}\n");
    for i in 0..10 {
        // Rounds 8 and 9 carry earlier times than round 7's: the conversion must sort them.
        let second = [0, 1, 2, 3, 4, 5, 6, 9, 7, 8][i];
        let click = u8::from(i % 4 == 0);
        s += &format!(
            "{i},2019-11-24 00:00:0{second}.5+00:00,{},{},{click},0.5,u{i},x,y,z,0.0,1.0\n",
            i % 2,
            1 + i % 3
        );
    }
    s
}

const BTS_LOG: &str = "0,2019-11-24 00:00:01+00:00,1,1,1,0.9,u,x,y,z,0.0,0.0\n\
1,2019-11-24 00:00:02+00:00,1,2,0,0.8,u,x,y,z,0.0,0.0\n2,2019-11-24 00:00:03+00:00,0,3,0,0.1,u,x,y,z,0.0,0.0\n";

fn wheel(name: &str, bts_log: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wgrec-obd-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let path = dir.join("obp-0.4.1-py3-none-any.whl");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).expect("create wheel"));
    let options = zip::write::SimpleFileOptions::default();
    let files = [
        ("random", random_log()),
        ("random_context", CONTEXT.to_string()),
        ("bts", format!("{LOG_HEADER}\n{bts_log}")),
        ("bts_context", CONTEXT.to_string()),
    ];
    for (what, text) in files {
        let policy = what.trim_end_matches("_context");
        let file = if what.ends_with("_context") {
            "item_context.csv"
        } else {
            "men.csv"
        };
        zip.start_file(format!("obp/dataset/obd/{policy}/men/{file}"), options)
            .expect("zip entry");
        zip.write_all(text.as_bytes()).expect("zip write");
    }
    zip.finish().expect("zip finish");
    path
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("read")
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn convert_splits_the_random_log_in_time_order_and_joins_item_features() {
    let whl = wheel("convert", BTS_LOG);
    let out = whl.with_file_name("out");
    let stats = convert(&whl, Campaign::Men, &out).unwrap();
    assert_eq!(stats.splits, [7, 1, 2]);
    assert_eq!(stats.numeric_item_features, ["item_feature_0"]);
    // Clicks at rounds 0, 4, 8 of 10; bts: 1 of 3.
    let random = &stats.policies[0];
    assert_eq!(
        (random.rows, random.clicks, random.actions, random.positions),
        (10, 3, 2, 3)
    );
    assert_eq!((stats.policies[1].rows, stats.policies[1].clicks), (3, 1));
    let train = lines(&out.join("train.tsv"));
    assert_eq!(train[0], "click\titem_id\tposition\tpropensity\tuser_feature_0\tuser_feature_1\tuser_feature_2\tuser_feature_3\titem_feature_0\titem_feature_1\titem_feature_2\titem_feature_3\ttimestamp");
    assert_eq!(
        train[1],
        "1\t0\t1\t0.5\tu0\tx\ty\tz\t-0.5\taa\tbb\tcc\t2019-11-24 00:00:00.5+00:00"
    );
    assert_eq!(train.len(), 8);
    // Time order: the 8th round in time is file round 8 (second 7), then 9, then 7.
    assert!(lines(&out.join("valid.tsv"))[1].contains("\tu8\t"));
    let test = lines(&out.join("test.tsv"));
    assert!(
        test[1].contains("\tu9\t") && test[2].contains("\tu7\t"),
        "{test:?}"
    );
    assert_eq!(lines(&out.join("bts.tsv")).len(), 4);
    // The written tables read back through their schema.
    let schema = crate::data::Schema::load(&out.join("schema.toml")).unwrap();
    for split in ["train", "valid", "test", "bts"] {
        let path = out.join(format!("{split}.tsv"));
        let mut reader =
            crate::data::TableReader::open(&path, &schema, Default::default()).unwrap();
        while reader.next_batch().unwrap().is_some() {}
    }
}

#[test]
fn a_bad_propensity_or_a_missing_campaign_in_the_wheel_is_an_error_naming_it() {
    let whl = wheel("badprop", &BTS_LOG.replace(",0.8,", ",0,"));
    let e = convert(&whl, Campaign::Men, &whl.with_file_name("out"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("bts/men/men.csv:3: column \"propensity_score\": 0 is not in (0, 1]"),
        "{e}"
    );
    let e = convert(&whl, Campaign::Women, &whl.with_file_name("out"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("has no obp/dataset/obd/random/women/women.csv"),
        "{e}"
    );
}

#[test]
fn fetch_without_pip_is_a_clear_error() {
    let scratch = std::env::temp_dir().join(format!("wgrec-obd-nopip-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let e = pip_download(&scratch, Some("")).unwrap_err().to_string();
    assert!(
        e.contains("pip is needed to download obp==0.4.1")
            && e.contains("tried `python3 -m pip` (not found)"),
        "{e}"
    );
}
