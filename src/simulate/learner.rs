//! The live model of a simulated run: a model file compiled over the simulation's own schema,
//! scoring each round's candidates and learning from the rows shown, with the streaming
//! trainer's machinery (the same calls [`crate::online`]'s step makes, in the same order).
//!
//! Rows never touch a file: each round's rows are parsed column by column into a [`Batch`] with
//! the file reader's own field parser, so they encode exactly as the same rows in a TSV would.
//! The encoder is fitted once, on a batch that names every segment and category and pairs each
//! user with an initial ad, so those ids start with rows; an ad that arrives later reads the
//! out-of-vocabulary row until it is first shown, when its id map (`capacity`, `admit_after`)
//! admits it and [`Graph::reset_rows`] gives its row fresh initial weights. The model starts from
//! its seeded initialisation (`train.seed` is set to the simulation seed): no warm-up, so every
//! policy starts knowing nothing, and exploration has to earn what it learns.

use crate::config::ModelConfig;
use crate::data::batch::parse_field;
use crate::data::encode::Encoder;
use crate::data::table::empty_batch;
use crate::data::{Batch, IdMapStats, Schema};
use crate::error::{Error, Result};
use crate::explore::Belief;
use crate::gpu::Gpu;
use crate::graph::Graph;
use crate::model::ModelPlan;
use crate::run::feature_shapes;
use crate::train::policy::TrainPolicy;

use super::world::World;

/// The simulation's schema: the label and the four features the world shows.
pub const SCHEMA: &str = r#"
delimiter = "\t"
header = true

[[column]]
name = "click"
type = "label"

[[column]]
name = "user_id"
type = "categorical"

[[column]]
name = "segment"
type = "categorical"

[[column]]
name = "ad_id"
type = "categorical"

[[column]]
name = "category"
type = "categorical"
"#;

/// What the schema is called in errors.
pub const SCHEMA_NAME: &str = "the simulation's schema (user_id, segment, ad_id, category)";

/// The rows of one round, as they would stand in a file.
const ROWS_NAME: &str = "simulated rows";

/// One (user, ad) row; `click` is `None` for a row to score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    /// The user.
    pub user: u32,
    /// The ad.
    pub ad: u32,
    /// The click, for a row to learn from.
    pub click: Option<bool>,
}

/// A model that learns as the simulation goes (see the module docs).
pub struct Learner<'g> {
    gpu: &'g Gpu,
    schema: Schema,
    encoder: Encoder,
    graph: Graph,
    policy: TrainPolicy,
    /// Online steps taken (the id maps' clock).
    step: u64,
}

impl<'g> Learner<'g> {
    /// Compiles `config` (its `train.seed` replaced by `seed`) for batches of `max_rows`, the
    /// encoder fitted on `world`'s segments, categories, users and initial ads.
    pub fn new(
        gpu: &'g Gpu,
        config: &ModelConfig,
        world: &World,
        seed: u64,
        max_rows: u32,
    ) -> Result<Self> {
        let mut config = config.clone();
        config.train.seed = seed;
        let schema = Schema::parse(SCHEMA, SCHEMA_NAME)?;
        let mut encoder = Encoder::new(&config, &schema, SCHEMA_NAME)?;
        encoder.fit(&fields_batch(&schema, &fit_fields(world))?);
        encoder.finish_fit()?;
        let policy = TrainPolicy::new(&config.train);
        let plan = ModelPlan::new(&config, &feature_shapes(&config, &encoder))?;
        let max = max_rows.max(config.train.batch_size);
        let correction = encoder.logit_correction();
        let graph = Graph::compile(gpu, plan, policy.optimizers(), max, correction)?;
        Ok(Learner {
            gpu,
            schema,
            encoder,
            graph,
            policy,
            step: 0,
        })
    }

    /// The probabilities of `rows` (`[rows, outputs]`) and, with `belief`, the uncertainty
    /// head's belief about them.
    pub fn score(
        &mut self,
        world: &World,
        rows: &[Row],
        belief: bool,
    ) -> Result<(Vec<f32>, Option<Belief>)> {
        let batch = rows_batch(&self.schema, world, rows)?;
        let all: Vec<usize> = (0..batch.rows).collect();
        let encoded = self.encoder.encode_rows(&batch, ROWS_NAME, &all)?;
        let prepared = self.graph.prepare(&encoded)?;
        if belief {
            self.graph.predict_belief(self.gpu, &prepared)
        } else {
            Ok((self.graph.predict(self.gpu, &prepared)?, None))
        }
    }

    /// One online step on the shown `rows` (each with its click): new ids admitted and their
    /// rows re-initialised, then one training step.
    pub fn learn(&mut self, world: &World, rows: &[Row]) -> Result<()> {
        let step = self.step + 1;
        let batch = rows_batch(&self.schema, world, rows)?;
        let all: Vec<usize> = (0..batch.rows).collect();
        let fresh = self.encoder.observe_rows(&batch, ROWS_NAME, &all, step)?;
        for f in fresh {
            self.graph.reset_rows(self.gpu, f.feature, &f.rows, step)?;
        }
        let encoded = self.encoder.encode_rows(&batch, ROWS_NAME, &all)?;
        let prepared = self.graph.prepare(&encoded)?;
        let rates = self.policy.rates(self.graph.step() + 1);
        self.graph.train_step(self.gpu, &prepared, rates)?;
        self.step = step;
        Ok(())
    }

    /// The dynamic id maps' counters (admissions of new ads among them).
    pub fn id_map_stats(&self) -> Vec<IdMapStats> {
        self.encoder.id_map_stats()
    }
}

/// The fit rows' fields: each user with an initial ad (its own category), then every category
/// on the first user and initial ad, so every segment, category and user, and (users
/// permitting) every initial ad, has a row — and no ad that arrives later does.
fn fit_fields(world: &World) -> Vec<Fields> {
    let c = world.config();
    let first = world.live(0).start;
    let by_user = (0..c.users).map(|u| {
        let row = Row {
            user: u,
            ad: first + u % c.live_ads,
            click: Some(false),
        };
        fields(world, &row)
    });
    let by_category = (0..c.categories).map(|cat| {
        let mut f = fields(
            world,
            &Row {
                user: 0,
                ad: first,
                click: Some(false),
            },
        );
        f[4] = format!("c{cat}");
        f
    });
    by_user.chain(by_category).collect()
}

/// One row's field texts, in schema order.
type Fields = [String; 5];

fn fields(world: &World, row: &Row) -> Fields {
    let label = match row.click {
        Some(c) => u8::from(c).to_string(),
        None => String::new(),
    };
    [
        label,
        format!("u{}", row.user),
        format!("s{}", world.segment(row.user)),
        format!("a{}", row.ad),
        format!("c{}", world.category(row.ad)),
    ]
}

/// `rows` as a batch of the simulation's schema, parsed as a file's fields are.
pub fn rows_batch(schema: &Schema, world: &World, rows: &[Row]) -> Result<Batch> {
    let all: Vec<Fields> = rows.iter().map(|r| fields(world, r)).collect();
    fields_batch(schema, &all)
}

fn fields_batch(schema: &Schema, rows: &[Fields]) -> Result<Batch> {
    let mut batch = empty_batch(schema);
    for (i, fields) in rows.iter().enumerate() {
        for (c, text) in fields.iter().enumerate() {
            parse_field(&schema.columns[c].kind, text, &mut batch.columns[c]).map_err(|m| {
                Error::Data {
                    file: ROWS_NAME.into(),
                    line: Some(i as u64 + 1),
                    column: Some(schema.columns[c].name.clone()),
                    message: m,
                }
            })?;
        }
        batch.rows += 1;
        batch.lines.push(i as u64 + 1);
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::ColumnData;
    use crate::gpu::Gpu;
    use crate::simulate::config::{SimConfig, TEST_WORLD};

    #[test]
    fn rows_become_a_batch_of_the_schema_with_segment_and_category_filled_in() {
        let config = SimConfig::parse(TEST_WORLD, "w.toml").expect("test world");
        let world = World::new(&config, 1);
        let schema = Schema::parse(SCHEMA, SCHEMA_NAME).expect("schema");
        let rows = [
            Row {
                user: 5,
                ad: 3,
                click: Some(true),
            },
            Row {
                user: 2,
                ad: 7,
                click: None,
            },
        ];
        let batch = rows_batch(&schema, &world, &rows).expect("batch");
        assert_eq!(batch.rows, 2);
        assert_eq!(batch.columns[0], ColumnData::Label(vec![1.0, -1.0]));
        let tokens = |c: usize| match &batch.columns[c] {
            ColumnData::Categorical(t) => t.iter().map(str::to_string).collect::<Vec<_>>(),
            other => panic!("column {c} is {}", other.type_name()),
        };
        assert_eq!(tokens(1), ["u5", "u2"]);
        assert_eq!(tokens(2), ["s1", "s2"], "segment = user mod 4");
        assert_eq!(tokens(3), ["a3", "a7"]);
        let categories = [world.category(3), world.category(7)].map(|c| format!("c{c}"));
        assert_eq!(tokens(4), categories);
    }

    const MODEL: &str = r#"
[model]
tables = 1
dim = 4
experts = [{ type = "dcn", layers = 1 }]
expert_width = 8
hidden = [8]

[[feature]]
name = "user_id"
kind = "categorical"
capacity = 64
admit_after = 1

[[feature]]
name = "segment"
kind = "categorical"

[[feature]]
name = "ad_id"
kind = "categorical"
capacity = 32
admit_after = 1

[[feature]]
name = "category"
kind = "categorical"

[[task]]
name = "click"
uncertainty = { kind = "bootstrap", heads = 4 }

[train]
batch_size = 8
sparse_lr = 0.05
seed = 1
"#;

    fn gpu() -> &'static Gpu {
        static GPU: std::sync::OnceLock<Gpu> = std::sync::OnceLock::new();
        GPU.get_or_init(|| match Gpu::new() {
            Ok(gpu) => gpu,
            Err(e) => panic!("this test needs a GPU adapter (lavapipe will do): {e}"),
        })
    }

    /// An ad that arrives after the fit reads the OOV row until it is shown; learning from it
    /// admits it into the id map (one admission), after which it scores from its own row.
    #[test]
    fn a_new_ad_is_admitted_when_first_shown_and_then_scores_from_its_own_row() {
        let mut config = SimConfig::parse(TEST_WORLD, "w.toml").expect("test world");
        // 26 ads arrive after the fit, in 5 categories: two share one.
        config.rounds = 40;
        let world = World::new(&config, 1);
        let model = ModelConfig::parse(MODEL, "model.toml").expect("model");
        let mut learner = Learner::new(gpu(), &model, &world, 1, 16).expect("learner");
        let admitted = |l: &Learner<'_>| {
            let stats = l.id_map_stats();
            let ads = stats.iter().find(|s| s.name == "ad_id").expect("ad_id map");
            ads.counters.admitted
        };
        let later = config.live_ads..config.total_ads();
        let (new, other) = (later.clone())
            .flat_map(|a| later.clone().map(move |b| (a, b)))
            .find(|&(a, b)| a < b && world.category(a) == world.category(b))
            .expect("two later ads of one category");
        let score = |l: &mut Learner<'_>| {
            let rows = [new, other].map(|ad| Row {
                user: 0,
                ad,
                click: None,
            });
            let (p, belief) = l.score(&world, &rows, true).expect("score");
            (p, belief.expect("the model has a head"))
        };
        let (before, belief) = score(&mut learner);
        assert_eq!(
            before[0], before[1],
            "two unseen ads of one category and user read the same OOV row"
        );
        assert_eq!(belief.rows(), 2);
        assert_eq!(admitted(&learner), 0);
        let shown = [Row {
            user: 0,
            ad: new,
            click: Some(true),
        }];
        learner.learn(&world, &shown).expect("learn");
        assert_eq!(admitted(&learner), 1);
        let (after, _) = score(&mut learner);
        assert_ne!(after[0], after[1], "the shown ad has a row of its own now");
    }

    #[test]
    fn the_fit_rows_cover_every_user_segment_and_category_and_no_later_ad() {
        let config = SimConfig::parse(TEST_WORLD, "w.toml").expect("test world");
        let world = World::new(&config, 2);
        let rows = fit_fields(&world);
        let column = |c: usize| rows.iter().map(|f| f[c].clone()).collect::<Vec<_>>();
        let (users, segments, ads, categories) = (column(1), column(2), column(3), column(4));
        assert!((0..config.users).all(|u| users.contains(&format!("u{u}"))));
        assert!((0..config.segments).all(|s| segments.contains(&format!("s{s}"))));
        assert!((0..config.categories).all(|c| categories.contains(&format!("c{c}"))));
        let later = |a: &String| a[1..].parse::<u32>().expect("a<n>") >= config.live_ads;
        assert!(
            !ads.iter().any(later),
            "a later ad must start on the OOV row"
        );
    }
}
