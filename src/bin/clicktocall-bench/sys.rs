//! The Linux calls the benchmark needs and std does not offer: CPU pinning, process CPU time and
//! memory from /proc, the realtime clock, level-triggered epoll, and batched UDP I/O
//! (`sendmmsg`/`recvmmsg`) with kernel receive timestamps (`SO_TIMESTAMPNS`). IPv4 only: every
//! socket of the benchmark lives on 127.0.0.1.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Online CPUs.
pub fn cpu_count() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).unwrap_or(1).max(1)
}

/// Pins the calling thread (and every thread it starts later) to one CPU.
pub fn pin_to_cpu(cpu: usize) -> io::Result<()> {
    if cpu >= cpu_count() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("no CPU {cpu} (this machine has {})", cpu_count()),
        ));
    }
    // SAFETY: a zeroed cpu_set_t is the empty set; `cpu` is below the online count, far below
    // CPU_SETSIZE (1024), so CPU_SET stays inside the set.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Raises the soft limit on open files to the hard one (1,000 calls need 2,000+ sockets).
pub fn raise_nofile() {
    // SAFETY: plain struct in, plain struct out.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// CPU seconds (user + system, all threads) and RSS in KiB of a process (`None`: this one).
pub fn proc_usage(pid: Option<u32>) -> (f64, u64) {
    let dir = pid.map_or("/proc/self".to_string(), |p| format!("/proc/{p}"));
    let stat = std::fs::read_to_string(format!("{dir}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    // After the command name: state is field 3, utime 14, stime 15 (1-based in proc(5)).
    let ticks = |i: usize| {
        fields
            .get(i - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let cpu = (ticks(14) + ticks(15)) / hz;
    let status = std::fs::read_to_string(format!("{dir}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    (cpu, rss)
}

/// The realtime clock in µs: the clock of the kernel's receive timestamps.
pub fn realtime_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

/// A non-blocking UDP socket on 127.0.0.1 that timestamps what it receives.
pub fn udp_socket(rcvbuf: usize) -> io::Result<UdpSocket> {
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    sock.set_nonblocking(true)?;
    let fd = sock.as_raw_fd();
    setsockopt(fd, libc::SO_TIMESTAMPNS, 1)?;
    if rcvbuf > 0 {
        // Capped by net.core.rmem_max; a smaller buffer only shows up as loss.
        let _ = setsockopt(fd, libc::SO_RCVBUF, rcvbuf as libc::c_int);
    }
    Ok(sock)
}

fn setsockopt(fd: RawFd, opt: libc::c_int, val: libc::c_int) -> io::Result<()> {
    // SAFETY: `val` outlives the call and its size is passed.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            opt,
            (&val as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn to_sockaddr(addr: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*addr.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

fn from_sockaddr(sa: &libc::sockaddr_in) -> SocketAddr {
    let ip = Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr));
    SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(sa.sin_port)))
}

/// Level-triggered epoll over raw fds, each with a token.
pub struct Epoll {
    fd: OwnedFd,
    events: Vec<libc::epoll_event>,
}

impl Epoll {
    /// An epoll instance reporting up to `max` ready fds per wait.
    pub fn new(max: usize) -> io::Result<Self> {
        // SAFETY: no pointers involved; the fd is owned from here on.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let empty = libc::epoll_event { events: 0, u64: 0 };
        Ok(Epoll {
            // SAFETY: a fresh fd nobody else owns.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            events: vec![empty; max.max(1)],
        })
    }

    /// Watches `fd` for input, reported as `token`.
    pub fn add(&self, fd: RawFd, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: `ev` is valid for the call.
        let r = unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// The tokens of the fds with input now (never waits).
    pub fn ready(&mut self) -> io::Result<impl Iterator<Item = u64> + '_> {
        let max = self.events.len() as libc::c_int;
        // SAFETY: the buffer holds `max` events.
        let n = unsafe { libc::epoll_wait(self.fd.as_raw_fd(), self.events.as_mut_ptr(), max, 0) };
        let n = if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
            0
        } else {
            n as usize
        };
        Ok(self.events[..n].iter().map(|e: &libc::epoll_event| e.u64))
    }
}

const BUF: usize = 2048;
const CTRL: usize = 8; // u64 words: room for one SCM_TIMESTAMPNS (16-byte header + timespec)

/// Buffers for `recvmmsg`: up to `n` datagrams per call, each with its source and arrival time.
pub struct RecvBatch {
    bufs: Vec<[u8; BUF]>,
    names: Vec<libc::sockaddr_in>,
    ctrl: Vec<[u64; CTRL]>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
}

impl RecvBatch {
    /// Room for `n` datagrams.
    pub fn new(n: usize) -> Self {
        let n = n.max(1);
        // SAFETY: all-zero is a valid value of these plain C structs (null pointers included).
        let (name, iov, hdr) =
            unsafe { (std::mem::zeroed(), std::mem::zeroed(), std::mem::zeroed()) };
        RecvBatch {
            bufs: vec![[0; BUF]; n],
            names: vec![name; n],
            ctrl: vec![[0; CTRL]; n],
            iovs: vec![iov; n],
            hdrs: vec![hdr; n],
        }
    }

    /// Receives what is queued on `fd`, up to `max` datagrams, without waiting: how many.
    pub fn recv(&mut self, fd: RawFd, max: usize) -> io::Result<usize> {
        let max = max.min(self.bufs.len());
        for i in 0..max {
            self.iovs[i] = libc::iovec {
                iov_base: self.bufs[i].as_mut_ptr().cast(),
                iov_len: BUF,
            };
            let h = &mut self.hdrs[i];
            h.msg_len = 0;
            h.msg_hdr.msg_name = (&mut self.names[i] as *mut libc::sockaddr_in).cast();
            h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            h.msg_hdr.msg_iov = &mut self.iovs[i];
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_control = self.ctrl[i].as_mut_ptr().cast();
            h.msg_hdr.msg_controllen = CTRL * 8;
            h.msg_hdr.msg_flags = 0;
        }
        // SAFETY: every header points into buffers owned by `self` that outlive the call.
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
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                // A refused earlier send (ICMP port unreachable) surfaces here: not fatal.
                io::ErrorKind::ConnectionRefused => Ok(0),
                _ => Err(e),
            };
        }
        Ok(n as usize)
    }

    /// Datagram `i` of the last `recv`: its bytes, source and kernel arrival time (µs, realtime).
    pub fn get(&self, i: usize) -> (&[u8], SocketAddr, u64) {
        let h = &self.hdrs[i];
        let len = (h.msg_len as usize).min(BUF);
        (
            &self.bufs[i][..len],
            from_sockaddr(&self.names[i]),
            timestamp(&h.msg_hdr).unwrap_or_else(realtime_us),
        )
    }
}

/// The SCM_TIMESTAMPNS of a received message, in µs.
fn timestamp(msg: &libc::msghdr) -> Option<u64> {
    // SAFETY: the control buffer was filled by the kernel and `msg_controllen` bounds it; the
    // CMSG_* macros only walk inside it.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                return Some(ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000);
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    None
}

/// Datagrams queued for one `sendmmsg` on one socket, each to its own address.
#[derive(Default)]
pub struct SendBatch {
    data: Vec<u8>,
    spans: Vec<(usize, usize, libc::sockaddr_in)>,
}

impl SendBatch {
    /// Queues a datagram to `to` (IPv4 only; anything else is dropped).
    pub fn push(&mut self, to: SocketAddr, datagram: &[u8]) {
        let SocketAddr::V4(to) = to else { return };
        let start = self.data.len();
        self.data.extend_from_slice(datagram);
        self.spans.push((start, datagram.len(), to_sockaddr(to)));
    }

    /// Queued datagrams.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Sends everything queued on `fd` (1,024 per system call at most): how many went out, the
    /// first ones in queue order (a failed call ends the flush). The queue is empty afterwards.
    pub fn flush(&mut self, fd: RawFd) -> usize {
        let mut sent = 0;
        for chunk in self.spans.chunks_mut(1024) {
            let mut iovs: Vec<libc::iovec> = chunk
                .iter()
                .map(|(s, l, _)| libc::iovec {
                    iov_base: self.data[*s..].as_mut_ptr().cast(),
                    iov_len: *l,
                })
                .collect();
            let mut hdrs: Vec<libc::mmsghdr> = Vec::with_capacity(chunk.len());
            for (i, (_, _, to)) in chunk.iter_mut().enumerate() {
                // SAFETY: all-zero is a valid mmsghdr; the pointers set below outlive the call.
                let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
                h.msg_hdr.msg_name = (to as *mut libc::sockaddr_in).cast();
                h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
                h.msg_hdr.msg_iov = &mut iovs[i];
                h.msg_hdr.msg_iovlen = 1;
                hdrs.push(h);
            }
            let mut off = 0;
            while off < hdrs.len() {
                // SAFETY: the headers point into `iovs`, `chunk` and `self.data`, alive here.
                let n = unsafe {
                    libc::sendmmsg(
                        fd,
                        hdrs[off..].as_mut_ptr(),
                        (hdrs.len() - off) as libc::c_uint,
                        0,
                    )
                };
                if n <= 0 {
                    // EAGAIN (socket buffer full) or a refused port: the rest is not offered.
                    break;
                }
                off += n as usize;
            }
            sent += off;
            if off < hdrs.len() {
                break;
            }
        }
        self.data.clear();
        self.spans.clear();
        sent
    }
}
