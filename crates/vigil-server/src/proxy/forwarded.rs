//! The client address from `Forwarded` / `X-Forwarded-For`, believed only
//! when the TCP peer is a trusted proxy.

use hyper::HeaderMap;
use ipnet::IpNet;
use std::net::IpAddr;

/// `Forwarded` (RFC 7239), preferred when present.
const FORWARDED: &str = "forwarded";
/// The de-facto header most proxies still send.
const X_FORWARDED_FOR: &str = "x-forwarded-for";
/// Its companion naming the scheme the client used.
const X_FORWARDED_PROTO: &str = "x-forwarded-proto";

/// The networks whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub(crate) fn new(networks: Vec<IpNet>) -> Self {
        Self(networks)
    }

    /// Whether `ip` is one of the trusted proxies. An IPv4 address mapped
    /// into IPv6 (`::ffff:10.0.0.1`, as a dual-stack socket reports it)
    /// matches its IPv4 network.
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|network| network.contains(&ip))
    }

    /// The client behind `peer`: `peer` itself unless it is a trusted
    /// proxy; then, walking the forwarding chain from the right (the hop
    /// the trusted proxy itself saw), the first address that is not a
    /// trusted proxy. A hop that is not an IP address (`unknown`, an
    /// obfuscated name, garbage) ends the walk at the last trusted address:
    /// nothing left of it can be believed. When every hop is trusted, the
    /// left-most one is the client.
    pub(crate) fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.contains(peer) {
            return peer;
        }
        let mut client = peer;
        for hop in hops(headers).into_iter().rev() {
            match hop {
                Some(ip) if self.contains(ip) => client = ip,
                Some(ip) => return ip,
                None => return client,
            }
        }
        client
    }
}

impl TrustedProxies {
    /// How the client reached the server: what a trusted proxy says
    /// (`Forwarded: proto=`, else `X-Forwarded-Proto`, the right-most
    /// entry: the one the nearest proxy wrote), else `direct`, the scheme
    /// of this connection itself (`https` on the TLS port).
    pub(crate) fn scheme(
        &self,
        peer: IpAddr,
        headers: &HeaderMap,
        direct: &'static str,
    ) -> &'static str {
        if !self.contains(peer) {
            return direct;
        }
        let forwarded = headers
            .get_all(FORWARDED)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|text| rfc7239::parse(text).collect::<Vec<_>>())
            .filter_map(Result::ok)
            .filter_map(|element| element.protocol.map(str::to_owned))
            .next_back();
        let proto = forwarded.or_else(|| {
            headers
                .get_all(X_FORWARDED_PROTO)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .flat_map(|text| text.split(','))
                .map(|entry| entry.trim().to_owned())
                .next_back()
        });
        match proto {
            Some(proto) if proto.eq_ignore_ascii_case("https") => "https",
            Some(proto) if proto.eq_ignore_ascii_case("http") => "http",
            _ => direct,
        }
    }
}

/// Every hop the headers list, left (the original client) to right (the
/// last proxy); `None` for a hop that names no IP address. `Forwarded`
/// wins when present: a proxy that sends it is RFC 7239-aware, and
/// `X-Forwarded-For` beside it may be stale. Several header lines of one
/// name are one list, in order (RFC 9110 §5.3).
fn hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let lines = |name: &str| {
        headers
            .get_all(name)
            .iter()
            .map(|value| value.to_str().ok())
            .collect::<Vec<_>>()
    };
    let forwarded = lines(FORWARDED);
    if !forwarded.is_empty() {
        return forwarded
            .into_iter()
            .flat_map(|line| match line {
                Some(text) => rfc7239::parse(text)
                    .map(|element| {
                        element.ok().and_then(|element| {
                            element
                                .forwarded_for
                                .and_then(|node| node.ip().copied())
                                .map(|ip| ip.to_canonical())
                        })
                    })
                    .collect::<Vec<_>>(),
                None => vec![None],
            })
            .collect();
    }
    lines(X_FORWARDED_FOR)
        .into_iter()
        .flat_map(|line| match line {
            Some(text) => text.split(',').map(x_forwarded_hop).collect::<Vec<_>>(),
            None => vec![None],
        })
        .collect()
}

/// One `X-Forwarded-For` entry: an address, perhaps with a port
/// (`203.0.113.7:4711`, `[2001:db8::1]:4711`), as some proxies write it.
fn x_forwarded_hop(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    let ip = entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))?;
    Some(ip.to_canonical())
}
