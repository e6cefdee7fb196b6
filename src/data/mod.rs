//! Data in: sample tables typed by a schema, read in streaming batches, and id vocabularies
//! (DATA.md §2). GPU-free.
//!
//! # The schema file
//! `schema.toml` beside the data describes the columns of a delimited file, in order:
//! ```toml
//! delimiter = "\t"   # one ASCII character (default "\t"); "," for CSV
//! quote = "\""       # quote of RFC-4180 quoted fields (default "\""); "" turns quoting off
//! header = true      # the first line names the columns, which must match the names below (default true)
//! [[column]]
//! name = "click"
//! type = "label"     # label | categorical | numeric | multi_hot | timestamp | weight
//!                    # | sequence | sequence_times | skip
//! [[column]]
//! name = "history"
//! type = "sequence"
//! separator = "|"    # multi_hot, sequence, sequence_times (default "|")
//! [[column]]
//! name = "history_times"
//! type = "sequence_times"
//! sequence = "history"  # the sequence these are the times of (default: the only sequence column
//!                       # before; an error if several)
//! ```
//! Wide files take the compact form instead of `[[column]]` tables: `columns` is a comma-separated
//! list of `type:name` or `type:PREFIXa-PREFIXb` items, the latter standing for the names `PREFIXa`
//! … `PREFIXb` (same prefix, decimal bounds, `a ≤ b`; anything else is one literal name), each
//! column with the defaults of its type; `sequence_times:T@S` links times `T` to sequence `S`.
//! At most [`MAX_COLUMNS`] columns. The Criteo layout in three lines:
//! ```toml
//! delimiter = "\t"
//! header = false
//! columns = "label:label, numeric:I1-I13, categorical:C1-C26"
//! ```
//! Errors in a schema are [`crate::Error::Config`] naming the key (`column[3].type`, with the
//! 0-based index of the column after expansion of the compact form).
//!
//! # Values
//! label: `0` or `1` (f32). numeric: a finite number (f64; surrounding spaces allowed); an empty
//! field is [`MISSING`] (NaN), while the text `NaN` or `inf` is an error. timestamp: an integer
//! (i64). weight: finite, ≥ 0 (f32). categorical: the raw string, untouched (an empty field is the
//! id `""`). multi_hot, sequence: ids split on the separator into a [`Ragged`] (CSR) column; an empty
//! field is an empty list, an empty id inside (`a||b`) an error. sequence_times: finite numbers
//! split likewise (f64 CSR), as many per row as its sequence has ids.
//!
//! # Errors
//! A malformed row is [`crate::Error::Data`]: `file:line: column 3 "I2": message`, the line being
//! the 1-based line of the file where the row starts (a quoted field may span lines). Wrong field
//! counts, bad quoting and invalid UTF-8 name the line only. A missing file names the file; a file
//! with no rows (empty, or a header only) is an error, not zero batches. With
//! [`ReadOptions::skip_bad_rows`] bad rows are counted in [`BadRows`] instead.
//!
//! # Which module uses which
//! The dependencies inside `data` point one way, from the model batch down to the file (`a → b`:
//! `a` uses `b`; none goes back up):
//! ```text
//! loader → encode → table → batch → schema → schema_columns
//!                   table → record
//!          encode → vocab → batch
//!          encode → numeric
//! events → table
//! ```
//! `schema_columns` (the column types and the compact form) knows nothing above it; `schema` the
//! file format; `batch` the typed columns; `table` reads files into batches (`record` splits
//! quoted fields); `encode` turns batches into model batches and owns `Schema::check_model`,
//! which runs its column resolution; `loader` streams encoded batches on a thread; `events` turns
//! event logs into sample tables. `splits`, `ml100k` and `synth` stand alone. No module here goes
//! through the re-exports below. The tests point the same way: `encode`'s tests do not use the
//! loader; the loader's tests use `encode`'s helpers; `data::tests` runs the encoder through the
//! loader.

pub mod batch;
pub mod embeddings;
pub mod encode;
pub mod events;
pub mod idmap;
pub mod loader;
pub mod numeric;
mod record;
pub mod schema;
mod schema_columns;
pub mod splits;
pub mod table;
pub mod vocab;

#[cfg(test)]
mod tests;

pub use batch::{Batch, ColumnData, Ragged, Tokens, MISSING};
pub use embeddings::EmbeddingTable;
pub use encode::{Encoder, FeatureInput, FreshRows, IdMapStats, ModelBatch};
pub use idmap::{IdMap, IdMapCounters, IdMapOptions, IdMapState};
pub use loader::Loader;
pub use schema::{Column, ColumnKind, Schema};
pub use schema_columns::MAX_COLUMNS;
pub use splits::{split_path, SplitRows, SPLIT_NAMES};
pub use table::{BadRows, ReadOptions, TableReader};
pub use vocab::{stable_hash, Vocabulary, VocabularyCounter, OOV_ROW};

pub mod ml100k;
pub mod obd;
pub mod pip;
pub mod synth;
