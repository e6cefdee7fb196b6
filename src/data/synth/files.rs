//! The synthetic table on disk: the train/valid/test files in the table or Criteo layout, and
//! their `schema.toml`.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;

use super::{hash3, Synth, SynthRow};
use crate::{Error, Result};

/// The file layouts [`write`] produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// TSV with a header and the columns of [`Synth::columns`].
    Table,
    /// Criteo: label, 13 integers, 26 categorical as 8 hex digits, no header (first task only, no
    /// scenarios).
    Criteo,
}

/// What [`write`] produced.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteStats {
    /// Rows in train, valid, test.
    pub rows: [u64; 3],
    /// Observed positive rate of each task over all rows.
    pub positive_rate: Vec<f64>,
    /// Rows written per second (generation and formatting).
    pub rows_per_sec: f64,
}

/// Writes `rows` rows split 80/10/10 (by row index, hence by time) into `train.tsv`, `valid.tsv`,
/// `test.tsv`, and `schema.toml`, under `out`.
pub fn write(synth: &Synth, rows: u64, layout: Layout, out: &Path) -> Result<WriteStats> {
    let io = |p: &Path, e: std::io::Error| {
        Error::Dataset(format!("synth: cannot write {}: {e}", p.display()))
    };
    if layout == Layout::Criteo && synth.config.scenarios > 0 {
        return Err(Error::Dataset(
            "synth: the Criteo layout has no scenario column; use the table layout".into(),
        ));
    }
    fs::create_dir_all(out).map_err(|e| io(out, e))?;
    let start = std::time::Instant::now();
    let bounds = [0, rows * 8 / 10, rows * 9 / 10, rows];
    let mut positives = vec![0u64; synth.tasks()];
    let mut row = SynthRow::default();
    let mut line = Vec::with_capacity(1024);
    for (s, name) in ["train", "valid", "test"].iter().enumerate() {
        let path = out.join(format!("{name}.tsv"));
        let mut w =
            BufWriter::with_capacity(1 << 20, File::create(&path).map_err(|e| io(&path, e))?);
        if layout == Layout::Table {
            let names: Vec<String> = synth.columns().into_iter().map(|c| c.0).collect();
            writeln!(w, "{}", names.join("\t")).map_err(|e| io(&path, e))?;
        }
        for i in bounds[s]..bounds[s + 1] {
            synth.row(i, &mut row);
            for (p, &l) in positives.iter_mut().zip(&row.labels) {
                *p += u64::from(l);
            }
            line.clear();
            match layout {
                Layout::Table => format_table(&row, &mut line),
                Layout::Criteo => format_criteo(&row, &mut line),
            }
            w.write_all(&line).map_err(|e| io(&path, e))?;
        }
        w.flush().map_err(|e| io(&path, e))?;
    }
    let schema = out.join("schema.toml");
    fs::write(&schema, schema_toml(synth, layout)).map_err(|e| io(&schema, e))?;
    Ok(WriteStats {
        rows: [bounds[1], bounds[2] - bounds[1], rows - bounds[2]],
        positive_rate: positives
            .iter()
            .map(|&p| p as f64 / rows.max(1) as f64)
            .collect(),
        rows_per_sec: rows as f64 / start.elapsed().as_secs_f64().max(1e-9),
    })
}

/// The `schema.toml` for a layout.
pub fn schema_toml(synth: &Synth, layout: Layout) -> String {
    let head = format!(
        "# Synthetic data (DATA.md §3), seed {}.\ndelimiter = \"\\t\"\n",
        synth.config.seed
    );
    match layout {
        // The Criteo layout from its three-line compact schema (DATA.md §2).
        Layout::Criteo => format!(
            "{head}header = false\ncolumns = \"label:click, numeric:I1-I{}, categorical:C1-C{}\"\n",
            synth.config.numeric,
            synth.config.vocabs.len()
        ),
        Layout::Table => {
            let mut s = format!("{head}header = true\n");
            for (name, kind) in synth.columns() {
                s.push_str(&format!(
                    "\n[[column]]\nname = \"{name}\"\ntype = \"{kind}\"\n"
                ));
                if matches!(kind, "sequence" | "sequence_times") {
                    s.push_str("separator = \"|\"\n");
                }
                if kind == "sequence_times" {
                    // The times of the item history (the nearest sequence before is hist_cat).
                    s.push_str("sequence = \"hist_item\"\n");
                }
            }
            s
        }
    }
}

fn push_u64(line: &mut Vec<u8>, mut x: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (x % 10) as u8;
        x /= 10;
        if x == 0 {
            break;
        }
    }
    line.extend_from_slice(&buf[i..]);
}

fn push_list<T: Copy>(line: &mut Vec<u8>, values: &[T], f: impl Fn(T) -> u64) {
    for (k, &v) in values.iter().enumerate() {
        if k > 0 {
            line.push(b'|');
        }
        push_u64(line, f(v));
    }
}

fn format_table(row: &SynthRow, line: &mut Vec<u8>) {
    for (k, &l) in row.labels.iter().enumerate() {
        if k > 0 {
            line.push(b'\t');
        }
        push_u64(line, u64::from(l));
    }
    for &id in &row.ids {
        line.push(b'\t');
        push_u64(line, id);
    }
    let scenario = row.scenario.is_some().then_some(&row.scenario);
    for v in row.categorical.iter().chain(scenario).chain(&row.numeric) {
        line.push(b'\t');
        if let Some(v) = v {
            push_u64(line, *v);
        }
    }
    if !row.ids.is_empty() {
        line.push(b'\t');
        push_u64(line, row.timestamp as u64);
        line.push(b'\t');
        push_list(line, &row.hist_items, |x| x);
        line.push(b'\t');
        push_list(line, &row.hist_cats, |x| x);
        line.push(b'\t');
        push_list(line, &row.hist_times, |x| x as u64);
    }
    line.push(b'\n');
}

fn format_criteo(row: &SynthRow, line: &mut Vec<u8>) {
    push_u64(line, u64::from(row.labels[0]));
    for v in &row.numeric {
        line.push(b'\t');
        if let Some(v) = v {
            push_u64(line, *v);
        }
    }
    for (f, v) in row.categorical.iter().enumerate() {
        line.push(b'\t');
        if let Some(v) = v {
            let h = hash3(0xc817e0, f as u64, *v) as u32;
            for shift in (0..8).rev() {
                line.push(b"0123456789abcdef"[((h >> (4 * shift)) & 15) as usize]);
            }
        }
    }
    line.push(b'\n');
}
