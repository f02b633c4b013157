//! Media-plane benchmark: N calls, 50 packets/s each way per leg, through the gateway's media
//! engine or through rtpengine, with the engine and the load in two processes pinned to two
//! cores:
//!
//! ```text
//! clicktocall-bench gateway --control 127.0.0.1:7300 [--cpu 0]     # the media engine under test
//! clicktocall-bench load --control 127.0.0.1:7300 --calls 1000 --secs 15 [--cpu 1]
//! clicktocall-bench load --control 127.0.0.1:7300 --calls 1000 --kind sip
//! clicktocall-bench load --rtpengine 127.0.0.1:2223 --calls 1000     # the same calls via rtpengine
//! ```
//!
//! Call kinds: `webrtc` (default): a str0m browser (ICE, DTLS-SRTP, PCMU) bridged to a plain RTP
//! phone; with `--parties 3` a conference of the browser and two phones (the gateway mixes, so
//! only arrivals are counted); `sip`: two plain RTP phones relayed to each other.
//!
//! Every payload carries its send time in its first 16 bytes, which the media path relays
//! untouched, so the load measures loss and one-way latency (to the kernel's receive timestamp)
//! on one clock. The engine's CPU time and RSS come from /proc (the gateway's own, or the
//! rtpengine daemon's), the load's CPU time too. See BENCHMARKS.md.
//!
//! # Layout
//! - `gateway`: the engine behind a line-based control socket.
//! - `load`: the one-thread load loop; `browser`: one str0m peer; `tally`: counting and the summary.
//! - `target`: gateway or rtpengine, as the load sees them; `ng`: rtpengine's NG protocol.
//! - `sys`: pinning, /proc, epoll, `sendmmsg`/`recvmmsg`.

mod browser;
mod gateway;
mod load;
mod ng;
mod sys;
mod tally;
mod target;

use load::{Kind, LoadArgs};
use std::net::SocketAddr;
use target::TargetSpec;

const USAGE: &str = "usage:
  clicktocall-bench gateway [--control ADDR] [--threads T] [--workers W] [--cpu N|none] [--record DIR [--siprec]]
  clicktocall-bench load [--control ADDR | --rtpengine ADDR [--rtpengine-pid PID]]
                         [--calls N] [--secs S] [--rounds K] [--warmup S] [--kind webrtc|sip] [--parties 2|3] [--cpu N|none]
  --cpu pins the process to one core (default: gateway 0, load 1, on a machine with 2+ cores)";

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn parsed<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    match arg(args, name) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|e| anyhow::anyhow!("{name} {v:?}: {e}")),
    }
}

/// Pins this process as `--cpu` says, or to `default` on a machine with two cores or more.
fn pin(args: &[String], default: usize) -> anyhow::Result<()> {
    let cpu = match arg(args, "--cpu").as_deref() {
        Some("none") => return Ok(()),
        Some(v) => v.parse().map_err(|e| anyhow::anyhow!("--cpu {v:?}: {e}"))?,
        None if sys::cpu_count() >= 2 => default,
        None => return Ok(()),
    };
    sys::pin_to_cpu(cpu)?;
    eprintln!("pinned to CPU {cpu}");
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let r = match args.get(1).map(String::as_str) {
        Some("gateway") => run_gateway(&args),
        Some("load") => run_load(&args),
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(e) = r {
        eprintln!("clicktocall-bench: {e:#}");
        std::process::exit(1);
    }
}

fn run_gateway(args: &[String]) -> anyhow::Result<()> {
    pin(args, 0)?;
    sys::raise_nofile();
    let control: SocketAddr = parsed(args, "--control", "127.0.0.1:7300".parse()?)?;
    let threads: usize = parsed(args, "--threads", 1)?;
    // Media workers: one per core the gateway may use (one, pinned, by default).
    let workers: usize = parsed(args, "--workers", 1)?;
    // `--record DIR`: every two-party call is recorded (stereo WAV per call) into DIR; with
    // `--siprec` too, each recording is also forked (two RTP streams) to a recorder socket on this
    // host (a thread that reads and counts).
    let record = arg(args, "--record")
        .filter(|d| !d.is_empty())
        .map(|d| gateway::Recording {
            dir: d.into(),
            siprec: args
                .iter()
                .any(|a| a == "--siprec")
                .then(gateway::recorder_sink),
        });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()?;
    rt.block_on(gateway::gateway(control, record, workers))
}

fn run_load(args: &[String]) -> anyhow::Result<()> {
    pin(args, 1)?;
    sys::raise_nofile();
    let target = match arg(args, "--rtpengine") {
        Some(ng) => {
            let ng: SocketAddr = ng
                .parse()
                .map_err(|e| anyhow::anyhow!("--rtpengine: {e}"))?;
            let pid = arg(args, "--rtpengine-pid")
                .map(|p| {
                    p.parse()
                        .map_err(|e| anyhow::anyhow!("--rtpengine-pid: {e}"))
                })
                .transpose()?;
            TargetSpec::RtpEngine(ng, pid)
        }
        None => TargetSpec::Gateway(parsed(args, "--control", "127.0.0.1:7300".parse()?)?),
    };
    let kind = match arg(args, "--kind").as_deref() {
        None | Some("webrtc") => Kind::WebRtc,
        Some("sip") => Kind::Sip,
        Some(k) => anyhow::bail!("--kind {k:?}: webrtc or sip"),
    };
    load::run(LoadArgs {
        target,
        calls: parsed(args, "--calls", 100)?,
        secs: parsed(args, "--secs", 20)?,
        parties: parsed(args, "--parties", 2)?,
        kind,
        warmup_secs: parsed(args, "--warmup", 3)?,
        rounds: parsed(args, "--rounds", 1)?,
    })
}
