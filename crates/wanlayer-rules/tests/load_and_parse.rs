//! Loading refuses every corruption without panicking; parse errors point at the right byte.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros, clippy::disallowed_types, reason = "test code runs in user mode")]

use wanlayer_rules::{compile, parse, Action, Direction, LoadError, PacketView, RuleSet, RuleSource};

fn sample_blob() -> Vec<u8> {
    compile(&[
        RuleSource { id: 1, priority: 3, action: Action::Drop, filter: "src net 10.0.0.0/8 and tcp dst port 445" },
        RuleSource { id: 2, priority: 1, action: Action::Capture, filter: "host 2001:db8::1 or (udp and portrange 5060-5070)" },
        RuleSource {
            id: 3,
            priority: 2,
            action: Action::Count,
            filter: "device \"\\DEVICE\\NDISWANIP*\" and receive and link 9 and not tcp[tcpflags] & tcp-syn != 0",
        },
    ])
    .unwrap()
}

fn packets() -> Vec<Vec<u8>> {
    let mut tcp = vec![0u8; 54];
    tcp[12] = 0x08;
    tcp[14] = 0x45;
    tcp[23] = 6;
    tcp[26] = 10;
    tcp[36..38].copy_from_slice(&445u16.to_be_bytes());
    let mut udp6 = vec![0u8; 62];
    udp6[12..14].copy_from_slice(&[0x86, 0xdd]);
    udp6[14] = 0x60;
    udp6[20] = 17;
    udp6[56..58].copy_from_slice(&5061u16.to_be_bytes());
    vec![tcp.clone(), udp6, tcp[..30].to_vec(), Vec::new()]
}

fn classify_all(set: &RuleSet) -> Vec<Option<u32>> {
    let device: Vec<u16> = "\\device\\ndiswanip".encode_utf16().collect();
    packets()
        .iter()
        .map(|frame| {
            set.classify(&PacketView { frame, frame_len: frame.len() as u32, direction: Direction::Receive, link: 9, device: &device })
                .map(|m| m.id)
        })
        .collect()
}

#[test]
fn the_sample_classifies_as_written() {
    let set = RuleSet::load(&sample_blob()).unwrap();
    // A test that needs bytes a short frame lacks ends its rule without a match, as in pcap.
    assert_eq!(classify_all(&set), vec![Some(3), Some(2), None, None]);
    assert_eq!(set.rule(0).unwrap().filter, "host 2001:db8::1 or (udp and portrange 5060-5070)");
    assert!(set.rule(3).is_none());
}

#[test]
fn the_empty_set_matches_nothing() {
    let empty = RuleSet::empty();
    assert!(empty.is_empty() && empty.blob().is_empty());
    assert_eq!(classify_all(&empty), vec![None; 4]);
    let compiled = RuleSet::load(&compile(&[]).unwrap()).unwrap();
    assert_eq!(compiled.len(), 0);
    assert_eq!(classify_all(&compiled), vec![None; 4]);
    assert_eq!(RuleSet::load(&[]).unwrap_err(), LoadError::Truncated);
}

#[test]
fn every_flipped_byte_is_refused_or_harmless() {
    let blob = sample_blob();
    let (mut refused, mut accepted) = (0, 0);
    for index in 0..blob.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut corrupt = blob.clone();
            corrupt[index] ^= flip;
            match RuleSet::load(&corrupt) {
                Ok(set) => {
                    classify_all(&set);
                    assert!((0..set.len() + 1).filter_map(|rule| set.rule(rule)).count() <= set.len());
                    accepted += 1;
                }
                Err(error) => {
                    assert!(error.code() > 0 && !error.to_string().is_empty());
                    refused += 1;
                }
            }
        }
    }
    // Only filter-text bytes, ids, priorities within order and compared values may change
    // and still validate.
    assert!(refused > accepted, "refused {refused}, accepted {accepted}");
}

#[test]
fn every_truncation_and_extension_is_refused() {
    let blob = sample_blob();
    for len in 0..blob.len() {
        assert!(RuleSet::load(&blob[..len]).is_err(), "{len} bytes");
    }
    let mut longer = blob.clone();
    longer.push(0);
    assert_eq!(RuleSet::load(&longer).unwrap_err(), LoadError::TrailingBytes);
}

#[test]
fn duplicate_ids_are_refused() {
    let rules = [
        RuleSource { id: 5, priority: 0, action: Action::Pass, filter: "tcp" },
        RuleSource { id: 5, priority: 1, action: Action::Pass, filter: "udp" },
    ];
    assert!(compile(&rules).is_err());
}

#[test]
fn every_term_parses() {
    for filter in [
        "host 10.0.0.1",
        "src host 10.0.0.1",
        "dst host ::1",
        "src or dst host 10.0.0.1",
        "src and dst host 10.0.0.1",
        "net 10.0.0.0/8",
        "net 10.0.0.0 mask 255.0.0.0",
        "net 10",
        "ip6 net 2001:db8::/32",
        "ip",
        "ip6",
        "tcp",
        "udp",
        "icmp",
        "icmp6",
        "sctp",
        "proto 47",
        "ip proto 6",
        "ip6 proto 17",
        "port 80",
        "src port 80",
        "dst port 80",
        "tcp dst port 80",
        "udp src port 53",
        "portrange 1-1024",
        "tcp portrange 1000-2000",
        "tcp[tcpflags] & (tcp-syn|tcp-ack) != 0",
        "tcp[13] & 2 != 0",
        "tcp[tcpflags] & tcp-syn == tcp-syn",
        "(tcp[tcpflags] & tcp-fin) != 0",
        "tcp[tcpflags] & tcp-rst != 0",
        "tcp[tcpflags] & tcp-push != 0",
        "tcp[tcpflags] & tcp-urg != 0",
        "icmp[icmptype] == icmp-echo",
        "len > 100",
        "len <= 64",
        "greater 100",
        "less 64",
        "not tcp",
        "! tcp",
        "tcp && udp || icmp",
        "port 80 or 443",
        "host 10.0.0.1 and (10.0.0.2 or 10.0.0.3)",
        "link 7",
        "link 7 or 8",
        "device \"\\DEVICE\\NDISWANIP\"",
        "device wan*",
        "send",
        "receive",
        "ether[12:2] = 0x800",
        "ip[8] > 64",
    ] {
        parse(filter).unwrap_or_else(|error| panic!("'{filter}': {error}"));
    }
}

#[test]
fn parse_errors_point_at_the_byte_and_say_what_was_expected() {
    let cases = [
        ("", 0, "at 0: expected a filter expression, found the end of the filter"),
        ("tcp port x", 9, "at 9: expected a port number, found 'x'"),
        ("host 10.0.0.1 and", 17, "at 17: expected a filter primitive (host, net, port, tcp, ...), found the end of the filter"),
        ("port 80 or 443)", 14, "at 14: expected 'and', 'or' or the end of the filter, found ')'"),
        ("(tcp", 4, "at 4: expected ')' or 'and' or 'or', found the end of the filter"),
        ("net 10.0.0.1/8", 4, "at 4: expected a network address with no bits set outside its mask, found '10.0.0.1'"),
        ("net 10.0.0.0/33", 13, "at 13: expected a prefix length (0-32), found '33'"),
        ("tcp host 10.0.0.1", 9, "at 9: expected an address qualifier after nothing, 'ip' or 'ip6', found '10.0.0.1'"),
        ("ip proto 300", 9, "at 9: expected a protocol number (0-255), found '300'"),
        ("tcp[200] = 1", 4, "at 4: expected a load within the 160 header bytes the classifier sees, found '200'"),
        ("tcp[13] & 2", 11, "at 11: expected a comparison (=, !=, >, >=, <, <=), found the end of the filter"),
        ("device", 6, "at 6: expected a device name, found the end of the filter"),
        ("tcp and 80", 8, "at 8: expected a qualifier (host, net, port, ...) before this value, found '80'"),
        ("host 10.0.0.1 # x", 14, "at 14: expected a word, a number, an address or an operator, found '#'"),
    ];
    for (filter, offset, message) in cases {
        let error = parse(filter).unwrap_err();
        assert_eq!((error.offset, error.to_string().as_str()), (offset, message), "'{filter}'");
    }
}

#[test]
fn overlong_filters_are_refused_before_they_recurse() {
    let long = vec!["port 1"; 2049].join(" or ");
    let error = parse(&long).unwrap_err();
    assert_eq!(error.expected, "a shorter filter (at most 4096 words and operators)");
    let deep = format!("{}tcp{}", "(".repeat(5000), ")".repeat(5000));
    assert!(parse(&deep).is_err());
    let fine = vec!["port 1"; 1000].join(" or ");
    assert!(compile(&[RuleSource { id: 1, priority: 0, action: Action::Pass, filter: &fine }]).is_ok());
}

/// A small deterministic generator (xorshift64*).
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

#[test]
fn random_filters_never_panic_and_what_compiles_loads() {
    const WORDS: [&str; 56] = [
        "host",
        "net",
        "port",
        "portrange",
        "src",
        "dst",
        "and",
        "or",
        "not",
        "!",
        "(",
        ")",
        "tcp",
        "udp",
        "icmp",
        "ip",
        "ip6",
        "proto",
        "10.0.0.1",
        "::1",
        "80",
        "1-100",
        "/",
        "8",
        "mask",
        "255.0.0.0",
        "tcp[13]",
        "&",
        "!=",
        "0",
        "len",
        ">",
        "link",
        "7",
        "device",
        "\"x\"",
        "send",
        "receive",
        "[",
        "]",
        ":",
        "2",
        "tcp-syn",
        "|",
        "=",
        "greater",
        "less",
        "icmp6",
        "sctp",
        "ether",
        "2001:db8::/32",
        "0x10",
        "-",
        "&&",
        "||",
        "10.0.0.0/8",
    ];
    let mut state = 0x1234_5678_9abc_def0u64;
    let (mut parsed, mut loaded) = (0, 0);
    for round in 0..20_000u32 {
        let words = 1 + next(&mut state) % 12;
        let separator = if next(&mut state) % 4 == 0 { "" } else { " " };
        let filter: Vec<&str> = (0..words).map(|_| WORDS[(next(&mut state) % WORDS.len() as u64) as usize]).collect();
        let filter = filter.join(separator);
        if parse(&filter).is_ok() {
            parsed += 1;
        }
        if let Ok(blob) = compile(&[RuleSource { id: round, priority: round % 3, action: Action::Capture, filter: &filter }]) {
            let set = RuleSet::load(&blob).unwrap_or_else(|error| panic!("'{filter}' compiles but does not load: {error}"));
            classify_all(&set);
            loaded += 1;
            // Several bytes changed at once: refused, or harmless.
            let mut corrupt = blob.clone();
            for _ in 0..3 {
                let at = (next(&mut state) % corrupt.len() as u64) as usize;
                corrupt[at] ^= next(&mut state) as u8 | 1;
            }
            if let Ok(set) = RuleSet::load(&corrupt) {
                classify_all(&set);
            }
        }
    }
    // About 1.5% of the random word strings are filters; the rest exercise the errors.
    assert!(parsed > 200 && loaded == parsed, "parsed {parsed}, loaded {loaded}");
}
