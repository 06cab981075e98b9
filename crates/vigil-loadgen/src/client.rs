//! One client connection: handshake, then the behaviour of its kind,
//! recording what it sees in its slot. Healthy clients and flappers are
//! here; the kinds that go quiet are in [`quiet`].

mod quiet;

use std::{net::Ipv4Addr, sync::Arc, time::Duration};

use fastwebsockets::{Frame, OpCode, Payload, WebSocket};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    time::{Instant, sleep, timeout},
};

use crate::{
    cli::Kind,
    handshake::{self, HandshakeError, Prefixed},
    report::{Reason, Slot},
    run::Shared,
};

/// How long a flapper waits for the server's answer to its close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Runs connection `index` until the server ends it or the runtime is
/// dropped at the end of the hold (which is what bounds it in time).
pub(crate) async fn run(shared: Arc<Shared>, index: usize, source: Ipv4Addr) {
    let slot = &shared.slots[index];
    let ws = match open(&shared, slot, source).await {
        Ok(ws) => ws,
        Err(reason) => return slot.failed(reason),
    };
    let reason = match shared.kinds[index] {
        Kind::Healthy => healthy(ws, slot, shared.start).await,
        Kind::Silent => quiet::silent(ws, slot, &shared).await,
        Kind::SlowReader => quiet::slow_reader(ws, slot, &shared).await,
        Kind::HalfOpen => quiet::half_open(ws, slot, &shared).await,
        Kind::Flapper => flapper(ws, slot, &shared, source, index).await,
    };
    slot.closed_at(reason, ms_since(shared.start));
}

/// Connects and upgrades within the handshake timeout; records the
/// handshake time.
async fn open(
    shared: &Shared,
    slot: &Slot,
    source: Ipv4Addr,
) -> Result<WebSocket<Prefixed>, Reason> {
    let begin = Instant::now();
    let connecting = handshake::connect(source, &shared.target, &shared.request);
    match timeout(shared.handshake_timeout, connecting).await {
        Err(_elapsed) => Err(Reason::HandshakeTimeout),
        Ok(Err(HandshakeError::Rejected(why))) => {
            // Only the first: they are all alike, and the report stays small.
            let _ = shared.first_rejection.set(why);
            Err(Reason::HandshakeRejected)
        }
        Ok(Err(error)) => Err(Reason::of_handshake(&error)),
        Ok(Ok(ws)) => {
            slot.opened(begin.elapsed());
            Ok(ws)
        }
    }
}

/// Milliseconds from `start` to now, saturating.
pub(crate) fn ms_since(start: Instant) -> u32 {
    u32::try_from(start.elapsed().as_millis()).unwrap_or(u32::MAX)
}

/// Sends nothing of its own; answers every ping with a pong echoing its
/// payload (by hand rather than auto-pong, to count the pings) and every
/// application-level ping text with its pong, answers a close
/// (fastwebsockets' auto-close) and ends.
async fn healthy<S>(mut ws: WebSocket<S>, slot: &Slot, start: Instant) -> Reason
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    ws.set_auto_pong(false);
    answer_pings(&mut ws, slot, start).await
}

/// The healthy loop on a borrowed socket: ends only when the connection
/// does. Not cancel-safe (fastwebsockets' `read_frame` is not): a caller
/// that drops it mid-read must not read this socket again.
async fn answer_pings<S>(ws: &mut WebSocket<S>, slot: &Slot, start: Instant) -> Reason
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        let frame = match ws.read_frame().await {
            Ok(frame) => frame,
            Err(error) => return Reason::of_read(&error),
        };
        let pong = match frame.opcode {
            OpCode::Ping => {
                slot.ping(ms_since(start));
                Frame::pong(frame.payload)
            }
            OpCode::Text => match app_ping_id(&frame.payload) {
                Some(id) => {
                    slot.ping(ms_since(start));
                    let text = format!(r#"{{"type":"pong","id":{id}}}"#);
                    Frame::text(Payload::Owned(text.into_bytes()))
                }
                None => continue,
            },
            OpCode::Close => return Reason::CloseFrame,
            _ => continue,
        };
        if ws.write_frame(pong).await.is_err() {
            return Reason::WriteError;
        }
    }
}

/// The id of an application-level ping, `{"type":"ping","id":N}` exactly as
/// vigil writes it.
fn app_ping_id(payload: &[u8]) -> Option<&str> {
    let id = std::str::from_utf8(payload)
        .ok()?
        .strip_prefix(r#"{"type":"ping","id":"#)?
        .strip_suffix('}')?;
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())).then_some(id)
}

/// Stays connected (healthy) for about `--flap-ms` (0.5 to 1.5 times it),
/// closes cleanly, reconnects at once, and so on until the run ends. Its
/// slot stays open across cycles; failed reconnects are counted and
/// retried after a short pause.
async fn flapper(
    mut ws: WebSocket<Prefixed>,
    slot: &Slot,
    shared: &Shared,
    source: Ipv4Addr,
    index: usize,
) -> Reason {
    ws.set_auto_pong(false);
    let mut rng = (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    loop {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let stay = shared.flap.mul_f64(0.5 + (rng % 1000) as f64 / 1000.0);
        // Dropping the healthy loop mid-read is fine: the socket is closed next.
        if let Ok(reason) = timeout(stay, answer_pings(&mut ws, slot, shared.start)).await {
            return reason; // the server ended it first
        }
        let _ = ws.write_frame(Frame::close(1000, b"")).await;
        let _ = timeout(CLOSE_WAIT, async {
            while let Ok(frame) = ws.read_frame().await {
                if frame.opcode == OpCode::Close {
                    break;
                }
            }
        })
        .await;
        ws = loop {
            let connecting = handshake::connect(source, &shared.target, &shared.request);
            match timeout(shared.handshake_timeout, connecting).await {
                Ok(Ok(ws)) => break ws,
                _ => {
                    slot.reconnect_failed();
                    sleep(Duration::from_millis(100)).await;
                }
            }
        };
        ws.set_auto_pong(false);
        slot.cycled();
    }
}

#[cfg(test)]
mod tests {
    use super::app_ping_id;

    #[test]
    fn application_pings_are_recognised_exactly() {
        assert_eq!(app_ping_id(br#"{"type":"ping","id":42}"#), Some("42"));
        for other in [
            &br#"{"type":"ping","id":"42"}"#[..],
            br#"{"type":"ping","id":}"#,
            br#"{"type":"pong","id":1}"#,
            br#"{"type":"welcome"}"#,
        ] {
            assert_eq!(app_ping_id(other), None);
        }
    }
}
