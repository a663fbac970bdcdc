//! Cluster mode's read-your-writes, as request and response metadata:
//! - every answer carries `capsight-log-sequence`: for a read, the last log entry this
//!   node had applied when the call started, so the answer reflects at least every
//!   write up to it; for a write, the last applied when it was answered, which
//!   includes the write (a write is answered only after this node applied it);
//! - a call may send `capsight-min-log-sequence: N`: it then waits, at most
//!   `MAX_WAIT` and never past its `grpc-timeout`, until this node has applied entry N,
//!   and fails UNAVAILABLE if it has not. Sending the sequence of a previous answer from
//!   any node makes the next call, on any node, see everything that answer saw —
//!   tokens included: the wait comes before authentication (and before admission, so
//!   a waiting call holds no permit).
//!
//! Outside cluster mode neither header means anything and none is sent.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tonic::body::Body;

use crate::engine::Engine;
use crate::error::Error;

/// Request header: the log sequence the caller needs this node to have applied.
pub const MIN_SEQUENCE_HEADER: &str = "capsight-min-log-sequence";
/// Response header: the log sequence this node had applied when the call started.
pub const SEQUENCE_HEADER: &str = "capsight-log-sequence";

/// Longest a call waits for this node to catch up with a requested sequence.
const MAX_WAIT: Duration = Duration::from_secs(10);

/// Applies `capsight-min-log-sequence` and adds `capsight-log-sequence`.
#[derive(Clone)]
pub struct ConsistencyLayer {
    engine: Arc<Engine>,
}

impl ConsistencyLayer {
    /// The layer over `engine`.
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }
}

impl<S> tower_layer::Layer<S> for ConsistencyLayer {
    type Service = Consistent<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Consistent {
            inner,
            engine: Arc::clone(&self.engine),
        }
    }
}

/// A service answering at a known log sequence.
#[derive(Clone)]
pub struct Consistent<S> {
    inner: S,
    engine: Arc<Engine>,
}

/// The requested minimum sequence: absent, or a clear error for a malformed one.
fn min_sequence(headers: &http::HeaderMap) -> Result<Option<u64>, tonic::Status> {
    let Some(value) = headers.get(MIN_SEQUENCE_HEADER) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Some)
        .ok_or_else(|| {
            tonic::Status::invalid_argument(format!(
                "{MIN_SEQUENCE_HEADER} must be a log sequence number (a non-negative integer)"
            ))
        })
}

impl<S, B> tower_service::Service<http::Request<B>> for Consistent<S>
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
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let engine = Arc::clone(&self.engine);
        if engine.log_applied().is_none() {
            return Box::pin(inner.call(request));
        }
        Box::pin(async move {
            match min_sequence(request.headers()) {
                Ok(Some(min)) => {
                    let wait = super::admission::grpc_timeout(request.headers())
                        .map_or(MAX_WAIT, |t| t.min(MAX_WAIT));
                    if let Err(e) = engine.wait_for_log(min, wait).await {
                        let status = match e {
                            Error::Unavailable(reason) => tonic::Status::unavailable(reason),
                            other => tonic::Status::from(other),
                        };
                        return Ok(status.into_http());
                    }
                }
                Ok(None) => {}
                Err(status) => return Ok(status.into_http()),
            }
            let write = crate::api::class_of(request.uri().path()) == crate::api::Class::Write;
            let before = engine.log_applied().unwrap_or(0);
            let mut response = inner.call(request).await?;
            // A caller without a valid token learns nothing, the log's length included.
            let unauthenticated = response.headers().get("grpc-status")
                == Some(&http::HeaderValue::from_static("16"));
            if unauthenticated {
                return Ok(response);
            }
            let sequence = if write {
                engine.log_applied().unwrap_or(before)
            } else {
                before
            };
            response
                .headers_mut()
                .insert(SEQUENCE_HEADER, http::HeaderValue::from(sequence));
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minimum_sequence_header_is_a_number_or_a_clear_error() {
        let parse = |v: Option<&str>| {
            let mut headers = http::HeaderMap::new();
            if let Some(v) = v {
                headers.insert(MIN_SEQUENCE_HEADER, v.parse().unwrap());
            }
            min_sequence(&headers)
        };
        assert_eq!(parse(None).unwrap(), None);
        assert_eq!(parse(Some("42")).unwrap(), Some(42));
        for bad in ["-1", "x", "1.5", "99999999999999999999999"] {
            let status = parse(Some(bad)).unwrap_err();
            assert_eq!(status.code(), tonic::Code::InvalidArgument, "{bad}");
            assert!(status.message().contains(MIN_SEQUENCE_HEADER));
        }
    }
}
