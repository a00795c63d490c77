//! Driver Verifier's low-resources simulation, made exhaustive: every allocation the driver asks
//! the kernel for — pool (`ExAllocatePool2`), NBL pools, NBLs, MDLs, OID clones — is counted, and a
//! run can be told to fail exactly its k-th one.
//!
//! [`sweep`] is the whole method: it runs a scenario once to count its `N` allocations, then `N`
//! more times, failing allocation `k` (`k = 1..=N`) in run `k`: the scenario begins its model run
//! ([`begin`](crate::begin), which clears any plan) and then calls [`plan`] with what it is given,
//! so a plan never outlives the run that holds the model. The scenario itself checks that
//! each run ended cleanly (a documented failure status, [`finish`](crate::finish) empty); a bug
//! check (the model's `KeBugCheckEx` panics) or a failed check is caught and reported with the
//! run's `k` and the allocation it failed, so a sweep never stops at its first defect.
//!
//! The counter and the plan are independent of how the driver is run: the emulator of the real
//! images binds their imports to the same model functions, so [`plan`], [`allocations`] and
//! [`failed_allocation`] (and [`sweep`] around its own scenarios) serve it unchanged; an import it
//! serves itself calls [`fail_allocation`].

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, MutexGuard};

/// What kind of allocation an import made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllocationKind {
    /// `ExAllocatePool2` / `ExAllocatePoolWithTag`.
    Pool,
    /// `NdisAllocateMemoryWithTagPriority`.
    NdisMemory,
    /// `NdisAllocateNetBufferListPool`.
    NblPool,
    /// `NdisAllocateNetBufferAndNetBufferList` (and the other NBL allocators).
    Nbl,
    /// `IoAllocateMdl`.
    Mdl,
    /// `NdisAllocateCloneOidRequest`.
    OidClone,
}

struct Injector {
    /// The 1-based index of the allocation to fail in each run, if any.
    fail_at: Option<u64>,
    /// Allocations counted in this run.
    counted: u64,
    /// The allocation this run failed.
    failed: Option<(u64, AllocationKind)>,
}

static INJECTOR: Mutex<Injector> = Mutex::new(Injector { fail_at: None, counted: 0, failed: None });

thread_local! {
    /// What the last run this thread ended counted and failed (saved when its `Run` drops, so a
    /// run another test begins at once cannot reset it before the sweep reads it).
    static LAST_RUN: Cell<(u64, Option<(u64, AllocationKind)>)> = const { Cell::new((0, None)) };
}

fn injector() -> MutexGuard<'static, Injector> {
    INJECTOR.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A run ends (its `Run` drops, still holding the model): keeps its figures for this thread.
pub(crate) fn end_run() {
    let injector = injector();
    LAST_RUN.with(|last| last.set((injector.counted, injector.failed)));
}

/// A new run begins ([`begin`](crate::begin)): nothing counted, nothing planned.
pub(crate) fn reset() {
    *injector() = Injector { fail_at: None, counted: 0, failed: None };
}

/// In this run, fail its `fail_at`-th allocation counted from the run's beginning (1-based);
/// `None`: fail none, count only. Called after [`begin`](crate::begin).
pub fn plan(fail_at: Option<u64>) {
    injector().fail_at = fail_at;
}

/// Allocations the driver asked for in this run so far (the failed one included).
pub fn allocations() -> u64 {
    injector().counted
}

/// The allocation this run failed, as (index, kind), once it happened.
pub fn failed_allocation() -> Option<(u64, AllocationKind)> {
    injector().failed
}

/// Counts an allocation of `kind` and says whether to fail it (the plan's). Every allocating
/// import of the model calls it first; so does any import an emulator serves itself.
pub fn fail_allocation(kind: AllocationKind) -> bool {
    let mut injector = injector();
    injector.counted += 1;
    let fail = injector.fail_at == Some(injector.counted);
    if fail {
        injector.failed = Some((injector.counted, kind));
    }
    fail
}

/// One run of a sweep that did not end cleanly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Defect {
    /// The allocation the run failed (1-based), `None` for the counting run.
    pub failed: Option<(u64, AllocationKind)>,
    /// What went wrong: the panic's message (a bug check, a failed check of the scenario).
    pub what: String,
}

/// What a sweep of one scenario found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sweep {
    /// Allocations of the scenario's undisturbed run (`N`).
    pub allocations: u64,
    /// Runs with one allocation failed (`N`, unless a run allocated fewer).
    pub failed_runs: u64,
    /// Runs that bug-checked (the model's `KeBugCheckEx`).
    pub bug_checks: u64,
    /// Runs that failed otherwise: a leak, a rule broken, a status not documented.
    pub defects: Vec<Defect>,
}

impl Sweep {
    /// True when every run ended cleanly.
    pub fn is_clean(&self) -> bool {
        self.bug_checks == 0 && self.defects.is_empty()
    }
}

/// Runs `scenario` once counting its allocations, then once per allocation failing that one.
/// `scenario(fail_at)` begins its own model run ([`begin`](crate::begin)), calls
/// [`plan(fail_at)`](plan), drives the driver, and checks (by panicking) that the run ended
/// cleanly: a failure status it documents, nothing left over. What the run counted and failed is
/// read when it returns, before another run can begin.
pub fn sweep(mut scenario: impl FnMut(Option<u64>)) -> Sweep {
    let mut sweep = Sweep::default();
    let mut run = |fail_at: Option<u64>, sweep: &mut Sweep| -> u64 {
        let mut outcome_of = || catch_unwind(AssertUnwindSafe(|| scenario(fail_at)));
        let outcome = outcome_of();
        let (counted, failed) = LAST_RUN.with(Cell::get);
        if let Err(panic) = outcome {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|text| (*text).to_owned()))
                .unwrap_or_else(|| "a panic without a message".to_owned());
            if what.contains("KeBugCheckEx") {
                sweep.bug_checks += 1;
            }
            sweep.defects.push(Defect { failed, what });
        }
        counted
    };
    sweep.allocations = run(None, &mut sweep);
    for k in 1..=sweep.allocations {
        run(Some(k), &mut sweep);
        sweep.failed_runs += 1;
    }
    sweep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_planned_allocation_and_only_it_fails_and_a_sweep_counts_and_catches() {
        let run = crate::begin();
        plan(Some(2));
        assert!(!fail_allocation(AllocationKind::Pool));
        assert!(fail_allocation(AllocationKind::Nbl));
        assert!(!fail_allocation(AllocationKind::Mdl));
        assert_eq!((allocations(), failed_allocation()), (3, Some((2, AllocationKind::Nbl))));
        drop(run);

        let sweep = sweep(|fail_at| {
            let _run = crate::begin();
            plan(fail_at);
            let first = fail_allocation(AllocationKind::Pool);
            let second = fail_allocation(AllocationKind::OidClone);
            assert!(!second || first, "the second allocation's failure is not handled");
        });
        assert_eq!((sweep.allocations, sweep.failed_runs, sweep.bug_checks), (2, 2, 0));
        assert_eq!(sweep.defects.len(), 1, "{:?}", sweep.defects);
        assert_eq!(sweep.defects[0].failed, Some((2, AllocationKind::OidClone)));
        assert!(!sweep.is_clean());
    }
}
