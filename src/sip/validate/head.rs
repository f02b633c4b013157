//! Splitting a message head into its start line and header lines (unfolding continuation lines,
//! RFC 3261 §7.3.1), normalising the LWS the grammar allows around separators (§25.1: `SLASH`,
//! `SEMI`, `EQUAL`, `COMMA`, `HCOLON` are all `SWS x SWS`), and writing the normalised head back
//! out for rsipstack, whose parser does not accept every legal spelling.

use super::syntax::is_token;
use std::borrow::Cow;

/// A header line split into name and value.
pub(super) struct HeaderLine<'a> {
    /// The name as written (trimmed), or [`MALFORMED`].
    pub name: &'a str,
    /// The value: unfolded, trimmed, LWS around separators removed for structured headers.
    pub value: Cow<'a, str>,
    /// The original line when it can be passed on unchanged (not folded, nothing normalised).
    pub raw: Option<&'a str>,
}

/// The parts of a message head we need to judge and answer it.
pub(super) struct Head<'a> {
    pub start: &'a str,
    pub headers: Vec<HeaderLine<'a>>,
}

impl<'a> Head<'a> {
    /// Every header line called `long` or its compact form `short`.
    pub fn all<'s>(
        &'s self,
        long: &'static str,
        short: Option<&'static str>,
    ) -> impl Iterator<Item = &'s HeaderLine<'a>> + 's {
        let short = short.unwrap_or("\0");
        self.headers.iter().filter(move |h| {
            h.name.eq_ignore_ascii_case(long) || h.name.eq_ignore_ascii_case(short)
        })
    }

    pub fn count(&self, long: &'static str, short: Option<&'static str>) -> usize {
        self.all(long, short).count()
    }

    pub fn one(&self, long: &'static str, short: Option<&'static str>) -> Option<&str> {
        self.all(long, short).next().map(|h| h.value.as_ref())
    }

    /// Whether the head must be rewritten before rsipstack sees it.
    pub fn changed(&self) -> bool {
        self.headers.iter().any(|h| h.raw.is_none())
    }

    /// The head as text (start line, header lines, blank line), unchanged lines kept byte for byte.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(512);
        out.push_str(self.start);
        out.push_str("\r\n");
        for h in &self.headers {
            match h.raw {
                Some(raw) => out.push_str(raw),
                None => {
                    out.push_str(h.name);
                    out.push_str(": ");
                    out.push_str(&h.value);
                }
            }
            out.push_str("\r\n");
        }
        out.push_str("\r\n");
        out
    }
}

/// Placeholder name for a header line that could not be split; never a valid token.
pub(super) const MALFORMED: &str = "\0malformed";

/// Splits the head into the start line and header lines, unfolding continuation lines.
pub(super) fn split_head(text: &str) -> Result<Head<'_>, String> {
    let mut lines = text.split("\r\n");
    let start = lines.next().unwrap_or_default();
    if start.is_empty() || start.chars().any(|c| c.is_control()) {
        return Err("bad start line".into());
    }
    if !start.starts_with("SIP/") && !start.split(' ').next().is_some_and(is_token) {
        return Err("start line is neither a request nor a status line".into());
    }
    let mut headers: Vec<HeaderLine<'_>> = Vec::new();
    for (i, line) in lines.enumerate() {
        if line.starts_with([' ', '\t']) {
            // Folded continuation of the previous header (RFC 3261 §7.3.1).
            match headers.last_mut() {
                Some(h) => {
                    let joined = format!("{} {}", h.value, line.trim());
                    h.value = Cow::Owned(joined.trim().to_string());
                    h.raw = None;
                }
                None => return Err("continuation line before any header".into()),
            }
            continue;
        }
        headers.push(split_line(line, i + 2));
    }
    for h in &mut headers {
        if let Some(v) = normalise(h.name, &h.value) {
            h.value = Cow::Owned(v);
            h.raw = None;
        }
    }
    Ok(Head { start, headers })
}

/// One header line: `name HCOLON value`; a line without a colon, with a bad name, or with a control
/// character in the value becomes a [`MALFORMED`] entry naming its line number.
fn split_line(line: &str, line_no: usize) -> HeaderLine<'_> {
    let split = line
        .split_once(':')
        .filter(|(n, v)| is_token(n.trim_end()) && controls_escaped(v));
    match split {
        Some((name, value)) => {
            let trimmed = name.trim_end();
            HeaderLine {
                name: trimmed,
                value: Cow::Borrowed(value.trim()),
                // `Name :` is legal (HCOLON) but rsipstack may not expect it: rewrite such lines.
                raw: (trimmed.len() == name.len()).then_some(line),
            }
        }
        None => HeaderLine {
            name: MALFORMED,
            value: Cow::Owned(format!("{line_no}")),
            raw: Some(line),
        },
    }
}

/// No control character but HTAB, except escaped in a quoted string: a `quoted-pair` may escape
/// any octet but CR and LF (RFC 3261 §25.1; RFC 4475 §3.1.1.2).
fn controls_escaped(value: &str) -> bool {
    let (mut quoted, mut escaped) = (false, false);
    for c in value.chars() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '\t' => {}
            c if c.is_control() => return false,
            _ => {}
        }
    }
    true
}

/// Header fields whose values are `name-addr`/`addr-spec` lists with parameters (RFC 3261 §20).
const ADDRESS_HEADERS: &[&str] = &[
    "from",
    "f",
    "to",
    "t",
    "contact",
    "m",
    "route",
    "record-route",
    "reply-to",
    "refer-to",
    "r",
    "referred-by",
    "b",
    "p-asserted-identity",
    "p-preferred-identity",
];

/// The value with separator LWS removed, or `None` when nothing changes or the header is free text.
fn normalise(name: &str, value: &str) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    let out = match lower.as_str() {
        "via" | "v" | "content-type" | "c" => squeeze(value, ";=,/"),
        "cseq" => value.split_whitespace().collect::<Vec<_>>().join(" "),
        n if ADDRESS_HEADERS.contains(&n) => squeeze(value, ";=,"),
        _ => return None,
    };
    (out != value).then_some(out)
}

/// Collapses LWS runs outside quoted strings and `<...>` to one SP, and drops it next to any of
/// `seps` (RFC 3261 §25.1: `SEMI = SWS ";" SWS` and friends).
fn squeeze(value: &str, seps: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let (mut quoted, mut escaped, mut angle) = (false, false, false);
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => quoted = false,
                _ => {}
            }
            continue;
        }
        if c.is_whitespace() && !angle {
            while chars.next_if(|n| n.is_whitespace()).is_some() {}
            let next_is_sep = chars.peek().is_none_or(|n| seps.contains(*n));
            let prev_is_sep = out.chars().last().is_none_or(|p| seps.contains(p));
            if !next_is_sep && !prev_is_sep {
                out.push(' ');
            }
            continue;
        }
        match c {
            '"' if !angle => quoted = true,
            '<' => angle = true,
            '>' => angle = false,
            _ => {}
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::squeeze;

    #[test]
    fn separators_lose_their_lws_but_quotes_and_uris_keep_theirs() {
        assert_eq!(
            squeeze(
                "SIP  / 2.0  / TCP   relay.example ; branch =  z9hG4bKa ,",
                ";=,/"
            ),
            "SIP/2.0/TCP relay.example;branch=z9hG4bKa,"
        );
        assert_eq!(
            squeeze("\"A  \\\" ; b\"   <sip:a@ h> ; tag = 1", ";=,"),
            "\"A  \\\" ; b\" <sip:a@ h>;tag=1"
        );
    }
}
