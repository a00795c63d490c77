//! The NDIS 6 and Windows kernel FFI subset of wanlayer: everything the kernel driver needs to talk
//! to `ndis.sys`, `ntoskrnl.exe` and `hal.dll`, and nothing more.
//!
//! No WDK crate covers NDIS filters (`wdk-sys` has no NDIS, `windows-sys` only NDIS 5), so the
//! layouts and signatures here are our own, written from the public `ndis.h`/`wdm.h` documentation
//! and the project's facts file. This crate and the future `driver/` are the only homes of `unsafe`
//! in the workspace.
//!
//! It is a leaf: it depends on no other crate of the workspace and knows nothing of the engine.
//! What its values mean to the engine (an [`NblChain`] as the engine's packet chain, a line up as
//! a link) is said by the driver.
//!
//! * [`types`], [`kernel`]: handles, `UNICODE_STRING`, `NDIS_OBJECT_HEADER`, kernel scalar types and
//!   constants.
//! * [`nbl`]: `NET_BUFFER_LIST`, `NET_BUFFER`, `MDL` and the functions for what C does with macros
//!   (`NET_BUFFER_LIST_FIRST_NB`, `NET_BUFFER_LIST_STATUS`, `NET_BUFFER_LIST_INFO`, ...).
//! * [`frame`]: copying frame bytes out of (and back into) a `NET_BUFFER`'s MDL chain.
//! * [`chain`]: [`Nbl`], an owned NBL, and [`NblChain`], an owned chain of them.
//! * [`lightweight_filter`]: the lightweight-filter structures (characteristics, attach/pause/restart
//!   parameters, status indications, control device attributes) and flags.
//! * [`oid`]: `NDIS_OID_REQUEST`, and what a filter that passes OID requests down by cloning
//!   keeps in the clone and copies back to the original.
//! * [`io`]: `DRIVER_OBJECT`, `IRP`, `IO_STACK_LOCATION` and `CTL_CODE`, for `DriverUnload` and
//!   the control device's dispatch routines; `FILE_OBJECT` (`FsContext`) and the create
//!   parameters (`IO_SECURITY_CONTEXT`) for per-handle state.
//! * [`csq`]: cancel-safe IRP queues (`IO_CSQ`, its callbacks) and the `LIST_ENTRY` operations a
//!   queue is built from, for the control device's pending requests.
//! * [`wan`]: `NDIS_WAN_LINE_UP` / `NDIS_WAN_LINE_DOWN`.
//! * [`wan_status`]: reading a WAN status indication, with every length and pointer validated in safe
//!   code, and writing the line-up answer back.
//! * `imports`: the `raw-dylib` imports (on other targets the same names, resolved by the host
//!   tests' kernel model).
//! * `runtime`: the pool allocator, the panic bug check and debug output
//!   every Rust kernel driver here shares (`wanlayer.sys`, SDK vendor drivers).
//! * [`sync`]: what those drivers synchronise with — [`sync::Global`], the cell that holds a
//!   driver's state between `DriverEntry` and `DriverUnload`, and [`sync::SpinLock`], a value
//!   behind a `KSPIN_LOCK`.
//!
//! # Layouts and the host tests
//!
//! Every structure carries compile-time size and offset assertions for 64-bit targets, where x64
//! and ARM64 share one layout (and, for `NDIS_WAN_LINE_UP`, for 32-bit x86 too). The Linux host
//! the tests run on (`x86_64-unknown-linux-gnu`) also has 64-bit pointers and lays these `#[repr(C)]`
//! structures out exactly as MSVC does — they contain only integers, pointers and arrays of them,
//! with no `long` (which differs between the two ABIs) — so the same assertions hold there, and the
//! host tests that build NBLs, MDL chains and status indications in memory exercise the layouts the
//! kernel will hand the driver.
//!
//! # Safety
//!
//! Raw accessors are `unsafe fn`s over raw pointers with a `# Safety` section each. The owned types
//! ([`Nbl`], [`NblChain`], [`wan_status::Indication`]) take their validity promise once, in an
//! `unsafe fn from_raw`, and are safe to use afterwards. Every `unsafe` block holds exactly one
//! unsafe operation and a `// SAFETY:` comment naming the preconditions it relies on.
#![no_std]
// Kernel code never allocates infallibly: clippy.toml lists what aborts on a failed allocation.
#![cfg_attr(not(test), deny(clippy::disallowed_methods, clippy::disallowed_macros, clippy::disallowed_types))]
#![cfg_attr(test, allow(clippy::disallowed_methods, clippy::disallowed_macros, clippy::disallowed_types))]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks, clippy::multiple_unsafe_ops_per_block)]

#[cfg(test)]
extern crate std;

/// Declares a kernel type this crate only ever handles behind a pointer: zero-sized, `!Send`,
/// `!Sync`, `!Unpin`, so it can neither be built nor moved in Rust.
macro_rules! opaque {
    ($(#[$attr:meta])* $name:ident) => {
        $(#[$attr])*
        ///
        /// Opaque: only ever behind a pointer, passed through to the kernel and never read or
        /// written by this crate.
        #[repr(C)]
        pub struct $name {
            _opaque: [u8; 0],
            _not_send_sync_unpin: core::marker::PhantomData<(*mut u8, core::marker::PhantomPinned)>,
        }
    };
}

/// Layout checks for the host tests: prints each field's offset and asserts it is the published one.
#[cfg(test)]
pub(crate) fn check_offsets(prefix: &str, fields: &[(&str, usize, usize)]) {
    for &(name, got, want) in fields {
        std::println!("{prefix}{name} @ {got:#x} (expected {want:#x})");
        assert_eq!(got, want, "{prefix}{name}");
    }
}

pub mod chain;
pub mod csq;
pub mod frame;
pub mod io;
pub mod kernel;
pub mod lightweight_filter;
pub mod nbl;
pub mod oid;
pub mod registry;
pub mod sync;
pub mod types;
pub mod wan;
pub mod wan_status;

pub mod imports;
pub mod pool;
pub mod runtime;

pub use chain::{Nbl, NblChain};
pub use frame::FrameError;
pub use types::RawNdisStatus;
pub use wan_status::{CheckedLineUp, Indication, StatusError, WanStatus};
