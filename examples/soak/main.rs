//! Soak driver (issue 17, "no leaks"): starts the release gateway as a child process, loads it with
//! ~N calls in progress (browser and trunk customers through IVR, queue and agent), and checks that
//! its resident memory, fds, sockets, threads and tasks come back once the load stops.
//!
//! ```sh
//! cargo build --release --features soak --bin clicktocall --example soak && \
//!   ./target/release/examples/soak --calls 200 --minutes 30 --warmup-secs 600
//! ```
//!
//! Phases: baseline (agents registered) → warm-up load → idle settle → "before" → the soak load
//! (sampled for the peak) → settle until no call is left → "after". Exit code 1 when the verdict
//! fails: RSS after more than 5 % above before, or fds, UDP / TCP sockets or runtime tasks not back
//! to baseline.

#[path = "../../tests/common/mod.rs"]
mod common;
mod gateway;
mod load;

use clap::Parser;
use gateway::{Gateway, Sample};
use load::Stats;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{sleep, Instant};

#[derive(Parser)]
#[command(about = "Soak the gateway: calls cycling for a while, then check nothing leaked")]
struct Args {
    /// Calls in progress at once (half browsers, half trunk callers).
    #[arg(long, default_value_t = 200)]
    calls: usize,
    /// Length of the soak load, in minutes.
    #[arg(long, default_value_t = 30.0)]
    minutes: f64,
    /// Length of each call, from its start to its hang-up, in seconds.
    #[arg(long, default_value_t = 20)]
    call_secs: u64,
    /// Length of the warm-up load before the "before" figures, in seconds.
    #[arg(long, default_value_t = 120)]
    warmup_secs: u64,
    /// Idle time before taking the "before" and "after" figures, in seconds (SIP transactions
    /// linger 32 s after a call: 64 × T1).
    #[arg(long, default_value_t = 40)]
    settle_secs: u64,
    /// Registered agents (default: as many as calls).
    #[arg(long)]
    agents: Option<usize>,
    /// The gateway binary.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/target/release/clicktocall"))]
    gateway: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    quiet_panics();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler");
        // Leaving `soak` drops the gateway child, which kills it.
        tokio::select! {
            r = soak(args) => match r {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("soak: {e:#}");
                    ExitCode::from(2)
                }
            },
            _ = tokio::signal::ctrl_c() => {
                eprintln!("soak: interrupted; the gateway is stopped");
                ExitCode::from(130)
            }
            _ = term.recv() => ExitCode::from(143),
        }
    })
}

/// Call failures are counted, so the helpers' panics (they assert) print only the first few.
fn quiet_panics() {
    static SHOWN: AtomicUsize = AtomicUsize::new(0);
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if SHOWN.fetch_add(1, Ordering::Relaxed) < 5 {
            default(info);
        }
    }));
}

fn now() -> String {
    let s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    format!("{:02}:{:02}:{:02}", s / 3600 % 24, s / 60 % 60, s % 60)
}

macro_rules! say {
    ($($t:tt)*) => { eprintln!("[{}] {}", now(), format!($($t)*)) };
}

/// The whole run; `Ok(true)` when the verdict passes.
async fn soak(args: Args) -> anyhow::Result<bool> {
    anyhow::ensure!(
        args.gateway.exists(),
        "no gateway binary at {}; build it: cargo build --release --bin clicktocall",
        args.gateway.display()
    );
    let agents = args.agents.unwrap_or(args.calls).max(1);
    let mut gw = Gateway::start(&args.gateway, agents).await?;
    say!(
        "gateway pid {} (http {}, sip {}), files in {}",
        gw.pid,
        gw.http,
        gw.sip,
        gw.dir.display()
    );
    let stats = Arc::new(Stats::default());
    load::start_agents(gw.sip, agents, stats.clone()).await?;
    wait_agents(&gw, agents).await?;
    sleep(Duration::from_secs(2)).await;
    let baseline = gw.sample().await;
    say!("baseline ({agents} agents registered): {baseline:?}");

    let call_len = Duration::from_secs(args.call_secs);
    let warmup = Duration::from_secs(args.warmup_secs);
    say!("warm-up: {} calls for {warmup:?}", args.calls);
    let until = Instant::now() + warmup;
    load::run(gw.http, gw.sip, args.calls, call_len, until, stats.clone()).await;
    let warm = (
        stats.completed.load(Ordering::Relaxed),
        stats.failed_total(),
    );
    settle(&gw, args.settle_secs).await;
    let before = gw.sample().await;
    say!("before: {before:?}");

    let length = Duration::from_secs_f64(args.minutes * 60.0);
    say!("soak: {} calls of {call_len:?} for {length:?}", args.calls);
    let until = Instant::now() + length;
    let loaded = load::run(gw.http, gw.sip, args.calls, call_len, until, stats.clone());
    let (peak, progress) = sample_while(loaded, &gw, &stats, before).await;
    say!("load stopped ({progress})");
    settle(&gw, args.settle_secs).await;
    let after = gw.sample().await;
    say!("after: {after:?}");
    anyhow::ensure!(gw.alive(), "the gateway died; see {}", gw.log().display());

    let completed = stats.completed.load(Ordering::Relaxed) - warm.0;
    let failed = stats.failed_total() - warm.1;
    report(&[baseline, before, peak, after], completed, failed, &stats);
    let pass = verdict(baseline, before, after);
    if pass {
        let dir = gw.dir.clone();
        drop(gw);
        let _ = std::fs::remove_dir_all(dir);
    } else {
        println!("gateway files kept in {}", gw.dir.display());
    }
    Ok(pass)
}

/// Runs the load while sampling the gateway every 5 s (and logging progress every minute): the
/// peak figures and a progress line.
async fn sample_while(
    load: impl std::future::Future<Output = ()>,
    gw: &Gateway,
    stats: &Stats,
    mut peak: Sample,
) -> (Sample, String) {
    tokio::pin!(load);
    let started = Instant::now();
    let mut last_log = Instant::now();
    let progress = || {
        format!(
            "{} calls started, {} completed, {} failed, {:.0} s",
            stats.started.load(Ordering::Relaxed),
            stats.completed.load(Ordering::Relaxed),
            stats.failed_total(),
            started.elapsed().as_secs_f64()
        )
    };
    loop {
        tokio::select! {
            _ = &mut load => return (peak, progress()),
            _ = sleep(Duration::from_secs(5)) => {
                let s = gw.sample().await;
                peak = peak.max(s);
                if last_log.elapsed() >= Duration::from_secs(60) {
                    last_log = Instant::now();
                    say!("{}; now {} calls, {s:?}", progress(), gw.calls().await.unwrap_or(0));
                }
            }
        }
    }
}

/// Waits until every agent is available (registered, idle).
async fn wait_agents(gw: &Gateway, agents: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = gw.agents_available().await.unwrap_or(0);
        if n >= agents {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {n} of {agents} agents available"
        );
        sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until the gateway has no call left (at most 2 minutes), then `secs` more.
async fn settle(gw: &Gateway, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let n = gw.calls().await.unwrap_or(usize::MAX);
        if n == 0 {
            break;
        }
        if Instant::now() > deadline {
            say!("still {n} calls after 2 minutes; measuring anyway");
            break;
        }
        sleep(Duration::from_secs(1)).await;
    }
    say!("no calls left; settling {secs} s");
    sleep(Duration::from_secs(secs)).await;
}

/// The figures table.
fn report(s: &[Sample; 4], completed: u64, failed: u64, stats: &Stats) {
    let row = |name: &str, f: fn(&Sample) -> u64| {
        println!(
            "| {name:<14} | {:>9} | {:>9} | {:>9} | {:>9} |",
            f(&s[0]),
            f(&s[1]),
            f(&s[2]),
            f(&s[3])
        );
    };
    println!();
    println!("| gateway        |  baseline |    before |      peak |     after |");
    println!("|----------------|----------:|----------:|----------:|----------:|");
    row("RSS (KiB)", |s| s.rss_kib);
    row("open fds", |s| s.fds);
    row("UDP sockets", |s| s.udp);
    row("TCP sockets", |s| s.tcp);
    row("threads", |s| s.threads);
    row("tasks alive", |s| s.tasks);
    println!();
    println!(
        "soak calls: {completed} completed, {failed} failed (warm-up included: {} started, {} agent calls)",
        stats.started.load(Ordering::Relaxed),
        stats.agent_calls.load(Ordering::Relaxed)
    );
    for (reason, n) in stats.failed.lock().unwrap().iter() {
        println!("  failed (whole run): {n} × {reason}");
    }
}

/// RSS after within 5 % of before; fds, sockets and tasks back to baseline.
fn verdict(baseline: Sample, before: Sample, after: Sample) -> bool {
    let rss = after.rss_kib as f64 / before.rss_kib.max(1) as f64 - 1.0;
    let checks = [
        (
            rss <= 0.05,
            format!("RSS after {:+.1} % of before", rss * 100.0),
        ),
        (
            after.fds <= baseline.fds,
            format!("fds {} (baseline {})", after.fds, baseline.fds),
        ),
        (
            after.udp <= baseline.udp && after.tcp <= baseline.tcp,
            format!(
                "UDP {} TCP {} (baseline {} {})",
                after.udp, after.tcp, baseline.udp, baseline.tcp
            ),
        ),
        (
            after.tasks <= baseline.tasks,
            format!("tasks {} (baseline {})", after.tasks, baseline.tasks),
        ),
    ];
    let pass = checks.iter().all(|(ok, _)| *ok);
    let detail: Vec<String> = checks
        .iter()
        .map(|(ok, what)| format!("{what}: {}", if *ok { "ok" } else { "FAIL" }))
        .collect();
    let word = if pass { "PASS" } else { "FAIL" };
    println!("verdict: {word} ({})", detail.join("; "));
    pass
}
