//! Dense-kernel benches (work in progress).
fn main() {}
