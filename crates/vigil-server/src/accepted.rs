//! One accepted socket, from its first byte until hyper has it: the PROXY
//! protocol header (with `--proxy-protocol`), the TLS handshake (with
//! `--tls-cert`), then HTTP until the request is answered or upgraded to a
//! WebSocket; or, over the handshake bound, an immediate 503. It holds its
//! handshake place until then. Also the SIGHUP reload of the certificate.

use crate::admission::Ticket;
use crate::{http, proxy, rejections, tls};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long a refused connection is given to read its answer before the
/// socket is closed.
const REFUSAL_LINGER: Duration = Duration::from_secs(2);

/// How long a client may take to send its HTTP request head (and, on the
/// TLS port, to finish its TLS handshake first).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What every accepted socket is served with.
pub(crate) struct Accepted {
    pub(crate) app: Arc<http::App>,
    pub(crate) tls: Option<Arc<tls::Tls>>,
    pub(crate) proxy_protocol: bool,
}

impl Accepted {
    /// Serves `stream` from `peer`, holding `place` (its handshake place)
    /// until hyper is done with it.
    pub(crate) async fn serve(
        self,
        mut stream: tokio::net::TcpStream,
        peer: std::net::SocketAddr,
        place: Ticket,
    ) {
        let _place = place;
        let app = self.app;
        let peer = if self.proxy_protocol {
            match proxied_peer(&mut stream, peer, &app.rejections).await {
                Some(client) => client,
                None => return,
            }
        } else {
            peer
        };
        let Some(tls) = self.tls else {
            return serve_http(TokioIo::new(stream), app, peer, "http").await;
        };
        let refused = match tls.accept(stream, HANDSHAKE_TIMEOUT).await {
            Ok(stream) => return serve_http(TokioIo::new(stream), app, peer, "https").await,
            Err(tls::Refused::PlainHttp(mut stream)) => {
                let body = "this port speaks TLS: use https:// (or wss:// for WebSocket)\n";
                answer_400_and_close(&mut stream, body).await;
                rejections::Rejection::PlainHttpOnTls
            }
            Err(tls::Refused::Timeout) => rejections::Rejection::HandshakeTimeout,
            Err(tls::Refused::Handshake) => rejections::Rejection::TlsHandshake,
        };
        app.rejections.count(refused);
    }
}

/// Serves one connection's HTTP (over TCP or TLS, `scheme` says which)
/// until it ends or upgrades to a WebSocket.
async fn serve_http<I>(io: I, app: Arc<http::App>, peer: std::net::SocketAddr, scheme: &'static str)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let for_service = Arc::clone(&app);
    // Whether a request arrived: the header timeout also ends idle
    // keep-alive connections, which are no refused handshake.
    let requested = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&requested);
    let service = service_fn(move |request| {
        seen.store(true, Ordering::Relaxed);
        http::route(Arc::clone(&for_service), peer, scheme, request)
    });
    let served = http1::Builder::new()
        // A client that never finishes its request head must not hold a
        // socket (slowloris).
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HANDSHAKE_TIMEOUT)
        .serve_connection(io, service)
        .with_upgrades()
        .await;
    if served.is_err_and(|error| error.is_timeout()) && !requested.load(Ordering::Relaxed) {
        app.rejections
            .count(rejections::Rejection::HandshakeTimeout);
    }
}

/// Reloads the TLS certificate and key on every SIGHUP: new handshakes
/// use the new pair, open connections keep theirs; a failed reload keeps
/// the old pair and logs why. Without TLS, SIGHUP changes nothing (it does
/// not end the process).
pub(crate) async fn reload_on_hangup(tls: Option<Arc<tls::Tls>>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(hangups) => hangups,
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGHUP: the certificate will not reload");
            return;
        }
    };
    while hangups.recv().await.is_some() {
        let Some(tls) = &tls else {
            tracing::info!("SIGHUP: nothing to reload (no tls_cert configured)");
            continue;
        };
        match tls.reload() {
            Ok(()) => tracing::info!("SIGHUP: reloaded the TLS certificate and key"),
            Err(error) => {
                tracing::warn!(%error, "SIGHUP: TLS reload failed; keeping the current certificate");
            }
        }
    }
}

/// Answers a socket over the handshake bound with 503 and closes it,
/// without waiting for its request: it must not hold a file for long.
pub(crate) fn refuse_at_once(stream: tokio::net::TcpStream) {
    const ANSWER: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\n\
        content-type: text/plain; charset=utf-8\r\ncontent-length: 67\r\n\
        connection: close\r\n\r\ntoo many connections are in their handshake; try again in a second\n";
    // One non-blocking write: the answer fits in any socket's send buffer.
    let _ = stream.try_write(ANSWER);
}

/// The client a PROXY protocol header at the start of `stream` names
/// (`peer` itself for a LOCAL or UNKNOWN header); `None` when the header
/// is missing, malformed or late: the connection is then answered 400 (or
/// dropped at the handshake timeout) and counted.
async fn proxied_peer(
    stream: &mut tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    rejections: &rejections::Rejections,
) -> Option<std::net::SocketAddr> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, proxy::read_proxy_header(stream)).await {
        Ok(Ok(client)) => Some(client.unwrap_or(peer)),
        Ok(Err(error)) => {
            rejections.count(rejections::Rejection::BadProxyHeader);
            tracing::debug!(%peer, %error, "connection refused: bad PROXY protocol header");
            let body = format!("{error}; this port expects PROXY protocol v1 or v2 first\n");
            answer_400_and_close(stream, &body).await;
            None
        }
        Err(_) => {
            rejections.count(rejections::Rejection::HandshakeTimeout);
            None
        }
    }
}

/// Answers `stream` with a plain-HTTP 400 saying `body`, then closes it once
/// the client has read the answer (or after [`REFUSAL_LINGER`]). A
/// lingering close: the client's request is still unread, and closing over
/// unread bytes sends a reset that can destroy the answer before the client
/// reads it.
async fn answer_400_and_close(stream: &mut tokio::net::TcpStream, body: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let answer = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let linger = async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        let mut discard = [0u8; 1024];
        while stream.read(&mut discard).await? > 0 {}
        std::io::Result::Ok(())
    };
    let _ = tokio::time::timeout(REFUSAL_LINGER, linger).await;
}
