//! f16 tensors (safetensors `F16`): the tables of an f16 model (issue 19) are saved as they are
//! stored, two bytes a weight, and kept in memory as raw IEEE binary16 bits, so a checkpoint of a
//! 3.2 GB f16 table holds 3.2 GB, not an f32 copy of twice that. Their optimizer state stays an
//! f32 tensor. A name holds either an f32 or an f16 tensor, never both.

use super::Checkpoint;
use crate::Result;

/// One named f16 tensor: row-major binary16 bits and the shape.
#[derive(Debug, Clone, PartialEq)]
pub struct HalfTensor {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// `shape.iter().product()` binary16 values as bits.
    pub bits: Vec<u16>,
}

impl Checkpoint {
    /// Adds (or replaces, whatever its dtype) the f16 tensor `name`.
    pub fn insert_f16(&mut self, name: &str, shape: &[usize], bits: Vec<u16>) -> Result<()> {
        let expected = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        if expected != Some(bits.len()) {
            let message = format!("shape {shape:?} does not hold {} values", bits.len());
            return Err(self.error(Some(name), message));
        }
        if name == super::RESERVED {
            return Err(self.error(Some(name), "the name is reserved by safetensors"));
        }
        self.tensors.remove(name);
        let shape = shape.to_vec();
        self.halves
            .insert(name.to_owned(), HalfTensor { shape, bits });
        Ok(())
    }

    /// Every f16 tensor by name.
    pub fn halves(&self) -> &std::collections::BTreeMap<String, HalfTensor> {
        &self.halves
    }

    /// Whether `name` is an f16 tensor.
    pub fn is_f16(&self, name: &str) -> bool {
        self.halves.contains_key(name)
    }

    /// Turns every f16 tensor into the f32 tensor of its values (exact), for readers that want
    /// f32 only (the analysis); costs twice the f16 tensors' memory.
    pub fn widen_halves(&mut self) {
        for (name, t) in std::mem::take(&mut self.halves) {
            let data = t
                .bits
                .iter()
                .map(|&b| half::f16::from_bits(b).to_f32())
                .collect();
            let shape = t.shape;
            self.tensors.insert(name, super::Tensor { shape, data });
        }
    }

    /// f16 tensor `name`, which must exist with exactly `shape`.
    pub fn tensor_f16(&self, name: &str, shape: &[usize]) -> Result<&[u16]> {
        let tensor = self.halves.get(name).ok_or_else(|| {
            let message = if self.tensors.contains_key(name) {
                "an F32 tensor where F16 is expected".to_string()
            } else {
                "no such tensor".to_string()
            };
            self.error(Some(name), message)
        })?;
        if tensor.shape != shape {
            let message = format!("shape {:?} where {shape:?} is expected", tensor.shape);
            return Err(self.error(Some(name), message));
        }
        Ok(&tensor.bits)
    }
}
