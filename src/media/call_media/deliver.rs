//! How audio and digits move through a [`CallMedia`]: what a leg said reaches the legs that hear it
//! (relayed, transcoded or mixed), prompts and generated digits go out when due, and browser events
//! are taken in.

use super::{CallMedia, HeardDtmf, MediaEvent, MediaOutput, Slot, MIX_SOURCE};
use crate::media::browser_leg::{AudioCodec, BrowserEvent};
use crate::media::dtmf::DtmfEvent;
use crate::media::leg::LegMedia;
use crate::media::mixer;
use crate::media::routes::{Feed, LegId};
use crate::media::source::{Due, FRAME};
use std::time::{Duration, Instant};

/// While digits from another source go out toward a mixing listener, its mix pauses this long after
/// each packet (so the event's packets are not interleaved with mixed audio under another source).
const DTMF_HOLD_OFF: Duration = Duration::from_millis(100);

impl CallMedia {
    /// Decodes leg `i`'s frame into `self.pcm`.
    fn decode(&mut self, i: usize, payload: &[u8], codec: AudioCodec) -> bool {
        match self.legs[i].dec.decode(payload, codec) {
            Ok(pcm) => {
                self.pcm.clear();
                self.pcm.extend_from_slice(pcm);
                true
            }
            Err(e) => {
                tracing::debug!(error = %e, "frame not decoded");
                false
            }
        }
    }

    /// One audio frame from leg `i` (`ts8`: its media time at 8 kHz).
    pub(super) fn hear_audio(
        &mut self,
        now: Instant,
        i: usize,
        codec: AudioCodec,
        seq: u16,
        ts8: u32,
        payload: &[u8],
    ) {
        let from = self.legs[i].id;
        let mut decoded = false;
        if self.tap || self.legs[i].mixed {
            decoded = self.decode(i, payload, codec);
            if decoded && self.legs[i].mixed {
                self.legs[i].fifo.push(&self.pcm);
            }
            if decoded && self.tap {
                let pcm = self.pcm.clone();
                self.out.push_back(MediaOutput::Tap { from, at: ts8, pcm });
            }
        }
        for j in 0..self.legs.len() {
            let s = &self.legs[j];
            if j == i || s.feed != Feed::Relay(from) || !s.audible(now) {
                continue;
            }
            let Some(to) = s.media.codec() else { continue };
            if to != codec && !decoded {
                decoded = self.decode(i, payload, codec);
                if !decoded {
                    return;
                }
            }
            let r = {
                let Slot { enc, media, .. } = &mut self.legs[j];
                let frame = if to == codec {
                    payload
                } else {
                    match enc.encode_pcm(&self.pcm, to) {
                        Ok(f) => f,
                        Err(e) => {
                            tracing::debug!(error = %e, "frame not encoded");
                            continue;
                        }
                    }
                };
                let ts = ts8.wrapping_mul(media.ratio());
                media.send_audio(now, from.0, seq, ts, frame, &mut self.tx, &mut self.events)
            };
            self.after_send(j, r);
        }
    }

    /// One telephone-event packet from leg `i`: reported once per press, relayed to its listeners
    /// (every packet to RTP legs, the whole press once to browsers).
    pub(super) fn hear_dtmf(&mut self, now: Instant, i: usize, h: HeardDtmf) {
        let from = self.legs[i].id;
        if let Some(d) = h.digit {
            self.event(MediaEvent::Digit(from, d));
        }
        if self.legs[i].keep_keys {
            return;
        }
        let first_end = h.event.end && self.legs[i].relayed_end != Some(h.ts8);
        let listeners: Vec<LegId> = self.routes.listeners(from).collect();
        for to in listeners {
            let Some(j) = self.index(to) else { continue };
            let s = &mut self.legs[j];
            if s.lost {
                continue;
            }
            if let LegMedia::Browser(_) = s.media {
                if !first_end {
                    continue;
                }
            } else if s.feed != Feed::Relay(from) {
                s.dtmf_until = Some(now + DTMF_HOLD_OFF);
            }
            let r = s.media.send_dtmf(
                now,
                from.0,
                h.seq,
                h.ts8,
                h.marker,
                h.event,
                h.rate,
                &mut self.tx,
                &mut self.events,
            );
            self.after_send(j, r);
        }
        if first_end {
            self.legs[i].relayed_end = Some(h.ts8);
        }
    }

    /// Handles the browser events queued so far (including those that surface while handling).
    pub(super) fn handle_pending(&mut self, now: Instant) {
        while let Some((id, e)) = self.pending.pop_front() {
            let Some(i) = self.index(id) else { continue };
            let LegMedia::Browser(b) = &mut self.legs[i].media else {
                continue;
            };
            match e {
                BrowserEvent::Connected => b.set_connected(),
                BrowserEvent::Disconnected => {
                    tracing::info!(leg = %id, "browser's ICE consent lapsed; waiting for it to come back");
                    b.recover_until
                        .get_or_insert(now + self.timers.media_timeout);
                }
                BrowserEvent::Dtmf {
                    digit,
                    code,
                    end,
                    volume,
                    duration,
                    ticks,
                    seq,
                    last_seq,
                } => {
                    b.event_arrived(seq, last_seq);
                    let ts8 = b.media_time(ticks);
                    let event = DtmfEvent {
                        code,
                        end,
                        volume,
                        duration: (duration.as_millis() as u64 * 8).min(0xffff) as u16,
                    };
                    let heard = HeardDtmf {
                        digit,
                        event,
                        rate: 8000,
                        seq,
                        ts8,
                        marker: digit.is_some(),
                    };
                    self.hear_dtmf(now, i, heard);
                }
                BrowserEvent::Audio {
                    codec,
                    ticks,
                    seq,
                    last_seq,
                    payload,
                } => {
                    if b.recover_until.take().is_some() {
                        tracing::info!(leg = %id, "browser is back");
                    }
                    let flowing = b.audio_arrived(now, seq, last_seq, ticks);
                    let ts8 = b.media_time(ticks);
                    if flowing {
                        self.event(MediaEvent::Flowing(id));
                    }
                    self.hear_audio(now, i, codec, seq, ts8, &payload);
                }
            }
        }
    }

    /// The frames of the source playing to leg `i` that are due at `now` (20 ms apart).
    pub(super) fn play_due(&mut self, now: Instant, i: usize) {
        let Some(codec) = self.legs[i].media.codec() else {
            return;
        };
        let id = self.legs[i].id;
        let ticks = FRAME as u32 * self.legs[i].media.ratio();
        loop {
            let r = {
                let Slot {
                    playing,
                    media,
                    enc,
                    lost,
                    dtmf_until,
                    ..
                } = &mut self.legs[i];
                let Some(p) = playing.as_mut() else { return };
                match p.poll(now, &mut self.frame, ticks) {
                    Due::NotYet => return,
                    Due::Ended => {
                        self.out
                            .push_back(MediaOutput::Event(MediaEvent::PromptDone(id)));
                        continue;
                    }
                    Due::Frame { at, id, seq, ts } => {
                        if *lost || dtmf_until.is_some_and(|t| t > at) {
                            continue;
                        }
                        match enc.encode_pcm(&self.frame, codec) {
                            Ok(f) => {
                                media.send_audio(at, id, seq, ts, f, &mut self.tx, &mut self.events)
                            }
                            Err(e) => {
                                tracing::debug!(error = %e, "prompt frame dropped");
                                continue;
                            }
                        }
                    }
                }
            };
            self.after_send(i, r);
        }
    }

    /// The mixes due at `now`, one per 20 ms tick (catching up at most 100 ms, then resyncing).
    pub(super) fn mix_due(&mut self, now: Instant) {
        let Some(mut at) = self.mix_at else { return };
        let mut ticks = 0;
        while at <= now && ticks < 5 {
            self.mix_once(at);
            at += Duration::from_millis(20);
            ticks += 1;
        }
        if at <= now {
            at = now + Duration::from_millis(20);
        }
        self.mix_at = Some(at);
    }

    /// One tick: a frame from every mixed source, summed per mixing listener over what it hears.
    fn mix_once(&mut self, at: Instant) {
        self.frames.resize(self.legs.len(), [0; FRAME]);
        for (k, s) in self.legs.iter_mut().enumerate() {
            if s.mixed {
                s.fifo.pop_frame(&mut self.frames[k]);
            }
        }
        for j in 0..self.legs.len() {
            let s = &self.legs[j];
            if s.feed != Feed::Mix || !s.audible(at) {
                continue;
            }
            let Some(codec) = s.media.codec() else {
                continue;
            };
            let to = s.id;
            let sources = self.legs.iter().enumerate().filter_map(|(k, src)| {
                let g = self.routes.gain(src.id, to)?;
                src.mixed.then_some((&self.frames[k], g))
            });
            mixer::mix(sources, &mut self.frame);
            let r = {
                let Slot { enc, media, .. } = &mut self.legs[j];
                let ts = self.mix_ts.wrapping_mul(media.ratio());
                match enc.encode_pcm(&self.frame, codec) {
                    Ok(f) => media.send_audio(
                        at,
                        MIX_SOURCE,
                        self.mix_seq,
                        ts,
                        f,
                        &mut self.tx,
                        &mut self.events,
                    ),
                    Err(e) => {
                        tracing::debug!(error = %e, "mixed frame dropped");
                        continue;
                    }
                }
            };
            self.after_send(j, r);
        }
        self.mix_seq = self.mix_seq.wrapping_add(1);
        self.mix_ts = self.mix_ts.wrapping_add(FRAME as u32);
    }

    /// Generated digit packets whose time has come.
    pub(super) fn send_scheduled(&mut self, now: Instant) {
        let mut k = 0;
        while k < self.scheduled.len() {
            if self.scheduled[k].due > now {
                k += 1;
                continue;
            }
            let s = self.scheduled.remove(k);
            let Some(j) = self.index(s.to) else { continue };
            let r = self.legs[j].media.send_dtmf(
                s.due,
                s.source,
                s.seq,
                s.ts8,
                s.packet.marker,
                s.packet.event,
                8000,
                &mut self.tx,
                &mut self.events,
            );
            self.after_send(j, r);
        }
    }
}

impl Slot {
    /// Whether the leg hears its routes at `at` (not playing a prompt, not lost, no digit going out).
    fn audible(&self, at: Instant) -> bool {
        self.playing.is_none() && !self.lost && self.dtmf_until.is_none_or(|t| t <= at)
    }
}
