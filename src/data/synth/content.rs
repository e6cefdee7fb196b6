//! Content vectors for the synthetic data (issue 16): per-id embedding files that carry the planted
//! model's item and user signal, for the HashID feature (METHODS.md §1.3: a SimHash of an item's
//! content vector) and the similarity feature (METHODS.md §1.4: cosine of a user-side and an
//! item-side vector) to find, and a control file with the same ids and no signal.
//!
//! An item's signal is [`SIGNAL`] numbers, each of unit variance: its planted first-order weight
//! and latent vector, then its category's (the item's category is `item % categories`, see
//! [`super::SynthConfig::items`]). A user's signal is its latent vector in both latent slots and
//! zeros elsewhere. Both go through the same fixed seeded map M (`dim × SIGNAL`, entries
//! N(0, 1/SIGNAL), so a component's signal variance is about 1 for an item), and each component
//! gets Gaussian noise of sd `noise`. With one M for both sides, ⟨user, item⟩ ≈ (dim/SIGNAL)·
//! (⟨v_user, v_item⟩ + ⟨v_user, v_category⟩)/scale_v² plus noise: the planted user × item and
//! user × category interactions. The control (`items-random`) is N(0, 1 + noise²) per component,
//! the items' scale without their signal.
//!
//! Everything is drawn from streams of its own (hashes of the seed, the id and stream constants no
//! other draw uses), so writing the content files changes no byte of the data files and any
//! item's or user's vector is a pure function of (seed, id, dim, noise).

use std::path::{Path, PathBuf};

use super::{hash3, mix, signed_unit, Synth, LATENT};
use crate::data::embeddings::EmbeddingTable;
use crate::rng::Rng;
use crate::{Error, Result};

/// The default noise sd per component, equal to an item component's signal sd: at `dim = 32` a
/// least-squares fit from the vector recovers about 0.7 of the variance of the item's planted
/// first-order weight (measured R² 0.72 over the 10,000 items of the test in `tests/content.rs`,
/// 0.76 over the default configuration's 10^6; the per-code means of a 16-bit SimHash of the
/// vectors, 0.48, against 0.06 for the no-signal control) — a real signal that still leaves the
/// id's own embedding something to learn.
pub const DEFAULT_CONTENT_NOISE: f64 = 1.0;

/// Signal numbers per item: first-order weight and latent vector of the item, then of its category.
pub(super) const SIGNAL: usize = 2 * (1 + LATENT);

/// The planted model's field numbers of user, item and category (`planted.rs` adds 1000 to the
/// position in `SynthRow::ids`).
pub(super) const USER_FIELD: u64 = 1000;
/// See [`USER_FIELD`].
pub(super) const ITEM_FIELD: u64 = 1001;
/// See [`USER_FIELD`].
pub(super) const CATEGORY_FIELD: u64 = 1002;

/// Most floats one file may hold (4 GiB of f32): past this the table would not fit in memory
/// beside the data it describes.
const MAX_FLOATS: u64 = 1 << 30;

/// Streams apart from every other draw of the generator (`mod.rs`, `planted.rs`).
const MAP_STREAM: u64 = 0xc0de_0a70;
const ITEM_NOISE_STREAM: u64 = 0xc0de_1773;
const USER_NOISE_STREAM: u64 = 0xc0de_5e75;
const RANDOM_STREAM: u64 = 0xc0de_4a4d;

/// What the content vectors look like.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ContentOptions {
    /// Components per vector (≥ 1).
    pub dim: usize,
    /// Noise sd per component (finite, ≥ 0); [`DEFAULT_CONTENT_NOISE`] by default.
    pub noise: f64,
}

impl ContentOptions {
    /// Vectors of width `dim` with the default noise.
    pub fn new(dim: usize) -> Self {
        ContentOptions {
            dim,
            noise: DEFAULT_CONTENT_NOISE,
        }
    }
}

/// The three content files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentKind {
    /// `items.safetensors`: each item's planted signal, mapped, plus noise.
    Items,
    /// `items-random.safetensors`: the same ids, vectors with no signal (the control).
    RandomItems,
    /// `users.safetensors`: each user's planted latent vector, mapped, plus noise.
    Users,
}

impl ContentKind {
    /// All three, in the order [`write_content`] writes them.
    pub const ALL: [ContentKind; 3] = [Self::Items, Self::RandomItems, Self::Users];

    /// The file's name in the data folder.
    pub fn file_name(self) -> &'static str {
        match self {
            Self::Items => "items.safetensors",
            Self::RandomItems => "items-random.safetensors",
            Self::Users => "users.safetensors",
        }
    }
}

/// Writes the three content files of `synth` into `out` (atomically, each by
/// [`EmbeddingTable::write`]) and returns their paths in [`ContentKind::ALL`] order. Ids are
/// `0..items` and `0..users` in decimal, as the data files spell them.
pub fn write_content(synth: &Synth, options: &ContentOptions, out: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out)
        .map_err(|e| Error::Dataset(format!("synth: cannot create {}: {e}", out.display())))?;
    ContentKind::ALL
        .iter()
        .map(|&kind| {
            let path = out.join(kind.file_name());
            synth.content_vectors(kind, options)?.write(&path)?;
            Ok(path)
        })
        .collect()
}

impl Synth {
    /// The vectors of one content file (see the module docs for what each holds).
    pub fn content_vectors(
        &self,
        kind: ContentKind,
        options: &ContentOptions,
    ) -> Result<EmbeddingTable> {
        self.check_content(options)?;
        let map = self.content_map(options.dim);
        let n = match kind {
            ContentKind::Users => self.config.users,
            ContentKind::Items | ContentKind::RandomItems => self.config.items,
        };
        let mut vectors = Vec::with_capacity(n as usize * options.dim);
        for id in 0..n {
            self.content_vector(kind, &map, options, id, &mut vectors);
        }
        EmbeddingTable::new(
            (0..n).map(|id| id.to_string()).collect(),
            options.dim,
            vectors,
        )
    }

    /// Appends id `id`'s vector of the `kind` file.
    fn content_vector(
        &self,
        kind: ContentKind,
        map: &[[f64; SIGNAL]],
        options: &ContentOptions,
        id: u64,
        out: &mut Vec<f32>,
    ) {
        let seed = self.config.seed;
        match kind {
            ContentKind::Items => {
                let mut rng = Rng::new(mix(seed ^ ITEM_NOISE_STREAM, id));
                project(map, &self.item_signal(id), options.noise, &mut rng, out)
            }
            ContentKind::Users => {
                let mut rng = Rng::new(mix(seed ^ USER_NOISE_STREAM, id));
                project(map, &self.user_signal(id), options.noise, &mut rng, out)
            }
            ContentKind::RandomItems => {
                let mut rng = Rng::new(mix(seed ^ RANDOM_STREAM, id));
                let sd = (1.0 + options.noise * options.noise).sqrt();
                out.extend((0..options.dim).map(|_| (sd * rng.normal()) as f32));
            }
        }
    }

    /// The planted first-order weight of `id` in `field` (as `planted.rs` adds it to the score).
    pub(super) fn planted_first_order(&self, field: u64, id: u64) -> f64 {
        self.scale_w * signed_unit(hash3(self.config.seed, field, id))
    }

    /// The planted latent vector of `id` in `field` (as `planted.rs` adds it to the pairwise sum).
    pub(super) fn planted_latent(&self, field: u64, id: u64) -> [f64; LATENT] {
        let seed = self.config.seed;
        std::array::from_fn(|k| {
            self.scale_v * signed_unit(hash3(seed ^ (k as u64 + 1) << 40, field, id))
        })
    }

    /// Whether [`Self::content_vectors`] can describe this data with `options`: it needs the
    /// user and item columns (sequences on), a width ≥ 1, a finite noise ≥ 0 and a size that fits.
    pub fn check_content(&self, options: &ContentOptions) -> Result<()> {
        let bad = |m: String| Err(Error::Dataset(format!("synth: {m}")));
        let c = &self.config;
        if c.max_history == 0 {
            return bad(
                "content vectors need the user_id and item_id columns (max_history > 0)".into(),
            );
        }
        if options.dim == 0 {
            return bad("the content dimension must be at least 1".into());
        }
        if !(options.noise.is_finite() && options.noise >= 0.0) {
            return bad(format!(
                "content noise {} is not a finite number ≥ 0",
                options.noise
            ));
        }
        let floats = c.items.max(c.users).saturating_mul(options.dim as u64);
        if floats > MAX_FLOATS {
            return bad(format!(
                "{} ids × content dimension {} = {floats} floats, more than {MAX_FLOATS} in one file",
                c.items.max(c.users),
                options.dim
            ));
        }
        Ok(())
    }

    /// M, `dim` rows of [`SIGNAL`] entries N(0, 1/SIGNAL), from its own stream.
    fn content_map(&self, dim: usize) -> Vec<[f64; SIGNAL]> {
        let mut rng = Rng::new(mix(self.config.seed ^ MAP_STREAM, 0));
        let scale = 1.0 / (SIGNAL as f64).sqrt();
        (0..dim)
            .map(|_| std::array::from_fn(|_| scale * rng.normal()))
            .collect()
    }

    /// The item's and its category's weight and latent vector, each number of unit variance.
    fn item_signal(&self, item: u64) -> [f64; SIGNAL] {
        let category = item % self.config.categories;
        let mut s = [0.0; SIGNAL];
        for (half, (field, id)) in [(ITEM_FIELD, item), (CATEGORY_FIELD, category)]
            .into_iter()
            .enumerate()
        {
            let part = &mut s[half * (1 + LATENT)..(half + 1) * (1 + LATENT)];
            part[0] = self.planted_first_order(field, id) / self.scale_w;
            for (p, v) in part[1..].iter_mut().zip(self.planted_latent(field, id)) {
                *p = v / self.scale_v;
            }
        }
        s
    }

    /// The user's latent vector in both latent slots, so that one map sends ⟨user, item⟩ to the
    /// planted user × item plus user × category interaction.
    fn user_signal(&self, user: u64) -> [f64; SIGNAL] {
        let v = self.planted_latent(USER_FIELD, user);
        let mut s = [0.0; SIGNAL];
        for k in 0..LATENT {
            s[1 + k] = v[k] / self.scale_v;
            s[2 + LATENT + k] = v[k] / self.scale_v;
        }
        s
    }
}

/// Appends `M·signal + noise·N(0, 1)` per component.
fn project(
    map: &[[f64; SIGNAL]],
    signal: &[f64; SIGNAL],
    noise: f64,
    rng: &mut Rng,
    out: &mut Vec<f32>,
) {
    for row in map {
        let x: f64 = row.iter().zip(signal).map(|(m, s)| m * s).sum();
        out.push((x + noise * rng.normal()) as f32);
    }
}
