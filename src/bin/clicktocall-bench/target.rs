//! What the load sets calls up through: the benchmark's gateway (its line-based control socket)
//! or an rtpengine (NG protocol), and how each one's CPU time and memory are read.

use crate::load::leg_ssrc;
use crate::ng::{audio_addr, Bencode, Ng};
use crate::sys::proc_usage;
use crate::tally::Usage;
use anyhow::{anyhow, bail, Context};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

/// Where to set calls up.
pub enum TargetSpec {
    /// `clicktocall-bench gateway` at this control address.
    Gateway(SocketAddr),
    /// An rtpengine's NG listener, and the daemon's pid (found by name when `None`).
    RtpEngine(SocketAddr, Option<u32>),
}

/// A connected target.
pub enum Target {
    Gateway(BufReader<TcpStream>),
    RtpEngine {
        ng: Ng,
        pid: u32,
        mark: Option<(Instant, f64)>,
        base_rss: u64,
    },
}

impl Target {
    /// Connects.
    pub fn open(spec: &TargetSpec) -> anyhow::Result<Self> {
        match *spec {
            TargetSpec::Gateway(addr) => {
                let s =
                    TcpStream::connect(addr).with_context(|| format!("gateway control {addr}"))?;
                s.set_nodelay(true)?;
                Ok(Target::Gateway(BufReader::new(s)))
            }
            TargetSpec::RtpEngine(addr, pid) => {
                let pid = match pid {
                    Some(p) => p,
                    None => find_pid("rtpengine")
                        .ok_or_else(|| anyhow!("no rtpengine process (give --rtpengine-pid)"))?,
                };
                let mut ng = Ng::connect(addr)?;
                ng.request("ping", vec![])
                    .context("rtpengine does not answer ping")?;
                let base_rss = proc_usage(Some(pid)).1;
                Ok(Target::RtpEngine {
                    ng,
                    pid,
                    mark: None,
                    base_rss,
                })
            }
        }
    }

    /// Its name in the summary.
    pub fn name(&self) -> &'static str {
        match self {
            Target::Gateway(_) => "gateway",
            Target::RtpEngine { .. } => "rtpengine",
        }
    }

    /// Its RSS before any call, KiB.
    pub fn base_rss(&mut self) -> anyhow::Result<u64> {
        match self {
            Target::Gateway(c) => Ok(ask(c, "BASE", "BASE")?.trim().parse()?),
            Target::RtpEngine { base_rss, .. } => Ok(*base_rss),
        }
    }

    /// A browser call: the browser's offer in, the answer for it and where each phone sends.
    pub fn webrtc(
        &mut self,
        i: usize,
        offer: &str,
        phones: &[SocketAddr],
    ) -> anyhow::Result<(String, Vec<SocketAddr>)> {
        match self {
            Target::Gateway(c) => {
                let ports: Vec<String> = phones.iter().map(|p| p.port().to_string()).collect();
                let verb = if phones.len() == 2 { "CALL3" } else { "CALL" };
                let line = format!(
                    "{verb} {} {}",
                    ports.join(" "),
                    offer.replace("\r\n", "\\n")
                );
                let reply = ask(c, &line, "ANSWER")?;
                let mut rest = reply.as_str();
                let mut dests = Vec::new();
                for _ in phones {
                    let (port, tail) = rest
                        .split_once(' ')
                        .ok_or_else(|| anyhow!("short ANSWER"))?;
                    dests.push(SocketAddr::from(([127, 0, 0, 1], port.parse::<u16>()?)));
                    rest = tail;
                }
                Ok((rest.replace("\\n", "\r\n"), dests))
            }
            Target::RtpEngine { ng, .. } => {
                let [phone] = phones else {
                    bail!("rtpengine: two-party calls only")
                };
                rtpengine_webrtc(ng, i, offer, *phone)
            }
        }
    }

    /// A SIP-to-SIP call between two RTP phones: where each sends.
    pub fn sip(
        &mut self,
        i: usize,
        a: SocketAddr,
        b: SocketAddr,
    ) -> anyhow::Result<[SocketAddr; 2]> {
        match self {
            Target::Gateway(c) => {
                let reply = ask(c, &format!("CALLSIP {} {}", a.port(), b.port()), "ANSWER")?;
                let mut ports = reply.split_whitespace().map(|p| p.parse::<u16>());
                let mut next = || -> anyhow::Result<SocketAddr> {
                    let p = ports.next().ok_or_else(|| anyhow!("short ANSWER"))??;
                    Ok(SocketAddr::from(([127, 0, 0, 1], p)))
                };
                Ok([next()?, next()?])
            }
            Target::RtpEngine { ng, .. } => {
                let (call_id, from, to) = tags(i);
                let offer = ng.request(
                    "offer",
                    vec![
                        ("call-id", Bencode::str(&call_id)),
                        ("from-tag", Bencode::str(&from)),
                        ("sdp", Bencode::str(&phone_sdp(a, leg_ssrc(i, 0)))),
                    ],
                )?;
                let b_sends = audio_addr(sdp_of(&offer)?)?;
                let answer = ng.request(
                    "answer",
                    vec![
                        ("call-id", Bencode::str(&call_id)),
                        ("from-tag", Bencode::str(&from)),
                        ("to-tag", Bencode::str(&to)),
                        ("sdp", Bencode::str(&phone_sdp(b, leg_ssrc(i, 1)))),
                    ],
                )?;
                Ok([audio_addr(sdp_of(&answer)?)?, b_sends])
            }
        }
    }

    /// Starts the measurement window.
    pub fn mark(&mut self) -> anyhow::Result<()> {
        match self {
            Target::Gateway(c) => ask(c, "MARK", "OK").map(drop),
            Target::RtpEngine { pid, mark, .. } => {
                *mark = Some((Instant::now(), proc_usage(Some(*pid)).0));
                Ok(())
            }
        }
    }

    /// CPU and RSS since `mark` (without the RSS before any call: the caller knows it).
    pub fn stats(&mut self) -> anyhow::Result<Usage> {
        let base = 0.0;
        match self {
            Target::Gateway(c) => {
                let reply = ask(c, "STATS", "STATS")?;
                let f: Vec<f64> = reply
                    .split_whitespace()
                    .filter_map(|v| v.parse().ok())
                    .collect();
                let get = |i: usize| {
                    f.get(i)
                        .copied()
                        .ok_or_else(|| anyhow!("short STATS: {reply}"))
                };
                Ok(Usage {
                    cpu_s: get(0)?,
                    wall_s: get(1)?,
                    rss_kib: get(2)?,
                    base_rss_kib: base,
                })
            }
            Target::RtpEngine { pid, mark, .. } => {
                let (at, cpu0) = mark.ok_or_else(|| anyhow!("no MARK"))?;
                let (cpu, rss) = proc_usage(Some(*pid));
                Ok(Usage {
                    cpu_s: cpu - cpu0,
                    wall_s: at.elapsed().as_secs_f64(),
                    rss_kib: rss as f64,
                    base_rss_kib: base,
                })
            }
        }
    }

    /// Ends the calls (rtpengine keeps them otherwise; the gateway's go with its process).
    pub fn hang_up(&mut self, calls: usize) {
        if let Target::RtpEngine { ng, .. } = self {
            for i in 0..calls {
                let (call_id, from, _) = tags(i);
                let args = vec![
                    ("call-id", Bencode::str(&call_id)),
                    ("from-tag", Bencode::str(&from)),
                ];
                if let Err(e) = ng.request("delete", args) {
                    eprintln!("load: delete call {i}: {e}");
                }
            }
        }
    }
}

/// Sends one control line, returns what follows `expect ` in the reply line.
fn ask(c: &mut BufReader<TcpStream>, line: &str, expect: &str) -> anyhow::Result<String> {
    c.get_mut().write_all(format!("{line}\n").as_bytes())?;
    let mut reply = String::new();
    if c.read_line(&mut reply)? == 0 {
        bail!("the gateway closed the control connection (see its log)");
    }
    let reply = reply.trim_end();
    match reply.strip_prefix(expect) {
        Some(rest) => Ok(rest.trim_start().to_string()),
        None => bail!(
            "gateway answered {reply:?} to {}",
            line.split(' ').next().unwrap_or("")
        ),
    }
}

/// A WebRTC browser to an RTP phone through rtpengine: the browser's offer goes out to the
/// phone as plain RTP/AVP without ICE; the phone's answer comes back to the browser as
/// UDP/TLS/RTP/SAVPF with ICE (rtpengine terminates DTLS-SRTP).
fn rtpengine_webrtc(
    ng: &mut Ng,
    i: usize,
    offer: &str,
    phone: SocketAddr,
) -> anyhow::Result<(String, Vec<SocketAddr>)> {
    let (call_id, from, to) = tags(i);
    let reply = ng.request(
        "offer",
        vec![
            ("call-id", Bencode::str(&call_id)),
            ("from-tag", Bencode::str(&from)),
            ("sdp", Bencode::str(offer)),
            ("ICE", Bencode::str("remove")),
            ("transport-protocol", Bencode::str("RTP/AVP")),
            ("rtcp-mux", Bencode::strs(&["demux"])),
            ("replace", Bencode::strs(&["origin", "session-connection"])),
        ],
    )?;
    let phone_sends = audio_addr(sdp_of(&reply)?)?;
    let reply = ng.request(
        "answer",
        vec![
            ("call-id", Bencode::str(&call_id)),
            ("from-tag", Bencode::str(&from)),
            ("to-tag", Bencode::str(&to)),
            ("sdp", Bencode::str(&phone_sdp(phone, leg_ssrc(i, 0)))),
            ("ICE", Bencode::str("force")),
            ("transport-protocol", Bencode::str("UDP/TLS/RTP/SAVPF")),
            ("rtcp-mux", Bencode::strs(&["require"])),
            ("SDES", Bencode::strs(&["off"])),
            ("replace", Bencode::strs(&["origin", "session-connection"])),
        ],
    )?;
    let answer = with_bundle(sdp_of(&reply)?, i == 0);
    if i == 0 && std::env::var_os("BENCH_SHOW_SDP").is_some() {
        eprintln!("browser offer:\n{offer}\nrtpengine answer to the browser:\n{answer}");
    }
    Ok((answer, vec![phone_sends]))
}

/// rtpengine 10.5 builds the browser's answer from the phone's SDP and so drops the offer's
/// `a=group:BUNDLE` (it keeps `a=mid`). Chrome accepts such an answer (no bundling, one m-line
/// anyway); str0m refuses it ("Session attribute a=group missing"). The load puts the group back,
/// naming the answer's mid, and says so once.
fn with_bundle(answer: &str, say: bool) -> String {
    if answer.contains("a=group:BUNDLE") {
        return answer.to_string();
    }
    let Some(mid) = answer.lines().find_map(|l| l.trim().strip_prefix("a=mid:")) else {
        return answer.to_string();
    };
    let Some(m) = answer.find("\r\nm=") else {
        return answer.to_string();
    };
    if say {
        eprintln!("load: rtpengine's answer has no a=group:BUNDLE; adding 'a=group:BUNDLE {mid}' for str0m");
    }
    format!("{}\r\na=group:BUNDLE {mid}{}", &answer[..m], &answer[m..])
}

fn tags(i: usize) -> (String, String, String) {
    let run = std::process::id();
    (
        format!("bench-{run}-{i}"),
        format!("caller-{i}"),
        format!("callee-{i}"),
    )
}

fn sdp_of(reply: &Bencode) -> anyhow::Result<&str> {
    reply
        .get("sdp")
        .and_then(Bencode::as_str)
        .ok_or_else(|| anyhow!("rtpengine reply without sdp"))
}

/// The SDP of a plain RTP phone at `at`: PCMU, 20 ms, and the SSRC it sends with (RFC 5576).
/// rtpengine carries the `a=ssrc` through to the browser's answer; str0m needs it to tell which
/// m-line an incoming stream belongs to, since a SIP phone's RTP has no mid header extension.
fn phone_sdp(at: SocketAddr, ssrc: u32) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\na=ssrc:{ssrc} cname:phone{ssrc}\r\n",
        ip = at.ip(),
        port = at.port()
    )
}

/// The pid of the (first) process whose command name is `name`.
fn find_pid(name: &str) -> Option<u32> {
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == name)
        })
        .collect();
    pids.sort_unstable();
    pids.first().copied()
}
