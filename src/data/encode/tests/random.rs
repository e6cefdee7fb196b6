//! Seeded random sequences against a direct reference, in batches of any size.

use super::*;
use crate::rng::Rng;

/// A behaviour: item, category, genre, time.
type Behaviour = (String, String, String, i64);

/// A sample row of `SEQ_SCHEMA`, as written.
struct Row {
    item: String,
    cat: String,
    genres: Vec<String>,
    ts: i64,
    hist: Vec<Behaviour>,
}

/// 300 random rows of `SEQ_SCHEMA` (up to 11 behaviours each, oldest first) and their file text.
fn random_rows(rng: &mut Rng) -> (Vec<Row>, String) {
    let mut text = String::from(SEQ_TRAIN.lines().next().unwrap());
    text.push('\n');
    let mut rows = Vec::new();
    for _ in 0..300 {
        let ts = 10_000 + rng.below(100_000) as i64;
        let n = rng.below(12) as usize;
        let mut times: Vec<i64> = (0..n).map(|_| ts - rng.below(50_000) as i64).collect();
        times.sort();
        let hist: Vec<_> = times
            .into_iter()
            .map(|t| {
                (
                    format!("i{}", rng.below(25)),
                    format!("c{}", rng.below(4)),
                    format!("g{}", rng.below(6)),
                    t,
                )
            })
            .collect();
        let genres: Vec<String> = (0..rng.below(3))
            .map(|_| format!("g{}", rng.below(8)))
            .collect();
        let row = Row {
            item: format!("i{}", rng.below(30)),
            cat: format!("c{}", rng.below(5)),
            genres,
            ts,
            hist,
        };
        let join =
            |f: &dyn Fn(&Behaviour) -> String| row.hist.iter().map(f).collect::<Vec<_>>().join("|");
        text.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            rng.below(2),
            row.item,
            row.cat,
            row.genres.join("|"),
            row.ts,
            join(&|h| h.0.clone()),
            join(&|h| h.1.clone()),
            join(&|h| h.2.clone()),
            join(&|h| h.3.to_string()),
        ));
        rows.push(row);
    }
    (rows, text)
}

#[test]
fn seeded_random_sequences_match_a_direct_reference_in_batches_of_any_size() {
    let d = dir("seeded");
    let mut rng = Rng::new(17);
    let (rows, text) = random_rows(&mut rng);
    let path = write(&d, "t.tsv", &text);
    let schema = Schema::parse(SEQ_SCHEMA, "schema.toml").unwrap();
    let mut model = seq_config("{ by = \"log_delta\", unit_seconds = 600 }", "");
    if let crate::config::FeatureKind::Sequence {
        max_len, buckets, ..
    } = &mut model.features[3].kind
    {
        *max_len = 5;
        *buckets = 8;
    }
    let e = Encoder::fit_file(&model, &schema, "s", &path, ReadOptions::default()).unwrap();
    let rule = TemporalBuckets::LogTime {
        buckets: 8,
        unit: 600.0,
    };
    let (item, cat, genre) = (
        e.vocabulary(0).unwrap(),
        e.vocabulary(1).unwrap(),
        e.vocabulary(2).unwrap(),
    );
    for batch_rows in [1, 7, 300] {
        let options = ReadOptions {
            batch_rows,
            ..ReadOptions::default()
        };
        let loader = Loader::spawn(
            path.clone(),
            schema.clone(),
            options,
            Arc::new(e.clone()),
            1,
            Ok,
        )
        .unwrap();
        let mut r = 0;
        for b in loader {
            let b = b.unwrap();
            let t = tim(&b.features[3]);
            let mut first = 0;
            for k in 0..b.rows {
                let row = &rows[r];
                let kept = &row.hist[row.hist.len().saturating_sub(5)..];
                assert_eq!(t.lengths[k] as usize, kept.len());
                let first_genre = row.genres.first().map_or(OOV_ROW, |g| genre.row(g));
                assert_eq!(
                    t.target[3 * k..3 * k + 3],
                    [item.row(&row.item), cat.row(&row.cat), first_genre]
                );
                let want: Vec<u32> = kept
                    .iter()
                    .flat_map(|h| [item.row(&h.0), cat.row(&h.1), genre.row(&h.2)])
                    .collect();
                assert_eq!(t.behaviours[3 * first..3 * (first + kept.len())], want[..]);
                let times: Vec<i64> = kept.iter().map(|h| h.3).collect();
                assert_eq!(
                    t.buckets[first..first + kept.len()],
                    rule.assign(row.ts, &times).unwrap()[..]
                );
                first += kept.len();
                r += 1;
            }
        }
        assert_eq!(r, rows.len());
    }
    fs::remove_dir_all(d).unwrap();
}
