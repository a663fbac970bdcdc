//! The Connect protocol's unary calls beside gRPC on the same port, so that `curl` and
//! plain HTTP clients can call every unary rpc with JSON (or binary protobuf):
//!
//! ```text
//! curl -H 'content-type: application/json' -H "authorization: Bearer $TOKEN" \
//!      -d '{"personId": "p-000001"}' http://127.0.0.1:50051/capsight.v1.DirectoryService/GetPerson
//! ```
//!
//! A `POST` to an rpc path with `content-type: application/json` or `application/proto`
//! is transcoded (JSON through the services' descriptors, `prost-reflect`), framed as a
//! gRPC call and passed to the same stack as every gRPC call (metrics, logs, auth,
//! admission, audit); the gRPC answer comes back as the message (HTTP 200) or as a
//! Connect error: HTTP status by code (UNAUTHENTICATED → 401, INVALID_ARGUMENT → 400…)
//! and a JSON body with `code`, `message` and `details` (`google.rpc.BadRequest` and the
//! others, each with its bytes and a `debug` JSON rendering).
//!
//! The `connectrpc` crate implements Connect with its own generated message types, not
//! prost's, so it cannot serve the tonic services capsight is built on: this layer
//! translates instead. Streaming rpcs stay gRPC (and gRPC-Web) only.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor};
use tonic::body::Body;

/// How the Connect body is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Codec {
    Json,
    Proto,
}

/// Answers Connect unary calls; passes everything else on.
#[derive(Clone)]
pub struct ConnectLayer {
    pool: Arc<DescriptorPool>,
    max_bytes: usize,
}

impl ConnectLayer {
    /// For the services of `pool`, with request bodies up to `max_bytes`.
    pub fn new(pool: DescriptorPool, max_bytes: usize) -> Self {
        Self {
            pool: Arc::new(pool),
            max_bytes,
        }
    }
}

/// The descriptors of capsight's services and of the google.rpc error details.
pub fn descriptor_pool() -> Result<DescriptorPool, prost_reflect::DescriptorError> {
    let mut pool = DescriptorPool::decode(crate::api::pb::FILE_DESCRIPTOR_SET)?;
    pool.decode_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)?;
    Ok(pool)
}

impl<S> tower_layer::Layer<S> for ConnectLayer {
    type Service = Connect<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Connect {
            inner,
            layer: self.clone(),
        }
    }
}

/// A service behind `ConnectLayer`.
#[derive(Clone)]
pub struct Connect<S> {
    inner: S,
    layer: ConnectLayer,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, ResBody> tower_service::Service<Request<Body>> for Connect<S>
where
    S: tower_service::Service<Request<Body>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<tonic::codegen::StdError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let Some((codec, method)) = self.connect_call(&request) else {
            let future = self.inner.call(request);
            return Box::pin(async move { Ok(future.await?.map(Body::new)) });
        };
        // The clone that was made ready serves this call.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let max_bytes = self.layer.max_bytes;
        Box::pin(unary(inner, request, codec, method, max_bytes))
    }
}

impl<S> Connect<S> {
    /// The codec and method of a Connect unary call, or `None` for anything else.
    fn connect_call(&self, request: &Request<Body>) -> Option<(Codec, MethodDescriptor)> {
        if request.method() != Method::POST {
            return None;
        }
        let content_type = request.headers().get(header::CONTENT_TYPE)?.to_str().ok()?;
        let codec = match content_type.split(';').next()?.trim() {
            "application/json" => Codec::Json,
            "application/proto" => Codec::Proto,
            _ => return None,
        };
        let (service, method) = request.uri().path().strip_prefix('/')?.split_once('/')?;
        let method = self
            .layer
            .pool
            .get_service_by_name(service)?
            .methods()
            .find(|m| m.name() == method)?;
        Some((codec, method))
    }
}

async fn unary<S, ResBody>(
    mut inner: S,
    request: Request<Body>,
    codec: Codec,
    method: MethodDescriptor,
    max_bytes: usize,
) -> Result<Response<Body>, S::Error>
where
    S: tower_service::Service<Request<Body>, Response = Response<ResBody>>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<tonic::codegen::StdError>,
{
    if method.is_client_streaming() || method.is_server_streaming() {
        return Ok(error(
            tonic::Code::Unimplemented,
            "streaming rpcs are served over gRPC and gRPC-Web only",
            None,
        ));
    }
    let (mut parts, body) = request.into_parts();
    let bytes = match Limited::new(body, max_bytes).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            let message = format!("cannot read the request body: {e}");
            return Ok(error(tonic::Code::ResourceExhausted, &message, None));
        }
    };
    let message = match codec {
        Codec::Proto => bytes,
        Codec::Json => {
            let mut json = serde_json::Deserializer::from_slice(&bytes);
            match DynamicMessage::deserialize(method.input(), &mut json)
                .and_then(|m| json.end().map(|()| m))
            {
                Ok(message) => Bytes::from(message.encode_to_vec()),
                Err(e) => {
                    let message = format!(
                        "the request is not a valid {}: {e}",
                        method.input().full_name()
                    );
                    return Ok(error(tonic::Code::InvalidArgument, &message, None));
                }
            }
        }
    };
    let mut framed = BytesMut::with_capacity(5 + message.len());
    framed.put_u8(0);
    framed.put_u32(u32::try_from(message.len()).unwrap_or(u32::MAX));
    framed.put_slice(&message);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    // The services behind take gRPC as HTTP/2 only (gRPC-Web's layer refuses gRPC over
    // HTTP/1.1); the call is in-process from here, whatever the caller's connection.
    parts.version = http::Version::HTTP_2;
    parts
        .headers
        .insert(header::TE, HeaderValue::from_static("trailers"));
    // Connect's deadline, in milliseconds, as gRPC's.
    if let Some(ms) = parts
        .headers
        .remove("connect-timeout-ms")
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        && let Ok(value) = HeaderValue::from_str(&format!("{}m", ms.min(99_999_999)))
    {
        parts.headers.insert("grpc-timeout", value);
    }
    let request = Request::from_parts(parts, Body::new(Full::new(framed.freeze())));
    let response = inner.call(request).await?;
    let (parts, body) = response.into_parts();
    let (data, trailers) = match body.collect().await {
        Ok(collected) => {
            let trailers = collected.trailers().cloned().unwrap_or_default();
            (collected.to_bytes(), trailers)
        }
        Err(e) => {
            let e: tonic::codegen::StdError = e.into();
            let message = format!("the answer failed: {e}");
            return Ok(error(tonic::Code::Internal, &message, None));
        }
    };
    let status_of = |name: &str| parts.headers.get(name).or_else(|| trailers.get(name));
    let code = status_of("grpc-status")
        .and_then(|v| v.to_str().ok()?.parse::<i32>().ok())
        .map_or(tonic::Code::Unknown, tonic::Code::from);
    let mut response = if code == tonic::Code::Ok {
        match success(codec, &method, &data) {
            Ok(response) => response,
            Err(message) => error(tonic::Code::Internal, &message, None),
        }
    } else {
        let message = status_of("grpc-message")
            .map(|v| {
                percent_encoding::percent_decode(v.as_bytes())
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .unwrap_or_default();
        let details = status_of("grpc-status-details-bin").and_then(|v| {
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(v.as_bytes().strip_suffix(b"==").unwrap_or(v.as_bytes()))
                .or_else(|_| base64::engine::general_purpose::STANDARD.decode(v.as_bytes()))
                .ok()
        });
        error(
            code,
            &message,
            details.as_deref().map(|d| (d, method.parent_pool())),
        )
    };
    // Headers the stack added (CORS, rate-limit hints), never gRPC's own.
    for (name, value) in &parts.headers {
        let name_str = name.as_str();
        if !name_str.starts_with("grpc-")
            && name != header::CONTENT_TYPE
            && name != header::CONTENT_LENGTH
        {
            response.headers_mut().append(name.clone(), value.clone());
        }
    }
    Ok(response)
}

/// The message of a successful gRPC answer, in the caller's codec.
fn success(codec: Codec, method: &MethodDescriptor, data: &[u8]) -> Result<Response<Body>, String> {
    let message = data
        .get(5..)
        .filter(|_| data.first() == Some(&0))
        .ok_or("the answer is not one uncompressed gRPC message")?;
    let (content_type, body) = match codec {
        Codec::Proto => ("application/proto", Bytes::copy_from_slice(message)),
        Codec::Json => {
            let message = DynamicMessage::decode(method.output(), message)
                .map_err(|e| format!("cannot decode the answer: {e}"))?;
            let json = serde_json::to_vec(&message).map_err(|e| e.to_string())?;
            ("application/json", Bytes::from(json))
        }
    };
    let mut response = Response::new(Body::new(Full::new(body)));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(response)
}

/// Connect's name and HTTP status for a gRPC code.
fn connect_code(code: tonic::Code) -> (&'static str, StatusCode) {
    use tonic::Code as C;
    let status = |n: u16| StatusCode::from_u16(n).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match code {
        C::Ok => ("ok", StatusCode::OK),
        C::Cancelled => ("canceled", status(499)),
        C::Unknown => ("unknown", StatusCode::INTERNAL_SERVER_ERROR),
        C::InvalidArgument => ("invalid_argument", StatusCode::BAD_REQUEST),
        C::DeadlineExceeded => ("deadline_exceeded", StatusCode::GATEWAY_TIMEOUT),
        C::NotFound => ("not_found", StatusCode::NOT_FOUND),
        C::AlreadyExists => ("already_exists", StatusCode::CONFLICT),
        C::PermissionDenied => ("permission_denied", StatusCode::FORBIDDEN),
        C::ResourceExhausted => ("resource_exhausted", StatusCode::TOO_MANY_REQUESTS),
        C::FailedPrecondition => ("failed_precondition", StatusCode::BAD_REQUEST),
        C::Aborted => ("aborted", StatusCode::CONFLICT),
        C::OutOfRange => ("out_of_range", StatusCode::BAD_REQUEST),
        C::Unimplemented => ("unimplemented", StatusCode::NOT_IMPLEMENTED),
        C::Internal => ("internal", StatusCode::INTERNAL_SERVER_ERROR),
        C::Unavailable => ("unavailable", StatusCode::SERVICE_UNAVAILABLE),
        C::DataLoss => ("data_loss", StatusCode::INTERNAL_SERVER_ERROR),
        C::Unauthenticated => ("unauthenticated", StatusCode::UNAUTHORIZED),
    }
}

/// A Connect error: JSON whatever the request's codec, as the protocol says.
fn error(
    code: tonic::Code,
    message: &str,
    details: Option<(&[u8], &DescriptorPool)>,
) -> Response<Body> {
    let (name, status) = connect_code(code);
    let mut body = serde_json::json!({ "code": name, "message": message });
    if let Some((bytes, pool)) = details
        && let Ok(status) = tonic_types::pb::Status::decode(bytes)
    {
        let details: Vec<serde_json::Value> = status
            .details
            .iter()
            .map(|any| {
                let type_name = any.type_url.rsplit('/').next().unwrap_or_default();
                let mut detail = serde_json::json!({
                    "type": type_name,
                    "value": base64::engine::general_purpose::STANDARD_NO_PAD.encode(&any.value),
                });
                if let Some(debug) = pool
                    .get_message_by_name(type_name)
                    .and_then(|d| DynamicMessage::decode(d, any.value.as_slice()).ok())
                    .and_then(|m| serde_json::to_value(&m).ok())
                {
                    detail["debug"] = debug;
                }
                detail
            })
            .collect();
        body["details"] = serde_json::Value::Array(details);
    }
    let mut response = Response::new(Body::new(Full::new(Bytes::from(body.to_string()))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
