//! The load side: N calls' worth of browsers and phones driven from one thread.
//!
//! All RTP phones share ONE UDP socket (each gateway leg has its own port and latches its phone
//! by source address, so replies are told apart by the port they come from); their packets go out
//! in `sendmmsg` batches and come in by `recvmmsg`. Each browser keeps its own socket (the gateway
//! tells browsers apart by ICE username, then source address) and its own str0m peer doing real
//! ICE and DTLS-SRTP. One loop wakes every millisecond: calls are spread over 20 slots, so each
//! tick sends the packets of the calls whose 20 ms are due, then reads whatever epoll says is
//! waiting. Arrival times are the kernel's receive timestamps, so the loop's own lateness in
//! reading does not count as latency; lateness in *sending* shows up as fewer packets offered,
//! which the summary reports (and warns about below 49 per second).

use crate::browser::Browser;
use crate::sys::{self, Epoll, RecvBatch, SendBatch};
use crate::tally::{self, Summary, Tally, Usage, Window};
use crate::target::{Target, TargetSpec};
use clicktocall::media::rtp::{self, RtpView};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// What each call is.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A WebRTC browser bridged to one RTP phone (or two, in a conference).
    WebRtc,
    /// Two RTP phones: a SIP trunk caller and an agent.
    Sip,
}

/// The load's parameters.
pub struct LoadArgs {
    pub target: TargetSpec,
    pub calls: usize,
    pub secs: u64,
    pub parties: usize,
    pub kind: Kind,
    pub warmup_secs: u64,
    /// Measurement windows of `secs` one after the other, each with its own row (a long run's
    /// loss and memory over time).
    pub rounds: u32,
}

const TICK: Duration = Duration::from_millis(1);
const SLOTS: usize = 20;
/// Slots later than this are skipped, not caught up: the load then offers less, and says so.
const MAX_LATE: Duration = Duration::from_millis(20);
const PHONE: u64 = u64::MAX;
const NO_LEG: u32 = u32::MAX;

/// The SSRC phone leg `k` of call `i` sends with (also written into its SDP).
pub fn leg_ssrc(i: usize, k: usize) -> u32 {
    0x1000_0000 | (i as u32) << 2 | k as u32
}

/// An RTP phone leg: where it sends and its stream state.
struct Leg {
    to: SocketAddr,
    seq: u16,
    ts: u32,
    ssrc: u32,
}

struct Call {
    browser: Option<Browser>,
    legs: Vec<Leg>,
}

/// All calls and the one loop's state.
struct Rig {
    kind: Kind,
    /// Calls to be set up.
    expected: usize,
    calls: Vec<Call>,
    slots: Vec<Vec<u32>>,
    phone: UdpSocket,
    phone_addr: SocketAddr,
    epoll: Epoll,
    ready: Vec<u64>,
    rx: RecvBatch,
    tx: SendBatch,
    /// Stamp and direction (true: a to b) of each queued phone packet.
    tx_meta: Vec<(u64, bool)>,
    /// Gateway source port → call index << 2 | leg.
    by_port: Vec<u32>,
    /// Browser (or caller) to phone (or agent).
    down: Tally,
    /// Phone (or agent) to browser (or caller).
    up: Tally,
    window: Window,
    next_tick: Instant,
    tick_no: u64,
    skipped_ticks: u64,
    /// Every call is set up and connected (then str0m timeouts are served per slot).
    all_connected: bool,
    scratch: Vec<u8>,
}

impl Rig {
    fn new(kind: Kind, calls: usize) -> anyhow::Result<Self> {
        let phone = sys::udp_socket(8 << 20)?;
        let epoll = Epoll::new(calls + 2)?;
        epoll.add(phone.as_raw_fd(), PHONE)?;
        Ok(Rig {
            kind,
            expected: calls,
            calls: Vec::with_capacity(calls),
            slots: vec![Vec::new(); SLOTS],
            phone_addr: phone.local_addr()?,
            phone,
            epoll,
            ready: Vec::new(),
            rx: RecvBatch::new(64),
            tx: SendBatch::default(),
            tx_meta: Vec::new(),
            by_port: vec![NO_LEG; 65536],
            down: Tally::default(),
            up: Tally::default(),
            window: Window::default(),
            next_tick: Instant::now(),
            tick_no: 0,
            skipped_ticks: 0,
            all_connected: false,
            scratch: Vec::with_capacity(200),
        })
    }

    /// Sets call `i` up through `target` (`parties` 2 or 3).
    fn add_call(&mut self, target: &mut Target, i: usize, parties: usize) -> anyhow::Result<()> {
        let (browser, dests) = match self.kind {
            Kind::WebRtc => {
                let (mut b, offer, pending) = Browser::offer(Instant::now())?;
                let phones = vec![self.phone_addr; parties - 1];
                let (answer, dests) = target.webrtc(i, &offer, &phones)?;
                b.accept(pending, &answer)?;
                self.epoll.add(b.fd(), i as u64)?;
                (Some(b), dests)
            }
            Kind::Sip => {
                let dests = target.sip(i, self.phone_addr, self.phone_addr)?;
                (None, dests.to_vec())
            }
        };
        let mut legs = Vec::new();
        for (k, to) in dests.into_iter().enumerate() {
            self.by_port[to.port() as usize] = (i as u32) << 2 | k as u32;
            let ssrc = leg_ssrc(i, k);
            legs.push(Leg {
                to,
                seq: 0,
                ts: 0,
                ssrc,
            });
        }
        self.calls.push(Call { browser, legs });
        self.slots[i % SLOTS].push(i as u32);
        Ok(())
    }

    fn connected(&self) -> usize {
        self.calls
            .iter()
            .filter(|c| c.browser.as_ref().is_none_or(|b| b.connected))
            .count()
    }

    /// Runs the loop until `deadline` or until `done` says so.
    fn run_until(&mut self, deadline: Instant, done: impl Fn(&Rig) -> bool) -> anyhow::Result<()> {
        loop {
            let now = Instant::now();
            if now >= deadline || done(self) {
                return Ok(());
            }
            self.step(now)?;
            let wake = self.next_tick.min(deadline);
            if let Some(d) = wake.checked_duration_since(Instant::now()) {
                std::thread::sleep(d);
            }
        }
    }

    fn run_for(&mut self, d: Duration) -> anyhow::Result<()> {
        self.run_until(Instant::now() + d, |_| false)
    }

    /// One pass: due slots, str0m timeouts, then everything waiting to be read.
    fn step(&mut self, now: Instant) -> anyhow::Result<()> {
        while self.next_tick <= now {
            if now - self.next_tick > MAX_LATE {
                if self.window.contains(sys::realtime_us()) {
                    self.skipped_ticks += 1;
                }
            } else {
                self.send_slot((self.tick_no % SLOTS as u64) as usize, now);
            }
            self.next_tick += TICK;
            self.tick_no += 1;
        }
        self.flush();
        // Until every browser is connected, handshakes need their timeouts on time; after that a
        // browser's timeouts (RTCP, TWCC, consent) are served in its slot, every 20 ms.
        if !self.all_connected {
            for c in &mut self.calls {
                if let Some(b) = &mut c.browser {
                    b.timeout(now, &mut self.up, &self.window);
                }
            }
            self.all_connected = self.connected() == self.expected;
        }
        self.receive(now)
    }

    /// Sends the packets of the calls in `slot`: the browser's through str0m, the phones' queued.
    fn send_slot(&mut self, slot: usize, now: Instant) {
        let sip = self.kind == Kind::Sip;
        for &i in &self.slots[slot] {
            let call = &mut self.calls[i as usize];
            if let Some(b) = &mut call.browser {
                if !b.connected {
                    continue; // phones talk once the browser is there
                }
                // `send` feeds str0m a timeout with the write: that serves its due timers too.
                if let Some(stamp) = b.send(now, &mut self.up, &self.window) {
                    self.down.sent(stamp, &self.window);
                }
            }
            for (k, leg) in call.legs.iter_mut().enumerate() {
                let mut payload = [0u8; 160];
                let stamp = sys::realtime_us();
                tally::stamp(&mut payload, stamp, 0x33);
                rtp::write(
                    &mut self.scratch,
                    false,
                    0,
                    leg.seq,
                    leg.ts,
                    leg.ssrc,
                    &payload,
                );
                leg.seq = leg.seq.wrapping_add(1);
                leg.ts = leg.ts.wrapping_add(160);
                self.tx.push(leg.to, &self.scratch);
                // SIP: the caller (leg 0) talks towards the agent; phones talk towards the browser.
                self.tx_meta.push((stamp, sip && k == 0));
            }
        }
    }

    /// Sends the queued phone packets; counts those that went out.
    fn flush(&mut self) {
        if self.tx.len() == 0 {
            return;
        }
        let sent = self.tx.flush(self.phone.as_raw_fd());
        for &(stamp, down) in &self.tx_meta[..sent.min(self.tx_meta.len())] {
            let t = if down { &mut self.down } else { &mut self.up };
            t.sent(stamp, &self.window);
        }
        self.tx_meta.clear();
    }

    /// Reads every socket epoll reports ready.
    fn receive(&mut self, now: Instant) -> anyhow::Result<()> {
        self.ready.clear();
        self.ready.extend(self.epoll.ready()?);
        for idx in 0..self.ready.len() {
            let token = self.ready[idx];
            if token == PHONE {
                loop {
                    let n = self.rx.recv(self.phone.as_raw_fd(), 64)?;
                    self.phone_batch(n);
                    if n < 64 {
                        break;
                    }
                }
            } else if let Some(Call {
                browser: Some(b), ..
            }) = self.calls.get_mut(token as usize)
            {
                let n = self.rx.recv(b.fd(), 8)?;
                for k in 0..n {
                    let (data, from, rx_us) = self.rx.get(k);
                    b.receive(now, from, data, rx_us, &mut self.up, &self.window);
                }
            }
        }
        Ok(())
    }

    /// Counts the first `n` datagrams of the receive batch, which arrived at the phone socket.
    fn phone_batch(&mut self, n: usize) {
        for k in 0..n {
            let (data, from, rx_us) = self.rx.get(k);
            let id = self.by_port[from.port() as usize];
            if id == NO_LEG {
                continue; // not from a leg of ours (a stray packet, or RTCP)
            }
            let Ok(p) = RtpView::parse(data) else {
                continue;
            };
            // SIP: the caller (leg 0) hears the agent; everywhere else a phone hears the browser.
            let t = if self.kind == Kind::Sip && id & 3 == 0 {
                &mut self.up
            } else {
                &mut self.down
            };
            t.record(p.payload, rx_us, &self.window);
        }
    }
}

/// Runs the load: sets the calls up, waits for them to connect, warms up, measures, reports.
pub fn run(args: LoadArgs) -> anyhow::Result<()> {
    let n = args.calls;
    anyhow::ensure!(n > 0 && n <= 16_000, "--calls is 1 to 16000");
    anyhow::ensure!(
        args.parties == 2 || (args.parties == 3 && args.kind == Kind::WebRtc),
        "--parties 3 is for --kind webrtc"
    );
    let mut target = Target::open(&args.target)?;
    let base = target.base_rss()?;
    let mut rig = Rig::new(args.kind, n)?;
    let setup = Instant::now();
    for i in 0..n {
        rig.add_call(&mut target, i, args.parties)?;
        rig.step(Instant::now())?;
    }
    eprintln!(
        "load: {n} calls set up through {} in {:.1} s (RSS before: {base} KiB)",
        target.name(),
        setup.elapsed().as_secs_f64()
    );
    rig.run_until(Instant::now() + Duration::from_secs(30), |r| {
        r.connected() == n
    })?;
    let up = rig.connected();
    if up < n {
        eprintln!(
            "load: only {up} of {n} calls connected (ICE + DTLS) within 30 s; measuring anyway"
        );
    }
    eprintln!(
        "load: {up} calls connected; warming up {} s",
        args.warmup_secs
    );
    rig.run_for(Duration::from_secs(args.warmup_secs))?;
    for round in 0..args.rounds.max(1) {
        if args.rounds > 1 {
            eprintln!("load: window {} of {}", round + 1, args.rounds);
        }
        rig.down = Tally::default();
        rig.up = Tally::default();
        rig.skipped_ticks = 0;
        rig.window = Window {
            start: sys::realtime_us(),
            ..Window::default()
        };
        let (load0, wall0) = (sys::proc_usage(None).0, Instant::now());
        target.mark()?;
        rig.run_for(Duration::from_secs(args.secs))?;
        let target_usage = Usage {
            base_rss_kib: base as f64,
            ..target.stats()?
        };
        rig.window.end = sys::realtime_us();
        let load_usage = Usage {
            cpu_s: sys::proc_usage(None).0 - load0,
            wall_s: wall0.elapsed().as_secs_f64(),
            ..Usage::default()
        };
        rig.run_for(Duration::from_millis(500))?; // packets in flight land
        report(&args, target.name(), &mut rig, target_usage, load_usage);
    }
    target.hang_up(n);
    Ok(())
}

/// Prints what went wrong on the way, then the summary.
fn report(args: &LoadArgs, target: &str, rig: &mut Rig, target_usage: Usage, load_usage: Usage) {
    let n = args.calls;
    if rig.skipped_ticks > 0 {
        eprintln!(
            "load: {} ticks of 1 ms skipped in the window (the loop ran more than 20 ms late)",
            rig.skipped_ticks
        );
    }
    let failed = rig
        .calls
        .iter()
        .filter(|c| c.browser.as_ref().is_some_and(|b| b.failed))
        .count();
    if failed > 0 {
        eprintln!("load: {failed} browsers failed (str0m error, see above)");
    }
    let phones = args.parties - 1;
    let (legs, recv_legs, names) = match args.kind {
        Kind::WebRtc => ((1, phones), (phones, 1), ("to phone", "to browser")),
        Kind::Sip => ((1, 1), (1, 1), ("to agent", "to caller")),
    };
    let kind = match (args.kind, args.parties) {
        (Kind::Sip, _) => "sip-sip",
        (Kind::WebRtc, 3) => "webrtc-conf3",
        _ => "webrtc-rtp",
    };
    let summary = Summary {
        target,
        kind,
        calls: n,
        target_usage,
        load_usage,
        legs,
        recv_legs,
        names,
        mixed: args.parties == 3,
    };
    summary.print(&mut rig.down, &mut rig.up);
}
