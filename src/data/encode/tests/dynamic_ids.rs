//! Categorical features with a dynamic id map (`capacity`): seeded from the training split, new
//! ids admitted by `Encoder::observe`, the encoded rows (a sequence's behaviours included)
//! following the map, and the map saved with the encoder and in the online state.

use super::*;
use crate::config::FeatureKind;

/// The sequence model of `seq_config`, its item feature with `capacity` and `admit_after`.
fn dynamic_seq(capacity: u32, admit_after: u32) -> ModelConfig {
    let mut c = seq_config("{ by = \"position\" }", "");
    let FeatureKind::Categorical {
        capacity: c_capacity,
        admit_after: c_admit,
        ..
    } = &mut c.features[0].kind
    else {
        panic!("feature 0 is the categorical item");
    };
    *c_capacity = Some(capacity);
    *c_admit = Some(admit_after);
    c
}

/// New items i7 and i8, in targets and in histories (the item column of `SEQ_SCHEMA` files).
const NEW_ITEMS: &str = "click\titem\tcat\tgenres\tts\thist\thist_cat\thist_genre\thist_time\n\
1\ti7\tc1\tg1\t400\ti1|i7\tc1|c1\tg1|g1\t390|395\n\
0\ti8\tc2\tg2\t500\ti7|i8\tc1|c2\tg1|g2\t450|460\n\
1\ti7\tc1\tg1\t600\ti8\tc2\tg2\t590\n";

struct Fixture {
    d: PathBuf,
    schema: Schema,
    train: PathBuf,
    new_items: Batch,
}

fn fixture(name: &str) -> Fixture {
    let d = dir(name);
    let schema = Schema::parse(SEQ_SCHEMA, "schema.toml").unwrap();
    let train = write(&d, "train.tsv", SEQ_TRAIN);
    let new_items = read_all(&write(&d, "new.tsv", NEW_ITEMS), &schema);
    Fixture {
        d,
        schema,
        train,
        new_items,
    }
}

impl Fixture {
    fn fit(&self, config: &ModelConfig) -> Encoder {
        let options = ReadOptions::default();
        Encoder::fit_file(config, &self.schema, "schema.toml", &self.train, options).unwrap()
    }
}

/// The item ids of each behaviour (`S = 3`: item, cat, genre per behaviour).
fn behaviour_items(b: &ModelBatch) -> Vec<u32> {
    tim(&b.features[3])
        .behaviours
        .iter()
        .step_by(3)
        .copied()
        .collect()
}

#[test]
fn a_seeded_map_encodes_as_the_counted_vocabulary_with_capacity_plus_one_rows() {
    let d = dir("dyn-seed");
    let schema = Schema::parse(FLAT_SCHEMA, "schema.toml").unwrap();
    let train = write(&d, "train.tsv", FLAT_TRAIN);
    let eval = read_all(&write(&d, "eval.tsv", FLAT_EVAL), &schema);
    let fit = |c: &ModelConfig| {
        Encoder::fit_file(c, &schema, "schema.toml", &train, ReadOptions::default()).unwrap()
    };
    let counted = fit(&flat_config(""));
    let dynamic = fit(&flat_config("capacity = 10"));
    assert_eq!((counted.table_rows(0), dynamic.table_rows(0)), (4, 11));
    let (a, b) = (counted.encode(&eval, "e"), dynamic.encode(&eval, "e"));
    assert_eq!(a.unwrap(), b.unwrap());
    assert!(dynamic.has_dynamic_ids() && !counted.has_dynamic_ids());
    // Capacity 2 keeps the two most frequent ids: a (twice), then b before c by bytes.
    let small = fit(&flat_config("capacity = 2"));
    let v = small.vocabulary(0).unwrap();
    assert_eq!(
        (v.row("a"), v.row("b"), v.row("c"), v.rows()),
        (1, 2, OOV_ROW, 3)
    );
    fs::remove_dir_all(d).unwrap();
}

#[test]
fn observe_admits_new_ids_and_the_encoded_rows_and_behaviours_follow_the_map() {
    let f = fixture("dyn-observe");
    let mut e = f.fit(&dynamic_seq(4, 1));
    // Training: i1, i2, i3 → 1, 2, 3 (last seen at step 0); row 4 free.
    let before = e.encode(&f.new_items, "new.tsv").unwrap();
    assert_eq!(ids(&before.features[0]).1, [OOV_ROW, OOV_ROW, OOV_ROW]);
    let fresh = e.observe(&f.new_items, "new.tsv", 1).unwrap();
    // i7 takes free row 4; i8 evicts i1 (least recently seen, lowest row); i7 again is mapped.
    assert_eq!(
        fresh,
        [FreshRows {
            feature: 0,
            rows: vec![4, 1]
        }]
    );
    let b = e.encode(&f.new_items, "new.tsv").unwrap();
    assert_eq!(ids(&b.features[0]).1, [4, 1, 4]);
    assert_eq!(
        tim(&b.features[3])
            .target
            .iter()
            .step_by(3)
            .copied()
            .collect::<Vec<_>>(),
        [4, 1, 4]
    );
    // Behaviours read the live map: i1 was evicted, i7 is 4, i8 is 1.
    assert_eq!(behaviour_items(&b), [OOV_ROW, 4, 4, 1, 1]);
    let stats = e.id_map_stats();
    assert_eq!(stats.len(), 1);
    let s = &stats[0];
    assert_eq!(
        (s.feature, s.name.as_str(), s.live, s.capacity, s.pending),
        (0, "item", 4, 4, 0)
    );
    let c = s.counters;
    assert_eq!(
        (c.admitted, c.evicted, c.lookups, c.oov_lookups),
        (2, 1, 3, 0)
    );
    // Nothing new at the next step; and with admit_after 2, only i7 (seen twice) is admitted.
    assert_eq!(e.observe(&f.new_items, "new.tsv", 2).unwrap(), []);
    // Only the rows asked for count: row 1 alone, i8, takes the free row 4.
    let mut some = f.fit(&dynamic_seq(4, 1));
    let fresh = some.observe_rows(&f.new_items, "new.tsv", &[1], 1).unwrap();
    assert_eq!(
        fresh,
        [FreshRows {
            feature: 0,
            rows: vec![4]
        }]
    );
    assert_eq!(some.id_map_stats()[0].counters.lookups, 1);
    let past = some
        .observe_rows(&f.new_items, "new.tsv", &[3], 1)
        .unwrap_err();
    assert!(
        past.to_string().contains("row 3 of a batch of 3 rows"),
        "{past}"
    );
    let mut twice = f.fit(&dynamic_seq(4, 2));
    let fresh = twice.observe(&f.new_items, "new.tsv", 1).unwrap();
    assert_eq!(
        fresh,
        [FreshRows {
            feature: 0,
            rows: vec![4]
        }]
    );
    assert_eq!(twice.id_map_stats()[0].counters.oov_lookups, 2);
    fs::remove_dir_all(f.d).unwrap();
}

#[test]
fn a_step_that_goes_back_is_an_error_and_changes_no_map() {
    let f = fixture("dyn-step");
    let mut e = f.fit(&dynamic_seq(4, 1));
    e.observe(&f.new_items, "new.tsv", 5).unwrap();
    let state = e.online_state().unwrap();
    let err = e
        .observe(&f.new_items, "new.tsv", 4)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("new.tsv") && err.contains("step 4 is before step 5"),
        "{err}"
    );
    assert_eq!(e.online_state().unwrap(), state);
    let mut unfitted = Encoder::new(&dynamic_seq(4, 1), &f.schema, "schema.toml").unwrap();
    assert!(unfitted.observe(&f.new_items, "new.tsv", 0).is_err());
    fs::remove_dir_all(f.d).unwrap();
}

#[test]
fn an_encoder_with_a_dynamic_map_saves_and_loads_it_intact() {
    let f = fixture("dyn-save");
    let config = dynamic_seq(4, 2);
    let mut e = f.fit(&config);
    e.observe(&f.new_items, "new.tsv", 3).unwrap();
    let out = f.d.join("encoder");
    e.save(&out).unwrap();
    let saved = fs::read_to_string(out.join("vocab-0.json")).unwrap();
    assert!(saved.contains("\"kind\":\"dynamic\""), "{saved}");
    let back = Encoder::load(&out, &config, &f.schema, "schema.toml").unwrap();
    assert_eq!(back.vocabulary(0), e.vocabulary(0));
    assert_eq!(back.online_state().unwrap(), e.online_state().unwrap());
    let batch = &f.new_items;
    assert_eq!(
        back.encode(batch, "n").unwrap(),
        e.encode(batch, "n").unwrap()
    );
    // Another capacity, or none, is not this model's map.
    let err = |c: &ModelConfig| {
        let e = Encoder::load(&out, c, &f.schema, "schema.toml").unwrap_err();
        short(e, &f.d)
    };
    let other = err(&dynamic_seq(5, 2));
    assert!(
        other.contains("[features[0]]") && other.contains("does not match"),
        "{other}"
    );
    let counted = err(&seq_config("{ by = \"position\" }", ""));
    assert!(counted.contains("the saved id map"), "{counted}");
    fs::remove_dir_all(f.d).unwrap();
}

#[test]
fn the_online_state_restores_the_maps_and_a_bad_one_is_refused() {
    let f = fixture("dyn-restore");
    let mut e = f.fit(&dynamic_seq(4, 1));
    e.observe(&f.new_items, "new.tsv", 1).unwrap();
    let state = e.online_state().unwrap();
    let mut resumed = f.fit(&dynamic_seq(4, 1));
    resumed
        .restore_online_state(&state, Path::new("ck"))
        .unwrap();
    assert_eq!(resumed.online_state().unwrap(), state);
    // Both continue identically.
    let (a, b) = (
        e.observe(&f.new_items, "n", 2),
        resumed.observe(&f.new_items, "n", 2),
    );
    assert_eq!(a.unwrap(), b.unwrap());
    assert_eq!(resumed.online_state().unwrap(), e.online_state().unwrap());

    let refused = |config: &ModelConfig, json: &str| {
        let mut target = f.fit(config);
        let before = target.online_state().unwrap();
        let err = target
            .restore_online_state(json, Path::new("ck"))
            .unwrap_err();
        assert_eq!(target.online_state().unwrap(), before, "nothing restored");
        err.to_string()
    };
    let e1 = refused(&dynamic_seq(5, 1), &state);
    assert!(
        e1.contains("ck") && e1.contains("id_maps.maps[0].state.options"),
        "{e1}"
    );
    let e2 = refused(&dynamic_seq(4, 1), "{}");
    assert!(
        e2.contains("[id_maps]") && e2.contains("not the id maps' state"),
        "{e2}"
    );
    let bad_row = state.replacen("\"row\":1,", "\"row\":9,", 1);
    assert_ne!(bad_row, state);
    let e3 = refused(&dynamic_seq(4, 1), &bad_row);
    assert!(e3.contains("id_maps.maps[0].state.owned[0].row"), "{e3}");
    let counted = refused(&seq_config("{ by = \"position\" }", ""), &state);
    assert!(counted.contains("id_maps.maps"), "{counted}");
    fs::remove_dir_all(f.d).unwrap();
}
