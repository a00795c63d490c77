//! Seed inputs: a handful of small valid inputs per target, made by the project's own code
//! (`examples/seed.rs` writes them to `corpus/<target>/seed-<name>`).

use crate::bytes::Bytes;
use core::mem::{offset_of, size_of};
use wanlayer_core::wire::{
    IpAddress, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr, Ipv6Address, Ipv6Packet, Ipv6Repr, TcpFlags, TcpPacket, TcpRepr,
};
use wanlayer_ndis::types::UnicodeString;
use wanlayer_ndis::wan::WanLineUp;
use wanlayer_proto::ioctl::*;
use wanlayer_proto::*;
use wanlayer_sim::{Edge, Flow, IoOutcome, LinkParams, ReceiveOptions, Rras};
use wanlayer_sim_driver::DriverFilter;

/// One seed: its target, its name, its bytes.
pub type Seed = (&'static str, String, Vec<u8>);

/// Every seed of every target; `inf_template` is `inf/wanlayer.inx`, `image` a built driver.
pub fn all(inf_template: &[u8], image: Option<&[u8]>) -> Vec<Seed> {
    let mut seeds = proto_and_control();
    seeds.extend(wire());
    seeds.extend(wan_status());
    seeds.push(("inf_lint", "template-utf8".into(), inf_template.to_vec()));
    let mut utf16 = vec![0xff, 0xfe];
    for unit in String::from_utf8_lossy(inf_template).encode_utf16() {
        utf16.extend_from_slice(&unit.to_le_bytes());
    }
    seeds.push(("inf_lint", "template-utf16".into(), utf16));
    if let Some(image) = image {
        for (selector, policy) in [(1u8, "x64"), (3, "vendor")] {
            let mut bytes = vec![selector];
            bytes.extend_from_slice(image);
            seeds.push(("verify_image", policy.to_string(), bytes));
        }
    }
    seeds.extend(certificate());
    seeds.extend(rules());
    seeds
}

/// The `rules` seeds: filters alone, a set of rules with packets, a compiled set to load, and a
/// compiled set to change.
fn rules() -> Vec<Seed> {
    const FILTERS: [&str; 6] = [
        "tcp dst port 443 and src net 10.0.0.0/8",
        "udp and (port 53 or portrange 5000-5100)",
        "ip6 and tcp[13] & tcp-syn != 0",
        "link 3 or device \"\\DEVICE\\{6E0B3F7A*\"",
        "greater 100 and send and not host 192.168.1.1",
        "ip[9] = 17 or icmp[icmptype] = icmp-echo",
    ];
    let mut seeds: Vec<Seed> = FILTERS
        .iter()
        .enumerate()
        .map(|(at, filter)| {
            let mut seed = vec![0u8];
            seed.extend_from_slice(filter.as_bytes());
            ("rules", format!("filter-{at}"), seed)
        })
        .collect();
    let mut set = vec![1u8, FILTERS.len() as u8];
    for (at, filter) in FILTERS.iter().enumerate() {
        set.extend_from_slice(&[at as u8 % 4, at as u8 % 5, filter.len() as u8]);
        set.extend_from_slice(filter.as_bytes());
    }
    set.extend_from_slice(&[0x20, 0, 0x5a]);
    // One packet: receive, link 3, 60 bytes long, its first 20 bytes.
    set.extend_from_slice(&[0, 3, 60, 0, 20]);
    set.extend_from_slice(&[0x3c, 0, 0x20, 0x52, 0x41, 0x53, 0x2e, 0x1f, 0x20, 0x52, 0x41, 0x53, 0x08, 0, 0x45, 0, 0, 0x2e, 0, 0, 1]);
    let mut changed = set.clone();
    changed[0] = 3;
    seeds.push(("rules", "set".into(), set));
    seeds.push(("rules", "set-changed".into(), changed));
    let sources: Vec<wanlayer_rules::RuleSource<'_>> = FILTERS
        .iter()
        .enumerate()
        .map(|(at, filter)| wanlayer_rules::RuleSource {
            id: at as u32 + 10,
            priority: at as u32,
            action: wanlayer_rules::Action::Drop,
            filter,
        })
        .collect();
    let blob = wanlayer_rules::compile(&sources).expect("the seed rules compile");
    let mut load = vec![2u8];
    load.extend_from_slice(&(blob.len() as u16).to_le_bytes());
    load.extend_from_slice(&blob);
    seeds.push(("rules", "blob".into(), load));
    seeds
}

/// The requests the control device gets and the answers wanlayer.sys's own dispatch routines give
/// (the driver in the loop), for `proto` (each behind the selector of its message), and a few
/// request programs for `control`.
fn proto_and_control() -> Vec<Seed> {
    let mut seeds: Vec<Seed> = Vec::new();
    let mut rras = Rras::builder().ethernet().build(DriverFilter::new());
    rras.start().expect("the server starts");
    let handle = rras.filter().control_open(Access::READ_WRITE).expect("the control device opens");
    let links = [rras.link_up(Edge::WanIp, LinkParams::new()), rras.link_up(Edge::WanIpv6, LinkParams::new())];
    let call = |code: u32, input: &[u8], output_len: usize| -> Vec<u8> {
        match rras.filter().control_ioctl(handle, code, input, output_len) {
            IoOutcome::Complete(done) if done.status == Status::Success => done.output,
            other => panic!("{code:#x} did not complete: {other:?}"),
        }
    };
    let mut request = |selector: u8, name: &str, bytes: &[u8]| {
        let mut seed = vec![selector];
        seed.extend_from_slice(bytes);
        seeds.push(("proto", name.to_string(), seed));
    };
    let header = emit(8, |out| HeaderOnly.emit(out).map(|_| ()));
    request(0, "header-only", &header);
    let subscribe = emit(16, |out| SubscribeRepr { capacity: 64, mask: EventKind::ALL_MASK }.emit(&mut Subscribe::new_unchecked(out)));
    request(13, "subscribe", &subscribe);
    request(14, "subscription", &call(IOCTL_SUBSCRIBE_EVENTS, &subscribe, 24));
    let capture =
        emit(32, |out| CaptureStartRepr { target: Target::All, snap_len: 96, slots: 16 }.emit(&mut CaptureStart::new_unchecked(out)));
    request(18, "capture-start", &capture);
    request(19, "capture-session", &call(IOCTL_CAPTURE_START, &capture, 40));
    for link in &links {
        rras.send_flow(link, &Flow::udp(53, 4000).payload(20), 2);
        rras.receive_flow(link, &Flow::tcp(443, 5000), 1, ReceiveOptions::default());
    }
    rras.run_until_idle();
    request(1, "version", &call(IOCTL_QUERY_VERSION, &[], 64));
    request(2, "module-list", &call(IOCTL_LIST_MODULES, &header, 4096));
    let query = emit(32, |out| {
        LinkQueryRepr { module: None, protocol_buffer: true, cursor: 0, max_entries: 8 }.emit(&mut LinkQuery::new_unchecked(out))
    });
    request(4, "link-query", &query);
    request(5, "link-list", &call(IOCTL_LIST_LINKS, &query, 1 << 14));
    let module = rras.module(Edge::WanIp).expect("attached").0;
    let scope = emit(24, |out| ScopeRequestRepr { target: Target::Module(module) }.emit(&mut ScopeRequest::new_unchecked(out)));
    request(9, "scope-module", &scope);
    request(10, "module-stats", &call(IOCTL_QUERY_STATS, &scope, 512));
    let link_id = rras.engine().with_link(rras.module(Edge::WanIp).expect("attached"), &links[0].remote, |l| l.id().0).expect("up");
    let scope = emit(24, |out| ScopeRequestRepr { target: Target::Link(link_id) }.emit(&mut ScopeRequest::new_unchecked(out)));
    request(11, "link-stats", &call(IOCTL_QUERY_STATS, &scope, 80));
    let read = emit(16, |out| ReadRequestRepr { max_records: 16, wait: false }.emit(&mut ReadRequest::new_unchecked(out)));
    request(15, "read-request", &read);
    request(16, "event-batch", &call(IOCTL_READ_EVENTS, &read, 24 + 80 * 16));
    request(20, "capture-batch", &call(IOCTL_CAPTURE_READ, &read, 1 << 14));
    let frame = links[0].frame(wanlayer_core::hook::Direction::Send, &Flow::udp(53, 4000), 0);
    let inject = InjectRepr { module: None, direction: Direction::Send, link_id, frame: &frame };
    request(22, "inject", &emit(inject.buffer_len(), |out| inject.emit(&mut Inject::new_unchecked(out))));
    request(7, "hook-list-empty", &call(IOCTL_LIST_HOOKS, &header, 1024));
    request(23, "numbers", &[0x00, 0x60, 0x12, 0x00, 0x02, 0x00, 3, 0, 0, 0, 0, 0, 0, 0, 9, 0]);
    for (selector, name) in [(0x80u8, "build-scope"), (0x81, "build-subscribe"), (0x85, "build-inject"), (0x89, "build-event")] {
        request(selector, name, &[7u8; 48]);
    }
    rras.filter().control_close(handle);
    rras.unload();
    rras.verifier().assert_clean();

    // Control programs (see `control::World::step`): open a read-write handle (0, 3), bring a
    // link up (7), subscribe (1: handle 0, ioctl 6, built from fields (2), capacity, mask, output
    // 24), start a capture (1: ioctl 9), send (9), settle (11), read events and captures, inject,
    // list links, bring the link down, close. A read that pends is cancelled through the driver's
    // cancel-safe queue (12), completed by the driver's wake DPC once a line up queues an event, or
    // completed by the handle's cleanup (6).
    let programs: [(&str, &[u8]); 5] = [
        (
            "session",
            &[
                0, 3, 0, //
                7, 0, 0x10, 0x02, //
                1, 0, 6, 2, 0x40, 0, 0xff, 0x01, 0, 0, 4, 0, //
                1, 0, 9, 2, 0, 0x60, 0, 16, 6, 0, //
                9, 0, 0, 1, 53, 0, 0xa0, 0x0f, 40, 0, 2, 1,  //
                11, //
                1, 0, 7, 2, 8, 0, 9, 0, //
                1, 0, 10, 2, 8, 0, 11, 0, //
                1, 0, 12, 2, 0, 0, 1, 1, 0, 0, 0, 0, 10, 0, 10, 0, //
                1, 0, 2, 2, 1, 1, 0, 0, 8, 0, 10, 0, //
                8, 0, 0, //
                6, 0, 0,
            ],
        ),
        (
            "pending-read-and-cancel",
            &[0, 1, 0, 1, 0, 6, 2, 0x08, 0, 0xff, 0x01, 0, 0, 4, 0, 1, 0, 7, 2, 4, 1, 9, 0, 12, 0, 0, 7, 1, 0, 0, 0, 11, 6, 0, 0],
        ),
        (
            "pending-read-woken",
            &[0, 1, 0, 1, 0, 6, 2, 0x08, 0, 0xff, 0x01, 0, 0, 4, 0, 1, 0, 7, 2, 4, 1, 9, 0, 7, 0, 0x10, 0x02, 11, 6, 0, 0],
        ),
        ("pending-read-closed", &[0, 1, 0, 1, 0, 6, 2, 0x08, 0, 0xff, 0x01, 0, 0, 4, 0, 1, 0, 7, 2, 4, 1, 9, 0, 6, 0, 0]),
        (
            "hooks-and-stats",
            &[0, 3, 0, 14, 23, 0, 100, 0, 0, 0, 7, 1, 0, 0, 9, 0, 0, 1, 23, 0, 1, 0, 0, 0, 3, 11, 1, 0, 4, 1, 3, 0, 0, 9, 0, 15, 0, 0],
        ),
    ];
    for (name, program) in programs {
        seeds.push(("control", name.to_string(), program.to_vec()));
    }
    seeds
}

/// A message of `len` bytes written by `write`.
fn emit(len: usize, write: impl FnOnce(&mut [u8]) -> wanlayer_proto::Result<()>) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    write(&mut bytes).expect("a seed message emits");
    bytes
}

/// A TCP SYN with MSS, window scale and SACK-permitted options, checksummed for `src` → `dst`.
fn syn(src: IpAddress, dst: IpAddress) -> Vec<u8> {
    let repr = TcpRepr {
        src_port: 51234,
        dst_port: 443,
        seq_number: 0x8f3a_1c02,
        ack_number: 0,
        flags: TcpFlags::SYN,
        window_len: 64240,
        urgent_at: 0,
        max_seg_size: Some(1460),
        window_scale: Some(7),
        sack_permitted: true,
        timestamps: Some((0x0a1b_2c3d, 0)),
        payload_len: 0,
    };
    let mut segment = vec![0u8; repr.buffer_len()];
    let mut packet = TcpPacket::new_unchecked(&mut segment[..]);
    repr.emit(&mut packet).expect("a SYN emits");
    packet.fill_checksum(&src, &dst).expect("addresses of one version");
    segment
}

/// The `wire` seeds: NdisWan frames, each header alone, and SYNs whose MSS is rewritten.
fn wire() -> Vec<Seed> {
    let (v4_src, v4_dst) = (Ipv4Address::new(10, 64, 0, 7), Ipv4Address::new(198, 51, 100, 20));
    let segment = syn(IpAddress::Ipv4(v4_src), IpAddress::Ipv4(v4_dst));
    let ipv4 = Ipv4Repr {
        src_addr: v4_src,
        dst_addr: v4_dst,
        protocol: IpProtocol::Tcp,
        payload_len: segment.len(),
        ttl: 128,
        dscp: 0,
        ecn: 0,
        ident: 0x7a10,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
    };
    let mut packet_v4 = vec![0u8; ipv4.buffer_len()];
    ipv4.emit(&mut Ipv4Packet::new_unchecked(&mut packet_v4[..])).expect("an IPv4 header emits");
    packet_v4[ipv4.header_len()..].copy_from_slice(&segment);

    let v6_src = Ipv6Address::from_segments([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10]);
    let v6_dst = Ipv6Address::from_segments([0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x443]);
    let segment = syn(IpAddress::Ipv6(v6_src), IpAddress::Ipv6(v6_dst));
    let ipv6 = Ipv6Repr { src_addr: v6_src, dst_addr: v6_dst, next_header: IpProtocol::Tcp, payload_len: segment.len(), hop_limit: 64 };
    let mut packet_v6 = vec![0u8; ipv6.buffer_len()];
    ipv6.emit(&mut Ipv6Packet::new_unchecked(&mut packet_v6[..])).expect("an IPv6 header emits");
    packet_v6[wanlayer_core::wire::IPV6_HEADER_LEN..].copy_from_slice(&segment);

    let rras = Rras::new(DriverFilter::new());
    rras.start().expect("the server starts");
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    let link_v6 = rras.link_up(Edge::WanIpv6, LinkParams::new());
    let udp_frame = link.frame(wanlayer_core::hook::Direction::Send, &Flow::udp(53, 4000).payload(16), 0);
    let tcp_frame_v6 = link_v6.frame(wanlayer_core::hook::Direction::Receive, &Flow::tcp(443, 5000).payload(8), 1);
    let mut ethernet_v4 = udp_frame[..14].to_vec();
    ethernet_v4.extend_from_slice(&packet_v4);

    let with = |selector: u8, bytes: &[u8]| {
        let mut seed = vec![selector];
        seed.extend_from_slice(bytes);
        seed
    };
    let mss = |selector: u8, packet: &[u8]| {
        let mut seed = vec![selector, 0x4c, 0x05];
        seed.extend_from_slice(packet);
        seed
    };
    vec![
        ("wire", "frame-udp-v4".into(), with(0, &udp_frame)),
        ("wire", "frame-tcp-v6".into(), with(0, &tcp_frame_v6)),
        ("wire", "ethernet-syn-v4".into(), with(1, &ethernet_v4)),
        ("wire", "ipv4-syn".into(), with(2, &packet_v4)),
        ("wire", "ipv6-syn".into(), with(3, &packet_v6)),
        ("wire", "udp".into(), with(5, &udp_frame[34..])),
        ("wire", "mss-v4".into(), mss(6, &packet_v4)),
        ("wire", "mss-v6".into(), mss(7, &packet_v6)),
    ]
}

/// Writes `value` little-endian at `at`.
fn put(bytes: &mut [u8], at: usize, value: &[u8]) {
    bytes[at..at + value.len()].copy_from_slice(value);
}

/// The `wan_status` seeds: line ups with their regions inline, separate and dangling-but-empty,
/// and a line down.
fn wan_status() -> Vec<Seed> {
    const PROTOCOL_LEN: usize = 600;
    let mut line_up = vec![0u8; size_of::<WanLineUp>() + PROTOCOL_LEN + 96];
    put(&mut line_up, offset_of!(WanLineUp, link_speed), &1_000_000u32.to_le_bytes());
    put(&mut line_up, offset_of!(WanLineUp, maximum_total_size), &1500u32.to_le_bytes());
    put(&mut line_up, offset_of!(WanLineUp, quality), &2i32.to_le_bytes());
    put(&mut line_up, offset_of!(WanLineUp, send_window), &10u16.to_le_bytes());
    put(&mut line_up, offset_of!(WanLineUp, remote_address), &[0x3c, 0, 0x20, 0x52, 0x41, 0x53]);
    put(&mut line_up, offset_of!(WanLineUp, protocol_buffer_length), &(PROTOCOL_LEN as u32).to_le_bytes());
    put(&mut line_up, offset_of!(WanLineUp, protocol_type), &0x0800u16.to_le_bytes());
    let name = offset_of!(WanLineUp, device_name);
    put(&mut line_up, name + offset_of!(UnicodeString, length), &92u16.to_le_bytes());
    put(&mut line_up, name + offset_of!(UnicodeString, maximum_length), &92u16.to_le_bytes());
    put(&mut line_up, size_of::<WanLineUp>() + 584, &[10, 0, 0, 7]);
    let inline = (size_of::<WanLineUp>() as u16).to_le_bytes();
    let name_inline = ((size_of::<WanLineUp>() + PROTOCOL_LEN) as u16).to_le_bytes();
    // code, flags, protocol place, name place, filled-in name place, its length, maximum, MTU.
    let descriptors = |places: [&[u8]; 3]| {
        let mut seed = vec![0u8, 0];
        for place in places {
            seed.extend_from_slice(place);
        }
        seed.extend_from_slice(&46u16.to_le_bytes());
        seed.extend_from_slice(&128u16.to_le_bytes());
        seed.extend_from_slice(&1400u32.to_le_bytes());
        seed
    };
    let mut seeds = Vec::new();
    for (name, places) in [
        ("inline-protocol-separate-name", [&[1, inline[0], inline[1]][..], &[2], &[2]]),
        ("separate-both-inline-filled-name", [&[2], &[2], &[1, name_inline[0], name_inline[1]]]),
        ("inline-both", [&[1, inline[0], inline[1]], &[1, name_inline[0], name_inline[1]], &[0]]),
    ] {
        let mut seed = descriptors(places);
        seed.extend_from_slice(&line_up);
        seeds.push(("wan_status", name.to_string(), seed));
    }
    let mut down = vec![2u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    down.extend_from_slice(&[0x3c, 0, 0x20, 0x52, 0x41, 0x53, 0, 1, 0x20, 0x52, 0x41, 0x53]);
    seeds.push(("wan_status", "line-down".into(), down));
    seeds
}

/// The `certificate` seeds: a certificate for the target's fixed key, read alone, as a chain, in
/// a PKCS #12 file, and wrapped by the target.
fn certificate() -> Vec<Seed> {
    use xtask::package::certificate::{self_signed, TEST_PFX_PASSWORD, TEST_SUBJECT};
    let key = crate::certificate::fixed_key();
    let der = self_signed(key, TEST_SUBJECT, 1_800_000_000, 3650).expect("a certificate is made");
    let length = (der.len() as u16).to_le_bytes();
    let mut chain = vec![length[0], length[1]];
    chain.extend_from_slice(&der);
    let pfx = crate::certificate::pfx(key, std::slice::from_ref(&der), TEST_PFX_PASSWORD).expect("a PKCS #12 file is made");
    let with = |selector: u8, bytes: &[u8]| {
        let mut seed = vec![selector];
        seed.extend_from_slice(bytes);
        seed
    };
    vec![
        ("certificate", "der".into(), with(0, &der)),
        ("certificate", "chain".into(), with(1, &chain)),
        ("certificate", "pfx".into(), with(2, &pfx)),
        ("certificate", "wrapped".into(), with(3, &chain)),
    ]
}

/// Checks a seed's target accepts it without a failure (what the fuzzer starts from is sound).
pub fn run(target: &str, bytes: &[u8]) {
    match target {
        "proto" => crate::proto::run(bytes),
        "wire" => crate::wire::run(bytes),
        "control" => crate::control::run(bytes),
        "wan_status" => crate::wan_status::run(bytes),
        "inf_lint" => crate::inf_lint::run(bytes),
        "verify_image" => crate::image::run(bytes),
        "certificate" => crate::certificate::run(bytes),
        "rules" => crate::rules::run(bytes),
        other => panic!("no target {other}"),
    }
    let _ = Bytes::new(bytes);
}
