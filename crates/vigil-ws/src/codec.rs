//! WebSocket framing without a per-connection read buffer: an incremental
//! decoder that holds memory only while a frame or a fragmented message is
//! incomplete, and an encoder on top of fastwebsockets' frame primitives.
//!
//! fastwebsockets' `WebSocket` keeps an 8 KiB buffer per connection and its
//! `read_frame` is not cancel-safe; an idle connection must cost neither. The
//! driver reads into one scratch buffer per shard and hands the bytes here;
//! frames that arrive whole are parsed in place, and only the tail of an
//! incomplete frame is copied into the connection. Every rule of RFC 6455
//! section 5 that a receiver must enforce is checked, with the close code
//! the RFC asks for.

use fastwebsockets::{Frame, OpCode, Payload};

/// Which side of the connection we are: it decides masking in both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We accepted the connection: inbound frames must be masked, ours not.
    Server,
    /// We opened the connection: inbound frames must not be masked, ours are.
    Client,
}

/// A complete inbound frame or message, borrowed from the bytes just read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Inbound<'a> {
    /// A complete text message, valid UTF-8.
    Text(&'a [u8]),
    /// A complete binary message.
    Binary(&'a [u8]),
    Ping(&'a [u8]),
    Pong(&'a [u8]),
    /// A close frame: its code, if any (validity is the heartbeat's call).
    Close(Option<u16>),
    /// A frame of a fragmented message that is not complete yet, or another
    /// `PROGRESS_BYTES` of a long frame: it proves the peer is alive.
    Fragment,
}

/// Why the peer broke the protocol, with the close code RFC 6455 asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtocolError {
    /// 1002 (protocol error), 1007 (invalid payload) or 1009 (too big).
    pub code: u16,
    /// A short reason, sent in the close frame.
    pub reason: &'static str,
}

const fn protocol(reason: &'static str) -> ProtocolError {
    ProtocolError { code: 1002, reason }
}

const RESERVED_BITS: ProtocolError = protocol("reserved bits set without an extension");
const RESERVED_OPCODE: ProtocolError = protocol("reserved opcode");
const UNMASKED: ProtocolError = protocol("client frames must be masked");
const MASKED: ProtocolError = protocol("server frames must not be masked");
const FRAGMENTED_CONTROL: ProtocolError = protocol("control frames must not be fragmented");
const LONG_CONTROL: ProtocolError = protocol("control frames carry at most 125 bytes");
const BAD_LENGTH: ProtocolError = protocol("64-bit payload length with the top bit set");
const STRAY_CONTINUATION: ProtocolError = protocol("continuation frame without a message");
const INTERLEAVED: ProtocolError = protocol("new message before the fragmented one ended");
const ONE_BYTE_CLOSE: ProtocolError = protocol("close frame with a 1-byte payload");
const INVALID_UTF8: ProtocolError = ProtocolError {
    code: 1007,
    reason: "text is not valid UTF-8",
};
const TOO_BIG: ProtocolError = ProtocolError {
    code: 1009,
    reason: "message exceeds the size limit",
};

/// Bytes of one incomplete frame that count as a sign of life: every time
/// this much more of a long frame has arrived, the peer is alive, though the
/// frame is not complete (browsers send large messages as a single frame).
pub(crate) const PROGRESS_BYTES: usize = 16 << 10;

/// Per-connection decoding state: 8 bytes while nothing is half-received.
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    partial: Option<Box<Partial>>,
}

#[derive(Debug, Default)]
struct Partial {
    /// Bytes of a frame whose end has not arrived yet.
    frame: Vec<u8>,
    /// A fragmented message whose final frame has not arrived yet.
    message: Option<Message>,
}

#[derive(Debug)]
struct Message {
    text: bool,
    data: Vec<u8>,
}

struct Header {
    fin: bool,
    opcode: OpCode,
    mask: Option<[u8; 4]>,
    header_len: usize,
    payload_len: usize,
}

impl Decoder {
    /// Whether the decoder holds no bytes (an idle connection).
    #[cfg(test)]
    pub(crate) fn is_idle(&self) -> bool {
        self.partial.is_none()
    }

    /// Bytes held for incomplete input (for memory accounting in tests).
    #[cfg(test)]
    pub(crate) fn held_bytes(&self) -> usize {
        self.partial.as_ref().map_or(0, |partial| {
            partial.frame.capacity() + partial.message.as_ref().map_or(0, |m| m.data.capacity())
        })
    }

    /// Decodes `input` (freshly read bytes, unmasked in place), calling
    /// `deliver` for every complete frame or message, in order. An error
    /// means the connection must be failed with that code; nothing after
    /// the offending frame is delivered.
    pub(crate) fn decode(
        &mut self,
        input: &mut [u8],
        role: Role,
        max_message: usize,
        deliver: &mut dyn FnMut(Inbound<'_>),
    ) -> Result<(), ProtocolError> {
        let mut partial = self.partial.take();
        let result = match partial.as_deref_mut() {
            Some(state) if !state.frame.is_empty() => {
                // Finish the incomplete frame first, then go on in place.
                let mut frame = std::mem::take(&mut state.frame);
                let before = frame.len();
                let consumed = complete_frame(&mut frame, input, role, max_message)?;
                match consumed {
                    None => {
                        if made_progress(before, frame.len()) {
                            deliver(Inbound::Fragment);
                        }
                        state.frame = frame;
                        Ok(input.len())
                    }
                    Some(taken) => {
                        let header = parse_header(&frame, role, max_message)?
                            .expect("complete_frame returned a whole frame");
                        deliver_frame(&mut frame, &header, state, max_message, deliver)?;
                        decode_in_place(&mut input[taken..], role, max_message, state, deliver)
                            .map(|used| taken + used)
                    }
                }
            }
            Some(state) => decode_in_place(input, role, max_message, state, deliver),
            None => {
                let mut fresh = Partial::default();
                let used = decode_in_place(input, role, max_message, &mut fresh, deliver)?;
                if used < input.len() || fresh.message.is_some() {
                    partial = Some(Box::new(fresh));
                }
                Ok(used)
            }
        }?;
        if let Some(mut state) = partial {
            if result < input.len() {
                let before = state.frame.len();
                state.frame.extend_from_slice(&input[result..]);
                if made_progress(before, state.frame.len()) {
                    deliver(Inbound::Fragment);
                }
            }
            if !state.frame.is_empty() || state.message.is_some() {
                self.partial = Some(state);
            }
        }
        Ok(())
    }
}

/// Whether a partial frame that grew from `before` to `after` bytes crossed
/// a multiple of [`PROGRESS_BYTES`]: a long frame arriving at a useful rate
/// is life; a trickle (less than that between two reads of it) is not.
fn made_progress(before: usize, after: usize) -> bool {
    after / PROGRESS_BYTES > before / PROGRESS_BYTES
}

/// Appends to `frame` the bytes of `input` that complete it; returns how many
/// were taken, or `None` when `input` was not enough (all of it taken).
fn complete_frame(
    frame: &mut Vec<u8>,
    input: &[u8],
    role: Role,
    max_message: usize,
) -> Result<Option<usize>, ProtocolError> {
    let mut taken = 0;
    loop {
        match parse_header(frame, role, max_message)? {
            Some(header) => {
                let total = header.header_len + header.payload_len;
                let missing = total.saturating_sub(frame.len());
                let take = missing.min(input.len() - taken);
                frame.extend_from_slice(&input[taken..taken + take]);
                taken += take;
                return Ok((frame.len() == total).then_some(taken));
            }
            None if taken == input.len() => return Ok(None),
            None => {
                // The header itself is incomplete: take one more byte of it.
                frame.push(input[taken]);
                taken += 1;
            }
        }
    }
}

/// Decodes whole frames from `input`; returns how many bytes were used (the
/// rest is the start of an incomplete frame).
fn decode_in_place(
    input: &mut [u8],
    role: Role,
    max_message: usize,
    state: &mut Partial,
    deliver: &mut dyn FnMut(Inbound<'_>),
) -> Result<usize, ProtocolError> {
    let mut used = 0;
    while let Some(header) = parse_header(&input[used..], role, max_message)? {
        let total = header.header_len + header.payload_len;
        if input.len() - used < total {
            break;
        }
        deliver_frame(
            &mut input[used..used + total],
            &header,
            state,
            max_message,
            deliver,
        )?;
        used += total;
    }
    Ok(used)
}

/// Parses a frame header; `None` when `bytes` does not hold all of it yet.
fn parse_header(
    bytes: &[u8],
    role: Role,
    max_message: usize,
) -> Result<Option<Header>, ProtocolError> {
    let [first, second, ..] = *bytes else {
        return Ok(None);
    };
    if first & 0b0111_0000 != 0 {
        return Err(RESERVED_BITS);
    }
    let opcode = OpCode::try_from(first & 0x0F).map_err(|_| RESERVED_OPCODE)?;
    let fin = first & 0x80 != 0;
    let masked = second & 0x80 != 0;
    match (role, masked) {
        (Role::Server, false) => return Err(UNMASKED),
        (Role::Client, true) => return Err(MASKED),
        _ => {}
    }
    let control = matches!(opcode, OpCode::Close | OpCode::Ping | OpCode::Pong);
    if control && !fin {
        return Err(FRAGMENTED_CONTROL);
    }
    let length_code = second & 0x7F;
    let length_bytes = match length_code {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask_bytes = if masked { 4 } else { 0 };
    let header_len = 2 + length_bytes + mask_bytes;
    if bytes.len() < header_len {
        return Ok(None);
    }
    let payload_len = match length_bytes {
        0 => u64::from(length_code),
        2 => u64::from(u16::from_be_bytes([bytes[2], bytes[3]])),
        _ => {
            let mut length = [0; 8];
            length.copy_from_slice(&bytes[2..10]);
            let length = u64::from_be_bytes(length);
            if length >> 63 != 0 {
                return Err(BAD_LENGTH);
            }
            length
        }
    };
    if control && payload_len > 125 {
        return Err(LONG_CONTROL);
    }
    let payload_len = usize::try_from(payload_len).map_err(|_| TOO_BIG)?;
    if payload_len > max_message {
        return Err(TOO_BIG);
    }
    let mask = masked.then(|| {
        let start = 2 + length_bytes;
        [
            bytes[start],
            bytes[start + 1],
            bytes[start + 2],
            bytes[start + 3],
        ]
    });
    Ok(Some(Header {
        fin,
        opcode,
        mask,
        header_len,
        payload_len,
    }))
}

/// Unmasks one whole frame in place and delivers what it completes.
fn deliver_frame(
    frame: &mut [u8],
    header: &Header,
    state: &mut Partial,
    max_message: usize,
    deliver: &mut dyn FnMut(Inbound<'_>),
) -> Result<(), ProtocolError> {
    let payload = &mut frame[header.header_len..header.header_len + header.payload_len];
    if let Some(mask) = header.mask {
        fastwebsockets::unmask(payload, mask);
    }
    let payload = &*payload;
    match header.opcode {
        OpCode::Ping => deliver(Inbound::Ping(payload)),
        OpCode::Pong => deliver(Inbound::Pong(payload)),
        OpCode::Close => deliver(Inbound::Close(close_code(payload)?)),
        OpCode::Text | OpCode::Binary => {
            if state.message.is_some() {
                return Err(INTERLEAVED);
            }
            let text = header.opcode == OpCode::Text;
            if header.fin {
                if text && std::str::from_utf8(payload).is_err() {
                    return Err(INVALID_UTF8);
                }
                deliver(if text {
                    Inbound::Text(payload)
                } else {
                    Inbound::Binary(payload)
                });
            } else {
                state.message = Some(Message {
                    text,
                    data: payload.to_vec(),
                });
                deliver(Inbound::Fragment);
            }
        }
        OpCode::Continuation => {
            let Some(message) = state.message.as_mut() else {
                return Err(STRAY_CONTINUATION);
            };
            // The whole message counts against the limit, not each frame.
            if message.data.len() + payload.len() > max_message {
                return Err(TOO_BIG);
            }
            message.data.extend_from_slice(payload);
            if header.fin {
                let message = state.message.take().expect("checked above");
                if message.text && std::str::from_utf8(&message.data).is_err() {
                    return Err(INVALID_UTF8);
                }
                deliver(if message.text {
                    Inbound::Text(&message.data)
                } else {
                    Inbound::Binary(&message.data)
                });
            } else {
                deliver(Inbound::Fragment);
            }
        }
    }
    Ok(())
}

/// The code of a close payload; its reason must be UTF-8.
fn close_code(payload: &[u8]) -> Result<Option<u16>, ProtocolError> {
    match payload {
        [] => Ok(None),
        [_] => Err(ONE_BYTE_CLOSE),
        [high, low, reason @ ..] => {
            std::str::from_utf8(reason).map_err(|_| INVALID_UTF8)?;
            Ok(Some(u16::from_be_bytes([*high, *low])))
        }
    }
}

/// Appends one frame to `out`, masking it with `mask` when we are a client.
pub(crate) fn encode(
    out: &mut Vec<u8>,
    fin: bool,
    opcode: OpCode,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) {
    let mut frame = Frame::new(fin, opcode, mask, Payload::Borrowed(payload));
    let mut head = [0u8; 14];
    let head_len = frame.fmt_head(&mut head);
    out.extend_from_slice(&head[..head_len]);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(mask) = mask {
        fastwebsockets::unmask(&mut out[start..], mask);
    }
}

/// Appends a close frame with `code` and `reason` (truncated to fit 125 bytes
/// at a character boundary).
pub(crate) fn encode_close(
    out: &mut Vec<u8>,
    code: Option<u16>,
    reason: &str,
    mask: Option<[u8; 4]>,
) {
    let mut payload = [0u8; 125];
    let len = match code {
        None => 0,
        Some(code) => {
            payload[..2].copy_from_slice(&code.to_be_bytes());
            let mut end = reason.len().min(123);
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            payload[2..2 + end].copy_from_slice(&reason.as_bytes()[..end]);
            2 + end
        }
    };
    encode(out, true, OpCode::Close, &payload[..len], mask);
}

#[cfg(test)]
mod tests;
