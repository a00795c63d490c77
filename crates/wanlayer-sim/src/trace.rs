//! The trace: everything that crossed an edge, in order, for assertions and for people.
//!
//! No pcap: each [`TraceRecord`] names the edge, which way the thing went (protocol → filter,
//! filter → miniport, ...), the packet, and a one-line description of the frame.

use std::fmt;

use wanlayer_core::hal::{Level, Timestamp};
use wanlayer_core::wire::{FrameSummary, IpAddress, IpProtocol};

use crate::edge::Edge;
use crate::sim_nbl::PacketId;
use crate::verifier::Rule;

/// A virtual time, printed in milliseconds.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct Time(pub Timestamp);

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0 .0;
        let text = format!("{}.{:03} ms", nanos / 1_000_000, nanos % 1_000_000 / 1_000);
        f.pad(&text)
    }
}

/// What a trace record is about.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TraceEvent {
    /// The protocol sent a packet into the filter.
    ProtocolSend,
    /// The filter sent a packet down to the miniport.
    SendDown,
    /// The miniport completed a send to the filter.
    SendCompleteFromMiniport,
    /// The filter completed a send to the protocol.
    CompleteToProtocol,
    /// The miniport indicated a receive to the filter.
    ReceiveFromMiniport {
        /// With the resources flag.
        resources: bool,
    },
    /// The filter indicated a packet up to the protocol.
    IndicateUp,
    /// The protocol returned a received packet to the filter.
    ReturnFromProtocol,
    /// The filter returned a received packet to the miniport.
    ReturnToMiniport,
    /// The filter gave back a lent packet by returning from its receive callback.
    LentBack,
    /// The protocol cancelled sends.
    CancelSend,
    /// The miniport indicated a status to the filter.
    StatusFromMiniport,
    /// The filter passed a status up to the protocol.
    StatusToProtocol,
    /// The protocol issued an OID request.
    OidFromProtocol,
    /// The filter passed an OID request down.
    OidToMiniport,
    /// The miniport completed an OID request to the filter.
    OidFromMiniport,
    /// The filter completed an OID request to the protocol.
    OidToProtocol,
    /// A lifecycle step (attach, restart, pause, detach, unload).
    Lifecycle,
    /// A message the filter logged.
    FilterLog(Level),
    /// Fault injection refused an allocation.
    Fault,
    /// The verifier caught something.
    Violation(Rule),
}

impl TraceEvent {
    /// Which way it went, or what it is.
    pub fn label(&self) -> String {
        match self {
            TraceEvent::ProtocolSend => "protocol → filter  send".to_owned(),
            TraceEvent::SendDown => "filter → miniport  send".to_owned(),
            TraceEvent::SendCompleteFromMiniport => "miniport → filter  complete".to_owned(),
            TraceEvent::CompleteToProtocol => "filter → protocol  complete".to_owned(),
            TraceEvent::ReceiveFromMiniport { resources: false } => "miniport → filter  receive".to_owned(),
            TraceEvent::ReceiveFromMiniport { resources: true } => "miniport → filter  receive (resources)".to_owned(),
            TraceEvent::IndicateUp => "filter → protocol  indicate".to_owned(),
            TraceEvent::ReturnFromProtocol => "protocol → filter  return".to_owned(),
            TraceEvent::ReturnToMiniport => "filter → miniport  return".to_owned(),
            TraceEvent::LentBack => "filter → miniport  lent back".to_owned(),
            TraceEvent::CancelSend => "protocol → filter  cancel".to_owned(),
            TraceEvent::StatusFromMiniport => "miniport → filter  status".to_owned(),
            TraceEvent::StatusToProtocol => "filter → protocol  status".to_owned(),
            TraceEvent::OidFromProtocol => "protocol → filter  OID".to_owned(),
            TraceEvent::OidToMiniport => "filter → miniport  OID".to_owned(),
            TraceEvent::OidFromMiniport => "miniport → filter  OID complete".to_owned(),
            TraceEvent::OidToProtocol => "filter → protocol  OID complete".to_owned(),
            TraceEvent::Lifecycle => "ndis → filter".to_owned(),
            TraceEvent::FilterLog(level) => format!("filter log ({level:?})"),
            TraceEvent::Fault => "fault injection".to_owned(),
            TraceEvent::Violation(rule) => format!("VIOLATION {rule}"),
        }
    }
}

/// One line of the trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceRecord {
    /// When.
    pub time: Timestamp,
    /// On which edge, when it is about one.
    pub edge: Option<Edge>,
    /// What.
    pub event: TraceEvent,
    /// The packet, when it is about one.
    pub packet: Option<PacketId>,
    /// A description (the frame, the status, the message).
    pub text: String,
}

impl fmt::Display for TraceRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let edge = self.edge.map_or("-", Edge::short_name);
        write!(f, "{:>12}  {edge:<8}  {:<38}", Time(self.time), self.event.label())?;
        if let Some(packet) = self.packet {
            write!(f, "  {packet:<8}")?;
        }
        if !self.text.is_empty() {
            write!(f, "  {}", self.text.trim_end())?;
        }
        Ok(())
    }
}

/// One line about a frame: size, addresses, protocol and ports. Never panics, whatever the bytes.
///
/// The simulator describes every packet it moves, so this is on its hottest path: the line is
/// written once into one `String` sized for it, with no intermediate strings.
pub fn describe_frame(frame: &[u8]) -> String {
    use fmt::Write as _;
    let len = frame.len();
    let mut line = String::with_capacity(96);
    let summary = match FrameSummary::parse(frame) {
        Ok(summary) => summary,
        Err(error) => {
            let _ = write!(line, "{len} B ({error})");
            return line;
        }
    };
    let Some(ip) = summary.ip else {
        let _ = write!(line, "{len} B {} → {} EtherType 0x{:04x}", summary.src_mac, summary.dst_mac, u16::from(summary.ethertype));
        return line;
    };
    let (version, open, close) = match ip.src_addr {
        IpAddress::Ipv4(_) => ("IPv4", "", ""),
        IpAddress::Ipv6(_) => ("IPv6", "[", "]"),
    };
    let _ = write!(line, "{len} B {version} ");
    let _ = match ip.protocol {
        IpProtocol::Tcp => write!(line, "TCP"),
        IpProtocol::Udp => write!(line, "UDP"),
        other => write!(line, "{other:?}"),
    };
    if ip.is_fragment {
        line.push_str(" fragment");
    }
    let _ = write!(line, " {open}{}{close}", ip.src_addr);
    if let Some(ports) = ip.ports {
        let _ = write!(line, ":{}", ports.src);
    }
    let _ = write!(line, " → {open}{}{close}", ip.dst_addr);
    if let Some(ports) = ip.ports {
        let _ = write!(line, ":{}", ports.dst);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use wanlayer_core::wire::MacAddress;

    #[test]
    fn time_prints_milliseconds_with_microseconds() {
        assert_eq!(Time(Timestamp(0)).to_string(), "0.000 ms");
        assert_eq!(Time(Timestamp(12_345_678_901)).to_string(), "12345.678 ms");
        assert_eq!(format!("{:>10}", Time(Timestamp(1_000))), "  0.001 ms");
    }

    #[test]
    fn frames_that_are_not_ip_or_too_short_are_described_without_panicking() {
        assert_eq!(describe_frame(&[0; 5]), "5 B (truncated packet)");
        let mut arp = vec![0xff; 6];
        arp.extend([0x02, 0, 0, 0, 0, 1, 0x08, 0x06]);
        let expected = format!("14 B {} → {} EtherType 0x0806", MacAddress([2, 0, 0, 0, 0, 1]), MacAddress::BROADCAST);
        assert_eq!(describe_frame(&arp), expected);
        let mut bad_v4 = arp.clone();
        bad_v4[12..14].copy_from_slice(&[0x08, 0x00]);
        bad_v4.push(0x45);
        assert_eq!(describe_frame(&bad_v4), "15 B (truncated packet)");
        for len in 0..80 {
            let noise: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let _ = describe_frame(&noise);
        }
    }

    #[test]
    fn ip_frames_are_described_with_version_protocol_addresses_and_ports() {
        let mut udp = vec![0u8; 14 + 28];
        udp[12..14].copy_from_slice(&[0x08, 0x00]);
        udp[14] = 0x45;
        udp[16..18].copy_from_slice(&28u16.to_be_bytes());
        udp[23] = 17;
        udp[26..30].copy_from_slice(&[10, 0, 0, 1]);
        udp[30..34].copy_from_slice(&[192, 0, 2, 7]);
        udp[34..36].copy_from_slice(&40_000u16.to_be_bytes());
        udp[36..38].copy_from_slice(&53u16.to_be_bytes());
        assert_eq!(describe_frame(&udp), "42 B IPv4 UDP 10.0.0.1:40000 → 192.0.2.7:53");
    }

    #[test]
    fn a_record_prints_on_one_line() {
        let record = TraceRecord {
            time: Timestamp(2_000_000),
            edge: Some(Edge::WanIp),
            event: TraceEvent::SendDown,
            packet: Some(PacketId(4)),
            text: "74 B IPv4 UDP".to_owned(),
        };
        let line = record.to_string();
        assert!(line.contains("wan-ip") && line.contains("filter → miniport") && line.contains("nbl#4") && line.ends_with("74 B IPv4 UDP"));
        assert!(!line.contains('\n'));
    }
}
