//! The kernel implementation of the engine's platform traits ([`wanlayer_core::hal`]).
//!
//! [`KernelHal`] is what the engine is generic over: memory accounting per pool with an optional
//! budget, time from `KeQueryUnbiasedInterruptTime`, spin locks ([`lock::SpinLock`]), per-processor
//! spin locks for what every packet reads ([`read_mostly::PerProcessorLock`]), waiting with
//! `KeDelayExecutionThread`, `DbgPrintEx` ([`log`]), NBLs ([`packet_io`]), `NdisFPauseComplete`, and
//! the rule set kept in the service key ([`registry`]).
//! Packet calls find the module's NDIS handles in [`crate::modules::MODULES`].

#[cfg(not(feature = "wdk"))]
pub mod alloc;
#[cfg(not(feature = "wdk"))]
pub mod bugcheck;
pub mod lock;
pub mod log;
pub mod packet_io;
pub mod read_mostly;
pub mod registry;

use core::fmt;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use wanlayer_core::hal::{
    Clock, Level, Locking, Log, Memory, OutOfMemory, PathContext, PauseCompletion, Pool, Processors, Quiesce, ReadMostlyLocking,
    Timestamp,
};
use wanlayer_core::ModuleId;
use wanlayer_ndis::imports;
use wanlayer_ndis::kernel::{KSpinLock, Kirql, KERNEL_MODE};

use crate::modules::MODULES;

/// `PASSIVE_LEVEL`.
pub const PASSIVE_LEVEL: Kirql = 0;
/// `APC_LEVEL`.
pub const APC_LEVEL: Kirql = 1;
/// `DISPATCH_LEVEL`.
pub const DISPATCH_LEVEL: Kirql = 2;

/// How long [`Quiesce::wait_until`] sleeps between checks: 1 ms, in the negative (relative)
/// 100 ns units of `KeDelayExecutionThread`.
const QUIESCE_INTERVAL_100NS: i64 = -10_000;

/// The current IRQL.
///
/// `KeGetCurrentIrql` is an inline in `wdm.h` (a control-register read on x64, a processor-block
/// read on ARM64) and its export is not confirmed on ARM64, so the IRQL is read the portable way:
/// `KeAcquireSpinLockRaiseToDpc` on a spin lock nobody else can see returns the IRQL it raised from,
/// and `KeReleaseSpinLock` restores it. Used only where NDIS passes no `*_DISPATCH_LEVEL` flag
/// (status indications, send cancellation, waiting), never per packet.
///
/// # IRQL
/// `<= DISPATCH_LEVEL`.
pub fn current_irql() -> Kirql {
    let mut probe: KSpinLock = 0;
    // SAFETY: `probe` is a released spin lock in resident memory (the current kernel stack) that
    // no other processor can reach; the caller runs at <= DISPATCH_LEVEL.
    let previous = unsafe { imports::KeAcquireSpinLockRaiseToDpc(&mut probe) };
    // SAFETY: releases the lock just acquired, restoring the IRQL it returned.
    unsafe { imports::KeReleaseSpinLock(&mut probe, previous) };
    previous
}

/// The path context of a callback NDIS gives no flags (status, cancel): the truth about the IRQL,
/// read from the kernel.
pub fn current_context() -> PathContext {
    PathContext { at_dispatch: current_irql() >= DISPATCH_LEVEL, ..PathContext::default() }
}

/// What is charged to one [`Pool`].
#[derive(Debug)]
struct PoolCounter {
    current: AtomicUsize,
    peak: AtomicUsize,
    refused: AtomicU64,
}

/// A copy of one pool's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolUsage {
    /// The pool.
    pub pool: Pool,
    /// Bytes charged now.
    pub current: usize,
    /// The most ever charged at once.
    pub peak: usize,
    /// Charges refused (budget exceeded).
    pub refused: u64,
}

impl PoolCounter {
    const fn new() -> Self {
        Self { current: AtomicUsize::new(0), peak: AtomicUsize::new(0), refused: AtomicU64::new(0) }
    }
}

/// The per-pool counters. Static, not in [`KernelHal`], so that `DriverUnload` can still read them
/// after the engine (and its platform) is dropped, to report what was not released.
static POOLS: [PoolCounter; Pool::ALL.len()] = [const { PoolCounter::new() }; Pool::ALL.len()];
/// Bytes charged to every pool together (what the budget limits).
static CHARGED: AtomicUsize = AtomicUsize::new(0);

fn counter(pool: Pool) -> &'static PoolCounter {
    let index = Pool::ALL.iter().position(|candidate| *candidate == pool).unwrap_or(0);
    &POOLS[index]
}

/// Every pool's counters: what is charged now, the peak, refusals.
pub fn pool_usage() -> impl Iterator<Item = PoolUsage> {
    Pool::ALL.into_iter().map(|pool| {
        let counter = counter(pool);
        PoolUsage {
            pool,
            current: counter.current.load(Ordering::Relaxed),
            peak: counter.peak.load(Ordering::Relaxed),
            refused: counter.refused.load(Ordering::Relaxed),
        }
    })
}

/// The engine's platform in the kernel.
///
/// # IRQL
/// Every method is callable at `<= DISPATCH_LEVEL` except [`Quiesce::wait_until`] (`PASSIVE_LEVEL`).
#[derive(Debug)]
pub struct KernelHal {
    budget: Option<usize>,
}

impl KernelHal {
    /// A platform that refuses charges once `budget` bytes are charged in total (`None`: never).
    pub const fn new(budget: Option<usize>) -> Self {
        Self { budget }
    }

    /// The module's NDIS filter module handle.
    ///
    /// # Panics
    /// When the module table has no handle for `module`: the engine only calls out for modules
    /// between attach and detach, so this is a driver bug, and a bug check naming this line is
    /// better than NBLs NDIS would wait for forever.
    pub(crate) fn filter_of(module: ModuleId) -> wanlayer_ndis::types::FilterModuleHandle {
        match MODULES.handles(module) {
            Some(handles) => handles.filter,
            None => panic!("module table has no NDIS handle for an attached module"),
        }
    }
}

impl Memory for KernelHal {
    fn try_charge(&self, pool: Pool, bytes: usize) -> Result<(), OutOfMemory> {
        let counter = counter(pool);
        let total = CHARGED.fetch_add(bytes, Ordering::Relaxed).saturating_add(bytes);
        if self.budget.is_some_and(|budget| total > budget) {
            CHARGED.fetch_sub(bytes, Ordering::Relaxed);
            counter.refused.fetch_add(1, Ordering::Relaxed);
            return Err(OutOfMemory);
        }
        let now = counter.current.fetch_add(bytes, Ordering::Relaxed).saturating_add(bytes);
        counter.peak.fetch_max(now, Ordering::Relaxed);
        Ok(())
    }

    fn release(&self, pool: Pool, bytes: usize) {
        let counter = counter(pool);
        let before = counter.current.fetch_sub(bytes, Ordering::Relaxed);
        CHARGED.fetch_sub(bytes, Ordering::Relaxed);
        if before < bytes {
            // Released more than charged: an engine accounting bug. Keep the counter sane and say so.
            counter.current.store(0, Ordering::Relaxed);
            crate::platform::print(Level::Error, format_args!("pool {pool:?}: released {bytes} bytes with {before} charged"));
        }
    }
}

impl Clock for KernelHal {
    fn now(&self) -> Timestamp {
        // SAFETY: `KeQueryUnbiasedInterruptTime` has no preconditions (any IRQL).
        let ticks = unsafe { imports::KeQueryUnbiasedInterruptTime() };
        Timestamp(ticks.saturating_mul(100))
    }
}

impl Locking for KernelHal {
    type Lock<T> = lock::SpinLock<T>;

    fn new_lock<T>(&self, value: T) -> lock::SpinLock<T> {
        lock::SpinLock::new(value)
    }
}

impl ReadMostlyLocking for KernelHal {
    type ReadMostly<T: Send + Sync> = read_mostly::PerProcessorLock<T>;

    fn new_read_mostly<T: Send + Sync>(&self, value: T) -> Result<read_mostly::PerProcessorLock<T>, OutOfMemory> {
        read_mostly::PerProcessorLock::new(value, self.processor_count())
    }
}

/// The current processor's index across groups (`KeGetCurrentProcessorNumberEx`).
pub(crate) fn current_processor_index() -> usize {
    // SAFETY: `KeGetCurrentProcessorNumberEx` accepts a null `ProcNumber` and runs at any IRQL.
    let index = unsafe { imports::KeGetCurrentProcessorNumberEx(core::ptr::null_mut()) };
    index as usize
}

impl Processors for KernelHal {
    fn current_processor(&self) -> usize {
        current_processor_index()
    }

    fn processor_count(&self) -> usize {
        // SAFETY: `KeQueryActiveProcessorCountEx` has no preconditions (any IRQL).
        let count = unsafe { imports::KeQueryActiveProcessorCountEx(imports::ALL_PROCESSOR_GROUPS) };
        (count as usize).max(1)
    }
}

impl Quiesce for KernelHal {
    /// # Panics
    /// When called above `APC_LEVEL`, where sleeping would bug check with a less helpful code.
    fn wait_until(&self, is_done: &dyn Fn() -> bool) {
        assert!(current_irql() <= APC_LEVEL, "Quiesce::wait_until above APC_LEVEL");
        while !is_done() {
            let mut interval = QUIESCE_INTERVAL_100NS;
            // SAFETY: at <= APC_LEVEL (checked above), a kernel-mode, non-alertable relative wait on
            // a stack variable.
            let _ = unsafe { imports::KeDelayExecutionThread(KERNEL_MODE, 0, &mut interval) };
        }
    }
}

impl Log for KernelHal {
    fn log(&self, level: Level, message: fmt::Arguments<'_>) {
        crate::platform::print(level, message);
    }
}

impl PauseCompletion for KernelHal {
    fn pause_complete(&self, module: ModuleId) {
        let filter = Self::filter_of(module);
        // SAFETY: `filter` is the handle of a module whose FilterPause returned NDIS_STATUS_PENDING
        // (the engine calls this once per pending pause); callable at <= DISPATCH_LEVEL.
        unsafe { imports::NdisFPauseComplete(filter) };
    }
}

// The engine is shared by every processor through `&'static`: it must be `Sync`, and so must the
// platform it owns.
const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    shared::<KernelHal>();
    shared::<wanlayer_core::Engine<KernelHal>>();
};
