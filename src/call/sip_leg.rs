//! The SIP legs a call places toward agents (and transfer targets), on rsipstack's dialog layer:
//! the INVITE with the context headers, its provisional and final responses, and what the agent's
//! phone sends inside the dialog (BYE, hold re-INVITE, REFER, INFO). Each leg has a small task that
//! turns rsipstack's dialog states into [`LegEvent`]s for the call task.

use rsipstack::dialog::dialog::{DialogState, TransactionHandle};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::rsip::{self, Header, Method, StatusCode, StatusCodeKind};
use rsipstack::transport::SipAddr;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tracing::debug;

/// RFC 4028 session timer the peer asked for: `Session-Expires: N;refresher=uac|uas`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimer {
    /// Session interval in seconds.
    pub secs: u64,
    /// True when we (the UAC of this leg) must refresh.
    pub we_refresh: bool,
}

/// Reads `Session-Expires` from the 2xx to our INVITE (we are the UAC). Without `refresher`, the
/// UAS chose not to say; since we did not offer to refresh, it refreshes (RFC 4028 §7.2).
pub fn session_timer(resp: &rsip::Response) -> Option<SessionTimer> {
    session_expires(&resp.headers).and_then(|value| parse_timer(&value))
}

/// The raw `Session-Expires` value among `headers`.
pub fn session_expires(headers: &rsip::Headers) -> Option<String> {
    headers.iter().find_map(|h| {
        let text = h.to_string();
        let (name, value) = text.split_once(':')?;
        let name = name.trim();
        // `x` is the compact form (RFC 4028 §4).
        (name.eq_ignore_ascii_case("Session-Expires") || name.eq_ignore_ascii_case("x"))
            .then(|| value.trim().to_string())
    })
}

fn parse_timer(value: &str) -> Option<SessionTimer> {
    let mut parts = value.split(';');
    let secs: u64 = parts.next()?.trim().parse().ok()?;
    if secs == 0 {
        return None;
    }
    let we_refresh = parts.any(|p| {
        let p = p.trim().to_ascii_lowercase();
        p == "refresher=uac"
    });
    Some(SessionTimer { secs, we_refresh })
}

/// Largest INVITE sent over UDP; a bigger one goes over TCP (RFC 3261 §18.1.1).
pub const UDP_INVITE_LIMIT: usize = 1300;

/// What happened on a leg. `party` is the agent id (or transfer target) the leg was placed to.
#[derive(Debug)]
pub enum LegEvent {
    /// 180/183.
    Ringing {
        /// Who rings.
        party: String,
    },
    /// 2xx: the dialog is up; `sdp` is the answer.
    Answered {
        /// Who answered.
        party: String,
        /// The SDP answer.
        sdp: String,
    },
    /// A final error response, or no answer at all (408).
    Failed {
        /// Who refused.
        party: String,
        /// The status code.
        status: u16,
    },
    /// The far end sent BYE (or the dialog died).
    Ended {
        /// Whose dialog.
        party: String,
    },
    /// A re-INVITE or UPDATE with an offer (hold, unhold, new address); answer through `reply`.
    Offer {
        /// Whose dialog.
        party: String,
        /// The SDP offer (may be empty for an offerless re-INVITE).
        sdp: String,
        /// `Session-Expires` of a refresh, to echo in the 200 (RFC 4028 §9).
        session_expires: Option<String>,
        /// Where the response goes.
        reply: TransactionHandle,
    },
    /// REFER (RFC 3515): transfer to `refer_to`.
    Refer {
        /// Who transfers.
        party: String,
        /// The Refer-To URI.
        refer_to: String,
        /// Where the response (202 or an error) goes.
        reply: TransactionHandle,
    },
    /// INFO (DTMF relay).
    Info {
        /// Whose dialog.
        party: String,
        /// Content-Type.
        content_type: String,
        /// Body.
        body: String,
        /// Where the response goes.
        reply: TransactionHandle,
    },
}

/// Where and how to INVITE one party.
#[derive(Debug, Clone)]
pub struct LegTarget {
    /// Agent id or transfer-target name.
    pub party: String,
    /// Request-URI.
    pub uri: rsip::Uri,
    /// Where the request goes (the agent's registration source, NAT-safe), if not the URI's host.
    pub destination: Option<SocketAddr>,
    /// `udp`, `tcp` or `tls`.
    pub transport: String,
    /// May an INVITE too large for UDP move to TCP (the gateway has a TCP listener)?
    pub tcp_fallback: bool,
    /// `Route`s the INVITE carries (an agent's registered `Path`): it goes to the first.
    pub route: Vec<String>,
}

/// A placed leg.
#[derive(Clone)]
pub struct SipLeg {
    /// Who it goes to.
    pub party: String,
    dialog: InviteDialog,
}

impl SipLeg {
    /// Places the INVITE; events come on `events`.
    pub fn invite(
        layer: &Arc<DialogLayer>,
        target: &LegTarget,
        mut opt: InviteOption,
        events: mpsc::UnboundedSender<LegEvent>,
    ) -> Result<SipLeg, Box<rsipstack::Error>> {
        let mut transport = match target.transport.as_str() {
            "tcp" => rsip::Transport::Tcp,
            "tls" => rsip::Transport::Tls,
            _ => rsip::Transport::Udp,
        };
        let estimated: usize = opt.offer.as_ref().map_or(0, Vec::len)
            + opt
                .headers
                .iter()
                .flatten()
                .map(|h| h.to_string().len() + 2)
                .sum::<usize>()
            + 500;
        if transport == rsip::Transport::Udp && target.tcp_fallback && estimated > UDP_INVITE_LIMIT
        {
            transport = rsip::Transport::Tcp;
        }
        opt.callee = target.uri.clone();
        if !target.route.is_empty() {
            let routes = target.route.iter().map(|r| Header::Route(r.clone().into()));
            opt.headers.get_or_insert_with(Vec::new).extend(routes);
        }
        let dest = target.destination.or_else(|| uri_socket(&target.uri));
        opt.destination = dest.map(|addr| SipAddr {
            r#type: Some(transport),
            addr: addr.into(),
        });
        let offer = opt.offer.clone();
        let offer_type = opt
            .content_type
            .clone()
            .unwrap_or_else(|| "application/sdp".into());
        let (state_tx, mut state_rx) = layer.new_dialog_state_channel();
        let (dialog, invite) = layer.do_invite_async(opt, state_tx).map_err(Box::new)?;
        let party = target.party.clone();
        let layer = layer.clone();
        let refresher = dialog.clone();
        tokio::spawn(async move {
            let mut invite = Some(invite);
            let mut answered = false;
            let mut timer: Option<SessionTimer> = None;
            let mut next_refresh: Option<Instant> = None;
            loop {
                let refresh_due = crate::lifecycle::sleep_until(next_refresh);
                tokio::select! {
                    _ = refresh_due => {
                        let t = timer.expect("a refresh is scheduled only with a timer");
                        if refresh(&refresher, t, offer.as_deref(), &offer_type).await {
                            next_refresh = Some(Instant::now() + Duration::from_secs(t.secs) / 2);
                        } else {
                            // RFC 4028 §10: a session that cannot be refreshed is over.
                            debug!(%party, "session refresh failed; ending the leg");
                            next_refresh = None;
                            refresher.hangup().await.ok();
                        }
                    }
                    r = async { invite.as_mut().expect("polled only while Some").await }, if invite.is_some() => {
                        invite = None;
                        let (status, sdp, id) = match r {
                            Ok(Ok((id, Some(resp)))) => {
                                timer = session_timer(&resp);
                                (u16::from(resp.status_code.clone()), String::from_utf8_lossy(&resp.body).into_owned(), Some(id))
                            }
                            Ok(Ok((id, None))) => (408, String::new(), Some(id)),
                            Ok(Err(e)) => { debug!(error = %e, "INVITE failed"); (503, String::new(), None) }
                            Err(_) => (500, String::new(), None),
                        };
                        if (200..300).contains(&status) {
                            answered = true;
                            if let Some(t) = timer.filter(|t| t.we_refresh) {
                                debug!(%party, secs = t.secs, "session timer: we refresh");
                                next_refresh = Some(Instant::now() + Duration::from_secs(t.secs) / 2);
                            }
                            if events.send(LegEvent::Answered { party: party.clone(), sdp }).is_err() {
                                break;
                            }
                        } else {
                            let _ = events.send(LegEvent::Failed { party: party.clone(), status });
                            if let Some(id) = id { layer.remove_dialog(&id); }
                            break;
                        }
                    }
                    st = state_rx.recv() => {
                        let Some(st) = st else { break };
                        if !forward(&party, st, answered, &events, &layer) {
                            break;
                        }
                    }
                }
            }
        });
        Ok(SipLeg {
            party: target.party.clone(),
            dialog,
        })
    }

    /// A dialog a phone of this gateway placed to us (a supervisor dialling in), as a party leg
    /// of a call: its in-dialog requests and its end become [`LegEvent`]s on `events`.
    pub fn adopt(
        layer: &Arc<DialogLayer>,
        party: &str,
        dialog: InviteDialog,
        mut states: rsipstack::dialog::dialog::DialogStateReceiver,
        events: mpsc::UnboundedSender<LegEvent>,
    ) -> SipLeg {
        let (layer, name) = (layer.clone(), party.to_string());
        tokio::spawn(async move {
            while let Some(st) = states.recv().await {
                if !forward(&name, st, true, &events, &layer) {
                    break;
                }
            }
        });
        SipLeg {
            party: party.into(),
            dialog,
        }
    }

    /// The leg's dialog (a callback's customer leg becomes the call's customer).
    pub fn dialog(&self) -> InviteDialog {
        self.dialog.clone()
    }

    /// A re-INVITE with `body` (its Content-Type among `headers`): the final status, 408 when
    /// nothing came back, 481 when the dialog is no longer confirmed.
    pub async fn reinvite(&self, headers: Vec<Header>, body: Vec<u8>) -> u16 {
        match self.dialog.reinvite(Some(headers), Some(body)).await {
            Ok(Some(resp)) => u16::from(resp.status_code),
            Ok(None) => 481,
            Err(e) => {
                debug!(party = %self.party, error = %e, "re-INVITE failed");
                408
            }
        }
    }

    /// CANCEL (ringing) or BYE (answered).
    pub async fn hang_up(&self) {
        if let Err(e) = self.dialog.hangup().await {
            debug!(party = %self.party, error = %e, "hang-up failed");
        }
    }

    /// NOTIFY the transferor of the transfer's progress (RFC 3515 §2.4.5, sipfrag body).
    pub async fn notify_transfer(&self, status: u16) {
        let reason = StatusCode::from(status).to_string();
        let reason = reason
            .split_once(' ')
            .map_or(reason.as_str(), |(_, r)| r)
            .to_string();
        let final_ = status >= 200;
        let headers = vec![
            Header::Event("refer".into()),
            Header::SubscriptionState(
                if final_ {
                    "terminated;reason=noresource"
                } else {
                    "active;expires=60"
                }
                .into(),
            ),
            Header::ContentType("message/sipfrag;version=2.0".into()),
        ];
        let body = format!("SIP/2.0 {status} {reason}\r\n").into_bytes();
        if let Err(e) = self.dialog.notify(Some(headers), Some(body)).await {
            debug!(party = %self.party, error = %e, "NOTIFY failed");
        }
    }
}

/// One session refresh (RFC 4028 §7.4): UPDATE without a body; a peer that does not take UPDATE gets
/// a re-INVITE with our offer again. True when the peer accepted it.
async fn refresh(
    dialog: &InviteDialog,
    t: SessionTimer,
    offer: Option<&[u8]>,
    offer_type: &str,
) -> bool {
    let headers = || {
        vec![
            Header::Other(
                "Session-Expires".into(),
                format!("{};refresher=uac", t.secs),
            ),
            Header::Supported("timer".into()),
        ]
    };
    let ok = |r: &rsipstack::Result<Option<rsip::Response>>| matches!(r, Ok(Some(resp)) if resp.status_code.kind() == StatusCodeKind::Successful);
    let r = dialog.update(Some(headers()), None).await;
    if ok(&r) {
        return true;
    }
    let r = dialog
        .reinvite(
            Some([headers(), vec![Header::ContentType(offer_type.into())]].concat()),
            offer.map(<[u8]>::to_vec),
        )
        .await;
    ok(&r)
}

/// The socket address of a URI whose host is an IP (static agents on a LAN, tests).
pub(crate) fn uri_socket(uri: &rsip::Uri) -> Option<SocketAddr> {
    let ip: std::net::IpAddr = uri.host_with_port.host.to_string().parse().ok()?;
    let port = uri
        .host_with_port
        .port
        .as_ref()
        .map_or(5060, |p| p.value().to_owned());
    Some(SocketAddr::new(ip, port))
}

/// Maps one dialog state to an event; false when the leg is over.
fn forward(
    party: &str,
    st: DialogState,
    answered: bool,
    events: &mpsc::UnboundedSender<LegEvent>,
    layer: &Arc<DialogLayer>,
) -> bool {
    let party = party.to_string();
    let ev = match st {
        DialogState::Early(_, resp) if resp.status_code.kind() == StatusCodeKind::Provisional => {
            Some(LegEvent::Ringing { party })
        }
        DialogState::Updated(_, req, reply)
            if req.method == Method::Update && req.body.is_empty() =>
        {
            // A session refresh without an offer: 200, echoing the interval.
            let echo = session_expires(&req.headers).map(|v| {
                vec![
                    Header::Other("Session-Expires".into(), v),
                    Header::Require("timer".into()),
                ]
            });
            tokio::spawn(async move {
                let _ = reply.respond(StatusCode::OK, echo, None).await;
            });
            None
        }
        DialogState::Updated(_, req, reply)
            if matches!(req.method, Method::Invite | Method::Update) =>
        {
            Some(LegEvent::Offer {
                party,
                sdp: String::from_utf8_lossy(&req.body).into_owned(),
                session_expires: session_expires(&req.headers),
                reply,
            })
        }
        DialogState::Refer(_, req, reply) => {
            let refer_to = req
                .headers
                .iter()
                .find_map(|h| match h {
                    Header::ReferTo(r) => Some(r.value().to_string()),
                    _ => None,
                })
                .unwrap_or_default();
            Some(LegEvent::Refer {
                party,
                refer_to,
                reply,
            })
        }
        DialogState::Info(_, req, reply) => {
            let content_type = req
                .headers
                .iter()
                .find_map(|h| match h {
                    Header::ContentType(c) => Some(c.value().to_string()),
                    _ => None,
                })
                .unwrap_or_default();
            Some(LegEvent::Info {
                party,
                content_type,
                body: String::from_utf8_lossy(&req.body).into_owned(),
                reply,
            })
        }
        DialogState::Options(_, _, reply)
        | DialogState::Notify(_, _, reply)
        | DialogState::Message(_, _, reply)
        | DialogState::Publish(_, _, reply)
        | DialogState::Updated(_, _, reply) => {
            tokio::spawn(async move {
                let _ = reply.reply(StatusCode::OK).await;
            });
            None
        }
        DialogState::Terminated(id, reason) => {
            layer.remove_dialog(&id);
            debug!(%party, ?reason, "leg terminated");
            if answered {
                let _ = events.send(LegEvent::Ended { party });
            } else {
                // The dialog died before the INVITE's outcome was read: report it from the reason,
                // since this task stops here.
                use rsipstack::dialog::dialog::TerminatedReason as R;
                let status = match reason {
                    R::UacBusy | R::UasBusy => 486,
                    R::UasDecline => 603,
                    R::Timeout => 408,
                    R::UacCancel => 487,
                    R::ProxyAuthRequired => 407,
                    R::ProxyError(c) | R::UacOther(c) | R::UasOther(c) => u16::from(c),
                    R::UacBye | R::UasBye => 487,
                };
                let _ = events.send(LegEvent::Failed { party, status });
            }
            return false;
        }
        _ => None,
    };
    match ev {
        Some(ev) => events.send(ev).is_ok(),
        None => true,
    }
}
