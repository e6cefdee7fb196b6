//! The GEMM's variants (issue 20) and which one a [`Gemm`](super::Gemm) compiles.
//!
//! - `"default"`: `gemm_vec4` (or the scalar `gemm` where the layout is not vec4-aligned), no
//!   workgroup memory, 8 × 8 invocations of 4 × 4 register tiles. Fastest on llvmpipe, where every
//!   invocation is a SIMD lane and barriers suspend coroutines.
//! - `"tiled-32x32"`, `"tiled-64x32"`, `"tiled-64x64"`: `gemm_tiled` (shaders/gemm_tiled.wgsl),
//!   workgroup-memory tiling with a block of BM × BN outputs per workgroup (the name), BK = 16 k per
//!   barrier step, the same 4 × 4 register tile per invocation; meant for real GPUs, where each
//!   operand element then leaves global memory once per workgroup. The override constants `WG_X`,
//!   `WG_Y` (invocations along n, m: BN = 4·WG_X, BM = 4·WG_Y) and `BK` are in each entry.
//!
//! Shape rule: a tiled variant needs the vec4 layout (`gemm_vec4`'s: leading dimensions, strides
//! and offsets multiples of 4, buffers holding whole vec4s); for any other layout the launcher runs
//! the default (scalar) kernel and [`Gemm::variant`](super::Gemm::variant) says `"default"`. Every
//! variant accumulates each output in the same order (p = 0 … k − 1, fma, from +0), so every
//! variant gives the default's bits; the tests check that bit for bit.
//!
//! The shape class a launcher asks about is `m{m}n{n}k{k}`, each the capacity rounded up to a
//! power of two ([`size_class`]).

use super::spec::{GateKind, GemmSpec, Operand};
use super::{GEMM, GEMM_VEC4, GEMM_WG_X, GEMM_WG_Y};
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
];

/// The workgroup-memory tiled GEMM (`gemm_tiled.wgsl`); same bindings as [`GEMM`].
pub const GEMM_TILED: Kernel = Kernel::new(shaders::GEMM_TILED, "gemm_tiled", GEMM.bindings);

/// What a [`Gemm`](super::Gemm) compiles: the kernel, its workgroup (invocations along n, m; each
/// owns a 4 × 4 tile of C), the variant's name and the pipeline's override constants.
pub(super) struct Choice {
    pub kernel: &'static Kernel,
    pub wg: [u32; 2],
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
/// it (`vectorized` false: a tiled variant falls back to the default).
pub(super) fn choose(gpu: &Gpu, s: &GemmSpec, vectorized: bool) -> Choice {
    let variant = gpu.variant(Family::Gemm, &shape_class(s));
    let mut constants = epilogue_constants(s);
    if !vectorized {
        constants.truncate(constants.len() - 2); // the scalar kernel has no *_ALONG_K
        constants.extend([("WG_X", GEMM_WG_X as f64), ("WG_Y", GEMM_WG_Y as f64)]);
        return Choice {
            kernel: &GEMM,
            wg: [GEMM_WG_X, GEMM_WG_Y],
            name: VARIANTS[0].name,
            constants,
        };
    }
    if variant.is_default() {
        constants.extend([("WG_X", GEMM_WG_X as f64), ("WG_Y", GEMM_WG_Y as f64)]);
        return Choice {
            kernel: &GEMM_VEC4,
            wg: [GEMM_WG_X, GEMM_WG_Y],
            name: variant.name,
            constants,
        };
    }
    let get = |key: &str| {
        variant
            .constants
            .iter()
            .find(|(k, _)| *k == key)
            .map_or(8, |&(_, v)| v as u32)
    };
    constants.extend_from_slice(variant.constants);
    Choice {
        kernel: &GEMM_TILED,
        wg: [get("WG_X"), get("WG_Y")],
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
