//! A tiny protobuf writer: a message is built field by field, in the order
//! the calls are made (so tests can also write what a serializer would not:
//! unknown fields, fields given twice).

/// A protobuf message being written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    buf: Vec<u8>,
}

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

impl Message {
    pub fn new() -> Message {
        Message::default()
    }

    fn tag(&mut self, field: u32, wire_type: u8) {
        put_varint(
            &mut self.buf,
            (u64::from(field) << 3) | u64::from(wire_type),
        );
    }

    /// A varint field (int32, int64, enum, bool; negatives as 10 bytes).
    pub fn int(mut self, field: u32, v: i64) -> Message {
        self.tag(field, 0);
        put_varint(&mut self.buf, v as u64);
        self
    }

    /// A 32-bit field (float, fixed32).
    pub fn fixed32(mut self, field: u32, v: u32) -> Message {
        self.tag(field, 5);
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A float field.
    pub fn float(self, field: u32, v: f32) -> Message {
        self.fixed32(field, v.to_bits())
    }

    /// A length-delimited field of raw bytes.
    pub fn bytes(mut self, field: u32, b: &[u8]) -> Message {
        self.tag(field, 2);
        put_varint(&mut self.buf, b.len() as u64);
        self.buf.extend_from_slice(b);
        self
    }

    /// A string field.
    pub fn string(self, field: u32, s: &str) -> Message {
        self.bytes(field, s.as_bytes())
    }

    /// An embedded message field.
    pub fn message(self, field: u32, m: Message) -> Message {
        self.bytes(field, &m.buf)
    }

    /// Embedded message fields, one per message, for a repeated field.
    pub fn messages(self, field: u32, ms: impl IntoIterator<Item = Message>) -> Message {
        ms.into_iter().fold(self, |acc, m| acc.message(field, m))
    }

    /// A repeated varint field, one value each (unpacked).
    pub fn ints(self, field: u32, vs: &[i64]) -> Message {
        vs.iter().fold(self, |acc, v| acc.int(field, *v))
    }

    /// The encoded message.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// The encoded message so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{fields, Value};

    #[test]
    fn what_is_written_reads_back() {
        let m = Message::new()
            .int(1, 150)
            .int(2, -1)
            .float(3, 1.5)
            .string(4, "hi")
            .message(5, Message::new().int(1, 7))
            .into_bytes();
        let got: Vec<_> = fields(&m).collect::<Result<_, _>>().unwrap();
        assert_eq!(
            got,
            vec![
                (1, Value::Varint(150)),
                (2, Value::Varint(u64::MAX)),
                (3, Value::Fixed32(1.5f32.to_bits())),
                (4, Value::Bytes(b"hi")),
                (5, Value::Bytes(&[0x08, 7])),
            ]
        );
    }
}
