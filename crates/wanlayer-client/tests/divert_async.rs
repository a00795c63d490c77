//! The asynchronous user-mode hook API over the simulator's overlapped transport: reads as
//! futures, run by a small executor written here (the library brings none), against
//! `wanlayer.sys`'s own control device in a simulated RRAS server.
#![cfg(all(feature = "simulator", not(windows)))]

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use wanlayer_client::divert::{compile_filter, DivertConfig, FailPolicy, Verdict};
use wanlayer_client::divert_async::AsyncDivert;
use wanlayer_client::sim::{DriverFilter, SimOverlapped, SimServer};
use wanlayer_proto::Access;
use wanlayer_sim::{Edge, Flow, LinkParams, Rras, SimLink};

/// Remembers that it was woken.
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::Release);
    }
}

/// Polls `future` until it completes, or until a poll leaves it pending without a wake (nothing
/// in the simulated world will complete it any more): then `None`.
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

/// Polls both futures in turn until both complete (a two-way join).
fn run_both<A: Future, B: Future>(a: A, b: B) -> Option<(A::Output, B::Output)> {
    let flag = Arc::new(Flag(AtomicBool::new(true)));
    let waker = Waker::from(Arc::clone(&flag));
    let mut context = Context::from_waker(&waker);
    let (mut a, mut b) = (pin!(a), pin!(b));
    let (mut first, mut second) = (None, None);
    while flag.0.swap(false, Ordering::AcqRel) {
        if first.is_none() {
            if let Poll::Ready(output) = a.as_mut().poll(&mut context) {
                first = Some(output);
                flag.0.store(true, Ordering::Release);
            }
        }
        if second.is_none() {
            if let Poll::Ready(output) = b.as_mut().poll(&mut context) {
                second = Some(output);
                flag.0.store(true, Ordering::Release);
            }
        }
        if let (Some(_), Some(_)) = (&first, &second) {
            return first.zip(second);
        }
    }
    None
}

fn server() -> (Rras<DriverFilter>, SimLink) {
    let rras = Rras::builder().build(DriverFilter::new());
    rras.start().expect("the server starts");
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    (rras, link)
}

fn config(filter: &str) -> DivertConfig {
    DivertConfig::new(compile_filter(filter).expect("the filter compiles"))
}

fn finish(server: SimServer) {
    let mut rras = server.into_rras();
    rras.run_until_idle();
    rras.unload();
    rras.verifier().assert_clean();
    assert!(rras.pools().iter().all(|(_, usage)| usage.current == 0), "pools back to zero: {:?}", rras.pools());
}

#[test]
fn a_read_future_completes_when_packets_are_diverted_and_its_batch_is_answered() {
    let (rras, link) = server();
    let server = SimServer::new(rras).then(move |rras| {
        rras.send_flow(&link, &Flow::udp(53, 40_000), 3);
    });
    {
        let mut divert = AsyncDivert::open(SimOverlapped::open(&server, Access::READ_WRITE).unwrap(), &config("udp")).unwrap();
        let batch = run(divert.read(16)).expect("the read completes once the script diverts packets").unwrap();
        assert_eq!(batch.counters().diverted, 3);
        let verdicts: Vec<_> = batch.packets().map(|packet| (packet.unwrap().ticket(), Verdict::Pass)).collect();
        assert_eq!(verdicts.len(), 3);
        let answered = run(divert.answer(&verdicts)).expect("verdicts complete at once").unwrap();
        assert_eq!((answered.applied, answered.refused), (3, 0));
        server.rras().run_until_idle();
        assert_eq!(server.rras().miniport(Edge::WanIp).sent.len(), 3, "passed on after the verdicts");
    }
    finish(server);
}

#[test]
fn two_hooks_wait_in_one_thread_and_each_read_gets_its_own_packets() {
    let (rras, link) = server();
    let server = SimServer::new(rras).then(move |rras| {
        rras.send_flow(&link, &Flow::tcp(443, 50_443), 2);
        rras.send_flow(&link, &Flow::udp(53, 40_000), 1);
    });
    {
        let mut udp = AsyncDivert::open(SimOverlapped::open(&server, Access::READ_WRITE).unwrap(), &config("udp")).unwrap();
        let tcp_config = DivertConfig { altitude: 3000, ..config("tcp") };
        let mut tcp = AsyncDivert::open(SimOverlapped::open(&server, Access::READ_WRITE).unwrap(), &tcp_config).unwrap();
        let (udp_batch, tcp_batch) = run_both(udp.read(16), tcp.read(16)).expect("both reads complete");
        let (udp_batch, tcp_batch) = (udp_batch.unwrap(), tcp_batch.unwrap());
        assert_eq!((udp_batch.packets().count(), tcp_batch.packets().count()), (1, 2));
        for (divert, batch) in [(&mut udp, &udp_batch), (&mut tcp, &tcp_batch)] {
            let verdicts: Vec<_> = batch.packets().map(|packet| (packet.unwrap().ticket(), Verdict::Drop)).collect();
            assert_eq!(run(divert.answer(&verdicts)).unwrap().unwrap().applied, verdicts.len() as u32);
        }
        server.rras().run_until_idle();
        assert!(server.rras().miniport(Edge::WanIp).sent.is_empty(), "every packet dropped");
    }
    finish(server);
}

#[test]
fn a_read_future_dropped_after_the_driver_completed_its_read_leaves_the_batch_to_the_next_read() {
    let (rras, link) = server();
    let server = SimServer::new(rras);
    {
        let quick = DivertConfig { timeout: Duration::from_millis(10), fail: FailPolicy::Drop, ..config("udp") };
        let mut divert = AsyncDivert::open(SimOverlapped::open(&server, Access::READ_WRITE).unwrap(), &quick).unwrap();
        {
            let mut read = pin!(divert.read(16));
            assert!(read.as_mut().poll(&mut Context::from_waker(Waker::noop())).is_pending(), "nothing diverted yet");
            // Packets diverted: the driver's wake DPC completes the read in flight. Then the
            // future is dropped without another poll, as a `select!` whose timeout won drops it.
            server.rras().send_flow(&link, &Flow::udp(53, 40_000), 2);
            server.rras().run_until_idle();
            server.rras().filter().control_service();
        }
        assert!(divert.reading(), "the dropped future's read is the hook's");
        let batch = run(divert.read(16)).expect("the next read picks up the completed read, with no script left to run").unwrap();
        let verdicts: Vec<_> = batch.packets().map(|packet| (packet.unwrap().ticket(), Verdict::Pass)).collect();
        assert_eq!(verdicts.len(), 2);
        let answered = run(divert.answer(&verdicts)).unwrap().unwrap();
        assert_eq!((answered.applied, answered.refused), (2, 0), "answered before their time limit");
        server.rras().advance(20_000_000);
        server.rras().filter().control_service();
        server.rras().run_until_idle();
        assert_eq!(server.rras().miniport(Edge::WanIp).sent.len(), 2, "both passed by their verdicts, none dropped by the fail policy");
        divert.close().expect("DIVERT_CLOSE");
    }
    finish(server);
}

#[test]
fn a_read_left_in_flight_is_cancelled_when_the_hook_is_closed_or_dropped() {
    for close in [true, false] {
        let (rras, _link) = server();
        let server = SimServer::new(rras);
        {
            let mut divert = AsyncDivert::open(SimOverlapped::open(&server, Access::READ_WRITE).unwrap(), &config("udp")).unwrap();
            assert!(run(divert.read(16)).is_none(), "nothing diverted: the read pends, its future is dropped");
            assert!(divert.reading());
            if close {
                divert.close().expect("DIVERT_CLOSE");
            } else {
                drop(divert);
            }
        }
        assert_eq!(server.rras().engine().control().divert_hooks(), 0, "the hook left the chain");
        finish(server);
    }
}
