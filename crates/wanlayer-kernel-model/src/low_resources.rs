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

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, MutexGuard};

/// `STATUS_INSUFFICIENT_RESOURCES` / `NDIS_STATUS_RESOURCES`: the failure a refused allocation
/// documents.
pub const RESOURCES: u32 = 0xC000_009A;

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
    /// The failure statuses driver routines returned after the failed allocation, with where.
    returned: Vec<(u32, String)>,
    /// What [`finish`](crate::finish) found after the generic teardown of a run that panicked.
    left_after_teardown: Option<Vec<String>>,
    /// Kinds whose next allocation fails ([`fail_next_of_kind`]), each once.
    fail_next: Vec<AllocationKind>,
    /// Allocations failed in this run (by the plan or aimed at a kind).
    failures: u64,
    /// Allocations counted when the run's first `DriverEntry` returned.
    counted_in_driver_entry: Option<u64>,
}

const FRESH: Injector = Injector {
    fail_at: None,
    counted: 0,
    failed: None,
    returned: Vec::new(),
    left_after_teardown: None,
    fail_next: Vec::new(),
    failures: 0,
    counted_in_driver_entry: None,
};

static INJECTOR: Mutex<Injector> = Mutex::new(FRESH);

/// The plan every run begun from now on takes ([`plan_every_run`]).
static STANDING_PLAN: Mutex<Option<u64>> = Mutex::new(None);

/// The generic teardown of a run that panicked ([`set_teardown`]).
static TEARDOWN: Mutex<Option<fn()>> = Mutex::new(None);

/// Names of driver routines the model cannot name from its own tables (`DriverEntry`).
static ROUTINE_NAMES: Mutex<Vec<(usize, &'static str)>> = Mutex::new(Vec::new());

/// What one run counted, failed, saw returned and left after a teardown.
#[derive(Clone, Debug, Default)]
pub struct RunRecord {
    /// Allocations counted.
    pub counted: u64,
    /// The allocation failed, as (index, kind).
    pub failed: Option<(u64, AllocationKind)>,
    /// The failure statuses driver routines returned after it, with the routine's name.
    pub returned: Vec<(u32, String)>,
    /// What `finish` found after the teardown of a run that panicked.
    pub left_after_teardown: Option<Vec<String>>,
    /// Allocations counted when the run's first `DriverEntry` returned (`None`: it did not
    /// return): the run's allocations `1..=n` are `DriverEntry`'s.
    pub counted_in_driver_entry: Option<u64>,
}

/// How a run of a sweep ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It passed.
    Passed,
    /// A check failed after a routine returned [`RESOURCES`], and the teardown left nothing.
    DocumentedStop,
    /// The model's `KeBugCheckEx`.
    BugCheck(String),
    /// Anything else: a check failed with no documented status, or something left (a leak).
    Defect(String),
}

/// Judges a run from its record and its panic's message (`None`: it passed): see [`sweep`].
pub fn judge(record: &RunRecord, panic: Option<&str>) -> Verdict {
    let Some(what) = panic else { return Verdict::Passed };
    let Some(left) = record.left_after_teardown.clone() else {
        return Verdict::Defect(format!("not torn down (it stopped inside a call into the driver, or no teardown is set): {what}"));
    };
    if what.contains("KeBugCheckEx") {
        Verdict::BugCheck(what.to_owned())
    } else if record.failed.is_none() {
        Verdict::Defect(format!("failed with no allocation failed: {what}"))
    } else if !record.returned.iter().any(|&(status, _)| status == RESOURCES) {
        Verdict::Defect(format!("a check failed with no routine having returned {RESOURCES:#x}: {what}"))
    } else if !left.is_empty() {
        Verdict::Defect(format!("leak: after the documented failure and the teardown, left: {}", left.join("; ")))
    } else {
        Verdict::DocumentedStop
    }
}

/// The record of the run under way (for a panic hook, where the run cannot end by unwinding).
pub fn current_run() -> RunRecord {
    let injector = injector();
    RunRecord {
        counted: injector.counted,
        failed: injector.failed,
        returned: injector.returned.clone(),
        left_after_teardown: injector.left_after_teardown.clone(),
        counted_in_driver_entry: injector.counted_in_driver_entry,
    }
}

/// The record of the last run this thread ended; forgets it.
pub fn last_run() -> RunRecord {
    LAST_RUN.with(|last| last.take())
}

thread_local! {
    /// What the last run this thread ended counted and failed (saved when its `Run` drops, so a
    /// run another test begins at once cannot reset it before the sweep reads it).
    static LAST_RUN: RefCell<RunRecord> = RefCell::new(RunRecord::default());
}

fn lock<T>(mutex: &'static Mutex<T>) -> MutexGuard<'static, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn injector() -> MutexGuard<'static, Injector> {
    lock(&INJECTOR)
}

/// A run ends (its `Run` drops, still holding the model): keeps its figures for this thread.
pub(crate) fn end_run() {
    let mut injector = injector();
    let record = RunRecord {
        counted: injector.counted,
        failed: injector.failed,
        returned: std::mem::take(&mut injector.returned),
        left_after_teardown: injector.left_after_teardown.take(),
        counted_in_driver_entry: injector.counted_in_driver_entry,
    };
    LAST_RUN.with(|last| *last.borrow_mut() = record);
}

/// A new run begins ([`begin`](crate::begin)): nothing counted; the standing plan, if any.
pub(crate) fn reset() {
    let standing = *lock(&STANDING_PLAN);
    *injector() = Injector { fail_at: standing, ..FRESH };
    *lock(&REFUSALS) = Refusals { tags: Vec::new(), refused: 0 };
}

/// In this run, fail its `fail_at`-th allocation counted from the run's beginning (1-based);
/// `None`: fail none, count only. Called after [`begin`](crate::begin).
pub fn plan(fail_at: Option<u64>) {
    injector().fail_at = fail_at;
}

/// Every run begun from now on fails its `fail_at`-th allocation (`None`: none), until set again:
/// how a sweep reaches a scenario that begins its own run and knows nothing of the sweep.
pub fn plan_every_run(fail_at: Option<u64>) {
    *lock(&STANDING_PLAN) = fail_at;
}

/// The plan every run begun from now on takes ([`plan_every_run`]).
pub fn every_run_plan() -> Option<u64> {
    *lock(&STANDING_PLAN)
}

/// The generic teardown a run that panics runs before it ends (`None`: none): it completes or
/// cancels what is pending and unloads what is loaded, with what the model knows; then the run's
/// [`finish`](crate::finish) is kept for the sweep. It must not panic (it runs while unwinding).
pub fn set_teardown(teardown: Option<fn()>) {
    *lock(&TEARDOWN) = teardown;
}

/// Names the driver routine at `address` in the failures the sweep records (`DriverEntry`).
pub fn name_routine(address: usize, name: &'static str) {
    let mut names = lock(&ROUTINE_NAMES);
    names.retain(|&(known, _)| known != address);
    names.push((address, name));
}

/// A run panics ([`Run`](crate::Run) drops while unwinding, or a panic hook where panics abort):
/// the teardown, then what is left (kept in the run's record).
pub fn tear_down_after_panic() {
    let Some(teardown) = *lock(&TEARDOWN) else {
        return;
    };
    teardown();
    let left = crate::finish();
    injector().left_after_teardown = Some(left);
}

/// A driver routine at `address` returned `status` (every 4-byte return of
/// [`invoke::call`](crate::invoke::call)): an error status after the failed allocation is recorded
/// with the routine's name.
pub(crate) fn driver_returned(address: usize, status: u32) {
    if injector().counted_in_driver_entry.is_none()
        && lock(&ROUTINE_NAMES).iter().any(|&(known, name)| known == address && name == "DriverEntry")
    {
        let mut injector = injector();
        injector.counted_in_driver_entry = Some(injector.counted);
    }
    if status & 0xC000_0000 != 0xC000_0000 || injector().failed.is_none() {
        return;
    }
    let routine = routine_name(address);
    injector().returned.push((status, routine));
}

/// The driver logged `line` (`DbgPrintEx`): after the failed allocation, a line that reports it
/// ("no memory", or the status in hex) is recorded as the documented failure, surfaced in the log.
pub(crate) fn driver_logged(line: &str) {
    let reports = line.contains("no memory") || line.to_ascii_uppercase().contains("0XC000009A");
    let mut injector = injector();
    if reports && injector.failed.is_some() {
        injector.returned.push((RESOURCES, format!("the log ({})", line.replace([';', '\t'], ","))));
    }
}

/// The driver completed a packet with `status` where `surfaced`: after the failed allocation, a
/// failure status is recorded (a packet the driver could not keep, completed with
/// `NDIS_STATUS_RESOURCES`).
pub(crate) fn driver_completed(status: u32, surfaced: &str) {
    let mut injector = injector();
    if status & 0xC000_0000 == 0xC000_0000 && injector.failed.is_some() {
        injector.returned.push((status, surfaced.to_owned()));
    }
}

fn routine_name(address: usize) -> String {
    if let Some(&(_, name)) = lock(&ROUTINE_NAMES).iter().find(|&&(known, _)| known == address) {
        return name.to_owned();
    }
    if let Some(handlers) = crate::characteristics() {
        let named = [
            (handlers.attach.map(|handler| handler as usize), "FilterAttach"),
            (handlers.restart.map(|handler| handler as usize), "FilterRestart"),
            (handlers.pause.map(|handler| handler as usize), "FilterPause"),
            (handlers.oid_request.map(|handler| handler as usize), "FilterOidRequest"),
            (handlers.set_options.map(|handler| handler as usize), "FilterSetOptions"),
        ];
        if let Some((_, name)) = named.iter().find(|(handler, _)| *handler == Some(address)) {
            return (*name).to_owned();
        }
    }
    if let Some(device) = crate::control_device() {
        if let Some(major) = device.dispatch.iter().position(|routine| routine.map(|routine| routine as usize) == Some(address)) {
            return match major {
                0 => "IRP_MJ_CREATE".to_owned(),
                2 => "IRP_MJ_CLOSE".to_owned(),
                14 => "IRP_MJ_DEVICE_CONTROL".to_owned(),
                15 => "IRP_MJ_INTERNAL_DEVICE_CONTROL".to_owned(),
                18 => "IRP_MJ_CLEANUP".to_owned(),
                major => format!("dispatch routine {major}"),
            };
        }
    }
    format!("the routine at {address:#x}")
}

/// Allocations the driver asked for in this run so far (the failed one included).
pub fn allocations() -> u64 {
    injector().counted
}

/// The allocation this run failed, as (index, kind), once it happened.
pub fn failed_allocation() -> Option<(u64, AllocationKind)> {
    injector().failed
}

/// In this run, fail the next allocation of `kind` (once; several calls aim at several
/// allocations), besides the plan's: how a randomized schedule injects a failure where it wants
/// one (an NBL pool, an NBL, an MDL, pool, an OID clone).
pub fn fail_next_of_kind(kind: AllocationKind) {
    injector().fail_next.push(kind);
}

/// Fails nothing more in this run: no plan, no failure aimed at a kind.
pub fn heal() {
    let mut injector = injector();
    injector.fail_at = None;
    injector.fail_next.clear();
}

/// Allocations failed in this run so far (by the plan or aimed at a kind).
pub fn failures() -> u64 {
    injector().failures
}

/// Counts an allocation of `kind` and says whether to fail it (the plan's, or one aimed at its
/// kind). Every allocating import of the model calls it first; so does any import an emulator
/// serves itself. [`failed_allocation`] keeps the run's first failure.
pub fn fail_allocation(kind: AllocationKind) -> bool {
    let mut injector = injector();
    injector.counted += 1;
    let planned = injector.fail_at == Some(injector.counted);
    let aimed = injector.fail_next.iter().position(|aimed| *aimed == kind).map(|at| injector.fail_next.remove(at)).is_some();
    let fail = planned || aimed;
    if fail {
        injector.failures += 1;
        if injector.failed.is_none() {
            injector.failed = Some((injector.counted, kind));
        }
    }
    fail
}

/// Pool tags refused in this run ([`refuse_pool_tag`]) and how many allocations that refused.
struct Refusals {
    tags: Vec<u32>,
    refused: u64,
}

static REFUSALS: Mutex<Refusals> = Mutex::new(Refusals { tags: Vec::new(), refused: 0 });

/// In this run, from now on, fails every pool allocation tagged `tag` (until [`allow_pool_tag`]),
/// besides the plan's: Driver Verifier's low-resources simulation aimed at one kind of memory the
/// driver keeps apart by its tag (its Rust heap, its frames), for as long as a scenario wants.
pub fn refuse_pool_tag(tag: u32) {
    let mut refusals = lock(&REFUSALS);
    if !refusals.tags.contains(&tag) {
        refusals.tags.push(tag);
    }
}

/// Ends [`refuse_pool_tag`] for `tag`.
pub fn allow_pool_tag(tag: u32) {
    lock(&REFUSALS).tags.retain(|&refused| refused != tag);
}

/// Pool allocations failed in this run because their tag was refused ([`refuse_pool_tag`]).
pub fn refused_by_tag() -> u64 {
    lock(&REFUSALS).refused
}

/// [`fail_allocation`] for a pool block tagged `tag` (`ExAllocatePool2`): counted as every
/// allocation is, failed by the plan, by a failure aimed at its kind, or because `tag` is refused.
pub fn fail_pool_allocation(tag: u32) -> bool {
    let failed = fail_allocation(AllocationKind::Pool);
    let mut refusals = lock(&REFUSALS);
    let refused = refusals.tags.contains(&tag);
    refusals.refused += u64::from(refused && !failed);
    failed || refused
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
    /// Runs whose teardown left something (`finish` not empty after it).
    pub leaks: u64,
    /// Runs that stopped at a step the driver failed with the documented status (the scenario's
    /// check of that step failed; the teardown then left nothing).
    pub documented_stops: u64,
    /// The failure statuses driver routines returned after the failed allocation, counted by
    /// `"<status> at <routine>"`, over every run.
    pub statuses: BTreeMap<String, u64>,
    /// Runs that failed otherwise: a leak, a rule broken, a check failed with no documented
    /// status returned.
    pub defects: Vec<Defect>,
}

impl Sweep {
    /// True when every run ended cleanly.
    pub fn is_clean(&self) -> bool {
        self.bug_checks == 0 && self.defects.is_empty()
    }

    /// Adds `other`'s figures to this one's.
    pub fn add(&mut self, other: Sweep) {
        self.allocations += other.allocations;
        self.failed_runs += other.failed_runs;
        self.bug_checks += other.bug_checks;
        self.leaks += other.leaks;
        self.documented_stops += other.documented_stops;
        for (status, count) in other.statuses {
            *self.statuses.entry(status).or_default() += count;
        }
        self.defects.extend(other.defects);
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|text| (*text).to_owned()))
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// Runs `scenario` once counting its allocations, then once per allocation failing that one.
/// `scenario(fail_at)` begins its own model run ([`begin`](crate::begin)) and has it fail
/// allocation `fail_at` ([`plan`] after `begin`, or [`plan_every_run`] before), drives the driver,
/// and checks (by panicking) that the run ended cleanly. A run that panics is judged exactly:
///
/// * a bug check (the model's `KeBugCheckEx`), or a panic in the counting run: a defect;
/// * after the failed allocation, a check that failed with no driver routine having returned
///   [`RESOURCES`] since (a packet lost, completed twice, a state changed): a defect;
/// * a check that failed after a routine returned [`RESOURCES`] (or the driver's log reported the
///   failure: "no memory", or the status): the documented failure, provided
///   the generic teardown ([`set_teardown`]) then left nothing (else a leak, a defect).
///
/// Every failure status a routine returned after the failed allocation is counted by status and
/// routine ([`Sweep::statuses`]).
pub fn sweep(scenario: impl FnMut(Option<u64>)) -> Sweep {
    sweep_bounded(None, scenario)
}

/// [`sweep`], failing at most `limit` of the `N` allocations (`None`: all): allocations
/// `1, 1 + s, 1 + 2s, ...` with the stride `s = ceil(N / limit)`, so a bounded sweep still reaches
/// every phase of the scenario (`DriverEntry`'s allocations, the attach's, the data path's).
pub fn sweep_bounded(limit: Option<u64>, mut scenario: impl FnMut(Option<u64>)) -> Sweep {
    let mut sweep = Sweep::default();
    let mut run = |fail_at: Option<u64>, sweep: &mut Sweep| -> u64 {
        let mut outcome_of = || catch_unwind(AssertUnwindSafe(|| scenario(fail_at)));
        let outcome = outcome_of();
        let record = LAST_RUN.with(|last| last.take());
        for (status, routine) in &record.returned {
            *sweep.statuses.entry(format!("{status:#010x} at {routine}")).or_default() += 1;
        }
        let what = outcome.err().map(|panic| panic_text(&*panic));
        if record.left_after_teardown.as_ref().is_some_and(|left| !left.is_empty()) {
            sweep.leaks += 1;
        }
        match judge(&record, what.as_deref()) {
            Verdict::Passed => {}
            Verdict::DocumentedStop => sweep.documented_stops += 1,
            Verdict::BugCheck(what) => {
                sweep.bug_checks += 1;
                sweep.defects.push(Defect { failed: record.failed, what });
            }
            Verdict::Defect(what) => sweep.defects.push(Defect { failed: record.failed, what }),
        }
        record.counted
    };
    sweep.allocations = run(None, &mut sweep);
    let stride = match limit {
        Some(limit) if limit > 0 => sweep.allocations.div_ceil(limit).max(1),
        _ => 1,
    };
    for k in (1..=sweep.allocations).step_by(usize::try_from(stride).unwrap_or(usize::MAX)) {
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
        fail_next_of_kind(AllocationKind::Mdl);
        fail_next_of_kind(AllocationKind::Mdl);
        assert!(!fail_allocation(AllocationKind::Nbl), "aimed at another kind");
        assert!(fail_allocation(AllocationKind::Mdl) && fail_allocation(AllocationKind::Mdl), "each aimed failure once");
        assert!(!fail_allocation(AllocationKind::Mdl));
        fail_next_of_kind(AllocationKind::Pool);
        plan(Some(allocations() + 2));
        heal();
        assert!(!fail_allocation(AllocationKind::Pool) && !fail_allocation(AllocationKind::Pool), "healed");
        assert_eq!((failures(), failed_allocation()), (3, Some((2, AllocationKind::Nbl))), "the first failure kept");
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

    #[test]
    fn a_failed_check_passes_only_with_the_documented_status_and_nothing_left_after_the_teardown() {
        let failed = Some((3, AllocationKind::Pool));
        let documented = vec![(RESOURCES, "FilterAttach".to_owned())];
        let record = |failed, returned: Vec<(u32, String)>, left: Option<Vec<String>>| RunRecord {
            counted: 5,
            failed,
            returned,
            left_after_teardown: left,
            counted_in_driver_entry: None,
        };
        assert_eq!(judge(&record(failed, Vec::new(), None), None), Verdict::Passed);
        assert_eq!(judge(&record(failed, documented.clone(), Some(Vec::new())), Some("check")), Verdict::DocumentedStop);
        let no_status = judge(&record(failed, vec![(0xC000_0001, "FilterAttach".to_owned())], Some(Vec::new())), Some("lost"));
        assert!(matches!(no_status, Verdict::Defect(what) if what.contains("no routine having returned")));
        let leak = judge(&record(failed, documented.clone(), Some(vec!["pool block".to_owned()])), Some("check"));
        assert!(matches!(leak, Verdict::Defect(what) if what.starts_with("leak")));
        let not_torn_down = judge(&record(failed, documented.clone(), None), Some("check"));
        assert!(matches!(not_torn_down, Verdict::Defect(what) if what.contains("not torn down")));
        let counting = judge(&record(None, Vec::new(), Some(Vec::new())), Some("check"));
        assert!(matches!(counting, Verdict::Defect(what) if what.contains("no allocation failed")));
        let bug_check = judge(&record(failed, documented, Some(Vec::new())), Some("KeBugCheckEx(0x1E)"));
        assert!(matches!(bug_check, Verdict::BugCheck(_)));
    }
}
