//! The widget's WebSocket protocol (documented in `docs/protocol.md`): typed messages, bounded sizes,
//! and errors with stable codes. Sans-IO: text in, a message or a [`ProtocolError`] out.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The protocol version this gateway speaks.
pub const VERSION: u32 = 1;
/// Largest WebSocket text message accepted.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Largest context object (as JSON) accepted in a `call`.
pub const MAX_CONTEXT_BYTES: usize = 4 * 1024;
/// Most context fields.
pub const MAX_CONTEXT_FIELDS: usize = 32;

/// A message from the widget.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Start a call in the browser.
    Call {
        /// Protocol version the widget speaks.
        v: u32,
        /// The WebRTC offer.
        sdp: String,
        /// Page context (name, CRM id, page, cart...): flat string/number/bool values.
        #[serde(default)]
        context: Map<String, Value>,
        /// Queue to enter (else the IVR decides).
        #[serde(default)]
        queue: Option<String>,
        /// Skill hint for skills-based routing.
        #[serde(default)]
        skill: Option<String>,
        /// The visitor's language (`de`, `fr`...): prompts in it where configured.
        #[serde(default)]
        lang: Option<String>,
    },
    /// Take the call of a socket that dropped back onto this one.
    Resume {
        /// Protocol version the widget speaks.
        v: u32,
        /// The token from `answer`, `resumed` or the latest `pong`.
        token: String,
    },
    /// A new offer on the running call (an ICE restart after a network change).
    Reoffer {
        /// The offer.
        sdp: String,
    },
    /// Heartbeat: answered by `pong`.
    Ping {},
    /// What the browser received on the call (sent every few seconds and before `hangup`).
    Stats(super::stats::WidgetStats),
    /// Call me back: the gateway calls this number over its trunk.
    Callback {
        /// Protocol version the widget speaks.
        v: u32,
        /// The visitor's phone number as typed.
        number: String,
        /// Page context, as in `call`.
        #[serde(default)]
        context: Map<String, Value>,
        /// Queue to enter after the customer confirms.
        #[serde(default)]
        queue: Option<String>,
    },
    /// A trickled ICE candidate (`candidate:...`), or `null` at the end of gathering.
    Ice {
        /// The candidate line.
        candidate: Option<String>,
    },
    /// Keypad digits for the IVR (sent as RFC 4733 by the browser too; this is the fallback).
    Dtmf {
        /// `0-9 * # A-D`.
        digits: String,
    },
    /// The visitor hung up. (A struct variant, so unexpected fields are refused like elsewhere.)
    Hangup {},
}

/// A message to the widget.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Sent once when the socket opens: what the widget needs before it makes its offer.
    Hello {
        /// Protocol version.
        v: u32,
        /// For `RTCConfiguration.iceServers` (STUN, and TURN with time-limited credentials).
        ice_servers: Vec<super::ice::IceServer>,
        /// Whether `callback` requests are served.
        callback: bool,
    },
    /// The WebRTC answer (to `call` and to `reoffer`).
    Answer {
        /// Protocol version.
        v: u32,
        /// The answer SDP.
        sdp: String,
        /// The call's id.
        call_id: u64,
        /// A token for `resume` if this socket drops.
        resume: String,
        /// How long the call waits for a resumed socket, seconds.
        resume_grace_secs: u64,
    },
    /// The call is back on this socket (its `state` follows).
    Resumed {
        /// The call's id.
        call_id: u64,
        /// A fresh token.
        resume: String,
    },
    /// Heartbeat answer; with a fresh resume token while the socket has a call.
    Pong {
        /// A fresh token.
        #[serde(skip_serializing_if = "Option::is_none")]
        resume: Option<String>,
    },
    /// Call progress.
    State {
        /// `ivr`, `queued`, `ringing`, `connected`, `on_hold`, `ended`.
        state: String,
        /// Position in the queue (queued only).
        #[serde(skip_serializing_if = "Option::is_none")]
        position: Option<usize>,
        /// Estimated wait in seconds (queued only).
        #[serde(skip_serializing_if = "Option::is_none")]
        estimated_wait_secs: Option<u64>,
        /// Why the call ended (ended only): `customer_hangup`, `agent_hangup`, `no_agents`, ...
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// The current menu's labelled choices (ivr only, when the menu has labels).
        #[serde(skip_serializing_if = "Option::is_none")]
        options: Option<Vec<MenuOption>>,
    },
    /// A callback's progress: `scheduled` (with `not_before`, and `reason` when retrying),
    /// `dialing`, `ringing`, `in_call`, `completed`, `unconfirmed`, `failed` (with `reason`),
    /// `cancelled`.
    Callback {
        /// The callback's id.
        id: String,
        /// Where it is.
        state: String,
        /// Why (retries and failures): `busy`, `no_answer`, `rejected`, `invalid_number`, ...
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// When it will be dialled (unix seconds), while scheduled.
        #[serde(skip_serializing_if = "Option::is_none")]
        not_before: Option<u64>,
    },
    /// The call to resume is held by another node of the cluster: open a socket at `url` and
    /// resume there (the same token).
    Moved {
        /// The node's widget socket URL (`wss://node-2.example.com/ws`).
        url: String,
    },
    /// Something went wrong with the last message or the call.
    Error {
        /// Stable machine-readable code.
        code: String,
        /// Human-readable explanation.
        message: String,
    },
}

/// A menu choice the widget shows as a button.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MenuOption {
    /// The key it stands for.
    pub digit: String,
    /// What the button says.
    pub label: String,
}

/// Why a widget message was refused; `code()` is stable and documented.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// Larger than [`MAX_MESSAGE_BYTES`].
    #[error("message larger than {MAX_MESSAGE_BYTES} bytes")]
    TooLarge,
    /// Not JSON, unknown `type`, missing or unexpected fields.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A `call` with a version we do not speak.
    #[error("protocol version {0} is not supported (this gateway speaks {VERSION})")]
    Version(u32),
    /// The context is too large or has too many fields.
    #[error(
        "context too large: at most {MAX_CONTEXT_FIELDS} fields and {MAX_CONTEXT_BYTES} bytes"
    )]
    ContextTooLarge,
    /// A context value that is an object or array (the context is flat).
    #[error("context field {0:?} must be a string, number or boolean")]
    ContextNotFlat(String),
    /// Digits other than `0-9 * # A-D`.
    #[error("invalid DTMF digits")]
    BadDigits,
}

impl ProtocolError {
    /// The stable code sent in an `error` message.
    pub fn code(&self) -> &'static str {
        match self {
            ProtocolError::TooLarge => "too_large",
            ProtocolError::Malformed(_) => "malformed",
            ProtocolError::Version(_) => "unsupported_version",
            ProtocolError::ContextTooLarge => "context_too_large",
            ProtocolError::ContextNotFlat(_) => "context_not_flat",
            ProtocolError::BadDigits => "bad_digits",
        }
    }

    /// The `error` message for the widget.
    pub fn to_message(&self) -> ServerMessage {
        ServerMessage::Error {
            code: self.code().into(),
            message: self.to_string(),
        }
    }
}

/// Parses and checks one text message from the widget.
pub fn parse(text: &str) -> Result<ClientMessage, ProtocolError> {
    if text.len() > MAX_MESSAGE_BYTES {
        return Err(ProtocolError::TooLarge);
    }
    let msg: ClientMessage =
        serde_json::from_str(text).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
    match &msg {
        ClientMessage::Call {
            v, context, lang, ..
        } => {
            check_version(*v)?;
            check_context(context)?;
            if !lang.as_deref().is_none_or(valid_lang) {
                return Err(ProtocolError::Malformed(
                    "lang is a language tag such as \"de\" or \"pt-BR\"".into(),
                ));
            }
        }
        ClientMessage::Callback { v, context, .. } => {
            check_version(*v)?;
            check_context(context)?;
        }
        ClientMessage::Resume { v, .. } => check_version(*v)?,
        ClientMessage::Stats(stats) => stats.check().map_err(ProtocolError::Malformed)?,
        ClientMessage::Dtmf { digits } if !valid_digits(digits) => {
            return Err(ProtocolError::BadDigits)
        }
        _ => {}
    }
    Ok(msg)
}

fn check_version(v: u32) -> Result<(), ProtocolError> {
    if v == VERSION {
        Ok(())
    } else {
        Err(ProtocolError::Version(v))
    }
}

/// A short language tag: letters, then optional `-` and letters or digits.
fn valid_lang(lang: &str) -> bool {
    let mut parts = lang.split('-');
    let primary = parts.next().unwrap_or_default();
    (2..=3).contains(&primary.len())
        && primary.chars().all(|c| c.is_ascii_alphabetic())
        && lang.len() <= 16
        && parts.all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// 1 to 32 keypad characters.
fn valid_digits(digits: &str) -> bool {
    !digits.is_empty()
        && digits.len() <= 32
        && digits
            .chars()
            .all(|c| crate::media::dtmf::digit_to_code(c).is_some())
}

fn check_context(context: &Map<String, Value>) -> Result<(), ProtocolError> {
    if context.len() > MAX_CONTEXT_FIELDS {
        return Err(ProtocolError::ContextTooLarge);
    }
    let size = serde_json::to_string(context)
        .map(|s| s.len())
        .unwrap_or(usize::MAX);
    if size > MAX_CONTEXT_BYTES {
        return Err(ProtocolError::ContextTooLarge);
    }
    for (k, v) in context {
        if matches!(v, Value::Object(_) | Value::Array(_)) {
            return Err(ProtocolError::ContextNotFlat(k.clone()));
        }
    }
    Ok(())
}

impl ServerMessage {
    /// The JSON text to send.
    pub fn to_text(&self) -> String {
        // Serialising these plain structs cannot fail (no maps with non-string keys, no floats NaN).
        serde_json::to_string(self)
            .unwrap_or_else(|_| "{\"type\":\"error\",\"code\":\"internal\"}".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_with_context_parses() {
        let m = parse(r#"{"type":"call","v":1,"sdp":"v=0","context":{"name":"Ann","crm_id":42,"vip":true},"queue":"support"}"#).unwrap();
        let ClientMessage::Call { context, queue, .. } = m else {
            panic!()
        };
        assert_eq!(context["name"], "Ann");
        assert_eq!(queue.as_deref(), Some("support"));
        assert_eq!(
            parse(r#"{"type":"hangup"}"#).unwrap(),
            ClientMessage::Hangup {}
        );
        assert_eq!(
            parse(r#"{"type":"dtmf","digits":"12#"}"#).unwrap(),
            ClientMessage::Dtmf {
                digits: "12#".into()
            }
        );
    }

    #[test]
    fn bad_messages_get_stable_codes() {
        let big_ctx = format!(
            r#"{{"type":"call","v":1,"sdp":"v=0","context":{{"notes":"{}"}}}}"#,
            "x".repeat(10 * 1024)
        );
        let many: String = (0..40)
            .map(|i| format!("\"f{i}\":1"))
            .collect::<Vec<_>>()
            .join(",");
        let many = format!(r#"{{"type":"call","v":1,"sdp":"v=0","context":{{{many}}}}}"#);
        let cases = [
            ("not json", "malformed".to_string()),
            (r#"{"type":"teleport"}"#, "malformed".into()),
            (r#"{"type":"hangup","extra":1}"#, "malformed".into()),
            (
                r#"{"type":"call","v":2,"sdp":""}"#,
                "unsupported_version".into(),
            ),
            (big_ctx.as_str(), "context_too_large".into()),
            (many.as_str(), "context_too_large".into()),
            (
                r#"{"type":"call","v":1,"sdp":"","context":{"cart":[1,2]}}"#,
                "context_not_flat".into(),
            ),
            (r#"{"type":"dtmf","digits":"12x"}"#, "bad_digits".into()),
        ];
        for (text, code) in cases {
            let err = parse(text).unwrap_err();
            assert_eq!(err.code(), code, "{text:.60}");
            let out = err.to_message().to_text();
            assert!(out.contains(&format!("\"code\":\"{code}\"")), "{out}");
        }
        assert_eq!(
            parse(&"x".repeat(MAX_MESSAGE_BYTES + 1)).unwrap_err(),
            ProtocolError::TooLarge
        );
    }

    #[test]
    fn resume_reoffer_ping_and_stats_parse_and_stats_are_bounded() {
        assert!(matches!(
            parse(r#"{"type":"resume","v":1,"token":"r1.1.2.x"}"#),
            Ok(ClientMessage::Resume { .. })
        ));
        assert_eq!(parse(r#"{"type":"ping"}"#).unwrap(), ClientMessage::Ping {});
        assert!(matches!(
            parse(r#"{"type":"reoffer","sdp":"v=0"}"#),
            Ok(ClientMessage::Reoffer { .. })
        ));
        let ok = r#"{"type":"stats","received":500,"lost":55,"jitter_ms":12.5,"rtt_ms":40,"warnings":["loss","rtt"]}"#;
        let ClientMessage::Stats(st) = parse(ok).unwrap() else {
            panic!()
        };
        assert!(
            (st.loss_percent() - 9.909).abs() < 0.01,
            "{}",
            st.loss_percent()
        );
        for bad in [
            r#"{"type":"stats","received":-1,"lost":0,"jitter_ms":1}"#,
            r#"{"type":"stats","received":2000000000,"lost":0,"jitter_ms":1}"#,
            r#"{"type":"stats","received":1,"lost":0,"jitter_ms":1e9}"#,
            r#"{"type":"stats","received":1,"lost":0,"jitter_ms":1,"rtt_ms":-3}"#,
            r#"{"type":"stats","received":1,"lost":0,"jitter_ms":1,"warnings":["loss","loss"]}"#,
            r#"{"type":"stats","received":1,"lost":0,"jitter_ms":1,"warnings":["fire"]}"#,
            r#"{"type":"stats","received":1,"lost":0,"jitter_ms":1,"mos":5}"#,
            r#"{"type":"stats","received":1}"#,
            r#"{"type":"resume","v":1}"#,
            r#"{"type":"call","v":1,"sdp":"","lang":"de\r\nX: 1"}"#,
            r#"{"type":"call","v":1,"sdp":"","lang":"deutsch-lang-xx"}"#,
        ] {
            assert_eq!(parse(bad).unwrap_err().code(), "malformed", "{bad}");
        }
        assert_eq!(
            parse(r#"{"type":"resume","v":3,"token":"x"}"#)
                .unwrap_err()
                .code(),
            "unsupported_version"
        );
        for lang in ["de", "pt-BR", "fr"] {
            let m = format!(r#"{{"type":"call","v":1,"sdp":"","lang":"{lang}"}}"#);
            assert!(parse(&m).is_ok(), "{lang}");
        }
    }

    #[test]
    fn server_messages_serialise_with_their_type() {
        let s = ServerMessage::State {
            state: "queued".into(),
            position: Some(2),
            estimated_wait_secs: Some(40),
            reason: None,
            options: None,
        };
        assert_eq!(
            s.to_text(),
            r#"{"type":"state","state":"queued","position":2,"estimated_wait_secs":40}"#
        );
    }
}
