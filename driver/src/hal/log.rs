//! Levelled debug output: `DbgPrintEx(DPFLTR_IHVNETWORK_ID, level, "%s", message)`.
//!
//! The message is formatted into a fixed buffer on the stack (no allocation, so it works at
//! `DISPATCH_LEVEL` and when pool is exhausted), cut at [`MESSAGE_MAX`] bytes — `DbgPrintEx`
//! itself transmits at most 512 bytes — and passed as the argument of a constant `"%s\n"` format,
//! so a `%` in a message is never interpreted.
//!
//! Enable the levels with the `IHVNETWORK` component filter: `ed nt!Kd_IHVNETWORK_Mask 0xf` in the
//! debugger, or `HKLM\SYSTEM\CurrentControlSet\Control\Session Manager\Debug Print Filter`,
//! value `IHVNETWORK`.

use core::fmt::{self, Write};

use wanlayer_core::hal::Level;
use wanlayer_ndis::kernel::{
    DPFLTR_ERROR_LEVEL, DPFLTR_IHVNETWORK_ID, DPFLTR_INFO_LEVEL, DPFLTR_TRACE_LEVEL, DPFLTR_WARNING_LEVEL,
};

/// Bytes of one message, the terminating NUL included: what `DbgPrintEx` transmits at most.
pub const MESSAGE_MAX: usize = 512;

/// Every message starts with this, so `!dbgprint` output can be filtered.
const PREFIX: &str = "wanlayer: ";

/// A message being formatted: bytes past the end are dropped, one byte is kept for the NUL.
struct MessageBuffer {
    bytes: [u8; MESSAGE_MAX],
    len: usize,
}

impl MessageBuffer {
    const fn new() -> Self {
        Self { bytes: [0; MESSAGE_MAX], len: 0 }
    }

    /// The message, NUL-terminated (an interior NUL ends it early, which is all it can do).
    fn as_c_str(&mut self) -> *const core::ffi::c_char {
        let end = self.len.min(MESSAGE_MAX - 1);
        self.bytes[end] = 0;
        self.bytes.as_ptr().cast()
    }
}

impl Write for MessageBuffer {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let room = (MESSAGE_MAX - 1).saturating_sub(self.len);
        let take = text.len().min(room);
        self.bytes[self.len..self.len + take].copy_from_slice(&text.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

/// The `DPFLTR_*_LEVEL` of a level.
fn filter_level(level: Level) -> u32 {
    match level {
        Level::Error => DPFLTR_ERROR_LEVEL,
        Level::Warning => DPFLTR_WARNING_LEVEL,
        Level::Info => DPFLTR_INFO_LEVEL,
        Level::Trace => DPFLTR_TRACE_LEVEL,
    }
}

/// Formats and prints one message.
///
/// # IRQL
/// `<= DISPATCH_LEVEL` (`DbgPrintEx` with an ANSI `%s` argument in non-paged memory).
pub fn dbg_print(level: Level, message: fmt::Arguments<'_>) {
    let mut buffer = MessageBuffer::new();
    let _ = buffer.write_str(PREFIX);
    let _ = buffer.write_fmt(message);
    let text = buffer.as_c_str();
    // SAFETY: the format is a NUL-terminated constant with one `%s`, matched by `text`, a
    // NUL-terminated string on this (resident) stack that outlives the call.
    unsafe { wanlayer_ndis::imports::DbgPrintEx(DPFLTR_IHVNETWORK_ID, filter_level(level), c"%s\n".as_ptr(), text) };
}
