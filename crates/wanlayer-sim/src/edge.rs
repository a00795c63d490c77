//! The adapters of the simulated RRAS server, the simulated IRQL, and NDIS's view of a filter
//! module's state.

use std::fmt;

use wanlayer_core::wire::{EtherType, MacAddress};

/// One adapter the filter can attach to.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum Edge {
    /// NdisWan's IPv4 edge, "WAN Miniport (IP)".
    WanIp,
    /// NdisWan's IPv6 edge, "WAN Miniport (IPv6)".
    WanIpv6,
    /// An ordinary Ethernet adapter, where the filter must stay out of the way.
    Ethernet,
}

impl Edge {
    /// Every edge, in attach order.
    pub const ALL: [Edge; 3] = [Edge::WanIp, Edge::WanIpv6, Edge::Ethernet];

    /// A short name for logs.
    pub fn short_name(self) -> &'static str {
        match self {
            Edge::WanIp => "wan-ip",
            Edge::WanIpv6 => "wan-ipv6",
            Edge::Ethernet => "ethernet",
        }
    }

    /// The adapter's friendly name.
    pub fn friendly_name(self) -> &'static str {
        match self {
            Edge::WanIp => "WAN Miniport (IP)",
            Edge::WanIpv6 => "WAN Miniport (IPv6)",
            Edge::Ethernet => "Microsoft Hyper-V Network Adapter",
        }
    }

    /// `BaseMiniportName` of the attach parameters.
    pub fn base_miniport_name(self) -> &'static str {
        match self {
            Edge::WanIp => "\\DEVICE\\NDISWANIP",
            Edge::WanIpv6 => "\\DEVICE\\NDISWANIPV6",
            Edge::Ethernet => "\\DEVICE\\{8D3A5C21-6E0B-4F7A-9C1D-2B4E6F8A0C13}",
        }
    }

    /// The adapter's current MAC address (NdisWan's end in `20-52-41-53`, " RAS").
    pub fn mac_address(self) -> MacAddress {
        match self {
            Edge::WanIp => MacAddress([0x02, 0x00, 0x20, 0x52, 0x41, 0x53]),
            Edge::WanIpv6 => MacAddress([0x02, 0x01, 0x20, 0x52, 0x41, 0x53]),
            Edge::Ethernet => MacAddress([0x00, 0x15, 0x5d, 0x01, 0x02, 0x03]),
        }
    }

    /// The adapter's interface index.
    pub fn if_index(self) -> u32 {
        match self {
            Edge::WanIp => 21,
            Edge::WanIpv6 => 22,
            Edge::Ethernet => 7,
        }
    }

    /// The EtherType of the WAN links of this edge, `None` for an adapter without WAN links.
    pub fn protocol_type(self) -> Option<EtherType> {
        match self {
            Edge::WanIp => Some(EtherType::Ipv4),
            Edge::WanIpv6 => Some(EtherType::Ipv6),
            Edge::Ethernet => None,
        }
    }

    /// True for NdisWan's edges.
    pub fn is_wan(self) -> bool {
        self.protocol_type().is_some()
    }
}

impl fmt::Display for Edge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short_name())
    }
}

/// The simulated interrupt request level.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum Irql {
    /// `PASSIVE_LEVEL`: may wait.
    Passive,
    /// `DISPATCH_LEVEL`: DPCs and spin locks; may not wait.
    Dispatch,
}

impl Irql {
    /// The level's name.
    pub fn name(self) -> &'static str {
        match self {
            Irql::Passive => "PASSIVE_LEVEL",
            Irql::Dispatch => "DISPATCH_LEVEL",
        }
    }
}

impl fmt::Display for Irql {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which IRQL the simulator makes data-path, status and OID-completion callbacks at.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum IrqlPolicy {
    /// Always `PASSIVE_LEVEL`.
    Passive,
    /// Always `DISPATCH_LEVEL`.
    Dispatch,
    /// `PASSIVE_LEVEL` and `DISPATCH_LEVEL` in turn, deterministically, so both are exercised.
    #[default]
    Alternate,
}

/// A filter module's state as NDIS sees it (which the filter must respect).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum NdisState {
    /// No module on the edge.
    Detached,
    /// `FilterAttach` is running.
    Attaching,
    /// Attached and paused.
    Paused,
    /// `FilterRestart` is running.
    Restarting,
    /// Running.
    Running,
    /// `FilterPause` was called and the pause has not completed.
    Pausing,
}

impl NdisState {
    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            NdisState::Detached => "detached",
            NdisState::Attaching => "attaching",
            NdisState::Paused => "paused",
            NdisState::Restarting => "restarting",
            NdisState::Running => "running",
            NdisState::Pausing => "pausing",
        }
    }

    /// True in the states where nothing may be sent down or indicated up.
    pub fn forbids_data(self) -> bool {
        matches!(self, NdisState::Detached | NdisState::Attaching | NdisState::Paused)
    }
}

impl fmt::Display for NdisState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
