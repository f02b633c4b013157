//! `/ws`: the widget's WebSocket (protocol in `docs/protocol.md`). One socket carries at most one
//! call at a time; the socket's reader forwards the widget's messages to the call task, the call
//! task's state and errors come back through a channel. Bad messages get an `error` and change
//! nothing; closing the socket hangs the call up.

use super::HttpState;
use crate::call::customer::CustomerInput;
use crate::call::events::CallEvent;
use crate::call::start::{start_browser_call, BrowserCall};
use crate::call::CallManager;
use crate::callback::service::NewCallback;
use crate::config::{Config, SiteConfig, UnsignedPolicy};
use crate::widget::ice;
use crate::widget::protocol::{self, ClientMessage, ServerMessage, MAX_MESSAGE_BYTES};
use crate::widget::signing;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::StatusCode;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::sync::mpsc;
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

/// Upgrades to the widget protocol.
pub async fn upgrade(
    ws: WebSocketUpgrade,
    State(state): State<HttpState>,
    Query(q): Query<WsQuery>,
    headers: HeaderMap,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
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
    // Twice the protocol limit, so an oversized message still gets a clear `too_large` error;
    // beyond that the socket is closed by the WebSocket layer itself.
    ws.max_message_size(2 * MAX_MESSAGE_BYTES)
        .max_frame_size(2 * MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| async move {
            let _counted = session_guard;
            session(socket, mgr, peer).await
        })
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

async fn send(socket: &mut WebSocket, msg: &ServerMessage) -> bool {
    if let ServerMessage::Error { code, .. } = msg {
        crate::metrics::rejected(code);
    }
    socket
        .send(Message::Text(msg.to_text().into()))
        .await
        .is_ok()
}

fn error(code: &str, message: impl Into<String>) -> ServerMessage {
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

async fn session(mut socket: WebSocket, mgr: Arc<CallManager>, peer: Peer) {
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<ServerMessage>();
    if !send(&mut socket, &hello(&mgr)).await {
        return;
    }
    let mut call: Option<mpsc::UnboundedSender<CustomerInput>> = None;
    loop {
        tokio::select! {
            msg = socket.recv() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Binary(_))) => {
                        if !send(&mut socket, &error("malformed", "binary frames are not part of the protocol")).await { break; }
                        continue;
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Err(e)) => { debug!(error = %e, "WebSocket read failed"); break; }
                };
                let reply = handle_text(&mgr, &peer, &text, &mut call, &out_tx).await;
                if let Some(r) = reply {
                    if !send(&mut socket, &r).await { break; }
                }
            }
            Some(out) = out_rx.recv() => {
                if matches!(&out, ServerMessage::State { state, .. } if state == "ended") {
                    call = None;
                }
                if !send(&mut socket, &out).await { break; }
            }
        }
    }
    if let Some(c) = call {
        let _ = c.send(CustomerInput::Hangup);
        info!("widget socket closed; its call hangs up");
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

/// Handles one text message; returns a direct reply, if any.
async fn handle_text(
    mgr: &Arc<CallManager>,
    peer: &Peer,
    text: &str,
    call: &mut Option<mpsc::UnboundedSender<CustomerInput>>,
    out: &mpsc::UnboundedSender<ServerMessage>,
) -> Option<ServerMessage> {
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
            ..
        } => {
            if call.is_some() {
                return Some(error(
                    "call_in_progress",
                    "this socket already has a call; hang up first",
                ));
            }
            let verified = match verify_context(peer, &mut context) {
                Ok(v) => v,
                Err(e) => return Some(e),
            };
            let req = BrowserCall {
                offer: sdp,
                context,
                queue,
                skill,
                verified,
            };
            match start_browser_call(mgr, req, widget_events(out)).await {
                Ok(started) => {
                    *call = Some(started.input);
                    Some(ServerMessage::Answer {
                        v: protocol::VERSION,
                        sdp: started.answer,
                    })
                }
                Err(e) => {
                    info!(error = %e, "call refused");
                    Some(error(e.code(), e.to_string()))
                }
            }
        }
        ClientMessage::Callback {
            number,
            mut context,
            queue,
            ..
        } => {
            let Some(callbacks) = mgr.callbacks.get() else {
                return Some(error(
                    "callback_unavailable",
                    "call-back is not available here",
                ));
            };
            let verified = match verify_context(peer, &mut context) {
                Ok(v) => v,
                Err(e) => return Some(e),
            };
            let req = NewCallback {
                number,
                context,
                verified,
                queue,
                site: peer.site.as_ref().map(|s| s.key.clone()),
                ip: peer.ip,
                not_before: None,
            };
            // Accepted: the service sends the `callback` message (and every later one) itself.
            match callbacks.request(req, Some(out.clone())).await {
                Ok(_) => None,
                Err(e) => Some(error(e.code(), e.to_string())),
            }
        }
        ClientMessage::Ice { candidate } => match (call.as_ref(), candidate) {
            (Some(c), Some(cand)) => {
                let _ = c.send(CustomerInput::Candidate(cand));
                None
            }
            (Some(_), None) => None,
            (None, _) => Some(error("no_call", "no call on this socket")),
        },
        ClientMessage::Dtmf { digits } => match call.as_ref() {
            Some(c) => {
                let _ = c.send(CustomerInput::Digits(digits));
                None
            }
            None => Some(error("no_call", "no call on this socket")),
        },
        ClientMessage::Hangup {} => match call.take() {
            Some(c) => {
                let _ = c.send(CustomerInput::Hangup);
                None
            }
            None => Some(error("no_call", "no call on this socket")),
        },
    }
}
