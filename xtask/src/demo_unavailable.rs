//! `cargo xtask demo` on Windows hosts: the demo's simulated server runs `wanlayer.sys`'s own
//! handlers built for the host (`demo.rs`), and there the driver's crate is a kernel image (its
//! own allocator and panic handler, `raw-dylib` imports from `ntoskrnl.exe`) that the xtask
//! binary cannot link.

/// Says where the demo runs.
///
/// # Errors
/// Always: the demo runs on hosts other than Windows.
pub fn run() -> Result<(), String> {
    Err("the demo runs wanlayer.sys's handlers over the kernel model, which builds on hosts other than Windows (Linux, macOS); run `cargo xtask demo` there".to_string())
}
