//! The shader registry: every `.wgsl` under `shaders/` compiled into the binary. A test (no GPU
//! needed) checks this list against the files on disk and validates each with naga.
//!
//! A shader may name preludes, files under `shaders/prelude/` that the registry prepends to its
//! source in order (WGSL has no includes): code several shaders share, such as the chunked
//! embedding storage's `load4`. The source a pipeline compiles, and the naga test validates, is the
//! preludes followed by the file.
//!
//! A file may be registered more than once with different preludes: the chunked-storage shaders
//! have an `_F16` variant whose preludes define the same functions over f16 rows
//! (`chunks_f16`, `chunks_store_f16`); [`for_element`] picks the variant of a storage's element
//! type. Variants share their `name` (the file); the pipeline cache keys on the source.

/// One WGSL source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shader {
    /// File stem under `shaders/`.
    pub name: &'static str,
    /// The WGSL text as compiled: the preludes, then the file.
    pub source: &'static str,
    /// File stems under `shaders/prelude/` prepended to the file, in order.
    pub preludes: &'static [&'static str],
}

macro_rules! shaders {
    ($($konst:ident => $name:literal $([$($prelude:literal),*])?),* $(,)?) => {
        $(
            #[doc = concat!("`shaders/", $name, ".wgsl`")]
            pub const $konst: Shader = Shader {
                name: $name,
                source: concat!(
                    $($(include_str!(concat!("../shaders/prelude/", $prelude, ".wgsl")),)*)?
                    include_str!(concat!("../shaders/", $name, ".wgsl"))
                ),
                preludes: &[$($($prelude),*)?],
            };
        )*
        /// Every shader, in one list.
        pub const ALL: &[Shader] = &[$($konst),*];
    };
}

shaders! {
    COPY => "copy",
    EMBEDDING_FORWARD => "embedding_forward" ["chunks"],
    EMBEDDING_UPDATE => "embedding_update" ["chunks", "chunks_store", "team_sum"],
    EMBEDDING_FORWARD_F16 => "embedding_forward" ["chunks_f16"],
    EMBEDDING_UPDATE_F16 => "embedding_update" ["chunks_f16", "philox", "chunks_store_f16", "team_sum"],
    EMBEDDING_UPDATE_SUBGROUP => "embedding_update" ["chunks", "chunks_store", "team_sum_subgroup"],
    TIM_F16 => "tim" ["chunks_f16", "tim_reduce"],
    TIM_SUBGROUP_F16 => "tim" ["chunks_f16", "tim_reduce_subgroup"],
    GEMM => "gemm",
    GEMM_TILED => "gemm_tiled" ["gemm_vec4_io"],
    GEMM_WIDE => "gemm_wide" ["gemm_vec4_io"],
    GEMM_WIDER => "gemm_wider" ["gemm_vec4_io"],
    COLUMN_SUM_SUBGROUP => "column_sum_subgroup",
    FMA => "fma",
    PAIRWISE => "pairwise",
    NORM => "norm",
    DROPOUT => "dropout" ["philox"],
    COMBINE => "combine",
    GATE => "gate",
    MIX => "mix",
    OPTIM => "optim",
    CROSS => "cross",
    LOSS => "loss" ["loss_tree"],
    LOSS_SUBGROUP => "loss" ["loss_tree_subgroup"],
    TIM => "tim" ["chunks", "tim_reduce"],
    TIM_SUBGROUP => "tim" ["chunks", "tim_reduce_subgroup"],
    ELEMENTWISE => "elementwise",
    CONTENT => "content",
    GRAPHSAGE => "graphsage",
    UNCERTAINTY => "uncertainty" ["philox"],
}

/// The variant of `shader` for storage rows of `element`: itself for f32 (and for any shader
/// without a variant), the `_F16` registration of the same file for f16.
pub fn for_element(shader: Shader, element: crate::kernels::embedding::Element) -> Shader {
    use crate::kernels::embedding::Element;
    match element {
        Element::F32 => shader,
        Element::F16 => [
            (EMBEDDING_FORWARD, EMBEDDING_FORWARD_F16),
            (EMBEDDING_UPDATE, EMBEDDING_UPDATE_F16),
            (TIM, TIM_F16),
            (TIM_SUBGROUP, TIM_SUBGROUP_F16),
        ]
        .into_iter()
        .find(|(f32_variant, _)| *f32_variant == shader)
        .map_or(shader, |(_, f16_variant)| f16_variant),
    }
}
