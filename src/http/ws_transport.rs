//! The widget socket's transport: the WebSocket handshake (RFC 6455 §4.2) and a guard on the bytes
//! under the WebSocket layer that keeps a frame over the limit away from it.
//!
//! Why a guard: a WebSocket library refuses an oversized frame by failing the stream, and a socket
//! closed with the rest of that frame unread makes the kernel send a TCP reset, which can destroy
//! replies the widget has not read yet. The guard instead reads and discards the oversized frame's
//! payload, and tells the session only once every frame before it has been handed on, so the
//! session answers everything due, then closes with 1009 (Message Too Big) and waits for the
//! widget's close, as RFC 6455 §7.4.1 intends.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The `101 Switching Protocols` answer to a valid upgrade request, or why it is not one.
#[allow(clippy::result_large_err)]
pub fn accept(headers: &HeaderMap) -> Result<Response, Response> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    let bad = |why: &str| (StatusCode::BAD_REQUEST, format!("{why}\n")).into_response();
    if !has_token(header::CONNECTION, "upgrade") || !has_token(header::UPGRADE, "websocket") {
        return Err(bad("a WebSocket upgrade is expected here"));
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return Err((
            StatusCode::UPGRADE_REQUIRED,
            [(header::SEC_WEBSOCKET_VERSION, "13")],
            "WebSocket version 13 only\n",
        )
            .into_response());
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .filter(|k| {
            base64::engine::general_purpose::STANDARD
                .decode(k.as_bytes())
                .is_ok_and(|d| d.len() == 16)
        })
        .ok_or_else(|| bad("Sec-WebSocket-Key must be 16 bytes in base64"))?;
    let mut input = key.as_bytes().to_vec();
    input.extend_from_slice(GUID.as_bytes());
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &input);
    let accept = base64::engine::general_purpose::STANDARD.encode(digest.as_ref());
    let accept = HeaderValue::from_str(&accept).map_err(|_| bad("bad key"))?;
    Ok((
        StatusCode::SWITCHING_PROTOCOLS,
        [
            (header::UPGRADE, HeaderValue::from_static("websocket")),
            (header::CONNECTION, HeaderValue::from_static("Upgrade")),
            (header::SEC_WEBSOCKET_ACCEPT, accept),
        ],
    )
        .into_response())
}

/// Raised by the guard when the next frame is over the limit (all before it were handed on).
#[derive(Debug, Default)]
pub struct Oversize {
    raised: AtomicBool,
    notify: Notify,
}

impl Oversize {
    /// Waits until an oversized frame is next.
    pub async fn raised(&self) {
        while !self.raised.load(Ordering::Acquire) {
            self.notify.notified().await;
        }
    }

    fn raise(&self) {
        self.raised.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }
}

/// Where the frame parser is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At a frame boundary, reading a header.
    Header,
    /// Inside an accepted frame: this many bytes (header included) go on.
    Pass(u64),
    /// Inside an oversized frame: this many payload bytes are dropped.
    Discard(u64),
}

/// Splits the client's byte stream into frames to pass and frames to drop. Sans-IO.
#[derive(Debug)]
pub struct FrameLimit {
    limit: u64,
    state: State,
    /// Set when an oversized frame was found but not yet announced.
    found: bool,
}

/// What [`FrameLimit::next`] decided about the bytes at the front of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Hand on this many bytes.
    Pass(usize),
    /// Drop this many bytes.
    Drop(usize),
    /// An oversized frame starts here: announce it (once), then keep going.
    Oversize,
    /// Need more bytes to decide.
    More,
}

impl FrameLimit {
    /// Frames whose payload is over `limit` bytes are dropped.
    pub fn new(limit: u64) -> FrameLimit {
        FrameLimit {
            limit,
            state: State::Header,
            found: false,
        }
    }

    /// Decides about the front of `buf` (the unconsumed bytes); the caller consumes what a
    /// `Pass` or `Drop` says and asks again.
    pub fn next(&mut self, buf: &[u8]) -> Step {
        if self.found {
            self.found = false;
            return Step::Oversize;
        }
        match self.state {
            State::Pass(n) | State::Discard(n) if buf.is_empty() && n > 0 => Step::More,
            State::Pass(n) if n > 0 => {
                let k = (n.min(buf.len() as u64)) as usize;
                self.state = State::Pass(n - k as u64);
                Step::Pass(k)
            }
            State::Discard(n) if n > 0 => {
                let k = (n.min(buf.len() as u64)) as usize;
                self.state = State::Discard(n - k as u64);
                Step::Drop(k)
            }
            _ => self.header(buf),
        }
    }

    /// `n` bytes of the last `Pass` were not taken after all: they are passed next time.
    pub fn give_back(&mut self, n: u64) {
        if let State::Pass(m) = self.state {
            self.state = State::Pass(m + n);
        }
    }

    fn header(&mut self, buf: &[u8]) -> Step {
        self.state = State::Header;
        let Some(&b1) = buf.get(1) else {
            return Step::More;
        };
        let ext = match b1 & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let mask = if b1 & 0x80 != 0 { 4 } else { 0 };
        let head = 2 + ext + mask;
        if buf.len() < head {
            return Step::More;
        }
        let len = match ext {
            0 => u64::from(b1 & 0x7f),
            _ => buf[2..2 + ext]
                .iter()
                .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)),
        };
        if len > self.limit {
            self.state = State::Discard(len);
            self.found = true;
            return Step::Drop(head);
        }
        self.state = State::Pass(head as u64 + len);
        self.next(buf)
    }
}

/// The client's byte stream with oversized frames taken out (see the module docs).
pub struct FrameGuard<S> {
    inner: S,
    limit: FrameLimit,
    raw: Box<[u8]>,
    start: usize,
    end: usize,
    oversize: Arc<Oversize>,
}

impl<S> FrameGuard<S> {
    /// Guards `inner`; frames over `limit` payload bytes raise `oversize` and are dropped.
    pub fn new(inner: S, limit: usize, oversize: Arc<Oversize>) -> FrameGuard<S> {
        FrameGuard {
            inner,
            limit: FrameLimit::new(limit as u64),
            raw: vec![0u8; 8192].into_boxed_slice(),
            start: 0,
            end: 0,
            oversize,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for FrameGuard<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        loop {
            match this.limit.next(&this.raw[this.start..this.end]) {
                Step::Pass(k) => {
                    let taken = k.min(out.remaining());
                    out.put_slice(&this.raw[this.start..this.start + taken]);
                    this.start += taken;
                    this.limit.give_back((k - taken) as u64);
                    return Poll::Ready(Ok(()));
                }
                Step::Drop(k) => this.start += k,
                Step::Oversize => this.oversize.raise(),
                Step::More => {
                    if this.start > 0 {
                        this.raw.copy_within(this.start..this.end, 0);
                        this.end -= this.start;
                        this.start = 0;
                    }
                    let mut rb = ReadBuf::new(&mut this.raw[this.end..]);
                    match Pin::new(&mut this.inner).poll_read(cx, &mut rb) {
                        Poll::Ready(Ok(())) if rb.filled().is_empty() => {
                            return Poll::Ready(Ok(()));
                        }
                        Poll::Ready(Ok(())) => this.end += rb.filled().len(),
                        other => return other,
                    }
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FrameGuard<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[path = "ws_transport_tests.rs"]
mod tests;
