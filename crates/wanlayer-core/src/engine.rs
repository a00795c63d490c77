//! The engine: modules, the hook chain, line up / line down, events and queries.
//!
//! Every method states its IRQL. None holds a lock while it calls out of the filter (the platform's
//! packet calls, `pause_complete`, or a hook).

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;
use core::mem::size_of;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::control::{Control, ControlState};
use crate::datapath::{Disposal, Outbox};
use crate::event::{Event, EventQueue, EventRecord};
use crate::gate::ModuleGate;
use crate::hal::{Hal, Level, Lock, ModuleId, OutOfMemory, PathContext, Pool, ReadMostly};
use crate::hook::{AddHookError, HookId, HookInfo, HookRef, HookRegistry, HookSlot, Registry, MAX_HOOKS};
use crate::link::{LineDown, LineUp, LineUpEffect, Link, LinkId, LinkSummary, LinkTable};
use crate::module::{
    AttachParams, DetachReport, ModuleCore, ModuleCounts, ModuleCounters, ModuleInfo, ModuleSlot, ModuleState, PauseProgress,
    StateError,
};
use crate::ndis_status::NdisStatus;
use crate::rules::RulesState;
use crate::stats::DropReason;
use crate::wire::{EtherType, MacAddress};
use once_cell::race::OnceBox;

/// The smallest IPv4 MTU (RFC 791): hooks cannot lower an IPv4 link below it.
const MIN_IPV4_TOTAL_SIZE: u32 = 68;
/// The smallest IPv6 MTU (RFC 8200): hooks cannot lower an IPv6 link below it.
const MIN_IPV6_TOTAL_SIZE: u32 = 1280;

/// Sizes of the engine's fixed tables.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct EngineConfig {
    /// Filter modules that can be attached at once (one per adapter the filter binds to).
    pub max_modules: usize,
    /// Events kept for tools before new ones are counted as lost.
    pub event_capacity: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self { max_modules: 64, event_capacity: 1024 }
    }
}

/// Why a module could not attach.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AttachError {
    /// Every module slot is in use.
    NoFreeSlot,
    /// No memory for the slot's per-processor structures (its first attach makes them); counted
    /// in [`Engine::attaches_refused`].
    OutOfMemory,
}

impl fmt::Display for AttachError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttachError::NoFreeSlot => f.write_str("every filter module slot is in use"),
            AttachError::OutOfMemory => f.write_str("no memory for the module slot's per-processor structures"),
        }
    }
}

/// Why a line up was not tracked. The indication is passed on regardless.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LineUpError {
    /// No module has that identity.
    UnknownModule(ModuleId),
    /// The module is not on an NdisWan edge.
    NotWan(ModuleId),
    /// No memory for the link entry (counted as untracked).
    OutOfMemory,
}

impl fmt::Display for LineUpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineUpError::UnknownModule(module) => write!(f, "{module} is not attached"),
            LineUpError::NotWan(module) => write!(f, "{module} is not an NdisWan edge"),
            LineUpError::OutOfMemory => f.write_str("no memory for the link entry"),
        }
    }
}

/// What the platform must do with a line up before passing it on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LineUpOutcome {
    /// The link as tracked.
    pub link: LinkSummary,
    /// The `MaximumTotalSize` to write into the status buffer before indicating it upward (equal to
    /// the indicated one unless a hook lowered it).
    pub reported_total_size: u32,
}

/// Why a hook could not be removed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RemoveHookError {
    /// No hook has that identity (never added, or removed already).
    UnknownHook(HookId),
}

impl fmt::Display for RemoveHookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemoveHookError::UnknownHook(id) => write!(f, "{id} is not registered"),
        }
    }
}

/// A module slot's structures, made at the slot's first attach and kept for the slot's later
/// attaches until the engine is dropped (see [`Engine::attach`]).
pub(crate) type SlotCell<H> = OnceBox<[ModuleSlot<H>; 1]>;

/// The engine: every filter module, the hook chain, the event queue and the control surface.
pub struct Engine<H: Hal> {
    pub(crate) hal: H,
    pub(crate) modules: Vec<SlotCell<H>>,
    /// What one slot's structures charge to [`Pool::Engine`] when its first attach makes them.
    slot_bytes: usize,
    attaches_refused: AtomicU64,
    pub(crate) hooks: HookRegistry<H::ReadMostly<Registry>>,
    pub(crate) hook_slots: Box<[HookSlot; MAX_HOOKS]>,
    events: H::Lock<EventQueue>,
    pub(crate) control: ControlState<H>,
    pub(crate) rules: RulesState<H>,
    next_link_id: AtomicU64,
    pub(crate) next_ticket: AtomicU64,
    charged: usize,
}

impl<H: Hal> Engine<H> {
    /// A new engine over `hal` with tables sized by `config`.
    ///
    /// # IRQL
    /// `PASSIVE_LEVEL` (driver entry).
    ///
    /// # Errors
    /// [`OutOfMemory`] when the tables cannot be allocated; nothing stays charged. A module slot's
    /// own structures (its lock-protected core, its per-processor gate and link-table lock) are
    /// made by its first attach, not here.
    pub fn new(hal: H, config: EngineConfig) -> Result<Self, OutOfMemory> {
        let slot_bytes = size_of::<[ModuleSlot<H>; 1]>() + ModuleGate::bytes(hal.processor_count());
        let charged = config.max_modules * size_of::<SlotCell<H>>()
            + Registry::ROOM_BYTES
            + size_of::<[HookSlot; MAX_HOOKS]>()
            + MAX_HOOKS * HookSlot::SHARD_BYTES;
        hal.try_charge(Pool::Engine, charged)?;
        let tables = Self::tables(&hal, config);
        let tables = tables.and_then(|(modules, registry, hook_slots, mut events)| match hal.new_read_mostly(registry) {
            Ok(registry) => Ok((modules, registry, hook_slots, events)),
            Err(error) => {
                // The event queue is made and charged already: its room goes back with it.
                events.release(&hal);
                Err(error)
            }
        });
        let (modules, registry, hook_slots, events) = match tables {
            Ok(tables) => tables,
            Err(error) => {
                hal.release(Pool::Engine, charged);
                return Err(error);
            }
        };
        Ok(Self {
            hooks: HookRegistry::new(registry),
            hook_slots,
            events: hal.new_lock(events),
            control: ControlState::new(&hal),
            rules: RulesState::new(&hal),
            modules,
            slot_bytes,
            attaches_refused: AtomicU64::new(0),
            next_link_id: AtomicU64::new(1),
            next_ticket: AtomicU64::new(1),
            charged,
            hal,
        })
    }

    /// The engine's tables, allocated on the heap so the engine itself stays small (kernel stack
    /// frames must stay under 4 KiB).
    #[allow(clippy::type_complexity)]
    fn tables(hal: &H, config: EngineConfig) -> Result<(Vec<SlotCell<H>>, Registry, Box<[HookSlot; MAX_HOOKS]>, EventQueue), OutOfMemory> {
        let mut modules = Vec::new();
        modules.try_reserve_exact(config.max_modules).map_err(|_| OutOfMemory)?;
        crate::memory::fill_within_capacity(&mut modules, config.max_modules, OnceBox::new)?;
        let registry = Registry::with_room()?;
        let mut hook_slots = Vec::new();
        hook_slots.try_reserve_exact(MAX_HOOKS).map_err(|_| OutOfMemory)?;
        for _ in 0..MAX_HOOKS {
            // Within the capacity reserved above.
            crate::memory::push_within_capacity(&mut hook_slots, HookSlot::new()?).map_err(|_| OutOfMemory)?;
        }
        let hook_slots: Box<[HookSlot; MAX_HOOKS]> = crate::memory::boxed_array(hook_slots)?;
        let events = EventQueue::new(hal, config.event_capacity)?;
        Ok((modules, registry, hook_slots, events))
    }

    /// The platform.
    pub fn hal(&self) -> &H {
        &self.hal
    }

    /// The slot of `module`, if its structures were made (one acquire load: the release store
    /// that published them happened before the module could be named to the engine).
    pub(crate) fn slot(&self, module: ModuleId) -> Option<&ModuleSlot<H>> {
        self.modules.get(usize::from(module.slot()))?.get().map(|[slot]| slot)
    }

    /// Every slot whose structures were made (attached now or before), with its index.
    pub(crate) fn made_slots(&self) -> impl Iterator<Item = (usize, &ModuleSlot<H>)> {
        self.modules.iter().enumerate().filter_map(|(index, cell)| cell.get().map(|[slot]| (index, slot)))
    }

    /// Attaches refused for want of memory for a slot's structures.
    pub fn attaches_refused(&self) -> u64 {
        self.attaches_refused.load(Ordering::Relaxed)
    }

    /// The structures of slot `cell`: made now if this is its first attach, charged to
    /// [`Pool::Engine`]; on failure nothing stays allocated or charged.
    ///
    /// # IRQL
    /// `PASSIVE_LEVEL`.
    fn make_slot<'a>(&self, cell: &'a SlotCell<H>) -> Result<&'a ModuleSlot<H>, OutOfMemory> {
        if let Some([slot]) = cell.get() {
            return Ok(slot);
        }
        self.hal.try_charge(Pool::Engine, self.slot_bytes)?;
        let made = ModuleGate::new(self.hal.processor_count()).and_then(|gate| {
            let links = self.hal.new_read_mostly(LinkTable::default())?;
            crate::memory::try_box(ModuleSlot {
                core: self.hal.new_lock(ModuleCore::vacant()),
                links,
                gate,
                counters: ModuleCounters::default(),
            })
        });
        match made {
            // Published with a release store; a racing attach that published first keeps its own.
            Ok(slot) => {
                if cell.set(slot).is_err() {
                    self.hal.release(Pool::Engine, self.slot_bytes);
                }
            }
            Err(error) => {
                self.hal.release(Pool::Engine, self.slot_bytes);
                return Err(error);
            }
        }
        cell.get().map(|[slot]| slot).ok_or(OutOfMemory)
    }

    /// Records an event in the engine's own queue and publishes it to the control device's
    /// subscribers, then wakes those that had a read pending. Lock order: events, then the hub.
    pub(crate) fn push_event(&self, event: Event) {
        let now = self.hal.now();
        let woken = self.events.with(|events| {
            let sequence = events.push(now, event);
            self.control.hub.with(|hub| hub.publish(&EventRecord { sequence, time: now, event }))
        });
        self.control.wake(woken.as_slice());
    }

    /// The engine's own event queue (the control device reads its sequence numbers).
    pub(crate) fn events_lock(&self) -> &H::Lock<EventQueue> {
        &self.events
    }

    /// The capacity of the engine's own event queue.
    pub(crate) fn own_event_capacity(&self) -> usize {
        self.events.with(|events| events.capacity())
    }

    /// The control surface: the IOCTL dispatcher, cleanup of handles, the event waker.
    pub fn control(&self) -> Control<'_, H> {
        Control { engine: self }
    }

    // ----- module state machine -------------------------------------------------------------

    /// Attaches a new module (`FilterAttach`): it ends up Paused.
    ///
    /// # IRQL
    /// `PASSIVE_LEVEL`.
    ///
    /// A slot's structures (its core, per-processor gate and link-table lock) are made by its first
    /// attach and kept, not freed, when the module detaches: the data path reads them with no lock
    /// and no reference count, so freeing them would need a grace period after which no processor
    /// can still be inside a call that named the old module; kept, a later attach to the slot
    /// (slots are taken lowest first) reuses them, and what stays allocated is bounded by the most
    /// modules attached at once.
    ///
    /// # Errors
    /// [`AttachError::NoFreeSlot`] when [`EngineConfig::max_modules`] modules are attached;
    /// [`AttachError::OutOfMemory`] when the free slot's structures cannot be made (nothing stays
    /// allocated or charged; counted in [`Engine::attaches_refused`]).
    pub fn attach(&self, params: AttachParams) -> Result<ModuleId, AttachError> {
        let mut claimed = None;
        for (index, cell) in self.modules.iter().enumerate() {
            let slot = match self.make_slot(cell) {
                Ok(slot) => slot,
                Err(OutOfMemory) => {
                    self.attaches_refused.fetch_add(1, Ordering::Relaxed);
                    self.hal.log(Level::Warning, format_args!("attach refused: no memory for module slot {index}"));
                    return Err(AttachError::OutOfMemory);
                }
            };
            claimed = slot.core.with(|core| {
                if core.state != ModuleState::Detached {
                    return None;
                }
                let generation = core.id.generation().wrapping_add(1).max(1);
                let id = ModuleId(u32::from(generation) << 16 | index as u32);
                *core = ModuleCore::vacant();
                core.id = id;
                core.kind = params.kind;
                core.mac_address = params.mac_address;
                core.if_index = params.if_index;
                core.state = ModuleState::Attaching;
                Some((id, slot))
            });
            if claimed.is_some() {
                break;
            }
        }
        let (id, slot) = claimed.ok_or(AttachError::NoFreeSlot)?;
        slot.counters.reset();
        slot.gate.reset_traffic();
        slot.core.with(|core| core.state = ModuleState::Paused);
        self.hal.log(Level::Info, format_args!("{id} attached as {}", params.kind.name()));
        self.push_event(Event::ModuleAttached { module: id, kind: params.kind });
        Ok(id)
    }

    /// Restarts a paused module (`FilterRestart`).
    ///
    /// # IRQL
    /// `PASSIVE_LEVEL`.
    ///
    /// # Errors
    /// [`StateError`] unless the module is Paused.
    pub fn restart(&self, module: ModuleId) -> Result<(), StateError> {
        self.transition(module, ModuleState::Paused, ModuleState::Restarting)?;
        self.transition(module, ModuleState::Restarting, ModuleState::Running)?;
        self.push_event(Event::ModuleRestarted(module));
        Ok(())
    }

    fn transition(&self, module: ModuleId, from: ModuleState, to: ModuleState) -> Result<(), StateError> {
        let slot = self.slot(module).ok_or(StateError::UnknownModule(module))?;
        slot.core.with(|core| {
            if !core.is(module) {
                return Err(StateError::UnknownModule(module));
            }
            if core.state != from {
                return Err(StateError::WrongState { module, state: core.state });
            }
            core.state = to;
            if to == ModuleState::Running {
                slot.gate.open(module, core.kind);
            } else if from == ModuleState::Running {
                slot.gate.close();
            }
            Ok(())
        })
    }

    /// Pauses a running module (`FilterPause`): packets hooks hold are completed (sends, with
    /// `NDIS_STATUS_PAUSED`) or returned (receives); the pause completes once every packet the
    /// module originated is back.
    ///
    /// # IRQL
    /// `PASSIVE_LEVEL`.
    ///
    /// # Errors
    /// [`StateError`] unless the module is Running.
    pub fn pause(&self, module: ModuleId) -> Result<PauseProgress, StateError> {
        self.transition(module, ModuleState::Running, ModuleState::Pausing)?;
        let Some(slot) = self.slot(module) else { return Err(StateError::UnknownModule(module)) };
        let mut flushed = Disposal::<H>::new(DropReason::Paused);
        slot.core.with(|core| core.taken.drain_where(|_| true, |taken| flushed.add(&slot.counters, &slot.links, taken)));
        let mut out = Outbox::<H>::default();
        flushed.drop_into(&self.hal, &mut out);
        out.flush(self, module, PathContext::default());
        let paused = slot.core.with(|core| {
            core.gate_busy = !slot.gate.is_drained();
            if core.outstanding() == 0 {
                core.state = ModuleState::Paused;
                true
            } else {
                core.pause_pending = true;
                false
            }
        });
        if paused {
            self.push_event(Event::ModulePaused(module));
            Ok(PauseProgress::Complete)
        } else {
            Ok(PauseProgress::Pending)
        }
    }

    /// Tells the platform a pending pause finished. Called with no lock held.
    pub(crate) fn finish_pause(&self, module: ModuleId) {
        self.push_event(Event::ModulePaused(module));
        self.hal.pause_complete(module);
    }

    /// Detaches a paused module (`FilterDetach`), forgetting its links and freeing its memory.
    ///
    /// # IRQL
    /// `PASSIVE_LEVEL`.
    ///
    /// # Errors
    /// [`StateError`] unless the module is Paused.
    pub fn detach(&self, module: ModuleId) -> Result<DetachReport, StateError> {
        let slot = self.slot(module).ok_or(StateError::UnknownModule(module))?;
        let report = slot.core.with(|core| {
            if !core.is(module) {
                return Err(StateError::UnknownModule(module));
            }
            if core.state != ModuleState::Paused {
                return Err(StateError::WrongState { module, state: core.state });
            }
            let links_dropped = slot.links.with(|links| links.clear(&self.hal));
            core.taken.release(&self.hal);
            core.state = ModuleState::Detached;
            Ok(DetachReport { links_dropped })
        })?;
        self.hal.log(Level::Info, format_args!("{module} detached, {} links dropped", report.links_dropped));
        self.push_event(Event::ModuleDetached { module, links_dropped: report.links_dropped });
        Ok(report)
    }

    // ----- WAN status indications -----------------------------------------------------------

    /// Handles `NDIS_STATUS_WAN_LINE_UP` before it is passed on: creates or updates the link, lets
    /// the hooks lower the size reported upward.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`.
    ///
    /// # Errors
    /// [`LineUpError`]: the link is not tracked; pass the indication on unchanged.
    pub fn line_up(&self, module: ModuleId, line_up: &LineUp<'_>) -> Result<LineUpOutcome, LineUpError> {
        let slot = self.slot(module).ok_or(LineUpError::UnknownModule(module))?;
        slot.counters.line_ups.increment();
        let now = self.hal.now();
        let effect = slot.core.with(|core| {
            if !core.is(module) {
                return Err(LineUpError::UnknownModule(module));
            }
            if !core.kind.is_wan() {
                return Err(LineUpError::NotWan(module));
            }
            slot.links.with(|links| {
                links
                    .line_up(&self.hal, module, line_up, now, || LinkId(self.next_link_id.fetch_add(1, Ordering::Relaxed)))
                    .map_err(|OutOfMemory| LineUpError::OutOfMemory)
            })
        });
        let effect = match effect {
            Ok(effect) => effect,
            Err(error) => {
                if error == LineUpError::OutOfMemory {
                    slot.counters.line_ups_untracked.increment();
                    self.hal.log(Level::Warning, format_args!("{module}: line up of {} untracked: no memory", line_up.remote_address));
                }
                return Err(error);
            }
        };
        let mut link = effect.summary();
        let floor = if line_up.protocol_type == EtherType::Ipv6 { MIN_IPV6_TOTAL_SIZE } else { MIN_IPV4_TOTAL_SIZE };
        let mut reported = link.maximum_total_size;
        let chain = self.chain_snapshot();
        for entry in chain.iter() {
            let counters = &self.hook_slots[usize::from(entry.id.slot)];
            counters.line_ups.increment();
            if let Some(size) = entry.hook.as_ref().and_then(|hook| hook.on_line_up(&link)) {
                let size = size.max(floor);
                if size < reported {
                    counters.sizes_lowered.increment();
                    reported = size;
                }
            }
        }
        drop(chain);
        if reported != link.maximum_total_size {
            slot.links.with(|links| links.set_reported_total_size(&line_up.remote_address, reported));
            link.reported_total_size = reported;
        }
        self.push_event(match effect {
            LineUpEffect::Created(_) => Event::LineUp(link),
            LineUpEffect::Updated(_) => Event::LineUpdated(link),
        });
        Ok(LineUpOutcome { link, reported_total_size: reported })
    }

    /// Records what the protocol above filled into the line-up buffer (`LocalAddress`,
    /// `DeviceName`), once the indication has returned.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`.
    pub fn line_up_indicated(&self, module: ModuleId, remote: MacAddress, local: MacAddress, device_name: &[u16]) -> Option<LinkSummary> {
        let slot = self.slot(module)?;
        let completed = slot.core.with(|core| {
            if !core.is(module) {
                return None;
            }
            slot.links.with(|links| links.complete_line_up(&self.hal, &remote, local, device_name))
        })?;
        if completed.device_name_lost {
            slot.counters.device_names_lost.increment();
            self.hal.log(Level::Warning, format_args!("{module}: device name of {remote} not kept: no memory"));
        }
        Some(completed.summary)
    }

    /// The protocol above answered `remote`'s line up late (NdisWan's "answer later" byte was set
    /// when the indication returned): what [`Engine::line_up_indicated`] recorded is provisional.
    /// The link's first send shows the final local address (its frames' source address); the
    /// engine records it then and announces [`Event::LineUpdated`]. Returns false when the link
    /// is gone.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`.
    pub fn line_up_answer_pending(&self, module: ModuleId, remote: MacAddress) -> bool {
        let Some(slot) = self.slot(module) else { return false };
        let marked = slot.core.with(|core| core.is(module) && slot.links.with(|links| links.mark_answer_pending(&remote)));
        if marked {
            self.hal.log(Level::Info, format_args!("{module}: the answer to the line up of {remote} comes later: its addresses are provisional"));
        }
        marked
    }

    /// Handles `NDIS_STATUS_WAN_LINE_DOWN`: the hooks hear of it, then the link is removed and the
    /// packets hooks still hold for it are dropped (sends completed with
    /// `NDIS_STATUS_MEDIA_DISCONNECTED`). Packets of the link already handed on come back as usual.
    ///
    /// Returns the link that went down, or `None` when the module did not know it.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`.
    pub fn line_down(&self, module: ModuleId, line_down: &LineDown, ctx: PathContext) -> Option<LinkSummary> {
        let slot = self.slot(module)?;
        slot.counters.line_downs.increment();
        let link = slot.core.with(|core| {
            core.is(module).then(|| slot.links.read(|links| links.get(&line_down.remote_address).map(Link::summary))).flatten()
        });
        let Some(link) = link else {
            slot.counters.line_downs_unknown.increment();
            return None;
        };
        let chain = self.chain_snapshot();
        for entry in chain.iter() {
            self.hook_slots[usize::from(entry.id.slot)].line_downs.increment();
            if let Some(hook) = &entry.hook {
                hook.on_line_down(&link);
            }
        }
        drop(chain);
        let mut orphans = Disposal::<H>::new(DropReason::LinkDown);
        let finished = slot.core.with(|core| {
            slot.links.with(|links| links.line_down(&self.hal, line_down));
            core.taken.drain_where(|taken| taken.link.id == link.id, |taken| orphans.add(&slot.counters, &slot.links, taken));
            core.try_finish_pause()
        });
        let mut out = Outbox::<H>::default();
        orphans.drop_into(&self.hal, &mut out);
        out.flush(self, module, ctx);
        if finished {
            self.finish_pause(module);
        }
        self.push_event(Event::LineDown(link));
        Some(link)
    }

    /// Counts a status indication the platform could not convert (short or inconsistent buffer).
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`.
    pub fn count_malformed_status(&self, module: ModuleId) {
        if let Some(slot) = self.slot(module) {
            slot.counters.malformed_status.increment();
        }
        self.hal.log(Level::Warning, format_args!("{module}: malformed WAN status indication passed on untouched"));
    }

    // ----- hooks ----------------------------------------------------------------------------

    /// Adds a hook to the chain at `altitude` (higher is closer to the IP layer).
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`.
    ///
    /// # Errors
    /// [`AddHookError::Full`] when [`MAX_HOOKS`] hooks are registered.
    pub fn add_hook(&self, name: &str, altitude: u32, hook: impl Into<HookRef>) -> Result<HookId, AddHookError> {
        let hook = hook.into();
        let (id, name) = self.hooks.with(|registry| {
            let id = registry.add(name, altitude, Some(hook))?;
            let name = registry.hooks.iter().find(|r| r.id == id).map(|r| r.name);
            Ok((id, name))
        })?;
        self.hook_slots[usize::from(id.slot)].reset();
        let name = name.unwrap_or_else(|| crate::hook::HookName::new(""));
        self.hal.log(Level::Info, format_args!("{id} '{name}' added at altitude {altitude}"));
        self.push_event(Event::HookAdded { id, name, altitude });
        Ok(id)
    }

    /// Removes a hook. When this returns the hook is never called again, and every packet it still
    /// held has been handed on along the rest of the chain.
    ///
    /// # IRQL
    /// `PASSIVE_LEVEL`: waits for calls in progress on other processors.
    ///
    /// # Errors
    /// [`RemoveHookError::UnknownHook`] for an identity that is not registered.
    pub fn remove_hook(&self, id: HookId) -> Result<HookInfo, RemoveHookError> {
        let registered = self.hooks.with(|registry| registry.remove(id)).ok_or(RemoveHookError::UnknownHook(id))?;
        let slot = &self.hook_slots[usize::from(id.slot)];
        self.hal.wait_until(&|| slot.is_idle());
        for (_, module_slot) in self.made_slots() {
            let module = module_slot.core.with(|core| core.id);
            let mut batch = [0u64; 64];
            loop {
                let found = module_slot.core.with(|core| core.taken.oldest_serials_where(|taken| taken.taker == id, &mut batch));
                for serial in &batch[..found] {
                    if let Some(taken) = module_slot.core.with(|core| core.taken.remove(*serial)) {
                        self.resume(module, module_slot, taken, PathContext::default());
                    }
                }
                if found < batch.len() {
                    break;
                }
            }
        }
        let info = self.hook_info(id, registered.name, registered.position.altitude);
        drop(registered);
        self.hal.log(Level::Info, format_args!("{id} '{}' removed", info.name));
        self.push_event(Event::HookRemoved { id, name: info.name });
        Ok(info)
    }

    pub(crate) fn hook_info(&self, id: HookId, name: crate::hook::HookName, altitude: u32) -> HookInfo {
        let slot = &self.hook_slots[usize::from(id.slot)];
        HookInfo {
            id,
            name,
            altitude,
            send: slot.verdict_counts(crate::hook::Direction::Send),
            receive: slot.verdict_counts(crate::hook::Direction::Receive),
            line_ups: slot.line_ups.get(),
            sizes_lowered: slot.sizes_lowered.get(),
            line_downs: slot.line_downs.get(),
        }
    }

    /// Visits every registered hook in chain order from the bottom (NdisWan) up: lowest altitude
    /// first, and the later of equal altitudes before the earlier. `visit` runs with no lock held.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`.
    pub fn visit_hooks(&self, mut visit: impl FnMut(&HookInfo)) {
        let mut listed = [None; MAX_HOOKS];
        self.hooks.with(|registry| {
            for (place, registered) in listed.iter_mut().zip(registry.hooks.iter()) {
                *place = Some((registered.id, registered.name, registered.position.altitude));
            }
        });
        for (id, name, altitude) in listed.iter().flatten() {
            visit(&self.hook_info(*id, *name, *altitude));
        }
    }

    // ----- queries --------------------------------------------------------------------------

    /// What tools see of a module.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`.
    pub fn module_info(&self, module: ModuleId) -> Option<ModuleInfo> {
        let slot = self.slot(module)?;
        slot.core.with(|core| core.is(module).then(|| core.info(slot.gate.packets_in_flight(), slot.links.read(LinkTable::len))))
    }

    /// Every attached module.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`.
    pub fn modules(&self) -> impl Iterator<Item = ModuleInfo> + '_ {
        self.made_slots().filter_map(|(_, slot)| {
            slot.core.with(|core| {
                (core.state != ModuleState::Detached).then(|| core.info(slot.gate.packets_in_flight(), slot.links.read(LinkTable::len)))
            })
        })
    }

    /// A module's counters.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`.
    pub fn module_counts(&self, module: ModuleId) -> Option<ModuleCounts> {
        let slot = self.slot(module)?;
        let mut counts = slot.core.with(|core| core.is(module)).then(|| slot.counters.snapshot())?;
        slot.gate.add_traffic(&mut counts);
        Some(counts)
    }

    /// Visits every live link of a module under the module's lock. `visit` must not call out of the
    /// filter or block; copy what is needed.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`.
    pub fn visit_links(&self, module: ModuleId, mut visit: impl FnMut(&Link)) {
        if let Some(slot) = self.slot(module) {
            slot.core.with(|core| {
                if core.is(module) {
                    slot.links.read(|links| links.iter().for_each(&mut visit));
                }
            });
        }
    }

    /// Reads one link under the module's lock.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`.
    pub fn with_link<R>(&self, module: ModuleId, remote: &MacAddress, read: impl FnOnce(&Link) -> R) -> Option<R> {
        let slot = self.slot(module)?;
        slot.core.with(|core| core.is(module).then(|| slot.links.read(|links| links.get(remote).map(read))).flatten())
    }

    /// Zeroes every module, link and hook counter.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`.
    pub fn reset_counters(&self) {
        for (_, slot) in self.made_slots() {
            slot.counters.reset();
            slot.gate.reset_traffic();
            slot.links.read(|links| links.iter().for_each(Link::reset_counters));
        }
        self.hook_slots.iter().for_each(HookSlot::reset);
    }

    /// Reads the link with identity `id`, on whichever module has it (a scan of every link
    /// table: for tools, not the data path), under its module's lock.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`.
    pub fn find_link<R>(&self, id: LinkId, read: impl FnOnce(ModuleId, &Link) -> R) -> Option<R> {
        let mut read = Some(read);
        for (_, slot) in self.made_slots() {
            let found = slot.core.with(|core| {
                if core.state == ModuleState::Detached {
                    return None;
                }
                slot.links.read(|links| {
                    let link = links.get_by_id(id)?;
                    read.take().map(|read| read(core.id, link))
                })
            });
            if found.is_some() {
                return found;
            }
        }
        None
    }

    /// What tools see of a registered hook; `None` when `id` is not registered.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`.
    pub fn registered_hook_info(&self, id: HookId) -> Option<HookInfo> {
        let (name, altitude) = self.hooks.with(|registry| registry.hooks.iter().find(|r| r.id == id).map(|r| (r.name, r.position.altitude)))?;
        Some(self.hook_info(id, name, altitude))
    }

    /// Zeroes a module's counters and those of its links; false when no module has that identity.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`.
    pub fn reset_module_counters(&self, module: ModuleId) -> bool {
        let Some(slot) = self.slot(module) else { return false };
        let found = slot.core.with(|core| {
            if core.is(module) {
                slot.links.read(|links| links.iter().for_each(Link::reset_counters));
            }
            core.is(module)
        });
        if found {
            slot.counters.reset();
            slot.gate.reset_traffic();
        }
        found
    }

    /// Zeroes a hook's counters; false when `id` is not registered.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`.
    pub fn reset_hook_counters(&self, id: HookId) -> bool {
        let registered = self.hooks.with(|registry| registry.hooks.iter().any(|r| r.id == id));
        if registered {
            self.hook_slots[usize::from(id.slot)].reset();
        }
        registered
    }

    /// Takes the oldest event.
    ///
    /// # IRQL
    /// `<= DISPATCH_LEVEL`.
    pub fn next_event(&self) -> Option<EventRecord> {
        self.events.with(EventQueue::pop)
    }

    /// Events lost because nobody read them in time.
    pub fn lost_events(&self) -> u64 {
        self.events.with(|events| events.lost())
    }

    /// Status to complete a dropped send with, by reason.
    pub(crate) fn drop_status(reason: DropReason) -> NdisStatus {
        match reason {
            DropReason::Hook => NdisStatus::FAILURE,
            DropReason::Paused => NdisStatus::PAUSED,
            DropReason::Resources => NdisStatus::RESOURCES,
            DropReason::LinkDown => NdisStatus::MEDIA_DISCONNECTED,
            DropReason::Cancelled => NdisStatus::SEND_ABORTED,
        }
    }
}

impl<H: Hal> Drop for Engine<H> {
    fn drop(&mut self) {
        self.hal.release(Pool::Engine, self.charged + self.made_slots().count() * self.slot_bytes);
        self.events.with(|events| events.release(&self.hal));
        self.control.release(&self.hal);
        self.rules.release(&self.hal);
    }
}
