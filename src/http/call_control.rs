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
use super::bodies;
use super::HttpState;
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
    run(&state, &id, || bodies::transfer(&body)).await
}

/// `POST /api/calls/{id}/parties` with `{"agent": ..}`.
pub async fn add_party(
    State(state): State<HttpState>,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, ApiError> {
    let r = run(&state, &id, || bodies::add_party(&body)).await?;
    Ok((StatusCode::ACCEPTED, r).into_response())
}

/// `POST /api/calls/{id}/play` with `{"prompt": ..}`.
pub async fn play(
    State(state): State<HttpState>,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, ApiError> {
    run(&state, &id, || bodies::play(&body)).await
}

/// `POST /api/calls/{id}/recording` with `{"action": "start" | "stop" | "pause" | "resume"}`.
pub async fn recording(
    State(state): State<HttpState>,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, ApiError> {
    run(&state, &id, || bodies::recording(&body)).await
}

/// `POST /api/calls/{id}/supervise`: the supervisor's phone rings (202) and joins on answer.
pub async fn supervise(
    State(state): State<HttpState>,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, ApiError> {
    let r = run(&state, &id, || bodies::supervise(&body, false)).await?;
    Ok((StatusCode::ACCEPTED, r).into_response())
}

/// `PUT /api/calls/{id}/supervise`: a supervisor in the call switches mode.
pub async fn supervise_mode(
    State(state): State<HttpState>,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, ApiError> {
    run(&state, &id, || bodies::supervise(&body, true)).await
}

/// `POST /api/calls/{id}/consult` with `{"agent": ..}` or `{"queue": ..}`: the consulted agent
/// (a queue's longest-idle one) rings (202).
pub async fn consult(
    State(state): State<HttpState>,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, ApiError> {
    let r = run(&state, &id, || bodies::consult(&body)).await?;
    Ok((StatusCode::ACCEPTED, r).into_response())
}

/// `POST /api/calls/{id}/consult/{action}`: `complete`, `threeway`, `swap` or `cancel`.
pub async fn consult_action(
    State(state): State<HttpState>,
    Path((id, action)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    run(&state, &id, || bodies::consult_action(&action)).await
}

/// `DELETE /api/calls/{id}/parties/{party}`
pub async fn remove_party(
    State(state): State<HttpState>,
    Path((id, party)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    run(&state, &id, || Ok(CallCommand::RemoveParty(party))).await
}
