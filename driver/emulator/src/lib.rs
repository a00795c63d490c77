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
//! x86 (PE32) images run under the emulator built for `i686-unknown-linux-gnu`
//! ([`machine::runs`]): there every structure the kernel model and the scenarios hand to the
//! driver has its x86 layout and every address is below 4 GiB. A call into the guest pushes its
//! arguments (`__stdcall`); an import reads them as its x86 convention passes them
//! ([`X86Convention`](wanlayer_kernel_model::exports::X86Convention): `__stdcall`, the
//! `FASTCALL` ones' ECX and EDX, the C runtime's `__cdecl`), returns in EDX:EAX and removes them
//! as the callee does; the x86-only imports (`KfAcquireSpinLock`, `_aulldiv`, ...) are the
//! model's [`X86_EXPORTS`](wanlayer_kernel_model::exports::X86_EXPORTS).
#![cfg(not(target_os = "windows"))]

pub mod image;
pub mod machine;
pub mod run;
