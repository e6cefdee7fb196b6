use super::{scratch, scratch_dir, short};
use crate::data::{stable_hash, ColumnData, Vocabulary, VocabularyCounter, OOV_ROW};

fn counter(tokens: &[&str]) -> VocabularyCounter {
    let mut c = VocabularyCounter::new();
    tokens.iter().for_each(|t| c.add(t));
    c
}

#[test]
fn min_count_sends_rare_and_unseen_ids_to_the_oov_row() {
    let c = counter(&["b", "a", "c", "a", "b", "d", "b", "c"]);
    let v = Vocabulary::counted(&c, 2).unwrap();
    // b×3, then a×2 and c×2 by bytes; d×1 is below the minimum.
    assert_eq!(v.rows(), 4);
    assert_eq!(["b", "a", "c"].map(|t| v.row(t)), [1, 2, 3]);
    assert_eq!((v.row("d"), v.row("never seen")), (OOV_ROW, OOV_ROW));
    assert_eq!(
        (v.token(0), v.token(2), v.token(4)),
        (None, Some("a"), None)
    );
    let all = Vocabulary::counted(&c, 1).unwrap();
    assert_eq!((all.rows(), all.row("d")), (5, 4));
    assert_eq!(Vocabulary::counted(&c, 0).unwrap(), all);
}

#[test]
fn row_order_does_not_depend_on_reading_order() {
    let tokens: Vec<String> = (0..500).map(|i| format!("id{}", (i * 7919) % 97)).collect();
    let forward: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let backward: Vec<&str> = forward.iter().rev().copied().collect();
    let a = Vocabulary::counted(&counter(&forward), 5).unwrap();
    let b = Vocabulary::counted(&counter(&backward), 5).unwrap();
    assert_eq!(a, b);
}

#[test]
fn counter_reads_id_columns_and_rejects_others() {
    let (batches, _) = super::read(
        "vocab.csv",
        &super::schema(
            "delimiter = \",\"\ncolumns = \"categorical:user, multi_hot:tags, numeric:x\"",
        ),
        b"user,tags,x\nu1,a|b,1\nu2,b,2\nu1,,3\n",
        Default::default(),
    )
    .unwrap();
    let mut users = VocabularyCounter::new();
    let mut tags = VocabularyCounter::new();
    users.add_column(&batches[0].columns[0]).unwrap();
    tags.add_column(&batches[0].columns[1]).unwrap();
    assert_eq!((users.distinct(), tags.distinct()), (2, 2));
    let v = Vocabulary::counted(&tags, 2).unwrap();
    assert_eq!((v.row("b"), v.row("a")), (1, OOV_ROW));
    let e = users
        .add_column(&ColumnData::Numeric(vec![1.0]))
        .unwrap_err();
    assert_eq!(e.to_string(), "vocabulary: a numeric column holds no ids");
}

#[test]
fn hashing_is_stable_and_spreads_over_the_rows() {
    // Pinned values, computed by an independent Python implementation of FNV-1a 64 + fmix64: a
    // change of hash would silently remap every trained embedding row.
    let pinned = ["", "a", "68fd1e64", "é"].map(stable_hash);
    assert_eq!(
        pinned,
        [
            0xefd01f60ba992926,
            0x82a2a958a9bece5b,
            0xa9ab96d049fc30db,
            0x9d55ccb9ba86763b
        ]
    );
    let v = Vocabulary::hashed(1000).unwrap();
    assert!(v.is_hashed() && v.rows() == 1000);
    assert_eq!((v.row("a"), v.row("68fd1e64")), (510, 662));
    let mut hits = vec![0u32; 1000];
    for i in 0..100_000 {
        let row = v.row(&format!("{i:08x}"));
        hits[row as usize] += 1;
    }
    // 100 per row expected; a Poisson(100) row falls outside [50, 160] with probability < 1e-6.
    assert!(hits.iter().all(|&h| (50..=160).contains(&h)), "{hits:?}");
    assert_eq!(Vocabulary::hashed(1000).unwrap().row("x"), v.row("x"));
    assert!(Vocabulary::hashed(0).is_err());
    assert!(Vocabulary::hashed(1 << 32).is_err());
}

#[test]
fn vocabularies_save_and_load_atomically() {
    let dir = scratch_dir();
    let counted = Vocabulary::counted(&counter(&["x", "y", "y", "\"q\"\n"]), 1).unwrap();
    let hashed = Vocabulary::hashed(77).unwrap();
    for (name, v) in [("counted.json", &counted), ("hashed.json", &hashed)] {
        let path = dir.join(name);
        v.save(&path).unwrap();
        assert_eq!(&Vocabulary::load(&path).unwrap(), v);
    }
    let text = std::fs::read_to_string(dir.join("counted.json")).unwrap();
    assert_eq!(
        text,
        r#"{"format":"wgrec-vocabulary","version":1,"kind":"counted","min_count":1,"tokens":["y","\"q\"\n","x"],"counts":[2,1,1]}"#
    );
    let load_error = |name: &str, bytes: &[u8]| {
        short(
            &Vocabulary::load(&scratch(name, bytes))
                .unwrap_err()
                .to_string(),
        )
    };
    assert_eq!(
        load_error("v1.json", br#"{"format":"wgrec-vocabulary","version":2,"kind":"hashed","rows":3,"hash":"fnv1a64-fmix64"}"#),
        "v1.json: format \"wgrec-vocabulary\" version 2 (expected \"wgrec-vocabulary\" version 1)"
    );
    assert_eq!(
        load_error("v2.json", br#"{"format":"wgrec-vocabulary","version":1,"kind":"counted","min_count":1,"tokens":["a","a"],"counts":[1,1]}"#),
        "v2.json: id \"a\" appears twice"
    );
    assert_eq!(
        load_error(
            "v3.json",
            br#"{"format":"wgrec-vocabulary","version":1,"kind":"hashed","rows":3}"#
        ),
        "v3.json: hash None (expected \"fnv1a64-fmix64\")"
    );
    let e = Vocabulary::load(&dir.join("absent.json")).unwrap_err();
    assert_eq!(
        short(&e.to_string()),
        "absent.json: cannot read: No such file or directory (os error 2)"
    );
}
