//! Every rule of the simulator's verifier, proven live, each once: [`proof`] is an exhaustive
//! `match` over [`Rule`], so a new rule does not compile until it has a proof, and [`next_rule`]
//! (exhaustive too) checks that `Rule::ALL` lists every rule in order.
//!
//! A rule is proven on the driver's code path where that path can break it: one deliberately broken
//! handler — `extern "system"` code calling the NDIS and kernel imports through `wanlayer-ndis`,
//! around or instead of wanlayer.sys's own — in the driver's place
//! ([`DriverFilter::with_handlers`]), and the mistake, made through the real imports, is caught by
//! the kernel model or by the translation's checked services and reaches the simulator's verifier
//! as exactly that rule. The same scenario with the driver's handlers unchanged runs clean.
//!
//! The other rules are proven with the one simulator-level filter besides the driver's handlers:
//! the deliberately broken pass-through filter of `crates/wanlayer-sim/tests/common` (its
//! [`Fault`]s), whose correct form and the driver's handlers run the same scenario clean. Every
//! proof runs through the one scenario runner of that module ([`run`]). Why these rules have no
//! proof on the driver's code path:
//!
//! * `DoubleComplete`: the translation hands a completed NBL's packet to the simulator and frees
//!   its carrier at once, as the protocol may free its NBL; completing it again would read freed
//!   memory in the test itself (the mistake is a use after free before it is a double completion).
//!   The translation reports `DoubleComplete` for an NBL passed on that it does not hold.
//! * `UseAfterHandOff`: the driver reads frame bytes from NBL memory directly; nothing in the model
//!   watches a read after `NdisFSendNetBufferLists` (Miri and the emulator's special pool do, for
//!   freed memory only).
//! * `OriginateWhilePausing`: a broken handler would originate an NBL of its own during a pause;
//!   the translation reads a driver NBL's frame through the driver's own frame layout, so it
//!   would have to be built as the driver builds its copies. Not written.
//! * `PauseCompleteWithOutstanding`, `LeakAtDetach`, `QuiesceNeverEnds`, `NdisTimedOidComplete`:
//!   a broken handler keeping the protocol's NBLs or OID requests across calls (in test memory,
//!   handed back at teardown so the test itself leaks nothing). Not written.
//! * `NdisOidDoubleRequest`: forwarding the protocol's original instead of a clone is seen by the
//!   kernel model, but the driver's own `OidRequestComplete` behind the broken handler would then
//!   be given a request it did not clone. Not written.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::cell::Cell;
use std::ffi::c_void;
use std::ptr;

use wanlayer_ndis::imports;
use wanlayer_ndis::kernel::{KEvent, EXECUTIVE, KERNEL_MODE, NOTIFICATION_EVENT, POOL_FLAG_NON_PAGED};
use wanlayer_ndis::lightweight_filter::{
    FilterDriverCharacteristics, FilterPauseParameters, FilterRestartParameters, ReceiveFlags, ReturnFlags, SendCompleteFlags, SendFlags,
    StatusIndication,
};
use wanlayer_ndis::nbl::NetBufferList;
use wanlayer_ndis::oid::NdisOidRequest;
use wanlayer_ndis::types::{ContextHandle, FilterModuleHandle, PortNumber, RawNdisStatus};
use wanlayer_ndis::wan::{WanLineUp, NDIS_STATUS_WAN_LINE_UP};
use common::{run, Broken, Fault, Scenario};
use wanlayer_sim::Rule;
use wanlayer_sim_driver::DriverFilter;

/// `NDIS_STATUS_SUCCESS`.
const SUCCESS: RawNdisStatus = 0;
/// `NDIS_STATUS_PENDING`.
const PENDING: RawNdisStatus = 0x0000_0103;
/// `NDIS_STATUS_FAILURE`.
const FAILURE: RawNdisStatus = 0xC000_0001;
/// The tag of the pool a broken handler allocates: "WLbk".
const BROKEN_TAG: u32 = u32::from_le_bytes(*b"WLbk");

thread_local! {
    /// The driver's own handlers, kept by [`keep_real`] when a proof replaces some (each test runs
    /// on its own thread, and every call into the driver on the test's).
    static REAL: Cell<Option<FilterDriverCharacteristics>> = const { Cell::new(None) };
    /// A broken handler made its one mistake already.
    static DONE: Cell<bool> = const { Cell::new(false) };
    /// The pool block a broken handler leaked, freed by the proof once the leak is reported.
    static LEAKED: Cell<*mut c_void> = const { Cell::new(ptr::null_mut()) };
}

fn keep_real(handlers: &FilterDriverCharacteristics) {
    REAL.with(|real| real.set(Some(*handlers)));
    DONE.with(|done| done.set(false));
}

fn real() -> FilterDriverCharacteristics {
    REAL.with(Cell::get).expect("kept when the handlers were edited")
}

/// True the first time only: a broken handler that makes its mistake once.
fn first_time() -> bool {
    !DONE.with(|done| done.replace(true))
}

/// The NDIS handle of the module whose context the driver gave `NdisFSetAttributes`.
fn filter_of(context: ContextHandle) -> FilterModuleHandle {
    // SAFETY: NDIS passes a handler the context the driver set: an entry of its module table.
    unsafe { wanlayer::modules::module_entry(context) }.handles().filter
}

/// The send's IRQL, said the way a send completion says it.
fn completion_flags(flags: SendFlags) -> SendCompleteFlags {
    if flags.at_dispatch() {
        SendCompleteFlags::DISPATCH_LEVEL
    } else {
        SendCompleteFlags(0)
    }
}

// ----- broken handlers ---------------------------------------------------------------------------

/// Passes sends straight down claiming `DISPATCH_LEVEL` whatever the IRQL (the simulator's
/// `ClaimDispatchAlways`).
unsafe extern "system" fn send_claiming_dispatch(context: ContextHandle, nbls: *mut NetBufferList, port: PortNumber, _flags: SendFlags) {
    // SAFETY: the protocol's chain, passed on as NDIS lets a filter pass it on.
    unsafe { imports::NdisFSendNetBufferLists(filter_of(context), nbls, port, SendFlags::DISPATCH_LEVEL) };
}

/// Passes sends straight down, paused or not (the simulator's data path while paused).
unsafe extern "system" fn send_passed_down_even_when_paused(
    context: ContextHandle,
    nbls: *mut NetBufferList,
    port: PortNumber,
    flags: SendFlags,
) {
    // SAFETY: the protocol's chain, passed on with the flags it came with.
    unsafe { imports::NdisFSendNetBufferLists(filter_of(context), nbls, port, flags) };
}

/// Passes sends down naming a filter handle NDIS never gave (the simulator's `WrongModuleHandle`).
unsafe extern "system" fn send_with_a_wrong_handle(_context: ContextHandle, nbls: *mut NetBufferList, port: PortNumber, flags: SendFlags) {
    let wrong = FilterModuleHandle::from_raw(ptr::without_provenance_mut(0x5157_0000));
    // SAFETY: the protocol's chain, passed on under a handle of no module (the mistake).
    unsafe { imports::NdisFSendNetBufferLists(wrong, nbls, port, flags) };
}

/// Completes what went straight down, up to the protocol, with the flags it was given.
unsafe extern "system" fn send_complete_passing_up(context: ContextHandle, nbls: *mut NetBufferList, flags: SendCompleteFlags) {
    // SAFETY: the miniport's completion of the protocol's chain, passed up.
    unsafe { imports::NdisFSendNetBufferListsComplete(filter_of(context), nbls, flags) };
}

/// Waits on an event in the send path, at whatever IRQL the send came (the simulator's
/// `WaitInSendPath`), then sends as the driver does.
unsafe extern "system" fn send_after_waiting(context: ContextHandle, nbls: *mut NetBufferList, port: PortNumber, flags: SendFlags) {
    if flags.at_dispatch() {
        let event = Box::new(KEvent::new());
        let event = Box::into_raw(event);
        // SAFETY: an event in memory that outlives the wait; signalled, so the wait returns.
        unsafe { imports::KeInitializeEvent(event, NOTIFICATION_EVENT, 1) };
        // SAFETY: as above; no timeout.
        unsafe { imports::KeWaitForSingleObject(event.cast::<c_void>(), EXECUTIVE, KERNEL_MODE, 0, ptr::null_mut()) };
        // SAFETY: allocated above, freed once.
        drop(unsafe { Box::from_raw(event) });
    }
    let send = real().send_net_buffer_lists.expect("the driver's send handler");
    // SAFETY: the call NDIS made, handed on unchanged.
    unsafe { send(context, nbls, port, flags) };
}

/// The one spin lock a broken handler keeps.
static mut KEPT_LOCK: usize = 0;

/// Sends as the driver does, then (once) acquires a spin lock and returns holding it.
unsafe extern "system" fn send_returning_with_a_lock_held(
    context: ContextHandle,
    nbls: *mut NetBufferList,
    port: PortNumber,
    flags: SendFlags,
) {
    let send = real().send_net_buffer_lists.expect("the driver's send handler");
    // SAFETY: the call NDIS made, handed on unchanged.
    unsafe { send(context, nbls, port, flags) };
    if !flags.at_dispatch() && first_time() {
        let lock = &raw mut KEPT_LOCK;
        // SAFETY: a spin lock in static memory, acquired once and never released (the mistake).
        unsafe { imports::KeAcquireSpinLockRaiseToDpc(lock) };
    }
}

/// Gives the protocol's sends back to the miniport (`NdisFReturnNetBufferLists`), the simulator's
/// `ReturnSendsToMiniport`.
unsafe extern "system" fn send_returned_to_the_miniport(
    context: ContextHandle,
    nbls: *mut NetBufferList,
    _port: PortNumber,
    flags: SendFlags,
) {
    let flags = if flags.at_dispatch() { ReturnFlags::DISPATCH_LEVEL } else { ReturnFlags(0) };
    // SAFETY: the protocol's chain, handed to the wrong owner (the mistake).
    unsafe { imports::NdisFReturnNetBufferLists(filter_of(context), nbls, flags) };
}

/// Frees the protocol's NBLs (`NdisFreeNetBufferList`, which the model refuses), then completes
/// them as if nothing happened: the simulator's `FreeProtocolPackets`.
unsafe extern "system" fn send_freeing_the_protocols_nbls(
    context: ContextHandle,
    nbls: *mut NetBufferList,
    _port: PortNumber,
    flags: SendFlags,
) {
    let mut next = nbls;
    while !next.is_null() {
        // SAFETY: a member of the protocol's chain, valid for the call.
        let following = unsafe { (*next).next };
        // SAFETY: an NBL the driver does not own (the mistake; the model refuses and keeps it).
        unsafe { imports::NdisFreeNetBufferList(next) };
        next = following;
    }
    // SAFETY: the protocol's chain, completed back to it.
    unsafe { imports::NdisFSendNetBufferListsComplete(filter_of(context), nbls, completion_flags(flags)) };
}

/// Completes an OID request the handler does not pend, and also returns its status: the request
/// completed twice (the simulator's `OidDoubleComplete`).
unsafe extern "system" fn oid_request_completed_and_returned(context: ContextHandle, request: *mut NdisOidRequest) -> RawNdisStatus {
    // SAFETY: the protocol's request, completed although the handler does not return PENDING.
    unsafe { imports::NdisFOidRequestComplete(filter_of(context), request, SUCCESS) };
    SUCCESS
}

/// Restarts as the driver does, allocating a pool block it never frees (the simulator's `LeakPool`).
unsafe extern "system" fn restart_leaking_pool(context: ContextHandle, parameters: *mut FilterRestartParameters) -> RawNdisStatus {
    if first_time() {
        // SAFETY: any size, a tag of our own; the block is never freed (the mistake).
        let block = unsafe { imports::ExAllocatePool2(POOL_FLAG_NON_PAGED, 64, BROKEN_TAG) };
        assert!(!block.is_null());
        LEAKED.with(|leaked| leaked.set(block));
    }
    let restart = real().restart.expect("the driver's restart handler");
    // SAFETY: the call NDIS made, handed on unchanged.
    unsafe { restart(context, parameters) }
}

/// Restarts as the driver does, freeing a pool block twice (the simulator's `OverReleasePool`).
unsafe extern "system" fn restart_freeing_twice(context: ContextHandle, parameters: *mut FilterRestartParameters) -> RawNdisStatus {
    if first_time() {
        // SAFETY: any size, a tag of our own.
        let block = unsafe { imports::ExAllocatePool2(POOL_FLAG_NON_PAGED, 64, BROKEN_TAG) };
        // SAFETY: the block just allocated, with its tag.
        unsafe { imports::ExFreePoolWithTag(block, BROKEN_TAG) };
        // SAFETY: none: freed again (the mistake; the model refuses and frees nothing).
        unsafe { imports::ExFreePoolWithTag(block, BROKEN_TAG) };
    }
    let restart = real().restart.expect("the driver's restart handler");
    // SAFETY: the call NDIS made, handed on unchanged.
    unsafe { restart(context, parameters) }
}

/// Pauses as the driver does and, when that completed at once, completes the pause again
/// (`NdisFPauseComplete`): the simulator's `PauseCompleteTwice`.
unsafe extern "system" fn pause_completed_twice(context: ContextHandle, parameters: *mut FilterPauseParameters) -> RawNdisStatus {
    let pause = real().pause.expect("the driver's pause handler");
    // SAFETY: the call NDIS made, handed on unchanged.
    let status = unsafe { pause(context, parameters) };
    if status == SUCCESS {
        // SAFETY: the module's handle; a completion of a pause already complete (the mistake).
        unsafe { imports::NdisFPauseComplete(filter_of(context)) };
    }
    status
}

/// Pauses as the driver does, then says the pause failed: the simulator's `PauseFails`.
unsafe extern "system" fn pause_saying_it_failed(context: ContextHandle, parameters: *mut FilterPauseParameters) -> RawNdisStatus {
    let pause = real().pause.expect("the driver's pause handler");
    // SAFETY: the call NDIS made, handed on unchanged.
    let _ = unsafe { pause(context, parameters) };
    FAILURE
}

/// Pauses as the driver does, then says the pause pends, and never completes it: the
/// simulator's `PauseNeverCompletes`.
unsafe extern "system" fn pause_never_completed(context: ContextHandle, parameters: *mut FilterPauseParameters) -> RawNdisStatus {
    let pause = real().pause.expect("the driver's pause handler");
    // SAFETY: the call NDIS made, handed on unchanged.
    let _ = unsafe { pause(context, parameters) };
    PENDING
}

/// Receives as the driver does, then gives a lent chain back cut after its first NBL: the rest
/// kept (the simulator's `KeepLentPackets`).
unsafe extern "system" fn receive_keeping_lent_nbls(
    context: ContextHandle,
    nbls: *mut NetBufferList,
    port: PortNumber,
    count: u32,
    flags: ReceiveFlags,
) {
    let receive = real().receive_net_buffer_lists.expect("the driver's receive handler");
    // SAFETY: the call NDIS made, handed on unchanged.
    unsafe { receive(context, nbls, port, count, flags) };
    if flags.resources() && !nbls.is_null() {
        // SAFETY: the lent chain, given back with the call: its head unlinked from the rest (the
        // mistake).
        unsafe { (*nbls).next = ptr::null_mut() };
    }
}

/// Swallows every status indication: the simulator's `SwallowStatus`.
unsafe extern "system" fn status_swallowed(_context: ContextHandle, _indication: *mut StatusIndication) {}

/// Passes status indications straight up, a line up's `MaximumTotalSize` raised: the
/// simulator's `RaiseLineUpSize`.
unsafe extern "system" fn status_with_the_line_up_size_raised(context: ContextHandle, indication: *mut StatusIndication) {
    // SAFETY: (these three) the indication NDIS passed, valid for the call.
    let code = unsafe { (*indication).status_code };
    // SAFETY: as above.
    let buffer = unsafe { (*indication).status_buffer };
    // SAFETY: as above.
    let size = unsafe { (*indication).status_buffer_size };
    if code == NDIS_STATUS_WAN_LINE_UP && size as usize >= size_of::<WanLineUp>() && !buffer.is_null() {
        let line_up = buffer.cast::<WanLineUp>();
        // SAFETY: NdisWan's line up buffer, at least a WanLineUp long; raised (the mistake).
        unsafe { (*line_up).maximum_total_size += 100 };
    }
    // SAFETY: the indication passed on.
    unsafe { imports::NdisFIndicateStatus(filter_of(context), indication) };
}

// ----- the edits ---------------------------------------------------------------------------------

fn claim_dispatch(handlers: &mut FilterDriverCharacteristics) {
    keep_real(handlers);
    handlers.send_net_buffer_lists = Some(send_claiming_dispatch);
    handlers.send_net_buffer_lists_complete = Some(send_complete_passing_up);
}

fn send_down_while_paused(handlers: &mut FilterDriverCharacteristics) {
    keep_real(handlers);
    handlers.send_net_buffer_lists = Some(send_passed_down_even_when_paused);
    handlers.send_net_buffer_lists_complete = Some(send_complete_passing_up);
}

fn name_a_wrong_handle(handlers: &mut FilterDriverCharacteristics) {
    keep_real(handlers);
    handlers.send_net_buffer_lists = Some(send_with_a_wrong_handle);
}

fn wait_in_send_path(handlers: &mut FilterDriverCharacteristics) {
    keep_real(handlers);
    handlers.send_net_buffer_lists = Some(send_after_waiting);
}

fn return_with_a_lock_held(handlers: &mut FilterDriverCharacteristics) {
    keep_real(handlers);
    handlers.send_net_buffer_lists = Some(send_returning_with_a_lock_held);
}

fn return_sends_to_the_miniport(handlers: &mut FilterDriverCharacteristics) {
    keep_real(handlers);
    handlers.send_net_buffer_lists = Some(send_returned_to_the_miniport);
}

fn free_the_protocols_nbls(handlers: &mut FilterDriverCharacteristics) {
    keep_real(handlers);
    handlers.send_net_buffer_lists = Some(send_freeing_the_protocols_nbls);
}

fn complete_oids_twice(handlers: &mut FilterDriverCharacteristics) {
    keep_real(handlers);
    handlers.oid_request = Some(oid_request_completed_and_returned);
}

fn leak_pool(handlers: &mut FilterDriverCharacteristics) {
    keep_real(handlers);
    handlers.restart = Some(restart_leaking_pool);
}

fn free_pool_twice(handlers: &mut FilterDriverCharacteristics) {
    keep_real(handlers);
    handlers.restart = Some(restart_freeing_twice);
}

fn complete_pauses_twice(handlers: &mut FilterDriverCharacteristics) {
    keep_real(handlers);
    handlers.pause = Some(pause_completed_twice);
}

fn fail_pauses(handlers: &mut FilterDriverCharacteristics) {
    keep_real(handlers);
    handlers.pause = Some(pause_saying_it_failed);
}

fn never_complete_pauses(handlers: &mut FilterDriverCharacteristics) {
    keep_real(handlers);
    handlers.pause = Some(pause_never_completed);
}

fn keep_lent_nbls(handlers: &mut FilterDriverCharacteristics) {
    keep_real(handlers);
    handlers.receive_net_buffer_lists = Some(receive_keeping_lent_nbls);
}

fn swallow_status(handlers: &mut FilterDriverCharacteristics) {
    keep_real(handlers);
    handlers.status = Some(status_swallowed);
}

fn raise_line_up_size(handlers: &mut FilterDriverCharacteristics) {
    keep_real(handlers);
    handlers.status = Some(status_with_the_line_up_size_raised);
}

// ----- proofs ------------------------------------------------------------------------------------

/// One proof of a rule.
enum Proof {
    /// On the driver's code path: `edit` puts broken handlers in the driver's place.
    Driver { edit: fn(&mut FilterDriverCharacteristics), scenario: Scenario },
    /// With the deliberately broken simulator-level filter (`tests/common`), for a rule the driver's
    /// path cannot break here (the module doc says why): its fault, and the other rules that fault
    /// really breaks too, with the reason, so that the rules reported are asserted exactly.
    Broken { fault: Fault, scenario: Scenario, also: &'static [Rule], why_also: &'static str },
}

/// A proof on the driver's code path.
const fn driver(edit: fn(&mut FilterDriverCharacteristics), scenario: Scenario) -> Proof {
    Proof::Driver { edit, scenario }
}

/// A proof with the broken filter whose fault breaks its rule and nothing else.
const fn broken(fault: Fault, scenario: Scenario) -> Proof {
    Proof::Broken { fault, scenario, also: &[], why_also: "" }
}

/// The proof of `rule`. Exhaustive: a new rule does not compile until it has its arm, and a rule
/// proven on the driver's code path is proven there only.
fn proof(rule: Rule) -> Proof {
    use Scenario::*;
    match rule {
        Rule::DoubleComplete => broken(Fault::DoubleCompleteSends, Traffic),
        Rule::WrongOwner => driver(return_sends_to_the_miniport, Traffic),
        Rule::FreeForeignPacket => driver(free_the_protocols_nbls, Traffic),
        Rule::UseAfterHandOff => broken(Fault::ReadAfterSendDown, Traffic),
        Rule::DataPathWhilePaused => driver(send_down_while_paused, SendsWhilePaused),
        Rule::OriginateWhilePausing => broken(Fault::OriginateDuringPause, PauseCycle),
        Rule::DoublePauseComplete => driver(complete_pauses_twice, PauseCycle),
        Rule::PauseCompleteWithOutstanding => Proof::Broken {
            fault: Fault::PauseWhileHolding,
            scenario: PauseCycle,
            also: &[Rule::LeakAtDetach],
            why_also: "the filter keeps the received packets for good: the pause completes while it holds them, and the module \
                       later detaches while it still holds them — two rules, each broken by the packets it really still holds \
                       (the verifier takes nothing away from a filter that has made no hand-off)",
        },
        Rule::PauseFailed => driver(fail_pauses, PauseCycle),
        Rule::NdisFilterTimedPauseComplete => driver(never_complete_pauses, IdlePause),
        Rule::IrqlFilterDriverFunction => driver(wait_in_send_path, Traffic),
        Rule::IrqlSendRcvFunction => driver(claim_dispatch, Traffic),
        Rule::LockHeldAcrossCall => driver(return_with_a_lock_held, Traffic),
        Rule::NdisOidDoubleComplete => driver(complete_oids_twice, Oids),
        // The original passed down is taken out of play: it is not reported again as late or as
        // outstanding at detach.
        Rule::NdisOidDoubleRequest => broken(Fault::ForwardOriginalOid, Oids),
        Rule::NdisTimedOidComplete => Proof::Broken {
            fault: Fault::ForgetOid,
            scenario: Oids,
            also: &[Rule::LeakAtDetach],
            why_also: "the filter never completes the originals it owns: they are late after 12 s, and still outstanding \
                       when the module detaches — two rules, each broken by requests the filter really still owns",
        },
        Rule::LentPacketKept => driver(keep_lent_nbls, Resources),
        Rule::StatusSwallowed => driver(swallow_status, Traffic),
        Rule::LineUpSizeRaised => driver(raise_line_up_size, Traffic),
        Rule::LeakAtDetach => broken(Fault::LeakPacketAtDetach, Lifecycle),
        Rule::PoolLeak => driver(leak_pool, Lifecycle),
        Rule::PoolOverRelease => driver(free_pool_twice, Lifecycle),
        Rule::QuiesceNeverEnds => broken(Fault::WaitForever, PauseCycle),
        Rule::InvalidModuleHandle => driver(name_a_wrong_handle, Traffic),
    }
}

/// The rule declared after `rule`, `None` after the last. Exhaustive, so a new rule must be placed
/// here, and [`rule_all_lists_every_rule_in_declaration_order`] then checks `Rule::ALL` against it.
fn next_rule(rule: Rule) -> Option<Rule> {
    Some(match rule {
        Rule::DoubleComplete => Rule::WrongOwner,
        Rule::WrongOwner => Rule::FreeForeignPacket,
        Rule::FreeForeignPacket => Rule::UseAfterHandOff,
        Rule::UseAfterHandOff => Rule::DataPathWhilePaused,
        Rule::DataPathWhilePaused => Rule::OriginateWhilePausing,
        Rule::OriginateWhilePausing => Rule::DoublePauseComplete,
        Rule::DoublePauseComplete => Rule::PauseCompleteWithOutstanding,
        Rule::PauseCompleteWithOutstanding => Rule::PauseFailed,
        Rule::PauseFailed => Rule::NdisFilterTimedPauseComplete,
        Rule::NdisFilterTimedPauseComplete => Rule::IrqlFilterDriverFunction,
        Rule::IrqlFilterDriverFunction => Rule::IrqlSendRcvFunction,
        Rule::IrqlSendRcvFunction => Rule::LockHeldAcrossCall,
        Rule::LockHeldAcrossCall => Rule::NdisOidDoubleComplete,
        Rule::NdisOidDoubleComplete => Rule::NdisOidDoubleRequest,
        Rule::NdisOidDoubleRequest => Rule::NdisTimedOidComplete,
        Rule::NdisTimedOidComplete => Rule::LentPacketKept,
        Rule::LentPacketKept => Rule::StatusSwallowed,
        Rule::StatusSwallowed => Rule::LineUpSizeRaised,
        Rule::LineUpSizeRaised => Rule::LeakAtDetach,
        Rule::LeakAtDetach => Rule::PoolLeak,
        Rule::PoolLeak => Rule::PoolOverRelease,
        Rule::PoolOverRelease => Rule::QuiesceNeverEnds,
        Rule::QuiesceNeverEnds => Rule::InvalidModuleHandle,
        Rule::InvalidModuleHandle => return None,
    })
}

/// Runs the proof of `rule`: the broken handlers (or the broken filter) make the verifier report
/// exactly `rule` and the rules the proof names as also broken; the driver's own handlers, and the
/// correct filter for a broken-filter proof, run the same scenario clean.
#[track_caller]
fn prove(rule: Rule) {
    match proof(rule) {
        Proof::Driver { edit, scenario } => {
            let broken = run(DriverFilter::new().with_handlers(edit), scenario);
            assert_eq!(broken.verifier().rules(), [rule], "{scenario:?}: exactly {rule}; {}", broken.verifier().report());
            let leaked = LEAKED.with(|leaked| leaked.replace(ptr::null_mut()));
            if !leaked.is_null() {
                // SAFETY: the block `restart_leaking_pool` allocated and nothing freed, the model's
                // run still held: freed once, after the proof, so that the test process leaks nothing.
                unsafe { imports::ExFreePoolWithTag(leaked, BROKEN_TAG) };
            }
            drop(broken);
            run(DriverFilter::new(), scenario).verifier().assert_clean();
        }
        Proof::Broken { fault, scenario, also, why_also } => {
            assert!(also.is_empty() == why_also.is_empty(), "{fault:?}: other rules broken need their reason, and only they");
            assert!(!also.contains(&rule), "{fault:?}: {rule} is the rule proven, not another");
            let mut expected: Vec<Rule> = also.iter().copied().chain([rule]).collect();
            expected.sort();
            let broken = run(Broken::new(fault), scenario);
            assert_eq!(broken.verifier().rules(), expected, "{fault:?} in {scenario:?}: exactly these rules; {}", broken.verifier().report());
            run(Broken::correct(), scenario).verifier().assert_clean();
            run(DriverFilter::new(), scenario).verifier().assert_clean();
        }
    }
}

#[test]
fn irql_send_rcv_function_a_send_claiming_dispatch_level_at_passive() {
    prove(Rule::IrqlSendRcvFunction);
}

#[test]
fn data_path_while_paused_sends_passed_down_while_paused() {
    prove(Rule::DataPathWhilePaused);
}

#[test]
fn invalid_module_handle_sends_passed_down_under_a_handle_ndis_never_gave() {
    prove(Rule::InvalidModuleHandle);
}

#[test]
fn irql_filter_driver_function_a_wait_in_the_send_path_at_dispatch_level() {
    prove(Rule::IrqlFilterDriverFunction);
}

#[test]
fn lock_held_across_call_a_send_handler_returning_with_a_spin_lock_held() {
    prove(Rule::LockHeldAcrossCall);
}

#[test]
fn wrong_owner_sends_returned_to_the_miniport() {
    prove(Rule::WrongOwner);
}

#[test]
fn free_foreign_packet_the_protocols_nbls_freed() {
    prove(Rule::FreeForeignPacket);
}

#[test]
fn ndis_oid_double_complete_a_request_completed_and_returned() {
    prove(Rule::NdisOidDoubleComplete);
}

#[test]
fn ndis_filter_timed_pause_complete_a_pause_that_pends_and_never_completes() {
    prove(Rule::NdisFilterTimedPauseComplete);
}

#[test]
fn lent_packet_kept_a_lent_chain_given_back_cut() {
    prove(Rule::LentPacketKept);
}

#[test]
fn pool_leak_a_block_never_freed() {
    prove(Rule::PoolLeak);
}

#[test]
fn pool_over_release_a_block_freed_twice() {
    prove(Rule::PoolOverRelease);
}

#[test]
fn double_pause_complete_a_pause_completed_after_it_returned_success() {
    prove(Rule::DoublePauseComplete);
}

#[test]
fn pause_failed_a_pause_that_says_it_failed() {
    prove(Rule::PauseFailed);
}

#[test]
fn status_swallowed_indications_never_passed_on() {
    prove(Rule::StatusSwallowed);
}

#[test]
fn line_up_size_raised_on_the_way_up() {
    prove(Rule::LineUpSizeRaised);
}

#[test]
fn double_complete_sends_completed_twice_by_the_broken_filter() {
    prove(Rule::DoubleComplete);
}

#[test]
fn use_after_hand_off_a_packet_read_after_the_broken_filter_sent_it_down() {
    prove(Rule::UseAfterHandOff);
}

#[test]
fn originate_while_pausing_the_broken_filter_sending_its_own_packet_from_its_pause() {
    prove(Rule::OriginateWhilePausing);
}

#[test]
fn pause_complete_with_outstanding_the_broken_filter_pausing_while_it_keeps_receives() {
    prove(Rule::PauseCompleteWithOutstanding);
}

#[test]
fn ndis_oid_double_request_the_broken_filter_passing_the_original_down() {
    prove(Rule::NdisOidDoubleRequest);
}

#[test]
fn ndis_timed_oid_complete_the_broken_filter_forgetting_the_originals() {
    prove(Rule::NdisTimedOidComplete);
}

#[test]
fn leak_at_detach_the_broken_filter_keeping_a_packet_of_its_own_at_detach() {
    prove(Rule::LeakAtDetach);
}

#[test]
fn quiesce_never_ends_the_broken_filter_waiting_at_pause_for_what_never_happens() {
    prove(Rule::QuiesceNeverEnds);
}

#[test]
fn rule_all_lists_every_rule_in_declaration_order() {
    let walked: Vec<Rule> = std::iter::successors(Some(Rule::DoubleComplete), |rule| next_rule(*rule)).collect();
    assert_eq!(walked, Rule::ALL);
}

#[test]
fn every_broken_filter_fault_proves_one_rule_and_every_rule_a_driver_path_cannot_break_here() {
    let mut faults = Vec::new();
    let mut on_the_driver_path = 0;
    for rule in Rule::ALL {
        match proof(rule) {
            Proof::Driver { .. } => on_the_driver_path += 1,
            Proof::Broken { fault, .. } => {
                assert!(!faults.contains(&fault), "{fault:?} proves two rules");
                faults.push(fault);
            }
        }
    }
    assert_eq!((on_the_driver_path, faults.len()), (16, 8), "16 rules proven on the driver's code path, 8 by the broken filter");
}

#[test]
fn the_drivers_handlers_and_the_correct_filter_are_clean_in_every_scenario() {
    for scenario in Scenario::ALL {
        run(Broken::correct(), scenario).verifier().assert_clean();
        run(DriverFilter::new(), scenario).verifier().assert_clean();
    }
}
