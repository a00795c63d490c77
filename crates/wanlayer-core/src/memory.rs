//! Fallible, charged growth of the engine's collections.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::mem::size_of;

use crate::hal::{Memory, OutOfMemory, Pool};

/// The engine's hash maps: keyed by values the engine or NdisWan chose (ticket serials, NdisWan's
/// link addresses), never by anything a remote peer controls, so a fixed seed is safe — and it
/// keeps every run, in the kernel and in the simulator, deterministic.
pub(crate) type HashMap<K, V> = hashbrown::HashMap<K, V, FixedHasher>;

/// The fixed-seed hasher of [`HashMap`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct FixedHasher;

/// The seed: any constant works; this one is the first 64 bits of pi's fraction.
const SEED: u64 = 0x243F_6A88_85A3_08D3;

impl core::hash::BuildHasher for FixedHasher {
    type Hasher = foldhash::fast::FoldHasher;

    fn build_hasher(&self) -> Self::Hasher {
        foldhash::fast::FixedState::with_seed(SEED).build_hasher()
    }
}

impl Default for FixedHasher {
    fn default() -> Self {
        Self
    }
}

/// An empty [`HashMap`].
pub(crate) fn new_map<K, V>() -> HashMap<K, V> {
    hashbrown::HashMap::with_hasher(FixedHasher)
}

/// Makes room for `additional` more entries in `map`, charging the growth to `pool`.
///
/// Returns the bytes charged, which the owner releases when it frees the map.
pub(crate) fn reserve_map<K: Eq + core::hash::Hash, V>(
    memory: &impl Memory,
    pool: Pool,
    map: &mut HashMap<K, V>,
    additional: usize,
) -> Result<usize, OutOfMemory> {
    let before = map.capacity();
    if map.len() + additional <= before {
        return Ok(0);
    }
    let wanted = (map.len() + additional).max(before.saturating_mul(2)).max(8);
    let bytes = (wanted - before) * size_of::<(K, V)>();
    memory.try_charge(pool, bytes)?;
    if map.try_reserve(wanted - map.len()).is_err() {
        memory.release(pool, bytes);
        return Err(OutOfMemory);
    }
    Ok(bytes)
}

/// A deque of exactly `capacity` slots, charged to `pool`.
pub(crate) fn fixed_deque<T>(memory: &impl Memory, pool: Pool, capacity: usize) -> Result<VecDeque<T>, OutOfMemory> {
    let bytes = capacity * size_of::<T>();
    memory.try_charge(pool, bytes)?;
    let mut deque = VecDeque::new();
    if deque.try_reserve_exact(capacity).is_err() {
        memory.release(pool, bytes);
        return Err(OutOfMemory);
    }
    Ok(deque)
}

/// Puts `value` in an allocation of its own, or fails cleanly (safe Rust has no fallible
/// `Box::new`: a one-element vector reserved fallibly becomes the box).
pub(crate) fn try_box<T>(value: T) -> Result<Box<[T; 1]>, OutOfMemory> {
    let mut one = Vec::new();
    one.try_reserve_exact(1).map_err(|_| OutOfMemory)?;
    one.push(value);
    one.into_boxed_slice().try_into().map_err(|_| OutOfMemory)
}
