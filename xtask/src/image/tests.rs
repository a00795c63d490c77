//! Tests of the image verifier on fixtures from [`super::fixture`]: the proper driver passes,
//! each defect is named, and no input (truncated, flipped, random) makes the parser panic.

use super::checksum::pe_checksum;
use super::directories::{ImportedFunction, Relocations};
use super::fixture::{fix_checksum, put16, put32, Entry, Fixture, Thunk, CHECKSUM_AT, E_LFANEW, OPTIONAL_AT};
use super::pe::Machine;
use super::policy::{is_stack_probe, DllFlag};
use super::read::ParseError;
use super::{inspect, verify_file, Arch, Policy, Problem};
use std::path::PathBuf;

/// File offset of section header `index` in a PE32+ fixture.
fn section_header(index: usize) -> usize {
    OPTIONAL_AT + 240 + 40 * index
}

/// File offset of data directory `index` in a PE32+ fixture.
fn directory_entry(index: usize) -> usize {
    OPTIONAL_AT + 112 + 8 * index
}

fn problems(image: &[u8], arch: Option<Arch>) -> Vec<Problem> {
    inspect(image).expect("the fixture parses").problems(&Policy::for_arch(arch))
}

/// The one problem of `image` judged for x64; fails when there are none or several.
fn only_problem(image: &[u8]) -> Problem {
    let mut found = problems(image, Some(Arch::X64));
    assert_eq!(found.len(), 1, "expected exactly one problem, got {found:#?}");
    found.remove(0)
}

/// Parses, judges and renders `bytes`, exercising every code path that could panic.
fn exercise(bytes: &[u8]) -> Option<Vec<Problem>> {
    match inspect(bytes) {
        Ok(report) => {
            assert!(!report.to_string().is_empty());
            let found = report.problems(&Policy::for_arch(None));
            for problem in &found {
                assert!(!problem.to_string().is_empty());
            }
            Some(found)
        }
        Err(error) => {
            assert!(!error.to_string().is_empty());
            None
        }
    }
}

/// A fixture with every optional structure, so mutations reach every reader.
fn rich() -> Fixture {
    Fixture {
        export_driver_entry: Some(0),
        symbol_driver_entry: Some(0),
        pdb: Some(r"C:\build\wanlayer.pdb"),
        signature: true,
        init_section: true,
        ..Fixture::driver()
    }
}

/// A deterministic xorshift generator for the mutation tests.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}

#[test]
fn valid_x64_driver_passes() {
    let image = Fixture::driver().build();
    assert_eq!(problems(&image, Some(Arch::X64)), []);
    assert_eq!(problems(&image, None), []);
}

#[test]
fn valid_arm64_driver_passes() {
    let image = Fixture::arm64().build();
    assert_eq!(problems(&image, Some(Arch::Arm64)), []);
    assert_eq!(problems(&image, None), []);
}

#[test]
fn report_reads_back_the_fixture() {
    let image = Fixture::driver().build();
    let report = inspect(&image).unwrap();
    assert_eq!(report.machine, Machine::Amd64);
    assert!(report.is_pe32_plus());
    assert_eq!(report.file_len, image.len());
    let names: Vec<&str> = report.sections.iter().map(|section| section.name.as_str()).collect();
    assert_eq!(names, [".text", ".rdata", ".data", ".reloc"]);
    assert_eq!(report.section_of(report.entry_point).map(|section| section.name.as_str()), Some(".text"));
    let imports = report.imports.as_ref().unwrap();
    assert_eq!(imports.len(), 2);
    assert_eq!(imports[0].name, "ntoskrnl.exe");
    assert_eq!(imports[0].functions, [ImportedFunction::Name { hint: 0, name: "memcpy".into() }]);
    assert_eq!(imports[1].name, "ndis.sys");
    assert_eq!(imports[1].functions, [ImportedFunction::Name { hint: 0, name: "NdisFSendNetBufferLists".into() }]);
    assert_eq!(report.relocations, Ok(Some(Relocations { blocks: 1, fixups: 1 })));
    assert_eq!(report.checksum, report.computed_checksum);
    assert_eq!(report.exports, Ok(None));
    assert_eq!(report.debug, Ok(Vec::new()));
    assert_eq!(report.certificate, Ok(None));
    assert_eq!(report.driver_entry_symbol, Ok(None));
    let text = report.to_string();
    for expected in ["AMD64 (0x8664)", "NATIVE (1)", "FORCE_INTEGRITY", "ntoskrnl.exe", "    memcpy (hint 0)", ".reloc"]
    {
        assert!(text.contains(expected), "report lacks {expected:?}:\n{text}");
    }
}

#[test]
fn checksum_known_answers() {
    assert_eq!(pe_checksum(&[], 0), 0);
    // 0x0201 + 0x0403, the field at 4..8 counts as zero, plus 8 bytes.
    assert_eq!(pe_checksum(&[1, 2, 3, 4, 0xAA, 0xBB, 0xCC, 0xDD], 4), 0x060C);
    // 0xFFFF + 0xFFFF folds to 0xFFFF; + 2 folds to 2; plus 6 bytes.
    assert_eq!(pe_checksum(&[0xFF, 0xFF, 0xFF, 0xFF, 2, 0], 100), 8);
    // An odd last byte is the low half of a word.
    assert_eq!(pe_checksum(&[1, 2, 3], 100), 0x0207);
    // A field straddling the end of the file is zero as far as it goes.
    assert_eq!(pe_checksum(&[1, 2, 3], 2), 0x0204);
}

#[test]
fn checksum_agrees_with_the_fixtures_independent_sum() {
    for fixture in [Fixture::driver(), Fixture::arm64(), rich(), Fixture { pe32: true, ..Fixture::driver() }] {
        let mut image = fixture.build();
        let stored = u32::from_le_bytes(image[CHECKSUM_AT..CHECKSUM_AT + 4].try_into().unwrap());
        assert_eq!(pe_checksum(&image, CHECKSUM_AT), stored);
        image.push(0x7F);
        fix_checksum(&mut image);
        let stored = u32::from_le_bytes(image[CHECKSUM_AT..CHECKSUM_AT + 4].try_into().unwrap());
        assert_eq!(pe_checksum(&image, CHECKSUM_AT), stored, "odd length");
    }
}

#[test]
fn wrong_machine_is_named() {
    let problem = only_problem(&Fixture::arm64().build());
    assert_eq!(problem, Problem::WrongMachine { found: Machine::Arm64, expected: Arch::X64 });
    assert!(problem.to_string().contains("ARM64 (0xaa64)"), "{problem}");
    let x64 = Fixture::driver().build();
    assert_eq!(
        problems(&x64, Some(Arch::Arm64)),
        [Problem::WrongMachine { found: Machine::Amd64, expected: Arch::Arm64 }]
    );
}

#[test]
fn unsupported_machine_without_arch_is_named() {
    let image = Fixture { machine: 0x01C4, ..Fixture::driver() }.build();
    assert_eq!(problems(&image, None), [Problem::UnsupportedMachine(Machine::ArmNt)]);
    let image = Fixture { machine: 0x1234, ..Fixture::driver() }.build();
    assert_eq!(problems(&image, None), [Problem::UnsupportedMachine(Machine::Unknown(0x1234))]);
}

#[test]
fn pe32_is_read_and_rejected() {
    let image = Fixture { pe32: true, ..Fixture::driver() }.build();
    let report = inspect(&image).unwrap();
    let imports = report.imports.as_ref().unwrap();
    assert_eq!(imports[1].functions, [ImportedFunction::Name { hint: 0, name: "NdisFSendNetBufferLists".into() }]);
    assert_eq!(report.image_base, 0x1_0000);
    assert_eq!(report.problems(&Policy::for_arch(Some(Arch::X64))), [Problem::NotPe32Plus { magic: 0x10B }]);
}

#[test]
fn wrong_subsystem_is_named() {
    let problem = only_problem(&Fixture { subsystem: 3, ..Fixture::driver() }.build());
    assert_eq!(problem, Problem::WrongSubsystem(3));
    assert!(problem.to_string().contains("WINDOWS_CUI"));
}

#[test]
fn missing_force_integrity_is_named() {
    let problem = only_problem(&Fixture { dll_characteristics: 0x01E0 & !0x80, ..Fixture::driver() }.build());
    assert_eq!(problem, Problem::MissingDllFlag(DllFlag::ForceIntegrity));
    assert!(problem.to_string().contains("FORCE_INTEGRITY (0x0080): link with /INTEGRITYCHECK"));
}

#[test]
fn missing_nx_compat_is_named() {
    let problem = only_problem(&Fixture { dll_characteristics: 0x01E0 & !0x100, ..Fixture::driver() }.build());
    assert_eq!(problem, Problem::MissingDllFlag(DllFlag::NxCompat));
    assert!(problem.to_string().contains("NX_COMPAT"));
}

#[test]
fn missing_dynamic_base_is_named() {
    let problem = only_problem(&Fixture { dll_characteristics: 0x01E0 & !0x40, ..Fixture::driver() }.build());
    assert_eq!(problem, Problem::MissingDllFlag(DllFlag::DynamicBase));
    assert!(problem.to_string().contains("DYNAMIC_BASE"));
}

#[test]
fn zero_checksum_is_named() {
    let problem = only_problem(&Fixture { checksum: Some(0), ..Fixture::driver() }.build());
    assert_eq!(problem, Problem::ZeroChecksum);
    assert!(problem.to_string().contains("/RELEASE"));
}

#[test]
fn wrong_checksum_is_named() {
    let correct = inspect(&Fixture::driver().build()).unwrap().checksum;
    let problem = only_problem(&Fixture { checksum: Some(correct ^ 0x10), ..Fixture::driver() }.build());
    assert_eq!(problem, Problem::WrongChecksum { stored: correct ^ 0x10, computed: correct });
}

#[test]
fn section_alignment_0x200_is_named() {
    let image = Fixture { section_alignment: 0x200, ..Fixture::driver() }.build();
    let problem = only_problem(&image);
    assert_eq!(problem, Problem::SectionAlignment(0x200));
    assert!(problem.to_string().contains("HVCI needs 0x1000"));
}

#[test]
fn insane_file_alignment_is_named() {
    for alignment in [0x100, 0x300, 0x2000, 0] {
        let mut image = Fixture::driver().build();
        put32(&mut image, OPTIONAL_AT + 36, alignment);
        fix_checksum(&mut image);
        assert_eq!(only_problem(&image), Problem::FileAlignment(alignment));
    }
}

#[test]
fn misaligned_section_is_named() {
    let mut image = Fixture::driver().build();
    let data = section_header(2);
    let rva = u32::from_le_bytes(image[data + 12..data + 16].try_into().unwrap());
    put32(&mut image, data + 12, rva + 0x10);
    fix_checksum(&mut image);
    assert_eq!(only_problem(&image), Problem::SectionMisaligned { section: ".data".into(), rva: rva + 0x10 });
}

#[test]
fn writable_executable_section_is_named() {
    let image = Fixture { text_characteristics: super::fixture::TEXT | 0x8000_0000, ..Fixture::driver() }.build();
    let problem = only_problem(&image);
    assert_eq!(problem, Problem::WritableAndExecutable { section: ".text".into(), characteristics: 0xE000_0020 });
    assert!(problem.to_string().contains("W+X"));
}

#[test]
fn import_from_kernel32_is_named() {
    let image = Fixture::driver().import("kernel32.dll", Thunk::Name("Sleep")).build();
    let problem = only_problem(&image);
    assert_eq!(problem, Problem::ForbiddenDll { dll: "kernel32.dll".into(), functions: 1, allowed: "ndis.sys, ntoskrnl.exe, hal.dll".into() });
    assert!(problem.to_string().contains("kernel32.dll"));
}

#[test]
fn import_off_the_allowlist_is_named() {
    let image = Fixture::driver().import("ndis.sys", Thunk::Name("NdisAllocateNetBufferMdlAndData")).build();
    let problem = only_problem(&image);
    assert_eq!(
        problem,
        Problem::ImportNotAllowed { dll: "ndis.sys".into(), function: "NdisAllocateNetBufferMdlAndData".into() }
    );
    assert!(problem.to_string().contains("ndis.sys!NdisAllocateNetBufferMdlAndData"));
}

#[test]
fn chkstk_import_is_named() {
    let image = Fixture::driver().import("ntoskrnl.exe", Thunk::Name("__chkstk")).build();
    let problem = only_problem(&image);
    assert_eq!(problem, Problem::StackProbeImported { dll: "ntoskrnl.exe".into(), function: "__chkstk".into() });
    assert!(problem.to_string().contains("4 KiB"));
}

#[test]
fn stack_probes_are_recognised_by_any_name_and_from_any_dll() {
    for name in ["__chkstk", "__chkstk_arm64", "___chkstk_ms", "_alloca_probe", "_alloca_probe_16"] {
        assert!(is_stack_probe(name), "{name}");
    }
    for name in ["memcpy", "KeBugCheckEx", "chk_stack"] {
        assert!(!is_stack_probe(name), "{name}");
    }
    let image = Fixture::arm64().import("libcmt.dll", Thunk::Name("__chkstk_arm64")).build();
    assert_eq!(
        problems(&image, Some(Arch::Arm64)),
        [
            Problem::ForbiddenDll { dll: "libcmt.dll".into(), functions: 1, allowed: "ndis.sys, ntoskrnl.exe, hal.dll".into() },
            Problem::StackProbeImported { dll: "libcmt.dll".into(), function: "__chkstk_arm64".into() },
        ]
    );
}

#[test]
fn ordinal_import_is_named() {
    let image = Fixture::driver().import("ntoskrnl.exe", Thunk::Ordinal(12)).build();
    let problem = only_problem(&image);
    assert_eq!(problem, Problem::ImportByOrdinal { dll: "ntoskrnl.exe".into(), ordinal: 12 });
    let report = inspect(&image).unwrap().to_string();
    assert!(report.contains("#12 (by ordinal)"), "{report}");
}

#[test]
fn missing_relocations_are_named() {
    let problem = only_problem(&Fixture { relocations: false, ..Fixture::driver() }.build());
    assert_eq!(problem, Problem::NoRelocations);
    let problem = only_problem(&Fixture { coff_characteristics: 0x0023, ..Fixture::driver() }.build());
    assert_eq!(problem, Problem::RelocationsStripped);
}

#[test]
fn non_executable_image_flag_is_named() {
    assert_eq!(
        only_problem(&Fixture { coff_characteristics: 0x0020, ..Fixture::driver() }.build()),
        Problem::NotExecutableImage
    );
}

#[test]
fn zero_entry_point_is_named() {
    assert_eq!(only_problem(&Fixture { entry: Entry::Rva(0), ..Fixture::driver() }.build()), Problem::NoEntryPoint);
}

#[test]
fn entry_point_outside_executable_sections_is_named() {
    let image = Fixture { entry: Entry::Data(0), ..Fixture::driver() }.build();
    let Problem::EntryPointNotExecutable { section, .. } = only_problem(&image) else { panic!("wrong problem") };
    assert_eq!(section.as_deref(), Some(".data"));
    let image = Fixture { entry: Entry::Rva(0x10_0000), ..Fixture::driver() }.build();
    assert_eq!(only_problem(&image), Problem::EntryPointNotExecutable { rva: 0x10_0000, section: None });
    // Past .text's VirtualSize (0x40) but within its file alignment padding: not code.
    let image = Fixture { entry: Entry::Text(0x80), ..Fixture::driver() }.build();
    assert_eq!(only_problem(&image), Problem::EntryPointNotExecutable { rva: 0x1080, section: None });
}

#[test]
fn exported_driver_entry_must_be_the_entry_point() {
    let image = Fixture { export_driver_entry: Some(0), ..Fixture::driver() }.build();
    assert_eq!(problems(&image, Some(Arch::X64)), []);
    assert!(inspect(&image).unwrap().to_string().contains("DriverEntry      exported at 0x1000"));
    let image = Fixture { export_driver_entry: Some(0x10), ..Fixture::driver() }.build();
    assert_eq!(
        only_problem(&image),
        Problem::EntryPointNotDriverEntry { entry_point: 0x1000, driver_entry: 0x1010, source: "export" }
    );
}

#[test]
fn coff_symbol_driver_entry_must_be_the_entry_point() {
    let image = Fixture { symbol_driver_entry: Some(0), ..Fixture::driver() }.build();
    assert_eq!(problems(&image, Some(Arch::X64)), []);
    assert_eq!(inspect(&image).unwrap().driver_entry_symbol, Ok(Some(0x1000)));
    let image = Fixture { symbol_driver_entry: Some(0x20), ..Fixture::driver() }.build();
    assert_eq!(
        only_problem(&image),
        Problem::EntryPointNotDriverEntry { entry_point: 0x1000, driver_entry: 0x1020, source: "COFF symbol" }
    );
}

#[test]
fn tls_directory_is_named() {
    assert_eq!(only_problem(&Fixture { tls: true, ..Fixture::driver() }.build()), Problem::TlsDirectory);
}

#[test]
fn delay_imports_are_named() {
    assert_eq!(only_problem(&Fixture { delay_imports: true, ..Fixture::driver() }.build()), Problem::DelayImports);
}

#[test]
fn hal_irql_imports_are_allowed_on_x64_only() {
    let x64 = Fixture::driver().import("hal.dll", Thunk::Name("KfRaiseIrql")).build();
    assert_eq!(problems(&x64, Some(Arch::X64)), []);
    assert_eq!(problems(&x64, None), []);
    let arm64 = Fixture::arm64().import("hal.dll", Thunk::Name("KfRaiseIrql")).build();
    assert_eq!(
        problems(&arm64, None),
        [Problem::ImportNotAllowed { dll: "hal.dll".into(), function: "KfRaiseIrql".into() }]
    );
}

#[test]
fn dll_names_match_case_insensitively_function_names_exactly() {
    let image = Fixture {
        imports: vec![("NTOSKRNL.EXE", vec![Thunk::Name("memcpy")]), ("Ndis.Sys", vec![Thunk::Name("NdisFreeMemory")])],
        ..Fixture::driver()
    }
    .build();
    assert_eq!(problems(&image, Some(Arch::X64)), []);
    let image = Fixture::driver().import("ntoskrnl.exe", Thunk::Name("MEMCPY")).build();
    assert_eq!(
        only_problem(&image),
        Problem::ImportNotAllowed { dll: "ntoskrnl.exe".into(), function: "MEMCPY".into() }
    );
}

#[test]
fn allowlist_has_no_duplicates_and_no_stack_probe() {
    for dll in super::policy::ALLOWED_IMPORTS {
        for (index, entry) in dll.functions.iter().enumerate() {
            assert!(!is_stack_probe(entry.name), "{}", entry.name);
            assert!(!dll.functions[..index].contains(entry), "{} listed twice in {}", entry.name, dll.dll);
        }
    }
}

#[test]
fn the_vendor_policy_allows_ntoskrnl_only_and_only_its_list() {
    for dll in super::policy::VENDOR_ALLOWED_IMPORTS {
        assert_eq!(dll.dll, "ntoskrnl.exe");
        for (index, entry) in dll.functions.iter().enumerate() {
            assert!(!is_stack_probe(entry.name), "{}", entry.name);
            assert!(!dll.functions[..index].contains(entry), "{} listed twice", entry.name);
        }
    }
    let vendor = |fixture: Fixture| inspect(&fixture.build()).expect("the fixture parses").problems(&Policy::vendor(Some(Arch::X64)));
    let clean = Fixture {
        imports: vec![("ntoskrnl.exe", vec![Thunk::Name("IoGetDeviceObjectPointer"), Thunk::Name("KeSetTimerEx")])],
        ..Fixture::driver()
    };
    assert_eq!(vendor(clean.clone()), []);
    // The wanlayer driver's fixture imports from ndis.sys: a vendor driver may not.
    assert_eq!(
        vendor(Fixture::driver()),
        [Problem::ForbiddenDll { dll: "ndis.sys".into(), functions: 1, allowed: "ntoskrnl.exe".into() }]
    );
    // Allowed for wanlayer.sys, not for a vendor.
    let rundown = clean.import("ntoskrnl.exe", Thunk::Name("ExAcquireRundownProtection"));
    assert_eq!(
        vendor(rundown),
        [Problem::ImportNotAllowed { dll: "ntoskrnl.exe".into(), function: "ExAcquireRundownProtection".into() }]
    );
}

#[test]
fn report_shows_debug_signature_exports_and_discardable_sections() {
    let image = rich().build();
    assert_eq!(problems(&image, Some(Arch::X64)), []);
    let text = inspect(&image).unwrap().to_string();
    for expected in [
        r"CodeView RSDS: PDB C:\build\wanlayer.pdb  GUID {12345678-9ABC-DEF0-0123-456789ABCDEF}  age 1",
        "REPRO (type 16)",
        "Authenticode: present, 0x18 bytes",
        "(PKCS_SIGNED_DATA)",
        "exports of wanlayer.sys (1 named)",
        "  DriverEntry at 0x1000",
        "note: discarded once the driver is loaded: INIT, .reloc",
        "COFF symbols: 2",
        "R-X code discardable",
    ] {
        assert!(text.contains(expected), "report lacks {expected:?}:\n{text}");
    }
    let unsigned = inspect(&Fixture::driver().build()).unwrap().to_string();
    assert!(unsigned.contains("Authenticode: none"), "{unsigned}");
    assert!(unsigned.contains("debug directory: none"), "{unsigned}");
}

#[test]
fn every_problem_is_collected() {
    let image = Fixture {
        subsystem: 2,
        dll_characteristics: 0,
        checksum: Some(0),
        section_alignment: 0x200,
        text_characteristics: super::fixture::TEXT | 0x8000_0000,
        relocations: false,
        tls: true,
        ..Fixture::arm64()
    }
    .import("kernel32.dll", Thunk::Name("Sleep"))
    .import("ntoskrnl.exe", Thunk::Name("__chkstk"))
    .import("ntoskrnl.exe", Thunk::Ordinal(7))
    .build();
    let found = problems(&image, Some(Arch::X64));
    assert_eq!(found.len(), 13, "{found:#?}");
    let path = PathBuf::from("broken.sys");
    let verdict =
        super::Verdict { file: path, report: inspect(&image).unwrap(), arch: Some(Arch::X64), problems: found };
    let message = verdict.into_result().unwrap_err();
    assert!(message.starts_with("verify-image: 13 problem(s) in broken.sys\n"), "{message}");
    assert_eq!(message.lines().count(), 14);
}

#[test]
fn truncation_at_every_64_bytes_is_an_error_or_a_problem() {
    let image = rich().build();
    for len in (0..image.len()).step_by(64) {
        if let Some(found) = exercise(&image[..len]) {
            assert!(!found.is_empty(), "a {len}-byte prefix passed");
        }
    }
}

#[test]
fn flipped_bytes_never_panic() {
    let image = rich().build();
    for at in 0..image.len() {
        for mask in [0xFF, 0x80, 0x01, 0x10] {
            let mut mutated = image.clone();
            mutated[at] ^= mask;
            exercise(&mutated);
        }
    }
}

#[test]
fn random_mutations_never_panic() {
    let image = rich().build();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let extremes = [0, 1, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0xFFFF, image.len() as u32, 0x1000];
    for _ in 0..4000 {
        let mut mutated = image.clone();
        for _ in 0..=rng.below(6) {
            let at = rng.below(mutated.len() - 4) & !3;
            if rng.below(2) == 0 {
                put32(&mut mutated, at, extremes[rng.below(extremes.len())]);
            } else {
                mutated[at] = rng.next() as u8;
            }
        }
        if rng.below(4) == 0 {
            fix_checksum(&mut mutated);
        }
        exercise(&mutated);
    }
}

#[test]
fn garbage_is_a_parse_error() {
    assert_eq!(inspect(&[]).unwrap_err(), ParseError::NoDosSignature);
    assert_eq!(inspect(b"MZ").unwrap_err(), ParseError::Truncated { what: "DOS header", offset: 0, len: 0x40 });
    assert_eq!(inspect(&[0x7F; 512]).unwrap_err(), ParseError::NoDosSignature);
    let mut dos = vec![0u8; 0x100];
    dos[..2].copy_from_slice(b"MZ");
    assert_eq!(inspect(&dos).unwrap_err(), ParseError::NoPeSignature { offset: 0 });
    for e_lfanew in [0xFFFF_FFFF, 0xFFFF_FFFC, 0x100, 0xFE] {
        put32(&mut dos, 0x3C, e_lfanew);
        assert!(inspect(&dos).is_err(), "{e_lfanew:#x}");
    }
    put32(&mut dos, 0x3C, 0xFC);
    dos[0xFC..].copy_from_slice(b"PE\0\0");
    assert!(matches!(inspect(&dos), Err(ParseError::Truncated { what: "COFF file header", .. })));
    let mut rng = Rng(42);
    for len in [1, 2, 63, 64, 65, 1000, 4096] {
        let mut noise: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        assert!(exercise(&noise).is_none());
        noise[..2.min(len)].copy_from_slice(&b"MZ"[..2.min(len)]);
        assert!(exercise(&noise).is_none());
    }
}

#[test]
fn broken_optional_header_is_a_parse_error() {
    let mut image = Fixture::driver().build();
    put16(&mut image, OPTIONAL_AT, 0x107);
    assert_eq!(inspect(&image).unwrap_err(), ParseError::UnknownOptionalMagic(0x107));
    let mut image = Fixture::driver().build();
    put16(&mut image, E_LFANEW + 4 + 16, 0x60);
    assert_eq!(inspect(&image).unwrap_err(), ParseError::OptionalHeaderTooSmall { size: 0x60, needed: 112 });
    let mut image = Fixture::driver().build();
    put16(&mut image, E_LFANEW + 4 + 2, 0xFFFF);
    assert!(matches!(inspect(&image), Err(ParseError::Truncated { what: "section table", .. })));
}

#[test]
fn hostile_directories_are_problems_not_panics() {
    let mut image = Fixture::driver().build();
    put32(&mut image, OPTIONAL_AT + 108, 0xFFFF_FFFF);
    fix_checksum(&mut image);
    assert_eq!(problems(&image, Some(Arch::X64)), [], "NumberOfRvaAndSizes is capped at 16");

    let mut image = Fixture::driver().build();
    let reloc = inspect(&image).unwrap().sections[3].raw_offset as usize;
    put32(&mut image, reloc + 4, 0);
    fix_checksum(&mut image);
    assert!(matches!(
        only_problem(&image),
        Problem::Unreadable { directory: "base relocation directory", error: ParseError::Invalid { .. } }
    ));

    let mut image = Fixture::driver().build();
    put32(&mut image, directory_entry(1), 0x7000_0000);
    fix_checksum(&mut image);
    assert_eq!(
        only_problem(&image),
        Problem::Unreadable {
            directory: "import directory",
            error: ParseError::RvaNotInFile { what: "import directory", rva: 0x7000_0000 }
        }
    );

    let mut image = Fixture { export_driver_entry: Some(0), ..Fixture::driver() }.build();
    let exports = inspect(&image).unwrap().directories[0].rva;
    let rdata = inspect(&image).unwrap().sections[1].clone();
    let at = (exports - rdata.rva + rdata.raw_offset) as usize;
    put32(&mut image, at + 24, 0x7FFF_FFFF);
    fix_checksum(&mut image);
    assert!(matches!(
        only_problem(&image),
        Problem::Unreadable { directory: "export directory", error: ParseError::TooMany { what: "exports", .. } }
    ));

    let mut image = Fixture { signature: true, ..Fixture::driver() }.build();
    put32(&mut image, directory_entry(4) + 4, 0x10_0000);
    fix_checksum(&mut image);
    assert!(matches!(only_problem(&image), Problem::Unreadable { directory: "security directory", .. }));
}

#[test]
fn section_data_past_the_end_of_the_file_is_named() {
    let image = Fixture::driver().build();
    let mut cut = image[..image.len() - 0x100].to_vec();
    fix_checksum(&mut cut);
    let Problem::SectionPastEndOfFile { section, file_len, .. } = only_problem(&cut) else { panic!("wrong problem") };
    assert_eq!((section.as_str(), file_len), (".reloc", cut.len()));
}

#[test]
fn verify_file_reads_judges_and_summarises() {
    let dir = std::env::temp_dir().join(format!("wanlayer-verify-image-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.sys");
    std::fs::write(&good, Fixture::arm64().build()).unwrap();
    let verdict = verify_file(&good, None).unwrap();
    assert_eq!(verdict.arch, Some(Arch::Arm64));
    assert!(verdict.into_result().is_ok());

    let bad = dir.join("bad.sys");
    std::fs::write(&bad, Fixture { subsystem: 3, ..Fixture::arm64() }.build()).unwrap();
    let message = verify_file(&bad, Some(Arch::Arm64)).unwrap().into_result().unwrap_err();
    assert!(message.starts_with("verify-image: 1 problem(s) in "), "{message}");
    assert!(message.contains("subsystem is WINDOWS_CUI (3)"), "{message}");

    let text = dir.join("text.sys");
    std::fs::write(&text, "not a driver").unwrap();
    assert!(verify_file(&text, None).unwrap_err().contains("not a PE image"));
    assert!(verify_file(&dir.join("missing.sys"), None).unwrap_err().contains("cannot read"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_x86_driver_is_pe32_with_no_seh() {
    let image = Fixture::x86().build();
    assert_eq!(problems(&image, Some(Arch::X86)), []);
    assert_eq!(problems(&image, None), [], "I386 is inferred as x86");
    let report = inspect(&image).unwrap();
    assert_eq!((report.machine, report.is_pe32_plus()), (Machine::I386, false));
    assert_eq!(problems(&image, Some(Arch::X64)), [Problem::WrongMachine { found: Machine::I386, expected: Arch::X64 }, Problem::NotPe32Plus { magic: 0x10B }]);

    let pe32_plus = Fixture { pe32: false, ..Fixture::x86() }.build();
    assert_eq!(problems(&pe32_plus, Some(Arch::X86)), [Problem::NotPe32 { magic: 0x20B }]);
    let with_seh = Fixture { dll_characteristics: 0x01E0, ..Fixture::x86() }.build();
    let found = problems(&with_seh, Some(Arch::X86));
    assert_eq!(found, [Problem::NoSafeSeh]);
    assert!(found[0].to_string().contains("/SAFESEH"), "{}", found[0]);
    assert_eq!(problems(&Fixture { dll_characteristics: 0x01E0, ..Fixture::driver() }.build(), Some(Arch::X64)), [], "x64 has no SafeSEH");
}

#[test]
fn x86_imports_follow_x86_exports() {
    let allowed_on = |name: &'static str, arch: Arch| {
        let fixture = match arch {
            Arch::X64 => Fixture::driver(),
            Arch::Arm64 => Fixture::arm64(),
            Arch::X86 => Fixture::x86(),
        };
        problems(&fixture.import("ntoskrnl.exe", Thunk::Name(name)).build(), Some(arch)).is_empty()
    };
    for name in ["KfAcquireSpinLock", "KfReleaseSpinLock", "_aulldiv", "_aullrem", "_alldiv", "_allrem", "_allmul"] {
        assert!(allowed_on(name, Arch::X86), "{name} on x86");
        assert!(!allowed_on(name, Arch::X64) && !allowed_on(name, Arch::Arm64), "{name} is x86-only");
    }
    for name in ["KeAcquireSpinLockRaiseToDpc", "KeReleaseSpinLock", "memcmp"] {
        assert!(allowed_on(name, Arch::X64) && allowed_on(name, Arch::Arm64), "{name} on 64-bit");
        assert!(!allowed_on(name, Arch::X86), "{name} is not an x86 export");
    }
    assert!(!allowed_on("_chkstk", Arch::X86), "the stack probe stays refused on x86");
    let vendor = Fixture { imports: vec![("ntoskrnl.exe", vec![Thunk::Name("KfAcquireSpinLock"), Thunk::Name("_allmul")])], ..Fixture::x86() };
    assert_eq!(inspect(&vendor.build()).unwrap().problems(&Policy::vendor(Some(Arch::X86))), []);
}

#[test]
fn an_x86_image_with_sse_or_x87_code_is_refused() {
    let clean = Fixture::x86().build();
    let scan = inspect(&clean).unwrap().x86_code.expect("an I386 image's code is decoded");
    assert_eq!((scan.floating_point, scan.undecodable), (0, 0), "{scan:?}");
    assert!(inspect(&Fixture::driver().build()).unwrap().x86_code.is_none(), "64-bit code is not decoded as x86");

    // `.text` is `ret` and int3 padding: put `movaps xmm0, xmm1` and `fild qword [esp]` after the
    // `ret`.
    let mut image = clean.clone();
    let text = inspect(&clean).unwrap().sections.iter().find(|section| section.name == ".text").unwrap().raw_offset as usize;
    image[text + 1..text + 7].copy_from_slice(&[0x0F, 0x28, 0xC1, 0xDF, 0x2C, 0x24]);
    fix_checksum(&mut image);
    let text_rva = inspect(&image).unwrap().sections.iter().find(|section| section.name == ".text").unwrap().rva;
    let found = problems(&image, Some(Arch::X86));
    assert_eq!(found, [Problem::FloatingPointCode { count: 2, first_rva: text_rva + 1, first: "Movaps_xmm_xmmm128".to_string() }]);
    assert!(found[0].to_string().contains("2 instruction(s), the first at RVA"), "{}", found[0]);
    assert_eq!(problems(&image, None), found, "I386 is inferred as x86");
    assert!(inspect(&image).unwrap().to_string().contains("2 touching x87/MMX/SSE state"));
}
