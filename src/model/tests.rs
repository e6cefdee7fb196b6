//! The plan without a GPU: orders, names, offsets and the invariants `check` states.

use super::*;
use crate::kernels::embedding::MnsBase;

pub(super) const MODEL: &str = r#"
[model]
tables = 3
dim = 8
expert_width = 16
experts = [
  { type = "gwpfm", groups = [["user_id"], ["item_id", "genre"]] },
  { type = "dcn", layers = 2 },
  { type = "gwpfm", groups = [["user_id"], ["item_id", "genre"]] },
]
hidden = [32, 8]
combine = "gate"
batch_norm = false

[[feature]]
name = "user_id"
kind = "categorical"

[[feature]]
name = "item_id"
kind = "categorical"

[[feature]]
name = "genre"
kind = "bag"
pooling = "mean"

[[feature]]
name = "age"
kind = "numeric"
radices = [2, 10]

[[feature]]
name = "history"
kind = "sequence"
item = "item_id"
side = ["genre"]
side_columns = ["hist_genre"]
time = { by = "position" }

[[task]]
name = "click"

[[task]]
name = "like"
"#;

pub(super) fn config(text: &str) -> ModelConfig {
    ModelConfig::parse(text, "m.toml").expect("a valid model file")
}

pub(super) fn shapes() -> Vec<FeatureShape> {
    let plain = |rows| FeatureShape {
        rows,
        mns: Vec::new(),
        max_ids: 1,
    };
    let mns = vec![
        MnsBase {
            radix: 2,
            digits: 7,
        },
        MnsBase {
            radix: 10,
            digits: 3,
        },
    ];
    vec![
        plain(101),
        plain(57),
        FeatureShape {
            rows: 19,
            mns: Vec::new(),
            max_ids: 3,
        },
        FeatureShape {
            rows: 44,
            mns,
            max_ids: 1,
        },
        plain(0),
    ]
}

fn plan() -> ModelPlan {
    ModelPlan::new(&config(MODEL), &shapes()).expect("plans")
}

#[test]
fn fields_put_sequences_first_and_groups_gather_equal_experts() {
    let p = plan();
    assert_eq!(p.fields, vec![4, 0, 1, 2, 3]);
    assert_eq!(p.field_of(4), 0);
    assert_eq!(p.field_of(3), 4);
    let tables: Vec<_> = p.groups.iter().map(|g| g.tables.clone()).collect();
    assert_eq!(tables, vec![vec![0, 2], vec![1]], "first appearance order");
    assert_eq!(p.groups[0].width, 16, "GwPFM's two blocks double the width");
    assert_eq!(p.groups[1].width, 8);
    assert_eq!((p.groups[0].slot, p.groups[1].slot), (0, 2));
    let ExpertKind::Pairwise(PairwiseKind::GwPfm { partition, .. }) = &p.groups[0].expert else {
        panic!("group 0 is GwPFM");
    };
    assert_eq!(partition, &vec![0, 0, 1, 1, 0], "fields in field order");
}

#[test]
fn tables_are_named_in_storage_order_with_temporal_tables_beside_their_item() {
    let p = plan();
    assert_eq!(p.tables.len(), 15);
    let names: Vec<&str> = p.tables[..5].iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "emb.0.user_id",
            "emb.0.item_id",
            "emb.0.genre",
            "emb.0.age",
            "emb.0.history.time"
        ]
    );
    let time = &p.tables[9];
    assert_eq!(time.name, "emb.1.history.time");
    assert_eq!(time.owner, Owner::Temporal { item: 6 });
    assert_eq!(p.tables[6].name, "emb.1.item_id");
    assert_eq!(
        (p.tables[6].width, p.tables[5].width),
        (8, 8),
        "table 1 is DCN's"
    );
    assert_eq!(p.tables[10].width, 16);
    assert_eq!(p.table_of(2, 1), 11);
    assert_eq!(p.time_table_of(2, 4), 14);
    assert!(p.tables.iter().all(|t| t.element == Element::F32));
    assert_eq!(p.slabs.len(), 1, "no device: one slab");
    let stored: Vec<usize> = p.slabs[0].tables().collect();
    assert_eq!(stored, (0..15).collect::<Vec<_>>(), "in storage order");
}

#[test]
fn dense_tensors_are_laid_out_in_flat_order_on_four_float_boundaries() {
    let p = plan();
    let names: Vec<&str> = p.dense.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "expert.0.r",
            "expert.1.w",
            "expert.1.b",
            "proj.0.weight",
            "proj.0.bias",
            "proj.1.weight",
            "proj.1.bias",
            "combine.gate.weight",
            "combine.gate.bias",
            "mlp.0.weight",
            "mlp.0.bias",
            "mlp.1.weight",
            "mlp.1.bias",
            "head.weight",
            "head.bias",
        ]
    );
    // GwPFM's R is [tables, blocks²]; DCN's W [tables, layers, D, D] with D = 5 fields · 8.
    assert_eq!(p.dense[0].len, 2 * 4);
    assert_eq!(p.dense[1].len, 2 * 40 * 40);
    let proj = p.dense_param("proj.0.weight").expect("planned");
    assert_eq!(
        proj.shape,
        vec![2, 16, 8],
        "[M_g, W, a pairwise expert's out = dim]"
    );
    assert_eq!(
        p.dense_param("head.weight").expect("head").shape,
        vec![2, 8]
    );
    let mut end = 0;
    for d in &p.dense {
        assert_eq!(d.offset % 4, 0, "{}", d.name);
        assert!(d.offset >= end && d.offset < end + 4, "{} packed", d.name);
        end = d.offset + d.len;
    }
    assert_eq!(p.dense_len(), end.next_multiple_of(4));
    let init = |n: &str| p.dense_param(n).expect(n).init;
    assert_eq!(init("expert.1.w"), Init::ByExpert);
    assert_eq!(init("mlp.1.bias"), Init::Zeros);
    assert_eq!(
        init("mlp.1.weight"),
        Init::Xavier {
            fan_in: 32,
            fan_out: 8
        }
    );
    assert_eq!(
        init("proj.1.weight"),
        Init::Xavier {
            fan_in: 40,
            fan_out: 16
        }
    );
}

#[test]
fn batch_norm_owns_gamma_and_beta_and_drops_the_projection_bias() {
    let text = (MODEL.replace("batch_norm = false", "batch_norm = true"))
        .replace("combine = \"gate\"\n", "");
    let p = ModelPlan::new(&config(&text), &shapes()).expect("plans");
    assert!(p.dense_param("proj.0.bias").is_none());
    let gamma = p.dense_param("proj.bn.weight").expect("γ");
    assert_eq!(
        (gamma.owner.clone(), gamma.init),
        (ParamOwner::BatchNorm, Init::Ones)
    );
    assert_eq!(p.dense_param("proj.bn.bias").expect("β").init, Init::Zeros);
    assert_eq!(p.towers[0].input, 16, "mean combine: W");
}

#[test]
fn check_refuses_a_table_outside_or_in_two_slabs() {
    let mut p = plan();
    p.slabs[0].parts.pop();
    let e = p.check().expect_err("a table in no slab").to_string();
    assert!(
        e.contains("emb.2.history.time: the slabs hold rows 0..0 of"),
        "{e}"
    );
    let mut p = plan();
    p.slabs.push(SlabPlan {
        name: "second".into(),
        element: Element::F32,
        parts: vec![PartPlan {
            table: 3,
            rows: 0..p.tables[3].rows,
        }],
    });
    let e = p.check().expect_err("a table in two slabs").to_string();
    assert!(e.contains("emb.0.age: slab 1 holds rows 0..44"), "{e}");
}

#[test]
fn check_keeps_a_temporal_table_beside_its_item() {
    let mut p = plan();
    p.tables[9].owner = Owner::Temporal { item: 1 };
    let e = p.check().expect_err("another table's item").to_string();
    assert!(e.contains("emb.1.history.time must live beside"), "{e}");
}

#[test]
fn check_refuses_routes_to_unread_sets_and_unscored_tasks() {
    let mut p = plan();
    p.routes.push(Route {
        tower: 0,
        set: 1,
        mode: RouteMode::StopGradient,
    });
    let e = p
        .check()
        .expect_err("route to a set the tower does not read")
        .to_string();
    assert!(
        e.contains("route 1 targets set 1 that tower 0 does not read"),
        "{e}"
    );
    let mut p = plan();
    p.routes[0].tower = 3;
    assert!(p
        .check()
        .expect_err("no tower 3")
        .to_string()
        .contains("tower 3"));
    let mut p = plan();
    p.heads[0].outputs = vec![0];
    let e = p.check().expect_err("task 1 unscored").to_string();
    assert!(e.contains("output 1 is scored by 0 heads"), "{e}");
}

#[test]
fn check_refuses_overlapping_dense_tensors() {
    let mut p = plan();
    p.dense[4].offset = p.dense[3].offset;
    let e = p.check().expect_err("overlap").to_string();
    assert!(e.contains("proj.0.bias at offset"), "{e}");
}

#[test]
fn wrong_shapes_are_refused_naming_the_feature() {
    let c = config(MODEL);
    let e = ModelPlan::new(&c, &shapes()[..4])
        .expect_err("4 of 5")
        .to_string();
    assert!(e.contains("4 feature shapes for 5 features"), "{e}");
    let mut s = shapes();
    s[2].rows = 0;
    let e = ModelPlan::new(&c, &s).expect_err("0 rows").to_string();
    assert!(e.contains("feature \"genre\" has a table of 0 rows"), "{e}");
}

#[test]
fn describe_comes_from_the_plan() {
    let d = plan().describe(64);
    assert_eq!(d["batch"], 64);
    assert_eq!(d["fields"], serde_json::json!([4, 0, 1, 2, 3]));
    assert_eq!(d["tables"][4]["name"], "emb.0.history.time");
    assert_eq!(d["groups"][0]["width"], 16);
    assert_eq!(d["groups"][0]["expert"]["groups"], 2);
    assert_eq!(d["groups"][1]["expert"]["type"], "dcn");
    assert_eq!(
        d["features"][3]["mns"],
        serde_json::json!([[2, 7], [10, 3]])
    );
    assert_eq!(d["combine"], "gate");
    assert_eq!(d["tasks"][1]["name"], "like");
}
