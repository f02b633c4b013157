//! Many datagrams per system call: `recvmmsg` into a worker's fixed slots, `sendmmsg` of a round's
//! datagrams for the shared browser port (each with its own destination). Linux; elsewhere one
//! `recv_from`/`send_to` per datagram through the same interface.
//!
//! A receive that fills fewer slots than it offered has emptied the socket, so the edge-triggered
//! poller needs no further read to learn that the socket is dry: one system call per wake-up.

use mio::net::UdpSocket;
use std::io;
use std::net::SocketAddr;

/// Bytes per slot: larger than any media datagram we accept (an Ethernet MTU); longer ones are
/// dropped as truncated.
pub(super) const SLOT: usize = 2048;

/// Receive slots, reused for every read.
pub(super) struct RecvSlots {
    data: Vec<u8>,
    got: Vec<(usize, Option<SocketAddr>)>,
    #[cfg(target_os = "linux")]
    sys: linux::Headers,
}

impl RecvSlots {
    /// `n` slots.
    pub(super) fn new(n: usize) -> Self {
        RecvSlots {
            data: vec![0; n * SLOT],
            got: Vec::with_capacity(n),
            #[cfg(target_os = "linux")]
            sys: linux::Headers::new(n),
        }
    }

    /// Slots.
    pub(super) fn capacity(&self) -> usize {
        self.data.len() / SLOT
    }

    /// Reads what is waiting (up to `max` datagrams, at most the capacity) without blocking: how
    /// many were read (`WouldBlock` when none was).
    pub(super) fn recv(&mut self, sock: &UdpSocket, max: usize) -> io::Result<usize> {
        let max = max.clamp(1, self.capacity());
        self.got.clear();
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let n = self.sys.recv(sock.as_raw_fd(), &mut self.data, max)?;
            for i in 0..n {
                self.got.push(self.sys.received(i));
            }
            Ok(n)
        }
        #[cfg(not(target_os = "linux"))]
        {
            let (len, from) = sock.recv_from(&mut self.data[..SLOT])?;
            self.got.push((len, Some(from)));
            Ok(1)
        }
    }

    /// The `i`th datagram of the last read, with its sender (`None` for a truncated one or an
    /// address family we do not know).
    pub(super) fn get(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        let (len, from) = *self.got.get(i)?;
        let from = from?;
        Some((&self.data[i * SLOT..i * SLOT + len.min(SLOT)], from))
    }
}

/// Sends every datagram (each to its own destination) from `sock`, as few system calls as the
/// kernel allows; what the socket cannot take now is dropped, as a network would. How many went.
pub(super) fn send_all(sock: &UdpSocket, out: &[(SocketAddr, Vec<u8>)]) -> usize {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        linux::send_all(sock.as_raw_fd(), out)
    }
    #[cfg(not(target_os = "linux"))]
    {
        out.iter()
            .filter(|(to, data)| sock.send_to(data, *to).is_ok())
            .count()
    }
}

#[cfg(target_os = "linux")]
mod linux {
    //! The system calls. Every pointer handed to the kernel points into a buffer that outlives the
    //! call, with the length the kernel is told.

    use super::SLOT;
    use std::io;
    use std::mem::{size_of, zeroed};
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
    use std::os::fd::RawFd;

    /// Datagrams per `sendmmsg`.
    const SEND_CHUNK: usize = 64;

    /// The kernel's view of the receive slots.
    pub(super) struct Headers {
        names: Vec<libc::sockaddr_storage>,
        iov: Vec<libc::iovec>,
        hdrs: Vec<libc::mmsghdr>,
    }

    // SAFETY: the raw pointers in the headers are rebuilt before each call and only point into
    // buffers owned by the same `RecvSlots`; nothing is shared between threads.
    unsafe impl Send for Headers {}

    impl Headers {
        pub(super) fn new(n: usize) -> Self {
            // SAFETY: all-zero is a valid value for these plain C structs.
            let (name, iov, hdr) = unsafe { (zeroed(), zeroed(), zeroed()) };
            Headers {
                names: vec![name; n],
                iov: vec![iov; n],
                hdrs: vec![hdr; n],
            }
        }

        pub(super) fn recv(&mut self, fd: RawFd, data: &mut [u8], max: usize) -> io::Result<usize> {
            let max = max.min(self.hdrs.len()).min(data.len() / SLOT);
            for i in 0..max {
                self.iov[i] = libc::iovec {
                    iov_base: data[i * SLOT..].as_mut_ptr().cast(),
                    iov_len: SLOT,
                };
                // SAFETY: all-zero is a valid msghdr; the fields set point into live buffers.
                let mut h: libc::msghdr = unsafe { zeroed() };
                h.msg_name = (&mut self.names[i] as *mut libc::sockaddr_storage).cast();
                h.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                h.msg_iov = &mut self.iov[i];
                h.msg_iovlen = 1;
                self.hdrs[i] = libc::mmsghdr {
                    msg_hdr: h,
                    msg_len: 0,
                };
            }
            // SAFETY: `hdrs[..max]` are initialised above and point into `data` and `names`.
            let n = unsafe {
                libc::recvmmsg(
                    fd,
                    self.hdrs.as_mut_ptr(),
                    max as libc::c_uint,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(n as usize)
        }

        /// Length and sender of received slot `i`.
        pub(super) fn received(&self, i: usize) -> (usize, Option<SocketAddr>) {
            let h = &self.hdrs[i];
            if h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                return (0, None);
            }
            (h.msg_len as usize, from_storage(&self.names[i]))
        }
    }

    fn from_storage(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
        match i32::from(s.ss_family) {
            libc::AF_INET => {
                // SAFETY: the family says the storage holds a sockaddr_in.
                let a =
                    unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
                let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
                Some(SocketAddr::V4(SocketAddrV4::new(
                    ip,
                    u16::from_be(a.sin_port),
                )))
            }
            libc::AF_INET6 => {
                // SAFETY: the family says the storage holds a sockaddr_in6.
                let a =
                    unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
                let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
                Some(SocketAddr::V6(SocketAddrV6::new(
                    ip,
                    u16::from_be(a.sin6_port),
                    a.sin6_flowinfo,
                    a.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }

    fn to_storage(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
        // SAFETY: all-zero is a valid sockaddr_storage; the writes below stay inside it (it is
        // larger than either address struct).
        unsafe {
            let mut s: libc::sockaddr_storage = zeroed();
            match addr {
                SocketAddr::V4(a) => {
                    let p = (&mut s as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>();
                    (*p).sin_family = libc::AF_INET as libc::sa_family_t;
                    (*p).sin_port = a.port().to_be();
                    (*p).sin_addr.s_addr = u32::from(*a.ip()).to_be();
                    (s, size_of::<libc::sockaddr_in>() as libc::socklen_t)
                }
                SocketAddr::V6(a) => {
                    let p = (&mut s as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>();
                    (*p).sin6_family = libc::AF_INET6 as libc::sa_family_t;
                    (*p).sin6_port = a.port().to_be();
                    (*p).sin6_flowinfo = a.flowinfo();
                    (*p).sin6_addr.s6_addr = a.ip().octets();
                    (*p).sin6_scope_id = a.scope_id();
                    (s, size_of::<libc::sockaddr_in6>() as libc::socklen_t)
                }
            }
        }
    }

    pub(super) fn send_all(fd: RawFd, out: &[(SocketAddr, Vec<u8>)]) -> usize {
        let mut sent = 0;
        for chunk in out.chunks(SEND_CHUNK) {
            let mut names: Vec<(libc::sockaddr_storage, libc::socklen_t)> =
                chunk.iter().map(|(to, _)| to_storage(to)).collect();
            let mut iov: Vec<libc::iovec> = chunk
                .iter()
                .map(|(_, d)| libc::iovec {
                    // The kernel only reads from it.
                    iov_base: d.as_ptr() as *mut libc::c_void,
                    iov_len: d.len(),
                })
                .collect();
            let mut hdrs: Vec<libc::mmsghdr> = (0..chunk.len())
                .map(|i| {
                    // SAFETY: all-zero is a valid msghdr; the fields set point into `names`/`iov`.
                    let mut h: libc::msghdr = unsafe { zeroed() };
                    h.msg_name = (&mut names[i].0 as *mut libc::sockaddr_storage).cast();
                    h.msg_namelen = names[i].1;
                    h.msg_iov = &mut iov[i];
                    h.msg_iovlen = 1;
                    libc::mmsghdr {
                        msg_hdr: h,
                        msg_len: 0,
                    }
                })
                .collect();
            let mut at = 0;
            while at < hdrs.len() {
                // SAFETY: `hdrs[at..]` are initialised and point into live buffers.
                let n = unsafe {
                    libc::sendmmsg(
                        fd,
                        hdrs[at..].as_mut_ptr(),
                        (hdrs.len() - at) as libc::c_uint,
                        libc::MSG_DONTWAIT,
                    )
                };
                if n <= 0 {
                    // A full buffer or an error for the datagram at `at`: it is dropped, the
                    // rest still go.
                    at += 1;
                    continue;
                }
                sent += n as usize;
                at += n as usize;
            }
        }
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_goes_out_and_comes_back_with_its_senders() {
        let rx = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let to = rx.local_addr().unwrap();
        let out: Vec<(SocketAddr, Vec<u8>)> =
            (0..100u8).map(|i| (to, vec![i; 1 + i as usize])).collect();
        assert_eq!(send_all(&tx, &out), 100);
        let mut slots = RecvSlots::new(32);
        let mut seen = Vec::new();
        for _ in 0..1000 {
            match slots.recv(&rx, 32) {
                Ok(n) => {
                    for i in 0..n {
                        let (data, from) = slots.get(i).unwrap();
                        assert_eq!(from, tx.local_addr().unwrap());
                        assert_eq!(data.len(), 1 + data[0] as usize);
                        seen.push(data[0]);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if seen.len() == 100 {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(seen, (0..100u8).collect::<Vec<_>>());
    }

    #[test]
    fn a_datagram_larger_than_a_slot_is_dropped_not_cut() {
        let rx = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.send_to(&vec![1u8; SLOT + 100], rx.local_addr().unwrap())
            .unwrap();
        tx.send_to(&[2u8; 10], rx.local_addr().unwrap()).unwrap();
        let mut slots = RecvSlots::new(4);
        let mut got = Vec::new();
        for _ in 0..100 {
            if let Ok(n) = slots.recv(&rx, 4) {
                got.extend((0..n).map(|i| slots.get(i).map(|(d, _)| d.to_vec())));
            }
            if got.len() >= 2 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(got, vec![None, Some(vec![2u8; 10])]);
    }
}
