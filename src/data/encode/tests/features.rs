//! Categorical, bag and numeric features: exact rows, OOV, `min_count`, hashing and MNS digits.

use super::*;

#[test]
fn categorical_bag_and_numeric_rows_are_exact_with_oov_min_count_and_hashing() {
    let d = dir("flat");
    let schema = Schema::parse(FLAT_SCHEMA, "schema.toml").unwrap();
    let train = write(&d, "train.tsv", FLAT_TRAIN);
    let eval = write(&d, "eval.tsv", FLAT_EVAL);
    let options = ReadOptions {
        batch_rows: 3,
        ..ReadOptions::default()
    };
    let e = Encoder::fit_file(
        &flat_config(""),
        &schema,
        "schema.toml",
        &train,
        options.clone(),
    )
    .unwrap();
    // Counts a:2, b:1, c:1 → a = 1, then b = 2, c = 3 by bytes; unseen z → OOV row 0.
    assert_eq!(e.table_rows(0), 4);
    assert_eq!(e.table_rows(1), 7);
    // Tags t2:3, t1:2, t3:1.
    assert_eq!(e.table_rows(2), 4);
    // age: min 20, max 30 → v_max = 11; 2^4 = 16 > 11, 3^3 = 27 > 11 ≥ 3^2.
    assert_eq!(
        e.mns(3),
        [
            MnsBase {
                radix: 2,
                digits: 4
            },
            MnsBase {
                radix: 3,
                digits: 3
            }
        ]
    );
    assert_eq!(e.table_rows(3), 2 * 4 + 3 * 3);
    assert_eq!(e.mns(0), []);
    assert_eq!(e.tasks(), 1);
    assert_eq!(e.logit_correction(), 0.0);
    let hashed = Vocabulary::hashed(7).unwrap();
    let h = |t: &str| ((u128::from(stable_hash(t)) * 7) >> 64) as u32;
    assert_eq!(hashed.row("x"), h("x"));

    let b = e.encode(&read_all(&train, &schema), "train.tsv").unwrap();
    assert_eq!(b.rows, 4);
    assert_eq!(b.lines, [2, 3, 4, 5]);
    assert_eq!(
        ids(&b.features[0]),
        (&[0, 1, 2, 3, 4][..], &[1, 2, 1, 3][..])
    );
    assert_eq!(ids(&b.features[1]).1, [h("x"), h("x"), h("y"), h("x")]);
    assert_eq!(
        ids(&b.features[2]),
        (&[0, 2, 3, 3, 6][..], &[2, 1, 1, 2, 3, 1][..])
    );
    // 20 → 1, 30 → 11, 25.5 → 1 + ⌊5.5⌋ = 6, missing → 0.
    assert_eq!(ids(&b.features[3]).1, [1, 11, 6, 0]);
    assert_eq!(b.labels, [1.0, 0.0, 1.0, 0.0]);
    assert_eq!((b.weights, b.groups), (None, None));

    // At eval: unseen ids → OOV, out-of-range numbers clamped to 1..=11.
    let b = e.encode(&read_all(&eval, &schema), "eval.tsv").unwrap();
    assert_eq!(ids(&b.features[0]).1, [0, 2, 3]);
    assert_eq!(ids(&b.features[1]).1, [h("x"), h("q"), h("y")]);
    assert_eq!(ids(&b.features[2]), (&[0, 2, 2, 3][..], &[0, 3, 1][..]));
    assert_eq!(ids(&b.features[3]).1, [1, 11, 10]);

    // A subset of rows, in the order asked; a row past the batch or another schema's batch is an
    // error.
    let batch = read_all(&train, &schema);
    let sub = e.encode_rows(&batch, "train.tsv", &[3, 0]).unwrap();
    assert_eq!((sub.rows, sub.lines.clone()), (2, vec![5, 2]));
    assert_eq!(
        ids(&sub.features[2]),
        (&[0, 3, 5][..], &[2, 3, 1, 2, 1][..])
    );
    assert_eq!(
        e.encode_rows(&batch, "train.tsv", &[4])
            .unwrap_err()
            .to_string(),
        "train.tsv: row 4 of a batch of 4 rows"
    );
    let other = Schema::parse(NUMBERED_SCHEMA, "s").unwrap();
    let numbered_file = write(&d, "n.tsv", &numbered(3));
    assert_eq!(
        e.encode(&read_all(&numbered_file, &other), "n.tsv")
            .unwrap_err()
            .to_string(),
        "n.tsv: the batch was not read with the encoder's schema"
    );

    // min_count 2: only a keeps a row.
    let e = Encoder::fit_file(
        &flat_config("min_count = 2"),
        &schema,
        "schema.toml",
        &train,
        options,
    )
    .unwrap();
    assert_eq!(e.table_rows(0), 2);
    let b = e.encode(&read_all(&train, &schema), "train.tsv").unwrap();
    assert_eq!(ids(&b.features[0]).1, [1, 0, 1, 0]);
    fs::remove_dir_all(d).unwrap();
}

#[test]
fn numeric_digits_are_the_fewest_that_hold_the_top_value() {
    let mut fit = NumericFit::new();
    fit.min = 0.0;
    fit.max = 7.0;
    fit.finish(&[2, 3, 10], 1.0).unwrap();
    // v_max = 8: 2^4 = 16 > 8 ≥ 2^3; 3^2 = 9 > 8; 10^1 > 8.
    assert_eq!(fit.top, 8);
    assert_eq!(
        fit.bases.iter().map(|b| b.digits).collect::<Vec<_>>(),
        [4, 2, 1]
    );
    fit.max = 6.0;
    fit.finish(&[2, 3, 10], 1.0).unwrap();
    // v_max = 7 < 2^3 = 8.
    assert_eq!(fit.bases[0].digits, 3);
    // Step 0.5 from min −1: −1 → 1, −0.6 → 1, −0.5 → 2, NaN → 0.
    fit.min = -1.0;
    fit.max = 1.0;
    fit.finish(&[2], 0.5).unwrap();
    assert_eq!(fit.top, 5);
    assert_eq!(
        [-1.0, -0.6, -0.5, 1.0, 9.0, -9.0, f64::NAN].map(|x| fit.value(x, 0.5)),
        [1, 1, 2, 5, 5, 1, 0]
    );
    // Nothing seen: everything is 0, one digit per radix.
    let mut none = NumericFit::new();
    none.finish(&[2, 3], 1.0).unwrap();
    assert_eq!((none.top, none.value(5.0, 1.0)), (0, 0));
    assert_eq!(MnsBase::rows(&none.bases), 5);
    // A span past u32 is an error.
    let mut wide = NumericFit::new();
    wide.min = 0.0;
    wide.max = 1e12;
    assert!(wide
        .finish(&[2], 1.0)
        .unwrap_err()
        .message
        .contains("raise the feature's step"));
}
