//! The wire frame: a 4-byte big-endian unsigned length, then that many bytes of UTF-8 JSON.
//! Pure codec; the socket I/O lives in [`super::client`].

/// Why a frame header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("empty frame")]
    Empty,
    #[error("frame of {len} bytes exceeds the {max} byte limit")]
    TooLarge { len: usize, max: usize },
}

/// Prefix `payload` with its length. `payload` must be under 4 GiB (our frames are ≤ 10 MiB).
pub fn encode_header(payload_len: usize) -> [u8; 4] {
    (payload_len as u32).to_be_bytes()
}

/// One allocation holding header and payload, ready for a single write.
pub fn encode(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + payload.len());
    out.extend_from_slice(&encode_header(payload.len()));
    out.extend_from_slice(payload);
    out
}

/// Validate a received header: lengths of 0 and over `max` are refused.
pub fn decode_header(header: [u8; 4], max: usize) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(header) as usize;
    if len == 0 {
        return Err(FrameError::Empty);
    }
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn header_is_big_endian_length() {
        assert_eq!(encode_header(0x01020304), [1, 2, 3, 4]);
        assert_eq!(encode(b"{}"), vec![0, 0, 0, 2, b'{', b'}']);
    }

    #[test]
    fn refuses_empty_and_oversized() {
        assert_eq!(decode_header([0, 0, 0, 0], 10), Err(FrameError::Empty));
        assert_eq!(
            decode_header([0, 0, 0, 11], 10),
            Err(FrameError::TooLarge { len: 11, max: 10 })
        );
        assert_eq!(decode_header([0, 0, 0, 10], 10), Ok(10));
    }

    proptest! {
        #[test]
        fn round_trips(payload in proptest::collection::vec(any::<u8>(), 1..512)) {
            let framed = encode(&payload);
            let header = [framed[0], framed[1], framed[2], framed[3]];
            prop_assert_eq!(decode_header(header, 1024), Ok(payload.len()));
            prop_assert_eq!(&framed[4..], &payload[..]);
        }
    }
}
