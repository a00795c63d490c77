//! wanlayer-rules against libpcap: the same packets, the same filters, the same answer.

#[cfg(not(libpcap))]
#[test]
fn skipped_without_libpcap() {
    println!("SKIPPED: libpcap-dev is not installed (cargo xtask test installs it)");
}

#[cfg(libpcap)]
mod against_libpcap {

    use wanlayer_rules::{compile, Action, Direction, PacketView, RuleSet, RuleSource};
    use wanlayer_rules_differential::{random_filter, random_packet, Pcap, Rng};

    fn view(frame: &[u8], wire_len: u32) -> PacketView<'_> {
        PacketView {
            frame,
            frame_len: wire_len,
            direction: Direction::Send,
            link: 0,
            device: &[],
        }
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
            let plain = pcap
                .compile(&reference, false)
                .unwrap_or_else(|error| panic!("libpcap refuses '{reference}': {error}"));
            // The optimiser refuses contradictions ("expression rejects all packets").
            let optimised = pcap.compile(&reference, true).ok();
            let blob = compile(&[RuleSource {
                id: rule,
                priority: 0,
                action: Action::Drop,
                filter: &mine,
            }])
            .unwrap_or_else(|error| panic!("'{mine}': {error}"));
            let set = RuleSet::load(&blob).expect("a compiled set loads");
            for (frame, wire_len) in &packets {
                let ours = set.classify(&view(frame, *wire_len)).is_some();
                let theirs = plain.matches(frame, *wire_len);
                assert_eq!(
                    ours, theirs,
                    "filter '{mine}' (pcap '{reference}') on {frame:02x?} (wire {wire_len})"
                );
                if let (true, Some(optimised)) = (frame.len() >= 160, &optimised) {
                    assert_eq!(
                        ours,
                        optimised.matches(frame, *wire_len),
                        "optimised: '{mine}' on {frame:02x?}"
                    );
                    full_cases += 1;
                }
                cases += 1;
                matches += u64::from(ours);
            }
        }
        println!("single rules: {cases} cases ({matches} matches, {full_cases} also against the optimised program)");
        assert!(
            matches > cases / 20,
            "too few matches to mean anything: {matches} of {cases}"
        );
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
            let filters: Vec<(String, String)> = (0..count)
                .map(|_| {
                    if rng.chance(50) {
                        random_filter(&mut rng, 0)
                    } else {
                        random_filter(&mut rng, 2)
                    }
                })
                .collect();
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
            let programs: Vec<_> = filters
                .iter()
                .map(|(_, reference)| pcap.compile(reference, false).expect("libpcap compiles"))
                .collect();
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
}
