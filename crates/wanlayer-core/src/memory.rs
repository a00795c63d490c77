//! Fallible, charged growth of the engine's collections.

use alloc::collections::VecDeque;
use core::mem::size_of;

use hashbrown::HashMap;

use crate::hal::{Memory, OutOfMemory, Pool};

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
