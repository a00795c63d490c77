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
    push_within_capacity(&mut one, value).map_err(|_| OutOfMemory)?;
    boxed_array(one)
}

// The helpers below are the only places the engine calls the growing methods of `Vec`,
// `VecDeque` and `HashMap` (clippy's `disallowed_methods` refuses them everywhere else, see
// `clippy.toml`): each checks first that the call stays within the capacity already reserved
// fallibly, so none of them ever allocates.

/// Appends `value` within the capacity already reserved, or hands it back when there is no room:
/// never allocates (the stable stand-in for `Vec::push_within_capacity`).
#[allow(clippy::disallowed_methods, reason = "within capacity: checked first, so the push never allocates")]
pub(crate) fn push_within_capacity<T>(vec: &mut Vec<T>, value: T) -> Result<(), T> {
    if vec.len() >= vec.capacity() {
        return Err(value);
    }
    vec.push(value);
    Ok(())
}

/// Inserts `value` at `index` within the capacity already reserved, or hands it back when there is
/// no room or `index` is past the end: never allocates.
#[allow(clippy::disallowed_methods, reason = "within capacity: checked first, so the insert never allocates")]
pub(crate) fn insert_within_capacity<T>(vec: &mut Vec<T>, index: usize, value: T) -> Result<(), T> {
    if vec.len() >= vec.capacity() || index > vec.len() {
        return Err(value);
    }
    vec.insert(index, value);
    Ok(())
}

/// Grows `vec` to `len` elements made by `make`, within the capacity already reserved:
/// [`OutOfMemory`] (and `vec` unchanged) when that capacity is short.
pub(crate) fn fill_within_capacity<T>(vec: &mut Vec<T>, len: usize, mut make: impl FnMut() -> T) -> Result<(), OutOfMemory> {
    if len > vec.capacity() {
        return Err(OutOfMemory);
    }
    while vec.len() < len {
        push_within_capacity(vec, make()).map_err(|_| OutOfMemory)?;
    }
    Ok(())
}

/// Appends a copy of `items`, reserving fallibly first.
#[allow(clippy::disallowed_methods, reason = "reserved fallibly just before: the extend never allocates")]
pub(crate) fn try_extend_from_slice<T: Copy>(vec: &mut Vec<T>, items: &[T]) -> Result<(), OutOfMemory> {
    vec.try_reserve(items.len()).map_err(|_| OutOfMemory)?;
    vec.extend_from_slice(items);
    Ok(())
}

/// Appends `value` at the back within the capacity already reserved, or hands it back when there
/// is no room: never allocates.
#[allow(clippy::disallowed_methods, reason = "within capacity: checked first, so the push never allocates")]
pub(crate) fn push_back_within_capacity<T>(deque: &mut VecDeque<T>, value: T) -> Result<(), T> {
    if deque.len() >= deque.capacity() {
        return Err(value);
    }
    deque.push_back(value);
    Ok(())
}

/// Inserts `key` → `value` into a map with room reserved (by [`reserve_map`]), or hands them back
/// when a new key finds the map full: never allocates. Returns the value `key` had.
#[allow(clippy::disallowed_methods, reason = "within capacity: a new key is inserted only while the table has room")]
pub(crate) fn map_insert_within_capacity<K: Eq + core::hash::Hash, V, S: core::hash::BuildHasher>(
    map: &mut hashbrown::HashMap<K, V, S>,
    key: K,
    value: V,
) -> Result<Option<V>, (K, V)> {
    if map.len() >= map.capacity() && !map.contains_key(&key) {
        return Err((key, value));
    }
    Ok(map.insert(key, value))
}

/// The elements of `vec` as a boxed array, when it holds exactly `N` and its capacity is `N` (so
/// the conversion reuses its allocation, never reallocating; zero-sized elements need none);
/// [`OutOfMemory`] otherwise.
#[allow(clippy::disallowed_methods, reason = "length equals capacity: into_boxed_slice does not reallocate")]
pub(crate) fn boxed_array<T, const N: usize>(vec: Vec<T>) -> Result<Box<[T; N]>, OutOfMemory> {
    if vec.len() != N || (size_of::<T>() != 0 && vec.capacity() != N) {
        return Err(OutOfMemory);
    }
    vec.into_boxed_slice().try_into().map_err(|_| OutOfMemory)
}
