//! The shader registry: every `.wgsl` under `shaders/` compiled into the binary. A test (no GPU
//! needed) checks this list against the files on disk and validates each with naga.

/// One WGSL source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shader {
    /// File stem under `shaders/`.
    pub name: &'static str,
    /// The WGSL text.
    pub source: &'static str,
}

macro_rules! shaders {
    ($($konst:ident => $name:literal),* $(,)?) => {
        $(
            #[doc = concat!("`shaders/", $name, ".wgsl`")]
            pub const $konst: Shader = Shader {
                name: $name,
                source: include_str!(concat!("../shaders/", $name, ".wgsl")),
            };
        )*
        /// Every shader, in one list.
        pub const ALL: &[Shader] = &[$($konst),*];
    };
}

shaders! {
    COPY => "copy",
    EMBEDDING_FORWARD => "embedding_forward",
    EMBEDDING_UPDATE => "embedding_update",
    GEMM => "gemm",
    FMA => "fma",
    PAIRWISE => "pairwise",
    NORM => "norm",
    DROPOUT => "dropout",
    COMBINE => "combine",
    GATE => "gate",
    OPTIM => "optim",
    CROSS => "cross",
    LOSS => "loss",
    TIM => "tim",
    ELEMENTWISE => "elementwise",
}
