//! The classifier's index: many candidate lists per packet, priorities across the index and the
//! catch-all list, and the WAN terms.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros, clippy::disallowed_types, reason = "test code runs in user mode")]

use wanlayer_rules::{compile, Action, Direction, PacketView, RuleSet, RuleSource};

fn tcp4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    let mut frame = vec![0u8; 54];
    frame[12] = 0x08;
    frame[14] = 0x45;
    frame[23] = 6;
    frame[26..30].copy_from_slice(&src);
    frame[30..34].copy_from_slice(&dst);
    frame[34..36].copy_from_slice(&sport.to_be_bytes());
    frame[36..38].copy_from_slice(&dport.to_be_bytes());
    frame
}

fn set(filters: &[(u32, &str)]) -> RuleSet {
    let sources: Vec<RuleSource<'_>> = filters
        .iter()
        .enumerate()
        .map(|(index, (priority, filter))| RuleSource { id: index as u32, priority: *priority, action: Action::Count, filter })
        .collect();
    RuleSet::load(&compile(&sources).unwrap()).unwrap()
}

fn first(set: &RuleSet, frame: &[u8], direction: Direction, link: u64, device: &str) -> Option<u32> {
    let device: Vec<u16> = device.encode_utf16().collect();
    set.classify(&PacketView { frame, frame_len: frame.len() as u32, direction, link, device: &device }).map(|found| found.id)
}

#[test]
fn more_candidate_lists_than_kept_are_all_walked() {
    // Every rule is a candidate for the packet (seven lists), only the last one matches.
    let rules = set(&[
        (0, "src net 10.0.0.0/8 and udp"),
        (0, "src net 10.1.0.0/16 and udp"),
        (0, "src net 10.1.2.0/24 and udp"),
        (0, "src host 10.1.2.3 and udp"),
        (0, "dst host 192.0.2.9 and udp"),
        (0, "src port 1000 and udp"),
        (0, "dst port 445 and tcp"),
    ]);
    assert_eq!(rules.len(), 7);
    let packet = tcp4([10, 1, 2, 3], [192, 0, 2, 9], 1000, 445);
    assert_eq!(first(&rules, &packet, Direction::Send, 0, ""), Some(6));
    assert_eq!(first(&rules, &tcp4([10, 1, 2, 3], [192, 0, 2, 9], 1000, 446), Direction::Send, 0, ""), None);
}

#[test]
fn priority_decides_across_the_index_and_the_catch_all_list() {
    let rules = set(&[(5, "host 10.0.0.1"), (3, "tcp"), (1, "dst port 80 and src net 10.0.0.0/8"), (3, "len >= 54")]);
    // Sorted by priority: "dst port 80 ..." (id 2), "tcp" (id 1), "len >= 54" (id 3), "host ..." (id 0).
    assert_eq!(first(&rules, &tcp4([10, 0, 0, 1], [1, 1, 1, 1], 5, 80), Direction::Send, 0, ""), Some(2));
    assert_eq!(first(&rules, &tcp4([10, 0, 0, 1], [1, 1, 1, 1], 5, 81), Direction::Send, 0, ""), Some(1));
    let mut udp = tcp4([1, 1, 1, 1], [10, 0, 0, 1], 5, 81);
    udp[23] = 17;
    assert_eq!(first(&rules, &udp, Direction::Send, 0, ""), Some(3));
    assert_eq!(first(&rules, &udp[..40], Direction::Send, 0, ""), Some(0));
    // `host` is indexed under both the source and the destination.
    assert_eq!(first(&set(&[(0, "host 10.0.0.1")]), &udp, Direction::Send, 0, ""), Some(0));
}

#[test]
fn wan_terms_match_link_device_and_direction() {
    let rules = set(&[
        (0, "link 0x100000001"),
        (1, "link 7 and send"),
        (2, "device \"\\DEVICE\\NDISWANIP\" and receive"),
        (3, "device wan*"),
        (4, "receive"),
    ]);
    let frame = tcp4([1, 1, 1, 1], [2, 2, 2, 2], 1, 2);
    assert_eq!(first(&rules, &frame, Direction::Send, 7, ""), Some(1));
    assert_eq!(first(&rules, &frame, Direction::Receive, 7, "\\device\\ndiswanip"), Some(2));
    assert_eq!(first(&rules, &frame, Direction::Receive, 7, "\\device\\ndiswanipx"), Some(4));
    assert_eq!(first(&rules, &frame, Direction::Send, 8, "WAN Miniport (PPTP)"), Some(3));
    assert_eq!(first(&rules, &frame, Direction::Send, 8, "wa"), None);
    assert_eq!(first(&rules, &frame, Direction::Send, 0x1_0000_0001, ""), Some(0));
}
