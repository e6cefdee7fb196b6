//! A multi-scenario STEM model end to end: each (task, scenario) trains its own tower on its own
//! scenario's rows, the metrics come per task (pooled over the scenarios) and per output, and a
//! scenario value the model does not know is an error naming file, line and column.

use crate::{last_json, lcg, ok, temp, wgrec, TWO_TASK_MODEL};

/// The two-task model of `tests/cli.rs` as a STEM model with two scenarios.
fn scenario_model() -> String {
    TWO_TASK_MODEL.replace(
        "[model]\n",
        "[model]\narchitecture = \"stem\"\nscenario = \"page\"\nscenarios = [\"home\", \"search\"]\n",
    )
}

/// A CSV split of `rows` rows (page, click, buy, user, item); the page alternates, and the
/// second page reverses the item's effect on click.
fn split(rows: usize, seed: u64, page: &dyn Fn(usize) -> &'static str) -> String {
    let mut next = lcg(seed);
    let mut text = String::from("page,click,buy,user,item\n");
    for i in 0..rows {
        let (user, item) = (next() % 12, next() % 20);
        let p = if page(i) == "home" {
            item % 4
        } else {
            3 - item % 4
        };
        let click = (next() % 4 < p) as u8;
        let buy = (next() % 4 < (user % 4).min(2) + click as u64) as u8;
        text.push_str(&format!("{},{click},{buy},u{user},i{item}\n", page(i)));
    }
    text
}

fn write_data(dir: &std::path::Path, valid_page: &dyn Fn(usize) -> &'static str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("schema.toml"),
        "delimiter = \",\"\ncolumns = \"categorical:page, label:click, label:buy, \
         categorical:user, categorical:item\"\n",
    )
    .unwrap();
    let alternate = |i: usize| {
        if i.is_multiple_of(2) {
            "home"
        } else {
            "search"
        }
    };
    std::fs::write(dir.join("train.csv"), split(600, 1, &alternate)).unwrap();
    std::fs::write(dir.join("valid.csv"), split(150, 2, valid_page)).unwrap();
    std::fs::write(dir.join("test.csv"), split(150, 3, &alternate)).unwrap();
}

#[test]
fn a_scenario_model_trains_a_tower_per_task_and_scenario_and_reports_both_levels() {
    let dir = temp("scenarios");
    let data = dir.join("data");
    write_data(&data, &|i| {
        if i.is_multiple_of(2) {
            "home"
        } else {
            "search"
        }
    });
    let model = dir.join("model.toml");
    std::fs::write(&model, scenario_model()).unwrap();
    let run = dir.join("run");
    let out = wgrec()
        .args(["train", "--json", "--config"])
        .arg(&model)
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&run)
        .output()
        .expect("run");
    let report = last_json(&ok(&out));
    let rows = &report["test_rows"];
    // Every test row once per task overall, and each scenario's half in its own outputs.
    for (name, want) in [
        ("click", 150),
        ("buy", 150),
        ("click@home", 75),
        ("click@search", 75),
        ("buy@home", 75),
        ("buy@search", 75),
    ] {
        assert_eq!(rows[name], want, "{name}: {report}");
        let auc = &report["test_auc"][name];
        assert!(auc.as_f64().is_some_and(f64::is_finite), "{name}: {report}");
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("click@home: auc"), "{stderr}");
    // predict writes one probability per output.
    let predictions = dir.join("p.tsv");
    ok(&wgrec()
        .args(["predict", "--checkpoint"])
        .arg(&run)
        .arg("--input")
        .arg(data.join("test.csv"))
        .arg("--output")
        .arg(&predictions)
        .output()
        .expect("run"));
    let text = std::fs::read_to_string(&predictions).unwrap();
    assert_eq!(
        text.lines().next(),
        Some("p_click@home\tp_click@search\tp_buy@home\tp_buy@search")
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_unknown_scenario_value_names_file_line_and_column() {
    let dir = temp("scenarios-unknown");
    let data = dir.join("data");
    write_data(&data, &|i| if i == 7 { "cart" } else { "home" });
    let model = dir.join("model.toml");
    std::fs::write(&model, scenario_model()).unwrap();
    let out = wgrec()
        .args(["train", "--config"])
        .arg(&model)
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(dir.join("run"))
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("valid.csv:9:")
            && stderr.contains("\"page\"")
            && stderr.contains("\"cart\" is not one of model.scenarios"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}
