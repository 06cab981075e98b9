//! Flooders: healthy until `--abuse-at-ms`, then for `--abuse-ms` as many
//! requests of their kind as the server will read, in batches written as
//! fast as the socket takes them, while reading and counting every answer
//! (a flooder is not a slow consumer). When the server closes one, it
//! connects again at once (rejoining its room) and goes on. Every loop is
//! bounded in count as well as by the end of the abuse.

use std::net::Ipv4Addr;

use fastwebsockets::WebSocket;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        TcpStream,
        tcp::{OwnedReadHalf, OwnedWriteHalf},
    },
    time::{Duration, Instant, sleep, timeout, timeout_at},
};

use super::{
    answer_pings, connect,
    frames::{self, CLOSE, PONG, TEXT},
};
use crate::{
    cli::Flood,
    handshake::Prefixed,
    report::{Count, Reason, Slot},
    run::Shared,
};

/// Bytes of requests per write.
const BATCH_BYTES: usize = 16 << 10;
/// Writes per connection at most (the server closes a flooder long before).
const MAX_BATCHES: u32 = 100_000;
/// Connections per flooder at most over the abuse.
const MAX_CONNECTIONS: u32 = 100_000;
/// Pause after a failed attempt to connect again.
const RETRY_PAUSE: Duration = Duration::from_millis(20);
/// How long to wait for the close frame once a write failed.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// `--max-meta-bytes` of the server (its default): a meta of exactly this
/// many bytes of JSON is allowed, one byte more is not.
const MAX_META_BYTES: usize = 2_048;

/// Runs one flooder; `Reason::Done` once the abuse is over.
pub(super) async fn flood(
    mut ws: WebSocket<Prefixed>,
    slot: &Slot,
    shared: &Shared,
    flood: Flood,
    index: usize,
    source: Ipv4Addr,
) -> Reason {
    ws.set_auto_pong(false);
    let begin = shared.start + shared.options.abuse_at;
    let end = begin + shared.options.abuse_for;
    // Dropping the healthy loop mid-read is fine: the socket is read raw
    // (or dropped) from here on.
    if let Ok(reason) = timeout_at(begin, answer_pings(&mut ws, slot, shared, None)).await {
        return reason;
    }
    if flood == Flood::Slowloris {
        drop(ws);
        super::slowloris::hold(shared, source, end).await;
        return Reason::Done;
    }
    let tally = &shared.abuse;
    tally.add(flood, Count::Opened, 1);
    let channel = shared.channel_of(index).unwrap_or_default();
    let mut requests = Requests {
        flood,
        channel,
        sequence: 0,
    };
    let mut stream = ws.into_inner().into_stream();
    for _ in 0..MAX_CONNECTIONS {
        flood_one(stream, shared, &mut requests, end).await;
        let Some(next) = reconnect(shared, flood, index, source, end).await else {
            break;
        };
        stream = next;
    }
    Reason::Done
}

/// Connects again (and rejoins) until it works or the abuse is over.
async fn reconnect(
    shared: &Shared,
    flood: Flood,
    index: usize,
    source: Ipv4Addr,
    end: Instant,
) -> Option<TcpStream> {
    while Instant::now() < end {
        match timeout_at(end, connect(shared, source, index)).await {
            Err(_elapsed) => return None,
            Ok(Ok(ws)) => {
                shared.abuse.add(flood, Count::Opened, 1);
                return Some(ws.into_inner().into_stream());
            }
            Ok(Err(_)) => {
                shared.abuse.add(flood, Count::ConnectFailed, 1);
                sleep(RETRY_PAUSE).await;
            }
        }
    }
    None
}

/// Floods one connection until the server ends it or the abuse is over.
async fn flood_one(stream: TcpStream, shared: &Shared, requests: &mut Requests, end: Instant) {
    let flood = requests.flood;
    let (mut reader, writer) = stream.into_split();
    let reading = read_answers(&mut reader, shared, flood);
    tokio::pin!(reading);
    tokio::select! {
        () = &mut reading => {}
        finished = write_requests(writer, shared, requests, end) => {
            if !finished {
                // The server closed on us: its close frame says why.
                let _ = timeout(CLOSE_WAIT, reading).await;
            }
        }
    }
}

/// Writes batches of requests until the abuse is over (`true`) or a write
/// fails (`false`). Dropping it drops the write half.
async fn write_requests(
    mut writer: OwnedWriteHalf,
    shared: &Shared,
    requests: &mut Requests,
    end: Instant,
) -> bool {
    let mut batch = Vec::with_capacity(BATCH_BYTES + (8 << 10));
    for _ in 0..MAX_BATCHES {
        batch.clear();
        let mut count = 0;
        while batch.len() < BATCH_BYTES {
            batch.extend(requests.next_frame());
            count += 1;
        }
        match timeout_at(end, writer.write_all(&batch)).await {
            Err(_elapsed) => return true,
            Ok(Err(_)) => return false,
            Ok(Ok(())) => shared.abuse.add(requests.flood, Count::Written, count),
        }
    }
    true
}

/// Reads the server's frames and counts them, until its close frame or the
/// end of the socket. Cancel-safe: it owns nothing but its buffer.
async fn read_answers(reader: &mut OwnedReadHalf, shared: &Shared, flood: Flood) {
    let tally = &shared.abuse;
    let mut buffer: Vec<u8> = Vec::with_capacity(64 << 10);
    loop {
        buffer.reserve(16 << 10);
        match reader.read_buf(&mut buffer).await {
            Ok(0) | Err(_) => return tally.add(flood, Count::CutOff, 1),
            Ok(_) => {}
        }
        let mut at = 0;
        loop {
            let frame = match frames::parse_server_frame(&buffer[at..]) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(_) => return tally.add(flood, Count::CutOff, 1),
            };
            let payload = &buffer[at + frame.payload.0..at + frame.payload.1];
            match frame.opcode {
                TEXT => tally.add(flood, classify(payload), 1),
                PONG => tally.add(flood, Count::Answered, 1),
                CLOSE => {
                    let code = payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
                    let count = if code == Some(1008) {
                        Count::Closed1008
                    } else {
                        Count::ClosedOther
                    };
                    return tally.add(flood, count, 1);
                }
                _ => {}
            }
            at += frame.len;
        }
        buffer.drain(..at);
    }
}

/// What a text message from the server says about a flooder's request.
fn classify(text: &[u8]) -> Count {
    let has = |needle: &[u8]| text.windows(needle.len()).any(|window| window == needle);
    if has(br#""type":"error""#) {
        if has(br#""code":"rate_limited""#) {
            Count::RateLimited
        } else if has(br#""code":"meta_too_large""#) {
            Count::MetaTooLarge
        } else {
            Count::OtherErrors
        }
    } else if has(br#""type":"reply""#) || has(br#""type":"pong""#) {
        Count::Answered
    } else {
        Count::Events
    }
}

/// The requests one flooder sends, in turn.
struct Requests {
    flood: Flood,
    channel: String,
    sequence: u64,
}

impl Requests {
    /// The next request, as a masked frame.
    fn next_frame(&mut self) -> Vec<u8> {
        let n = self.sequence;
        self.sequence += 1;
        let channel = &self.channel;
        let text = match self.flood {
            Flood::Publish => {
                format!(r#"{{"op":"publish","channel":"{channel}","data":{{"n":{n}}},"id":{n}}}"#)
            }
            Flood::Presence => format!(r#"{{"op":"presence","channel":"{channel}","id":{n}}}"#),
            Flood::Ping => format!(r#"{{"op":"ping","id":{n}}}"#),
            Flood::WsPing => return frames::masked_frame(frames::PING, &n.to_be_bytes()),
            // It joined on connecting: leave first.
            Flood::Join if n.is_multiple_of(2) => {
                format!(r#"{{"op":"leave","channel":"{channel}","id":{n}}}"#)
            }
            Flood::Join => format!(r#"{{"op":"join","channel":"{channel}","id":{n}}}"#),
            Flood::Meta => {
                // Largest allowed, then one byte over, in turn; a new meta
                // each time, so that every accepted one is a change.
                let size = MAX_META_BYTES + usize::from(n % 2 == 1);
                format!(
                    r#"{{"op":"join","channel":"{channel}","meta":{},"id":{n}}}"#,
                    meta_of_size(n, size)
                )
            }
            Flood::Malformed if n.is_multiple_of(2) => format!("not json {n} {{"),
            Flood::Malformed => format!(r#"{{"op":"explode","id":{n}}}"#),
            // Holds raw sockets instead (`slowloris`).
            Flood::Slowloris => String::new(),
        };
        frames::masked_text_frame(text.as_bytes())
    }
}

/// A meta object that is exactly `size` bytes of JSON (at least 20).
fn meta_of_size(n: u64, size: usize) -> String {
    let head = format!(r#"{{"n":{n},"pad":""#);
    let pad = size.saturating_sub(head.len() + 2);
    format!("{head}{}\"}}", "x".repeat(pad))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metas_are_exactly_the_size_asked() {
        for (n, size) in [(0, 2_048), (7, 2_049), (123_456, 2_048)] {
            let meta = meta_of_size(n, size);
            assert_eq!(meta.len(), size);
            let value: serde_json::Value = serde_json::from_str(&meta).expect("JSON");
            assert_eq!(value["n"], n);
        }
    }

    #[test]
    fn answers_are_told_apart() {
        for (text, expected) in [
            (
                &br#"{"code":"rate_limited","id":1,"message":"x","retry_after_ms":9,"type":"error"}"#[..],
                Count::RateLimited,
            ),
            (br#"{"code":"meta_too_large","type":"error"}"#, Count::MetaTooLarge),
            (br#"{"code":"malformed_json","type":"error"}"#, Count::OtherErrors),
            (br#"{"delivered":100,"id":3,"type":"reply"}"#, Count::Answered),
            (br#"{"id":4,"type":"pong"}"#, Count::Answered),
            (br#"{"channel":"r","type":"presence"}"#, Count::Events),
        ] {
            assert_eq!(classify(text), expected, "{}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn each_flood_sends_its_own_requests() {
        let mut requests = Requests {
            flood: Flood::Join,
            channel: "room-1".to_owned(),
            sequence: 0,
        };
        let text = |frame: Vec<u8>| {
            let (header, mask) = if frame[1] & 0x7f == 126 {
                (4, 4..8)
            } else {
                (2, 2..6)
            };
            let mask = frame[mask].to_vec();
            let bytes: Vec<u8> = frame[header + 4..]
                .iter()
                .zip(mask.iter().cycle())
                .map(|(b, m)| b ^ m)
                .collect();
            String::from_utf8(bytes).expect("text")
        };
        assert!(text(requests.next_frame()).contains(r#""op":"leave""#));
        assert!(text(requests.next_frame()).contains(r#""op":"join""#));
        requests.flood = Flood::Meta;
        let over = text(requests.next_frame()); // sequence 2: the allowed size
        let value: serde_json::Value = serde_json::from_str(&over).expect("JSON");
        assert_eq!(value["meta"].to_string().len(), MAX_META_BYTES);
        let value: serde_json::Value =
            serde_json::from_str(&text(requests.next_frame())).expect("JSON");
        assert_eq!(value["meta"].to_string().len(), MAX_META_BYTES + 1);
    }
}
