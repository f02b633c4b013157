use super::*;

/// A masked client frame with `len` payload bytes (opcode text).
fn frame(len: usize) -> Vec<u8> {
    let mut f = vec![0x81u8];
    match len {
        0..=125 => f.push(0x80 | len as u8),
        126..=65535 => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&[1, 2, 3, 4]);
    f.extend(std::iter::repeat_n(b'x', len));
    f
}

/// Runs the parser over `input` fed in `chunk`-byte pieces: (bytes passed, oversize raised at
/// which passed length).
fn run(input: &[u8], chunk: usize) -> (Vec<u8>, Vec<usize>) {
    let mut l = FrameLimit::new(1000);
    let (mut passed, mut raised, mut buf) = (Vec::new(), Vec::new(), Vec::new());
    let mut fed = 0;
    loop {
        match l.next(&buf) {
            Step::Pass(k) => {
                passed.extend_from_slice(&buf[..k]);
                buf.drain(..k);
            }
            Step::Drop(k) => {
                buf.drain(..k);
            }
            Step::Oversize => raised.push(passed.len()),
            Step::More if fed < input.len() => {
                let end = (fed + chunk).min(input.len());
                buf.extend_from_slice(&input[fed..end]);
                fed = end;
            }
            Step::More => return (passed, raised),
        }
    }
}

#[test]
fn frames_under_the_limit_pass_whole_and_an_oversized_one_is_dropped_after_them() {
    let (a, b, big, c) = (frame(10), frame(1000), frame(70_000), frame(5));
    let input = [a.clone(), b.clone(), big, c.clone()].concat();
    for chunk in [1, 3, 7, 100, 4096, input.len()] {
        let (passed, raised) = run(&input, chunk);
        assert_eq!(
            passed,
            [a.clone(), b.clone(), c.clone()].concat(),
            "chunk {chunk}"
        );
        assert_eq!(
            raised,
            vec![a.len() + b.len()],
            "raised after the frames before it"
        );
    }
}

#[test]
fn a_64_bit_length_frame_is_dropped_without_buffering_it() {
    let mut big = frame(0);
    big[1] = 0x80 | 127;
    big.splice(2..2, (10_000_000u64).to_be_bytes());
    let input = [big, vec![b'y'; 10_000_000], frame(3)].concat();
    let (passed, raised) = run(&input, 65_536);
    assert_eq!(passed, frame(3));
    assert_eq!(raised, vec![0]);
}

#[tokio::test]
async fn the_guard_hands_on_what_the_parser_passes_and_raises_oversize() {
    use tokio::io::AsyncReadExt;
    let input = [frame(20), frame(5000), frame(2)].concat();
    let oversize = Arc::new(Oversize::default());
    let mut g = FrameGuard::new(&input[..], 1000, oversize.clone());
    let mut out = Vec::new();
    let mut small = [0u8; 7];
    loop {
        let n = g.read(&mut small).await.unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&small[..n]);
    }
    assert_eq!(out, [frame(20), frame(2)].concat());
    tokio::time::timeout(std::time::Duration::from_secs(1), oversize.raised())
        .await
        .expect("raised");
}

#[test]
fn the_handshake_answers_rfc_6455s_example_key() {
    let mut h = HeaderMap::new();
    h.insert(
        header::CONNECTION,
        HeaderValue::from_static("keep-alive, Upgrade"),
    );
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(
        header::SEC_WEBSOCKET_VERSION,
        HeaderValue::from_static("13"),
    );
    h.insert(
        header::SEC_WEBSOCKET_KEY,
        HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
    );
    let r = accept(&h).expect("accepted");
    assert_eq!(r.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(
        r.headers()[header::SEC_WEBSOCKET_ACCEPT],
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
    h.insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("8"));
    assert_eq!(
        accept(&h).unwrap_err().status(),
        StatusCode::UPGRADE_REQUIRED
    );
    h.insert(
        header::SEC_WEBSOCKET_VERSION,
        HeaderValue::from_static("13"),
    );
    h.insert(header::SEC_WEBSOCKET_KEY, HeaderValue::from_static("short"));
    assert_eq!(accept(&h).unwrap_err().status(), StatusCode::BAD_REQUEST);
    h.remove(header::UPGRADE);
    assert!(accept(&h).is_err());
}
