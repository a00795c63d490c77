//! The rules classifier's benchmark workload, run under callgrind by `cargo xtask bench rules`.
//!
//! `rules-bench measure wanlayer|libpcap|floor RULES` classifies the same no-match packets with
//! wanlayer's classifier, libpcap's `bpf_filter` or an empty loop (the floor), inside the
//! functions callgrind collects (`--toggle-collect=*measured_loop*`).
//! `rules-bench costs RULES` prints compile time and memory per rule for both.
//!
//! Rules: `src net A/32 and tcp dst port P` (libpcap: those terms joined by `or`), A and P
//! random; packets: IPv4 TCP from addresses no rule names.

#[cfg(not(libpcap))]
fn main() {
    eprintln!("rules-bench: libpcap-dev is not installed");
    std::process::exit(2);
}

#[cfg(libpcap)]
use std::hint::black_box;
#[cfg(libpcap)]
use std::time::Instant;
#[cfg(libpcap)]
use wanlayer_rules::{compile, Action, Direction, PacketView, RuleSet, RuleSource};
#[cfg(libpcap)]
use wanlayer_rules_differential::{Instructions, Pcap, Rng};

/// Packets per measurement.
#[cfg(libpcap)]
pub const PACKETS: usize = 1000;

#[cfg(libpcap)]
fn rules(count: usize) -> Vec<String> {
    let mut rng = Rng::new(0xbe_7c4);
    (0..count)
        .map(|_| {
            let address = 0x0a00_0000 | (rng.bits() as u32 & 0x00ff_ffff);
            let port = 1 + rng.below(65534);
            let a = address.to_be_bytes();
            format!("src net {}.{}.{}.{}/32 and tcp dst port {port}", a[0], a[1], a[2], a[3])
        })
        .collect()
}

#[cfg(libpcap)]
fn packets() -> Vec<Vec<u8>> {
    let mut rng = Rng::new(0xfeed);
    (0..PACKETS)
        .map(|_| {
            let mut frame = vec![0u8; 14 + 20 + 20];
            frame[12] = 0x08;
            frame[14] = 0x45;
            frame[14 + 9] = 6;
            frame[26..30].copy_from_slice(&[192, 0, 2, rng.bits() as u8]);
            frame[30..34].copy_from_slice(&[198, 51, 100, rng.bits() as u8]);
            frame[34..36].copy_from_slice(&(rng.bits() as u16).to_be_bytes());
            frame[36..38].copy_from_slice(&(rng.bits() as u16).to_be_bytes());
            frame
        })
        .collect()
}

/// Each classifier has its own measured loop of the same shape, so the floor (the loop with
/// nothing but the packet's read) is the same for all.
#[cfg(libpcap)]
#[inline(never)]
fn measured_loop_wanlayer(set: &RuleSet, packets: &[Vec<u8>]) -> usize {
    let mut matched = 0;
    for frame in packets {
        let frame = black_box(frame.as_slice());
        let packet = PacketView { frame, frame_len: frame.len() as u32, direction: Direction::Send, link: 1, device: &[] };
        matched += usize::from(set.classify(&packet).is_some());
    }
    matched
}

#[cfg(libpcap)]
#[inline(never)]
fn measured_loop_libpcap(program: &Instructions, packets: &[Vec<u8>]) -> usize {
    let mut matched = 0;
    for frame in packets {
        let frame = black_box(frame.as_slice());
        matched += usize::from(program.bpf_filter(frame, frame.len() as u32));
    }
    matched
}

#[cfg(libpcap)]
#[inline(never)]
fn measured_loop_floor(packets: &[Vec<u8>]) -> usize {
    let mut matched = 0;
    for frame in packets {
        let frame = black_box(frame.as_slice());
        matched += usize::from(black_box(frame.len()) == 0);
    }
    matched
}

#[cfg(libpcap)]
fn wanlayer_blob(texts: &[String]) -> Vec<u8> {
    let sources: Vec<RuleSource<'_>> = texts
        .iter()
        .enumerate()
        .map(|(index, filter)| RuleSource { id: index as u32, priority: 0, action: Action::Drop, filter })
        .collect();
    compile(&sources).expect("the benchmark's rules compile")
}

#[cfg(libpcap)]
fn libpcap_text(texts: &[String]) -> String {
    texts.iter().map(|text| format!("({text})")).collect::<Vec<_>>().join(" or ")
}

#[cfg(libpcap)]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let count = |at: usize| {
        args.get(at).and_then(|n| n.parse::<usize>().ok()).expect("usage: rules-bench measure wanlayer|libpcap|floor N | costs N")
    };
    match args.first().map(String::as_str) {
        Some("measure") => {
            let texts = rules(count(2));
            let packets = packets();
            let matched = match args.get(1).map(String::as_str) {
                Some("wanlayer") => measured_loop_wanlayer(&RuleSet::load(&wanlayer_blob(&texts)).expect("loads"), &packets),
                Some("libpcap") => {
                    let program = Pcap::new().compile(&libpcap_text(&texts), true).expect("libpcap compiles");
                    measured_loop_libpcap(&Instructions::from_bytes(&program.to_bytes()).expect("a compiled program"), &packets)
                }
                Some("libpcap-saved") => {
                    let path = args.get(3).expect("usage: rules-bench measure libpcap-saved N FILE");
                    let bytes = std::fs::read(path).expect("the saved libpcap program reads");
                    measured_loop_libpcap(&Instructions::from_bytes(&bytes).expect("a saved libpcap program"), &packets)
                }
                _ => measured_loop_floor(&packets),
            };
            assert_eq!(matched, 0, "the benchmark's packets match no rule");
            println!("packets {PACKETS}");
        }
        Some("save-libpcap") => {
            // Compiles natively (the optimiser is superlinear: minutes for thousands of rules) and
            // saves the program for `measure libpcap-saved` under callgrind.
            let texts = rules(count(1));
            let path = args.get(2).expect("usage: rules-bench save-libpcap N FILE");
            let start = Instant::now();
            let program = Pcap::new().compile(&libpcap_text(&texts), true).expect("libpcap compiles");
            std::fs::write(path, program.to_bytes()).expect("the program saves");
            println!("libpcap compile_s {:.1} instructions {} rules {}", start.elapsed().as_secs_f64(), program.len(), texts.len());
        }
        Some("costs-wanlayer") => {
            let texts = rules(count(1));
            let start = Instant::now();
            let blob = wanlayer_blob(&texts);
            let compile_time = start.elapsed();
            let set = RuleSet::load(&blob).expect("loads");
            let n = texts.len() as f64;
            println!(
                "wanlayer compile_us_per_rule {:.2} bytes_per_rule {:.1} rules {} (libpcap not compiled: its optimiser is superlinear)",
                compile_time.as_secs_f64() * 1e6 / n,
                set.blob().len() as f64 / n,
                set.len()
            );
        }
        Some("costs") => {
            let texts = rules(count(1));
            let start = Instant::now();
            let blob = wanlayer_blob(&texts);
            let compile_time = start.elapsed();
            let start = Instant::now();
            let set = RuleSet::load(&blob).expect("loads");
            let load_time = start.elapsed();
            let text = libpcap_text(&texts);
            let start = Instant::now();
            let program = Pcap::new().compile(&text, true).expect("libpcap compiles");
            let pcap_time = start.elapsed();
            let n = texts.len() as f64;
            println!(
                "wanlayer compile_us_per_rule {:.2} load_us_per_rule {:.3} bytes_per_rule {:.1} libpcap compile_us_per_rule {:.2} bytes_per_rule {:.1} rules {}",
                compile_time.as_secs_f64() * 1e6 / n,
                load_time.as_secs_f64() * 1e6 / n,
                set.blob().len() as f64 / n,
                pcap_time.as_secs_f64() * 1e6 / n,
                (program.len() * 8) as f64 / n,
                set.len()
            );
        }
        _ => panic!("usage: rules-bench measure wanlayer|libpcap|floor N | costs N"),
    }
}
