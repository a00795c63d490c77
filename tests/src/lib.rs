//! Cross-crate scenario tests for wanlayer: the engine of `wanlayer-core` driven through the
//! simulated RRAS server of `wanlayer-sim`, with its verifier watching every NDIS call.
//!
//! The scenarios live in `tests/`, one file per theme (sessions, hooks, line down, cancellation,
//! lifecycle, hook removal, scale, faults, events, IRQL, the provider interface for vendor
//! drivers and the SDK's sample vendor driver). This library holds what they share:
//!
//! * [`sample_hooks`]: small hooks a filter author would write — dropping, clamping the TCP MSS in
//!   place, rewriting the TTL by replacement, queueing packets for later reinjection, counting,
//!   lowering the MTU, and recording every callback;
//! * [`frames`]: frames the simulator does not generate (TCP SYNs with an MSS option) and readers
//!   for what arrives at the far side (MSS, TTL, checksums);
//! * [`setup`]: starting a server, reading the engine's counters and events, and the teardown every
//!   scenario ends with ([`setup::finish`]: unload, verifier clean, nothing held, pools at zero);
//! * [`vendors`]: small vendor filters written against the SDK (`wanlayer_sdk::VendorFilter`),
//!   registered through the provider interface's C-ABI table as a kernel vendor's are;
//! * [`session`]: the main session — links, traffic both ways through a queueing and a replacing
//!   hook, lent receives, line down, pause, hook removal, detach, unload — which the IRQL and
//!   fault-injection scenarios run again and again;
//! * [`soak`]: randomized NDIS schedules — a seeded generator of whole server runs, their runner
//!   and a shrinker — which `cargo xtask soak` runs by the hundred thousand (the `soak` binary).
#![forbid(unsafe_code)]

pub mod frames;
pub mod sample_hooks;
pub mod session;
pub mod setup;
pub mod soak;
pub mod vendors;
