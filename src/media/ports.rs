//! The RTP port pool: even ports from a configured range, handed out round-robin so a port just freed
//! is not reused at once (late packets of the old call must not reach the new one). Sans-IO: the shell
//! binds the port and, if the OS says it is taken, asks again.

use std::collections::HashSet;

/// Even ports in `[first, last]`.
#[derive(Debug, Clone)]
pub struct PortPool {
    first: u16,
    last: u16,
    next: u16,
    in_use: HashSet<u16>,
}

impl PortPool {
    /// A pool over `[first, last]` (rounded to even starts; RTCP would use port + 1).
    pub fn new(first: u16, last: u16) -> Self {
        let first = first + (first % 2);
        PortPool {
            first,
            last: last.max(first),
            next: first,
            in_use: HashSet::new(),
        }
    }

    /// How many ports the pool holds.
    pub fn capacity(&self) -> usize {
        usize::from((self.last - self.first) / 2 + 1)
    }

    /// Ports handed out and not yet released.
    pub fn in_use(&self) -> usize {
        self.in_use.len()
    }

    /// The next free port, or `None` when all are in use.
    pub fn allocate(&mut self) -> Option<u16> {
        for _ in 0..self.capacity() {
            let port = self.next;
            self.next = if port.saturating_add(2) > self.last {
                self.first
            } else {
                port + 2
            };
            if self.in_use.insert(port) {
                return Some(port);
            }
        }
        None
    }

    /// Gives a port back.
    pub fn release(&mut self, port: u16) {
        self.in_use.remove(&port);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_even_ports_and_exhaustion() {
        let mut p = PortPool::new(10001, 10010);
        assert_eq!(p.capacity(), 5);
        let got: Vec<u16> = (0..5).map(|_| p.allocate().unwrap()).collect();
        assert_eq!(got, vec![10002, 10004, 10006, 10008, 10010]);
        assert_eq!(p.allocate(), None);
        p.release(10004);
        assert_eq!(p.allocate(), Some(10004));
        p.release(10002);
        p.release(10006);
        // Round-robin: the cursor moves on (to 10006) rather than reusing 10002, freed earlier.
        assert_eq!(p.allocate(), Some(10006));
        assert_eq!(p.allocate(), Some(10002));
        assert_eq!(p.in_use(), 5);
    }
}
