//! Where the runtime's globals are used, for binaries without a symbol table: each global the
//! live reader needs, the runtime functions whose code refers to it in every supported version
//! (checked against the symbol tables of Go 1.21–1.27 builds), and the shape of the reference
//! that singles it out. The reader decodes those functions (`binfmt::code`), takes the
//! candidates this module derives, and checks each against the process's memory before use.

use gostall_binfmt::code::RipRef;

/// How a global's references look in code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A slice variable: its three words (pointer, length, capacity) are all accessed.
    Slice,
    /// A string variable: pointer and length both read.
    Str,
    /// A word-sized variable loaded or stored whole (a pointer).
    Word,
    /// A 32-bit variable loaded or stored whole.
    Int32,
    /// A struct: the code touches members of it (the base is a referenced address minus a
    /// member's offset, given by the layout of the named type).
    Struct(&'static str),
    /// An array whose address the code takes (`LEA`).
    Array,
    /// A variable of an anonymous struct type two of whose members the code touches: the base
    /// is a referenced address minus the first member's offset, with the second member's
    /// address referenced too (`debug.cgocheck` and `debug.invalidptr`, set to their defaults
    /// in `parsedebugvars`).
    VarMembers(&'static str, &'static str),
    /// A struct one of whose members the code takes the address of (`lock(&sched.lock)`):
    /// the base is an `LEA` target minus that member's offset in the named type.
    MemberLea(&'static str, &'static str),
}

/// One runtime global and where to look for it.
#[derive(Debug, Clone, Copy)]
pub struct Locator {
    /// The global's name.
    pub global: &'static str,
    /// Runtime functions that refer to it.
    pub functions: &'static [&'static str],
    /// How it is referred to.
    pub shape: Shape,
}

/// Every global the live reader can find without a symbol table.
pub const LOCATORS: &[Locator] = &[
    Locator {
        global: "runtime.allgs",
        functions: &["runtime.allgadd"],
        shape: Shape::Slice,
    },
    Locator {
        global: "runtime.allp",
        functions: &["runtime.procresize"],
        shape: Shape::Slice,
    },
    Locator {
        global: "runtime.allm",
        functions: &["runtime.mcommoninit"],
        shape: Shape::Word,
    },
    Locator {
        global: "runtime.sched",
        functions: &["runtime.mcommoninit"],
        shape: Shape::MemberLea("runtime.schedt", "lock"),
    },
    Locator {
        global: "runtime.gomaxprocs",
        functions: &["runtime.procresize"],
        shape: Shape::Int32,
    },
    Locator {
        global: "runtime.waitReasonStrings",
        functions: &["runtime.waitReason.String"],
        shape: Shape::Array,
    },
    Locator {
        global: "runtime.mheap_",
        functions: &["runtime.mallocinit"],
        shape: Shape::Array,
    },
    Locator {
        global: "runtime.semtable",
        functions: &["runtime.semacquire1", "runtime.semrelease1"],
        shape: Shape::Array,
    },
    Locator {
        global: "runtime.gcController",
        functions: &[
            "runtime.(*gcControllerState).update",
            "runtime.(*cpuStats).accumulate",
            "runtime.(*activeSweep).end",
        ],
        shape: Shape::Struct("runtime.gcControllerState"),
    },
    Locator {
        global: "runtime.handlingSig",
        functions: &["runtime.sigenable", "runtime.sigfwdgo", "runtime.initsig"],
        shape: Shape::Array,
    },
    Locator {
        global: "runtime.fwdSig",
        functions: &["runtime.sigenable", "runtime.sigfwdgo", "runtime.initsig"],
        shape: Shape::Array,
    },
    Locator {
        global: "runtime.prof",
        functions: &["runtime.(*cpuProfile).add", "runtime.setcpuprofilerate"],
        shape: Shape::VarMembers("signalLock", "hz"),
    },
    Locator {
        global: "runtime.debug",
        functions: &["runtime.parsedebugvars"],
        shape: Shape::VarMembers("cgocheck", "invalidptr"),
    },
    Locator {
        global: "runtime.buildVersion",
        functions: &["runtime.schedinit"],
        shape: Shape::Str,
    },
];

/// Entries of `runtime.semtable` (`semTabSize`), each padded to a cache line (64 bytes on
/// amd64): the same in every supported version.
pub const SEMTABLE_SIZE: u64 = 251 * 64;

/// The locator of a global.
pub fn locator(global: &str) -> Option<&'static Locator> {
    LOCATORS.iter().find(|l| l.global == global)
}

/// Candidate addresses of a global from the references of the functions that use it, most
/// likely first. `members` are the member offsets of the struct type for [`Shape::Struct`]
/// (for [`Shape::MemberLea`] the one member's offset, for [`Shape::VarMembers`] the two), and
/// `size` its size.
pub fn candidates(shape: Shape, refs: &[RipRef], members: &[u64], size: u64) -> Vec<u64> {
    let data: Vec<&RipRef> = refs.iter().filter(|r| !r.branch).collect();
    let has =
        |a: u64, pred: &dyn Fn(&RipRef) -> bool| data.iter().any(|r| r.target == a && pred(r));
    let mut out: Vec<u64> = Vec::new();
    let mut push = |a: u64| {
        if !out.contains(&a) {
            out.push(a);
        }
    };
    match shape {
        Shape::Slice => {
            for r in &data {
                let a = r.target;
                if !r.lea && has(a + 8, &|r| !r.lea) && has(a + 16, &|r| !r.lea) {
                    push(a);
                }
            }
        }
        Shape::Str => {
            for r in &data {
                let a = r.target;
                if !r.lea && r.size == 8 && has(a + 8, &|r| !r.lea) {
                    push(a);
                }
            }
        }
        Shape::Word => {
            // Loaded or stored whole, and its address also taken (atomic stores) first.
            for r in &data {
                if !r.lea && r.size == 8 && has(r.target, &|r| r.lea) {
                    push(r.target);
                }
            }
            for r in &data {
                if !r.lea && r.size == 8 {
                    push(r.target);
                }
            }
        }
        Shape::Int32 => {
            for r in &data {
                if !r.lea && r.size == 4 {
                    push(r.target);
                }
            }
        }
        Shape::Array => {
            for r in &data {
                if r.lea {
                    push(r.target);
                }
            }
        }
        Shape::VarMembers(..) => {
            // `members` holds the two members' offsets.
            if let [first, second] = members {
                for r in &data {
                    if let Some(base) = r.target.checked_sub(*first) {
                        if data.iter().any(|x| x.target == base + second) {
                            push(base);
                        }
                    }
                }
            }
        }
        Shape::MemberLea(..) => {
            for r in &data {
                if let (true, Some(&m)) = (r.lea, members.first()) {
                    if let Some(base) = r.target.checked_sub(m) {
                        push(base);
                    }
                }
            }
        }
        Shape::Struct(_) => {
            // The base that puts the most references at the start of a member.
            let mut scored: Vec<(usize, u64)> = Vec::new();
            let mut targets: Vec<u64> = data.iter().map(|r| r.target).collect();
            targets.sort_unstable();
            targets.dedup();
            for &t in &targets {
                for &m in members {
                    let Some(base) = t.checked_sub(m) else {
                        continue;
                    };
                    if scored.iter().any(|s| s.1 == base) {
                        continue;
                    }
                    let score = targets
                        .iter()
                        .filter(|&&x| x >= base && x < base + size && members.contains(&(x - base)))
                        .count();
                    scored.push((score, base));
                }
            }
            scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            // Every base, most likely first: the caller's check in memory decides.
            for (_, b) in scored.into_iter().take(4096) {
                push(b);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(target: u64, lea: bool, size: u32) -> RipRef {
        RipRef {
            at: 0,
            target,
            lea,
            size,
            branch: false,
        }
    }

    #[test]
    fn shapes() {
        let refs = [
            r(0x1000, true, 0),
            r(0x2010, false, 8),
            r(0x2008, false, 8),
            r(0x2000, false, 8),
            r(0x3000, false, 4),
        ];
        assert_eq!(candidates(Shape::Slice, &refs, &[], 0), vec![0x2000]);
        assert_eq!(candidates(Shape::Array, &refs, &[], 0), vec![0x1000]);
        assert_eq!(candidates(Shape::Int32, &refs, &[], 0), vec![0x3000]);
        // A struct whose members at 0, 8 and 16 are touched.
        let s = candidates(Shape::Struct("t"), &refs, &[0, 8, 16], 24);
        assert_eq!(s[0], 0x2000);
    }
}
