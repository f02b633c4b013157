//! The REST API under `/api` (bearer key from `api.key`): agents and their states, queues, calls.
//!
//! | route | does |
//! |---|---|
//! | `GET /api/agents` | every agent with state and queues |
//! | `PUT /api/agents/{id}/state` | `{"state":"away"}` or `{"state":"available"}` |
//! | `GET /api/queues` | waiting calls, longest wait, agents available and logged in, per queue |
//! | `GET /api/calls` | running calls with state, queue, agent, age |

use super::HttpState;
use crate::acd::service::SetStateError;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// An API error: a status and a JSON body `{"error": code, "message": text}`.
#[derive(Debug)]
pub struct ApiError(StatusCode, &'static str, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": self.1, "message": self.2}))).into_response()
    }
}

fn authorize(state: &HttpState, headers: &HeaderMap) -> Result<(), ApiError> {
    let key = &state.cfg.api.key;
    if key.is_empty() {
        return Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "api_disabled",
            "the REST API is off: set api.key (or CLICKTOCALL_API_KEY)".into(),
        ));
    }
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()));
    // Constant-time comparison: the key must not leak through timing.
    let ok = given.is_some_and(|g| {
        g.len() == key.len()
            && g.bytes()
                .zip(key.bytes())
                .fold(0u8, |a, (x, y)| a | (x ^ y))
                == 0
    });
    if ok {
        Ok(())
    } else {
        Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong API key (Authorization: Bearer <key>)".into(),
        ))
    }
}

fn calls(state: &HttpState) -> Result<&std::sync::Arc<crate::call::CallManager>, ApiError> {
    state.calls.as_ref().ok_or_else(|| {
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "call control is not running".into(),
        )
    })
}

/// `GET /api/agents`
pub async fn agents(
    State(state): State<HttpState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    Ok(Json(calls(&state)?.acd.agents().await).into_response())
}

/// `GET /api/queues`
pub async fn queues(
    State(state): State<HttpState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    Ok(Json(calls(&state)?.acd.queues().await).into_response())
}

/// `GET /api/calls`
pub async fn list_calls(
    State(state): State<HttpState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    Ok(Json(calls(&state)?.calls()).into_response())
}

/// `PUT /api/agents/{id}/state` with `{"state": "away" | "available"}`.
pub async fn set_agent_state(
    State(state): State<HttpState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
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
