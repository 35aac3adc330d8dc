//! The memory trait every backend implements, and an in-memory fake for tests.

use std::collections::BTreeMap;

use crate::error::MemError;

/// Largest read [`Memory::read_vec`] accepts: 64 MiB. A length taken from target memory is untrusted.
pub const MAX_READ_VEC: usize = 64 << 20;

/// Bytes of a target's address space.
///
/// One required method, [`Memory::read`]; the helpers are default methods built on it. Contract of
/// `read`: either the whole buffer is filled with the target's bytes at `addr..addr + buf.len()`, or an
/// error is returned that names the address where reading failed; partially read bytes are never
/// passed off as a successful read. Implementations never write to the target.
///
/// Integers are read little-endian (x86-64 and arm64, the only targets Go on Linux has with 64-bit
/// pointers and little-endian order).
pub trait Memory {
    /// Fills `buf` with the target's bytes starting at `addr`.
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemError>;

    /// Reads many ranges at once: request `i`'s bytes land in `buf` right after request `i-1`'s
    /// (so `buf` holds the sum of the lengths), and `ok[i]` says whether it was read. The default
    /// reads one range at a time; live processes override it with vectored reads, because per-call
    /// overhead dominates when reading 200k goroutines.
    fn read_batch(&self, reqs: &[ReadReq], buf: &mut [u8], ok: &mut Vec<bool>) {
        read_each(self, reqs, buf, ok)
    }

    /// Reads one byte.
    fn read_u8(&self, addr: u64) -> Result<u8, MemError> {
        let mut b = [0u8; 1];
        self.read(addr, &mut b)?;
        Ok(b[0])
    }

    /// Reads a little-endian `u16`.
    fn read_u16(&self, addr: u64) -> Result<u16, MemError> {
        let mut b = [0u8; 2];
        self.read(addr, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }

    /// Reads a little-endian `u32`.
    fn read_u32(&self, addr: u64) -> Result<u32, MemError> {
        let mut b = [0u8; 4];
        self.read(addr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// Reads a little-endian `i32`.
    fn read_i32(&self, addr: u64) -> Result<i32, MemError> {
        let mut b = [0u8; 4];
        self.read(addr, &mut b)?;
        Ok(i32::from_le_bytes(b))
    }

    /// Reads a little-endian `u64`.
    fn read_u64(&self, addr: u64) -> Result<u64, MemError> {
        let mut b = [0u8; 8];
        self.read(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Reads a little-endian `i64`.
    fn read_i64(&self, addr: u64) -> Result<i64, MemError> {
        let mut b = [0u8; 8];
        self.read(addr, &mut b)?;
        Ok(i64::from_le_bytes(b))
    }

    /// Reads a pointer (8 bytes: only 64-bit targets are supported).
    fn read_ptr(&self, addr: u64) -> Result<u64, MemError> {
        self.read_u64(addr)
    }

    /// Reads `len` bytes into a new vector. Fails with [`MemError::TooLarge`] above
    /// [`MAX_READ_VEC`], so a corrupt length read from the target cannot exhaust our memory.
    fn read_vec(&self, addr: u64, len: usize) -> Result<Vec<u8>, MemError> {
        if len > MAX_READ_VEC {
            return Err(MemError::TooLarge {
                addr,
                len,
                max: MAX_READ_VEC,
            });
        }
        let mut v = vec![0u8; len];
        self.read(addr, &mut v)?;
        Ok(v)
    }

    /// Reads a NUL-terminated string of at most `max` bytes (the NUL not included in the result).
    ///
    /// Reads in chunks that never cross a 4 KiB page boundary beyond the one holding the NUL, so a
    /// string that ends just before an unmapped page is read correctly. Fails with
    /// [`MemError::Unterminated`] when no NUL is found within `max` bytes.
    fn read_cstr(&self, addr: u64, max: usize) -> Result<Vec<u8>, MemError> {
        const PAGE: u64 = 4096;
        let mut out = Vec::new();
        let mut chunk = 64u64;
        let mut at = addr;
        while out.len() < max {
            let to_page_end = PAGE - (at % PAGE);
            let want = chunk.min(to_page_end).min((max - out.len()) as u64) as usize;
            let mut buf = [0u8; PAGE as usize];
            let buf = &mut buf[..want];
            self.read(at, buf)?;
            if let Some(nul) = memchr::memchr(0, buf) {
                out.extend_from_slice(&buf[..nul]);
                return Ok(out);
            }
            out.extend_from_slice(buf);
            at = at
                .checked_add(want as u64)
                .ok_or(MemError::BadRange { addr, len: max })?;
            chunk = (chunk * 4).min(PAGE);
        }
        Err(MemError::Unterminated { addr, max })
    }
}

impl<M: Memory + ?Sized> Memory for &M {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        (**self).read(addr, buf)
    }

    fn read_batch(&self, reqs: &[ReadReq], buf: &mut [u8], ok: &mut Vec<bool>) {
        (**self).read_batch(reqs, buf, ok)
    }
}

impl<M: Memory + ?Sized> Memory for Box<M> {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        (**self).read(addr, buf)
    }

    fn read_batch(&self, reqs: &[ReadReq], buf: &mut [u8], ok: &mut Vec<bool>) {
        (**self).read_batch(reqs, buf, ok)
    }
}

/// [`Memory::read_batch`] one range at a time: the default, and the fallback of vectored readers.
pub(crate) fn read_each<M: Memory + ?Sized>(
    mem: &M,
    reqs: &[ReadReq],
    buf: &mut [u8],
    ok: &mut Vec<bool>,
) {
    ok.clear();
    let mut at = 0usize;
    for r in reqs {
        let end = at + r.len;
        ok.push(
            buf.get_mut(at..end)
                .is_some_and(|b| mem.read(r.addr, b).is_ok()),
        );
        at = end;
    }
}

/// One range of a [`Memory::read_batch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadReq {
    /// Target address.
    pub addr: u64,
    /// Bytes to read.
    pub len: usize,
}

/// An address space made of byte regions held in our own memory: for tests of code generic over
/// [`Memory`], and for saved bytes.
///
/// Reads spanning two adjacent regions succeed; a read touching a gap fails with
/// [`MemError::Unmapped`] naming the first missing byte.
#[derive(Debug, Default, Clone)]
pub struct FakeMemory {
    regions: BTreeMap<u64, Vec<u8>>,
}

impl FakeMemory {
    /// An empty address space.
    pub fn new() -> Self {
        Self::default()
    }

    /// Maps `bytes` at `base`. Overlapping an existing region is a caller bug and panics.
    pub fn add(&mut self, base: u64, bytes: impl Into<Vec<u8>>) -> &mut Self {
        let bytes = bytes.into();
        let end = base
            .checked_add(bytes.len() as u64)
            .expect("region wraps the address space");
        if let Some((b, r)) = self.regions.range(..end).next_back() {
            assert!(
                b + r.len() as u64 <= base || r.is_empty() || bytes.is_empty(),
                "region {base:#x}..{end:#x} overlaps region at {b:#x}"
            );
        }
        self.regions.insert(base, bytes);
        self
    }
}

impl Memory for FakeMemory {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemError> {
        let len = buf.len();
        addr.checked_add(len as u64)
            .ok_or(MemError::BadRange { addr, len })?;
        let mut done = 0usize;
        while done < len {
            let at = addr + done as u64;
            let unmapped = MemError::Unmapped {
                addr: at,
                start: addr,
                len,
            };
            let (base, bytes) = self.regions.range(..=at).next_back().ok_or(unmapped)?;
            let off = (at - base) as usize;
            if off >= bytes.len() {
                return Err(unmapped);
            }
            let n = (bytes.len() - off).min(len - done);
            buf[done..done + n].copy_from_slice(&bytes[off..off + n]);
            done += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake() -> FakeMemory {
        let mut m = FakeMemory::new();
        m.add(0x1000, (0..=255u8).collect::<Vec<_>>())
            .add(0x1100, {
                // Real mappings are whole pages: pad to the page end.
                let mut v = b"hello\0world".to_vec();
                v.resize(0xf00, 0);
                v
            })
            .add(0x2ffc, b"abc\0".to_vec())
            .add(0x5000, vec![b'x'; 100]);
        m
    }

    #[test]
    fn integers_are_little_endian() {
        let m = fake();
        assert_eq!(m.read_u8(0x1001).unwrap(), 1);
        assert_eq!(m.read_u16(0x1001).unwrap(), 0x0201);
        assert_eq!(m.read_u32(0x1000).unwrap(), 0x0302_0100);
        assert_eq!(m.read_u64(0x1000).unwrap(), 0x0706_0504_0302_0100);
        assert_eq!(m.read_ptr(0x1008).unwrap(), 0x0f0e_0d0c_0b0a_0908);
        assert_eq!(
            m.read_i64(0x10f8).unwrap(),
            i64::from_le_bytes([248, 249, 250, 251, 252, 253, 254, 255])
        );
    }

    #[test]
    fn reads_across_adjacent_regions() {
        let m = fake();
        let v = m.read_vec(0x10fe, 4).unwrap();
        assert_eq!(v, [254, 255, b'h', b'e']);
    }

    #[test]
    fn gap_reports_first_missing_byte() {
        let m = fake();
        let e = m.read_vec(0x1ffc, 8).unwrap_err();
        assert_eq!(
            e,
            MemError::Unmapped {
                addr: 0x2000,
                start: 0x1ffc,
                len: 8
            }
        );
        assert!(matches!(
            m.read_u8(0x10),
            Err(MemError::Unmapped { addr: 0x10, .. })
        ));
    }

    #[test]
    fn cstr_is_bounded_and_stops_at_page_end() {
        let m = fake();
        assert_eq!(m.read_cstr(0x1100, 100).unwrap(), b"hello");
        // Ends right before an unmapped page: must not read past the NUL's page.
        assert_eq!(m.read_cstr(0x2ffc, 4096).unwrap(), b"abc");
        assert_eq!(
            m.read_cstr(0x5000, 50).unwrap_err(),
            MemError::Unterminated {
                addr: 0x5000,
                max: 50
            }
        );
        assert!(matches!(
            m.read_cstr(0x5000, 1000),
            Err(MemError::Unmapped { addr: 0x5064, .. })
        ));
    }

    #[test]
    fn read_vec_is_bounded() {
        let m = fake();
        assert!(matches!(
            m.read_vec(0x1000, MAX_READ_VEC + 1),
            Err(MemError::TooLarge { .. })
        ));
        assert!(matches!(
            m.read_vec(u64::MAX - 1, 4),
            Err(MemError::BadRange { .. })
        ));
    }
}
