//! The measurements `cargo xtask bench engine` runs (one per process, so callgrind counts one
//! thing at a time):
//!
//! * `measure engine|floor ROUNDS SCENARIO...`: `ROUNDS` rounds inside `measured_loop`, the
//!   function callgrind is told to count (`--toggle-collect=*measured_loop*`);
//! * `locks SCENARIO...`: lock acquisitions per packet, by what the lock protects;
//! * `threads MAX SECONDS`: packets per second on one module with 1..=MAX sending threads;
//! * `lineup LINKS`: the latency of each line up while the table grows to `LINKS`, and the
//!   bytes per link (charged, and resident);
//! * `list-links LINKS`: `LIST_LINKS` pages of 1,024 entries over `LINKS` links on one module,
//!   through the control device's dispatch: time a page, and every page of one enumeration
//!   inside `measured_pages` (for callgrind).
//!
//! A scenario is `send|receive CHAIN FRAME_LEN HOOKS pass|modify LINKS`.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wanlayer_bench::{line_up, take_lock_counts, Bench, Chain, HookKind, Scenario};
use wanlayer_core::control::{Completion, ControlHandle};
use wanlayer_core::hal::Pool;
use wanlayer_proto::ioctl::IOCTL_LIST_LINKS;
use wanlayer_proto::{Access, LinkList, LinkListRepr, LinkQuery, LinkQueryRepr, Status};

/// Rounds run before measuring (first-use allocations, table growth).
const WARM_UP_ROUNDS: usize = 64;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("measure") => measure(&args[1..]),
        Some("locks") => locks(&args[1..]),
        Some("threads") => threads(&args[1..]),
        Some("lineup") => lineup(&args[1..]),
        Some("list-links") => list_links(&args[1..]),
        _ => Err("usage: engine-bench measure|locks|threads|lineup|list-links ...".to_owned()),
    };
    if let Err(error) = result {
        eprintln!("engine-bench: {error}");
        std::process::exit(2);
    }
}

fn scenario(words: &[String]) -> Result<Scenario, String> {
    Scenario::parse(words).ok_or_else(|| format!("bad scenario {words:?}: send|receive CHAIN FRAME_LEN HOOKS pass|modify LINKS"))
}

fn measure(args: &[String]) -> Result<(), String> {
    let [what, rounds, words @ ..] = args else {
        return Err("measure engine|floor ROUNDS SCENARIO".to_owned());
    };
    let rounds: usize = rounds.parse().map_err(|_| "ROUNDS is a number")?;
    let bench = Bench::<false>::new(scenario(words)?);
    let floor = match what.as_str() {
        "engine" => false,
        "floor" => true,
        other => return Err(format!("measure what? '{other}'")),
    };
    let mut chain = bench.chain(0);
    for _ in 0..WARM_UP_ROUNDS {
        chain = round(&bench, chain, floor);
    }
    let chain = measured_loop(&bench, chain, floor, rounds);
    black_box(chain);
    Ok(())
}

fn round(bench: &Bench, chain: Chain, floor: bool) -> Chain {
    if floor {
        bench.floor_round(chain)
    } else {
        bench.engine_round(chain)
    }
}

/// The only code callgrind counts.
#[inline(never)]
fn measured_loop(bench: &Bench, mut chain: Chain, floor: bool, rounds: usize) -> Chain {
    for _ in 0..rounds {
        chain = round(bench, chain, black_box(floor));
    }
    chain
}

fn locks(words: &[String]) -> Result<(), String> {
    let scenario = scenario(words)?;
    let bench = Bench::<true>::new(scenario);
    let mut chain = bench.chain(0);
    for _ in 0..WARM_UP_ROUNDS {
        chain = bench.engine_round(chain);
    }
    let rounds = 1000usize;
    take_lock_counts();
    for _ in 0..rounds {
        chain = bench.engine_round(chain);
    }
    let packets = (rounds * scenario.chain) as f64;
    let mut counts: Vec<(&str, u64)> = take_lock_counts().into_iter().collect();
    counts.sort();
    for (what, count) in counts {
        let outer = what.split('<').next().unwrap_or(what);
        let short = outer.rsplit("::").next().unwrap_or(outer);
        println!("{short} {:.3}", count as f64 / packets);
    }
    Ok(())
}

fn threads(args: &[String]) -> Result<(), String> {
    let [max, seconds] = args else {
        return Err("threads MAX SECONDS".to_owned());
    };
    let max: usize = max.parse().map_err(|_| "MAX is a number")?;
    let seconds: f64 = seconds.parse().map_err(|_| "SECONDS is a number")?;
    let scenario = Scenario { receive: false, chain: 32, frame_len: 64, hooks: 1, hook_kind: HookKind::Pass, links: 1000 };
    let bench = Arc::new(Bench::<false>::new(scenario));
    let mut single = 0.0;
    for floor in [true, false] {
        for count in 1..=max {
            let stop = Arc::new(AtomicBool::new(false));
            let packets = Arc::new(AtomicU64::new(0));
            let workers: Vec<_> = (0..count)
                .map(|thread| {
                    let (bench, stop, packets) = (Arc::clone(&bench), Arc::clone(&stop), Arc::clone(&packets));
                    std::thread::spawn(move || {
                        let mut chain = bench.chain(thread as u64 * 1000);
                        let mut rounds = 0u64;
                        while !stop.load(Ordering::Relaxed) {
                            chain = round(&bench, chain, floor);
                            rounds += 1;
                        }
                        packets.fetch_add(rounds * scenario.chain as u64, Ordering::Relaxed);
                    })
                })
                .collect();
            let start = Instant::now();
            std::thread::sleep(Duration::from_secs_f64(seconds));
            stop.store(true, Ordering::Relaxed);
            for worker in workers {
                worker.join().map_err(|_| "a worker panicked")?;
            }
            let rate = packets.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
            if count == 1 {
                single = rate;
            }
            let what = if floor { "floor" } else { "engine" };
            println!("{what} {count} {:.3} {:.2}", rate / 1e6, rate / single);
        }
    }
    Ok(())
}

fn resident_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = status.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or(0);
    pages * 4096
}

/// Line-up runs: each index's latency is the least over the runs, so that a preemption of
/// this thread (the machine is shared) does not pass for the engine's work.
const LINE_UP_RUNS: usize = 3;

fn lineup(args: &[String]) -> Result<(), String> {
    let [links] = args else {
        return Err("lineup LINKS".to_owned());
    };
    let links: u32 = links.parse().map_err(|_| "LINKS is a number")?;
    let mut least = vec![Duration::MAX; links as usize];
    let mut charged = 0;
    let mut resident = None;
    for _ in 0..LINE_UP_RUNS {
        let bench =
            Bench::<false>::new(Scenario { receive: false, chain: 1, frame_len: 64, hooks: 0, hook_kind: HookKind::Pass, links: 0 });
        let before = resident_bytes();
        for (index, least) in (0..links).zip(least.iter_mut()) {
            let up = line_up(index);
            let start = Instant::now();
            bench.engine.line_up(bench.module, &up).map_err(|error| error.to_string())?;
            *least = (*least).min(start.elapsed());
        }
        // The first run's growth: later runs reuse the memory the allocator kept.
        resident.get_or_insert(resident_bytes().saturating_sub(before));
        charged = bench.engine.hal().charged(Pool::Link);
    }
    let worst_at = least.iter().enumerate().max_by_key(|(_, latency)| **latency).map(|(at, _)| at).unwrap_or(0);
    let worst = least[worst_at];
    let mut sorted = least.clone();
    sorted.sort();
    let p50 = sorted[sorted.len() / 2];
    let p99 = sorted[sorted.len() * 99 / 100];
    println!("lineup-worst-us {:.1} at-link {worst_at} (least of {LINE_UP_RUNS} runs per link)", worst.as_secs_f64() * 1e6);
    println!("lineup-p50-us {:.2}", p50.as_secs_f64() * 1e6);
    println!("lineup-p99-us {:.2}", p99.as_secs_f64() * 1e6);
    println!("bytes-per-link-charged {} (protocol buffer of 16 bytes included)", charged / links.max(1) as usize);
    println!("bytes-per-link-resident {} (first run's growth of the resident set)", resident.unwrap_or(0) / links.max(1) as usize);
    Ok(())
}

/// Entries a `LIST_LINKS` page asks for (the protocol's most).
const LINK_PAGE: u32 = 1024;

fn list_links(args: &[String]) -> Result<(), String> {
    let [links] = args else {
        return Err("list-links LINKS".to_owned());
    };
    let links: u32 = links.parse().map_err(|_| "LINKS is a number")?;
    let bench = Bench::<false>::new(Scenario { receive: false, chain: 1, frame_len: 64, hooks: 0, hook_kind: HookKind::Pass, links: 0 });
    for index in 0..links {
        bench.engine.line_up(bench.module, &line_up(index)).map_err(|error| error.to_string())?;
    }
    let handle = ControlHandle::new(1);
    let mut buffer = vec![0u8; 1 << 20];
    let (mut least, mut pages) = (Duration::MAX, 0);
    for _ in 0..LINE_UP_RUNS {
        let start = Instant::now();
        let (listed, counted) = measured_pages(&bench, &handle, &mut buffer)?;
        if listed != links as usize {
            return Err(format!("{listed} links listed of {links}"));
        }
        pages = counted;
        least = least.min(start.elapsed() / counted.max(1) as u32);
    }
    println!("list-links-pages {pages} of {LINK_PAGE} entries over {links} links");
    println!("list-links-us-per-page {:.1} (least of {LINE_UP_RUNS} enumerations)", least.as_secs_f64() * 1e6);
    Ok(())
}

/// One enumeration of every link, page after page through the control device's dispatch:
/// links listed and pages.
#[inline(never)]
fn measured_pages(bench: &Bench<false>, handle: &ControlHandle, buffer: &mut [u8]) -> Result<(usize, usize), String> {
    let (mut cursor, mut listed, mut pages) = (0, 0, 0);
    loop {
        let query = LinkQueryRepr { module: None, protocol_buffer: false, cursor, max_entries: LINK_PAGE };
        query.emit(&mut LinkQuery::new_unchecked(&mut buffer[..32])).map_err(|error| error.to_string())?;
        let output_len = buffer.len();
        let completion = bench.engine.control().dispatch(handle, IOCTL_LIST_LINKS, Access::READ, buffer, 32, output_len);
        let Completion::Complete { status: Status::Success, written } = completion else {
            return Err(format!("LIST_LINKS: {completion:?}"));
        };
        let answer = LinkListRepr::parse(&LinkList::new_unchecked(&buffer[..written])).map_err(|error| error.to_string())?;
        listed += answer.count as usize;
        pages += 1;
        if answer.end {
            return Ok((black_box(listed), pages));
        }
        cursor = answer.next_cursor;
    }
}
