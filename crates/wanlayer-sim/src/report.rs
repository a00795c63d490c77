//! Printable reports: the state of the simulated server, the engine's link table and counters.
//! `cargo xtask demo` prints these.

use std::fmt;

use wanlayer_core::hal::Pool;
use wanlayer_core::link::{Link, LinkId};
use wanlayer_core::module::ModuleCounts;
use wanlayer_core::stats::DropReason;
use wanlayer_core::wire::{EtherType, MacAddress};
use wanlayer_core::ModuleId;

use crate::edge::{Edge, NdisState};
use crate::filter::{EngineFilter, FilterDriver};
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

/// One row of a [`LinkReport`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkRow {
    /// The engine's identity of the link.
    pub id: LinkId,
    /// `RemoteAddress`.
    pub remote: MacAddress,
    /// `LocalAddress`.
    pub local: MacAddress,
    /// IPv4 or IPv6.
    pub protocol_type: EtherType,
    /// Speed in bit/s.
    pub speed_bps: u64,
    /// `MaximumTotalSize` as NdisWan said.
    pub maximum_total_size: u32,
    /// As reported upward.
    pub reported_total_size: u32,
    /// `DeviceName`.
    pub device_name: String,
    /// Packets sent on the link.
    pub sent: u64,
    /// Packets received on the link.
    pub received: u64,
}

impl LinkRow {
    fn of(link: &Link) -> Self {
        let summary = link.summary();
        Self {
            id: summary.id,
            remote: summary.remote_address,
            local: summary.local_address,
            protocol_type: summary.protocol_type,
            speed_bps: link.link_speed_bps(),
            maximum_total_size: summary.maximum_total_size,
            reported_total_size: summary.reported_total_size,
            device_name: link.device_name().collect(),
            sent: link.send_counts().packets,
            received: link.receive_counts().packets,
        }
    }
}

/// The engine's link table of one module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkReport {
    /// The edge.
    pub edge: Edge,
    /// The links, by identity.
    pub rows: Vec<LinkRow>,
}

impl fmt::Display for LinkReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "WAN links on {} ({}):", self.edge.friendly_name(), self.rows.len())?;
        writeln!(
            f,
            "  {:>4}  {:<17}  {:<17}  {:<4}  {:>10}  {:>9}  {:>6}  {:>6}  device",
            "id", "remote", "local", "ip", "speed", "mtu", "sent", "recv"
        )?;
        for row in &self.rows {
            let ip = if row.protocol_type == EtherType::Ipv6 { "IPv6" } else { "IPv4" };
            let mtu = if row.reported_total_size == row.maximum_total_size {
                row.maximum_total_size.to_string()
            } else {
                format!("{}→{}", row.maximum_total_size, row.reported_total_size)
            };
            writeln!(
                f,
                "  {:>4}  {}  {}  {ip}  {:>6} kb/s  {mtu:>9}  {:>6}  {:>6}  {}",
                row.id.0,
                row.remote,
                row.local,
                row.speed_bps / 1000,
                row.sent,
                row.received,
                row.device_name
            )?;
        }
        Ok(())
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
            engine.visit_links(module, |link| rows.push(LinkRow::of(link)));
        }
        rows.sort_by_key(|row| row.id);
        LinkReport { edge, rows }
    }

    /// The engine's counters of the module on `edge`.
    pub fn counts(&self, edge: Edge) -> Option<CountsReport> {
        let engine = self.filter().engine()?;
        let counts = engine.module_counts(self.module(edge)?)?;
        Some(CountsReport { edge, counts })
    }
}
