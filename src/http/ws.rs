//! `/ws`: the widget's WebSocket (protocol in `docs/protocol.md`). One socket carries at most one
//! call at a time; the socket's reader forwards the widget's messages to the call task, the call
//! task's state and errors come back through a channel. Bad messages get an `error` and change
//! nothing. A socket that closes, or goes silent (the gateway pings it), does not hang its call
//! up: the call waits `widget.resume_grace_secs` for a new socket to `resume` it.

use super::ws_transport::{self, FrameGuard, Oversize};
use super::HttpState;
use crate::call::customer::CustomerInput;
use crate::call::events::CallEvent;
use crate::call::start::{start_browser_call, BrowserCall};
use crate::call::CallId;
use crate::call::CallManager;
use crate::callback::service::NewCallback;
use crate::config::{Config, SiteConfig, UnsignedPolicy};
use crate::widget::ice;
use crate::widget::protocol::{self, ClientMessage, ServerMessage, MAX_MESSAGE_BYTES};
use crate::widget::signing;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::StatusCode;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tracing::{debug, info, warn};

/// `/ws?site=KEY`
#[derive(Debug, Deserialize)]
pub struct WsQuery {
    site: Option<String>,
}

/// Who is on the other end of a widget socket.
struct Peer {
    /// The visitor's address (rate limits).
    ip: Option<IpAddr>,
    /// The site the widget is embedded in (its key, secret and policy).
    site: Option<SiteConfig>,
}

/// Which site may open this socket: with `[[sites]]` configured, the `site` key must be known and
/// the page's `Origin` one of its origins; without a key, only the gateway's own pages (the demo)
/// may. With no sites configured, any page may (a development set-up).
fn admit(
    cfg: &Config,
    site: Option<&str>,
    headers: &HeaderMap,
) -> Result<Option<SiteConfig>, String> {
    if cfg.sites.is_empty() {
        return Ok(None);
    }
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(|o| o.trim_end_matches('/'));
    let Some(key) = site else {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        let own = matches!((origin, host), (Some(o), Some(h))
            if o.split_once("://").is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(h)));
        return if own {
            Ok(None)
        } else {
            Err("a site key is required (data-site on the widget's script tag)".into())
        };
    };
    let site = cfg
        .sites
        .iter()
        .find(|s| s.key == key)
        .ok_or_else(|| format!("unknown site key {key:?}"))?;
    match origin {
        Some(o)
            if site
                .origins
                .iter()
                .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(o)) =>
        {
            Ok(Some(site.clone()))
        }
        Some(o) => Err(format!("origin {o:?} is not allowed for site {key:?}")),
        None => Err(format!(
            "no Origin header; site {key:?} needs one of its origins"
        )),
    }
}

/// The widget's socket: the guarded byte stream under tungstenite.
type WebSocket = tokio_tungstenite::WebSocketStream<
    FrameGuard<hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>>,
>;

/// Upgrades to the widget protocol.
pub async fn upgrade(
    State(state): State<HttpState>,
    Query(q): Query<WsQuery>,
    headers: HeaderMap,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    mut req: Request,
) -> Response {
    let ip = super::client_ip::client_ip(
        peer.map(|Extension(ConnectInfo(a))| a.ip()),
        &headers,
        &state.cfg.http.trusted_proxies,
    );
    let Some(mgr) = state.calls.clone() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "calls are not enabled\n").into_response();
    };
    let site = match admit(&state.cfg, q.site.as_deref(), &headers) {
        Ok(s) => s,
        Err(reason) => {
            crate::metrics::rejected("origin");
            warn!(site = ?q.site, ?ip, %reason, "widget socket refused");
            return (StatusCode::FORBIDDEN, format!("{reason}\n")).into_response();
        }
    };
    if let (Some(ip), true) = (ip, state.cfg.limits.ws_per_ip_per_sec > 0) {
        let mut rate = state.ws_rate.lock().unwrap_or_else(|p| p.into_inner());
        if !rate.allow(std::time::Instant::now(), ip) {
            crate::metrics::rejected("ws_rate");
            debug!(%ip, "widget socket refused: too many new sockets from this address");
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "1")],
                "too many new sockets from your address; try again shortly\n",
            )
                .into_response();
        }
    }
    let max = state.cfg.limits.max_ws_sessions;
    let Some(session_guard) =
        crate::metrics::WsSession::open(if max == 0 { usize::MAX } else { max })
    else {
        crate::metrics::rejected("ws_sessions");
        warn!(?ip, max, "widget socket refused: too many sessions");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [("retry-after", "5")],
            "too many sessions; try again shortly\n",
        )
            .into_response();
    };
    let peer = Peer { ip, site };
    let response = match ws_transport::accept(&headers) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let Some(on_upgrade) = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>() else {
        return (
            StatusCode::BAD_REQUEST,
            "this connection cannot be upgraded\n",
        )
            .into_response();
    };
    tokio::spawn(async move {
        let _counted = session_guard;
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => return debug!(error = %e, "widget socket upgrade failed"),
        };
        let oversize = Arc::new(Oversize::default());
        let guarded = FrameGuard::new(
            hyper_util::rt::TokioIo::new(upgraded),
            MAX_MESSAGE_BYTES,
            oversize.clone(),
        );
        // Fragmented messages may add up to twice the limit (then `too_large`); small buffers,
        // since widget messages are small and there may be many sockets.
        let config = WebSocketConfig::default()
            .read_buffer_size(8 * 1024)
            .write_buffer_size(0)
            .max_write_buffer_size(256 * 1024)
            .max_message_size(Some(2 * MAX_MESSAGE_BYTES))
            .max_frame_size(Some(2 * MAX_MESSAGE_BYTES));
        let socket = tokio_tungstenite::WebSocketStream::from_raw_socket(
            guarded,
            Role::Server,
            Some(config),
        )
        .await;
        session(socket, mgr, peer, oversize).await
    });
    response
}

/// Checks the context's signature for `peer`'s site; refuses it when the site says so.
fn verify_context(peer: &Peer, context: &mut Map<String, Value>) -> Result<bool, ServerMessage> {
    let secret = peer.site.as_ref().and_then(|s| s.secret.as_deref());
    let v = signing::verify(context, secret, ice_now());
    if !v.is_verified() {
        if let Some(site) = peer
            .site
            .as_ref()
            .filter(|s| s.unsigned == UnsignedPolicy::Refuse)
        {
            info!(site = %site.key, result = v.as_str(), "unverified context refused");
            return Err(error(
                "context_unverified",
                format!("this site accepts only signed context ({})", v.as_str()),
            ));
        }
    }
    Ok(v.is_verified())
}

/// A widget that does not take what it is sent within this long is gone (or hostile): its socket
/// is dropped rather than buffered for.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

async fn send(socket: &mut WebSocket, msg: &ServerMessage) -> bool {
    if let ServerMessage::Error { code, .. } = msg {
        crate::metrics::rejected(code);
    }
    send_frame(socket, Message::Text(msg.to_text().into())).await
}

async fn send_frame(socket: &mut WebSocket, frame: Message) -> bool {
    match tokio::time::timeout(SEND_TIMEOUT, socket.send(frame)).await {
        Ok(r) => r.is_ok(),
        Err(_) => {
            info!("widget socket does not read; dropped");
            false
        }
    }
}

/// After an oversized frame: close with 1009 and wait (a little) for the widget's close, reading
/// and ignoring whatever comes before it, so nothing the widget was sent is lost to a reset.
async fn close_too_big(socket: &mut WebSocket) {
    let close = CloseFrame {
        code: CloseCode::Size,
        reason: format!("message over {MAX_MESSAGE_BYTES} bytes").into(),
    };
    if !send_frame(socket, Message::Close(Some(close))).await {
        return;
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(m)) = socket.next().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

pub(super) fn error(code: &str, message: impl Into<String>) -> ServerMessage {
    ServerMessage::Error {
        code: code.into(),
        message: message.into(),
    }
}

/// The first message of every session: ICE servers (with TURN credentials of its own) and what
/// the gateway offers.
fn ice_now() -> u64 {
    crate::callback::service::unix_now()
}

fn hello(mgr: &CallManager) -> ServerMessage {
    let now = ice_now();
    let label = format!("web-{:08x}", rand::random::<u32>());
    ServerMessage::Hello {
        v: protocol::VERSION,
        ice_servers: ice::ice_servers(&mgr.cfg.ice, &label, now),
        callback: mgr.callbacks.get().is_some(),
    }
}

/// How often the gateway pings a widget's socket (browsers answer pings by themselves).
const PING_EVERY: Duration = Duration::from_secs(5);
/// A socket that has sent nothing (not even a pong; the widget pings every 3 s) for this long is dead: its TCP path went
/// silent (a network change, a NAT that forgot it). Its call waits for a resume.
const SILENT_LIMIT: Duration = Duration::from_secs(10);

/// Each socket's number: a call knows which socket holds it.
static SESSIONS: AtomicU64 = AtomicU64::new(1);

/// The call a socket holds.
struct SocketCall {
    id: CallId,
    input: mpsc::UnboundedSender<CustomerInput>,
}

/// One widget socket's side of the protocol.
struct Session {
    mgr: Arc<CallManager>,
    peer: Peer,
    number: u64,
    call: Option<SocketCall>,
    out: mpsc::UnboundedSender<ServerMessage>,
}

async fn session(
    mut socket: WebSocket,
    mgr: Arc<CallManager>,
    peer: Peer,
    oversize: Arc<Oversize>,
) {
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<ServerMessage>();
    if !send(&mut socket, &hello(&mgr)).await {
        return;
    }
    let mut s = Session {
        mgr,
        peer,
        number: SESSIONS.fetch_add(1, Ordering::Relaxed),
        call: None,
        out: out_tx,
    };
    let mut heard = Instant::now();
    let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    loop {
        tokio::select! {
            () = oversize.raised() => {
                info!(session = s.number, "widget sent a message over the limit; closing (1009)");
                close_too_big(&mut socket).await;
                break;
            }
            msg = socket.next() => {
                heard = Instant::now();
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Binary(_))) => {
                        if !send(&mut socket, &error("malformed", "binary frames are not part of the protocol")).await { break; }
                        continue;
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Err(e)) => { debug!(error = %e, "WebSocket read failed"); break; }
                };
                let reply = s.handle_text(&text).await;
                if let Some(r) = reply {
                    if !send(&mut socket, &r).await { break; }
                }
            }
            Some(out) = out_rx.recv() => {
                if matches!(&out, ServerMessage::State { state, .. } if state == "ended") {
                    s.call = None;
                }
                if !send(&mut socket, &out).await { break; }
            }
            _ = ping.tick() => {
                if heard.elapsed() > SILENT_LIMIT {
                    info!(session = s.number, "widget socket silent; treated as lost");
                    break;
                }
                if !send_frame(&mut socket, Message::Ping(Vec::new().into())).await { break; }
            }
        }
    }
    if let Some(c) = s.call {
        // Not a hang-up: the visitor may be back in a moment (the call waits its grace).
        let _ = c.input.send(CustomerInput::Detach { session: s.number });
        info!(call = c.id, session = s.number, "widget socket closed");
    }
}

/// A follower of a call's events that sends the widget its messages (states) on `out`.
fn widget_events(out: &mpsc::UnboundedSender<ServerMessage>) -> mpsc::UnboundedSender<CallEvent> {
    let (tx, mut rx) = mpsc::unbounded_channel::<CallEvent>();
    let out = out.clone();
    tokio::spawn(async move {
        while let Some(e) = rx.recv().await {
            if let Some(m) = e.to_widget() {
                if out.send(m).is_err() {
                    break;
                }
            }
        }
    });
    tx
}

impl Session {
    fn site(&self) -> Option<&str> {
        self.peer.site.as_ref().map(|s| s.key.as_str())
    }

    /// A fresh resume token for call `id`.
    fn token(&self, id: CallId) -> String {
        self.mgr.resume.issue(id, self.site(), ice_now())
    }

    /// The `answer` to a `call` or a `reoffer`.
    fn answer(&self, id: CallId, sdp: String) -> ServerMessage {
        ServerMessage::Answer {
            v: protocol::VERSION,
            sdp,
            call_id: id,
            resume: self.token(id),
            resume_grace_secs: self.mgr.cfg.widget.resume_grace_secs,
        }
    }

    /// Handles one text message; returns a direct reply, if any.
    async fn handle_text(&mut self, text: &str) -> Option<ServerMessage> {
        let msg = match protocol::parse(text) {
            Ok(m) => m,
            Err(e) => return Some(e.to_message()),
        };
        match msg {
            ClientMessage::Call {
                sdp,
                mut context,
                queue,
                skill,
                lang,
                ..
            } => {
                if self.call.is_some() {
                    return Some(in_progress());
                }
                let verified = match verify_context(&self.peer, &mut context) {
                    Ok(v) => v,
                    Err(e) => return Some(e),
                };
                let req = BrowserCall {
                    offer: sdp,
                    context,
                    queue,
                    skill,
                    verified,
                    lang,
                    session: self.number,
                };
                Some(self.start_call(req).await)
            }
            ClientMessage::Callback {
                number,
                mut context,
                queue,
                ..
            } => self.callback(number, &mut context, queue).await,
            ClientMessage::Resume { token, .. } => Some(self.resume(&token).await),
            ClientMessage::Ping {} => Some(ServerMessage::Pong {
                resume: self.call.as_ref().map(|c| self.token(c.id)),
            }),
            ClientMessage::Reoffer { sdp } => Some(self.reoffer(sdp).await),
            ClientMessage::Hangup {} => match self.call.take() {
                Some(c) => {
                    let _ = c.input.send(CustomerInput::Hangup);
                    None
                }
                None => Some(no_call()),
            },
            other => self.pass_to_call(other),
        }
    }

    async fn start_call(&mut self, req: BrowserCall) -> ServerMessage {
        match start_browser_call(&self.mgr, req, widget_events(&self.out)).await {
            Ok(started) => {
                let answer = self.answer(started.id, started.answer);
                self.call = Some(SocketCall {
                    id: started.id,
                    input: started.input,
                });
                answer
            }
            Err(e) => {
                info!(error = %e, "call refused");
                error(e.code(), e.to_string())
            }
        }
    }

    async fn callback(
        &self,
        number: String,
        context: &mut Map<String, Value>,
        queue: Option<String>,
    ) -> Option<ServerMessage> {
        let Some(callbacks) = self.mgr.callbacks.get() else {
            return Some(error(
                "callback_unavailable",
                "call-back is not available here",
            ));
        };
        let verified = match verify_context(&self.peer, context) {
            Ok(v) => v,
            Err(e) => return Some(e),
        };
        let req = NewCallback {
            number,
            context: std::mem::take(context),
            verified,
            queue,
            site: self.site().map(str::to_string),
            ip: self.peer.ip,
            not_before: None,
        };
        // Accepted: the service sends the `callback` message (and every later one) itself.
        match callbacks.request(req, Some(self.out.clone())).await {
            Ok(_) => None,
            Err(e) => Some(error(e.code(), e.to_string())),
        }
    }

    /// Takes a running call onto this socket: the token must be genuine, this site's, fresh, and
    /// name a call that is still running. Nothing is touched otherwise.
    async fn resume(&mut self, token: &str) -> ServerMessage {
        if self.call.is_some() {
            return in_progress();
        }
        let id = match self.mgr.resume.check(token, self.site(), ice_now()) {
            Ok(id) => id,
            Err(e) => {
                info!(session = self.number, reason = e.code(), "resume refused");
                return error(e.code(), e.to_string());
            }
        };
        let ended = || error("call_ended", format!("call {id} has ended"));
        if let Some(moved) = super::elsewhere::resume_at(&self.mgr, id).await {
            return moved;
        }
        let Some(input) = self.mgr.directory.customer_input(id) else {
            return ended();
        };
        let attach = CustomerInput::Attach {
            session: self.number,
            events: widget_events(&self.out),
        };
        if input.send(attach).is_err() {
            return ended();
        }
        self.call = Some(SocketCall { id, input });
        ServerMessage::Resumed {
            call_id: id,
            resume: self.token(id),
        }
    }

    /// A new offer on the socket's call (ICE restart): its answer.
    async fn reoffer(&mut self, sdp: String) -> ServerMessage {
        let Some(c) = &self.call else {
            return no_call();
        };
        let id = c.id;
        let (reply, rx) = oneshot::channel();
        if c.input.send(CustomerInput::Reoffer { sdp, reply }).is_err() {
            return no_call();
        }
        match rx.await {
            Ok(Ok(answer)) => self.answer(id, answer),
            Ok(Err(reason)) => error("bad_offer", reason),
            Err(_) => no_call(),
        }
    }

    /// Candidates, digits and stats for the socket's call.
    fn pass_to_call(&self, msg: ClientMessage) -> Option<ServerMessage> {
        let Some(c) = &self.call else {
            return Some(no_call());
        };
        let input = match msg {
            ClientMessage::Ice {
                candidate: Some(cand),
            } => CustomerInput::Candidate(cand),
            ClientMessage::Dtmf { digits } => CustomerInput::Digits(digits),
            ClientMessage::Stats(stats) => CustomerInput::Stats(stats),
            _ => return None,
        };
        let _ = c.input.send(input);
        None
    }
}

fn no_call() -> ServerMessage {
    error("no_call", "no call on this socket")
}

fn in_progress() -> ServerMessage {
    error(
        "call_in_progress",
        "this socket already has a call; hang up first",
    )
}
