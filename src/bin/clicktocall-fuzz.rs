//! A mutation fuzzer for every parser that faces the network, on the stable toolchain (cargo-fuzz
//! needs nightly). Each target starts from seed inputs, mutates them (bit flips, byte and token
//! insertions and deletions, splices, truncation, repeats of interesting values) and runs the
//! target under `catch_unwind`; a panic is a crash, saved to `fuzz-crashes/<target>-<n>.bin`, and
//! the run exits 1.
//!
//! ```text
//! cargo run --release --bin clicktocall-fuzz -- --iterations 1000000          # the long run
//! cargo run --bin clicktocall-fuzz -- --iterations 20000 --seed 1             # CI's short run
//! cargo run --release --bin clicktocall-fuzz -- --target sdp --iterations 5000000
//! ```
//!
//! Targets: `sip` (our validator, then rsipstack's parser and the header accessors the dialog layer
//! uses), `sdp` (answering an offer and reading an answer), `rtp` (RTP view, RTCP reports, RFC 4733
//! events, SIP INFO DTMF bodies), `widget` (the WebSocket protocol, context checks, signatures,
//! resume tokens, stats), `rest` (every REST body parser), `wsframe` (the widget socket's frame
//! guard).

use clicktocall::media::sdp::{read_answer, Format, SdpSession};
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

/// xorshift64*: reproducible from `--seed`, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Tokens worth inserting: separators, numbers at edges, header names, SDP and JSON syntax.
const DICT: &[&[u8]] = &[
    b"\r\n",
    b"\r\n\r\n",
    b":",
    b";",
    b",",
    b"=",
    b"<",
    b">",
    b"\"",
    b"\\",
    b" ",
    b"\t",
    b"\0",
    b"0",
    b"-1",
    b"4294967296",
    b"99999999999999999999",
    b"65535",
    b"%",
    b"%00",
    b"\xff\xfe",
    b"Content-Length: ",
    b"Via: SIP/2.0/UDP ",
    b"CSeq: ",
    b"Call-ID: ",
    b"From: ",
    b"To: ",
    b";tag=",
    b";branch=z9hG4bK",
    b"sip:",
    b"sips:",
    b"tel:",
    b"@",
    b"[::1]",
    b"INVITE",
    b"SIP/2.0",
    b"m=audio ",
    b"a=rtpmap:",
    b"a=fmtp:",
    b"c=IN IP4 ",
    b"c=IN IP6 ",
    b"a=fingerprint:sha-256 ",
    b"a=candidate:",
    b"a=sendonly",
    b"RTP/AVP ",
    b"UDP/TLS/RTP/SAVPF ",
    b"telephone-event/8000",
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"type\":",
    b"\"call\"",
    b"\"context\":",
    b"null",
    b"true",
    b"1e999",
    b"\\u0000",
    b"\\ud800",
];

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>], input: &mut Vec<u8>) {
    let rounds = 1 + rng.below(6);
    for _ in 0..rounds {
        match rng.below(9) {
            0 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] ^= 1 << rng.below(8);
            }
            1 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] = rng.next() as u8;
            }
            2 => {
                let i = rng.below(input.len() + 1);
                let tok = DICT[rng.below(DICT.len())];
                input.splice(i..i, tok.iter().copied());
            }
            3 if !input.is_empty() => {
                let a = rng.below(input.len());
                let b = (a + 1 + rng.below(32)).min(input.len());
                input.drain(a..b);
            }
            4 if !input.is_empty() => {
                let a = rng.below(input.len());
                let b = (a + 1 + rng.below(64)).min(input.len());
                let chunk: Vec<u8> = input[a..b].to_vec();
                let at = rng.below(input.len() + 1);
                input.splice(at..at, chunk);
            }
            5 => {
                let other = &seeds[rng.below(seeds.len())];
                if !other.is_empty() {
                    let a = rng.below(other.len());
                    let b = (a + 1 + rng.below(128)).min(other.len());
                    let at = rng.below(input.len() + 1);
                    input.splice(at..at, other[a..b].iter().copied());
                }
            }
            6 => input.truncate(rng.below(input.len() + 1)),
            7 if !input.is_empty() => {
                // A line repeated many times (header floods, many m= lines).
                let a = rng.below(input.len());
                let b = (a + 1 + rng.below(40)).min(input.len());
                let chunk: Vec<u8> = input[a..b].to_vec();
                for _ in 0..rng.below(50) {
                    input.extend_from_slice(&chunk);
                }
            }
            _ => {
                let i = rng.below(input.len() + 1);
                input.insert(i, rng.next() as u8);
            }
        }
        if input.len() > 70_000 {
            input.truncate(70_000);
        }
    }
}

const INVITE: &str = "INVITE sip:+15550100@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5062;branch=z9hG4bK776asdhds;rport\r\nMax-Forwards: 70\r\nTo: <sip:+15550100@127.0.0.1>\r\nFrom: \"Gus Grey\" <sip:+15557654321@127.0.0.2>;tag=1928301774\r\nCall-ID: a84b4c76e66710@pc33\r\nCSeq: 314159 INVITE\r\nContact: <sip:gus@127.0.0.2:5062>\r\nUser-to-User: 7b7d;encoding=hex\r\nContent-Type: application/sdp\r\nContent-Length: 129\r\n\r\nv=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n";
const REGISTER: &str = "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:40000;branch=z9hG4bKreg1\r\nMax-Forwards: 70\r\nTo: <sip:1001@127.0.0.1>\r\nFrom: <sip:1001@127.0.0.1>;tag=r1\r\nCall-ID: reg-1\r\nCSeq: 2 REGISTER\r\nContact: <sip:1001@127.0.0.1:40000;transport=tcp>;expires=600\r\nAuthorization: Digest username=\"1001\", realm=\"clicktocall\", nonce=\"abc\", uri=\"sip:127.0.0.1\", response=\"0123456789abcdef0123456789abcdef\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"c\"\r\nContent-Length: 0\r\n\r\n";
const RESPONSE: &str = "SIP/2.0 183 Session Progress\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx\r\nTo: <sip:+15550102000@127.0.0.3>;tag=t1\r\nFrom: <sip:+15550100@127.0.0.3>;tag=f1\r\nCall-ID: cb1\r\nCSeq: 2 INVITE\r\nRequire: 100rel\r\nRSeq: 1\r\nWWW-Authenticate: Digest realm=\"carrier\", nonce=\"n\", qop=\"auth\"\r\nContent-Length: 0\r\n\r\n";
const CHROME_OFFER: &str = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\na=msid-semantic: WMS\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\na=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:126 telephone-event/8000\r\n";
const SIP_ANSWER: &str = "v=0\r\no=agent 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n";

/// A STUN binding request as a browser sends it to a shared port (USERNAME `ufA1:peer`, then
/// PRIORITY).
fn stun_seed() -> Vec<u8> {
    let mut m = vec![0x00, 0x01, 0x00, 0x18, 0x21, 0x12, 0xa4, 0x42];
    m.extend([7u8; 12]);
    m.extend([0x00, 0x06, 0x00, 0x09]);
    m.extend(b"ufA1:peer\0\0\0");
    m.extend([0x00, 0x24, 0x00, 0x04, 1, 2, 3, 4]);
    m
}

fn rtp_seeds() -> Vec<Vec<u8>> {
    let mut pcmu = vec![
        0x80, 0x00, 0x12, 0x34, 0, 0, 0x01, 0x40, 0xde, 0xad, 0xbe, 0xef,
    ];
    pcmu.extend([0xffu8; 160]);
    let dtmf = vec![
        0x80, 0xe5, 0, 7, 0, 0, 3, 0xc0, 0, 0, 0, 1, 5, 0x8a, 0x03, 0x20,
    ];
    let ext = vec![
        0x90, 0x00, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0xbe, 0xde, 0, 1, 0x10, 0xff, 0, 0, 1, 2,
    ];
    // RTCP SR with one report block, then an RR.
    let mut sr = vec![0x81, 200, 0, 12, 0, 0, 0, 1];
    sr.extend([0u8; 20]);
    sr.extend([
        0, 0, 0, 2, 0x10, 0, 0, 5, 0, 0, 0x12, 0x34, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    let rr = vec![0x80, 201, 0, 1, 0, 0, 0, 3];
    vec![pcmu, dtmf, ext, sr, rr, stun_seed()]
}

const WIDGET: &[&str] = &[
    r#"{"type":"call","v":1,"sdp":"v=0\r\n","context":{"name":"Ann Lee","crm_id":4711,"vip":true},"queue":"support","skill":"fr"}"#,
    r#"{"type":"callback","v":1,"number":"+1 (555) 010-2000","context":{"page":"/cart","c2c_exp":1800000000,"c2c_sig":"00ff"}}"#,
    r#"{"type":"dtmf","digits":"12*#"}"#,
    r#"{"type":"ice","candidate":"candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host"}"#,
    r#"{"type":"ice","candidate":null}"#,
    r#"{"type":"hangup"}"#,
    r#"{"type":"resume","v":1,"token":"4097.1800000000.acme.00ff00ff"}"#,
    r#"{"type":"stats","received":900,"lost":2,"jitter_ms":4.5,"rtt_ms":3.0}"#,
    r#"{"type":"reoffer","sdp":"v=0\r\n"}"#,
    r#"{"type":"ping"}"#,
];

const REST: &[&str] = &[
    r#"{"agent":"1002"}"#,
    r#"{"queue":"sales"}"#,
    r#"{"prompt":"goodbye"}"#,
    r#"{"action":"pause"}"#,
    r#"{"supervisor":"9001","mode":"whisper"}"#,
    "complete",
    "records:read",
];

/// Client frames: small, 16-bit and 64-bit lengths, masked and not, a close.
fn wsframe_seeds() -> Vec<Vec<u8>> {
    let mut small = vec![2u8, 5, 0x81, 0x85, 1, 2, 3, 4];
    small.extend_from_slice(b"hello");
    let mut mid = vec![3u8, 9, 0x82, 0xfe, 0x01, 0x00, 9, 9, 9, 9];
    mid.extend(std::iter::repeat_n(0x55, 256));
    let mut big = vec![1u8, 200, 0x81, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4];
    big.extend(std::iter::repeat_n(b'x', 300));
    big.extend_from_slice(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]);
    vec![small, mid, big]
}

type Target = fn(&[u8]);

static LAST_PANIC: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

fn sip(data: &[u8]) {
    use clicktocall::sip::validate::{check, Verdict};
    let kept: std::borrow::Cow<'_, [u8]> = match check(data, 65_535, "clicktocall") {
        Verdict::Accept { len } => data[..len].into(),
        Verdict::Normalised { bytes } => bytes.into(),
        // What the guard would answer must itself be a message a stack can parse.
        Verdict::Reply { response, .. } => {
            let _ = rsipstack::rsip::SipMessage::try_from(response.as_slice());
            return;
        }
        Verdict::Drop { .. } => return,
    };
    // Accepted: what the dialog layer reads of it must not panic either.
    if let Ok(msg) = rsipstack::rsip::SipMessage::try_from(kept.as_ref()) {
        use rsipstack::rsip::prelude::HeadersExt;
        use rsipstack::sip::ToTypedHeader;
        let _ = msg.call_id_header().map(|h| h.to_string());
        let _ = msg.from_header().map(|h| h.typed());
        let _ = msg.to_header().map(|h| h.typed());
        let _ = msg.cseq_header().map(|h| h.typed());
        let _ = msg.via_header().map(|h| h.typed());
        if let rsipstack::rsip::SipMessage::Request(r) = &msg {
            let _ = r.contact_header().map(|h| h.typed());
            let body = String::from_utf8_lossy(&r.body);
            let _ = clicktocall::media::dtmf::parse_info_body("application/dtmf-relay", &body);
        }
    }
}

fn sdp(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let local: SocketAddr = "127.0.0.1:20000".parse().unwrap();
    let prefs = [Format::pcmu(), Format::pcma()];
    let mut s = SdpSession::new(1);
    if let Ok((answer, _)) = s.answer(&text, local, &prefs, None) {
        // Our answer to anything must be something we can read back.
        let _ = read_answer(&answer, &prefs);
    }
    let _ = read_answer(&text, &prefs);
}

fn rtp(data: &[u8]) {
    if let Ok(p) = clicktocall::media::rtp::RtpView::parse(data) {
        let _ = clicktocall::media::dtmf::DtmfEvent::parse(p.payload);
    }
    let _ = clicktocall::media::rtcp::parse(data);
    let _ = clicktocall::media::dtmf::DtmfEvent::parse(data);
    CALL.with(|c| c.borrow_mut().feed(data));
    // A shared browser port's demultiplexer, from one of a few addresses in turn.
    DEMUX.with(|d| {
        let mut d = d.borrow_mut();
        let port = 5000 + u16::from(data.first().copied().unwrap_or(0) % 8);
        let _ = d.route(std::net::SocketAddr::from(([127, 0, 0, 1], port)), data);
    });
}

thread_local! {
    static DEMUX: std::cell::RefCell<clicktocall::media::demux::SharedDemux<u8>> = {
        let mut d = clicktocall::media::demux::SharedDemux::default();
        d.set_ufrag(1, "ufA1");
        d.set_ufrag(2, "ufB2");
        std::cell::RefCell::new(d)
    };
}

/// A three-party call's media core (PCMU, PCMA, PCMU legs, everybody hearing everybody, so the
/// relay, transcode and mix paths all run) that every RTP input is also fed to, from each peer's
/// address in turn, with simulated time moving 7 ms per input.
struct Conference {
    media: clicktocall::media::call_media::CallMedia,
    now: std::time::Instant,
    n: u32,
}

thread_local! {
    static CALL: std::cell::RefCell<Conference> = std::cell::RefCell::new(Conference::new());
}

impl Conference {
    fn new() -> Self {
        use clicktocall::media::leg::NewLeg;
        use clicktocall::media::routes::LegId;
        use clicktocall::media::sdp::{Direction, Format, Negotiated};
        let now = std::time::Instant::now();
        let mut media = clicktocall::media::call_media::CallMedia::new(Default::default());
        for i in 0..3u16 {
            let n = Negotiated {
                remote: Some(std::net::SocketAddr::from(([10, 0, 0, 9], 6000 + 2 * i))),
                codec: if i == 1 {
                    Format::pcma()
                } else {
                    Format::pcmu()
                },
                dtmf: Some(Format::telephone_event()),
                ptime_ms: 20,
                peer_direction: Direction::SendRecv,
            };
            media.add_leg(now, LegId(u32::from(i)), NewLeg::Rtp(n), u32::from(i));
        }
        for a in 0..3 {
            for b in 0..3 {
                media.set_route(now, LegId(a), LegId(b), Some(1.0));
            }
        }
        Conference { media, now, n: 0 }
    }

    fn feed(&mut self, data: &[u8]) {
        use clicktocall::media::call_media::MediaOutput;
        use clicktocall::media::routes::LegId;
        let leg = self.n % 3;
        self.n = self.n.wrapping_add(1);
        self.now += std::time::Duration::from_millis(7);
        let from = std::net::SocketAddr::from(([10, 0, 0, 9], 6000 + 2 * leg as u16));
        let local = std::net::SocketAddr::from(([10, 0, 0, 1], 30000));
        self.media
            .handle_datagram(self.now, LegId(leg), from, local, data);
        self.media.handle_rtcp(self.now, LegId(leg), from, data);
        if self.n.is_multiple_of(97) {
            let d = ['5', '#', 'x', 'A'][self.n as usize / 97 % 4];
            let len = std::time::Duration::from_millis(u64::from(self.n % 300));
            self.media.handle_info_digit(self.now, LegId(leg), d, len);
        }
        self.media.handle_timeout(self.now);
        while !matches!(self.media.poll_output(), MediaOutput::Timeout(_)) {}
    }
}

fn widget(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(clicktocall::widget::protocol::ClientMessage::Call { mut context, .. }) =
        clicktocall::widget::protocol::parse(&text)
    {
        let _ = clicktocall::widget::signing::verify(&mut context, Some("secret"), 1_700_000_000);
        let _ = clicktocall::widget::context::sanitize(&serde_json::Value::Object(context));
    }
    let plan = clicktocall::callback::number::NumberPlan {
        country_code: "1".into(),
        national_prefix: "1".into(),
        international_prefix: "011".into(),
    };
    let _ = clicktocall::callback::number::normalize(&text, &plan);
}

/// Every REST body parser (and the consult action and scope names) on the same text.
fn rest(data: &[u8]) {
    use clicktocall::http::bodies;
    let text = String::from_utf8_lossy(data);
    let _ = bodies::transfer(&text);
    let _ = bodies::add_party(&text);
    let _ = bodies::play(&text);
    let _ = bodies::recording(&text);
    let _ = bodies::consult(&text);
    let _ = bodies::supervise(&text, data.len().is_multiple_of(2));
    let _ = bodies::consult_action(&text);
    let _ = clicktocall::http::keyring::Scope::parse(&text);
}

/// The widget socket's frame guard over a byte stream cut at input-chosen points: every byte is
/// passed or dropped exactly once, never more than was given.
fn wsframe(data: &[u8]) {
    use clicktocall::http::ws_transport::{FrameLimit, Step};
    let limit = u64::from(data.first().copied().unwrap_or(0)) * 40;
    let mut l = FrameLimit::new(limit);
    let (mut fed, mut at, mut spent) = (0usize, 0usize, 0usize);
    let mut chunk = 1 + data.get(1).copied().unwrap_or(7) as usize;
    loop {
        match l.next(&data[at..fed]) {
            Step::Pass(k) | Step::Drop(k) => {
                assert!(at + k <= fed, "consumed more than fed");
                at += k;
                spent += k;
            }
            Step::Oversize => {}
            Step::More if fed < data.len() => {
                fed = (fed + chunk).min(data.len());
                chunk = chunk % 13 + 1;
            }
            Step::More => break,
        }
    }
    assert_eq!(spent, at);
}

fn main() {
    let mut iterations: u64 = 100_000;
    let mut seed: u64 = 0x5eed_c2c0;
    let mut only: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--iterations" => {
                iterations = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(iterations)
            }
            "--seed" => seed = args.next().and_then(|v| v.parse().ok()).unwrap_or(seed),
            "--target" => only = args.next(),
            other => {
                eprintln!("unknown argument {other:?}; see the file header for usage");
                std::process::exit(2);
            }
        }
    }
    let targets: Vec<(&str, Target, Vec<Vec<u8>>)> = vec![
        (
            "sip",
            sip,
            [INVITE, REGISTER, RESPONSE]
                .iter()
                .map(|s| s.as_bytes().to_vec())
                .collect(),
        ),
        (
            "sdp",
            sdp,
            [CHROME_OFFER, SIP_ANSWER]
                .iter()
                .map(|s| s.as_bytes().to_vec())
                .collect(),
        ),
        ("rtp", rtp, rtp_seeds()),
        (
            "widget",
            widget,
            WIDGET.iter().map(|s| s.as_bytes().to_vec()).collect(),
        ),
        (
            "rest",
            rest,
            REST.iter().map(|s| s.as_bytes().to_vec()).collect(),
        ),
        ("wsframe", wsframe, wsframe_seeds()),
    ];
    // Panics are the finding: keep the default hook quiet and report them ourselves.
    std::panic::set_hook(Box::new(|info| {
        *LAST_PANIC.lock().unwrap_or_else(|p| p.into_inner()) = Some(info.to_string());
    }));
    let mut crashes = 0;
    for (name, target, seeds) in targets {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let mut rng = Rng(seed ^ name.len() as u64 ^ 0x9e37_79b9_7f4a_7c15);
        let start = Instant::now();
        let mut input = Vec::new();
        for i in 0..iterations {
            // Mostly mutate the last input further; restart from a seed now and then.
            if i % 16 == 0 || input.is_empty() {
                input = seeds[rng.below(seeds.len())].clone();
            }
            mutate(&mut rng, &seeds, &mut input);
            if catch_unwind(AssertUnwindSafe(|| target(&input))).is_err() {
                crashes += 1;
                std::fs::create_dir_all("fuzz-crashes").ok();
                let path = format!("fuzz-crashes/{name}-{i}.bin");
                std::fs::write(&path, &input).ok();
                if crashes <= 5 {
                    let why = LAST_PANIC.lock().unwrap_or_else(|p| p.into_inner()).take();
                    eprintln!(
                        "{name}: CRASH at iteration {i}; input saved to {path}: {}",
                        why.unwrap_or_default()
                    );
                }
                input.clear();
            }
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{name:7} {iterations} executions in {secs:.1} s ({:.0}/s), {crashes} crashes so far",
            iterations as f64 / secs.max(1e-9)
        );
    }
    if crashes > 0 {
        std::process::exit(1);
    }
}
