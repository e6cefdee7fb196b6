//! Loader of the PyTorch fixtures under `kernels_tests/fixtures/` (written by `make_fixtures.py`,
//! committed, read here without torch).

use std::collections::HashMap;

use safetensors::{Dtype, SafeTensors};

/// One fixture file: tensors by name, as f64 with their shapes.
pub struct Fixture {
    name: String,
    tensors: HashMap<String, (Vec<usize>, Vec<f64>)>,
}

impl Fixture {
    /// Loads `kernels_tests/fixtures/<name>.safetensors`; panics with the path when it is missing or
    /// malformed (a test failure: the fixture is part of the repository).
    pub fn load(name: &str) -> Fixture {
        let path = format!(
            "{}/kernels_tests/fixtures/{name}.safetensors",
            env!("CARGO_MANIFEST_DIR")
        );
        let bytes =
            std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e} (run make_fixtures.py)"));
        let st = SafeTensors::deserialize(&bytes).unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut tensors = HashMap::new();
        for (key, view) in st.tensors() {
            let data = view.data();
            let values: Vec<f64> = match view.dtype() {
                Dtype::F64 => data
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                    .collect(),
                Dtype::F32 => data
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
                    .collect(),
                Dtype::I64 => data
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f64)
                    .collect(),
                other => panic!("{path}: tensor {key} has dtype {other:?}"),
            };
            tensors.insert(key.to_string(), (view.shape().to_vec(), values));
        }
        Fixture {
            name: name.to_string(),
            tensors,
        }
    }

    fn entry(&self, key: &str) -> &(Vec<usize>, Vec<f64>) {
        self.tensors.get(key).unwrap_or_else(|| {
            let mut keys: Vec<&String> = self.tensors.keys().collect();
            keys.sort();
            panic!("fixture {} has no tensor {key}; it has {keys:?}", self.name)
        })
    }

    /// The tensor's values (f64).
    pub fn f64(&self, key: &str) -> &[f64] {
        &self.entry(key).1
    }

    /// The tensor's values rounded to f32 (inputs are stored as exact f32 values).
    pub fn f32(&self, key: &str) -> Vec<f32> {
        self.entry(key).1.iter().map(|&v| v as f32).collect()
    }

    /// The tensor's values as u32 (index tensors).
    pub fn u32(&self, key: &str) -> Vec<u32> {
        self.entry(key).1.iter().map(|&v| v as u32).collect()
    }

    /// The tensor's shape.
    pub fn shape(&self, key: &str) -> &[usize] {
        &self.entry(key).0
    }

    /// Whether the fixture has `key`.
    pub fn has(&self, key: &str) -> bool {
        self.tensors.contains_key(key)
    }
}
