//! The packets hooks have taken and not yet handed back, per module.

use crate::hal::{Memory, OutOfMemory, Pool};
use crate::memory::{new_map, HashMap};
use crate::hook::{ChainPosition, Direction, HookId};
use crate::link::LinkSummary;

/// Where a packet the engine holds came from, which decides how it is given back.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Origin {
    /// The protocol's (a send) or the miniport's (a receive indicated without the resources flag).
    Foreign,
    /// The engine's own copy or replacement; it may carry a parent.
    Own,
}

/// A packet in the engine's hands, with how to give it back.
pub(crate) struct Held<P> {
    pub(crate) packet: P,
    pub(crate) origin: Origin,
}

/// One taken packet.
pub(crate) struct Taken<P> {
    pub(crate) held: Held<P>,
    pub(crate) direction: Direction,
    pub(crate) link: LinkSummary,
    pub(crate) taker: HookId,
    pub(crate) position: ChainPosition,
    /// The taking send's loopback request, handed on when the packet is reinjected.
    pub(crate) check_for_loopback: bool,
}

/// Taken packets by ticket serial.
pub(crate) struct TakenStore<P> {
    entries: HashMap<u64, Taken<P>>,
    charged: usize,
}

impl<P> Default for TakenStore<P> {
    fn default() -> Self {
        Self { entries: new_map(), charged: 0 }
    }
}

impl<P> TakenStore<P> {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Stores `taken` under `serial`, or gives it back when no memory can be had.
    pub(crate) fn insert(&mut self, memory: &impl Memory, serial: u64, taken: Taken<P>) -> Result<(), Taken<P>> {
        match crate::memory::reserve_map(memory, Pool::Taken, &mut self.entries, 1) {
            Ok(bytes) => {
                self.charged += bytes;
                crate::memory::map_insert_within_capacity(&mut self.entries, serial, taken).map(|_| ()).map_err(|(_, taken)| taken)
            }
            Err(OutOfMemory) => Err(taken),
        }
    }

    pub(crate) fn get(&self, serial: u64) -> Option<&Taken<P>> {
        self.entries.get(&serial)
    }

    pub(crate) fn remove(&mut self, serial: u64) -> Option<Taken<P>> {
        self.entries.remove(&serial)
    }

    /// Fills `batch` with the oldest (smallest) serials of entries `select` picks, in ascending
    /// order, so packets come out in the order they were taken; returns how many it found.
    pub(crate) fn oldest_serials_where(&self, mut select: impl FnMut(&Taken<P>) -> bool, batch: &mut [u64]) -> usize {
        let mut found = 0;
        for (serial, _) in self.entries.iter().filter(|(_, taken)| select(taken)) {
            if found < batch.len() {
                batch[found] = *serial;
                found += 1;
            } else if let Some(newest) = batch.iter_mut().max().filter(|newest| **newest > *serial) {
                *newest = *serial;
            }
        }
        batch[..found].sort_unstable();
        found
    }

    /// Removes every entry `select` picks, handing each to `sink`.
    pub(crate) fn drain_where(&mut self, mut select: impl FnMut(&Taken<P>) -> bool, mut sink: impl FnMut(Taken<P>)) {
        self.entries.extract_if(|_, taken| select(taken)).for_each(|(_, taken)| sink(taken));
    }

    /// Releases the store's memory once it is empty (at detach).
    pub(crate) fn release(&mut self, memory: &impl Memory) {
        self.entries = new_map();
        memory.release(Pool::Taken, core::mem::take(&mut self.charged));
    }
}
