//! `capsight.v1.IngestService`: unary and streamed assessment batches, acknowledged
//! only once durable.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::auth::Caller;
use super::convert::{assessment_batch, check_batch_len, merge_rejections};
use super::pb;
use crate::domain::{PersonId, Rejection, Timestamp};
use crate::service::access::Access;
use crate::service::ingest::{Ingest, IngestOutcome, Pending};

/// Batches of one stream that may be queued behind the one being committed. Enough to
/// keep the writer's group commit fed, small enough to bound memory per stream.
const STREAM_IN_FLIGHT: usize = 32;

/// The ingest service, backed by the engine.
pub struct IngestApi {
    service: Arc<Ingest>,
    /// Where a stream's batches are audited.
    access: Arc<Access>,
    shutdown: watch::Receiver<bool>,
}

impl IngestApi {
    /// The gRPC face of `service`; open streams stop reading new batches once
    /// `shutdown` turns true, acknowledge what they accepted, and end.
    pub fn new(service: Ingest, access: Arc<Access>, shutdown: watch::Receiver<bool>) -> Self {
        Self {
            service: Arc::new(service),
            access,
            shutdown,
        }
    }
}

/// What woke a stream's reader.
enum Event {
    Message(Result<Option<pb::StreamAssessmentsRequest>, Status>),
    Shutdown,
    Changed,
}

/// One batch of a stream on its way to the disk.
struct InFlight {
    sequence: u64,
    invalid: Vec<Rejection>,
    pending: Pending<IngestOutcome>,
}

#[tonic::async_trait]
impl pb::ingest_service_server::IngestService for IngestApi {
    #[tracing::instrument(skip_all, fields(items = request.get_ref().assessments.len()))]
    async fn record_assessments(
        &self,
        request: Request<pb::RecordAssessmentsRequest>,
    ) -> Result<Response<pb::RecordAssessmentsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let items = request.into_inner().assessments;
        let subjects = people_of(&items);
        let result = async {
            check_batch_len(items.len(), "assessments")?;
            let (valid, invalid) = assessment_batch(items, Timestamp::now());
            let outcome = self.service.record(valid).await?;
            let (accepted, duplicates, rejections) = merge_rejections(outcome, invalid);
            Ok(Response::new(pb::RecordAssessmentsResponse {
                accepted,
                duplicates,
                rejections,
            }))
        }
        .await;
        caller.answer_ok(result, subjects)
    }

    type StreamAssessmentsStream = ReceiverStream<Result<pb::StreamAssessmentsResponse, Status>>;

    #[tracing::instrument(skip_all)]
    async fn stream_assessments(
        &self,
        request: Request<Streaming<pb::StreamAssessmentsRequest>>,
    ) -> Result<Response<Self::StreamAssessmentsStream>, Status> {
        let caller = Caller::of(&request)?;
        let mut inbound = request.into_inner();
        let (acks, responses) = mpsc::channel(STREAM_IN_FLIGHT);
        let (queue, mut queued) = mpsc::channel::<Result<InFlight, Status>>(STREAM_IN_FLIGHT);
        let service = Arc::clone(&self.service);
        let access = Arc::clone(&self.access);
        let mut shutdown = self.shutdown.clone();
        let mut changes = self.service.changes();

        // Reader: converts and queues batches without waiting for earlier ones to be
        // durable, so consecutive batches share flushes. It stops at shutdown, and ends
        // the call with UNAUTHENTICATED as soon as its token is revoked or expires.
        tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    message = inbound.message() => Event::Message(message),
                    _ = shutdown.wait_for(|stop| *stop) => Event::Shutdown,
                    Ok(()) = changes.changed() => Event::Changed,
                };
                let message = match event {
                    Event::Shutdown => break,
                    Event::Changed if service.token_active(&caller.token) => continue,
                    Event::Message(message) if service.token_active(&caller.token) => message,
                    Event::Changed | Event::Message(_) => {
                        let denied = Status::unauthenticated("token revoked or expired");
                        let _ = queue.send(Err(denied)).await;
                        break;
                    }
                };
                let batch = match message {
                    Ok(Some(batch)) => batch,
                    Ok(None) => break,
                    Err(status) => {
                        tracing::debug!(code = ?status.code(), "ingest stream ended by client");
                        break;
                    }
                };
                let subjects = people_of(&batch.assessments);
                let item = queue_batch(&service, batch).await;
                // Each batch is audited as the call itself would be: subjects only when
                // it was taken; a batch whose event cannot be recorded still stands.
                let (code, subjects) = match &item {
                    Ok(_) => (tonic::Code::Ok, subjects),
                    Err(status) => (status.code(), Vec::new()),
                };
                if let Err(e) = caller.audit(&access, subjects, code).await {
                    tracing::warn!(error = %e, "audit event of a streamed batch not recorded");
                }
                let failed = item.is_err();
                if queue.send(item).await.is_err() || failed {
                    break;
                }
            }
        });

        // Acknowledger: answers in order, each once its batch is durable.
        tokio::spawn(async move {
            while let Some(item) = queued.recv().await {
                let reply = match item {
                    Ok(in_flight) => acknowledge(in_flight).await,
                    Err(status) => Err(status),
                };
                let failed = reply.is_err();
                if acks.send(reply).await.is_err() || failed {
                    break;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(responses)))
    }
}

/// The distinct people a batch is about, for the audit trail (never scores).
/// The well-formed person ids a batch names, once each (audit subjects: a malformed id,
/// however long, is never recorded).
fn people_of(items: &[pb::Assessment]) -> Vec<String> {
    let mut people: Vec<String> = items
        .iter()
        .filter(|a| PersonId::parse(&a.person_id).is_ok())
        .map(|a| a.person_id.clone())
        .collect();
    people.sort_unstable();
    people.dedup();
    people
}

async fn queue_batch(
    service: &Ingest,
    batch: pb::StreamAssessmentsRequest,
) -> Result<InFlight, Status> {
    let pb::StreamAssessmentsRequest {
        sequence,
        assessments,
    } = batch;
    check_batch_len(assessments.len(), "assessments")?;
    let (valid, invalid) = assessment_batch(assessments, Timestamp::now());
    let pending = service.enqueue(valid).await?;
    Ok(InFlight {
        sequence,
        invalid,
        pending,
    })
}

async fn acknowledge(in_flight: InFlight) -> Result<pb::StreamAssessmentsResponse, Status> {
    let outcome = in_flight.pending.durable().await?;
    let (accepted, duplicates, rejections) = merge_rejections(outcome, in_flight.invalid);
    Ok(pb::StreamAssessmentsResponse {
        sequence: in_flight.sequence,
        accepted,
        duplicates,
        rejections,
    })
}
