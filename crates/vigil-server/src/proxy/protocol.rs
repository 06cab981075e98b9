//! The PROXY protocol (v1 text, v2 binary) that TCP load balancers (HAProxy,
//! AWS NLB, GCP, Envoy) put in front of a connection to name its client.
//! Parsed by the `ppp` crate; this file only reads exactly the header's
//! bytes off the socket and no more, so what follows is the client's own
//! HTTP request on an untouched `TcpStream`.

use ppp::v1;
use ppp::v2;
use ppp::{HeaderResult, PartialResult};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// The longest header accepted. v1 is at most 107 bytes; v2 is 16 bytes
/// plus addresses and TLVs, a few hundred bytes from the load balancers
/// that add them (AWS VPC endpoint ids, TLS details).
const MAX_HEADER_BYTES: usize = 4096;

/// How long to wait before looking again when only part of a header has
/// arrived (a load balancer sends it in one segment, so this is rare).
const PARTIAL_RETRY: Duration = Duration::from_millis(5);

/// Why a connection's PROXY header was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyHeaderError {
    #[error("not a PROXY protocol header: {0}")]
    Malformed(String),
    #[error("PROXY protocol header longer than {MAX_HEADER_BYTES} bytes")]
    TooLong,
    #[error("connection closed before a complete PROXY protocol header")]
    Closed,
    #[error("reading the PROXY protocol header: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads and consumes the PROXY header at the start of `stream`: the
/// client's address, or `None` when the header names none (v1 `UNKNOWN`,
/// v2 `LOCAL` health checks, UNIX sockets): then the TCP peer is the
/// client.
///
/// Waits as long as the header is incomplete: the caller bounds it with
/// the handshake timeout. Not cancel-safe once the header is whole (it is
/// then consumed with `read_exact`): a caller that gives up drops the
/// connection, as the handshake timeout does.
pub(crate) async fn read_proxy_header(
    stream: &mut TcpStream,
) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    let mut buffer = vec![0u8; MAX_HEADER_BYTES];
    let mut seen = 0;
    loop {
        let peeked = stream.peek(&mut buffer).await?;
        if peeked == 0 {
            return Err(ProxyHeaderError::Closed);
        }
        let header = HeaderResult::parse(&buffer[..peeked]);
        if header.is_incomplete() || v1_line_unfinished(&buffer[..peeked]) {
            if peeked == buffer.len() {
                return Err(ProxyHeaderError::TooLong);
            }
            if peeked == seen {
                // Readiness stays set while bytes wait unread: look again
                // after a short pause instead of spinning.
                tokio::time::sleep(PARTIAL_RETRY).await;
            }
            seen = peeked;
            continue;
        }
        let (length, client) = match header {
            HeaderResult::V1(Ok(header)) => (header.header.len(), v1_client(header.addresses)),
            HeaderResult::V2(Ok(header)) => (header.len(), v2_client(&header)),
            HeaderResult::V1(Err(error)) => {
                return Err(ProxyHeaderError::Malformed(error.to_string()));
            }
            HeaderResult::V2(Err(error)) => {
                return Err(ProxyHeaderError::Malformed(error.to_string()));
            }
        };
        stream.read_exact(&mut buffer[..length]).await?;
        return Ok(client);
    }
}

/// Whether `bytes` start a v1 header whose line has not ended yet. ppp
/// judges a line that ends in a lone `\r` (its `\n` still in flight) as
/// complete and malformed, so the end of the line is awaited here.
fn v1_line_unfinished(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PROXY ") && bytes.len() < V1_MAX_BYTES && !bytes.contains(&b'\n')
}

/// The longest v1 header, CRLF included (the PROXY protocol spec, 2.1).
const V1_MAX_BYTES: usize = 107;

fn v1_client(addresses: v1::Addresses) -> Option<SocketAddr> {
    match addresses {
        v1::Addresses::Tcp4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        v1::Addresses::Tcp6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        v1::Addresses::Unknown => None,
    }
}

fn v2_client(header: &v2::Header<'_>) -> Option<SocketAddr> {
    if header.command == v2::Command::Local {
        return None;
    }
    match header.addresses {
        v2::Addresses::IPv4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        v2::Addresses::IPv6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        v2::Addresses::Unspecified | v2::Addresses::Unix(_) => None,
    }
}
