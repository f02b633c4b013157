//! One handler per request method. Each runs in its own task, owns its transaction, and always ends it
//! with a final response (or none for ACK).
//!
//! Source ACL: REGISTER and OPTIONS are open (REGISTER is protected by digest auth; OPTIONS is a
//! capability query, configurable). Every other request must come from a configured trunk's network
//! or from an address an agent registered from (then it is challenged), else 403 (RFC 3261 §21.4.4).

use super::auth::{AuthOutcome, DigestAuth};
use super::registrar_task::RegistrarHandle;
use super::server::Caller;
use super::uas_checks;
use crate::config::Config;
use crate::lifecycle::Lifecycle;
use crate::registrar::{ContactRequest, LocationStore, RegisterOutcome, RegisterRequest};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::rsip::prelude::{HeadersExt, ToTypedHeader};
use rsipstack::rsip::{self, Header, Method, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tracing::{debug, info, warn};

/// What every handler may need.
pub struct SipContext {
    /// The configuration.
    pub cfg: Arc<Config>,
    /// Digest challenges and checks.
    pub auth: DigestAuth,
    /// The registrar task.
    pub registrar: RegistrarHandle,
    /// Where agents are.
    pub locations: Arc<dyn LocationStore>,
    /// Draining state.
    pub lifecycle: Lifecycle,
    /// Dialogs (in-dialog requests are theirs).
    pub layer: Arc<DialogLayer>,
    /// Call control's inbound-call entry, once running.
    pub inbound: Arc<std::sync::OnceLock<Arc<dyn super::server::InboundCalls>>>,
    /// Flood defence: failed authentications count against their source; agents' addresses are
    /// protected while registered.
    pub flood: Arc<super::flood::FloodShield>,
}

/// Who sent a request, as far as the ACL is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A configured trunk (by name).
    Trunk(String),
    /// An address some agent registered from.
    AgentAddress,
    /// Neither.
    Unknown,
}

/// Handles one incoming transaction to its final response.
pub async fn handle(ctx: Arc<SipContext>, mut tx: Transaction) {
    let src = source_addr(&tx);
    let method = tx.original.method;
    if let Some(mut dialog) = ctx.layer.match_dialog(&tx) {
        // In-dialog requests of a call's legs (BYE, re-INVITE, REFER, INFO, NOTIFY, ACK).
        if let Err(e) = dialog.handle(&mut tx).await {
            debug!(?src, %method, error = %e, "in-dialog request failed");
        }
        return;
    }
    let result = match method {
        Method::Ack => return,
        Method::Options => options(&ctx, &mut tx, src).await,
        Method::Register => register(&ctx, &mut tx, src).await,
        Method::Invite => match invite(&ctx, &mut tx, src).await {
            Ok(Some(caller)) => {
                if let Some(inbound) = ctx.inbound.get() {
                    inbound.handle_invite(tx, caller).await;
                }
                return;
            }
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        },
        Method::Message | Method::Subscribe | Method::Publish => {
            reply(&mut tx, StatusCode::MethodNotAllowed, vec![allow_header()]).await
        }
        // In-dialog requests: dialogs arrive with call control; until then none exists.
        _ => match classify(&ctx, src).await {
            Source::Unknown => forbidden(&mut tx, src).await,
            _ => reply(&mut tx, StatusCode::CallTransactionDoesNotExist, vec![]).await,
        },
    };
    if let Err(e) = result {
        warn!(?src, %method, error = %e, "could not answer request");
    }
}

async fn options(
    ctx: &SipContext,
    tx: &mut Transaction,
    src: Option<SocketAddr>,
) -> rsipstack::Result<()> {
    if !ctx.cfg.sip.options_from_anyone && classify(ctx, src).await == Source::Unknown {
        return forbidden(tx, src).await;
    }
    if let Some(refusal) = uas_checks::unsupported_extensions(&tx.original) {
        return refuse(tx, refusal).await;
    }
    let headers = vec![
        allow_header(),
        Header::Accept("application/sdp".into()),
        Header::Supported(uas_checks::SUPPORTED.join(", ").into()),
    ];
    reply(tx, StatusCode::OK, headers).await
}

async fn invite(
    ctx: &SipContext,
    tx: &mut Transaction,
    src: Option<SocketAddr>,
) -> rsipstack::Result<Option<Caller>> {
    let source = classify(ctx, src).await;
    if source == Source::Unknown {
        return forbidden(tx, src).await.map(|_| None);
    }
    let mut user = None;
    if source == Source::AgentAddress {
        // An agent's phone placing a call must prove who it is.
        match ctx.auth.check(Instant::now(), &tx.original, true, |u| {
            agent_password(&ctx.cfg, u)
        }) {
            AuthOutcome::Ok(u) => user = Some(u),
            outcome @ (AuthOutcome::Challenge | AuthOutcome::Stale) => {
                let stale = outcome == AuthOutcome::Stale;
                let h = Header::ProxyAuthenticate(ctx.auth.challenge(Instant::now(), stale).into());
                return reply(tx, StatusCode::ProxyAuthenticationRequired, vec![h])
                    .await
                    .map(|_| None);
            }
            AuthOutcome::Forbidden(why) => {
                info!(?src, why, "INVITE authentication failed");
                if let Some(src) = src {
                    ctx.flood.auth_failed(src.ip());
                }
                return reply(tx, StatusCode::Forbidden, vec![]).await.map(|_| None);
            }
        }
    }
    let refusal = uas_checks::unsupported_extensions(&tx.original)
        .or_else(|| uas_checks::unsupported_body(&tx.original))
        .or_else(|| uas_checks::unacceptable_answer(&tx.original))
        .or_else(|| uas_checks::too_many_hops(&tx.original));
    if let Some(refusal) = refusal {
        return refuse(tx, refusal).await.map(|_| None);
    }
    if ctx.lifecycle.is_draining() {
        return reply(
            tx,
            StatusCode::ServiceUnavailable,
            vec![Header::RetryAfter("30".into())],
        )
        .await
        .map(|_| None);
    }
    if ctx.inbound.get().is_some() {
        match (&source, user) {
            (Source::Trunk(trunk), _) => return Ok(Some(Caller::Trunk(trunk.clone()))),
            (_, Some(u)) => return Ok(Some(Caller::User(u))),
            _ => {}
        }
    }
    // Routing calls into the IVR and queues is call control's job; until it exists the gateway says
    // honestly that nobody can take the call.
    info!(
        ?src,
        ?source,
        "INVITE accepted by ACL; no call routing configured"
    );
    reply(tx, StatusCode::TemporarilyUnavailable, vec![])
        .await
        .map(|_| None)
}

async fn register(
    ctx: &SipContext,
    tx: &mut Transaction,
    src: Option<SocketAddr>,
) -> rsipstack::Result<()> {
    // A registrar checks Require before authenticating (RFC 3261 §10.3 steps 2 and 3).
    if let Some(refusal) = uas_checks::unsupported_extensions(&tx.original) {
        return refuse(tx, refusal).await;
    }
    let now = Instant::now();
    let user = match ctx
        .auth
        .check(now, &tx.original, false, |u| agent_password(&ctx.cfg, u))
    {
        AuthOutcome::Ok(user) => user,
        outcome @ (AuthOutcome::Challenge | AuthOutcome::Stale) => {
            let h = Header::WwwAuthenticate(
                ctx.auth
                    .challenge(now, outcome == AuthOutcome::Stale)
                    .into(),
            );
            return reply(tx, StatusCode::Unauthorized, vec![h]).await;
        }
        AuthOutcome::Forbidden(why) => {
            info!(?src, why, "REGISTER authentication failed");
            if let Some(src) = src {
                ctx.flood.auth_failed(src.ip());
            }
            return reply(tx, StatusCode::Forbidden, vec![]).await;
        }
    };
    let to_user = tx
        .original
        .to_header()
        .and_then(|t| t.typed())
        .ok()
        .and_then(|t| t.uri.auth.map(|a| a.user));
    if to_user.as_deref() != Some(user.as_str()) {
        info!(?src, %user, ?to_user, "agent tried to register another address of record");
        return reply(tx, StatusCode::Forbidden, vec![]).await;
    }
    let Some(src) = src else {
        return reply(tx, StatusCode::ServerInternalError, vec![]).await;
    };
    let request = match register_request(&tx.original, &user, src) {
        Ok(r) => r,
        Err(why) => {
            debug!(%why, "bad REGISTER");
            return reply(tx, StatusCode::BadRequest, vec![]).await;
        }
    };
    // RFC 3327 §5.3: the Path we keep goes back in the 200, so the proxies see it was taken.
    let path: Vec<Header> = request
        .path
        .iter()
        .map(|p| Header::Path(p.clone().into()))
        .collect();
    let Some(outcome) = ctx.registrar.register(request).await else {
        return reply(tx, StatusCode::ServiceUnavailable, vec![]).await;
    };
    match outcome {
        RegisterOutcome::Ok(bindings) => {
            let longest = bindings.iter().map(|(_, secs)| *secs).max().unwrap_or(0);
            if longest > 0 {
                ctx.flood.protect(src.ip(), u64::from(longest));
            }
            let headers = bindings
                .into_iter()
                .map(|(uri, secs)| Header::Contact(format!("<{uri}>;expires={secs}").into()))
                .chain(path)
                .collect();
            reply(tx, StatusCode::OK, headers).await
        }
        RegisterOutcome::IntervalTooBrief(min) => {
            reply(
                tx,
                StatusCode::IntervalTooBrief,
                vec![Header::MinExpires(min.to_string().into())],
            )
            .await
        }
        RegisterOutcome::BadRequest(_) => reply(tx, StatusCode::BadRequest, vec![]).await,
        RegisterOutcome::OutOfOrder => reply(tx, StatusCode::ServerInternalError, vec![]).await,
    }
}

/// Reads the REGISTER's Contacts, Expires, Call-ID and CSeq.
fn register_request(
    req: &rsip::Request,
    agent: &str,
    src: SocketAddr,
) -> Result<RegisterRequest, String> {
    let call_id = req
        .call_id_header()
        .map_err(|e| e.to_string())?
        .value()
        .to_string();
    let cseq = req
        .cseq_header()
        .and_then(|c| c.seq())
        .map_err(|e| e.to_string())?;
    let mut expires_header = None;
    let mut contacts = Vec::new();
    let mut wildcard = false;
    let mut path = Vec::new();
    for h in req.headers.iter() {
        match h {
            Header::Path(p) => {
                for value in super::validate::split_commas(p.value()) {
                    let (uri, _) = super::name_addr::split(value.trim())
                        .ok_or_else(|| format!("bad Path {value:?}"))?;
                    super::uri::parse_sip_uri(uri)?;
                    path.push(value.trim().to_string());
                }
            }
            Header::Expires(e) => {
                expires_header = Some(e.value().trim().parse::<u32>().map_err(|_| "bad Expires")?)
            }
            Header::Contact(c) => {
                for value in super::validate::split_commas(c.value()) {
                    let value = value.trim();
                    if value == "*" {
                        wildcard = true;
                    } else {
                        contacts.push(parse_contact(value)?);
                    }
                }
            }
            _ => {}
        }
    }
    let transport = req
        .via_header()
        .ok()
        .and_then(|v| v.typed().ok())
        .map(|v| v.transport.to_string().to_ascii_lowercase())
        .unwrap_or_else(|| "udp".into());
    Ok(RegisterRequest {
        agent: agent.to_string(),
        call_id,
        cseq,
        expires_header,
        contacts,
        wildcard,
        source: src,
        transport,
        path,
    })
}

/// `"Name" <sip:u@h;p>;expires=N;+sip.instance="<urn:...>"` → the URI and its expires parameter.
fn parse_contact(value: &str) -> Result<ContactRequest, String> {
    let (uri, params) =
        super::name_addr::split(value).ok_or_else(|| format!("bad Contact {value:?}"))?;
    super::uri::parse_sip_uri(uri)?;
    let mut expires = None;
    for (k, v) in super::name_addr::params(params) {
        if k.eq_ignore_ascii_case("expires") {
            let v = v.unwrap_or_default().trim_matches('"');
            expires = Some(v.parse::<u32>().map_err(|_| "bad expires parameter")?);
        }
    }
    Ok(ContactRequest {
        uri: uri.to_string(),
        expires,
    })
}

/// Classifies a source address by the ACL.
pub async fn classify(ctx: &SipContext, src: Option<SocketAddr>) -> Source {
    let Some(src) = src else {
        return Source::Unknown;
    };
    if let Some(t) = ctx
        .cfg
        .trunks
        .iter()
        .find(|t| t.sources.iter().any(|c| c.contains(src.ip())))
    {
        return Source::Trunk(t.name.clone());
    }
    if ctx.locations.is_agent_source(src.ip()).await {
        return Source::AgentAddress;
    }
    Source::Unknown
}

/// The digest password of a phone of this gateway (an agent's or a supervisor's).
fn agent_password(cfg: &Config, user: &str) -> Option<String> {
    cfg.user_password(user)
}

fn source_addr(tx: &Transaction) -> Option<SocketAddr> {
    tx.connection
        .as_ref()
        .and_then(|c| c.get_remote_addr())
        .and_then(|a| a.get_socketaddr().ok())
}

fn allow_header() -> Header {
    Header::Allow(super::ALLOWED_METHODS.join(", ").into())
}

async fn forbidden(tx: &mut Transaction, src: Option<SocketAddr>) -> rsipstack::Result<()> {
    info!(?src, method = %tx.original.method, "request from a source outside the ACL refused");
    reply(tx, StatusCode::Forbidden, vec![]).await
}

async fn refuse(tx: &mut Transaction, refusal: uas_checks::Refusal) -> rsipstack::Result<()> {
    info!(method = %tx.original.method, status = %refusal.status, "request refused by UAS checks");
    reply(tx, refusal.status, refusal.headers).await
}

async fn reply(
    tx: &mut Transaction,
    status: StatusCode,
    headers: Vec<Header>,
) -> rsipstack::Result<()> {
    tx.reply_with(status, headers, None).await
}

#[cfg(test)]
mod tests {
    use super::parse_contact;

    #[test]
    fn contact_with_quoted_instance_keeps_uri_and_expires() {
        let c = parse_contact(
            r#"<sip:1001-0x1@127.0.0.1:5080;transport=udp>;expires=0;+sip.instance="<urn:uuid:x>""#,
        )
        .unwrap();
        assert_eq!(c.uri, "sip:1001-0x1@127.0.0.1:5080;transport=udp");
        assert_eq!(c.expires, Some(0));
    }
}
