//! The kinds that stop answering after `--silent-after-ms`, and how each
//! notices that the server let go of it without reading what the server
//! sent (a quiet client must not read: unread pings are the point).
//!
//! A socket's readiness tells: once cleared, it turns readable again when
//! more bytes arrive or when the server's FIN or RST does; only the latter
//! sets "read closed". So a quiet client wakes once per ping the server
//! sends, and records the moment the server closed.

use std::{io, time::Duration};

use fastwebsockets::{Role, WebSocket};
use tokio::{
    io::{AsyncRead, AsyncWrite, Interest},
    net::TcpStream,
    time::{Instant, sleep, sleep_until, timeout_at},
};

use super::{answer_pings, ms_since};
use crate::{
    handshake::Prefixed,
    report::{Reason, Slot},
    run::Shared,
};

/// How often a slow reader writes.
const SLOW_WRITE_EVERY: Duration = Duration::from_secs(1);

/// Healthy until `--silent-after-ms`, then reads and writes nothing, the
/// socket kept open, until the server closes it.
pub(super) async fn silent(mut ws: WebSocket<Prefixed>, slot: &Slot, shared: &Shared) -> Reason {
    if let Some(reason) = healthy_until(&mut ws, slot, shared).await {
        return reason;
    }
    slot.went_quiet(ms_since(shared.start));
    let prefixed = ws.into_inner();
    server_closed(prefixed.stream()).await
}

/// Healthy until `--silent-after-ms`, then writes a small text message a
/// second and reads nothing, until the server closes the socket.
pub(super) async fn slow_reader(
    mut ws: WebSocket<Prefixed>,
    slot: &Slot,
    shared: &Shared,
) -> Reason {
    if let Some(reason) = healthy_until(&mut ws, slot, shared).await {
        return reason;
    }
    slot.went_quiet(ms_since(shared.start));
    let prefixed = ws.into_inner();
    let stream = prefixed.stream();
    let writing = async {
        let mut id: u64 = 0;
        loop {
            id += 1;
            let text = format!(r#"{{"op":"ping","id":{id}}}"#);
            if write_masked_text(stream, text.as_bytes()).await.is_err() {
                return Reason::WriteError;
            }
            sleep(SLOW_WRITE_EVERY).await;
        }
    };
    tokio::select! {
        reason = server_closed(stream) => reason,
        reason = writing => reason,
    }
}

/// Healthy through a proxy in this process that forwards both ways until
/// `--silent-after-ms`, then forwards nothing and keeps both sides open:
/// the client goes on answering into the void, the server hears nothing.
/// The proxy records when the server closes its side.
pub(super) async fn half_open(ws: WebSocket<Prefixed>, slot: &Slot, shared: &Shared) -> Reason {
    let mut upstream = ws.into_inner();
    let (client_end, mut proxy_end) = tokio::io::duplex(64 << 10);
    let mut client = WebSocket::after_handshake(client_end, Role::Client);
    client.set_auto_pong(false);
    let client_side = answer_pings(&mut client, slot, shared, None);
    tokio::pin!(client_side);
    let blackhole_at = Instant::now() + shared.options.silent_after;
    tokio::select! {
        reason = &mut client_side => return reason,
        _ = tokio::io::copy_bidirectional(&mut upstream, &mut proxy_end) => return Reason::Eof,
        () = sleep_until(blackhole_at) => {}
    }
    slot.went_quiet(ms_since(shared.start));
    // The client keeps waiting for frames that will not come; `proxy_end`
    // stays alive so that it never sees an end either.
    let reason = tokio::select! {
        reason = server_closed(upstream.stream()) => reason,
        _ = &mut client_side => server_closed(upstream.stream()).await,
    };
    drop(proxy_end);
    reason
}

/// Runs the healthy loop until `--silent-after-ms` after now; `Some` if the
/// connection ended before that.
async fn healthy_until<S>(ws: &mut WebSocket<S>, slot: &Slot, shared: &Shared) -> Option<Reason>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    ws.set_auto_pong(false);
    let quiet_at = Instant::now() + shared.options.silent_after;
    // Dropping the loop mid-read is fine: this socket is not read again.
    timeout_at(quiet_at, answer_pings(ws, slot, shared, None))
        .await
        .ok()
}

/// Waits, reading nothing, until the server closes (FIN or RST).
async fn server_closed(stream: &TcpStream) -> Reason {
    loop {
        match stream.ready(Interest::READABLE).await {
            Ok(ready) if ready.is_read_closed() => return Reason::Eof,
            Ok(_) => {
                // New bytes (a ping): clear the readiness without reading,
                // and wait for the next change.
                let _ = stream.try_io(Interest::READABLE, || {
                    Err::<(), _>(io::ErrorKind::WouldBlock.into())
                });
            }
            Err(error) => return Reason::of_io(&error),
        }
    }
}

/// Writes one masked text frame of under 126 bytes, bypassing the codec
/// (which no longer owns the socket).
async fn write_masked_text(stream: &TcpStream, payload: &[u8]) -> io::Result<()> {
    let frame = super::frames::masked_text_frame(payload);
    let mut written = 0;
    while written < frame.len() {
        stream.writable().await?;
        match stream.try_write(&frame[written..]) {
            Ok(n) => written += n,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}
