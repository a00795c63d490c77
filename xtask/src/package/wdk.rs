//! The Windows-host flow: when `cargo xtask package` runs on Windows with the WDK installed, the
//! package is stamped, checked, signed and catalogued by Microsoft's own tools:
//!
//! ```text
//! stampinf -f wanlayer.inf -a amd64|arm64|x86 -d MM/DD/YYYY -v 0.1.0.0
//! infverif /v wanlayer.inf
//! signtool sign /fd SHA256 /f <pfx> /p <password> wanlayer.sys
//! inf2cat /driver:<dir> /os:10_X64|10_RS3_ARM64|10_X86
//! signtool sign /fd SHA256 /f <pfx> /p <password> wanlayer.cat
//! ```
//!
//! The tools are found on `PATH`, else under `%WDKContentRoot%` (default
//! `C:\Program Files (x86)\Windows Kits\10\`) in `bin\<newest version>\<host arch>\`
//! (`inf2cat` lives in `bin\<version>\x86\`). The identity tokens of the INX are stamped by
//! [`super::stamp::identity_tokens`] first, since stampinf knows only its own tokens. The result
//! is verified by the same Rust checks as the built-in flow.
//!
//! This path cannot run on the Linux machines the project is built on; it is compiled and
//! type-checked there, and exercised only on a Windows host with the WDK.

use crate::image::Arch;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The WDK tools this flow runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tools {
    /// `stampinf.exe`.
    pub stampinf: PathBuf,
    /// `infverif.exe`.
    pub infverif: PathBuf,
    /// `signtool.exe`.
    pub signtool: PathBuf,
    /// `inf2cat.exe`.
    pub inf2cat: PathBuf,
}

/// The WDK tools, when this is a Windows host that has them all.
pub fn detect() -> Option<Tools> {
    if !cfg!(windows) {
        return None;
    }
    let root = std::env::var_os("WDKContentRoot")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(r"C:\Program Files (x86)\Windows Kits\10"));
    let host = if std::env::consts::ARCH == "aarch64" { "arm64" } else { "x64" };
    let find = |name: &str, arch_dirs: &[&str]| find_tool(name, &root, arch_dirs);
    Some(Tools {
        stampinf: find("stampinf.exe", &[host, "x64", "x86"])?,
        infverif: find("infverif.exe", &[host, "x64", "x86"])?,
        signtool: find("signtool.exe", &[host, "x64", "x86"])?,
        inf2cat: find("inf2cat.exe", &["x86", host])?,
    })
}

/// `name` on `PATH`, else in the newest `<root>\bin\<version>\<arch>\` that has it.
fn find_tool(name: &str, root: &Path, arch_dirs: &[&str]) -> Option<PathBuf> {
    if let Some(found) = std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| candidate.is_file()))
    {
        return Some(found);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir(root.join("bin"))
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.file_name().is_some_and(|name| name.to_string_lossy().starts_with("10.")))
        .collect();
    versions.sort_by_key(|path| {
        path.file_name().map(|name| {
            name.to_string_lossy().split('.').map(|part| part.parse::<u32>().unwrap_or(0)).collect::<Vec<_>>()
        })
    });
    versions
        .iter()
        .rev()
        .chain(std::iter::once(&root.join("bin")))
        .flat_map(|version| arch_dirs.iter().map(move |arch| version.join(arch).join(name)))
        .find(|candidate| candidate.is_file())
}

/// The inf2cat `/os:` value of an architecture. `10_RS3_ARM64` (Windows 10 1709, the first
/// ARM64 release) is from the WDK's documented list as remembered, not checked against an
/// installed `inf2cat /?`.
pub fn inf2cat_os(arch: Arch) -> &'static str {
    match arch {
        Arch::X64 => "10_X64",
        Arch::Arm64 => "10_RS3_ARM64",
        // Any Windows 10 x86 (inf2cat.md); the Windows 11 22H2 WDK is the kit for x86 drivers.
        Arch::X86 => "10_X86",
    }
}

/// `args` for printing: the value after `/p` (a password) masked.
fn shown(args: &[String]) -> String {
    let masked: Vec<&str> = args
        .iter()
        .enumerate()
        .map(|(index, arg)| if index > 0 && args[index - 1] == "/p" { "********" } else { arg.as_str() })
        .collect();
    masked.join(" ")
}

fn run(tool: &Path, args: &[String], dir: &Path) -> Result<(), String> {
    println!("xtask: $ {} {}", tool.display(), shown(args));
    let status = Command::new(tool)
        .args(args)
        .current_dir(dir)
        .status()
        .map_err(|error| format!("could not start {}: {error}", tool.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{} {}` failed ({status})", tool.display(), shown(args)))
    }
}

/// What the WDK flow needs for one architecture.
pub struct Job<'a> {
    /// The package directory, holding the unsigned driver and the identity-stamped INF.
    pub dir: &'a Path,
    /// The architecture.
    pub arch: Arch,
    /// The INF file name in `dir`.
    pub inf: &'a str,
    /// The driver file name in `dir`.
    pub driver: &'a str,
    /// The catalog file name inf2cat writes.
    pub catalog: &'a str,
    /// `MM/DD/YYYY`.
    pub date: String,
    /// `w.x.y.z`.
    pub version: String,
    /// The PKCS #12 file signtool signs with, and its password.
    pub pfx: (&'a Path, &'a str),
}

/// Runs stampinf, infverif, signtool and inf2cat on `job.dir`.
///
/// # Errors
///
/// The first tool that fails, with its command line.
pub fn package(tools: &Tools, job: &Job<'_>) -> Result<(), String> {
    let arch = super::stamp::inf_arch(job.arch);
    let strings = |items: &[&str]| items.iter().map(|item| item.to_string()).collect::<Vec<_>>();
    run(&tools.stampinf, &strings(&["-f", job.inf, "-a", arch, "-d", &job.date, "-v", &job.version]), job.dir)?;
    run(&tools.infverif, &strings(&["/v", job.inf]), job.dir)?;
    let (pfx, password) = job.pfx;
    let pfx = pfx.display().to_string();
    let sign = |file: &str| strings(&["sign", "/fd", "SHA256", "/f", &pfx, "/p", password, file]);
    run(&tools.signtool, &sign(job.driver), job.dir)?;
    let driver_dir = format!("/driver:{}", job.dir.display());
    run(&tools.inf2cat, &strings(&[&driver_dir, &format!("/os:{}", inf2cat_os(job.arch))]), job.dir)?;
    run(&tools.signtool, &sign(job.catalog), job.dir)
}
