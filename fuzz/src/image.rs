//! `cargo xtask verify-image` on bytes in memory ([`xtask::image::verify_bytes`]): the PE/COFF
//! reader (PE32+ and PE32), every directory it walks, the checksum, and the driver and vendor
//! policies. The first byte chooses the policy (any architecture, x64, ARM64, vendor, x86); the
//! rest is the image.
//!
//! Invariants: no panic, whatever the bytes; a report that was read prints, and so does every
//! problem; judging the same report twice gives the same problems.

use xtask::image::{verify_bytes, Arch, Policy};

/// Runs one input.
pub fn run(data: &[u8]) {
    let policies = [
        Policy::for_arch(None),
        Policy::for_arch(Some(Arch::X64)),
        Policy::for_arch(Some(Arch::Arm64)),
        Policy::vendor(None),
        Policy::for_arch(Some(Arch::X86)),
    ];
    let Some((selector, image)) = data.split_first() else { return };
    let policy = &policies[usize::from(*selector) % policies.len()];
    match verify_bytes(image, policy) {
        Ok((report, problems)) => {
            let _ = report.to_string();
            for problem in &problems {
                let _ = problem.to_string();
            }
            assert_eq!(report.problems(policy).len(), problems.len(), "judging is deterministic");
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }
}
