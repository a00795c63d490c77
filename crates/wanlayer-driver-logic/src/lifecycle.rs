//! What `FilterRestart` and `FilterPause` return for the engine's answer, and which path a status
//! indication takes through `FilterStatus`.

use wanlayer_core::module::PauseProgress;
use wanlayer_core::NdisStatus;

/// `FilterRestart`'s status: success when the engine restarted the module, else
/// `NDIS_STATUS_FAILURE` (NDIS leaves the module Paused).
pub fn restart_status<E>(restarted: &Result<(), E>) -> NdisStatus {
    match restarted {
        Ok(()) => NdisStatus::SUCCESS,
        Err(_) => NdisStatus::FAILURE,
    }
}

/// `FilterPause`'s status: `NDIS_STATUS_PENDING` while the engine waits for packets (it calls
/// `NdisFPauseComplete` later, once), else success. A pause must never fail: an engine error
/// (a module the engine does not know, or not in a state it can pause) is reported by the caller
/// and the pause succeeds, since nothing of that module can be outstanding in the engine.
pub fn pause_status<E>(paused: &Result<PauseProgress, E>) -> NdisStatus {
    match paused {
        Ok(PauseProgress::Pending) => NdisStatus::PENDING,
        Ok(PauseProgress::Complete) | Err(_) => NdisStatus::SUCCESS,
    }
}

/// Which path a status indication takes in `FilterStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusRoute {
    /// `NDIS_STATUS_WAN_LINE_UP`: parsed and tracked, `MaximumTotalSize` possibly lowered, passed
    /// on, then the protocol's answers read back.
    LineUp,
    /// `NDIS_STATUS_WAN_LINE_DOWN`: parsed, the link removed, then passed on.
    LineDown,
    /// Anything else: passed on untouched.
    PassOn,
}

/// The route of an indication with `code`. Every route passes the indication on (swallowing a
/// line up would leave the IP layer without its link); a line up or down that fails validation is
/// counted as malformed and passed on untouched.
pub fn status_route(code: NdisStatus) -> StatusRoute {
    match code {
        NdisStatus::WAN_LINE_UP => StatusRoute::LineUp,
        NdisStatus::WAN_LINE_DOWN => StatusRoute::LineDown,
        _ => StatusRoute::PassOn,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_fails_only_on_an_engine_error() {
        assert_eq!(restart_status::<()>(&Ok(())), NdisStatus::SUCCESS);
        assert_eq!(restart_status(&Err(())), NdisStatus::FAILURE);
    }

    #[test]
    fn pause_never_fails() {
        assert_eq!(pause_status::<()>(&Ok(PauseProgress::Pending)), NdisStatus::PENDING);
        assert_eq!(pause_status::<()>(&Ok(PauseProgress::Complete)), NdisStatus::SUCCESS);
        assert_eq!(pause_status::<&str>(&Err("unknown module")), NdisStatus::SUCCESS);
    }

    #[test]
    fn only_wan_line_up_and_down_are_translated() {
        assert_eq!(status_route(NdisStatus::WAN_LINE_UP), StatusRoute::LineUp);
        assert_eq!(status_route(NdisStatus::WAN_LINE_DOWN), StatusRoute::LineDown);
        for other in [NdisStatus::SUCCESS, NdisStatus::PENDING, NdisStatus(0x4001_000A), NdisStatus(0x4001_000B), NdisStatus::FAILURE] {
            assert_eq!(status_route(other), StatusRoute::PassOn);
        }
    }
}
