//! The wanlayer host NDIS simulator: a simulated RRAS server that drives a filter through exactly
//! the NDIS lightweight-filter callback contract, with a verifier that enforces NDIS's rules the
//! way Driver Verifier does.
//!
//! * [`Rras`] is the server: NdisWan's IPv4 and IPv6 edges ([`Edge`]) and optionally an Ethernet
//!   adapter, the IP layer above them ([`Protocol`]), the miniports below ([`Miniport`]), NDIS's
//!   lifecycle (attach, restart, pause with its 10 s bound, detach, unload), WAN links
//!   ([`Rras::link_up`]), traffic ([`Flow`]) and OIDs, in deterministic virtual time.
//! * [`FilterDriver`] is the filter callback set. wanlayer.sys's own handlers play it
//!   (`wanlayer-sim-driver`'s `DriverFilter`: the driver built for the host over the kernel model);
//!   so do the simulator's own test filters, deliberately simple or broken.
//! * [`SimHal`] implements the core's platform traits over the simulated world and checks every
//!   call: the [ledger] knows who holds each packet, the [verifier](Verifier) collects
//!   [`Violation`]s of [`Rule`]s, [`faults`] fails chosen allocations, and the [trace]
//!   records what crossed each edge.
//! * [`control`] names the control device `\\.\WanLayer`'s handles and requests, which the
//!   driver's dispatch routines answer.
//!
//! ```
//! use wanlayer_sim::{Edge, Flow, LinkParams, ReceiveOptions, Rras};
//! use wanlayer_sim_driver::DriverFilter;
//!
//! let mut rras = Rras::new(DriverFilter::new());
//! rras.start().unwrap();
//! let link = rras.link_up(Edge::WanIp, LinkParams::new());
//! rras.send_flow(&link, &Flow::udp(53, 40000), 3);
//! rras.receive_flow(&link, &Flow::udp(53, 40000), 3, ReceiveOptions::resources());
//! rras.run_until_idle();
//! assert_eq!(rras.miniport(Edge::WanIp).sent.len(), 3);
//! assert_eq!(rras.protocol(Edge::WanIp).received.len(), 3);
//! rras.link_down(&link);
//! rras.unload();
//! rras.verifier().assert_clean();
//! ```
#![forbid(unsafe_code)]

pub mod control;
pub mod edge;
pub mod faults;
pub mod filter_callbacks;
pub mod hal;
pub mod ledger;
pub mod ndis;
pub mod oid;
pub mod report;
pub mod rras;
pub mod sim_nbl;
pub mod trace;
pub mod traffic;
pub mod verifier;
pub mod wan_indication;
pub mod world;

pub use control::{HandleId, IoCompletion, IoId, IoOutcome};
pub use edge::{Edge, Irql, IrqlPolicy, NdisState};
pub use faults::{Allocation, FaultPlan, Faults};
pub use filter_callbacks::{EngineFilter, FilterAttachParameters, FilterDriver};
pub use hal::{SimHal, SimLock};
pub use ledger::{Holder, Origin, PacketRecord};
pub use oid::{OidDisposition, OidKind, OidRequest, RequestId};
pub use rras::{LifecycleError, PauseOutcome, ReceiveOptions, Rras, RrasBuilder, SendOptions};
pub use sim_nbl::{PacketId, SimChain, SimPacket};
pub use traffic::{Flow, LinkParams, SimLink, Transport};
pub use verifier::{Rule, Verifier, Violation};
pub use wan_indication::{StatusBuffer, StatusIndication, StatusRecord, WanLineUp};
pub use world::{Delivered, Delivery, Miniport, PoolUsage, Protocol, SendCompletion, SimConfig, MILLISECOND, SECOND};
