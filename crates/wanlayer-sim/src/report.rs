//! Printable reports: the state of the simulated server, the engine's link table and counters.
//! `cargo xtask demo` prints these.

use std::fmt;

use wanlayer_core::control::link_entry;
use wanlayer_core::hal::Pool;
use wanlayer_core::link::DEVICE_NAME_MAX;
use wanlayer_core::module::ModuleCounts;
use wanlayer_core::stats::DropReason;
use wanlayer_core::ModuleId;
use wanlayer_proto::display::{LinkDetails, LinkRow, LINK_TABLE_HEADER};

use crate::edge::{Edge, NdisState};
use crate::filter_callbacks::{EngineFilter, FilterDriver};
use crate::ledger::LedgerCounts;
use crate::rras::Rras;
use crate::trace::Time;
use crate::world::PoolUsage;

/// One edge's line in a [`Summary`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EdgeSummary {
    /// The edge.
    pub edge: Edge,
    /// The module's state.
    pub state: NdisState,
    /// The module.
    pub module: Option<ModuleId>,
    /// WAN links the protocol knows.
    pub links: usize,
    /// Sends the protocol made.
    pub protocol_sent: usize,
    /// Sends completed back to the protocol.
    pub protocol_completed: usize,
    /// Frames indicated up to the protocol.
    pub protocol_received: usize,
    /// Frames sent down to the miniport.
    pub miniport_sent: usize,
    /// Receives the miniport indicated.
    pub miniport_indicated: usize,
    /// Receives given back to the miniport.
    pub miniport_returned: u64,
}

/// The whole simulated server at a glance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Virtual time.
    pub time: Time,
    /// One line per edge.
    pub edges: Vec<EdgeSummary>,
    /// The ledger.
    pub ledger: LedgerCounts,
    /// Every pool.
    pub pools: Vec<(Pool, PoolUsage)>,
    /// Violations caught.
    pub violations: usize,
}

impl<F: FilterDriver> Rras<F> {
    /// The server at a glance.
    pub fn summary(&self) -> Summary {
        let edges = self
            .edges()
            .into_iter()
            .map(|edge| {
                let (protocol, miniport) = (self.protocol(edge), self.miniport(edge));
                EdgeSummary {
                    edge,
                    state: self.state(edge),
                    module: self.module(edge),
                    links: protocol.links.len(),
                    protocol_sent: protocol.sent.len(),
                    protocol_completed: protocol.completions.len(),
                    protocol_received: protocol.received.len(),
                    miniport_sent: miniport.sent.len(),
                    miniport_indicated: miniport.indicated.len(),
                    miniport_returned: miniport.returned,
                }
            })
            .collect();
        Summary {
            time: Time(self.now()),
            edges,
            ledger: self.ledger_counts(),
            pools: self.pools(),
            violations: self.verifier().violations().len(),
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "simulated RRAS server at {}", self.time)?;
        writeln!(
            f,
            "  {:<9} {:<10} {:>5} │ {:>6} {:>9} {:>8} │ {:>6} {:>9} {:>8}",
            "edge", "state", "links", "sent", "completed", "received", "down", "indicated", "returned"
        )?;
        for edge in &self.edges {
            writeln!(
                f,
                "  {:<9} {:<10} {:>5} │ {:>6} {:>9} {:>8} │ {:>6} {:>9} {:>8}",
                edge.edge.short_name(),
                edge.state.name(),
                edge.links,
                edge.protocol_sent,
                edge.protocol_completed,
                edge.protocol_received,
                edge.miniport_sent,
                edge.miniport_indicated,
                edge.miniport_returned
            )?;
        }
        writeln!(f, "  ledger: {}", self.ledger)?;
        let pools: Vec<String> = self
            .pools
            .iter()
            .map(|(pool, usage)| format!("{} {} B (peak {})", String::from_utf8_lossy(&pool.tag()), usage.current, usage.peak))
            .collect();
        writeln!(f, "  pools: {}", pools.join(", "))?;
        write!(f, "  verifier: {} violation(s)", self.violations)
    }
}

/// The engine's link table of one module, as `wanlayerctl links` prints it: each link converted
/// into its control-device record ([`wanlayer_core::control::link_entry`]) and rendered by the
/// link table of [`wanlayer_proto::display`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkReport {
    /// The edge.
    pub edge: Edge,
    /// One rendered link a row, by identity: its table row and its line of details.
    pub rows: Vec<String>,
}

impl fmt::Display for LinkReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "WAN links on {} ({}):", self.edge.friendly_name(), self.rows.len())?;
        writeln!(f, "{LINK_TABLE_HEADER}")?;
        self.rows.iter().try_for_each(|row| writeln!(f, "{row}"))
    }
}

/// A module's counters, printable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CountsReport {
    /// The edge.
    pub edge: Edge,
    /// The counters.
    pub counts: ModuleCounts,
}

impl fmt::Display for CountsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counts;
        writeln!(
            f,
            "counters of {}: line ups {} (untracked {}, device names lost {}), line downs {} (unknown {}), malformed status {}",
            self.edge, c.line_ups, c.line_ups_untracked, c.device_names_lost, c.line_downs, c.line_downs_unknown, c.malformed_status
        )?;
        for (name, direction) in [("send", &c.send), ("receive", &c.receive)] {
            let drops: Vec<String> = DropReason::ALL
                .iter()
                .zip(direction.drops_by_reason)
                .filter(|(_, count)| *count > 0)
                .map(|(reason, count)| format!("{} {count}", reason.name()))
                .collect();
            writeln!(
                f,
                "  {name:<7} {} packets {} bytes, unmatched {}, modified {}, taken {}, reinjected {}, copied {}, drops {} [{}]",
                direction.traffic.packets,
                direction.traffic.bytes,
                direction.unmatched,
                direction.modified,
                direction.taken,
                direction.reinjected,
                direction.copied_for_resources,
                direction.traffic.drops,
                drops.join(", ")
            )?;
        }
        Ok(())
    }
}

impl<F: EngineFilter> Rras<F> {
    /// The engine's link table of the module on `edge` (empty when none is attached).
    pub fn link_report(&self, edge: Edge) -> LinkReport {
        let mut rows = Vec::new();
        if let (Some(engine), Some(module)) = (self.filter().engine(), self.module(edge)) {
            engine.visit_links(module, |link| {
                let mut name = [0; DEVICE_NAME_MAX * 2];
                let entry = link_entry(module, link, &mut name, false);
                rows.push((entry.link_id, format!("{}\n{}", LinkRow(&entry), LinkDetails(&entry))));
            });
        }
        rows.sort_by_key(|(id, _)| *id);
        LinkReport { edge, rows: rows.into_iter().map(|(_, row)| row).collect() }
    }

    /// The engine's counters of the module on `edge`.
    pub fn counts(&self, edge: Edge) -> Option<CountsReport> {
        let engine = self.filter().engine()?;
        let counts = engine.module_counts(self.module(edge)?)?;
        Some(CountsReport { edge, counts })
    }
}
