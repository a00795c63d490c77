//! The wanlayer host NDIS simulator.
