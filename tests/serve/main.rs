//! `wgrec serve` and what it stands on, end to end on a tiny trained model: snapshots reloaded by
//! a `Predictor`, the HTTP API under concurrent load with a snapshot published in the middle,
//! its errors, `/healthz` and `/metrics`, a broken snapshot, the binary's clean stop. Everything
//! talks to 127.0.0.1 on a port the OS picks.

mod api;
mod common;
mod load;
mod rank;
mod reload;
