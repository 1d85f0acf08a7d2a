//! What every listener shares: a connection cap, handshake/header/idle timeouts, and the
//! bookkeeping behind them. A connection is *idle* while no request is in flight on it.
//!
//! At the cap, a new connection evicts the connection idle the longest (so a flood of idle
//! sockets cannot lock out a real client); if every connection is busy, the new one is closed.
//! Idle connections are closed after the idle timeout; a sweeper checks once a second.
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

pub mod rate;

pub use rate::RateLimiter;

/// The client's address, set on each request by `http::serve` (rate limits key on it).
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub SocketAddr);

use futures_util::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// Timeouts and caps of one listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest a TLS handshake may take.
    pub handshake_timeout: Duration,
    /// Longest a client may take to send a request's headers (HTTP/1).
    pub header_timeout: Duration,
    /// A connection with nothing in flight is closed after this.
    pub idle_timeout: Duration,
    /// Most open connections on this listener.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: default_max_connections(),
        }
    }
}

/// Half of the descriptors this process may open (less a reserve for files and the
/// database), since two listeners share them; between 16 and 4096.
fn default_max_connections() -> usize {
    let soft = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).map(str::to_string))
        })
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(1024);
    (soft.saturating_sub(64) / 2).clamp(16, 4096)
}

/// One connection's state, shared by its I/O, its requests and the tracker.
#[derive(Debug)]
pub struct ConnState {
    id: u64,
    /// The tracker's clock origin.
    epoch: Instant,
    inflight: AtomicUsize,
    /// Milliseconds since the tracker started, when the last request finished (or the
    /// connection opened).
    idle_since: AtomicU64,
    killed: AtomicBool,
    kill: Notify,
    read_waker: AtomicWaker,
    write_waker: AtomicWaker,
}

impl ConnState {
    /// Marks a request in flight until the guard is dropped.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.inflight.fetch_add(1, Ordering::SeqCst);
        InFlight(self.clone())
    }

    /// Closes the connection: pending reads see end-of-file, writes fail.
    pub fn close(&self) {
        self.killed.store(true, Ordering::SeqCst);
        self.kill.notify_waiters();
        self.read_waker.wake();
        self.write_waker.wake();
    }

    /// Resolves once the connection is closed by the tracker.
    pub async fn closed(&self) {
        let notified = self.kill.notified();
        if self.killed.load(Ordering::SeqCst) {
            return;
        }
        notified.await;
    }

    fn is_killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }
}

/// A request in flight on a connection.
#[derive(Debug)]
pub struct InFlight(Arc<ConnState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let ms = self.0.epoch.elapsed().as_millis() as u64;
        self.0.idle_since.store(ms, Ordering::SeqCst);
        self.0.inflight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The open connections of one listener.
#[derive(Debug)]
pub struct Tracker {
    limits: Limits,
    epoch: Instant,
    next_id: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<ConnState>>>,
}

impl Tracker {
    /// A tracker, with its idle sweeper running until the tracker is dropped.
    pub fn new(limits: Limits) -> Arc<Self> {
        let tracker = Arc::new(Tracker {
            limits,
            epoch: Instant::now(),
            next_id: AtomicU64::new(1),
            conns: Mutex::new(HashMap::new()),
        });
        tokio::spawn(sweep(Arc::downgrade(&tracker)));
        tracker
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Open connections.
    pub fn len(&self) -> usize {
        self.conns.lock().map(|c| c.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Admits a new connection, evicting the longest-idle one at the cap; None when every
    /// connection is busy.
    fn admit(self: &Arc<Self>) -> Option<Arc<ConnState>> {
        let mut conns = self.conns.lock().ok()?;
        if conns.len() >= self.limits.max_connections {
            let victim = conns
                .values()
                .filter(|c| c.inflight.load(Ordering::SeqCst) == 0)
                .min_by_key(|c| c.idle_since.load(Ordering::SeqCst))
                .cloned()?;
            conns.remove(&victim.id);
            victim.close();
            tracing::debug!(conn = victim.id, "idle connection evicted at the cap");
        }
        let state = Arc::new(ConnState {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            epoch: self.epoch,
            inflight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(self.now_ms()),
            killed: AtomicBool::new(false),
            kill: Notify::new(),
            read_waker: AtomicWaker::new(),
            write_waker: AtomicWaker::new(),
        });
        conns.insert(state.id, state.clone());
        Some(state)
    }

    /// Closes every connection (server shutdown).
    pub fn close_all(&self) {
        let all: Vec<Arc<ConnState>> = match self.conns.lock() {
            Ok(mut c) => c.drain().map(|(_, v)| v).collect(),
            Err(_) => return,
        };
        for c in all {
            c.close();
        }
    }

    fn forget(&self, id: u64) {
        if let Ok(mut c) = self.conns.lock() {
            c.remove(&id);
        }
    }

    /// Wraps an accepted stream; dropping the wrapper forgets the connection.
    pub fn track<IO>(self: &Arc<Self>, io: IO, state: Arc<ConnState>) -> Tracked<IO> {
        Tracked {
            io,
            state,
            tracker: Arc::downgrade(self),
        }
    }
}

/// Closes connections idle past the timeout.
async fn sweep(tracker: Weak<Tracker>) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Some(t) = tracker.upgrade() else { return };
        let idle_ms = t.limits.idle_timeout.as_millis() as u64;
        let now = t.now_ms();
        let expired: Vec<Arc<ConnState>> = match t.conns.lock() {
            Ok(mut conns) => {
                let ids: Vec<u64> = conns
                    .values()
                    .filter(|c| {
                        c.inflight.load(Ordering::SeqCst) == 0
                            && now.saturating_sub(c.idle_since.load(Ordering::SeqCst)) >= idle_ms
                    })
                    .map(|c| c.id)
                    .collect();
                ids.iter().filter_map(|id| conns.remove(id)).collect()
            }
            Err(_) => return,
        };
        for c in expired {
            c.close();
        }
    }
}

/// An accepted stream under a tracker: once closed, reads end and writes fail.
#[derive(Debug)]
pub struct Tracked<IO> {
    io: IO,
    state: Arc<ConnState>,
    tracker: Weak<Tracker>,
}

impl<IO> Tracked<IO> {
    pub fn state(&self) -> &Arc<ConnState> {
        &self.state
    }

    pub fn get_ref(&self) -> &IO {
        &self.io
    }
}

impl<IO> Drop for Tracked<IO> {
    fn drop(&mut self) {
        if let Some(t) = self.tracker.upgrade() {
            t.forget(self.state.id);
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Tracked<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.state.read_waker.register(cx.waker());
        if self.state.is_killed() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

fn closed_error() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "connection closed by the server")
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Tracked<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.state.write_waker.register(cx.waker());
        if self.state.is_killed() {
            return Poll::Ready(Err(closed_error()));
        }
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.state.write_waker.register(cx.waker());
        if self.state.is_killed() {
            return Poll::Ready(Err(closed_error()));
        }
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.state.write_waker.register(cx.waker());
        if self.state.is_killed() {
            return Poll::Ready(Err(closed_error()));
        }
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Accepts connections until `stop` resolves, handing each admitted one (TCP_NODELAY set)
/// to `handle`. Accept errors (out of descriptors, say) pause the loop briefly instead of
/// spinning.
pub async fn accept_loop(
    listener: TcpListener,
    tracker: Arc<Tracker>,
    stop: impl std::future::Future<Output = ()>,
    mut handle: impl FnMut(TcpStream, SocketAddr, Arc<ConnState>),
) {
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            _ = &mut stop => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, peer)) => {
                // Nagle + delayed ACK cost ~10x on small RPCs (ARCHITECTURE.md).
                let _ = stream.set_nodelay(true);
                match tracker.admit() {
                    Some(state) => handle(stream, peer, state),
                    None => tracing::debug!(%peer, "connection refused: every connection is busy"),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed; pausing");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// A response body that keeps its request in flight until it is finished or dropped
/// (an open stream counts as busy).
#[derive(Debug)]
pub struct GuardedBody<B> {
    inner: B,
    _guard: Option<InFlight>,
}

impl<B> GuardedBody<B> {
    pub fn new(inner: B, guard: Option<InFlight>) -> Self {
        GuardedBody {
            inner,
            _guard: guard,
        }
    }
}

impl<B: http_body::Body + Unpin> http_body::Body for GuardedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
