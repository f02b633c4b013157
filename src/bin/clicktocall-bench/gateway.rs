//! The gateway side: the media engine under test behind a line-based control socket. The load
//! process asks it for calls (a browser leg bridged to an RTP leg, a three-party conference, or
//! two RTP legs), marks the start of the measurement window and reads the CPU time and RSS this
//! process used (from /proc), so CPU and RSS per call are the engine's alone.

use crate::sys::proc_usage;
use clicktocall::media::engine::{MediaConfig, MediaEngine, MediaHandle};
use clicktocall::media::leg::NewLeg;
use clicktocall::media::rtp_leg::RtpLegTimers;
use clicktocall::media::sdp::{read_answer, Format, Negotiated};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// How the benchmark's calls are recorded.
#[derive(Clone)]
pub struct Recording {
    pub dir: std::path::PathBuf,
    /// Where the SIPREC fork sends (a recorder on this host), if it runs.
    pub siprec: Option<SocketAddr>,
}

/// A recorder's receiving side: a thread reading one UDP socket, counting what arrives.
pub fn recorder_sink() -> SocketAddr {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("a recorder socket");
    let addr = sock.local_addr().expect("its address");
    std::thread::spawn(move || {
        let (mut buf, mut n, mut last) = ([0u8; 2048], 0u64, Instant::now());
        while sock.recv(&mut buf).is_ok() {
            n += 1;
            if last.elapsed() > Duration::from_secs(5) {
                eprintln!("recorder: {n} packets");
                last = Instant::now();
            }
        }
    });
    addr
}

pub async fn gateway(
    control: SocketAddr,
    record: Option<Recording>,
    workers: usize,
) -> anyhow::Result<()> {
    let engine = MediaEngine::with_workers(
        MediaConfig {
            bind_ip: "127.0.0.1".parse()?,
            advertised_ip: None,
            port_min: 20000,
            port_max: 29998,
        },
        workers,
    );
    let listener = TcpListener::bind(control).await?;
    eprintln!(
        "gateway: control on {control}, baseline RSS {} KiB",
        proc_usage(None).1
    );
    let calls: Arc<Mutex<Vec<MediaHandle>>> = Arc::default();
    let mark: Arc<Mutex<Option<(Instant, f64)>>> = Arc::default();
    loop {
        let (stream, _) = listener.accept().await?;
        let (engine, calls, mark) = (engine.clone(), calls.clone(), mark.clone());
        let record = record.clone();
        tokio::spawn(async move {
            if let Err(e) = control_conn(stream, engine, calls, mark, record).await {
                eprintln!("control: {e}");
            }
        });
    }
}

/// Control lines: `CALL <phone_port> <offer with \n for CRLF>` → `ANSWER <gw_rtp_port> <answer>`;
/// `CALLSIP <port_a> <port_b>` (two RTP phones) → `ANSWER <gw_port_a> <gw_port_b>`;
/// `MARK` starts the measurement window; `STATS` → `STATS <cpu_s> <wall_s> <rss_kib> <calls>`;
/// `BASE` → `BASE <rss_kib>`.
async fn control_conn(
    stream: TcpStream,
    engine: MediaEngine,
    calls: Arc<Mutex<Vec<MediaHandle>>>,
    mark: Arc<Mutex<Option<(Instant, f64)>>>,
    record: Option<Recording>,
) -> anyhow::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r).lines();
    while let Some(line) = lines.next_line().await? {
        if let Some(rest) = line.strip_prefix("CALL3 ") {
            let handle = conference(&engine, rest).await?;
            let (answer, ports, handle) = handle;
            calls.lock().unwrap_or_else(|e| e.into_inner()).push(handle);
            let reply = format!("ANSWER {ports} {}\n", answer.replace("\r\n", "\\n"));
            w.write_all(reply.as_bytes()).await?;
            continue;
        }
        let mut parts = line.splitn(3, ' ');
        match parts.next() {
            Some("CALL") => {
                let phone_port: u16 = parts.next().unwrap_or("0").parse()?;
                let offer = parts.next().unwrap_or_default().replace("\\n", "\r\n");
                let (port, answer, handle) =
                    bridge(&engine, phone_port, &offer, record.as_ref()).await?;
                calls.lock().unwrap_or_else(|e| e.into_inner()).push(handle);
                let reply = format!("ANSWER {port} {}\n", answer.replace("\r\n", "\\n"));
                w.write_all(reply.as_bytes()).await?;
            }
            Some("CALLSIP") => {
                let a: u16 = parts.next().unwrap_or("0").parse()?;
                let b: u16 = parts.next().unwrap_or("0").parse()?;
                let (pa, pb, handle) = sip_pair(&engine, a, b).await?;
                calls.lock().unwrap_or_else(|e| e.into_inner()).push(handle);
                w.write_all(format!("ANSWER {pa} {pb}\n").as_bytes())
                    .await?;
            }
            Some("BASE") => {
                w.write_all(format!("BASE {}\n", proc_usage(None).1).as_bytes())
                    .await?
            }
            Some("MARK") => {
                *mark.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some((Instant::now(), proc_usage(None).0));
                w.write_all(b"OK\n").await?;
            }
            Some("STATS") => {
                let (cpu, rss) = proc_usage(None);
                let m = *mark.lock().unwrap_or_else(|e| e.into_inner());
                let (wall, used) =
                    m.map_or((0.0, 0.0), |(t, c)| (t.elapsed().as_secs_f64(), cpu - c));
                let n = calls.lock().unwrap_or_else(|e| e.into_inner()).len();
                eprintln!("gateway: media workers {:?}", engine.worker_stats());
                w.write_all(format!("STATS {used:.3} {wall:.3} {rss} {n}\n").as_bytes())
                    .await?;
            }
            _ => w.write_all(b"ERR\n").await?,
        }
    }
    Ok(())
}

/// A three-party call for `CALL3 <phone port> <phone port> <offer>`: the browser leg and two
/// RTP legs, everybody hearing everybody. Returns the answer, the two gateway ports ("p1 p2").
async fn conference(
    engine: &MediaEngine,
    rest: &str,
) -> anyhow::Result<(String, String, MediaHandle)> {
    use clicktocall::media::engine::MediaCommand;
    use clicktocall::media::routes::LegId;
    let mut parts = rest.splitn(3, ' ');
    let ports: Vec<u16> = (0..2)
        .map(|_| parts.next().unwrap_or("0").parse())
        .collect::<Result<_, _>>()?;
    let offer = parts.next().unwrap_or_default().replace("\\n", "\r\n");
    let (leg, web, answer) = engine.answer_browser(Instant::now(), &offer).await?;
    let handle = engine.spawn_call(RtpLegTimers {
        media_timeout: Duration::from_secs(600),
        ..Default::default()
    });
    let browser = MediaCommand::AddLeg {
        id: LegId(0),
        leg: NewLeg::Browser(Box::new(leg)),
        lease: web,
    };
    handle.commands.send(browser).await?;
    let mut gw_ports = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let rtp = engine.lease_with_rtcp().await?;
        gw_ports.push(rtp.local.port().to_string());
        let sdp = format!("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\n");
        let leg = NewLeg::Rtp(read_answer(&sdp, &[Format::pcmu()])?);
        let id = LegId(i as u32 + 1);
        handle
            .commands
            .send(MediaCommand::AddLeg {
                id,
                leg,
                lease: rtp,
            })
            .await?;
    }
    for a in 0..3 {
        for b in 0..3 {
            if a != b {
                let (from, to) = (LegId(a), LegId(b));
                let route = MediaCommand::Route {
                    from,
                    to,
                    gain: Some(1.0),
                };
                handle.commands.send(route).await?;
            }
        }
    }
    Ok((answer, gw_ports.join(" "), handle))
}

/// What an RTP phone on this host's `port` answered: PCMU.
fn phone(port: u16) -> anyhow::Result<Negotiated> {
    let sdp = format!("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\n");
    Ok(read_answer(&sdp, &[Format::pcmu()])?)
}

fn timers() -> RtpLegTimers {
    RtpLegTimers {
        media_timeout: Duration::from_secs(600),
        ..Default::default()
    }
}

/// A browser leg bridged to an RTP phone on `phone_port`, recorded when asked: the gateway's
/// RTP port, the SDP answer for the browser, the call's handle.
async fn bridge(
    engine: &MediaEngine,
    phone_port: u16,
    offer: &str,
    record: Option<&Recording>,
) -> anyhow::Result<(u16, String, MediaHandle)> {
    let (leg, web, answer) = engine.answer_browser(Instant::now(), offer).await?;
    let rtp = engine.lease_with_rtcp().await?;
    let port = rtp.local.port();
    let handle = engine
        .spawn_pair(
            (NewLeg::Browser(Box::new(leg)), web),
            (NewLeg::Rtp(phone(phone_port)?), rtp),
            timers(),
        )
        .await;
    if let Some(rec) = record {
        start_recording(engine, &handle, rec, port).await?;
    }
    Ok((port, answer, handle))
}

/// Two RTP legs (a SIP trunk caller and an agent, both PCMU) relayed to each other: the
/// gateway's two ports and the call's handle.
async fn sip_pair(engine: &MediaEngine, a: u16, b: u16) -> anyhow::Result<(u16, u16, MediaHandle)> {
    let (la, lb) = (
        engine.lease_with_rtcp().await?,
        engine.lease_with_rtcp().await?,
    );
    let (pa, pb) = (la.local.port(), lb.local.port());
    let handle = engine
        .spawn_pair(
            (NewLeg::Rtp(phone(a)?), la),
            (NewLeg::Rtp(phone(b)?), lb),
            timers(),
        )
        .await;
    Ok((pa, pb, handle))
}

/// Records the call (stereo WAV named for its port) and forks it to the SIPREC sink if any.
async fn start_recording(
    engine: &MediaEngine,
    handle: &MediaHandle,
    rec: &Recording,
    port: u16,
) -> anyhow::Result<()> {
    use clicktocall::media::engine::MediaCommand;
    use clicktocall::media::recorder::Channel;
    use clicktocall::media::recording_tap::RecordCommand;
    use clicktocall::media::routes::LegId;
    let path = rec.dir.join(format!("{port}.wav"));
    let legs = vec![(LegId(0), Channel::Left), (LegId(1), Channel::Right)];
    let cmd = MediaCommand::Record(RecordCommand::Start(path, legs));
    let _ = handle.commands.send(cmd).await;
    if let Some(to) = rec.siprec {
        use clicktocall::media::siprec_fork::ForkTarget;
        let sockets = [
            Arc::new(engine.lease().await?),
            Arc::new(engine.lease().await?),
        ];
        let target = ForkTarget {
            sockets,
            to: [to, to],
            formats: [Format::pcmu(), Format::pcmu()],
        };
        let cmd = MediaCommand::Record(RecordCommand::Fork(Some(target)));
        let _ = handle.commands.send(cmd).await;
    }
    Ok(())
}
