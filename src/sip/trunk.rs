//! The trunk client: registration toward SIP trunks that want it (digest auth answered by rsipstack's
//! 401/407 handling), through the configured outbound proxy.

use crate::config::{Config, TrunkConfig};
use rsipstack::dialog::authenticate::Credential;
use rsipstack::dialog::registration::{RefreshOutcome, Registration};
use rsipstack::rsip;
use rsipstack::transaction::endpoint::EndpointInnerRef;
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Starts one registration loop per trunk with `register = true`.
pub fn spawn_registrations(cfg: &Config, endpoint: EndpointInnerRef, stop: CancellationToken) {
    for trunk in cfg.trunks.iter().filter(|t| t.register) {
        let (trunk, endpoint, stop) = (trunk.clone(), endpoint.clone(), stop.clone());
        tokio::spawn(async move {
            if let Err(e) = register_loop(&trunk, endpoint, stop).await {
                warn!(trunk = %trunk.name, error = %e, "trunk registration stopped");
            }
        });
    }
}

/// Resolves the trunk's outbound proxy to a socket address.
pub async fn proxy_addr(trunk: &TrunkConfig) -> Result<SocketAddr, String> {
    let p = super::uri::parse_proxy(&trunk.proxy)?;
    let mut addrs = tokio::net::lookup_host((p.host.as_str(), p.port))
        .await
        .map_err(|e| format!("cannot resolve {}: {e}", p.host))?;
    addrs
        .next()
        .ok_or_else(|| format!("{} resolves to no address", p.host))
}

async fn register_loop(
    trunk: &TrunkConfig,
    endpoint: EndpointInnerRef,
    stop: CancellationToken,
) -> Result<(), String> {
    let proxy = proxy_addr(trunk).await?;
    let target = super::uri::parse_proxy(&trunk.proxy)?;
    let domain = trunk.domain.clone().unwrap_or(target.host.clone());
    let server =
        rsip::Uri::try_from(format!("sip:{domain}").as_str()).map_err(|e| e.to_string())?;
    let credential = Credential {
        username: trunk.username.clone().unwrap_or_default(),
        password: trunk.password.clone().unwrap_or_default(),
        realm: None,
        auth_username: None,
    };
    let mut reg = Registration::new(endpoint, Some(credential));
    reg.outbound_proxy = Some(proxy);
    let name = trunk.name.clone();
    reg.keep_alive(
        server,
        trunk.register_expires,
        stop,
        |outcome| match outcome {
            RefreshOutcome::Registered(resp) => {
                info!(trunk = %name, status = %resp.status_code, "registered to trunk")
            }
            RefreshOutcome::Rejected(resp) => {
                warn!(trunk = %name, status = %resp.status_code, "trunk refused registration")
            }
            RefreshOutcome::Failed(e) => {
                warn!(trunk = %name, error = %e, "trunk registration failed")
            }
        },
    )
    .await;
    Ok(())
}
