//! The overlapped state machine against a fake operating system that keeps the addresses it is
//! given, as the kernel does, and writes through them when the test says the request completes:
//! out of order, before `issue` returns, after a cancellation, or never issued at all. Under Miri
//! a slot freed while the fake system still holds its addresses is a use after free.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::pin;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::{Context, Poll, Wake, Waker};

use wanlayer_proto::ioctl::{IOCTL_DIVERT_CLOSE, IOCTL_DIVERT_OPEN, IOCTL_DIVERT_READ, IOCTL_READ_EVENTS, IOCTL_SUBSCRIBE_EVENTS};
use wanlayer_proto::{
    Direction, DivertBatch, DivertBatchRepr, DivertCounters, DivertInfo, DivertInfoRepr, DivertMeta, DivertPacket, DivertPacketRepr,
    EventBatch, EventBatchRepr, EventBody, EventKind, EventRecord, EventRecordRepr, ReadRequest, ReadRequestRepr, Status, Subscription,
    SubscriptionRepr,
};

use super::*;
use crate::divert::{compile_filter, DivertConfig};
use crate::divert_async::AsyncDivert;
use crate::events_async::AsyncEvents;

/// What the fake system writes into a request's record when it completes it.
#[derive(Default)]
struct FakeRecord {
    status: u32,
    written: usize,
}

/// What the fake system does with the next request it is given.
enum Next {
    /// Keeps it in flight until the test completes it.
    Pend,
    /// Fails it at once.
    Refuse(ClientError),
    /// Answers it at once, with no completion to deliver.
    FinishAtOnce(Vec<u8>),
    /// Delivers its completion before `issue` returns (the completion port's thread was quicker).
    CompleteBeforeReturning(Vec<u8>),
}

/// A request the fake system holds: the addresses it was given.
#[derive(Clone, Copy)]
struct Held {
    code: u32,
    output: *mut u8,
    output_len: usize,
    record: *mut FakeRecord,
}

#[derive(Default)]
struct FakeOs {
    script: Mutex<VecDeque<Next>>,
    held: Mutex<Vec<Held>>,
    inputs: Mutex<Vec<Vec<u8>>>,
    cancelled: Mutex<Vec<usize>>,
    registry: OnceLock<Weak<Registry<FakeOs>>>,
}

// SAFETY: the raw pointers it keeps are the addresses the registry gives a system, used only as
// the system would (written until the completion is delivered).
unsafe impl Send for FakeOs {}
// SAFETY: as above; every field is behind a lock.
unsafe impl Sync for FakeOs {}

/// Writes `answer` where `held` says, as the kernel completing the request does.
///
/// # Safety
/// `held` is a request whose completion was not delivered yet.
unsafe fn write_answer(held: Held, answer: &[u8], status: u32) -> usize {
    let written = answer.len().min(held.output_len);
    // SAFETY: the caller's promise: the output is alive and writable for `output_len` bytes.
    unsafe { ptr::copy_nonoverlapping(answer.as_ptr(), held.output, written) };
    // SAFETY: as above, for the record.
    unsafe { *held.record = FakeRecord { status, written } };
    written
}

// SAFETY: a pending request's completion is delivered once, by the test through `complete`
// (after the answer is written), or by `issue` itself (`CompleteBeforeReturning`); a finished
// one is never touched again.
unsafe impl OverlappedOs for FakeOs {
    type Record = FakeRecord;

    fn record() -> FakeRecord {
        FakeRecord::default()
    }

    unsafe fn issue(
        &self,
        code: u32,
        input: *const u8,
        input_len: usize,
        output: *mut u8,
        output_len: usize,
        record: *mut FakeRecord,
    ) -> Issued {
        // SAFETY: the caller's promise: `input` is valid for `input_len` bytes.
        let input = unsafe { std::slice::from_raw_parts(input, input_len) };
        self.inputs.lock().unwrap().push(input.to_vec());
        let held = Held { code, output, output_len, record };
        match self.script.lock().unwrap().pop_front().unwrap_or(Next::Pend) {
            Next::Pend => {
                self.held.lock().unwrap().push(held);
                Issued::Pending
            }
            Next::Refuse(error) => Issued::Finished(Err(error)),
            // SAFETY: the request is being issued: its buffers are alive.
            Next::FinishAtOnce(answer) => Issued::Finished(Ok(unsafe { write_answer(held, &answer, 0) })),
            Next::CompleteBeforeReturning(answer) => {
                // SAFETY: as above.
                let written = unsafe { write_answer(held, &answer, 0) };
                let registry = self.registry.get().and_then(Weak::upgrade).expect("the registry is alive");
                assert!(registry.complete(record, Ok(written)));
                Issued::Pending
            }
        }
    }

    unsafe fn cancel(&self, record: *mut FakeRecord) {
        self.cancelled.lock().unwrap().push(record.addr());
    }
}

fn registry() -> Arc<Registry<FakeOs>> {
    let registry = Arc::new(Registry::new(FakeOs::default()));
    registry.os().registry.set(Arc::downgrade(&registry)).expect("set once");
    registry
}

/// The `index`th request the fake system kept in flight.
fn held(registry: &Registry<FakeOs>, index: usize) -> Held {
    registry.os().held.lock().unwrap()[index]
}

/// The kernel completes the `index`th request held: writes `answer`, then delivers `result`.
fn kernel_completes(registry: &Registry<FakeOs>, index: usize, answer: &[u8], result: Result<usize>) -> bool {
    let held = held(registry, index);
    let status = if result.is_ok() { 0 } else { u32::from(Status::Cancelled) };
    // SAFETY: the test delivers each completion once, after this write: the request's slot is
    // alive until then, whether or not its caller still waits for it.
    unsafe { write_answer(held, answer, status) };
    registry.complete(held.record, result)
}

fn cancelled(registry: &Registry<FakeOs>) -> Vec<usize> {
    registry.os().cancelled.lock().unwrap().clone()
}

/// Counts its wakes.
#[derive(Default)]
struct Wakes(AtomicUsize);

impl Wake for Wakes {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn waker() -> (Arc<Wakes>, Waker) {
    let wakes = Arc::new(Wakes::default());
    (Arc::clone(&wakes), Waker::from(wakes))
}

fn woken(wakes: &Wakes) -> usize {
    wakes.0.load(Ordering::SeqCst)
}

fn pending(started: Result<Started<InFlight<FakeOs>>>) -> InFlight<FakeOs> {
    match started.expect("issued") {
        Started::Pending(request) => request,
        Started::Done(answer) => panic!("expected a request in flight, it finished with {answer:?}"),
    }
}

#[test]
fn completions_out_of_order_reach_their_own_requests_and_wake_only_them() {
    let registry = registry();
    let mut requests: Vec<_> = (1..=3u8).map(|code| pending(registry.start(u32::from(code), &[code; 4], 16))).collect();
    let wakers: Vec<_> = (0..3).map(|_| waker()).collect();
    for (request, (_, waker)) in requests.iter_mut().zip(&wakers) {
        assert!(registry.poll(request, waker).is_pending());
    }
    assert_eq!(registry.in_flight(), 3);
    assert_eq!(*registry.os().inputs.lock().unwrap(), vec![vec![1; 4], vec![2; 4], vec![3; 4]], "each input copied as given");
    assert!(kernel_completes(&registry, 2, b"third", Ok(5)));
    assert!(kernel_completes(&registry, 0, b"first", Ok(5)));
    assert_eq!(wakers.iter().map(|(wakes, _)| woken(wakes)).collect::<Vec<_>>(), [1, 0, 1]);
    // SAFETY: completed: the system no longer writes the record, which `requests[2]` keeps alive.
    let record = unsafe { &*requests[2].slot.record.get() };
    assert_eq!((record.status, record.written), (0, 5), "the kernel wrote the request's own OVERLAPPED");
    assert_eq!(registry.poll(&mut requests[0], &wakers[0].1), Poll::Ready(Ok(b"first".to_vec())));
    assert!(registry.poll(&mut requests[1], &wakers[1].1).is_pending());
    assert_eq!(registry.poll(&mut requests[2], &wakers[2].1), Poll::Ready(Ok(b"third".to_vec())));
    assert!(kernel_completes(&registry, 1, b"second!", Ok(7)));
    assert_eq!(woken(&wakers[1].0), 1);
    assert_eq!(registry.poll(&mut requests[1], &wakers[1].1), Poll::Ready(Ok(b"second!".to_vec())));
    assert_eq!(
        registry.poll(&mut requests[1], &wakers[1].1),
        Poll::Ready(Err(ClientError::Driver(Status::InvalidDeviceState))),
        "an answer is taken once"
    );
    assert_eq!(registry.in_flight(), 0);
    assert!(cancelled(&registry).is_empty());
}

#[test]
fn a_cancelled_request_keeps_its_buffers_until_the_kernel_completes_it() {
    let registry = registry();
    let mut request = pending(registry.start(7, b"in", 64));
    let (wakes, waker) = waker();
    assert!(registry.poll(&mut request, &waker).is_pending());
    let slot = Arc::downgrade(&request.slot);
    let record = held(&registry, 0).record.addr();
    registry.cancel(request);
    assert_eq!(cancelled(&registry), [record], "CancelIoEx on its OVERLAPPED");
    assert!(slot.upgrade().is_some(), "the kernel's reference keeps the slot while the request is in flight");
    // The kernel writes the buffer and the record after the caller let go (Miri: still alive).
    assert!(kernel_completes(&registry, 0, b"late answer", Err(ClientError::Driver(Status::Cancelled))));
    assert!(slot.upgrade().is_none(), "freed once the completion was delivered");
    assert_eq!(woken(&wakes), 0, "nobody waits for it any more");
    assert_eq!(registry.in_flight(), 0);
}

#[test]
fn an_answer_that_wins_the_race_with_the_cancellation_is_dropped_with_its_slot() {
    let registry = registry();
    let request = pending(registry.start(7, b"", 8));
    let slot = Arc::downgrade(&request.slot);
    registry.cancel(request);
    assert!(kernel_completes(&registry, 0, b"answer", Ok(6)), "completed with its answer after all");
    assert!(slot.upgrade().is_none());
}

#[test]
fn a_request_completed_before_its_cancellation_is_not_cancelled() {
    let registry = registry();
    let request = pending(registry.start(7, b"", 8));
    let slot = Arc::downgrade(&request.slot);
    assert!(kernel_completes(&registry, 0, b"done", Ok(4)));
    registry.cancel(request);
    assert!(cancelled(&registry).is_empty(), "nothing in flight to cancel");
    assert!(slot.upgrade().is_none());
}

#[test]
fn a_request_the_system_refuses_is_never_in_flight() {
    let registry = registry();
    registry.os().script.lock().unwrap().push_back(Next::Refuse(ClientError::Driver(Status::InvalidParameter)));
    assert_eq!(registry.start(7, b"bad", 8).err(), Some(ClientError::Driver(Status::InvalidParameter)));
    assert_eq!(registry.in_flight(), 0);
    registry.wait_idle();
}

#[test]
fn a_request_finished_at_once_answers_without_a_completion() {
    let registry = registry();
    registry.os().script.lock().unwrap().push_back(Next::FinishAtOnce(b"at once".to_vec()));
    match registry.start(7, b"", 32).unwrap() {
        Started::Done(answer) => assert_eq!(answer, b"at once"),
        Started::Pending(_) => panic!("finished at once"),
    }
    assert_eq!(registry.in_flight(), 0);
}

#[test]
fn a_completion_delivered_before_issue_returns_is_not_lost() {
    let registry = registry();
    registry.os().script.lock().unwrap().push_back(Next::CompleteBeforeReturning(b"quick".to_vec()));
    let mut request = pending(registry.start(7, b"", 32));
    let (wakes, waker) = waker();
    assert_eq!(registry.poll(&mut request, &waker), Poll::Ready(Ok(b"quick".to_vec())));
    assert_eq!(woken(&wakes), 0);
    assert_eq!(registry.in_flight(), 0);
}

#[test]
fn only_the_waker_of_the_last_poll_is_woken() {
    let registry = registry();
    let mut request = pending(registry.start(7, b"", 8));
    let ((first, first_waker), (second, second_waker)) = (waker(), waker());
    assert!(registry.poll(&mut request, &first_waker).is_pending());
    assert!(registry.poll(&mut request, &second_waker).is_pending());
    assert!(kernel_completes(&registry, 0, b"", Ok(0)));
    assert_eq!((woken(&first), woken(&second)), (0, 1));
    assert_eq!(registry.poll(&mut request, &second_waker), Poll::Ready(Ok(Vec::new())));
}

#[test]
fn a_completion_of_no_request_of_the_registry_is_refused() {
    let registry = registry();
    let request = pending(registry.start(7, b"", 8));
    let stranger = FakeRecord::default();
    assert!(!registry.complete(&stranger, Ok(0)));
    assert_eq!(registry.in_flight(), 1);
    assert!(kernel_completes(&registry, 0, b"", Ok(0)));
    assert!(!registry.complete(held(&registry, 0).record, Ok(0)), "a completion is delivered once");
    drop(request);
}

#[test]
fn closing_cancels_everything_in_flight_and_waits_for_every_completion() {
    let registry = registry();
    let requests: Vec<_> = (0..3).map(|_| pending(registry.start(7, b"", 8))).collect();
    let slots: Vec<_> = requests.iter().map(|request| Arc::downgrade(&request.slot)).collect();
    let mut requests = requests.into_iter();
    registry.cancel(requests.next().expect("three"));
    let still_held: Vec<_> = requests.collect();
    registry.cancel_all();
    assert_eq!(cancelled(&registry).len(), 1 + 3, "the one cancelled already is cancelled again: it is still in flight");
    let kernel = {
        let registry = Arc::clone(&registry);
        std::thread::spawn(move || {
            for index in [2, 0, 1] {
                assert!(kernel_completes(&registry, index, b"", Err(ClientError::Driver(Status::Cancelled))));
            }
        })
    };
    registry.wait_idle();
    assert_eq!(registry.in_flight(), 0);
    kernel.join().expect("the kernel thread");
    drop(still_held);
    assert!(slots.iter().all(|slot| slot.upgrade().is_none()), "every slot freed");
}

// Leaks on purpose, which Miri reports as an error.
#[cfg_attr(miri, ignore)]
#[test]
fn a_registry_dropped_with_requests_in_flight_leaks_their_slots_instead_of_freeing_them() {
    let registry = registry();
    let request = pending(registry.start(7, b"", 8));
    let slot = Arc::downgrade(&request.slot);
    let held = held(&registry, 0);
    drop(request);
    drop(Arc::into_inner(registry).expect("the only reference"));
    assert!(slot.upgrade().is_some(), "still allocated");
    // SAFETY: the slot was leaked: the kernel may still write it.
    unsafe { write_answer(held, b"late", 0) };
}

/// A transport over the fake system: `DIVERT_OPEN` and `DIVERT_CLOSE` complete at once, as the
/// driver completes them; reads go through the registry.
struct FakeTransport {
    registry: Arc<Registry<FakeOs>>,
}

impl Transport for FakeTransport {
    fn call(&mut self, code: u32, _input: &[u8], output: &mut [u8]) -> Result<usize> {
        match code {
            IOCTL_DIVERT_OPEN => {
                DivertInfoRepr { hook: 7 }.emit(&mut DivertInfo::new_unchecked(&mut output[..DivertInfo::<&[u8]>::LEN]))?;
                Ok(DivertInfo::<&[u8]>::LEN)
            }
            IOCTL_DIVERT_CLOSE => Ok(0),
            IOCTL_SUBSCRIBE_EVENTS => {
                let subscription = SubscriptionRepr { capacity: 8, mask: EventKind::ALL_MASK, next_sequence: 5 };
                subscription.emit(&mut Subscription::new_unchecked(&mut output[..Subscription::<&[u8]>::LEN]))?;
                Ok(Subscription::<&[u8]>::LEN)
            }
            _ => Err(ClientError::Driver(Status::InvalidDeviceRequest)),
        }
    }

    fn call_pending(
        &mut self,
        _code: u32,
        _input: &[u8],
        _output: &mut [u8],
        _timeout: Option<std::time::Duration>,
    ) -> Result<Option<usize>> {
        Err(ClientError::Driver(Status::InvalidDeviceRequest))
    }
}

impl OverlappedTransport for FakeTransport {
    type Request = InFlight<FakeOs>;

    fn start(&mut self, code: u32, input: &[u8], output_len: usize) -> Result<Started<InFlight<FakeOs>>> {
        self.registry.start(code, input, output_len)
    }

    fn poll_request(&mut self, request: &mut InFlight<FakeOs>, waker: &Waker) -> Poll<Result<Vec<u8>>> {
        self.registry.poll(request, waker)
    }

    fn cancel(&mut self, request: InFlight<FakeOs>) {
        self.registry.cancel(request);
    }
}

/// A `DIVERT_READ` answer with one packet carrying `frame`.
fn batch_of_one(frame: &[u8]) -> Vec<u8> {
    let meta = DivertMeta { module: 1, serial: 9, link_id: 3, time_ns: 5, direction: Direction::Send };
    let packet = DivertPacketRepr { meta, frame };
    let size = DivertBatch::<&[u8]>::LEN + packet.buffer_len().unwrap();
    let mut answer = vec![0u8; size];
    let counters = DivertCounters { diverted: 1, ..DivertCounters::default() };
    DivertBatchRepr { count: 1, counters, size }.emit(&mut DivertBatch::new_unchecked(&mut answer[..])).unwrap();
    packet.emit(&mut DivertPacket::new_unchecked(&mut answer[DivertBatch::<&[u8]>::LEN..])).unwrap();
    answer
}

fn async_divert(registry: &Arc<Registry<FakeOs>>) -> AsyncDivert<FakeTransport> {
    let config = DivertConfig::new(compile_filter("udp").unwrap());
    AsyncDivert::open(FakeTransport { registry: Arc::clone(registry) }, &config).unwrap()
}

#[test]
fn an_async_divert_read_future_dropped_after_the_kernel_completed_its_read_leaves_the_batch_to_the_next_read() {
    let registry = registry();
    let mut divert = async_divert(&registry);
    let (wakes, waker) = waker();
    let mut context = Context::from_waker(&waker);
    let answer = batch_of_one(b"frame");
    {
        let mut read = pin!(divert.read(16));
        assert!(read.as_mut().poll(&mut context).is_pending());
        assert!(kernel_completes(&registry, 0, &answer, Ok(answer.len())), "the driver completes the read");
        assert_eq!(woken(&wakes), 1);
        // Dropped without another poll, as a `select!` whose timeout won drops it.
    }
    assert!(cancelled(&registry).is_empty(), "a dropped future leaves the read to the hook");
    assert!(divert.reading());
    assert_eq!(held(&registry, 0).code, IOCTL_DIVERT_READ);
    let request = registry.os().inputs.lock().unwrap()[0].clone();
    assert_eq!(ReadRequestRepr::parse(&ReadRequest::new_unchecked(&request[..])).unwrap(), ReadRequestRepr { max_records: 16, wait: true });
    let batch = match pin!(divert.read(4)).poll(&mut context) {
        Poll::Ready(batch) => batch.unwrap(),
        Poll::Pending => panic!("the read in flight completed already"),
    };
    assert_eq!(registry.os().held.lock().unwrap().len(), 1, "no second read issued: the batch is the first read's");
    let packets: Vec<_> = batch.packets().map(|packet| packet.unwrap()).collect();
    assert_eq!((packets.len(), packets[0].frame, packets[0].ticket().serial), (1, &b"frame"[..], 9));
    assert_eq!(batch.counters().diverted, 1);
    assert!(!divert.reading());
    // A read still in flight when the hook closes is cancelled, and its memory outlives the hook
    // until the kernel completes it.
    assert!(pin!(divert.read(16)).poll(&mut context).is_pending());
    let second = held(&registry, 1);
    divert.close().unwrap();
    assert_eq!(cancelled(&registry), [second.record.addr()], "closing the hook cancelled its read");
    assert_eq!(registry.in_flight(), 1);
    let late = batch_of_one(b"late");
    assert!(kernel_completes(&registry, 1, &late, Ok(late.len())), "its answer won the race: written into memory still alive");
    assert_eq!(registry.in_flight(), 0);
}

#[test]
fn dropping_an_async_divert_cancels_its_read_in_flight() {
    let registry = registry();
    let mut divert = async_divert(&registry);
    let (_, waker) = waker();
    assert!(pin!(divert.read(16)).poll(&mut Context::from_waker(&waker)).is_pending());
    assert!(cancelled(&registry).is_empty());
    drop(divert);
    assert_eq!(cancelled(&registry), [held(&registry, 0).record.addr()]);
    assert!(kernel_completes(&registry, 0, &[], Err(ClientError::Driver(Status::Cancelled))));
    assert_eq!(registry.in_flight(), 0);
}

/// A `READ_EVENTS` answer: a module paused, as event `sequence`, for each of `sequences`.
fn paused_events(sequences: &[u64]) -> Vec<u8> {
    let repr = EventBatchRepr { count: sequences.len() as u32, lost: 0 };
    let mut answer = vec![0u8; repr.buffer_len()];
    repr.emit(&mut EventBatch::new_unchecked(&mut answer[..])).unwrap();
    for (record, &sequence) in answer[EventBatch::<&[u8]>::LEN..].chunks_exact_mut(EventRecord::<&[u8]>::LEN).zip(sequences) {
        let event = EventRecordRepr { sequence, time_ns: 1, module: 0x0001_0000, body: EventBody::ModulePaused };
        event.emit(&mut EventRecord::new_unchecked(record)).unwrap();
    }
    answer
}

#[test]
fn an_event_read_outlives_its_dropped_future_and_is_cancelled_with_the_subscription() {
    let registry = registry();
    let mut events = AsyncEvents::subscribe(FakeTransport { registry: Arc::clone(&registry) }, 8, EventKind::ALL_MASK).unwrap();
    assert_eq!(events.subscription().next_sequence, 5);
    let (wakes, waker) = waker();
    let mut context = Context::from_waker(&waker);
    assert!(pin!(events.next_event()).poll(&mut context).is_pending(), "nothing yet: the read pends, its future is dropped");
    assert!(cancelled(&registry).is_empty(), "a dropped future leaves the read in flight");
    assert_eq!(held(&registry, 0).code, IOCTL_READ_EVENTS);
    let answer = paused_events(&[5, 6]);
    assert!(kernel_completes(&registry, 0, &answer, Ok(answer.len())));
    assert_eq!(woken(&wakes), 1, "the waker of the dropped future's poll: the subscription's read");
    let sequences: Vec<u64> = (0..2)
        .map(|_| match pin!(events.next_event()).poll(&mut context) {
            Poll::Ready(event) => event.unwrap().sequence,
            Poll::Pending => panic!("read"),
        })
        .collect();
    assert_eq!(sequences, [5, 6], "both events of the batch, in order, from one read");
    assert!(pin!(events.next_event()).poll(&mut context).is_pending());
    assert_eq!(registry.os().held.lock().unwrap().len(), 2, "a second read in flight");
    let second = held(&registry, 1);
    drop(events);
    assert_eq!(cancelled(&registry), [second.record.addr()], "dropping the subscription cancels its read");
    assert!(kernel_completes(&registry, 1, &[], Err(ClientError::Driver(Status::Cancelled))));
    assert_eq!(registry.in_flight(), 0);
}
