//! Links libpcap (Debian: libpcap-dev) when it is installed, and says so with `cfg(libpcap)`;
//! without it the package builds empty, so `cargo test --workspace` works on any machine.
//! `cargo xtask test` installs libpcap-dev (or fails under CI) before running these tests.
use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(libpcap)");
    println!("cargo:rerun-if-env-changed=WANLAYER_NO_LIBPCAP");
    // WANLAYER_NO_LIBPCAP=1 builds as on a machine without libpcap (to check the skip).
    let forced_off = std::env::var_os("WANLAYER_NO_LIBPCAP").is_some();
    let pkg_config = Command::new("pkg-config").args(["--exists", "libpcap"]).status().is_ok_and(|status| status.success());
    let library = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib"]
        .iter()
        .any(|dir| Path::new(dir).join("libpcap.so").exists());
    if (pkg_config || library) && !forced_off {
        println!("cargo:rustc-link-lib=pcap");
        println!("cargo:rustc-cfg=libpcap");
    } else {
        println!("cargo:warning=libpcap-dev is not installed: the differential tests and the benchmark are skipped");
    }
}
