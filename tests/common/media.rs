//! A browser (str0m) bridged to a SIP phone through the call's media core (`CallMedia`, two legs hearing each other), on simulated time over an
//! in-memory network: the setup and the packet pump the media scenario tests share.

use super::browser::TestBrowser;
use clicktocall::media::browser_leg::{AudioCodec, BrowserLeg};
use clicktocall::media::call_media::{CallMedia, MediaOutput};
use clicktocall::media::leg::NewLeg;
use clicktocall::media::routes::LegId;
use clicktocall::media::rtp_leg::RtpLegTimers;
use clicktocall::media::sdp::{read_answer, Format};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The browser's address.
pub const BROWSER: &str = "10.0.0.2:50000";
/// The gateway's browser-leg address.
pub const GW_WEB: &str = "10.0.0.1:40000";
/// The phone's RTP address.
pub const PHONE: &str = "10.0.0.3:6000";
/// The gateway's phone-leg address.
pub const GW_RTP: &str = "10.0.0.1:30000";
/// The browser's leg in the call's media.
pub const BROWSER_LEG: LegId = LegId(0);
/// The phone's leg.
pub const PHONE_LEG: LegId = LegId(1);

/// A bridged call under test.
pub struct Bridged {
    pub now: Instant,
    pub browser: TestBrowser,
    pub session: CallMedia,
    pub phone: SocketAddr,
    browser_addr: SocketAddr,
    gw_web: SocketAddr,
}

impl Bridged {
    /// The browser offers, the gateway answers accepting `codecs`; the phone at [`PHONE`] answered
    /// the gateway with `phone_media` (an `m=` section) and the gateway offered `offered`.
    pub fn new(codecs: &[AudioCodec], phone_media: &str, offered: &[Format], ssrc: u32) -> Bridged {
        let now = Instant::now();
        let (browser_addr, gw_web): (SocketAddr, SocketAddr) =
            (BROWSER.parse().unwrap(), GW_WEB.parse().unwrap());
        let (mut browser, offer) = TestBrowser::offer(now, browser_addr);
        let (leg, answer) = BrowserLeg::answer(now, &offer, &[(gw_web, gw_web)], codecs).unwrap();
        browser.accept(&answer);
        let sdp = format!(
            "v=0\r\no=- 5 5 IN IP4 10.0.0.3\r\ns=-\r\nc=IN IP4 10.0.0.3\r\nt=0 0\r\n{phone_media}"
        );
        let negotiated = read_answer(&sdp, offered).unwrap();
        let mut session = CallMedia::new(RtpLegTimers::default());
        session.add_leg(now, BROWSER_LEG, NewLeg::Browser(Box::new(leg)), 0);
        session.add_leg(now, PHONE_LEG, NewLeg::Rtp(negotiated), ssrc);
        session.set_route(now, BROWSER_LEG, PHONE_LEG, Some(1.0));
        session.set_route(now, PHONE_LEG, BROWSER_LEG, Some(1.0));
        Bridged {
            now,
            browser,
            session,
            phone: PHONE.parse().unwrap(),
            browser_addr,
            gw_web,
        }
    }

    /// Moves everything queued between the browser and the gateway; hands every other output (SIP
    /// packets, events, taps) to `other`.
    pub fn exchange(&mut self, mut other: impl FnMut(MediaOutput)) {
        loop {
            match self.session.poll_output() {
                MediaOutput::Transmit {
                    leg: BROWSER_LEG,
                    to,
                    data,
                    ..
                } => {
                    assert_eq!(to, self.browser_addr);
                    self.browser.receive(self.now, self.gw_web, &data);
                }
                MediaOutput::Timeout(_) => break,
                o => other(o),
            }
        }
        for (to, data) in self.browser.poll() {
            assert_eq!(to, self.gw_web);
            self.session.handle_datagram(
                self.now,
                BROWSER_LEG,
                self.browser_addr,
                self.gw_web,
                &data,
            );
        }
    }

    /// A packet from the phone.
    pub fn phone_sends(&mut self, pkt: &[u8]) {
        let local = GW_RTP.parse().unwrap();
        self.session
            .handle_datagram(self.now, PHONE_LEG, self.phone, local, pkt);
    }

    /// Advances simulated time by one 20 ms frame.
    pub fn step(&mut self) {
        self.now += Duration::from_millis(20);
        self.browser.tick(self.now);
        self.session.handle_timeout(self.now);
    }
}

/// A plain RTP phone: PCMU audio packets and RFC 4733 key presses, scheduled in 20 ms steps.
pub struct PhoneSim {
    pub seq: u16,
    pub ssrc: u32,
    pending: Vec<(usize, Vec<u8>)>,
}

impl PhoneSim {
    pub fn new(ssrc: u32) -> PhoneSim {
        PhoneSim {
            seq: 1,
            ssrc,
            pending: Vec::new(),
        }
    }

    /// One PCMU packet of `samples` with RTP timestamp `ts`.
    pub fn audio(&mut self, ts: u32, samples: &[i16]) -> Vec<u8> {
        let mut payload = Vec::new();
        clicktocall::media::g711::encode_ulaw(samples, &mut payload);
        let mut pkt = Vec::new();
        clicktocall::media::rtp::write(&mut pkt, false, 0, self.seq, ts, self.ssrc, &payload);
        self.seq = self.seq.wrapping_add(1);
        pkt
    }

    /// Schedules a 100 ms press of `digit` (payload type `pt`, 8 kHz) starting at `step`.
    pub fn press(&mut self, step: usize, digit: char, pt: u8, ts: u32) {
        for p in clicktocall::media::dtmf::event_packets(digit, 100, 20, 8000).unwrap() {
            let mut pkt = Vec::new();
            clicktocall::media::rtp::write(
                &mut pkt,
                p.marker,
                pt,
                self.seq,
                ts,
                self.ssrc,
                &p.event.to_bytes(),
            );
            self.seq = self.seq.wrapping_add(1);
            self.pending.push((step + p.offset_ms as usize / 20, pkt));
        }
    }

    /// The scheduled packets due at `step`.
    pub fn due(&mut self, step: usize) -> Vec<Vec<u8>> {
        let (due, later): (Vec<_>, Vec<_>) =
            self.pending.drain(..).partition(|(at, _)| *at <= step);
        self.pending = later;
        due.into_iter().map(|(_, p)| p).collect()
    }
}
