//! The REST API under `/api` (a key with the route's scope: see [`super::routes`]): agents and
//! their states, queues, calls, callbacks, records, SIP bans.
//!
//! | route | does |
//! |---|---|
//! | `GET /api/agents` | every agent with state and queues |
//! | `PUT /api/agents/{id}/state` | `{"state":"away"}` or `{"state":"available"}` |
//! | `GET /api/queues` | waiting calls, longest wait, agents available and logged in, per queue |
//! | `GET /api/calls` | running calls with state, queue, agent, parties, age |
//! | `/api/calls/{id}/...` | call control: see [`super::call_control`] |
//! | `POST /api/callbacks` | `{"number", "context"?, "queue"?, "not_before"?}`: schedule a callback |
//! | `GET /api/callbacks` | the latest callbacks (`?state=scheduled|failed|...`) |
//! | `GET /api/callbacks/{id}` | one callback |
//! | `DELETE /api/callbacks/{id}` | cancel a scheduled callback |
//! | `GET /api/cdrs` | call detail records (filters: `since_ms`, `until_ms`, `queue`, `kind`, `reason`, `agent`, `ended`, `limit`; `format=csv`) |

use super::HttpState;
use crate::acd::service::SetStateError;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// An API error: a status and a JSON body `{"error": code, "message": text}`.
#[derive(Debug)]
pub struct ApiError(
    pub(crate) StatusCode,
    pub(crate) &'static str,
    pub(crate) String,
);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": self.1, "message": self.2}))).into_response()
    }
}

pub(super) fn calls(
    state: &HttpState,
) -> Result<&std::sync::Arc<crate::call::CallManager>, ApiError> {
    state.calls.as_ref().ok_or_else(|| {
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "call control is not running".into(),
        )
    })
}

/// `GET /api/agents`
pub async fn agents(State(state): State<HttpState>) -> Result<Response, ApiError> {
    Ok(Json(calls(&state)?.acd.agents().await).into_response())
}

/// `GET /api/queues`
pub async fn queues(State(state): State<HttpState>) -> Result<Response, ApiError> {
    Ok(Json(calls(&state)?.acd.queues().await).into_response())
}

/// `GET /api/calls`
pub async fn list_calls(State(state): State<HttpState>) -> Result<Response, ApiError> {
    Ok(Json(calls(&state)?.calls()).into_response())
}

/// `PUT /api/agents/{id}/state` with `{"state": "away" | "available"}`.
pub async fn set_agent_state(
    State(state): State<HttpState>,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, ApiError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        state: String,
    }
    let b: Body = serde_json::from_str(&body).map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("expected {{\"state\": \"away\" | \"available\"}}: {e}"),
        )
    })?;
    let away = match b.state.as_str() {
        "away" => true,
        "available" => false,
        other => {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                "bad_state",
                format!("{other:?}: an agent can set only \"away\" or \"available\""),
            ))
        }
    };
    match calls(&state)?.acd.set_away(&id, away).await {
        Ok(()) => Ok(Json(json!({"id": id, "state": b.state})).into_response()),
        Err(e @ SetStateError::UnknownAgent(_)) => Err(ApiError(
            StatusCode::NOT_FOUND,
            "unknown_agent",
            e.to_string(),
        )),
        Err(e @ SetStateError::NotNow(..)) => {
            Err(ApiError(StatusCode::CONFLICT, "not_now", e.to_string()))
        }
    }
}

/// `POST /api/callbacks` body.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallbackBody {
    /// The customer's number (E.164, or national in the home country).
    number: String,
    /// Context for the agent (flat), as in the widget.
    #[serde(default)]
    context: serde_json::Map<String, serde_json::Value>,
    /// Queue after the customer confirms (the `[callback] queue` when absent).
    #[serde(default)]
    queue: Option<String>,
    /// Not before this time (unix seconds).
    #[serde(default)]
    not_before: Option<u64>,
}

fn callbacks(state: &HttpState) -> Result<&crate::callback::service::CallbackHandle, ApiError> {
    calls(state)?.callbacks.get().ok_or_else(|| {
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "callback_unavailable",
            "call-back is off: set [callback] enabled = true".into(),
        )
    })
}

fn callback_error(e: crate::callback::service::CallbackError) -> ApiError {
    use crate::callback::service::CallbackError as E;
    crate::metrics::rejected(e.code());
    let status = match &e {
        E::Number(_) | E::UnknownQueue(_) => StatusCode::UNPROCESSABLE_ENTITY,
        E::Refused(r) if r.code() == "rate_limited" => StatusCode::TOO_MANY_REQUESTS,
        E::Refused(r) if r.code() == "callback_full" => StatusCode::SERVICE_UNAVAILABLE,
        E::Refused(_) => StatusCode::FORBIDDEN,
        E::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        E::NotFound(_) => StatusCode::NOT_FOUND,
        E::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        E::StoreUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    ApiError(status, e.code(), e.to_string())
}

/// `POST /api/callbacks`: a site's backend asks for a callback (trusted: its context counts as
/// verified). 201 with the callback; 200 with `duplicate: true` when one is already open for the
/// number.
pub async fn create_callback(
    State(state): State<HttpState>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let handle = callbacks(&state)?;
    let b: CallbackBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("expected {{\"number\", \"context\"?, \"queue\"?, \"not_before\"?}}: {e}"),
        )
    })?;
    if let Some((k, _)) = b
        .context
        .iter()
        .find(|(_, v)| v.is_object() || v.is_array())
    {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "context_not_flat",
            format!("context field {k:?} is an object or array"),
        ));
    }
    let req = crate::callback::service::NewCallback {
        number: b.number,
        context: b.context,
        verified: true,
        queue: b.queue,
        site: None,
        ip: None,
        not_before: b.not_before,
    };
    let a = handle.request(req, None).await.map_err(callback_error)?;
    let status = if a.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let mut v = serde_json::to_value(&a.callback).unwrap_or_default();
    v["duplicate"] = json!(a.duplicate);
    Ok((status, Json(v)).into_response())
}

/// `GET /api/callbacks?state=...`: the latest 200 callbacks, newest first.
pub async fn list_callbacks(
    State(state): State<HttpState>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let list = callbacks(&state)?
        .store
        .list(q.get("state").map(String::as_str), 200)
        .map_err(|e| callback_error(e.into()))?;
    Ok(Json(list).into_response())
}

/// `GET /api/callbacks/{id}`
pub async fn get_callback(
    State(state): State<HttpState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    match callbacks(&state)?
        .store
        .get(&id)
        .map_err(|e| callback_error(e.into()))?
    {
        Some(cb) => Ok(Json(cb).into_response()),
        None => Err(callback_error(
            crate::callback::service::CallbackError::NotFound(id),
        )),
    }
}

/// `DELETE /api/callbacks/{id}`: cancels a callback still waiting for its time.
pub async fn cancel_callback(
    State(state): State<HttpState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let cb = callbacks(&state)?
        .cancel(&id)
        .await
        .map_err(callback_error)?;
    Ok(Json(cb).into_response())
}

/// `GET /api/cdrs?since_ms=&until_ms=&queue=&kind=&reason=&agent=&ended=&limit=&format=csv`: call
/// detail records, oldest first; `format=csv` (or `Accept: text/csv`) for a spreadsheet.
pub async fn cdrs(
    State(state): State<HttpState>,
    headers: HeaderMap,
    q: Result<
        axum::extract::Query<crate::records::store::Filter>,
        axum::extract::rejection::QueryRejection,
    >,
) -> Result<Response, ApiError> {
    let axum::extract::Query(filter) =
        q.map_err(|e| ApiError(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))?;
    let csv = filter.format.as_deref() == Some("csv")
        || headers
            .get("accept")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/csv"));
    if let Some(f) = filter
        .format
        .as_deref()
        .filter(|f| !["csv", "json"].contains(f))
    {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("format {f:?}: use json or csv"),
        ));
    }
    let rows =
        calls(&state)?
            .records
            .query(filter)
            .await
            .map_err(|e| match e.is_unavailable() {
                true => ApiError(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    e.to_string(),
                ),
                false => ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
            })?;
    if csv {
        let body = crate::records::store::to_csv(&rows);
        return Ok((
            [
                ("content-type", "text/csv; charset=utf-8"),
                ("content-disposition", "attachment; filename=\"cdrs.csv\""),
            ],
            body,
        )
            .into_response());
    }
    Ok(Json(rows).into_response())
}

fn flood(state: &HttpState) -> Result<&crate::sip::flood::FloodShield, ApiError> {
    state.flood.as_deref().ok_or_else(|| {
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "SIP is not running".into(),
        )
    })
}

/// `GET /api/bans`: the SIP sources banned now, oldest ban first.
pub async fn list_bans(State(state): State<HttpState>) -> Result<Response, ApiError> {
    Ok(Json(flood(&state)?.bans()).into_response())
}

/// `DELETE /api/bans/{ip}`: lifts a ban (404 when that address is not banned).
pub async fn unban(
    State(state): State<HttpState>,
    Path(ip): Path<String>,
) -> Result<Response, ApiError> {
    let shield = flood(&state)?;
    let addr: std::net::IpAddr = ip.parse().map_err(|_| {
        ApiError(
            StatusCode::BAD_REQUEST,
            "bad_address",
            format!("{ip:?} is not an IP address"),
        )
    })?;
    if shield.unban(addr) {
        tracing::info!(%addr, "SIP ban lifted over the API");
        Ok(Json(json!({"ip": addr.to_string(), "banned": false})).into_response())
    } else {
        Err(ApiError(
            StatusCode::NOT_FOUND,
            "not_banned",
            format!("{addr} is not banned"),
        ))
    }
}

/// `GET /metrics`: Prometheus text format. Not behind the API key (scrapers rarely carry one):
/// expose it only where your Prometheus can reach it.
pub async fn metrics(State(state): State<HttpState>) -> Response {
    let mut snap = crate::metrics::Snapshot {
        calls_active: state.lifecycle.active_calls() as u64,
        calls_limit: state.lifecycle.max_calls() as u64,
        tasks_alive: tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks() as u64,
        ..Default::default()
    };
    if let Some(mgr) = &state.calls {
        snap.media_workers = mgr.engine.worker_stats();
        for c in mgr.calls() {
            *snap.calls_by_state.entry(c.state).or_default() += 1;
        }
        for q in mgr.acd.queues().await {
            snap.queues
                .push((q.name, q.waiting as u64, q.longest_wait_secs));
        }
        for a in mgr.acd.agents().await {
            *snap.agents_by_state.entry(a.state.to_string()).or_default() += 1;
        }
    }
    if let Some(f) = &state.flood {
        snap.sip_flood = f.counts();
    }
    (
        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
        crate::metrics::render(&snap),
    )
        .into_response()
}
