//! A REST request for a call another node of the cluster holds: its node is in its id
//! ([`crate::call::id`]), so the request is redirected there (`307`, same method and body) with
//! no lookup, after the key was checked. A call of a node that is not running gets `404
//! unknown_call`; while the shared state is unreachable, `503`.

use super::api::ApiError;
use super::HttpState;
use crate::call::id::CallIds;
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

#[cfg(test)]
mod tests {
    #[test]
    fn the_call_id_is_read_from_call_paths_only() {
        assert_eq!(super::call_in("/api/calls/42/hangup"), Some(42));
        assert_eq!(super::call_in("/api/calls/42"), Some(42));
        assert_eq!(super::call_in("/api/calls/x/hangup"), None);
        assert_eq!(super::call_in("/api/callbacks/42"), None);
    }
}
