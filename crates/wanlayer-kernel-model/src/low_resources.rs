//! Driver Verifier's low-resources simulation, made exhaustive: every allocation the driver asks
//! the kernel for — pool (`ExAllocatePool2`), NBL pools, NBLs, MDLs, OID clones — is counted, and a
//! run can be told to fail exactly its k-th one.
//!
//! [`sweep`] is the whole method: it runs a scenario once to count its `N` allocations, then `N`
//! more times, failing allocation `k` (`k = 1..=N`) in run `k`. The scenario itself checks that
//! each run ended cleanly (a documented failure status, [`finish`](crate::finish) empty); a bug
//! check (the model's `KeBugCheckEx` panics) or a failed check is caught and reported with the
//! run's `k` and the allocation it failed, so a sweep never stops at its first defect.
//!
//! The counter and the plan are independent of how the driver is run: the emulator of the real
//! images binds their imports to the same model functions, so [`plan`], [`allocations`] and
//! [`failed_allocation`] (and [`sweep`] around its own scenarios) serve it unchanged; an import it
//! serves itself calls [`fail_allocation`].

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

fn injector() -> MutexGuard<'static, Injector> {
    INJECTOR.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A new run begins ([`begin`](crate::begin)): the count starts again; the plan stays.
pub(crate) fn reset() {
    let mut injector = injector();
    injector.counted = 0;
    injector.failed = None;
}

/// From the next run on, fail its `fail_at`-th allocation (1-based); `None`: fail none, count only.
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
/// `scenario` begins its own model run ([`begin`](crate::begin)), drives the driver, and checks
/// (by panicking) that the run ended cleanly: a failure status it documents, nothing left over.
pub fn sweep(mut scenario: impl FnMut()) -> Sweep {
    let mut sweep = Sweep::default();
    let mut run = |fail_at: Option<u64>, sweep: &mut Sweep| -> u64 {
        plan(fail_at);
        let outcome = catch_unwind(AssertUnwindSafe(&mut scenario));
        plan(None);
        let failed = failed_allocation();
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
        allocations()
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
        let _run = crate::begin();
        plan(Some(2));
        assert!(!fail_allocation(AllocationKind::Pool));
        assert!(fail_allocation(AllocationKind::Nbl));
        assert!(!fail_allocation(AllocationKind::Mdl));
        assert_eq!((allocations(), failed_allocation()), (3, Some((2, AllocationKind::Nbl))));
        plan(None);
        drop(_run);

        let sweep = sweep(|| {
            let _run = crate::begin();
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
