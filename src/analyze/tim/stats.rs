//! The two statistics of the TIM section: the mutual information of a binary indicator with the
//! binary label from their 2×2 counts, and Spearman's rank correlation with average ranks for ties.

/// The 2×2 contingency table of an indicator X (a sample has a behaviour in the cell) and the
/// label Y over the labelled samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Samples with X = 1.
    pub with: u64,
    /// Samples with X = 1 and Y = 1.
    pub with_positive: u64,
    /// All labelled samples.
    pub samples: u64,
    /// All samples with Y = 1.
    pub positives: u64,
}

impl Counts {
    /// Samples with X = 0.
    pub fn without(&self) -> u64 {
        self.samples - self.with
    }

    /// MI(X; Y) in nats, `Σ_{x,y} p(x,y) ln(p(x,y) / (p(x) p(y)))` (empty cells add 0), or `None`
    /// when X = 1 or X = 0 holds on fewer than `min` samples: the estimate of a rare event's MI is
    /// mostly noise (its bias is about (2·2 − 1 − 1 − 1)/(2N) = 1/(2N) nats, larger than the
    /// signal for small N), and a cell every sample has tells nothing either.
    pub fn mutual_information(&self, min: u64) -> Option<f64> {
        let c = *self;
        if c.with > c.samples
            || c.with_positive > c.with
            || c.positives < c.with_positive
            || c.positives - c.with_positive > c.without()
        {
            return None;
        }
        if c.with < min || c.without() < min || c.samples == 0 {
            return None;
        }
        let n = c.samples as f64;
        let joint = [
            (c.with_positive, c.with, c.positives),
            (c.with - c.with_positive, c.with, c.samples - c.positives),
            (c.positives - c.with_positive, c.without(), c.positives),
            (
                c.without() - (c.positives - c.with_positive),
                c.without(),
                c.samples - c.positives,
            ),
        ];
        let mi = joint
            .iter()
            .filter(|(nxy, _, _)| *nxy > 0)
            .map(|&(nxy, nx, ny)| {
                let nxy = nxy as f64;
                nxy / n * (nxy * n / (nx as f64 * ny as f64)).ln()
            })
            .sum::<f64>();
        // Rounding can leave −1e-17 where X and Y are exactly independent; MI is ≥ 0.
        Some(mi.max(0.0))
    }
}

/// Ranks 1..=n of `x`, ties sharing the mean of the ranks they span.
pub fn average_ranks(x: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut ranks = vec![0.0; x.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && x[order[end]] == x[order[start]] {
            end += 1;
        }
        // Positions start..end hold ranks start+1..=end; their mean is (start + 1 + end) / 2.
        let rank = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        start = end;
    }
    ranks
}

/// Spearman's ρ of the pairs `(x_i, y_i)`: the Pearson correlation of their average ranks. `None`
/// with fewer than 3 pairs (two points always correlate ±1) or when either side is constant.
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() || x.len() < 3 {
        return None;
    }
    let (rx, ry) = (average_ranks(x), average_ranks(y));
    let mean = (x.len() as f64 + 1.0) / 2.0;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in rx.iter().zip(&ry) {
        let (a, b) = (a - mean, b - mean);
        sxy += a * b;
        sxx += a * a;
        syy += b * b;
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}
