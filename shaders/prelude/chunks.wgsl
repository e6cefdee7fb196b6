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
// The storage element type is chosen here, and only here: `Chunk4` is what the chunk buffers hold.
// For f16 storage: `enable f16;` at the top of this file, `alias Chunk4 = vec4<f16>;`, and the
// conversions `vec4<f32>(...)` in load4 and `Chunk4(...)` in store4 (prelude/chunks_store.wgsl);
// kernels compute in f32 either way. The host side (row bytes, chunk sizes) changes with it in
// src/kernels/embedding/layout.rs and storage.rs.

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

