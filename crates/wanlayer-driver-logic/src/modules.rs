//! The module table: for each engine slot, the NDIS handles of the filter module attached there.
//!
//! The engine names a module by [`ModuleId`] (slot and generation); NDIS by its
//! `NdisFilterHandle`. The table is a fixed array (the driver keeps one in `.data`), indexed by
//! [`ModuleId::slot`] and as long as the engine's module table ([`MAX_MODULES`] =
//! `EngineConfig::max_modules`), so looking a module up takes no lock and no allocation.
//!
//! Each entry is also the *filter module context* the driver gives `NdisFSetAttributes`: NDIS
//! passes a pointer to the entry back to every handler ([`ModuleEntry::context`]; the driver
//! turns it back into the entry).
//!
//! # Publication
//!
//! `FilterAttach` fills an entry ([`ModuleTable::publish`]: `filter`, `pool`, then `id` with
//! release ordering) before `NdisFSetAttributes` and before returning; `FilterDetach` clears it
//! ([`ModuleTable::retire`]) after the engine detached the module. NDIS calls no handler of a
//! module outside that window, and the engine calls out for a module only inside it (its pause
//! waits for every packet), so readers (acquire on `id`) always see the handles of the module
//! they asked for; a stale [`ModuleId`] (another generation) finds nothing.

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
        ContextHandle::from_raw(ptr::from_ref(self).cast_mut().cast())
    }
}

/// The table (see the module documentation).
#[derive(Debug)]
pub struct ModuleTable {
    entries: [ModuleEntry; MAX_MODULES],
    /// One past the highest slot ever published: ownership scans stop here.
    used: AtomicUsize,
}

impl Default for ModuleTable {
    fn default() -> Self {
        Self::new()
    }
}

impl ModuleTable {
    /// An empty table (`const`: the driver's is a static).
    pub const fn new() -> Self {
        Self { entries: [const { ModuleEntry::vacant() }; MAX_MODULES], used: AtomicUsize::new(0) }
    }

    /// Publishes a freshly attached module's handles; returns its entry (the module context).
    ///
    /// A slot still holding an earlier generation is taken over: the engine frees a slot in
    /// `detach` before `FilterDetach` retires its entry, so an attach of another adapter may
    /// reuse it in between; the late retire of the earlier generation then finds nothing.
    ///
    /// # Errors
    /// The module's slot is outside the table (an engine configured larger than [`MAX_MODULES`]),
    /// or the module is the vacant id 0: the module is returned and nothing changes.
    pub fn publish(&self, module: ModuleId, handles: ModuleHandles) -> Result<&ModuleEntry, ModuleId> {
        let slot = usize::from(module.slot());
        let entry = self.entries.get(slot).ok_or(module)?;
        if module.0 == 0 {
            return Err(module);
        }
        entry.filter.store(handles.filter.as_raw(), Ordering::Relaxed);
        entry.pool.store(handles.pool.as_raw(), Ordering::Relaxed);
        entry.id.store(module.0, Ordering::Release);
        self.used.fetch_max(slot + 1, Ordering::AcqRel);
        Ok(entry)
    }

    /// Clears a detached module's entry; returns the handles it held (`None` for a module that is
    /// not published: vacant, another generation, or outside the table).
    pub fn retire(&self, module: ModuleId) -> Option<ModuleHandles> {
        let entry = self.entries.get(usize::from(module.slot()))?;
        if module.0 == 0 || entry.id.compare_exchange(module.0, 0, Ordering::AcqRel, Ordering::Acquire).is_err() {
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
        self.entries
            .iter()
            .take(used)
            .any(|entry| entry.filter.load(Ordering::Relaxed) == source.as_raw() && entry.pool.load(Ordering::Relaxed) == pool.as_raw())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handles(n: usize) -> ModuleHandles {
        ModuleHandles {
            filter: FilterModuleHandle::from_raw(ptr::without_provenance_mut(0x1000 * n)),
            pool: NblPoolHandle::from_raw(ptr::without_provenance_mut(0x1000 * n + 8)),
        }
    }

    fn module(slot: u16, generation: u16) -> ModuleId {
        ModuleId(u32::from(generation) << 16 | u32::from(slot))
    }

    #[test]
    fn publish_then_lookup_then_retire() {
        let table = ModuleTable::new();
        let id = module(3, 1);
        let entry = table.publish(id, handles(1)).expect("published");
        assert_eq!(entry.module(), id);
        assert_eq!(table.handles(id), Some(handles(1)));
        assert!(table.originated(NdisHandle::from(handles(1).filter), handles(1).pool));
        assert_eq!(table.retire(id), Some(handles(1)));
        assert_eq!(table.handles(id), None);
        assert_eq!(table.retire(id), None, "retired once");
        assert!(!table.originated(NdisHandle::from(handles(1).filter), handles(1).pool));
        assert_eq!(entry.module(), ModuleId(0));
    }

    #[test]
    fn a_stale_generation_finds_nothing_and_retires_nothing() {
        let table = ModuleTable::new();
        table.publish(module(0, 2), handles(2)).expect("published");
        assert_eq!(table.handles(module(0, 1)), None);
        assert_eq!(table.retire(module(0, 1)), None);
        assert_eq!(table.handles(module(0, 2)), Some(handles(2)));
    }

    #[test]
    fn slots_outside_the_table_and_the_vacant_id_are_refused() {
        let table = ModuleTable::new();
        let outside = module(MAX_MODULES as u16, 1);
        assert_eq!(table.publish(outside, handles(1)).err(), Some(outside));
        assert_eq!(table.handles(outside), None);
        assert_eq!(table.retire(outside), None);
        assert_eq!(table.publish(ModuleId(0), handles(1)).err(), Some(ModuleId(0)));
        assert_eq!(table.handles(ModuleId(0)), None);
        assert_eq!(table.retire(ModuleId(0)), None);
    }

    #[test]
    fn a_new_generation_takes_over_a_slot_whose_retire_comes_late() {
        let table = ModuleTable::new();
        table.publish(module(5, 1), handles(1)).expect("published");
        table.publish(module(5, 2), handles(2)).expect("taken over");
        assert_eq!(table.retire(module(5, 1)), None, "the late retire of the old generation");
        assert_eq!(table.handles(module(5, 2)), Some(handles(2)));
        assert!(!table.originated(NdisHandle::from(handles(1).filter), handles(1).pool));
    }

    #[test]
    fn ownership_needs_both_the_module_handle_and_its_pool() {
        let table = ModuleTable::new();
        table.publish(module(MAX_MODULES as u16 - 1, 1), handles(1)).expect("published");
        table.publish(module(0, 1), handles(2)).expect("published");
        let (one, two) = (handles(1), handles(2));
        assert!(table.originated(NdisHandle::from(one.filter), one.pool), "the last slot is scanned");
        assert!(table.originated(NdisHandle::from(two.filter), two.pool));
        assert!(!table.originated(NdisHandle::from(one.filter), two.pool), "another module's pool");
        assert!(!table.originated(NdisHandle::NULL, one.pool));
        assert!(!table.originated(NdisHandle::from(one.filter), NblPoolHandle::NULL));
    }

    #[test]
    fn the_context_is_the_entry() {
        static TABLE: ModuleTable = ModuleTable::new();
        TABLE.publish(module(1, 1), handles(1)).expect("published");
        let entry: &'static ModuleEntry = &TABLE.entries[1];
        assert_eq!(entry.context().as_raw().cast_const(), ptr::from_ref(entry).cast());
    }
}
