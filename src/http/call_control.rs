//! REST call control (behind the API key): read one call, hang it up, hold and resume the
//! customer, transfer it, add and remove parties. Each command goes to the call's task and is
//! answered when the task has carried it out: 404 for an unknown call or party, 409 with a reason
//! when the command does not fit the call's state, 400 for a body that is not what the route takes.
//!
//! | route | does |
//! |---|---|
//! | `GET /api/calls/{id}` | the call: state, queue, parties (role, state, since) |
//! | `POST /api/calls/{id}/hangup` | everybody gets BYE |
//! | `POST /api/calls/{id}/hold`, `/unhold` | the customer hears music and is not heard, or is back |
//! | `POST /api/calls/{id}/transfer` | `{"agent": ..}` or `{"queue": ..}`: the agents leave, the target rings / the customer waits |
//! | `POST /api/calls/{id}/parties` | `{"agent": ..}`: ring an agent and add it to the call |
//! | `DELETE /api/calls/{id}/parties/{party}` | the party leaves (BYE), or stops ringing |
//! | `POST /api/calls/{id}/play` | `{"prompt": ..}`: the customer hears that prompt, then the call again |
//! | `POST /api/calls/{id}/recording` | `{"action": "start" \| "stop" \| "pause" \| "resume"}` |
//! | `POST /api/calls/{id}/supervise` | `{"supervisor": .., "mode": ..}`: the supervisor's phone rings and joins in that mode |
//! | `POST /api/calls/{id}/consult` | `{"agent": ..}` or `{"queue": ..}`: the customer is held, the agent's leg talks to that agent (a queue's longest-idle one; 202 while it rings) |
//! | `POST /api/calls/{id}/consult/{action}` | `complete`, `threeway`, `swap`, `cancel` |
//! | `PUT /api/calls/{id}/supervise` | `{"supervisor": .., "mode": ..}`: a supervisor in the call switches mode |

use super::api::{calls, ApiError};
use super::HttpState;
use crate::call::controller::parties::TransferTarget;
use crate::call::controller::supervision::Mode;
use crate::call::directory::{CallCommand, CommandError};
use crate::call::{CallId, CallManager, CallSummary};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// The running call `id` names (404 `unknown_call` for none, or for an id that is no number).
fn live_call(mgr: &CallManager, id: &str) -> Result<(CallId, CallSummary), ApiError> {
    let unknown = || {
        ApiError(
            StatusCode::NOT_FOUND,
            "unknown_call",
            format!("no call {id:?}"),
        )
    };
    let call_id: CallId = id.parse().map_err(|_| unknown())?;
    let call = mgr.directory.get(call_id).ok_or_else(unknown)?;
    Ok((call_id, call))
}

fn command_error(e: CommandError) -> ApiError {
    match e {
        CommandError::UnknownCall(m) => ApiError(StatusCode::NOT_FOUND, "unknown_call", m),
        CommandError::NotFound(m) => ApiError(StatusCode::NOT_FOUND, "not_found", m),
        CommandError::Conflict(r) => ApiError(StatusCode::CONFLICT, r.code, r.message),
        CommandError::Invalid(code, m) => ApiError(StatusCode::BAD_REQUEST, code, m),
        CommandError::Forbidden(code, m) => ApiError(StatusCode::FORBIDDEN, code, m),
    }
}

/// A body with exactly one field of `fields`, as (field, value).
fn one_of(body: &str, fields: &[&'static str]) -> Result<(&'static str, String), ApiError> {
    let expected = || {
        let alts: Vec<String> = fields
            .iter()
            .map(|f| format!("{{\"{f}\": \"...\"}}"))
            .collect();
        format!("expected {}", alts.join(" or "))
    };
    let bad = |why: String| ApiError(StatusCode::BAD_REQUEST, "bad_request", why);
    let v: serde_json::Value =
        serde_json::from_str(body).map_err(|e| bad(format!("{}: {e}", expected())))?;
    let obj = v.as_object().ok_or_else(|| bad(expected()))?;
    if obj.len() != 1 {
        return Err(bad(expected()));
    }
    let (k, v) = obj.iter().next().ok_or_else(|| bad(expected()))?;
    let field = fields
        .iter()
        .find(|f| *f == k)
        .ok_or_else(|| bad(format!("unknown field {k:?}: {}", expected())))?;
    match v.as_str() {
        Some(s) if !s.is_empty() && s.len() <= 128 => Ok((field, s.to_string())),
        _ => Err(bad(format!(
            "{k:?} must be a non-empty string: {}",
            expected()
        ))),
    }
}

async fn run(
    state: &HttpState,
    id: &str,
    cmd: impl FnOnce() -> Result<CallCommand, ApiError>,
) -> Result<Response, ApiError> {
    let mgr = calls(state)?;
    // An unknown call is a 404 before a bad body is a 400.
    let (id, _) = live_call(mgr, id)?;
    let cmd = cmd()?;
    mgr.directory
        .command(id, cmd)
        .await
        .map_err(command_error)?;
    let call = mgr.directory.get(id);
    Ok(Json(json!({"ok": true, "call": call})).into_response())
}

/// `GET /api/calls/{id}`
pub async fn get_call(
    State(state): State<HttpState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (_, call) = live_call(calls(&state)?, &id)?;
    Ok(Json(call).into_response())
}

/// `POST /api/calls/{id}/hangup`
pub async fn hangup(
    State(state): State<HttpState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    run(&state, &id, || Ok(CallCommand::Hangup)).await
}

/// `POST /api/calls/{id}/hold`
pub async fn hold(
    State(state): State<HttpState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    run(&state, &id, || Ok(CallCommand::Hold(true))).await
}

/// `POST /api/calls/{id}/unhold`
pub async fn unhold(
    State(state): State<HttpState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    run(&state, &id, || Ok(CallCommand::Hold(false))).await
}

/// `POST /api/calls/{id}/transfer` with `{"agent": ..}` or `{"queue": ..}`.
pub async fn transfer(
    State(state): State<HttpState>,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, ApiError> {
    run(&state, &id, || {
        let (field, value) = one_of(&body, &["agent", "queue"])?;
        Ok(CallCommand::Transfer(if field == "agent" {
            TransferTarget::Agent(value)
        } else {
            TransferTarget::Queue(value)
        }))
    })
    .await
}

/// `POST /api/calls/{id}/parties` with `{"agent": ..}`.
pub async fn add_party(
    State(state): State<HttpState>,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, ApiError> {
    let r = run(&state, &id, || {
        let (_, agent) = one_of(&body, &["agent"])?;
        Ok(CallCommand::AddParty(agent))
    })
    .await?;
    Ok((StatusCode::ACCEPTED, r).into_response())
}

/// `POST /api/calls/{id}/play` with `{"prompt": ..}`.
pub async fn play(
    State(state): State<HttpState>,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, ApiError> {
    run(&state, &id, || {
        let (_, prompt) = one_of(&body, &["prompt"])?;
        Ok(CallCommand::Play(prompt))
    })
    .await
}

/// `POST /api/calls/{id}/recording` with `{"action": "start" | "stop" | "pause" | "resume"}`.
pub async fn recording(
    State(state): State<HttpState>,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, ApiError> {
    run(&state, &id, || {
        let (_, action) = one_of(&body, &["action"])?;
        let action = crate::call::recording::Action::parse(&action).ok_or_else(|| {
            ApiError(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("action {action:?}: use start, stop, pause or resume"),
            )
        })?;
        Ok(CallCommand::Recording(action))
    })
    .await
}

/// A supervise body: `{"supervisor": .., "mode": "monitor" | "whisper" | "barge" | "takeover"}`.
fn supervise_body(body: &str, change: bool) -> Result<CallCommand, ApiError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        supervisor: String,
        mode: String,
    }
    let bad = |why: String| ApiError(StatusCode::BAD_REQUEST, "bad_request", why);
    let b: Body = serde_json::from_str(body).map_err(|e| {
        bad(format!(
            "expected {{\"supervisor\": \"...\", \"mode\": \"...\"}}: {e}"
        ))
    })?;
    if b.supervisor.is_empty() || b.supervisor.len() > 128 {
        return Err(bad("supervisor must be a non-empty id".into()));
    }
    let mode = Mode::parse(&b.mode).ok_or_else(|| {
        bad(format!(
            "mode {:?}: use monitor, whisper, barge or takeover",
            b.mode
        ))
    })?;
    Ok(CallCommand::Supervise {
        supervisor: b.supervisor,
        mode,
        change,
    })
}

/// `POST /api/calls/{id}/supervise`: the supervisor's phone rings (202) and joins on answer.
pub async fn supervise(
    State(state): State<HttpState>,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, ApiError> {
    let r = run(&state, &id, || supervise_body(&body, false)).await?;
    Ok((StatusCode::ACCEPTED, r).into_response())
}

/// `PUT /api/calls/{id}/supervise`: a supervisor in the call switches mode.
pub async fn supervise_mode(
    State(state): State<HttpState>,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, ApiError> {
    run(&state, &id, || supervise_body(&body, true)).await
}

/// `POST /api/calls/{id}/consult` with `{"agent": ..}` or `{"queue": ..}`: the consulted agent
/// (a queue's longest-idle one) rings (202).
pub async fn consult(
    State(state): State<HttpState>,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, ApiError> {
    let r = run(&state, &id, || {
        use crate::call::directory::ConsultTarget;
        let (field, name) = one_of(&body, &["agent", "queue"])?;
        let target = if field == "agent" {
            ConsultTarget::Agent(name)
        } else {
            ConsultTarget::Queue(name)
        };
        Ok(CallCommand::Consult {
            from: None,
            target,
            leg: None,
        })
    })
    .await?;
    Ok((StatusCode::ACCEPTED, r).into_response())
}

/// `POST /api/calls/{id}/consult/{action}`: `complete`, `threeway`, `swap` or `cancel`.
pub async fn consult_action(
    State(state): State<HttpState>,
    Path((id, action)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    use crate::call::directory::ConsultAction as A;
    run(&state, &id, || {
        let a = match action.as_str() {
            "complete" => A::Complete,
            "threeway" => A::Threeway,
            "swap" => A::Swap,
            "cancel" => A::Cancel,
            other => {
                return Err(ApiError(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    format!("no consult action {other:?}: complete, threeway, swap or cancel"),
                ))
            }
        };
        Ok(CallCommand::ConsultDo(a))
    })
    .await
}

/// `DELETE /api/calls/{id}/parties/{party}`
pub async fn remove_party(
    State(state): State<HttpState>,
    Path((id, party)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    run(&state, &id, || Ok(CallCommand::RemoveParty(party))).await
}
