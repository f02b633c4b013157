//! The `Replaces` a REFER's `Refer-To` carries for an attended transfer (RFC 3891, as desk
//! phones send it: `<sip:1002@gw?Replaces=abc%40host%3Bto-tag%3D1%3Bfrom-tag%3D2>`), sans-IO.

/// The dialog a `Replaces` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaces {
    /// Its Call-ID.
    pub call_id: String,
    /// `to-tag`.
    pub to_tag: String,
    /// `from-tag`.
    pub from_tag: String,
}

impl Replaces {
    /// True when it names the dialog `call_id` with these two tags (either way round: the
    /// tags are the replaced dialog's as its other end sees them).
    pub fn names(&self, call_id: &str, local_tag: &str, remote_tag: &str) -> bool {
        self.call_id == call_id
            && ((self.to_tag == local_tag && self.from_tag == remote_tag)
                || (self.to_tag == remote_tag && self.from_tag == local_tag))
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The `Replaces` header embedded in a `Refer-To` value, if any (and well formed).
pub fn from_refer_to(refer_to: &str) -> Option<Replaces> {
    let uri = refer_to.trim();
    let uri = match uri.find('<') {
        Some(s) => &uri[s + 1..uri[s..].find('>').map_or(uri.len(), |e| s + e)],
        None => uri,
    };
    let (_, headers) = uri.split_once('?')?;
    let value = headers.split('&').find_map(|h| {
        let (name, v) = h.split_once('=')?;
        name.eq_ignore_ascii_case("replaces").then_some(v)
    })?;
    let value = percent_decode(value)?;
    let mut parts = value.split(';').map(str::trim);
    let call_id = parts.next().filter(|c| !c.is_empty())?.to_string();
    let (mut to_tag, mut from_tag) = (None, None);
    for p in parts {
        match p.split_once('=') {
            Some((k, v)) if k.eq_ignore_ascii_case("to-tag") => to_tag = Some(v.to_string()),
            Some((k, v)) if k.eq_ignore_ascii_case("from-tag") => from_tag = Some(v.to_string()),
            _ => {}
        }
    }
    Some(Replaces {
        call_id,
        to_tag: to_tag.filter(|t| !t.is_empty())?,
        from_tag: from_tag.filter(|t| !t.is_empty())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_desk_phones_refer_to_names_the_consult_dialog() {
        let r = from_refer_to(
            "<sip:1002@192.0.2.1:5060?Replaces=a8f3%40192.0.2.9%3Bto-tag%3Dgw-77%3Bfrom-tag%3Dyl-12>",
        )
        .unwrap();
        assert_eq!(r.call_id, "a8f3@192.0.2.9");
        assert_eq!((r.to_tag.as_str(), r.from_tag.as_str()), ("gw-77", "yl-12"));
        assert!(r.names("a8f3@192.0.2.9", "gw-77", "yl-12"));
        assert!(r.names("a8f3@192.0.2.9", "yl-12", "gw-77"));
        assert!(!r.names("a8f3@192.0.2.9", "gw-77", "other"));
        let other_order = from_refer_to(
            "<sip:1002@gw?Require=replaces&Replaces=x%3Bfrom-tag%3D2%3Bto-tag%3D1;early-only>",
        );
        assert_eq!(
            other_order.map(|r| (r.to_tag, r.from_tag)),
            Some(("1".into(), "2".into()))
        );
    }

    #[test]
    fn blind_refers_and_broken_replaces_name_nothing() {
        for bad in [
            "<sip:1002@gw>",
            "sip:1002@gw",
            "<sip:1002@gw?Replaces=>",
            "<sip:1002@gw?Replaces=x%3Bto-tag%3D1>",
            "<sip:1002@gw?Replaces=x%ZZ%3Bto-tag%3D1%3Bfrom-tag%3D2>",
            "<sip:1002@gw?Replaces=%3Bto-tag%3D1%3Bfrom-tag%3D2>",
        ] {
            assert_eq!(from_refer_to(bad), None, "{bad}");
        }
    }
}
