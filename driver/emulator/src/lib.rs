//! Runs the shipped kernel images — `wanlayer.sys` and `wlclamp.sys` as `cargo xtask build`
//! wrote them, x64 and ARM64 — on an emulated processor ([unicorn](unicorn_engine)), with every
//! import bound by name to the kernel model (`wanlayer_kernel_model::exports`) and the
//! driver-in-the-loop scenarios of `wanlayer-driver-host-tests` run against them: the same
//! scenarios the host build of the driver runs natively, reaching the driver through the model's
//! one invocation layer (`wanlayer_kernel_model::invoke`), which the emulator replaces.
//!
//! What this adds to the host build: rust-lld's output, the relocations, the import table, the
//! calling conventions, each architecture's code generation, the stack each call uses (painted
//! and measured per top-level call; a 64 KiB guest stack with a guard page below), special pool
//! (each pool block ends at an inaccessible guard page; freed blocks become inaccessible), and the
//! image's own heap under the low-resources sweep (its Rust allocator takes kernel pool, so every
//! `Box` and `Vec` of the engine is an allocation the sweep fails).
//!
//! Not modelled: processor state a kernel provides through GS / X18 (the driver reads none), and
//! any concurrency (one emulated processor).
//!
//! x86 (PE32): [`image::load`] maps an x86 image below 4 GiB (`MAP_32BIT`), applies its
//! `HIGHLOW` relocations and matches its 4-byte IAT slots to the model's exports by name, and the
//! program reports that for each x86 image; no x86 image runs ([`machine::X86_NOT_RUN`] says
//! why). Running one needs, beyond a 32-bit machine (`stdcall` stubs returning with
//! `ret 4 * stack words`, the `FASTCALL` imports taking their first two arguments in ECX and EDX,
//! calls into the guest pushing their arguments): the structures the model and the scenarios
//! hand to the driver in x86 layouts, in memory below 4 GiB — a model built for a 32-bit host, or
//! one translating each structure — and the x86-only imports (`KfAcquireSpinLock`,
//! `KfReleaseSpinLock`, `_aulldiv`) in the model.
#![cfg(not(target_os = "windows"))]

pub mod image;
pub mod machine;
pub mod run;
