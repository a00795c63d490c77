//! Model check (loom: every interleaving, every permitted reordering) of the protocol by which
//! the data path reads the hook chain while hooks are removed, as `wanlayer-core` runs it:
//!
//! * the data path first reads the registry's published hook count (`HookRegistry::is_empty`,
//!   an `Acquire` load, no lock) and, with no hook, touches nothing else;
//! * otherwise it takes the registry's read side, enters each registered hook's slot on its
//!   processor's shard (`HookSlot::enter`, a `Relaxed` increment of the shard's entered count)
//!   and copies the chain, leaves the read side, calls the hooks, and leaves each slot on the same
//!   shard (`HookSlot::leave`, a `Release` increment of the shard's left count);
//! * `remove_hook` takes the hook out under the write side and publishes the new count
//!   (`Release`), then waits until the slot is idle (`HookSlot::is_idle`: every shard's left
//!   count, `Acquire`, then every shard's entered count; equal sums), and only then lets the
//!   hook go.
//!
//! The registry's read-mostly lock is modelled as one mutex: its read and write sides exclude
//! each other, which is all the protocol relies on (readers excluding each other too only
//! removes interleavings between two readers, which touch different shards).
//!
//! The property: once `remove_hook` has returned, no call of the hook starts or is in progress.
//! The same orderings as the engine's are used here, so a weaker one there shows up here.

use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;

/// The engine's pieces the protocol touches, for one hook slot.
struct Chain {
    registry: Mutex<Vec<usize>>,
    registered: AtomicUsize,
    /// The slot's snapshots entered and left, per processor (a packet thread is a processor).
    entered: [AtomicU64; 2],
    left: [AtomicU64; 2],
    /// Set once `remove_hook` returned: the hook's owner may free it.
    released: AtomicBool,
    calls: AtomicU32,
}

impl Chain {
    fn with_hook() -> Self {
        Self {
            registry: Mutex::new(vec![0]),
            registered: AtomicUsize::new(1),
            entered: [AtomicU64::new(0), AtomicU64::new(0)],
            left: [AtomicU64::new(0), AtomicU64::new(0)],
            released: AtomicBool::new(false),
            calls: AtomicU32::new(0),
        }
    }

    /// `HookSlot::is_idle`: departures before arrivals.
    fn is_idle(&self) -> bool {
        let left: u64 = self.left.iter().map(|count| count.load(Ordering::Acquire)).sum();
        let entered: u64 = self.entered.iter().map(|count| count.load(Ordering::Relaxed)).sum();
        left == entered
    }

    /// One packet through the data path on `processor`.
    fn packet(&self, processor: usize) {
        if self.registered.load(Ordering::Acquire) == 0 {
            return;
        }
        let hooks: Vec<usize> = {
            let registry = self.registry.lock().unwrap();
            for _ in registry.iter() {
                self.entered[processor].fetch_add(1, Ordering::Relaxed);
            }
            registry.clone()
        };
        for _ in &hooks {
            assert!(!self.released.load(Ordering::Relaxed), "a hook was called after its removal returned");
            self.calls.fetch_add(1, Ordering::Relaxed);
        }
        for _ in &hooks {
            self.left[processor].fetch_add(1, Ordering::Release);
        }
    }

    /// `Engine::remove_hook`.
    fn remove(&self) {
        {
            let mut registry = self.registry.lock().unwrap();
            registry.retain(|slot| *slot != 0);
            self.registered.store(registry.len(), Ordering::Release);
        }
        while !self.is_idle() {
            thread::yield_now();
        }
        self.released.store(true, Ordering::Relaxed);
    }
}

#[test]
#[cfg_attr(debug_assertions, ignore = "exhaustive: run optimised by `cargo xtask test`")]
fn no_hook_call_starts_or_runs_after_its_removal_returned() {
    loom::model(|| {
        let chain = Arc::new(Chain::with_hook());
        let readers: Vec<_> = (0..2)
            .map(|processor| {
                let chain = Arc::clone(&chain);
                thread::spawn(move || chain.packet(processor))
            })
            .collect();
        chain.remove();
        for reader in readers {
            reader.join().unwrap();
        }
        assert!(chain.is_idle());
    });
}

#[test]
#[cfg_attr(debug_assertions, ignore = "exhaustive: run optimised by `cargo xtask test`")]
fn a_packet_after_the_removal_returned_calls_no_hook() {
    loom::model(|| {
        let chain = Arc::new(Chain::with_hook());
        let remover = {
            let chain = Arc::clone(&chain);
            thread::spawn(move || chain.remove())
        };
        chain.packet(0);
        remover.join().unwrap();
        let calls_before = chain.calls.load(Ordering::Relaxed);
        chain.packet(1);
        assert_eq!(chain.calls.load(Ordering::Relaxed), calls_before, "after removal returned the hook is never called");
    });
}
