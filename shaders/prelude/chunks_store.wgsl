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


// The optimizer state after a row is f32 in every storage; these accessors are the update's only
// way to it, so one embedding_update.wgsl serves both element types (the f16 twins are in
// prelude/chunks_store_f16.wgsl). Here, f32 storage: the state is in vec4<f32> units like the row.

// Unit address of state vec4 `s` of the row at `row_at` (with `width4` units of weights).
fn state_at(row_at: u32, width4: u32, s: u32) -> u32 {
    return row_at + width4 + s;
}

fn load_state4(a: u32) -> vec4<f32> {
    return load4(a);
}

fn store_state4(a: u32, v: vec4<f32>) {
    store4(a, v);
}

// Row-wise Adagrad's accumulator: `.x` of the state vec4 (the rest stays zero).
fn load_acc(a: u32) -> f32 {
    return load4(a).x;
}

fn store_acc(a: u32, acc: f32) {
    store4(a, vec4<f32>(acc, 0.0, 0.0, 0.0));
}

// Stores updated weights; `key` (row, table, column, step) seeds stochastic rounding in f16
// storage and is unused here: f32 stores are exact.
fn store_row4(a: u32, v: vec4<f32>, key: vec4<u32>) {
    store4(a, v);
}
