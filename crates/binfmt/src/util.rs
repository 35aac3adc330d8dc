//! Bounds-checked little-endian reads on byte slices.

/// The `u32` at `off`, if in bounds.
#[inline]
pub(crate) fn u32_at(data: &[u8], off: usize) -> Option<u32> {
    let end = off.checked_add(4)?;
    let b = data.get(off..end)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// The `i32` at `off`, if in bounds.
#[inline]
pub(crate) fn i32_at(data: &[u8], off: usize) -> Option<i32> {
    u32_at(data, off).map(|v| v as i32)
}

/// The `u64` at `off`, if in bounds.
#[inline]
pub(crate) fn u64_at(data: &[u8], off: usize) -> Option<u64> {
    let end = off.checked_add(8)?;
    let b: [u8; 8] = data.get(off..end)?.try_into().ok()?;
    Some(u64::from_le_bytes(b))
}

/// The NUL-terminated string starting at `off` (without the NUL), if in bounds, terminated and
/// valid UTF-8.
#[inline]
pub(crate) fn cstr_at(data: &[u8], off: usize) -> Option<&str> {
    let rest = data.get(off..)?;
    let len = memchr::memchr(0, rest)?;
    std::str::from_utf8(rest.get(..len)?).ok()
}

/// Reads an unsigned LEB128 varint of at most 10 bytes; returns (value, bytes read).
pub(crate) fn uvarint(data: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for (i, &b) in data.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f).checked_shl(7 * i as u32)?;
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// Converts a `u64` to `usize`, failing instead of truncating.
#[inline]
pub(crate) fn usize_of(v: u64) -> Option<usize> {
    usize::try_from(v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounded() {
        let d = [1u8, 0, 0, 0, 0xff];
        assert_eq!(u32_at(&d, 0), Some(1));
        assert_eq!(u32_at(&d, 2), None);
        assert_eq!(u32_at(&d, usize::MAX), None);
        assert_eq!(u64_at(&d, 0), None);
        assert_eq!(cstr_at(b"ab\0c", 0), Some("ab"));
        assert_eq!(cstr_at(b"abc", 0), None);
        assert_eq!(cstr_at(b"abc", 9), None);
        assert_eq!(uvarint(&[0x96, 0x01]), Some((150, 2)));
        assert_eq!(uvarint(&[0x80; 11]), None);
        assert_eq!(uvarint(&[]), None);
    }
}
