//! `IngestService`: assessment batches, unary or streamed, acknowledged only once
//! durable. Per-item validation is the request's conversion (each item is accepted or
//! rejected by position); what is stored, a duplicate or a conflict is the engine's.

use std::sync::Arc;

use tokio::sync::watch;

use crate::domain::{Assessment, TokenId};
use crate::engine::Engine;
/// The writer's acknowledgement, and a batch on its way to it.
pub use crate::engine::{IngestOutcome, Pending};
use crate::error::Result;

/// The ingest service.
pub struct Ingest {
    engine: Arc<Engine>,
}

impl Ingest {
    /// The service over `engine`.
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }

    /// Records `items` (by their position in the request) and waits until durable.
    pub async fn record(&self, items: Vec<(u32, Assessment)>) -> Result<IngestOutcome> {
        self.engine.record_assessments(items).await
    }

    /// Queues `items` behind earlier batches without waiting for them to be durable, so
    /// that consecutive batches of a stream share flushes.
    pub async fn enqueue(&self, items: Vec<(u32, Assessment)>) -> Result<Pending<IngestOutcome>> {
        self.engine.enqueue_assessments(items).await
    }

    /// Whether `token` may still be used (an open stream ends when it may not).
    pub fn token_active(&self, token: &TokenId) -> bool {
        self.engine
            .snapshot()
            .tokens
            .is_active(token, crate::domain::Timestamp::now())
    }

    /// Signals each new data version (a revocation among them).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.engine.changes()
    }
}
