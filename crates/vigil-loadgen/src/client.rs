//! One client connection: handshake, then the behaviour of its kind,
//! recording what it sees in its slot. Healthy clients and flappers are
//! here; the kinds that go quiet are in [`quiet`], flooders in [`flood`]
//! and [`slowloris`].

mod flood;
mod frames;
mod publisher;
mod quiet;
mod slowloris;

use std::{net::Ipv4Addr, sync::Arc, time::Duration};

use fastwebsockets::{Frame, OpCode, Payload, WebSocket};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    time::{Instant, sleep, timeout, timeout_at},
};

use crate::{
    cli::Kind,
    handshake::{self, HandshakeError, Prefixed},
    report::{Reason, Slot},
    run::Shared,
};

/// The largest text message a client puts together from fragments.
const MAX_MESSAGE: usize = 16 << 20;
/// How long a flapper waits for the server's answer to its close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Runs connection `index` (over every process; `local` in this one's
/// slots) until the server ends it or the runtime is dropped at the end of
/// the hold (which is what bounds it in time).
pub(crate) async fn run(shared: Arc<Shared>, local: usize, index: usize, source: Ipv4Addr) {
    let slot = &shared.slots[local];
    let begin = Instant::now();
    let ws = match connect(&shared, source, index).await {
        Ok(ws) => ws,
        Err(reason) => return slot.failed(reason),
    };
    slot.opened(begin.elapsed());
    let reason = match shared.kinds[local] {
        Kind::Healthy => match shared.options.reconnect_cap {
            None => healthy(ws, slot, &shared, local, index).await,
            Some(cap) => {
                let client = Client {
                    local,
                    index,
                    source,
                };
                reconnecting(ws, slot, &shared, client, cap).await
            }
        },
        Kind::Publisher => publisher::publish(ws, slot, &shared, index).await,
        Kind::Silent => quiet::silent(ws, slot, &shared).await,
        Kind::SlowReader => quiet::slow_reader(ws, slot, &shared).await,
        Kind::HalfOpen => quiet::half_open(ws, slot, &shared).await,
        Kind::Flapper => flapper(ws, slot, &shared, source, index).await,
        Kind::Flooder(kind) => flood::flood(ws, slot, &shared, kind, index, source).await,
    };
    slot.closed_at(reason, ms_since(shared.start));
}

/// Connects, upgrades and (with `--join`) joins, within the handshake
/// timeout.
async fn connect(
    shared: &Shared,
    source: Ipv4Addr,
    index: usize,
) -> Result<WebSocket<Prefixed>, Reason> {
    let connecting = handshake::connect(
        source,
        &shared.options.target,
        &shared.request,
        shared.tls.as_ref(),
    );
    let mut ws = match timeout(shared.options.handshake_timeout, connecting).await {
        Err(_elapsed) => return Err(Reason::HandshakeTimeout),
        Ok(Err(HandshakeError::Rejected(why))) => {
            // Only the first: they are all alike, and the report stays small.
            let _ = shared.first_rejection.set(why);
            return Err(Reason::HandshakeRejected);
        }
        Ok(Err(error)) => return Err(Reason::of_handshake(&error)),
        Ok(Ok(ws)) => ws,
    };
    if let Some(channel) = shared.channel_of(index) {
        let since = shared.recovery.as_ref().and_then(|r| r.since(index));
        let join = match since {
            // `--offsets track`: from the last message received.
            Some((offset, epoch)) => format!(
                r#"{{"op":"join","channel":"{channel}","since":{{"offset":{offset},"epoch":"{epoch}"}}}}"#
            ),
            None => format!(r#"{{"op":"join","channel":"{channel}"}}"#),
        };
        ws.write_frame(Frame::text(Payload::Owned(join.into_bytes())))
            .await
            .map_err(|_| Reason::WriteError)?;
    }
    Ok(ws)
}

/// A small xorshift generator per connection, for jitter.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// A seed that differs for every connection.
fn seed(index: usize) -> u64 {
    (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Uniform in `[0, ceiling)`, to the microsecond.
fn random_below(state: &mut u64, ceiling: Duration) -> Duration {
    let micros = ceiling.as_micros().max(1) as u64;
    Duration::from_micros(next_random(state) % micros)
}

/// The first retry of a reconnecting client comes within this; the server's
/// clients must not all come back in the same instant.
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// Backoff after a failed attempt starts from this, doubling.
const RETRY_BASE: Duration = Duration::from_millis(100);

/// Which client a task is: its slot in this process, its index in the run,
/// its source address.
#[derive(Debug, Clone, Copy)]
struct Client {
    local: usize,
    index: usize,
    source: Ipv4Addr,
}

/// Healthy, and when the server ends the connection, back again: a random
/// delay under [`FIRST_RETRY`], then exponential backoff with full jitter
/// from [`RETRY_BASE`] capped at `cap`. With `--churn-*` it also leaves
/// once by itself, at its moment of the churn (a clean close), and comes
/// back at once. Ends only with the run.
async fn reconnecting(
    mut ws: WebSocket<Prefixed>,
    slot: &Slot,
    shared: &Shared,
    client: Client,
    cap: Duration,
) -> Reason {
    let Client {
        local,
        index,
        source,
    } = client;
    let mut rng = seed(index);
    let mut churn_at = shared
        .options
        .room
        .churn
        .and_then(|churn| churn.moment(index))
        .map(|moment| shared.start + moment);
    // `--drop-at-ms`: every client at once, without a close frame.
    let mut drop_at = shared.options.recover.drop_at.map(|at| shared.start + at);
    loop {
        ws.set_auto_pong(false);
        let mut observer = observer_of(shared, local, index);
        let pinging = answer_pings(&mut ws, slot, shared, observer.as_deref_mut());
        let leave_at = [churn_at, drop_at].into_iter().flatten().min();
        let left = match leave_at {
            Some(at) => timeout_at(at, pinging).await.is_err(),
            None => {
                pinging.await;
                false
            }
        };
        let churned = left && leave_at == churn_at;
        if left && !churned {
            drop_at = None;
        }
        if let Some(observer) = &mut observer {
            observer.ended();
        }
        if churned {
            churn_at = None;
            // The read just cancelled may have left part of a frame behind;
            // this socket is only read for the server's close, and any
            // error there ends the wait.
            close_cleanly(&mut ws).await;
        }
        // The old socket goes before a new one is opened: a client holds
        // one file at a time, and 19,000 of them fit in one process.
        drop(ws);
        if churned {
            ws = reconnect(slot, shared, source, index, || RETRY_BASE).await;
            continue;
        }
        sleep(random_below(&mut rng, FIRST_RETRY)).await;
        let mut ceiling = RETRY_BASE;
        ws = reconnect(slot, shared, source, index, || {
            let pause = random_below(&mut rng, ceiling);
            ceiling = (ceiling * 2).min(cap);
            pause
        })
        .await;
    }
}

/// What a healthy client reports of what it receives beyond pings: the
/// bytes of every frame, each text message (which may ask for a request to
/// be sent), and the end of the connection.
pub(crate) trait Observer {
    fn received(&mut self, _payload_len: usize, _now_ms: u32) {}
    fn on_text(&mut self, payload: &[u8], now_ms: u32) -> Option<String>;
    fn ended(&mut self) {}
}

/// What client `local` (`index` in the run) watches on a new connection:
/// its channel's presence (`--view-phases-ms`) or its messages' offsets
/// (`--offsets track`).
fn observer_of(
    shared: &Shared,
    local: usize,
    index: usize,
) -> Option<Box<dyn Observer + Send + '_>> {
    let channel = shared.options.join.as_deref()?;
    if let Some(room) = &shared.room {
        return Some(Box::new(room.view(local, index, channel)));
    }
    let recovery = shared.recovery.as_ref()?;
    Some(Box::new(recovery.tracker(index)))
}

/// Says goodbye (a close frame) and waits a little for the server's answer.
async fn close_cleanly<S>(ws: &mut WebSocket<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let _ = ws.write_frame(Frame::close(1000, b"")).await;
    let _ = timeout(CLOSE_WAIT, async {
        while let Ok(frame) = ws.read_frame().await {
            if frame.opcode == OpCode::Close {
                break;
            }
        }
    })
    .await;
}

/// Connects again until it works, waiting `pause()` after each failed
/// attempt; every failed attempt is counted on the slot (with when it
/// started) and by reason over all clients, and the success on the slot.
async fn reconnect(
    slot: &Slot,
    shared: &Shared,
    source: Ipv4Addr,
    index: usize,
    mut pause: impl FnMut() -> Duration,
) -> WebSocket<Prefixed> {
    loop {
        let attempt_ms = ms_since(shared.start);
        match connect(shared, source, index).await {
            Ok(ws) => {
                slot.reconnected(ms_since(shared.start));
                return ws;
            }
            Err(reason) => {
                slot.reconnect_failed(reason, attempt_ms);
                shared.reconnect_failures.count(reason);
                sleep(pause()).await;
            }
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
async fn healthy<S>(
    mut ws: WebSocket<S>,
    slot: &Slot,
    shared: &Shared,
    local: usize,
    index: usize,
) -> Reason
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    ws.set_auto_pong(false);
    let mut observer = observer_of(shared, local, index);
    let reason = answer_pings(&mut ws, slot, shared, observer.as_deref_mut()).await;
    if let Some(observer) = &mut observer {
        observer.ended();
    }
    reason
}

/// The healthy loop on a borrowed socket: ends only when the connection
/// does. With an `observer`, every frame and every text message is shown
/// to it. Not cancel-safe (fastwebsockets' `read_frame` is not): a
/// caller that drops it mid-read must not read this socket again.
async fn answer_pings<S>(
    ws: &mut WebSocket<S>,
    slot: &Slot,
    shared: &Shared,
    mut observer: Option<&mut (dyn Observer + Send + '_)>,
) -> Reason
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let start = shared.start;
    // A text message the server sent in fragments (vigil splits big ones,
    // a page of 1,000 members, at 16 KiB), until its last.
    let mut fragments: Vec<u8> = Vec::new();
    let mut in_text = false;
    loop {
        let frame = match ws.read_frame().await {
            Ok(frame) => frame,
            Err(error) => return Reason::of_read(&error),
        };
        if let Some(observer) = observer.as_deref_mut() {
            observer.received(frame.payload.len(), ms_since(start));
        }
        let frame = match frame.opcode {
            OpCode::Text if !frame.fin => {
                in_text = true;
                fragments.clear();
                fragments.extend_from_slice(&frame.payload);
                continue;
            }
            OpCode::Continuation if in_text => {
                if fragments.len() + frame.payload.len() > MAX_MESSAGE {
                    return Reason::ProtocolError;
                }
                fragments.extend_from_slice(&frame.payload);
                if !frame.fin {
                    continue;
                }
                in_text = false;
                Frame::text(Payload::Owned(std::mem::take(&mut fragments)))
            }
            _ => frame,
        };
        let pong = match frame.opcode {
            OpCode::Ping => {
                slot.ping(ms_since(start));
                Frame::pong(frame.payload)
            }
            OpCode::Pong => {
                // The answer to our RTT probe: its payload is the send time.
                if let Ok(sent) = <[u8; 8]>::try_from(&frame.payload[..]) {
                    let now_us = start.elapsed().as_micros() as u64;
                    shared.record_rtt(now_us, now_us.saturating_sub(u64::from_be_bytes(sent)));
                }
                continue;
            }
            OpCode::Text => match app_ping_id(&frame.payload) {
                Some(id) => {
                    slot.ping(ms_since(start));
                    let text = format!(r#"{{"type":"pong","id":{id}}}"#);
                    Frame::text(Payload::Owned(text.into_bytes()))
                }
                None => {
                    if let Some(observer) = observer.as_deref_mut()
                        && let Some(request) = observer.on_text(&frame.payload, ms_since(start))
                    {
                        let request = Frame::text(Payload::Owned(request.into_bytes()));
                        if ws.write_frame(request).await.is_err() {
                            return Reason::WriteError;
                        }
                        continue;
                    }
                    if let Some(sent_us) = publisher::sent_us(&frame.payload) {
                        let now_us = start.elapsed().as_micros() as u64;
                        shared
                            .latency
                            .record(now_us, now_us.saturating_sub(sent_us));
                    }
                    continue;
                }
            },
            OpCode::Close => return Reason::CloseFrame,
            _ => continue,
        };
        if ws.write_frame(pong).await.is_err() {
            return Reason::WriteError;
        }
        // An RTT probe rides on the server's ping: no timer of our own, and
        // a read is never cancelled for it.
        if shared.options.probe_every > 0 && slot.pings().is_multiple_of(shared.options.probe_every)
        {
            let sent_us = start.elapsed().as_micros() as u64;
            let probe = Frame::new(
                true,
                OpCode::Ping,
                None,
                Payload::Owned(sent_us.to_be_bytes().to_vec()),
            );
            if ws.write_frame(probe).await.is_err() {
                return Reason::WriteError;
            }
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
    let mut rng = seed(index);
    loop {
        let stay = shared
            .options
            .flap
            .mul_f64(0.5 + (next_random(&mut rng) % 1000) as f64 / 1000.0);
        // Dropping the healthy loop mid-read is fine: the socket is closed next.
        if let Ok(reason) = timeout(stay, answer_pings(&mut ws, slot, shared, None)).await {
            return reason; // the server ended it first
        }
        close_cleanly(&mut ws).await;
        ws = reconnect(slot, shared, source, index, || RETRY_BASE).await;
        ws.set_auto_pong(false);
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
