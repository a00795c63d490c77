//! The simulator with the driver in the loop: [`DriverFilter`] is the simulator's
//! [`FilterDriver`](wanlayer_sim::FilterDriver) played by `wanlayer.sys`'s own handlers — the
//! `wanlayer` rlib of `driver/`, built for the host — with their imports bound to the kernel model
//! (`wanlayer-kernel-model`).
//!
//! The simulator stays what it is around the filter: NdisWan's edges below, the IP layer above,
//! virtual time, the packet ledger and its verifier. What crosses between the two is translated
//! here, and only here:
//!
//! * [`invoke`]: every call into driver code (`DriverEntry`, `DriverUnload`, the registered
//!   handlers), one function each;
//! * [`carriers`]: a simulator packet as an NBL with one NET_BUFFER over two MDLs (its frame split
//!   after 20 bytes, with an offset into the first), the same NBL each time the same packet comes
//!   back, and the driver's own NBLs (frames a hook copied or replaced) entered in the ledger as
//!   the filter's allocations;
//! * [`control`]: the control device through the driver's dispatch routines (create, buffered
//!   device controls, cleanup and close);
//! * [`driver_filter`]: the callbacks: NDIS structures built from the simulator's parameters, the
//!   simulated IRQL and clock given to the model, and afterwards what the driver passed down, up
//!   or back (the model's events, its freed NBLs, its debug output) handed to the simulator's
//!   checked services; a rule the model saw broken is reported to the simulator's verifier once;
//! * [`vendor_calls`]: a vendor driver's calls into the provider table the driver handed it
//!   (`wanlayer_sdk::kernel`, over the kernel model), at the IRQL and time they are made.
//! * [`heap`]: the driver's Rust heap in the kernel model's pool, as in the kernel, for a test
//!   binary that installs [`heap::DriverHeap`] as its global allocator.
//!
//! One driver per process at a time (the model's state is global, as the kernel's is): a
//! [`DriverFilter`] holds the model's run from [`DriverFilter::new`] until it is dropped.

pub mod carriers;
pub mod control;
pub mod driver_filter;
pub mod heap;
pub mod invoke;
pub mod vendor_calls;

pub use driver_filter::{DriverFilter, SCENARIO_LOG};
/// The engine's configuration in the driver (`DriverEntry` installs it): fixed tables, fixed event
/// queue room.
pub use wanlayer::driver::ENGINE_CONFIG;
/// The pool tag of the frames of the driver's own NBLs (copies and replacements): what a scenario
/// refuses ([`wanlayer_kernel_model::low_resources::refuse_pool_tag`]) to run the driver without
/// packet memory.
pub use wanlayer::hal::packet_io::FRAME_TAG;
