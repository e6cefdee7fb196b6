//! Reading the OBD CSV files out of the wheel: plain comma-separated text with a header whose
//! first column (pandas' index) is unnamed; no field is quoted. Errors name the wheel entry,
//! the line and the column.

use super::err;
use crate::Result;
use std::collections::HashMap;
use std::io::Read;

/// A CSV file's rows, with its name and the header's column positions.
pub(super) struct Csv {
    /// `wheel!entry`, for messages.
    pub name: String,
    columns: HashMap<String, usize>,
    /// Rows of fields (line i + 2 of the file is `rows[i]`).
    pub rows: Vec<Vec<String>>,
}

impl Csv {
    /// Reads `entry` from the opened wheel.
    pub fn read<R: std::io::Read + std::io::Seek>(
        zip: &mut zip::ZipArchive<R>,
        wheel: &str,
        entry: &str,
    ) -> Result<Csv> {
        let name = format!("{wheel}!{entry}");
        let mut file = zip
            .by_name(entry)
            .map_err(|e| err(format!("{wheel} has no {entry}: {e}")))?;
        let mut text = String::new();
        file.read_to_string(&mut text)
            .map_err(|e| err(format!("cannot read {name}: {e}")))?;
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
        let columns = header
            .iter()
            .enumerate()
            .map(|(j, h)| (h.to_string(), j))
            .collect();
        let mut rows = Vec::new();
        for (i, line) in lines.enumerate() {
            let fields: Vec<String> = line.split(',').map(str::to_owned).collect();
            if fields.len() != header.len() {
                return Err(err(format!(
                    "{name}:{}: {} fields, the header has {}",
                    i + 2,
                    fields.len(),
                    header.len()
                )));
            }
            rows.push(fields);
        }
        Ok(Csv {
            name,
            columns,
            rows,
        })
    }

    /// The position of column `name`, or an error naming the file.
    pub fn column(&self, name: &str) -> Result<usize> {
        self.columns
            .get(name)
            .copied()
            .ok_or_else(|| err(format!("{}: no column {name:?}", self.name)))
    }

    /// Field `column` of row `row` parsed as a number, or an error naming line and column.
    pub fn number(&self, row: usize, column: (usize, &str)) -> Result<f64> {
        let text = &self.rows[row][column.0];
        text.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| {
                err(format!(
                    "{}:{}: column {:?}: {text:?} is not a finite number",
                    self.name,
                    row + 2,
                    column.1
                ))
            })
    }
}
