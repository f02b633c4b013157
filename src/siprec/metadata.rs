//! Recording metadata (RFC 7865), sans-IO: who is in the recorded call, which stream is whose,
//! and since when, as the `application/rs-metadata+xml` the recorder reads. Stream 1 (`a=label:1`)
//! is what the customer says; stream 2 (`a=label:2`) is the mix of every agent. The customer's
//! participant carries the page's context (name, CRM id, page...) as extension data in our own
//! namespace, which RFC 7865 §6.2 lets any element carry. Every document is `complete`: a party who
//! left keeps its entry with a `disassociate-time`, so the recorder's view is never partial.

use ring::digest::{digest, SHA256};
use std::fmt::Write as _;

/// The label of the customer's stream in the SDP and the metadata.
pub const CUSTOMER_LABEL: &str = "1";
/// The label of the agents' stream.
pub const AGENTS_LABEL: &str = "2";
/// Our namespace for the customer's context.
pub const CONTEXT_NS: &str = "urn:x-clicktocall:context:1";

/// A participant's side of the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The customer (sends on stream 1).
    Customer,
    /// An agent (sends on stream 2, the agents' mix).
    Agent,
}

/// One participant, present or past.
#[derive(Debug, Clone, PartialEq)]
pub struct Participant {
    /// Our key for it: `customer`, or the agent's id.
    pub key: String,
    /// Its address of record (`sip:1001@gateway`).
    pub aor: String,
    /// Display name, when known.
    pub name: Option<String>,
    /// Which side it is on.
    pub side: Side,
    /// The page's context (the customer's only).
    pub context: Vec<(String, String)>,
    /// Joined the recording (unix ms).
    pub joined_ms: i64,
    /// Left it (unix ms), if it did.
    pub left_ms: Option<i64>,
}

/// The metadata of one recording session.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    /// The call's id (the seed of every element id, and named in the session's extension).
    pub call: String,
    /// When the recording started (unix ms).
    pub started_ms: i64,
    /// Everybody who was in it, in order of joining.
    pub participants: Vec<Participant>,
}

impl Metadata {
    /// A recording of `call` started at `now_ms` with its customer.
    pub fn new(call: &str, now_ms: i64, customer: Participant) -> Self {
        Metadata {
            call: call.into(),
            started_ms: now_ms,
            participants: vec![customer],
        }
    }

    /// The agents in the call now are `agents` (id, aor, name): newcomers join, those missing
    /// leave (at `now_ms`). True when anything changed (the recorder should hear of it).
    pub fn set_agents(&mut self, now_ms: i64, agents: &[(String, String, Option<String>)]) -> bool {
        let mut changed = false;
        for p in &mut self.participants {
            let present = agents.iter().any(|(id, ..)| *id == p.key);
            if p.side == Side::Agent && p.left_ms.is_none() && !present {
                p.left_ms = Some(now_ms);
                changed = true;
            }
        }
        for (id, aor, name) in agents {
            let here = self
                .participants
                .iter()
                .any(|p| p.side == Side::Agent && p.key == *id && p.left_ms.is_none());
            if !here {
                self.participants.push(Participant {
                    key: id.clone(),
                    aor: aor.clone(),
                    name: name.clone(),
                    side: Side::Agent,
                    context: Vec::new(),
                    joined_ms: now_ms,
                    left_ms: None,
                });
                changed = true;
            }
        }
        changed
    }

    /// The agents in the recording now (ids).
    pub fn agents(&self) -> Vec<&str> {
        self.participants
            .iter()
            .filter(|p| p.side == Side::Agent && p.left_ms.is_none())
            .map(|p| p.key.as_str())
            .collect()
    }

    /// The XML document (RFC 7865 §6).
    pub fn xml(&self) -> String {
        let session = self.id("session");
        let stream = |label: &str| self.id(&format!("stream:{label}"));
        let (s1, s2) = (stream(CUSTOMER_LABEL), stream(AGENTS_LABEL));
        let mut x = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\
             <recording xmlns=\"urn:ietf:params:xml:ns:recording:1\">\r\n\
             <datamode>complete</datamode>\r\n",
        );
        let _ = write!(
            x,
            "<session session_id=\"{session}\"><ctc:call xmlns:ctc=\"{CONTEXT_NS}\" id=\"{}\"/></session>\r\n",
            escape(&self.call)
        );
        for (i, p) in self.participants.iter().enumerate() {
            let pid = self.id(&format!("participant:{i}:{}", p.key));
            let _ = write!(
                x,
                "<participant participant_id=\"{pid}\"><nameID aor=\"{}\">",
                escape(&p.aor)
            );
            if let Some(n) = &p.name {
                let _ = write!(x, "<name>{}</name>", escape(n));
            }
            x.push_str("</nameID>");
            if !p.context.is_empty() {
                let _ = write!(x, "<ctc:context xmlns:ctc=\"{CONTEXT_NS}\">");
                for (k, v) in &p.context {
                    let _ = write!(
                        x,
                        "<ctc:item name=\"{}\">{}</ctc:item>",
                        escape(k),
                        escape(v)
                    );
                }
                x.push_str("</ctc:context>");
            }
            x.push_str("</participant>\r\n");
        }
        for (id, label) in [(&s1, CUSTOMER_LABEL), (&s2, AGENTS_LABEL)] {
            let _ = write!(
                x,
                "<stream stream_id=\"{id}\" session_id=\"{session}\"><label>{label}</label></stream>\r\n"
            );
        }
        let _ = write!(
            x,
            "<sessionrecordingassoc session_id=\"{session}\"><associate-time>{}</associate-time></sessionrecordingassoc>\r\n",
            iso8601(self.started_ms)
        );
        for (i, p) in self.participants.iter().enumerate() {
            let pid = self.id(&format!("participant:{i}:{}", p.key));
            let _ = write!(
                x,
                "<participantsessionassoc participant_id=\"{pid}\" session_id=\"{session}\"><associate-time>{}</associate-time>",
                iso8601(p.joined_ms)
            );
            if let Some(l) = p.left_ms {
                let _ = write!(x, "<disassociate-time>{}</disassociate-time>", iso8601(l));
            }
            x.push_str("</participantsessionassoc>\r\n");
            let (send, recv) = match p.side {
                Side::Customer => (&s1, &s2),
                Side::Agent => (&s2, &s1),
            };
            let _ = write!(
                x,
                "<participantstreamassoc participant_id=\"{pid}\"><send>{send}</send><recv>{recv}</recv></participantstreamassoc>\r\n"
            );
        }
        x.push_str("</recording>\r\n");
        x
    }

    /// An element id: a version-8 (name-based, RFC 9562) UUID from the call and `what`, base64
    /// (RFC 7865 §6.9: ids are base64-encoded UUIDs). The same element keeps its id in updates.
    fn id(&self, what: &str) -> String {
        use base64::Engine as _;
        let h = digest(
            &SHA256,
            format!("clicktocall\0{}\0{what}", self.call).as_bytes(),
        );
        let mut u = [0u8; 16];
        u.copy_from_slice(&h.as_ref()[..16]);
        u[6] = (u[6] & 0x0f) | 0x80;
        u[8] = (u[8] & 0x3f) | 0x80;
        base64::engine::general_purpose::STANDARD.encode(u)
    }
}

/// XML text and attribute escaping; control characters (not allowed in XML 1.0) are dropped.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// Unix milliseconds as an RFC 3339 UTC date-time (`2026-11-29T23:40:00.000Z`).
pub fn iso8601(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer() -> Participant {
        Participant {
            key: "customer".into(),
            aor: "sip:+15557654321@gw.example".into(),
            name: Some("Gus <Grey> & Co".into()),
            side: Side::Customer,
            context: vec![("crm_id".into(), "42\"x".into())],
            joined_ms: 0,
            left_ms: None,
        }
    }

    fn agent(id: &str) -> (String, String, Option<String>) {
        (id.into(), format!("sip:{id}@gw.example"), None)
    }

    #[test]
    fn dates_are_utc_rfc3339() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(iso8601(1_796_003_999_999), "2026-11-30T01:59:59.999Z");
    }

    #[test]
    fn the_document_names_the_streams_the_parties_and_the_context() {
        let mut m = Metadata::new("1-7", 1000, customer());
        assert!(m.set_agents(2000, &[agent("1001")]));
        let x = m.xml();
        assert!(x.contains("<recording xmlns=\"urn:ietf:params:xml:ns:recording:1\">"));
        assert!(x.contains("<datamode>complete</datamode>"));
        assert_eq!(x.matches("<participant ").count(), 2);
        assert!(x.contains("<label>1</label>") && x.contains("<label>2</label>"));
        // Escaped, never raw.
        assert!(x.contains("<name>Gus &lt;Grey&gt; &amp; Co</name>"), "{x}");
        assert!(
            x.contains("<ctc:item name=\"crm_id\">42&quot;x</ctc:item>"),
            "{x}"
        );
        // The customer sends stream 1 and hears stream 2; the agent the other way round.
        let stream1 = m.id("stream:1");
        let stream2 = m.id("stream:2");
        assert!(x.contains(&format!("<send>{stream1}</send><recv>{stream2}</recv>")));
        assert!(x.contains(&format!("<send>{stream2}</send><recv>{stream1}</recv>")));
        // Ids are base64 of 16 bytes, stable for the same element.
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&stream1)
            .unwrap();
        assert_eq!(raw.len(), 16);
        assert_eq!(m.xml(), x);
    }

    #[test]
    fn agents_join_and_leave_and_the_document_keeps_who_left() {
        let mut m = Metadata::new("1-7", 0, customer());
        assert!(m.set_agents(10, &[agent("1001")]));
        assert!(!m.set_agents(20, &[agent("1001")]), "nothing changed");
        assert!(
            m.set_agents(30, &[agent("1002")]),
            "a transfer: one left, one came"
        );
        assert_eq!(m.agents(), vec!["1002"]);
        let x = m.xml();
        assert_eq!(x.matches("<participant ").count(), 3);
        assert_eq!(x.matches("<disassociate-time>").count(), 1);
        // Back again: a new entry, the old one stays closed.
        assert!(m.set_agents(40, &[agent("1002"), agent("1001")]));
        assert_eq!(m.agents(), vec!["1002", "1001"]);
        assert_eq!(m.xml().matches("<participant ").count(), 4);
    }
}
