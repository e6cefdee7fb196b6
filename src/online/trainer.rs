//! [`OnlineTrainer::start`]: a streaming run set up from a `train` run (warm start) or from its own
//! last checkpoint (resume). As for `train`, everything that can fail is done before the output
//! folder is touched: the model file, schema and encoder are read, the graph compiled and the
//! state restored; then the folder is locked and, for a fresh run, its inputs written.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::log::StreamLog;
use super::options::OnlineOptions;
use super::rolling::RollingMetrics;
use super::source::{StreamOptions, StreamReader};
use super::state::{OnlineState, IDS_KEY, LOG_FILE, ONLINE_KEY, WARM_START_FILE};
use crate::checkpoint::{remove_leftover_temporaries, Checkpoint};
use crate::config::ModelConfig;
use crate::data::encode::Encoder;
use crate::data::Schema;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::graph::Graph;
use crate::model::ModelPlan;
use crate::run::{feature_shapes, RunFolder, RunLock, CONFIG_KEY};
use crate::train::policy::TrainPolicy;

/// A streaming run (see the [module docs](super)).
pub struct OnlineTrainer<'g> {
    pub(super) gpu: &'g Gpu,
    pub(super) config_text: String,
    pub(super) schema_path: PathBuf,
    pub(super) encoder: Encoder,
    pub(super) graph: Graph,
    pub(super) policy: TrainPolicy,
    pub(super) folder: RunFolder,
    pub(super) options: OnlineOptions,
    pub(super) state: OnlineState,
    pub(super) reader: StreamReader,
    pub(super) log: StreamLog,
    /// When the last snapshot was published (or the run started).
    pub(super) last_publish: Instant,
    _lock: RunLock,
}

/// The model file, schema and encoder of a run folder, and the checkpoint to start from.
struct Inputs {
    config: ModelConfig,
    config_text: String,
    schema: Schema,
    schema_path: PathBuf,
    encoder: Encoder,
    checkpoint: Checkpoint,
}

/// Reads the model, schema and encoder of run folder `dir` and its checkpoint `ckpt`.
fn read_inputs(dir: &Path, ckpt: &Path) -> Result<Inputs> {
    let folder = RunFolder::new(dir);
    let config_path = folder.config_file();
    let config_text = ModelConfig::read_text(&config_path)?;
    let config = ModelConfig::parse(&config_text, &config_path.display().to_string())?;
    let schema_path = folder.schema_file();
    let schema = Schema::load(&schema_path)?;
    let schema_file = schema_path.display().to_string();
    let encoder = Encoder::load(&folder.encoder_dir(), &config, &schema, &schema_file)?;
    let checkpoint = Checkpoint::read(ckpt)?;
    Ok(Inputs {
        config,
        config_text,
        schema,
        schema_path,
        encoder,
        checkpoint,
    })
}

/// The checkpoint a warm start continues: the run's best (the model `train` chose), else its
/// last. Both hold the whole training state.
fn warm_start_checkpoint(from: &Path) -> Result<PathBuf> {
    RunFolder::new(from).serving_checkpoint()
}

fn refuse(out: &Path, message: impl Into<String>) -> Error {
    Error::run_folder(out, message.into())
}

impl<'g> OnlineTrainer<'g> {
    /// Sets up the run (see the module docs): warm start from `options.from`, or resume from
    /// `options.out`'s last checkpoint.
    pub fn start(gpu: &'g Gpu, options: OnlineOptions) -> Result<Self> {
        let folder = RunFolder::new(&options.out);
        let (inputs, resumed) = read_start(&options, &folder)?;
        let Inputs {
            config,
            config_text,
            schema,
            schema_path,
            mut encoder,
            checkpoint,
        } = inputs;
        let (graph, policy) = compile(gpu, &config, &encoder, &checkpoint)?;
        let state = if resumed {
            resume_state(&checkpoint, &mut encoder, &folder.last())?
        } else {
            fresh_state(&config, &options)?
        };
        let stream = stream_options(&config, &options);
        let reader = StreamReader::open(&options.source, &schema, stream, state.position.as_ref())?;
        let lock = take_folder(&folder)?;
        if let (Some(from), false) = (&options.from, resumed) {
            write_fresh_folder(&folder, from, &config_text, &schema_path, &encoder)?;
        }
        let log_at = resumed.then_some(state.log_len);
        let log = StreamLog::open(&folder.dir().join(LOG_FILE), log_at)?;
        Ok(OnlineTrainer {
            gpu,
            config_text,
            schema_path,
            encoder,
            graph,
            policy,
            folder,
            options,
            state,
            reader,
            log,
            last_publish: Instant::now(),
            _lock: lock,
        })
    }

    /// The compiled graph.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The encoder, with its id maps as they stand.
    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    /// The run's counters.
    pub fn state(&self) -> &OnlineState {
        &self.state
    }

    /// Writes the whole state (graph with optimizer state, id maps, stream position, rolling
    /// metrics, log length) to the run's `last.safetensors`, after syncing the log.
    pub(super) fn checkpoint(&mut self) -> Result<()> {
        self.state.log_len = self.log.sync()?;
        let mut ckpt = Checkpoint::new();
        self.graph.save_state(self.gpu, &mut ckpt)?;
        ckpt.insert_json(ONLINE_KEY, &self.state)?;
        ckpt.insert_metadata(IDS_KEY, self.encoder.online_state()?);
        ckpt.insert_metadata(CONFIG_KEY, self.config_text.as_str());
        ckpt.write(&self.folder.last())
    }
}

/// The inputs to start from and whether this is a resume, after checking the options agree.
fn read_start(options: &OnlineOptions, folder: &RunFolder) -> Result<(Inputs, bool)> {
    let out = folder.dir();
    if options.frozen && options.publish.is_some() {
        return Err(refuse(
            out,
            "a frozen run learns nothing: there is nothing to publish",
        ));
    }
    match (&options.from, options.resume) {
        (Some(_), true) => Err(refuse(
            out,
            "--from starts a new online run; --resume continues one",
        )),
        (None, false) => Err(refuse(
            out,
            "a new online run needs --from <train run folder>",
        )),
        (None, true) => {
            let inputs = read_inputs(out, &folder.last())?;
            check_same_mode(&inputs.checkpoint, options, &folder.last())?;
            Ok((inputs, true))
        }
        (Some(from), false) => {
            check_fresh(folder, options.overwrite)?;
            Ok((read_inputs(from, &warm_start_checkpoint(from)?)?, false))
        }
    }
}

/// The model compiled as `train` compiles it, with the checkpoint's whole training state.
fn compile(
    gpu: &Gpu,
    config: &ModelConfig,
    encoder: &Encoder,
    checkpoint: &Checkpoint,
) -> Result<(Graph, TrainPolicy)> {
    let policy = TrainPolicy::new(&config.train);
    let plan = ModelPlan::new(config, &feature_shapes(config, encoder))?;
    let correction = encoder.logit_correction();
    let batch = config.train.batch_size;
    let mut graph = Graph::compile(gpu, plan, policy.optimizers(), batch, correction)?;
    graph.load_state(gpu, checkpoint, false)?;
    Ok((graph, policy))
}

/// Batches of the model's batch size; a followed source's partial batch after half a second
/// without a row.
fn stream_options(config: &ModelConfig, options: &OnlineOptions) -> StreamOptions {
    StreamOptions {
        batch_rows: config.train.batch_size as usize,
        skip_bad_rows: options.skip_bad_rows,
        follow: options.follow,
        idle_exit: options.idle_exit,
        flush_after: std::time::Duration::from_millis(500),
        poll: std::time::Duration::from_millis(50),
    }
}

/// Creates the folder, takes its lock and removes temporaries an interrupted write left.
fn take_folder(folder: &RunFolder) -> Result<RunLock> {
    let out = folder.dir();
    std::fs::create_dir_all(out).map_err(|e| refuse(out, format!("cannot create: {e}")))?;
    let lock = RunLock::acquire(out)?;
    remove_leftover_temporaries(&folder.last())?;
    Ok(lock)
}

/// A fresh run's files (under the lock): the previous run's removed, then the model file,
/// schema and encoder of the warm start, the data folder it trained on and where it came from.
fn write_fresh_folder(
    folder: &RunFolder,
    from: &Path,
    config_text: &str,
    schema_path: &Path,
    encoder: &Encoder,
) -> Result<()> {
    clear_previous(folder)?;
    let data = std::fs::read_to_string(RunFolder::new(from).data_path_file())
        .map(PathBuf::from)
        .unwrap_or_else(|_| from.to_path_buf());
    folder.write_inputs(config_text, schema_path, encoder, &data)?;
    write_warm_start(folder, from)
}

/// A new online run refuses a folder holding one (or a `train` run) unless `overwrite`. Reads
/// only: [`clear_previous`] removes under the lock.
fn check_fresh(folder: &RunFolder, overwrite: bool) -> Result<()> {
    let held = folder.last().exists() || folder.best().exists();
    if held && !overwrite {
        return Err(refuse(
            folder.dir(),
            "holds a run already: --resume to continue it, --overwrite to replace it",
        ));
    }
    Ok(())
}

/// Removes the checkpoints and log of the run a fresh one replaces (called under the lock).
fn clear_previous(folder: &RunFolder) -> Result<()> {
    for f in [folder.last(), folder.best(), folder.dir().join(LOG_FILE)] {
        if f.exists() {
            std::fs::remove_file(&f).map_err(|e| folder_error(folder, &f, e))?;
        }
    }
    Ok(())
}

/// A resume continues the run as it was started: `--frozen` and `--no-admission` must match.
fn check_same_mode(ckpt: &Checkpoint, options: &OnlineOptions, file: &Path) -> Result<()> {
    let state: OnlineState = ckpt.json(ONLINE_KEY)?;
    let want = (!options.frozen, !options.frozen && !options.no_admission);
    if (state.learning, state.admission) != want {
        return Err(Error::checkpoint(
            file,
            Some(ONLINE_KEY),
            format!(
                "the run was started with learning {} and admission {}; resume it with the same \
                 --frozen / --no-admission",
                state.learning, state.admission
            ),
        ));
    }
    Ok(())
}

fn folder_error(folder: &RunFolder, path: &Path, e: std::io::Error) -> Error {
    refuse(folder.dir(), format!("{}: {e}", path.display()))
}

fn write_warm_start(folder: &RunFolder, from: &Path) -> Result<()> {
    let from = std::fs::canonicalize(from).unwrap_or_else(|_| from.to_path_buf());
    let path = folder.dir().join(WARM_START_FILE);
    std::fs::write(&path, from.display().to_string()).map_err(|e| folder_error(folder, &path, e))
}

fn fresh_state(config: &ModelConfig, options: &OnlineOptions) -> Result<OnlineState> {
    let names = config.outputs().into_iter().map(|o| o.name).collect();
    Ok(OnlineState {
        steps: 0,
        rows: 0,
        rejected: 0,
        position: None,
        rolling: RollingMetrics::new(names, options.window)?,
        log_len: 0,
        published: None,
        learning: !options.frozen,
        admission: !options.frozen && !options.no_admission,
    })
}

/// The counters and id maps of an online checkpoint (`file` names it in errors).
fn resume_state(ckpt: &Checkpoint, encoder: &mut Encoder, file: &Path) -> Result<OnlineState> {
    let state: OnlineState = ckpt.json(ONLINE_KEY)?;
    encoder.restore_online_state(ckpt.metadata(IDS_KEY)?, file)?;
    Ok(state)
}
