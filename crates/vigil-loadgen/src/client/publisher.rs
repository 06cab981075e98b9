//! The publisher: healthy until `--publish-after-ms`, then sends
//! `{"op":"publish","channel":C,"data":{"sent_us":T,"seq":N}}` every `--publish-ms`
//! on its own socket (its messages are its life), and reads and drops
//! everything the server sends it. `T` is microseconds
//! since the run started, so subscribers in the same process time each
//! delivery on the same clock.

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    time::{Instant, sleep_until, timeout_at},
};

use fastwebsockets::WebSocket;

use crate::{
    handshake::Prefixed,
    report::{Reason, Slot},
    run::Shared,
};

/// What precedes the send time in a message a subscriber receives.
const SENT_MARK: &[u8] = br#""sent_us":"#;

pub(super) async fn publish(
    mut ws: WebSocket<Prefixed>,
    slot: &Slot,
    shared: &Shared,
    index: usize,
) -> Reason {
    ws.set_auto_pong(false);
    let begin = shared.start + shared.options.publish_after;
    // Dropping the healthy loop mid-read is fine: from here on the socket
    // is read raw and dropped.
    if let Ok(reason) = timeout_at(begin, super::answer_pings(&mut ws, slot, shared, None)).await {
        return reason;
    }
    let channel = shared.channel_of(index).unwrap_or_default();
    let (mut reader, mut writer) = ws.into_inner().into_stream().into_split();
    let draining = async {
        let mut sink = vec![0; 16 << 10];
        loop {
            match reader.read(&mut sink).await {
                Ok(0) => return Reason::Eof,
                Ok(_) => {}
                Err(error) => return Reason::of_io(&error),
            }
        }
    };
    let publishing = async {
        let mut next = Instant::now();
        // Numbers its messages 1, 2, 3, ...: a subscriber that skips one
        // lost it (`--offsets track` counts them).
        let mut seq: u64 = 0;
        loop {
            next += shared.options.publish_every;
            sleep_until(next).await;
            let sent_us = shared.start.elapsed().as_micros();
            seq += 1;
            let text = format!(
                r#"{{"op":"publish","channel":"{channel}","data":{{"sent_us":{sent_us},"seq":{seq}}}}}"#
            );
            if writer
                .write_all(&super::frames::masked_text_frame(text.as_bytes()))
                .await
                .is_err()
            {
                return Reason::WriteError;
            }
        }
    };
    tokio::select! {
        reason = draining => reason,
        reason = publishing => reason,
    }
}

/// The send time in a channel message, if it is one of ours (vigil writes
/// the keys in any order: sorted, today).
pub(super) fn sent_us(payload: &[u8]) -> Option<u64> {
    let find = |needle: &[u8]| {
        payload
            .windows(needle.len())
            .position(|window| window == needle)
    };
    find(br#""type":"message""#)?;
    let at = find(SENT_MARK)? + SENT_MARK.len();
    let digits = payload[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    std::str::from_utf8(&payload[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_send_time_is_read_from_vigil_channel_messages_only() {
        let message =
            br#"{"channel":"bench","data":{"sent_us":123456},"from":"anon-3","type":"message"}"#;
        assert_eq!(sent_us(message), Some(123_456));
        assert_eq!(sent_us(br#"{"type":"reply","id":1,"delivered":5}"#), None);
        assert_eq!(sent_us(br#"{"type":"message","data":{"other":1}}"#), None);
    }
}
