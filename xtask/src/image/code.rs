//! x86 code that touches floating-point or SIMD state: 32-bit Windows does not save a thread's
//! x87/MMX/SSE state when it enters the kernel, so kernel code may only use it between
//! `KeSaveExtendedProcessorState` / `KeSaveFloatingPointState` and their restore calls. The
//! driver brackets none, so its x86 images must contain no such instruction at all.
//!
//! [`scan_x86`] decodes every executable section linearly with `iced-x86`. That is exact only when
//! the sections hold code and nothing else: the x86 build disables jump tables
//! (`-C jump-tables=no`), which LLVM would otherwise place in `.text` for i686 COFF, where their
//! bytes decode as x87 instructions; constants go to `.rdata`. Bytes that decode as no instruction
//! at all are counted (and reported) so that data in a code section does not go unnoticed.

use iced_x86::{Code, CpuidFeature, Decoder, DecoderOptions, Instruction, InstructionInfoFactory, Mnemonic, Register};

/// What a decode of the executable sections found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FloatingPointScan {
    /// Instructions decoded.
    pub instructions: u64,
    /// Instructions that touch x87, MMX, SSE, AVX or their control and state registers.
    pub floating_point: u64,
    /// The first of them: its RVA and iced's name of its encoding (e.g. `Movaps_xmm_xmmm128`).
    pub first: Option<(u32, String)>,
    /// Bytes that decode as no instruction (data in a code section).
    pub undecodable: u64,
}

/// The CPUID features whose instructions use the x87 or MMX register file or save and restore
/// the extended state, whatever registers they name.
const STATE_FEATURES: &[CpuidFeature] = &[
    CpuidFeature::FPU,
    CpuidFeature::FPU287,
    CpuidFeature::FPU287XL_ONLY,
    CpuidFeature::FPU387,
    CpuidFeature::FPU387SL_ONLY,
    CpuidFeature::CYRIX_FPU,
    CpuidFeature::MMX,
    CpuidFeature::D3NOW,
    CpuidFeature::D3NOWEXT,
    CpuidFeature::FXSR,
    CpuidFeature::XSAVE,
    CpuidFeature::XSAVEC,
    CpuidFeature::XSAVEOPT,
    CpuidFeature::XSAVES,
];

/// True when `register` belongs to the x87, MMX, SSE, AVX or AVX-512 register files.
fn is_state_register(register: Register) -> bool {
    register.is_st() || register.is_mm() || register.is_vector_register() || register.is_k() || register.is_tmm()
}

/// True when `instruction` reads or writes floating-point or SIMD state: a register of those
/// files (explicit or implicit), an x87/MMX/state-save instruction, `WAIT`, or the MXCSR loads
/// and stores (which name no register). Fences, prefetches and `PAUSE`, CPUID-listed as SSE or
/// SSE2 but touching none of that state, are not counted.
pub fn touches_floating_point(instruction: &Instruction, info: &mut InstructionInfoFactory) -> bool {
    if matches!(
        instruction.mnemonic(),
        Mnemonic::Ldmxcsr | Mnemonic::Stmxcsr | Mnemonic::Vldmxcsr | Mnemonic::Vstmxcsr | Mnemonic::Wait
    ) {
        return true;
    }
    if instruction.cpuid_features().iter().any(|feature| STATE_FEATURES.contains(feature)) {
        return true;
    }
    info.info(instruction).used_registers().iter().any(|used| is_state_register(used.register()))
}

/// Decodes `code` (32-bit x86 at `rva`) linearly and adds what it finds to `scan`.
pub fn scan_code(code: &[u8], rva: u32, scan: &mut FloatingPointScan) {
    let mut decoder = Decoder::with_ip(32, code, u64::from(rva), DecoderOptions::NONE);
    let mut info = InstructionInfoFactory::new();
    let mut instruction = Instruction::default();
    while decoder.can_decode() {
        decoder.decode_out(&mut instruction);
        if instruction.code() == Code::INVALID {
            scan.undecodable += instruction.len() as u64;
            continue;
        }
        scan.instructions += 1;
        if touches_floating_point(&instruction, &mut info) {
            scan.floating_point += 1;
            if scan.first.is_none() {
                scan.first = Some((instruction.ip32(), format!("{:?}", instruction.code())));
            }
        }
    }
}

/// Decodes every executable section of an x86 image: `sections` yields each one's RVA and raw
/// bytes (up to its virtual size).
pub fn scan_x86<'a>(sections: impl IntoIterator<Item = (u32, &'a [u8])>) -> FloatingPointScan {
    let mut scan = FloatingPointScan { instructions: 0, floating_point: 0, first: None, undecodable: 0 };
    for (rva, code) in sections {
        scan_code(code, rva, &mut scan);
    }
    scan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(code: &[u8]) -> FloatingPointScan {
        scan_x86([(0x1000, code)])
    }

    #[test]
    fn integer_code_and_fences_are_clean() {
        // push ebp; mov ebp,esp; lock or dword [esp],0; mfence; lfence; pause; cmpxchg8b [esi];
        // pop ebp; ret; int3
        let code = [
            0x55, 0x89, 0xE5, 0xF0, 0x83, 0x0C, 0x24, 0x00, 0x0F, 0xAE, 0xF0, 0x0F, 0xAE, 0xE8, 0xF3, 0x90, 0x0F, 0xC7,
            0x0E, 0x5D, 0xC3, 0xCC,
        ];
        let found = scan(&code);
        assert_eq!(found, FloatingPointScan { instructions: 10, floating_point: 0, first: None, undecodable: 0 });
    }

    #[test]
    fn sse_x87_mmx_and_mxcsr_are_found() {
        let cases: &[(&[u8], &str)] = &[
            (&[0x0F, 0x28, 0xC1], "movaps xmm0,xmm1"),
            (&[0xF3, 0x0F, 0x7E, 0x06], "movq xmm0,[esi]"),
            (&[0x66, 0x0F, 0xEF, 0xC0], "pxor xmm0,xmm0"),
            (&[0xDF, 0x2C, 0x24], "fild qword [esp]"),
            (&[0xD9, 0xE8], "fld1 (implicit st0)"),
            (&[0x0F, 0x77], "emms"),
            (&[0x0F, 0xAE, 0x14, 0x24], "ldmxcsr [esp]"),
            (&[0x0F, 0xAE, 0x04, 0x24], "fxsave [esp]"),
            (&[0xC5, 0xF8, 0x77], "vzeroupper"),
        ];
        for (bytes, name) in cases {
            let found = scan(bytes);
            assert_eq!((found.instructions, found.floating_point), (1, 1), "{name}");
            assert_eq!(found.first.as_ref().map(|(rva, _)| *rva), Some(0x1000), "{name}");
        }
    }

    #[test]
    fn the_first_offender_is_named_with_its_address() {
        // xor eax,eax; ret; int3; movaps xmm0,xmm1; fild qword [esp]
        let found = scan(&[0x31, 0xC0, 0xC3, 0xCC, 0x0F, 0x28, 0xC1, 0xDF, 0x2C, 0x24]);
        assert_eq!(found.floating_point, 2);
        assert_eq!(found.first, Some((0x1004, "Movaps_xmm_xmmm128".to_string())));
    }
}
