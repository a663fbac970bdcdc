//! What operators see: one log line per rpc (method, status, latency, the caller's token
//! id; never personal data), Prometheus metrics (`metrics` with its Prometheus exporter)
//! and the HTTP probes `/healthz` and `/readyz`, all on the serving port.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tonic::body::Body;

use crate::api::auth::{self, LoggedCaller};
use crate::engine::Engine;

/// Latency buckets of every `_seconds` histogram: 1 ms to 30 s.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The process's metrics recorder (one per process: `metrics` has one global recorder),
/// installed on first use.
pub fn metrics() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
        }
        describe();
        handle
    })
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "capsight_rpc_requests_total",
        "Calls answered, by rpc and status code."
    );
    describe_histogram!(
        "capsight_rpc_duration_seconds",
        Unit::Seconds,
        "Time to the response headers, by rpc and status code."
    );
    describe_gauge!("capsight_rpc_in_flight", "Calls being answered.");
    describe_counter!(
        "capsight_rpc_shed_total",
        "Calls refused with RESOURCE_EXHAUSTED by admission control, by class."
    );
    describe_counter!(
        "capsight_unauthenticated_total",
        "Calls without a valid token (aggregated in the audit log)."
    );
    describe_counter!(
        "capsight_assessments_written_total",
        "Assessment items acknowledged as stored."
    );
    describe_histogram!(
        "capsight_commit_duration_seconds",
        Unit::Seconds,
        "Writer group commits: apply and flush."
    );
    describe_gauge!(
        "capsight_writer_queue_depth",
        "Writes waiting for the writer."
    );
    describe_histogram!(
        "capsight_job_duration_seconds",
        Unit::Seconds,
        "Background computations (archetypes, patterns, plans, compositions)."
    );
    describe_gauge!(
        "capsight_jobs_queued",
        "Background computations waiting for a worker."
    );
    describe_counter!(
        "capsight_cache_requests_total",
        "Derived-result cache lookups, by cache (archetypes, patterns, plans, compositions) and outcome: hit (current result), stale (older result served while the next is computed), miss (waited)."
    );
    describe_gauge!(
        "capsight_data_version",
        "Data version of the served snapshot."
    );
    describe_gauge!("capsight_people", "People in the directory.");
    describe_gauge!("capsight_assessments", "Assessments stored.");
    describe_gauge!(
        "capsight_store_bytes",
        "Bytes of the data directory's files."
    );
    describe_counter!(
        "capsight_assessments_ingested_total",
        "Assessments newly stored (rate() of it is the ingest rate)."
    );
    describe_gauge!(
        "capsight_audit_bytes",
        "Bytes of the stored audit log (its values), against --audit-max-bytes."
    );
}

/// Bytes of every file under `dir` (0 if it cannot be read).
fn bytes_under(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => bytes_under(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Whether the server takes traffic: false once a shutdown began.
#[derive(Clone, Debug, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// Marks the server ready (once serving) or not (draining).
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::SeqCst);
    }

    fn get(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Logs and measures every rpc, and answers `GET /metrics`, `/healthz` and `/readyz`.
#[derive(Clone)]
pub struct ObserveLayer {
    engine: Arc<Engine>,
    data_dir: Arc<std::path::PathBuf>,
    ready: Readiness,
}

impl ObserveLayer {
    /// The layer over `engine` (stored in `data_dir`), ready as `ready` says.
    pub fn new(engine: Arc<Engine>, data_dir: std::path::PathBuf, ready: Readiness) -> Self {
        metrics();
        Self {
            engine,
            data_dir: Arc::new(data_dir),
            ready,
        }
    }
}

impl<S> tower_layer::Layer<S> for ObserveLayer {
    type Service = Observed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observed {
            inner,
            layer: self.clone(),
        }
    }
}

/// A service behind `ObserveLayer`.
#[derive(Clone)]
pub struct Observed<S> {
    inner: S,
    layer: ObserveLayer,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut response = Response::new(Body::new(Full::new(Bytes::from(body))));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

impl ObserveLayer {
    /// The answer to an HTTP probe or scrape at `path`, if it is one.
    fn http(&self, path: &str) -> Option<Response<Body>> {
        match path {
            "/metrics" => {
                let snapshot = self.engine.snapshot();
                metrics::gauge!("capsight_data_version").set(snapshot.data_version as f64);
                metrics::gauge!("capsight_people").set(snapshot.directory.people().len() as f64);
                metrics::gauge!("capsight_assessments").set(snapshot.assessment_total as f64);
                metrics::gauge!("capsight_store_bytes").set(bytes_under(&self.data_dir) as f64);
                Some(text(
                    StatusCode::OK,
                    "text/plain; version=0.0.4; charset=utf-8",
                    metrics().render(),
                ))
            }
            "/healthz" => Some(text(
                StatusCode::OK,
                "text/plain; charset=utf-8",
                "ok\n".into(),
            )),
            "/readyz" => Some(match self.engine.storage_failure() {
                Some(reason) => text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain; charset=utf-8",
                    format!("storage failed: {reason}\n"),
                ),
                None if !self.ready.get() => text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain; charset=utf-8",
                    "not ready: starting or shutting down\n".into(),
                ),
                None => text(
                    StatusCode::OK,
                    "text/plain; charset=utf-8",
                    "ready\n".into(),
                ),
            }),
            _ => None,
        }
    }
}

/// The grpc-status of a response whose status is in its headers (failed before any
/// message); `None` when it comes in the trailers (answered: OK for a unary call).
fn header_code(response: &Response<Body>) -> Option<tonic::Code> {
    response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(tonic::Code::from_i32)
}

impl<S, B> tower_service::Service<Request<B>> for Observed<S>
where
    S: tower_service::Service<Request<B>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let path = request.uri().path();
        if request.method() == Method::GET
            && let Some(response) = self.layer.http(path)
        {
            return Box::pin(async move { Ok(response) });
        }
        // Only rpc paths are logged and measured; pages and preflights are not calls.
        let Some(rpc) = auth::rpc_label(path) else {
            return Box::pin(self.inner.call(request));
        };
        let started = Instant::now();
        let in_flight = metrics::gauge!("capsight_rpc_in_flight");
        in_flight.increment(1.0);
        let call = self.inner.call(request);
        Box::pin(async move {
            let response = call.await;
            in_flight.decrement(1.0);
            let response = response?;
            let code = header_code(&response).unwrap_or(tonic::Code::Ok);
            let code_name = auth::code_name(code);
            let elapsed = started.elapsed();
            let token = response
                .extensions()
                .get::<LoggedCaller>()
                .map(|c| c.0.to_string())
                .unwrap_or_default();
            let labels = [("rpc", rpc.to_owned()), ("code", code_name.clone())];
            metrics::counter!("capsight_rpc_requests_total", &labels).increment(1);
            metrics::histogram!("capsight_rpc_duration_seconds", &labels)
                .record(elapsed.as_secs_f64());
            tracing::info!(
                target: "capsight::rpc",
                rpc,
                code = %code_name,
                latency_ms = elapsed.as_secs_f64() * 1000.0,
                token = %token,
                "rpc"
            );
            Ok(response)
        })
    }
}
