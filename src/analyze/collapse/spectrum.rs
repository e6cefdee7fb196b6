//! Singular values from a Gram matrix and the information abundance (METHODS.md §2.1).
//!
//! The eigenvalues λ of the symmetric `D × D` Gram `G = EᵀE` are the squared singular values of
//! `E`; they come from nalgebra's [`SymmetricEigen`] in f64 (Householder tridiagonalisation and
//! implicit QR; tested against planted spectra in this module's tests). Then
//! `σ_k = √max(λ_k, 0)`, sorted descending, and at most `min(N, D)` of them non-zero: a matrix of
//! `N` rows has rank ≤ `N`, so the eigenvalues past that are the Gram's rounding noise and are set
//! to 0. The information abundance (Guo, Pan et al., ICML 2024, arXiv 2310.04400) is
//! `IA = Σ_k σ_k / σ_1 ∈ [1, min(N, D)]`; an all-zero matrix (σ₁ = 0) gets IA 0 and is flagged.

use nalgebra::{DMatrix, SymmetricEigen};

use crate::error::{Error, Result};

/// Sweeps of implicit QR allowed per dimension before the eigensolver gives up (it converges in a
/// few per eigenvalue; the cap only turns a pathological input into an error instead of a hang).
const SWEEPS_PER_DIM: usize = 1000;

/// The singular values of one matrix and what they give.
#[derive(Debug, Clone, PartialEq)]
pub struct Spectrum {
    /// σ_1 ≥ … ≥ σ_D ≥ 0.
    pub sigma: Vec<f64>,
    /// Σσ / σ₁ (0 when σ₁ = 0).
    pub ia: f64,
    /// σ₁ = 0: every row is zero (or there are none).
    pub all_zero: bool,
}

impl Spectrum {
    /// The singular values of a matrix of `rows` rows whose Gram `EᵀE` is `gram` (`dim × dim`,
    /// row-major, symmetric up to rounding: its two triangles are averaged). A non-finite entry
    /// is an error naming `what`, as is an eigensolver that does not converge.
    pub fn from_gram(gram: &[f64], dim: usize, rows: usize, what: &str) -> Result<Spectrum> {
        let bad = |message: String| Error::Metrics(format!("{what}: {message}"));
        if gram.len() != dim * dim {
            return Err(bad(format!(
                "Gram of {} values is not {dim} × {dim}",
                gram.len()
            )));
        }
        if gram.iter().any(|v| !v.is_finite()) {
            return Err(bad("the embedding rows hold non-finite values".into()));
        }
        let mut sigma = if dim == 0 {
            Vec::new()
        } else {
            let g = DMatrix::from_fn(dim, dim, |i, j| {
                0.5 * (gram[i * dim + j] + gram[j * dim + i])
            });
            let eigen = SymmetricEigen::try_new(g, f64::EPSILON, SWEEPS_PER_DIM * dim)
                .ok_or_else(|| bad("the symmetric eigensolver did not converge".into()))?;
            eigen
                .eigenvalues
                .iter()
                .map(|&l| l.max(0.0).sqrt())
                .collect()
        };
        sigma.sort_by(|a: &f64, b| b.total_cmp(a));
        for s in sigma.iter_mut().skip(rows) {
            *s = 0.0;
        }
        Ok(Spectrum::of(sigma))
    }

    /// IA and the all-zero flag of singular values already sorted descending.
    pub fn of(sigma: Vec<f64>) -> Spectrum {
        let first = sigma.first().copied().unwrap_or(0.0);
        let all_zero = first <= 0.0;
        let ia = if all_zero {
            0.0
        } else {
            sigma.iter().sum::<f64>() / first
        };
        Spectrum {
            sigma,
            ia,
            all_zero,
        }
    }

    /// σ_k / σ₁ for k = 1..D (zeros when all-zero).
    pub fn normalised(&self) -> Vec<f64> {
        match self.sigma.first() {
            Some(&s1) if s1 > 0.0 => self.sigma.iter().map(|s| s / s1).collect(),
            _ => vec![0.0; self.sigma.len()],
        }
    }
}
