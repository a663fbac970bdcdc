//! Browsers: the reference dashboard (`dashboard/`: page and styles from `src/`, the
//! script bundled into `dist/` by `npm run build`; all embedded here, so `capsight serve`
//! shows it with no npm step) and CORS for dashboards served from other origins. gRPC-Web itself is tonic-web's layer, installed by `server`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use tonic::body::Body;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::error::{Error, Result};

/// One embedded file of the dashboard.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        path: "/index.html",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("../dashboard/src/index.html"),
    },
    Asset {
        path: "/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../dashboard/dist/app.js"),
    },
    Asset {
        path: "/style.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../dashboard/dist/app.css"),
    },
];

/// The page's own code and styles only; it talks to the server it came from.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// Headers a gRPC-Web client sends (connect-web and grpc-web), for CORS preflights.
const REQUEST_HEADERS: &[&str] = &[
    "authorization",
    "content-type",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
];
/// Response headers a browser client must be able to read.
const EXPOSED_HEADERS: &[&str] = &["grpc-status", "grpc-message", "grpc-status-details-bin"];

/// CORS for gRPC-Web calls from `origins` (`*` allows any origin). Without origins only
/// same-origin pages (the embedded dashboard) can call the server from a browser.
/// Credentials are bearer tokens in a header, never cookies, so no origin gains
/// ambient authority from this.
pub fn cors(origins: &[String]) -> Result<CorsLayer> {
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        let parsed = origins
            .iter()
            .map(|o| {
                let trimmed = o.trim_end_matches('/');
                if !(trimmed.starts_with("http://") || trimmed.starts_with("https://")) {
                    return Err(Error::Config(format!(
                        "--cors-origin {o:?}: expected scheme://host[:port] or *"
                    )));
                }
                HeaderValue::from_str(trimmed)
                    .map_err(|_| Error::Config(format!("--cors-origin {o:?}: not a valid origin")))
            })
            .collect::<Result<Vec<_>>>()?;
        AllowOrigin::list(parsed)
    };
    Ok(CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::POST, Method::OPTIONS])
        .allow_headers(names(REQUEST_HEADERS))
        .expose_headers(names(EXPOSED_HEADERS))
        .max_age(std::time::Duration::from_secs(600)))
}

fn names(headers: &[&'static str]) -> Vec<HeaderName> {
    headers.iter().map(|h| HeaderName::from_static(h)).collect()
}

/// Serves the dashboard to `GET`/`HEAD` requests outside the rpc namespaces and passes
/// everything else (gRPC, gRPC-Web, preflights) on.
#[derive(Clone, Copy, Debug, Default)]
pub struct DashboardLayer;

impl<S> tower_layer::Layer<S> for DashboardLayer {
    type Service = Dashboard<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Dashboard { inner }
    }
}

/// A service behind `DashboardLayer`.
#[derive(Clone, Debug)]
pub struct Dashboard<S> {
    inner: S,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = std::result::Result<T, E>> + Send>>;

impl<S, ReqBody, ResBody> tower_service::Service<Request<ReqBody>> for Dashboard<S>
where
    S: tower_service::Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<tonic::codegen::StdError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let path = request.uri().path();
        let is_page = matches!(*request.method(), Method::GET | Method::HEAD)
            && !path.starts_with("/capsight.")
            && !path.starts_with("/grpc.");
        if is_page {
            let response = page(path, request.method() == Method::HEAD);
            return Box::pin(async move { Ok(response) });
        }
        let future = self.inner.call(request);
        Box::pin(async move { Ok(future.await?.map(Body::new)) })
    }
}

/// The embedded file at `path` (`/` is the index), or 404.
fn page(path: &str, head_only: bool) -> Response<Body> {
    let path = if path == "/" { "/index.html" } else { path };
    let Some(asset) = ASSETS.iter().find(|a| a.path == path) else {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    };
    let body = if head_only {
        Body::empty()
    } else {
        Body::new(Full::new(Bytes::from_static(asset.body)))
    };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(asset.body.len()));
    // Not content-hashed names: always revalidate, so an upgrade shows at once.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::new(Full::new(Bytes::from_static(text.as_bytes()))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
