//! The global allocator: non-paged pool tagged [`HEAP_TAG`], honouring every alignment `Layout`
//! asks for ([`wanlayer_ndis::runtime::PoolAllocator`], whose module documentation proves it).

/// Pool tag of Rust heap allocations (the engine's tables, links, events): "WLrs" in `!poolused`.
pub const HEAP_TAG: u32 = u32::from_le_bytes(*b"WLrs");

/// The driver's `#[global_allocator]` (see [`crate::platform`]).
pub type PoolAllocator = wanlayer_ndis::runtime::PoolAllocator<HEAP_TAG>;
