//! Media-plane benchmark: N bridged calls, each a WebRTC browser leg (ICE, DTLS-SRTP) bridged to a
//! plain RTP phone, 50 packets/s each way. Two processes, so the load does not count against the
//! gateway:
//!
//! ```text
//! clicktocall-bench gateway --control 127.0.0.1:7300          # the media engine under test
//! clicktocall-bench load --control 127.0.0.1:7300 --calls 500 --secs 20
//! ```
//!
//! With `--parties 3` each call is a conference: the browser and two phones, everybody hearing
//! everybody (the gateway mixes); the load then counts packets arriving per leg, since mixed
//! audio no longer carries the send stamps.
//!
//! The load process plays N browsers (str0m peers) and N phones. Every PCMU payload carries its send
//! time and a sequence number in its first 16 bytes, which the gateway relays untouched, so the load
//! process measures loss and one-way added latency on its own clock. The gateway reports its CPU time
//! and resident memory over the measurement window (from /proc), so CPU and RSS per call are the
//! gateway's alone. See BENCHMARKS.md.

use clicktocall::media::engine::{MediaConfig, MediaEngine, MediaHandle};
use clicktocall::media::leg::NewLeg;
use clicktocall::media::rtp::{self, RtpView};
use clicktocall::media::rtp_leg::RtpLegTimers;
use clicktocall::media::sdp::{read_answer, Format};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use str0m::change::SdpAnswer;
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, RtcConfig};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let control: SocketAddr = arg(&args, "--control", "127.0.0.1:7300").parse()?;
    let threads: usize = arg(&args, "--threads", "1").parse()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?;
    match args.get(1).map(String::as_str) {
        Some("gateway") => {
            // `--record DIR`: every two-party call is recorded (stereo WAV per call) into DIR;
            // with `--siprec` too, each recording is also forked (two RTP streams) to a recorder
            // socket on this host (a thread that reads and counts).
            let record = Some(arg(&args, "--record", ""))
                .filter(|d| !d.is_empty())
                .map(|d| Recording {
                    dir: d.into(),
                    siprec: args.iter().any(|a| a == "--siprec").then(recorder_sink),
                });
            let workers: usize = arg(&args, "--workers", "1").parse()?;
            rt.block_on(gateway(control, record, workers))
        }
        Some("load") => {
            let calls: usize = arg(&args, "--calls", "100").parse()?;
            let secs: u64 = arg(&args, "--secs", "20").parse()?;
            let parties: usize = arg(&args, "--parties", "2").parse()?;
            anyhow::ensure!(matches!(parties, 2 | 3), "--parties is 2 or 3");
            rt.block_on(load(control, calls, secs, parties))
        }
        _ => {
            eprintln!("usage: clicktocall-bench gateway|load [--control ADDR] [--calls N] [--secs S] [--threads T] [--workers W] [--parties 2|3]");
            std::process::exit(2);
        }
    }
}

// ---- gateway side ---------------------------------------------------------------------------------

/// CPU seconds (user + system) and RSS in KiB of this process, from /proc.
fn proc_usage() -> (f64, u64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    // After the command name: state is field 3, utime 14, stime 15 (1-based in proc(5)).
    let ticks = |i: usize| {
        fields
            .get(i - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let cpu = (ticks(14) + ticks(15)) / 100.0; // USER_HZ is 100 on Linux
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    (cpu, rss)
}

/// How the benchmark's calls are recorded.
#[derive(Clone)]
struct Recording {
    dir: std::path::PathBuf,
    /// Where the SIPREC fork sends (a recorder on this host), if it runs.
    siprec: Option<SocketAddr>,
}

/// A recorder's receiving side: a thread reading one UDP socket, counting what arrives.
fn recorder_sink() -> SocketAddr {
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

async fn gateway(
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
        proc_usage().1
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
                let (leg, web, answer) = engine.answer_browser(Instant::now(), &offer).await?;
                let rtp = engine.lease_with_rtcp().await?;
                let sdp = format!("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {phone_port} RTP/AVP 0\r\n");
                let negotiated = read_answer(&sdp, &[Format::pcmu()])?;
                let port = rtp.local.port();
                let timers = RtpLegTimers {
                    media_timeout: Duration::from_secs(600),
                    ..Default::default()
                };
                let handle = engine
                    .spawn_pair(
                        (NewLeg::Browser(Box::new(leg)), web),
                        (NewLeg::Rtp(negotiated), rtp),
                        timers,
                    )
                    .await;
                if let Some(rec) = &record {
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
                }
                calls.lock().unwrap_or_else(|e| e.into_inner()).push(handle);
                w.write_all(
                    format!("ANSWER {port} {}\n", answer.replace("\r\n", "\\n")).as_bytes(),
                )
                .await?;
            }
            Some("BASE") => {
                w.write_all(format!("BASE {}\n", proc_usage().1).as_bytes())
                    .await?
            }
            Some("MARK") => {
                *mark.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some((Instant::now(), proc_usage().0));
                w.write_all(b"OK\n").await?;
            }
            Some("STATS") => {
                let (cpu, rss) = proc_usage();
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

// ---- load side ------------------------------------------------------------------------------------

/// Packets of one direction. Only packets *sent* inside the window count, wherever their arrival
/// falls, so packets in flight at the window's edges are neither lost nor double-counted.
#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    received: AtomicU64,
    /// Packets that arrived inside the window, stamped or not (mixed audio carries no stamp).
    arrived: AtomicU64,
    latencies_us: Mutex<Vec<u32>>,
}

impl Tally {
    fn record(&self, payload: &[u8], epoch: Instant, window: &Window) {
        if window.contains(epoch.elapsed().as_micros() as u64) {
            self.arrived.fetch_add(1, Ordering::Relaxed);
        }
        if payload.len() < 16 || &payload[8..12] != b"BNCH" {
            return;
        }
        let sent_us = u64::from_be_bytes(payload[..8].try_into().unwrap_or_default());
        if window.contains(sent_us) {
            let now_us = epoch.elapsed().as_micros() as u64;
            self.received.fetch_add(1, Ordering::Relaxed);
            self.latencies_us
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(now_us.saturating_sub(sent_us) as u32);
        }
    }
}

/// The measurement window, in µs since the epoch (0 = not started / not ended).
#[derive(Default)]
struct Window {
    start: AtomicU64,
    end: AtomicU64,
}

impl Window {
    fn contains(&self, us: u64) -> bool {
        let (s, e) = (
            self.start.load(Ordering::Relaxed),
            self.end.load(Ordering::Relaxed),
        );
        s != 0 && us >= s && (e == 0 || us < e)
    }
}

/// A 160-byte PCMU payload stamped with the send time (µs since `epoch`).
fn stamped(epoch: Instant, fill: u8) -> Vec<u8> {
    let mut p = vec![fill; 160];
    p[..8].copy_from_slice(&(epoch.elapsed().as_micros() as u64).to_be_bytes());
    p[8..12].copy_from_slice(b"BNCH");
    p
}

async fn load(control: SocketAddr, n: usize, secs: u64, parties: usize) -> anyhow::Result<()> {
    let epoch = Instant::now();
    let mut ctl = BufReader::new(TcpStream::connect(control).await?);
    let mut line = String::new();
    ctl.get_mut().write_all(b"BASE\n").await?;
    ctl.read_line(&mut line).await?;
    let base_rss: u64 = line.trim().strip_prefix("BASE ").unwrap_or("0").parse()?;
    let measuring = Arc::new(Window::default());
    let (to_phone, to_browser) = (Arc::new(Tally::default()), Arc::new(Tally::default()));
    let mut tasks = Vec::new();
    let setup = Instant::now();
    for i in 0..n {
        let bsock = UdpSocket::bind("127.0.0.1:0").await?;
        let phone = UdpSocket::bind("127.0.0.1:0").await?;
        let mut rtc = RtcConfig::new()
            .clear_codecs()
            .enable_pcmu(true, false)
            .build(Instant::now());
        rtc.add_local_candidate(Candidate::host(bsock.local_addr()?, "udp")?);
        let mut api = rtc.sdp_api();
        let mid = api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let (offer, pending) = api.apply().ok_or_else(|| anyhow::anyhow!("no offer"))?;
        let phone2 = if parties == 3 {
            Some(UdpSocket::bind("127.0.0.1:0").await?)
        } else {
            None
        };
        let sdp = offer.to_sdp_string().replace("\r\n", "\\n");
        let req = match &phone2 {
            Some(p2) => format!(
                "CALL3 {} {} {sdp}\n",
                phone.local_addr()?.port(),
                p2.local_addr()?.port()
            ),
            None => format!("CALL {} {sdp}\n", phone.local_addr()?.port()),
        };
        ctl.get_mut().write_all(req.as_bytes()).await?;
        line.clear();
        ctl.read_line(&mut line).await?;
        let mut parts = line.trim().splitn(3, ' ');
        anyhow::ensure!(
            parts.next() == Some("ANSWER"),
            "gateway refused call {i}: {line}"
        );
        let gw_rtp: SocketAddr = format!("127.0.0.1:{}", parts.next().unwrap_or("0")).parse()?;
        let mut rest = parts.next().unwrap_or_default();
        let phone2 = match phone2 {
            Some(p2) => {
                let (port, tail) = rest.split_once(' ').unwrap_or(("0", ""));
                rest = tail;
                Some((p2, format!("127.0.0.1:{port}").parse::<SocketAddr>()?))
            }
            None => None,
        };
        let answer = rest.replace("\\n", "\r\n");
        rtc.sdp_api()
            .accept_answer(pending, SdpAnswer::from_sdp_string(&answer)?)?;
        let (tp, tb, m) = (to_phone.clone(), to_browser.clone(), measuring.clone());
        tasks.push(tokio::spawn(async move {
            let phones = [Some((phone, gw_rtp)), phone2];
            let _ = call_loop(rtc, mid, bsock, phones, epoch, tp, tb, m).await;
        }));
    }
    eprintln!(
        "load: {n} calls set up in {:.1} s; warming up 3 s",
        setup.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Measurement window.
    measuring
        .start
        .store(epoch.elapsed().as_micros() as u64, Ordering::Relaxed);
    ctl.get_mut().write_all(b"MARK\n").await?;
    line.clear();
    ctl.read_line(&mut line).await?;
    tokio::time::sleep(Duration::from_secs(secs)).await;
    ctl.get_mut().write_all(b"STATS\n").await?;
    line.clear();
    ctl.read_line(&mut line).await?;
    measuring
        .end
        .store(epoch.elapsed().as_micros() as u64, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(500)).await; // packets in flight land
    let f: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let (cpu, wall, rss) = (
        f.first().copied().unwrap_or(0.0),
        f.get(1).copied().unwrap_or(1.0),
        f.get(2).copied().unwrap_or(0.0),
    );
    let report = |name: &str, t: &Tally| {
        let mut lat = t
            .latencies_us
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        lat.sort_unstable();
        let pct = |p: f64| {
            lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
                .copied()
                .unwrap_or(0)
        };
        let sent = t.sent.load(Ordering::Relaxed).max(1);
        let recv = t.received.load(Ordering::Relaxed);
        let loss = 100.0 * (sent.saturating_sub(recv)) as f64 / sent as f64;
        println!("  {name:<10} sent {sent:>8}  received {recv:>8}  loss {loss:>6.3} %  latency p50 {:>6} us  p99 {:>6} us", pct(0.5), pct(0.99));
    };
    println!("calls {n}, window {wall:.1} s");
    println!(
        "  gateway CPU {:.1} % of one core in all, {:.4} % per call",
        100.0 * cpu / wall,
        100.0 * cpu / wall / n as f64
    );
    println!(
        "  gateway RSS {rss:.0} KiB ({base_rss} KiB before any call): {:.1} KiB per call",
        (rss - base_rss as f64) / n as f64
    );
    report("to phone", &to_phone);
    report("to browser", &to_browser);
    let per_leg = |t: &Tally, legs: usize| {
        t.arrived.load(Ordering::Relaxed) as f64 / wall / (n * legs) as f64
    };
    println!(
        "  arrived per leg per second: phones {:.1}, browsers {:.1}",
        per_leg(&to_phone, parties - 1),
        per_leg(&to_browser, 1)
    );
    for t in tasks {
        t.abort();
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn call_loop(
    mut rtc: str0m::Rtc,
    mid: str0m::media::Mid,
    bsock: UdpSocket,
    phones: [Option<(UdpSocket, SocketAddr)>; 2],
    epoch: Instant,
    to_phone: Arc<Tally>,
    to_browser: Arc<Tally>,
    window: Arc<Window>,
) -> anyhow::Result<()> {
    let local = bsock.local_addr()?;
    let (mut bbuf, mut pbuf, mut pbuf2) = (vec![0u8; 2048], vec![0u8; 2048], vec![0u8; 2048]);
    let [Some((phone, gw_rtp)), second] = phones else {
        anyhow::bail!("no phone");
    };
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let (mut connected, mut ticks, mut seq) = (false, 0u64, 0u16);
    let pt = rtc.writer(mid).and_then(|w| {
        w.payload_params()
            .find(|p| p.spec().codec == Codec::PCMU)
            .map(|p| p.pt())
    });
    let pt = pt.ok_or_else(|| anyhow::anyhow!("no PCMU"))?;
    loop {
        // Drain str0m.
        let deadline = loop {
            match rtc.poll_output()? {
                Output::Transmit(t) => {
                    bsock.send_to(&t.contents, t.destination).await?;
                }
                Output::Event(Event::Connected) => connected = true,
                Output::Event(Event::MediaData(d)) => to_browser.record(&d.data, epoch, &window),
                Output::Event(_) => {}
                Output::Timeout(t) => break t,
            }
        };
        tokio::select! {
            r = bsock.recv_from(&mut bbuf) => {
                let (n, from) = r?;
                if let Ok(contents) = bbuf[..n].try_into() {
                    rtc.handle_input(Input::Receive(Instant::now(), Receive { proto: Protocol::Udp, source: from, destination: local, contents }))?;
                }
            }
            r = phone.recv_from(&mut pbuf) => {
                let (n, _) = r?;
                if let Ok(p) = RtpView::parse(&pbuf[..n]) {
                    to_phone.record(p.payload, epoch, &window);
                }
            }
            r = recv_opt(second.as_ref().map(|s| &s.0), &mut pbuf2) => {
                if let Ok(p) = RtpView::parse(&pbuf2[..r?]) {
                    to_phone.record(p.payload, epoch, &window);
                }
            }
            _ = tokio::time::sleep_until(deadline.into()) => rtc.handle_input(Input::Timeout(Instant::now()))?,
            _ = tick.tick() => {
                if connected {
                    let now = Instant::now();
                    if let Some(w) = rtc.writer(mid) {
                        let payload = stamped(epoch, 0x55);
                        let counted = window.contains(u64::from_be_bytes(payload[..8].try_into().unwrap_or_default()));
                        w.write(pt, now, MediaTime::new(ticks, Frequency::EIGHT_KHZ), payload)?;
                        if counted {
                            to_phone.sent.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    let payload = stamped(epoch, 0x33);
                    let counted_b = window.contains(u64::from_be_bytes(payload[..8].try_into().unwrap_or_default()));
                    let mut pkt = Vec::with_capacity(172);
                    rtp::write(&mut pkt, false, 0, seq, ticks as u32, 0xbe7c, &payload);
                    phone.send_to(&pkt, gw_rtp).await?;
                    if let Some((p2, to)) = &second {
                        p2.send_to(&pkt, to).await?;
                    }
                    if counted_b {
                        to_browser.sent.fetch_add(1, Ordering::Relaxed);
                    }

                    ticks += 160;
                    seq = seq.wrapping_add(1);
                }
            }
        }
    }
}

/// Receives on `sock`, or waits forever without one.
async fn recv_opt(sock: Option<&UdpSocket>, buf: &mut [u8]) -> std::io::Result<usize> {
    match sock {
        Some(s) => s.recv_from(buf).await.map(|(n, _)| n),
        None => std::future::pending().await,
    }
}
