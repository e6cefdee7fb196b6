//! [`Trainer`]: a model compiled for a data folder, holding its run folder. [`Trainer::new`]
//! does everything that can fail before the folder is touched, then claims it; the loaders,
//! checkpoints and evaluation the epoch loop (`epochs.rs`) uses live here too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::policy::TrainPolicy;
use super::{RunState, TrainOptions};
use crate::checkpoint::Checkpoint;
use crate::config::ModelConfig;
use crate::data::encode::{ContentTables, Encoder};
use crate::data::loader::{Loader, Shuffle};
use crate::data::{BadRows, ReadOptions, Schema, SplitRows};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::graph::{Graph, Prepared};
use crate::metrics::TaskMetrics;
use crate::model::ModelPlan;
use crate::run::{
    evaluate, feature_shapes, RunFolder, RunLock, Timings, CONFIG_KEY, PREFETCH, RUN_KEY,
};

/// A training run over a data folder.
pub struct Trainer<'g> {
    pub(super) gpu: &'g Gpu,
    pub(super) config: ModelConfig,
    /// The model file as given (stored in every checkpoint).
    config_text: String,
    pub(super) schema: Schema,
    pub(super) data: PathBuf,
    pub(super) folder: RunFolder,
    pub(super) options: TrainOptions,
    pub(super) encoder: Arc<Encoder>,
    pub(super) graph: Graph,
    /// How parameters move: the optimizers the graph was compiled with and each step's rates.
    pub(super) policy: TrainPolicy,
    pub(super) state: RunState,
    /// Rows read and skipped per file (a file read every epoch counts its rows once).
    bad_rows: BTreeMap<PathBuf, SplitRows>,
    /// Wall-clock seconds per epoch of the whole run (read back on resume).
    pub(super) timings: Timings,
    /// Temporaries of interrupted writes removed from the run folder when this run took it.
    removed_leftovers: Vec<PathBuf>,
    /// The run folder's lock, held for the trainer's life.
    _lock: RunLock,
}

/// Reads the data folder's schema at `schema_path`, checks it against the model and checks that
/// every split file is there.
pub(super) fn read_schema(config: &ModelConfig, schema_path: &Path, data: &Path) -> Result<Schema> {
    let schema = Schema::load(schema_path)?;
    schema.check_model(config, &schema_path.display().to_string())?;
    for split in crate::data::SPLIT_NAMES {
        crate::data::split_path(data, split)?;
    }
    Ok(schema)
}

/// Fits the encoder on the training split, in memory (the run folder is written later).
pub(super) fn fit_encoder(
    config: &ModelConfig,
    schema: &Schema,
    schema_file: &str,
    data: &Path,
    skip_bad_rows: bool,
    content: &ContentTables,
) -> Result<Encoder> {
    let read = ReadOptions {
        batch_rows: config.train.batch_size as usize,
        skip_bad_rows,
        ..ReadOptions::default()
    };
    Encoder::fit_file_with(
        config,
        schema,
        schema_file,
        &crate::data::split_path(data, "train")?,
        read,
        content,
    )
}

/// The data's table sizes for the model file's text, found as [`Trainer::new`] finds them
/// (the schema read and checked, the encoder fitted on the training split in memory) without
/// compiling the model or touching any run folder: what `wgrec plan` sizes its statement from.
/// Returns the parsed config with them.
pub fn plan_shapes(
    gpu: &Gpu,
    config_text: &str,
    config_file: &str,
    data: &Path,
    skip_bad_rows: bool,
) -> Result<(ModelConfig, Vec<crate::graph::FeatureShape>)> {
    let fitted = fit(gpu, config_text, config_file, data, skip_bad_rows)?;
    let shapes = feature_shapes(&fitted.config, &fitted.encoder);
    Ok((fitted.config, shapes))
}

/// A model file read against a data folder: the config, the schema, the fitted encoder.
pub(super) struct Fitted {
    pub config: ModelConfig,
    pub schema: Schema,
    pub encoder: Encoder,
}

/// Parses the model file, reads and checks the schema and fits the encoder on the training split
/// in memory, as [`Trainer::new`] does, touching no run folder.
pub(super) fn fit(
    gpu: &Gpu,
    config_text: &str,
    config_file: &str,
    data: &Path,
    skip_bad_rows: bool,
) -> Result<Fitted> {
    let config = ModelConfig::parse(config_text, config_file)?;
    let schema_path = data.join("schema.toml");
    let schema_file = schema_path.display().to_string();
    let schema = read_schema(&config, &schema_path, data)?;
    let content = super::content_tables(gpu, &config, config_file)?;
    let encoder = fit_encoder(
        &config,
        &schema,
        &schema_file,
        data,
        skip_bad_rows,
        &content,
    )?;
    Ok(Fitted {
        config,
        schema,
        encoder,
    })
}

impl<'g> Trainer<'g> {
    /// Parses the model file's text (`config_file` names it in errors), reads the schema, fits
    /// the encoder on the training split (or reloads it when resuming), compiles the model and,
    /// when resuming, restores the last checkpoint; only then takes the run folder and writes
    /// its files (see the module docs), so a failure before leaves the folder as it was.
    pub fn new(
        gpu: &'g Gpu,
        config_text: &str,
        config_file: &str,
        data: &Path,
        out: &Path,
        options: TrainOptions,
    ) -> Result<Self> {
        let config = ModelConfig::parse(config_text, config_file)?;
        let schema_path = data.join("schema.toml");
        let schema_file = schema_path.display().to_string();
        let schema = read_schema(&config, &schema_path, data)?;
        let folder = RunFolder::new(out);
        let resumed = if options.resume {
            Some(folder.read_resume(&config, config_file)?)
        } else {
            folder.check_fresh(options.overwrite)?;
            None
        };
        let encoder = if resumed.is_some() {
            Encoder::load(&folder.encoder_dir(), &config, &schema, &schema_file)?
        } else {
            let content = super::content_tables(gpu, &config, config_file)?;
            let skip = options.skip_bad_rows;
            fit_encoder(&config, &schema, &schema_file, data, skip, &content)?
        };
        let shapes = feature_shapes(&config, &encoder);
        let correction = encoder.logit_correction();
        let policy = TrainPolicy::new(&config.train);
        let plan = ModelPlan::new(&config, &shapes)?;
        let (optimizers, batch) = (policy.optimizers(), config.train.batch_size);
        let mut graph = Graph::compile(gpu, plan, optimizers, batch, correction)?;
        let mut state = RunState::default();
        if let Some(resume) = &resumed {
            graph.load_state(gpu, &resume.checkpoint, false)?;
            state = resume.checkpoint.json(RUN_KEY)?;
        }
        let (lock, removed_leftovers) = folder.claim(resumed.as_ref(), options.overwrite)?;
        let timings = match resumed {
            Some(_) => {
                folder.write_data_path(data)?;
                Timings::load(&folder.timings_file(), state.epochs_done)?
            }
            None => {
                folder.write_inputs(config_text, &schema_path, &encoder, data)?;
                Timings::default()
            }
        };
        Ok(Trainer {
            gpu,
            config,
            config_text: config_text.to_string(),
            schema,
            data: data.to_path_buf(),
            folder,
            options,
            encoder: Arc::new(encoder),
            graph,
            policy,
            state,
            bad_rows: Default::default(),
            timings,
            removed_leftovers,
            _lock: lock,
        })
    }

    /// Temporaries of interrupted checkpoint writes that starting this run removed.
    pub fn removed_leftovers(&self) -> &[PathBuf] {
        &self.removed_leftovers
    }

    /// The compiled graph.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The compiled graph, to open a profile window on it (`wgrec train --profile`).
    pub fn graph_mut(&mut self) -> &mut Graph {
        &mut self.graph
    }

    /// The fitted encoder.
    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    pub(super) fn read_options(&self) -> ReadOptions {
        ReadOptions {
            batch_rows: self.config.train.batch_size as usize,
            skip_bad_rows: self.options.skip_bad_rows,
            ..ReadOptions::default()
        }
    }

    fn loader(&self, path: &Path) -> Result<Loader<Prepared>> {
        let preparer = self.graph.preparer();
        Loader::spawn(
            path.to_path_buf(),
            self.schema.clone(),
            self.read_options(),
            Arc::clone(&self.encoder),
            PREFETCH,
            move |batch| preparer.prepare(&batch),
        )
    }

    /// The training split's loader for 1-based `epoch`: shuffled within windows of
    /// `shuffle_window` batches, seeded by the run's seed and the epoch (so a resumed run sees the
    /// same order), or in file order.
    pub(super) fn train_loader(&self, path: &Path, epoch: u32) -> Result<Loader<Prepared>> {
        let window = self.config.train.shuffle_window as usize;
        if window == 0 {
            return self.loader(path);
        }
        let batch = self.config.train.batch_size as usize;
        let preparer = self.graph.preparer();
        let options = ReadOptions {
            batch_rows: batch * window,
            ..self.read_options()
        };
        Loader::spawn_shuffled(
            path.to_path_buf(),
            self.schema.clone(),
            options,
            Arc::clone(&self.encoder),
            PREFETCH,
            Some(Shuffle {
                batch,
                seed: self.config.train.seed ^ (u64::from(epoch) << 32),
            }),
            move |b| preparer.prepare(&b),
        )
    }

    /// Writes the whole training state, the run counters and the model file to `path`.
    pub(super) fn checkpoint(&self, path: &Path) -> Result<()> {
        let mut ckpt = Checkpoint::new();
        self.graph.save_state(self.gpu, &mut ckpt)?;
        ckpt.insert_json(RUN_KEY, &self.state)?;
        ckpt.insert_metadata(CONFIG_KEY, self.config_text.as_str());
        ckpt.write(path)
    }

    /// Scores `path` with the current weights (evaluation mode) and returns its metrics per task.
    pub fn evaluate(&mut self, path: &Path) -> Result<Vec<TaskMetrics>> {
        let loader = self.loader(path)?;
        let tasks = self.config.outputs().len();
        let (metrics, bad) = evaluate(self.gpu, &mut self.graph, loader, tasks)?;
        self.count_bad_rows(path, &bad);
        Ok(metrics)
    }

    /// Counts a pass over `path` (see [`SplitRows::count_pass`]).
    pub(super) fn count_bad_rows(&mut self, path: &Path, bad: &BadRows) {
        let seen = self.bad_rows.entry(path.to_path_buf()).or_default();
        seen.count_pass(bad);
    }

    /// The per-split counts for the report, keyed by file stem.
    pub(super) fn split_rows(&self) -> BTreeMap<String, SplitRows> {
        self.bad_rows
            .iter()
            .map(|(p, rows)| {
                let stem = p.file_stem().unwrap_or_default().to_string_lossy();
                (stem.into_owned(), *rows)
            })
            .collect()
    }

    /// Rows skipped as malformed in all files.
    pub(super) fn skipped_rows(&self) -> u64 {
        self.bad_rows.values().map(|r| r.skipped).sum()
    }
}
