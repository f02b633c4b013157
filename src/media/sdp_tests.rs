use super::*;

fn local() -> SocketAddr {
    "192.0.2.1:40000".parse().unwrap()
}

fn prefs() -> Vec<Format> {
    vec![Format::pcmu(), Format::pcma()]
}

const SIPP_OFFER: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 6000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n";

#[test]
fn answers_with_our_preferred_codec_keeping_offer_payload_types() {
    let mut s = SdpSession::new(42);
    let (answer, n) = s.answer(SIPP_OFFER, local(), &prefs(), None).unwrap();
    assert_eq!(n.codec, Format::pcmu());
    assert_eq!(n.dtmf.as_ref().map(|d| d.pt), Some(101));
    assert_eq!(n.remote, Some("127.0.0.1:6000".parse().unwrap()));
    assert_eq!(n.peer_direction, Direction::SendRecv);
    assert!(
        answer.contains("m=audio 40000 RTP/AVP 0 101\r\n"),
        "{answer}"
    );
    assert!(answer.contains("c=IN IP4 192.0.2.1\r\n"));
    assert!(answer.contains("a=sendrecv"));
    // The answer parses back to the same choice.
    let back = read_answer(&answer, &[Format::pcmu(), Format::telephone_event()]).unwrap();
    assert_eq!(back.codec.pt, 0);
    assert_eq!(back.remote, Some(local()));
}

#[test]
fn dynamic_telephone_event_type_is_kept_and_mismatched_rate_ignored() {
    let offer = "v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n\
m=audio 7000 RTP/AVP 0 126 96\r\na=rtpmap:126 telephone-event/8000\r\na=rtpmap:96 telephone-event/48000\r\na=ptime:30\r\n";
    let (_, n) = SdpSession::new(1)
        .answer(offer, local(), &prefs(), None)
        .unwrap();
    assert_eq!(n.dtmf.unwrap().pt, 126);
    assert_eq!(n.ptime_ms, 30);
}

#[test]
fn hold_and_unhold_in_both_forms() {
    let sendonly = SIPP_OFFER.replace("a=fmtp:101 0-15\r\n", "a=fmtp:101 0-15\r\na=sendonly\r\n");
    let mut s = SdpSession::new(7);
    let (answer, n) = s.answer(&sendonly, local(), &prefs(), None).unwrap();
    assert_eq!(n.peer_direction, Direction::SendOnly);
    assert!(n.peer_holds());
    assert!(answer.contains("a=recvonly"));
    let old_style = SIPP_OFFER.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0");
    let (_, n) = s.answer(&old_style, local(), &prefs(), None).unwrap();
    assert_eq!((n.remote, n.peer_direction), (None, Direction::SendOnly));
    assert!(n.peer_holds());
    let inactive = SIPP_OFFER.replace("a=fmtp:101 0-15\r\n", "a=fmtp:101 0-15\r\na=inactive\r\n");
    let (answer, n) = s.answer(&inactive, local(), &prefs(), None).unwrap();
    assert!(answer.contains("a=inactive"));
    assert!(n.peer_holds());
    let (_, n) = s.answer(SIPP_OFFER, local(), &prefs(), None).unwrap();
    assert!(!n.peer_holds(), "sendrecv is no hold");
}

#[test]
fn session_version_moves_only_when_our_sdp_changes() {
    let mut s = SdpSession::new(9);
    let (a1, _) = s.answer(SIPP_OFFER, local(), &prefs(), None).unwrap();
    let (a2, _) = s.answer(SIPP_OFFER, local(), &prefs(), None).unwrap();
    assert_eq!(a1, a2);
    let (a3, _) = s
        .answer(SIPP_OFFER, local(), &prefs(), Some(Direction::SendOnly))
        .unwrap();
    assert!(
        a1.contains("o=- 9 1 ") && a3.contains("o=- 9 2 "),
        "{a1}\n{a3}"
    );
}

#[test]
fn extra_streams_are_refused_with_port_zero_in_order() {
    let offer = "v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n\
m=video 5000 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\nm=audio 5002 RTP/SAVP 0\r\nm=audio 5004 RTP/AVP 0\r\n";
    let (answer, n) = SdpSession::new(1)
        .answer(offer, local(), &prefs(), None)
        .unwrap();
    let m: Vec<&str> = answer.lines().filter(|l| l.starts_with("m=")).collect();
    assert_eq!(
        m,
        vec![
            "m=video 0 RTP/AVP 96",
            "m=audio 0 RTP/SAVP 0",
            "m=audio 40000 RTP/AVP 0"
        ]
    );
    assert_eq!(n.remote.unwrap().port(), 5004);
}

#[test]
fn malformed_offers_get_clear_errors_never_a_panic() {
    let many = format!(
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\n{}",
        "m=audio 1 RTP/AVP 0\r\n".repeat(2000)
    );
    let no_common = SIPP_OFFER
        .replace("RTP/AVP 8 0 101", "RTP/AVP 18")
        .replace("a=rtpmap:8 PCMA/8000\r\n", "a=rtpmap:18 G729/8000\r\n");
    let cases: Vec<(&str, String, SdpError)> = vec![
        (
            "missing m-line",
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\n".into(),
            SdpError::NoAudio,
        ),
        ("no common codec", no_common, SdpError::NoCommonCodec),
        ("2000 m-lines", many, SdpError::TooManyMedia(2000)),
        (
            "too large",
            format!("v=0\r\n{}", "a=x\r\n".repeat(5000)),
            SdpError::TooLarge,
        ),
        (
            "no connection",
            SIPP_OFFER.replace("c=IN IP4 127.0.0.1\r\n", ""),
            SdpError::BadConnection,
        ),
        (
            "bad address",
            SIPP_OFFER.replace("c=IN IP4 127.0.0.1", "c=IN IP4 nowhere"),
            SdpError::BadConnection,
        ),
    ];
    for (name, text, want) in cases {
        let got = SdpSession::new(1)
            .answer(&text, local(), &prefs(), None)
            .unwrap_err();
        assert_eq!(got, want, "{name}");
    }
    for garbage in [
        "",
        "garbage",
        "\0\0\0",
        "v=0\r\nm=",
        "v=0\r\no=\r\n",
        "m=audio x RTP/AVP 0\r\n",
        "v=0\r\ns=-\r\nm=audio 99999999999 RTP/AVP 0\r\n",
    ] {
        let err = SdpSession::new(1)
            .answer(garbage, local(), &prefs(), None)
            .unwrap_err();
        assert!(
            matches!(
                err,
                SdpError::Unparseable(_) | SdpError::NoAudio | SdpError::BadConnection
            ),
            "{garbage:?}: {err:?}"
        );
        assert!(err.sip_status() == 400 || err.sip_status() == 488);
    }
}

/// Mutated offers (bytes flipped, lines dropped, duplicated or truncated) never panic the parser or
/// the negotiation: each is answered or refused with an error.
#[test]
fn mutated_offers_never_panic() {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rand = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let base: Vec<&str> = SIPP_OFFER.split("\r\n").collect();
    let alphabet = b" =:/0123456789abcmotvs\r\n\t-";
    for _ in 0..3000 {
        let mut lines: Vec<String> = base.iter().map(|s| s.to_string()).collect();
        for _ in 0..1 + rand(4) {
            let i = rand(lines.len());
            match rand(4) {
                0 => {
                    lines.remove(i);
                }
                1 => lines.insert(i, lines[i].clone()),
                2 => {
                    let mut b = lines[i].clone().into_bytes();
                    if !b.is_empty() {
                        let j = rand(b.len());
                        b[j] = alphabet[rand(alphabet.len())];
                    }
                    lines[i] = String::from_utf8_lossy(&b).into_owned();
                }
                _ => {
                    let cut = rand(lines[i].len() + 1);
                    lines[i].truncate(cut);
                }
            }
            if lines.is_empty() {
                break;
            }
        }
        let text = lines.join("\r\n");
        let result =
            std::panic::catch_unwind(|| SdpSession::new(1).answer(&text, local(), &prefs(), None));
        assert!(result.is_ok(), "panicked on {text:?}");
    }
}
