// prelude/chunks_f16.wgsl — chunked embedding storage of f16 rows, read side: the twin of
// prelude/chunks.wgsl (read it first: chunks, `chunk_shift`/`chunk_mask`, the CHUNKS override are
// the same), prepended to the `_F16` variants of embedding_forward, embedding_update and tim
// (src/shaders.rs).
//
// Storage: an address unit is 8 bytes, `vec2<u32>`, four f16 packed in pairs (element 2i in the low
// half of word i, as `pack2x16float` writes them). A row is width4 units of weights, then its f32
// optimizer state in the same units (src/kernels/embedding/layout.rs: Adagrad's accumulator one
// unit, Adam's m and v two units per vec4 column; accessors in prelude/chunks_store_f16.wgsl).
// `unpack2x16float` and `pack2x16float` are core WGSL: no `shader-f16` feature needed. Kernels
// compute in f32; f16 → f32 is exact.

alias Chunk4 = vec2<u32>;

override CHUNKS: u32 = 4u; // chunks the storage uses; 1 compiles the chunk switch away

// The stored unit at address a.
fn load_unit(a: u32) -> vec2<u32> {
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

// Four weights at address a, as f32.
fn load4(a: u32) -> vec4<f32> {
    let u = load_unit(a);
    return vec4<f32>(unpack2x16float(u.x), unpack2x16float(u.y));
}
