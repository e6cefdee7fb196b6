//! The model configuration (DESIGN.md §Configuration): a TOML file naming the features, the
//! multi-embedding tables and the expert of each, the combine, the shared MLP, the tasks with their
//! losses, and the training schedule.
//!
//! Parsing is strict: an unknown key, a missing required key or a value of the wrong type is an
//! error naming the key, its line and column (from the `toml` crate); values that parse but make
//! no model (a width that is not a multiple of 4, two features with one name, an expert list that
//! does not match the table count) are errors naming the key path, e.g. `model.experts[1].layers`.
//! Defaults follow the multi-embedding paper's recipe (METHODS.md §2.2): K = 16, a 400-wide
//! per-table projection with BatchNorm and ReLU after each expert, mean combine, a 400-400 shared
//! MLP, dropout 0.2, Adam 1e-3 on dense parameters, row-wise Adagrad on the tables, batch 2048.
//!
//! The graph compiler (issue 5) turns a validated [`ModelConfig`] into buffers and recorded steps.

mod feature_file;
mod limits;

pub use limits::{human_bytes, MAX_FILE_BYTES, MAX_STEPS};

use std::collections::HashSet;
use std::io::Read;
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

/// A whole model file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The network.
    #[serde(default)]
    pub model: Model,
    /// Input features, in order (`[[feature]]` tables).
    #[serde(rename = "feature", default)]
    pub features: Vec<Feature>,
    /// Prediction tasks (`[[task]]` tables), one head each.
    #[serde(rename = "task", default = "default_tasks")]
    pub tasks: Vec<Task>,
    /// The training schedule.
    #[serde(default)]
    pub train: Train,
}

/// The network's shape.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Model {
    /// Embedding tables `M` (multi-embedding); 1 is single-embedding.
    pub tables: u32,
    /// Embedding width `K` of every field in every table (a multiple of 4).
    pub dim: u32,
    /// One expert per table, or a single entry used for every table.
    pub experts: Vec<Expert>,
    /// Width of the per-table projection after each expert (`h^(m) = ReLU(BN(W·I(x) + b))`).
    pub expert_width: u32,
    /// BatchNorm in the per-table projection.
    pub batch_norm: bool,
    /// How the tables' outputs are combined.
    pub combine: Combine,
    /// Hidden widths of the shared MLP.
    pub hidden: Vec<u32>,
    /// Dropout after each hidden layer (0 disables it).
    pub dropout: f32,
}

impl Default for Model {
    fn default() -> Self {
        Model {
            tables: 2,
            dim: 16,
            experts: vec![Expert::Dcn {
                layers: 2,
                rank: None,
            }],
            expert_width: 400,
            batch_norm: true,
            combine: Combine::Mean,
            hidden: vec![400, 400],
            dropout: 0.2,
        }
    }
}

/// One table's interaction expert (METHODS.md §2.2).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Expert {
    /// DCNv2 cross network.
    Dcn {
        /// Cross layers.
        #[serde(default = "two")]
        layers: u32,
        /// Low rank of `W_l = U_l V_lᵀ`; absent for full rank.
        #[serde(default)]
        rank: Option<u32>,
    },
    /// Factorisation machine (vector form).
    Fm,
    /// Field-weighted FM.
    Fwfm,
    /// Group-weighted part-aware FM: fields in `groups` groups.
    Gwpfm {
        /// Group of each feature, by feature name; features not listed go to group 0.
        #[serde(default)]
        groups: Vec<Vec<String>>,
    },
    /// Inner-product network.
    Ipnn,
    /// A plain MLP over the concatenated fields.
    Mlp {
        /// Output width of each layer.
        widths: Vec<u32>,
    },
}

fn two() -> u32 {
    2
}

/// How the tables' outputs meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Combine {
    /// `h = (1/M) Σ_m h^(m)`.
    Mean,
    /// Concatenation `[h^(1), …, h^(M)]`.
    Concat,
    /// A learned gate per sample: `h = Σ_m g_m h^(m)`, `g = softmax(W_g [h^(1); …; h^(M)] + b_g)`
    /// (MMoE-style, over the tables' outputs).
    Gate,
}

/// One input feature.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "feature_file::RawFeature")]
pub struct Feature {
    /// Unique name (also the default data column).
    pub name: String,
    /// The data column it reads (defaults to `name`).
    pub column: Option<String>,
    /// What it is.
    pub kind: FeatureKind,
    /// L2 weight decay of this feature's tables, overriding `train.sparse_weight_decay`.
    pub embedding_l2: Option<f32>,
}

impl Feature {
    /// The data column it reads.
    pub fn column(&self) -> &str {
        self.column.as_deref().unwrap_or(&self.name)
    }
}

/// The kinds of input features.
#[derive(Debug, Clone, PartialEq)]
pub enum FeatureKind {
    /// One id per sample.
    Categorical {
        /// Ids seen fewer times in training share the out-of-vocabulary row.
        min_count: u32,
        /// Hash into this many rows instead of building a vocabulary.
        hash_rows: Option<u64>,
    },
    /// Several ids per sample (multi-hot), pooled.
    Bag {
        /// Separator inside the field.
        separator: String,
        /// Pooling of the bag's rows.
        pooling: BagPooling,
        /// As for categorical features.
        min_count: u32,
    },
    /// A number, encoded by MNS digits (METHODS.md §1.2).
    Numeric {
        /// Radices of the numeral systems, e.g. `[2, 3, 10]`.
        radices: Vec<u32>,
        /// Quantisation step before encoding: the value is `1 + ⌊(x − min)/step⌋` with `min` from
        /// training, 0 when missing (see `wgrec::data::encode`).
        step: f64,
        /// Applied to the value before quantising (`"linear"`, the default, or `"log"`).
        transform: crate::data::numeric::NumericTransform,
    },
    /// A behaviour sequence read by TIM (METHODS.md §1.1).
    Sequence {
        /// The feature whose table holds the behaviour ids (e.g. `item_id`).
        item: String,
        /// Side features summed into each behaviour (e.g. `genre`).
        side: Vec<String>,
        /// Longest history kept (most recent last).
        max_len: u32,
        /// Temporal buckets `N_T` (bucket 0 is the target).
        buckets: u32,
        /// Bucketing of a behaviour's time relative to the target.
        time: TimeBucket,
        /// Per side feature, the sequence column holding each behaviour's side id (e.g.
        /// `hist_genre`); as long as `side`.
        side_columns: Vec<String>,
        /// The `sequence_times` column of the behaviours (default: the one the schema links to
        /// this feature's column).
        times: Option<String>,
        /// The target's `timestamp` column (default: the schema's only timestamp column).
        timestamp: Option<String>,
    },
}

/// Pooling of a bag feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BagPooling {
    /// Sum of the rows.
    Sum,
    /// Mean of the rows (empty bag: zeros).
    #[default]
    Mean,
}

/// Temporal bucketing for TIM.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case", deny_unknown_fields)]
pub enum TimeBucket {
    /// Reverse position (most recent = 1), as the official TIN code.
    Position,
    /// `min(N_T − 1, 1 + ⌊log2(1 + Δt / unit)⌋)` (DATA.md §1).
    LogDelta {
        /// Seconds per unit of Δt.
        #[serde(default = "hour")]
        unit_seconds: f64,
    },
}

impl Default for TimeBucket {
    fn default() -> Self {
        TimeBucket::LogDelta {
            unit_seconds: 3600.0,
        }
    }
}

/// An error when a model file of `bytes` is over [`MAX_FILE_BYTES`].
fn check_file_size(file: &str, bytes: u64) -> Result<()> {
    if bytes > MAX_FILE_BYTES {
        return Err(bad(
            file,
            "",
            format!(
                "the model file is over {} (a model file is a few KiB; checkpoints embed its \
                 text): is this the right file?",
                human_bytes(MAX_FILE_BYTES)
            ),
        ));
    }
    Ok(())
}

fn one() -> u32 {
    1
}
fn fifty() -> u32 {
    50
}
fn sixty_four() -> u32 {
    64
}
fn unit() -> f64 {
    1.0
}
fn hour() -> f64 {
    3600.0
}
fn bar() -> String {
    "|".into()
}
fn default_radices() -> Vec<u32> {
    vec![2, 3, 10]
}

/// A prediction task: one head, one label column, one loss.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    /// Name (metrics are reported under it).
    pub name: String,
    /// The label column (0/1); defaults to `name`.
    #[serde(default)]
    pub label: Option<String>,
    /// The loss.
    #[serde(default)]
    pub loss: Loss,
    /// Weight of the BCE term in a combined loss (METHODS.md §4.1).
    #[serde(default = "default_alpha")]
    pub alpha: f32,
}

fn default_alpha() -> f32 {
    0.6
}

fn default_tasks() -> Vec<Task> {
    vec![Task {
        name: "click".into(),
        label: None,
        loss: Loss::Bce,
        alpha: default_alpha(),
    }]
}

/// Loss of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Loss {
    /// Binary cross-entropy with logits.
    #[default]
    Bce,
    /// BCE plus the combined-pair ranking loss.
    Pair,
    /// BCE plus the combined-list ranking loss.
    List,
}

/// The training schedule.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Train {
    /// Samples per step.
    pub batch_size: u32,
    /// Passes over the training split.
    pub epochs: u32,
    /// Learning rate of the embedding tables (row-wise Adagrad).
    pub sparse_lr: f32,
    /// Learning rate of the dense parameters (Adam).
    pub dense_lr: f32,
    /// Linear warm-up steps of the dense learning rate.
    pub warmup_steps: u64,
    /// Global gradient-norm clipping of dense parameters (absent: off).
    pub clip_norm: Option<f32>,
    /// Epochs without a better validation AUC before stopping (0: never stop early).
    pub patience: u32,
    /// Seed of initialisation, shuffling and dropout.
    pub seed: u64,
    /// Stop after this many steps in all (absent: run the epochs).
    pub steps: Option<u64>,
    /// Steps between progress lines (and loss read-backs).
    pub log_every: u64,
    /// The optimizer of the embedding tables.
    pub sparse_optimizer: SparseOptimizerName,
    /// L2 weight decay λ of the embedding tables, applied to the rows a step touches (added to
    /// the gradient for SGD and Adagrad, decoupled for Adam); `[[feature]] embedding_l2` overrides
    /// it per feature.
    pub sparse_weight_decay: f32,
    /// How λ applies to a touched row: `row` (once per step) or `frequency` (λ over the row's
    /// lookups in the batch).
    pub sparse_weight_decay_mode: SparseDecayMode,
    /// The optimizer of the dense parameters.
    pub dense_optimizer: DenseOptimizerName,
    /// The column grouping samples for GAUC (e.g. `user_id`; absent: no GAUC).
    pub group: Option<String>,
    /// Per-sample loss weights from a data column (METHODS.md §4.2; absent: every sample weighs 1).
    pub weights: Option<Weights>,
    /// Learning-rate decay after the warm-up, applied to both rates (absent: constant).
    pub lr_decay: Option<LrDecay>,
    /// Shuffle the training split within windows of this many batches (a streaming shuffle,
    /// reseeded each epoch). 0 (the default) keeps the file order: on time-split data the last
    /// steps then see the most recent events, which on MovieLens-100K scored as well as shuffling
    /// (three seeds each; BENCHMARKS.md) and is what online learning does.
    pub shuffle_window: u32,
}

/// A learning-rate schedule after the linear warm-up, as a factor on `sparse_lr` and `dense_lr`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum LrDecay {
    /// Half a cosine from 1 down to `floor` over `steps` steps after the warm-up, then `floor`.
    Cosine {
        /// Steps from the end of the warm-up to the floor.
        steps: u64,
        /// The final factor (0 ≤ floor ≤ 1).
        #[serde(default)]
        floor: f32,
    },
    /// `gamma^⌊(s − 1) / every⌋` (torch's StepLR stepped every step); no warm-up.
    Step {
        /// Steps between decays.
        every: u64,
        /// Factor per decay (0 < gamma ≤ 1).
        gamma: f32,
    },
}

/// The optimizer of the embedding tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SparseOptimizerName {
    /// Row-wise Adagrad (one accumulator per row; FBGEMM's default).
    #[default]
    Adagrad,
    /// Plain SGD.
    Sgd,
    /// Adam with per-element moments beside each row (3× the table memory), lazy: only touched
    /// rows move (β = 0.9, 0.999; ε = 1e-8).
    Adam,
}

/// How the embedding weight decay applies to a touched row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SparseDecayMode {
    /// λ once per touched row and step.
    #[default]
    Row,
    /// λ / n, n the row's lookups in the batch.
    Frequency,
}

/// The optimizer of the dense parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DenseOptimizerName {
    /// Adam (β = 0.9, 0.999; ε = 1e-8), as torch.optim.Adam.
    #[default]
    Adam,
    /// Plain SGD.
    Sgd,
}

/// Per-sample weights (METHODS.md §4.2): `w = exposure(count) · class(label)` where `count` is read
/// from `column` (a numeric or weight column), `exposure(c) = max(c, 1)^(−gamma)`, and the class
/// factor is `positive` or `negative` by the first task's label. Unequal class factors bias the
/// logit by `log(positive / negative)`, which prediction subtracts.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Weights {
    /// The exposure-count column (absent: no exposure part).
    #[serde(default)]
    pub column: Option<String>,
    /// The exponent γ ≥ 0 of the exposure part.
    #[serde(default)]
    pub gamma: f64,
    /// Class factor of positives.
    #[serde(default = "unit")]
    pub positive: f64,
    /// Class factor of negatives (a negative down-sampling keep rate r is `negative = r`).
    #[serde(default = "unit")]
    pub negative: f64,
}

impl Default for Train {
    fn default() -> Self {
        Train {
            batch_size: 2048,
            epochs: 3,
            sparse_lr: 0.05,
            dense_lr: 1e-3,
            warmup_steps: 0,
            clip_norm: None,
            patience: 1,
            seed: 1,
            steps: None,
            log_every: 100,
            sparse_optimizer: SparseOptimizerName::Adagrad,
            sparse_weight_decay: 0.0,
            sparse_weight_decay_mode: SparseDecayMode::Row,
            dense_optimizer: DenseOptimizerName::Adam,
            group: None,
            weights: None,
            lr_decay: None,
            shuffle_window: 0,
        }
    }
}

/// A semantic error at `key`.
fn bad(file: &str, key: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Config {
        file: file.to_string(),
        key: key.into(),
        message: message.into(),
    }
}

/// The file as read: the features kept as raw tables, so that each is read on its own with
/// positions (see `feature_file`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    model: Model,
    #[serde(rename = "feature", default)]
    features: Vec<feature_file::FeatureTable>,
    #[serde(rename = "task", default = "default_tasks")]
    tasks: Vec<Task>,
    #[serde(default)]
    train: Train,
}

impl ModelConfig {
    /// Reads and validates a model file.
    pub fn load(path: &Path) -> Result<Self> {
        let name = path.display().to_string();
        Self::parse(&Self::read_text(path)?, &name)
    }

    /// Reads a model file's text, refusing one over [`MAX_FILE_BYTES`] before reading it (the
    /// checkpoint embeds the text, and its header has a limit; a model file is a few KiB).
    pub fn read_text(path: &Path) -> Result<String> {
        let name = path.display().to_string();
        let io = |e: std::io::Error| bad(&name, "", e.to_string());
        let file = std::fs::File::open(path).map_err(io)?;
        let mut text = String::new();
        // One byte past the limit is enough to know it is too large.
        file.take(MAX_FILE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(io)?;
        check_file_size(&name, text.len() as u64)?;
        Ok(text)
    }

    /// Parses and validates TOML text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self> {
        check_file_size(file, text.len() as u64)?;
        let raw: FileConfig =
            toml::from_str(text).map_err(|e| bad(file, "", e.to_string().trim_end()))?;
        let config = ModelConfig {
            model: raw.model,
            features: feature_file::parse_features(text, file, raw.features)?,
            tasks: raw.tasks,
            train: raw.train,
        };
        config.validate(file)?;
        Ok(config)
    }

    /// The expert of table `t` (the single entry when one is given for all tables).
    pub fn expert(&self, t: u32) -> &Expert {
        let e = &self.model.experts;
        if e.len() == 1 {
            &e[0]
        } else {
            &e[t as usize]
        }
    }

    /// Checks what parsing cannot: every value makes a model.
    pub fn validate(&self, file: &str) -> Result<()> {
        let m = &self.model;
        if m.tables == 0 || m.tables > 64 {
            return Err(bad(
                file,
                "model.tables",
                format!("{}: must be 1 to 64", m.tables),
            ));
        }
        if m.dim == 0 || !m.dim.is_multiple_of(4) || m.dim > 1024 {
            return Err(bad(
                file,
                "model.dim",
                format!(
                    "{}: must be a multiple of 4 from 4 to 1024 (vec4 rows)",
                    m.dim
                ),
            ));
        }
        if m.experts.len() != 1 && m.experts.len() != m.tables as usize {
            return Err(bad(
                file,
                "model.experts",
                format!(
                    "{} experts for {} tables: give one for all tables or one per table",
                    m.experts.len(),
                    m.tables
                ),
            ));
        }
        if m.expert_width == 0 {
            return Err(bad(file, "model.expert_width", "0: must be at least 1"));
        }
        if m.hidden.contains(&0) {
            return Err(bad(file, "model.hidden", "every width must be at least 1"));
        }
        if !(0.0..1.0).contains(&m.dropout) {
            return Err(bad(
                file,
                "model.dropout",
                format!("{}: must be in [0, 1)", m.dropout),
            ));
        }
        if self.features.is_empty() {
            return Err(bad(
                file,
                "feature",
                "no [[feature]]: a model needs at least one",
            ));
        }
        let mut seen = HashSet::new();
        for (i, f) in self.features.iter().enumerate() {
            let key = |k: &str| format!("feature[{i}].{k}");
            if !seen.insert(f.name.as_str()) {
                return Err(bad(
                    file,
                    key("name"),
                    format!("{:?} is used twice", f.name),
                ));
            }
            match &f.kind {
                FeatureKind::Categorical { hash_rows, .. } => {
                    if *hash_rows == Some(0) {
                        return Err(bad(file, key("hash_rows"), "0: needs at least one row"));
                    }
                }
                FeatureKind::Bag { separator, .. } => {
                    if separator.is_empty() {
                        return Err(bad(file, key("separator"), "empty"));
                    }
                }
                FeatureKind::Numeric { radices, step, .. } => {
                    if radices.is_empty() || radices.iter().any(|&r| r < 2) {
                        return Err(bad(
                            file,
                            key("radices"),
                            format!("{radices:?}: at least one radix, each ≥ 2"),
                        ));
                    }
                    if !(step.is_finite() && *step > 0.0) {
                        return Err(bad(file, key("step"), format!("{step}: must be > 0")));
                    }
                }
                FeatureKind::Sequence {
                    item,
                    side,
                    max_len,
                    buckets,
                    time,
                    side_columns,
                    ..
                } => {
                    for (k, target) in
                        std::iter::once(("item", item)).chain(side.iter().map(|s| ("side", s)))
                    {
                        // A behaviour reads one row of the item's table and one of each side
                        // feature's table: categorical ones, or a bag's (e.g. an item's first genre).
                        let found = self.features.iter().find(|g| &g.name == target);
                        match found.map(|g| &g.kind) {
                            Some(FeatureKind::Categorical { .. }) => {}
                            Some(FeatureKind::Bag { .. }) if k == "side" => {}
                            Some(_) => {
                                return Err(bad(
                                    file,
                                    key(k),
                                    format!("{target:?} has no id table a behaviour can read"),
                                ))
                            }
                            None => {
                                return Err(bad(
                                    file,
                                    key(k),
                                    format!("no feature named {target:?}"),
                                ))
                            }
                        }
                    }
                    if side_columns.len() != side.len() {
                        return Err(bad(
                            file,
                            key("side_columns"),
                            format!(
                                "{} columns for {} side features: name the sequence column of \
                                 each side feature, in order",
                                side_columns.len(),
                                side.len()
                            ),
                        ));
                    }
                    if *max_len == 0 || *max_len > 1000 {
                        return Err(bad(file, key("max_len"), format!("{max_len}: 1 to 1000")));
                    }
                    if *buckets < 2 {
                        return Err(bad(
                            file,
                            key("buckets"),
                            format!("{buckets}: bucket 0 is the target, so at least 2"),
                        ));
                    }
                    if let TimeBucket::LogDelta { unit_seconds } = time {
                        if !(unit_seconds.is_finite() && *unit_seconds > 0.0) {
                            return Err(bad(
                                file,
                                key("time.unit_seconds"),
                                format!("{unit_seconds}: must be > 0"),
                            ));
                        }
                    }
                }
            }
        }
        let names: Vec<&str> = self.features.iter().map(|f| f.name.as_str()).collect();
        for (i, e) in m.experts.iter().enumerate() {
            let key = |k: &str| format!("model.experts[{i}].{k}");
            match e {
                Expert::Dcn { layers, rank } => {
                    if *layers == 0 || *layers > 16 {
                        return Err(bad(
                            file,
                            key("layers"),
                            format!("{layers}: must be 1 to 16"),
                        ));
                    }
                    if *rank == Some(0) {
                        return Err(bad(file, key("rank"), "0: a rank is at least 1"));
                    }
                }
                Expert::Gwpfm { groups } => {
                    let mut seen = HashSet::new();
                    for (g, group) in groups.iter().enumerate() {
                        for f in group {
                            if !names.contains(&f.as_str()) {
                                return Err(bad(
                                    file,
                                    format!("model.experts[{i}].groups[{g}]"),
                                    format!("no feature named {f:?}"),
                                ));
                            }
                            if !seen.insert(f) {
                                return Err(bad(
                                    file,
                                    format!("model.experts[{i}].groups[{g}]"),
                                    format!("feature {f:?} is in two groups"),
                                ));
                            }
                        }
                    }
                }
                Expert::Mlp { widths } => {
                    if widths.is_empty() || widths.contains(&0) {
                        return Err(bad(file, key("widths"), "need at least one layer, all > 0"));
                    }
                }
                Expert::Fm | Expert::Fwfm | Expert::Ipnn => {}
            }
        }
        if self.tasks.is_empty() {
            return Err(bad(file, "task", "no [[task]]: a model needs at least one"));
        }
        let mut seen = HashSet::new();
        for (i, t) in self.tasks.iter().enumerate() {
            if !seen.insert(t.name.as_str()) {
                return Err(bad(
                    file,
                    format!("task[{i}].name"),
                    format!("{:?} is used twice", t.name),
                ));
            }
            if !(0.0..=1.0).contains(&t.alpha) {
                return Err(bad(
                    file,
                    format!("task[{i}].alpha"),
                    format!("{}: must be in [0, 1]", t.alpha),
                ));
            }
        }
        let tr = &self.train;
        if tr.batch_size == 0 {
            return Err(bad(file, "train.batch_size", "0: must be at least 1"));
        }
        for (k, v) in [
            ("train.sparse_lr", tr.sparse_lr),
            ("train.dense_lr", tr.dense_lr),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(bad(file, k, format!("{v}: must be > 0")));
            }
        }
        if tr.log_every == 0 {
            return Err(bad(file, "train.log_every", "0: must be at least 1"));
        }
        if tr.steps == Some(0) {
            return Err(bad(file, "train.steps", "0: must be at least 1"));
        }
        if let Some(w) = &tr.weights {
            for (k, v) in [("positive", w.positive), ("negative", w.negative)] {
                if !(v.is_finite() && v > 0.0) {
                    return Err(bad(
                        file,
                        format!("train.weights.{k}"),
                        format!("{v}: must be > 0"),
                    ));
                }
            }
            if !(w.gamma.is_finite() && w.gamma >= 0.0) {
                return Err(bad(
                    file,
                    "train.weights.gamma",
                    format!("{}: must be ≥ 0", w.gamma),
                ));
            }
            if w.gamma > 0.0 && w.column.is_none() {
                return Err(bad(
                    file,
                    "train.weights.column",
                    "gamma > 0 weights by an exposure count: name its column",
                ));
            }
        }
        match tr.lr_decay {
            Some(LrDecay::Cosine { steps, floor }) => {
                if steps == 0 {
                    return Err(bad(file, "train.lr_decay.steps", "0: must be at least 1"));
                }
                if !(0.0..=1.0).contains(&floor) {
                    return Err(bad(
                        file,
                        "train.lr_decay.floor",
                        format!("{floor}: must be in [0, 1]"),
                    ));
                }
            }
            Some(LrDecay::Step { every, gamma }) => {
                if every == 0 {
                    return Err(bad(file, "train.lr_decay.every", "0: must be at least 1"));
                }
                if !(gamma > 0.0 && gamma <= 1.0) {
                    return Err(bad(
                        file,
                        "train.lr_decay.gamma",
                        format!("{gamma}: must be in (0, 1]"),
                    ));
                }
                if tr.warmup_steps > 0 {
                    return Err(bad(
                        file,
                        "train.lr_decay",
                        "step decay has no warm-up: drop train.warmup_steps or use kind = \"cosine\"",
                    ));
                }
            }
            None => {}
        }
        if let Some(c) = tr.clip_norm {
            if !(c.is_finite() && c > 0.0) {
                return Err(bad(file, "train.clip_norm", format!("{c}: must be > 0")));
            }
        }
        self.check_sizes(file)?;
        self.validate_weight_decay(file)
    }

    /// Every embedding weight decay (the train default and each feature's) is finite and ≥ 0.
    fn validate_weight_decay(&self, file: &str) -> Result<()> {
        let per_feature = self.features.iter().enumerate().filter_map(|(i, f)| {
            f.embedding_l2
                .map(|l2| (format!("feature[{i}].embedding_l2"), l2))
        });
        let all = std::iter::once((
            "train.sparse_weight_decay".to_string(),
            self.train.sparse_weight_decay,
        ))
        .chain(per_feature);
        for (key, l2) in all {
            if !(l2.is_finite() && l2 >= 0.0) {
                return Err(bad(file, key, format!("{l2}: must be ≥ 0")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_sizes;
