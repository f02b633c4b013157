//! One simulated browser: a str0m peer (full ICE, DTLS-SRTP, PCMU) on its own UDP socket,
//! driven by the load loop: datagrams in, a stamped payload every 20 ms out, timeouts when due.

use crate::sys;
use crate::tally::{self, Tally, Window};
use anyhow::anyhow;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::OnceLock;
use std::time::Instant;
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::crypto::dtls::DtlsCert;
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};

/// One DTLS certificate for every simulated browser: generating one per peer made setting up
/// 1,000 calls slow on the load side, and the gateway's cost does not depend on it.
fn shared_cert() -> Option<&'static DtlsCert> {
    static CERT: OnceLock<Option<DtlsCert>> = OnceLock::new();
    CERT.get_or_init(|| {
        str0m::crypto::from_feature_flags()
            .dtls_provider
            .generate_certificate()
    })
    .as_ref()
}

/// A browser peer.
pub struct Browser {
    rtc: Rtc,
    mid: Mid,
    pt: Option<Pt>,
    sock: UdpSocket,
    local: SocketAddr,
    /// str0m's next timeout.
    pub deadline: Instant,
    /// ICE and DTLS are done.
    pub connected: bool,
    /// str0m failed; the browser is left alone.
    pub failed: bool,
    ticks: u64,
    /// Kernel arrival time (µs, realtime) of the last datagram received.
    last_rx_us: u64,
}

impl Browser {
    /// A new peer and its SDP offer (audio, PCMU only).
    pub fn offer(now: Instant) -> anyhow::Result<(Self, String, SdpPendingOffer)> {
        let sock = sys::udp_socket(0)?;
        let local = sock.local_addr()?;
        let mut cfg = RtcConfig::new().clear_codecs().enable_pcmu(true, false);
        if let Some(cert) = shared_cert() {
            cfg = cfg.set_dtls_cert(cert.clone());
        }
        let mut rtc = cfg.build(now);
        rtc.add_local_candidate(Candidate::host(local, "udp")?);
        let mut api = rtc.sdp_api();
        let mid = api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let (offer, pending) = api.apply().ok_or_else(|| anyhow!("str0m made no offer"))?;
        let b = Browser {
            rtc,
            mid,
            pt: None,
            sock,
            local,
            deadline: now,
            connected: false,
            failed: false,
            ticks: 0,
            last_rx_us: 0,
        };
        Ok((b, offer.to_sdp_string(), pending))
    }

    /// The socket, for epoll.
    pub fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    /// Takes the answer to our offer.
    pub fn accept(&mut self, pending: SdpPendingOffer, answer: &str) -> anyhow::Result<()> {
        let answer = SdpAnswer::from_sdp_string(answer)?;
        self.rtc.sdp_api().accept_answer(pending, answer)?;
        self.pt = self.rtc.writer(self.mid).and_then(|w| {
            w.payload_params()
                .find(|p| p.spec().codec == Codec::PCMU)
                .map(|p| p.pt())
        });
        self.pt.ok_or_else(|| anyhow!("the answer has no PCMU"))?;
        Ok(())
    }

    /// A datagram arrived (at `rx_us`, kernel time).
    pub fn receive(
        &mut self,
        now: Instant,
        from: SocketAddr,
        data: &[u8],
        rx_us: u64,
        t: &mut Tally,
        w: &Window,
    ) {
        let Ok(contents) = data.try_into() else {
            return;
        };
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source: from,
                destination: self.local,
                contents,
            },
        );
        self.last_rx_us = rx_us;
        let r = self.rtc.handle_input(input);
        self.after(r, t, w);
    }

    /// Feeds str0m its timeout if it is due.
    pub fn timeout(&mut self, now: Instant, t: &mut Tally, w: &Window) {
        if !self.failed && now >= self.deadline {
            let r = self.rtc.handle_input(Input::Timeout(now));
            self.after(r, t, w);
        }
    }

    /// Sends one 20 ms packet stamped with the current time: its stamp, if it went out. `t`
    /// counts what str0m hands up meanwhile (the other direction).
    pub fn send(&mut self, now: Instant, t: &mut Tally, w: &Window) -> Option<u64> {
        let (Some(pt), true, false) = (self.pt, self.connected, self.failed) else {
            return None;
        };
        let mut payload = [0u8; 160];
        let now_us = sys::realtime_us();
        tally::stamp(&mut payload, now_us, 0x55);
        let time = MediaTime::new(self.ticks, Frequency::EIGHT_KHZ);
        self.ticks += 160;
        let writer = self.rtc.writer(self.mid)?;
        // str0m packetizes the sample on its next input: a timeout now sends it at once rather
        // than when the next datagram happens to arrive (which added ~1 ms to the latency).
        let r = writer
            .write(pt, now, time, payload.to_vec())
            .map_err(|e| e.to_string())
            .and_then(|()| {
                self.rtc
                    .handle_input(Input::Timeout(now))
                    .map_err(|e| e.to_string())
            });
        let ok = r.is_ok();
        self.after(r, t, w);
        ok.then_some(now_us)
    }

    fn after<E: std::fmt::Display>(&mut self, r: Result<(), E>, t: &mut Tally, w: &Window) {
        if let Err(e) = r.map_err(|e| e.to_string()).and_then(|()| self.drain(t, w)) {
            if !self.failed {
                eprintln!("load: browser {} failed: {e}", self.local);
            }
            self.failed = true;
        }
    }

    /// Drains str0m until it names its next timeout. Audio str0m hands up is timed by the
    /// kernel's arrival time of the last datagram received: str0m may hand a packet up only on
    /// a later input (the next write or timeout), and that later time is not the packet's.
    fn drain(&mut self, t: &mut Tally, w: &Window) -> Result<(), String> {
        let rx_us = self.last_rx_us;
        loop {
            match self.rtc.poll_output().map_err(|e| e.to_string())? {
                Output::Transmit(x) => {
                    // Non-blocking; a full socket buffer drops the datagram like a real network.
                    let _ = self.sock.send_to(&x.contents, x.destination);
                }
                Output::Event(Event::Connected) => self.connected = true,
                Output::Event(Event::MediaData(d)) => t.record(&d.data, rx_us, w),
                Output::Event(_) => {}
                Output::Timeout(at) => {
                    self.deadline = at;
                    return Ok(());
                }
            }
        }
    }
}
