//! The REST API's request bodies, parsed and checked apart from the handlers (sans-IO: text in, a
//! command or a `400` out), so every body a route takes is in one place, and fuzzed.

pub use super::api::ApiError;
use crate::call::controller::parties::TransferTarget;
use crate::call::controller::supervision::Mode;
use crate::call::directory::{CallCommand, ConsultAction, ConsultTarget};
use axum::http::StatusCode;

/// A body with exactly one field of `fields`, as (field, value).
pub fn one_of(body: &str, fields: &[&'static str]) -> Result<(&'static str, String), ApiError> {
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

/// A supervise body: `{"supervisor": .., "mode": "monitor" | "whisper" | "barge" | "takeover"}`.
pub fn supervise(body: &str, change: bool) -> Result<CallCommand, ApiError> {
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

/// `{"agent": ..}` or `{"queue": ..}`: a transfer.
pub fn transfer(body: &str) -> Result<CallCommand, ApiError> {
    let (field, value) = one_of(body, &["agent", "queue"])?;
    Ok(CallCommand::Transfer(if field == "agent" {
        TransferTarget::Agent(value)
    } else {
        TransferTarget::Queue(value)
    }))
}

/// `{"agent": ..}`: a party to add.
pub fn add_party(body: &str) -> Result<CallCommand, ApiError> {
    let (_, agent) = one_of(body, &["agent"])?;
    Ok(CallCommand::AddParty(agent))
}

/// `{"prompt": ..}`: a prompt to play.
pub fn play(body: &str) -> Result<CallCommand, ApiError> {
    let (_, prompt) = one_of(body, &["prompt"])?;
    Ok(CallCommand::Play(prompt))
}

/// `{"action": "start" | "stop" | "pause" | "resume"}`.
pub fn recording(body: &str) -> Result<CallCommand, ApiError> {
    let (_, action) = one_of(body, &["action"])?;
    let action = crate::call::recording::Action::parse(&action).ok_or_else(|| {
        ApiError(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("action {action:?}: use start, stop, pause or resume"),
        )
    })?;
    Ok(CallCommand::Recording(action))
}

/// `{"agent": ..}` or `{"queue": ..}`: whom to consult.
pub fn consult(body: &str) -> Result<CallCommand, ApiError> {
    let (field, name) = one_of(body, &["agent", "queue"])?;
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
}

/// The `{action}` of `/consult/{action}` (404 for another word).
pub fn consult_action(action: &str) -> Result<CallCommand, ApiError> {
    let a = match action {
        "complete" => ConsultAction::Complete,
        "threeway" => ConsultAction::Threeway,
        "swap" => ConsultAction::Swap,
        "cancel" => ConsultAction::Cancel,
        other => {
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no consult action {other:?}: complete, threeway, swap or cancel"),
            ))
        }
    };
    Ok(CallCommand::ConsultDo(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_take_exactly_their_fields() {
        assert!(transfer(r#"{"queue":"sales"}"#).is_ok());
        assert!(transfer(r#"{"queue":"sales","agent":"1"}"#).is_err());
        assert!(transfer(r#"{"team":"sales"}"#).is_err());
        assert!(add_party(r#"{"agent":""}"#).is_err());
        assert!(play(&format!(r#"{{"prompt":"{}"}}"#, "p".repeat(129))).is_err());
        assert!(recording(r#"{"action":"rewind"}"#).is_err());
        assert!(supervise(r#"{"supervisor":"9001","mode":"barge"}"#, false).is_ok());
        assert!(supervise(r#"{"supervisor":"9001","mode":"shout"}"#, true).is_err());
        assert_eq!(
            consult_action("rewind").unwrap_err().0,
            StatusCode::NOT_FOUND
        );
        for bad in ["", "[]", "null", "{", "\"\\u0000\""] {
            assert_eq!(
                consult(bad).unwrap_err().0,
                StatusCode::BAD_REQUEST,
                "{bad:?}"
            );
        }
    }
}
