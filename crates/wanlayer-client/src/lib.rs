//! The user-mode client of wanlayer's control device `\\.\WanLayer`.
//!
//! [`Client`] sends typed requests ([`wanlayer_proto`]) over a [`Transport`]:
//!
//! * `windows::WindowsTransport` (Windows only): `DeviceIoControl` on a handle opened for
//!   overlapped I/O, pending event reads waited for with a timeout and cancelled with
//!   `CancelIoEx`; `windows::WindowsOverlapped`, such a handle bound to an I/O completion port,
//!   for the asynchronous reads of [`divert_async`] and [`events_async`] (their state machine,
//!   [`overlapped`], is platform-neutral and tested on every host);
//! * `sim::SimTransport` (feature `simulator`, hosts other than Windows): `wanlayer.sys`'s own
//!   dispatch routines, built for the host over the kernel model, in a simulated RRAS server, so
//!   the same client code runs in tests without Windows.
//!
//! [`pcapng::PcapngWriter`] writes captured frames for Wireshark and tshark. The answers are the
//! protocol's own parsed records (`wanlayer_proto::*Repr`, serialisable through its `serde`
//! feature, printable through `wanlayer_proto::display`); [`types`] holds the owned forms of the
//! two that borrow their answer buffer (link entries, captured frames) and the batches.
//!
//! ```
//! # #[cfg(all(feature = "simulator", not(windows)))] {
//! use wanlayer_client::{sim::SimServer, Client};
//! use wanlayer_proto::Access;
//!
//! let server = SimServer::scripted().unwrap();
//! let mut client = Client::connect(server.open(Access::READ).unwrap()).unwrap();
//! assert_eq!(client.links(None, false).unwrap().len(), 3);
//! # }
//! ```
#![deny(unsafe_code)]

mod client;
pub mod divert;
pub mod divert_async;
mod error;
pub mod events_async;
#[allow(unsafe_code)]
pub mod overlapped;
pub mod pcapng;
#[cfg(all(feature = "simulator", not(windows)))]
pub mod sim;
mod transport;
pub mod types;
#[cfg(windows)]
#[allow(unsafe_code)]
pub mod windows;

pub use client::Client;
pub use divert::Divert;
pub use error::{ClientError, Result};
pub use transport::Transport;
