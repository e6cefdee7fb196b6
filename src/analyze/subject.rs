//! What `analyze` reads: a run folder loaded for serving, its checkpoint's tensors, and the data
//! folder it was trained on (`--data`, or the one the run recorded in `data-path.txt`).

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::checkpoint::Checkpoint;
use crate::config::ModelConfig;
use crate::data::encode::{Encoder, ModelBatch};
use crate::data::{split_path, ReadOptions, TableReader};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::run::RunFolder;
use crate::serve::Predictor;

/// A trained run, ready to analyse.
pub struct Subject {
    /// The run folder.
    pub run: PathBuf,
    /// The data folder (schema.toml, train, valid, test).
    pub data: PathBuf,
    /// The model on the GPU, in evaluation mode, with the serving checkpoint's weights.
    pub predictor: Predictor,
    /// The serving checkpoint's tensors (`emb.<table>.<feature>` rows, dense weights).
    pub checkpoint: Checkpoint,
}

impl Subject {
    /// Loads the run folder `run` onto `gpu`; `data` overrides the data folder the run recorded.
    /// A folder that is not a run, or a checkpoint that does not belong to its model file, is the
    /// error [`Predictor::load`] gives.
    pub fn load(gpu: &Gpu, run: &Path, data: Option<&Path>) -> Result<Self> {
        if !crate::run::is_run_folder(run) {
            return Err(Error::RunFolder {
                dir: run.to_path_buf(),
                message: "not a run folder (no config.toml with encoder/, no checkpoint): pass \
                          the --out folder of a `wgrec train`"
                    .into(),
            });
        }
        let predictor = Predictor::load(gpu, run)?;
        let mut checkpoint = Checkpoint::read(predictor.checkpoint())?;
        checkpoint.widen_halves(); // f16 tables read as the f32 values they hold
        let data = match data {
            Some(d) => d.to_path_buf(),
            None => {
                let recorded = RunFolder::new(run).data_path_file();
                let text = std::fs::read_to_string(&recorded).map_err(|e| Error::RunFolder {
                    dir: run.to_path_buf(),
                    message: format!(
                        "no --data given and {} is unreadable ({e}): pass --data <dir>",
                        recorded.display()
                    ),
                })?;
                PathBuf::from(text.trim_end_matches(['\n', '\r']))
            }
        };
        Ok(Subject {
            run: run.to_path_buf(),
            data,
            predictor,
            checkpoint,
        })
    }

    /// The model file.
    pub fn config(&self) -> &ModelConfig {
        self.predictor.config()
    }

    /// The fitted encoder.
    pub fn encoder(&self) -> &Encoder {
        self.predictor.encoder()
    }

    /// The file of split `name` (`train`, `valid`, `test`) in the data folder.
    pub fn split(&self, name: &str) -> Result<PathBuf> {
        split_path(&self.data, name)
    }

    /// The encoded batches of split `name`, in file order, at most the model's batch size each.
    pub fn batches(&self, name: &str) -> Result<Batches> {
        let file = self.split(name)?;
        let options = ReadOptions {
            batch_rows: self.predictor.max_batch() as usize,
            ..ReadOptions::default()
        };
        Ok(Batches {
            reader: TableReader::open(&file, self.predictor.schema(), options)?,
            encoder: self.predictor.shared_encoder(),
            file: file.display().to_string(),
        })
    }

    /// Embedding table `table`'s rows of feature `feature` (`emb.<table>.<feature>`): the data and
    /// its `[rows, width]` shape.
    pub fn table(&self, table: usize, feature: &str) -> Result<(&[f32], [usize; 2])> {
        let name = format!("emb.{table}.{feature}");
        let bad = |message: String| Error::Checkpoint {
            file: self.predictor.checkpoint().to_path_buf(),
            key: Some(name.clone()),
            message,
        };
        let t = self
            .checkpoint
            .tensors()
            .get(&name)
            .ok_or_else(|| bad("no such tensor".into()))?;
        match *t.shape.as_slice() {
            [rows, width] => Ok((&t.data, [rows, width])),
            ref other => Err(bad(format!("shape {other:?}, not [rows, width]"))),
        }
    }
}

/// The encoded batches of one split (see [`Subject::batches`]).
pub struct Batches {
    reader: TableReader<BufReader<File>>,
    encoder: Arc<Encoder>,
    file: String,
}

impl Iterator for Batches {
    type Item = Result<ModelBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        let batch = match self.reader.next_batch() {
            Ok(Some(b)) => b,
            Ok(None) => return None,
            Err(e) => return Some(Err(e)),
        };
        Some(self.encoder.encode(&batch, &self.file))
    }
}
