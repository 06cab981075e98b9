//! The outbound lanes: what goes first, what is dropped, what is coalesced.

use super::*;

fn drain(out: &mut Outbound, fragment: usize) -> Vec<(u8, usize)> {
    let mut frames = Vec::new();
    let now = std::time::Instant::now();
    loop {
        let bytes = out.next_bytes(fragment, &mut || None).to_vec();
        if bytes.is_empty() {
            return frames;
        }
        // Unmasked server frames: the first byte and the payload length.
        let len = match bytes[1] & 0x7F {
            126 => usize::from(u16::from_be_bytes([bytes[2], bytes[3]])),
            127 => usize::try_from(u64::from_be_bytes(
                bytes[2..10].try_into().expect("8 bytes"),
            ))
            .expect("fits"),
            n => usize::from(n),
        };
        frames.push((bytes[0], len));
        out.advance(bytes.len(), now);
    }
}

fn encoded(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    codec::encode(&mut out, true, opcode, payload, None);
    out
}

#[test]
fn control_frames_go_between_fragments_and_heartbeat_text_waits_for_the_message_end() {
    let mut out = Outbound::new(std::time::Instant::now());
    out.push_data(Bytes::from(vec![0; 40]), false);
    // The first fragment goes out, then a ping and an app heartbeat arrive.
    let first = out.next_bytes(16, &mut || None).len();
    out.advance(first, std::time::Instant::now());
    out.push_frame(Lane::Control, &encoded(OpCode::Ping, b"1"), false);
    out.push_frame(Lane::Heartbeat, &encoded(OpCode::Text, b"{}"), false);
    let frames = drain(&mut out, 16);
    assert_eq!(
        frames,
        vec![(0x89, 1), (0x00, 16), (0x80, 8), (0x81, 2)],
        "ping between fragments, heartbeat text after the message's last fragment"
    );
}

#[test]
fn only_the_latest_pong_waits() {
    let mut out = Outbound::new(std::time::Instant::now());
    out.push_frame(Lane::Pong, &encoded(OpCode::Pong, b"a"), false);
    out.push_frame(Lane::Pong, &encoded(OpCode::Pong, b"bb"), false);
    out.push_frame(Lane::Pong, &encoded(OpCode::Pong, b"ccc"), false);
    assert_eq!(drain(&mut out, 16), vec![(0x8A, 3)]);
}

#[test]
fn nothing_but_control_follows_a_close() {
    let mut out = Outbound::new(std::time::Instant::now());
    out.push_data(Bytes::from(vec![0; 40]), true);
    out.push_frame(
        Lane::Control,
        &encoded(OpCode::Close, &1000u16.to_be_bytes()),
        true,
    );
    out.push_data(Bytes::from_static(b"late"), true);
    assert_eq!(drain(&mut out, 16), vec![(0x88, 2)]);
    assert_eq!(out.queued_bytes(), 0);
}
