//! A panic is a bug check: the driver cannot unwind, and continuing after a broken invariant in a
//! kernel driver corrupts other people's memory.
//!
//! `KeBugCheckEx(WANLAYER_BUGCHECK, file, file_len, line, column)`: nothing is formatted (the
//! formatter could itself fail or need pool), so the parameters carry where the panic happened:
//!
//! | parameter | value |
//! | --- | --- |
//! | 1 | address of the source file name (UTF-8, in the image: `da <p1> L<p2>` in WinDbg) |
//! | 2 | length of the file name in bytes |
//! | 3 | line |
//! | 4 | column |
//!
//! The message is not kept: the location names the `panic!`/`assert!`, whose text is in the
//! source.

use core::panic::PanicInfo;

/// The wanlayer bug-check code: "WLPN" (wanlayer panic) read as a big-endian 32-bit value,
/// 0x574C504E, so it is recognisable in a crash dump.
pub const WANLAYER_BUGCHECK: u32 = u32::from_be_bytes(*b"WLPN");

/// Stops the system with [`WANLAYER_BUGCHECK`] and the panic's location.
///
/// # IRQL
/// Any.
pub fn bug_check(info: &PanicInfo<'_>) -> ! {
    wanlayer_ndis::runtime::bug_check(WANLAYER_BUGCHECK, info)
}
