//! [`AsyncEvents`]: the control device's event subscription read asynchronously — events as a
//! stream ([`AsyncEvents::poll_next_event`], [`AsyncEvents::next_event`]) or in batches — over any
//! [`OverlappedTransport`], with any executor (the library brings no runtime).
//!
//! A read is one overlapped `READ_EVENTS` with `READ_WAIT`, which the driver completes at once
//! when events are queued and otherwise pends until its wake DPC finds some. The read in flight
//! belongs to the subscription, not to the future that polled it: dropping a [`NextEvent`] or
//! [`NextBatch`] leaves the read in flight, and the next one picks it up, so no completed batch is
//! ever dropped on the floor (a read cancelled as it completes would lose its events). Dropping the
//! [`AsyncEvents`] cancels the read (`CancelIoEx`; on Windows its buffers live until the kernel
//! completed it, see [`crate::overlapped`]) and closes the transport.
//!
//! ```
//! # #[cfg(all(feature = "simulator", not(windows)))] {
//! use std::future::Future;
//! use std::pin::pin;
//! use std::task::{Context, Poll, Waker};
//! use wanlayer_client::events_async::AsyncEvents;
//! use wanlayer_client::sim::{DriverFilter, SimOverlapped, SimServer};
//! use wanlayer_proto::{Access, EventKind};
//! use wanlayer_sim::{Edge, LinkParams, Rras};
//!
//! let rras = Rras::builder().build(DriverFilter::new());
//! rras.start().unwrap();
//! let server = SimServer::new(rras).then(|rras| {
//!     rras.link_up(Edge::WanIp, LinkParams::new());
//! });
//! let mut events = AsyncEvents::subscribe(SimOverlapped::open(&server, Access::READ).unwrap(), 64, EventKind::ALL_MASK).unwrap();
//! let mut next = pin!(events.next_event());
//! let mut context = Context::from_waker(Waker::noop());
//! let event = loop {
//!     if let Poll::Ready(event) = next.as_mut().poll(&mut context) {
//!         break event.unwrap();
//!     }
//! };
//! assert_eq!(event.body.kind().name(), "line-up");
//! # }
//! ```

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use wanlayer_proto::ioctl::{IOCTL_READ_EVENTS, IOCTL_UNSUBSCRIBE_EVENTS};
use wanlayer_proto::{
    EventBatch as WireEventBatch, EventRecord, EventRecordRepr, HeaderOnly, ReadRequest, ReadRequestRepr, SubscriptionRepr,
};

use crate::client::event_batch;
use crate::overlapped::{OverlappedTransport, Started};
use crate::types::EventBatch;
use crate::{Client, Result};

/// Events one read asks for at most.
const MAX_EVENTS_PER_READ: u32 = 256;

/// An event subscription of one handle, read asynchronously.
pub struct AsyncEvents<T: OverlappedTransport> {
    transport: T,
    subscription: SubscriptionRepr,
    /// Events per read: the ring's capacity, at most [`MAX_EVENTS_PER_READ`].
    per_read: u32,
    /// The read in flight.
    request: Option<T::Request>,
    /// Events read and not handed out yet, oldest first.
    ready: VecDeque<EventRecordRepr>,
    lost: u64,
}

impl<T: OverlappedTransport> AsyncEvents<T> {
    /// Makes `transport`'s handle an event subscriber with a ring of `capacity` events of the
    /// kinds in `mask` (`SUBSCRIBE_EVENTS`, which completes at once).
    ///
    /// # Errors
    /// As [`Client::subscribe`].
    pub fn subscribe(transport: T, capacity: u32, mask: u32) -> Result<Self> {
        let mut client = Client::new(transport);
        let subscription = client.subscribe(capacity, mask)?;
        Ok(Self {
            transport: client.into_transport(),
            subscription,
            per_read: subscription.capacity.clamp(1, MAX_EVENTS_PER_READ),
            request: None,
            ready: VecDeque::new(),
            lost: 0,
        })
    }

    /// The subscription as the driver granted it.
    pub fn subscription(&self) -> SubscriptionRepr {
        self.subscription
    }

    /// Events this subscriber lost so far because its ring was full, as of the last read.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// True while a read is in flight.
    pub fn reading(&self) -> bool {
        self.request.is_some()
    }

    /// The events of the next read (those read already and not handed out first); starts a read
    /// unless one is in flight, and registers the waker while it is. A batch may be empty.
    ///
    /// # Errors
    /// The transport's errors; `STATUS_INVALID_DEVICE_STATE` when the handle is not subscribed; a
    /// malformed answer.
    pub fn poll_next_batch(&mut self, context: &mut Context<'_>) -> Poll<Result<EventBatch>> {
        if !self.ready.is_empty() {
            return Poll::Ready(Ok(EventBatch { events: self.ready.drain(..).collect(), lost: self.lost }));
        }
        let answer = match self.request.as_mut() {
            Some(request) => match self.transport.poll_request(request, context.waker()) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(answer) => {
                    self.request = None;
                    answer
                }
            },
            None => match self.start() {
                Ok(Started::Done(answer)) => Ok(answer),
                Ok(Started::Pending(request)) => {
                    self.request = Some(request);
                    // Polled at once: it may have completed while being started.
                    return self.poll_next_batch(context);
                }
                Err(error) => Err(error),
            },
        };
        let batch = answer.and_then(|answer| event_batch(&answer));
        if let Ok(batch) = &batch {
            self.lost = batch.lost;
        }
        Poll::Ready(batch)
    }

    /// The next event, oldest first: the stream's `poll_next` (with `futures`, `poll_fn(|cx|
    /// events.poll_next_event(cx).map(Some))` is a `Stream`). The subscription never ends by
    /// itself: a closed or unsubscribed handle answers an error.
    ///
    /// # Errors
    /// As [`AsyncEvents::poll_next_batch`].
    pub fn poll_next_event(&mut self, context: &mut Context<'_>) -> Poll<Result<EventRecordRepr>> {
        if let Some(event) = self.ready.pop_front() {
            return Poll::Ready(Ok(event));
        }
        let batch = match self.poll_next_batch(context) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(batch) => batch?,
        };
        self.ready.extend(batch.events);
        match self.ready.pop_front() {
            Some(event) => Poll::Ready(Ok(event)),
            None => {
                // An empty answer: read again at the next poll rather than spin here.
                context.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }

    /// Waits for the next event. Dropping the future leaves the read in flight for the next call.
    pub fn next_event(&mut self) -> NextEvent<'_, T> {
        NextEvent { events: self }
    }

    /// Waits for the next batch of events. Dropping the future leaves the read in flight for the
    /// next call.
    pub fn next_batch(&mut self) -> NextBatch<'_, T> {
        NextBatch { events: self }
    }

    /// Cancels the read in flight, if any (its events, should it complete first, are dropped).
    pub fn cancel_read(&mut self) {
        if let Some(request) = self.request.take() {
            self.transport.cancel(request);
        }
    }

    /// Ends the subscription (`UNSUBSCRIBE_EVENTS`) after cancelling the read in flight; the
    /// transport is closed with `self`.
    ///
    /// # Errors
    /// The transport's errors.
    pub fn unsubscribe(mut self) -> Result<()> {
        self.cancel_read();
        let mut input = [0u8; HeaderOnly::LEN];
        HeaderOnly.emit(&mut input)?;
        self.transport.call(IOCTL_UNSUBSCRIBE_EVENTS, &input, &mut []).map(|_| ())
    }

    fn start(&mut self) -> Result<Started<T::Request>> {
        let mut input = [0u8; ReadRequest::<&[u8]>::LEN];
        ReadRequestRepr { max_records: self.per_read, wait: true }.emit(&mut ReadRequest::new_unchecked(&mut input[..]))?;
        let room = WireEventBatch::<&[u8]>::LEN + self.per_read as usize * EventRecord::<&[u8]>::LEN;
        self.transport.start(IOCTL_READ_EVENTS, &input, room)
    }
}

impl<T: OverlappedTransport> Drop for AsyncEvents<T> {
    fn drop(&mut self) {
        self.cancel_read();
    }
}

/// [`AsyncEvents::next_event`]'s future.
#[must_use = "a read does nothing until it is polled"]
pub struct NextEvent<'e, T: OverlappedTransport> {
    events: &'e mut AsyncEvents<T>,
}

impl<T: OverlappedTransport> Future for NextEvent<'_, T> {
    type Output = Result<EventRecordRepr>;

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().events.poll_next_event(context)
    }
}

/// [`AsyncEvents::next_batch`]'s future.
#[must_use = "a read does nothing until it is polled"]
pub struct NextBatch<'e, T: OverlappedTransport> {
    events: &'e mut AsyncEvents<T>,
}

impl<T: OverlappedTransport> Future for NextBatch<'_, T> {
    type Output = Result<EventBatch>;

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().events.poll_next_batch(context)
    }
}
