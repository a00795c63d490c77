//! Filter modules: one attachment of the filter to one adapter, and its state machine.
//!
//! ```text
//!  attach ─▶ Attaching ─▶ Paused ─restart─▶ Restarting ─▶ Running
//!                          ▲  │                             │
//!                          │  └─detach─▶ Detached        pause
//!                          └──────── Pausing ◀──────────────┘
//! ```
//! Sends that arrive while not Running are completed with `NDIS_STATUS_PAUSED`. A pause completes
//! only when every packet the module holds (taken by hooks) or originated (copies, replacements) is
//! back; until then it is pending and the platform is told once, through
//! [`PauseCompletion`](crate::hal::PauseCompletion), when it completes.

use core::fmt;

use crate::gate::ModuleGate;
use crate::hal::{Lock, ModuleId, PacketIo, ReadMostlyLocking};
use crate::link::LinkTable;
use crate::stats::{Counter, ModuleDirectionCounters, ModuleDirectionCounts};
use crate::taken::TakenStore;
use crate::wire::MacAddress;

/// What a module is attached to.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum ModuleKind {
    /// NdisWan's IPv4 edge, "WAN Miniport (IP)".
    NdisWanIp,
    /// NdisWan's IPv6 edge, "WAN Miniport (IPv6)".
    NdisWanIpv6,
    /// Any other adapter: traffic passes through untouched and uncounted by hooks.
    PassThrough,
}

impl ModuleKind {
    /// True for NdisWan's edges, where links are tracked and hooks run.
    pub fn is_wan(self) -> bool {
        !matches!(self, ModuleKind::PassThrough)
    }
    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            ModuleKind::NdisWanIp => "ndiswan-ip",
            ModuleKind::NdisWanIpv6 => "ndiswan-ipv6",
            ModuleKind::PassThrough => "pass-through",
        }
    }
}

/// The state of a filter module.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum ModuleState {
    /// Being set up; nothing may be sent or indicated.
    Attaching,
    /// Attached and quiet.
    Paused,
    /// Restart in progress.
    Restarting,
    /// Passing traffic.
    Running,
    /// Pause in progress, waiting for packets to come back.
    Pausing,
    /// Gone.
    Detached,
}

impl ModuleState {
    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            ModuleState::Attaching => "attaching",
            ModuleState::Paused => "paused",
            ModuleState::Restarting => "restarting",
            ModuleState::Running => "running",
            ModuleState::Pausing => "pausing",
            ModuleState::Detached => "detached",
        }
    }
}

/// What the platform knows about the adapter at attach time.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AttachParams {
    /// What the adapter is.
    pub kind: ModuleKind,
    /// The adapter's current MAC address.
    pub mac_address: MacAddress,
    /// The platform's index of the adapter (`IfIndex`).
    pub if_index: u32,
}

/// A state-machine call made in the wrong state.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum StateError {
    /// No module has that identity (never attached, or detached since).
    UnknownModule(ModuleId),
    /// The call is not allowed in the module's current state.
    WrongState {
        /// The module.
        module: ModuleId,
        /// Its state.
        state: ModuleState,
    },
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::UnknownModule(module) => write!(f, "{module} is not attached"),
            StateError::WrongState { module, state } => write!(f, "{module} is {}", state.name()),
        }
    }
}

/// How a pause went.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[must_use = "a pending pause must be reported pending to NDIS"]
pub enum PauseProgress {
    /// The module is paused now.
    Complete,
    /// Packets are still out; the platform's `pause_complete` is called once they are back.
    Pending,
}

/// What a detach found.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DetachReport {
    /// Links still in the table, now forgotten.
    pub links_dropped: usize,
}

/// What tools see of a module.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ModuleInfo {
    /// Its identity.
    pub id: ModuleId,
    /// What it is attached to.
    pub kind: ModuleKind,
    /// Its state.
    pub state: ModuleState,
    /// The adapter's MAC address.
    pub mac_address: MacAddress,
    /// The adapter's interface index.
    pub if_index: u32,
    /// Live links.
    pub links: usize,
    /// Packets taken by hooks and not yet handed back.
    pub taken: usize,
    /// Packets the module originated that have not come back.
    pub in_flight: usize,
}

/// A module's counters, as a plain copy.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct ModuleCounts {
    /// Sends.
    pub send: ModuleDirectionCounts,
    /// Receives.
    pub receive: ModuleDirectionCounts,
    /// Line-up indications.
    pub line_ups: u64,
    /// Line-up indications that could not be tracked (no memory); the link still works, untracked.
    pub line_ups_untracked: u64,
    /// Device names the protocol filled in that could not be kept (no memory).
    pub device_names_lost: u64,
    /// Line-down indications.
    pub line_downs: u64,
    /// Line downs for links the module did not know.
    pub line_downs_unknown: u64,
    /// Status indications whose buffer was too short or inconsistent (passed on untouched).
    pub malformed_status: u64,
    /// Injections through the control device that were refused (module not running, link
    /// unknown, no memory).
    pub injections_refused: u64,
}

/// A module's counters.
#[derive(Debug, Default)]
pub(crate) struct ModuleCounters {
    pub(crate) send: ModuleDirectionCounters,
    pub(crate) receive: ModuleDirectionCounters,
    pub(crate) line_ups: Counter,
    pub(crate) line_ups_untracked: Counter,
    pub(crate) device_names_lost: Counter,
    pub(crate) line_downs: Counter,
    pub(crate) line_downs_unknown: Counter,
    pub(crate) malformed_status: Counter,
    pub(crate) injections_refused: Counter,
}

impl ModuleCounters {
    pub(crate) fn direction(&self, direction: crate::hook::Direction) -> &ModuleDirectionCounters {
        match direction {
            crate::hook::Direction::Send => &self.send,
            crate::hook::Direction::Receive => &self.receive,
        }
    }
    pub(crate) fn snapshot(&self) -> ModuleCounts {
        ModuleCounts {
            send: self.send.snapshot(),
            receive: self.receive.snapshot(),
            line_ups: self.line_ups.get(),
            line_ups_untracked: self.line_ups_untracked.get(),
            device_names_lost: self.device_names_lost.get(),
            line_downs: self.line_downs.get(),
            line_downs_unknown: self.line_downs_unknown.get(),
            malformed_status: self.malformed_status.get(),
            injections_refused: self.injections_refused.get(),
        }
    }
    pub(crate) fn reset(&self) {
        self.send.reset();
        self.receive.reset();
        let counters = [
            &self.line_ups,
            &self.line_ups_untracked,
            &self.device_names_lost,
            &self.line_downs,
            &self.line_downs_unknown,
            &self.malformed_status,
            &self.injections_refused,
        ];
        for counter in counters {
            counter.reset();
        }
    }
}

/// The state of one module, under the module's lock.
pub(crate) struct ModuleCore<P> {
    pub(crate) id: ModuleId,
    pub(crate) kind: ModuleKind,
    pub(crate) state: ModuleState,
    pub(crate) mac_address: MacAddress,
    pub(crate) if_index: u32,
    pub(crate) taken: TakenStore<P>,
    /// The module's [`ModuleGate`] (the data path's calls in progress and every packet the module
    /// originated that is out) was not drained when last looked at under this lock with the gate
    /// closed: a pause waits for it (see [`ModuleSlot::refresh_gate`]).
    pub(crate) gate_busy: bool,
    /// Send, receive and reinject calls in progress: a pause waits for them too, so that a call
    /// that checked the state before the pause began cannot originate a packet after it completed.
    pub(crate) active_calls: usize,
    pub(crate) pause_pending: bool,
}

impl<P> ModuleCore<P> {
    pub(crate) fn vacant() -> Self {
        Self {
            id: ModuleId(0),
            kind: ModuleKind::PassThrough,
            state: ModuleState::Detached,
            mac_address: MacAddress([0; 6]),
            if_index: 0,
            taken: TakenStore::default(),
            gate_busy: false,
            active_calls: 0,
            pause_pending: false,
        }
    }

    pub(crate) fn is(&self, id: ModuleId) -> bool {
        self.id == id && self.state != ModuleState::Detached
    }

    /// What tools see; `gate_in_flight` is what the module's gate counts out, `links` its link
    /// table's length.
    pub(crate) fn info(&self, gate_in_flight: usize, links: usize) -> ModuleInfo {
        ModuleInfo {
            id: self.id,
            kind: self.kind,
            state: self.state,
            mac_address: self.mac_address,
            if_index: self.if_index,
            links,
            taken: self.taken.len(),
            in_flight: gate_in_flight,
        }
    }

    /// Outstanding packets and calls: the pause waits for this to reach zero.
    pub(crate) fn outstanding(&self) -> usize {
        self.taken.len() + self.active_calls + usize::from(self.gate_busy)
    }

    /// Starts a data-path call if the module is Running; the caller must call
    /// [`Self::leave_data_path`] when it has handed on what it originated.
    pub(crate) fn enter_data_path(&mut self, id: ModuleId) -> Option<ModuleKind> {
        if !self.is(id) || self.state != ModuleState::Running {
            return None;
        }
        self.active_calls += 1;
        Some(self.kind)
    }

    /// Ends a data-path call; true when that finished a pending pause.
    pub(crate) fn leave_data_path(&mut self) -> bool {
        self.active_calls = self.active_calls.saturating_sub(1);
        self.try_finish_pause()
    }

    /// Finishes a pending pause if nothing is outstanding; true when it did (the caller then tells
    /// the platform, after leaving the lock).
    pub(crate) fn try_finish_pause(&mut self) -> bool {
        if self.pause_pending && self.outstanding() == 0 {
            self.pause_pending = false;
            self.state = ModuleState::Paused;
            return true;
        }
        false
    }
}

/// A module's slot in the engine: its lock-protected core, the gate of its data path and its
/// counters.
pub(crate) struct ModuleSlot<H: PacketIo + crate::hal::Locking + ReadMostlyLocking> {
    pub(crate) core: H::Lock<ModuleCore<H::Packet>>,
    /// The live links, read by the data path with no module lock. Lock order: `core`, then
    /// `links`.
    pub(crate) links: H::ReadMostly<LinkTable>,
    pub(crate) gate: ModuleGate,
    pub(crate) counters: ModuleCounters,
}

impl<H: PacketIo + crate::hal::Locking + ReadMostlyLocking> ModuleSlot<H> {
    /// Under the module's lock, after a departure found the gate closed (or when a pause starts):
    /// records whether the gate still has calls or packets out, and finishes a pending pause when
    /// nothing is outstanding. True when it did (the caller then tells the platform).
    pub(crate) fn refresh_gate(&self) -> bool {
        self.core.with(|core| {
            core.gate_busy = !self.gate.is_open() && !self.gate.is_drained();
            core.try_finish_pause()
        })
    }
}
