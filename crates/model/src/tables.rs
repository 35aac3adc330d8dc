//! Interning tables: each distinct string, frame and stack is stored once.
//!
//! A 200k-goroutine dump repeats the same few thousand frames millions of times; interning keeps the
//! snapshot at a few bytes per goroutine and makes "identical stack" a comparison of two integers.

use hashbrown::HashTable;
use rustc_hash::FxHasher;
use std::hash::{Hash, Hasher};

/// An interned string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sym(pub u32);

/// An interned frame (function, file, line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FrameId(pub u32);

/// An interned stack (a sequence of frames, innermost first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StackId(pub u32);

/// One stack frame, as interned symbols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Frame {
    /// Fully qualified function name, e.g. `main.(*Cache).Get` or `net/http.(*conn).serve`.
    pub function: Sym,
    /// Source file path.
    pub file: Sym,
    /// Line number (0 when unknown).
    pub line: u32,
}

/// A frame with its strings resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRef<'a> {
    /// Interned id, for cheap comparison.
    pub id: FrameId,
    /// Fully qualified function name.
    pub function: &'a str,
    /// Source file path.
    pub file: &'a str,
    /// Line number (0 when unknown).
    pub line: u32,
}

/// All interned data of a snapshot.
#[derive(Default)]
pub struct Tables {
    strings: Vec<Box<str>>,
    string_index: HashTable<u32>,
    frames: Vec<Frame>,
    frame_index: HashTable<u32>,
    /// Flat storage of all stacks' frame ids; `stacks[i]` is a range into it.
    stack_data: Vec<FrameId>,
    stacks: Vec<(u32, u32)>,
    stack_index: HashTable<u32>,
}

impl std::fmt::Debug for Tables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tables")
            .field("strings", &self.strings.len())
            .field("frames", &self.frames.len())
            .field("stacks", &self.stacks.len())
            .finish()
    }
}

fn fx<T: Hash + ?Sized>(v: &T) -> u64 {
    let mut h = FxHasher::default();
    v.hash(&mut h);
    h.finish()
}

/// Hash of a string's bytes (the same for `&str` and the `&[u8]` it is made of).
#[inline]
fn fx_bytes(b: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    h.write(b);
    h.finish()
}

impl Tables {
    /// A fresh set of tables with the empty string and the empty stack pre-interned.
    pub fn new() -> Self {
        let mut t = Tables::default();
        t.intern("");
        t.intern_stack(&[]);
        t
    }

    /// Interns raw bytes (invalid UTF-8 is replaced, so hostile input never breaks the model).
    pub fn intern_bytes(&mut self, s: &[u8]) -> Sym {
        // Look the bytes up first: stored strings are valid UTF-8, so invalid bytes never match
        // one, and the common case (seen before) skips UTF-8 validation.
        let hash = fx_bytes(s);
        if let Some(i) = self.find_bytes(hash, s) {
            return Sym(i);
        }
        match std::str::from_utf8(s) {
            Ok(s) => self.insert_new(hash, s),
            Err(_) => self.intern(&String::from_utf8_lossy(s)),
        }
    }

    /// Interns a string.
    pub fn intern(&mut self, s: &str) -> Sym {
        let hash = fx_bytes(s.as_bytes());
        match self.find_bytes(hash, s.as_bytes()) {
            Some(i) => Sym(i),
            None => self.insert_new(hash, s),
        }
    }

    #[inline]
    fn find_bytes(&self, hash: u64, s: &[u8]) -> Option<u32> {
        let strings = &self.strings;
        self.string_index
            .find(hash, |&i| strings[i as usize].as_bytes() == s)
            .copied()
    }

    fn insert_new(&mut self, hash: u64, s: &str) -> Sym {
        let i = self.strings.len() as u32;
        self.strings.push(s.into());
        let strings = &self.strings;
        self.string_index
            .insert_unique(hash, i, |&j| fx_bytes(strings[j as usize].as_bytes()));
        Sym(i)
    }

    /// Looks a string up without interning it.
    pub fn lookup(&self, s: &str) -> Option<Sym> {
        self.find_bytes(fx_bytes(s.as_bytes()), s.as_bytes())
            .map(Sym)
    }

    /// The text of an interned string.
    pub fn str(&self, s: Sym) -> &str {
        self.strings.get(s.0 as usize).map(|b| &**b).unwrap_or("")
    }

    /// Interns a frame.
    pub fn intern_frame(&mut self, f: Frame) -> FrameId {
        let hash = fx(&f);
        let frames = &self.frames;
        if let Some(&i) = self.frame_index.find(hash, |&i| frames[i as usize] == f) {
            return FrameId(i);
        }
        let i = self.frames.len() as u32;
        self.frames.push(f);
        let frames = &self.frames;
        self.frame_index
            .insert_unique(hash, i, |&j| fx(&frames[j as usize]));
        FrameId(i)
    }

    /// Interns a frame given as strings.
    pub fn frame_from(&mut self, function: &str, file: &str, line: u32) -> FrameId {
        let function = self.intern(function);
        let file = self.intern(file);
        self.intern_frame(Frame {
            function,
            file,
            line,
        })
    }

    /// The interned frame.
    pub fn frame(&self, id: FrameId) -> Frame {
        self.frames.get(id.0 as usize).copied().unwrap_or(Frame {
            function: Sym(0),
            file: Sym(0),
            line: 0,
        })
    }

    /// The frame with its strings resolved.
    pub fn frame_ref(&self, id: FrameId) -> FrameRef<'_> {
        let f = self.frame(id);
        FrameRef {
            id,
            function: self.str(f.function),
            file: self.str(f.file),
            line: f.line,
        }
    }

    /// Interns a stack (innermost frame first).
    pub fn intern_stack(&mut self, frames: &[FrameId]) -> StackId {
        let hash = fx(frames);
        let (data, stacks) = (&self.stack_data, &self.stacks);
        let slice = |i: u32| {
            let (s, l) = stacks[i as usize];
            &data[s as usize..(s + l) as usize]
        };
        if let Some(&i) = self.stack_index.find(hash, |&i| slice(i) == frames) {
            return StackId(i);
        }
        let i = self.stacks.len() as u32;
        let start = self.stack_data.len() as u32;
        self.stack_data.extend_from_slice(frames);
        self.stacks.push((start, frames.len() as u32));
        let (data, stacks) = (&self.stack_data, &self.stacks);
        self.stack_index.insert_unique(hash, i, |&j| {
            let (s, l) = stacks[j as usize];
            fx(&data[s as usize..(s + l) as usize])
        });
        StackId(i)
    }

    /// The frame ids of a stack, innermost first.
    pub fn stack(&self, id: StackId) -> &[FrameId] {
        match self.stacks.get(id.0 as usize) {
            Some(&(s, l)) => &self.stack_data[s as usize..(s + l) as usize],
            None => &[],
        }
    }

    /// The frames of a stack with their strings resolved, innermost first.
    pub fn stack_frames(
        &self,
        id: StackId,
    ) -> impl ExactSizeIterator<Item = FrameRef<'_>> + Clone + '_ {
        self.stack(id).iter().map(move |&f| self.frame_ref(f))
    }

    /// Number of distinct strings, frames and stacks (for diagnostics and benchmarks).
    pub fn sizes(&self) -> (usize, usize, usize) {
        (self.strings.len(), self.frames.len(), self.stacks.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_stable_and_deduplicates() {
        let mut t = Tables::new();
        let a = t.intern("main.main");
        let b = t.intern_bytes(b"main.main");
        assert_eq!(a, b);
        assert_eq!(t.str(a), "main.main");
        let f1 = t.frame_from("main.main", "/x/main.go", 10);
        let f2 = t.frame_from("main.main", "/x/main.go", 11);
        assert_ne!(f1, f2);
        assert_eq!(t.frame_from("main.main", "/x/main.go", 10), f1);
        let s1 = t.intern_stack(&[f1, f2]);
        let s2 = t.intern_stack(&[f2, f1]);
        assert_ne!(s1, s2);
        assert_eq!(t.intern_stack(&[f1, f2]), s1);
        assert_eq!(t.stack(s1), &[f1, f2]);
        assert_eq!(t.stack_frames(s2).next().unwrap().line, 11);
        let bad = t.intern_bytes(b"\xffbad");
        assert_eq!(t.str(bad), "\u{fffd}bad");
    }
}
