//! The connection limits (and, with a second `Admission`, the bound on
//! sockets still in their HTTP phase), counted when a handshake is
//! accepted and before
//! its 101 is sent: one lock covers the server-wide count and the count of
//! the client's address, so a burst of handshakes can never exceed either
//! (checking a count and later adding to it let 120 in under a limit of
//! 100). What a connection holds is a [`Ticket`]; dropping it (the
//! connection ended, or its upgrade never completed) gives the place back,
//! and wakes whoever waits for one ([`Admission::room`]).

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// The limits and what is held against them.
#[derive(Debug)]
pub(crate) struct Admission {
    max_connections: usize,
    max_per_ip: usize,
    held: Mutex<Held>,
    /// Told each time a place is given back.
    freed: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct Held {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Why a handshake was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LimitReached {
    /// The server holds `max_connections`.
    Server,
    /// The client's address holds `max_connections_per_ip`.
    Address,
}

/// One admitted connection's place; given back when dropped.
#[derive(Debug)]
pub(crate) struct Ticket {
    admission: Arc<Admission>,
    ip: Option<IpAddr>,
}

impl Admission {
    pub(crate) fn new(max_connections: usize, max_per_ip: usize) -> Arc<Self> {
        Arc::new(Self {
            max_connections,
            max_per_ip,
            held: Mutex::default(),
            freed: tokio::sync::Notify::new(),
        })
    }

    /// Resolves once the server-wide limit has a free place (at once if it
    /// has one now). The accept loop waits here rather than refusing: a
    /// crowd (every client of a restarted server) waits in the listen
    /// backlog for a few milliseconds instead of being sent away to back
    /// off for seconds; an address over its own share is still refused.
    pub(crate) async fn room(&self) {
        loop {
            // `notify_one` leaves a permit when nobody waits yet, so a place
            // given back between the check and the await still wakes this.
            let freed = self.freed.notified();
            if self.held.lock().total < self.max_connections {
                return;
            }
            freed.await;
        }
    }

    /// A place for a connection from `ip`, or which limit is full.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Ticket, LimitReached> {
        self.admit_from(Some(ip))
    }

    /// A place counted against the server-wide limit only (a trusted
    /// proxy's sockets carry many clients).
    pub(crate) fn admit_unlimited_address(self: &Arc<Self>) -> Result<Ticket, LimitReached> {
        self.admit_from(None)
    }

    fn admit_from(self: &Arc<Self>, ip: Option<IpAddr>) -> Result<Ticket, LimitReached> {
        let mut held = self.held.lock();
        if held.total >= self.max_connections {
            return Err(LimitReached::Server);
        }
        if let Some(ip) = ip {
            let from_ip = held.per_ip.entry(ip).or_insert(0);
            if *from_ip >= self.max_per_ip {
                return Err(LimitReached::Address);
            }
            *from_ip += 1;
        }
        held.total += 1;
        Ok(Ticket {
            admission: Arc::clone(self),
            ip,
        })
    }

    /// Connections admitted and not yet ended.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.held.lock().total
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut held = self.admission.held.lock();
        held.total = held.total.saturating_sub(1);
        if let Some(ip) = self.ip
            && let Some(count) = held.per_ip.get_mut(&ip)
        {
            *count -= 1;
            if *count == 0 {
                held.per_ip.remove(&ip);
            }
        }
        drop(held);
        self.admission.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([198, 51, 100, last])
    }

    #[test]
    fn each_limit_holds_and_a_dropped_ticket_gives_its_place_back() {
        let admission = Admission::new(3, 2);
        let a1 = admission.admit(ip(1)).expect("room");
        let _a2 = admission.admit(ip(1)).expect("room");
        assert_eq!(admission.admit(ip(1)).err(), Some(LimitReached::Address));
        let _b1 = admission.admit(ip(2)).expect("room");
        assert_eq!(admission.admit(ip(3)).err(), Some(LimitReached::Server));
        assert_eq!(admission.held(), 3);
        drop(a1);
        assert_eq!(admission.held(), 2);
        assert!(admission.admit(ip(3)).is_ok(), "a freed place is reused");
    }

    #[tokio::test]
    async fn room_waits_for_a_place_to_be_given_back() {
        let admission = Admission::new(2, 2);
        admission.room().await; // free places: at once
        let first = admission.admit(ip(1)).expect("room");
        let _second = admission.admit(ip(2)).expect("room");
        let waiting = tokio::spawn({
            let admission = Arc::clone(&admission);
            async move { admission.room().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "no place is free");
        drop(first);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("woken when a place is given back")
            .expect("the waiting task");
        assert!(admission.admit(ip(3)).is_ok());
    }

    #[test]
    fn a_burst_from_many_threads_never_exceeds_the_limits() {
        let admission = Admission::new(100, 50);
        let admitted: Vec<Ticket> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..8)
                .map(|worker| {
                    let admission = &admission;
                    scope.spawn(move || {
                        (0..40)
                            .filter_map(|n| admission.admit(ip((worker * 40 + n) as u8 % 3)).ok())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|worker| worker.join().expect("a worker"))
                .collect()
        });
        // Three addresses at 50 each could take 150; the server holds 100.
        assert_eq!(admitted.len(), 100);
        assert_eq!(admission.held(), 100);
        drop(admitted);
        assert_eq!(admission.held(), 0);
    }
}
