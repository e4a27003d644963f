//! A strict reader of the protobuf wire format: varints, 64-bit,
//! length-delimited and 32-bit fields; groups, unknown wire types, field 0,
//! over-long varints and lengths past the end are errors, never panics.

use std::fmt;

/// One field's value as it is on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

impl Value<'_> {
    /// The wire type's name, for messages.
    pub(crate) fn wire_name(&self) -> &'static str {
        match self {
            Value::Varint(_) => "varint",
            Value::Fixed64(_) => "64-bit",
            Value::Bytes(_) => "length-delimited",
            Value::Fixed32(_) => "32-bit",
        }
    }
}

/// Why bytes are not a protobuf message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WireError {
    /// The data ends inside a tag, a varint or a fixed-width value.
    Truncated,
    /// A varint longer than 10 bytes, or one that overflows 64 bits.
    VarintTooLong,
    /// A field number of 0 or above 2^29 - 1.
    BadFieldNumber(u64),
    /// Wire types 3 and 4 (groups), deprecated and never used by ONNX.
    Group(u32),
    /// Wire types 6 and 7 do not exist.
    BadWireType(u8),
    /// A length-delimited field longer than what is left of its message.
    LengthPastEnd { field: u32, len: u64, left: usize },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Truncated => write!(f, "the data ends in the middle of a field"),
            WireError::VarintTooLong => write!(f, "a varint is longer than 10 bytes"),
            WireError::BadFieldNumber(n) => write!(f, "field number {n} is not valid"),
            WireError::Group(n) => {
                write!(f, "field {n} is a group (wire types 3 and 4 are refused)")
            }
            WireError::BadWireType(t) => write!(f, "wire type {t} does not exist"),
            WireError::LengthPastEnd { field, len, left } => write!(
                f,
                "field {field} claims {len} bytes but only {left} are left"
            ),
        }
    }
}

/// Reads one varint at `*pos`, advancing it.
pub(crate) fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, WireError> {
    let mut value = 0u64;
    for i in 0..10 {
        let byte = *buf.get(*pos).ok_or(WireError::Truncated)?;
        *pos += 1;
        // The tenth byte holds only the 64th bit.
        if i == 9 && byte > 1 {
            return Err(WireError::VarintTooLong);
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(WireError::VarintTooLong)
}

/// The fields of one message, in order; stops after the first error.
pub(crate) struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// Iterate over the fields of the message `buf`.
pub(crate) fn fields(buf: &[u8]) -> Fields<'_> {
    Fields { buf, pos: 0 }
}

impl<'a> Fields<'a> {
    fn next_field(&mut self) -> Result<(u32, Value<'a>), WireError> {
        let tag = varint(self.buf, &mut self.pos)?;
        let number = tag >> 3;
        if number == 0 || number > (1 << 29) - 1 {
            return Err(WireError::BadFieldNumber(number));
        }
        let number = number as u32;
        let value = match (tag & 7) as u8 {
            0 => Value::Varint(varint(self.buf, &mut self.pos)?),
            1 => Value::Fixed64(u64::from_le_bytes(
                self.take(8)?.try_into().expect("8 bytes"),
            )),
            2 => {
                let len = varint(self.buf, &mut self.pos)?;
                let left = self.buf.len() - self.pos;
                if len > left as u64 {
                    return Err(WireError::LengthPastEnd {
                        field: number,
                        len,
                        left,
                    });
                }
                Value::Bytes(self.take(len as usize)?)
            }
            3 | 4 => return Err(WireError::Group(number)),
            5 => Value::Fixed32(u32::from_le_bytes(
                self.take(4)?.try_into().expect("4 bytes"),
            )),
            t => return Err(WireError::BadWireType(t)),
        };
        Ok((number, value))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let end = self.pos.checked_add(n).ok_or(WireError::Truncated)?;
        let bytes = self.buf.get(self.pos..end).ok_or(WireError::Truncated)?;
        self.pos = end;
        Ok(bytes)
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Value<'a>), WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let item = self.next_field();
        if item.is_err() {
            self.pos = self.buf.len();
        }
        Some(item)
    }
}

/// Checks that `buf` is a whole number of varints (a packed repeated field).
pub(crate) fn packed_varints(buf: &[u8]) -> Result<(), WireError> {
    let mut pos = 0;
    while pos < buf.len() {
        varint(buf, &mut pos)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(buf: &[u8]) -> Result<Vec<(u32, Value<'_>)>, WireError> {
        fields(buf).collect()
    }

    #[test]
    fn reads_each_wire_type() {
        let buf = [
            0x08, 0x96, 0x01, // 1: varint 150
            0x11, 1, 0, 0, 0, 0, 0, 0, 0, // 2: fixed64 1
            0x1a, 2, b'h', b'i', // 3: bytes "hi"
            0x25, 2, 0, 0, 0, // 4: fixed32 2
        ];
        assert_eq!(
            all(&buf).unwrap(),
            vec![
                (1, Value::Varint(150)),
                (2, Value::Fixed64(1)),
                (3, Value::Bytes(b"hi")),
                (4, Value::Fixed32(2)),
            ]
        );
    }

    #[test]
    fn refuses_bad_encodings() {
        assert_eq!(all(&[0x0b]).unwrap_err(), WireError::Group(1));
        assert_eq!(all(&[0x0c]).unwrap_err(), WireError::Group(1));
        assert_eq!(all(&[0x0e, 0]).unwrap_err(), WireError::BadWireType(6));
        assert_eq!(all(&[0x00, 0]).unwrap_err(), WireError::BadFieldNumber(0));
        assert_eq!(all(&[0x08]).unwrap_err(), WireError::Truncated);
        assert_eq!(all(&[0x09, 1, 2]).unwrap_err(), WireError::Truncated);
        assert_eq!(
            all(&[0x0a, 5, 1]).unwrap_err(),
            WireError::LengthPastEnd {
                field: 1,
                len: 5,
                left: 1
            }
        );
        let eleven = [
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ];
        assert_eq!(all(&eleven).unwrap_err(), WireError::VarintTooLong);
        let overflow = [
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02,
        ];
        assert_eq!(all(&overflow).unwrap_err(), WireError::VarintTooLong);
        // A 64-bit length cannot wrap the position around.
        let huge = [
            0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ];
        assert!(matches!(
            all(&huge).unwrap_err(),
            WireError::LengthPastEnd { .. }
        ));
    }

    #[test]
    fn ten_byte_varints_hold_negative_numbers() {
        let minus_one = [
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ];
        assert_eq!(all(&minus_one).unwrap(), vec![(1, Value::Varint(u64::MAX))]);
    }

    #[test]
    fn packed_varints_must_end_on_a_boundary() {
        assert!(packed_varints(&[1, 0x96, 0x01]).is_ok());
        assert_eq!(
            packed_varints(&[1, 0x96]).unwrap_err(),
            WireError::Truncated
        );
    }
}
