//! Every route under `/api`, each with the one scope a key needs to use it, and the gate that checks
//! it before the handler runs. The table is the single place a route is declared: the router is
//! built from it, and the scope test walks it.
//!
//! Every request that changes something (any method but GET) and every recording download is an
//! audit line (`target: clicktocall::audit`) naming the key, the method, the path, the client and
//! the status.

use super::api::{self, ApiError};
use super::keyring::{Denied, Keyring, Scope};
use super::{call_control, recordings, HttpState};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put, MethodRouter};
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;

/// One route of the REST API: what it answers and the scope it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiRoute {
    /// `GET`, `POST`, `PUT` or `DELETE`.
    pub method: &'static str,
    /// The path pattern, `{id}` for a parameter.
    pub path: &'static str,
    /// The scope a key needs (or `admin`).
    pub scope: Scope,
}

fn table() -> Vec<(ApiRoute, MethodRouter<HttpState>)> {
    use Scope::*;
    let r = |method, path, scope| ApiRoute {
        method,
        path,
        scope,
    };
    vec![
        (r("GET", "/api/agents", AgentsRead), get(api::agents)),
        (r("GET", "/api/queues", AgentsRead), get(api::queues)),
        (
            r("PUT", "/api/agents/{id}/state", AgentsWrite),
            put(api::set_agent_state),
        ),
        (r("GET", "/api/calls", CallsRead), get(api::list_calls)),
        (
            r("GET", "/api/calls/{id}", CallsRead),
            get(call_control::get_call),
        ),
        (
            r("POST", "/api/calls/{id}/hangup", CallsControl),
            post(call_control::hangup),
        ),
        (
            r("POST", "/api/calls/{id}/hold", CallsControl),
            post(call_control::hold),
        ),
        (
            r("POST", "/api/calls/{id}/unhold", CallsControl),
            post(call_control::unhold),
        ),
        (
            r("POST", "/api/calls/{id}/transfer", CallsControl),
            post(call_control::transfer),
        ),
        (
            r("POST", "/api/calls/{id}/parties", CallsControl),
            post(call_control::add_party),
        ),
        (
            r("DELETE", "/api/calls/{id}/parties/{party}", CallsControl),
            delete(call_control::remove_party),
        ),
        (
            r("POST", "/api/calls/{id}/play", CallsControl),
            post(call_control::play),
        ),
        (
            r("POST", "/api/calls/{id}/consult", CallsControl),
            post(call_control::consult),
        ),
        (
            r("POST", "/api/calls/{id}/consult/{action}", CallsControl),
            post(call_control::consult_action),
        ),
        (
            r("POST", "/api/calls/{id}/recording", CallsControl),
            post(call_control::recording),
        ),
        (
            r("GET", "/api/calls/{id}/recording", RecordingsRead),
            get(recordings::get_recording),
        ),
        (
            r("POST", "/api/calls/{id}/supervise", CallsSupervise),
            post(call_control::supervise),
        ),
        (
            r("PUT", "/api/calls/{id}/supervise", CallsSupervise),
            put(call_control::supervise_mode),
        ),
        (r("GET", "/api/cdrs", RecordsRead), get(api::cdrs)),
        (
            r("GET", "/api/callbacks", CallbacksRead),
            get(api::list_callbacks),
        ),
        (
            r("POST", "/api/callbacks", CallbacksWrite),
            post(api::create_callback),
        ),
        (
            r("GET", "/api/callbacks/{id}", CallbacksRead),
            get(api::get_callback),
        ),
        (
            r("DELETE", "/api/callbacks/{id}", CallbacksWrite),
            delete(api::cancel_callback),
        ),
        (r("GET", "/api/bans", Admin), get(api::list_bans)),
        (r("DELETE", "/api/bans/{ip}", Admin), delete(api::unban)),
    ]
}

/// Every API route with its scope, in the order of the docs.
pub fn api_routes() -> Vec<ApiRoute> {
    table().into_iter().map(|(r, _)| r).collect()
}

/// The API's routes, each behind the gate of its scope.
pub(super) fn add_api_routes(
    mut router: Router<HttpState>,
    keys: Arc<Keyring>,
    state: &HttpState,
) -> Router<HttpState> {
    for (route, handler) in table() {
        let gate = Gate {
            keys: keys.clone(),
            scope: route.scope,
        };
        // The key is checked first (the outer layer), then a call of another node is redirected.
        let layered = handler
            .route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                super::elsewhere::redirect,
            ))
            .route_layer(axum::middleware::from_fn_with_state(gate, check));
        router = router.route(route.path, layered);
    }
    router
}

#[derive(Clone)]
struct Gate {
    keys: Arc<Keyring>,
    scope: Scope,
}

/// The key a request presents: `Authorization: Bearer <key>` or `X-Api-Key: <key>`.
fn presented(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
}

fn denied(d: Denied) -> ApiError {
    match d {
        Denied::Disabled => ApiError(
            StatusCode::UNAUTHORIZED,
            "api_disabled",
            "the REST API is off: set api.key or [[api.keys]] (or CLICKTOCALL_API_KEY)".into(),
        ),
        Denied::Unauthenticated => ApiError(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong API key (Authorization: Bearer <key>)".into(),
        ),
        Denied::Forbidden { key, scope } => ApiError(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("key {key:?} lacks the scope {scope} this route needs"),
        ),
    }
}

async fn check(State(gate): State<Gate>, req: Request, next: Next) -> Response {
    let name = match gate.keys.check(presented(req.headers()), gate.scope) {
        Ok(name) => name.to_string(),
        Err(d) => {
            if let Denied::Forbidden { key, scope } = &d {
                tracing::info!(target: "clicktocall::audit", key = %key, method = %req.method(),
                    path = %req.uri().path(), %scope, "api refused: scope missing");
            }
            return denied(d).into_response();
        }
    };
    let audited = req.method() != Method::GET || gate.scope == Scope::RecordingsRead;
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default();
    let response = next.run(req).await;
    if audited {
        tracing::info!(target: "clicktocall::audit", key = %name, %method, %path, %client,
            status = response.status().as_u16(), "api");
    }
    response
}
