//! Model check (loom: every interleaving, every permitted reordering) of the protocol by which a
//! module's data path counts itself with no lock while a pause waits for it, as `wanlayer-core`'s
//! `ModuleGate` runs it:
//!
//! * a call enters by adding one to its processor's `calls_entered` (`Relaxed`), a `SeqCst`
//!   fence, then reads the open word: closed, it adds one to `calls_left` and goes the locked way;
//! * during the call it counts each packet it originates in `packets_out` (`Relaxed`) before
//!   handing it on, and leaves by adding one to `calls_left` (`Release`); the packet comes back
//!   on any processor and adds one to `packets_back` (`Release`); after each departure, a `SeqCst`
//!   fence and a closed gate send the departing thread to the module's lock to check whether the
//!   pause can finish;
//! * the pause closes the gate (a store, a `SeqCst` fence), then under the module's lock (a fence
//!   again) reads every departure count (`Acquire`) and then every arrival count: equal sums mean
//!   drained, else the pause is pending.
//!
//! Loom treats `SeqCst` loads and stores as `AcqRel` (its documented limitation) but models
//! `SeqCst` fences exactly: the engine uses fences for that reason, so this model is its protocol.
//!
//! The model moves the call between processors (it enters on shard 0, counts its packet and
//! leaves on shard 1, the packet comes back on shard 0), the case that makes a one-pass sum lie.
//! The property: the pause completes exactly once, and never while a call it let in is in progress
//! or a packet is out. A mutant that sums arrivals before departures fails it.

use loom::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;

const WAITING: u8 = 0;
const SENT: u8 = 1;
const REFUSED: u8 = 2;

#[derive(Default)]
struct Shard {
    calls_entered: AtomicU64,
    calls_left: AtomicU64,
    packets_out: AtomicU64,
    packets_back: AtomicU64,
}

struct Module {
    open: AtomicBool,
    shards: [Shard; 2],
    /// The module's lock over `pause_pending`.
    core: Mutex<bool>,
    /// How many times the pause completed.
    completions: AtomicUsize,
    /// What the call did, for the "miniport" (the returning thread): [`WAITING`], [`SENT`] or
    /// [`REFUSED`].
    sent: AtomicU8,
    /// Departures before arrivals, as the engine reads them; false for the mutant.
    departures_first: bool,
}

impl Module {
    fn running(departures_first: bool) -> Self {
        Self {
            open: AtomicBool::new(true),
            shards: [Shard::default(), Shard::default()],
            core: Mutex::new(false),
            completions: AtomicUsize::new(0),
            sent: AtomicU8::new(WAITING),
            departures_first,
        }
    }

    fn is_drained(&self) -> bool {
        fence(Ordering::SeqCst);
        let departures =
            || self.shards.iter().map(|s| s.calls_left.load(Ordering::Acquire) + s.packets_back.load(Ordering::Acquire)).sum::<u64>();
        let arrivals =
            || self.shards.iter().map(|s| s.calls_entered.load(Ordering::Relaxed) + s.packets_out.load(Ordering::Relaxed)).sum::<u64>();
        if self.departures_first {
            let departures = departures();
            departures == arrivals()
        } else {
            let arrivals = arrivals();
            departures() == arrivals
        }
    }

    fn complete(&self) {
        let previous = self.completions.fetch_add(1, Ordering::SeqCst);
        assert_eq!(previous, 0, "the pause completed twice");
    }

    /// A departure found the gate closed: `ModuleSlot::refresh_gate` under the lock.
    fn after_departure(&self) {
        fence(Ordering::SeqCst);
        if self.open.load(Ordering::Relaxed) {
            return;
        }
        let mut pending = self.core.lock().unwrap();
        if *pending && self.is_drained() {
            *pending = false;
            self.complete();
        }
    }

    /// One send: enter on shard 0, hand one packet of the module's own on and leave on shard 1.
    fn call(&self) {
        self.shards[0].calls_entered.fetch_add(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if !self.open.load(Ordering::Relaxed) {
            self.shards[0].calls_left.fetch_add(1, Ordering::Release);
            self.sent.store(REFUSED, Ordering::SeqCst);
            return self.after_departure();
        }
        assert_eq!(self.completions.load(Ordering::SeqCst), 0, "a call ran after the pause completed");
        self.shards[1].packets_out.fetch_add(1, Ordering::Relaxed);
        self.sent.store(SENT, Ordering::Release);
        self.shards[1].calls_left.fetch_add(1, Ordering::Release);
        self.after_departure();
    }

    /// The miniport completes the packet, on shard 0.
    fn packet_back(&self) {
        let sent = loop {
            match self.sent.load(Ordering::Acquire) {
                WAITING => thread::yield_now(),
                done => break done,
            }
        };
        if sent == REFUSED {
            return;
        }
        assert_eq!(self.completions.load(Ordering::SeqCst), 0, "the pause completed with a packet out");
        self.shards[0].packets_back.fetch_add(1, Ordering::Release);
        self.after_departure();
    }

    /// `Engine::pause`.
    fn pause(&self) {
        self.open.store(false, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        let mut pending = self.core.lock().unwrap();
        if self.is_drained() {
            self.complete();
        } else {
            *pending = true;
        }
    }
}

fn model(departures_first: bool) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(move || {
        let module = Arc::new(Module::running(departures_first));
        let caller = {
            let module = Arc::clone(&module);
            thread::spawn(move || module.call())
        };
        let miniport = {
            let module = Arc::clone(&module);
            thread::spawn(move || module.packet_back())
        };
        module.pause();
        caller.join().unwrap();
        miniport.join().unwrap();
        assert_eq!(module.completions.load(Ordering::SeqCst), 1, "the pause never completed");
    });
}

#[test]
#[cfg_attr(debug_assertions, ignore = "exhaustive: run optimised by `cargo xtask test`")]
fn a_pause_completes_once_and_never_while_a_call_or_packet_is_out() {
    model(true);
}

#[test]
#[cfg_attr(debug_assertions, ignore = "exhaustive: run optimised by `cargo xtask test`")]
#[should_panic]
fn summing_arrivals_before_departures_is_caught() {
    model(false);
}

/// The completion shortcut (`ModuleGate::may_have_own_out`): until a module slot has counted out
/// a packet of its own, a completion or return hands the chain on whole, with no look at each
/// packet. The call sets the slot's `originated` flag (`Relaxed`, never cleared) before it counts
/// its packet out and hands it on; the platform hands it back on another thread (here a `Release`
/// store the returning thread reads `Acquire`, as a completion follows its send); the returning
/// thread reads the flag (`Relaxed`) and must see it set whenever the chain holds the module's
/// own packet. `flag_first: false` is a mutant that sets the flag after handing the packet on.
fn completion_shortcut_model(flag_first: bool) {
    loom::model(move || {
        let originated = Arc::new(AtomicBool::new(false));
        let handed_on = Arc::new(AtomicBool::new(false));
        let call = {
            let (originated, handed_on) = (Arc::clone(&originated), Arc::clone(&handed_on));
            thread::spawn(move || {
                if flag_first {
                    originated.store(true, Ordering::Relaxed);
                }
                handed_on.store(true, Ordering::Release);
                if !flag_first {
                    originated.store(true, Ordering::Relaxed);
                }
            })
        };
        if handed_on.load(Ordering::Acquire) {
            assert!(originated.load(Ordering::Relaxed), "the module's own packet was handed back as a foreign one");
        }
        call.join().unwrap();
    });
}

#[test]
fn a_chain_holding_an_own_packet_is_never_handed_back_whole() {
    completion_shortcut_model(true);
}

#[test]
#[should_panic]
fn setting_the_flag_after_the_hand_off_is_caught() {
    completion_shortcut_model(false);
}
