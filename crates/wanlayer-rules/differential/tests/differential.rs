//! wanlayer-rules against libpcap: the same packets, the same filters, the same answer.

#[cfg(not(libpcap))]
#[test]
fn skipped_without_libpcap() {
    println!("SKIPPED: libpcap-dev is not installed (cargo xtask test installs it)");
}

#[cfg(libpcap)]
mod against_libpcap {

    use wanlayer_rules::{compile, Action, Direction, PacketView, RuleSet, RuleSource};
    use wanlayer_rules_differential::{random_filter, random_packet, Pcap, Rng, PORTS, V4_POOL, V6_POOL};

    fn view(frame: &[u8], wire_len: u32) -> PacketView<'_> {
        PacketView { frame, frame_len: wire_len, direction: Direction::Send, link: 0, device: &[] }
    }

    /// One rule at a time: every filter against every packet, with libpcap unoptimised (its
    /// evaluation order decides what a missing byte ends) and, on packets with all 160 header bytes,
    /// optimised too.
    #[test]
    fn single_rules_match_libpcap() {
        let pcap = Pcap::new();
        let mut rng = Rng::new(0x5eed_0001);
        let packets: Vec<(Vec<u8>, u32)> = (0..300).map(|_| random_packet(&mut rng)).collect();
        let (mut cases, mut matches, mut full_cases) = (0u64, 0u64, 0u64);
        for rule in 0..1500 {
            let (mine, reference) = random_filter(&mut rng, 3);
            let plain = pcap.compile(&reference, false).unwrap_or_else(|error| panic!("libpcap refuses '{reference}': {error}"));
            // The optimiser refuses contradictions ("expression rejects all packets").
            let optimised = pcap.compile(&reference, true).ok();
            let blob = compile(&[RuleSource { id: rule, priority: 0, action: Action::Drop, filter: &mine }])
                .unwrap_or_else(|error| panic!("'{mine}': {error}"));
            let set = RuleSet::load(&blob).expect("a compiled set loads");
            for (frame, wire_len) in &packets {
                let ours = set.classify(&view(frame, *wire_len)).is_some();
                let theirs = plain.matches(frame, *wire_len);
                assert_eq!(ours, theirs, "filter '{mine}' (pcap '{reference}') on {frame:02x?} (wire {wire_len})");
                if let (true, Some(optimised)) = (frame.len() >= 160, &optimised) {
                    assert_eq!(ours, optimised.matches(frame, *wire_len), "optimised: '{mine}' on {frame:02x?}");
                    full_cases += 1;
                }
                cases += 1;
                matches += u64::from(ours);
            }
        }
        println!("single rules: {cases} cases ({matches} matches, {full_cases} also against the optimised program)");
        assert!(matches > cases / 20, "too few matches to mean anything: {matches} of {cases}");
    }

    /// Whole sets: the classifier's answer is the first rule, in priority order, that libpcap
    /// matches — through the index and the catch-all list.
    #[test]
    fn rule_sets_pick_libpcaps_first_match() {
        let pcap = Pcap::new();
        let mut rng = Rng::new(0x5eed_0002);
        let (mut cases, mut matched) = (0u64, 0u64);
        for _ in 0..120 {
            let count = 1 + rng.below(60) as u32;
            let filters: Vec<(String, String)> =
                (0..count).map(|_| if rng.chance(50) { random_filter(&mut rng, 0) } else { random_filter(&mut rng, 2) }).collect();
            let priorities: Vec<u32> = (0..count).map(|_| rng.below(8) as u32).collect();
            let sources: Vec<RuleSource<'_>> = filters
                .iter()
                .enumerate()
                .map(|(index, (mine, _))| RuleSource {
                    id: 1000 + index as u32,
                    priority: priorities[index],
                    action: Action::Count,
                    filter: mine,
                })
                .collect();
            let programs: Vec<_> = filters.iter().map(|(_, reference)| pcap.compile(reference, false).expect("libpcap compiles")).collect();
            let set = RuleSet::load(&compile(&sources).expect("compiles")).expect("loads");
            for _ in 0..60 {
                let (frame, wire_len) = random_packet(&mut rng);
                let expected = (0..count as usize)
                    .filter(|index| programs[*index].matches(&frame, wire_len))
                    .min_by_key(|index| (priorities[*index], *index))
                    .map(|index| 1000 + index as u32);
                let actual = set.classify(&view(&frame, wire_len)).map(|found| found.id);
                assert_eq!(actual, expected, "set {filters:?} on {frame:02x?}");
                cases += 1;
                matched += u64::from(expected.is_some());
            }
        }
        println!("rule sets: {cases} packets classified ({matched} matched a rule)");
    }

    /// Sets the index holds almost entirely (addresses at many prefix lengths, ports, and their
    /// conjunctions and unions), so packets hit several candidate lists at once — more than the
    /// classifier keeps before it walks lists as it probes.
    #[test]
    fn indexed_sets_pick_libpcaps_first_match() {
        let pcap = Pcap::new();
        let mut rng = Rng::new(0x5eed_0003);
        let (mut cases, mut matched) = (0u64, 0u64);
        for _ in 0..60 {
            let count = 1 + rng.below(200) as u32;
            let filters: Vec<String> = (0..count).map(|_| indexed_filter(&mut rng)).collect();
            let priorities: Vec<u32> = (0..count).map(|_| rng.below(4) as u32).collect();
            let sources: Vec<RuleSource<'_>> = filters
                .iter()
                .enumerate()
                .map(|(index, filter)| RuleSource { id: index as u32, priority: priorities[index], action: Action::Drop, filter })
                .collect();
            let programs: Vec<_> = filters.iter().map(|filter| pcap.compile(filter, false).expect("libpcap compiles")).collect();
            let set = RuleSet::load(&compile(&sources).expect("compiles")).expect("loads");
            for _ in 0..100 {
                let (frame, wire_len) = random_packet(&mut rng);
                let expected = (0..count as usize)
                    .filter(|index| programs[*index].matches(&frame, wire_len))
                    .min_by_key(|index| (priorities[*index], *index))
                    .map(|index| index as u32);
                assert_eq!(set.classify(&view(&frame, wire_len)).map(|found| found.id), expected, "{filters:?} on {frame:02x?}");
                cases += 1;
                matched += u64::from(expected.is_some());
            }
        }
        println!("indexed sets: {cases} packets classified ({matched} matched a rule)");
        assert!(matched > cases / 10 && matched < cases, "{matched} of {cases}");
    }

    fn indexed_filter(rng: &mut Rng) -> String {
        let v4 = |rng: &mut Rng| {
            let len = *rng.pick(&[8u32, 16, 24, 30, 32]);
            let addr = u32::from_be_bytes(*rng.pick(&V4_POOL)) & (u32::MAX << (32 - len));
            let a = addr.to_be_bytes();
            format!("{}net {}.{}.{}.{}/{len}", rng.pick(&["src ", "dst ", ""]), a[0], a[1], a[2], a[3])
        };
        let v6 = |rng: &mut Rng| {
            let len = *rng.pick(&[32u32, 64, 96, 128]);
            let addr = u128::from_be_bytes(*rng.pick(&V6_POOL)) & (u128::MAX << (128 - len));
            format!("{}net {}/{len}", rng.pick(&["src ", "dst ", ""]), std::net::Ipv6Addr::from(addr))
        };
        let port =
            |rng: &mut Rng| format!("{}{}port {}", rng.pick(&["", "tcp ", "udp "]), rng.pick(&["src ", "dst ", ""]), rng.pick(&PORTS));
        match rng.below(8) {
            0 => v4(rng),
            1 => v6(rng),
            2 => port(rng),
            3 => format!("{} and {}", v4(rng), port(rng)),
            4 => format!("({} or {}) and {}", v4(rng), v6(rng), port(rng)),
            5 => format!("{} and not {}", port(rng), v4(rng)),
            6 => format!("{} or {}", port(rng), port(rng)),
            _ => format!("{} and {}", v4(rng), v4(rng)),
        }
    }
}
