//! The torture corpus (`tests/sip/torture/`, after RFC 4475): every legal message gets an answer
//! other than 400 (the one its README row names), every invalid one 400 (or 505) or, when no answer
//! can be formed, nothing; nothing panics and the gateway keeps serving.

use crate::common;

use common::*;
use std::time::Duration;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sip/torture");

/// One README row.
struct Case {
    file: String,
    section: String,
    from_trunk: bool,
    expect: Expect,
}

#[derive(Debug, PartialEq)]
enum Expect {
    Status(u16),
    /// A legal response: never answered.
    Silent,
    /// An invalid message with nobody to answer.
    Drop,
}

/// The README's table rows (`| file | RFC 4475 | what | from | expect |`).
fn cases() -> Vec<Case> {
    let readme = std::fs::read_to_string(format!("{DIR}/README.md")).expect("README.md");
    readme
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let [_, file, section, _, from, expect, _] = cells[..] else {
                return None;
            };
            if !file.ends_with(".sip") {
                return None;
            }
            let expect = match expect {
                "silent" => Expect::Silent,
                "drop" => Expect::Drop,
                code => Expect::Status(code.parse().expect("status code")),
            };
            Some(Case {
                file: file.to_string(),
                section: section.to_string(),
                from_trunk: from == "trunk",
                expect,
            })
        })
        .collect()
}

/// The file as wire bytes: LF → CRLF, then `$SRC`, `$SP` and `$CL` (see the README).
fn load(file: &str, src: std::net::SocketAddr) -> Vec<u8> {
    let text = std::fs::read_to_string(format!("{DIR}/{file}")).expect("corpus file");
    let text = text
        .replace("\r\n", "\n")
        .replace('\n', "\r\n")
        .replace("$SRC", &src.to_string())
        .replace("$SP", " ");
    let body_len = text.find("\r\n\r\n").map_or(0, |i| text.len() - i - 4);
    hex_octets(&text.replace("$CL", &body_len.to_string()))
}

/// `$xHH` → the octet 0xHH (control characters a file should not hold raw).
fn hex_octets(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some(at) = rest.windows(2).position(|w| w == b"$x") {
        out.extend_from_slice(&rest[..at]);
        let hex = std::str::from_utf8(&rest[at + 2..at + 4]).expect("two hex digits");
        out.push(u8::from_str_radix(hex, 16).expect("hex"));
        rest = &rest[at + 4..];
    }
    out.extend_from_slice(rest);
    out
}

#[test]
fn every_corpus_file_is_listed_in_the_readme() {
    let listed: Vec<String> = cases().into_iter().map(|c| c.file).collect();
    for dir in ["valid", "invalid"] {
        for entry in std::fs::read_dir(format!("{DIR}/{dir}")).unwrap() {
            let name = format!("{dir}/{}", entry.unwrap().file_name().to_string_lossy());
            assert!(listed.contains(&name), "{name} is not in README.md");
        }
    }
    assert!(listed.len() >= 50, "{} cases", listed.len());
}

#[tokio::test]
async fn legal_messages_never_get_400_and_invalid_ones_do() {
    let (_gw, sip) = start(test_config("")).await;
    let mut failures = Vec::new();
    for case in cases() {
        // A fresh socket per case: an INVITE's final answer is retransmitted until ACKed.
        let peer = Peer::bind(if case.from_trunk {
            "127.0.0.2"
        } else {
            "127.0.0.1"
        })
        .await;
        peer.send(sip, &load(&case.file, peer.addr)).await;
        let got = match case.expect {
            Expect::Status(_) => peer.recv_final(Duration::from_secs(3)).await,
            _ => peer.recv(Duration::from_millis(300)).await,
        };
        let outcome = got.as_deref().map(status);
        let ok = match (&case.expect, outcome) {
            // The From tag the guard gives an RFC 2543 request never leaks into the answer.
            (Expect::Status(want), Some(code)) => {
                *want == code
                    && headers_fit(code, &got)
                    && !got.iter().any(|r| r.contains(";tag=c2c2543-"))
            }
            (Expect::Silent | Expect::Drop, None) => true,
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "{} ({}): expected {:?}, got {:?}\n{}",
                case.file,
                case.section,
                case.expect,
                outcome,
                got.unwrap_or_default()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    let peer = Peer::bind("127.0.0.1").await;
    peer.send(
        sip,
        request("OPTIONS", peer.addr, "after", "after-torture", "").as_bytes(),
    )
    .await;
    let resp = peer
        .recv_final(Duration::from_secs(3))
        .await
        .expect("OPTIONS answered after the corpus");
    assert_eq!(status(&resp), 200, "{resp}");
}

/// The header an answer of this code must carry (RFC 3261 §8.2.1, §8.2.2.3, §8.2.3).
fn headers_fit(code: u16, resp: &Option<String>) -> bool {
    let resp = resp.as_deref().unwrap_or_default();
    match code {
        501 | 405 => header(resp, "Allow").is_some(),
        420 => header(resp, "Unsupported").is_some(),
        415 => header(resp, "Accept").is_some(),
        _ => true,
    }
}
