//! Saving and loading a fitted encoder.

use super::*;

#[test]
fn save_and_load_round_trip_and_reject_another_model() {
    let d = dir("save");
    let schema = Schema::parse(
        &SEQ_SCHEMA.replace("\"timestamp\"", "\"numeric\""),
        "schema.toml",
    )
    .unwrap();
    let train = write(&d, "train.tsv", SEQ_TRAIN);
    let model = |extra: &str| {
        config(&format!(
            "[[feature]]\nname = \"item\"\nkind = \"categorical\"\n\
             [[feature]]\nname = \"cat\"\nkind = \"categorical\"\nhash_rows = 5\n\
             [[feature]]\nname = \"genre\"\nkind = \"bag\"\ncolumn = \"genres\"\nmin_count = 1\n\
             [[feature]]\nname = \"ts\"\nkind = \"numeric\"\nstep = 7.0\n{extra}\n\
             [[feature]]\nname = \"history\"\nkind = \"sequence\"\ncolumn = \"hist\"\n\
             item = \"item\"\nside = [\"cat\"]\nside_columns = [\"hist_cat\"]\n\
             time = {{ by = \"position\" }}\n"
        ))
    };
    let e = Encoder::fit_file(
        &model(""),
        &schema,
        "schema.toml",
        &train,
        ReadOptions::default(),
    )
    .unwrap();
    let out = d.join("checkpoint");
    e.save(&out).unwrap();
    let back = Encoder::load(&out, &model(""), &schema, "schema.toml").unwrap();
    let batch = read_all(&train, &schema);
    assert_eq!(
        back.encode(&batch, "t").unwrap(),
        e.encode(&batch, "t").unwrap()
    );
    for f in 0..5 {
        assert_eq!(back.table_rows(f), e.table_rows(f));
        assert_eq!(back.mns(f), e.mns(f));
    }
    assert_eq!(e.table_rows(3), MnsBase::rows(&e.mns(3)));
    // Leftover temporaries: none.
    let mut names: Vec<String> = fs::read_dir(&out)
        .unwrap()
        .map(|f| f.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "encoder.json",
            "vocab-0.json",
            "vocab-1.json",
            "vocab-2.json"
        ]
    );
    let err = |c: ModelConfig| {
        short(
            Encoder::load(&out, &c, &schema, "schema.toml").unwrap_err(),
            &d,
        )
    };
    assert_eq!(
        err(model("radices = [2, 5]")),
        "checkpoint checkpoint/encoder.json [features[3]]: feature \"ts\": saved step Some(7.0) \
         and radices Some([2, 3, 10]), the model has 7 and [2, 5]"
    );
    let renamed = config(
        "[[feature]]\nname = \"items\"\nkind = \"categorical\"\ncolumn = \"item\"\n\
         [[feature]]\nname = \"cat\"\nkind = \"categorical\"\n\
         [[feature]]\nname = \"genre\"\nkind = \"bag\"\ncolumn = \"genres\"\n\
         [[feature]]\nname = \"ts\"\nkind = \"numeric\"\nstep = 7.0\n\
         [[feature]]\nname = \"history\"\nkind = \"sequence\"\ncolumn = \"hist\"\n\
         item = \"items\"\nside = [\"cat\"]\nside_columns = [\"hist_cat\"]\n\
         time = { by = \"position\" }\n",
    );
    assert_eq!(
        err(renamed),
        "checkpoint checkpoint/encoder.json [features[0]]: saved categorical feature \"item\", \
         the model has categorical feature \"items\""
    );
    let unhashed = model("").features.clone();
    let mut c = model("");
    c.features = unhashed;
    if let crate::config::FeatureKind::Categorical { hash_rows, .. } = &mut c.features[1].kind {
        *hash_rows = None;
    }
    assert!(err(c).contains("does not match the model's hash_rows None"));
    assert!(err(config(
        "[[feature]]\nname = \"item\"\nkind = \"categorical\"\n"
    ))
    .contains("5 features saved, the model has 1"));
    fs::remove_file(out.join("encoder.json")).unwrap();
    assert!(err(model("")).starts_with("checkpoint checkpoint/encoder.json: cannot read"));
    fs::remove_dir_all(d).unwrap();
}
