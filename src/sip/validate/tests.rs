use super::*;

const SERVER: &str = "clicktocall-test";

fn invite(extra: &str, body: &str) -> Vec<u8> {
    format!(
        "INVITE sip:support@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1;rport\r\n\
         From: \"Ann, Smith\" <sip:ann@127.0.0.1>;tag=a1\r\nTo: <sip:support@127.0.0.1>\r\n\
         Call-ID: c1@127.0.0.1\r\nCSeq: 10 INVITE\r\nMax-Forwards: 70\r\n{extra}\r\n{body}"
    )
    .into_bytes()
}

#[test]
fn well_formed_requests_are_accepted_whole() {
    let body = "v=0\r\n";
    let msg = invite(
        &format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n",
            body.len()
        ),
        body,
    );
    assert_eq!(
        check(&msg, 8192, SERVER),
        Verdict::Accept { len: msg.len() }
    );
}

#[test]
fn compact_forms_folding_and_multiple_vias_are_accepted() {
    let msg = b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nv: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKa, SIP/2.0/TCP [2001:db8::1]:5061;branch=z9hG4bKb\r\n\
f: <sip:a@10.0.0.1>;tag=x\r\nt: <sip:127.0.0.1>\r\ni: abc\r\nCSeq: 1\r\n OPTIONS\r\nMax-Forwards: 70\r\nl: 0\r\n\r\n";
    let Verdict::Normalised { bytes } = check(msg, 8192, SERVER) else {
        panic!("{:?}", check(msg, 8192, SERVER))
    };
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.contains("\r\nCSeq: 1 OPTIONS\r\n"), "{text}");
}

#[test]
fn body_longer_than_content_length_is_cut() {
    let msg = invite(
        "Content-Type: text/plain\r\nContent-Length: 2\r\n",
        "abcdef",
    );
    let Verdict::Accept { len } = check(&msg, 8192, SERVER) else {
        panic!("accepted")
    };
    assert_eq!(&msg[len - 2..len], b"ab");
}

#[test]
fn unknown_method_gets_501_with_allow() {
    let msg = b"FROB sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK9\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: x\r\nCSeq: 1 FROB\r\nMax-Forwards: 70\r\n\r\n";
    let Verdict::Reply {
        status, response, ..
    } = check(msg, 8192, SERVER)
    else {
        panic!("answered")
    };
    assert_eq!(status, 501);
    let text = String::from_utf8(response).unwrap();
    assert!(
        text.starts_with("SIP/2.0 501 Not Implemented\r\n"),
        "{text}"
    );
    assert!(text.contains("Allow: INVITE"), "{text}");
    assert!(text.contains("Server: clicktocall-test"), "{text}");
}

#[test]
fn lowercase_method_is_an_unknown_method() {
    // Methods are case-sensitive (RFC 3261 §7.1); rsipstack would accept "invite" as INVITE.
    let msg = String::from_utf8(invite("", ""))
        .unwrap()
        .replacen("INVITE sip", "invite sip", 1);
    let msg = msg.replace("CSeq: 10 INVITE", "CSeq: 10 invite");
    assert!(matches!(
        check(msg.as_bytes(), 8192, SERVER),
        Verdict::Reply { status: 501, .. }
    ));
}

#[test]
fn existing_to_tag_is_kept_and_none_added() {
    let msg = String::from_utf8(invite("", "")).unwrap().replace(
        "To: <sip:support@127.0.0.1>",
        "To: <sip:support@127.0.0.1>;tag=zz",
    );
    let msg = msg.replace("CSeq: 10 INVITE", "CSeq: 10 BYE");
    let Verdict::Reply { response, .. } = check(msg.as_bytes(), 8192, SERVER) else {
        panic!()
    };
    let text = String::from_utf8(response).unwrap();
    assert!(
        text.contains("To: <sip:support@127.0.0.1>;tag=zz\r\n"),
        "{text}"
    );
}

#[test]
fn responses_are_checked_but_never_answered() {
    let ok = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    assert!(matches!(check(ok, 8192, SERVER), Verdict::Accept { .. }));
    let bad = String::from_utf8_lossy(ok).replace("Call-ID: x\r\n", "");
    assert!(matches!(
        check(bad.as_bytes(), 8192, SERVER),
        Verdict::Drop { .. }
    ));
}

#[test]
fn commas_inside_quotes_and_brackets_do_not_split() {
    assert_eq!(split_commas("\"a, b\" <sip:x@h>, <sip:y@h;p=1,2>").len(), 2);
}

/// The status `check` answers `invite("")` with after `edit`, or 0 when accepted, 1 when dropped.
fn outcome(edit: impl Fn(String) -> String) -> u16 {
    let msg = edit(String::from_utf8(invite("", "")).unwrap());
    match check(msg.as_bytes(), 8192, SERVER) {
        Verdict::Accept { .. } | Verdict::Normalised { .. } => 0,
        Verdict::Reply { status, .. } => status,
        Verdict::Drop { .. } => 1,
    }
}

#[test]
fn request_line_rules() {
    let line =
        |l: &'static str| move |m: String| m.replacen("INVITE sip:support@127.0.0.1 SIP/2.0", l, 1);
    assert_eq!(outcome(line("INVITE <sip:support@127.0.0.1> SIP/2.0")), 400);
    assert_eq!(
        outcome(line("INVITE sip:support@127.0.0.1; lr SIP/2.0")),
        400
    );
    assert_eq!(outcome(line("INVITE sip:support@127.0.0.1 SIP/2.0 ")), 400);
    assert_eq!(
        outcome(line("INVITE sip:s@127.0.0.1?Route=%3Csip:x%3E SIP/2.0")),
        400
    );
    assert_eq!(outcome(line("INVITE sip:s%zz@127.0.0.1 SIP/2.0")), 400);
    assert_eq!(outcome(line("INVITE sip:support@127.0.0.1 SIP/3.1")), 505);
    assert_eq!(outcome(line("INVITE sip:support@127.0.0.1 HTTP/1.1")), 400);
    assert_eq!(outcome(line("INVITE urn:service:sos SIP/2.0")), 416);
    assert_eq!(outcome(line("INVITE tel:+15550100 SIP/2.0")), 0);
    assert_eq!(outcome(line("INVITE sip:s%00@127.0.0.1;x=%41 SIP/2.0")), 0);
}

#[test]
fn scalar_rules() {
    let mf = |v: &'static str| move |m: String| m.replace("Max-Forwards: 70", v);
    assert_eq!(outcome(mf("Max-Forwards: 256")), 400);
    assert_eq!(outcome(mf("Max-Forwards: -1")), 400);
    assert_eq!(outcome(mf("Max-Forwards: 0")), 0);
    assert_eq!(outcome(mf("X-No-Max-Forwards: 1")), 0, "RFC 2543");
    assert_eq!(outcome(mf("Max-Forwards: 70\r\nExpires: 4294967295")), 0);
    assert_eq!(outcome(mf("Max-Forwards: 70\r\nExpires: 4294967296")), 400);
    assert_eq!(outcome(mf("Max-Forwards: 70\r\nExpires: soon")), 400);
    let cseq = |v: &'static str| move |m: String| m.replace("CSeq: 10 INVITE", v);
    assert_eq!(outcome(cseq("CSeq: 4294967295 INVITE")), 0);
    assert_eq!(outcome(cseq("CSeq: 4294967296 INVITE")), 400);
    assert_eq!(outcome(cseq("CSeq: -1 INVITE")), 400);
    let cl = |v: &'static str| move |m: String| m.replace("Max-Forwards: 70", v);
    assert_eq!(outcome(cl("Max-Forwards: 70\r\nContent-Length: -0")), 400);
    assert_eq!(
        outcome(cl("Max-Forwards: 70\r\nl: 0\r\nContent-Length: 0")),
        400
    );
}

#[test]
fn date_must_be_rfc1123_in_gmt() {
    let date = |v: &'static str| {
        move |m: String| {
            m.replace(
                "Max-Forwards: 70",
                &format!("Max-Forwards: 70\r\nDate: {v}"),
            )
        }
    };
    assert_eq!(outcome(date("Sat, 13 Nov 2010 23:29:00 GMT")), 0);
    assert_eq!(outcome(date("Sat, 13 Nov 2010 23:29:00 PST")), 400);
    assert_eq!(outcome(date("Sat, 13 Nov 2010 23:29 GMT")), 400);
    assert_eq!(outcome(date("Caturday, 13 Nov 2010 23:29:00 GMT")), 400);
}

#[test]
fn name_addr_rules() {
    let from = |v: &'static str| {
        move |m: String| m.replace("From: \"Ann, Smith\" <sip:ann@127.0.0.1>;tag=a1", v)
    };
    assert_eq!(
        outcome(from("From: Ann Smith <sip:ann@127.0.0.1>;tag=a1")),
        0
    );
    assert_eq!(outcome(from("From: Ann<sip:ann@127.0.0.1>;tag=a1")), 0);
    assert_eq!(
        outcome(from(
            "From: \"A \\\"q\\\" \\\\\" <sip:ann@127.0.0.1>;tag=a1"
        )),
        0
    );
    assert_eq!(
        outcome(from("From: Ann, Smith <sip:ann@127.0.0.1>;tag=a1")),
        400
    );
    assert_eq!(
        outcome(from("From: \"Ann \"x\" Smith\" <sip:ann@127.0.0.1>;tag=a1")),
        400
    );
    assert_eq!(outcome(from("From: \"Ann <sip:ann@127.0.0.1>;tag=a1")), 400);
    assert_eq!(outcome(from("From: <sip:ann@ 127.0.0.1>;tag=a1")), 400);
    assert_eq!(outcome(from("From: <sip:ann@127.0.0.1>;tag=a1;;x")), 400);
    assert_eq!(outcome(from("From: <sip:ann@127.0.0.1>;tag=")), 400);
    assert_eq!(outcome(from("From: <sip:a@h>;tag=1, <sip:b@h>")), 400);
    assert_eq!(outcome(from("From: <http://example.org/ann>;tag=a1")), 0);
    let contact = |v: &'static str| {
        move |m: String| {
            m.replace(
                "Max-Forwards: 70",
                &format!("Max-Forwards: 70\r\nContact: {v}"),
            )
        }
    };
    assert_eq!(outcome(contact("sip:a@h?Route=%3Csip:x%3E")), 400);
    assert_eq!(outcome(contact("<sip:a@h?Route=%3Csip:x%3E>")), 0);
    assert_eq!(outcome(contact("<sip:a@h>;expires=4294967296")), 400);
    assert_eq!(outcome(contact("<sip:a@h>;expires=60, <sip:b@h>;q=0.5")), 0);
    assert_eq!(outcome(contact("<sip:a@h>;+sip.instance=\"<urn:x>")), 400);
    assert_eq!(outcome(contact("<sip:a@h>,,<sip:b@h>")), 400);
    assert_eq!(outcome(contact("*")), 0);
}

#[test]
fn via_rules() {
    let via = |v: &'static str| {
        move |m: String| m.replace("Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1;rport", v)
    };
    assert_eq!(
        outcome(via("Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1;;,;,,")),
        400
    );
    assert_eq!(
        outcome(via(
            "Via: SIP / 2.0 / UDP 127.0.0.1:5070 ; branch = z9hG4bK1"
        )),
        0
    );
    assert_eq!(
        outcome(via("Via: SIP/2.0/UDP 127.0.0.1:5070")),
        0,
        "RFC 2543: no branch"
    );
    assert_eq!(
        outcome(via("Via: SIP/2.0/FUTURE h.example;branch=z9hG4bK1")),
        0
    );
    assert_eq!(
        outcome(via("Via: SIP/2.0/UDP h_x;branch=z9hG4bK1")),
        1,
        "no Via to answer"
    );
}

#[test]
fn a_body_needs_a_content_type() {
    let msg = invite("Content-Length: 3\r\n", "v=0");
    assert!(matches!(
        check(&msg, 8192, SERVER),
        Verdict::Reply { status: 400, .. }
    ));
    let padded = invite("", "\r\n");
    assert!(matches!(
        check(&padded, 8192, SERVER),
        Verdict::Accept { .. }
    ));
}

#[test]
fn folded_and_spaced_requests_are_normalised_for_the_stack() {
    let msg = "OPTIONS sip:gw SIP/2.0\r\nVia  : SIP/2.0\r\n /UDP 10.0.0.1 ;branch = z9hG4bKx\r\nFrom: a <sip:a@h> ; tag = 1\r\n\
To: sip:gw\r\nCall-ID: c\r\nCSeq: 1\r\n\tOPTIONS\r\nContent-Length: 0\r\n\r\n";
    let Verdict::Normalised { bytes } = check(msg.as_bytes(), 8192, SERVER) else {
        panic!("{:?}", check(msg.as_bytes(), 8192, SERVER))
    };
    let text = String::from_utf8(bytes).unwrap();
    assert!(
        text.contains("\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx\r\n"),
        "{text}"
    );
    assert!(text.contains("\r\nFrom: a <sip:a@h>;tag=1\r\n"), "{text}");
    assert!(text.contains("\r\nCSeq: 1 OPTIONS\r\n"), "{text}");
    assert!(
        text.contains("\r\nTo: sip:gw\r\n"),
        "unchanged lines kept: {text}"
    );
}

#[test]
fn an_rfc2543_request_without_from_tag_gets_a_stable_one() {
    let msg = "OPTIONS sip:gw SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1\r\nFrom: sip:a@h\r\nTo: sip:gw\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n";
    let tagged = |m: &str| match check(m.as_bytes(), 8192, SERVER) {
        Verdict::Normalised { bytes } => String::from_utf8(bytes).unwrap(),
        other => panic!("{other:?}"),
    };
    let first = tagged(msg);
    assert!(
        first.contains(&format!("From: sip:a@h;tag={SYNTHETIC_TAG_PREFIX}")),
        "{first}"
    );
    assert_eq!(first, tagged(msg), "same request, same tag");
}

#[test]
fn hostile_input_never_panics() {
    let base =
        String::from_utf8(invite("Content-Type: a/b\r\nContent-Length: 3\r\n", "xyz")).unwrap();
    for cut in 0..base.len() {
        let _ = check(&base.as_bytes()[..cut], 8192, SERVER);
        let mut bytes = base.clone().into_bytes();
        let hostile = b"\"<>;,=%\\ \t:\x00\xff";
        bytes[cut] = hostile[cut % hostile.len()];
        let _ = check(&bytes, 8192, SERVER);
    }
}

#[test]
fn sip_user_parts_may_hold_question_marks_and_quoted_pairs_any_octet() {
    let msg = "!odd-Method_*+`.%'~ sip:us3r~(x!)&is+it$/odd?,/;;*:&pw=1,z!*p$w~d_.(y)@example.com SIP/2.0\r\n\
Via: SIP/2.0/TCP h.example.com;branch=z9hG4bK-.!%66*_+`'~\r\n\
To: \"BEL:\\\u{7} NUL:\\\u{0} DEL:\\\u{7f}\" <sip:us3r~(x!)&is+it$/odd?,/;;*@example.com>\r\n\
From: tok1~` tok2'+_ <sip:m@example.com>;p''~+*_!.-%=\"значение\";tag=_t~1'+`*%!-.\r\n\
Call-ID: w%ZK-!.*_+'@w`~)(><:\\}{\\|\\\"/\"]\r\nCSeq: 9 !odd-Method_*+`.%'~\r\nMax-Forwards: 255\r\nContent-Length: 0\r\n\r\n";
    assert!(
        matches!(
            check(msg.as_bytes(), 8192, SERVER),
            Verdict::Reply { status: 501, .. }
        ),
        "{:?}",
        check(msg.as_bytes(), 8192, SERVER)
    );
    let raw_bel = msg.replace("BEL:\\\u{7}", "BEL:\u{7}");
    assert!(matches!(
        check(raw_bel.as_bytes(), 8192, SERVER),
        Verdict::Reply { status: 400, .. }
    ));
}

#[test]
fn a_quoted_display_name_may_hold_angle_brackets() {
    // What the gateway itself writes toward agents for a visitor named "Ada <Lovelace>".
    let msg = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx\r\nFrom: \"Ada <Lovelace> \\\"AL\\\" (web)\" <sip:c2c@127.0.0.1>;tag=a\r\nTo: <sip:8101@127.0.0.1:5099>;tag=b\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    assert!(
        matches!(
            super::check(msg.as_bytes(), 8192, "s"),
            Verdict::Accept { .. }
        ),
        "{:?}",
        super::check(msg.as_bytes(), 8192, "s")
    );
}

#[test]
fn a_datagram_without_content_length_keeps_its_body() {
    let msg = "INVITE sip:+15550100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5062;branch=z9hG4bKcl\r\nFrom: <sip:a@127.0.0.2>;tag=1\r\nTo: <sip:+15550100@127.0.0.1>\r\nCall-ID: cl\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n";
    let Verdict::Normalised { bytes } = check(msg.as_bytes(), 8192, SERVER) else {
        panic!("{:?}", check(msg.as_bytes(), 8192, SERVER));
    };
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.contains("Content-Length: 5\r\n\r\nv=0\r\n"), "{text}");
}
