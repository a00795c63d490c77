//! Setting up a simulated server: the builder, per-call options, and lifecycle errors.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt;

use wanlayer_core::NdisStatus;

use super::{Rras, Scope};
use crate::edge::{Edge, Irql, IrqlPolicy, NdisState};
use crate::faults::FaultPlan;
use crate::filter_callbacks::FilterDriver;
use crate::hal::SimHal;
use crate::trace::TraceEvent;
use crate::world::{Delivery, SimConfig};

/// Why a lifecycle step could not be taken.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LifecycleError {
    /// The driver is not loaded (its entry failed, or it unloaded).
    NotLoaded,
    /// The simulation has no such edge (the Ethernet adapter was not asked for).
    NoSuchEdge(Edge),
    /// The module on the edge is not in a state that allows the step.
    WrongState {
        /// The edge.
        edge: Edge,
        /// The module's state.
        state: NdisState,
    },
    /// The filter failed the step with this status.
    Failed(NdisStatus),
    /// The pause never completed, so the module cannot detach.
    PauseStuck(Edge),
}

impl fmt::Display for LifecycleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LifecycleError::NotLoaded => f.write_str("the filter driver is not loaded"),
            LifecycleError::NoSuchEdge(edge) => write!(f, "the simulation has no {edge} adapter"),
            LifecycleError::WrongState { edge, state } => write!(f, "the module on {edge} is {state}"),
            LifecycleError::Failed(status) => write!(f, "the filter failed with {status}"),
            LifecycleError::PauseStuck(edge) => write!(f, "the pause of {edge} never completed"),
        }
    }
}

/// How a call to the filter's pause went.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PauseOutcome {
    /// Paused now.
    Complete,
    /// The filter returned pending; it completes later.
    Pending,
}

/// How the protocol sends a chain.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct SendOptions {
    /// The cancel identifier to stamp on every packet of the chain.
    pub cancel_id: Option<u64>,
    /// The IRQL of the callback, instead of the policy's.
    pub irql: Option<Irql>,
    /// Send with `NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK`.
    pub check_for_loopback: bool,
}

/// How the miniport indicates a chain.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct ReceiveOptions {
    /// Indicate with `NDIS_RECEIVE_FLAGS_RESOURCES`: the packets are only lent.
    pub resources: bool,
    /// Mark the buffers read-only (writes fail, the filter must copy).
    pub read_only: bool,
    /// The IRQL of the callback, instead of the policy's.
    pub irql: Option<Irql>,
}

impl ReceiveOptions {
    /// Lent packets (`NDIS_RECEIVE_FLAGS_RESOURCES`).
    pub fn resources() -> Self {
        Self { resources: true, ..Self::default() }
    }

    /// Read-only buffers.
    pub fn read_only() -> Self {
        Self { read_only: true, ..Self::default() }
    }
}

/// Sets up a simulation.
#[derive(Clone, Debug, Default)]
pub struct RrasBuilder {
    config: SimConfig,
    faults: FaultPlan,
    ethernet: bool,
}

impl RrasBuilder {
    /// Default settings: NdisWan's two edges, alternating IRQLs, sends completed after 1 ms,
    /// receives returned at the next step.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an ordinary Ethernet adapter beside NdisWan's edges.
    pub fn ethernet(mut self) -> Self {
        self.ethernet = true;
        self
    }

    /// Sets the IRQL policy of data-path, status and OID-completion callbacks.
    pub fn irql(mut self, policy: IrqlPolicy) -> Self {
        self.config.irql = policy;
        self
    }

    /// Sets when the miniport completes sends.
    pub fn send_completion(mut self, delivery: Delivery) -> Self {
        self.config.send_completion = delivery;
        self
    }

    /// Sets the status the miniport completes sends with.
    pub fn send_status(mut self, status: NdisStatus) -> Self {
        self.config.send_status = status;
        self
    }

    /// Sets when the protocol returns received packets.
    pub fn receive_return(mut self, delivery: Delivery) -> Self {
        self.config.receive_return = delivery;
        self
    }

    /// Sets when the miniport completes OID requests.
    pub fn oid_completion(mut self, delivery: Delivery) -> Self {
        self.config.oid_completion = delivery;
        self
    }

    /// Replaces the whole configuration.
    pub fn config(mut self, config: SimConfig) -> Self {
        self.config = config;
        self
    }

    /// Sets the fault plan (applies from driver entry on).
    pub fn faults(mut self, plan: FaultPlan) -> Self {
        self.faults = plan;
        self
    }

    /// Creates the world and loads `filter` into it (`DriverEntry`).
    pub fn build<F: FilterDriver>(self, mut filter: F) -> Rras<F> {
        let edges: Vec<Edge> = Edge::ALL.into_iter().filter(|edge| *edge != Edge::Ethernet || self.ethernet).collect();
        let hal = SimHal::new(self.config, self.faults, &edges);
        let entry = {
            let _scope = Scope::enter(&hal, "DriverEntry", None, Irql::Passive);
            filter.driver_entry(&hal)
        };
        hal.with_state_mut(|state| state.trace(None, TraceEvent::Lifecycle, None, format!("driver entry: {entry:?}")));
        Rras { filter, hal, loaded: entry.is_ok(), turn: Cell::new(0), links: RefCell::new(BTreeMap::new()), next_link: Cell::new(0) }
    }
}

