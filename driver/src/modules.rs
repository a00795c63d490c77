//! The module table: for each engine slot, the NDIS handles of the filter module attached there.
//!
//! The engine names a module by [`ModuleId`] (slot and generation); NDIS by its
//! `NdisFilterHandle`. The table is a fixed array in the driver's `.data`, indexed by
//! [`ModuleId::slot`] and as long as the engine's module table ([`MAX_MODULES`] =
//! `EngineConfig::max_modules`), so looking a module up takes no lock and no allocation.
//!
//! Each entry is also the *filter module context* the driver gives `NdisFSetAttributes`: NDIS passes
//! a pointer to the entry back to every handler ([`ModuleEntry::from_context`]), and the handler
//! reads the module's identity and handles from it.
//!
//! # Publication
//!
//! `FilterAttach` fills an entry (`filter`, `pool`, then `id` with release ordering) before
//! `NdisFSetAttributes` and before returning; `FilterDetach` clears it after the engine detached the
//! module. NDIS calls no handler of a module outside that window, and the engine calls out for a
//! module only inside it (its pause waits for every packet), so readers (acquire on `id`) always see
//! the handles of the module they asked for; a stale [`ModuleId`] (another generation) finds
//! nothing.

use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};

use wanlayer_core::ModuleId;
use wanlayer_ndis::types::{ContextHandle, FilterModuleHandle, NblPoolHandle, NdisHandle};

/// Filter modules attached at once: the engine's `EngineConfig::max_modules`. One per adapter the
/// filter binds to (NdisWan's IP, IPv6 and monitor edges, and every other adapter of the bound
/// media types).
pub const MAX_MODULES: usize = 64;

/// One module's NDIS handles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModuleHandles {
    /// The `NdisFilterHandle` `FilterAttach` received.
    pub filter: FilterModuleHandle,
    /// The NBL pool allocated for it at attach.
    pub pool: NblPoolHandle,
}

/// One slot of the table (and one filter module context).
#[derive(Debug)]
pub struct ModuleEntry {
    id: AtomicU32,
    filter: AtomicPtr<c_void>,
    pool: AtomicPtr<c_void>,
}

impl ModuleEntry {
    const fn vacant() -> Self {
        Self { id: AtomicU32::new(0), filter: AtomicPtr::new(ptr::null_mut()), pool: AtomicPtr::new(ptr::null_mut()) }
    }

    /// The module attached here (`ModuleId(0)` when vacant; the engine never hands out
    /// generation 0).
    pub fn module(&self) -> ModuleId {
        ModuleId(self.id.load(Ordering::Acquire))
    }

    /// The module's handles.
    pub fn handles(&self) -> ModuleHandles {
        ModuleHandles {
            filter: FilterModuleHandle::from_raw(self.filter.load(Ordering::Acquire)),
            pool: NblPoolHandle::from_raw(self.pool.load(Ordering::Acquire)),
        }
    }

    /// The filter module context to give `NdisFSetAttributes`: this entry's address.
    pub fn context(&'static self) -> ContextHandle {
        ContextHandle::from_raw((self as *const ModuleEntry).cast_mut().cast())
    }

    /// The entry a handler's filter module context names.
    ///
    /// # Safety
    /// `context` is a filter module context NDIS passed to a handler: one [`ModuleEntry::context`]
    /// produced (NDIS passes back exactly what `NdisFSetAttributes` was given).
    pub unsafe fn from_context(context: ContextHandle) -> &'static ModuleEntry {
        let entry = context.as_raw().cast::<ModuleEntry>().cast_const();
        // SAFETY: by the caller's promise `entry` points into the static `MODULES` table, which
        // lives as long as the driver and is only accessed through atomics.
        unsafe { &*entry }
    }
}

/// The table (see the module documentation).
#[derive(Debug)]
pub struct ModuleTable {
    entries: [ModuleEntry; MAX_MODULES],
    /// One past the highest slot ever published: ownership scans stop here.
    used: AtomicUsize,
}

/// The driver's one module table.
pub static MODULES: ModuleTable =
    ModuleTable { entries: [const { ModuleEntry::vacant() }; MAX_MODULES], used: AtomicUsize::new(0) };

impl ModuleTable {
    /// Publishes a freshly attached module's handles; returns its entry (the module context).
    ///
    /// # Errors
    /// The module's slot is outside the table (an engine configured larger than [`MAX_MODULES`]).
    pub fn publish(&self, module: ModuleId, handles: ModuleHandles) -> Result<&ModuleEntry, ModuleId> {
        let slot = usize::from(module.slot());
        let entry = self.entries.get(slot).ok_or(module)?;
        entry.filter.store(handles.filter.as_raw(), Ordering::Relaxed);
        entry.pool.store(handles.pool.as_raw(), Ordering::Relaxed);
        entry.id.store(module.0, Ordering::Release);
        self.used.fetch_max(slot + 1, Ordering::AcqRel);
        Ok(entry)
    }

    /// Clears a detached module's entry; returns the handles it held.
    pub fn retire(&self, module: ModuleId) -> Option<ModuleHandles> {
        let entry = self.entries.get(usize::from(module.slot()))?;
        if entry.id.compare_exchange(module.0, 0, Ordering::AcqRel, Ordering::Acquire).is_err() {
            return None;
        }
        let handles = entry.handles();
        entry.filter.store(ptr::null_mut(), Ordering::Release);
        entry.pool.store(ptr::null_mut(), Ordering::Release);
        Some(handles)
    }

    /// The handles of `module`, if it is attached (a stale generation finds nothing).
    pub fn handles(&self, module: ModuleId) -> Option<ModuleHandles> {
        let entry = self.entries.get(usize::from(module.slot()))?;
        (module.0 != 0 && entry.module() == module).then(|| entry.handles())
    }

    /// True when an NBL with this `SourceHandle` and `NdisPoolHandle` was allocated by the driver:
    /// the standard test (a filter sets `SourceHandle` to its filter module handle on the NBLs it
    /// originates, and nobody else may), strengthened by the pool, which is the module's own.
    pub fn originated(&self, source: NdisHandle, pool: NblPoolHandle) -> bool {
        if source.is_null() || pool.is_null() {
            return false;
        }
        let used = self.used.load(Ordering::Acquire).min(MAX_MODULES);
        self.entries[..used].iter().any(|entry| {
            entry.filter.load(Ordering::Relaxed) == source.as_raw() && entry.pool.load(Ordering::Relaxed) == pool.as_raw()
        })
    }
}
