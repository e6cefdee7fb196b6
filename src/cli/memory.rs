//! The memory statement on the command line: `wgrec plan` (the statement, the device's limits
//! and a verdict, without training), and the table `train --verbose` prints and the `"memory"`
//! object `train --json` adds. The numbers are [`MemoryReport`]'s, the check's own.

use std::path::PathBuf;

use serde_json::{json, Value};
use wgrec::config::human_bytes;
use wgrec::graph::{MemoryLimits, MemoryReport};

/// The arguments of `wgrec plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The model file (TOML; see docs/config.md).
    #[arg(long)]
    pub config: PathBuf,
    /// The data folder (default: data/<config file stem>/); its training split is read to size
    /// the tables, as `train` does; nothing is written.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// The batch capacity to size activations for (default: the model file's train.batch_size).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch: Option<u32>,
    /// Print one JSON object on stdout (the statement, the limits, `fits` and `error`).
    #[arg(long)]
    pub json: bool,
    /// Count malformed training rows and go on instead of stopping at the first.
    #[arg(long)]
    pub skip_bad_rows: bool,
}

/// `wgrec plan`: exits non-zero when the model does not fit.
pub fn plan(args: PlanArgs) -> anyhow::Result<()> {
    let text = wgrec::config::ModelConfig::read_text(&args.config)?;
    let data = match args.data {
        Some(d) => d,
        None => super::train::default_data(&args.config)?,
    };
    let gpu = super::tune::gpu()?;
    let name = args.config.display().to_string();
    let (config, shapes) =
        wgrec::train::plan_shapes(&gpu, &text, &name, &data, args.skip_bad_rows)?;
    let batch = args.batch.unwrap_or(config.train.batch_size);
    let optimizers = wgrec::train::policy::TrainPolicy::new(&config.train).optimizers();
    let limits = MemoryLimits::of(&gpu);
    // Chunks as the graph cuts them: the binding and buffer limits' smaller.
    let report = MemoryReport::new(&config, &shapes, batch, &optimizers, limits.per_buffer());
    let verdict = report.check(&limits);
    if args.json {
        let mut out = json!({
            "config": name,
            "data": data.display().to_string(),
            "adapter": gpu.describe(),
            "memory": memory_json(&report),
            "limits": limits_json(&limits),
            "fits": verdict.is_ok(),
        });
        if let Err(e) = &verdict {
            out["error"] = json!(e.to_string());
        }
        println!("{out}");
    } else {
        println!("{} on {}:", name, data.display());
        print!("{}", memory_table(&report));
        println!("device: {}", gpu.describe());
        println!("{}", limits_line(&limits));
        match &verdict {
            Ok(()) => println!("fits"),
            Err(_) => println!("does not fit"),
        }
    }
    verdict.map_err(anyhow::Error::from)
}

/// The statement as a compact table, one line per table, group and total, human bytes.
pub fn memory_table(report: &MemoryReport) -> String {
    let mut out = format!("memory at a batch capacity of {}:\n", report.max_batch);
    let name_width = (report.tables.iter().map(|t| t.name.len()))
        .max()
        .unwrap_or(0)
        .max(5);
    out += &format!(
        "  {:name_width$} {:>10} {:>6} {:>10} {:>10}\n",
        "table", "rows", "width", "weights", "state"
    );
    for t in &report.tables {
        out += &format!(
            "  {:name_width$} {:>10} {:>6} {:>10} {:>10}\n",
            t.name,
            t.rows,
            t.width,
            human_bytes(t.weights),
            human_bytes(t.state)
        );
    }
    for (i, g) in report.groups.iter().enumerate() {
        out += &format!(
            "  storage group {i}: {}{}, {} in {} chunk(s) of {} (a group holds at most {})\n",
            plural(g.tables, "table"),
            match (g.tables, g.split) {
                (_, 0) => String::new(),
                (1, _) => " (a row range of a table split by rows)".into(),
                (_, k) => format!(" ({k} of them row ranges of tables split by rows)"),
            },
            human_bytes(g.bytes),
            g.chunks,
            human_bytes(g.chunk_bytes),
            human_bytes(g.limit)
        );
    }
    let acts: Vec<String> = (report.activations().into_iter())
        .filter(|&(_, b)| b > 0)
        .map(|(k, b)| format!("{} {}", k.replace('_', " "), human_bytes(b)))
        .collect();
    out += &format!("  activations: {}\n", acts.join(", "));
    out += &format!(
        "  dense parameters and gradients {}, dense optimizer state {}\n",
        human_bytes(report.dense()),
        human_bytes(report.dense_optimizer())
    );
    out += &format!("  total {}\n", human_bytes(report.total()));
    out
}

/// The `"memory"` object: every number in bytes.
pub fn memory_json(report: &MemoryReport) -> Value {
    let tables: Vec<Value> = (report.tables.iter())
        .map(|t| {
            json!({"name": t.name, "rows": t.rows, "width": t.width, "weights": t.weights,
                   "state": t.state, "bytes": t.bytes()})
        })
        .collect();
    let groups: Vec<Value> = (report.groups.iter())
        .map(|g| {
            json!({"tables": g.tables, "split": g.split, "bytes": g.bytes, "chunks": g.chunks,
                   "chunk_bytes": g.chunk_bytes, "limit": g.limit, "fits": g.fits()})
        })
        .collect();
    let activations: serde_json::Map<String, Value> = (report.activations().into_iter())
        .map(|(k, b)| (k.to_string(), json!(b)))
        .collect();
    json!({
        "batch": report.max_batch,
        "tables": tables,
        "groups": groups,
        "activations": activations,
        "dense": report.dense(),
        "dense_optimizer": report.dense_optimizer(),
        "total": report.total(),
    })
}

fn limits_json(limits: &MemoryLimits) -> Value {
    json!({
        "binding": limits.binding,
        "buffer": limits.buffer,
        "host": limits.host,
        "buffers_on_host": limits.buffers_on_host,
    })
}

fn limits_line(limits: &MemoryLimits) -> String {
    let host = limits.host.map_or("unknown".to_string(), human_bytes);
    format!(
        "limits: one binding {}, one buffer {}, host memory {host}{}",
        human_bytes(limits.binding),
        human_bytes(limits.buffer),
        if limits.buffers_on_host {
            " (the device's buffers live in it)"
        } else {
            ""
        }
    )
}

/// `n thing` or `n things`.
fn plural(n: usize, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}
