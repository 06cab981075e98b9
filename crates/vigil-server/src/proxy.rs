//! Who the client really is when vigil runs behind proxies: the address
//! that per-IP limits, logs, `/api/overview` and the anonymous-on-loopback
//! rule use.
//!
//! Two mechanisms, each trusted only where the operator says so:
//! - HTTP proxies (`--trusted-proxies`): from a peer inside one of those
//!   networks, the right-most hop of `Forwarded` (RFC 7239) or, without it,
//!   `X-Forwarded-For` that is not itself a trusted proxy is the client
//!   ([`forwarded`]). From any other peer the headers are ignored, so a
//!   client cannot claim another address.
//! - TCP load balancers (`--proxy-protocol`): every connection starts with
//!   a PROXY protocol v1 or v2 header naming the client ([`protocol`]),
//!   read before HTTP and consumed exactly, so the socket is still a plain
//!   TCP stream for the WebSocket shards.

pub(crate) mod forwarded;
pub(crate) mod protocol;

#[cfg(test)]
mod tests;

pub(crate) use forwarded::TrustedProxies;
pub(crate) use protocol::read_proxy_header;
