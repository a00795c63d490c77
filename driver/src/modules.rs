//! The driver's module table: for each engine slot, the NDIS handles of the filter module attached
//! there, and the filter module context NDIS passes back to every handler.
//!
//! The table and its rules (publication at attach, retirement at detach, lookups, the ownership
//! test of NBLs coming back) are [`wanlayer_driver_logic::modules`], tested on the host; this file
//! holds the driver's one instance and turns a context NDIS passed back into its entry.

use wanlayer_ndis::types::ContextHandle;

pub use wanlayer_driver_logic::modules::{ModuleEntry, ModuleHandles, ModuleTable, MAX_MODULES};

/// The driver's one module table.
pub static MODULES: ModuleTable = ModuleTable::new();

/// The entry a handler's filter module context names.
///
/// # Safety
/// `context` is a filter module context NDIS passed to a handler: one [`ModuleEntry::context`]
/// of an entry of [`MODULES`] produced (NDIS passes back exactly what `NdisFSetAttributes` was
/// given).
pub unsafe fn module_entry(context: ContextHandle) -> &'static ModuleEntry {
    let entry = context.as_raw().cast::<ModuleEntry>().cast_const();
    // SAFETY: by the caller's promise `entry` points into the static `MODULES` table, which
    // lives as long as the driver and is only accessed through atomics.
    unsafe { &*entry }
}
