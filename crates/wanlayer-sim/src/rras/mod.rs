//! [`Rras`]: a simulated RRAS server around a filter — NdisWan's IP and IPv6 edges (and optionally
//! an Ethernet adapter) below, the IP layer above, NDIS's lifecycle, and a deterministic event
//! loop in virtual time.
//!
//! Everything the simulated drivers do later (the miniport completing sends, the protocol
//! returning receives, OID completions) is queued and delivered by [`Rras::step`],
//! [`Rras::run_until_idle`] or [`Rras::advance`], never from inside a filter call.
//!
//! * [`setup`]: building a server, options, lifecycle errors;
//! * this module: the server, NDIS's lifecycle and what the simulated drivers saw;
//! * `data`: the protocol and the miniport driving traffic, status and OIDs into the filter;
//! * `time`: deferred work and virtual time.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt;

use wanlayer_core::hal::{PathContext, Pool, Timestamp};
use wanlayer_core::wire::MacAddress;
use wanlayer_core::{ModuleId, NdisStatus};

use crate::edge::{Edge, Irql, NdisState};
use crate::faults::Faults;
use crate::filter_callbacks::{EngineFilter, FilterAttachParameters, FilterDriver, NDIS_MEDIUM_802_3};
use crate::hal::SimHal;
use crate::ledger::{LedgerCounts, PacketRecord};
use crate::oid::RequestId;
use crate::sim_nbl::PacketId;
use crate::trace::{TraceEvent, TraceRecord};
use crate::traffic::SimLink;
use crate::verifier::{Rule, Verifier};
use crate::world::{list, InCallback, Miniport, OidRole, OidState, PauseTrack, PoolUsage, Protocol, MILLISECOND};

mod data;
pub mod setup;
mod time;

pub use setup::{LifecycleError, PauseOutcome, ReceiveOptions, RrasBuilder, SendOptions};

/// Marks a filter callback in progress: its name (for violation details) and its IRQL.
pub(crate) struct Scope<'a> {
    hal: &'a SimHal,
    previous: Option<InCallback>,
    previous_irql: Irql,
}

impl<'a> Scope<'a> {
    pub(crate) fn enter(hal: &'a SimHal, name: &'static str, edge: Option<Edge>, irql: Irql) -> Self {
        let previous = hal.with_state_mut(|state| state.callback.replace(InCallback { name, edge }));
        let previous_irql = hal.irql();
        hal.set_irql(irql);
        Self { hal, previous, previous_irql }
    }
}

impl Drop for Scope<'_> {
    fn drop(&mut self) {
        self.hal.set_irql(self.previous_irql);
        let previous = self.previous;
        self.hal.with_state_mut(|state| state.callback = previous);
    }
}

/// The simulated RRAS server with the filter `F` loaded.
pub struct Rras<F> {
    filter: F,
    hal: SimHal,
    loaded: bool,
    turn: Cell<u64>,
    links: RefCell<BTreeMap<MacAddress, SimLink>>,
    next_link: Cell<u32>,
}

impl<F: FilterDriver> fmt::Debug for Rras<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rras").field("hal", &self.hal).field("loaded", &self.loaded).finish_non_exhaustive()
    }
}

/// The filter type of [`Rras::builder`], which has no value: a builder is no server yet, and
/// [`RrasBuilder::build`] loads whichever filter it is given.
#[derive(Debug)]
pub enum Unbuilt {}

impl Rras<Unbuilt> {
    /// Sets up a world step by step; [`RrasBuilder::build`] takes any filter.
    pub fn builder() -> RrasBuilder {
        RrasBuilder::default()
    }
}

impl<F: EngineFilter> Rras<F> {
    /// The engine of the loaded filter.
    ///
    /// # Panics
    /// When the driver failed to load or has unloaded.
    pub fn engine(&self) -> &wanlayer_core::Engine<F::Hal> {
        self.filter.engine().expect("the filter is not loaded")
    }
}

impl<F: FilterDriver> Rras<F> {
    /// A world with NdisWan's two edges and default behaviour, `filter` loaded into it.
    pub fn new(filter: F) -> Self {
        RrasBuilder::default().build(filter)
    }

    /// The filter.
    pub fn filter(&self) -> &F {
        &self.filter
    }

    /// The world's HAL handle (what the filter was given).
    pub fn hal(&self) -> &SimHal {
        &self.hal
    }

    /// The verifier.
    pub fn verifier(&self) -> Verifier {
        self.hal.verifier()
    }

    /// The fault plan.
    pub fn faults(&self) -> Faults {
        self.hal.faults()
    }

    /// True between a successful driver entry and unload.
    pub fn is_loaded(&self) -> bool {
        self.loaded
    }

    /// Virtual time now.
    pub fn now(&self) -> Timestamp {
        self.hal.with_state(|state| state.now)
    }

    fn next_irql(&self) -> Irql {
        let turn = self.turn.get();
        self.turn.set(turn + 1);
        self.hal.with_state(|state| state.callback_irql(turn))
    }

    fn ctx(irql: Irql) -> PathContext {
        PathContext { at_dispatch: irql == Irql::Dispatch, ..PathContext::default() }
    }

    fn lifecycle(&self, edge: Option<Edge>, text: impl Into<String>) {
        self.hal.with_state_mut(|state| state.trace(edge, TraceEvent::Lifecycle, None, text));
    }

    // ----- lifecycle ------------------------------------------------------------------------

    /// The state of the module on `edge` (`Detached` when there is none or no such edge).
    pub fn state(&self, edge: Edge) -> NdisState {
        self.hal.with_state(|state| state.edges.get(&edge).map_or(NdisState::Detached, |e| e.ndis))
    }

    /// The module context the filter gave for `edge`.
    pub fn module(&self, edge: Edge) -> Option<ModuleId> {
        self.hal.with_state(|state| state.edges.get(&edge).and_then(|e| e.module))
    }

    /// The edges of this simulation.
    pub fn edges(&self) -> Vec<Edge> {
        self.hal.with_state(|state| state.edges.keys().copied().collect())
    }

    fn require(&self, edge: Edge, allowed: &[NdisState]) -> Result<NdisState, LifecycleError> {
        if !self.loaded {
            return Err(LifecycleError::NotLoaded);
        }
        let state = self.hal.with_state(|state| state.edges.get(&edge).map(|e| e.ndis)).ok_or(LifecycleError::NoSuchEdge(edge))?;
        if allowed.contains(&state) {
            Ok(state)
        } else {
            Err(LifecycleError::WrongState { edge, state })
        }
    }

    fn set_ndis(&self, edge: Edge, ndis: NdisState) {
        self.hal.with_state_mut(|state| {
            if let Some(e) = state.edge(edge) {
                e.ndis = ndis;
            }
        });
    }

    /// `FilterAttach` on `edge`: the module ends Paused.
    ///
    /// # Errors
    /// [`LifecycleError`] when the driver is not loaded, the edge is missing or attached, or the
    /// filter failed the attach.
    pub fn attach(&self, edge: Edge) -> Result<ModuleId, LifecycleError> {
        self.require(edge, &[NdisState::Detached])?;
        self.set_ndis(edge, NdisState::Attaching);
        let params = FilterAttachParameters {
            if_index: edge.if_index(),
            base_miniport_name: edge.base_miniport_name().to_owned(),
            friendly_name: edge.friendly_name().to_owned(),
            medium: NDIS_MEDIUM_802_3,
            mac_address: edge.mac_address(),
        };
        let result = {
            let _scope = Scope::enter(&self.hal, "FilterAttach", Some(edge), Irql::Passive);
            self.filter.attach(&params)
        };
        match result {
            Ok(module) => {
                self.hal.with_state_mut(|state| {
                    let taken = state.edges.iter().any(|(other, e)| *other != edge && e.module == Some(module));
                    if taken {
                        let detail = format!("FilterAttach on {edge} returned {module}, the context of another module");
                        state.violate(Rule::InvalidModuleHandle, Some(module), None, detail);
                    }
                    if let Some(e) = state.edge(edge) {
                        e.module = Some(module);
                        e.ndis = NdisState::Paused;
                    }
                });
                self.lifecycle(Some(edge), format!("attached as {module}"));
                Ok(module)
            }
            Err(status) => {
                self.set_ndis(edge, NdisState::Detached);
                self.lifecycle(Some(edge), format!("attach failed: {status}"));
                self.check_detached(edge, None);
                Err(LifecycleError::Failed(status))
            }
        }
    }

    /// `FilterRestart` on `edge`: Paused → Running.
    ///
    /// # Errors
    /// [`LifecycleError`] unless the module is Paused and restarts.
    pub fn restart(&self, edge: Edge) -> Result<(), LifecycleError> {
        self.require(edge, &[NdisState::Paused])?;
        let module = self.module(edge).ok_or(LifecycleError::WrongState { edge, state: NdisState::Detached })?;
        self.set_ndis(edge, NdisState::Restarting);
        let status = {
            let _scope = Scope::enter(&self.hal, "FilterRestart", Some(edge), Irql::Passive);
            self.filter.restart(module)
        };
        if status == NdisStatus::SUCCESS {
            self.set_ndis(edge, NdisState::Running);
            self.lifecycle(Some(edge), "restarted");
            Ok(())
        } else {
            self.set_ndis(edge, NdisState::Paused);
            self.lifecycle(Some(edge), format!("restart failed: {status}"));
            Err(LifecycleError::Failed(status))
        }
    }

    /// Attaches every edge (each ends Paused).
    ///
    /// # Errors
    /// The first [`LifecycleError`].
    pub fn attach_all(&self) -> Result<(), LifecycleError> {
        self.edges().into_iter().try_for_each(|edge| self.attach(edge).map(|_| ()))
    }

    /// Restarts every paused edge.
    ///
    /// # Errors
    /// The first [`LifecycleError`].
    pub fn restart_all(&self) -> Result<(), LifecycleError> {
        self.edges().into_iter().filter(|edge| self.state(*edge) == NdisState::Paused).try_for_each(|edge| self.restart(edge))
    }

    /// Attaches and restarts every edge: the server is running.
    ///
    /// # Errors
    /// The first [`LifecycleError`].
    pub fn start(&self) -> Result<(), LifecycleError> {
        self.attach_all()?;
        self.restart_all()
    }

    /// `FilterPause` on `edge`. A pending pause completes when the filter calls
    /// `NdisFPauseComplete`; it must within 10 s of virtual time.
    ///
    /// # Errors
    /// [`LifecycleError`] unless the module is Running.
    pub fn pause(&self, edge: Edge) -> Result<PauseOutcome, LifecycleError> {
        self.require(edge, &[NdisState::Running])?;
        let module = self.module(edge).ok_or(LifecycleError::WrongState { edge, state: NdisState::Detached })?;
        let now = self.now();
        self.hal.with_state_mut(|state| {
            if let Some(e) = state.edge(edge) {
                e.ndis = NdisState::Pausing;
                e.pause = PauseTrack::Pending { since: now, timed_out: false };
            }
        });
        self.lifecycle(Some(edge), "pause");
        let status = {
            let _scope = Scope::enter(&self.hal, "FilterPause", Some(edge), Irql::Passive);
            self.filter.pause(module)
        };
        Ok(self.hal.with_state_mut(|state| {
            let still_pending = state.edges.get(&edge).is_some_and(|e| matches!(e.pause, PauseTrack::Pending { .. }));
            if status == NdisStatus::PENDING {
                return if still_pending { PauseOutcome::Pending } else { PauseOutcome::Complete };
            }
            if status != NdisStatus::SUCCESS {
                state.violate(Rule::PauseFailed, Some(module), None, format!("FilterPause on {edge} returned {status}"));
            }
            if !still_pending {
                let detail = format!("FilterPause on {edge} returned {status} after calling NdisFPauseComplete");
                state.violate(Rule::DoublePauseComplete, Some(module), None, detail);
                return PauseOutcome::Complete;
            }
            state.check_quiet_for_pause(edge, Some(module), "FilterPause returned");
            if let Some(e) = state.edge(edge) {
                e.ndis = NdisState::Paused;
                e.pause = PauseTrack::Idle;
            }
            state.trace(Some(edge), TraceEvent::Lifecycle, None, "paused");
            PauseOutcome::Complete
        }))
    }

    /// Pauses `edge` and runs the world until the pause completes.
    ///
    /// # Errors
    /// [`LifecycleError`] unless the module is Running; [`LifecycleError::PauseStuck`] when the
    /// pause is still pending once nothing else can happen.
    pub fn pause_and_settle(&self, edge: Edge) -> Result<(), LifecycleError> {
        self.pause(edge)?;
        self.run_until_idle();
        match self.state(edge) {
            NdisState::Paused => Ok(()),
            _ => Err(LifecycleError::PauseStuck(edge)),
        }
    }

    /// `FilterDetach` on `edge`, pausing it first if it runs. A pause that never completes is
    /// given its 10 s (reported as [`Rule::NdisFilterTimedPauseComplete`]) and the module stays.
    ///
    /// # Errors
    /// [`LifecycleError`] when there is nothing to detach or the pause is stuck.
    pub fn detach(&self, edge: Edge) -> Result<(), LifecycleError> {
        let state = self.require(edge, &[NdisState::Running, NdisState::Pausing, NdisState::Paused])?;
        if state == NdisState::Running {
            self.pause(edge)?;
        }
        self.run_until_idle();
        if self.state(edge) == NdisState::Pausing {
            let timeout = self.hal.with_state(|state| state.config.pause_timeout_ns);
            self.advance(timeout + MILLISECOND);
            if self.state(edge) == NdisState::Pausing {
                return Err(LifecycleError::PauseStuck(edge));
            }
        }
        let module = self.module(edge).ok_or(LifecycleError::WrongState { edge, state: NdisState::Detached })?;
        {
            let _scope = Scope::enter(&self.hal, "FilterDetach", Some(edge), Irql::Passive);
            self.filter.detach(module);
        }
        self.hal.with_state_mut(|state| {
            if let Some(e) = state.edge(edge) {
                e.module = None;
                e.ndis = NdisState::Detached;
            }
        });
        self.lifecycle(Some(edge), format!("{module} detached"));
        self.check_detached(edge, Some(module));
        Ok(())
    }

    /// Checks that nothing of the filter's is left on a detached edge.
    fn check_detached(&self, edge: Edge, module: Option<ModuleId>) {
        self.hal.with_state_mut(|state| {
            let held = state.ledger.foreign_held(edge);
            let allocated = state.ledger.allocated_not_freed(edge);
            let oids: Vec<RequestId> = state
                .oids
                .iter()
                .filter(|(_, r)| r.edge == edge)
                .filter(|(_, r)| match r.role {
                    OidRole::Clone => r.state != OidState::Freed,
                    OidRole::Original => r.state == OidState::AtFilter,
                })
                .map(|(id, _)| *id)
                .collect();
            if !held.is_empty() || !allocated.is_empty() || !oids.is_empty() {
                let oid_list: Vec<String> = oids.iter().map(RequestId::to_string).collect();
                let detail = format!(
                    "{edge} detached with {} still held, {} allocated and not freed, OID requests [{}] outstanding",
                    list(&held),
                    list(&allocated),
                    oid_list.join(", ")
                );
                state.violate(Rule::LeakAtDetach, module, held.first().or(allocated.first()).copied(), detail);
            }
        });
    }

    /// Detaches every attached edge.
    ///
    /// # Errors
    /// The first [`LifecycleError`] (the others are still tried).
    pub fn detach_all(&self) -> Result<(), LifecycleError> {
        let mut first = Ok(());
        for edge in self.edges() {
            if self.state(edge) != NdisState::Detached {
                let result = self.detach(edge);
                if first.is_ok() {
                    first = result;
                }
            }
        }
        first
    }

    /// Detaches everything, unloads the driver, and checks that every pool charge was released
    /// ([`Rule::PoolLeak`]).
    pub fn unload(&mut self) {
        if !self.loaded {
            return;
        }
        let _ = self.detach_all();
        {
            let _scope = Scope::enter(&self.hal, "DriverUnload", None, Irql::Passive);
            self.filter.unload();
        }
        self.loaded = false;
        self.lifecycle(None, "driver unloaded");
        self.hal.with_state_mut(|state| {
            for pool in Pool::ALL {
                let current = state.pools.get(&pool).map_or(0, |usage| usage.current);
                if current > 0 {
                    state.violate(Rule::PoolLeak, None, None, format!("{current} bytes of {pool:?} still charged at unload"));
                }
            }
        });
    }


    /// Loads the driver again after [`unload`](Self::unload): `DriverEntry` in the same world,
    /// whose registry (the saved rule set) survived. Edges start detached.
    ///
    /// # Errors
    /// The status the driver's entry failed with.
    pub fn reload(&mut self) -> Result<(), NdisStatus> {
        if self.loaded {
            return Ok(());
        }
        let entry = {
            let _scope = Scope::enter(&self.hal, "DriverEntry", None, Irql::Passive);
            self.filter.driver_entry(&self.hal)
        };
        self.loaded = entry.is_ok();
        self.lifecycle(None, "driver loaded again");
        entry
    }

    // ----- observations ---------------------------------------------------------------------

    /// What the protocol above `edge` saw (a copy).
    pub fn protocol(&self, edge: Edge) -> Protocol {
        self.hal.with_state(|state| state.edges.get(&edge).map(|e| e.protocol.clone()).unwrap_or_default())
    }

    /// What the miniport below `edge` saw (a copy).
    pub fn miniport(&self, edge: Edge) -> Miniport {
        self.hal.with_state(|state| state.edges.get(&edge).map(|e| e.miniport.clone()).unwrap_or_default())
    }

    /// The ledger's record of a packet.
    pub fn packet(&self, id: PacketId) -> Option<PacketRecord> {
        self.hal.with_state(|state| state.ledger.get(id).copied())
    }

    /// Packet counts by holder.
    pub fn ledger_counts(&self) -> LedgerCounts {
        self.hal.with_state(|state| state.ledger.counts())
    }

    /// Every pool's usage.
    pub fn pools(&self) -> Vec<(Pool, PoolUsage)> {
        Pool::ALL.into_iter().map(|pool| (pool, self.hal.pool_usage(pool))).collect()
    }

    /// The trace so far.
    pub fn trace(&self) -> Vec<TraceRecord> {
        self.hal.with_state(|state| state.trace.clone())
    }

    /// The trace as printable lines.
    pub fn log(&self) -> Vec<String> {
        self.hal.with_state(|state| state.trace.iter().map(TraceRecord::to_string).collect())
    }
}

