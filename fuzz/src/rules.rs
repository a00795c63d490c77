//! The rule language of `wanlayer-rules`: its parser and compiler (user mode), and the kernel's
//! validator (`RuleSet::load`) and classifier (`RuleSet::classify`).
//!
//! The first byte chooses: the rest is one filter's text; a set of rules (each a priority, an
//! action and a text) and then packets; a blob to load, then packets; or a compiled set with one
//! byte changed, then packets. Packets are a direction, a link id, the frame's length and its
//! first bytes; three real frames are classified too.
//!
//! Invariants: no panic, whatever the text, blob or packet; a set that compiles always loads, and
//! keeps its rules in priority order with their ids, actions and texts; a loaded set keeps the
//! blob it was given, lists exactly `len()` rules, and every match names one of them with its
//! action; classifying is deterministic.

use crate::bytes::Bytes;
use std::sync::OnceLock;
use wanlayer_rules::{compile, parse, Action, Direction, PacketView, RuleSet, RuleSource, HEADER_BYTES};

const ACTIONS: [Action; 5] = [Action::Pass, Action::Drop, Action::Count, Action::Capture, Action::Divert];

/// Real frames (IPv4 UDP, IPv4 TCP, IPv6 TCP) from the simulator's links, made once (the
/// simulator around wanlayer.sys's own handlers, the driver in the loop, which is dropped before
/// any input runs).
fn sample_frames() -> &'static [Vec<u8>] {
    static FRAMES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    FRAMES.get_or_init(|| {
        use wanlayer_core::hook::Direction as Way;
        use wanlayer_sim::{Edge, Flow, LinkParams, Rras};
        let rras = Rras::new(wanlayer_sim_driver::DriverFilter::new());
        rras.start().expect("the server starts");
        let v4 = rras.link_up(Edge::WanIp, LinkParams::new());
        let v6 = rras.link_up(Edge::WanIpv6, LinkParams::new());
        vec![
            v4.frame(Way::Send, &Flow::udp(53, 40000).payload(24), 0),
            v4.frame(Way::Receive, &Flow::tcp(443, 50000), 1),
            v6.frame(Way::Send, &Flow::tcp(22, 50001).payload(8), 2),
        ]
    })
}

/// One packet to classify, with the frame bytes it borrows.
struct Packet {
    frame: Vec<u8>,
    frame_len: u32,
    direction: Direction,
    link: u64,
    device: Vec<u16>,
}

impl Packet {
    fn view(&self) -> PacketView<'_> {
        let seen = self.frame.len().min(HEADER_BYTES);
        PacketView {
            frame: &self.frame[..seen],
            frame_len: self.frame_len,
            direction: self.direction,
            link: self.link,
            device: &self.device,
        }
    }
}

/// The packets of the input's tail, and the sample frames.
fn packets(input: &mut Bytes<'_>) -> Vec<Packet> {
    let device: Vec<u16> = "\\DEVICE\\{6E0B3F7A-1C52-4A8D-9B7E-2F4C1D3A5B60}".encode_utf16().collect();
    let mut packets: Vec<Packet> = sample_frames()
        .iter()
        .enumerate()
        .map(|(at, frame)| Packet {
            frame: frame.clone(),
            frame_len: frame.len() as u32,
            direction: if at % 2 == 0 { Direction::Send } else { Direction::Receive },
            link: at as u64 + 1,
            device: device.clone(),
        })
        .collect();
    while !input.is_empty() && packets.len() < 16 {
        let direction = if input.bool() { Direction::Send } else { Direction::Receive };
        let link = u64::from(input.u8());
        let frame_len = u32::from(input.u16());
        let len = usize::from(input.u8());
        let frame = input.take(len).to_vec();
        let device = if input.bool() { device.clone() } else { Vec::new() };
        packets.push(Packet { frame, frame_len, direction, link, device });
    }
    packets
}

/// Loads `blob`; when it loads, checks the set and classifies every packet.
fn load_and_classify(blob: &[u8], packets: &[Packet]) -> Option<RuleSet> {
    let set = RuleSet::load(blob).ok()?;
    assert_eq!(set.blob(), blob, "a loaded set keeps the blob it was given");
    for index in 0..set.len().min(64) {
        let _ = set.rule(index);
    }
    assert!(set.rule(set.len()).is_none(), "no rule past the last");
    for packet in packets {
        let view = packet.view();
        let found = set.classify(&view);
        if let Some(found) = found {
            assert!(found.index < set.len(), "a match names a rule of the set: {found:?}");
            if let Some(rule) = set.rule(found.index) {
                assert_eq!((rule.id, rule.action), (found.id, found.action), "a match carries its rule's id and action");
            }
        }
        assert_eq!(set.classify(&view), found, "classifying is deterministic");
    }
    Some(set)
}

/// Compiles `rules`; a set that compiles loads, with its rules in priority order.
fn compile_and_check(rules: &[RuleSource<'_>], packets: &[Packet]) -> Option<Vec<u8>> {
    let blob = compile(rules).ok()?;
    let set = load_and_classify(&blob, packets);
    let set = set.unwrap_or_else(|| panic!("a compiled set loads: {:?}", RuleSet::load(&blob).err()));
    assert_eq!(set.len(), rules.len(), "every rule is in the compiled set");
    let mut expected: Vec<&RuleSource<'_>> = rules.iter().collect();
    expected.sort_by_key(|rule| rule.priority);
    for (index, source) in expected.iter().enumerate() {
        let rule = set.rule(index).expect("a compiled rule reads back");
        assert_eq!(rule.priority, source.priority, "rules are kept in priority order");
        assert_eq!((rule.id, rule.action), (source.id, source.action));
        assert_eq!(rule.filter, source.filter, "a rule keeps its text");
    }
    Some(blob)
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut input = Bytes::new(data);
    match input.u8() % 4 {
        0 => {
            let text = String::from_utf8_lossy(input.rest()).into_owned();
            if parse(&text).is_ok() {
                let rule = RuleSource { id: 1, priority: 0, action: Action::Drop, filter: &text };
                compile_and_check(&[rule], &packets(&mut Bytes::new(&[])));
            }
        }
        selector @ (1 | 3) => {
            let count = usize::from(input.u8() % 8);
            let mut texts = Vec::with_capacity(count);
            let mut heads = Vec::with_capacity(count);
            for _ in 0..count {
                heads.push((u32::from(input.u8() % 4), ACTIONS[input.index(ACTIONS.len())]));
                let len = usize::from(input.u8());
                texts.push(String::from_utf8_lossy(input.take(len)).into_owned());
            }
            let rules: Vec<RuleSource<'_>> = heads
                .iter()
                .zip(&texts)
                .enumerate()
                .map(|(at, ((priority, action), filter))| RuleSource { id: at as u32 + 1, priority: *priority, action: *action, filter })
                .collect();
            let (change_at, change) = (usize::from(input.u16()), input.u8());
            let packets = packets(&mut input);
            if let Some(mut blob) = compile_and_check(&rules, &packets) {
                if selector == 3 && !blob.is_empty() {
                    let at = change_at % blob.len();
                    blob[at] ^= change.max(1);
                    load_and_classify(&blob, &packets);
                }
            }
        }
        _ => {
            let len = usize::from(input.u16());
            let blob = input.take(len).to_vec();
            load_and_classify(&blob, &packets(&mut input));
        }
    }
}
