//! WebSocket frames by hand, for clients that own their raw socket (the
//! publisher, slow readers, flooders): masked client frames out, and the
//! server's (unmasked) frames parsed from a read buffer.

/// One masked client frame, final, of any length.
pub(crate) fn masked_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x5a, 0xc3, 0x3c, 0xa5];
    let mut frame = Vec::with_capacity(14 + payload.len());
    frame.push(0x80 | (opcode & 0x0f));
    match payload.len() {
        len @ 0..=125 => frame.push(0x80 | len as u8),
        len @ 126..=0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    frame
}

/// A masked text frame.
pub(crate) fn masked_text_frame(payload: &[u8]) -> Vec<u8> {
    masked_frame(0x1, payload)
}

pub(crate) const TEXT: u8 = 0x1;
pub(crate) const CLOSE: u8 = 0x8;
pub(crate) const PING: u8 = 0x9;
pub(crate) const PONG: u8 = 0xa;

/// A frame the server sent: its opcode and where its payload lies in the
/// buffer it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ServerFrame {
    pub(crate) opcode: u8,
    pub(crate) payload: (usize, usize),
    /// Bytes of the buffer the frame takes, header included.
    pub(crate) len: usize,
}

/// The first whole frame at the start of `buffer`, or `None` until more
/// bytes arrive. A masked frame from the server, or a length past
/// `usize`, is a protocol error (`Err`).
pub(crate) fn parse_server_frame(buffer: &[u8]) -> Result<Option<ServerFrame>, &'static str> {
    let [first, second, rest @ ..] = buffer else {
        return Ok(None);
    };
    if second & 0x80 != 0 {
        return Err("a masked frame from the server");
    }
    let (len, header): (u64, usize) = match second & 0x7f {
        126 => match rest {
            [a, b, ..] => (u64::from(u16::from_be_bytes([*a, *b])), 4),
            _ => return Ok(None),
        },
        127 => match rest.get(..8) {
            Some(bytes) => {
                let bytes: [u8; 8] = bytes.try_into().map_err(|_| "unreachable")?;
                (u64::from_be_bytes(bytes), 10)
            }
            None => return Ok(None),
        },
        len => (u64::from(len), 2),
    };
    let len = usize::try_from(len).map_err(|_| "a frame longer than memory")?;
    let Some(end) = header.checked_add(len) else {
        return Err("a frame longer than memory");
    };
    if buffer.len() < end {
        return Ok(None);
    }
    Ok(Some(ServerFrame {
        opcode: first & 0x0f,
        payload: (header, end),
        len: end,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unmask(frame: &[u8], header: usize) -> Vec<u8> {
        let mask = &frame[header..header + 4];
        frame[header + 4..]
            .iter()
            .zip(mask.iter().cycle())
            .map(|(b, m)| b ^ m)
            .collect()
    }

    #[test]
    fn client_frames_are_masked_with_the_right_length_header() {
        let frame = masked_text_frame(b"hi");
        assert_eq!(&frame[..2], &[0x81, 0x82]);
        assert_eq!(unmask(&frame, 2), b"hi");
        let big = vec![b'x'; 3_000];
        let frame = masked_frame(PING, &big);
        assert_eq!(&frame[..4], &[0x89, 0x80 | 126, 0x0b, 0xb8]);
        assert_eq!(unmask(&frame, 4), big);
    }

    #[test]
    fn server_frames_are_parsed_once_whole() {
        let mut bytes = vec![0x81, 5];
        bytes.extend_from_slice(b"hello");
        bytes.extend_from_slice(&[0x88, 126, 0x00, 0x02, 0x03, 0xf0]);
        let first = parse_server_frame(&bytes).expect("valid").expect("whole");
        assert_eq!((first.opcode, first.payload, first.len), (TEXT, (2, 7), 7));
        let second = parse_server_frame(&bytes[7..])
            .expect("valid")
            .expect("whole");
        assert_eq!(second.opcode, CLOSE);
        assert_eq!(
            &bytes[7 + second.payload.0..7 + second.payload.1],
            &[0x03, 0xf0]
        );
        for short in [&bytes[..1], &bytes[..6], &bytes[7..10]] {
            assert_eq!(parse_server_frame(short), Ok(None), "{short:?}");
        }
        assert!(parse_server_frame(&[0x81, 0x81, 0, 0, 0, 0, 0]).is_err());
    }
}
