//! The command line of `cargo xtask`, declared once with `clap`: the light binary of this crate
//! checks it (and answers `help`) before anything heavy builds, and the `xtask` binary parses the
//! same declarations to run the command.
//!
//! A value with a fixed set of spellings is an enum deriving [`ValueEnum`]: [`Arch`] is the one
//! place a new driver architecture is named on the command line.

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// `cargo xtask <command> [options]`.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", arg_required_else_help = true)]
#[command(about = "Build, package, sign, verify, demo and test wanlayer")]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build, stamp, sign and catalogue the drivers into target/package/<arch>/
    ///
    /// Builds wanlayer.sys and wlclamp.sys (release), then stamps, signs and catalogues them into
    /// target/package/<arch>/ and verifies the result.
    Package(PackageArgs),
    /// Everything CI checks
    ///
    /// The host tests, the SDK's C header, the engine built with no OS, lints for the host and the
    /// driver workspace, every kernel image verified, the signed packages, the demo.
    Test,
    /// Instruction counts under callgrind, for BENCHMARKS.md
    ///
    /// The rules classifier beside libpcap, the engine's send and receive paths, the divert path;
    /// results go in BENCHMARKS.md.
    Bench {
        /// The sections to measure (default: all)
        #[arg(value_enum)]
        sections: Vec<BenchSection>,
    },
    /// Cross-build wanlayer.sys and wlclamp.sys into target/wanlayer/<arch>/
    ///
    /// Cross-builds wanlayer.sys and the sample vendor driver wlclamp.sys into
    /// target/wanlayer/<arch>/ and verifies the images.
    Build {
        /// The architectures to build
        #[arg(long, default_value = "all", ignore_case = true, value_parser = arches())]
        arch: Arches,
        /// Build with the release profile
        #[arg(long)]
        release: bool,
    },
    /// Generate the SDK's C header from its Rust definitions
    ///
    /// Generates crates/wanlayer-sdk/include/wanlayer.h (and its layout check) from the SDK's Rust
    /// definitions, then compiles them as C99.
    SdkHeader {
        /// Check that the checked-in files are current instead of writing them
        #[arg(long)]
        check: bool,
    },
    /// Report a driver image and fail naming every problem found
    VerifyImage {
        /// The image (.sys)
        file: PathBuf,
        /// The architecture it must be for (default: the one its machine type names)
        #[arg(long, ignore_case = true)]
        arch: Option<Arch>,
        /// Judge it by the vendor driver policy (ntoskrnl.exe imports only)
        #[arg(long)]
        vendor: bool,
    },
    /// Check an INF against the lightweight-filter rules and the files of its package
    LintInf {
        /// The INF
        file: PathBuf,
        /// The package directory whose files the INF must name
        #[arg(long)]
        package_dir: Option<PathBuf>,
    },
    /// Drive a simulated RRAS server through a scripted session and print what wanlayer saw
    Demo,
    /// Run randomized NDIS schedules through wanlayer.sys's own handlers in the simulator
    ///
    /// Every schedule must end with zero violations, every packet back once and every pool at
    /// zero; a failure prints its seed and its shrunk schedule.
    Soak {
        /// How many schedules
        #[arg(long, default_value_t = 100_000)]
        schedules: u64,
        /// The first schedule's seed (decimal, or hexadecimal after 0x, as a failure prints it)
        #[arg(long, value_parser = seed)]
        seed: Option<u64>,
    },
    /// The unsafe-bearing crates' tests under Miri
    ///
    /// The tests of proto, the FFI crate, the SDK's provider table and the engine under Miri, on
    /// x86-64 and big-endian s390x (the provider scenarios run the driver in the loop: `cargo
    /// xtask test` runs them under Miri with it).
    Miri {
        /// The targets to interpret on
        #[arg(long, value_enum, default_value = "all")]
        target: MiriTargets,
        /// Run the slow tests on the skip list too
        #[arg(long)]
        full: bool,
    },
    /// Build and run the cargo-fuzz targets of fuzz/
    ///
    /// Builds the targets (nightly, AddressSanitizer; installed when missing) and runs each (or
    /// one) over a copy of its seed corpus; fails naming the target and the crash file.
    Fuzz {
        /// Seconds per target
        #[arg(long, default_value_t = 60)]
        time: u64,
        /// Run only this target
        #[arg(long)]
        target: Option<String>,
        /// Rewrite fuzz/corpus/*/seed-* first
        #[arg(long)]
        seed: bool,
    },
}

/// The options of `package`.
#[derive(Debug, Args)]
pub struct PackageArgs {
    /// The architectures to package
    #[arg(long, default_value = "all", ignore_case = true, value_parser = arches())]
    pub arch: Arches,
    /// Sign with this PKCS #12 certificate instead of the test certificate
    #[arg(long)]
    pub pfx: Option<PathBuf>,
    /// The password of --pfx
    #[arg(long, env = "WANLAYER_PFX_PASSWORD", default_value = "", hide_env_values = true)]
    pub pfx_password: String,
    /// The catalog format: 1, SHA-1 members; 2, SHA-256 members
    #[arg(long, default_value = "1", value_parser = ["1", "2"])]
    pub catalog_version: String,
    /// Package this built image instead of building (repeatable; the architecture is the image's)
    #[arg(long)]
    pub image: Vec<PathBuf>,
    /// With --image: package this vendor image beside it (repeatable)
    #[arg(long, requires = "image")]
    pub vendor_image: Vec<PathBuf>,
    /// On Windows, use the built-in signing even when the WDK is installed
    #[arg(long)]
    pub no_wdk: bool,
}

/// A driver architecture wanlayer ships, as `--arch` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Arch {
    /// x86-64
    #[value(alias = "amd64", alias = "x86_64")]
    X64,
    /// AArch64
    #[value(alias = "aarch64")]
    Arm64,
    /// 32-bit x86
    #[value(alias = "i386", alias = "i686")]
    X86,
}

/// The architectures `--arch` of `build` and `package` selects: one, or `all`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arches(pub Vec<Arch>);

/// `--arch`'s parser: an [`Arch`] (its spellings and aliases) or `all`.
fn arches() -> impl TypedValueParser<Value = Arches> {
    let names = Arch::value_variants().iter().filter_map(ValueEnum::to_possible_value);
    PossibleValuesParser::new(names.chain([PossibleValue::new("all").help("every architecture")])).map(|name| {
        Arches(
            Arch::value_variants()
                .iter()
                .copied()
                .filter(|arch| {
                    name == "all" || arch.to_possible_value().is_some_and(|value| value.matches(&name, true))
                })
                .collect(),
        )
    })
}

/// A seed: decimal, or hexadecimal after `0x`.
fn seed(text: &str) -> Result<u64, String> {
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|_| format!("'{text}' is not a number"))
}

/// A section of `bench`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchSection {
    /// The rules classifier beside libpcap, compile time and memory per rule
    Rules,
    /// The engine's send and receive paths, locks per packet, line-up latency, bytes per link
    Engine,
    /// The divert path
    Divert,
}

/// The targets of `miri`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MiriTargets {
    /// x86-64 (little-endian)
    #[value(name = "x86_64")]
    X86_64,
    /// s390x (big-endian)
    S390x,
    /// Both
    All,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Command, clap::Error> {
        Cli::try_parse_from(["cargo xtask"].iter().chain(args)).map(|cli| cli.command)
    }

    #[test]
    fn the_declarations_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn build_and_package_take_one_architecture_or_all() {
        let all = Arches(vec![Arch::X64, Arch::Arm64, Arch::X86]);
        assert!(matches!(parse(&["build"]), Ok(Command::Build { arch, release: false }) if arch == all));
        assert!(
            matches!(parse(&["build", "--arch", "arm64", "--release"]), Ok(Command::Build { arch, release: true }) if arch.0 == [Arch::Arm64])
        );
        assert!(matches!(parse(&["build", "--arch=X64"]), Ok(Command::Build { arch, .. }) if arch.0 == [Arch::X64]));
        assert!(
            matches!(parse(&["build", "--arch", "aarch64"]), Ok(Command::Build { arch, .. }) if arch.0 == [Arch::Arm64])
        );
        assert!(
            matches!(parse(&["build", "--arch", "i686"]), Ok(Command::Build { arch, .. }) if arch.0 == [Arch::X86])
        );
        assert!(matches!(parse(&["package", "--arch", "all"]), Ok(Command::Package(options)) if options.arch == all));
        assert!(parse(&["build", "--arch", "mips"]).is_err());
        assert!(parse(&["build", "--arch"]).is_err());
        assert!(parse(&["build", "--debug"]).is_err());
    }

    #[test]
    fn package_options_keep_their_spelling() {
        let Ok(Command::Package(options)) = parse(&[
            "package",
            "--pfx",
            "a.pfx",
            "--pfx-password=pw",
            "--catalog-version",
            "2",
            "--image",
            "x.sys",
            "--image",
            "y.sys",
            "--vendor-image",
            "v.sys",
            "--no-wdk",
        ]) else {
            panic!("the options parse");
        };
        assert_eq!((options.pfx, options.pfx_password.as_str()), (Some(PathBuf::from("a.pfx")), "pw"));
        assert_eq!((options.catalog_version.as_str(), options.image.len(), options.vendor_image.len()), ("2", 2, 1));
        assert!(options.no_wdk);
        assert!(parse(&["package", "--catalog-version", "3"]).is_err());
        assert!(parse(&["package", "--vendor-image", "v.sys"]).is_err(), "--vendor-image goes with --image");
    }

    #[test]
    fn the_other_commands_keep_their_spelling() {
        assert!(matches!(parse(&["test"]), Ok(Command::Test)));
        assert!(parse(&["test", "extra"]).is_err());
        assert!(matches!(parse(&["demo"]), Ok(Command::Demo)));
        assert!(matches!(parse(&["bench"]), Ok(Command::Bench { sections }) if sections.is_empty()));
        assert!(
            matches!(parse(&["bench", "rules", "divert"]), Ok(Command::Bench { sections }) if sections == [BenchSection::Rules, BenchSection::Divert])
        );
        assert!(parse(&["bench", "nope"]).is_err());
        assert!(matches!(parse(&["sdk-header", "--check"]), Ok(Command::SdkHeader { check: true })));
        assert!(parse(&["sdk-header", "--write"]).is_err());
        assert!(matches!(
            parse(&["verify-image", "a.sys", "--arch", "arm64", "--vendor"]),
            Ok(Command::VerifyImage { arch: Some(Arch::Arm64), vendor: true, .. })
        ));
        assert!(parse(&["verify-image"]).is_err());
        assert!(parse(&["verify-image", "a.sys", "b.sys"]).is_err(), "one file at a time");
        assert!(matches!(
            parse(&["lint-inf", "a.inf", "--package-dir", "d"]),
            Ok(Command::LintInf { package_dir: Some(_), .. })
        ));
        assert!(matches!(parse(&["soak"]), Ok(Command::Soak { schedules: 100_000, seed: None })));
        assert!(matches!(parse(&["soak", "--schedules", "5", "--seed", "7"]), Ok(Command::Soak { schedules: 5, seed: Some(7) })));
        assert!(parse(&["soak", "--driver"]).is_err(), "the driver is the soak's only target");
        assert!(matches!(parse(&["soak", "--seed", "0x1f"]), Ok(Command::Soak { seed: Some(31), .. })));
        assert!(parse(&["soak", "--seed", "x"]).is_err());
        assert!(matches!(parse(&["miri"]), Ok(Command::Miri { target: MiriTargets::All, full: false })));
        assert!(matches!(
            parse(&["miri", "--target=s390x", "--full"]),
            Ok(Command::Miri { target: MiriTargets::S390x, full: true })
        ));
        assert!(parse(&["miri", "--target", "x64"]).is_err());
        assert!(matches!(parse(&["fuzz"]), Ok(Command::Fuzz { time: 60, target: None, seed: false })));
        assert!(matches!(
            parse(&["fuzz", "--time", "10", "--target", "wire", "--seed"]),
            Ok(Command::Fuzz { time: 10, seed: true, .. })
        ));
        assert!(parse(&["fuzz", "--time", "x"]).is_err());
        assert!(parse(&["fuzz", "--jobs"]).is_err());
        assert!(parse(&["nope"]).is_err());
    }
}
