//! Model check (loom: every interleaving, every permitted reordering) of the protocol by which
//! the data path reads the hook chain while hooks are removed, as `wanlayer-core` runs it:
//!
//! * the data path first reads the registry's published hook count (`HookRegistry::is_empty`,
//!   an `Acquire` load, no lock) and, with no hook, touches nothing else;
//! * otherwise it takes the registry's lock, enters each registered hook's slot (`HookSlot::enter`,
//!   an `Acquire` increment) and copies the chain, leaves the lock, calls the hooks, and leaves
//!   each slot (`HookSlot::leave`, a `Release` decrement);
//! * `remove_hook` takes the hook out under the lock and publishes the new count (`Release`),
//!   then waits until the slot is idle (`HookSlot::is_idle`, `Acquire`), and only then lets the
//!   hook go.
//!
//! The property: once `remove_hook` has returned, no call of the hook starts or is in progress.
//! The same orderings as the engine's are used here, so a weaker one there shows up here.

use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;

/// The engine's pieces the protocol touches, for one hook slot.
struct Chain {
    registry: Mutex<Vec<usize>>,
    registered: AtomicUsize,
    active: AtomicU32,
    /// Set once `remove_hook` returned: the hook's owner may free it.
    released: AtomicBool,
    calls: AtomicU32,
}

impl Chain {
    fn with_hook() -> Self {
        Self { registry: Mutex::new(vec![0]), registered: AtomicUsize::new(1), active: AtomicU32::new(0), released: AtomicBool::new(false), calls: AtomicU32::new(0) }
    }

    /// One packet through the data path.
    fn packet(&self) {
        if self.registered.load(Ordering::Acquire) == 0 {
            return;
        }
        let hooks: Vec<usize> = {
            let registry = self.registry.lock().unwrap();
            for _ in registry.iter() {
                self.active.fetch_add(1, Ordering::Acquire);
            }
            registry.clone()
        };
        for _ in &hooks {
            assert!(!self.released.load(Ordering::Relaxed), "a hook was called after its removal returned");
            self.calls.fetch_add(1, Ordering::Relaxed);
        }
        for _ in &hooks {
            self.active.fetch_sub(1, Ordering::Release);
        }
    }

    /// `Engine::remove_hook`.
    fn remove(&self) {
        {
            let mut registry = self.registry.lock().unwrap();
            registry.retain(|slot| *slot != 0);
            self.registered.store(registry.len(), Ordering::Release);
        }
        while self.active.load(Ordering::Acquire) != 0 {
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
            .map(|_| {
                let chain = Arc::clone(&chain);
                thread::spawn(move || chain.packet())
            })
            .collect();
        chain.remove();
        for reader in readers {
            reader.join().unwrap();
        }
        assert_eq!(chain.active.load(Ordering::Relaxed), 0);
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
        chain.packet();
        remover.join().unwrap();
        let calls_before = chain.calls.load(Ordering::Relaxed);
        chain.packet();
        assert_eq!(chain.calls.load(Ordering::Relaxed), calls_before, "after removal returned the hook is never called");
    });
}
