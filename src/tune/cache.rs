//! The tune cache: which kernel variant won on which device, for which shape class.
//!
//! One JSON file (`wgrec-tune-1`) of entries, each keyed by the device (adapter name, backend,
//! driver and driver version), the wgrec version that measured it, and a (family, shape class); each
//! holds the winner and every variant's median step time. An entry applies only where all of its
//! key matches: a new driver or a new wgrec measures again, because either can move the winner.
//! The file is shared by every model on the machine (entries of other devices and versions are kept
//! when one is written), and written atomically.
//!
//! A cache that cannot be read or parsed, or an entry naming a family or variant this wgrec does
//! not have, is ignored with a warning and never stops a run: the cost of a bad cache is a default
//! kernel, not a failure.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::gpu::{Family, Gpu, Variant};

/// The format tag of the file.
pub const FORMAT: &str = "wgrec-tune-1";

/// The device an entry was measured on, and the wgrec that measured it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceKey {
    /// Adapter name.
    pub adapter: String,
    /// wgpu backend.
    pub backend: String,
    /// Driver name.
    pub driver: String,
    /// Driver version string.
    pub driver_info: String,
    /// wgrec's version.
    pub wgrec: String,
}

impl DeviceKey {
    /// The key of `gpu` under this wgrec.
    pub fn of(gpu: &Gpu) -> Self {
        Self::of_info(gpu.info())
    }

    /// The key of an adapter described by `info` under this wgrec.
    pub fn of_info(info: &wgpu::AdapterInfo) -> Self {
        DeviceKey {
            adapter: info.name.clone(),
            backend: format!("{:?}", info.backend),
            driver: info.driver.clone(),
            driver_info: info.driver_info.clone(),
            wgrec: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

/// One measured choice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Where and by whom it was measured.
    pub device: DeviceKey,
    /// The kernel family's name (`gpu::Family::name`).
    pub family: String,
    /// The launcher's shape class.
    pub class: String,
    /// The winning variant's name.
    pub variant: String,
    /// Median milliseconds of the measured step per variant tried.
    pub ms: std::collections::BTreeMap<String, f64>,
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TuneCache {
    /// Always [`FORMAT`].
    pub format: String,
    /// Every entry, of every device.
    pub entries: Vec<Entry>,
}

/// Where the cache lives: `$WGREC_TUNE_CACHE`, else `$XDG_CACHE_HOME/wgrec/tune.json`, else
/// `$HOME/.cache/wgrec/tune.json`; `None` when none of them is set.
pub fn default_path() -> Option<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env("WGREC_TUNE_CACHE")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("wgrec").join("tune.json")))
        .or_else(|| env("HOME").map(|d| d.join(".cache").join("wgrec").join("tune.json")))
}

impl TuneCache {
    /// Reads `path`. A missing file is an empty cache; one that cannot be read or parsed is an
    /// empty cache and a warning (the second value), never an error.
    pub fn load(path: &Path) -> (TuneCache, Vec<String>) {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Default::default(),
            Err(e) => return (TuneCache::default(), vec![ignored(path, &e.to_string())]),
        };
        match serde_json::from_str::<TuneCache>(&text) {
            Ok(c) if c.format == FORMAT => (c, Vec::new()),
            Ok(c) => {
                let why = format!("format {:?}, this wgrec reads {FORMAT:?}", c.format);
                (TuneCache::default(), vec![ignored(path, &why)])
            }
            Err(e) => (TuneCache::default(), vec![ignored(path, &e.to_string())]),
        }
    }

    /// Writes the cache to `path` atomically, creating its folder.
    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                Error::output(dir, format!("creating the tune cache's folder: {e}"))
            })?;
        }
        let mut cache = self.clone();
        cache.format = FORMAT.to_string();
        let text = serde_json::to_string_pretty(&cache)
            .map_err(|e| Error::output(path, format!("encoding the tune cache: {e}")))?;
        crate::checkpoint::write_atomically(path, |tmp| {
            std::fs::write(tmp, text.as_bytes())
                .map_err(|e| Error::output(tmp, format!("writing the tune cache: {e}")))
        })
    }

    /// The entries measured on `device` by this wgrec that this wgrec can use, as the device's
    /// tuned choices; the warnings name each entry it cannot use (a family or variant unknown here).
    pub fn choices_for(&self, device: &DeviceKey) -> (Tuned, Vec<String>) {
        let mut tuned = Tuned::new();
        let mut warnings = Vec::new();
        for e in self.entries.iter().filter(|e| &e.device == device) {
            match resolve(e) {
                Ok((family, variant)) => {
                    tuned.insert((family, e.class.clone()), variant);
                }
                Err(why) => warnings.push(format!(
                    "tune cache entry {} {} ignored: {why}",
                    e.family, e.class
                )),
            }
        }
        (tuned, warnings)
    }

    /// Adds `entries`, replacing any with the same device, family and class.
    pub fn merge(&mut self, entries: Vec<Entry>) {
        for new in entries {
            self.entries.retain(|e| {
                !(e.device == new.device && e.family == new.family && e.class == new.class)
            });
            self.entries.push(new);
        }
    }
}

/// Tuned choices as the device holds them.
pub type Tuned = std::collections::BTreeMap<(Family, String), &'static Variant>;

fn resolve(e: &Entry) -> std::result::Result<(Family, &'static Variant), String> {
    let family =
        Family::parse(&e.family).ok_or_else(|| format!("no kernel family {:?}", e.family))?;
    let variant = family.variant(&e.variant).map_err(|err| err.to_string())?;
    Ok((family, variant))
}

fn ignored(path: &Path, why: &str) -> String {
    format!(
        "tune cache {} ignored ({why}); default kernels are used until `wgrec tune` rewrites it",
        path.display()
    )
}

/// Loads the cache at `path` (or the default path) and gives `gpu` its choices for this device.
/// Returns the warnings (corrupt file, unusable entries) for the caller to print.
pub fn apply(gpu: &Gpu, path: Option<&Path>) -> Vec<String> {
    let Some(path) = path.map(Path::to_path_buf).or_else(default_path) else {
        return Vec::new();
    };
    let (cache, mut warnings) = TuneCache::load(&path);
    let (tuned, unusable) = cache.choices_for(&DeviceKey::of(gpu));
    warnings.extend(unusable);
    gpu.set_tuned(tuned);
    warnings
}
