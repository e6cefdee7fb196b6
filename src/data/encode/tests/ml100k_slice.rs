//! The ml-100k protocol's files, encoded.

use super::*;

/// Raw ml-100k files for a small slice (typed headers as in the wheel).
const INTER: &str = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n\
1\t10\t5\t1000\n2\t11\t3\t500\n1\t11\t4\t1000\n1\t12\t2\t4600\n2\t10\t4\t2000\n3\t12\t5\t9000\n\
1\t10\t1\t200000\n3\t11\t4\t9000\n2\t12\t3\t300000\n1\t11\t5\t400000\n2\t13\t4\t650000\n\
3\t10\t2\t9001\n1\t12\t5\t500000\n4\t10\t4\t600000\n2\t11\t1\t700000\n";
const USER: &str = "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n\
1\t24\tM\ttechnician\t85711\n2\t53\tF\tother\tT8H1N\n3\t33\tM\twriter\t15213\n\
4\t40\tF\twriter\t55105\n";
const ITEM: &str = "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n\
10\tToy Story\t1995\tAnimation Children's Comedy\n11\tunkonwn\tunkonwn\tunknown\n\
12\tHeat\t1995\tAction Crime Thriller\n13\tOld\t1931\tDrama\n";

/// The ml-100k default model's features (DATA.md §1).
const ML100K_MODEL: &str = r#"
[[feature]]
name = "user_id"
kind = "categorical"
[[feature]]
name = "item_id"
kind = "categorical"
[[feature]]
name = "gender"
kind = "categorical"
[[feature]]
name = "occupation"
kind = "categorical"
[[feature]]
name = "zip"
kind = "categorical"
[[feature]]
name = "age"
kind = "numeric"
[[feature]]
name = "release_year"
kind = "numeric"
[[feature]]
name = "genre"
kind = "bag"
column = "genres"
[[feature]]
name = "hour"
kind = "categorical"
[[feature]]
name = "weekday"
kind = "categorical"
[[feature]]
name = "history"
kind = "sequence"
column = "hist_item"
item = "item_id"
side = ["genre"]
side_columns = ["hist_genre"]
max_len = 50
buckets = 64
time = { by = "log_delta", unit_seconds = 3600 }
[[task]]
name = "click"
[[task]]
name = "love"
[train]
group = "user_id"
"#;

#[test]
fn ml100k_slice_encodes_strictly_earlier_histories_with_the_protocol_buckets() {
    let d = dir("ml100k");
    let raw = d.join("raw");
    fs::create_dir_all(&raw).unwrap();
    for (file, text) in ml100k::RAW_FILES.iter().zip([INTER, USER, ITEM]) {
        fs::write(raw.join(file), text).unwrap();
    }
    ml100k::prepare(&raw, &d).unwrap();
    let schema_file = d.join("schema.toml").display().to_string();
    let schema = Schema::load(&d.join("schema.toml")).unwrap();
    let model = ModelConfig::parse(ML100K_MODEL, "ml100k.toml").unwrap();
    let e = Encoder::fit_file(
        &model,
        &schema,
        &schema_file,
        &d.join("train.tsv"),
        ReadOptions::default(),
    )
    .unwrap();
    // The protocol's buckets, read back from the column the schema skips.
    let checked = Schema::parse(
        &ml100k::schema_toml().replace(
            "name = \"hist_bucket\"\ntype = \"skip\"",
            "name = \"hist_bucket\"\ntype = \"sequence\"",
        ),
        "checked",
    )
    .unwrap();
    let bucket_column = checked.index("hist_bucket").unwrap();
    // Events in protocol order: by timestamp, then file order.
    let mut events: Vec<(i64, usize, &str, &str)> = INTER
        .lines()
        .skip(1)
        .enumerate()
        .map(|(k, l)| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[3].parse().unwrap(), k, f[0], f[1])
        })
        .collect();
    events.sort();
    let genre_of: HashMap<&str, &str> = [
        ("10", "Animation"),
        ("11", "unknown"),
        ("12", "Action"),
        ("13", "Drama"),
    ]
    .into_iter()
    .collect();
    let item_vocab = e.vocabulary(1).unwrap();
    let genre_vocab = e.vocabulary(7).unwrap();
    let mut seen = 0;
    for split in ml100k::SPLITS {
        let path = d.join(format!("{split}.tsv"));
        let batch = read_all(&path, &schema);
        let b = e.encode(&batch, split).unwrap();
        let protocol = read_all(&path, &checked);
        let ColumnData::Sequence(buckets) = &protocol.columns[bucket_column] else {
            panic!()
        };
        let t = tim(&b.features[10]);
        let mut first = 0;
        for r in 0..b.rows {
            let (_, _, user, item) = events[seen + r];
            // The history: that user's events strictly before this one in the global order.
            let earlier: Vec<&str> = events[..seen + r]
                .iter()
                .filter(|e| e.2 == user)
                .map(|e| e.3)
                .collect();
            let n = t.lengths[r] as usize;
            assert_eq!(n, earlier.len(), "{split} row {r}");
            let want: Vec<u32> = earlier
                .iter()
                .flat_map(|i| [item_vocab.row(i), genre_vocab.row(genre_of[i])])
                .collect();
            assert_eq!(t.behaviours[2 * first..2 * (first + n)], want[..]);
            let protocol_buckets: Vec<u32> = buckets.row(r).map(|x| x.parse().unwrap()).collect();
            assert_eq!(t.buckets[first..first + n], protocol_buckets[..]);
            assert_eq!(
                t.target[2 * r..2 * r + 2],
                [item_vocab.row(item), genre_vocab.row(genre_of[item])]
            );
            assert_eq!(b.groups.as_ref().unwrap()[r], stable_hash(user));
            first += n;
        }
        assert_eq!(first, t.behaviours.len() / 2);
        seen += b.rows;
    }
    assert_eq!(seen, events.len());
    // Vocabularies from train only: item 13 and user 4 first appear after the train split → OOV.
    assert_eq!(item_vocab.row("13"), OOV_ROW);
    assert_eq!(e.vocabulary(0).unwrap().row("4"), OOV_ROW);
    assert_eq!(e.vocabulary(0).unwrap().rows(), 4);
    // release_year: 1995 and missing ("unkonwn") → 1 + 0 and 0; 1931 only appears later (clamped).
    assert!(e.mns(6).iter().all(|b| b.digits == 1));
    fs::remove_dir_all(d).unwrap();
}
