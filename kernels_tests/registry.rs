//! The shader registry, checked without a GPU: every file on disk is registered, every shader parses
//! and validates with naga, and every params struct matches its Rust mirror byte for byte.

use std::mem::size_of;

use wgrec::kernels::copy::CopyParams;
use wgrec::kernels::embedding::{ForwardParams, UpdateParams};
use wgrec::shaders::{self, Shader};

pub fn module(shader: &Shader) -> naga::Module {
    let module = naga::front::wgsl::parse_str(shader.source)
        .unwrap_or_else(|e| panic!("{}.wgsl: {}", shader.name, e.emit_to_string(shader.source)));
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::all(),
    )
    .validate(&module)
    .unwrap_or_else(|e| panic!("{}.wgsl does not validate: {e:?}", shader.name));
    module
}

#[test]
fn every_shader_parses_and_validates_with_naga() {
    for shader in shaders::ALL {
        module(shader);
    }
}

#[test]
fn registry_lists_exactly_the_files_in_shaders_dir() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/shaders");
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .expect("shaders/ exists")
        .filter_map(|e| {
            let path = e.ok()?.path();
            (path.extension()? == "wgsl").then(|| path.file_stem()?.to_str().map(String::from))?
        })
        .collect();
    on_disk.sort();
    let mut registered: Vec<String> = shaders::ALL.iter().map(|s| s.name.to_string()).collect();
    registered.sort();
    registered.dedup(); // a file registered with several preludes (the f16 variants) counts once
    assert_eq!(on_disk, registered);
    for shader in shaders::ALL {
        let mut text = String::new();
        for prelude in shader.preludes {
            text += &std::fs::read_to_string(format!("{dir}/prelude/{prelude}.wgsl"))
                .expect("read prelude");
        }
        text += &std::fs::read_to_string(format!("{dir}/{}.wgsl", shader.name)).expect("read");
        assert_eq!(
            text, shader.source,
            "{} is stale in the binary (or its preludes are)",
            shader.name
        );
    }
}

#[test]
fn every_prelude_on_disk_is_prepended_somewhere() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/prelude");
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .expect("shaders/prelude/ exists")
        .filter_map(|e| {
            let path = e.ok()?.path();
            (path.extension()? == "wgsl").then(|| path.file_stem()?.to_str().map(String::from))?
        })
        .collect();
    on_disk.sort();
    let mut used: Vec<String> = shaders::ALL
        .iter()
        .flat_map(|s| s.preludes.iter().map(|p| p.to_string()))
        .collect();
    used.sort();
    used.dedup();
    assert_eq!(on_disk, used);
}

#[test]
fn chunked_storage_shaders_share_one_load4() {
    // The prelude is the only definition: a shader that defined its own load4 would not validate
    // (naga rejects a redefinition), and each one that reads chunks has the prelude.
    for (shader, first) in [
        (&shaders::EMBEDDING_FORWARD, "chunks"),
        (&shaders::EMBEDDING_UPDATE, "chunks"),
        (&shaders::TIM, "chunks"),
        (&shaders::EMBEDDING_FORWARD_F16, "chunks_f16"),
        (&shaders::EMBEDDING_UPDATE_F16, "chunks_f16"),
        (&shaders::TIM_F16, "chunks_f16"),
    ] {
        assert_eq!(
            shader.source.matches("fn load4(").count(),
            1,
            "{}",
            shader.name
        );
        assert_eq!(shader.preludes.first(), Some(&first), "{}", shader.name);
    }
}

#[test]
fn f16_variants_are_the_same_files_and_for_element_picks_them() {
    use wgrec::kernels::embedding::Element;
    for (f32_shader, f16_shader) in [
        (shaders::EMBEDDING_FORWARD, shaders::EMBEDDING_FORWARD_F16),
        (shaders::EMBEDDING_UPDATE, shaders::EMBEDDING_UPDATE_F16),
        (shaders::TIM, shaders::TIM_F16),
    ] {
        assert_eq!(f32_shader.name, f16_shader.name);
        assert_ne!(f32_shader.source, f16_shader.source);
        assert_eq!(shaders::for_element(f32_shader, Element::F32), f32_shader);
        assert_eq!(shaders::for_element(f32_shader, Element::F16), f16_shader);
    }
    assert_eq!(
        shaders::for_element(shaders::GEMM, Element::F16),
        shaders::GEMM
    );
}

/// Asserts that WGSL struct `name` in `shader` has size `size` and members at `offsets`, in order.
/// Kernel test modules call it for their own params structs (with [`offsets!`]).
pub fn assert_layout(shader: &Shader, name: &str, size: usize, offsets: &[(&str, usize)]) {
    let module = module(shader);
    let (members, span) = module
        .types
        .iter()
        .find_map(|(_, ty)| match (&ty.name, &ty.inner) {
            (Some(n), naga::TypeInner::Struct { members, span }) if n == name => {
                Some((members.clone(), *span))
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("{name} not found in {}.wgsl", shader.name));
    assert_eq!(span as usize, size, "{name}: WGSL size vs Rust size_of");
    let wgsl: Vec<(String, usize)> = members
        .iter()
        .map(|m| (m.name.clone().unwrap_or_default(), m.offset as usize))
        .filter(|(n, _)| !n.starts_with("_pad"))
        .collect();
    let rust: Vec<(String, usize)> = offsets.iter().map(|(n, o)| (n.to_string(), *o)).collect();
    assert_eq!(wgsl, rust, "{name}: member names and offsets");
}

macro_rules! offsets {
    ($ty:ty: $($field:ident),*) => {
        &[$((stringify!($field), std::mem::offset_of!($ty, $field))),*]
    };
}
#[allow(unused_imports)] // used by the dense test modules
pub(crate) use offsets;

#[test]
fn params_structs_match_their_wgsl_layouts() {
    assert_layout(
        &shaders::COPY,
        "CopyParams",
        size_of::<CopyParams>(),
        offsets!(CopyParams: n4),
    );
    assert_layout(
        &shaders::EMBEDDING_FORWARD,
        "ForwardParams",
        size_of::<ForwardParams>(),
        offsets!(ForwardParams: batch_size, cols4, features_at, colmap_at, mns_at, offsets_at,
                 indices_at, weights_at, chunk_shift, chunk_mask, bags),
    );
    assert_layout(
        &shaders::EMBEDDING_UPDATE,
        "UpdateParams",
        size_of::<UpdateParams>(),
        offsets!(UpdateParams: batch_size, unique_rows, features_at, offsets_at, weights_at,
                 entry_offsets_at, entries_at, chunk_shift, chunk_mask, lr, decay_at, eps,
                 beta1, beta2, bias1, bias2, decay_mode, rounding, sr_seed, sr_step),
    );
    assert_layout(
        &shaders::EMBEDDING_UPDATE_F16,
        "UpdateParams",
        size_of::<UpdateParams>(),
        offsets!(UpdateParams: batch_size, unique_rows, features_at, offsets_at, weights_at,
                 entry_offsets_at, entries_at, chunk_shift, chunk_mask, lr, decay_at, eps,
                 beta1, beta2, bias1, bias2, decay_mode, rounding, sr_seed, sr_step),
    );
}
