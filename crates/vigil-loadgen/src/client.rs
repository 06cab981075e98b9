//! One client connection: handshake, then the behaviour of its `--kind`,
//! recording what it sees in its slot. Issue #5 adds kinds here.

use std::{net::Ipv4Addr, sync::Arc};

use fastwebsockets::{Frame, OpCode, WebSocket};
use tokio::time::{Instant, timeout};

use crate::{
    cli::Kind,
    handshake::{self, HandshakeError, Prefixed},
    report::{Reason, Slot},
    run::Shared,
};

/// Runs connection `index` until the server ends it or the runtime is
/// dropped at the end of the hold (which is what bounds it in time).
pub(crate) async fn run(shared: Arc<Shared>, index: usize, source: Ipv4Addr) {
    let slot = &shared.slots[index];
    let begin = Instant::now();
    let connecting = handshake::connect(source, &shared.target, &shared.request);
    let ws = match timeout(shared.handshake_timeout, connecting).await {
        Err(_elapsed) => return slot.failed(Reason::HandshakeTimeout),
        Ok(Err(error)) => {
            if let HandshakeError::Rejected(why) = error {
                // Only the first: they are all alike, and the report stays small.
                let _ = shared.first_rejection.set(why);
                return slot.failed(Reason::HandshakeRejected);
            }
            return slot.failed(Reason::of_handshake(&error));
        }
        Ok(Ok(ws)) => ws,
    };
    slot.opened(begin.elapsed());
    let reason = match shared.kind {
        Kind::Healthy => healthy(ws, slot, shared.start).await,
    };
    slot.closed(reason);
}

/// Sends nothing of its own; answers every ping with a pong echoing its
/// payload (by hand rather than auto-pong, to count the pings), answers a
/// close (fastwebsockets' auto-close) and ends.
async fn healthy(mut ws: WebSocket<Prefixed>, slot: &Slot, start: Instant) -> Reason {
    ws.set_auto_pong(false);
    loop {
        let frame = match ws.read_frame().await {
            Ok(frame) => frame,
            Err(error) => return Reason::of_read(&error),
        };
        match frame.opcode {
            OpCode::Ping => {
                let now_ms = u32::try_from(start.elapsed().as_millis()).unwrap_or(u32::MAX);
                slot.ping(now_ms);
                if ws.write_frame(Frame::pong(frame.payload)).await.is_err() {
                    return Reason::WriteError;
                }
            }
            OpCode::Close => return Reason::CloseFrame,
            _ => {}
        }
    }
}
