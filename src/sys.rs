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

#[cfg(test)]
mod tests {
    #[test]
    fn the_soft_limit_ends_at_least_where_it_was() {
        let (before, after) = super::raise_open_files_limit().expect("readable on unix");
        assert!(after >= before);
        assert_eq!(super::raise_open_files_limit().map(|(b, _)| b), Some(after));
    }
}
