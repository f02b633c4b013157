//! Media workers on real loopback sockets: three browsers answered by one worker all get the same
//! candidate port (the worker's shared browser port), each is bridged to a phone of its own, and
//! each pair hears only each other: every phone hears its own browser's tone and every browser its
//! own phone's, never a neighbour's. Hanging a call up gives its place back and leaves the others
//! talking.

use crate::common;

use clicktocall::media::engine::{MediaCommand, MediaConfig, MediaEngine, MediaHandle};
use clicktocall::media::g711;
use clicktocall::media::leg::NewLeg;
use clicktocall::media::rtp::{self, RtpView};
use clicktocall::media::rtp_leg::RtpLegTimers;
use clicktocall::media::sdp::{read_answer, Format};
use clicktocall::media::tone::{dominant_frequency, ToneGenerator};
use common::browser::TestBrowser;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

/// One browser-to-phone call and its two ends.
struct Pair {
    browser: TestBrowser,
    bsock: UdpSocket,
    phone: UdpSocket,
    gw_rtp: SocketAddr,
    media: MediaHandle,
    to_phone: ToneGenerator,
    from_phone: ToneGenerator,
    phone_heard: Vec<i16>,
    seq: u16,
    ticks: u64,
}

/// The port an SDP answer's candidate names.
fn candidate_port(answer: &str) -> u16 {
    let line = answer
        .lines()
        .find(|l| l.starts_with("a=candidate:"))
        .expect("a candidate");
    line.split(' ').nth(5).unwrap().parse().unwrap()
}

async fn call(engine: &MediaEngine, browser_tone: f64, phone_tone: f64) -> (Pair, u16) {
    let bsock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (mut browser, offer) = TestBrowser::offer(Instant::now(), bsock.local_addr().unwrap());
    let (leg, lease, answer) = engine.answer_browser(Instant::now(), &offer).await.unwrap();
    browser.accept(&answer);
    let phone = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let sip = engine.lease_with_rtcp().await.unwrap();
    let gw_rtp = sip.local;
    let sdp = format!(
        "v=0\r\no=- 5 5 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 0\r\n",
        phone.local_addr().unwrap().port()
    );
    let negotiated = read_answer(&sdp, &[Format::pcmu()]).unwrap();
    let media = engine
        .spawn_pair(
            (NewLeg::Browser(Box::new(leg)), lease),
            (NewLeg::Rtp(negotiated), sip),
            RtpLegTimers::default(),
        )
        .await;
    let pair = Pair {
        browser,
        bsock,
        phone,
        gw_rtp,
        media,
        to_phone: ToneGenerator::new(browser_tone, 8000, 0.5),
        from_phone: ToneGenerator::new(phone_tone, 8000, 0.5),
        phone_heard: Vec::new(),
        seq: 1,
        ticks: 0,
    };
    (pair, candidate_port(&answer))
}

impl Pair {
    async fn step(&mut self, buf: &mut [u8]) {
        let now = Instant::now();
        while let Ok((n, from)) = self.bsock.try_recv_from(buf) {
            self.browser.receive(now, from, &buf[..n]);
        }
        self.browser.tick(now);
        for (to, data) in self.browser.poll() {
            self.bsock.send_to(&data, to).await.unwrap();
        }
        if self.browser.connected {
            self.browser
                .send_pcmu(now, self.ticks, &self.to_phone.samples(160));
            self.ticks += 160;
            let mut payload = Vec::new();
            g711::encode_ulaw(&self.from_phone.samples(160), &mut payload);
            let mut pkt = Vec::new();
            let ts = u32::from(self.seq) * 160;
            rtp::write(&mut pkt, false, 0, self.seq, ts, 0x77, &payload);
            self.phone.send_to(&pkt, self.gw_rtp).await.unwrap();
            self.seq += 1;
        }
        while let Ok((n, _)) = self.phone.try_recv_from(buf) {
            if let Ok(p) = RtpView::parse(&buf[..n]) {
                g711::decode_ulaw(p.payload, &mut self.phone_heard);
            }
        }
    }

    fn clear(&mut self) {
        self.phone_heard.clear();
        self.browser.heard.clear();
    }

    /// (what the phone heard, what the browser heard), by dominant frequency.
    fn heard(&self) -> (f64, f64) {
        let tail = |v: &[i16]| {
            assert!(v.len() > 4000, "only {} samples heard", v.len());
            dominant_frequency(&v[v.len() - 4000..], 8000)
        };
        (tail(&self.phone_heard), tail(&self.browser.heard))
    }
}

async fn run(pairs: &mut [Pair], steps: usize) {
    let mut buf = vec![0u8; 2048];
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for _ in 0..steps {
        tick.tick().await;
        for p in pairs.iter_mut() {
            p.step(&mut buf).await;
        }
    }
}

#[tokio::test]
async fn three_browsers_on_one_port_each_hear_only_their_own_phone() {
    let engine = MediaEngine::with_workers(
        MediaConfig {
            bind_ip: "127.0.0.1".parse().unwrap(),
            advertised_ip: None,
            port_min: 31200,
            port_max: 31300,
        },
        1,
    );
    let tones = [(440.0, 1000.0), (600.0, 1400.0), (800.0, 1800.0)];
    let mut pairs = Vec::new();
    let mut ports = Vec::new();
    for (b, p) in tones {
        let (pair, port) = call(&engine, b, p).await;
        pairs.push(pair);
        ports.push(port);
    }
    assert!(
        ports.iter().all(|p| *p == ports[0]),
        "one shared port: {ports:?}"
    );
    assert_eq!(engine.worker_stats()[0].calls, 3);

    run(&mut pairs, 120).await;
    for (p, (b, ph)) in pairs.iter().zip(tones) {
        assert_eq!(p.heard(), (b, ph), "each pair hears only each other");
    }

    // The middle call ends: its place goes back, the other two keep talking.
    let mut gone = pairs.remove(1);
    gone.media.commands.send(MediaCommand::Stop).await.unwrap();
    tokio::time::timeout(Duration::from_secs(2), &mut gone.media.task)
        .await
        .unwrap()
        .unwrap();
    assert!(gone.media.commands.try_send(MediaCommand::Stop).is_err());
    for p in &mut pairs {
        p.clear();
    }
    run(&mut pairs, 60).await;
    for (p, (b, ph)) in pairs.iter().zip([tones[0], tones[2]]) {
        assert_eq!(p.heard(), (b, ph));
    }
    assert_eq!(engine.worker_stats()[0].calls, 2);
    // The two calls left hold a browser place and a SIP port each; the ended one holds none.
    assert_eq!(engine.ports_in_use(), 4);
}
