//! The N-party core on simulated time: three plain RTP phones, each sending its own tone.

use super::*;
use crate::media::dtmf::DtmfReceiver;
use crate::media::g711;
use crate::media::rtp::{self, RtpView};
use crate::media::sdp::{Direction, Format};
use crate::media::tone::{goertzel, ToneGenerator};
use std::collections::HashMap;

const FREQS: [f64; 3] = [440.0, 1000.0, 700.0];

fn negotiated(port: u16, codec: Format) -> Negotiated {
    Negotiated {
        remote: Some(SocketAddr::from(([10, 0, 0, 9], port))),
        codec,
        dtmf: Some(Format::telephone_event()),
        ptime_ms: 20,
        peer_direction: Direction::SendRecv,
    }
}

/// A phone on leg `id`, at 10.0.0.9:(6000 + 2·id), sending a tone.
struct Phone {
    leg: LegId,
    addr: SocketAddr,
    tone: ToneGenerator,
    seq: u16,
    ts: u32,
    pt: u8,
    heard: Vec<i16>,
    packets: Vec<(u16, u32, u32, Vec<u8>)>,
    digits: DtmfReceiver,
    heard_digits: Vec<char>,
}

impl Phone {
    fn new(id: u32, freq: f64, pt: u8) -> Phone {
        Phone {
            leg: LegId(id),
            addr: SocketAddr::from(([10, 0, 0, 9], 6000 + 2 * id as u16)),
            tone: ToneGenerator::new(freq, 8000, 0.3),
            seq: 1,
            ts: 0,
            pt,
            heard: Vec::new(),
            packets: Vec::new(),
            digits: DtmfReceiver::new(),
            heard_digits: Vec::new(),
        }
    }

    fn packet(&mut self) -> Vec<u8> {
        let mut payload = Vec::new();
        let pcm = self.tone.samples(160);
        if self.pt == 0 {
            g711::encode_ulaw(&pcm, &mut payload);
        } else {
            g711::encode_alaw(&pcm, &mut payload);
        }
        let mut pkt = Vec::new();
        rtp::write(
            &mut pkt,
            false,
            self.pt,
            self.seq,
            self.ts,
            77 + u32::from(self.pt),
            &payload,
        );
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(160);
        pkt
    }

    fn receive(&mut self, data: &[u8]) {
        let p = RtpView::parse(data).unwrap();
        if p.pt == 101 {
            if let Some(d) = self.digits.handle_packet(p.timestamp, p.payload) {
                self.heard_digits.push(d);
            }
            return;
        }
        assert_eq!(p.pt, self.pt, "each phone gets its own codec");
        self.packets
            .push((p.seq, p.timestamp, p.ssrc, p.payload.to_vec()));
        if self.pt == 0 {
            g711::decode_ulaw(p.payload, &mut self.heard);
        } else {
            g711::decode_alaw(p.payload, &mut self.heard);
        }
    }

    /// Power of each test frequency in the last second heard.
    fn powers(&self) -> Vec<f64> {
        let tail = &self.heard[self.heard.len().saturating_sub(8000)..];
        FREQS.iter().map(|f| goertzel(tail, *f, 8000)).collect()
    }
}

struct Harness {
    now: Instant,
    media: CallMedia,
    phones: Vec<Phone>,
    events: Vec<MediaEvent>,
}

impl Harness {
    fn new(codecs: &[u8]) -> Harness {
        let now = Instant::now();
        let mut media = CallMedia::new(RtpLegTimers::default());
        let mut phones = Vec::new();
        for (i, &pt) in codecs.iter().enumerate() {
            let p = Phone::new(i as u32, FREQS[i], pt);
            let f = if pt == 0 {
                Format::pcmu()
            } else {
                Format::pcma()
            };
            let n = negotiated(p.addr.port(), f);
            media.add_leg(now, p.leg, NewLeg::Rtp(n), 1000 + i as u32);
            phones.push(p);
        }
        Harness {
            now,
            media,
            phones,
            events: Vec::new(),
        }
    }

    fn connect_all(&mut self) {
        let legs = self.media.leg_ids();
        for &a in &legs {
            for &b in &legs {
                if a != b {
                    self.media.set_route(self.now, a, b, Some(1.0));
                }
            }
        }
    }

    fn drain(&mut self) {
        loop {
            match self.media.poll_output() {
                MediaOutput::Transmit {
                    leg,
                    to,
                    data,
                    rtcp,
                } => {
                    if rtcp {
                        continue;
                    }
                    let p = self.phones.iter_mut().find(|p| p.leg == leg).unwrap();
                    assert_eq!(to, p.addr, "sent to the leg's own peer");
                    p.receive(&data);
                }
                MediaOutput::Event(e) => self.events.push(e),
                MediaOutput::Tap { .. } => {}
                MediaOutput::Timeout(_) => return,
            }
        }
    }

    /// `frames` 20 ms steps in which the phones in `sending` each send a frame.
    fn run(&mut self, frames: usize, sending: &[usize]) {
        for _ in 0..frames {
            self.now += Duration::from_millis(20);
            for &k in sending {
                let pkt = self.phones[k].packet();
                let (leg, addr) = (self.phones[k].leg, self.phones[k].addr);
                let local = SocketAddr::from(([10, 0, 0, 1], 30000));
                self.media.handle_datagram(self.now, leg, addr, local, &pkt);
                self.drain();
            }
            self.media.handle_timeout(self.now);
            self.drain();
        }
    }

    fn clear_heard(&mut self) {
        for p in &mut self.phones {
            p.heard.clear();
            p.packets.clear();
        }
    }
}

/// Asserts phone `k` hears exactly the frequencies of `others` (and not its own).
fn hears(h: &Harness, k: usize, others: &[usize]) {
    let powers = h.phones[k].powers();
    for (f, p) in powers.iter().enumerate() {
        if others.contains(&f) {
            assert!(
                *p > 1e5,
                "phone {k} should hear {} Hz: {powers:?}",
                FREQS[f]
            );
        } else {
            assert!(
                *p < 1e3,
                "phone {k} must not hear {} Hz: {powers:?}",
                FREQS[f]
            );
        }
    }
}

#[test]
fn three_parties_each_hear_the_other_two_and_not_themselves() {
    let mut h = Harness::new(&[0, 0, 0]);
    h.connect_all();
    h.run(100, &[0, 1, 2]);
    hears(&h, 0, &[1, 2]);
    hears(&h, 1, &[0, 2]);
    hears(&h, 2, &[0, 1]);
    // One SSRC per phone, sequence numbers without gaps, timestamps 160 apart.
    for p in &h.phones {
        let w = &p.packets[10..];
        assert!(w.windows(2).all(|x| x[1].0 == x[0].0.wrapping_add(1)));
        assert!(w.windows(2).all(|x| x[1].1 == x[0].1.wrapping_add(160)));
        assert!(w.iter().all(|x| x.2 == w[0].2));
    }
}

#[test]
fn a_party_leaves_and_the_others_relay_untouched() {
    let mut h = Harness::new(&[0, 0, 0]);
    h.connect_all();
    h.run(50, &[0, 1, 2]);
    h.media.remove_leg(h.now, LegId(1));
    h.clear_heard();
    h.run(60, &[0, 2]);
    hears(&h, 0, &[2]);
    hears(&h, 2, &[0]);
    // Back on the fast path: the payload phone 2 sent is what phone 0 gets, byte for byte.
    let sent = {
        let mut p = Phone::new(2, FREQS[2], 0);
        (0..160).map(|_| p.packet()).collect::<Vec<_>>()
    };
    let got = h.phones[0].packets.last().unwrap().3.clone();
    assert!(
        sent.iter()
            .any(|pkt| RtpView::parse(pkt).unwrap().payload == got.as_slice()),
        "relayed without decoding"
    );
    // Its stream stayed one SSRC and its sequence numbers never went back.
    let q = h.media.qualities();
    assert_eq!(q.len(), 3, "the departed leg's quality is kept");
}

#[test]
fn mixed_codecs_are_decoded_and_encoded_per_listener() {
    let mut h = Harness::new(&[0, 8, 0]);
    h.connect_all();
    h.run(100, &[0, 1, 2]);
    hears(&h, 0, &[1, 2]);
    hears(&h, 1, &[0, 2]);
    hears(&h, 2, &[0, 1]);
}

#[test]
fn one_way_routes_and_a_quiet_source() {
    // Leg 2 listens to both (a monitor), nobody hears leg 2; leg 1 stops sending midway.
    let mut h = Harness::new(&[0, 0, 0]);
    let (a, b, c) = (LegId(0), LegId(1), LegId(2));
    for (f, t) in [(a, b), (b, a), (a, c), (b, c)] {
        h.media.set_route(h.now, f, t, Some(1.0));
    }
    h.run(60, &[0, 1, 2]);
    hears(&h, 0, &[1]);
    hears(&h, 1, &[0]);
    hears(&h, 2, &[0, 1]);
    h.clear_heard();
    h.run(60, &[0, 2]);
    hears(&h, 2, &[0]);
    assert!(h.phones[2].packets.len() >= 55, "the mix keeps its clock");
}

#[test]
fn a_prompt_replaces_what_a_leg_hears_and_digits_reach_listeners() {
    let mut h = Harness::new(&[0, 0, 0]);
    h.connect_all();
    h.media.play(h.now, LegId(0), Source::Silence);
    h.run(60, &[0, 1, 2]);
    let p0 = h.phones[0].powers();
    assert!(p0.iter().all(|p| *p < 1e3), "on hold: {p0:?}");
    hears(&h, 1, &[0, 2]);
    // An out-of-band digit from leg 1 reaches both others as RFC 4733, reported once.
    h.media
        .handle_info_digit(h.now, LegId(1), '7', Duration::from_millis(160));
    h.run(30, &[0, 1, 2]);
    assert_eq!(h.phones[0].heard_digits, vec!['7']);
    assert_eq!(h.phones[2].heard_digits, vec!['7']);
    assert!(h.phones[1].heard_digits.is_empty());
    let digits: Vec<_> = h
        .events
        .iter()
        .filter(|e| matches!(e, MediaEvent::Digit(..)))
        .collect();
    assert_eq!(digits, vec![&MediaEvent::Digit(LegId(1), '7')]);
    let mut per_leg: HashMap<LegId, usize> = HashMap::new();
    for e in &h.events {
        if let MediaEvent::Flowing(l) = e {
            *per_leg.entry(*l).or_default() += 1;
        }
    }
    assert_eq!(per_leg.len(), 3, "every leg flows, once: {per_leg:?}");
    assert!(per_leg.values().all(|n| *n == 1));
}

#[test]
fn the_tap_carries_each_frame_with_its_media_time_and_a_prompt_can_play_to_all() {
    let mut h = Harness::new(&[0, 0]);
    h.connect_all();
    h.media.set_tap(true);
    let mut taps = Vec::new();
    for _ in 0..10 {
        h.now += Duration::from_millis(20);
        let pkt = h.phones[1].packet();
        let (leg, addr) = (h.phones[1].leg, h.phones[1].addr);
        let local = SocketAddr::from(([10, 0, 0, 1], 30000));
        h.media.handle_datagram(h.now, leg, addr, local, &pkt);
        loop {
            match h.media.poll_output() {
                MediaOutput::Tap { from, at, pcm } => taps.push((from, at, pcm.len())),
                MediaOutput::Timeout(_) => break,
                _ => {}
            }
        }
    }
    let times: Vec<u32> = taps.iter().map(|t| t.1).collect();
    assert_eq!(times, (0..10).map(|i| i * 160).collect::<Vec<_>>());
    assert!(taps.iter().all(|t| t.0 == LegId(1) && t.2 == 160));
    h.media.set_tap(false);
    h.media.play_all(h.now, Source::Silence);
    h.clear_heard();
    h.run(50, &[0, 1]);
    for p in &h.phones {
        let powers = p.powers();
        assert!(
            powers.iter().all(|x| *x < 1e3),
            "everybody hears the prompt: {powers:?}"
        );
    }
}
