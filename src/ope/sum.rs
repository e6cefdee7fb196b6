//! Exact summation of f64 values: Shewchuk's algorithm ("Adaptive precision floating-point
//! arithmetic", 1997), as in Python's `math.fsum`. The running sum is kept as a list of
//! non-overlapping partials whose exact sum is the exact sum of the inputs; the result is that
//! exact sum rounded once. Order-independent, so an estimate does not depend on how rounds are
//! ordered or resampled.

/// A running exact sum.
#[derive(Debug, Clone, Default)]
pub struct ExactSum {
    partials: Vec<f64>,
}

impl ExactSum {
    /// Adds `x` exactly (finite values only; the estimators validate their inputs first).
    pub fn add(&mut self, mut x: f64) {
        let mut kept = 0;
        for j in 0..self.partials.len() {
            let mut y = self.partials[j];
            if x.abs() < y.abs() {
                std::mem::swap(&mut x, &mut y);
            }
            let high = x + y;
            let low = y - (high - x);
            if low != 0.0 {
                self.partials[kept] = low;
                kept += 1;
            }
            x = high;
        }
        self.partials.truncate(kept);
        self.partials.push(x);
    }

    /// The exact sum, correctly rounded to f64 (round-half-even, as `math.fsum`).
    pub fn value(&self) -> f64 {
        let p = &self.partials;
        let Some(mut n) = p.len().checked_sub(1) else {
            return 0.0;
        };
        let mut high = p[n];
        let mut low = 0.0;
        while n > 0 {
            n -= 1;
            let x = high;
            let y = p[n];
            high = x + y;
            low = y - (high - x);
            if low != 0.0 {
                break;
            }
        }
        // Correct the rounding of a half-way case by the sign of the next partial.
        if n > 0 && ((low < 0.0 && p[n - 1] < 0.0) || (low > 0.0 && p[n - 1] > 0.0)) {
            let y = low * 2.0;
            let x = high + y;
            if y == x - high {
                high = x;
            }
        }
        high
    }
}

/// The exact sum of `values`, correctly rounded.
pub fn exact_sum(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut sum = ExactSum::default();
    values.into_iter().for_each(|v| sum.add(v));
    sum.value()
}
