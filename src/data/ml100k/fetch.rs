//! Fetching the raw files: pip downloads recbole's wheel into a scratch folder, and the three
//! files are extracted from it into `<dir>/raw/`.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use super::{err, RAW_FILES, RECBOLE, WHEEL_DIR};
use crate::Result;

/// Downloads the recbole wheel with pip into a scratch folder and extracts the three raw files into
/// `<dir>/raw/`, which it returns. Files already there are kept (the download happens once).
pub fn fetch(dir: &Path) -> Result<PathBuf> {
    let raw = dir.join("raw");
    if RAW_FILES.iter().all(|f| raw.join(f).is_file()) {
        return Ok(raw);
    }
    let scratch = dir.join(".download");
    fs::create_dir_all(&scratch)
        .map_err(|e| err(format!("cannot create {}: {e}", scratch.display())))?;
    let result = pip_download(&scratch).and_then(|wheel| extract(&wheel, &raw));
    let _ = fs::remove_dir_all(&scratch);
    result.map(|()| raw)
}

/// The recbole wheel, downloaded with pip.
const WHEEL: crate::data::pip::Wheel<'static> = crate::data::pip::Wheel {
    requirement: RECBOLE,
    file_prefix: "recbole-",
    carries: "the wheel that ships the dataset",
};

/// Runs `pip download … recbole==1.2.1` and returns the wheel.
fn pip_download(scratch: &Path) -> Result<PathBuf> {
    pip_download_with_path(scratch, None)
}

/// [`pip_download`] with the search `PATH` for pip replaced (tests simulate a machine without pip).
pub(super) fn pip_download_with_path<'a>(
    scratch: &Path,
    path: impl Into<Option<&'a str>>,
) -> Result<PathBuf> {
    crate::data::pip::download(WHEEL, scratch, path.into()).map_err(err)
}

/// Extracts [`RAW_FILES`] from the wheel (a zip) into `raw`.
fn extract(wheel: &Path, raw: &Path) -> Result<()> {
    let file =
        File::open(wheel).map_err(|e| err(format!("cannot open {}: {e}", wheel.display())))?;
    let mut zip = zip::ZipArchive::new(file)
        .map_err(|e| err(format!("{} is not a zip: {e}", wheel.display())))?;
    fs::create_dir_all(raw).map_err(|e| err(format!("cannot create {}: {e}", raw.display())))?;
    for name in RAW_FILES {
        let inner = format!("{WHEEL_DIR}{name}");
        let mut entry = zip
            .by_name(&inner)
            .map_err(|e| err(format!("{} has no {inner}: {e}", wheel.display())))?;
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| err(format!("cannot read {inner} from {}: {e}", wheel.display())))?;
        write_atomically(&raw.join(name), &bytes)?;
    }
    Ok(())
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("partial");
    fs::write(&tmp, bytes)
        .and_then(|()| fs::rename(&tmp, path))
        .map_err(|e| err(format!("cannot write {}: {e}", path.display())))
}
