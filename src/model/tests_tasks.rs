//! Multi-task plans without a GPU: the sets, towers, routes and mix flags of each architecture,
//! the asymmetric widths of AME, and the config errors that guard them.

use super::tests::{config, shapes, MODEL};
use super::*;

/// The test model with `architecture` (and extra `[model]` lines), the gate combine dropped.
fn with(architecture: &str, extra: &str) -> String {
    MODEL.replace("combine = \"gate\"\n", "").replace(
        "[model]\n",
        &format!("[model]\narchitecture = \"{architecture}\"\n{extra}"),
    )
}

fn plan_of(text: &str) -> ModelPlan {
    ModelPlan::new(&config(text), &shapes()).expect("a valid plan")
}

#[test]
fn stem_has_a_set_per_task_and_stops_the_gradient_between_tasks() {
    let p = plan_of(&with("stem", ""));
    let names: Vec<&str> = p.sets.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["shared", "click", "like"]);
    assert_eq!(p.n_tables(), 9, "3 tables per set × 3 sets");
    assert_eq!(p.sets[2].tables, [6, 7, 8]);
    assert_eq!(p.towers.len(), 2);
    assert_eq!(p.heads[1].outputs, [1]);
    // Tower 0 (click): shared and its own train, like's set under stop-gradient.
    let modes: Vec<(usize, RouteMode)> = (p.routes.iter())
        .filter(|r| r.tower == 0)
        .map(|r| (r.set, r.mode))
        .collect();
    assert_eq!(
        modes,
        [
            (0, RouteMode::Train),
            (1, RouteMode::Train),
            (2, RouteMode::StopGradient)
        ]
    );
    let flags = p.mix_routes();
    let e = p.n_tables() as usize;
    for m in 0..p.n_tables() {
        let slot = p.slot_of(m) as usize;
        let (click, like) = (flags[slot], flags[e + slot]);
        match p.set_of(m) {
            0 => assert_eq!(
                (click, like),
                (PRESENT | TRAIN | READ, PRESENT | TRAIN | READ)
            ),
            1 => assert_eq!((click, like), (PRESENT | TRAIN | READ, PRESENT)),
            _ => assert_eq!((click, like), (PRESENT, PRESENT | TRAIN | READ)),
        }
    }
    // Checkpoint names cover every set's tables; the gates and towers are batched per tower.
    assert!(p.tables.iter().any(|t| t.name == "emb.8.user_id"));
    assert_eq!(p.dense_param("gate.weight").unwrap().shape, [2, 9, 9 * 16]);
    assert_eq!(p.dense_param("tower.0.weight").unwrap().shape, [2, 32, 16]);
    assert_eq!(p.dense_param("tower.head.weight").unwrap().shape, [2, 1, 8]);
    assert!(p.dense_param("head.weight").is_none());
}

#[test]
fn ple_leaves_other_tasks_experts_out_and_shared_mmoe_ame_share_one_set() {
    let p = plan_of(&with("ple", ""));
    let flags = p.mix_routes();
    let e = p.n_tables() as usize;
    let like_set = (p
        .tables
        .iter()
        .map(|t| t.table)
        .filter(|&m| p.set_of(m) == 2))
    .map(|m| p.slot_of(m) as usize);
    for slot in like_set {
        assert_eq!(flags[slot], 0, "click's gate does not see like's experts");
        assert_eq!(flags[e + slot], PRESENT | TRAIN | READ);
    }
    for arch in ["shared", "mmoe"] {
        let p = plan_of(&with(arch, ""));
        assert_eq!(p.sets.len(), 1, "{arch}");
        assert!(p.mix_routes().iter().all(|&f| f == PRESENT | TRAIN | READ));
        assert_eq!(p.dense_param("gate.weight").is_some(), arch == "mmoe");
    }
    let p = plan_of(&with("ame", "dims = [8, 16, 8]\n"));
    let dims: Vec<(u32, Vec<u32>)> = p.groups.iter().map(|g| (g.dim, g.tables.clone())).collect();
    // Tables 0 and 2 share an expert kind and a width; table 1 is its own group either way.
    assert_eq!(dims, [(8, vec![0, 2]), (16, vec![1])]);
    let widths: Vec<u32> = (p.tables.iter().filter(|t| t.feature == 0))
        .map(|t| t.width)
        .collect();
    assert_eq!(
        widths,
        [16, 16, 16],
        "GwPFM's two blocks of 8, DCN's 16, GwPFM's 2 × 8"
    );
}

#[test]
fn an_auxiliary_task_reads_only_its_own_set_and_enters_the_main_gate_under_stop_gradient() {
    let text = with("stem", "").replace(
        "[[task]]\nname = \"like\"\n",
        "[[task]]\nname = \"like\"\nauxiliary = true\n",
    );
    let p = plan_of(&text);
    let like: Vec<(usize, RouteMode)> = (p.routes.iter())
        .filter(|r| r.tower == 1)
        .map(|r| (r.set, r.mode))
        .collect();
    assert_eq!(like, [(2, RouteMode::Train)]);
    let click_on_like = (p.routes.iter())
        .find(|r| r.tower == 0 && r.set == 2)
        .map(|r| r.mode);
    assert_eq!(click_on_like, Some(RouteMode::StopGradient));
}

#[test]
fn the_config_refuses_what_makes_no_multitask_model() {
    let err = |text: &str| {
        ModelConfig::parse(text, "m.toml")
            .expect_err("refused")
            .to_string()
    };
    let e = err(&with("ame", ""));
    assert!(e.contains("model.dims") && e.contains("ame"), "{e}");
    let e = err(&with("mmoe", "dims = [8, 8]\n"));
    assert!(e.contains("2 widths for 3 tables"), "{e}");
    let e = err(&with("mmoe", "dims = [8, 6, 8]\n"));
    assert!(
        e.contains("model.dims") && e.contains("multiple of 4"),
        "{e}"
    );
    let e = err(&MODEL.replace("[model]\n", "[model]\narchitecture = \"stem\"\n"));
    assert!(e.contains("model.combine"), "{e}");
    let e = err(&MODEL.replace(
        "[[task]]\nname = \"like\"\n",
        "[[task]]\nname = \"like\"\nauxiliary = true\n",
    ));
    assert!(e.contains("task[1].auxiliary"), "{e}");
    let (head, rest) = MODEL.split_once("experts = [").unwrap();
    let one_expert = format!(
        "{head}experts = [{{ type = \"dcn\", layers = 1 }}]\n{}",
        &rest[rest.find("hidden").unwrap()..]
    );
    let text = one_expert
        .replace("combine = \"gate\"\n", "")
        .replace("[model]\n", "[model]\narchitecture = \"stem\"\n")
        .replace("tables = 3", "tables = 30");
    let e = err(&text);
    assert!(e.contains("at most 64"), "{e}");
}

#[test]
fn scenarios_own_the_sets_and_every_task_gets_a_tower_per_scenario() {
    let text = with(
        "stem",
        "scenario = \"page\"\nscenarios = [\"home\", \"search\"]\n",
    );
    let p = plan_of(&text);
    let names: Vec<&str> = p.sets.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["shared", "home", "search"]);
    let outputs: Vec<String> = p.config.outputs().into_iter().map(|o| o.name).collect();
    assert_eq!(
        outputs,
        ["click@home", "click@search", "like@home", "like@search"]
    );
    assert_eq!(p.towers.len(), 4);
    // like@search (output 3): the shared and search sets train, home's is stop-gradient.
    let modes: Vec<(usize, RouteMode)> = (p.routes.iter())
        .filter(|r| r.tower == 3)
        .map(|r| (r.set, r.mode))
        .collect();
    assert_eq!(
        modes,
        [
            (0, RouteMode::Train),
            (1, RouteMode::StopGradient),
            (2, RouteMode::Train)
        ]
    );
    let p = plan_of(&with(
        "mmoe",
        "scenario = \"page\"\nscenarios = [\"home\", \"search\"]\n",
    ));
    assert_eq!((p.sets.len(), p.towers.len()), (1, 4));
}

#[test]
fn the_config_refuses_half_given_or_repeated_scenarios() {
    let err = |text: &str| {
        ModelConfig::parse(text, "m.toml")
            .expect_err("refused")
            .to_string()
    };
    let e = err(&with("stem", "scenario = \"page\"\n"));
    assert!(e.contains("model.scenarios"), "{e}");
    let e = err(&with("stem", "scenarios = [\"a\"]\n"));
    assert!(e.contains("model.scenario:"), "{e}");
    let e = err(&with(
        "stem",
        "scenario = \"page\"\nscenarios = [\"a\", \"a\"]\n",
    ));
    assert!(e.contains("model.scenarios[1]"), "{e}");
    let single = MODEL.replace(
        "[model]\n",
        "[model]\nscenario = \"page\"\nscenarios = [\"a\"]\n",
    );
    let e = err(&single);
    assert!(e.contains("multi-task architecture"), "{e}");
}
