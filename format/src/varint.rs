//! Zigzag varints as used inside records (Kafka's `ByteUtils.readVarint`/`readVarlong`). Used by
//! [`crate::records`] when decoding and encoding the records of a batch.

use bytes::BufMut;

use crate::error::FormatError;

/// A cursor over a records section that never reads past its end.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn u8(&mut self) -> Result<u8, FormatError> {
        let byte = *self.buf.get(self.pos).ok_or(FormatError::Truncated {
            needed: self.pos + 1,
            available: self.buf.len(),
        })?;
        self.pos += 1;
        Ok(byte)
    }

    /// Skips `len` bytes and returns their range, so callers can slice a shared `Bytes`.
    pub(crate) fn skip(&mut self, len: usize) -> Result<std::ops::Range<usize>, FormatError> {
        if len > self.remaining() {
            return Err(FormatError::Truncated {
                needed: self.pos.saturating_add(len),
                available: self.buf.len(),
            });
        }
        let start = self.pos;
        self.pos += len;
        Ok(start..self.pos)
    }

    /// Reads an unsigned LEB128 value of at most `max_bytes` bytes.
    fn unsigned(&mut self, max_bytes: u32) -> Result<u64, FormatError> {
        let mut value = 0u64;
        for i in 0..max_bytes {
            let byte = self.u8()?;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(FormatError::InvalidVarint)
    }

    /// A zigzag varint that must fit an `i32` (at most 5 bytes, like Kafka's `readVarint`).
    pub(crate) fn varint(&mut self) -> Result<i32, FormatError> {
        let raw = u32::try_from(self.unsigned(5)?).map_err(|_| FormatError::InvalidVarint)?;
        Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
    }

    /// A zigzag varlong (at most 10 bytes, like Kafka's `readVarlong`).
    pub(crate) fn varlong(&mut self) -> Result<i64, FormatError> {
        let raw = self.unsigned(10)?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }
}

fn put_unsigned(out: &mut impl BufMut, mut value: u64) {
    while value >= 0x80 {
        out.put_u8((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.put_u8(value as u8);
}

/// Writes `value` as a zigzag varint.
pub(crate) fn put_varint(out: &mut impl BufMut, value: i32) {
    put_unsigned(out, u64::from(((value << 1) ^ (value >> 31)) as u32));
}

/// Writes `value` as a zigzag varlong.
pub(crate) fn put_varlong(out: &mut impl BufMut, value: i64) {
    put_unsigned(out, ((value << 1) ^ (value >> 63)) as u64);
}

/// Encoded size of `value` as a zigzag varint, needed for a record's length prefix.
pub(crate) fn varint_len(value: i32) -> usize {
    let mut v = ((value << 1) ^ (value >> 31)) as u32;
    let mut len = 1;
    while v >= 0x80 {
        v >>= 7;
        len += 1;
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_roundtrip_extremes() {
        for v in [0, 1, -1, 63, -64, 64, i32::MAX, i32::MIN] {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            assert_eq!(buf.len(), varint_len(v));
            assert_eq!(Reader::new(&buf).varint().unwrap(), v);
        }
        for v in [0, 1, -1, i64::MAX, i64::MIN, 1 << 40] {
            let mut buf = Vec::new();
            put_varlong(&mut buf, v);
            assert_eq!(Reader::new(&buf).varlong().unwrap(), v);
        }
    }

    #[test]
    fn kafka_zigzag_encoding() {
        // From Kafka's ByteUtilsTest: zigzag maps -1 to 1 and 1 to 2.
        let mut buf = Vec::new();
        put_varint(&mut buf, -1);
        put_varint(&mut buf, 1);
        put_varint(&mut buf, 300);
        assert_eq!(buf, [0x01, 0x02, 0xd8, 0x04]);
    }

    #[test]
    fn overlong_varint_rejected() {
        let long = [0xffu8; 11];
        assert_eq!(Reader::new(&long).varint(), Err(FormatError::InvalidVarint));
        assert_eq!(
            Reader::new(&long).varlong(),
            Err(FormatError::InvalidVarint)
        );
        // Five bytes but more than 32 bits of payload.
        let wide = [0xff, 0xff, 0xff, 0xff, 0x7f];
        assert_eq!(Reader::new(&wide).varint(), Err(FormatError::InvalidVarint));
        assert!(matches!(
            Reader::new(&[0x80]).varint(),
            Err(FormatError::Truncated { .. })
        ));
    }
}
