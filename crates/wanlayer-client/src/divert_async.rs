//! [`AsyncDivert`]: a user-mode hook whose batch reads are [`Future`]s, for programs that wait on
//! many things in one thread — with any executor: the library brings no runtime.
//!
//! A read is one overlapped `DIVERT_READ` (with `READ_WAIT`): started when a read is first polled
//! and completed by the driver when a packet is diverted (its wake DPC). The read in flight
//! belongs to the [`AsyncDivert`], not to the future that polled it: dropping a [`ReadFuture`]
//! (a `select!` with a timeout does it routinely) leaves the read in flight, and the next read
//! picks up its batch, so a batch the driver completed as the future was dropped is never lost
//! (were the read cancelled then, its packets would only get the hook's fail policy at their time
//! limit). Closing or dropping the [`AsyncDivert`] cancels the read (`CancelIoEx`) and closes the
//! transport, which waits for the cancelled read's completion. The transport says how a request
//! in flight is started, polled and cancelled ([`OverlappedTransport`]):
//!
//! * `windows::WindowsOverlapped` (Windows): the handle opened with `FILE_FLAG_OVERLAPPED` and
//!   bound to an I/O completion port, one `OVERLAPPED` per request in a slot that also owns its
//!   buffers, completions delivered by the port's thread, which wakes the last future that polled
//!   the read; a cancelled request's slot is freed only once the kernel completed it (the state
//!   machine is [`crate::overlapped`], tested on every host; the Windows calls around it are
//!   compile-checked only);
//! * `sim::SimOverlapped` (feature `simulator`, hosts other than Windows): a handle of the
//!   driver's control device in a simulated server. Time is virtual: a read waiting for the world
//!   polls it forward — one step of the server's script per poll, asking to be polled again — and
//!   once the script is done it stays pending (an executor with nothing else to run then stops;
//!   the read stays in flight for the next one).
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
//! use wanlayer_client::divert_async::AsyncDivert;
//! use wanlayer_client::sim::{DriverFilter, SimOverlapped, SimServer};
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

use wanlayer_proto::ioctl::{IOCTL_DIVERT_CLOSE, IOCTL_DIVERT_READ};
use wanlayer_proto::limits::MAX_READ_BATCH;
use wanlayer_proto::{DivertBatch, DivertBatchRepr, DivertCounters, DivertPacketRepr, HeaderOnly, ReadRequest, ReadRequestRepr};

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

/// A user-mode hook with asynchronous reads over an [`OverlappedTransport`]. Dropping it cancels
/// the read in flight and closes the transport, which closes the hook (as dropping a [`Divert`]
/// does): every packet still held gets the fail policy.
pub struct AsyncDivert<T: OverlappedTransport> {
    divert: Divert<T>,
    max_frame: u32,
    /// The read in flight: the hook's, whichever future started it.
    read: Option<T::Request>,
}

impl<T: OverlappedTransport> AsyncDivert<T> {
    /// Registers the hook (`DIVERT_OPEN`, which completes at once).
    ///
    /// # Errors
    /// As [`Divert::open`].
    pub fn open(transport: T, config: &DivertConfig) -> Result<Self> {
        Ok(Self { divert: Divert::open(transport, config)?, max_frame: config.max_frame, read: None })
    }

    /// The hook's identity in the chain.
    pub fn hook(&self) -> u64 {
        self.divert.hook()
    }

    /// True while a read is in flight.
    pub fn reading(&self) -> bool {
        self.read.is_some()
    }

    /// The batch of the read in flight once it completed, or of a new read of up to `max`
    /// packets (`DIVERT_READ` with `READ_WAIT`, overlapped) started unless one is in flight; while
    /// it is, the waker is registered. A read in flight asks for the `max` of the poll that
    /// started it.
    ///
    /// # Errors
    /// The transport's errors; a malformed answer.
    pub fn poll_read(&mut self, max: u32, context: &mut Context<'_>) -> Poll<Result<Batch>> {
        let answer = match self.read.as_mut() {
            Some(request) => match self.divert.transport_mut().poll_request(request, context.waker()) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(answer) => {
                    self.read = None;
                    answer
                }
            },
            None => match self.start(max) {
                Ok(Started::Done(answer)) => Ok(answer),
                Ok(Started::Pending(request)) => {
                    self.read = Some(request);
                    // Polled at once: it may have completed while being started.
                    return self.poll_read(max, context);
                }
                Err(error) => Err(error),
            },
        };
        Poll::Ready(answer.and_then(Batch::parse))
    }

    /// Waits for diverted packets and reads up to `max` of them ([`AsyncDivert::poll_read`]).
    /// Dropping the future leaves the read in flight for the next call, so no batch is lost.
    pub fn read(&mut self, max: u32) -> ReadFuture<'_, T> {
        ReadFuture { divert: self, max }
    }

    /// Answers a batch of packets (`DIVERT_VERDICTS`, which completes at once), in order.
    pub fn answer(&mut self, verdicts: &[(DivertTicket, Verdict)]) -> impl Future<Output = Result<Answered>> {
        std::future::ready(self.divert.answer(verdicts))
    }

    /// Cancels the read in flight, if any (`CancelIoEx`). A batch the driver completed it with
    /// first is dropped: its packets get the fail policy at their time limit.
    pub fn cancel_read(&mut self) {
        if let Some(request) = self.read.take() {
            self.divert.transport_mut().cancel(request);
        }
    }

    /// Closes the hook (`DIVERT_CLOSE`) after cancelling the read in flight: every packet still
    /// held gets the fail policy. The transport is closed with `self` (on Windows, waiting for the
    /// cancelled read's completion).
    ///
    /// # Errors
    /// The transport's errors.
    pub fn close(mut self) -> Result<()> {
        self.cancel_read();
        let mut input = [0u8; HeaderOnly::LEN];
        HeaderOnly.emit(&mut input)?;
        self.divert.transport_mut().call(IOCTL_DIVERT_CLOSE, &input, &mut []).map(|_| ())
    }

    fn start(&mut self, max: u32) -> Result<Started<T::Request>> {
        let max = max.clamp(1, MAX_READ_BATCH);
        let mut request = [0u8; ReadRequest::<&[u8]>::LEN];
        ReadRequestRepr { max_records: max, wait: true }.emit(&mut ReadRequest::new_unchecked(&mut request[..]))?;
        let room = DivertBatch::<&[u8]>::LEN
            + max as usize * wanlayer_proto::divert_packet_len(self.max_frame as usize).map_err(ClientError::Malformed)?;
        self.divert.transport_mut().start(IOCTL_DIVERT_READ, &request, room)
    }
}

impl<T: OverlappedTransport> Drop for AsyncDivert<T> {
    fn drop(&mut self) {
        self.cancel_read();
    }
}

/// [`AsyncDivert::read`]'s future: the batch once a packet is diverted. Dropping it leaves the
/// read in flight, the [`AsyncDivert`]'s.
#[must_use = "a read does nothing until it is polled"]
pub struct ReadFuture<'d, T: OverlappedTransport> {
    divert: &'d mut AsyncDivert<T>,
    max: u32,
}

impl<T: OverlappedTransport> Future for ReadFuture<'_, T> {
    type Output = Result<Batch>;

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.divert.poll_read(this.max, context)
    }
}
