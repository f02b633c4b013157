//! A request for a call another node of the cluster holds: its node is in its id
//! ([`crate::call::id`]), so it is sent there with no lookup. A REST request is redirected
//! (`307`, same method and body) after the key was checked; a call of a node that is not running
//! gets `404 unknown_call`, and while the shared state is unreachable, `503`. A widget socket
//! resuming such a call gets `moved` with that node's socket URL (browsers do not follow
//! redirects of a WebSocket handshake).

use super::api::ApiError;
use super::ws::error;
use super::HttpState;
use crate::call::id::CallIds;
use crate::widget::protocol::ServerMessage;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The call id in `/api/calls/{id}[/...]`.
fn call_in(path: &str) -> Option<u64> {
    path.strip_prefix("/api/calls/")?
        .split('/')
        .next()?
        .parse()
        .ok()
}

/// Passes the request on, or redirects it to the node holding its call.
pub(super) async fn redirect(State(state): State<HttpState>, req: Request, next: Next) -> Response {
    let cluster = state.calls.as_ref().and_then(|m| m.cluster.get());
    let (Some(cluster), Some(id)) = (cluster, call_in(req.uri().path())) else {
        return next.run(req).await;
    };
    let node = CallIds::node_of(id);
    if node == cluster.node {
        return next.run(req).await;
    }
    match cluster.node_url(node).await {
        Ok(Some(url)) => {
            let target = req
                .uri()
                .path_and_query()
                .map_or(req.uri().path(), |p| p.as_str());
            let location = format!("{}{target}", url.trim_end_matches('/'));
            (
                StatusCode::TEMPORARY_REDIRECT,
                [(header::LOCATION, location)],
            )
                .into_response()
        }
        Ok(None) => ApiError(
            StatusCode::NOT_FOUND,
            "unknown_call",
            format!("no call {id}: its node {node} is not running"),
        )
        .into_response(),
        Err(e) => ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("the call is on node {node}, which cannot be looked up now: {e}"),
        )
        .into_response(),
    }
}

/// Where a widget resumes call `id` another node holds: `moved` to that node's socket, or
/// `call_ended` when the node is gone; `None` for a call of this node (or a single node).
pub(super) async fn resume_at(mgr: &crate::call::CallManager, id: u64) -> Option<ServerMessage> {
    let cluster = mgr.cluster.get()?;
    let node = CallIds::node_of(id);
    if node == cluster.node {
        return None;
    }
    Some(match cluster.node_url(node).await {
        Ok(Some(url)) => ServerMessage::Moved { url: ws_url(&url) },
        Ok(None) => error("call_ended", format!("call {id} has ended with its node")),
        Err(e) => error(
            "unavailable",
            format!("cannot find the call's node now: {e}"),
        ),
    })
}

/// The widget socket URL of a node whose HTTP base URL is `base`.
fn ws_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    let ws = match base.split_once("://") {
        Some(("https", rest)) => format!("wss://{rest}"),
        Some((_, rest)) => format!("ws://{rest}"),
        None => format!("ws://{base}"),
    };
    format!("{ws}/ws")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_nodes_socket_url_follows_its_scheme() {
        assert_eq!(
            super::ws_url("https://n2.example.com/"),
            "wss://n2.example.com/ws"
        );
        assert_eq!(
            super::ws_url("http://127.0.0.12:8080"),
            "ws://127.0.0.12:8080/ws"
        );
    }

    #[test]
    fn the_call_id_is_read_from_call_paths_only() {
        assert_eq!(super::call_in("/api/calls/42/hangup"), Some(42));
        assert_eq!(super::call_in("/api/calls/42"), Some(42));
        assert_eq!(super::call_in("/api/calls/x/hangup"), None);
        assert_eq!(super::call_in("/api/callbacks/42"), None);
    }
}
