//! The control device `\\.\WanLayer` as the I/O manager drives it: handles opened with an access,
//! `METHOD_BUFFERED` device controls (one system buffer, input copied in, output copied out),
//! pending requests in a per-handle cancel-safe queue, cancellation, and cleanup — around the
//! engine's platform-neutral [`Control::dispatch`](wanlayer_core::Control::dispatch), exactly as
//! the kernel driver's `IRP_MJ_*` routines translate them.
//!
//! The engine's [`EventWaker`] only records which handles to service, as a DPC would be queued;
//! [`SimControl::service`] is that DPC: it dispatches the woken handles' pending reads again, in
//! order, until one pends. Nothing here calls back into the engine from inside the engine.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use wanlayer_core::{Completion, ControlHandle, EventWaker};
use wanlayer_proto::{Access, Status};

use crate::edge::Irql;
use crate::filter_callbacks::CoreFilter;
use crate::rras::{Rras, Scope};

/// An open handle of the control device.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct HandleId(pub u64);

/// One device control request (an IRP).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct IoId(pub u64);

/// A completed request: its status and the bytes the caller's output buffer received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoCompletion {
    /// The request.
    pub id: IoId,
    /// `IoStatus.Status`.
    pub status: Status,
    /// The first `IoStatus.Information` bytes of the output.
    pub output: Vec<u8>,
}

/// What a device control came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IoOutcome {
    /// Completed at once.
    Complete(IoCompletion),
    /// Pending: it completes later ([`SimControl::take_completion`]).
    Pending(IoId),
}

/// A request waiting in a handle's cancel-safe queue, with its system buffer.
struct PendingIo {
    id: IoId,
    code: u32,
    buffer: Vec<u8>,
    input_len: usize,
    output_len: usize,
}

struct OpenHandle {
    control: Rc<ControlHandle>,
    access: Access,
    pending: VecDeque<PendingIo>,
}

#[derive(Default)]
struct Device {
    handles: BTreeMap<HandleId, OpenHandle>,
    completed: BTreeMap<IoId, IoCompletion>,
    next_handle: u64,
    next_io: u64,
}

/// Records the handles the engine asks to have serviced (the DPC queue).
struct Woken(Arc<Mutex<Vec<u64>>>);

impl EventWaker for Woken {
    fn wake(&self, token: u64) {
        if let Ok(mut woken) = self.0.lock() {
            woken.push(token);
        }
    }
}

/// The simulated control device of a [`Rras`] running the [`CoreFilter`].
pub struct SimControl {
    device: RefCell<Device>,
    woken: Arc<Mutex<Vec<u64>>>,
}

impl std::fmt::Debug for SimControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let device = self.device.borrow();
        f.debug_struct("SimControl").field("handles", &device.handles.len()).field("completed", &device.completed.len()).finish()
    }
}

impl SimControl {
    /// Creates the device (`NdisRegisterDeviceEx`) and installs its waker in the engine.
    pub fn install(rras: &Rras<CoreFilter>) -> Self {
        let woken = Arc::new(Mutex::new(Vec::new()));
        if let Some(engine) = rras.filter().engine() {
            engine.control().set_waker(Some(wanlayer_core::EventWakerRef::Shared(Arc::new(Woken(Arc::clone(&woken))))));
        }
        Self { device: RefCell::new(Device::default()), woken }
    }

    /// Opens a handle with `access` (`IRP_MJ_CREATE`; the I/O manager checked the device's
    /// security descriptor already).
    pub fn open(&self, access: Access) -> HandleId {
        let mut device = self.device.borrow_mut();
        device.next_handle += 1;
        let id = HandleId(device.next_handle);
        device.handles.insert(id, OpenHandle { control: Rc::new(ControlHandle::new(id.0)), access, pending: VecDeque::new() });
        id
    }

    /// Handles open.
    pub fn handles(&self) -> usize {
        self.device.borrow().handles.len()
    }

    /// Requests pending on `handle`.
    pub fn pending(&self, handle: HandleId) -> usize {
        self.device.borrow().handles.get(&handle).map_or(0, |open| open.pending.len())
    }

    fn next_io(&self) -> IoId {
        let mut device = self.device.borrow_mut();
        device.next_io += 1;
        IoId(device.next_io)
    }

    /// Sends a device control (`DeviceIoControl` → `IRP_MJ_DEVICE_CONTROL`) with `input` and an
    /// output buffer of `output_len` bytes. A pending request is queued and the handle serviced
    /// once, as the driver does.
    pub fn ioctl(&self, rras: &Rras<CoreFilter>, handle: HandleId, code: u32, input: &[u8], output_len: usize) -> IoOutcome {
        let id = self.next_io();
        let opened = self.device.borrow().handles.get(&handle).map(|open| (Rc::clone(&open.control), open.access));
        let Some((control, access)) = opened else {
            return IoOutcome::Complete(IoCompletion { id, status: Status::InvalidParameter, output: Vec::new() });
        };
        let mut buffer = vec![0u8; input.len().max(output_len)];
        buffer[..input.len()].copy_from_slice(input);
        let completion =
            Self::dispatch(rras, "IRP_MJ_DEVICE_CONTROL", Irql::Passive, &control, code, access, &mut buffer, input.len(), output_len);
        match completion {
            Completion::Complete { status, written } => {
                buffer.truncate(written.min(output_len));
                IoOutcome::Complete(IoCompletion { id, status, output: buffer })
            }
            Completion::Pending => {
                let pending = PendingIo { id, code, buffer, input_len: input.len(), output_len };
                if let Some(open) = self.device.borrow_mut().handles.get_mut(&handle) {
                    open.pending.push_back(pending);
                }
                self.service_handle(rras, handle);
                IoOutcome::Pending(id)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn dispatch(
        rras: &Rras<CoreFilter>,
        name: &'static str,
        irql: Irql,
        control: &ControlHandle,
        code: u32,
        access: Access,
        buffer: &mut [u8],
        input_len: usize,
        output_len: usize,
    ) -> Completion {
        let Some(engine) = rras.filter().engine() else { return Completion::Complete { status: Status::DeviceNotReady, written: 0 } };
        let _scope = Scope::enter(rras.hal(), name, None, irql);
        engine.control().dispatch(control, code, access, buffer, input_len, output_len)
    }

    /// Dispatches the pending requests of `handle` again, oldest first, until one pends.
    fn service_handle(&self, rras: &Rras<CoreFilter>, handle: HandleId) -> usize {
        let mut completed = 0;
        loop {
            let next = {
                let mut device = self.device.borrow_mut();
                let Some(open) = device.handles.get_mut(&handle) else { return completed };
                let control = Rc::clone(&open.control);
                let access = open.access;
                open.pending.pop_front().map(|pending| (pending, control, access))
            };
            let Some((mut pending, control, access)) = next else { return completed };
            let (input_len, output_len) = (pending.input_len, pending.output_len);
            let outcome = Self::dispatch(
                rras,
                "control device DPC",
                Irql::Dispatch,
                &control,
                pending.code,
                access,
                &mut pending.buffer,
                input_len,
                output_len,
            );
            let mut device = self.device.borrow_mut();
            match outcome {
                Completion::Complete { status, written } => {
                    pending.buffer.truncate(written.min(output_len));
                    device.completed.insert(pending.id, IoCompletion { id: pending.id, status, output: pending.buffer });
                    completed += 1;
                }
                Completion::Pending => {
                    if let Some(open) = device.handles.get_mut(&handle) {
                        open.pending.push_front(pending);
                    }
                    return completed;
                }
            }
        }
    }

    /// The DPC: services every handle the engine woke. Returns how many requests completed.
    pub fn service(&self, rras: &Rras<CoreFilter>) -> usize {
        let tokens: Vec<u64> = self.woken.lock().map(|mut woken| std::mem::take(&mut *woken)).unwrap_or_default();
        let mut completed = 0;
        for token in tokens {
            completed += self.service_handle(rras, HandleId(token));
        }
        completed
    }

    /// Takes the completion of a request that pended, once it completed.
    pub fn take_completion(&self, io: IoId) -> Option<IoCompletion> {
        self.device.borrow_mut().completed.remove(&io)
    }

    /// Cancels a pending request (`CancelIoEx`): the queue's cancel routine completes it with
    /// `STATUS_CANCELLED`. False when it is not pending.
    pub fn cancel(&self, io: IoId) -> bool {
        let mut device = self.device.borrow_mut();
        let found = device.handles.values_mut().find_map(|open| {
            let at = open.pending.iter().position(|pending| pending.id == io)?;
            open.pending.remove(at)
        });
        match found {
            Some(pending) => {
                device.completed.insert(io, IoCompletion { id: io, status: Status::Cancelled, output: Vec::new() });
                drop(pending);
                true
            }
            None => false,
        }
    }

    /// Closes a handle (`IRP_MJ_CLEANUP`, then `IRP_MJ_CLOSE`): its pending requests complete with
    /// `STATUS_CANCELLED`, then the engine releases its sessions. Returns the cancelled requests.
    pub fn close(&self, rras: &Rras<CoreFilter>, handle: HandleId) -> Vec<IoId> {
        let Some(open) = self.device.borrow_mut().handles.remove(&handle) else { return Vec::new() };
        let cancelled: Vec<IoId> = open.pending.iter().map(|pending| pending.id).collect();
        {
            let mut device = self.device.borrow_mut();
            for id in &cancelled {
                device.completed.insert(*id, IoCompletion { id: *id, status: Status::Cancelled, output: Vec::new() });
            }
        }
        if let Some(engine) = rras.filter().engine() {
            let _scope = Scope::enter(rras.hal(), "IRP_MJ_CLEANUP", None, Irql::Passive);
            engine.control().cleanup(&open.control);
        }
        cancelled
    }
}
