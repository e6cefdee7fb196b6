//! `wgrec pretrain graphsage` end to end: embedding files and pretrain.json from a data folder,
//! bit-identical for one seed, string ids as text, `--extra` adding a domain's edges, and bad input
//! as an error naming the column (never a panic).

use std::path::Path;

use wgrec::data::EmbeddingTable;

use crate::{last_json, lcg, ok, temp, wgrec};

/// A data folder of `rows` rows (click, love, age, user, item): 4 communities, most clicks inside
/// one (user % 4 == item % 4); ids spelt `{prefix}{n}`.
fn write_data(dir: &Path, rows: usize, seed: u64, prefix: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("schema.toml"),
        "delimiter = \",\"\ncolumns = \"label:click, label:love, numeric:age, categorical:user, categorical:item\"\n",
    )
    .unwrap();
    let mut next = lcg(seed);
    let mut text = String::from("click,love,age,user,item\n");
    for _ in 0..rows {
        let (user, item) = (next() % 40, next() % 24);
        let click = (user % 4 == item % 4 || next().is_multiple_of(8)) as u8;
        text.push_str(&format!(
            "{click},0,{},{prefix}{user},{prefix}{item}\n",
            user % 50
        ));
    }
    for split in ["train", "valid", "test"] {
        std::fs::write(dir.join(format!("{split}.csv")), &text).unwrap();
    }
}

/// Runs the command with the flags of `extra` (flag, value) added, or replacing the default's.
fn pretrain(data: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let (data, out) = (data.to_str().unwrap(), out.to_str().unwrap());
    let mut flags = vec![
        ["--data", data],
        ["--user", "user"],
        ["--item", "item"],
        ["--dim", "8"],
        ["--epochs", "2"],
        ["--batch", "64"],
        ["--out", out],
    ];
    for pair in extra.chunks(2) {
        match flags.iter_mut().find(|f| f[0] == pair[0]) {
            Some(f) => f[1] = pair[1],
            None => flags.push([pair[0], pair[1]]),
        }
    }
    let mut args = vec!["pretrain", "graphsage", "--json"];
    args.extend(flags.iter().flatten());
    wgrec().args(&args).output().expect("run wgrec")
}

#[test]
fn pretrain_graphsage_writes_embeddings_and_one_seed_gives_the_same_bytes() {
    let dir = temp("pretrain-files");
    let data = dir.join("data");
    write_data(&data, 900, 1, "");
    let stdout = ok(&pretrain(&data, &dir.join("a"), &[]));
    ok(&pretrain(&data, &dir.join("b"), &[]));
    for file in ["users.safetensors", "items.safetensors"] {
        let a = std::fs::read(dir.join("a").join(file)).unwrap();
        assert_eq!(
            a,
            std::fs::read(dir.join("b").join(file)).unwrap(),
            "{file} differs"
        );
    }
    let users = EmbeddingTable::read(&dir.join("a/users.safetensors")).unwrap();
    assert_eq!((users.len(), users.dim), (40, 8));
    let items = EmbeddingTable::read(&dir.join("a/items.safetensors")).unwrap();
    assert_eq!(items.len(), 24);
    let json = last_json(&stdout);
    let epochs = json["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 2);
    // Plumbing, not quality (kernels_tests/graphsage.rs measures that on a planted graph): ~20
    // held-out pairs after 8 steps make a noisy AUC, so only its range and the loss's fall count.
    for e in epochs {
        assert!((0.0..=1.0).contains(&e["auc"].as_f64().unwrap()), "{e}");
        assert!(e["edges_per_sec"].as_f64().unwrap() > 0.0);
    }
    let loss = |k: usize| epochs[k]["loss"].as_f64().unwrap();
    assert!(loss(1).is_finite() && loss(1) < loss(0), "{epochs:?}");
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("a/pretrain.json")).unwrap())
            .unwrap();
    assert_eq!(file, json);
    assert_eq!(json["config"]["fanout_first"], 10);
}

#[test]
fn string_ids_are_written_as_text_and_extra_folders_add_edges() {
    let dir = temp("pretrain-extra");
    let (data, other) = (dir.join("data"), dir.join("other"));
    write_data(&data, 400, 2, "u");
    write_data(&other, 400, 3, "v");
    let alone = last_json(&ok(&pretrain(&data, &dir.join("a"), &[])));
    let extra = other.to_str().unwrap();
    let both = last_json(&ok(&pretrain(&data, &dir.join("b"), &["--extra", extra])));
    assert!(dir.join("b/users.tsv").is_file() && dir.join("b/items.tsv").is_file());
    let users = EmbeddingTable::read(&dir.join("b/users.tsv")).unwrap();
    // Users with a click in either folder; `u7` and `v7` are different users.
    assert!(users.len() > 40, "{} users", users.len());
    assert!(
        users.ids.iter().any(|i| i.starts_with('u'))
            && users.ids.iter().any(|i| i.starts_with('v'))
    );
    let edges = |j: &serde_json::Value| {
        j["train_edges"].as_u64().unwrap() + j["held_out_edges"].as_u64().unwrap()
    };
    assert!(edges(&both) > edges(&alone));
}

fn fails_naming(out: std::process::Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for n in needles {
        assert!(stderr.contains(n), "missing {n:?} in: {stderr}");
    }
}

#[test]
fn bad_columns_labels_and_empty_edge_sets_are_errors_naming_them() {
    let dir = temp("pretrain-bad");
    let data = dir.join("data");
    write_data(&data, 50, 4, "");
    let out = dir.join("out");
    fails_naming(
        pretrain(&data, &out, &["--user", "visitor"]),
        &["--user", "\"visitor\"", "no such column"],
    );
    fails_naming(
        pretrain(&data, &out, &["--label", "age"]),
        &["--label", "\"age\"", "label"],
    );
    // `love` is 0 on every row: no positive edge.
    fails_naming(
        pretrain(&data, &out, &["--label", "love"]),
        &["edge set is empty"],
    );
    fails_naming(
        pretrain(&data, &out, &["--dim", "6"]),
        &["--dim", "multiple of 4"],
    );
    fails_naming(pretrain(&data, &out, &["--fanouts", "10"]), &["--fanouts"]);
    std::fs::write(
        data.join("train.csv"),
        "click,love,age,user,item\n2,0,1,a,b\n",
    )
    .unwrap();
    fails_naming(
        pretrain(&data, &out, &[]),
        &["train.csv:2", "column 1 \"click\"", "not 0 or 1"],
    );
}
