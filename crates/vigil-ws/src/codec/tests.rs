//! The decoder as a specification: every frame split at every byte boundary
//! decodes the same, and every protocol violation gets its RFC close code.

use super::*;

const MAX: usize = 1 << 16;
const MASK: Option<[u8; 4]> = Some([0x37, 0xFA, 0x21, 0x3D]);

/// What a decoder delivered, owned, for comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Got {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>),
    Fragment,
}

fn own(inbound: Inbound<'_>) -> Got {
    match inbound {
        Inbound::Text(bytes) => Got::Text(String::from_utf8(bytes.to_vec()).expect("validated")),
        Inbound::Binary(bytes) => Got::Binary(bytes.to_vec()),
        Inbound::Ping(bytes) => Got::Ping(bytes.to_vec()),
        Inbound::Pong(bytes) => Got::Pong(bytes.to_vec()),
        Inbound::Close(code) => Got::Close(code),
        Inbound::Fragment => Got::Fragment,
    }
}

/// Feeds `wire` in chunks of the given sizes (the last chunk takes the rest).
fn decode_in_chunks(
    wire: &[u8],
    role: Role,
    chunks: &[usize],
) -> (Vec<Got>, Result<(), ProtocolError>, Decoder) {
    let mut decoder = Decoder::default();
    let mut got = Vec::new();
    let mut rest = wire.to_vec();
    let mut sizes = chunks.iter().copied();
    while !rest.is_empty() {
        let size = sizes.next().unwrap_or(rest.len()).clamp(1, rest.len());
        let mut chunk: Vec<u8> = rest.drain(..size).collect();
        if let Err(error) =
            decoder.decode(&mut chunk, role, MAX, &mut |inbound| got.push(own(inbound)))
        {
            return (got, Err(error), decoder);
        }
    }
    (got, Ok(()), decoder)
}

/// The events without the progress reports, which depend on how the input
/// was split.
fn messages(got: &[Got]) -> Vec<Got> {
    got.iter()
        .filter(|g| **g != Got::Fragment)
        .cloned()
        .collect()
}

fn client_frame(fin: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode(&mut out, fin, opcode, payload, MASK);
    out
}

fn a_conversation() -> (Vec<u8>, Vec<Got>) {
    let big = vec![7u8; 70_000 / 2];
    let mut wire = Vec::new();
    wire.extend(client_frame(true, OpCode::Text, "héllo".as_bytes()));
    wire.extend(client_frame(true, OpCode::Ping, b"12345678"));
    wire.extend(client_frame(false, OpCode::Binary, &big[..300]));
    wire.extend(client_frame(true, OpCode::Pong, b"")); // control frames may interleave
    wire.extend(client_frame(true, OpCode::Continuation, &big[300..]));
    wire.extend(client_frame(false, OpCode::Text, "frag".as_bytes()));
    wire.extend(client_frame(
        true,
        OpCode::Continuation,
        "mented ✓".as_bytes(),
    ));
    let mut close = Vec::new();
    encode_close(&mut close, Some(1000), "bye", MASK);
    wire.extend(close);
    let expected = vec![
        Got::Text("héllo".into()),
        Got::Ping(b"12345678".to_vec()),
        Got::Fragment,
        Got::Pong(Vec::new()),
        Got::Binary(big),
        Got::Fragment,
        Got::Text("fragmented ✓".into()),
        Got::Close(Some(1000)),
    ];
    (wire, expected)
}

#[test]
fn whole_frames_decode_in_place_and_leave_nothing_behind() {
    let (wire, expected) = a_conversation();
    let (got, result, decoder) = decode_in_chunks(&wire, Role::Server, &[]);
    assert_eq!(result, Ok(()));
    assert!(
        got == expected,
        "whole frames give exactly the expected events"
    );
    assert!(decoder.is_idle());
    assert_eq!(decoder.held_bytes(), 0);
}

#[test]
fn frames_split_byte_by_byte_decode_the_same() {
    let (wire, expected) = a_conversation();
    let (got, result, decoder) = decode_in_chunks(&wire, Role::Server, &vec![1; wire.len()]);
    assert_eq!(result, Ok(()));
    assert!(
        messages(&got) == messages(&expected),
        "byte by byte gives the same messages"
    );
    assert!(decoder.is_idle(), "memory held after the last frame");
}

#[test]
fn frames_split_at_every_boundary_decode_the_same() {
    let (wire, expected) = a_conversation();
    for first in (1..wire.len()).step_by(97) {
        for second in [1, 2, 3, 13, 1000] {
            let (got, result, decoder) = decode_in_chunks(&wire, Role::Server, &[first, second, 5]);
            assert_eq!(result, Ok(()), "split at {first}, {second}");
            assert!(
                messages(&got) == messages(&expected),
                "split at {first}, {second}"
            );
            assert!(decoder.is_idle());
        }
    }
}

#[test]
fn a_half_received_frame_is_held_until_it_completes() {
    let frame = client_frame(true, OpCode::Binary, &[1; 1000]);
    let mut decoder = Decoder::default();
    let mut got = Vec::new();
    let (head, tail) = frame.split_at(600);
    decoder
        .decode(&mut head.to_vec(), Role::Server, MAX, &mut |i| {
            got.push(own(i))
        })
        .expect("valid");
    assert!(got.is_empty());
    assert!(!decoder.is_idle());
    decoder
        .decode(&mut tail.to_vec(), Role::Server, MAX, &mut |i| {
            got.push(own(i))
        })
        .expect("valid");
    assert_eq!(got, vec![Got::Binary(vec![1; 1000])]);
    assert!(decoder.is_idle());
}

#[test]
fn a_client_decodes_unmasked_server_frames() {
    let mut wire = Vec::new();
    encode(&mut wire, true, OpCode::Text, b"hi", None);
    encode(&mut wire, true, OpCode::Ping, b"", None);
    let (got, result, _) = decode_in_chunks(&wire, Role::Client, &[1, 1, 1]);
    assert_eq!(result, Ok(()));
    assert_eq!(got, vec![Got::Text("hi".into()), Got::Ping(Vec::new())]);
}

#[track_caller]
fn refused(wire: &[u8], role: Role, code: u16, reason: &str) {
    for chunks in [vec![], vec![1; wire.len()]] {
        let (_, result, _) = decode_in_chunks(wire, role, &chunks);
        let error = result.expect_err("must be refused");
        assert_eq!(error.code, code, "{error:?}");
        assert!(error.reason.contains(reason), "{error:?}");
    }
}

#[test]
fn protocol_violations_close_with_1002() {
    let mut reserved = client_frame(true, OpCode::Text, b"x");
    reserved[0] |= 0b0100_0000;
    refused(&reserved, Role::Server, 1002, "reserved bits");

    let mut opcode = client_frame(true, OpCode::Text, b"x");
    opcode[0] = (opcode[0] & 0xF0) | 0x3;
    refused(&opcode, Role::Server, 1002, "reserved opcode");

    let mut unmasked = Vec::new();
    encode(&mut unmasked, true, OpCode::Text, b"x", None);
    refused(&unmasked, Role::Server, 1002, "must be masked");
    refused(
        &client_frame(true, OpCode::Text, b"x"),
        Role::Client,
        1002,
        "must not be masked",
    );

    refused(
        &client_frame(false, OpCode::Ping, b"x"),
        Role::Server,
        1002,
        "fragmented",
    );
    refused(
        &client_frame(true, OpCode::Ping, &[0; 126]),
        Role::Server,
        1002,
        "at most 125",
    );
    refused(
        &client_frame(true, OpCode::Pong, &[0; 126]),
        Role::Server,
        1002,
        "at most 125",
    );

    let mut huge = vec![0x82, 0x80 | 127];
    huge.extend_from_slice(&(1u64 << 63).to_be_bytes());
    huge.extend_from_slice(&[0; 4]);
    refused(&huge, Role::Server, 1002, "top bit");

    refused(
        &client_frame(true, OpCode::Continuation, b"x"),
        Role::Server,
        1002,
        "without a message",
    );

    let mut interleaved = client_frame(false, OpCode::Text, b"a");
    interleaved.extend(client_frame(true, OpCode::Binary, b"b"));
    refused(
        &interleaved,
        Role::Server,
        1002,
        "before the fragmented one ended",
    );

    refused(
        &client_frame(true, OpCode::Close, b"x"),
        Role::Server,
        1002,
        "1-byte",
    );
}

#[test]
fn invalid_utf8_closes_with_1007_whole_or_fragmented_or_in_a_close_reason() {
    refused(
        &client_frame(true, OpCode::Text, &[0xC3, 0x28]),
        Role::Server,
        1007,
        "UTF-8",
    );
    let mut fragmented = client_frame(false, OpCode::Text, &[0xE2, 0x82]);
    fragmented.extend(client_frame(true, OpCode::Continuation, &[0x28]));
    refused(&fragmented, Role::Server, 1007, "UTF-8");
    refused(
        &client_frame(true, OpCode::Close, &[0x03, 0xE8, 0xFF]),
        Role::Server,
        1007,
        "UTF-8",
    );
    // A character split across fragments is fine.
    let mut split = client_frame(false, OpCode::Text, &[0xE2, 0x82]);
    split.extend(client_frame(true, OpCode::Continuation, &[0xAC]));
    let (got, result, _) = decode_in_chunks(&split, Role::Server, &[]);
    assert_eq!(result, Ok(()));
    assert_eq!(got.last(), Some(&Got::Text("€".into())));
}

#[test]
fn the_size_limit_applies_to_whole_messages_not_frames() {
    refused(
        &client_frame(true, OpCode::Binary, &vec![0; MAX + 1]),
        Role::Server,
        1009,
        "size limit",
    );
    // Each fragment is under the limit, the message is not.
    let mut fixed = client_frame(false, OpCode::Binary, &vec![0; MAX / 3]);
    for _ in 0..3 {
        fixed.extend(client_frame(false, OpCode::Continuation, &vec![0; MAX / 3]));
    }
    refused(&fixed, Role::Server, 1009, "size limit");
    // Exactly the limit passes.
    let (got, result, _) = decode_in_chunks(
        &client_frame(true, OpCode::Binary, &vec![0; MAX]),
        Role::Server,
        &[],
    );
    assert_eq!(result, Ok(()));
    assert_eq!(got.len(), 1);
}

#[test]
fn close_reasons_are_truncated_at_a_character_boundary() {
    let mut out = Vec::new();
    let reason = "é".repeat(100); // 200 bytes
    encode_close(&mut out, Some(1008), &reason, None);
    let (got, result, _) = decode_in_chunks(&out, Role::Client, &[]);
    assert_eq!(result, Ok(()));
    assert_eq!(got, vec![Got::Close(Some(1008))]);
    assert!(out.len() <= 2 + 125);
}

#[test]
fn a_long_frame_reports_progress_but_a_trickle_does_not() {
    let frame = client_frame(true, OpCode::Binary, &vec![3; 4 * PROGRESS_BYTES]);
    // In 4 KiB reads: progress every PROGRESS_BYTES, then the message.
    let (got, result, _) =
        decode_in_chunks(&frame, Role::Server, &vec![4096; frame.len() / 4096 + 1]);
    assert_eq!(result, Ok(()));
    let progress = got.iter().filter(|g| **g == Got::Fragment).count();
    // One report per PROGRESS_BYTES boundary crossed before the frame
    // (header included) completes.
    assert_eq!(progress, (frame.len() - 1) / PROGRESS_BYTES);
    assert!(matches!(got.last(), Some(Got::Binary(data)) if data.len() == 4 * PROGRESS_BYTES));
    // Byte by byte, the same frame reports the same progress: per bytes
    // arrived, not per read.
    let (got, _, _) = decode_in_chunks(
        &frame[..PROGRESS_BYTES - 1],
        Role::Server,
        &vec![1; PROGRESS_BYTES],
    );
    assert!(
        got.is_empty(),
        "less than PROGRESS_BYTES is no sign of life"
    );
}
