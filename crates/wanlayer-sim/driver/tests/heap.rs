//! The driver's Rust heap in the kernel model's pool: this binary's global allocator is
//! [`DriverHeap`], so what the driver's code allocates is pool tagged `WLrs`, counted and failed
//! by the model's low-resources simulation and checked for leaks at unload, as in the kernel.

use wanlayer_kernel_model::{self as model, invoke, low_resources};
use wanlayer_sim::{Edge, Flow, LinkParams, ReceiveOptions, Rras};
use wanlayer_sim_driver::heap::{DriverHeap, HEAP_TAG};
use wanlayer_sim_driver::DriverFilter;

#[global_allocator]
static HEAP: DriverHeap = DriverHeap;

fn heap_blocks() -> usize {
    model::pool_outstanding().iter().filter(|(tag, _)| *tag == HEAP_TAG).count()
}

#[test]
fn the_drivers_heap_is_tagged_pool_freed_by_its_unload_and_the_tests_memory_is_not() {
    let mut rras = Rras::new(DriverFilter::new());
    rras.start().expect("the driver loads, attaches and restarts on every edge");
    let loaded = heap_blocks();
    assert!(loaded > 0, "the engine lives in pool");
    let test_memory = vec![0u8; 4096];
    assert_eq!(heap_blocks(), loaded, "the test's own allocation is not the driver's");
    let link = rras.link_up(Edge::WanIp, LinkParams::new());
    assert!(heap_blocks() > loaded, "the link the driver tracks is pool");
    rras.send_flow(&link, &Flow::udp(53, 40000), 2);
    rras.receive_flow(&link, &Flow::udp(53, 40000), 2, ReceiveOptions::resources());
    rras.run_until_idle();
    rras.link_down(&link);
    assert!(low_resources::allocations() > loaded as u64, "each counted as the kernel's allocations are");
    rras.unload();
    rras.verifier().assert_clean();
    assert_eq!(heap_blocks(), 0, "the driver frees its heap at unload");
    drop(test_memory);
}

#[test]
fn without_heap_the_driver_does_not_load_and_leaves_nothing() {
    let filter = DriverFilter::new();
    low_resources::refuse_pool_tag(HEAP_TAG);
    let mut rras = Rras::new(filter);
    assert!(!rras.is_loaded(), "DriverEntry fails with no memory for the engine");
    assert!(low_resources::refused_by_tag() > 0);
    assert!(model::log().iter().any(|line| line.contains("no memory")), "{:?}", model::log());
    rras.unload();
    rras.verifier().assert_clean();
    assert!(model::finish().is_empty(), "{:?}", model::finish());
}

/// A block aligned beyond pool's 16 bytes.
#[repr(align(64))]
struct Wide([u8; 64]);

#[test]
fn a_block_is_grown_and_freed_by_its_owner_whoever_grows_or_frees_it() {
    let _run = model::begin();
    {
        let mut host: Vec<u64> = vec![1];
        let (mut driver, wide) = {
            let _driver_code = invoke::driver_code();
            let driver: Vec<u64> = vec![1];
            host.extend_from_slice(&[2, 3, 4]);
            (driver, Box::new(Wide([7; 64])))
        };
        assert_eq!(heap_blocks(), 3, "the driver's vector, the host's it grew (moved to pool), the wide block");
        driver.extend_from_slice(&[2, 3, 4, 5]);
        assert_eq!(heap_blocks(), 3, "grown by the test, the driver's vector stays pool");
        assert_eq!((host.as_slice(), driver.as_slice()), ([1, 2, 3, 4].as_slice(), [1, 2, 3, 4, 5].as_slice()));
        assert_eq!(((&raw const *wide).addr() % 64, wide.0[63]), (0, 7), "aligned as asked");
        // Dropped here by the test's code, not passed to a function that frees them: Miri's
        // borrow models forbid freeing a block aligned beyond pool's alignment, whose allocator
        // frees the pool block below it, while it is a protected argument (rust-lang/miri#2104).
    }
    assert_eq!(heap_blocks(), 0, "each freed through pool by the test's code");
    assert!(model::finish().is_empty(), "{:?}", model::finish());
}
