//! The engine on real threads: senders and receivers on one module while another thread brings
//! links up and down, adds and removes hooks (one of which takes packets and has them reinjected
//! or dropped later), pauses and restarts the module. Every packet must come back to its owner
//! exactly once — completed (sends) or returned (receives) — whatever the interleaving.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use wanlayer_bench::{
    frame, line_up, remote_address, take_parked, Bench, Chain, Frame, HookKind, ModifyHook, Parked, PassHook, Scenario, LOCAL_ADDRESS,
};
use wanlayer_core::hal::{PacketChain, PathContext};
use wanlayer_core::hook::{Hook, PacketContext, Ticket, Verdict};
use wanlayer_core::link::LineDown;
use wanlayer_core::module::ModuleState;
use wanlayer_core::ReinjectVerdict;

/// Links the traffic is spread over.
const LINKS: u32 = 8;
/// Chains each traffic thread sends or indicates.
const ROUNDS: u64 = 20_000;
/// Changes the control thread makes while traffic flows (at most).
const CHANGES: u64 = 5_000;

/// Takes every `every`-th packet it sees and queues its ticket for the control thread.
struct Taker {
    every: u64,
    seen: AtomicU64,
    tickets: Mutex<Vec<Ticket>>,
}

impl Taker {
    fn decide(&self, packet: &mut PacketContext<'_>) -> Verdict {
        if self.seen.fetch_add(1, Ordering::Relaxed) % self.every != 0 {
            return Verdict::Pass;
        }
        self.tickets.lock().unwrap().push(packet.ticket());
        Verdict::Take
    }
}

impl Hook for Taker {
    fn on_send(&self, packet: &mut PacketContext<'_>) -> Verdict {
        self.decide(packet)
    }
    fn on_receive(&self, packet: &mut PacketContext<'_>) -> Verdict {
        self.decide(packet)
    }
}

/// Everything that came back, by serial.
type Returned = Arc<Mutex<HashMap<u64, u32>>>;

/// Completes and returns whatever this thread's calls handed on, until nothing is left, and
/// records what came home.
fn pump(bench: &Bench, returned: &Returned) {
    let ctx = PathContext::default();
    loop {
        let down = take_parked(Parked::Down);
        let up = take_parked(Parked::Up);
        let mut home = take_parked(Parked::Completed);
        home.append(take_parked(Parked::Returned));
        if down.is_empty() && up.is_empty() && home.is_empty() {
            return;
        }
        if !down.is_empty() {
            bench.engine.send_complete(bench.module, down, ctx);
        }
        if !up.is_empty() {
            bench.engine.return_receives(bench.module, up, ctx);
        }
        let mut returned = returned.lock().unwrap();
        while let Some(packet) = home.pop_front() {
            *returned.entry(packet.serial).or_default() += 1;
        }
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn every_packet_comes_back_exactly_once_under_concurrent_changes() {
    let bench = Arc::new(Bench::<false>::new(Scenario {
        receive: false,
        chain: 4,
        frame_len: 64,
        hooks: 0,
        hook_kind: HookKind::Pass,
        links: LINKS,
    }));
    let returned: Returned = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let taker = Arc::new(Taker { every: 7, seen: AtomicU64::new(0), tickets: Mutex::new(Vec::new()) });
    let traffic_threads = 3u64;
    let workers: Vec<_> = (0..traffic_threads)
        .map(|thread| {
            let (bench, returned) = (Arc::clone(&bench), Arc::clone(&returned));
            std::thread::spawn(move || {
                let mut rng = Rng(0x9E37_79B9 + thread);
                let receive = thread % 2 == 1;
                let mut made = Vec::new();
                for round in 0..ROUNDS {
                    let mut chain = Chain::default();
                    for n in 0..1 + rng.next() % 4 {
                        let link = (rng.next() % u64::from(LINKS)) as u32;
                        let serial = thread << 40 | round << 8 | n;
                        made.push(serial);
                        chain.push_back(Frame::new(frame(64, link, receive), serial));
                    }
                    if receive {
                        let lent = bench.engine.receive(bench.module, chain, false, PathContext::default());
                        assert!(lent.is_empty());
                    } else {
                        bench.engine.send(bench.module, chain, PathContext::default());
                    }
                    pump(&bench, &returned);
                }
                made
            })
        })
        .collect();

    let control = {
        let (bench, returned, done, taker) = (Arc::clone(&bench), Arc::clone(&returned), Arc::clone(&done), Arc::clone(&taker));
        std::thread::spawn(move || {
            let mut rng = Rng(0x5EED);
            let mut hooks = Vec::new();
            let mut taker_id = None;
            let mut changes = 0;
            while !done.load(Ordering::Relaxed) && changes < CHANGES {
                changes += 1;
                match rng.next() % 6 {
                    0 => {
                        let index = (rng.next() % u64::from(LINKS)) as u32;
                        let down = LineDown { remote_address: remote_address(index), local_address: LOCAL_ADDRESS };
                        bench.engine.line_down(bench.module, &down, PathContext::default());
                        bench.engine.line_up(bench.module, &line_up(index)).unwrap();
                    }
                    1 if hooks.len() < 3 => {
                        let hook: Arc<dyn Hook> = if rng.next() % 2 == 0 { Arc::new(PassHook) } else { Arc::new(ModifyHook) };
                        hooks.push(bench.engine.add_hook("stress", (rng.next() % 500) as u32, hook).unwrap());
                    }
                    1 | 2 => {
                        if let Some(id) = hooks.pop() {
                            bench.engine.remove_hook(id).unwrap();
                        }
                    }
                    3 => match taker_id.take() {
                        None => taker_id = Some(bench.engine.add_hook("taker", 250, Arc::clone(&taker) as Arc<dyn Hook>).unwrap()),
                        Some(id) => {
                            bench.engine.remove_hook(id).unwrap();
                        }
                    },
                    4 => {
                        let tickets: Vec<Ticket> = std::mem::take(&mut *taker.tickets.lock().unwrap());
                        for ticket in tickets {
                            let verdict = if rng.next() % 3 == 0 { ReinjectVerdict::Drop } else { ReinjectVerdict::Pass };
                            // A stale ticket (dropped by a pause or a line down) is refused: fine.
                            let _ = bench.engine.reinject(ticket, verdict, PathContext::default());
                        }
                    }
                    _ => {
                        let _ = bench.engine.pause(bench.module).unwrap();
                        loop {
                            pump(&bench, &returned);
                            let info = bench.engine.module_info(bench.module).unwrap();
                            if info.state == ModuleState::Paused {
                                // The pause waited for every packet of the module's own, counted
                                // per processor by the data path with no lock.
                                assert_eq!((info.taken, info.in_flight), (0, 0), "paused with packets held or in flight");
                                break;
                            }
                            std::thread::yield_now();
                        }
                        bench.engine.restart(bench.module).unwrap();
                    }
                }
                pump(&bench, &returned);
            }
            for id in hooks.into_iter().chain(taker_id) {
                bench.engine.remove_hook(id).unwrap();
            }
            pump(&bench, &returned);
        })
    };

    let mut made = Vec::new();
    for worker in workers {
        made.extend(worker.join().unwrap());
    }
    done.store(true, Ordering::Relaxed);
    control.join().unwrap();
    // Nothing may still be held: hand back whatever the taker queued after its removal began.
    for ticket in std::mem::take(&mut *taker.tickets.lock().unwrap()) {
        let _ = bench.engine.reinject(ticket, ReinjectVerdict::Pass, PathContext::default());
    }
    pump(&bench, &returned);
    let info = bench.engine.module_info(bench.module).unwrap();
    assert_eq!((info.taken, info.in_flight), (0, 0), "nothing held or in flight at the end");

    let returned = returned.lock().unwrap();
    let twice: Vec<_> = returned.iter().filter(|(_, count)| **count != 1).collect();
    assert!(twice.is_empty(), "packets that came back more than once: {twice:?}");
    assert!(!returned.contains_key(&u64::MAX), "a packet of the engine's own came back to the owner");
    let mut came_back: Vec<u64> = returned.keys().copied().collect();
    came_back.sort_unstable();
    made.sort_unstable();
    assert_eq!(came_back.len(), made.len(), "every packet made came back");
    assert!(came_back == made, "what came back is exactly what was made");
}
