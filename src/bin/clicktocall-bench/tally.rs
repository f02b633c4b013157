//! Counting: what was offered and what arrived in each direction inside the measurement window,
//! and the summary row. Times are µs on the realtime clock (the clock of the kernel's receive
//! timestamps), so a packet's latency is its arrival in the receiving socket minus the stamp it
//! was sent with, whatever the load loop was busy with when it read it.

/// The first 16 bytes of every stamped payload: send time (µs, big-endian) and a marker.
pub const MARK: &[u8; 4] = b"BNCH";

/// Writes a 160-byte PCMU payload stamped with `now_us`.
pub fn stamp(payload: &mut [u8; 160], now_us: u64, fill: u8) {
    payload.fill(fill);
    payload[..8].copy_from_slice(&now_us.to_be_bytes());
    payload[8..12].copy_from_slice(MARK);
}

/// The measurement window (0 = not started / not ended).
#[derive(Default, Clone, Copy)]
pub struct Window {
    pub start: u64,
    pub end: u64,
}

impl Window {
    /// Whether `us` falls inside.
    pub fn contains(&self, us: u64) -> bool {
        self.start != 0 && us >= self.start && (self.end == 0 || us < self.end)
    }
}

/// Packets of one direction. Only packets *sent* inside the window count, wherever their arrival
/// falls, so packets in flight at the window's edges are neither lost nor double-counted.
#[derive(Default)]
pub struct Tally {
    pub sent: u64,
    pub received: u64,
    /// Packets that arrived inside the window, stamped or not (mixed audio carries no stamp).
    pub arrived: u64,
    pub latencies_us: Vec<u32>,
}

impl Tally {
    /// A packet stamped `sent_us` went out.
    pub fn sent(&mut self, sent_us: u64, window: &Window) {
        if window.contains(sent_us) {
            self.sent += 1;
        }
    }

    /// A payload arrived at `rx_us`.
    pub fn record(&mut self, payload: &[u8], rx_us: u64, window: &Window) {
        if window.contains(rx_us) {
            self.arrived += 1;
        }
        if payload.len() < 16 || &payload[8..12] != MARK {
            return;
        }
        let mut b = [0u8; 8];
        b.copy_from_slice(&payload[..8]);
        let sent_us = u64::from_be_bytes(b);
        if window.contains(sent_us) {
            self.received += 1;
            let lat = rx_us.saturating_sub(sent_us).min(u32::MAX as u64) as u32;
            self.latencies_us.push(lat);
        }
    }

    /// Loss in percent of what was sent.
    pub fn loss(&self) -> f64 {
        let sent = self.sent.max(1);
        100.0 * sent.saturating_sub(self.received) as f64 / sent as f64
    }

    /// The p50 and p99 latencies in ms.
    pub fn percentiles(&mut self) -> (f64, f64) {
        let lat = &mut self.latencies_us;
        lat.sort_unstable();
        let pct = |p: f64| {
            let i = ((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1));
            lat.get(i).copied().unwrap_or(0) as f64 / 1000.0
        };
        (pct(0.5), pct(0.99))
    }
}

/// CPU seconds and memory of one process over the window.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub cpu_s: f64,
    pub wall_s: f64,
    pub rss_kib: f64,
    pub base_rss_kib: f64,
}

/// Everything the summary row needs.
pub struct Summary<'a> {
    pub target: &'a str,
    pub kind: &'a str,
    pub calls: usize,
    pub target_usage: Usage,
    pub load_usage: Usage,
    /// Legs sending in each direction per call (a to b, b to a).
    pub legs: (usize, usize),
    /// Legs receiving in each direction per call.
    pub recv_legs: (usize, usize),
    pub names: (&'a str, &'a str),
    /// A conference: the audio is mixed, so loss and latency cannot be told.
    pub mixed: bool,
}

impl Summary<'_> {
    /// Prints the details, a warning when the load could not offer full rate, and the row.
    pub fn print(&self, down: &mut Tally, up: &mut Tally) {
        let (t, l, n) = (self.target_usage, self.load_usage, self.calls.max(1) as f64);
        let wall = t.wall_s.max(0.001);
        let cpu = 100.0 * t.cpu_s / wall;
        let rss_call = (t.rss_kib - t.base_rss_kib) / n;
        let load_cpu = 100.0 * l.cpu_s / l.wall_s.max(0.001);
        let pps =
            |x: &Tally, legs: usize| x.sent as f64 / l.wall_s.max(0.001) / (n * legs.max(1) as f64);
        let (pd, pu) = (pps(down, self.legs.0), pps(up, self.legs.1));
        println!(
            "{} calls ({}) through {}, window {wall:.1} s",
            self.calls, self.kind, self.target
        );
        println!("  {} CPU {cpu:.1} % of one core, {:.4} % per call; RSS {:.0} KiB ({:.0} before any call), {rss_call:.1} KiB per call",
            self.target, cpu / n, t.rss_kib, t.base_rss_kib);
        println!(
            "  load CPU {load_cpu:.1} % of one core, {:.4} % per call",
            load_cpu / n
        );
        let dirs = [
            (self.names.0, &mut *down, self.legs.0, self.recv_legs.0),
            (self.names.1, &mut *up, self.legs.1, self.recv_legs.1),
        ];
        for (name, x, legs, recv_legs) in dirs {
            let (p50, p99) = x.percentiles();
            println!("  {name:<12} offered {:>8} ({:.1}/s per leg)  received {:>8}  loss {:.3} %  latency p50 {p50:.2} ms  p99 {p99:.2} ms  arrived {:.1}/s per leg",
                x.sent, pps(x, legs), x.received, x.loss(), x.arrived as f64 / wall / n / recv_legs.max(1) as f64);
        }
        if pd.min(pu) < 49.0 {
            println!("WARNING: the load offered only {pd:.1} / {pu:.1} packets/s per leg (of 50): it could not keep up, so the figures per call are for slower calls");
        }
        let (d50, d99) = down.percentiles();
        let (u50, u99) = up.percentiles();
        let quality = if self.mixed {
            // Mixed audio carries no stamps: only arrivals per leg mean anything.
            "(mixed) | | |".to_string()
        } else {
            format!(
                "{:.3} % / {:.3} % | {d50:.2} / {d99:.2} ms | {u50:.2} / {u99:.2} ms |",
                down.loss(),
                up.loss()
            )
        };
        println!("| calls | kind | target | CPU (all) | CPU per call | RSS per call | load CPU | pps offered per leg | loss | p50 / p99 {} | {} |", self.names.0, self.names.1);
        println!("ROW | {} | {} | {} | {cpu:.1} % | {:.3} % | {rss_call:.0} KiB | {load_cpu:.1} % | {pd:.1} / {pu:.1} | {quality}",
            self.calls, self.kind, self.target, cpu / n);
    }
}
