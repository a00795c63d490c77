//! [`AsyncDivert`]: a user-mode hook whose batch reads are [`Future`]s, for programs that wait on
//! many things in one thread — with any executor: the library brings no runtime.
//!
//! A read is one overlapped `DIVERT_READ` (with `READ_WAIT`): started when the future is first
//! polled, completed by the driver when a packet is diverted (its wake DPC), and cancelled
//! (`CancelIoEx`) when the future is dropped before it completes (a batch the driver completed
//! in that same moment is dropped with it: its packets get the hook's fail policy at their time
//! limit). The transport says how a
//! request in flight is started, polled and cancelled ([`OverlappedTransport`]):
//!
//! * `windows::WindowsOverlapped` (Windows): the handle opened with `FILE_FLAG_OVERLAPPED` and
//!   bound to an I/O completion port, one `OVERLAPPED` per request in a slot that also owns its
//!   buffers, completions delivered by the port's thread, which wakes the future; a dropped
//!   future's request is cancelled and its slot freed only once the kernel completed it (the
//!   state machine is [`crate::overlapped`], tested on every host; the Windows calls around it are
//!   compile-checked only);
//! * `SimOverlapped` (feature `simulator`, hosts other than Windows): a handle of the driver's control device in a
//!   simulated server. Time is virtual: a read waiting for the world polls it forward — one step
//!   of the server's script per poll, asking to be polled again — and once the script is done it
//!   stays pending (an executor with nothing else to run then stops; dropping the future cancels
//!   the read).
//!
//! Verdicts and `DIVERT_CLOSE` never pend in the driver: [`AsyncDivert::answer`] completes at
//! once, as the blocking [`Divert::answer`] does.
//!
//! ```
//! # #[cfg(all(feature = "simulator", not(windows)))] {
//! use std::future::Future;
//! use std::pin::pin;
//! use std::task::{Context, Poll, Waker};
//! use wanlayer_client::divert::{compile_filter, DivertConfig, Verdict};
//! use wanlayer_client::divert_async::{AsyncDivert, SimOverlapped};
//! use wanlayer_client::sim::{DriverFilter, SimServer};
//! use wanlayer_proto::Access;
//! use wanlayer_sim::{Edge, Flow, LinkParams, Rras};
//!
//! let rras = Rras::builder().build(DriverFilter::new());
//! rras.start().unwrap();
//! let link = rras.link_up(Edge::WanIp, LinkParams::new());
//! let server = SimServer::new(rras).then(move |rras| {
//!     rras.send_flow(&link, &Flow::udp(53, 40_000), 2);
//! });
//! let config = DivertConfig::new(compile_filter("udp").unwrap());
//! let mut divert = AsyncDivert::open(SimOverlapped::open(&server, Access::READ_WRITE).unwrap(), &config).unwrap();
//! let mut read = pin!(divert.read(16));
//! let mut context = Context::from_waker(Waker::noop());
//! let batch = loop {
//!     if let Poll::Ready(batch) = read.as_mut().poll(&mut context) {
//!         break batch.unwrap();
//!     }
//! };
//! let verdicts: Vec<_> = batch.packets().map(|packet| (packet.unwrap().ticket(), Verdict::Pass)).collect();
//! assert_eq!(verdicts.len(), 2);
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use wanlayer_proto::ioctl::IOCTL_DIVERT_READ;
use wanlayer_proto::limits::MAX_READ_BATCH;
use wanlayer_proto::{DivertBatch, DivertBatchRepr, DivertCounters, DivertPacketRepr, ReadRequest, ReadRequestRepr};

use crate::divert::{Answered, Divert, DivertConfig, DivertTicket, PacketView, Verdict};
pub use crate::overlapped::{OverlappedTransport, Started};
use crate::{ClientError, Result};

/// A batch of diverted packets, owning the read's answer.
#[derive(Clone, Debug)]
pub struct Batch {
    answer: DivertBatch<Vec<u8>>,
    counters: DivertCounters,
}

impl Batch {
    fn parse(answer: Vec<u8>) -> Result<Self> {
        let counters = DivertBatchRepr::parse(&DivertBatch::new_unchecked(&answer[..]))?.counters;
        Ok(Self { answer: DivertBatch::new_unchecked(answer), counters })
    }

    /// The hook's counters as the driver answered them.
    pub fn counters(&self) -> DivertCounters {
        self.counters
    }

    /// The packets, oldest first, borrowed from the answer.
    pub fn packets(&self) -> impl Iterator<Item = Result<PacketView<'_>>> + '_ {
        self.answer.packets().map(|packet| {
            let packet: DivertPacketRepr<'_> = packet?;
            Ok(PacketView { meta: packet.meta, frame: packet.frame })
        })
    }
}

/// A user-mode hook with asynchronous reads over an [`OverlappedTransport`]. Dropping it closes
/// the hook (as [`Divert`] does): every packet still held gets the fail policy.
pub struct AsyncDivert<T: OverlappedTransport> {
    divert: Divert<T>,
    max_frame: u32,
}

impl<T: OverlappedTransport> AsyncDivert<T> {
    /// Registers the hook (`DIVERT_OPEN`, which completes at once).
    ///
    /// # Errors
    /// As [`Divert::open`].
    pub fn open(transport: T, config: &DivertConfig) -> Result<Self> {
        Ok(Self { divert: Divert::open(transport, config)?, max_frame: config.max_frame })
    }

    /// The hook's identity in the chain.
    pub fn hook(&self) -> u64 {
        self.divert.hook()
    }

    /// Waits for diverted packets and reads up to `max` of them (`DIVERT_READ` with `READ_WAIT`,
    /// overlapped). Dropping the future before it completes cancels the read.
    pub fn read(&mut self, max: u32) -> ReadFuture<'_, T> {
        ReadFuture { divert: self, max: max.clamp(1, MAX_READ_BATCH), request: None, done: false }
    }

    /// Answers a batch of packets (`DIVERT_VERDICTS`, which completes at once), in order.
    pub fn answer(&mut self, verdicts: &[(DivertTicket, Verdict)]) -> impl Future<Output = Result<Answered>> {
        std::future::ready(self.divert.answer(verdicts))
    }

    /// Closes the hook (`DIVERT_CLOSE`); returns the transport.
    ///
    /// # Errors
    /// The transport's errors.
    pub fn close(self) -> Result<T> {
        self.divert.close()
    }
}

/// [`AsyncDivert::read`]'s future: the batch once a packet is diverted.
#[must_use = "a read does nothing until it is polled"]
pub struct ReadFuture<'d, T: OverlappedTransport> {
    divert: &'d mut AsyncDivert<T>,
    max: u32,
    request: Option<T::Request>,
    done: bool,
}

impl<T: OverlappedTransport> ReadFuture<'_, T> {
    fn start(&mut self) -> Result<Started<T::Request>> {
        let mut request = [0u8; 16];
        ReadRequestRepr { max_records: self.max, wait: true }.emit(&mut ReadRequest::new_unchecked(&mut request[..]))?;
        let room = DivertBatch::<&[u8]>::LEN
            + self.max as usize * wanlayer_proto::divert_packet_len(self.divert.max_frame as usize).map_err(ClientError::Malformed)?;
        self.divert.divert.transport_mut().start(IOCTL_DIVERT_READ, &request, room)
    }
}

// The future holds no self-reference: moving it is harmless.
impl<T: OverlappedTransport> Unpin for ReadFuture<'_, T> {}

impl<T: OverlappedTransport> Future for ReadFuture<'_, T> {
    type Output = Result<Batch>;

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(Err(ClientError::Driver(wanlayer_proto::Status::InvalidDeviceState)));
        }
        let answer = match this.request.as_mut() {
            Some(request) => match this.divert.divert.transport_mut().poll_request(request, context.waker()) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(answer) => {
                    this.request = None;
                    answer
                }
            },
            None => match this.start() {
                Ok(Started::Done(answer)) => Ok(answer),
                Ok(Started::Pending(request)) => {
                    this.request = Some(request);
                    // Polled at once: it may have completed while being started.
                    return Pin::new(this).poll(context);
                }
                Err(error) => Err(error),
            },
        };
        this.done = true;
        Poll::Ready(answer.and_then(Batch::parse))
    }
}

impl<T: OverlappedTransport> Drop for ReadFuture<'_, T> {
    fn drop(&mut self) {
        if let Some(request) = self.request.take() {
            self.divert.divert.transport_mut().cancel(request);
        }
    }
}

#[cfg(all(feature = "simulator", not(windows)))]
pub use sim::SimOverlapped;

#[cfg(all(feature = "simulator", not(windows)))]
mod sim {
    use std::task::{Poll, Waker};
    use std::time::Duration;

    use wanlayer_proto::{Access, Status};
    use wanlayer_sim::{HandleId, IoCompletion, IoId, IoOutcome};

    use super::{OverlappedTransport, Started};
    use crate::sim::SimServer;
    use crate::{ClientError, Result, Transport};

    /// A handle of the driver's control device in a simulated server, with overlapped requests:
    /// an IRP the driver pends stays in flight until its wake DPC, cleanup or a cancellation
    /// completes it.
    pub struct SimOverlapped<'s> {
        server: &'s SimServer,
        handle: HandleId,
    }

    impl<'s> SimOverlapped<'s> {
        /// Opens a handle with `access` (`IRP_MJ_CREATE`).
        ///
        /// # Errors
        /// [`ClientError::Driver`] with the status the driver's create completed with.
        pub fn open(server: &'s SimServer, access: Access) -> Result<Self> {
            let handle = server.rras().filter().control_open(access).map_err(|status| ClientError::Driver(Status::from(status as u32)))?;
            Ok(Self { server, handle })
        }

        fn answer(done: IoCompletion) -> Result<Vec<u8>> {
            if done.status == Status::Success {
                Ok(done.output)
            } else {
                Err(ClientError::Driver(done.status))
            }
        }
    }

    impl Transport for SimOverlapped<'_> {
        fn call(&mut self, code: u32, input: &[u8], output: &mut [u8]) -> Result<usize> {
            match self.call_pending(code, input, output, Some(Duration::ZERO))? {
                Some(written) => Ok(written),
                None => Err(ClientError::Driver(Status::Cancelled)),
            }
        }

        fn call_pending(&mut self, code: u32, input: &[u8], output: &mut [u8], _timeout: Option<Duration>) -> Result<Option<usize>> {
            let mut request = match self.start(code, input, output.len())? {
                Started::Done(answer) => return copy_out(output, &answer).map(Some),
                Started::Pending(request) => request,
            };
            loop {
                if let Poll::Ready(answer) = self.poll_request(&mut request, Waker::noop()) {
                    return match answer {
                        Ok(answer) => copy_out(output, &answer).map(Some),
                        Err(ClientError::Driver(Status::Cancelled)) => Ok(None),
                        Err(error) => Err(error),
                    };
                }
                if self.server.steps_left() == 0 {
                    self.cancel(request);
                    return Ok(None);
                }
            }
        }
    }

    fn copy_out(output: &mut [u8], answer: &[u8]) -> Result<usize> {
        let place = output.get_mut(..answer.len()).ok_or(ClientError::Driver(Status::BufferTooSmall))?;
        place.copy_from_slice(answer);
        Ok(answer.len())
    }

    impl OverlappedTransport for SimOverlapped<'_> {
        type Request = IoId;

        fn start(&mut self, code: u32, input: &[u8], output_len: usize) -> Result<Started<IoId>> {
            match self.server.rras().filter().control_ioctl(self.handle, code, input, output_len) {
                IoOutcome::Complete(done) => Self::answer(done).map(Started::Done),
                IoOutcome::Pending(io) => Ok(Started::Pending(io)),
            }
        }

        /// Completed: the answer. Otherwise the world moves one step of the server's script (time
        /// passing) and the waker is woken to poll again; with the script done, `Pending` with no
        /// wake: nothing in the simulated world will complete it any more.
        fn poll_request(&mut self, request: &mut IoId, waker: &Waker) -> Poll<Result<Vec<u8>>> {
            let driver = self.server.rras().filter();
            if let Some(done) = driver.control_completion(*request) {
                return Poll::Ready(Self::answer(done));
            }
            if self.server.step() {
                if let Some(done) = driver.control_completion(*request) {
                    return Poll::Ready(Self::answer(done));
                }
                waker.wake_by_ref();
            }
            Poll::Pending
        }

        fn cancel(&mut self, request: IoId) {
            let driver = self.server.rras().filter();
            driver.control_cancel(request);
            let _ = driver.control_completion(request);
        }
    }

    impl Drop for SimOverlapped<'_> {
        fn drop(&mut self) {
            self.server.rras().filter().control_close(self.handle);
        }
    }
}
