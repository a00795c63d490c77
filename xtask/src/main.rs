//! `cargo xtask`: the one entry point for building, testing and demonstrating wanlayer.
//!
//! The command line is declared once, in `xtask-cli` (`xtask/cli`): the alias runs that crate's
//! light binary, which checks the arguments and answers `help` before this binary is built, then
//! runs this binary with the same arguments.

use clap::Parser;
use std::process::ExitCode;
use xtask::{bench, build, demo, fuzz, image, miri, package, sdk, soak, test};
use xtask_cli::{Cli, Command, MiriTargets};

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Test => test::run(),
        Command::Bench { sections } => bench::run(&sections),
        Command::Build { arch, release } => build::run(&arches(&arch), release),
        Command::Demo => demo::run(),
        Command::Fuzz { time, target, seed } => fuzz::run(time, target, seed),
        Command::VerifyImage { file, arch, vendor } => image::run(&file, arch.map(image_arch), vendor),
        Command::Package(options) => package::run(package::Options {
            arches: arches(&options.arch),
            pfx: options.pfx,
            pfx_password: options.pfx_password,
            catalog_version: if options.catalog_version == "2" {
                package::CatalogVersion::V2
            } else {
                package::CatalogVersion::V1
            },
            images: options.image,
            vendor_images: options.vendor_image,
            use_wdk: !options.no_wdk,
        }),
        Command::LintInf { file, package_dir } => package::run_lint(&file, package_dir.as_deref()),
        Command::SdkHeader { check } => sdk::run(check),
        Command::Soak { schedules, seed } => soak::run(schedules, seed),
        Command::Miri { target, full } => {
            let targets = match target {
                MiriTargets::X86_64 => vec![miri::MiriTarget::X86_64],
                MiriTargets::S390x => vec![miri::MiriTarget::S390x],
                MiriTargets::All => miri::MiriTarget::ALL.to_vec(),
            };
            miri::run_suites(&targets, full)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The architecture `--arch` named.
fn image_arch(arch: xtask_cli::Arch) -> image::Arch {
    match arch {
        xtask_cli::Arch::X64 => image::Arch::X64,
        xtask_cli::Arch::Arm64 => image::Arch::Arm64,
        xtask_cli::Arch::X86 => image::Arch::X86,
    }
}

/// The architectures `--arch` selected.
fn arches(selected: &xtask_cli::Arches) -> Vec<image::Arch> {
    selected.0.iter().copied().map(image_arch).collect()
}
