//! What machine code says about static data: the RIP-relative memory operands of x86-64
//! instructions (loads, stores and `LEA`s of global variables), decoded with `iced-x86`. Used to
//! find the runtime's globals in binaries without a symbol table, through functions known to
//! use them.

use iced_x86::{Decoder, DecoderOptions, Instruction, Mnemonic, OpKind, Register};

/// One instruction operand addressed relative to RIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RipRef {
    /// Address of the instruction.
    pub at: u64,
    /// The address it refers to.
    pub target: u64,
    /// The instruction takes the address (`LEA`) rather than reading or writing memory.
    pub lea: bool,
    /// Size of the memory access in bytes (0 for `LEA` and unknown sizes).
    pub size: u32,
    /// The instruction is a call or jump (a function address, not data).
    pub branch: bool,
}

/// The RIP-relative operands of the code `bytes` loaded at `addr`, in order. Undecodable bytes
/// end the walk.
pub fn rip_refs(bytes: &[u8], addr: u64) -> Vec<RipRef> {
    let mut out = Vec::new();
    each_instruction(bytes, addr, |ins| {
        for i in 0..ins.op_count() {
            if ins.op_kind(i) == OpKind::Memory && ins.memory_base() == Register::RIP {
                out.push(RipRef {
                    at: ins.ip(),
                    target: ins.memory_displacement64(),
                    lea: ins.mnemonic() == Mnemonic::Lea,
                    size: ins.memory_size().size() as u32,
                    branch: ins.is_call_near_indirect() || ins.is_jmp_near_indirect(),
                });
            }
        }
    });
    out
}

/// The targets of the direct near calls in the code `bytes` loaded at `addr`, in order.
/// Undecodable bytes end the walk.
pub fn call_targets(bytes: &[u8], addr: u64) -> Vec<u64> {
    let mut out = Vec::new();
    each_instruction(bytes, addr, |ins| {
        if ins.is_call_near() {
            out.push(ins.near_branch_target());
        }
    });
    out
}

/// Decodes the code `bytes` loaded at `addr` in order, up to the first undecodable bytes.
fn each_instruction(bytes: &[u8], addr: u64, mut f: impl FnMut(&Instruction)) {
    let mut d = Decoder::with_ip(64, bytes, addr, DecoderOptions::NONE);
    let mut ins = Instruction::default();
    while d.can_decode() {
        d.decode_out(&mut ins);
        if ins.is_invalid() {
            break;
        }
        f(&ins);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_stores_and_leas() {
        // 48 8d 05 1a 32 15 00    lea rax, [rip+0x15321a]
        // 48 8b 0d 1e 2d 13 00    mov rcx, [rip+0x132d1e]
        // 48 89 0d f0 2c 13 00    mov [rip+0x132cf0], rcx
        let code = [
            0x48, 0x8d, 0x05, 0x1a, 0x32, 0x15, 0x00, 0x48, 0x8b, 0x0d, 0x1e, 0x2d, 0x13, 0x00,
            0x48, 0x89, 0x0d, 0xf0, 0x2c, 0x13, 0x00,
        ];
        let refs = rip_refs(&code, 0x4485cf);
        assert_eq!(refs.len(), 3);
        assert_eq!(refs[0].target, 0x4485cf + 7 + 0x15321a);
        assert!(refs[0].lea);
        assert_eq!(refs[1].target, 0x4485d6 + 7 + 0x132d1e);
        assert_eq!((refs[1].lea, refs[1].size), (false, 8));
        assert_eq!(refs[2].target, 0x4485dd + 7 + 0x132cf0);
        // Garbage never panics.
        let junk: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 7) as u8)
            .collect();
        let _ = rip_refs(&junk, 0x1000);
    }
}
