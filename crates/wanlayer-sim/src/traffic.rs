//! WAN links and the traffic on them: line-up parameters, the links the simulator brought up, and
//! IPv4/IPv6 TCP/UDP frames framed the way NdisWan frames them (facts §3: on send the destination
//! is the link's `RemoteAddress` and the source its `LocalAddress`; on receive the reverse).

use std::fmt;

use wanlayer_core::hook::Direction;
use wanlayer_core::link::WanQuality;
use wanlayer_core::wire::{
    EtherType, EthernetFrame, EthernetRepr, IpAddress, IpFrameRepr, Ipv4Address, Ipv6Address, MacAddress, TcpFlags, TcpRepr,
    TransportRepr, UdpRepr, ETHERNET_HEADER_LEN,
};

use crate::edge::Edge;

/// The largest payload a generated frame carries; longer requests are cut to it.
pub const MAX_PAYLOAD: usize = 9000;
/// Length of the generated `ProtocolBuffer` (Vista's is about 600 bytes).
pub const PROTOCOL_BUFFER_LEN: usize = 600;

/// What NdisWan indicates for a new link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkParams {
    /// `LinkSpeed`, in units of 100 bit/s.
    pub link_speed_100bps: u32,
    /// `MaximumTotalSize`.
    pub maximum_total_size: u32,
    /// `Quality`.
    pub quality: WanQuality,
    /// `SendWindow`.
    pub send_window: u16,
    /// `ProtocolBuffer`; `None` generates one carrying the client's address where the public sample
    /// reads it (IPv4 at 584..588, the IPv6 interface identifier at 588..596).
    pub protocol_buffer: Option<Vec<u8>>,
}

impl Default for LinkParams {
    fn default() -> Self {
        Self {
            link_speed_100bps: 1_000_000,
            maximum_total_size: 1400,
            quality: WanQuality::Reliable,
            send_window: 16,
            protocol_buffer: None,
        }
    }
}

impl LinkParams {
    /// Default parameters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `MaximumTotalSize`.
    pub fn mtu(mut self, maximum_total_size: u32) -> Self {
        self.maximum_total_size = maximum_total_size;
        self
    }

    /// Sets the speed in bit/s.
    pub fn speed_bps(mut self, bps: u64) -> Self {
        self.link_speed_100bps = u32::try_from(bps / 100).unwrap_or(u32::MAX);
        self
    }

    /// Sets the `ProtocolBuffer` bytes.
    pub fn protocol_buffer(mut self, bytes: Vec<u8>) -> Self {
        self.protocol_buffer = Some(bytes);
        self
    }
}

/// A WAN link the simulator brought up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimLink {
    /// The edge it is on.
    pub edge: Edge,
    /// Its number in the simulation (from 1).
    pub index: u32,
    /// `RemoteAddress`, chosen by NdisWan.
    pub remote: MacAddress,
    /// `LocalAddress`, filled in by the protocol.
    pub local: MacAddress,
    /// IPv4 or IPv6.
    pub protocol_type: EtherType,
    /// `MaximumTotalSize` as NdisWan indicated it.
    pub maximum_total_size: u32,
    /// `MaximumTotalSize` as the protocol was told, `None` if the line up never reached it.
    pub reported_total_size: Option<u32>,
    /// `DeviceName` as the protocol filled it in.
    pub device_name: String,
    /// The RRAS server's address on the link.
    pub server_ip: IpAddress,
    /// The dial-in client's address.
    pub client_ip: IpAddress,
}

impl SimLink {
    /// The addresses NdisWan uses for link number `index` on `edge`.
    pub(crate) fn addresses(edge: Edge, index: u32) -> (MacAddress, IpAddress, IpAddress) {
        let high = ((index >> 8) & 0x7f) as u8;
        let remote = MacAddress([0x3c ^ (high << 1), index as u8, 0x20, 0x52, 0x41, 0x53]);
        let [_, _, hi, lo] = index.to_be_bytes();
        let (server, client) = if edge == Edge::WanIpv6 {
            let mut client = [0u8; 16];
            client[..6].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0x01, 0x00]);
            client[12..].copy_from_slice(&index.to_be_bytes());
            let mut server = [0u8; 16];
            server[..6].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0x00, 0x99]);
            server[15] = 1;
            (IpAddress::Ipv6(Ipv6Address(server)), IpAddress::Ipv6(Ipv6Address(client)))
        } else {
            (IpAddress::Ipv4(Ipv4Address::new(10, 99, 0, 1)), IpAddress::Ipv4(Ipv4Address::new(10, 100, hi, lo)))
        };
        (remote, server, client)
    }

    /// The generated `ProtocolBuffer` of a link whose client has `client`.
    pub(crate) fn protocol_buffer_for(client: IpAddress) -> Vec<u8> {
        let mut buffer = vec![0u8; PROTOCOL_BUFFER_LEN];
        match client {
            IpAddress::Ipv4(address) => buffer[584..588].copy_from_slice(&address.0),
            IpAddress::Ipv6(address) => buffer[588..596].copy_from_slice(&address.0[8..]),
        }
        buffer
    }

    /// A frame of `flow` on this link: `Send` from the server to the client, `Receive` from the
    /// client to the server. `seq` varies the payload, the IP identification and the TCP sequence.
    pub fn frame(&self, direction: Direction, flow: &Flow, seq: u32) -> Vec<u8> {
        let (src_port, dst_port) = match direction {
            Direction::Send => (flow.server_port, flow.client_port),
            Direction::Receive => (flow.client_port, flow.server_port),
        };
        let payload = payload(flow.payload_len, seq);
        let transport = match flow.transport {
            Transport::Udp => TransportRepr::Udp(UdpRepr { src_port, dst_port, payload_len: payload.len() }),
            Transport::Tcp => TransportRepr::Tcp(TcpRepr {
                src_port,
                dst_port,
                seq_number: seq.wrapping_mul(1000),
                ack_number: 1,
                flags: TcpFlags::ACK | TcpFlags::PSH,
                window_len: 64_240,
                urgent_at: 0,
                max_seg_size: None,
                window_scale: None,
                sack_permitted: false,
                timestamps: None,
                payload_len: payload.len(),
            }),
        };
        self.ip_frame(direction, transport, &payload, seq as u16)
    }

    /// A TCP SYN on this link (`Send`: server port 443 to client port 50000, `Receive`: the
    /// reverse), with an MSS option of `mss` when given, a window-scale option and SACK permitted.
    pub fn syn_frame(&self, direction: Direction, mss: Option<u16>) -> Vec<u8> {
        let (src_port, dst_port) = match direction {
            Direction::Send => (443, 50_000),
            Direction::Receive => (50_000, 443),
        };
        let syn = TcpRepr {
            src_port,
            dst_port,
            seq_number: 0x1000_0000,
            ack_number: 0,
            flags: TcpFlags::SYN,
            window_len: 64_240,
            urgent_at: 0,
            max_seg_size: mss,
            window_scale: Some(7),
            sack_permitted: true,
            timestamps: None,
            payload_len: 0,
        };
        self.ip_frame(direction, TransportRepr::Tcp(syn), &[], 1)
    }

    /// An IP frame on this link with lengths and checksums correct (the one builder,
    /// [`IpFrameRepr`]): `Send` from the server to the client, framed to the link's remote
    /// address; `Receive` from the client to the server, framed to its local address. TTL 64.
    pub fn ip_frame(&self, direction: Direction, transport: TransportRepr, payload: &[u8], ident: u16) -> Vec<u8> {
        let (dst_mac, src_mac, src_addr, dst_addr) = match direction {
            Direction::Send => (self.remote, self.local, self.server_ip, self.client_ip),
            Direction::Receive => (self.local, self.remote, self.client_ip, self.server_ip),
        };
        let repr = IpFrameRepr { dst_mac, src_mac, src_addr, dst_addr, hop_limit: 64, ident, transport, payload };
        let mut frame = vec![0u8; repr.buffer_len()];
        match repr.emit(&mut frame) {
            Ok(()) => frame,
            Err(_) => Vec::new(),
        }
    }
}

impl fmt::Display for SimLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let protocol = if self.protocol_type == EtherType::Ipv6 { "IPv6" } else { "IPv4" };
        write!(
            f,
            "link {} on {}: remote {} local {} {protocol} {} ↔ {} MTU {}",
            self.index, self.edge, self.remote, self.local, self.server_ip, self.client_ip, self.maximum_total_size
        )?;
        match self.reported_total_size {
            Some(size) if size != self.maximum_total_size => write!(f, " (reported {size})"),
            Some(_) => Ok(()),
            None => f.write_str(" (never reached the protocol)"),
        }
    }
}

/// TCP or UDP.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Transport {
    /// UDP datagrams.
    Udp,
    /// TCP segments (ACK|PSH, no options).
    Tcp,
}

/// A conversation between the RRAS server and a dial-in client.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Flow {
    /// TCP or UDP.
    pub transport: Transport,
    /// The server's port.
    pub server_port: u16,
    /// The client's port.
    pub client_port: u16,
    /// Payload bytes per frame (at most [`MAX_PAYLOAD`]).
    pub payload_len: usize,
}

impl Flow {
    /// A UDP flow with 64-byte payloads.
    pub fn udp(server_port: u16, client_port: u16) -> Self {
        Self { transport: Transport::Udp, server_port, client_port, payload_len: 64 }
    }

    /// A TCP flow with 64-byte payloads.
    pub fn tcp(server_port: u16, client_port: u16) -> Self {
        Self { transport: Transport::Tcp, ..Self::udp(server_port, client_port) }
    }

    /// Sets the payload length, cut at [`MAX_PAYLOAD`].
    pub fn payload(mut self, len: usize) -> Self {
        self.payload_len = len.min(MAX_PAYLOAD);
        self
    }
}

fn payload(len: usize, seq: u32) -> Vec<u8> {
    (0..len.min(MAX_PAYLOAD)).map(|i| (seq as usize).wrapping_mul(31).wrapping_add(i) as u8).collect()
}

/// A bare Ethernet frame with `payload_len` bytes of pattern after the header, for traffic that
/// belongs to no link (ARP-like, another EtherType, a stranger's addresses).
pub fn ethernet_frame(dst: MacAddress, src: MacAddress, ethertype: EtherType, payload_len: usize) -> Vec<u8> {
    let mut frame = vec![0u8; ETHERNET_HEADER_LEN];
    let header = EthernetRepr { src_addr: src, dst_addr: dst, ethertype };
    if header.emit(&mut EthernetFrame::new_unchecked(&mut frame[..])).is_ok() {
        frame.extend(payload(payload_len, 0));
    }
    frame
}

#[cfg(test)]
mod tests {
    use super::*;
    use wanlayer_core::wire::{FrameSummary, IpProtocol, Ipv4Packet, Ipv6Packet, Ports, TcpPacket, UdpPacket};

    fn link(edge: Edge, index: u32) -> SimLink {
        let (remote, server_ip, client_ip) = SimLink::addresses(edge, index);
        SimLink {
            edge,
            index,
            remote,
            local: crate::ndis::local_address_for(remote),
            protocol_type: edge.protocol_type().unwrap_or(EtherType::Ipv4),
            maximum_total_size: 1400,
            reported_total_size: Some(1400),
            device_name: String::new(),
            server_ip,
            client_ip,
        }
    }

    #[test]
    fn sends_go_to_the_remote_address_and_receives_come_from_it() {
        let link = link(Edge::WanIp, 3);
        let flow = Flow::udp(53, 40000);
        let sent = FrameSummary::parse(&link.frame(Direction::Send, &flow, 0)).unwrap();
        assert_eq!((sent.dst_mac, sent.src_mac), (link.remote, link.local));
        let ip = sent.ip.unwrap();
        assert_eq!((ip.src_addr, ip.dst_addr, ip.protocol), (link.server_ip, link.client_ip, IpProtocol::Udp));
        assert_eq!(ip.ports, Some(Ports { src: 53, dst: 40000 }));
        let received = FrameSummary::parse(&link.frame(Direction::Receive, &flow, 0)).unwrap();
        assert_eq!((received.dst_mac, received.src_mac), (link.local, link.remote));
        assert_eq!(received.ip.unwrap().ports, Some(Ports { src: 40000, dst: 53 }));
    }

    #[test]
    fn generated_frames_carry_valid_checksums_in_both_families() {
        for edge in [Edge::WanIp, Edge::WanIpv6] {
            let link = link(edge, 300);
            for flow in [Flow::udp(500, 4500).payload(100), Flow::tcp(443, 50000).payload(1)] {
                let frame = link.frame(Direction::Receive, &flow, 7);
                let ethernet = EthernetFrame::new_checked(&frame[..]).unwrap();
                let (src, dst) = (link.client_ip, link.server_ip);
                let transport = match edge {
                    Edge::WanIpv6 => Ipv6Packet::new_checked(ethernet.payload()).unwrap().payload(),
                    _ => {
                        let ip = Ipv4Packet::new_checked(ethernet.payload()).unwrap();
                        assert!(ip.verify_checksum());
                        ip.payload()
                    }
                };
                let valid = match flow.transport {
                    Transport::Udp => UdpPacket::new_checked(transport).unwrap().verify_checksum(&src, &dst),
                    Transport::Tcp => TcpPacket::new_checked(transport).unwrap().verify_checksum(&src, &dst),
                };
                assert!(valid, "{edge} {flow:?}");
            }
        }
    }

    #[test]
    fn link_addresses_are_ndiswan_style_and_distinct() {
        let a = link(Edge::WanIp, 1);
        let b = link(Edge::WanIp, 257);
        assert!(a.remote.is_ndiswan() && a.local.is_ndiswan() && a.remote.is_unicast());
        assert_ne!(a.remote, b.remote);
        assert_ne!(a.client_ip, b.client_ip);
        let buffer = SimLink::protocol_buffer_for(a.client_ip);
        assert_eq!((buffer.len(), &buffer[584..588]), (PROTOCOL_BUFFER_LEN, &[10, 100, 0, 1][..]));
        let expected = format!("link 1 on wan-ip: remote {} local {} IPv4 10.99.0.1 ↔ 10.100.0.1 MTU 1400", a.remote, a.local);
        assert_eq!(a.to_string(), expected);
        assert_eq!((a.remote.0[0], a.local.0[0]), (0x3c, 0x2e));
        assert_eq!(Flow::udp(1, 2).payload(100_000).payload_len, MAX_PAYLOAD);
    }

    #[test]
    fn a_bare_frame_has_the_header_and_the_pattern() {
        let frame = ethernet_frame(MacAddress::BROADCAST, Edge::Ethernet.mac_address(), EtherType::Arp, 28);
        assert_eq!(frame.len(), 42);
        assert_eq!(&frame[12..14], &[0x08, 0x06]);
    }
}
