use super::*;

fn limits() -> FloodSection {
    FloodSection {
        enabled: true,
        rate_per_sec: 10,
        burst: 40,
        auth_failures: 5,
        auth_window_secs: 60,
        ban_secs: 30,
        max_sources: 100,
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("an address")
}

fn trunk() -> Vec<Cidr> {
    vec!["127.0.0.2".parse().expect("a network")]
}

#[test]
fn a_burst_over_the_limit_bans_the_source_and_only_it() {
    let t0 = Instant::now();
    let mut g = FloodGuard::new(limits(), trunk());
    let (flood, honest) = (ip("127.0.0.9"), ip("127.0.0.7"));
    let passed = (0..1000)
        .filter(|_| g.handle_message(t0, flood) == Admit::Pass)
        .count();
    assert_eq!(passed, 40, "the burst, then the ban");
    assert_eq!(g.bans(t0).len(), 1);
    assert_eq!(g.bans(t0)[0].1.reason, BanReason::Flood);
    assert_eq!(g.handle_message(t0, honest), Admit::Pass);
    // Spoofed from the trunk: never limited.
    for _ in 0..1000 {
        assert_eq!(g.handle_message(t0, ip("127.0.0.2")), Admit::Pass);
    }
    // During the ban everything is dropped, however slowly it comes; after it, served again.
    assert_eq!(
        g.handle_message(t0 + Duration::from_secs(29), flood),
        Admit::Drop
    );
    assert_eq!(
        g.handle_message(t0 + Duration::from_secs(31), flood),
        Admit::Pass
    );
    assert!(g.dropped_total >= 961);
}

#[test]
fn a_steady_sender_under_the_rate_is_never_banned() {
    let t0 = Instant::now();
    let mut g = FloodGuard::new(limits(), vec![]);
    let src = ip("192.0.2.1");
    // 9 messages a second for ten minutes, against a rate of 10.
    for i in 0..(9 * 600) {
        let now = t0 + Duration::from_millis(i * 1000 / 9);
        assert_eq!(g.handle_message(now, src), Admit::Pass, "message {i}");
    }
    assert!(g.bans(t0 + Duration::from_secs(600)).is_empty());
}

#[test]
fn failed_authentications_ban_within_the_window_only() {
    let t0 = Instant::now();
    let mut g = FloodGuard::new(limits(), vec![]);
    let guesser = ip("198.51.100.5");
    for i in 0..4 {
        assert!(!g.handle_auth_failure(t0 + Duration::from_secs(i), guesser));
    }
    // Slow guessing: the window restarts.
    assert!(!g.handle_auth_failure(t0 + Duration::from_secs(70), guesser));
    for i in 0..3 {
        assert!(!g.handle_auth_failure(t0 + Duration::from_secs(71 + i), guesser));
    }
    assert!(g.handle_auth_failure(t0 + Duration::from_secs(75), guesser));
    let now = t0 + Duration::from_secs(76);
    assert_eq!(g.bans(now)[0].1.reason, BanReason::AuthFailures);
    assert_eq!(g.handle_message(now, guesser), Admit::Drop);
    assert!(g.unban(now, guesser), "lifted by hand");
    assert_eq!(g.handle_message(now, guesser), Admit::Pass);
    assert!(!g.unban(now, guesser), "not banned any more");
}

#[test]
fn a_registered_agent_is_never_banned_while_its_registration_lasts() {
    let t0 = Instant::now();
    let mut g = FloodGuard::new(limits(), vec![]);
    let agent = ip("10.0.0.20");
    g.protect(agent, t0 + Duration::from_secs(600));
    for _ in 0..10_000 {
        assert_eq!(g.handle_message(t0, agent), Admit::Pass);
    }
    for _ in 0..100 {
        assert!(!g.handle_auth_failure(t0, agent));
    }
    // After it lapses, the limits apply again.
    let later = t0 + Duration::from_secs(601);
    let passed = (0..100)
        .filter(|_| g.handle_message(later, agent) == Admit::Pass)
        .count();
    assert_eq!(passed, 40);
}

#[test]
fn memory_follows_the_active_sources() {
    let t0 = Instant::now();
    let mut g = FloodGuard::new(limits(), vec![]);
    // More sources than the table holds: the extra ones are served untracked.
    for i in 0..200u32 {
        let a = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        assert_eq!(g.handle_message(t0, a), Admit::Pass);
    }
    assert_eq!(g.tracked(), 100);
    // Once their buckets are full again, the next sweep forgets them.
    g.handle_message(t0 + Duration::from_secs(10), ip("10.9.9.9"));
    assert_eq!(g.tracked(), 1);
}

#[test]
fn disabled_limits_nothing() {
    let t0 = Instant::now();
    let mut g = FloodGuard::new(
        FloodSection {
            enabled: false,
            ..limits()
        },
        vec![],
    );
    for _ in 0..10_000 {
        assert_eq!(g.handle_message(t0, ip("127.0.0.9")), Admit::Pass);
    }
    assert!(g.bans(t0).is_empty());
}

#[test]
fn the_peers_the_config_names_are_trusted() {
    let cfg = crate::config::Config::from_toml(
        r#"
[[trunks]]
name = "carrier"
proxy = "sip:198.51.100.7:5060"
sources = ["203.0.113.0/24"]
[[queues]]
name = "support"
record = "always"
siprec = ["sip:srs@192.0.2.50:5070"]
[[agents]]
id = "1001"
uri = "sip:1001@192.0.2.10:5090"
queues = ["support"]
[[agents]]
id = "1002"
password = "pw"
queues = ["support"]
"#,
    )
    .expect("parses");
    let trusted = trusted_sources(&cfg);
    for a in ["203.0.113.99", "198.51.100.7", "192.0.2.50", "192.0.2.10"] {
        assert!(trusted.iter().any(|c| c.contains(ip(a))), "{a} is trusted");
    }
    assert!(!trusted.iter().any(|c| c.contains(ip("192.0.2.11"))));
}
