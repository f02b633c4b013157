//! The visitor's address, for per-IP limits and logs. Sans-IO.
//!
//! Behind a load balancer or reverse proxy every socket comes from the proxy, so per-IP limits
//! would lump all visitors together. For a connection from one of `[http] trusted_proxies`, the
//! visitor is the right-most `X-Forwarded-For` entry that is not itself a trusted proxy: entries
//! to its left were written by the client and may be forged. Anything unparsable stops the walk at
//! the last trusted hop, and a connection from anywhere else is taken at its word.

use crate::config::Cidr;
use axum::http::HeaderMap;
use std::net::IpAddr;

/// The client's address: `peer` (the socket's), or what trusted proxies say it was.
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[Cidr]) -> Option<IpAddr> {
    let peer = peer?;
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return Some(peer);
    }
    // Every X-Forwarded-For line in order, each a comma-separated list; walk from the right.
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            break;
        };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    Some(client)
}

/// An address as proxies write it: `192.0.2.7`, `2001:db8::1`, `[2001:db8::1]:443`, `192.0.2.7:51000`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Some(rest) = hop.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    let (host, port) = hop.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(lines: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for l in lines {
            h.append("x-forwarded-for", l.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_trusted_proxies_are_believed_and_only_from_the_right() {
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().unwrap(), "::1".parse().unwrap()];
        let lb = Some(ip("10.1.2.3"));
        // Not behind a proxy: the socket's address, whatever the header says.
        let forged = headers(&["203.0.113.9"]);
        assert_eq!(
            client_ip(Some(ip("198.51.100.4")), &forged, &trusted),
            Some(ip("198.51.100.4"))
        );
        // One proxy.
        assert_eq!(
            client_ip(lb, &headers(&["198.51.100.4"]), &trusted),
            Some(ip("198.51.100.4"))
        );
        // A client that forges a first entry still gets its real address (the right-most untrusted).
        let chain = headers(&["203.0.113.9, 198.51.100.4", "10.9.9.9"]);
        assert_eq!(client_ip(lb, &chain, &trusted), Some(ip("198.51.100.4")));
        // Ports and brackets, as some proxies write them.
        assert_eq!(
            client_ip(lb, &headers(&["198.51.100.4:51000"]), &trusted),
            Some(ip("198.51.100.4"))
        );
        assert_eq!(
            client_ip(lb, &headers(&["[2001:db8::7]:443"]), &trusted),
            Some(ip("2001:db8::7"))
        );
        // Junk stops the walk at the last trusted hop; no header: the proxy itself.
        assert_eq!(
            client_ip(lb, &headers(&["198.51.100.4, garbage"]), &trusted),
            lb
        );
        assert_eq!(client_ip(lb, &HeaderMap::new(), &trusted), lb);
        // Only proxies in the chain: the left-most.
        assert_eq!(
            client_ip(lb, &headers(&["10.0.0.9, 10.0.0.8"]), &trusted),
            Some(ip("10.0.0.9"))
        );
        // No trusted proxies configured: never believed.
        assert_eq!(client_ip(lb, &headers(&["198.51.100.4"]), &[]), lb);
        assert_eq!(client_ip(None, &HeaderMap::new(), &trusted), None);
    }
}
