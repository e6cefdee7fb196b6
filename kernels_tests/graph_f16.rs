//! A whole model with f16 tables (`[model] dtype = "f16"`, issue 19): its checkpoint holds the
//! tables as F16 tensors and their state as F32; saved mid-run, written, read and resumed, it
//! continues bit for bit as the uninterrupted run (with and without stochastic rounding); an f32
//! checkpoint loads into the f16 model rounded to nearest even.

use std::collections::BTreeMap;

use half::f16;
use wgrec::checkpoint::Checkpoint;
use wgrec::config::ModelConfig;
use wgrec::data::encode::ModelBatch;
use wgrec::graph::Graph;
use wgrec::rng::Rng;
use wgrec::Gpu;

use crate::common::gpu;
use crate::graph::{tiny_batch, tiny_shapes, TINY};
use crate::graph_gradcheck::{optimizers, rates};

/// Every tensor as bits (f32 bits; f16 ones widened, tagged by a `:f16` suffix).
type State = BTreeMap<String, Vec<u32>>;

fn config(dtype: &str, train: &str) -> ModelConfig {
    let text = TINY
        .replacen("[model]\n", &format!("[model]\ndtype = \"{dtype}\"\n"), 1)
        .replacen("[train]\n", &format!("[train]\n{train}"), 1);
    ModelConfig::parse(&text, "f16.toml").expect("config")
}

fn graph(gpu: &Gpu, config: &ModelConfig) -> Graph {
    Graph::new(gpu, config, &tiny_shapes(0), 64, 0.0, optimizers(config)).expect("graph")
}

fn checkpoint(gpu: &Gpu, graph: &Graph) -> Checkpoint {
    let mut ckpt = Checkpoint::new();
    graph.save_state(gpu, &mut ckpt).expect("state");
    ckpt
}

fn state(ckpt: &Checkpoint) -> State {
    let f32s = (ckpt.tensors().iter())
        .map(|(k, t)| (k.clone(), t.data.iter().map(|x| x.to_bits()).collect()));
    let f16s = (ckpt.halves().iter()).map(|(k, t)| {
        (
            format!("{k}:f16"),
            t.bits.iter().map(|&b| b as u32).collect(),
        )
    });
    f32s.chain(f16s).collect()
}

fn batches(steps: usize) -> Vec<ModelBatch> {
    let mut rng = Rng::new(5);
    (0..steps).map(|_| tiny_batch(&mut rng, 61, 0)).collect()
}

fn train(gpu: &Gpu, graph: &mut Graph, batches: &[ModelBatch]) {
    for b in batches {
        let prepared = graph.prepare(b).expect("prepare");
        graph
            .train_step(gpu, &prepared, rates(graph))
            .expect("step");
    }
}

/// 5 steps straight, and 3 + save + write + read + resume + 2: the same bits.
fn check_resume(train_keys: &str) -> State {
    resumes_bit_identically(&config("f16", train_keys), train_keys)
}

fn resumes_bit_identically(config: &ModelConfig, train_keys: &str) -> State {
    let gpu = gpu();
    let all = batches(5);
    let mut straight = graph(gpu, config);
    train(gpu, &mut straight, &all);
    let mut first = graph(gpu, config);
    train(gpu, &mut first, &all[..3]);
    let ckpt = checkpoint(gpu, &first);
    drop(first);
    let path = std::env::temp_dir().join(format!("wgrec-f16-resume-{}.st", std::process::id()));
    ckpt.write(&path).expect("write");
    let read = Checkpoint::read(&path).expect("read");
    let _ = std::fs::remove_file(&path);
    let mut resumed = graph(gpu, config);
    resumed.load_state(gpu, &read, false).expect("load");
    train(gpu, &mut resumed, &all[3..]);
    let (a, b) = (
        state(&checkpoint(gpu, &straight)),
        state(&checkpoint(gpu, &resumed)),
    );
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    let differing: Vec<&String> = a.keys().filter(|k| a[*k] != b[*k]).collect();
    assert!(differing.is_empty(), "{train_keys}: {differing:?}");
    a
}

#[test]
fn f16_tables_are_f16_tensors_and_a_resumed_run_is_bit_identical() {
    let nearest = check_resume("");
    let tables: Vec<&String> = nearest.keys().filter(|k| k.ends_with(":f16")).collect();
    assert!(tables.len() >= 8, "every emb.* table is F16: {tables:?}");
    assert!(tables.iter().all(|k| k.starts_with("emb.")), "{tables:?}");
    assert!(
        nearest.contains_key("emb.0.user.state") && !nearest.contains_key("emb.0.user"),
        "the state stays F32, the weights are not F32"
    );
    let stochastic = check_resume("stochastic_rounding = true\n");
    let moved = |k: &&String| nearest[*k] != stochastic[*k];
    assert!(
        tables.iter().any(moved),
        "stochastic rounding rounds some updated rows differently from nearest"
    );
}

/// `user` in f16 (`[[feature]] dtype`), every other table f32: the plan packs the two dtypes into
/// groups of their own, the checkpoint keeps each table's type, and the run resumes bit for bit.
#[test]
fn a_model_of_mixed_dtypes_packs_each_in_its_own_groups_and_resumes_bit_identically() {
    let text = TINY.replacen("name = \"user\"\n", "name = \"user\"\ndtype = \"f16\"\n", 1);
    let config = ModelConfig::parse(&text, "mixed.toml").expect("config");
    let built = graph(gpu(), &config);
    let plan = built.plan();
    let elements: Vec<_> = plan.slabs.iter().map(|s| s.element).collect();
    assert!(
        elements.contains(&wgrec::model::Element::F16)
            && elements.contains(&wgrec::model::Element::F32),
        "{elements:?}"
    );
    for slab in &plan.slabs {
        for t in slab.tables() {
            let table = &plan.tables[t];
            let user = table.name.ends_with(".user");
            assert_eq!(
                user,
                slab.element == wgrec::model::Element::F16,
                "{}",
                table.name
            );
            assert_eq!(table.element, slab.element, "{}", table.name);
        }
    }
    drop(built);
    let state = resumes_bit_identically(&config, "");
    let halves: Vec<&String> = state.keys().filter(|k| k.ends_with(":f16")).collect();
    assert!(
        !halves.is_empty()
            && halves
                .iter()
                .all(|k| k.starts_with("emb.") && k.contains(".user:")),
        "only user's tables are F16: {halves:?}"
    );
    assert!(state.contains_key("emb.0.item"), "item stays F32");
}

#[test]
fn an_f32_checkpoint_loads_into_an_f16_model_rounded_to_nearest() {
    let gpu = gpu();
    let mut full = graph(gpu, &config("f32", ""));
    train(gpu, &mut full, &batches(2));
    let from = checkpoint(gpu, &full);
    let mut half = graph(gpu, &config("f16", ""));
    half.load_state(gpu, &from, false).expect("f32 into f16");
    let to = checkpoint(gpu, &half);
    let mut tables = 0;
    for (name, t) in from.tensors().iter().filter(|(k, _)| is_table(k)) {
        let got = to.tensor_f16(name, &t.shape).expect("an F16 table");
        let want: Vec<u16> = t.data.iter().map(|&x| f16::from_f32(x).to_bits()).collect();
        assert_eq!(got, &want[..], "{name}");
        let state = format!("{name}.state");
        assert_eq!(from.tensors()[&state], to.tensors()[&state], "{state}");
        tables += 1;
    }
    assert!(tables >= 8, "{tables} tables compared");
}

/// `emb.{m}.{feature}` or `emb.{m}.{feature}.time`, not a `.state`.
fn is_table(name: &str) -> bool {
    name.starts_with("emb.") && !name.ends_with(".state")
}

/// A table of 150,000 rows spans three of the checkpoint's 2^16-row blocks: saved from one run
/// and loaded into a graph of another seed (different values in every row), it saves back the
/// same bits, f32 and f16.
#[test]
fn a_table_of_several_row_blocks_round_trips() {
    let gpu = gpu();
    let mut shapes = tiny_shapes(0);
    shapes[0].rows = 150_000;
    for dtype in ["f32", "f16"] {
        let build = |seed: u64| {
            let mut config = config(dtype, "");
            config.train.seed = seed;
            Graph::new(gpu, &config, &shapes, 64, 0.0, optimizers(&config)).expect("graph")
        };
        let mut first = build(11);
        train(gpu, &mut first, &batches(1));
        let saved = checkpoint(gpu, &first);
        let mut other = build(12);
        assert_ne!(
            state(&checkpoint(gpu, &other)),
            state(&saved),
            "seeds differ"
        );
        other.load_state(gpu, &saved, false).expect("load");
        assert_eq!(state(&checkpoint(gpu, &other)), state(&saved), "{dtype}");
    }
}
