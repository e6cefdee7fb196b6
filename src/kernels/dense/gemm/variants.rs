//! The GEMM's variants (issue 20) and which one a [`Gemm`](super::Gemm) compiles.
//!
//! - `"default"`: 8 × 8 invocations, each owning an 8 × 8 register tile (`gemm_vec4_8x8` in
//!   shaders/gemm_wide.wgsl), no workgroup memory; the scalar `gemm` (4 × 4) where the layout is
//!   not vec4-aligned. On llvmpipe every storage load whose address is not a constant runs as a
//!   loop over the SIMD lanes, so the GEMM is bound by load instructions: the 8 × 8 tile issues
//!   16 vec4 loads per 256 FMAs where `gemm_vec4`'s 4 × 4 issued 8 per 64, and ran 2.0–2.6× faster
//!   (BENCHMARKS.md, issue 20).
//! - `"vec4-4x4"` (`gemm_vec4`, the default before issue 20), `"vec4-8x4"` (gemm_wide.wgsl),
//!   `"vec4-16x8"` (gemm_wider.wgsl): the same kernel with other register tiles (rows × columns).
//! - `"tiled-32x32"`, `"tiled-64x32"`, `"tiled-64x64"`: `gemm_tiled` (shaders/gemm_tiled.wgsl),
//!   workgroup-memory tiling with a block of BM × BN outputs per workgroup (the name), BK = 16 k per
//!   barrier step, a 4 × 4 register tile per invocation; meant for real GPUs, where each operand
//!   element then leaves global memory once per workgroup (on llvmpipe it runs at about half the
//!   default's speed). The override constants `WG_X`, `WG_Y` (invocations along n, m: BN = 4·WG_X,
//!   BM = 4·WG_Y) and `BK` are in each entry.
//!
//! Shape rule: every variant but the scalar path needs the vec4 layout (leading dimensions,
//! strides and offsets multiples of 4, buffers holding whole vec4s); for any other layout the
//! launcher runs the scalar `gemm` whatever the choice, and [`Gemm::variant`](super::Gemm::variant)
//! says `"default"`. Every kernel accumulates each output in the same order (p = 0 … k − 1, fma,
//! from +0), so every variant gives the same bits as any other (the tests check it bit for bit):
//! switching the default from 4 × 4 to 8 × 8 changed no model's results.
//!
//! The shape class a launcher asks about is `m{m}n{n}k{k}`, each the capacity rounded up to a
//! power of two ([`size_class`]).

use super::spec::{GateKind, GemmSpec, Operand};
use super::{GEMM, GEMM_VEC4, GEMM_WG_X, GEMM_WG_Y, TILE};
use crate::gpu::{size_class, Family, Gpu, Kernel, Variant};
use crate::shaders;

/// The GEMM's variants ([`crate::gpu::variants`]); the first is the default path.
pub const VARIANTS: &[Variant] = &[
    Variant::DEFAULT,
    Variant {
        name: "tiled-32x32",
        subgroups: false,
        constants: &[("WG_X", 8.0), ("WG_Y", 8.0), ("BK", 16.0)],
    },
    Variant {
        name: "tiled-64x32",
        subgroups: false,
        constants: &[("WG_X", 8.0), ("WG_Y", 16.0), ("BK", 16.0)],
    },
    Variant {
        name: "tiled-64x64",
        subgroups: false,
        constants: &[("WG_X", 16.0), ("WG_Y", 16.0), ("BK", 16.0)],
    },
    Variant {
        name: "vec4-8x4",
        subgroups: false,
        constants: &[("WG_X", 8.0), ("WG_Y", 8.0)],
    },
    Variant {
        name: "vec4-4x4",
        subgroups: false,
        constants: &[("WG_X", 8.0), ("WG_Y", 8.0)],
    },
    Variant {
        name: "vec4-16x8",
        subgroups: false,
        constants: &[("WG_X", 8.0), ("WG_Y", 4.0)],
    },
];

/// The workgroup-memory tiled GEMM (`gemm_tiled.wgsl`); same bindings as [`GEMM`].
pub const GEMM_TILED: Kernel = Kernel::new(shaders::GEMM_TILED, "gemm_tiled", GEMM.bindings);
/// `gemm_vec4` with an 8 × 4 register tile (`gemm_wide.wgsl`).
pub const GEMM_VEC4_8X4: Kernel = Kernel::new(shaders::GEMM_WIDE, "gemm_vec4_8x4", GEMM.bindings);
/// `gemm_vec4` with an 8 × 8 register tile (`gemm_wide.wgsl`).
pub const GEMM_VEC4_8X8: Kernel = Kernel::new(shaders::GEMM_WIDE, "gemm_vec4_8x8", GEMM.bindings);
/// `gemm_vec4` with a 16 × 8 register tile (`gemm_wider.wgsl`).
pub const GEMM_VEC4_16X8: Kernel =
    Kernel::new(shaders::GEMM_WIDER, "gemm_vec4_16x8", GEMM.bindings);

/// What a [`Gemm`](super::Gemm) compiles: the kernel, its workgroup (invocations along n, m), the
/// outputs one invocation owns (columns, rows), the variant's name and the override constants.
pub(super) struct Choice {
    pub kernel: &'static Kernel,
    pub wg: [u32; 2],
    pub tile: [u32; 2],
    pub name: &'static str,
    pub constants: Vec<(&'static str, f64)>,
}

/// The shape class of `spec` (see the module docs).
pub fn shape_class(s: &GemmSpec) -> String {
    format!(
        "m{}n{}k{}",
        size_class(s.m),
        size_class(s.n),
        size_class(s.k)
    )
}

/// The variant `gpu` picks for `spec` (forced, tuned or default), unless the layout does not suit
/// it (`vectorized` false: every variant runs the default's scalar kernel).
pub(super) fn choose(gpu: &Gpu, s: &GemmSpec, vectorized: bool) -> Choice {
    let variant = gpu.variant(Family::Gemm, &shape_class(s));
    let mut constants = epilogue_constants(s);
    let default_wg = [("WG_X", GEMM_WG_X as f64), ("WG_Y", GEMM_WG_Y as f64)];
    if !vectorized {
        constants.truncate(constants.len() - 2); // the scalar kernel has no *_ALONG_K
        constants.extend(default_wg);
        return Choice {
            kernel: &GEMM,
            wg: [GEMM_WG_X, GEMM_WG_Y],
            tile: [TILE, TILE],
            name: VARIANTS[0].name,
            constants,
        };
    }
    let (kernel, tile) = match variant.name {
        "vec4-4x4" => (&GEMM_VEC4, [TILE, TILE]),
        "vec4-8x4" => (&GEMM_VEC4_8X4, [TILE, 2 * TILE]),
        "vec4-16x8" => (&GEMM_VEC4_16X8, [2 * TILE, 4 * TILE]),
        name if name.starts_with("tiled-") => (&GEMM_TILED, [TILE, TILE]),
        _ => (&GEMM_VEC4_8X8, [2 * TILE, 2 * TILE]),
    };
    let own: &[(&'static str, f64)] = if variant.is_default() {
        &default_wg
    } else {
        variant.constants
    };
    constants.extend_from_slice(own);
    let get = |key: &str| {
        own.iter()
            .find(|(k, _)| *k == key)
            .map_or(8, |&(_, v)| v as u32)
    };
    Choice {
        kernel,
        wg: [get("WG_X"), get("WG_Y")],
        tile,
        name: variant.name,
        constants,
    }
}

/// The fused epilogue's and gate's override constants (every GEMM kernel has them); the last two
/// (`A_ALONG_K`, `B_ALONG_K`) only exist in the vec4 kernels.
fn epilogue_constants(s: &GemmSpec) -> Vec<(&'static str, f64)> {
    vec![
        ("EPILOGUE", s.epilogue as u32 as f64),
        ("HAS_BIAS", s.bias as u32 as f64),
        ("ACCUMULATE", s.accumulate as u32 as f64),
        ("GATE", gate_code(s.gate.map(|g| g.kind))),
        (
            "GATE_ON_B",
            (s.gate.map(|g| g.operand) == Some(Operand::B)) as u32 as f64,
        ),
        ("A_ALONG_K", !s.trans_a as u32 as f64),
        ("B_ALONG_K", s.trans_b as u32 as f64),
    ]
}

/// The shaders' `GATE` code of a gate kind (0 none).
pub(in crate::kernels::dense) fn gate_code(kind: Option<GateKind>) -> f64 {
    match kind {
        None => 0.0,
        Some(GateKind::ReluMask) => 1.0,
        Some(GateKind::Product) => 2.0,
    }
}
