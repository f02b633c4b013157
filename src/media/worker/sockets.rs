//! A worker's sockets: each plain leg's own RTP (and RTCP) socket registered with the poller under a
//! token of its own, and which call and leg a token stands for.

use crate::media::engine::PortLease;
use crate::media::routes::LegId;
use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};
use std::net::SocketAddr;

/// The waker's token.
pub(super) const WAKER: Token = Token(0);
/// The shared browser port's token.
pub(super) const SHARED: Token = Token(1);
/// Legs' sockets are numbered from here.
const FIRST_LEG: usize = 2;

/// What a token stands for.
#[derive(Debug, Clone, Copy)]
pub(super) struct SockRef {
    pub key: u64,
    pub leg: LegId,
    pub rtcp: bool,
}

/// Token numbers for legs' sockets, reused after a leg leaves.
#[derive(Default)]
pub(super) struct Tokens {
    slots: Vec<Option<SockRef>>,
    free: Vec<usize>,
}

impl Tokens {
    fn take(&mut self, r: SockRef) -> Token {
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(r);
                i
            }
            None => {
                self.slots.push(Some(r));
                self.slots.len() - 1
            }
        };
        Token(i + FIRST_LEG)
    }

    fn give_back(&mut self, t: Token) {
        let i = t.0 - FIRST_LEG;
        if self.slots.get(i).is_some_and(Option::is_some) {
            self.slots[i] = None;
            self.free.push(i);
        }
    }

    /// What `t` stands for.
    pub(super) fn get(&self, t: Token) -> Option<SockRef> {
        t.0.checked_sub(FIRST_LEG)
            .and_then(|i| self.slots.get(i).copied().flatten())
    }
}

/// One leg's place on the worker.
pub(super) struct LegSock {
    pub id: LegId,
    /// The local address its datagrams arrive on (ICE wants it for a browser).
    pub local: SocketAddr,
    /// Its own RTP socket, or `None` on the shared browser port.
    pub rtp: Option<(UdpSocket, Token)>,
    pub rtcp: Option<(UdpSocket, Token)>,
    /// Holds the port until the leg leaves (dropped after the sockets close).
    lease: Option<PortLease>,
}

impl LegSock {
    /// A leg on the shared browser port.
    pub(super) fn shared(id: LegId, lease: PortLease) -> Self {
        LegSock {
            id,
            local: lease.local,
            rtp: None,
            rtcp: None,
            lease: Some(lease),
        }
    }

    /// A leg with sockets of its own, registered with the poller.
    pub(super) fn own(
        key: u64,
        id: LegId,
        mut lease: PortLease,
        registry: &Registry,
        tokens: &mut Tokens,
    ) -> std::io::Result<Self> {
        let mut reg = |sock: Option<std::net::UdpSocket>, rtcp: bool| -> std::io::Result<_> {
            let Some(sock) = sock else { return Ok(None) };
            let mut sock = UdpSocket::from_std(sock);
            let token = tokens.take(SockRef { key, leg: id, rtcp });
            if let Err(e) = registry.register(&mut sock, token, Interest::READABLE) {
                tokens.give_back(token);
                return Err(e);
            }
            Ok(Some((sock, token)))
        };
        let rtp = reg(lease.socket.take(), false)?;
        let rtcp = reg(lease.rtcp.take(), true)?;
        Ok(LegSock {
            id,
            local: lease.local,
            rtp,
            rtcp,
            lease: Some(lease),
        })
    }

    /// The socket to send from (RTCP goes out of the RTP socket when it has no RTCP socket).
    pub(super) fn sender(&self, rtcp: bool) -> Option<&UdpSocket> {
        let rtcp_sock = if rtcp { self.rtcp.as_ref() } else { None };
        rtcp_sock.or(self.rtp.as_ref()).map(|(s, _)| s)
    }

    /// True on the shared browser port.
    pub(super) fn is_shared(&self) -> bool {
        self.rtp.is_none()
    }

    /// Closes the leg's sockets, gives their tokens back, then its port.
    pub(super) fn close(mut self, registry: &Registry, tokens: &mut Tokens) {
        for (mut sock, token) in [self.rtp.take(), self.rtcp.take()].into_iter().flatten() {
            let _ = registry.deregister(&mut sock);
            tokens.give_back(token);
            drop(sock);
        }
        drop(self.lease.take());
    }
}
