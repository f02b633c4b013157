//! A str0m peer playing the browser (full ICE, DTLS, the offerer), driven on simulated time.

use clicktocall::media::dtmf::{code_to_digit, digit_to_code};
use clicktocall::media::g711;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::format::{Codec, CodecExtra, FormatParams};
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid, Pt, TelephoneEvent};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};

/// The test browser.
pub struct TestBrowser {
    pub rtc: Rtc,
    pub addr: SocketAddr,
    pub mid: Mid,
    /// Decoded audio it received (μ-law; Opus too when `opus_decoder` is set, at 8 kHz).
    pub heard: Vec<i16>,
    #[cfg(feature = "opus")]
    pub opus_decoder: Option<opus::Decoder>,
    /// DTMF digits it received (RFC 4733), one per key press.
    pub digits: String,
    /// RTP times and sequence numbers of the audio frames it received, in order.
    pub times: Vec<u64>,
    pub seqs: Vec<u16>,
    pub connected: bool,
    pending: Option<SdpPendingOffer>,
    restarting: bool,
}

impl TestBrowser {
    /// Creates the peer and its offer: Opus and PCMU with telephone-event at 48 and 8 kHz, like Chrome.
    pub fn offer(now: Instant, addr: SocketAddr) -> (TestBrowser, String) {
        let mut config = RtcConfig::new()
            .clear_codecs()
            .enable_opus(true, false)
            .enable_pcmu(true, false);
        for (pt, rate) in [
            (126u8, Frequency::FORTY_EIGHT_KHZ),
            (101, Frequency::EIGHT_KHZ),
        ] {
            let format = FormatParams {
                telephone_event_max: Some(15),
                ..Default::default()
            };
            config
                .codec_config()
                .add_config(pt.into(), None, Codec::Tele, rate, None, format);
        }
        let mut rtc = config.build(now);
        rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
        let mut api = rtc.sdp_api();
        let mid = api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let (offer, pending) = api.apply().unwrap();
        let b = TestBrowser {
            rtc,
            addr,
            mid,
            heard: Vec::new(),
            digits: String::new(),
            times: Vec::new(),
            seqs: Vec::new(),
            #[cfg(feature = "opus")]
            opus_decoder: None,
            connected: false,
            pending: Some(pending),
            restarting: false,
        };
        (b, offer.to_sdp_string())
    }

    /// Moves to a new address (a network change) with an ICE restart: the new offer.
    pub fn restart_ice(&mut self, addr: SocketAddr) -> String {
        self.addr = addr;
        let mut api = self.rtc.sdp_api();
        api.ice_restart(false);
        let (offer, pending) = api.apply().expect("a restart offer");
        self.pending = Some(pending);
        self.restarting = true;
        offer.to_sdp_string()
    }

    /// Applies the gateway's answer.
    pub fn accept(&mut self, answer: &str) {
        let pending = self.pending.take().expect("one answer");
        let answer = SdpAnswer::from_sdp_string(answer).unwrap();
        self.rtc.sdp_api().accept_answer(pending, answer).unwrap();
        // The restart takes effect with the answer, dropping the old candidates: the new one now.
        if std::mem::take(&mut self.restarting) {
            let c = Candidate::host(self.addr, "udp").unwrap();
            self.rtc.add_local_candidate(c);
        }
    }

    /// A datagram from the gateway.
    pub fn receive(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        let contents = data.try_into().unwrap();
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source: from,
                destination: self.addr,
                contents,
            },
        );
        self.rtc.handle_input(input).unwrap();
    }

    /// Drains output: datagrams to send are returned; what it received is recorded.
    pub fn poll(&mut self) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut out = Vec::new();
        loop {
            match self.rtc.poll_output().unwrap() {
                Output::Transmit(t) => out.push((t.destination, t.contents.to_vec())),
                Output::Event(Event::Connected) => self.connected = true,
                Output::Event(Event::MediaData(d)) => match d.codec_extra {
                    CodecExtra::Tele(ev) if d.audio_start_of_talk_spurt => {
                        self.digits.push(code_to_digit(ev.event).unwrap_or('?'))
                    }
                    CodecExtra::Tele(_) => {}
                    #[cfg(feature = "opus")]
                    _ if d.params.spec().codec == Codec::Opus => {
                        if let Some(dec) = self.opus_decoder.as_mut() {
                            let mut pcm = [0i16; 960];
                            let n = dec.decode(&d.data, &mut pcm, false).unwrap();
                            self.heard.extend_from_slice(&pcm[..n]);
                        }
                    }
                    _ if d.params.spec().codec == Codec::PCMU => {
                        self.times.push(d.time.numer());
                        self.seqs.push(d.seq_range.start().as_u16());
                        g711::decode_ulaw(&d.data, &mut self.heard)
                    }
                    _ => {}
                },
                Output::Event(_) => {}
                Output::Timeout(_) => return out,
            }
        }
    }

    fn pt(&mut self, codec: Codec) -> Pt {
        let writer = self.rtc.writer(self.mid).unwrap();
        let params = writer.payload_params().find(|p| p.spec().codec == codec);
        params.unwrap().pt()
    }

    /// Sends one 20 ms Opus frame (8 kHz `samples`, encoded by `enc`) at 48 kHz RTP time `ticks`,
    /// optionally starting a 100 ms key press.
    #[cfg(feature = "opus")]
    pub fn send_opus(
        &mut self,
        now: Instant,
        ticks: u64,
        samples: &[i16],
        enc: &mut opus::Encoder,
        digit: Option<char>,
    ) {
        let pt = self.pt(Codec::Opus);
        let mut buf = [0u8; 400];
        let n = enc.encode(samples, &mut buf).unwrap();
        let mut writer = self.rtc.writer(self.mid).unwrap();
        if let Some(d) = digit {
            let ev = TelephoneEvent {
                event: digit_to_code(d).unwrap(),
                end: true,
                volume: 10,
                duration: Duration::from_millis(100),
            };
            writer = writer.telephone_event(ev);
        }
        writer
            .write(
                pt,
                now,
                MediaTime::new(ticks, Frequency::FORTY_EIGHT_KHZ),
                buf[..n].to_vec(),
            )
            .unwrap();
    }

    /// Sends one 20 ms PCMU frame of `samples` at RTP time `ticks`.
    pub fn send_pcmu(&mut self, now: Instant, ticks: u64, samples: &[i16]) {
        self.write(now, ticks, samples, None);
    }

    /// Sends one PCMU frame and starts a 100 ms key press of `digit` with it.
    pub fn send_pcmu_with_dtmf(&mut self, now: Instant, ticks: u64, samples: &[i16], digit: char) {
        let ev = TelephoneEvent {
            event: digit_to_code(digit).unwrap(),
            end: true,
            volume: 10,
            duration: Duration::from_millis(100),
        };
        self.write(now, ticks, samples, Some(ev));
    }

    fn write(&mut self, now: Instant, ticks: u64, samples: &[i16], ev: Option<TelephoneEvent>) {
        let pt = self.pt(Codec::PCMU);
        let mut frame = Vec::new();
        g711::encode_ulaw(samples, &mut frame);
        let mut writer = self.rtc.writer(self.mid).unwrap();
        if let Some(ev) = ev {
            writer = writer.telephone_event(ev);
        }
        let time = MediaTime::new(ticks, Frequency::EIGHT_KHZ);
        writer.write(pt, now, time, frame).unwrap();
    }

    /// Time passed.
    pub fn tick(&mut self, now: Instant) {
        self.rtc.handle_input(Input::Timeout(now)).unwrap();
    }
}
