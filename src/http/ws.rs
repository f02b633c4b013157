//! `/ws`: the widget's WebSocket (protocol in `docs/protocol.md`). One socket carries at most one
//! call at a time; the socket's reader forwards the widget's messages to the call task, the call
//! task's state and errors come back through a channel. Bad messages get an `error` and change
//! nothing; closing the socket hangs the call up.

use super::HttpState;
use crate::call::task::{start_browser_call, BrowserCall, CustomerInput};
use crate::call::CallManager;
use crate::widget::ice;
use crate::widget::protocol::{self, ClientMessage, ServerMessage, MAX_MESSAGE_BYTES};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use tokio::sync::mpsc;
use tracing::{debug, info};

/// Upgrades to the widget protocol.
pub async fn upgrade(ws: WebSocketUpgrade, State(state): State<HttpState>) -> Response {
    let Some(mgr) = state.calls.clone() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "calls are not enabled\n").into_response();
    };
    // Twice the protocol limit, so an oversized message still gets a clear `too_large` error;
    // beyond that the socket is closed by the WebSocket layer itself.
    ws.max_message_size(2 * MAX_MESSAGE_BYTES)
        .max_frame_size(2 * MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| session(socket, mgr))
}

async fn send(socket: &mut WebSocket, msg: &ServerMessage) -> bool {
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
fn hello(mgr: &CallManager) -> ServerMessage {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let label = format!("web-{:08x}", rand::random::<u32>());
    ServerMessage::Hello {
        v: protocol::VERSION,
        ice_servers: ice::ice_servers(&mgr.cfg.ice, &label, now),
        callback: false,
    }
}

async fn session(mut socket: WebSocket, mgr: Arc<CallManager>) {
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
                let reply = handle_text(&mgr, &text, &mut call, &out_tx).await;
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

/// Handles one text message; returns a direct reply, if any.
async fn handle_text(
    mgr: &Arc<CallManager>,
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
            context,
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
            let req = BrowserCall {
                offer: sdp,
                context,
                queue,
                skill,
            };
            match start_browser_call(mgr, req, out.clone()).await {
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
