//! Runs the shipped kernel images — `wanlayer.sys` and `wlclamp.sys` as `cargo xtask build`
//! wrote them, x64 and ARM64 — on an emulated processor ([unicorn](unicorn_engine)), with every
//! import bound by name to the kernel model (`wanlayer_kernel_model::exports`) and the
//! driver-in-the-loop scenarios of `wanlayer-driver-host-tests` run against them: the same
//! scenarios the host build of the driver runs natively, reaching the driver through the model's
//! one invocation layer (`wanlayer_kernel_model::invoke`), which the emulator replaces.
//!
//! What this adds to the host build: rust-lld's output, the relocations, the import table, the
//! calling conventions, each architecture's code generation and the stack each call uses (painted
//! and measured per top-level call; a 64 KiB guest stack with a guard page below).
//!
//! Not modelled: special pool (the model's pool blocks are host heap blocks, so an overrun
//! within the block's heap page is not caught), processor state a kernel provides through GS /
//! X18 (the driver reads none), and any concurrency (one emulated processor).
#![cfg(not(target_os = "windows"))]

pub mod image;
pub mod machine;
pub mod run;
