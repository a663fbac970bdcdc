//! capsight turns skill-assessment results into team-capability insights, served over
//! gRPC. Data flows one way: `api` → `store` (durable) → `engine` (in-memory snapshot)
//! → analytics, and results flow back through `api`'s conversions.
//!
//! - [`domain`]: plain, valid-by-construction types and the org tree.
//! - [`analytics`]: pure functions: effective proficiency, calibration.
//! - [`store`]: sled trees, record encoding, durable batched writes, erasure.
//! - [`engine`]: the live snapshot, the single writer and its group commit.
//! - [`service`]: policy without transport: scope admission (more to move from `api`).
//! - [`api`]: generated protobuf code, conversions, error mapping, gRPC services.
//! - [`server`]: assembling the tonic server: health, reflection, limits, shutdown.
//! - [`web`]: the embedded reference dashboard and CORS for browser clients.
//! - [`demo`]: the deterministic synthetic organisation.
//! - [`import`]: CSV import, a client of a running server.
//! - [`cli`]: the command-line interface.

pub mod analytics;
pub mod api;
pub mod cli;
pub mod cluster;
pub mod demo;
pub mod domain;
pub mod engine;
pub mod error;
pub mod import;
pub mod server;
pub mod service;
pub mod store;
pub mod telemetry;
pub mod web;

pub use error::{Error, Result};
