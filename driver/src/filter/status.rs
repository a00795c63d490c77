//! `FilterStatus`: every indication is passed on (`NdisFIndicateStatus`); WAN line up and line down
//! are converted on the way ([`wanlayer_ndis::wan_status::Indication`]) and tracked by the engine; the
//! route is [`status_route`]'s, as in the simulator's filter:
//!
//! * line up: parse and validate; the engine creates or updates the link and the hooks may lower
//!   `MaximumTotalSize`, which is written into the buffer; the indication is passed on; then what
//!   the protocol above filled in (`LocalAddress`, `DeviceName`) is read back into the link. When
//!   the protocol set NdisWan's "answer later" byte, that answer is provisional: the engine learns
//!   the final local address from the link's first send and announces the updated link.
//! * line down: the engine removes the link (dropping the packets hooks hold for it), then the
//!   indication is passed on.
//! * anything else, and any indication that fails validation (counted as malformed): passed on
//!   untouched. Swallowing a line up would leave the IP layer without its link.

use wanlayer_core::hal::{Level, Log};
use wanlayer_core::link::{LineDown, LineUp, WanQuality};
use wanlayer_core::wire::{EtherType, MacAddress};
use wanlayer_core::{Engine, ModuleId, NdisStatus};
use wanlayer_driver_logic::lifecycle::{status_route, StatusRoute};
use wanlayer_ndis::lightweight_filter::StatusIndication;
use wanlayer_ndis::imports;
use wanlayer_ndis::types::{ContextHandle, FilterModuleHandle};
use wanlayer_ndis::wan::WanLineDown;
use wanlayer_ndis::{CheckedLineUp, Indication, WanStatus};

use crate::driver::engine;
use crate::hal::{current_context, KernelHal};
use crate::modules::module_entry;

/// `FILTER_STATUS`.
///
/// # IRQL
/// `<= DISPATCH_LEVEL` (no flag: line down reads the IRQL for the calls it makes).
///
/// # Ownership
/// The indication and its buffers are NDIS's for the duration of the call; the filter may lower
/// `MaximumTotalSize` before passing a line up on, and reads the protocol's answers after.
///
/// # Safety
/// Called by NDIS only, as this filter driver's `FilterStatus` handler: `context` is the module
/// context `NdisFSetAttributes` was given, and `raw` an indication that meets the promise of
/// `Indication::from_raw` for the call.
pub(crate) unsafe extern "system" fn filter_status(context: ContextHandle, raw: *mut StatusIndication) {
    // SAFETY: NDIS passes back the context NdisFSetAttributes was given.
    let entry = unsafe { module_entry(context) };
    // SAFETY: for this call NDIS's indication is valid and ours to read and to pass on; its status
    // buffer is readable and writable for StatusBufferSize bytes, and a line up's protocol buffer
    // and device name outside it are readable for their lengths before and after the indication
    // goes up (the promise of `Indication::from_raw`).
    let Some(mut indication) = (unsafe { Indication::from_raw(raw) }) else { return };
    let (module, filter, engine) = (entry.module(), entry.handles().filter, engine());
    match status_route(NdisStatus(indication.code())) {
        StatusRoute::LineUp => line_up(engine, module, filter, &mut indication),
        StatusRoute::LineDown => {
            match indication.parse() {
                Ok(WanStatus::LineDown(line_down)) => {
                    engine.line_down(module, &link_line_down(&line_down), current_context());
                }
                Ok(_) => engine.count_malformed_status(module),
                Err(error) => {
                    engine.hal().log(Level::Warning, format_args!("{module}: line down: {error}"));
                    engine.count_malformed_status(module);
                }
            }
            indicate(filter, &mut indication);
        }
        StatusRoute::PassOn => indicate(filter, &mut indication),
    }
}

/// Passes an indication on.
fn indicate(filter: FilterModuleHandle, indication: &mut Indication<'_>) {
    // SAFETY: the indication NDIS gave this module's FilterStatus, passed on during that call.
    unsafe { imports::NdisFIndicateStatus(filter, indication.as_mut_ptr()) };
}

fn line_up(engine: &Engine<KernelHal>, module: ModuleId, filter: FilterModuleHandle, indication: &mut Indication<'_>) {
    if let Ok(layout) = indication.line_up_layout() {
        // Where NdisWan puts ProtocolBuffer and DeviceName is not documented: say what it does.
        engine.hal().log(
            Level::Trace,
            format_args!(
                "{module}: line up buffers: protocol {:?} ({} bytes), device name {:?}",
                layout.protocol_buffer, layout.protocol_buffer_len, layout.device_name
            ),
        );
    }
    let tracked = match indication.parse() {
        Ok(WanStatus::LineUp(line_up)) => engine.line_up(module, &link_line_up(&line_up)),
        Ok(_) => {
            engine.count_malformed_status(module);
            return indicate(filter, indication);
        }
        Err(error) => {
            engine.hal().log(Level::Warning, format_args!("{module}: line up: {error}"));
            engine.count_malformed_status(module);
            return indicate(filter, indication);
        }
    };
    if let Ok(outcome) = &tracked {
        if let Err(error) = indication.lower_maximum_total_size(outcome.reported_total_size) {
            engine.hal().log(Level::Error, format_args!("{module}: lowering MaximumTotalSize: {error}"));
        }
    }
    indicate(filter, indication);
    if tracked.is_ok() {
        match indication.filled_in() {
            Ok(answer) => {
                let (remote, local) = (MacAddress(answer.remote_address), MacAddress(answer.local_address));
                engine.line_up_indicated(module, remote, local, answer.device_name);
                if answer.answer_pending {
                    // The protocol answers later: the link's first send shows the final address.
                    engine.line_up_answer_pending(module, remote);
                }
            }
            Err(error) => engine.hal().log(Level::Warning, format_args!("{module}: line up answer: {error}")),
        }
    }
}

/// A checked `NDIS_WAN_LINE_UP` as the engine's line up, borrowing the indication's regions.
fn link_line_up<'a>(checked: &CheckedLineUp<'a>) -> LineUp<'a> {
    let up = &checked.line_up;
    LineUp {
        link_speed_100bps: up.link_speed,
        maximum_total_size: up.maximum_total_size,
        quality: WanQuality::from(up.quality),
        send_window: up.send_window,
        remote_address: MacAddress(up.remote_address),
        local_address: MacAddress(up.local_address),
        protocol_type: EtherType::from(up.protocol_type),
        device_name: checked.device_name,
        protocol_buffer: checked.protocol_buffer,
    }
}

/// An `NDIS_WAN_LINE_DOWN` as the engine's line down.
fn link_line_down(down: &WanLineDown) -> LineDown {
    LineDown { remote_address: MacAddress(down.remote_address), local_address: MacAddress(down.local_address) }
}
