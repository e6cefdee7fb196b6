//! A dynamic [`Vocabulary`]: the map behind the vocabulary API, saved and loaded with its full
//! state, the documented file format, and bad files refused naming the file and key.

use std::path::PathBuf;

use super::*;
use crate::data::Vocabulary;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wgrec-idmap-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn options() -> IdMapOptions {
    IdMapOptions {
        capacity: 3,
        admit_after: 2,
        expire_after: 4,
    }
}

#[test]
fn a_dynamic_vocabulary_reads_its_map_and_round_trips_through_its_file() {
    let d = scratch("vocab");
    let mut v = Vocabulary::dynamic(IdMap::from_fitted(options(), ["x", "y"]).unwrap());
    let map = v.id_map_mut().unwrap();
    for (id, step) in [("n", 1), ("p", 1), ("n", 2)] {
        map.observe(id, step).unwrap();
    }
    assert_eq!((v.rows(), v.is_hashed()), (4, false));
    assert_eq!((v.row("x"), v.row("n"), v.row("p")), (1, 3, OOV_ROW));
    assert_eq!(
        (v.token(3), v.token(0), v.token(9)),
        (Some("n"), None, None)
    );
    let path = d.join("vocab-0.json");
    v.save(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"kind\":\"dynamic\",\"state\":"), "{text}");
    let back = Vocabulary::load(&path).unwrap();
    assert_eq!(back, v);
    assert_eq!(back.id_map().unwrap().pending(), 1);
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn the_documented_dynamic_vocabulary_file_loads() {
    let doc = include_str!("../../../docs/data.md");
    let line = (doc.lines())
        .find(|l| l.contains("\"kind\":\"dynamic\""))
        .expect("docs/data.md shows a dynamic vocabulary");
    let d = scratch("vocab-doc");
    let path = d.join("v.json");
    std::fs::write(&path, line).unwrap();
    let v = Vocabulary::load(&path).unwrap();
    let map = v.id_map().unwrap();
    assert_eq!(
        (v.rows(), v.row("b"), map.pending(), map.step()),
        (3, 1, 1, 3)
    );
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn bad_dynamic_vocabulary_files_are_errors_naming_the_file_and_key() {
    let d = scratch("vocab-bad");
    let path = d.join("vocab-1.json");
    let v = Vocabulary::dynamic(IdMap::from_fitted(options(), ["x", "y"]).unwrap());
    v.save(&path).unwrap();
    let good = std::fs::read_to_string(&path).unwrap();
    let load = |text: &str| {
        std::fs::write(&path, text).unwrap();
        Vocabulary::load(&path).unwrap_err().to_string()
    };
    let e = load(&good.replace("\"row\":2", "\"row\":7"));
    assert!(
        e.contains("vocab-1.json") && e.contains("state.owned[1].row"),
        "{e}"
    );
    let no_state = load(&(good[..good.find(",\"state\"").unwrap()].to_string() + "}"));
    assert!(no_state.contains("needs a state"), "{no_state}");
    let counted = load(&good.replace("\"dynamic\"", "\"counted\""));
    assert!(
        counted.contains("kind \"counted\" with a state"),
        "{counted}"
    );
    let extra = load(&good.replace("\"kind\"", "\"rows\":4,\"kind\""));
    assert!(extra.contains("no other field"), "{extra}");
    std::fs::remove_dir_all(d).unwrap();
}
