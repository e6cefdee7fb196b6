//! Online learning: training on rows as they arrive (issue 17).
//!
//! [`source`] reads rows in arrival order from a followed file, a folder of partitions or stdin,
//! with a position for exact resumes; [`rolling`] keeps the progressive-validation metrics;
//! [`log`] writes the run's JSON-lines log, truncated back on resume; [`curves`] draws a metric
//! per window from several logs.
pub mod curves;
pub mod log;
pub mod rolling;
pub mod source;
