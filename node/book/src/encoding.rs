//! Bounds-checked byte encoding for snapshots: LEB128 varints for unsigned
//! integers, zigzag varints for signed ones, and a 64-bit checksum. Reading
//! never panics and never allocates more than the input can justify.

use crate::snapshot::SnapshotError;

pub(crate) struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> Writer<'a> {
    pub fn new(out: &'a mut Vec<u8>) -> Writer<'a> {
        Writer { out }
    }

    pub fn bytes(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    pub fn u8(&mut self, value: u8) {
        self.out.push(value);
    }

    pub fn u64(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.out.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.out.push(value as u8);
    }

    pub fn i64(&mut self, value: i64) {
        self.u64(((value << 1) ^ (value >> 63)) as u64);
    }
}

pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, position: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.position
    }

    pub fn bytes(&mut self, len: usize) -> Result<&'a [u8], SnapshotError> {
        let end = self
            .position
            .checked_add(len)
            .filter(|&end| end <= self.bytes.len())
            .ok_or(SnapshotError::Truncated)?;
        let slice = &self.bytes[self.position..end];
        self.position = end;
        Ok(slice)
    }

    pub fn u8(&mut self) -> Result<u8, SnapshotError> {
        Ok(self.bytes(1)?[0])
    }

    pub fn u64(&mut self) -> Result<u64, SnapshotError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(SnapshotError::Invalid("varint overflows 64 bits"));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(SnapshotError::Invalid("varint longer than 10 bytes"))
    }

    pub fn u32(&mut self) -> Result<u32, SnapshotError> {
        u32::try_from(self.u64()?).map_err(|_| SnapshotError::Invalid("value exceeds 32 bits"))
    }

    pub fn i64(&mut self) -> Result<i64, SnapshotError> {
        let raw = self.u64()?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    /// Reads a count and checks it against a bound, so a corrupt count can
    /// never make the decoder allocate or loop without limit.
    pub fn count(&mut self, max: u64, what: &'static str) -> Result<usize, SnapshotError> {
        let count = self.u64()?;
        if count > max {
            return Err(SnapshotError::Invalid(what));
        }
        usize::try_from(count).map_err(|_| SnapshotError::Invalid(what))
    }
}

/// A 64-bit checksum of a byte string (multiply-fold over 8-byte words).
pub(crate) fn checksum(bytes: &[u8]) -> u64 {
    const K0: u64 = 0x9e37_79b9_7f4a_7c15;
    const K1: u64 = 0xc2b2_ae3d_27d4_eb4f;
    let fold = |a: u64, b: u64| {
        let product = u128::from(a) * u128::from(b);
        (product as u64) ^ ((product >> 64) as u64)
    };
    let mut state = K0 ^ bytes.len() as u64;
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let mut array = [0u8; 8];
        array.copy_from_slice(word);
        state = fold(state ^ u64::from_le_bytes(array), K1);
    }
    let mut tail = [0u8; 8];
    tail[..words.remainder().len()].copy_from_slice(words.remainder());
    fold(state ^ u64::from_le_bytes(tail) ^ K1, K0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_the_edges() {
        let unsigned = [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX];
        let signed = [0, 1, -1, 63, -64, i64::MAX, i64::MIN];
        let mut out = Vec::new();
        let mut writer = Writer::new(&mut out);
        unsigned.iter().for_each(|&value| writer.u64(value));
        signed.iter().for_each(|&value| writer.i64(value));
        let mut reader = Reader::new(&out);
        for value in unsigned {
            assert_eq!(reader.u64().unwrap(), value);
        }
        for value in signed {
            assert_eq!(reader.i64().unwrap(), value);
        }
        assert_eq!(reader.remaining(), 0);
        assert_eq!(reader.u8(), Err(SnapshotError::Truncated));
    }

    #[test]
    fn overlong_varints_are_errors_not_panics() {
        assert!(Reader::new(&[0xff; 11]).u64().is_err());
        assert!(
            Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02])
                .u64()
                .is_err()
        );
        assert!(Reader::new(&[0x80]).u64().is_err());
    }

    #[test]
    fn checksum_sees_every_byte() {
        let base = checksum(b"matchengine snapshot");
        assert_ne!(base, checksum(b"matchengine snapshoT"));
        assert_ne!(base, checksum(b"matchengine snapshot\0"));
        assert_ne!(checksum(b""), checksum(b"\0"));
    }
}
