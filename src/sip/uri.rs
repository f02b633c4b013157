//! Parsing URIs that come from the config, with errors a person can act on.

use rsipstack::rsip;

/// Where requests to a trunk are sent: host, port and transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyTarget {
    /// Host name or IP address.
    pub host: String,
    /// Port (5060 when the URI names none, 5061 for TLS).
    pub port: u16,
    /// `udp`, `tcp` or `tls`.
    pub transport: rsip::Transport,
}

/// Parses a `sip:`/`sips:` URI and checks it has a host.
pub fn parse_sip_uri(text: &str) -> Result<rsip::Uri, String> {
    let t = text.trim();
    if !(t.starts_with("sip:") || t.starts_with("sips:")) {
        return Err(format!("{text:?} is not a sip: or sips: URI"));
    }
    let uri =
        rsip::Uri::try_from(t).map_err(|e| format!("{text:?} is not a valid SIP URI: {e}"))?;
    if uri.host_with_port.host.to_string().is_empty() {
        return Err(format!("{text:?} has no host"));
    }
    Ok(uri)
}

/// Parses an outbound proxy URI such as `sip:198.51.100.7:5060;transport=tcp`.
pub fn parse_proxy(text: &str) -> Result<ProxyTarget, String> {
    let uri = parse_sip_uri(text)?;
    let mut transport = if matches!(uri.scheme, Some(rsip::Scheme::Sips)) {
        rsip::Transport::Tls
    } else {
        rsip::Transport::Udp
    };
    for p in &uri.params {
        if let rsip::Param::Transport(t) = p {
            transport = *t;
        }
    }
    if !matches!(
        transport,
        rsip::Transport::Udp | rsip::Transport::Tcp | rsip::Transport::Tls
    ) {
        return Err(format!("{text:?}: transport must be udp, tcp or tls"));
    }
    let default_port = if transport == rsip::Transport::Tls {
        5061
    } else {
        5060
    };
    let port = uri
        .host_with_port
        .port
        .map(|p| p.value())
        .unwrap_or(default_port);
    Ok(ProxyTarget {
        host: uri.host_with_port.host.to_string(),
        port,
        transport,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxies() {
        let p = parse_proxy("sip:127.0.0.2:5070").unwrap();
        assert_eq!(
            (p.host.as_str(), p.port, p.transport),
            ("127.0.0.2", 5070, rsip::Transport::Udp)
        );
        let p = parse_proxy("sip:carrier.example;transport=tcp").unwrap();
        assert_eq!((p.port, p.transport), (5060, rsip::Transport::Tcp));
        assert_eq!(parse_proxy("sips:carrier.example").unwrap().port, 5061);
        assert!(parse_proxy("http://carrier.example").is_err());
        assert!(parse_proxy("sip:").is_err());
    }
}
