//! `cargo xtask verify-image <file.sys> [--arch x64|arm64|x86] [--vendor]`: a PE/COFF inspector
//! that fails loudly, naming every problem, unless the image is a proper wanlayer kernel driver
//! (or, with `--vendor`, a proper vendor driver built with the wanlayer SDK: the same rules, with
//! the import allowlist [`VENDOR_ALLOWED_IMPORTS`](policy::VENDOR_ALLOWED_IMPORTS), `ntoskrnl.exe`
//! only).
//!
//! The parser is written on plain slices ([`read`]): every read is bounds-checked and a hostile
//! file yields a [`ParseError`](read::ParseError) or a report, never a panic. Use it as a library
//! with [`inspect`] and [`ImageReport::problems`], or [`verify_file`] for a file on disk.
//!
//! # What is verified
//!
//! - COFF `Machine` is AMD64 (0x8664) for `--arch x64`, ARM64 (0xaa64) for `--arch arm64`, I386
//!   (0x14c) for `--arch x86`; without `--arch` any of them is accepted and the architecture is
//!   inferred (and reported). The header has `EXECUTABLE_IMAGE` and not `RELOCS_STRIPPED`.
//! - The optional header is PE32+ (PE32 for x86) and `Subsystem` is NATIVE (1).
//! - x86 only: `DllCharacteristics` has NO_SEH (0x400), or a load configuration directory (the
//!   `/SAFESEH` handler table) is present.
//! - x86 only: no instruction of an executable section touches x87, MMX, SSE or AVX state (a
//!   linear decode with `iced-x86`, [`code`]): 32-bit Windows does not save it for kernel code.
//! - `DllCharacteristics` has DYNAMIC_BASE (0x40), FORCE_INTEGRITY (0x80) and NX_COMPAT (0x100).
//! - `CheckSum` is non-zero and equals the standard PE checksum recomputed over the file.
//! - `SectionAlignment` is 0x1000; `FileAlignment` is a power of two from 0x200 to 0x10000 and
//!   no larger than it; every section starts on a `SectionAlignment` boundary, its raw data lies
//!   within the file, and no section is both writable and executable.
//! - Entry point. Images carry no COFF symbol table (lld-link writes none for msvc targets) and a
//!   `cdylib` exports `DriverEntry` only because it is `#[no_mangle] pub`; so the name is checked
//!   where it is recorded, and otherwise only the build's `/ENTRY:DriverEntry` vouches for it.
//!   Verified: `AddressOfEntryPoint` is non-zero and lies within (by `VirtualSize`) an executable
//!   section; if the export directory names `DriverEntry`, its RVA equals `AddressOfEntryPoint`;
//!   if a COFF symbol table holds `DriverEntry`, its RVA (section RVA + value) equals it too.
//! - Imports come only from the DLLs of [`ALLOWED_IMPORTS`](policy::ALLOWED_IMPORTS)
//!   (case-insensitive), only by name, and only functions on its list for the architecture; no
//!   stack probe helper (`__chkstk`, `__chkstk_arm64`, `___chkstk_ms`, `_alloca_probe`...) is
//!   imported from any DLL.
//! - No TLS directory, no delay-load import directory; a base relocation directory is present.
//! - Every directory read (imports, exports, relocations, debug, security, COFF symbols) is
//!   well-formed.
//!
//! Reported, not judged: sizes, the section table, discardable (and `INIT`) sections, imports
//! by DLL, exports, the relocation count, the debug directory (CodeView `RSDS`: PDB path, GUID,
//! age) and whether an Authenticode signature is present.

pub mod checksum;
pub mod code;
pub mod directories;
pub mod pe;
pub mod policy;
pub mod read;
mod report;

#[cfg(test)]
pub(crate) mod fixture;
#[cfg(test)]
mod tests;

pub use pe::{inspect, ImageReport};
pub use policy::{Arch, Policy, Problem};

use std::path::{Path, PathBuf};

/// An inspected file and the problems found in it.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// The file.
    pub file: PathBuf,
    /// What was read from it.
    pub report: ImageReport,
    /// The architecture judged against: `--arch`, else inferred from the machine type.
    pub arch: Option<Arch>,
    /// Every problem; empty for a proper driver.
    pub problems: Vec<Problem>,
}

impl Verdict {
    /// The report when there are no problems.
    ///
    /// # Errors
    ///
    /// `verify-image: N problem(s) in <file>` followed by one problem per line.
    pub fn into_result(self) -> Result<ImageReport, String> {
        if self.problems.is_empty() {
            return Ok(self.report);
        }
        let mut message = format!("verify-image: {} problem(s) in {}", self.problems.len(), self.file.display());
        for problem in &self.problems {
            message.push_str("\n  - ");
            message.push_str(&problem.to_string());
        }
        Err(message)
    }
}

/// Reads and inspects `path` and judges it against the driver policy for `arch` (or, when
/// `None`, for the architecture its machine type names).
///
/// # Errors
///
/// When the file cannot be read or is not a PE image at all. A PE image with problems is an
/// `Ok` verdict: call [`Verdict::into_result`] to fail on them.
pub fn verify_file(path: &Path, arch: Option<Arch>) -> Result<Verdict, String> {
    verify_file_with(path, &Policy::for_arch(arch))
}

/// [`verify_file`] against any policy (e.g. [`Policy::vendor`]).
///
/// # Errors
///
/// As [`verify_file`].
pub fn verify_file_with(path: &Path, policy: &Policy) -> Result<Verdict, String> {
    let data = std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let (report, problems) = verify_bytes(&data, policy).map_err(|error| format!("verify-image: {}: {error}", path.display()))?;
    let arch = policy.arch.or_else(|| Arch::from_machine(report.machine));
    Ok(Verdict { file: path.to_path_buf(), report, arch, problems })
}

/// Inspects the image `data` in memory and judges it against `policy`: what was read, and every
/// problem.
///
/// # Errors
///
/// When `data` is not a PE image at all.
pub fn verify_bytes(data: &[u8], policy: &Policy) -> Result<(ImageReport, Vec<Problem>), read::ParseError> {
    let report = inspect(data)?;
    let problems = report.problems(policy);
    Ok((report, problems))
}

/// `cargo xtask verify-image`: prints the report, then `verify-image: OK (<file>)`, or fails
/// with every problem.
pub fn run(path: &Path, arch: Option<Arch>, vendor: bool) -> Result<(), String> {
    let policy = if vendor { Policy::vendor(arch) } else { Policy::for_arch(arch) };
    let verdict = verify_file_with(path, &policy)?;
    println!("verify-image: {}{}", path.display(), if vendor { " (vendor driver policy)" } else { "" });
    let arch_text = match (arch, verdict.arch) {
        (Some(arch), _) => format!("{arch} (from --arch)"),
        (None, Some(inferred)) => format!("{inferred} (inferred from the machine type; --arch makes it a requirement)"),
        (None, None) => "unknown (the machine type names no driver architecture)".to_string(),
    };
    println!("  architecture     {arch_text}");
    print!("{}", verdict.report);
    verdict.into_result()?;
    println!("verify-image: OK ({})", path.display());
    Ok(())
}
