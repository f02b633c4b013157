//! The gateway under test: its generated config, the child process (killed when dropped), its HTTP
//! API, and what /proc says about it (memory, fds, sockets, threads) plus the runtime's alive tasks.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The REST API key of the generated config.
pub const API_KEY: &str = "soak-key";
/// The number trunk customers dial.
pub const NUMBER: &str = "+15550100";
/// The trunk's network: SIP customers call from here (agents are on 127.0.0.1).
pub const TRUNK_IP: &str = "127.0.0.2";

/// The id and password of agent `i`.
pub fn agent(i: usize) -> (String, String) {
    let id = format!("{}", 7000 + i);
    let pw = format!("pw{id}");
    (id, pw)
}

/// A free loopback port (bound and released: the gateway binds it a moment later).
fn free_port(udp: bool) -> u16 {
    if udp {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("a free UDP port");
        s.local_addr().unwrap().port()
    } else {
        let s = std::net::TcpListener::bind("127.0.0.1:0").expect("a free TCP port");
        s.local_addr().unwrap().port()
    }
}

/// The config: one short IVR menu (1 = sales, 2 = support, nothing = support after 2 s), two
/// queues without wrap-up, `agents` registering agents, a trunk from [`TRUNK_IP`], records in `dir`.
fn config(dir: &Path, http: SocketAddr, sip: SocketAddr, agents: usize) -> String {
    let d = dir.display();
    let mut text = format!(
        r#"[http]
listen = "{http}"
[sip]
listen_udp = "{sip}"
listen_tcp = ""
[registrar]
keepalive_interval_secs = 0
nonce_secret = "soak"
[media]
port_min = 24000
port_max = 25999
[api]
key = "{API_KEY}"
[limits]
max_calls = 5000
max_ws_sessions = 5000
[records]
database = "{d}/records.db"
[recording]
directory = "{d}/recordings"
[widget]
resume_grace_secs = 5
[shutdown]
grace_secs = 1
[log]
level = "warn,rsipstack=error"
[[trunks]]
name = "carrier"
proxy = "sip:{TRUNK_IP}:5060"
sources = ["{TRUNK_IP}/32"]
numbers = ["{NUMBER}"]
[ivr]
start = "soak"
[[ivr.menus]]
name = "soak"
prompt = "n1"
options = {{ "1" = "queue:sales", "2" = "queue:support" }}
input_timeout_secs = 2
retries = 0
on_exhausted = "queue:support"
[[queues]]
name = "sales"
wrap_up_secs = 0
announce_position_secs = 0
[[queues]]
name = "support"
wrap_up_secs = 0
announce_position_secs = 0
"#
    );
    for i in 0..agents {
        let (id, pw) = agent(i);
        text.push_str(&format!(
            "[[agents]]\nid = \"{id}\"\npassword = \"{pw}\"\nqueues = [\"sales\", \"support\"]\n"
        ));
    }
    text
}

/// The gateway child process; killed (and reaped) when dropped, so every way out of the driver
/// (an error, a panic, ctrl-c) takes it down.
pub struct Gateway {
    child: Child,
    pub pid: u32,
    pub http: SocketAddr,
    pub sip: SocketAddr,
    pub dir: PathBuf,
}

impl Gateway {
    /// Writes the config into a fresh temp dir and starts `bin --config FILE`; waits for `/readyz`.
    pub async fn start(bin: &Path, agents: usize) -> anyhow::Result<Gateway> {
        let dir = std::env::temp_dir().join(format!("clicktocall-soak-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let http: SocketAddr = format!("127.0.0.1:{}", free_port(false)).parse()?;
        let sip: SocketAddr = format!("127.0.0.1:{}", free_port(true)).parse()?;
        let cfg = dir.join("gateway.toml");
        std::fs::write(&cfg, config(&dir, http, sip, agents))?;
        let log = std::fs::File::create(dir.join("gateway.log"))?;
        let child = Command::new(bin)
            .arg("--config")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", bin.display()))?;
        let pid = child.id();
        let mut gw = Gateway {
            child,
            pid,
            http,
            sip,
            dir,
        };
        for _ in 0..100 {
            if let Some(status) = gw.child.try_wait()? {
                anyhow::bail!("the gateway exited ({status}); see {}", gw.log().display());
            }
            if get(http, "/readyz")
                .await
                .is_some_and(|(code, _)| code == 200)
            {
                return Ok(gw);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!(
            "the gateway is not ready after 10 s; see {}",
            gw.log().display()
        )
    }

    /// The gateway's log file.
    pub fn log(&self) -> PathBuf {
        self.dir.join("gateway.log")
    }

    /// Whether the child is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Calls in progress (`GET /api/calls`), or `None` when the API does not answer.
    pub async fn calls(&self) -> Option<usize> {
        let (code, body) = get(self.http, "/api/calls").await?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        (code == 200).then(|| v.as_array().map_or(0, Vec::len))
    }

    /// Agents available to take a call (`GET /api/agents`).
    pub async fn agents_available(&self) -> Option<usize> {
        let (_, body) = get(self.http, "/api/agents").await?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let n = v.as_array()?.iter().filter(|a| a["state"] == "available");
        Some(n.count())
    }

    /// The figures of the moment.
    pub async fn sample(&self) -> Sample {
        let mut s = proc_sample(self.pid).unwrap_or_default();
        s.tasks = match get(self.http, "/metrics").await {
            Some((200, text)) => text
                .lines()
                .find_map(|l| l.strip_prefix("clicktocall_runtime_tasks_alive "))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .map_or(0, |v| v as u64),
            _ => 0,
        };
        s
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One process's figures.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    pub rss_kib: u64,
    pub fds: u64,
    pub udp: u64,
    pub tcp: u64,
    pub threads: u64,
    pub tasks: u64,
}

impl Sample {
    /// The larger of each figure.
    pub fn max(self, o: Sample) -> Sample {
        Sample {
            rss_kib: self.rss_kib.max(o.rss_kib),
            fds: self.fds.max(o.fds),
            udp: self.udp.max(o.udp),
            tcp: self.tcp.max(o.tcp),
            threads: self.threads.max(o.threads),
            tasks: self.tasks.max(o.tasks),
        }
    }
}

/// VmRSS and Threads from /proc/<pid>/status; fds from /proc/<pid>/fd, their sockets matched by
/// inode against the process's /proc/<pid>/net/{udp,udp6,tcp,tcp6}.
fn proc_sample(pid: u32) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let mut socks = HashSet::new();
    let mut fds = 0;
    for e in std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.flatten() {
        fds += 1;
        if let Ok(target) = std::fs::read_link(e.path()) {
            let t = target.to_string_lossy();
            if let Some(ino) = t.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')) {
                socks.insert(ino.to_string());
            }
        }
    }
    let count = |files: [&str; 2]| -> u64 {
        let mut n = 0;
        for f in files {
            let text = std::fs::read_to_string(format!("/proc/{pid}/net/{f}")).unwrap_or_default();
            let inodes = text
                .lines()
                .skip(1)
                .filter_map(|l| l.split_whitespace().nth(9));
            n += inodes.filter(|i| socks.contains(*i)).count() as u64;
        }
        n
    };
    Some(Sample {
        rss_kib: field("VmRSS:"),
        threads: field("Threads:"),
        fds,
        udp: count(["udp", "udp6"]),
        tcp: count(["tcp", "tcp6"]),
        tasks: 0,
    })
}

/// One GET with the API key over a fresh connection: the status and the body, `None` on any error.
pub async fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: soak\r\nAuthorization: Bearer {API_KEY}\r\nConnection: close\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.ok()?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.ok()?;
        let out = String::from_utf8_lossy(&out);
        let (head, body) = out.split_once("\r\n\r\n")?;
        let code = head.split(' ').nth(1)?.parse().ok()?;
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            unchunk(body)
        } else {
            body.to_string()
        };
        Some((code, body))
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .ok()?
}

/// Undoes chunked transfer coding.
fn unchunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}
