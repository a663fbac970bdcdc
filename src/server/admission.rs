//! Admission control and deadlines, in front of every capsight service.
//!
//! Calls fall into classes — cheap reads, heavy reads, writes — each with its own limit
//! of calls running at once and a short queue. A call past both is answered
//! RESOURCE_EXHAUSTED at once, with a `RetryInfo` hint, so that a burst of heavy calls
//! cannot take memory, threads or the health check with it. Long-lived streams, health,
//! reflection and the dashboard are not limited here (connection limits bound them).
//!
//! Deadlines: the call's `grpc-timeout` (or the server's request timeout, whichever is
//! shorter) ends the call with DEADLINE_EXCEEDED, as the gRPC spec means it. Shared
//! computations the call was waiting for go on; their results are kept (see
//! `engine::cache`). Must not hold business rules.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::body::Body;

use crate::api::{Class, class_of};
use crate::error::Error;

/// How long a refused caller is told to wait before retrying.
const RETRY_AFTER: Duration = Duration::from_millis(250);

/// How much earlier than the caller's deadline this layer answers: tonic's own timeout
/// layer, outside ours, would otherwise answer the same instant with CANCELLED.
const DEADLINE_MARGIN: Duration = Duration::from_millis(5);

/// Concurrency limits of each class: calls running, and calls waiting beyond them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdmissionLimits {
    /// Cheap reads running at once.
    pub cheap: usize,
    /// Heavy reads running at once (most wait for shared jobs, not CPU).
    pub heavy: usize,
    /// Writes in flight (the writer groups them into one flush).
    pub write: usize,
    /// Calls of each class that may wait for a place; past them, RESOURCE_EXHAUSTED.
    pub queue: usize,
}

impl Default for AdmissionLimits {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            cheap: 256 * cores,
            heavy: 8 * cores,
            write: 512,
            queue: 64,
        }
    }
}

/// One class's places: running and waiting.
struct Gate {
    running: Arc<Semaphore>,
    waiting: Arc<Semaphore>,
}

impl Gate {
    fn new(running: usize, waiting: usize) -> Self {
        Self {
            running: Arc::new(Semaphore::new(running)),
            waiting: Arc::new(Semaphore::new(waiting)),
        }
    }

    /// A running place, waiting for one only if a waiting place is free.
    async fn admit(&self) -> Result<OwnedSemaphorePermit, Error> {
        if let Ok(permit) = Arc::clone(&self.running).try_acquire_owned() {
            return Ok(permit);
        }
        let overloaded = Error::Overloaded {
            retry_after: RETRY_AFTER,
        };
        let Ok(_waiting) = Arc::clone(&self.waiting).try_acquire_owned() else {
            return Err(overloaded);
        };
        Arc::clone(&self.running)
            .acquire_owned()
            .await
            .map_err(|_| Error::ShuttingDown)
    }
}

/// The places of every class, shared by all connections.
pub struct Admission {
    cheap: Gate,
    heavy: Gate,
    write: Gate,
    request_timeout: Duration,
}

impl Admission {
    /// Admission with `limits`, and `request_timeout` as the longest any call may run.
    pub fn new(limits: AdmissionLimits, request_timeout: Duration) -> Self {
        Self {
            cheap: Gate::new(limits.cheap, limits.queue),
            heavy: Gate::new(limits.heavy, limits.queue),
            write: Gate::new(limits.write, limits.queue),
            request_timeout,
        }
    }

    fn gate(&self, class: Class) -> Option<&Gate> {
        match class {
            Class::CheapRead => Some(&self.cheap),
            Class::HeavyRead => Some(&self.heavy),
            Class::Write => Some(&self.write),
            Class::Unlimited => None,
        }
    }
}

/// The tower layer applying `Admission` to every call.
#[derive(Clone)]
pub struct AdmissionLayer {
    admission: Arc<Admission>,
}

impl AdmissionLayer {
    /// A layer sharing `admission` across connections.
    pub fn new(admission: Arc<Admission>) -> Self {
        Self { admission }
    }
}

impl<S> tower_layer::Layer<S> for AdmissionLayer {
    type Service = Admitted<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Admitted {
            inner,
            admission: Arc::clone(&self.admission),
        }
    }
}

/// A service behind admission control.
#[derive(Clone)]
pub struct Admitted<S> {
    inner: S,
    admission: Arc<Admission>,
}

impl<S, B> tower_service::Service<http::Request<B>> for Admitted<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // The clone is ready only after poll_ready; call the instance that was polled.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let class = class_of(request.uri().path());
        if class == Class::Unlimited {
            return Box::pin(inner.call(request));
        }
        let admission = Arc::clone(&self.admission);
        let budget = grpc_timeout(request.headers())
            .map_or(admission.request_timeout, |t| {
                t.min(admission.request_timeout)
            })
            .saturating_sub(DEADLINE_MARGIN);
        Box::pin(async move {
            let call = async {
                let gate = admission.gate(class);
                let _permit = match gate {
                    Some(gate) => match gate.admit().await {
                        Ok(permit) => Some(permit),
                        Err(e) => {
                            metrics::counter!("capsight_rpc_shed_total", "class" => format!("{class:?}"))
                                .increment(1);
                            return Ok(refusal(e));
                        }
                    },
                    None => None,
                };
                inner.call(request).await
            };
            match tokio::time::timeout(budget, call).await {
                Ok(answer) => answer,
                Err(_) => Ok(refusal(Error::DeadlineExceeded)),
            }
        })
    }
}

fn refusal(error: Error) -> http::Response<Body> {
    tonic::Status::from(error).into_http()
}

/// The `grpc-timeout` header as a duration (gRPC over HTTP/2: up to 8 digits and a unit).
pub(super) fn grpc_timeout(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.checked_mul(3600)?),
        "M" => Duration::from_secs(amount.checked_mul(60)?),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_in_every_unit_and_nonsense_is_ignored() {
        let parse = |v: &str| {
            let mut headers = http::HeaderMap::new();
            headers.insert("grpc-timeout", v.parse().unwrap());
            grpc_timeout(&headers)
        };
        assert_eq!(parse("3S"), Some(Duration::from_secs(3)));
        assert_eq!(parse("250m"), Some(Duration::from_millis(250)));
        assert_eq!(
            parse("99999999H"),
            Some(Duration::from_secs(99_999_999 * 3600))
        );
        assert_eq!(parse("5x"), None);
        assert_eq!(parse("S"), None);
        assert_eq!(parse("123456789S"), None);
    }

    #[tokio::test]
    async fn a_full_class_refuses_at_once_past_its_queue() {
        let gate = Gate::new(1, 1);
        let running = gate.admit().await.unwrap();
        let gate = Arc::new(gate);
        let waiting = tokio::spawn({
            let gate = Arc::clone(&gate);
            async move { gate.admit().await.map(drop) }
        });
        tokio::task::yield_now().await;
        while gate.waiting.available_permits() != 0 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(gate.admit().await, Err(Error::Overloaded { .. })));
        drop(running);
        waiting.await.unwrap().unwrap();
    }
}
