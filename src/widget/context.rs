//! The customer's context as SIP headers on the INVITE to the agent: one `X-` header per mapped field,
//! the whole context as RFC 7433 `User-to-User` (hex), a `Call-Info` screen-pop URL, and a From
//! display name from a template. Every value is sanitised first: no CR/LF or other control
//! characters reach a header (header injection), values are length-capped.

use serde_json::{Map, Value};

/// Longest value put into one header.
pub const MAX_HEADER_VALUE: usize = 256;

/// Context field → header name (e.g. `name` → `X-Customer-Name`).
#[derive(Debug, Clone, Default)]
pub struct ContextMapping {
    /// (context field, header name) pairs.
    pub headers: Vec<(String, String)>,
    /// `Call-Info` URL template with `{field}` placeholders (URL-encoded values).
    pub screen_pop: Option<String>,
    /// From display-name template with `{field}` placeholders.
    pub display_name: Option<String>,
}

/// A value as text, with control characters removed and length capped (on a char boundary).
pub fn sanitize(v: &Value) -> String {
    let raw = match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let clean: String = raw.chars().filter(|c| !c.is_control()).collect();
    let clean = clean.trim();
    match clean.char_indices().nth(MAX_HEADER_VALUE) {
        Some((i, _)) => clean[..i].to_string(),
        None => clean.to_string(),
    }
}

/// True for a valid SIP header name (RFC 3261 token).
fn is_header_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}

fn fill(template: &str, context: &Map<String, Value>, encode: bool) -> String {
    let mut out = template.to_string();
    for (k, v) in context {
        let value = sanitize(v);
        let value = if encode {
            url_encode(&value)
        } else {
            value.replace('"', "'")
        };
        out = out.replace(&format!("{{{k}}}"), &value);
    }
    out
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The headers (name, value) to add to the agent's INVITE, and the From display name.
pub fn headers_for(
    context: &Map<String, Value>,
    mapping: &ContextMapping,
) -> (Vec<(String, String)>, Option<String>) {
    let mut out = Vec::new();
    for (field, header) in &mapping.headers {
        if !is_header_name(header) {
            continue;
        }
        if let Some(v) = context.get(field) {
            let value = sanitize(v);
            if !value.is_empty() {
                out.push((header.clone(), value));
            }
        }
    }
    if !context.is_empty() {
        // RFC 7433: the whole context, hex-encoded, so nothing in it can break the header.
        let json = serde_json::to_string(context).unwrap_or_default();
        let hex: String = json.bytes().map(|b| format!("{b:02x}")).collect();
        out.push(("User-to-User".into(), format!("{hex};encoding=hex")));
    }
    if let Some(t) = &mapping.screen_pop {
        out.push((
            "Call-Info".into(),
            format!("<{}>;purpose=info", fill(t, context, true)),
        ));
    }
    let display = mapping
        .display_name
        .as_ref()
        .map(|t| fill(t, context, false))
        .filter(|d| !d.trim().is_empty());
    (out, display)
}

/// Decodes a `User-to-User` value produced by [`headers_for`] back to the context (for tests and
/// for agents' tools).
pub fn decode_user_to_user(value: &str) -> Option<Map<String, Value>> {
    let hex = value.split(';').next()?.trim();
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    serde_json::from_slice(&bytes?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping() -> ContextMapping {
        ContextMapping {
            headers: vec![
                ("name".into(), "X-Customer-Name".into()),
                ("crm_id".into(), "X-CRM-Id".into()),
                ("x".into(), "Bad Header".into()),
            ],
            screen_pop: Some("https://crm.example.com/customers/{crm_id}?from={page}".into()),
            display_name: Some("{name} (web)".into()),
        }
    }

    #[test]
    fn context_becomes_headers_user_to_user_and_call_info() {
        let ctx: Map<String, Value> =
            serde_json::from_str(r#"{"name":"Ann Lee","crm_id":4711,"page":"/cart?x=1","x":"y"}"#)
                .unwrap();
        let (h, display) = headers_for(&ctx, &mapping());
        let get = |n: &str| h.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        assert_eq!(get("X-Customer-Name").as_deref(), Some("Ann Lee"));
        assert_eq!(get("X-CRM-Id").as_deref(), Some("4711"));
        assert!(
            get("Bad Header").is_none(),
            "an invalid header name is never emitted"
        );
        assert_eq!(
            get("Call-Info").as_deref(),
            Some("<https://crm.example.com/customers/4711?from=%2Fcart%3Fx%3D1>;purpose=info")
        );
        assert_eq!(display.as_deref(), Some("Ann Lee (web)"));
        let uui = get("User-to-User").unwrap();
        assert!(uui.ends_with(";encoding=hex"));
        assert_eq!(decode_user_to_user(&uui).unwrap(), ctx);
    }

    #[test]
    fn header_injection_is_impossible_and_values_are_capped() {
        let ctx: Map<String, Value> = serde_json::from_str(&format!(
            r#"{{"name":"Eve\r\nEvil: 1","crm_id":"{}"}}"#,
            "9".repeat(1000)
        ))
        .unwrap();
        let (h, display) = headers_for(&ctx, &mapping());
        for (name, value) in &h {
            assert!(
                !value.contains('\r') && !value.contains('\n'),
                "{name}: {value:?}"
            );
            assert_ne!(name, "Evil");
        }
        let name = &h.iter().find(|(k, _)| k == "X-Customer-Name").unwrap().1;
        assert_eq!(
            name, "EveEvil: 1",
            "CR/LF removed: the text stays inside one header value"
        );
        assert_eq!(
            h.iter().find(|(k, _)| k == "X-CRM-Id").unwrap().1.len(),
            MAX_HEADER_VALUE
        );
        assert!(!display.unwrap().contains('\n'));
        // What a SIP message built from these headers looks like: no line starts with "Evil".
        let message: String = h.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
        assert!(!message.lines().any(|l| l.starts_with("Evil")), "{message}");
    }
}
