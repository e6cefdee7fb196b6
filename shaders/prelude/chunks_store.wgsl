// prelude/chunks_store.wgsl — chunked embedding storage, write side: store4, the sibling of load4
// in prelude/chunks.wgsl (prepended before this one). The registry (src/shaders.rs) prepends it to
// the one shader that binds its chunks read_write, embedding_update.wgsl; a read-only shader could
// not include it (naga rejects a store to a read-only binding).

fn store4(a: u32, v: vec4<f32>) {
    if CHUNKS == 1u {
        chunk0[a] = v;
        return;
    }
    let o = a & params.chunk_mask;
    switch a >> params.chunk_shift {
        case 0u: { chunk0[o] = v; }
        case 1u: { chunk1[o] = v; }
        case 2u: { chunk2[o] = v; }
        default: { chunk3[o] = v; }
    }
}

