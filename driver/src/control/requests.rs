//! `IRP_MJ_DEVICE_CONTROL` over the engine's control dispatcher, and *servicing* a handle: its
//! pending event reads dispatched again, oldest first, until one pends.
//!
//! # One servicer at a time
//!
//! A handle may be serviced from its own device control (after a read pended, `PASSIVE_LEVEL`)
//! and from the wake DPC (`DISPATCH_LEVEL`) on another processor at once. Two passes at once
//! would break the contract: the first takes the only queued read and finds nothing, an event
//! arrives and the second pass (the wake) finds an empty queue, then the first puts the read
//! back — pending with an event waiting and no wake left to come. So servicing is a ticket
//! counter ([`service`]): whoever raises it from zero runs passes until no request to service
//! arrived during the last pass; everyone else only raises it, and the running servicer makes
//! one more pass for them.
//!
//! # IRQL
//! Only `IOCTL_WANLAYER_READ_EVENTS` is ever queued, so only it is dispatched again at
//! `DISPATCH_LEVEL` (from the DPC); every other request — inject included — is dispatched once,
//! at `PASSIVE_LEVEL`, in the thread that sent it.

use core::ptr::NonNull;
use core::sync::atomic::Ordering;

use wanlayer_core::hal::Level;
use wanlayer_core::Completion;
use wanlayer_driver_logic::control::{is_buffered, nt_status as nt, settle, Settled};
use wanlayer_ndis::io::{complete_irp, irp_file_object, irp_request, STATUS_CANCELLED, STATUS_PENDING};
use wanlayer_ndis::kernel::{Irp, NtStatus};
use wanlayer_proto::ioctl::{IOCTL_DIVERT_CLOSE, IOCTL_DIVERT_READ, IOCTL_READ_EVENTS};
use wanlayer_proto::Status;

use super::csq::End;
use super::handles::{of_file, HandleContext};
use crate::driver::engine;
use crate::platform::print;

/// A device control's parameters, read from its IRP.
struct Request<'irp> {
    code: u32,
    /// The `METHOD_BUFFERED` system buffer: `max(input_len, output_len)` bytes, or empty when
    /// the IRP has none.
    buffer: &'irp mut [u8],
    input_len: usize,
    output_len: usize,
}

impl<'irp> Request<'irp> {
    /// Reads a device control IRP; the status to complete it with when it cannot be dispatched
    /// (not a device control, or not `METHOD_BUFFERED`: every wanlayer IOCTL is buffered, and
    /// only for those does the system buffer hold `max(input, output)` bytes).
    ///
    /// # Safety
    /// `irp` is an `IRP_MJ_DEVICE_CONTROL` the caller owns (in its dispatch routine, or taken off
    /// a queue) for `'irp`.
    unsafe fn read(irp: NonNull<Irp>) -> Result<Self, NtStatus> {
        // SAFETY: the caller's promise.
        let request = unsafe { irp_request(irp.as_ptr()) };
        let Some(parameters) = request.device_io_control else { return Err(nt(Status::InvalidDeviceRequest)) };
        let code = parameters.io_control_code;
        if !is_buffered(code) {
            return Err(nt(Status::InvalidDeviceRequest));
        }
        let input_len = parameters.input_buffer_length as usize;
        let output_len = parameters.output_buffer_length as usize;
        let buffer: &'irp mut [u8] = match NonNull::new(request.system_buffer.cast::<u8>()) {
            // SAFETY: METHOD_BUFFERED: the I/O manager allocated the system buffer with
            // max(InputBufferLength, OutputBufferLength) bytes, owned by the IRP the caller owns
            // for 'irp; nobody else touches it meanwhile.
            Some(buffer) => unsafe { core::slice::from_raw_parts_mut(buffer.as_ptr(), input_len.max(output_len)) },
            // No buffer: lengths beyond 0 are refused by the dispatcher (InvalidParameter).
            None => &mut [],
        };
        Ok(Self { code, buffer, input_len, output_len })
    }

    /// Dispatches the request to the engine for `context`'s handle.
    ///
    /// # IRQL
    /// `PASSIVE_LEVEL`; `DISPATCH_LEVEL` only for `IOCTL_WANLAYER_READ_EVENTS`.
    ///
    /// Settled by [`settle`]: never more than the caller's output buffer written; only the codes
    /// that may pend ([`pends`]) are queued (a queued request is dispatched again from the DPC, at
    /// `DISPATCH_LEVEL`), any other request the engine pends is refused.
    fn dispatch(self, context: &HandleContext) -> Settled {
        let (code, may_pend) = (self.code, pends(self.code));
        let completion =
            engine().control().dispatch(context.handle(), self.code, context.granted(), self.buffer, self.input_len, self.output_len);
        if completion == Completion::Pending && !may_pend {
            print(Level::Error, format_args!("control: IOCTL {code:#010x} pended; only event and divert reads may"));
        }
        if code == IOCTL_DIVERT_CLOSE {
            // The hook released what it held: the expiry timer goes when nothing is held.
            super::divert_timer::reconcile();
        }
        settle(completion, self.output_len, may_pend)
    }
}

/// The codes the engine may pend (the inverted call): event reads and divert reads, the only
/// requests that may be dispatched again at `DISPATCH_LEVEL`.
fn pends(code: u32) -> bool {
    code == IOCTL_READ_EVENTS || code == IOCTL_DIVERT_READ
}

/// `IRP_MJ_DEVICE_CONTROL`: `engine().control().dispatch(..)` for the handle in `FsContext`.
/// `Complete` completes the IRP; `Pending` (an event read with nothing to read) queues it in the
/// handle's cancel-safe queue, returns `STATUS_PENDING`, and services the handle once, so an
/// event that arrived between the dispatch and the queueing is not missed.
///
/// A request on no handle of ours (a file object without a context, or one already cleaned up)
/// completes `STATUS_INVALID_PARAMETER`, as the simulator answers a request on an unknown handle.
///
/// # IRQL
/// `PASSIVE_LEVEL` (the requesting thread).
///
/// # Ownership
/// The IRP is completed here, or queued (then `STATUS_PENDING` is returned and it is not touched
/// again here: the queue, its cancel routine, cleanup or a servicer completes it).
///
/// # Safety
/// `irp` is an `IRP_MJ_DEVICE_CONTROL` sent to the control device, not completed yet.
pub(super) unsafe fn device_control(irp: *mut Irp) -> NtStatus {
    let Some(irp) = NonNull::new(irp) else { return nt(Status::InvalidParameter) };
    // SAFETY: the caller's promise.
    let file = unsafe { irp_file_object(irp.as_ptr()) };
    // SAFETY: the file object of the device control being handled; the borrow is only used
    // until the IRP is completed or queued (after queueing, `acquire` keeps the context).
    let context = unsafe { of_file(file) };
    let Some(context) = context.filter(|context| !context.is_closed()) else {
        // SAFETY: the IRP is ours to complete, once, and is not touched afterwards.
        return unsafe { complete_irp(irp.as_ptr(), nt(Status::InvalidParameter), 0) };
    };
    // SAFETY: the caller's promise: the IRP is ours until it is completed or queued below.
    let request = match unsafe { Request::read(irp) } {
        Ok(request) => request,
        // SAFETY: as above.
        Err(status) => return unsafe { complete_irp(irp.as_ptr(), status, 0) },
    };
    match request.dispatch(context) {
        // SAFETY: as above.
        Settled::Complete { status, written } => unsafe { complete_irp(irp.as_ptr(), status, written) },
        Settled::Queue => {
            // Once queued, the IRP can complete at any moment (cancel, cleanup, the DPC), and
            // with it the file object's last reference could go: keep the context meanwhile.
            let context = context.acquire();
            // SAFETY: a live device control on this context's handle, ours until queued.
            match unsafe { context.queue().insert(irp, End::Tail) } {
                Ok(()) => {
                    service(&context);
                    STATUS_PENDING
                }
                // Cleaned up meanwhile: the queue refused it, nothing was marked pending.
                // SAFETY: the IRP is still ours; completed once, not touched afterwards.
                Err(_) => unsafe { complete_irp(irp.as_ptr(), STATUS_CANCELLED, 0) },
            }
        }
    }
}

/// Services `context`'s handle: its queued reads are dispatched again, oldest first; each that
/// completes is completed, the first that pends goes back to the head and ends the pass. Only
/// one servicer runs per handle (see the module documentation); a call while one runs makes it
/// run once more and returns at once.
///
/// # IRQL
/// `<= DISPATCH_LEVEL`.
pub(super) fn service(context: &HandleContext) {
    let tickets = context.servicing();
    if tickets.fetch_add(1, Ordering::AcqRel) != 0 {
        return;
    }
    let mut served = 1;
    loop {
        service_pass(context);
        match tickets.compare_exchange(served, 0, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return,
            Err(now) => served = now,
        }
    }
}

/// One pass over the queue (the simulator's `service_handle`).
fn service_pass(context: &HandleContext) {
    while let Some(irp) = context.queue().remove_next() {
        // SAFETY: `remove_next` handed the IRP over: a device control this handle queued, ours
        // until completed or queued again.
        let dispatched = match unsafe { Request::read(irp) } {
            Ok(request) if pends(request.code) => request.dispatch(context),
            // Never queued (device_control queues event reads only); refused without dispatching
            // it at this IRQL.
            Ok(_) => Settled::Complete { status: nt(Status::InvalidDeviceRequest), written: 0 },
            Err(status) => Settled::Complete { status, written: 0 },
        };
        match dispatched {
            Settled::Complete { status, written } => {
                // SAFETY: ours (above); completed once, not touched afterwards.
                unsafe { complete_irp(irp.as_ptr(), status, written) };
            }
            Settled::Queue => {
                // SAFETY: ours (above), a device control on this handle.
                if unsafe { context.queue().insert(irp, End::Head) }.is_err() {
                    // Cleaned up while it was out of the queue.
                    // SAFETY: still ours (the insert failed); completed once.
                    unsafe { complete_irp(irp.as_ptr(), STATUS_CANCELLED, 0) };
                }
                return;
            }
        }
    }
}
