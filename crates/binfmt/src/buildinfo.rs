//! The Go build info blob (`.go.buildinfo`), as read by `debug/buildinfo` and printed by
//! `go version -m`.

use crate::binary::GoBinary;
use crate::util::{u64_at, usize_of, uvarint};

/// `buildInfoMagic` of `debug/buildinfo`.
const MAGIC: &[u8] = b"\xff Go buildinf:";
/// The blob's header size; the header is 16-byte aligned.
const HEADER_SIZE: usize = 32;
/// Module info framing (`cmd/go/internal/modload.infoStart`/`infoEnd`) is 16 bytes each side.
const FRAMING: usize = 16;
/// Upper bound on a version or module-info string (hostile input).
const MAX_STRING: u64 = 64 << 20;

/// A module line of the build info (`mod` or `dep`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Module {
    /// Module path.
    pub path: String,
    /// Version, `(devel)` for the main module built from a work tree.
    pub version: String,
    /// Checksum (`h1:…`), possibly empty.
    pub sum: String,
    /// The `=>` replacement, if any.
    pub replace: Option<Box<Module>>,
}

/// What `go version -m` prints: toolchain version, main package path, modules and build settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BuildInfo {
    /// The toolchain version, e.g. `go1.27.3` (possibly with a suffix such as
    /// ` X:boringcrypto`).
    pub go_version: String,
    /// The main package path (`path` line), e.g. `example.com/cmd/server`.
    pub path: String,
    /// The main module (`mod` line).
    pub main: Option<Module>,
    /// Dependencies (`dep` lines).
    pub deps: Vec<Module>,
    /// Build settings (`build` lines) in order, e.g. `("-buildmode", "pie")`,
    /// `("CGO_ENABLED", "1")`, `("GOARCH", "amd64")`, `("-ldflags", "-w")`.
    pub settings: Vec<(String, String)>,
}

impl BuildInfo {
    /// The value of a build setting, e.g. `setting("CGO_ENABLED") == Some("0")`.
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.settings
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Decodes the module-info text (between the framing sentinels) into `self`'s fields. Lines
    /// that do not parse are skipped.
    fn parse_modinfo(&mut self, text: &str) {
        /// The module a following `=>` line replaces.
        enum Last {
            None,
            Main,
            Dep(usize),
        }
        let mut last = Last::None;
        for line in text.split('\n') {
            if let Some(p) = line.strip_prefix("path\t") {
                self.path = p.to_string();
            } else if let Some(m) = line.strip_prefix("mod\t") {
                self.main = module_line(m);
                last = Last::Main;
            } else if let Some(m) = line.strip_prefix("dep\t") {
                last = Last::None;
                if let Some(m) = module_line(m) {
                    self.deps.push(m);
                    last = Last::Dep(self.deps.len() - 1);
                }
            } else if let Some(r) = line.strip_prefix("=>\t") {
                let cols: Vec<&str> = r.split('\t').collect();
                if cols.len() != 3 {
                    continue;
                }
                let rep = Some(Box::new(Module {
                    path: cols[0].to_string(),
                    version: cols[1].to_string(),
                    sum: cols[2].to_string(),
                    replace: None,
                }));
                match std::mem::replace(&mut last, Last::None) {
                    Last::Main => {
                        if let Some(m) = self.main.as_mut() {
                            m.replace = rep;
                        }
                    }
                    Last::Dep(i) => {
                        if let Some(m) = self.deps.get_mut(i) {
                            m.replace = rep;
                        }
                    }
                    Last::None => {}
                }
            } else if let Some(kv) = line.strip_prefix("build\t") {
                if let Some(kv) = build_setting(kv) {
                    self.settings.push(kv);
                }
            }
        }
    }
}

fn module_line(s: &str) -> Option<Module> {
    let cols: Vec<&str> = s.split('\t').collect();
    if cols.len() != 2 && cols.len() != 3 {
        return None;
    }
    Some(Module {
        path: cols[0].to_string(),
        version: cols[1].to_string(),
        sum: cols.get(2).unwrap_or(&"").to_string(),
        replace: None,
    })
}

/// One `build` line: `KEY=VALUE`, either side possibly Go-quoted.
fn build_setting(kv: &str) -> Option<(String, String)> {
    let (key, raw) = match kv.as_bytes().first()? {
        b'=' => return None,
        b'"' | b'`' => {
            let (key, used) = unquote_prefix(kv)?;
            let rest = kv.get(used..)?.strip_prefix('=')?;
            (key, rest)
        }
        _ => {
            let (k, v) = kv.split_once('=')?;
            (k.to_string(), v)
        }
    };
    let value = match raw.as_bytes().first() {
        Some(b'"') | Some(b'`') => unquote_prefix(raw)?.0,
        _ => raw.to_string(),
    };
    Some((key, value))
}

/// Decodes the Go string literal at the start of `s` (`"…"` with escapes or `` `…` ``); returns
/// the value and the number of bytes of `s` it used.
fn unquote_prefix(s: &str) -> Option<(String, usize)> {
    let bytes = s.as_bytes();
    match bytes.first()? {
        b'`' => {
            let end = s.get(1..)?.find('`')? + 1;
            Some((s.get(1..end)?.to_string(), end + 1))
        }
        b'"' => {
            let mut out: Vec<u8> = Vec::new();
            let mut i = 1;
            while i < bytes.len() {
                match bytes[i] {
                    b'"' => return Some((String::from_utf8(out).ok()?, i + 1)),
                    b'\\' => {
                        let c = *bytes.get(i + 1)?;
                        i += 2;
                        match c {
                            b'n' => out.push(b'\n'),
                            b't' => out.push(b'\t'),
                            b'r' => out.push(b'\r'),
                            b'a' => out.push(7),
                            b'b' => out.push(8),
                            b'f' => out.push(12),
                            b'v' => out.push(11),
                            b'\\' | b'"' | b'\'' => out.push(c),
                            b'x' => {
                                let h = s.get(i..i + 2)?;
                                out.push(u8::from_str_radix(h, 16).ok()?);
                                i += 2;
                            }
                            b'u' | b'U' => {
                                let n = if c == b'u' { 4 } else { 8 };
                                let h = s.get(i..i + n)?;
                                let ch = char::from_u32(u32::from_str_radix(h, 16).ok()?)?;
                                let mut buf = [0u8; 4];
                                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                                i += n;
                            }
                            b'0'..=b'7' => {
                                let o = s.get(i - 1..i + 2)?;
                                out.push(u8::from_str_radix(o, 8).ok()?);
                                i += 2;
                            }
                            _ => return None,
                        }
                    }
                    b => {
                        out.push(b);
                        i += 1;
                    }
                }
            }
            None
        }
        _ => None,
    }
}

/// Parses a Go version string into `(major, minor, patch)`: `go1.27.3` → `(1, 27, 3)`, `go1.21`
/// → `(1, 21, 0)`, `go1.22rc1` → `(1, 22, 0)`, `devel go1.27-abcdef …` → `(1, 27, 0)`. Suffixes
/// such as ` X:boringcrypto` are ignored. `None` if there is no `goN.M`.
pub fn parse_go_version(v: &str) -> Option<(u32, u32, u32)> {
    let start = v.find("go")? + 2;
    let s = v.get(start..)?;
    let mut nums = [0u32; 3];
    let mut rest = s;
    for (i, n) in nums.iter_mut().enumerate() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            if i < 2 {
                return None;
            }
            break;
        }
        *n = rest.get(..digits)?.parse().ok()?;
        rest = rest.get(digits..)?;
        match rest.strip_prefix('.') {
            Some(r) if i < 2 => rest = r,
            _ => {
                if i == 0 {
                    return None;
                }
                break;
            }
        }
    }
    Some((nums[0], nums[1], nums[2]))
}

/// The offset of the first 16-byte aligned build info magic in `data` (mapped at `addr`).
fn find_magic(addr: u64, data: &[u8]) -> Option<usize> {
    let mut from = 0usize;
    loop {
        let i = from + memchr::memmem::find(data.get(from..)?, MAGIC)?;
        if addr.wrapping_add(i as u64) % 16 == 0 {
            return Some(i);
        }
        from = i + 1;
    }
}

/// Finds and decodes the build info of `bin`.
pub(crate) fn find(bin: &GoBinary<'_>) -> Option<BuildInfo> {
    // Like debug/buildinfo: the .go.buildinfo section, else the data segments (debug/buildinfo
    // looks only at the first writable one, which in a PIE of Go ≤1.25 is the RELRO segment
    // before the one holding the blob). The header is 16-byte aligned.
    let candidates: Vec<(u64, &[u8])> = match bin.section(".go.buildinfo") {
        Some((addr, data)) if !data.is_empty() => vec![(addr, data)],
        _ => {
            let segs = &bin.memory().segments;
            segs.iter()
                .filter(|s| s.writable)
                .chain(segs.iter().filter(|s| !s.writable))
                .map(|s| (s.vaddr, s.data))
                .collect()
        }
    };
    let (data, off) = candidates
        .into_iter()
        .find_map(|(addr, data)| Some((data, find_magic(addr, data)?)))?;
    let header = data.get(off..off.checked_add(HEADER_SIZE)?)?;
    let flags = header[15];
    let (version, modinfo) = if flags & 2 != 0 {
        // Go 1.18+: two varint-prefixed strings follow the header.
        let mut p = data.get(off + HEADER_SIZE..)?;
        let mut take = || -> Option<&[u8]> {
            let (n, used) = uvarint(p)?;
            if n > MAX_STRING {
                return None;
            }
            let n = usize_of(n)?;
            let s = p.get(used..used.checked_add(n)?)?;
            p = p.get(used + n..)?;
            Some(s)
        };
        (take()?, take()?)
    } else {
        // Before Go 1.18: pointers to Go string headers.
        if header[14] != 8 || flags & 1 != 0 {
            return None;
        }
        let read_string = |ptr: u64| -> Option<&[u8]> {
            let hdr = bin.read_static(ptr, 16)?;
            let (p, n) = (u64_at(hdr, 0)?, u64_at(hdr, 8)?);
            if n > MAX_STRING {
                return None;
            }
            bin.read_static(p, usize_of(n)?)
        };
        (
            read_string(u64_at(header, 16)?)?,
            read_string(u64_at(header, 24)?).unwrap_or(&[]),
        )
    };
    let go_version = std::str::from_utf8(version).ok()?;
    if go_version.is_empty() {
        return None;
    }
    let mut info = BuildInfo {
        go_version: go_version.to_string(),
        ..BuildInfo::default()
    };
    // Strip the 16-byte framing sentinels (binary, not UTF-8) before decoding the text.
    if modinfo.len() > 2 * FRAMING && modinfo.get(modinfo.len() - FRAMING - 1) == Some(&b'\n') {
        if let Some(text) = modinfo.get(FRAMING..modinfo.len() - FRAMING) {
            info.parse_modinfo(&String::from_utf8_lossy(text));
        }
    }
    Some(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(parse_go_version("go1.27.3"), Some((1, 27, 3)));
        assert_eq!(parse_go_version("go1.21"), Some((1, 21, 0)));
        assert_eq!(parse_go_version("go1.22rc1"), Some((1, 22, 0)));
        assert_eq!(
            parse_go_version("go1.24.1 X:boringcrypto"),
            Some((1, 24, 1))
        );
        assert_eq!(
            parse_go_version("devel go1.27-abcdef Mon Jan 1 2026"),
            Some((1, 27, 0))
        );
        assert_eq!(parse_go_version("go"), None);
        assert_eq!(parse_go_version("gox"), None);
        assert_eq!(parse_go_version(""), None);
        assert_eq!(parse_go_version("go1"), None);
    }

    #[test]
    fn settings() {
        assert_eq!(
            build_setting("-ldflags=\"-w -s\""),
            Some(("-ldflags".into(), "-w -s".into()))
        );
        assert_eq!(
            build_setting("CGO_ENABLED=1"),
            Some(("CGO_ENABLED".into(), "1".into()))
        );
        assert_eq!(
            build_setting("\"a=b\"=`x y`"),
            Some(("a=b".into(), "x y".into()))
        );
        assert_eq!(build_setting("=x"), None);
        assert_eq!(build_setting("\"unterminated"), None);
        assert_eq!(
            build_setting("k=\"\\x41\\u00e9\\101\""),
            Some(("k".into(), "Aé\u{41}".into()))
        );
    }

    #[test]
    fn modinfo() {
        let mut b = BuildInfo::default();
        b.parse_modinfo(
            "path\texample.com/x\nmod\texample.com/x\t(devel)\t\ndep\tgolang.org/y\tv1.0.0\th1:abc\n=>\t../y\t(devel)\t\nbuild\t-buildmode=exe\nbuild\tCGO_ENABLED=0\n",
        );
        assert_eq!(b.path, "example.com/x");
        assert_eq!(b.main.as_ref().unwrap().version, "(devel)");
        assert_eq!(b.deps.len(), 1);
        assert_eq!(b.deps[0].replace.as_ref().unwrap().path, "../y");
        assert_eq!(b.setting("-buildmode"), Some("exe"));
        assert_eq!(b.setting("CGO_ENABLED"), Some("0"));
    }
}
