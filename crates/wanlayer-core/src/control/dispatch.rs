//! [`Control::dispatch`]: one IOCTL in, a [`Completion`] out.

use core::sync::atomic::Ordering;

use wanlayer_proto::limits::MAX_READ_BATCH;
use wanlayer_proto::{
    Access, CaptureSession, CaptureSessionRepr, CaptureStart, CaptureStartRepr, Direction as WireDirection, HeaderOnly, Inject, InjectRepr,
    Ioctl, LinkQuery, LinkQueryRepr, ReadRequest, ReadRequestRepr, RuleStatsQuery, RuleStatsQueryRepr, ScopeRequest, ScopeRequestRepr,
    Status, Subscribe, SubscribeRepr, Subscription, SubscriptionRepr, Target,
};

use super::hub::Read;
use super::{CaptureScope, Completion, Control, ControlHandle, InjectError};
use crate::hal::{Hal, Lock, ModuleId, PathContext};
use crate::hook::Direction;
use crate::link::LinkId;

/// Parses a request with `parse` over the input, mapping a malformed one to its status.
macro_rules! request {
    ($repr:ty, $view:ident, $input:expr) => {
        <$repr>::parse(&$view::new_unchecked($input)).map_err(Status::from)
    };
}

impl<H: Hal> Control<'_, H> {
    /// Answers one device control (`IRP_MJ_DEVICE_CONTROL`, `METHOD_BUFFERED`).
    ///
    /// `buffer` is the system buffer: its first `input_len` bytes are the input, and the answer
    /// is written over its first `output_len` bytes (after the input was read). `granted` is the
    /// access the handle was opened with.
    ///
    /// Unknown codes complete `STATUS_INVALID_DEVICE_REQUEST`; a handle without the code's access
    /// `STATUS_ACCESS_DENIED`; a malformed input `STATUS_INVALID_PARAMETER` (another interface
    /// version `STATUS_REVISION_MISMATCH`); an output too small for the smallest answer
    /// `STATUS_BUFFER_TOO_SMALL`. Nothing panics, whatever the bytes.
    ///
    /// # IRQL
    /// `PASSIVE_LEVEL`; a pending `READ_EVENTS` may be dispatched again at `<= DISPATCH_LEVEL`.
    pub fn dispatch(
        &self,
        handle: &ControlHandle,
        code: u32,
        granted: Access,
        buffer: &mut [u8],
        input_len: usize,
        output_len: usize,
    ) -> Completion {
        if input_len > buffer.len() || output_len > buffer.len() {
            return Completion::from_result(Err(Status::InvalidParameter));
        }
        let ioctl = Ioctl::from(code);
        if !ioctl.is_known() {
            return Completion::from_result(Err(Status::InvalidDeviceRequest));
        }
        if !granted.allows(ioctl.required_access()) {
            return Completion::from_result(Err(Status::AccessDenied));
        }
        if ioctl == Ioctl::ReadEvents {
            return self.read_events(handle, &mut buffer[..input_len.max(output_len)], input_len, output_len);
        }
        if ioctl == Ioctl::DivertRead {
            return match request!(ReadRequestRepr, ReadRequest, &buffer[..input_len]) {
                Ok(request) => self.divert_read(handle, request, &mut buffer[..output_len]),
                Err(status) => Completion::from_result(Err(status)),
            };
        }
        if ioctl == Ioctl::DivertVerdicts {
            // The answer (16 bytes) is written over the start of the buffer once every verdict
            // was applied; the verdicts are read in place until then.
            let mut answer = [0u8; 16];
            let result = self.divert_verdicts(handle, &buffer[..input_len], &mut answer[..output_len.min(16)]);
            if let Ok(written) = result {
                buffer[..written].copy_from_slice(&answer[..written]);
            }
            return Completion::from_result(result);
        }
        let input = &buffer[..input_len];
        let result = match ioctl {
            Ioctl::QueryVersion if input.is_empty() => self.version(&mut buffer[..output_len]),
            Ioctl::QueryVersion => Err(Status::InvalidParameter),
            Ioctl::ListModules => HeaderOnly::parse(input).map_err(Status::from).and_then(|_| self.list_modules(&mut buffer[..output_len])),
            Ioctl::ListLinks => {
                request!(LinkQueryRepr, LinkQuery, input).and_then(|query| self.list_links(query, &mut buffer[..output_len]))
            }
            Ioctl::ListHooks => HeaderOnly::parse(input).map_err(Status::from).and_then(|_| self.list_hooks(&mut buffer[..output_len])),
            Ioctl::QueryStats => request!(ScopeRequestRepr, ScopeRequest, input)
                .and_then(|request| self.query_stats(request.target, &mut buffer[..output_len])),
            Ioctl::ResetStats => request!(ScopeRequestRepr, ScopeRequest, input).and_then(|request| self.reset_stats(request.target)),
            Ioctl::SubscribeEvents => {
                request!(SubscribeRepr, Subscribe, input).and_then(|request| self.subscribe(handle, request, &mut buffer[..output_len]))
            }
            Ioctl::UnsubscribeEvents => HeaderOnly::parse(input).map_err(Status::from).and_then(|_| self.unsubscribe(handle)),
            Ioctl::CaptureStart => request!(CaptureStartRepr, CaptureStart, input)
                .and_then(|request| self.start_capture(handle, request, &mut buffer[..output_len])),
            Ioctl::CaptureRead => request!(ReadRequestRepr, ReadRequest, input)
                .and_then(|request| self.read_capture(handle, request, &mut buffer[..output_len])),
            Ioctl::CaptureStop => HeaderOnly::parse(input).map_err(Status::from).and_then(|_| self.stop_capture(handle)),
            Ioctl::Inject => request!(InjectRepr<'_>, Inject, input).and_then(|request| self.inject(request)),
            Ioctl::SetRules => self.set_rules(buffer, input_len, output_len),
            Ioctl::GetRules => HeaderOnly::parse(input).map_err(Status::from).and_then(|_| self.get_rules(&mut buffer[..output_len])),
            Ioctl::RuleStats => {
                request!(RuleStatsQueryRepr, RuleStatsQuery, input).and_then(|request| self.rule_stats(request, &mut buffer[..output_len]))
            }
            Ioctl::DivertOpen => self.divert_open(handle, buffer, input_len, output_len),
            Ioctl::DivertClose => HeaderOnly::parse(input).map_err(Status::from).and_then(|_| self.divert_close(handle)),
            Ioctl::ReadEvents | Ioctl::DivertRead | Ioctl::DivertVerdicts | Ioctl::Unknown(_) => Err(Status::InvalidDeviceRequest),
        };
        Completion::from_result(result)
    }

    /// `SUBSCRIBE_EVENTS`: the handle gets its own ring.
    fn subscribe(&self, handle: &ControlHandle, request: SubscribeRepr, out: &mut [u8]) -> Result<usize, Status> {
        let out = out.get_mut(..Subscription::<&[u8]>::LEN).ok_or(Status::BufferTooSmall)?;
        handle.subscription.claim()?;
        let engine = self.engine;
        let created = engine.events_lock().with(|events| {
            let next_sequence = events.next_sequence();
            engine
                .control
                .hub
                .with(|hub| hub.subscribe(&engine.hal, handle.token, request.capacity as usize, request.mask))
                .map(|id| (id, next_sequence))
        });
        let (id, next_sequence) = match created {
            Ok(created) => created,
            Err(status) => {
                handle.subscription.unclaim();
                return Err(status);
            }
        };
        if !handle.subscription.bind(id) {
            engine.control.hub.with(|hub| hub.unsubscribe(&engine.hal, id));
            return Err(Status::Cancelled);
        }
        let repr = SubscriptionRepr { capacity: request.capacity, mask: request.mask, next_sequence };
        repr.emit(&mut Subscription::new_unchecked(out)).map_err(|_| Status::BufferTooSmall)?;
        Ok(repr.buffer_len())
    }

    /// `UNSUBSCRIBE_EVENTS`: the ring is freed; pending reads are woken to complete.
    fn unsubscribe(&self, handle: &ControlHandle) -> Result<usize, Status> {
        let id = handle.subscription.take().ok_or(Status::InvalidDeviceState)?;
        let engine = self.engine;
        engine.control.hub.with(|hub| hub.unsubscribe(&engine.hal, id));
        engine.control.wake(&[handle.token]);
        Ok(0)
    }

    /// `READ_EVENTS`: a batch, or pending when nothing is queued and the request may wait.
    fn read_events(&self, handle: &ControlHandle, buffer: &mut [u8], input_len: usize, output_len: usize) -> Completion {
        let request = match request!(ReadRequestRepr, ReadRequest, &buffer[..input_len]) {
            Ok(request) => request,
            Err(status) => return Completion::from_result(Err(status)),
        };
        let Some(id) = handle.subscription.current() else { return Completion::from_result(Err(Status::InvalidDeviceState)) };
        let max = request.max_records.min(MAX_READ_BATCH) as usize;
        let read = self.engine.control.hub.with(|hub| hub.read(id, max, request.wait, &mut buffer[..output_len]));
        match read {
            Ok(Read::Written(written)) => Completion::Complete { status: Status::Success, written },
            Ok(Read::Pending) => Completion::Pending,
            Err(status) => Completion::from_result(Err(status)),
        }
    }

    /// `CAPTURE_START`.
    fn start_capture(&self, handle: &ControlHandle, request: CaptureStartRepr, out: &mut [u8]) -> Result<usize, Status> {
        let out = out.get_mut(..CaptureSession::<&[u8]>::LEN).ok_or(Status::BufferTooSmall)?;
        let engine = self.engine;
        let scope = match request.target {
            Target::All => CaptureScope::All,
            Target::Module(id) => {
                engine.module_info(ModuleId(id)).ok_or(Status::NotFound)?;
                CaptureScope::Module(ModuleId(id))
            }
            Target::Link(id) => {
                engine.find_link(LinkId(id), |_, _| ()).ok_or(Status::NotFound)?;
                CaptureScope::Link(LinkId(id))
            }
            Target::Rule(id) => CaptureScope::Rule(id),
            Target::Hook(_) => return Err(Status::InvalidParameter),
        };
        handle.capture.claim()?;
        let started =
            engine.control.capture.with(|capture| capture.start(&engine.hal, scope, request.snap_len as usize, request.slots as usize));
        let id = match started {
            Ok(id) => id,
            Err(status) => {
                handle.capture.unclaim();
                return Err(status);
            }
        };
        engine.control.capture_active.fetch_add(1, Ordering::Relaxed);
        if !handle.capture.bind(id) {
            self.stop_capture_session(id);
            return Err(Status::Cancelled);
        }
        let repr = CaptureSessionRepr { capture: request, start_time_ns: crate::hal::Clock::now(&engine.hal).0 };
        repr.emit(&mut CaptureSession::new_unchecked(out)).map_err(|_| Status::BufferTooSmall)?;
        Ok(repr.buffer_len())
    }

    /// `CAPTURE_READ`.
    fn read_capture(&self, handle: &ControlHandle, request: ReadRequestRepr, out: &mut [u8]) -> Result<usize, Status> {
        if request.wait {
            return Err(Status::InvalidParameter);
        }
        let id = handle.capture.current().ok_or(Status::InvalidDeviceState)?;
        self.engine.control.capture.with(|capture| capture.read(id, request.max_records as usize, out))
    }

    /// `CAPTURE_STOP`.
    fn stop_capture(&self, handle: &ControlHandle) -> Result<usize, Status> {
        let id = handle.capture.take().ok_or(Status::InvalidDeviceState)?;
        self.stop_capture_session(id);
        Ok(0)
    }

    /// `INJECT`.
    fn inject(&self, request: InjectRepr<'_>) -> Result<usize, Status> {
        let direction = match request.direction {
            WireDirection::Send => Direction::Send,
            WireDirection::Receive => Direction::Receive,
            WireDirection::Unknown(_) => return Err(Status::InvalidParameter),
        };
        let module = request.module.map(ModuleId);
        match self.engine.inject(module, LinkId(request.link_id), direction, request.frame, PathContext::default()) {
            Ok(()) => Ok(0),
            Err(InjectError::UnknownModule | InjectError::UnknownLink(_)) => Err(Status::NotFound),
            Err(InjectError::NotRunning(_)) => Err(Status::InvalidDeviceState),
            Err(InjectError::OutOfMemory) => Err(Status::InsufficientResources),
            Err(InjectError::BadFrame) => Err(Status::InvalidParameter),
        }
    }
}
