//! Handshakes the server refused, counted by reason for `/metrics`
//! (`vigil_handshakes_rejected_total{reason}`).

use std::sync::atomic::{AtomicU64, Ordering};

/// Why a WebSocket handshake was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// 401: no token, or a bad, expired or malformed one.
    Unauthorized,
    /// 403: a browser page from an origin that is not allowed.
    ForbiddenOrigin,
    /// 429: too many connections from the client's address.
    PerIpLimit,
    /// 503: the server holds `max_connections` already.
    ConnectionLimit,
    /// 503: the server is shutting down.
    Draining,
    /// 400/405/426: not a valid WebSocket upgrade, or a bad `?heartbeat=`.
    BadHandshake,
    /// The client did not finish its request head in time (no answer: the
    /// socket is closed).
    HandshakeTimeout,
    /// 400: `--proxy-protocol` is on and the connection did not start with
    /// a valid PROXY protocol header.
    BadProxyHeader,
    /// 503 at once: the client's address holds its share of the
    /// `max_handshakes` places with sockets in their HTTP phase already
    /// (when every place is taken, the server stops accepting instead).
    HandshakeLimit,
    /// 400 in plain HTTP: a plain-HTTP request on the TLS port.
    PlainHttpOnTls,
    /// The TLS handshake failed (or the client left during it).
    TlsHandshake,
}

impl Rejection {
    /// Every reason, in declaration order (the order of the series).
    pub(crate) const ALL: [Self; 11] = [
        Self::Unauthorized,
        Self::ForbiddenOrigin,
        Self::PerIpLimit,
        Self::ConnectionLimit,
        Self::Draining,
        Self::BadHandshake,
        Self::HandshakeTimeout,
        Self::BadProxyHeader,
        Self::HandshakeLimit,
        Self::PlainHttpOnTls,
        Self::TlsHandshake,
    ];

    /// The `reason` label.
    pub(crate) const fn label(self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::ForbiddenOrigin => "forbidden_origin",
            Self::PerIpLimit => "per_ip_limit",
            Self::ConnectionLimit => "connection_limit",
            Self::Draining => "draining",
            Self::BadHandshake => "bad_handshake",
            Self::HandshakeTimeout => "handshake_timeout",
            Self::BadProxyHeader => "bad_proxy_header",
            Self::HandshakeLimit => "handshake_limit",
            Self::PlainHttpOnTls => "plain_http_on_tls",
            Self::TlsHandshake => "tls_handshake_failed",
        }
    }
}

/// The count of each [`Rejection`], shared by every request.
#[derive(Debug, Default)]
pub(crate) struct Rejections([AtomicU64; Rejection::ALL.len()]);

impl Rejections {
    pub(crate) fn count(&self, rejection: Rejection) {
        self.0[rejection as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Each reason's label and count, in [`Rejection::ALL`] order.
    pub(crate) fn snapshot(&self) -> [(&'static str, u64); Rejection::ALL.len()] {
        Rejection::ALL.map(|rejection| {
            (
                rejection.label(),
                self.0[rejection as usize].load(Ordering::Relaxed),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reason_counts_under_its_own_label() {
        let rejections = Rejections::default();
        for (index, rejection) in Rejection::ALL.into_iter().enumerate() {
            assert_eq!(rejection as usize, index, "ALL is in declaration order");
            for _ in 0..=index {
                rejections.count(rejection);
            }
        }
        let snapshot = rejections.snapshot();
        for (index, (label, count)) in snapshot.into_iter().enumerate() {
            assert_eq!(label, Rejection::ALL[index].label());
            assert_eq!(count, index as u64 + 1);
        }
    }
}
