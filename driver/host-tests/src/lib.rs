//! The driver in the loop: scenarios that run `wanlayer.sys`'s own handlers against the kernel
//! model (`wanlayer-kernel-model`), which binds every import by name and checks each call.
//! [`scenarios`] is parameterised by how the driver is reached: `tests/` runs each against the
//! driver built for the host from the same source as the image (natively and under Miri),
//! `driver/emulator` against the built images on an emulated processor. On Windows targets this
//! library is empty.
#![cfg(not(target_os = "windows"))]

pub mod common;
pub mod ndiswan;
pub mod scenarios;

/// The host build of the driver as a scenario target.
#[cfg(feature = "native")]
pub fn native() -> scenarios::Target {
    scenarios::Target { name: "host build", driver_entry: wanlayer::driver::DriverEntry, links: Some(links) }
}

/// # Safety
/// `context` is a module context the host build's `FilterAttach` gave NDIS, still attached.
#[cfg(feature = "native")]
unsafe fn links(context: wanlayer_ndis::types::ContextHandle) -> usize {
    // SAFETY: the caller's promise.
    let module = unsafe { wanlayer::modules::module_entry(context) }.module();
    let mut links = 0;
    wanlayer::driver::engine().visit_links(module, |_| links += 1);
    links
}

// The scenarios name the driver's NBL pool tag without linking the driver.
#[cfg(feature = "native")]
const _: () = assert!(scenarios::lifecycle::NBL_POOL_TAG == wanlayer::filter::NBL_POOL_TAG);
