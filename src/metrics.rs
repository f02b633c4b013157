//! Prometheus metrics. Counters and the setup-time histogram are process-wide atomics bumped where
//! things happen; gauges (calls by state, queues, agents, WebSocket sessions) are read at scrape
//! time from their owners. `render` writes the text exposition format for `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the call setup histogram.
pub const SETUP_BUCKETS: [f64; 8] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0];

/// Labelled counters: `name{label="value"}` → count.
#[derive(Default)]
struct Counters(Mutex<BTreeMap<(&'static str, &'static str, String), u64>>);

impl Counters {
    fn add(&self, name: &'static str, label: &'static str, value: &str) {
        self.add_n(name, label, value, 1);
    }

    fn add_n(&self, name: &'static str, label: &'static str, value: &str, n: u64) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: label values come from fixed code lists, SIP status codes or call kinds.
        if m.len() < 10_000 {
            *m.entry((name, label, value.to_string())).or_default() += n;
        }
    }
}

/// Upper bounds (milliseconds) of the media jitter histogram.
pub const JITTER_BUCKETS: [f64; 7] = [5.0, 10.0, 20.0, 30.0, 50.0, 100.0, 200.0];

/// Per leg (customer, agent): a call's interarrival jitter at its end.
static JITTER: [Histogram<{ JITTER_BUCKETS.len() }>; 2] = [
    Histogram::new(JITTER_BUCKETS),
    Histogram::new(JITTER_BUCKETS),
];
const LEGS: [&str; 2] = ["customer", "agent"];

/// The receive quality of one leg of a call that ended (`customer` or `agent`): packets expected
/// and lost are counted (loss ratio = rate(lost) / rate(expected)); the jitter goes to a histogram.
pub fn media_quality(leg: &'static str, q: &crate::records::cdr::Quality) {
    COUNTERS.add_n(
        "clicktocall_media_packets_expected_total",
        "leg",
        leg,
        u64::from(q.expected),
    );
    COUNTERS.add_n(
        "clicktocall_media_packets_lost_total",
        "leg",
        leg,
        q.lost.max(0) as u64,
    );
    if let Some(i) = LEGS.iter().position(|l| *l == leg) {
        JITTER[i].observe(q.jitter_ms);
    }
}

/// Upper bounds of the MOS histogram (1 = bad, 4.5 = the best G.711 can do).
pub const MOS_BUCKETS: [f64; 7] = [1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5];

/// Per leg (customer, agent): a call's MOS estimate at its end.
static MOS: [Histogram<{ MOS_BUCKETS.len() }>; 2] =
    [Histogram::new(MOS_BUCKETS), Histogram::new(MOS_BUCKETS)];

/// A leg's MOS estimate at the end of its call (`customer` or `agent`).
pub fn call_mos(leg: &'static str, mos: f64) {
    if let Some(i) = LEGS.iter().position(|l| *l == leg) {
        MOS[i].observe(mos);
    }
}

/// A cumulative histogram with fixed upper bounds; the sum is kept in millionths of the unit.
struct Histogram<const N: usize> {
    bounds: [f64; N],
    buckets: [AtomicU64; N],
    count: AtomicU64,
    sum_millionths: AtomicU64,
}

impl<const N: usize> Histogram<N> {
    const fn new(bounds: [f64; N]) -> Self {
        Histogram {
            bounds,
            buckets: [const { AtomicU64::new(0) }; N],
            count: AtomicU64::new(0),
            sum_millionths: AtomicU64::new(0),
        }
    }

    fn observe(&self, value: f64) {
        for (bucket, le) in self.buckets.iter().zip(&self.bounds) {
            if value <= *le {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_millionths
            .fetch_add((value.max(0.0) * 1e6) as u64, Ordering::Relaxed);
    }

    /// The `_bucket`, `_sum` and `_count` series of `name`, with `labels` (`k="v"`, or empty).
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let (le_prefix, braced) = if labels.is_empty() {
            (String::new(), String::new())
        } else {
            (format!("{labels},"), format!("{{{labels}}}"))
        };
        for (bucket, le) in self.buckets.iter().zip(&self.bounds) {
            let n = bucket.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{le_prefix}le=\"{le}\"}} {n}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{le_prefix}le=\"+Inf\"}} {count}");
        let sum = self.sum_millionths.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{braced} {sum}");
        let _ = writeln!(out, "{name}_count{braced} {count}");
    }
}

static COUNTERS: std::sync::LazyLock<Counters> = std::sync::LazyLock::new(Counters::default);
static SETUP: Histogram<{ SETUP_BUCKETS.len() }> = Histogram::new(SETUP_BUCKETS);
static WS_SESSIONS: AtomicU64 = AtomicU64::new(0);

/// A call started (`browser`, `sip`, `callback`).
pub fn call_started(kind: &str) {
    COUNTERS.add("clicktocall_calls_started_total", "kind", kind);
}

static RECORDINGS_ACTIVE: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// A recording started (`1`) or finished (`-1`).
pub fn recording_active(delta: i64) {
    RECORDINGS_ACTIVE.fetch_add(delta, Ordering::Relaxed);
}

/// A recording's file was finished with `bytes` in it.
pub fn recording_written(bytes: u64) {
    COUNTERS.add_n("clicktocall_recording_bytes_total", "kind", "wav", bytes);
}

/// A recording that failed (disk full, directory not writable, the writer too slow).
pub fn recording_failed() {
    COUNTERS.add("clicktocall_recordings_failed_total", "reason", "write");
}

/// RTP bytes a SIPREC session sent its recorder.
pub fn recording_streamed(bytes: u64) {
    COUNTERS.add_n("clicktocall_recording_bytes_total", "kind", "siprec", bytes);
}

/// A SIPREC session that no recorder of the queue's list took (or kept).
pub fn recording_recorder_failed() {
    COUNTERS.add("clicktocall_recordings_failed_total", "reason", "recorder");
}

/// A call record dropped: the records database was unreachable and the in-memory backlog full.
pub fn records_dropped() {
    COUNTERS.add(
        "clicktocall_records_dropped_total",
        "reason",
        "backlog_full",
    );
}

/// A call ended with `reason`.
pub fn call_ended(reason: &str) {
    COUNTERS.add("clicktocall_calls_ended_total", "reason", reason);
}

/// A request refused, by stable reason code (widget/API error codes, `overload`, `origin`, ...).
pub fn rejected(reason: &str) {
    COUNTERS.add("clicktocall_rejected_total", "reason", reason);
}

/// A SIP response the gateway sent.
pub fn sip_response(code: u16) {
    COUNTERS.add("clicktocall_sip_responses_total", "code", &code.to_string());
}

/// Time from a call's request to its customer's media flowing.
pub fn call_setup(d: Duration) {
    SETUP.observe(d.as_secs_f64());
}

/// A widget WebSocket session; the count drops when the guard does.
pub struct WsSession(());

impl WsSession {
    /// Counts a session in, unless `max` are open (then `None`).
    pub fn open(max: usize) -> Option<WsSession> {
        let n = WS_SESSIONS.fetch_add(1, Ordering::AcqRel);
        if n as usize >= max {
            WS_SESSIONS.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(WsSession(()))
    }
}

impl Drop for WsSession {
    fn drop(&mut self) {
        WS_SESSIONS.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Sessions open now.
pub fn ws_sessions() -> u64 {
    WS_SESSIONS.load(Ordering::Acquire)
}

/// Gauges read from their owners at scrape time.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Calls by state (`ivr`, `queued`, `connected`, ...).
    pub calls_by_state: BTreeMap<String, u64>,
    /// Per queue: (waiting, longest wait seconds).
    pub queues: Vec<(String, u64, u64)>,
    /// Agents by state.
    pub agents_by_state: BTreeMap<String, u64>,
    /// Calls in progress / the configured limit.
    pub calls_active: u64,
    /// The call limit.
    pub calls_limit: u64,
    /// SIP flood defence: (sources banned now, messages dropped ever, bans ever).
    pub sip_flood: (u64, u64, u64),
    /// Tasks alive on the async runtime (a leak shows as a count that never comes back down).
    pub tasks_alive: u64,
    /// Each media worker's calls and counters.
    pub media_workers: Vec<crate::media::engine::WorkerStats>,
}

fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The text exposition (format 0.0.4).
pub fn render(s: &Snapshot) -> String {
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, rows: Vec<(String, f64)>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, v) in rows {
            let _ = writeln!(out, "{name}{labels} {v}");
        }
    };
    gauge(
        "clicktocall_calls",
        "Calls in progress by state.",
        s.calls_by_state
            .iter()
            .map(|(k, v)| (format!("{{state=\"{}\"}}", esc(k)), *v as f64))
            .collect(),
    );
    gauge(
        "clicktocall_calls_active",
        "Calls in progress.",
        vec![(String::new(), s.calls_active as f64)],
    );
    gauge(
        "clicktocall_calls_limit",
        "The configured call limit.",
        vec![(String::new(), s.calls_limit as f64)],
    );
    gauge(
        "clicktocall_queue_waiting",
        "Calls waiting in each queue.",
        s.queues
            .iter()
            .map(|(q, w, _)| (format!("{{queue=\"{}\"}}", esc(q)), *w as f64))
            .collect(),
    );
    gauge(
        "clicktocall_queue_longest_wait_seconds",
        "Longest current wait in each queue.",
        s.queues
            .iter()
            .map(|(q, _, l)| (format!("{{queue=\"{}\"}}", esc(q)), *l as f64))
            .collect(),
    );
    gauge(
        "clicktocall_agents",
        "Agents by state.",
        s.agents_by_state
            .iter()
            .map(|(k, v)| (format!("{{state=\"{}\"}}", esc(k)), *v as f64))
            .collect(),
    );
    gauge(
        "clicktocall_ws_sessions",
        "Widget WebSocket sessions open.",
        vec![(String::new(), ws_sessions() as f64)],
    );
    gauge(
        "clicktocall_runtime_tasks_alive",
        "Tasks alive on the async runtime.",
        vec![(String::new(), s.tasks_alive as f64)],
    );

    gauge(
        "clicktocall_media_worker_calls",
        "Calls on each media worker.",
        s.media_workers
            .iter()
            .enumerate()
            .map(|(i, w)| (format!("{{worker=\"{i}\"}}"), w.calls as f64))
            .collect(),
    );
    gauge(
        "clicktocall_sip_banned_sources",
        "SIP sources banned now (flood or failed authentications).",
        vec![(String::new(), s.sip_flood.0 as f64)],
    );
    let _ = writeln!(
        out,
        "# HELP clicktocall_sip_flood_dropped_total SIP messages dropped unanswered from banned sources.\n# TYPE clicktocall_sip_flood_dropped_total counter\nclicktocall_sip_flood_dropped_total {}\n# HELP clicktocall_sip_bans_total SIP sources banned, ever.\n# TYPE clicktocall_sip_bans_total counter\nclicktocall_sip_bans_total {}",
        s.sip_flood.1, s.sip_flood.2
    );

    for (name, help, get) in [
        (
            "clicktocall_media_worker_rounds_total",
            "Event-loop rounds of each media worker (wake-ups).",
            (|w| w.rounds) as fn(&crate::media::engine::WorkerStats) -> u64,
        ),
        (
            "clicktocall_media_worker_timers_total",
            "Calls woken by their deadline on each media worker.",
            |w| w.timer_fires,
        ),
        (
            "clicktocall_media_worker_datagrams_total",
            "Datagrams each media worker received.",
            |w| w.datagrams,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (i, w) in s.media_workers.iter().enumerate() {
            let _ = writeln!(out, "{name}{{worker=\"{i}\"}} {}", get(w));
        }
    }
    let counters = COUNTERS.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut last = "";
    for ((name, label, value), n) in &counters {
        if *name != last {
            let _ = writeln!(out, "# TYPE {name} counter");
            last = name;
        }
        let _ = writeln!(out, "{name}{{{label}=\"{}\"}} {n}", esc(value));
    }

    let _ = writeln!(
        out,
        "# HELP clicktocall_call_setup_seconds From a call's request to its customer's media flowing.\n# TYPE clicktocall_call_setup_seconds histogram"
    );
    SETUP.render(&mut out, "clicktocall_call_setup_seconds", "");

    let _ = writeln!(
        out,
        "# HELP clicktocall_media_jitter_ms Interarrival jitter of each leg the gateway received, at the end of each call.\n# TYPE clicktocall_media_jitter_ms histogram"
    );
    for (leg, h) in LEGS.iter().zip(&JITTER) {
        h.render(
            &mut out,
            "clicktocall_media_jitter_ms",
            &format!("leg=\"{leg}\""),
        );
    }
    let _ = writeln!(
        out,
        "# HELP clicktocall_recordings_active Recordings being written.\n# TYPE clicktocall_recordings_active gauge\nclicktocall_recordings_active {}",
        RECORDINGS_ACTIVE.load(Ordering::Relaxed).max(0)
    );
    let _ = writeln!(
        out,
        "# HELP clicktocall_call_mos MOS estimate (E-model) of each leg, at the end of each call.\n# TYPE clicktocall_call_mos histogram"
    );
    for (leg, h) in LEGS.iter().zip(&MOS) {
        h.render(&mut out, "clicktocall_call_mos", &format!("leg=\"{leg}\""));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_gauges_counters_and_a_cumulative_histogram() {
        call_setup(Duration::from_millis(80));
        call_setup(Duration::from_millis(700));
        rejected("rate_limited");
        rejected("rate_limited");
        let mut s = Snapshot::default();
        s.calls_by_state.insert("queued".into(), 2);
        s.queues.push(("sup\"port".into(), 2, 40));
        let text = render(&s);
        assert!(
            text.contains("clicktocall_calls{state=\"queued\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("clicktocall_queue_longest_wait_seconds{queue=\"sup\\\"port\"} 40\n"));
        assert!(text.contains("clicktocall_rejected_total{reason=\"rate_limited\"} "));
        // Cumulative buckets: 80 ms is in le=0.1 and every bucket above; 700 ms from le=1.
        let bucket = |le: &str| {
            text.lines()
                .find(|l| {
                    l.starts_with(&format!(
                        "clicktocall_call_setup_seconds_bucket{{le=\"{le}\"}}"
                    ))
                })
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap()
        };
        assert!(bucket("0.1") >= 1 && bucket("1") > bucket("0.1"));
        assert_eq!(bucket("+Inf"), bucket("10"));
    }

    #[test]
    fn media_quality_counts_packets_and_buckets_jitter() {
        let q = crate::records::cdr::Quality {
            expected: 500,
            lost: 3,
            jitter_ms: 12.5,
        };
        media_quality("agent", &q);
        call_mos("customer", 3.4);
        let text = render(&Snapshot::default());
        let value = |series: &str| {
            text.lines()
                .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|n| n.parse::<f64>().ok())
                .unwrap_or_else(|| panic!("{series} missing: {text}"))
        };
        assert!(value("clicktocall_media_packets_expected_total{leg=\"agent\"}") >= 500.0);
        assert!(value("clicktocall_media_packets_lost_total{leg=\"agent\"}") >= 3.0);
        // 12.5 ms is above the 10 ms bucket's bound and within 20 ms.
        let b20 = value("clicktocall_media_jitter_ms_bucket{leg=\"agent\",le=\"20\"}");
        let b10 = value("clicktocall_media_jitter_ms_bucket{leg=\"agent\",le=\"10\"}");
        assert!(b20 >= b10 + 1.0, "{text}");
        assert!(value("clicktocall_media_jitter_ms_count{leg=\"agent\"}") >= 1.0);
        assert!(value("clicktocall_call_mos_bucket{leg=\"customer\",le=\"3.5\"}") >= 1.0);
        assert!(value("clicktocall_call_mos_count{leg=\"customer\"}") >= 1.0);
    }

    #[test]
    fn ws_sessions_are_capped_and_released() {
        let before = ws_sessions() as usize;
        let a = WsSession::open(before + 1).expect("room for one");
        assert!(WsSession::open(before + 1).is_none(), "full");
        drop(a);
        assert!(WsSession::open(before + 1).is_some());
    }
}
