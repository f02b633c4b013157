//! A minimal client of rtpengine's NG control protocol: a cookie, a space and a bencoded
//! dictionary over UDP, answered by the same cookie and a dictionary with `result` ("ok",
//! "error" with `error-reason`). Only what the benchmark sends and reads: `offer`, `answer`,
//! `delete`, and the `sdp` of the reply.

use anyhow::{anyhow, bail, Context};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// A bencoded value.
#[derive(Debug, Clone, PartialEq)]
pub enum Bencode {
    /// `i<n>e`
    Int(i64),
    /// `<len>:<bytes>`
    Bytes(Vec<u8>),
    /// `l...e`
    List(Vec<Bencode>),
    /// `d...e`, keys kept in the order read (sorted when written).
    Dict(Vec<(Vec<u8>, Bencode)>),
}

impl Bencode {
    /// A string value.
    pub fn str(s: &str) -> Self {
        Bencode::Bytes(s.as_bytes().to_vec())
    }

    /// A list of strings.
    pub fn strs(items: &[&str]) -> Self {
        Bencode::List(items.iter().map(|s| Bencode::str(s)).collect())
    }

    /// Appends the encoding.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Bencode::Int(n) => out.extend_from_slice(format!("i{n}e").as_bytes()),
            Bencode::Bytes(b) => {
                out.extend_from_slice(format!("{}:", b.len()).as_bytes());
                out.extend_from_slice(b);
            }
            Bencode::List(l) => {
                out.push(b'l');
                l.iter().for_each(|v| v.encode(out));
                out.push(b'e');
            }
            Bencode::Dict(d) => {
                let mut d: Vec<_> = d.iter().collect();
                d.sort_by(|a, b| a.0.cmp(&b.0));
                out.push(b'd');
                for (k, v) in d {
                    Bencode::Bytes(k.clone()).encode(out);
                    v.encode(out);
                }
                out.push(b'e');
            }
        }
    }

    /// Decodes one value from the start of `input`: the value and the bytes it used.
    pub fn decode(input: &[u8]) -> anyhow::Result<(Bencode, usize)> {
        decode_at(input, 0, 0)
    }

    /// A dictionary entry.
    pub fn get(&self, key: &str) -> Option<&Bencode> {
        match self {
            Bencode::Dict(d) => d.iter().find(|(k, _)| k == key.as_bytes()).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value as text, if it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Bencode::Bytes(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }
}

const MAX_DEPTH: usize = 16;

fn decode_at(input: &[u8], pos: usize, depth: usize) -> anyhow::Result<(Bencode, usize)> {
    if depth > MAX_DEPTH {
        bail!("bencode nested too deeply");
    }
    let at = |i: usize| {
        input
            .get(i)
            .copied()
            .ok_or_else(|| anyhow!("bencode truncated"))
    };
    match at(pos)? {
        b'i' => {
            let end = find(input, pos, b'e')?;
            let n = std::str::from_utf8(&input[pos + 1..end])?.parse()?;
            Ok((Bencode::Int(n), end + 1))
        }
        b'l' | b'd' => {
            let dict = at(pos)? == b'd';
            let (mut items, mut keyed, mut p) = (Vec::new(), Vec::new(), pos + 1);
            while at(p)? != b'e' {
                let (v, next) = decode_at(input, p, depth + 1)?;
                p = next;
                if dict {
                    let Bencode::Bytes(k) = v else {
                        bail!("bencode dictionary key is not a string")
                    };
                    let (val, next) = decode_at(input, p, depth + 1)?;
                    keyed.push((k, val));
                    p = next;
                } else {
                    items.push(v);
                }
            }
            let v = if dict {
                Bencode::Dict(keyed)
            } else {
                Bencode::List(items)
            };
            Ok((v, p + 1))
        }
        b'0'..=b'9' => {
            let colon = find(input, pos, b':')?;
            let len: usize = std::str::from_utf8(&input[pos..colon])?.parse()?;
            let end = colon
                .checked_add(1 + len)
                .filter(|&e| e <= input.len())
                .ok_or_else(|| anyhow!("bencode string runs past the end"))?;
            Ok((Bencode::Bytes(input[colon + 1..end].to_vec()), end))
        }
        c => bail!("bencode: unexpected byte {c:#04x}"),
    }
}

fn find(input: &[u8], from: usize, byte: u8) -> anyhow::Result<usize> {
    input[from..]
        .iter()
        .position(|&b| b == byte)
        .map(|i| from + i)
        .ok_or_else(|| anyhow!("bencode truncated"))
}

/// An NG control connection (UDP) to one rtpengine.
pub struct Ng {
    sock: UdpSocket,
    seq: u64,
}

impl Ng {
    /// A client of the NG listener at `to`.
    pub fn connect(to: SocketAddr) -> anyhow::Result<Self> {
        let sock = UdpSocket::bind("127.0.0.1:0")?;
        sock.connect(to)?;
        sock.set_read_timeout(Some(Duration::from_millis(500)))?;
        Ok(Ng { sock, seq: 0 })
    }

    /// Sends `command` with `args`; the reply dictionary when its `result` is "ok" (or "pong").
    pub fn request(
        &mut self,
        command: &str,
        args: Vec<(&str, Bencode)>,
    ) -> anyhow::Result<Bencode> {
        self.seq += 1;
        let cookie = format!("{}_{}", std::process::id(), self.seq);
        let mut dict: Vec<(Vec<u8>, Bencode)> = args
            .into_iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v))
            .collect();
        dict.push((b"command".to_vec(), Bencode::str(command)));
        let mut msg = format!("{cookie} ").into_bytes();
        Bencode::Dict(dict).encode(&mut msg);
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = vec![0u8; 65536];
        self.sock.send(&msg)?;
        while Instant::now() < deadline {
            let n = match self.sock.recv(&mut buf) {
                Ok(n) => n,
                // No reply yet: NG is retried with the same cookie (rtpengine caches replies).
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    self.sock.send(&msg)?;
                    continue;
                }
                Err(e) => return Err(e).context("rtpengine NG socket"),
            };
            let Some(body) = buf[..n].strip_prefix(format!("{cookie} ").as_bytes()) else {
                continue; // a late reply to an earlier request
            };
            let (reply, _) = Bencode::decode(body)?;
            let result = reply.get("result").and_then(Bencode::as_str).unwrap_or("");
            if result == "ok" || result == "pong" {
                return Ok(reply);
            }
            let why = reply
                .get("error-reason")
                .and_then(Bencode::as_str)
                .unwrap_or(result);
            bail!("rtpengine refused {command}: {why}");
        }
        bail!("rtpengine did not answer {command} within 5 s")
    }
}

/// Where an SDP body says to send audio: its `c=` address and `m=audio` port.
pub fn audio_addr(sdp: &str) -> anyhow::Result<SocketAddr> {
    let mut ip = None;
    let mut port = None;
    for line in sdp.lines().map(str::trim) {
        if let Some(c) = line.strip_prefix("c=IN IP4 ") {
            ip.get_or_insert(c.split('/').next().unwrap_or(c).to_string());
        } else if let Some(m) = line.strip_prefix("m=audio ") {
            port = m
                .split_whitespace()
                .next()
                .and_then(|p| p.parse::<u16>().ok());
        }
    }
    let (ip, port) = ip
        .zip(port)
        .ok_or_else(|| anyhow!("no c= or m=audio in SDP"))?;
    Ok(format!("{ip}:{port}").parse()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let v = Bencode::Dict(vec![
            (b"sdp".to_vec(), Bencode::str("v=0")),
            (
                b"a".to_vec(),
                Bencode::List(vec![Bencode::Int(-3), Bencode::str("x")]),
            ),
        ]);
        let mut out = Vec::new();
        v.encode(&mut out);
        assert_eq!(out, b"d1:ali-3e1:xe3:sdp3:v=0e");
        let (back, used) = Bencode::decode(&out).unwrap();
        assert_eq!(used, out.len());
        assert_eq!(back.get("sdp").and_then(Bencode::as_str), Some("v=0"));
        for bad in [&b"d3:sdp"[..], b"99999999999999999999:x", b"l", b"x"] {
            assert!(Bencode::decode(bad).is_err());
        }
    }
}
