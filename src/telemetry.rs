//! Logs and traces. Logs go to stderr as text or JSON (colours only on a terminal).
//! With an OTLP endpoint, tracing's spans (one per rpc, named `rpc` with its `method`,
//! and the handlers' spans inside it) are also exported as OpenTelemetry traces over
//! OTLP/gRPC, in batches, with `service.name` = `capsight`. Spans carry no personal data:
//! handlers record none of their arguments.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// What `init` set up that must be shut down at exit (pending spans are sent then).
#[must_use]
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
}

/// Installs the global subscriber: logs (`json` or text) filtered by `RUST_LOG` (default
/// `info`), and OTLP trace export to `otlp_endpoint` when given. Call inside a tokio
/// runtime (the exporter's channel needs one).
pub fn init(json: bool, otlp_endpoint: Option<&str>) -> Result<Telemetry, String> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let logs = if json {
        logs.json().boxed()
    } else {
        logs.boxed()
    };
    let traces = otlp_endpoint
        .map(|endpoint| {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()
                .map_err(|e| format!("--otlp-endpoint {endpoint}: {e}"))?;
            let resource = opentelemetry_sdk::Resource::builder()
                .with_service_name("capsight")
                .build();
            Ok::<_, String>(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(resource)
                    .build(),
            )
        })
        .transpose()?;
    let otel = traces
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("capsight")));
    tracing_subscriber::registry()
        .with(filter)
        .with(logs)
        .with(otel)
        .init();
    Ok(Telemetry { traces })
}

impl Telemetry {
    /// Sends the spans still pending and stops the exporter. Blocking: call it outside
    /// the runtime's worker threads (e.g. in `spawn_blocking`) while the runtime runs.
    pub fn shutdown(self) {
        if let Some(traces) = self.traces
            && let Err(e) = traces.shutdown()
        {
            eprintln!("capsight: traces not all exported: {e}");
        }
    }
}
