//! What makes an image a proper wanlayer kernel driver: the [`Policy`], the import allowlist
//! and the [`Problem`]s [`ImageReport::problems`] finds.

use super::code::FloatingPointScan;
use super::directories::ImportedFunction;
use super::pe::{dir, ImageReport, Machine, PE32_MAGIC, PE32_PLUS_MAGIC};
use super::read::ParseError;
use std::fmt;

/// `IMAGE_SUBSYSTEM_NATIVE`.
pub const SUBSYSTEM_NATIVE: u16 = 1;
/// The section alignment HVCI needs: one page.
pub const SECTION_ALIGNMENT: u32 = 0x1000;
/// `IMAGE_FILE_RELOCS_STRIPPED`.
pub const FILE_RELOCS_STRIPPED: u16 = 0x0001;
/// `IMAGE_FILE_EXECUTABLE_IMAGE`.
pub const FILE_EXECUTABLE_IMAGE: u16 = 0x0002;
/// `IMAGE_DLLCHARACTERISTICS_NO_SEH`: the image has no structured exception handlers.
pub const DLL_NO_SEH: u16 = 0x0400;

/// A driver architecture wanlayer ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// x86_64, `IMAGE_FILE_MACHINE_AMD64`.
    X64,
    /// AArch64, `IMAGE_FILE_MACHINE_ARM64`.
    Arm64,
    /// 32-bit x86, `IMAGE_FILE_MACHINE_I386` (a PE32 image).
    X86,
}

impl Arch {
    /// Every architecture wanlayer ships, in the order they are built and packaged.
    pub const ALL: [Arch; 3] = [Self::X64, Self::Arm64, Self::X86];

    /// The architecture of a COFF machine type, if wanlayer ships one for it.
    pub fn from_machine(machine: Machine) -> Option<Self> {
        match machine {
            Machine::Amd64 => Some(Self::X64),
            Machine::Arm64 => Some(Self::Arm64),
            Machine::I386 => Some(Self::X86),
            _ => None,
        }
    }

    /// The COFF machine type an image for this architecture carries.
    pub fn machine(self) -> Machine {
        match self {
            Self::X64 => Machine::Amd64,
            Self::Arm64 => Machine::Arm64,
            Self::X86 => Machine::I386,
        }
    }

    /// The optional header magic an image for this architecture carries: PE32+ for the 64-bit
    /// architectures, PE32 for x86.
    pub fn optional_magic(self) -> u16 {
        match self {
            Self::X64 | Self::Arm64 => PE32_PLUS_MAGIC,
            Self::X86 => PE32_MAGIC,
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::X64 => "x64",
            Self::Arm64 => "arm64",
            Self::X86 => "x86",
        })
    }
}

/// One function the driver may import, on every architecture or on one only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllowedImport {
    /// The exported name (case-sensitive, as the loader matches it).
    pub name: &'static str,
    /// The architectures the function may be imported on; empty for every one.
    pub only_on: &'static [Arch],
}

/// The functions the driver may import from one DLL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllowedDll {
    /// The DLL name (matched case-insensitively).
    pub dll: &'static str,
    /// The allowed functions.
    pub functions: &'static [AllowedImport],
}

const fn any(name: &'static str) -> AllowedImport {
    AllowedImport { name, only_on: &[] }
}

const fn x64_only(name: &'static str) -> AllowedImport {
    AllowedImport { name, only_on: &[Arch::X64] }
}

/// Exported on the 64-bit architectures only (x86 has another name or none).
const fn not_x86(name: &'static str) -> AllowedImport {
    AllowedImport { name, only_on: &[Arch::X64, Arch::Arm64] }
}

/// Exported (or needed) on x86 only.
const fn x86_only(name: &'static str) -> AllowedImport {
    AllowedImport { name, only_on: &[Arch::X86] }
}

/// Every DLL and function the driver may import. Only these DLLs may appear in the import
/// table at all.
///
/// To add a function, add one entry to its DLL's list with a comment naming the code that
/// calls it and why no allowed function does the job.
pub const ALLOWED_IMPORTS: &[AllowedDll] = &[
    AllowedDll {
        dll: "ndis.sys",
        functions: &[
            // Filter driver registration and per-module attributes.
            any("NdisFRegisterFilterDriver"),
            any("NdisFDeregisterFilterDriver"),
            any("NdisFSetAttributes"),
            // The data path: send, receive, and their completions.
            any("NdisFSendNetBufferLists"),
            any("NdisFSendNetBufferListsComplete"),
            any("NdisFIndicateReceiveNetBufferLists"),
            any("NdisFReturnNetBufferLists"),
            any("NdisFCancelSendNetBufferLists"),
            // Status indications (WAN line up / line down pass through FilterStatus).
            any("NdisFIndicateStatus"),
            // Pause / restart.
            any("NdisFPauseComplete"),
            any("NdisFRestartComplete"),
            // OID pass-through by cloning.
            any("NdisFOidRequest"),
            any("NdisFOidRequestComplete"),
            any("NdisAllocateCloneOidRequest"),
            any("NdisFreeCloneOidRequest"),
            any("NdisFCancelOidRequest"),
            // PnP forwarding.
            any("NdisFNetPnPEvent"),
            any("NdisFDevicePnPEventNotify"),
            // The control device.
            any("NdisRegisterDeviceEx"),
            any("NdisDeregisterDeviceEx"),
            any("NdisGetDeviceReservedExtension"),
            // NBL pools and buffers for frames the filter originates.
            any("NdisAllocateNetBufferListPool"),
            any("NdisFreeNetBufferListPool"),
            any("NdisAllocateNetBufferAndNetBufferList"),
            any("NdisAllocateNetBufferList"),
            any("NdisFreeNetBufferList"),
            any("NdisAllocateMdl"),
            any("NdisFreeMdl"),
            any("NdisGetDataBuffer"),
            any("NdisAllocateMemoryWithTagPriority"),
            any("NdisFreeMemory"),
        ],
    },
    AllowedDll {
        dll: "ntoskrnl.exe",
        functions: &[
            // Pool memory (the global allocator honours alignment on top of these):
            // wanlayer_ndis::pool. ExAllocatePool2 is found at run time with
            // MmGetSystemRoutineAddress, never imported: an image importing it does not load
            // before build 19041, and the package installs from 17763 (Server 2019).
            any("ExAllocatePoolWithTag"),
            any("MmGetSystemRoutineAddress"),
            any("ExFreePoolWithTag"),
            // Spin locks and IRQL. ntoskrnl's KeGetCurrentIrql export is not confirmed on
            // ARM64; the list only permits it, the loader decides. x86 has no
            // KeAcquireSpinLockRaiseToDpc and defines KeReleaseSpinLock as a macro: its FASTCALL
            // KfAcquireSpinLock / KfReleaseSpinLock instead (wanlayer-ndis imports.rs).
            not_x86("KeAcquireSpinLockRaiseToDpc"),
            not_x86("KeReleaseSpinLock"),
            x86_only("KfAcquireSpinLock"),
            x86_only("KfReleaseSpinLock"),
            any("KeAcquireSpinLockAtDpcLevel"),
            any("KeReleaseSpinLockFromDpcLevel"),
            any("KeGetCurrentIrql"),
            // Time, passed into the engine.
            any("KeQueryUnbiasedInterruptTime"),
            any("KeQueryInterruptTimePrecise"),
            any("KeDelayExecutionThread"),
            // Processors, for per-processor counters.
            any("KeGetCurrentProcessorNumberEx"),
            any("KeQueryActiveProcessorCountEx"),
            // Panic = bug check; debug output.
            any("KeBugCheckEx"),
            any("DbgPrintEx"),
            any("vDbgPrintEx"),
            // Rundown protection for unload against in-flight callbacks.
            any("ExInitializeRundownProtection"),
            any("ExAcquireRundownProtection"),
            any("ExReleaseRundownProtection"),
            any("ExWaitForRundownProtectionRelease"),
            // MDLs for frames the filter originates.
            any("IoAllocateMdl"),
            any("IoFreeMdl"),
            any("MmBuildMdlForNonPagedPool"),
            // compiler_builtins has no mem* functions on msvc targets; ntoskrnl exports them
            // (memcmp on x64 and ARM64 only: on x86 wanlayer-ndis defines it).
            any("memcpy"),
            any("memset"),
            not_x86("memcmp"),
            any("memmove"),
            // The 64-bit division and multiplication helpers LLVM calls on x86, which
            // compiler_builtins does not provide for i686-pc-windows-msvc; x86 ntoskrnl exports
            // them (wanlayer-ndis imports.rs).
            x86_only("_aulldiv"),
            x86_only("_aullrem"),
            x86_only("_alldiv"),
            x86_only("_allrem"),
            x86_only("_allmul"),
            // The control device's IRP handlers.
            any("IofCompleteRequest"),
            any("IoGetCurrentProcess"),
            any("RtlInitUnicodeString"),
            any("RtlCopyUnicodeString"),
            // Pending event reads wait in each handle's cancel-safe queue (driver/src/control/
            // csq.rs); the kernel's IoCsq* routines own the cancel races. The Ex forms because the
            // queue must refuse a read on a handle already cleaned up (IoCsqInsertIrp discards
            // that status) and put a read dispatched again back at the head.
            any("IoCsqInitializeEx"),
            any("IoCsqInsertIrpEx"),
            any("IoCsqRemoveNextIrp"),
            // The engine's event waker (driver/src/control/waker.rs): the engine wakes from inside
            // its own calls, so one DPC services the woken handles; unload flushes it (after a
            // rundown of wakes in progress) before the control device and the engine go.
            any("KeInitializeDpc"),
            any("KeInsertQueueDpc"),
            any("KeFlushQueuedDpcs"),
            // The user-mode hooks' expiry timer (driver/src/control/divert_timer.rs): one-shot, set
            // only while a hook holds packets, cancelled when none does and at unload.
            any("KeInitializeTimerEx"),
            any("KeSetTimerEx"),
            any("KeCancelTimer"),
            // The administrator's rule set, kept in the service key's Parameters subkey
            // (driver/src/hal/registry.rs): read at DriverEntry, written after each replacement.
            any("ZwOpenKey"),
            any("ZwCreateKey"),
            any("ZwQueryValueKey"),
            any("ZwSetValueKey"),
            any("ZwClose"),
        ],
    },
    AllowedDll {
        dll: "hal.dll",
        functions: &[
            // Exported by hal.dll on x64 only; inline or elsewhere on ARM64.
            x64_only("KeGetCurrentIrql"),
            x64_only("KfRaiseIrql"),
            x64_only("KeLowerIrql"),
        ],
    },
];

/// Every function a vendor driver built with the wanlayer SDK (`wanlayer_sdk::kernel`) may
/// import: from `ntoskrnl.exe` only — a vendor driver imports nothing from wanlayer.sys (it gets
/// the provider table at run time) and nothing from `ndis.sys` (it is not an NDIS driver).
///
/// To add a function, add one entry with a comment naming the SDK code that calls it.
pub const VENDOR_ALLOWED_IMPORTS: &[AllowedDll] = &[AllowedDll {
    dll: "ntoskrnl.exe",
    functions: &[
        // kernel::PoolAllocator over wanlayer_ndis::pool (ExAllocatePool2 found at run time,
        // never imported: the image loads from build 17763).
        any("ExAllocatePoolWithTag"),
        any("MmGetSystemRoutineAddress"),
        any("ExFreePoolWithTag"),
        // sync::SpinLock (KfAcquireSpinLock / KfReleaseSpinLock on x86).
        not_x86("KeAcquireSpinLockRaiseToDpc"),
        not_x86("KeReleaseSpinLock"),
        x86_only("KfAcquireSpinLock"),
        x86_only("KfReleaseSpinLock"),
        // kernel::bug_check (the panic handler) and kernel::print.
        any("KeBugCheckEx"),
        any("DbgPrintEx"),
        // compiler_builtins has no mem* functions on msvc targets; ntoskrnl exports them
        // (memcmp on x64 and ARM64 only: on x86 wanlayer-ndis defines it).
        any("memcpy"),
        any("memset"),
        not_x86("memcmp"),
        any("memmove"),
        // LLVM's 64-bit arithmetic helpers on x86 (see ALLOWED_IMPORTS).
        x86_only("_aulldiv"),
        x86_only("_aullrem"),
        x86_only("_alldiv"),
        x86_only("_allrem"),
        x86_only("_allmul"),
        // kernel::Connection: \Device\WanLayer, the internal device control, the wait for it.
        any("IoGetDeviceObjectPointer"),
        any("IoBuildDeviceIoControlRequest"),
        any("IofCallDriver"),
        any("KeInitializeEvent"),
        any("KeWaitForSingleObject"),
        any("ObfDereferenceObject"),
        any("KeDelayExecutionThread"),
        // kernel::PeriodicTimer.
        any("KeInitializeTimerEx"),
        any("KeInitializeDpc"),
        any("KeSetTimerEx"),
        any("KeCancelTimer"),
        any("KeFlushQueuedDpcs"),
    ],
}];

/// True for the names of stack probe helpers (`__chkstk`, `__chkstk_arm64`, `___chkstk_ms`,
/// `_alloca_probe`, ...): importing one means a stack frame over 4 KiB.
pub fn is_stack_probe(name: &str) -> bool {
    let bare = name.trim_start_matches('_');
    bare.starts_with("chkstk") || bare.starts_with("alloca_probe")
}

/// What [`ImageReport::problems`] requires.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// The required architecture; `None` accepts AMD64, ARM64 or I386 and judges arch-specific
    /// imports by the machine type.
    pub arch: Option<Arch>,
    /// The import allowlist.
    pub allowed_imports: &'static [AllowedDll],
}

impl Policy {
    /// The wanlayer driver policy, requiring `arch` when given.
    pub fn for_arch(arch: Option<Arch>) -> Self {
        Self { arch, allowed_imports: ALLOWED_IMPORTS }
    }

    /// The vendor driver policy ([`VENDOR_ALLOWED_IMPORTS`]: `ntoskrnl.exe` only), requiring
    /// `arch` when given; every other rule is the wanlayer driver's.
    pub fn vendor(arch: Option<Arch>) -> Self {
        Self { arch, allowed_imports: VENDOR_ALLOWED_IMPORTS }
    }

    /// The DLLs the policy allows, for messages.
    pub fn allowed_dll_names(&self) -> String {
        self.allowed_imports.iter().map(|allowed| allowed.dll).collect::<Vec<_>>().join(", ")
    }

    /// The allowlist entry of `dll` (case-insensitive).
    pub fn allowed_dll(&self, dll: &str) -> Option<&'static AllowedDll> {
        self.allowed_imports.iter().find(|allowed| allowed.dll.eq_ignore_ascii_case(dll))
    }
}

/// A `DllCharacteristics` bit every driver needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DllFlag {
    /// `IMAGE_DLLCHARACTERISTICS_DYNAMIC_BASE` (0x40).
    DynamicBase,
    /// `IMAGE_DLLCHARACTERISTICS_FORCE_INTEGRITY` (0x80).
    ForceIntegrity,
    /// `IMAGE_DLLCHARACTERISTICS_NX_COMPAT` (0x100).
    NxCompat,
}

impl DllFlag {
    /// Every required flag.
    pub const REQUIRED: [DllFlag; 3] = [Self::DynamicBase, Self::ForceIntegrity, Self::NxCompat];

    /// The bit.
    pub fn bit(self) -> u16 {
        match self {
            Self::DynamicBase => 0x0040,
            Self::ForceIntegrity => 0x0080,
            Self::NxCompat => 0x0100,
        }
    }

    /// The `IMAGE_DLLCHARACTERISTICS_*` suffix.
    pub fn name(self) -> &'static str {
        match self {
            Self::DynamicBase => "DYNAMIC_BASE",
            Self::ForceIntegrity => "FORCE_INTEGRITY",
            Self::NxCompat => "NX_COMPAT",
        }
    }

    /// The linker option that sets it.
    pub fn linker_option(self) -> &'static str {
        match self {
            Self::DynamicBase => "/DYNAMICBASE",
            Self::ForceIntegrity => "/INTEGRITYCHECK",
            Self::NxCompat => "/NXCOMPAT",
        }
    }
}

/// One reason the image is not a proper kernel driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The machine type is not the one `--arch` asked for.
    WrongMachine {
        /// The image's machine type.
        found: Machine,
        /// The required architecture.
        expected: Arch,
    },
    /// No `--arch` was given and the machine type is none of AMD64, ARM64 and I386.
    UnsupportedMachine(Machine),
    /// The optional header of a 64-bit image is not PE32+.
    NotPe32Plus {
        /// The optional header magic.
        magic: u16,
    },
    /// The optional header of an x86 image is not PE32.
    NotPe32 {
        /// The optional header magic.
        magic: u16,
    },
    /// An x86 image has neither `IMAGE_DLLCHARACTERISTICS_NO_SEH` nor a load configuration
    /// directory (where a `/SAFESEH` table of its exception handlers would be).
    NoSafeSeh,
    /// An x86 image's code uses x87, MMX, SSE or AVX state, which 32-bit Windows does not save
    /// for kernel code (only `KeSaveExtendedProcessorState` brackets would make it safe).
    FloatingPointCode {
        /// How many instructions touch that state.
        count: u64,
        /// The RVA of the first.
        first_rva: u32,
        /// iced's name of its encoding.
        first: String,
    },
    /// The subsystem is not NATIVE.
    WrongSubsystem(u16),
    /// A required `DllCharacteristics` bit is clear.
    MissingDllFlag(DllFlag),
    /// `CheckSum` is zero.
    ZeroChecksum,
    /// `CheckSum` differs from the recomputed checksum.
    WrongChecksum {
        /// The stored value.
        stored: u32,
        /// The recomputed value.
        computed: u32,
    },
    /// `SectionAlignment` is not one page.
    SectionAlignment(u32),
    /// `FileAlignment` is not a power of two in 0x200..=0x10000 no larger than `SectionAlignment`.
    FileAlignment(u32),
    /// A section does not start on a `SectionAlignment` boundary.
    SectionMisaligned {
        /// The section name.
        section: String,
        /// Its RVA.
        rva: u32,
    },
    /// A section's raw data runs past the end of the file.
    SectionPastEndOfFile {
        /// The section name.
        section: String,
        /// File offset one past its raw data.
        end: u64,
        /// The file size.
        file_len: usize,
    },
    /// A section is both writable and executable.
    WritableAndExecutable {
        /// The section name.
        section: String,
        /// Its characteristics.
        characteristics: u32,
    },
    /// `AddressOfEntryPoint` is zero.
    NoEntryPoint,
    /// `AddressOfEntryPoint` lies outside every executable section.
    EntryPointNotExecutable {
        /// The entry point RVA.
        rva: u32,
        /// The (non-executable) section holding it, if any.
        section: Option<String>,
    },
    /// `DriverEntry` (an export or a COFF symbol) is not the entry point.
    EntryPointNotDriverEntry {
        /// The entry point RVA.
        entry_point: u32,
        /// The RVA `DriverEntry` names.
        driver_entry: u32,
        /// Where `DriverEntry` was found: `"export"` or `"COFF symbol"`.
        source: &'static str,
    },
    /// The image imports from a DLL the policy does not list.
    ForbiddenDll {
        /// The DLL.
        dll: String,
        /// How many functions it imports from it.
        functions: usize,
        /// The DLLs the policy allows.
        allowed: String,
    },
    /// A named import is not on the allowlist (for this architecture).
    ImportNotAllowed {
        /// The DLL.
        dll: String,
        /// The function.
        function: String,
    },
    /// An import by ordinal.
    ImportByOrdinal {
        /// The DLL.
        dll: String,
        /// The ordinal.
        ordinal: u16,
    },
    /// A stack probe helper (`__chkstk`) is imported.
    StackProbeImported {
        /// The DLL.
        dll: String,
        /// The helper's name.
        function: String,
    },
    /// A TLS directory is present.
    TlsDirectory,
    /// A delay-load import directory is present.
    DelayImports,
    /// No base relocation directory.
    NoRelocations,
    /// The COFF header says relocations were stripped.
    RelocationsStripped,
    /// The COFF header lacks `IMAGE_FILE_EXECUTABLE_IMAGE`.
    NotExecutableImage,
    /// A directory could not be read.
    Unreadable {
        /// The directory.
        directory: &'static str,
        /// Why.
        error: ParseError,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongMachine { found, expected } => {
                write!(f, "machine is {found}, but --arch {expected} needs {}", expected.machine())
            }
            Self::UnsupportedMachine(machine) => {
                write!(f, "machine {machine} is not a driver architecture wanlayer ships (AMD64, ARM64 or I386)")
            }
            Self::NotPe32Plus { magic } => {
                write!(f, "optional header magic is {magic:#x}; a 64-bit driver needs PE32+ ({PE32_PLUS_MAGIC:#x})")
            }
            Self::NotPe32 { magic } => {
                write!(f, "optional header magic is {magic:#x}; an x86 driver needs PE32 ({PE32_MAGIC:#x})")
            }
            Self::NoSafeSeh => f.write_str(
                "x86 image without NO_SEH (0x0400) and without a load configuration: its exception handlers are not registered (/SAFESEH)",
            ),
            Self::FloatingPointCode { count, first_rva, first } => write!(
                f,
                "x86 code touches x87/MMX/SSE state, which the kernel does not save for it: {count} instruction(s), the first at RVA {first_rva:#x} ({first})"
            ),
            Self::WrongSubsystem(subsystem) => write!(
                f,
                "subsystem is {} ({subsystem}); a driver needs NATIVE ({SUBSYSTEM_NATIVE}): link with /SUBSYSTEM:NATIVE",
                subsystem_name(*subsystem)
            ),
            Self::MissingDllFlag(flag) => write!(
                f,
                "DllCharacteristics lacks {} ({:#06x}): link with {}",
                flag.name(),
                flag.bit(),
                flag.linker_option()
            ),
            Self::ZeroChecksum => {
                f.write_str("PE checksum is 0; the kernel loader checks a driver's checksum: link with /RELEASE")
            }
            Self::WrongChecksum { stored, computed } => {
                write!(f, "PE checksum is {stored:#010x} but the file sums to {computed:#010x}")
            }
            Self::SectionAlignment(alignment) => {
                write!(f, "SectionAlignment is {alignment:#x}; HVCI needs {SECTION_ALIGNMENT:#x}")
            }
            Self::FileAlignment(alignment) => write!(
                f,
                "FileAlignment is {alignment:#x}; it must be a power of two from 0x200 to 0x10000, no larger than SectionAlignment"
            ),
            Self::SectionMisaligned { section, rva } => {
                write!(f, "section {section} starts at RVA {rva:#x}, not on a SectionAlignment boundary")
            }
            Self::SectionPastEndOfFile { section, end, file_len } => write!(
                f,
                "section {section} raw data ends at file offset {end:#x}, past the end of the file ({file_len:#x} bytes)"
            ),
            Self::WritableAndExecutable { section, characteristics } => write!(
                f,
                "section {section} is both writable and executable (characteristics {characteristics:#010x}); HVCI refuses W+X"
            ),
            Self::NoEntryPoint => f.write_str("AddressOfEntryPoint is 0: link with /ENTRY:DriverEntry"),
            Self::EntryPointNotExecutable { rva, section: Some(section) } => {
                write!(f, "entry point {rva:#x} lies in section {section}, which is not executable")
            }
            Self::EntryPointNotExecutable { rva, section: None } => {
                write!(f, "entry point {rva:#x} lies in no section")
            }
            Self::EntryPointNotDriverEntry { entry_point, driver_entry, source } => write!(
                f,
                "entry point is {entry_point:#x} but the {source} DriverEntry is at {driver_entry:#x}: link with /ENTRY:DriverEntry"
            ),
            Self::ForbiddenDll { dll, functions, allowed } => {
                write!(f, "imports {functions} function(s) from {dll}; this driver may import only from {allowed}")
            }
            Self::ImportNotAllowed { dll, function } => write!(
                f,
                "import {dll}!{function} is not on the allowlist (ALLOWED_IMPORTS or VENDOR_ALLOWED_IMPORTS in xtask/src/image/policy.rs)"
            ),
            Self::ImportByOrdinal { dll, ordinal } => {
                write!(f, "import {dll}!#{ordinal} is by ordinal; imports must be by name")
            }
            Self::StackProbeImported { dll, function } => write!(
                f,
                "import {dll}!{function}: a stack frame over 4 KiB calls the stack probe; keep every frame under 4 KiB"
            ),
            Self::TlsDirectory => f.write_str("a TLS directory is present; a driver cannot use thread-local storage"),
            Self::DelayImports => {
                f.write_str("a delay-load import directory is present; the kernel loader does not delay-load")
            }
            Self::NoRelocations => {
                f.write_str("no base relocation directory; DYNAMIC_BASE needs relocations to move the image")
            }
            Self::RelocationsStripped => {
                f.write_str("COFF characteristics has RELOCS_STRIPPED (0x0001); the image cannot be relocated")
            }
            Self::NotExecutableImage => f.write_str("COFF characteristics lacks EXECUTABLE_IMAGE (0x0002)"),
            Self::Unreadable { directory, error } => write!(f, "{directory} is unreadable: {error}"),
        }
    }
}

/// The name of an `IMAGE_SUBSYSTEM_*` value.
pub fn subsystem_name(subsystem: u16) -> &'static str {
    match subsystem {
        0 => "UNKNOWN",
        1 => "NATIVE",
        2 => "WINDOWS_GUI",
        3 => "WINDOWS_CUI",
        9 => "WINDOWS_CE_GUI",
        10 => "EFI_APPLICATION",
        11 => "EFI_BOOT_SERVICE_DRIVER",
        12 => "EFI_RUNTIME_DRIVER",
        14 => "XBOX",
        16 => "WINDOWS_BOOT_APPLICATION",
        _ => "unrecognised",
    }
}

impl ImageReport {
    /// Every way the image falls short of `policy`, in header order; empty for a proper driver.
    pub fn problems(&self, policy: &Policy) -> Vec<Problem> {
        let mut problems = Vec::new();
        self.check_headers(policy, &mut problems);
        self.check_sections(&mut problems);
        self.check_entry_point(&mut problems);
        self.check_imports(policy, &mut problems);
        self.check_directories(&mut problems);
        problems
    }

    fn check_headers(&self, policy: &Policy, problems: &mut Vec<Problem>) {
        match policy.arch {
            Some(expected) if self.machine != expected.machine() => {
                problems.push(Problem::WrongMachine { found: self.machine, expected });
            }
            None if Arch::from_machine(self.machine).is_none() => {
                problems.push(Problem::UnsupportedMachine(self.machine));
            }
            _ => {}
        }
        if self.coff_characteristics & FILE_EXECUTABLE_IMAGE == 0 {
            problems.push(Problem::NotExecutableImage);
        }
        if self.coff_characteristics & FILE_RELOCS_STRIPPED != 0 {
            problems.push(Problem::RelocationsStripped);
        }
        let arch = policy.arch.or_else(|| Arch::from_machine(self.machine));
        match arch.map(Arch::optional_magic) {
            Some(PE32_MAGIC) if self.magic != PE32_MAGIC => problems.push(Problem::NotPe32 { magic: self.magic }),
            Some(PE32_MAGIC) => {}
            _ if !self.is_pe32_plus() => problems.push(Problem::NotPe32Plus { magic: self.magic }),
            _ => {}
        }
        // rustc links every i686-pc-windows-msvc image with /SAFESEH: an image with exception
        // handlers gets a load configuration holding their table, one without gets NO_SEH.
        if arch == Some(Arch::X86)
            && self.dll_characteristics & DLL_NO_SEH == 0
            && !self.directory(dir::LOAD_CONFIG).is_present()
        {
            problems.push(Problem::NoSafeSeh);
        }
        if arch == Some(Arch::X86) {
            if let Some(FloatingPointScan { floating_point: count @ 1.., first: Some((first_rva, first)), .. }) =
                &self.x86_code
            {
                problems.push(Problem::FloatingPointCode { count: *count, first_rva: *first_rva, first: first.clone() });
            }
        }
        if self.subsystem != SUBSYSTEM_NATIVE {
            problems.push(Problem::WrongSubsystem(self.subsystem));
        }
        for flag in DllFlag::REQUIRED {
            if self.dll_characteristics & flag.bit() == 0 {
                problems.push(Problem::MissingDllFlag(flag));
            }
        }
        if self.checksum == 0 {
            problems.push(Problem::ZeroChecksum);
        } else if self.checksum != self.computed_checksum {
            problems.push(Problem::WrongChecksum { stored: self.checksum, computed: self.computed_checksum });
        }
        if self.section_alignment != SECTION_ALIGNMENT {
            problems.push(Problem::SectionAlignment(self.section_alignment));
        }
        let file_alignment = self.file_alignment;
        if !file_alignment.is_power_of_two()
            || !(0x200..=0x1_0000).contains(&file_alignment)
            || file_alignment > self.section_alignment
        {
            problems.push(Problem::FileAlignment(file_alignment));
        }
    }

    fn check_sections(&self, problems: &mut Vec<Problem>) {
        for section in &self.sections {
            if self.section_alignment.is_power_of_two() && section.rva % self.section_alignment != 0 {
                problems.push(Problem::SectionMisaligned { section: section.name.clone(), rva: section.rva });
            }
            if section.raw_size != 0 && section.raw_end() > self.file_len as u64 {
                problems.push(Problem::SectionPastEndOfFile {
                    section: section.name.clone(),
                    end: section.raw_end(),
                    file_len: self.file_len,
                });
            }
            if section.is_writable() && section.is_executable() {
                problems.push(Problem::WritableAndExecutable {
                    section: section.name.clone(),
                    characteristics: section.characteristics,
                });
            }
        }
    }

    fn check_entry_point(&self, problems: &mut Vec<Problem>) {
        let entry_point = self.entry_point;
        if entry_point == 0 {
            problems.push(Problem::NoEntryPoint);
        } else {
            match self.section_of(entry_point) {
                Some(section) if section.is_executable() => {}
                section => problems.push(Problem::EntryPointNotExecutable {
                    rva: entry_point,
                    section: section.map(|section| section.name.clone()),
                }),
            }
        }
        let exported = match &self.exports {
            Ok(Some(exports)) => {
                exports.named.iter().find(|export| export.name == "DriverEntry").map(|export| export.rva)
            }
            Ok(None) => None,
            Err(error) => {
                problems.push(Problem::Unreadable { directory: "export directory", error: error.clone() });
                None
            }
        };
        let symbol = match &self.driver_entry_symbol {
            Ok(symbol) => *symbol,
            Err(error) => {
                problems.push(Problem::Unreadable { directory: "COFF symbol table", error: error.clone() });
                None
            }
        };
        for (found, source) in [(exported, "export"), (symbol, "COFF symbol")] {
            if let Some(driver_entry) = found.filter(|&rva| rva != entry_point) {
                problems.push(Problem::EntryPointNotDriverEntry { entry_point, driver_entry, source });
            }
        }
    }

    fn check_imports(&self, policy: &Policy, problems: &mut Vec<Problem>) {
        let dlls = match &self.imports {
            Ok(dlls) => dlls,
            Err(error) => {
                problems.push(Problem::Unreadable { directory: "import directory", error: error.clone() });
                return;
            }
        };
        let arch = policy.arch.or_else(|| Arch::from_machine(self.machine));
        for imported in dlls {
            let allowed = policy.allowed_dll(&imported.name);
            if allowed.is_none() {
                problems.push(Problem::ForbiddenDll {
                    dll: imported.name.clone(),
                    functions: imported.functions.len(),
                    allowed: policy.allowed_dll_names(),
                });
            }
            for function in &imported.functions {
                match function {
                    ImportedFunction::Ordinal(ordinal) => {
                        problems.push(Problem::ImportByOrdinal { dll: imported.name.clone(), ordinal: *ordinal });
                    }
                    ImportedFunction::Name { name, .. } if is_stack_probe(name) => {
                        problems
                            .push(Problem::StackProbeImported { dll: imported.name.clone(), function: name.clone() });
                    }
                    ImportedFunction::Name { name, .. } => {
                        let permitted = allowed.is_none_or(|allowed| {
                            allowed
                                .functions
                                .iter()
                                .any(|entry| entry.name == name && (entry.only_on.is_empty() || arch.is_some_and(|arch| entry.only_on.contains(&arch))))
                        });
                        if !permitted {
                            problems
                                .push(Problem::ImportNotAllowed { dll: imported.name.clone(), function: name.clone() });
                        }
                    }
                }
            }
        }
    }

    fn check_directories(&self, problems: &mut Vec<Problem>) {
        if self.directory(dir::TLS).is_present() {
            problems.push(Problem::TlsDirectory);
        }
        if self.directory(dir::DELAY_IMPORT).is_present() {
            problems.push(Problem::DelayImports);
        }
        match &self.relocations {
            Ok(Some(_)) => {}
            Ok(None) => problems.push(Problem::NoRelocations),
            Err(error) => {
                problems.push(Problem::Unreadable { directory: "base relocation directory", error: error.clone() })
            }
        }
        if let Err(error) = &self.debug {
            problems.push(Problem::Unreadable { directory: "debug directory", error: error.clone() });
        }
        if let Err(error) = &self.certificate {
            problems.push(Problem::Unreadable { directory: "security directory", error: error.clone() });
        }
    }
}
