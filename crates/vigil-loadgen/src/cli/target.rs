//! `--url`: the server to load, a `ws://` or `wss://` URL on a loopback
//! address.

use std::net::{Ipv4Addr, SocketAddrV4};

use anyhow::{Context, Result, bail};

/// A `ws://` or `wss://` URL on an IPv4 loopback address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) addr: SocketAddrV4,
    /// `Host` header value, as written in the URL.
    pub(crate) host: String,
    /// Path and query, starting with `/`.
    pub(crate) path: String,
    /// `wss://`: TLS, the server's certificate checked for this host.
    pub(crate) tls: bool,
}

impl Target {
    pub(crate) fn parse(url: &str) -> Result<Target> {
        let (rest, tls) = match (url.strip_prefix("ws://"), url.strip_prefix("wss://")) {
            (Some(rest), _) => (rest, false),
            (_, Some(rest)) => (rest, true),
            _ => bail!("`{url}`: expected a ws:// or wss:// URL"),
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(at) => (&rest[..at], rest[at..].to_owned()),
            None => (rest, "/".to_owned()),
        };
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path
        };
        let (host, port) = match authority.rsplit_once(':') {
            // `[::1]:80` is IPv6: left whole, it fails the IPv4 parse below.
            Some((host, port)) if !authority.starts_with('[') => {
                let port: u16 = port
                    .parse()
                    .with_context(|| format!("`{url}`: invalid port `{port}`"))?;
                (host, port)
            }
            _ => (authority, if tls { 443 } else { 80 }),
        };
        let ip = match host {
            "localhost" => Ipv4Addr::LOCALHOST,
            host => host.parse::<Ipv4Addr>().map_err(|_| {
                anyhow::anyhow!(
                    "`{url}`: the host must be an IPv4 loopback address such as 127.0.0.1 \
                     (clients bind to 127.0.0.2, 127.0.0.3, ...), got `{host}`"
                )
            })?,
        };
        if !ip.is_loopback() {
            bail!(
                "`{url}`: vigil-loadgen only targets loopback (127.0.0.0/8): \
                 this machine has no other network"
            );
        }
        Ok(Target {
            addr: SocketAddrV4::new(ip, port),
            host: authority.to_owned(),
            path,
            tls,
        })
    }
}
