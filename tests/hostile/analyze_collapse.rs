//! `wgrec analyze`'s collapse section through the binary: on a small trained run, a report whose
//! numbers obey what IA means; with a NaN planted in an embedding row the data uses, a refusal
//! naming the tensor (the eigensolver must never see it).

use std::path::Path;

use crate::common::{finished_run, model_file, ok, refused, synth_data, temp, wgrec, SMALL_MODEL};

fn analyze(run: &Path, out: &Path) -> std::process::Output {
    wgrec()
        .args(["analyze", "--json", "--checkpoint"])
        .arg(run)
        .arg("--out")
        .arg(out)
        .output()
        .expect("run")
}

#[test]
fn analyze_collapse_reports_bounded_ia_per_field_and_table_with_both_figures() {
    let dir = temp("collapse-ok");
    let data = synth_data(&dir, 600);
    let run = finished_run(
        &model_file(&dir, "m.toml", SMALL_MODEL),
        &data,
        &dir.join("run"),
    );
    let out = dir.join("report");
    let report: serde_json::Value =
        serde_json::from_str(ok(&analyze(&run, &out)).trim()).expect("json");
    let c = &report["collapse"];
    let names: Vec<&str> = (c["fields"].as_array().expect("fields").iter())
        .map(|f| f["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["user_id", "item_id", "n0", "history.time"], "{c}");
    let tables = c["tables"].as_array().expect("tables");
    assert_eq!(tables.len(), 2);
    for f in c["fields"].as_array().expect("fields") {
        let rows = f["rows_used"].as_u64().expect("rows_used") as f64;
        assert!(rows >= 1.0, "{f}");
        for (m, t) in f["tables"].as_array().expect("tables").iter().enumerate() {
            let width = tables[m]["width"].as_u64().expect("width") as f64;
            let ia = t["ia"].as_f64().expect("ia");
            // IA ∈ [1, min(rows, width)]; the f32 Gram's noise floor (≲ 4e-3 σ₁ per value, module
            // docs) may lift it by at most width · 4e-3 above the rank.
            assert!(
                ia >= 1.0 - 1e-9 && ia <= rows.min(width) + width * 4e-3,
                "{f}"
            );
            let s: Vec<f64> = (t["spectrum"].as_array().expect("spectrum").iter())
                .map(|x| x.as_f64().expect("number"))
                .collect();
            assert_eq!((s.len(), s[0]), (width as usize, 1.0), "{f}");
            assert!(s.windows(2).all(|w| w[0] >= w[1]), "not descending: {f}");
        }
    }
    // Every sample uses exactly one id of a categorical field.
    let train_rows = c["fields"][0]["uses"].as_u64().expect("uses");
    assert_eq!(c["fields"][1]["uses"].as_u64(), Some(train_rows));
    let md = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    assert!(
        md.contains("## Dimensional collapse") && md.contains("history.time"),
        "{md}"
    );
    for f in [
        "collapse-spectra.png",
        "collapse-spectra.svg",
        "collapse-ia.png",
        "collapse-ia.svg",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
}

/// Overwrites the first float of tensor `name` of the safetensors file at `path` with NaN.
fn poison_tensor(path: &Path, name: &str) {
    let mut bytes = std::fs::read(path).expect("read checkpoint");
    let len = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + len]).expect("json");
    let start = header[name]["data_offsets"][0].as_u64().expect("tensor") as usize + 8 + len;
    bytes[start..start + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(path, bytes).expect("write checkpoint");
}

#[test]
fn analyze_collapse_refuses_a_nan_embedding_naming_the_tensor() {
    let dir = temp("collapse-nan");
    let data = synth_data(&dir, 600);
    let run = finished_run(
        &model_file(&dir, "m.toml", SMALL_MODEL),
        &data,
        &dir.join("run"),
    );
    // Row 0 of the temporal table is bucket 0, which every target reads.
    for file in ["best.safetensors", "last.safetensors"] {
        poison_tensor(&run.join(file), "emb.1.history.time");
    }
    refused(
        &analyze(&run, &dir.join("report")),
        &["emb.1.history.time", "non-finite"],
    );
}
