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
    assert!(
        matches!(check(msg, 8192, SERVER), Verdict::Accept { .. }),
        "{:?}",
        check(msg, 8192, SERVER)
    );
}

#[test]
fn body_longer_than_content_length_is_cut() {
    let msg = invite("Content-Length: 2\r\n", "abcdef");
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
    let msg = msg.replace("Max-Forwards: 70\r\n", "");
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
