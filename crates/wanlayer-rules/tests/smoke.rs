//! End-to-end: compile, load, classify.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros, clippy::disallowed_types, reason = "test code runs in user mode")]

use wanlayer_rules::{compile, Action, Direction, PacketView, RuleSet, RuleSource};

fn tcp4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 20 + 20];
    f[12] = 0x08;
    f[14] = 0x45;
    f[14 + 9] = 6;
    f[26..30].copy_from_slice(&src);
    f[30..34].copy_from_slice(&dst);
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&dport.to_be_bytes());
    f[34 + 13] = flags;
    f
}

fn view(frame: &[u8]) -> PacketView<'_> {
    PacketView { frame, frame_len: frame.len() as u32, direction: Direction::Send, link: 7, device: &[] }
}

#[test]
fn compiles_loads_and_classifies() {
    let rules = [
        RuleSource { id: 10, priority: 5, action: Action::Drop, filter: "src net 10.0.0.1/32 and tcp dst port 445" },
        RuleSource { id: 11, priority: 1, action: Action::Count, filter: "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn" },
        RuleSource { id: 12, priority: 9, action: Action::Capture, filter: "host 192.168.1.1 and (udp or port 80 or 443) and link 7" },
    ];
    let blob = compile(&rules).unwrap();
    let set = RuleSet::load(&blob).unwrap();
    assert_eq!(set.len(), 3);
    assert_eq!(set.rule(0).unwrap().id, 11);
    let m = set.classify(&view(&tcp4([10, 0, 0, 1], [1, 1, 1, 1], 1000, 445, 0x10))).unwrap();
    assert_eq!((m.id, m.action), (10, Action::Drop));
    let m = set.classify(&view(&tcp4([10, 0, 0, 1], [1, 1, 1, 1], 1000, 445, 0x02))).unwrap();
    assert_eq!(m.id, 11);
    assert!(set.classify(&view(&tcp4([10, 0, 0, 2], [1, 1, 1, 1], 1000, 445, 0x10))).is_none());
    let m = set.classify(&view(&tcp4([10, 0, 0, 2], [192, 168, 1, 1], 1000, 443, 0x10))).unwrap();
    assert_eq!(m.id, 12);
    assert_eq!(set.blob(), &blob[..]);
}
