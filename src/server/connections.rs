//! Accepting connections without letting them exhaust the server.
//!
//! - A connection limit, by default derived from the open-file limit so that accepted
//!   sockets can never take the descriptors the store needs: past it, a new connection
//!   is accepted and closed at once (the client sees a reset, not a hang).
//! - An accept error (EMFILE, ENFILE, ENOBUFS…) backs off instead of spinning, and is
//!   logged once per back-off, never per attempt. It never touches the write path.
//! - Idle connections — no call in flight for the idle timeout, counted from the end of
//!   the last call or from accept — are closed. Calls in flight (streams included) are
//!   tracked by `ActivityLayer` through the connection's `ConnectInfo`.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::{Instant, Sleep};
use tokio_stream::wrappers::ReceiverStream;
use tonic::body::Body;
use tonic::transport::server::TlsConnectInfo;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// Descriptors kept for the store, logs and the process itself.
const RESERVED_FILES: u64 = 128;

/// The connection limit when none is configured and the open-file limit allows it.
const DEFAULT_MAX_CONNECTIONS: usize = 4_096;

/// First pause after an accept error; doubled on each further one.
const FIRST_BACKOFF: Duration = Duration::from_millis(5);

/// Longest pause after an accept error.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// How connections are bounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Most open connections; `None`: from the open-file limit.
    pub max_connections: Option<usize>,
    /// A connection with no call in flight for this long is closed.
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: None,
            idle_timeout: Duration::from_secs(300),
        }
    }
}

impl ConnectionLimits {
    /// The connection limit in force: the configured one, never more than the open-file
    /// limit minus the descriptors the server keeps for itself.
    pub fn effective_max(&self) -> usize {
        let files = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft);
        let by_files =
            usize::try_from(files.saturating_sub(RESERVED_FILES).max(16)).unwrap_or(usize::MAX);
        self.max_connections
            .unwrap_or(DEFAULT_MAX_CONNECTIONS)
            .min(by_files)
    }
}

/// Raises the soft open-file limit to the hard limit (a common default soft limit is
/// 1,024 while the hard one is far higher); returns the soft limit in force.
pub fn raise_open_file_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read or raise the open-file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
        }
    }
}

/// Calls in flight on one connection and when the last one ended.
#[derive(Debug)]
pub struct Activity {
    in_flight: AtomicUsize,
    /// Milliseconds from `opened` to the end of the last call (or 0).
    last_ms: AtomicU64,
    opened: Instant,
}

impl Activity {
    fn new() -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
            opened: Instant::now(),
        }
    }

    /// Marks a call in flight until the returned guard is dropped.
    fn begin(self: &Arc<Self>) -> CallGuard {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        CallGuard(Arc::clone(self))
    }

    /// When the connection becomes idle-expired, if no call is in flight.
    fn idle_deadline(&self, idle: Duration) -> Option<Instant> {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let last = Duration::from_millis(self.last_ms.load(Ordering::SeqCst));
        Some(self.opened + last + idle)
    }
}

/// A call in flight; its end is the connection's latest activity.
struct CallGuard(Arc<Activity>);

impl Drop for CallGuard {
    fn drop(&mut self) {
        let since = self.0.opened.elapsed().as_millis();
        self.0
            .last_ms
            .store(u64::try_from(since).unwrap_or(u64::MAX), Ordering::SeqCst);
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What each request learns about its connection (a request extension).
#[derive(Clone, Debug)]
pub struct ConnInfo {
    /// Addresses, as tonic's plain TCP connections give them.
    pub tcp: TcpConnectInfo,
    activity: Arc<Activity>,
}

/// An accepted connection: the socket, its place under the limit, and its idle timer.
pub struct Conn {
    io: TcpStream,
    info: ConnInfo,
    idle_timeout: Duration,
    idle: Pin<Box<Sleep>>,
    _place: OwnedSemaphorePermit,
}

impl Conn {
    /// Whether the connection has been idle too long; otherwise arms the timer so that
    /// the connection's task is woken to check again.
    fn idle_expired(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            let now = Instant::now();
            let deadline = match self.info.activity.idle_deadline(self.idle_timeout) {
                Some(deadline) if deadline <= now => return true,
                Some(deadline) => deadline,
                // A call is in flight: look again one timeout from now.
                None => now + self.idle_timeout,
            };
            if self.idle.deadline() != deadline {
                self.idle.as_mut().reset(deadline);
            }
            if self.idle.as_mut().poll(cx).is_pending() {
                return false;
            }
        }
    }
}

impl Connected for Conn {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.idle_expired(cx) {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "idle connection closed",
            )));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// Accepts connections from `listener` under `limits`, on a task of its own; the stream
/// never yields an error (tonic would retry at once, spinning on EMFILE).
pub fn incoming(
    listener: TcpListener,
    limits: ConnectionLimits,
) -> ReceiverStream<Result<Conn, io::Error>> {
    let max = limits.effective_max();
    tracing::info!(
        max_connections = max,
        idle_timeout_secs = limits.idle_timeout.as_secs(),
        "connection limits"
    );
    let places = Arc::new(Semaphore::new(max));
    let (sender, receiver) = mpsc::channel(1);
    tokio::spawn(accept_loop(listener, limits, places, sender));
    ReceiverStream::new(receiver)
}

async fn accept_loop(
    listener: TcpListener,
    limits: ConnectionLimits,
    places: Arc<Semaphore>,
    sender: mpsc::Sender<Result<Conn, io::Error>>,
) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let (io, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    if is_per_connection(&e) {
                        continue;
                    }
                    // Once per streak of failures, not once per attempt.
                    if backoff == FIRST_BACKOFF {
                        tracing::warn!(error = %e, "cannot accept connections; backing off");
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            },
            () = sender.closed() => return,
        };
        backoff = FIRST_BACKOFF;
        let Ok(place) = Arc::clone(&places).try_acquire_owned() else {
            tracing::debug!("connection limit reached; connection refused");
            drop(io);
            continue;
        };
        let _ = io.set_nodelay(true);
        let info = ConnInfo {
            tcp: TcpConnectInfo {
                local_addr: io.local_addr().ok(),
                remote_addr: Some(remote),
            },
            activity: Arc::new(Activity::new()),
        };
        let conn = Conn {
            io,
            info,
            idle_timeout: limits.idle_timeout,
            idle: Box::pin(tokio::time::sleep(limits.idle_timeout)),
            _place: place,
        };
        if sender.send(Ok(conn)).await.is_err() {
            return;
        }
    }
}

/// Errors that concern one connection attempt (the next accept may succeed at once).
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Tracks the calls in flight on each connection, streams until their body ends, and
/// hands each request its peer's addresses (`TcpConnectInfo`).
#[derive(Clone, Copy, Debug, Default)]
pub struct ActivityLayer;

impl<S> tower_layer::Layer<S> for ActivityLayer {
    type Service = Tracked<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Tracked { inner }
    }
}

/// A service whose calls count as activity of their connection.
#[derive(Clone, Debug)]
pub struct Tracked<S> {
    inner: S,
}

impl<S, B> tower_service::Service<http::Request<B>> for Tracked<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let extensions = request.extensions();
        let info = extensions.get::<ConnInfo>().or_else(|| {
            extensions
                .get::<TlsConnectInfo<ConnInfo>>()
                .map(|t| t.get_ref())
        });
        let activity = info.map(|info| Arc::clone(&info.activity));
        // The peer's addresses, where tonic's `Request::remote_addr` and the audit of
        // unauthenticated calls look for them.
        if let Some(tcp) = info.map(|info| info.tcp.clone()) {
            request.extensions_mut().insert(tcp);
        }
        let guard = activity.map(|a| a.begin());
        let call = self.inner.call(request);
        Box::pin(async move {
            let response = call.await?;
            Ok(match guard {
                Some(guard) => response.map(|body| {
                    Body::new(GuardedBody {
                        body,
                        _guard: guard,
                    })
                }),
                None => response,
            })
        })
    }
}

/// A response body that keeps its call in flight until it is finished or dropped.
struct GuardedBody {
    body: Body,
    _guard: CallGuard,
}

impl HttpBody for GuardedBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
