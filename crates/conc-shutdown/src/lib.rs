//! Graceful shutdown for tokio services: signals, named subsystems, ordered phases with deadlines, LIFO cleanup hooks and a report.
#![warn(missing_docs)]
#![forbid(unsafe_code)]
