//! The trace: everything that crossed an edge, in order, for assertions and for people.
//!
//! No pcap: each [`TraceRecord`] names the edge, which way the thing went (protocol → filter,
//! filter → miniport, ...), the packet, and a one-line description of the frame.
//!
//! The simulator records every packet it moves, so a record keeps what it describes as data (the
//! frame's parsed summary, a completion status) and writes its text only when it is printed.

use std::fmt;

use wanlayer_core::hal::{Level, Timestamp};
use wanlayer_core::wire::{self, FrameSummary, IpAddress, IpProtocol, IpSummary, Ipv4Address, Ports};
use wanlayer_core::NdisStatus;

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

/// What a trace record says besides its event: text written when it was recorded, or data
/// written out only when the record is printed.
///
/// Kept small (the trace holds several records for every packet the simulator moves): an IPv4
/// frame's summary in place, any other frame's boxed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceText {
    /// Text (a status, a message; empty for nothing).
    Written(String),
    /// An IPv4 frame's description.
    Ipv4Frame(Ipv4Line),
    /// Any other frame's description.
    Frame(Box<FrameLine>),
    /// A completion status.
    Status(NdisStatus),
}

impl TraceText {
    /// A frame's description ([`describe_frame`]).
    pub fn frame(frame: &[u8]) -> Self {
        Self::indicated_frame(frame, false)
    }

    /// A frame's description, followed by `resources` when it was indicated with the resources
    /// flag.
    pub fn indicated_frame(frame: &[u8], resources: bool) -> Self {
        let line = FrameLine::new(frame);
        let ip = line.summary.ok().and_then(|summary| summary.ip);
        match (ip, u32::try_from(line.len)) {
            (Some(IpSummary { src_addr: IpAddress::Ipv4(src), dst_addr: IpAddress::Ipv4(dst), protocol, is_fragment, ports }), Ok(len)) => {
                TraceText::Ipv4Frame(Ipv4Line { len, src, dst, protocol, is_fragment, ports, resources })
            }
            _ => TraceText::Frame(Box::new(FrameLine { resources, ..line })),
        }
    }

    /// True when it says nothing.
    pub fn is_empty(&self) -> bool {
        matches!(self, TraceText::Written(text) if text.is_empty())
    }
}

impl From<String> for TraceText {
    fn from(text: String) -> Self {
        TraceText::Written(text)
    }
}

impl From<&str> for TraceText {
    fn from(text: &str) -> Self {
        TraceText::Written(text.to_owned())
    }
}

impl fmt::Display for TraceText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceText::Written(text) => f.write_str(text),
            TraceText::Ipv4Frame(line) => write!(f, "{line}"),
            TraceText::Frame(line) => write!(f, "{line}"),
            TraceText::Status(status) => write!(f, "{status}"),
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
    pub text: TraceText,
}

impl fmt::Display for TraceRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let edge = self.edge.map_or("-", Edge::short_name);
        write!(f, "{:>12}  {edge:<8}  {:<38}", Time(self.time), self.event.label())?;
        if let Some(packet) = self.packet {
            write!(f, "  {packet:<8}")?;
        }
        let text = match &self.text {
            TraceText::Written(text) => std::borrow::Cow::Borrowed(text.as_str()),
            other => std::borrow::Cow::Owned(other.to_string()),
        };
        if !text.is_empty() {
            write!(f, "  {}", text.trim_end())?;
        }
        Ok(())
    }
}

/// What [`describe_frame`] says about a frame, kept as its length and parsed summary and written
/// out when printed; then `resources` when it was indicated with the resources flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameLine {
    len: usize,
    summary: Result<FrameSummary, wire::Error>,
    resources: bool,
}

impl FrameLine {
    /// Reads `frame`'s summary. Never panics, whatever the bytes.
    pub fn new(frame: &[u8]) -> Self {
        Self { len: frame.len(), summary: FrameSummary::parse(frame), resources: false }
    }
}

impl fmt::Display for FrameLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let len = self.len;
        match &self.summary {
            Err(error) => write!(f, "{len} B ({error})")?,
            Ok(summary) => match &summary.ip {
                None => write!(f, "{len} B {} → {} EtherType 0x{:04x}", summary.src_mac, summary.dst_mac, u16::from(summary.ethertype))?,
                Some(ip) => write_ip_line(f, len, ip)?,
            },
        }
        write_note(f, self.resources)
    }
}

/// [`FrameLine`] of an IPv4 frame, in a third of the room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Line {
    len: u32,
    src: Ipv4Address,
    dst: Ipv4Address,
    protocol: IpProtocol,
    is_fragment: bool,
    ports: Option<Ports>,
    resources: bool,
}

impl fmt::Display for Ipv4Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ip = IpSummary {
            src_addr: IpAddress::Ipv4(self.src),
            dst_addr: IpAddress::Ipv4(self.dst),
            protocol: self.protocol,
            is_fragment: self.is_fragment,
            ports: self.ports,
        };
        write_ip_line(f, self.len as usize, &ip)?;
        write_note(f, self.resources)
    }
}

/// An IP frame's line: size, version, protocol, addresses and ports.
fn write_ip_line(f: &mut fmt::Formatter<'_>, len: usize, ip: &IpSummary) -> fmt::Result {
    let (version, open, close) = match ip.src_addr {
        IpAddress::Ipv4(_) => ("IPv4", "", ""),
        IpAddress::Ipv6(_) => ("IPv6", "[", "]"),
    };
    write!(f, "{len} B {version} ")?;
    match ip.protocol {
        IpProtocol::Tcp => f.write_str("TCP")?,
        IpProtocol::Udp => f.write_str("UDP")?,
        other => write!(f, "{other:?}")?,
    }
    if ip.is_fragment {
        f.write_str(" fragment")?;
    }
    write!(f, " {open}{}{close}", ip.src_addr)?;
    if let Some(ports) = ip.ports {
        write!(f, ":{}", ports.src)?;
    }
    write!(f, " → {open}{}{close}", ip.dst_addr)?;
    if let Some(ports) = ip.ports {
        write!(f, ":{}", ports.dst)?;
    }
    Ok(())
}

/// ` resources` after a frame indicated with the resources flag.
fn write_note(f: &mut fmt::Formatter<'_>, resources: bool) -> fmt::Result {
    if resources {
        f.write_str(" resources")?;
    }
    Ok(())
}

/// One line about a frame: size, addresses, protocol and ports. Never panics, whatever the bytes.
///
/// The trace keeps a [`FrameLine`] and writes this only when it is printed.
pub fn describe_frame(frame: &[u8]) -> String {
    FrameLine::new(frame).to_string()
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
    fn data_recorded_prints_as_the_text_written_at_once_would() {
        let mut udp = vec![0u8; 14 + 28];
        udp[12..14].copy_from_slice(&[0x08, 0x00]);
        udp[14] = 0x45;
        udp[16..18].copy_from_slice(&28u16.to_be_bytes());
        udp[23] = 17;
        udp[26..30].copy_from_slice(&[10, 0, 0, 1]);
        udp[34..36].copy_from_slice(&40_000u16.to_be_bytes());
        let mut v6 = vec![0u8; 14 + 40];
        v6[12..14].copy_from_slice(&[0x86, 0xdd]);
        v6[14] = 0x60;
        v6[20] = 59;
        v6[37] = 1;
        let record = |text: TraceText| TraceRecord { time: Timestamp(0), edge: None, event: TraceEvent::IndicateUp, packet: None, text };
        // What the simulator wrote at once before: the description, then " resources" or " ".
        for frame in [&udp[..], &v6[..], &[1, 2][..], &[0; 14][..]] {
            for (resources, note) in [(true, "resources"), (false, "")] {
                let at_once = record(format!("{} {note}", describe_frame(frame)).into()).to_string();
                assert_eq!(record(TraceText::indicated_frame(frame, resources)).to_string(), at_once);
            }
            assert_eq!(record(TraceText::frame(frame)).to_string(), record(describe_frame(frame).into()).to_string());
        }
        assert!(matches!(TraceText::frame(&udp), TraceText::Ipv4Frame(_)) && matches!(TraceText::frame(&v6), TraceText::Frame(_)));
        assert!(describe_frame(&v6).starts_with("54 B IPv6 ") && describe_frame(&udp).ends_with("10.0.0.1:40000 → 0.0.0.0:0"));
        let status = TraceText::Status(NdisStatus::SUCCESS);
        assert_eq!(record(status).to_string(), record(NdisStatus::SUCCESS.to_string().into()).to_string());
        assert!(TraceText::from(String::new()).is_empty() && !TraceText::frame(&[]).is_empty());
        assert!(size_of::<TraceText>() <= 32, "{} bytes", size_of::<TraceText>());
    }

    #[test]
    fn a_record_prints_on_one_line() {
        let record = TraceRecord {
            time: Timestamp(2_000_000),
            edge: Some(Edge::WanIp),
            event: TraceEvent::SendDown,
            packet: Some(PacketId(4)),
            text: TraceText::from("74 B IPv4 UDP"),
        };
        let line = record.to_string();
        assert!(line.contains("wan-ip") && line.contains("filter → miniport") && line.contains("nbl#4") && line.ends_with("74 B IPv4 UDP"));
        assert!(!line.contains('\n'));
    }
}
