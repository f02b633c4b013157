//! The parties' legs of a call (agents, a queue's external IVR): each is INVITEd with the page's
//! context from a media port of its own, joins the call's media when it answers, and is handled in
//! its dialog (re-INVITE and hold, REFER, INFO digits, BYE) until it leaves.

use super::customer::offered_formats;
use super::sip_leg::{LegEvent, LegTarget, SipLeg};
use super::task::{unix_ms, CallTask};
use crate::media::engine::{MediaCommand, PortLease};
use crate::media::leg::NewLeg;
use crate::media::routes::LegId;
use crate::media::sdp::{read_answer, Direction, SdpSession};
use rsipstack::dialog::dialog::TransactionHandle;
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::rsip::uri::ParamsExt;
use rsipstack::rsip::{self, Header, StatusCode};
use serde_json::Value;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// How long the first NOTIFY of a transfer waits after the 202.
const REFER_NOTIFY_GAP: Duration = Duration::from_millis(30);

/// A party's media: its leg in the call's media, the port it was offered, its SDP session.
pub(super) struct PartyMedia {
    /// Its leg id.
    pub leg: LegId,
    /// The port, until the leg joins the media (then the media task holds it).
    lease: Option<PortLease>,
    /// Our side of its offer/answer.
    sdp: SdpSession,
    /// The address we offered.
    local: SocketAddr,
    /// The leg is in the call's media.
    pub added: bool,
    /// The host the party signals from (where it registered from, or its URI's address): its
    /// media from there is latched from the first packet.
    signalling: Option<std::net::IpAddr>,
}

impl PartyMedia {
    /// The media of a phone that called us (its offer answered already): in the call's media
    /// from the start.
    pub(super) fn answered(leg: LegId, sdp: SdpSession, local: SocketAddr) -> Self {
        PartyMedia {
            leg,
            lease: None,
            sdp,
            local,
            added: true,
            signalling: None,
        }
    }
}

impl CallTask {
    pub(super) async fn on_leg(&mut self, ev: LegEvent) {
        match ev {
            LegEvent::Ringing { party } => debug!(%party, "agent ringing"),
            LegEvent::Answered { party, sdp } => self.on_answered(party, &sdp).await,
            LegEvent::Failed { party, status } => {
                if self.legs.remove(&party).is_none() {
                    return; // a leg we cancelled ourselves
                }
                info!(%party, status, "agent leg failed");
                self.drop_media(&party);
                self.ctl.handle_agent_failed(Instant::now(), &party, status);
            }
            LegEvent::Ended { party } => {
                if self.legs.remove(&party).is_none() {
                    return; // a leg we hung up ourselves
                }
                info!(%party, "party hung up");
                self.ctl.handle_agent_gone(Instant::now(), &party, false);
                self.drop_media(&party);
            }
            LegEvent::Offer {
                party,
                sdp,
                session_expires,
                reply,
            } => self.on_reoffer(party, &sdp, session_expires, reply).await,
            LegEvent::Refer {
                party,
                refer_to,
                reply,
            } => self.on_refer(party, &refer_to, reply).await,
            LegEvent::Info {
                party,
                content_type,
                body,
                reply,
            } => {
                let _ = reply.reply(StatusCode::OK).await;
                let digit = crate::media::dtmf::parse_info_body(&content_type, &body);
                if let (Some(d), Some(m)) = (digit, self.party_media.get(&party)) {
                    let len = Duration::from_millis(160);
                    let cmd = MediaCommand::InfoDigit(m.leg, d, len);
                    let _ = self.media.commands.send(cmd).await;
                }
            }
        }
    }

    async fn on_answered(&mut self, party: String, sdp: &str) {
        match read_answer(sdp, &offered_formats()) {
            Ok(n) => {
                self.ctl.handle_agent_answered(&party);
                if !self.ctl.is_in_call(&party) {
                    return; // answered too late: the controller hangs it up
                }
                let is_ivr = self.ctl.external_ivr() == Some(party.as_str());
                let supervising = self.ctl.is_supervisor(&party);
                info!(%party, remote = ?n.remote, codec = %n.codec.name, "party answered");
                let Some(m) = self.party_media.get_mut(&party) else {
                    return;
                };
                if let Some(lease) = m.lease.take() {
                    m.added = true;
                    let (id, leg, signalling) = (m.leg, NewLeg::Rtp(n), m.signalling);
                    self.leg_names.insert(id, party.clone());
                    let cmd = MediaCommand::AddLeg { id, leg, lease };
                    let _ = self.media.commands.send(cmd).await;
                    if let Some(ip) = signalling {
                        let _ = self.media.commands.send(MediaCommand::Trust(id, ip)).await;
                    }
                    // An agent's recording code never reaches the customer (nor do its other keys);
                    // a supervisor's keys switch its mode and reach nobody.
                    let code = self.mgr.cfg.recording.pause_code.is_some();
                    if supervising || (!is_ivr && code) {
                        let _ = self
                            .media
                            .commands
                            .send(MediaCommand::KeepKeys(id, true))
                            .await;
                    }
                }
                if is_ivr {
                    let role = super::events::Role::ExternalIvr.as_str();
                    self.record.party_joined(&party, role, unix_ms());
                }
            }
            Err(e) => {
                warn!(%party, error = %e, "agent's answer unusable; hanging up that leg");
                if let Some(leg) = self.legs.remove(&party) {
                    tokio::spawn(async move { leg.hang_up().await });
                }
                self.drop_media(&party);
                self.ctl.handle_agent_failed(Instant::now(), &party, 488);
            }
        }
    }

    async fn on_reoffer(
        &mut self,
        party: String,
        sdp: &str,
        session_expires: Option<String>,
        reply: TransactionHandle,
    ) {
        // A refresh re-INVITE's interval is echoed (RFC 4028 §9), so the phone keeps the session.
        let sdp_ct = || {
            let mut h = vec![Header::ContentType("application/sdp".into())];
            if let Some(v) = &session_expires {
                h.push(Header::Other("Session-Expires".into(), v.clone()));
                h.push(Header::Require("timer".into()));
            }
            h
        };
        let Some(m) = self.party_media.get_mut(&party) else {
            let _ = reply.reply(StatusCode::CallTransactionDoesNotExist).await;
            return;
        };
        if sdp.trim().is_empty() {
            // An offerless re-INVITE: we offer; the answer in the ACK changes nothing we rely on.
            let offer = local_offer(m);
            let body = Some(offer.into_bytes());
            let _ = reply.respond(StatusCode::OK, Some(sdp_ct()), body).await;
            return;
        }
        match m.sdp.answer(sdp, m.local, &offered_formats(), None) {
            Ok((answer, n)) => {
                let held = n.peer_holds();
                let cmd = MediaCommand::UpdateRtp(m.leg, n);
                let _ = self.media.commands.send(cmd).await;
                let body = Some(answer.into_bytes());
                let _ = reply.respond(StatusCode::OK, Some(sdp_ct()), body).await;
                info!(%party, held, "agent re-INVITE");
                self.ctl.handle_agent_hold(&party, held);
            }
            Err(e) => {
                let _ = reply
                    .respond(StatusCode::from(e.sip_status()), None, None)
                    .await;
            }
        }
    }

    async fn on_refer(&mut self, party: String, refer_to: &str, reply: TransactionHandle) {
        if self.refer_replaces(&party, refer_to, &reply).await {
            return;
        }
        let from_ivr = self.ctl.external_ivr() == Some(party.as_str());
        let target = refer_target(refer_to);
        let status = self
            .ctl
            .handle_refer(Instant::now(), &party, target.as_deref());
        let _ = reply.reply(StatusCode::from(status)).await;
        match (from_ivr, status) {
            (true, 202) => info!(%party, ?target, "external IVR handed the call back"),
            (false, 202) => info!(%party, ?target, "blind transfer"),
            (true, 404) => info!(%party, refer_to, "external IVR referred to no known queue"),
            (_, _) => info!(%party, refer_to, status, "REFER refused"),
        }
        if status != 202 {
            return;
        }
        if from_ivr {
            // Its NOTIFY and BYE come from the controller's outputs, after this gap.
            self.notify_after_202(&party);
        } else if let Some(leg) = self.legs.get(&party).cloned() {
            let h = tokio::spawn(async move {
                tokio::time::sleep(REFER_NOTIFY_GAP).await;
                leg.notify_transfer(100).await
            });
            self.notifies.insert(party, h);
        }
    }

    /// The 202 to a REFER goes out through its transaction's task and the NOTIFYs through others:
    /// the first NOTIFY waits a moment so the transferor sees the 202 first (strict UAs, SIPp among
    /// them, refuse a NOTIFY before the 202).
    fn notify_after_202(&mut self, party: &str) {
        let h = tokio::spawn(tokio::time::sleep(REFER_NOTIFY_GAP));
        self.notifies.insert(party.to_string(), h);
    }

    /// The media of a party whose phone called us (its offer answered): a leg in the call's media
    /// at once, latched to the host it signals from; its keys are kept (a supervisor's switch
    /// modes and reach nobody).
    pub(super) async fn add_answered_media(
        &mut self,
        party: &str,
        n: crate::media::sdp::Negotiated,
        lease: PortLease,
        sdp: SdpSession,
        signalling: Option<std::net::IpAddr>,
    ) {
        let id = LegId(self.next_leg);
        self.next_leg += 1;
        let media = PartyMedia::answered(id, sdp, lease.advertised);
        self.party_media.insert(party.to_string(), media);
        self.leg_names.insert(id, party.to_string());
        let cmds = [
            Some(MediaCommand::AddLeg {
                id,
                leg: NewLeg::Rtp(n),
                lease,
            }),
            signalling.map(|ip| MediaCommand::Trust(id, ip)),
            Some(MediaCommand::KeepKeys(id, true)),
        ];
        for cmd in cmds.into_iter().flatten() {
            let _ = self.media.commands.send(cmd).await;
        }
    }

    /// CANCELs or BYEs a party's leg (after its NOTIFYs) and lets its media go.
    pub(super) fn hang_up(&mut self, party: &str) {
        if let Some(leg) = self.legs.remove(party) {
            let before = self.notifies.remove(party);
            tokio::spawn(async move {
                if let Some(b) = before {
                    let _ = b.await;
                }
                leg.hang_up().await
            });
        }
        self.drop_media(party);
    }

    /// A party's media leaves the call (its port goes back to the pool).
    pub(super) fn drop_media(&mut self, party: &str) {
        let Some(m) = self.party_media.remove(party) else {
            return;
        };
        if m.added {
            if party.starts_with("ivr:") {
                self.record.party_left(party, unix_ms());
            }
            // The media may have ended with the call already: nothing to remove then.
            let _ = self.media.commands.try_send(MediaCommand::RemoveLeg(m.leg));
        }
    }

    /// INVITEs a party (agent, transfer target, external IVR) with the context headers, from a
    /// media port of its own.
    pub(super) async fn invite(&mut self, party: &str) {
        let Some(target) = self.resolve(party).await else {
            info!(%party, "agent not reachable (no registration, no static URI)");
            self.ctl.handle_agent_failed(Instant::now(), party, 480);
            return;
        };
        let lease = match self.mgr.engine.lease_with_rtcp().await {
            Ok(l) => l,
            Err(e) => {
                warn!(%party, error = %e, "no media port for the agent leg");
                self.ctl.handle_agent_failed(Instant::now(), party, 503);
                return;
            }
        };
        let mut media = PartyMedia {
            leg: LegId(self.next_leg),
            local: lease.advertised,
            lease: Some(lease),
            sdp: SdpSession::new(rand::random::<u32>().into()),
            added: false,
            signalling: target.destination.map(|d| d.ip()).or(
                match &target.uri.host_with_port.host {
                    rsip::Host::IpAddr(ip) => Some(*ip),
                    rsip::Host::Domain(_) => None,
                },
            ),
        };
        self.next_leg += 1;
        let opt = match self.invite_option(&mut media) {
            Ok(o) => o,
            Err(e) => {
                warn!(error = %e, "cannot build the agent INVITE");
                self.ctl.handle_agent_failed(Instant::now(), party, 500);
                return;
            }
        };
        match SipLeg::invite(&self.mgr.layer, &target, opt, self.leg_tx.clone()) {
            Ok(leg) => {
                info!(%party, uri = %target.uri, "offering call to agent");
                self.legs.insert(party.to_string(), leg);
                self.party_media.insert(party.to_string(), media);
            }
            Err(e) => {
                warn!(%party, error = %e, "INVITE could not be sent");
                self.ctl.handle_agent_failed(Instant::now(), party, 503);
            }
        }
    }

    async fn resolve(&self, party: &str) -> Option<LegTarget> {
        let tcp_fallback = self.mgr.cfg.sip.listen_tcp.is_some();
        let cfg = &self.mgr.cfg;
        let static_uri = if let Some(queue) = party.strip_prefix("ivr:") {
            let q = cfg.queues.iter().find(|q| q.name == queue)?;
            q.external_ivr.as_deref()
        } else if let Some(s) = cfg.supervisor(party) {
            s.uri.as_deref()
        } else {
            cfg.agent(party)?.uri.as_deref()
        };
        if let Some(uri) = static_uri {
            let uri = crate::sip::uri::parse_sip_uri(uri).ok()?;
            let transport = uri
                .transport()
                .map(|t| t.to_string().to_ascii_lowercase())
                .unwrap_or_else(|| "udp".into());
            return Some(LegTarget {
                party: party.into(),
                uri,
                destination: None,
                transport,
                tcp_fallback,
                route: vec![],
            });
        }
        // A registered agent: its first contact, reached at the address it registered from.
        let contact = self
            .mgr
            .locations
            .contacts(party)
            .await
            .into_iter()
            .next()?;
        // Registered through proxies (their Path): the INVITE goes to the first, routed by all.
        let destination = match contact.path.first() {
            Some(hop) => crate::sip::name_addr::split(hop)
                .and_then(|(uri, _)| crate::sip::uri::parse_sip_uri(uri).ok())
                .and_then(|u| super::sip_leg::uri_socket(&u))
                .or(Some(contact.source)),
            None => Some(contact.source),
        };
        Some(LegTarget {
            party: party.into(),
            uri: crate::sip::uri::parse_sip_uri(&contact.uri).ok()?,
            destination,
            transport: contact.transport,
            tcp_fallback,
            route: contact.path,
        })
    }

    fn invite_option(&self, media: &mut PartyMedia) -> Result<InviteOption, Box<rsipstack::Error>> {
        let (pairs, display) =
            crate::widget::context::headers_for(&self.context, &self.mgr.mapping);
        let mut headers: Vec<Header> = pairs
            .into_iter()
            .map(|(k, v)| Header::Other(k, v))
            .collect();
        if let Some(q) = self
            .ctl
            .queue()
            .and_then(|q| self.mgr.cfg.queues.iter().find(|c| c.name == q))
        {
            headers.push(Header::Other("X-Queue".into(), q.name.clone()));
            for (k, v) in &q.headers {
                let v = crate::widget::context::sanitize(&Value::String(v.clone()));
                headers.push(Header::Other(k.clone(), v));
            }
        }
        for (k, v) in &self.headers {
            headers.push(Header::Other(k.clone(), v.clone()));
        }
        headers.push(Header::Other("X-Call-Id".into(), self.id.to_string()));
        // Desk phones offer attended transfer only to peers that support Replaces (RFC 3891).
        headers.push(Header::Supported("replaces".into()));
        let contact = self
            .mgr
            .layer
            .build_local_contact(Some("clicktocall".into()), None)
            .map_err(Box::new)?;
        let caller = rsip::Uri {
            params: vec![],
            ..contact.clone()
        };
        let offer = local_offer(media);
        Ok(InviteOption {
            caller_display_name: display,
            caller,
            contact,
            content_type: Some("application/sdp".into()),
            offer: Some(offer.into_bytes()),
            headers: Some(headers),
            ..Default::default()
        })
    }
}

/// Our SDP offer toward a party: G.711 with telephone-event from its own port.
fn local_offer(m: &mut PartyMedia) -> String {
    m.sdp
        .offer(m.local, &offered_formats(), true, 20, Direction::SendRecv)
}

/// The agent id a `Refer-To` names: `<sip:1002@gateway>` → `1002`.
pub fn refer_target(refer_to: &str) -> Option<String> {
    let inner = refer_to.trim();
    let inner = inner
        .find('<')
        .and_then(|s| inner[s + 1..].find('>').map(|e| &inner[s + 1..s + 1 + e]))
        .unwrap_or(inner);
    let uri = crate::sip::uri::parse_sip_uri(inner).ok()?;
    uri.auth.map(|a| a.user).filter(|u| !u.is_empty())
}

#[cfg(test)]
mod tests {
    #[test]
    fn refer_to_names_the_user_part() {
        assert_eq!(
            super::refer_target("<sip:1002@127.0.0.1:5060>").as_deref(),
            Some("1002")
        );
        assert_eq!(
            super::refer_target("sip:sales@gw.example.com").as_deref(),
            Some("sales")
        );
        assert_eq!(super::refer_target("<garbage>"), None);
    }
}
