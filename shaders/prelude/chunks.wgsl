// prelude/chunks.wgsl — chunked embedding storage, read side. Not a shader on its own: the shader
// registry (src/shaders.rs) prepends it to embedding_forward.wgsl, embedding_update.wgsl and
// tim.wgsl, and the naga test (kernels_tests/registry.rs) validates each of them as compiled, with
// this text in front.
//
// Storage: a storage's rows live in up to four chunk buffers (each under the device's max binding
// size, see src/kernels/embedding/layout.rs); a row's vec4 address a maps to chunk
// a >> params.chunk_shift, element a & params.chunk_mask, so a table may span chunks.
//
// The shader that includes this declares `chunk0..chunk3: array<Chunk4>` (read or read_write, at
// its own binding numbers) and a `params` uniform with `chunk_shift` and `chunk_mask`.
//
// The storage element type is chosen here, and only here: `Chunk4` is what the chunk buffers hold,
// one address unit = one vec4 of weights. This file is the f32 storage (16-byte units); its twin
// prelude/chunks_f16.wgsl is the f16 storage (8-byte units, `vec2<u32>` holding four packed
// halves), prepended instead to the `_F16` variants of the same shaders (src/shaders.rs). Kernels
// compute in f32 either way. The host side (unit bytes, state units) is in
// src/kernels/embedding/layout.rs and convert.rs.

alias Chunk4 = vec4<f32>;

override CHUNKS: u32 = 4u; // chunks the storage uses; 1 compiles the chunk switch away

// A divergent switch costs every case on llvmpipe's SIMD lanes; a one-chunk storage skips it
// (~25% of TIM's time, measured on lavapipe).
fn load4(a: u32) -> vec4<f32> {
    if CHUNKS == 1u {
        return chunk0[a];
    }
    let o = a & params.chunk_mask;
    switch a >> params.chunk_shift {
        case 0u: { return chunk0[o]; }
        case 1u: { return chunk1[o]; }
        case 2u: { return chunk2[o]; }
        default: { return chunk3[o]; }
    }
}

