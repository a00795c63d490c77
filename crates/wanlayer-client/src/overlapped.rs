//! Overlapped requests, written once for every platform: what a transport whose device controls
//! stay in flight offers ([`OverlappedTransport`]), and the state machine behind the Windows one
//! ([`Registry`]) — request slots that own their buffers and the operating system's record of the
//! request (the `OVERLAPPED`) until the system is done with them, completions routed to their
//! slot by that record's address, a waker per request, and cancellation that never frees what the
//! kernel may still write.
//!
//! # Ownership
//! A started request is a slot with two owners: the caller's [`InFlight`], and the *kernel's
//! reference*, which the registry keeps in its table of requests in flight, under the address of
//! the slot's record, from just before the request is issued until its completion is delivered
//! ([`Registry::complete`]). The memory the system writes — the output buffer and the record — is
//! freed when both are gone, never before. So a caller that stops waiting ([`Registry::cancel`],
//! called when a hook or a subscription is closed with its read in flight; a dropped future
//! leaves the read in flight to its owner) asks the system to cancel and lets go of its own
//! reference: the slot lives on until the system completes the request (with `STATUS_CANCELLED`,
//! or with its answer when the answer won the race), and no thread blocks meanwhile. Closing a
//! handle ([`Registry::cancel_all`], then [`Registry::wait_idle`]) cancels what is in flight and
//! waits until every completion was delivered, after which nothing the system holds points into a
//! slot.
//!
//! # Platforms
//! [`OverlappedOs`] is the operating system's part: issue a request, cancel one. Completions are
//! delivered by whoever receives them from the system, calling [`Registry::complete`]: on Windows
//! the thread of the handle's I/O completion port (`windows::WindowsOverlapped`). The Windows part
//! is thin `windows-sys` calls and is only compile-checked here (there is no Windows machine in
//! this project's CI); this module is what the tests exercise, on any host and under Miri, with a
//! fake system that completes out of order, before `issue` returns, after a cancellation, and
//! refuses to issue.

use std::cell::UnsafeCell;
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker};

use wanlayer_proto::Status;

use crate::{ClientError, Result, Transport};

/// How a request started on a transport went.
#[derive(Debug)]
pub enum Started<P> {
    /// Completed at once: the answer's bytes.
    Done(Vec<u8>),
    /// In flight: poll it with [`OverlappedTransport::poll_request`].
    Pending(P),
}

/// A transport whose device controls can stay in flight (overlapped I/O) while the caller does
/// something else.
pub trait OverlappedTransport: Transport {
    /// A request in flight (on Windows: the `OVERLAPPED` and the output buffer it writes).
    type Request;

    /// Starts a device control with room for `output_len` bytes of answer.
    ///
    /// # Errors
    /// [`ClientError::Driver`] with the status it completed with at once, or a system error.
    fn start(&mut self, code: u32, input: &[u8], output_len: usize) -> Result<Started<Self::Request>>;

    /// The answer of `request` once it completed; otherwise `Poll::Pending`, with `waker` woken
    /// when polling again may find more.
    ///
    /// # Errors
    /// [`ClientError::Driver`] with the status it completed with (`STATUS_CANCELLED` once
    /// cancelled), or a system error.
    fn poll_request(&mut self, request: &mut Self::Request, waker: &Waker) -> Poll<Result<Vec<u8>>>;

    /// Cancels `request` (`CancelIoEx`) and forgets it; its answer is lost.
    fn cancel(&mut self, request: Self::Request);
}

/// How the operating system took a request.
#[derive(Debug)]
pub enum Issued {
    /// In flight: its completion will be delivered to [`Registry::complete`], once.
    Pending,
    /// Finished at once (the bytes written, or the error): no completion will be delivered, and
    /// the system no longer touches the request's buffers or record.
    Finished(Result<usize>),
}

/// The operating system's part of overlapped requests.
///
/// # Safety
/// An implementation promises that once [`OverlappedOs::issue`] returned [`Issued::Pending`],
/// the request's completion is delivered to the registry that issued it ([`Registry::complete`]
/// with the request's record) exactly once, after the system last wrote its output buffer and
/// record; and that once it returned [`Issued::Finished`], the system neither touches them again
/// nor delivers a completion. [`OverlappedOs::Record`] is plain data: it may be created, moved,
/// dropped and addressed on any thread.
pub unsafe trait OverlappedOs: Send + Sync {
    /// The system's record of one request (`OVERLAPPED`), written by the system while the
    /// request is in flight; its address names the request.
    type Record;

    /// A record for a new request.
    fn record() -> Self::Record;

    /// Issues the device control `code` with `input_len` bytes of input at `input` and room for
    /// `output_len` bytes of answer at `output`.
    ///
    /// # Safety
    /// `record`, `input` and `output` are valid for their lengths (`output` writable), and stay
    /// valid and untouched by the caller until the request finished ([`Issued::Finished`]) or its
    /// completion was delivered.
    unsafe fn issue(
        &self,
        code: u32,
        input: *const u8,
        input_len: usize,
        output: *mut u8,
        output_len: usize,
        record: *mut Self::Record,
    ) -> Issued;

    /// Asks the system to cancel the request of `record`; its completion is still delivered
    /// (cancelled, or with its answer if that came first).
    ///
    /// # Safety
    /// `record` is the record of a request issued with [`Issued::Pending`], whose slot is still
    /// alive (so no other request has its address).
    unsafe fn cancel(&self, record: *mut Self::Record);
}

/// A heap buffer handed to the system by address: owned here, written only by the system while
/// its request is in flight.
struct RawBuffer {
    bytes: *mut [u8],
}

impl RawBuffer {
    fn copy_of(bytes: &[u8]) -> Self {
        Self { bytes: Box::into_raw(Box::<[u8]>::from(bytes)) }
    }

    fn zeroed(len: usize) -> Self {
        Self { bytes: Box::into_raw(vec![0u8; len].into_boxed_slice()) }
    }

    fn start(&self) -> *mut u8 {
        self.bytes.cast()
    }

    fn len(&self) -> usize {
        self.bytes.len()
    }

    /// The buffer's first `written` bytes.
    ///
    /// # Safety
    /// The system no longer writes the buffer.
    unsafe fn into_vec(self, written: usize) -> Vec<u8> {
        let bytes = std::mem::ManuallyDrop::new(self).bytes;
        // SAFETY: `bytes` came from `Box::into_raw` and is reclaimed once: `self` is not dropped;
        // the system is done with it (the caller's promise).
        let mut vec = unsafe { Box::from_raw(bytes) }.into_vec();
        vec.truncate(written);
        vec
    }
}

impl Drop for RawBuffer {
    fn drop(&mut self) {
        // SAFETY: `bytes` came from `Box::into_raw`, reclaimed once, here; a buffer is dropped
        // only with its slot (both owners gone: the system is done with it) or after a request
        // the system refused or finished at once.
        drop(unsafe { Box::from_raw(self.bytes) });
    }
}

/// Where a request is.
enum Phase {
    /// Issued and not completed; the waker of its last poll.
    InFlight(Option<Waker>),
    /// Completed; its result not taken yet.
    Finished(Result<usize>),
    /// Its result taken.
    Taken,
}

struct State {
    phase: Phase,
    /// The answer's buffer until the result is taken.
    output: Option<RawBuffer>,
}

/// One request: its record and buffers at fixed addresses, shared by the caller and the kernel's
/// reference until the system completed it.
struct Slot<O: OverlappedOs> {
    record: UnsafeCell<O::Record>,
    /// Kept until completion, as the system may read it until then (`METHOD_IN_DIRECT`).
    input: RawBuffer,
    /// Where the system writes the answer; the same allocation as `state.output`.
    output: *mut u8,
    output_len: usize,
    state: Mutex<State>,
}

// SAFETY: the record and the buffers are touched only by the system (through the addresses given
// to `issue`) and, once the system is done with them, under the state lock or in `Drop`; records
// are plain data usable on any thread (the `OverlappedOs` contract).
unsafe impl<O: OverlappedOs> Send for Slot<O> {}
// SAFETY: as above: shared access goes through the state lock.
unsafe impl<O: OverlappedOs> Sync for Slot<O> {}

impl<O: OverlappedOs> Slot<O> {
    fn new(input: &[u8], output_len: usize) -> Self {
        let output = RawBuffer::zeroed(output_len);
        Self {
            record: UnsafeCell::new(O::record()),
            input: RawBuffer::copy_of(input),
            output: output.start(),
            output_len: output.len(),
            state: Mutex::new(State { phase: Phase::InFlight(None), output: Some(output) }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the completion; returns the waker to wake.
    fn finish(&self, result: Result<usize>) -> Option<Waker> {
        let mut state = self.state();
        match std::mem::replace(&mut state.phase, Phase::Finished(result)) {
            Phase::InFlight(waker) => waker,
            earlier => {
                state.phase = earlier;
                None
            }
        }
    }

    /// The result once finished (the answer's bytes, moved out of the slot); otherwise `None`,
    /// with `waker` registered.
    fn take(&self, waker: Option<&Waker>) -> Option<Result<Vec<u8>>> {
        let mut state = self.state();
        match std::mem::replace(&mut state.phase, Phase::Taken) {
            Phase::InFlight(registered) => {
                let registered = match (registered, waker) {
                    (Some(registered), Some(waker)) if registered.will_wake(waker) => Some(registered),
                    (registered, waker) => waker.cloned().or(registered),
                };
                state.phase = Phase::InFlight(registered);
                None
            }
            Phase::Finished(result) => Some(result.and_then(|written| {
                let output = state.output.take().ok_or(ClientError::Driver(Status::InvalidDeviceState))?;
                // SAFETY: the request finished: the system no longer writes its buffer.
                Ok(unsafe { output.into_vec(written) })
            })),
            Phase::Taken => Some(Err(ClientError::Driver(Status::InvalidDeviceState))),
        }
    }

    /// Forgets the waker (its caller stopped waiting); true while the request is in flight.
    fn abandon(&self) -> bool {
        match &mut self.state().phase {
            Phase::InFlight(waker) => {
                *waker = None;
                true
            }
            Phase::Finished(_) | Phase::Taken => false,
        }
    }
}

/// A request in flight, as its caller holds it: poll it with [`Registry::poll`], drop it through
/// [`Registry::cancel`] (dropping it otherwise forgets it without cancelling it; its slot is still
/// freed only after its completion).
pub struct InFlight<O: OverlappedOs> {
    slot: Arc<Slot<O>>,
}

/// The requests in flight on one handle: issued through an [`OverlappedOs`], completed by
/// [`Registry::complete`] (from any thread).
pub struct Registry<O: OverlappedOs> {
    os: O,
    /// The kernel's references, by the address of each request's record.
    in_flight: Mutex<HashMap<usize, Arc<Slot<O>>>>,
    /// Notified when the table empties.
    idle: Condvar,
}

impl<O: OverlappedOs> Registry<O> {
    /// A registry issuing through `os`, nothing in flight.
    pub fn new(os: O) -> Self {
        Self { os, in_flight: Mutex::new(HashMap::new()), idle: Condvar::new() }
    }

    /// The system requests are issued through.
    pub fn os(&self) -> &O {
        &self.os
    }

    fn table(&self) -> MutexGuard<'_, HashMap<usize, Arc<Slot<O>>>> {
        self.in_flight.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Requests issued and not completed yet.
    pub fn in_flight(&self) -> usize {
        self.table().len()
    }

    /// Drops the kernel's reference of the request named `key`; wakes [`Registry::wait_idle`]
    /// when it was the last.
    fn release(&self, key: usize) -> Option<Arc<Slot<O>>> {
        let mut table = self.table();
        let slot = table.remove(&key);
        if table.is_empty() {
            self.idle.notify_all();
        }
        slot
    }

    /// Issues the device control `code` with a copy of `input` and room for `output_len` bytes of
    /// answer.
    ///
    /// # Errors
    /// The error the system finished it with at once.
    pub fn start(&self, code: u32, input: &[u8], output_len: usize) -> Result<Started<InFlight<O>>> {
        let slot = Arc::new(Slot::<O>::new(input, output_len));
        let record = slot.record.get();
        let key = record.addr();
        // In the table before it is issued: its completion may be delivered before `issue` returns.
        self.table().insert(key, Arc::clone(&slot));
        // SAFETY: the record and buffers belong to `slot`, which the table keeps alive until the
        // completion is delivered (`Pending`) or the table lets go below (`Finished`); nothing
        // here touches them meanwhile (the output is taken only once the request finished).
        let issued = unsafe { self.os.issue(code, slot.input.start(), slot.input.len(), slot.output, slot.output_len, record) };
        match issued {
            Issued::Pending => Ok(Started::Pending(InFlight { slot })),
            Issued::Finished(result) => {
                self.release(key);
                let _ = slot.finish(result);
                match slot.take(None) {
                    Some(answer) => answer.map(Started::Done),
                    None => Err(ClientError::Driver(Status::InvalidDeviceState)),
                }
            }
        }
    }

    /// Delivers the completion of the request whose record is at `record` (only its address is
    /// used): its result is kept for its caller and its waker woken, and the kernel's reference
    /// goes. False when no request in flight has that record (the completion is not this
    /// registry's).
    pub fn complete(&self, record: *const O::Record, result: Result<usize>) -> bool {
        let Some(slot) = self.release(record.addr()) else { return false };
        if let Some(waker) = slot.finish(result) {
            waker.wake();
        }
        true
    }

    /// The answer of `request` once it completed; otherwise `Poll::Pending`, `waker` woken when it
    /// completes.
    ///
    /// # Errors
    /// The error it completed with; `STATUS_INVALID_DEVICE_STATE` when its answer was taken
    /// already.
    pub fn poll(&self, request: &mut InFlight<O>, waker: &Waker) -> Poll<Result<Vec<u8>>> {
        match request.slot.take(Some(waker)) {
            Some(answer) => Poll::Ready(answer),
            None => Poll::Pending,
        }
    }

    /// Cancels `request` (unless it completed already) and lets go of it: its slot, buffers and
    /// record live until the system delivers its completion, which is then dropped.
    pub fn cancel(&self, request: InFlight<O>) {
        if request.slot.abandon() {
            // SAFETY: issued `Pending`; `request` keeps the slot alive through the call, so no
            // other request has the record's address.
            unsafe { self.os.cancel(request.slot.record.get()) };
        }
    }

    /// Cancels every request in flight (closing the handle); their completions are still
    /// delivered.
    pub fn cancel_all(&self) {
        let slots: Vec<Arc<Slot<O>>> = self.table().values().cloned().collect();
        for slot in slots {
            // SAFETY: in the table: issued `Pending` and not completed; `slot` keeps it alive
            // through the call.
            unsafe { self.os.cancel(slot.record.get()) };
        }
    }

    /// Waits until every request issued has had its completion delivered.
    pub fn wait_idle(&self) {
        let mut table = self.table();
        while !table.is_empty() {
            table = self.idle.wait(table).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl<O: OverlappedOs> Drop for Registry<O> {
    /// A registry dropped with requests in flight (its owner did not wait for them) leaks their
    /// slots rather than free memory the system may still write.
    fn drop(&mut self) {
        let in_flight = self.in_flight.get_mut().unwrap_or_else(PoisonError::into_inner);
        for (_, slot) in in_flight.drain() {
            std::mem::forget(slot);
        }
    }
}

#[cfg(test)]
mod tests;
