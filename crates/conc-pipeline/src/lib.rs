//! Typed pipelines of tokio tasks and bounded channels: map/filter/batch stages, ordered or unordered fan-out/fan-in, error policies and a per-stage report.
#![warn(missing_docs)]
#![forbid(unsafe_code)]
