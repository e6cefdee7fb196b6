//! Synthetic data (DATA.md §3).
