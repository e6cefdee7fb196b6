//! `wgrec data fetch ml-100k --into <dir>` and `wgrec data synth …`: the bundled dataset and the
//! synthetic generator as files.

use std::path::Path;
use wgrec::data::ml100k;
use wgrec::data::synth::{
    write, write_content, ConflictMode, ContentOptions, Layout, Synth, SynthConfig,
    DEFAULT_CONTENT_NOISE,
};

/// Fetches MovieLens-100K into `<dir>/raw/`, applies the protocol and prints the facts per split.
pub fn fetch_ml100k(dir: &Path) -> anyhow::Result<()> {
    let raw = ml100k::fetch(dir)?;
    let stats = ml100k::prepare(&raw, dir)?;
    println!(
        "ml-100k: raw files in {}, splits and schema.toml in {}",
        raw.display(),
        dir.display()
    );
    println!("split  events  click   love    user_oov item_oov mean_hist empty_hist");
    for s in &stats.splits {
        println!(
            "{:<6} {:>6}  {:.4}  {:.4}  {:>6.1}%  {:>6.2}%  {:>8.2}  {:>8.2}%",
            s.name,
            s.events,
            s.click_rate,
            s.love_rate,
            100.0 * s.user_oov,
            100.0 * s.item_oov,
            s.mean_history,
            100.0 * s.empty_history
        );
    }
    let vocab: Vec<String> = stats
        .train_vocab
        .iter()
        .map(|(n, k)| format!("{k} {n}"))
        .collect();
    println!("train vocabularies: {}", vocab.join(", "));
    Ok(())
}

/// The options of `wgrec data synth`.
#[derive(Debug)]
pub struct SynthArgs {
    /// Rows in all (split 80/10/10).
    pub rows: u64,
    /// Output folder.
    pub out: std::path::PathBuf,
    /// The Criteo layout instead of the sample table.
    pub criteo: bool,
    /// Generator seed.
    pub seed: u64,
    /// Mean planted click probability.
    pub positive_rate: f64,
    /// Share of empty values, when not the layout's default.
    pub missing_rate: Option<f64>,
    /// Positive rate of a second correlated task, if wanted.
    pub second_task: Option<f64>,
    /// Extra tasks, their conflict, scenarios.
    pub tasks: SynthTasks,
    /// Content vectors beside the data.
    pub content: SynthContent,
}

/// The content-vector options of `wgrec data synth` (sample-table layout only; issue 16).
#[derive(Debug, clap::Args)]
pub struct SynthContent {
    /// Also write items.safetensors (each item's planted signal through a seeded random map, plus
    /// noise), items-random.safetensors (the same ids, no signal) and users.safetensors, vectors
    /// of this width.
    #[arg(long)]
    pub content_dim: Option<usize>,
    /// Noise sd per component of the content vectors (default 1.0, the signal's sd).
    #[arg(long)]
    pub content_noise: Option<f64>,
}

/// The multi-task options of `wgrec data synth` (sample-table layout only).
#[derive(Debug, clap::Args)]
pub struct SynthTasks {
    /// Extra tasks `task1`, `task2`, … with these positive rates, comma-separated (e.g. 0.3,0.2);
    /// they share the click task's planted model except on the conflicting fields c1, c3, ….
    #[arg(long, value_delimiter = ',')]
    pub extra_tasks: Vec<f64>,
    /// How far the extra tasks depart from the click task on the conflicting fields, in [0, 1].
    #[arg(long, default_value_t = 0.0)]
    pub conflict: f64,
    /// flip: those fields' first-order weights times (1 − 2·conflict); independent: per-task
    /// weights and latent vectors (a shared embedding cannot hold them all).
    #[arg(long, value_enum, default_value_t = ConflictChoice::Flip)]
    pub conflict_mode: ConflictChoice,
    /// Add a `scenario` column uniform over 0..N (a bias per scenario and task, a slope on c0).
    #[arg(long, default_value_t = 0)]
    pub scenarios: u64,
    /// Vocabulary sizes of the context fields c0, c1, …, comma-separated (default: 8 fields
    /// log-spaced from 10 to 10^7).
    #[arg(long, value_delimiter = ',')]
    pub vocabs: Vec<u64>,
    /// Longest behaviour sequence; 0 drops the user, item, category and sequence columns
    /// (default 20).
    #[arg(long)]
    pub max_history: Option<usize>,
}

/// `--conflict-mode`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ConflictChoice {
    /// Sign flip of the first-order weights.
    Flip,
    /// Independent per-task weights and latent vectors.
    Independent,
}

/// Writes synthetic data and prints what was written and how fast.
pub fn synth(args: SynthArgs) -> anyhow::Result<()> {
    let (mut config, layout) = if args.criteo {
        (SynthConfig::criteo(args.seed), Layout::Criteo)
    } else {
        (SynthConfig::new(args.seed), Layout::Table)
    };
    let t = &args.tasks;
    if args.criteo && (args.second_task.is_some() || !t.extra_tasks.is_empty()) {
        anyhow::bail!(
            "--second-task and --extra-tasks need the sample-table layout (the Criteo layout has one label)"
        );
    }
    if t.extra_tasks.is_empty() && t.conflict != 0.0 {
        anyhow::bail!("--conflict needs --extra-tasks (the tasks it sets apart)");
    }
    config.extra_task_rates = t.extra_tasks.clone();
    config.conflict = t.conflict;
    config.conflict_mode = match t.conflict_mode {
        ConflictChoice::Flip => ConflictMode::Flip,
        ConflictChoice::Independent => ConflictMode::Independent,
    };
    config.scenarios = t.scenarios;
    if !t.vocabs.is_empty() {
        if args.criteo {
            anyhow::bail!("--vocabs needs the sample-table layout (Criteo has 26 fields)");
        }
        config.vocabs = t.vocabs.clone();
    }
    if let Some(h) = t.max_history {
        if args.criteo {
            anyhow::bail!("--max-history needs the sample-table layout (Criteo has no sequences)");
        }
        config.max_history = h;
    }
    config.positive_rate = args.positive_rate;
    if let Some(m) = args.missing_rate {
        config.missing_rate = m;
    }
    config.second_task = args.second_task.map(|r| (r, 0.7));
    let generator = Synth::new(config)?;
    let content = content_options(&args, &generator)?;
    let stats = write(&generator, args.rows, layout, &args.out)?;
    let rates: Vec<String> = stats
        .positive_rate
        .iter()
        .map(|r| format!("{r:.4}"))
        .collect();
    println!(
        "synth: {} rows (train {}, valid {}, test {}) in {}, positive rate {}, {:.0} rows/s",
        args.rows,
        stats.rows[0],
        stats.rows[1],
        stats.rows[2],
        args.out.display(),
        rates.join(" / "),
        stats.rows_per_sec
    );
    match content {
        Some(options) => write_content_files(&generator, &options, &args.out),
        None => Ok(()),
    }
}

/// `--content-dim` / `--content-noise` as options, refused (before any file is written) where
/// there is nothing to describe or the generator cannot honour them.
fn content_options(args: &SynthArgs, generator: &Synth) -> anyhow::Result<Option<ContentOptions>> {
    let c = &args.content;
    let options = match (c.content_dim, c.content_noise) {
        (None, None) => return Ok(None),
        (None, Some(_)) => anyhow::bail!("--content-noise needs --content-dim"),
        (Some(_), _) if args.criteo => {
            anyhow::bail!("--content-dim needs the sample-table layout (Criteo has no item column)")
        }
        (Some(dim), noise) => ContentOptions {
            dim,
            noise: noise.unwrap_or(DEFAULT_CONTENT_NOISE),
        },
    };
    generator.check_content(&options)?;
    Ok(Some(options))
}

/// Writes the content vectors and says where.
fn write_content_files(
    generator: &Synth,
    options: &ContentOptions,
    out: &Path,
) -> anyhow::Result<()> {
    let paths = write_content(generator, options, out)?;
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    println!(
        "synth: content vectors of width {}, noise {}: {}",
        options.dim,
        options.noise,
        names.join(", ")
    );
    Ok(())
}

/// The options of `wgrec data sequences`.
#[derive(Debug)]
pub struct SequencesArgs {
    /// The event log.
    pub events: std::path::PathBuf,
    /// Its schema.
    pub schema: std::path::PathBuf,
    /// User column.
    pub user: String,
    /// Item column.
    pub item: String,
    /// Time column.
    pub time: String,
    /// Side columns.
    pub side: Vec<String>,
    /// Only positive events are behaviours.
    pub positive: bool,
    /// The label column for `positive`.
    pub label: Option<String>,
    /// Longest history.
    pub max_len: usize,
    /// The sample table to write.
    pub out: std::path::PathBuf,
    /// Skip malformed rows.
    pub skip_bad_rows: bool,
}

/// Builds the sample table and its schema from an event log and prints what was written.
pub fn sequences(args: SequencesArgs) -> anyhow::Result<()> {
    use wgrec::data::events::{build_sequences, Behaviours, SequenceOptions};
    let behaviours = match (args.positive, args.label) {
        (false, None) => Behaviours::All,
        (true, Some(label)) => Behaviours::Positive { label },
        (true, None) => anyhow::bail!("--behaviours positive needs --label <column>"),
        (false, Some(_)) => {
            anyhow::bail!("--label only goes with --behaviours positive")
        }
    };
    let schema = wgrec::data::Schema::load(&args.schema)?;
    let stem = args
        .out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "samples".into());
    let schema_out = args.out.with_file_name(format!("{stem}.schema.toml"));
    let stats = build_sequences(
        &args.events,
        &schema,
        &args.schema.display().to_string(),
        &SequenceOptions {
            user: args.user,
            item: args.item,
            time: args.time,
            side: args.side,
            behaviours,
            max_len: args.max_len,
        },
        wgrec::data::ReadOptions {
            skip_bad_rows: args.skip_bad_rows,
            ..wgrec::data::ReadOptions::default()
        },
        &args.out,
        &schema_out,
    )?;
    println!(
        "sequences: {} rows, {} users, mean history {:.2} in {} (schema {})",
        stats.rows,
        stats.users,
        stats.mean_history,
        args.out.display(),
        schema_out.display()
    );
    if stats.bad_rows.count > 0 {
        println!("{}", stats.bad_rows);
    }
    Ok(())
}

/// `wgrec data hashid`: the SimHash codes of every id of an embedding file, computed on the GPU,
/// written atomically as `id<TAB>code<TAB>binary`.
pub fn hashid(embeddings: &Path, bits: u32, seed: u64, out: &Path) -> anyhow::Result<()> {
    let table = wgrec::data::embeddings::EmbeddingTable::read(embeddings)?;
    let gpu = super::tune::gpu()?;
    let codes = wgrec::train::content::simhash_codes(&gpu, &table, bits, seed)?;
    let mut text = String::new();
    for id in &table.ids {
        let code = codes[id];
        text += &format!("{id}\t{code}\t{code:0width$b}\n", width = bits as usize);
    }
    wgrec::checkpoint::write_atomically(out, |temporary| {
        std::fs::write(temporary, &text).map_err(|e| wgrec::Error::output(temporary, e))
    })?;
    println!(
        "hashid: {} codes of {bits} bits ({} distinct) in {}",
        table.ids.len(),
        codes
            .values()
            .collect::<std::collections::HashSet<_>>()
            .len(),
        out.display()
    );
    Ok(())
}
