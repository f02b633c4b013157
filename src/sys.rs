//! What the process asks of the operating system at start.

/// Raises the soft limit on open files to the hard limit: every plain RTP leg holds two sockets
/// (RTP and RTCP), so 1,000 SIP-to-SIP calls need over 4,000 descriptors, while many systems start
/// processes at a soft limit of 1,024. Returns (before, after), or `None` where it cannot be read.
pub fn raise_open_files_limit() -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        // SAFETY: getrlimit/setrlimit only read and write the struct passed by reference.
        unsafe {
            let mut lim: libc::rlimit = std::mem::zeroed();
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
                return None;
            }
            let before = lim.rlim_cur as u64;
            if lim.rlim_cur < lim.rlim_max {
                let raised = libc::rlimit {
                    rlim_cur: lim.rlim_max,
                    rlim_max: lim.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    return Some((before, lim.rlim_max as u64));
                }
            }
            Some((before, before))
        }
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Asks for `bytes` of receive and send buffer on a UDP socket (beyond `net.core.rmem_max` where
/// the process may, as root can), so a burst waits in the kernel instead of being dropped while
/// its reader is busy. The receive buffer granted (the kernel doubles the request for its
/// bookkeeping), where it can be read.
#[cfg(unix)]
pub fn grow_socket_buffers(sock: &impl std::os::fd::AsRawFd, bytes: usize) -> Option<usize> {
    use std::mem::size_of;
    let fd = sock.as_raw_fd();
    let set = |opt: libc::c_int, value: libc::c_int| -> bool {
        // SAFETY: the option value is a live c_int of the length given.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                (&value as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            ) == 0
        }
    };
    let want = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    #[cfg(target_os = "linux")]
    let pairs = [
        (Some(libc::SO_RCVBUFFORCE), libc::SO_RCVBUF),
        (Some(libc::SO_SNDBUFFORCE), libc::SO_SNDBUF),
    ];
    #[cfg(not(target_os = "linux"))]
    let pairs = [(None, libc::SO_RCVBUF), (None, libc::SO_SNDBUF)];
    for (force, plain) in pairs {
        if !force.is_some_and(|f| set(f, want)) {
            set(plain, want);
        }
    }
    let mut got: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `got` and `len` are live and `len` is its size.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&mut got as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    (r == 0).then_some(got.max(0) as usize)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_soft_limit_ends_at_least_where_it_was() {
        let (before, after) = super::raise_open_files_limit().expect("readable on unix");
        assert!(after >= before);
        assert_eq!(super::raise_open_files_limit().map(|(b, _)| b), Some(after));
    }

    #[test]
    fn a_socket_gets_a_larger_receive_buffer() {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let before = super::grow_socket_buffers(&sock, 1024).unwrap();
        let after = super::grow_socket_buffers(&sock, 1 << 20).unwrap();
        assert!(after > before, "{before} -> {after}");
    }
}
