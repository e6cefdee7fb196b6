//! The protocol on a handmade slice, and the full-data facts of DATA.md §1 on the real data
//! (fetched once, or from the folder `WGREC_ML100K` names).

use std::fs;
use std::path::PathBuf;

use super::fetch::pip_download_with_path;
use super::*;

const INTER: &str = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n\
1\t10\t5\t1000\n\
2\t11\t3\t500\n\
1\t11\t4\t1000\n\
1\t12\t2\t4600\n\
2\t10\t4\t2000\n\
3\t12\t5\t9000\n\
1\t10\t1\t200000\n\
3\t11\t4\t9000\n\
2\t12\t3\t300000\n\
1\t11\t5\t400000\n";
const USER: &str = "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n\
1\t24\tM\ttechnician\t85711\n2\t53\tF\tother\tT8H1N\n3\t33\tM\twriter\t15213\n";
const ITEM: &str = "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n\
10\tToy Story\t1995\tAnimation Children's Comedy\n\
11\tunkonwn\tunkonwn\tunknown\n\
12\tHeat\t1995\tAction Crime Thriller\n";

fn slice(name: &str) -> (PathBuf, PrepareStats) {
    let dir = std::env::temp_dir().join(format!("wgrec-ml100k-{name}-{}", std::process::id()));
    let raw = dir.join("raw");
    fs::create_dir_all(&raw).unwrap();
    for (file, text) in RAW_FILES.iter().zip([INTER, USER, ITEM]) {
        fs::write(raw.join(file), text).unwrap();
    }
    let stats = prepare(&raw, &dir).unwrap();
    (dir, stats)
}

/// Rows of a split as maps from column name to value.
fn rows(dir: &Path, split: &str) -> Vec<HashMap<String, String>> {
    let text = fs::read_to_string(dir.join(format!("{split}.tsv"))).unwrap();
    let mut lines = text.lines();
    let names: Vec<&str> = lines.next().unwrap().split('\t').collect();
    assert_eq!(names, COLUMNS.iter().map(|c| c.0).collect::<Vec<_>>());
    lines
        .map(|l| {
            let fields: Vec<&str> = l.split('\t').collect();
            assert_eq!(fields.len(), names.len(), "{l}");
            names
                .iter()
                .zip(fields)
                .map(|(n, f)| (n.to_string(), f.to_string()))
                .collect()
        })
        .collect()
}

#[test]
fn slice_orders_by_timestamp_then_file_order_and_splits_80_10_10() {
    let (dir, stats) = slice("order");
    let all: Vec<_> = SPLITS.iter().flat_map(|s| rows(&dir, s)).collect();
    let order: Vec<(&str, &str, &str)> = all
        .iter()
        .map(|r| {
            (
                r["user_id"].as_str(),
                r["item_id"].as_str(),
                r["timestamp"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        order,
        [
            ("2", "11", "500"),
            ("1", "10", "1000"), // tie at 1000: file order, user 1 item 10 before item 11
            ("1", "11", "1000"),
            ("2", "10", "2000"),
            ("1", "12", "4600"),
            ("3", "12", "9000"),
            ("3", "11", "9000"),
            ("1", "10", "200000"),
            ("2", "12", "300000"),
            ("1", "11", "400000"),
        ]
    );
    let sizes: Vec<usize> = stats.splits.iter().map(|s| s.events).collect();
    assert_eq!(sizes, [8, 1, 1]);
    assert_eq!(rows(&dir, "valid")[0]["timestamp"], "300000");
    assert_eq!(rows(&dir, "test")[0]["timestamp"], "400000");
    // Labels: click = rating ≥ 4, love = rating = 5.
    let labels: Vec<(&str, &str)> = all
        .iter()
        .map(|r| (r["click"].as_str(), r["love"].as_str()))
        .collect();
    assert_eq!(labels[..3], [("0", "0"), ("1", "1"), ("1", "0")]);
    assert_eq!(stats.splits[0].click_rate, 5.0 / 8.0);
    assert_eq!(stats.splits[0].love_rate, 2.0 / 8.0);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn slice_history_is_strictly_earlier_in_global_order_across_splits_with_buckets() {
    let (dir, stats) = slice("history");
    let train = rows(&dir, "train");
    // Tie at t = 1000: the second event (file order) sees the first, the first sees nothing.
    assert_eq!(train[1]["hist_item"], "");
    assert_eq!(train[2]["hist_item"], "10");
    assert_eq!(train[2]["hist_time"], "1000");
    assert_eq!(train[2]["hist_bucket"], "1"); // Δt = 0 → 1 + ⌊log2 1⌋
                                              // User 1 at 4600: Δt = 3600 → 1 + ⌊log2 2⌋ = 2 for both, most recent last.
    assert_eq!(train[4]["hist_item"], "10|11");
    assert_eq!(train[4]["hist_genre"], "Animation|unknown");
    assert_eq!(train[4]["hist_bucket"], "2|2");
    // User 3's tie at 9000: item 11 (later in the file) sees item 12 only.
    assert_eq!(train[6]["hist_item"], "12");
    // The test event of user 1 sees train events, most recent last; Δt = 396000 s = 110 h → 1 + 6.
    let test = &rows(&dir, "test")[0];
    assert_eq!(test["hist_item"], "10|11|12|10");
    assert_eq!(test["hist_time"], "1000|1000|4600|200000");
    assert_eq!(test["hist_bucket"], "7|7|7|6");
    // valid: user 2 saw 11 (500) and 10 (2000).
    assert_eq!(rows(&dir, "valid")[0]["hist_item"], "11|10");
    assert_eq!(stats.splits[0].empty_history, 3.0 / 8.0);
    assert_eq!(
        stats.splits[0].mean_history,
        [0, 1, 0, 1, 2, 0, 1, 3].iter().sum::<usize>() as f64 / 8.0
    );
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn slice_features_missing_year_zip_hour_weekday_and_schema() {
    let (dir, stats) = slice("features");
    let train = rows(&dir, "train");
    let r = &train[0]; // user 2, item 11 at t = 500
    assert_eq!(
        (
            r["gender"].as_str(),
            r["occupation"].as_str(),
            r["zip"].as_str(),
            r["age"].as_str()
        ),
        ("F", "other", "T", "53")
    );
    assert_eq!(r["release_year"], "", "unparsable year is missing");
    assert_eq!(r["genres"], "unknown");
    assert_eq!((r["hour"].as_str(), r["weekday"].as_str()), ("0", "3")); // 1970-01-01 was a Thursday
    assert_eq!(train[1]["genres"], "Animation|Children's|Comedy");
    assert_eq!(train[1]["release_year"], "1995");
    // t = 200000: day 2 (Saturday), 200000 − 172800 = 27200 s → 7 h.
    assert_eq!(
        (train[7]["hour"].as_str(), train[7]["weekday"].as_str()),
        ("7", "5")
    );
    assert_eq!(stats.splits[1].user_oov, 0.0);
    assert_eq!(stats.train_vocab[0], ("user_id", 3));
    let schema: toml::Value =
        toml::from_str(&fs::read_to_string(dir.join("schema.toml")).unwrap()).unwrap();
    let cols = schema["column"].as_array().unwrap();
    assert_eq!(cols.len(), COLUMNS.len());
    assert_eq!(cols[15]["type"].as_str(), Some("sequence_times"));
    assert_eq!(schema["delimiter"].as_str(), Some("\t"));
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn time_buckets_follow_the_formula() {
    assert_eq!(time_bucket(0), 1);
    assert_eq!(time_bucket(3599), 1);
    assert_eq!(time_bucket(3600), 2);
    assert_eq!(time_bucket(3 * 3600), 3);
    assert_eq!(time_bucket(7 * 3600 - 1), 3);
    assert_eq!(time_bucket(7 * 3600), 4);
    // The cap at 63 needs Δt ≥ 2^62 hours, beyond any i64 of seconds: the largest Δt gives 52.
    assert_eq!(time_bucket(i64::MAX), 52);
    assert!(time_bucket(i64::MAX) < MAX_TIME_BUCKET);
    assert_eq!(
        time_bucket(-5),
        1,
        "a negative Δt cannot happen; it is clamped to 0"
    );
}

#[test]
fn a_row_with_a_missing_field_names_the_file_and_line() {
    let dir = std::env::temp_dir().join(format!("wgrec-ml100k-bad-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join(RAW_FILES[0]),
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t2\t3\n",
    )
    .unwrap();
    let e = read_events(&dir.join(RAW_FILES[0]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("ml-100k.inter:2: 3 fields, the header has 4"),
        "{e}"
    );
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn fetch_without_pip_on_path_is_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("wgrec-ml100k-nopip-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let e = pip_download_with_path(&dir, "").unwrap_err().to_string();
    assert!(
        e.contains("pip is needed to download recbole==1.2.1"),
        "{e}"
    );
    assert!(e.contains("`python3 -m pip` (not found)"), "{e}");
    fs::remove_dir_all(dir).unwrap();
}

/// DATA.md §1's table, on the real data: from the folder `WGREC_ML100K` names (holding `raw/` from
/// `wgrec data fetch ml-100k`), else fetched once into a cache under the temp dir (pip download of
/// recbole 1.2.1, as the quickstart does). Never skipped: without pip or the network it fails, with
/// the reason.
#[test]
fn full_data_reproduces_the_facts_of_data_md() {
    let dir = match std::env::var_os("WGREC_ML100K") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let cache = std::env::temp_dir().join("wgrec-ml100k-cache");
            fetch(&cache).unwrap_or_else(|e| {
                panic!("{e} (set WGREC_ML100K to a folder `wgrec data fetch ml-100k` filled)")
            });
            cache
        }
    };
    let out = std::env::temp_dir().join(format!("wgrec-ml100k-full-{}", std::process::id()));
    let stats = prepare(&dir.join("raw"), &out).unwrap();
    // events, click, love, user OOV, item OOV, mean history, empty history (DATA.md, 4 digits).
    let expect = [
        (80_000, 0.5509, 0.2071, 0.0, 0.0, 38.88, 0.0094),
        (10_000, 0.5674, 0.2158, 0.847, 0.0053, 36.55, 0.0116),
        (10_000, 0.5629, 0.2478, 0.858, 0.0149, 40.91, 0.0076),
    ];
    for (s, e) in stats.splits.iter().zip(expect) {
        assert_eq!(s.events, e.0, "{}", s.name);
        let close =
            |got: f64, want: f64, digits: f64| (got - want).abs() <= 0.5 * 10f64.powf(-digits);
        assert!(
            close(s.click_rate, e.1, 4.0) && close(s.love_rate, e.2, 4.0),
            "{s:?}"
        );
        assert!(
            close(s.user_oov, e.3, 3.0) && close(s.item_oov, e.4, 4.0),
            "{s:?}"
        );
        assert!(
            close(s.mean_history, e.5, 2.0) && close(s.empty_history, e.6, 4.0),
            "{s:?}"
        );
    }
    let vocab: Vec<usize> = stats.train_vocab.iter().map(|v| v.1).collect();
    assert_eq!(vocab, [751, 1616, 19, 21, 2, 19]);
    // The files keep the readers' contract: the schema parses and every split reads back whole.
    let schema = crate::data::Schema::load(&out.join("schema.toml")).unwrap();
    for (split, rows) in [("train", 80_000), ("valid", 10_000), ("test", 10_000)] {
        let path = out.join(format!("{split}.tsv"));
        let mut reader =
            crate::data::TableReader::open(&path, &schema, crate::data::ReadOptions::default())
                .unwrap();
        let mut read = 0;
        while let Some(batch) = reader.next_batch().unwrap() {
            read += batch.rows;
        }
        assert_eq!(read, rows, "{split}");
    }
    fs::remove_dir_all(out).unwrap();
}
