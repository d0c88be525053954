//! The client frame size limit, and the rules of RFC 6455 a frame header alone can break, enforced
//! from each frame's header before its payload is buffered.
//!
//! actix-http's WebSocket parser checks `max_size` only once a whole frame has arrived, and
//! actix-ws appends every chunk the client sends to its buffer until then, so a header announcing a
//! 1 GiB frame made the server hold whatever followed it. This guard sits between the socket and
//! the decoder: it reads every frame header as the bytes stream past, refuses a declared
//! length above `ws.max_frame_bytes` at once, and skips over payloads without copying them. Its only
//! state is a partial header (at most 10 bytes) and a count of payload bytes still to skip, so what
//! the decoder may buffer stays bounded by the limit plus what arrives in one read.
//!
//! The same header tells a control frame (ping, pong, close) that is fragmented or longer than 125
//! bytes (RFC 6455 §5.5): such a frame is refused here as a protocol error, before the decoder,
//! which would otherwise log every one of them at ERROR level (one line per hostile client).
//!
//! [`check_header`] is a pure function of the bytes so far, easy to fuzz on its own.

/// Bytes needed to know any frame's payload length: two fixed bytes and a 64-bit length.
const LENGTH_KNOWN: usize = 2 + 8;

/// What a frame header says so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Header {
    /// Not enough bytes yet to know the payload length.
    Incomplete,
    /// The frame is `header_len + payload_len` bytes long (the mask included in `header_len`),
    /// and its payload fits the limit.
    Frame {
        header_len: usize,
        payload_len: usize,
    },
}

/// Why a frame was refused from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refused {
    #[error("a client frame declared {declared} payload bytes; the limit is {limit}")]
    TooLarge { declared: u64, limit: usize },
    /// A control frame without FIN, or with more than 125 payload bytes.
    #[error("a client control frame was fragmented or longer than 125 bytes")]
    BadControl,
}

/// The largest payload of a control frame (RFC 6455 §5.5).
const MAX_CONTROL_PAYLOAD: u64 = 125;

/// Reads the start of a frame (RFC 6455 §5.2) far enough to know its payload length, and refuses
/// it when that length is above `limit`, or when it is a control frame that is fragmented or too
/// long. `bytes` starts at the frame's first byte and may be shorter or longer than the header.
pub(crate) fn check_header(bytes: &[u8], limit: usize) -> Result<Header, Refused> {
    let Some(&second) = bytes.get(1) else {
        return Ok(Header::Incomplete);
    };
    let first = bytes[0];
    let (fin, control) = (first & 0x80 != 0, first & 0x08 != 0);
    if control && (!fin || u64::from(second & 0x7f) > MAX_CONTROL_PAYLOAD) {
        return Err(Refused::BadControl);
    }
    let masked = second & 0x80 != 0;
    let (extended, declared) = match second & 0x7f {
        126 => match bytes.get(2..4) {
            Some(b) => (2, u64::from(u16::from_be_bytes([b[0], b[1]]))),
            None => return Ok(Header::Incomplete),
        },
        127 => match bytes.get(2..10) {
            Some(b) => (
                8,
                u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
            ),
            None => return Ok(Header::Incomplete),
        },
        short => (0, u64::from(short)),
    };
    let payload_len = usize::try_from(declared)
        .ok()
        .filter(|&len| len <= limit)
        .ok_or(Refused::TooLarge { declared, limit })?;
    Ok(Header::Frame {
        header_len: 2 + extended + if masked { 4 } else { 0 },
        payload_len,
    })
}

/// Follows frame boundaries across the chunks of a payload stream.
#[derive(Debug)]
pub(crate) struct FrameGuard {
    limit: usize,
    /// The start of a header split across chunks.
    head: [u8; LENGTH_KNOWN],
    /// At most `LENGTH_KNOWN` (a byte, so the guard packs beside `head`).
    head_len: u8,
    /// Bytes of the current frame (rest of its header and payload) still to pass.
    skip: usize,
    refused: Option<Refused>,
}

impl FrameGuard {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            head: [0; LENGTH_KNOWN],
            head_len: 0,
            skip: 0,
            refused: None,
        }
    }

    /// The largest payload a frame may declare.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Why the stream was refused, once it was: nothing after a refused frame is read.
    pub(crate) fn refused(&self) -> Option<Refused> {
        self.refused
    }

    /// Checks the frame headers in the next chunk of the stream. Once a frame is refused, every
    /// later call refuses too: the stream cannot be resynchronised.
    pub(crate) fn inspect(&mut self, mut chunk: &[u8]) -> Result<(), Refused> {
        if let Some(refused) = self.refused {
            return Err(refused);
        }
        loop {
            let passed = self.skip.min(chunk.len());
            self.skip -= passed;
            chunk = &chunk[passed..];
            if chunk.is_empty() {
                return Ok(());
            }
            let seen = usize::from(self.head_len);
            let take = (LENGTH_KNOWN - seen).min(chunk.len());
            self.head[seen..seen + take].copy_from_slice(&chunk[..take]);
            let header = check_header(&self.head[..seen + take], self.limit).inspect_err(|e| {
                self.refused = Some(*e);
            })?;
            match header {
                // Fewer than LENGTH_KNOWN bytes in all: the whole chunk went into `head`.
                Header::Incomplete => {
                    self.head_len = (seen + take) as u8;
                    return Ok(());
                }
                Header::Frame {
                    header_len,
                    payload_len,
                } => {
                    self.head_len = 0;
                    // `seen` bytes of this frame came in earlier chunks; the rest starts here.
                    let rest = header_len + payload_len - seen;
                    match chunk.get(rest..) {
                        Some(next) => chunk = next,
                        None => {
                            self.skip = rest - chunk.len();
                            return Ok(());
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A masked client frame header declaring `len` payload bytes.
    fn header(len: u64) -> Vec<u8> {
        let mut out = vec![0x81];
        match len {
            0..=125 => out.push(0x80 | len as u8),
            126..=0xffff => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                out.push(0x80 | 127);
                out.extend_from_slice(&len.to_be_bytes());
            }
        }
        out.extend_from_slice(&[1, 2, 3, 4]);
        out
    }

    fn frame(len: usize) -> Vec<u8> {
        let mut out = header(len as u64);
        out.resize(out.len() + len, b'x');
        out
    }

    #[test]
    fn a_header_declaring_one_gib_is_refused_before_any_payload() {
        let announced = header(1 << 30);
        assert_eq!(
            check_header(&announced, 16384),
            Err(Refused::TooLarge {
                declared: 1 << 30,
                limit: 16384
            })
        );
        let mut guard = FrameGuard::new(16384);
        assert!(guard.inspect(&announced).is_err());
        assert!(guard.inspect(b"anything after it").is_err());
    }

    #[test]
    fn lengths_up_to_the_limit_pass_in_every_encoding() {
        for (len, header_len) in [(0, 6), (125, 6), (126, 8), (65535, 8), (65536, 14)] {
            assert_eq!(
                check_header(&header(len as u64), 65536),
                Ok(Header::Frame {
                    header_len,
                    payload_len: len
                }),
                "{len}"
            );
        }
        assert!(check_header(&header(65537), 65536).is_err());
        assert_eq!(check_header(&[0x81], 10), Ok(Header::Incomplete));
        assert_eq!(check_header(&[0x81, 0xfe, 0], 10), Ok(Header::Incomplete));
    }

    #[test]
    fn an_oversized_frame_after_good_ones_is_found_whatever_the_chunking() {
        let mut stream = [frame(10), frame(300), frame(0)].concat();
        let good = stream.len();
        stream.extend(header(5000));
        stream.extend(vec![b'x'; 100]);
        for size in [1, 2, 3, 7, 13, 64, 1000, stream.len()] {
            let mut guard = FrameGuard::new(4096);
            let mut offset = 0;
            let refused_at = stream.chunks(size).find_map(|chunk| {
                offset += chunk.len();
                guard.inspect(chunk).err().map(|_| offset)
            });
            let refused_at = refused_at.expect("the big frame is refused");
            assert!(
                refused_at > good,
                "chunks of {size}: refused at {refused_at}"
            );
            assert!(
                refused_at <= good + 10 + size,
                "chunks of {size}: late at {refused_at}"
            );
        }
    }

    #[test]
    fn a_fragmented_or_long_control_frame_is_refused_from_its_header() {
        // Ping without FIN; close without FIN; a ping announcing 126 bytes.
        for header in [[0x09, 0x80], [0x08, 0x80], [0x89, 0x80 | 126]] {
            assert_eq!(
                check_header(&header, 16384),
                Err(Refused::BadControl),
                "{header:x?}"
            );
        }
        // A whole ping of 125 bytes, and a text fragment without FIN, pass.
        assert!(check_header(&[0x89, 0x80 | 125], 16384).is_ok());
        assert!(check_header(&[0x01, 0x85], 16384).is_ok());
    }

    proptest! {
        #[test]
        fn any_bytes_in_any_chunks_are_checked_without_panicking(
            bytes in proptest::collection::vec(any::<u8>(), 0..512),
            size in 1usize..64,
            limit in 0usize..300,
        ) {
            let mut guard = FrameGuard::new(limit);
            for chunk in bytes.chunks(size) {
                let _ = guard.inspect(chunk);
            }
        }

        #[test]
        fn frames_within_the_limit_always_pass(
            lengths in proptest::collection::vec(0usize..300, 0..8),
            size in 1usize..64,
        ) {
            let stream: Vec<u8> = lengths.iter().flat_map(|&len| frame(len)).collect();
            let mut guard = FrameGuard::new(300);
            for chunk in stream.chunks(size) {
                prop_assert!(guard.inspect(chunk).is_ok());
            }
        }
    }
}
