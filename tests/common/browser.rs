//! A str0m peer playing the browser (full ICE, DTLS, the offerer), driven on simulated time.

use clicktocall::media::g711;
use std::net::SocketAddr;
use std::time::Instant;
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};

/// The test browser.
pub struct TestBrowser {
    pub rtc: Rtc,
    pub addr: SocketAddr,
    pub mid: Mid,
    /// Decoded audio it received (μ-law).
    pub heard: Vec<i16>,
    pub connected: bool,
    pending: Option<SdpPendingOffer>,
}

impl TestBrowser {
    /// Creates the peer and its offer (Opus and PCMU, like Chrome, with telephone-event).
    pub fn offer(now: Instant, addr: SocketAddr) -> (TestBrowser, String) {
        let mut rtc = RtcConfig::new()
            .clear_codecs()
            .enable_opus(true, false)
            .enable_pcmu(true, false)
            .build(now);
        rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
        let mut api = rtc.sdp_api();
        let mid = api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let (offer, pending) = api.apply().unwrap();
        let b = TestBrowser {
            rtc,
            addr,
            mid,
            heard: Vec::new(),
            connected: false,
            pending: Some(pending),
        };
        (b, offer.to_sdp_string())
    }

    /// Applies the gateway's answer.
    pub fn accept(&mut self, answer: &str) {
        let pending = self.pending.take().expect("one answer");
        self.rtc
            .sdp_api()
            .accept_answer(pending, SdpAnswer::from_sdp_string(answer).unwrap())
            .unwrap();
    }

    /// A datagram from the gateway.
    pub fn receive(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source: from,
                destination: self.addr,
                contents: data.try_into().unwrap(),
            },
        );
        self.rtc.handle_input(input).unwrap();
    }

    /// Drains output: datagrams to send are returned; audio received is decoded into `heard`.
    pub fn poll(&mut self) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut out = Vec::new();
        loop {
            match self.rtc.poll_output().unwrap() {
                Output::Transmit(t) => out.push((t.destination, t.contents.to_vec())),
                Output::Event(Event::Connected) => self.connected = true,
                Output::Event(Event::MediaData(d)) if d.params.spec().codec == Codec::PCMU => {
                    g711::decode_ulaw(&d.data, &mut self.heard)
                }
                Output::Event(_) => {}
                Output::Timeout(_) => return out,
            }
        }
    }

    fn pt(&mut self, codec: Codec) -> Pt {
        self.rtc
            .writer(self.mid)
            .unwrap()
            .payload_params()
            .find(|p| p.spec().codec == codec)
            .unwrap()
            .pt()
    }

    /// Sends one 20 ms PCMU frame of `samples` at RTP time `ticks`.
    pub fn send_pcmu(&mut self, now: Instant, ticks: u64, samples: &[i16]) {
        let pt = self.pt(Codec::PCMU);
        let mut frame = Vec::new();
        g711::encode_ulaw(samples, &mut frame);
        self.rtc
            .writer(self.mid)
            .unwrap()
            .write(pt, now, MediaTime::new(ticks, Frequency::EIGHT_KHZ), frame)
            .unwrap();
    }

    /// Time passed.
    pub fn tick(&mut self, now: Instant) {
        self.rtc.handle_input(Input::Timeout(now)).unwrap();
    }
}
