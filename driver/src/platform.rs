//! The one place the two build flows differ.
//!
//! * Default (`cargo xtask build`, any host): our pool allocator ([`crate::hal::alloc`], which
//!   honours alignment), our panic handler ([`crate::hal::bugcheck`]: `KeBugCheckEx` with file and
//!   line), our levelled `DbgPrintEx` ([`crate::hal::log`]), and the two symbols `core` references
//!   (`_fltused`, `__CxxFrameHandler3`) defined as windows-drivers-rs defines them.
//! * `--features wdk` (Windows host with the WDK, through cargo-make / cargo-wdk): `wdk-alloc`,
//!   `wdk-panic` and `wdk::println!` instead; `wdk-sys` then defines `_fltused` and
//!   `__CxxFrameHandler3` itself, and `build.rs` runs `wdk_build::configure_wdk_binary_build`.
//!   `wdk-alloc` ignores `Layout::align()` (facts §1): nothing the driver allocates needs more than
//!   the 16 bytes pool blocks have. This flow cannot be built on Linux (`wdk-build` refuses
//!   non-Windows hosts) and is not built by `cargo xtask build`.
//! * The host (the driver-in-the-loop tests, `driver/host-tests`): the default flow without its
//!   allocator, panic handler and MSVC symbols — the test binary's `std` provides them — and the
//!   imports resolved to the kernel model (`crates/wanlayer-kernel-model`).
//!
//! Everything else — the NDIS imports (`raw-dylib`, from `wanlayer-ndis`), the HAL, the callbacks —
//! is the same in both.

use core::fmt;

use wanlayer_core::hal::Level;

#[cfg(not(feature = "wdk"))]
mod flow {
    use core::fmt;
    use wanlayer_core::hal::Level;

    pub(super) fn print(level: Level, message: fmt::Arguments<'_>) {
        crate::hal::log::dbg_print(level, message);
    }
}

/// What a kernel image needs and a host test binary's `std` already has.
#[cfg(all(not(feature = "wdk"), target_os = "windows"))]
mod image {
    #[global_allocator]
    static ALLOCATOR: crate::hal::alloc::PoolAllocator = crate::hal::alloc::PoolAllocator::new();

    #[panic_handler]
    fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
        crate::hal::bugcheck::bug_check(info)
    }

    /// Referenced by `core::fmt` (floating point formatting) although the driver does no floating
    /// point; defined as windows-drivers-rs does.
    // SAFETY: `_fltused` is the symbol MSVC-ABI objects reference for floating point support; no
    // other crate in this build defines it (wdk-sys, which also does, is only in the `wdk` flow).
    #[unsafe(no_mangle)]
    pub static _fltused: () = ();

    /// Referenced by the unwind tables of the precompiled `core` even with `panic = "abort"`;
    /// never called (nothing unwinds). Defined as windows-drivers-rs does, but `extern "C"`: on x86
    /// `"system"` is stdcall and would name it `___CxxFrameHandler3@0`, which `core` does not call.
    // SAFETY: `__CxxFrameHandler3` is the MSVC C++ frame handler symbol; no other crate in this
    // build defines it (wdk-sys, which also does, is only in the `wdk` flow).
    #[unsafe(no_mangle)]
    pub extern "C" fn __CxxFrameHandler3() -> i32 {
        0
    }
}

#[cfg(feature = "wdk")]
mod flow {
    use core::fmt;
    use wanlayer_core::hal::Level;

    extern crate wdk_panic;

    #[global_allocator]
    static ALLOCATOR: wdk_alloc::WdkAllocator = wdk_alloc::WdkAllocator;

    pub(super) fn print(level: Level, message: fmt::Arguments<'_>) {
        wdk::println!("wanlayer: {level:?}: {message}");
    }
}

/// Writes one debug message (the engine's [`Log`](wanlayer_core::hal::Log) and the driver's own).
///
/// # IRQL
/// `<= DISPATCH_LEVEL`.
pub fn print(level: Level, message: fmt::Arguments<'_>) {
    flow::print(level, message);
}
