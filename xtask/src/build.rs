//! `cargo xtask build [--arch x64|arm64|x86|all] [--release]`: cross-builds the kernel images for
//! each architecture on any host — rust-lld, `raw-dylib` imports, no WDK — and verifies them:
//! `wanlayer.sys` (the filter) and `wlclamp.sys` (the SDK's sample vendor driver,
//! `driver/vendor-sample`), both from the driver workspace.
//!
//! x86 is built with nightly for a soft-float target specification of its own, `core` and `alloc`
//! compiled from source ([`X86_KERNEL_TARGET`]): no x87/MMX/SSE instruction may reach a 32-bit
//! kernel image, and verify-image checks that none did.
//!
//! For each architecture and image: install the rustup target if missing, build with `cargo rustc`
//! and the kernel driver link arguments passed explicitly on the command line (never through
//! `RUSTFLAGS`, which an empty environment variable would silently override, facts §1), with the
//! target directory at `target/driver/` or `$CARGO_TARGET_DIR/driver/` (both crates are `rlib`s
//! in their manifests, so that the host tests can link their code; `--crate-type cdylib` makes
//! the image); copy the `.dll` to
//! `target/wanlayer/<arch>/<name>.sys` and the `.pdb` beside it; run
//! [`image::verify_file_with`](crate::image::verify_file_with) on the copy — the wanlayer policy
//! for `wanlayer.sys`, the vendor policy (`ntoskrnl.exe` imports only) for `wlclamp.sys` — print
//! its report (sections, imports by DLL, exports, debug directory) and keep it as
//! `<name>.verify.txt` beside the image. Any failure stops the build with a message naming it.
//!
//! [`build`] is the library entry point for `cargo xtask test` and `package`; [`driver_identity`]
//! reads the filter's GUID and names from `driver/src/identity.rs`, the one place they are defined,
//! for the INF, and [`vendor_identity`] the sample vendor's from `driver/vendor-sample/src/lib.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::image::{self, Arch, Policy};
use crate::test::{ensure_targets, workspace_root};

/// The link arguments of a kernel driver image (facts §1): native subsystem, `DriverEntry` as the
/// entry point, no default libraries, signed-image integrity check, NX, ASLR, and `/RELEASE` for
/// the PE checksum the loader verifies. (rustc itself adds `/DEBUG` and `/PDBALTPATH:%_PDB%`, so
/// the image names its PDB by file name only, not by this machine's build path.)
const DRIVER_LINK_ARGS: &[&str] = &[
    "/DRIVER",
    "/SUBSYSTEM:NATIVE",
    "/NODEFAULTLIB",
    "/ENTRY:DriverEntry",
    "/INTEGRITYCHECK",
    "/NXCOMPAT",
    "/DYNAMICBASE",
    "/RELEASE",
];

/// The driver's rustup target for an architecture: what the images of x64 and ARM64 are built
/// for, and what the driver workspace is linted for on every architecture (x86 images are built
/// for [`X86_KERNEL_TARGET`], derived from this one).
pub fn target_triple(arch: Arch) -> &'static str {
    match arch {
        Arch::X64 => "x86_64-pc-windows-msvc",
        Arch::Arm64 => "aarch64-pc-windows-msvc",
        // `extern "system"` is stdcall there; rustc's target adds /SAFESEH (and
        // /LARGEADDRESSAWARE) to every link: with no exception handler in the image, rust-lld
        // writes no load configuration and sets NO_SEH, which verify-image requires (x86-facts §5).
        Arch::X86 => "i686-pc-windows-msvc",
    }
}

/// The x86 images' target: `i686-pc-windows-msvc` as `rustc +nightly -Z unstable-options
/// --print target-spec-json` prints it, with the software floating-point ABI
/// (`"rustc-abi": "softfloat"`, features `-mmx,-sse,-sse2,+soft-float`, as rustc's own
/// `i686-unknown-uefi` expresses it) and `panic-strategy` abort. 32-bit Windows does not save x87
/// or SSE state for kernel code, and the stock target's `core` (prebuilt for SSE2) holds such
/// instructions, so `core` and `alloc` are built from source with it ([`X86_NIGHTLY_ARGS`]). Its
/// name ends in `-windows-msvc` because cargo copies a `.pdb` beside the image only for such
/// target names.
pub const X86_KERNEL_TARGET: &str = "driver/targets/i686-kernel-windows-msvc.json";

/// The toolchain of the x86 build: a target specification file and `-Zbuild-std` are unstable, and
/// the specification's keys (`rustc-abi` among them) have changed between nightlies, so the build
/// is pinned to the nightly the specification was taken from. `.ci/run` installs the same one.
pub const X86_TOOLCHAIN: &str = "nightly-2026-10-30";

/// The cargo arguments of the x86 build beyond the others': the target specification is a file,
/// `core` and `alloc` are built for it (compiler-builtins without its `mem` functions: `memcpy`
/// and friends are imported from `ntoskrnl.exe`, as on the other architectures), and every crate,
/// `core` included, is compiled without jump tables, which LLVM places inside `.text` on i686
/// COFF where verify-image's decoder would read their offsets as instructions.
pub const X86_NIGHTLY_ARGS: &[&str] =
    &["-Zjson-target-spec", "-Zbuild-std=core,alloc", "--config", "build.rustflags=[\"-Cjump-tables=no\"]"];

/// The directory name cargo builds `arch`'s images under (the target's name).
pub fn output_target_name(arch: Arch) -> &'static str {
    match arch {
        Arch::X86 => "i686-kernel-windows-msvc",
        other => target_triple(other),
    }
}

/// Where cargo writes `arch`'s unverified images (`wanlayer.dll`, `wlclamp.dll` and their
/// `.pdb`s) under the driver target directory ([`driver_target_dir`]).
pub fn output_dir(target_dir: &Path, arch: Arch, profile: &str) -> PathBuf {
    target_dir.join(output_target_name(arch)).join(profile)
}

/// A kernel image of the driver workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Image {
    /// `wanlayer.sys`, the filter (`driver/`).
    Wanlayer,
    /// `wlclamp.sys`, the SDK's sample vendor driver (`driver/vendor-sample/`).
    Vendor,
}

impl Image {
    /// The file stem of the image (and of the `.dll` and `.pdb` the build writes).
    pub fn stem(self) -> &'static str {
        match self {
            Image::Wanlayer => "wanlayer",
            Image::Vendor => "wlclamp",
        }
    }

    /// The policy the image is verified against.
    pub fn policy(self, arch: Arch) -> Policy {
        match self {
            Image::Wanlayer => Policy::for_arch(Some(arch)),
            Image::Vendor => Policy::vendor(Some(arch)),
        }
    }
}

/// Where `build` puts `image` for `arch`: `target/wanlayer/<arch>/<stem>.sys`.
pub fn built_path(image: Image, arch: Arch) -> PathBuf {
    workspace_root().join("target").join("wanlayer").join(arch.to_string()).join(format!("{}.sys", image.stem()))
}

/// The `cargo rustc` arguments that build `image` for `arch`.
fn cargo_args(image: Image, arch: Arch, release: bool, target_dir: &Path) -> Vec<String> {
    let mut args: Vec<String> = ["rustc", "--manifest-path", "driver/Cargo.toml"].into_iter().map(String::from).collect();
    if arch == Arch::X86 {
        args.extend(X86_NIGHTLY_ARGS.iter().copied().map(String::from));
    }
    match image {
        Image::Wanlayer => args.extend(["--lib", "--crate-type", "cdylib"].map(String::from)),
        Image::Vendor => args.extend(["--package", "wlclamp", "--lib", "--crate-type", "cdylib"].map(String::from)),
    }
    let target = if arch == Arch::X86 { X86_KERNEL_TARGET } else { target_triple(arch) };
    args.extend(["--target", target].map(String::from));
    args.push("--target-dir".into());
    args.push(target_dir.display().to_string());
    if release {
        args.push("--release".into());
    }
    args.push("--".into());
    for link_arg in DRIVER_LINK_ARGS {
        args.push("-C".into());
        args.push(format!("link-arg={link_arg}"));
    }
    args.extend(["-C", "linker=rust-lld", "-C", "target-feature=+crt-static"].map(String::from));
    args
}

/// The verified images of one architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// The architecture.
    pub arch: Arch,
    /// `wanlayer.sys`.
    pub driver: PathBuf,
    /// `wlclamp.sys`.
    pub vendor: PathBuf,
}

/// Builds, copies and verifies both images for each of `arches`.
///
/// # Errors
/// The first failure: a missing target that cannot be installed, a failed build, a missing output,
/// a copy error, or the verify-image problems of an image.
pub fn build(arches: &[Arch], release: bool) -> Result<Vec<Built>, String> {
    let triples: Vec<&str> = arches.iter().filter(|&&arch| arch != Arch::X86).map(|&arch| target_triple(arch)).collect();
    ensure_targets(&triples)?;
    if arches.contains(&Arch::X86) {
        ensure_rust_src(X86_TOOLCHAIN)?;
    }
    let mut built = Vec::new();
    for &arch in arches {
        let driver = build_image(Image::Wanlayer, arch, release)?;
        let vendor = build_image(Image::Vendor, arch, release)?;
        built.push(Built { arch, driver, vendor });
    }
    Ok(built)
}

/// Builds, copies and verifies one image; returns the `.sys` path.
fn build_image(image: Image, arch: Arch, release: bool) -> Result<PathBuf, String> {
    let root = workspace_root();
    let target_dir = driver_target_dir(&root);
    let profile = if release { "release" } else { "debug" };
    let args = cargo_args(image, arch, release, &target_dir);
    let mut command = if arch == Arch::X86 {
        println!("xtask: $ rustup run {X86_TOOLCHAIN} cargo {}", args.join(" "));
        let mut command = Command::new("rustup");
        command.args(["run", X86_TOOLCHAIN, "cargo"]);
        // The toolchain is rustup's choice here, not the one that runs xtask.
        command.env_remove("RUSTC").env_remove("RUSTUP_TOOLCHAIN");
        command
    } else {
        println!("xtask: $ cargo {}", args.join(" "));
        Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
    };
    command.args(&args).current_dir(&root);
    // The flags are on the command line; flags from the environment (meant for the host
    // build that runs xtask) must not reach the kernel image.
    for variable in ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_RUSTFLAGS"] {
        if std::env::var_os(variable).is_some() {
            println!("xtask: ignoring {variable} for the driver build");
        }
        command.env_remove(variable);
    }
    let status = command.status().map_err(|error| format!("could not start cargo: {error}"))?;
    if !status.success() {
        return Err(format!("building {}.sys for {arch} failed ({status})", image.stem()));
    }
    let out_dir = output_dir(&target_dir, arch, profile);
    let path = built_path(image, arch);
    let image_dir = path.parent().ok_or("image path without a directory")?;
    std::fs::create_dir_all(image_dir).map_err(|error| format!("cannot create {}: {error}", image_dir.display()))?;
    copy(&out_dir.join(format!("{}.dll", image.stem())), &path)?;
    copy(&out_dir.join(format!("{}.pdb", image.stem())), &path.with_extension("pdb"))?;
    let verdict = image::verify_file_with(&path, &image.policy(arch))?;
    let policy = match image {
        Image::Wanlayer => "wanlayer driver policy",
        Image::Vendor => "vendor driver policy",
    };
    let report = format!("verify-image: {} ({arch}, {profile}, {policy})\n{}", path.display(), verdict.report);
    print!("{report}");
    let kept = path.with_extension("verify.txt");
    std::fs::write(&kept, &report).map_err(|error| format!("cannot write {}: {error}", kept.display()))?;
    verdict.into_result()?;
    println!("verify-image: OK ({})", path.display());
    Ok(path)
}

/// Installs the `rust-src` component of `toolchain` (what `-Zbuild-std` compiles) if it is
/// missing.
fn ensure_rust_src(toolchain: &str) -> Result<(), String> {
    let installed = Command::new("rustup")
        .args(["component", "list", "--installed", "--toolchain", toolchain])
        .output()
        .map_err(|error| format!("could not run rustup: {error}"))?;
    if !installed.status.success() {
        // Not installed yet: rustup installs it with rust-src, or says why it cannot.
        return crate::test::run_command("rustup", &["toolchain", "install", toolchain, "--profile", "minimal", "--component", "rust-src"]);
    }
    if String::from_utf8_lossy(&installed.stdout).lines().any(|line| line.trim() == "rust-src") {
        return Ok(());
    }
    crate::test::run_command("rustup", &["component", "add", "rust-src", "--toolchain", toolchain])
}

/// Where cargo builds the images: `$CARGO_TARGET_DIR/driver` when the caller set a target
/// directory of its own (so concurrent builds in one checkout do not share a lock), else
/// `target/driver`. The verified copies always go to `target/wanlayer/<arch>/` ([`built_path`]).
pub fn driver_target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("driver"),
        _ => root.join("target").join("driver"),
    }
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::copy(from, to).map(|_| ()).map_err(|error| format!("cannot copy {} to {}: {error}", from.display(), to.display()))
}

/// The driver's identity, as `driver/src/identity.rs` defines it (see [`driver_identity`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverIdentity {
    /// `FILTER_GUID`: the INF's `NetCfgInstanceId`, the filter's `UniqueName`.
    pub filter_guid: String,
    /// `SERVICE_NAME`: the INF's `AddService` name.
    pub service_name: String,
    /// `FRIENDLY_NAME`.
    pub friendly_name: String,
    /// `CONTROL_SYMBOLIC_NAME`, e.g. `\DosDevices\WanLayer`.
    pub control_symbolic_name: String,
    /// `CONTROL_DEVICE_CLASS_GUID`.
    pub control_device_class_guid: String,
    /// `COMPONENT_ID`: the INF's model ID, what `netcfg -i` installs.
    pub component_id: String,
    /// `HELP_TEXT`: the INF's `Ndi\HelpText`.
    pub help_text: String,
    /// `PROVIDER`: the INF's provider and manufacturer.
    pub provider: String,
}

/// Reads every `pub const NAME: &str = "value";` of `source`, unescaping `\\` and `\"`.
pub fn string_constants(source: &str) -> Vec<(String, String)> {
    source
        .lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("pub const ")?;
            let (name, rest) = rest.split_once(':')?;
            let literal = rest.trim().strip_prefix("&str")?.trim().strip_prefix('=')?.trim().strip_suffix(';')?;
            let inner = literal.strip_prefix('"')?.strip_suffix('"')?;
            let mut value = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                value.push(if c == '\\' { chars.next()? } else { c });
            }
            Some((name.trim().to_string(), value))
        })
        .collect()
}

/// The driver's identity from `driver/src/identity.rs`.
///
/// # Errors
/// When the file cannot be read or a constant is missing.
pub fn driver_identity() -> Result<DriverIdentity, String> {
    let path = workspace_root().join("driver").join("src").join("identity.rs");
    let source = std::fs::read_to_string(&path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let constants = string_constants(&source);
    let get = |name: &str| {
        constants
            .iter()
            .find(|(found, _)| found == name)
            .map(|(_, value)| value.clone())
            .ok_or_else(|| format!("{} defines no `pub const {name}: &str`", path.display()))
    };
    Ok(DriverIdentity {
        filter_guid: get("FILTER_GUID")?,
        service_name: get("SERVICE_NAME")?,
        friendly_name: get("FRIENDLY_NAME")?,
        control_symbolic_name: get("CONTROL_SYMBOLIC_NAME")?,
        control_device_class_guid: get("CONTROL_DEVICE_CLASS_GUID")?,
        component_id: get("COMPONENT_ID")?,
        help_text: get("HELP_TEXT")?,
        provider: get("PROVIDER")?,
    })
}

/// The sample vendor driver's identity, as `driver/vendor-sample/src/lib.rs` defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorIdentity {
    /// `SERVICE_NAME`: the kernel service and the image's file stem.
    pub service_name: String,
    /// `DISPLAY_NAME`: the service's display name.
    pub display_name: String,
}

/// The sample vendor driver's identity from `driver/vendor-sample/src/lib.rs`.
///
/// # Errors
/// When the file cannot be read, a constant is missing, or the service name is not the image's.
pub fn vendor_identity() -> Result<VendorIdentity, String> {
    let path = workspace_root().join("driver").join("vendor-sample").join("src").join("lib.rs");
    let source = std::fs::read_to_string(&path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let constants = string_constants(&source);
    let get = |name: &str| {
        constants
            .iter()
            .find(|(found, _)| found == name)
            .map(|(_, value)| value.clone())
            .ok_or_else(|| format!("{} defines no `pub const {name}: &str`", path.display()))
    };
    let identity = VendorIdentity { service_name: get("SERVICE_NAME")?, display_name: get("DISPLAY_NAME")? };
    if identity.service_name != Image::Vendor.stem() {
        return Err(format!(
            "{}: SERVICE_NAME is '{}' but the image is {}.sys",
            path.display(),
            identity.service_name,
            Image::Vendor.stem()
        ));
    }
    Ok(identity)
}

/// `cargo xtask build`.
pub fn run(arches: &[Arch], release: bool) -> Result<(), String> {
    let identity = driver_identity()?;
    println!(
        "xtask: building {}.sys ({}), filter {} ({})",
        identity.service_name, identity.friendly_name, identity.filter_guid, identity.control_symbolic_name
    );
    for built in build(arches, release)? {
        println!("xtask: built {} and {}", built.driver.display(), built.vendor.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vendor_image_is_a_cdylib_of_its_package() {
        let joined = cargo_args(Image::Vendor, Arch::X64, false, Path::new("/t")).join(" ");
        assert!(joined.starts_with("rustc --manifest-path driver/Cargo.toml --package wlclamp --lib --crate-type cdylib"), "{joined}");
        assert!(joined.contains("--target x86_64-pc-windows-msvc --target-dir /t -- "), "{joined}");
        assert!(joined.contains("link-arg=/ENTRY:DriverEntry"));
        assert_eq!(built_path(Image::Vendor, Arch::Arm64).file_name().unwrap(), "wlclamp.sys");
    }

    #[test]
    fn x86_builds_core_without_floating_point_for_its_own_target() {
        let args = cargo_args(Image::Wanlayer, Arch::X86, true, Path::new("/t"));
        let joined = args.join(" ");
        assert!(joined.contains("-Zbuild-std=core,alloc"), "{joined}");
        assert!(args.iter().any(|arg| arg == "build.rustflags=[\"-Cjump-tables=no\"]"), "{joined}");
        assert!(joined.contains(&format!("--target {X86_KERNEL_TARGET} --target-dir /t --release -- ")), "{joined}");
        assert_eq!(output_dir(Path::new("/t"), Arch::X86, "debug"), Path::new("/t/i686-kernel-windows-msvc/debug"));
        let x64 = cargo_args(Image::Wanlayer, Arch::X64, false, Path::new("/t")).join(" ");
        assert!(!x64.contains("build-std") && !x64.contains("jump-tables"), "{x64}");
    }

    #[test]
    fn the_x86_target_specification_is_soft_float() {
        let path = workspace_root().join(X86_KERNEL_TARGET);
        let spec = std::fs::read_to_string(&path).unwrap();
        assert_eq!(Path::new(X86_KERNEL_TARGET).file_stem().unwrap(), output_target_name(Arch::X86));
        for needed in [
            "\"rustc-abi\": \"softfloat\"",
            "\"features\": \"-mmx,-sse,-sse2,+soft-float\"",
            "\"llvm-target\": \"i686-pc-windows-msvc\"",
            "\"arch\": \"x86\"",
            "\"os\": \"windows\"",
            "\"env\": \"msvc\"",
            "\"panic-strategy\": \"abort\"",
        ] {
            assert!(spec.contains(needed), "{} lacks {needed}", path.display());
        }
    }

    #[test]
    fn the_vendor_identity_names_its_image() {
        let identity = vendor_identity().unwrap();
        assert_eq!(identity.service_name, "wlclamp");
        assert!(!identity.display_name.is_empty());
    }

    #[test]
    fn the_link_arguments_are_on_the_command_line() {
        let args = cargo_args(Image::Wanlayer, Arch::Arm64, true, Path::new("/t"));
        let joined = args.join(" ");
        assert!(joined.starts_with("rustc --manifest-path driver/Cargo.toml --lib"));
        assert!(joined.contains("--target aarch64-pc-windows-msvc --target-dir /t --release -- "));
        for needed in [
            "link-arg=/DRIVER",
            "link-arg=/SUBSYSTEM:NATIVE",
            "link-arg=/ENTRY:DriverEntry",
            "link-arg=/RELEASE",
            "linker=rust-lld",
            "target-feature=+crt-static",
        ] {
            assert!(args.iter().any(|arg| arg == needed), "{needed} missing from {joined}");
        }
    }

    #[test]
    fn identity_constants_are_parsed_and_unescaped() {
        let source = "pub const A: &str = \"{X}\";\n  pub const B: &str = \"\\\\Device\\\\W\";\npub const N: usize = 3;\n// pub const C: &str = \"no\";";
        let constants = string_constants(source);
        assert_eq!(constants, vec![("A".to_string(), "{X}".to_string()), ("B".to_string(), "\\Device\\W".to_string())]);
    }

    #[test]
    fn the_driver_identity_file_defines_every_name() {
        let identity = driver_identity().unwrap();
        assert_eq!(identity.service_name, "wanlayer");
        assert!(identity.filter_guid.starts_with('{') && identity.filter_guid.len() == 38, "{}", identity.filter_guid);
        assert_eq!(identity.control_symbolic_name, "\\DosDevices\\WanLayer");
    }
}
