//! The event subscription read asynchronously over the simulator's overlapped transport, against
//! `wanlayer.sys`'s own control device in a simulated RRAS server: the same events a blocking
//! subscriber reads, a read that outlives the future that started it, and cancellation.
#![cfg(all(feature = "simulator", not(windows)))]

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use wanlayer_client::events_async::AsyncEvents;
use wanlayer_client::sim::{DriverFilter, SimOverlapped, SimServer};
use wanlayer_client::Client;
use wanlayer_proto::{Access, EventKind, EventRecordRepr};
use wanlayer_sim::{Edge, LinkParams, Rras};

/// Remembers that it was woken.
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::Release);
    }
}

/// Polls `future` until it completes, or until a poll leaves it pending without a wake (nothing
/// in the simulated world will complete it any more): then `None`, and the future is dropped.
fn run<F: Future>(future: F) -> Option<F::Output> {
    let flag = Arc::new(Flag(AtomicBool::new(true)));
    let waker = Waker::from(Arc::clone(&flag));
    let mut context = Context::from_waker(&waker);
    let mut future = pin!(future);
    while flag.0.swap(false, Ordering::AcqRel) {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return Some(output);
        }
    }
    None
}

fn started() -> Rras<DriverFilter> {
    let rras = Rras::builder().build(DriverFilter::new());
    rras.start().expect("the server starts");
    rras
}

fn finish(server: SimServer) {
    assert_eq!(server.rras().engine().control().sessions().subscribers, 0, "closing the handles released the rings");
    let mut rras = server.into_rras();
    rras.run_until_idle();
    rras.unload();
    rras.verifier().assert_clean();
    assert!(rras.pools().iter().all(|(_, usage)| usage.current == 0), "pools back to zero: {:?}", rras.pools());
}

#[test]
fn the_event_stream_yields_what_a_blocking_subscriber_reads_in_order() {
    let server = SimServer::scripted().unwrap();
    {
        let mut blocking = Client::connect(server.open(Access::READ).unwrap()).unwrap();
        blocking.subscribe(1024, EventKind::ALL_MASK).unwrap();
        let mut events = AsyncEvents::subscribe(SimOverlapped::open(&server, Access::READ).unwrap(), 1024, EventKind::ALL_MASK).unwrap();
        assert_eq!(events.subscription().capacity, 1024);
        let mut streamed: Vec<EventRecordRepr> = Vec::new();
        while let Some(event) = run(events.next_event()) {
            streamed.push(event.expect("an event"));
        }
        assert_eq!(server.steps_left(), 0, "waiting ran the script to its end");
        assert!(events.reading(), "the last read stays in flight after its future was dropped");
        let kinds: Vec<&str> = streamed.iter().map(|event| event.body.kind().name()).collect();
        for kind in ["line-up", "line-down", "module-paused", "module-restarted", "hook-added", "hook-removed"] {
            assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
        }
        assert!(streamed.windows(2).all(|pair| pair[0].sequence < pair[1].sequence), "oldest first");
        let read = blocking.read_events(1024, None).unwrap();
        assert_eq!(read.events, streamed, "the same events as the blocking subscriber's");
        assert_eq!(events.lost(), 0);
        drop(events);
        assert_eq!(server.rras().engine().control().sessions().subscribers, 1, "the stream's handle closed, the blocking one open");
    }
    finish(server);
}

#[test]
fn a_read_outlives_the_future_that_started_it_and_completes_for_the_next() {
    let server = SimServer::new(started());
    {
        let mut events = AsyncEvents::subscribe(SimOverlapped::open(&server, Access::READ).unwrap(), 16, EventKind::ALL_MASK).unwrap();
        assert!(run(events.next_batch()).is_none(), "nothing happened: the read pends, its future is dropped");
        assert!(events.reading(), "the read is still in flight");
        server.rras().link_up(Edge::WanIp, LinkParams::new());
        server.rras().link_up(Edge::WanIpv6, LinkParams::new());
        server.rras().run_until_idle();
        server.rras().filter().control_service();
        let batch = run(events.next_batch()).expect("the read in flight completed").unwrap();
        let kinds: Vec<&str> = batch.events.iter().map(|event| event.body.kind().name()).collect();
        assert_eq!(kinds, ["line-up"], "the driver completed the pending read with the first event");
        assert!(!events.reading());
        let second = run(events.next_event()).expect("queued: a new read completes at once").unwrap();
        assert_eq!(second.body.kind().name(), "line-up");
        assert!(second.sequence > batch.events[0].sequence);
        events.unsubscribe().expect("UNSUBSCRIBE_EVENTS");
    }
    finish(server);
}

#[test]
fn dropping_the_subscription_cancels_its_read_and_a_small_ring_counts_what_it_lost() {
    let rras = started();
    let server = SimServer::new(rras).then(|rras| {
        for _ in 0..4 {
            rras.link_up(Edge::WanIp, LinkParams::new());
        }
    });
    {
        let mut events = AsyncEvents::subscribe(SimOverlapped::open(&server, Access::READ).unwrap(), 2, EventKind::ALL_MASK).unwrap();
        server.run_script();
        let first = run(events.next_batch()).expect("the script's links came up").unwrap();
        assert_eq!((first.events.len(), first.lost), (2, 2), "a ring of two: two kept, two lost");
        assert_eq!(events.lost(), 2);
        assert!(run(events.next_event()).is_none(), "nothing more: pending");
        assert!(events.reading());
        assert_eq!(server.rras().engine().control().sessions().subscribers, 1);
    }
    finish(server);
}

#[test]
fn a_cancelled_read_takes_no_events_and_the_next_read_finds_them() {
    let server = SimServer::new(started());
    {
        let mut events = AsyncEvents::subscribe(SimOverlapped::open(&server, Access::READ).unwrap(), 8, EventKind::ALL_MASK).unwrap();
        assert!(run(events.next_event()).is_none(), "nothing happened: pending");
        events.cancel_read();
        assert!(!events.reading());
        server.rras().link_up(Edge::WanIp, LinkParams::new());
        server.rras().run_until_idle();
        let event = run(events.next_event()).expect("queued: a new read completes at once").unwrap();
        assert_eq!(event.body.kind().name(), "line-up");
    }
    finish(server);
}
