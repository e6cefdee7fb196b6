//! The shader registry: every `.wgsl` under `shaders/` compiled into the binary. A test (no GPU
//! needed) checks this list against the files on disk and validates each with naga.
//!
//! A shader may name preludes, files under `shaders/prelude/` that the registry prepends to its
//! source in order (WGSL has no includes): code several shaders share, such as the chunked
//! embedding storage's `load4`. The source a pipeline compiles, and the naga test validates, is the
//! preludes followed by the file.

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
    EMBEDDING_UPDATE => "embedding_update" ["chunks", "chunks_store"],
    GEMM => "gemm",
    FMA => "fma",
    PAIRWISE => "pairwise",
    NORM => "norm",
    DROPOUT => "dropout" ["philox"],
    COMBINE => "combine",
    GATE => "gate",
    MIX => "mix",
    OPTIM => "optim",
    CROSS => "cross",
    LOSS => "loss",
    TIM => "tim" ["chunks"],
    ELEMENTWISE => "elementwise",
    CONTENT => "content",
    GRAPHSAGE => "graphsage",
    UNCERTAINTY => "uncertainty" ["philox"],
}
