//! Simulator packets as NBLs, and back.
//!
//! A packet the simulator made (a protocol's send, a miniport's receive) is carried by an NBL
//! this module allocates: one NET_BUFFER whose frame is split over two MDLs — the first 20 bytes
//! after an offset of 6 unrelated bytes in the first, the rest in the second — so the driver's
//! MDL walking is exercised on every packet. The same packet always comes back as the same NBL
//! (the driver may compare addresses, and relinks lent chains by them), until it goes home.
//!
//! The driver's own NBLs (frames hooks copied or replaced, from `NdisAllocateNetBufferAndNetBufferList`
//! in the model) are entered in the simulator's ledger as the filter's allocations the first time
//! they cross an edge, and leave it when the driver frees them.
//!
//! A carrier whose packet went home is kept and carries a later packet, as a protocol's NBL pool
//! recycles its NBLs: it waits behind [`QUARANTINE`] others first, so the address of an NBL just
//! completed does not come back at once (a second completion of it is still an NBL the driver
//! does not hold), and its NDIS structures are zeroed again before reuse. Under Miri every
//! carrier is freed when its packet goes home, so that a driver touching an NBL it gave back is
//! a use after free Miri reports.

use std::collections::{HashMap, VecDeque};
use std::ffi::c_void;
use std::hash::{BuildHasherDefault, Hasher};
use std::ptr;

use wanlayer_core::hal::{FrameSource, PacketIo};
use wanlayer_core::{ModuleId, NdisStatus};
use wanlayer_ndis::nbl::{set_nbl_info, Mdl, NblInfo, NetBuffer, NetBufferList, MDL_MAPPED_TO_SYSTEM_VA};
use wanlayer_sim::{PacketId, Rule, SimChain, SimHal, SimPacket};

/// Unrelated bytes before the frame in the first MDL (`CurrentMdlOffset`).
pub const OFFSET: usize = 6;
/// Frame bytes in the first MDL; the rest are in the second.
pub const FIRST_PART: usize = 20;

/// The NDIS structures carrying one simulator packet, and the bytes they describe; the NBL
/// first, so the carrier's address is the NBL's.
#[repr(C)]
struct Carrier {
    nbl: NetBufferList,
    net_buffer: NetBuffer,
    mdls: [Mdl; 2],
    bytes: [Vec<u8>; 2],
}

/// Carriers whose packets went home that wait before one is reused.
const QUARANTINE: usize = if cfg!(miri) { 0 } else { 256 };
/// Most carriers kept for reuse (the rest are freed).
const MOST_KEPT: usize = if cfg!(miri) { 0 } else { QUARANTINE + 1024 };

/// A hasher for the translation's keys, which are NBL addresses and packet identities (each one
/// integer): one multiplication (Fibonacci hashing), instead of SipHash's rounds for every lookup
/// of every packet, its high half folded into the low one (a product's low bits depend only on
/// the key's low bits, which are zero in aligned addresses, and the table picks buckets by the
/// low bits). The keys come from this process, not from input.
#[derive(Default)]
struct IntegerHasher(u64);

impl Hasher for IntegerHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = (self.0.rotate_left(5) ^ value).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn write_usize(&mut self, value: usize) {
        self.write_u64(value as u64);
    }

    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 32)
    }
}

/// Maps keyed by NBL address or packet identity.
type IntegerMap<K, V> = HashMap<K, V, BuildHasherDefault<IntegerHasher>>;

/// One NBL the translation knows.
struct Entry {
    /// The packet, while the driver holds the NBL.
    packet: Option<SimPacket>,
    /// The carrier this module allocated (`None`: one of the driver's own NBLs).
    carrier: Option<*mut Carrier>,
}

/// Every NBL carrying a simulator packet, by address, and the NBL of each packet.
#[derive(Default)]
pub struct Carriers {
    entries: IntegerMap<usize, Entry>,
    by_packet: IntegerMap<PacketId, usize>,
    /// Carriers whose packets went home, oldest first, for later packets.
    spare: VecDeque<*mut Carrier>,
}

impl Drop for Carriers {
    fn drop(&mut self) {
        for entry in self.entries.values_mut() {
            free_carrier(entry.carrier.take());
        }
        for carrier in self.spare.drain(..) {
            free_carrier(Some(carrier));
        }
    }
}

fn free_carrier(carrier: Option<*mut Carrier>) {
    if let Some(carrier) = carrier {
        // SAFETY: allocated by `Box::into_raw` in `new_carrier`, freed once (taken from its entry).
        drop(unsafe { Box::from_raw(carrier) });
    }
}

/// A zeroed NDIS structure (all-zero is valid for these: integers, raw pointers, unions of them).
fn zeroed<T>() -> T {
    // SAFETY: only instantiated with `repr(C)` NBL, NET_BUFFER and MDL structures, for which
    // all-zero bytes are a valid value.
    unsafe { std::mem::zeroed() }
}

/// A carrier for `frame`, reached only through the returned pointer: `spare` (one whose packet
/// went home, no longer known to the driver) made new, or a new one.
fn new_carrier(spare: Option<*mut Carrier>, frame: &[u8], cancel_id: Option<u64>) -> *mut Carrier {
    let carrier = spare.unwrap_or_else(|| {
        Box::into_raw(Box::new(Carrier {
            nbl: zeroed(),
            net_buffer: zeroed(),
            mdls: [zeroed(), zeroed()],
            bytes: [Vec::with_capacity(OFFSET + FIRST_PART), Vec::new()],
        }))
    });
    // SAFETY: `carrier` was just leaked, or is a spare no entry and no NBL chain refers to; it is
    // reached only through this pointer; the pointers stored below point into it (and into its
    // vectors' heap buffers, which do not move until it is filled again).
    let c = unsafe { &mut *carrier };
    c.nbl = zeroed();
    c.net_buffer = zeroed();
    c.mdls = [zeroed(), zeroed()];
    let split = frame.len().min(FIRST_PART);
    let [first, second] = &mut c.bytes;
    first.clear();
    first.resize(OFFSET, 0xEE);
    first.extend_from_slice(&frame[..split]);
    second.clear();
    second.extend_from_slice(&frame[split..]);
    let parts = if c.bytes[1].is_empty() { 1 } else { 2 };
    for index in 0..parts {
        let mapped = c.bytes[index].as_mut_ptr().cast::<c_void>();
        let count = u32::try_from(c.bytes[index].len()).unwrap_or(u32::MAX);
        let mdl = &mut c.mdls[index];
        mdl.mapped_system_va = mapped;
        mdl.start_va = mapped;
        mdl.byte_count = count;
        mdl.mdl_flags = MDL_MAPPED_TO_SYSTEM_VA as i16;
    }
    if parts == 2 {
        c.mdls[0].next = &raw mut c.mdls[1];
    }
    let first_mdl = &raw mut c.mdls[0];
    c.net_buffer.mdl_chain = first_mdl;
    c.net_buffer.current_mdl = first_mdl;
    c.net_buffer.current_mdl_offset = OFFSET as u32;
    c.net_buffer.data_offset = OFFSET as u32;
    c.net_buffer.data_length.data_length = u32::try_from(frame.len()).unwrap_or(u32::MAX);
    c.nbl.first_net_buffer = &raw mut c.net_buffer;
    if let Some(id) = cancel_id {
        let value = ptr::without_provenance_mut::<c_void>(usize::try_from(id).unwrap_or(usize::MAX));
        // SAFETY: the carrier's own NBL, valid and held here.
        unsafe { set_nbl_info(&raw mut c.nbl, NblInfo::CancelId, value) };
    }
    carrier
}

/// The frame bytes of one of the driver's own NBLs (one NET_BUFFER over one mapped MDL).
fn own_frame(nbl: *mut NetBufferList) -> Vec<u8> {
    // SAFETY: a live NBL of the driver's (the model's allocation), which the driver passed on.
    let nb = unsafe { (*nbl).first_net_buffer };
    if nb.is_null() {
        return Vec::new();
    }
    // SAFETY: (these three) fields of its NET_BUFFER, allocated with it.
    let mdl = unsafe { (*nb).current_mdl };
    // SAFETY: as above.
    let offset = unsafe { (*nb).current_mdl_offset } as usize;
    // SAFETY: as above.
    let length = unsafe { wanlayer_ndis::nbl::nb_data_length(nb) } as usize;
    // SAFETY: the driver's MDL, built for non-paged pool.
    let Some(data) = (unsafe { wanlayer_ndis::nbl::mdl_system_address(mdl) }) else {
        return Vec::new();
    };
    // SAFETY: the MDL describes at least `offset + length` bytes of the driver's pool block.
    unsafe { std::slice::from_raw_parts(data.as_ptr().wrapping_add(offset), length) }.to_vec()
}

impl Carriers {
    /// Links `chain`'s packets into an NBL chain the driver is given; returns its head (null for
    /// an empty chain) and the NBLs in order.
    pub fn give(&mut self, hal: &SimHal, mut chain: SimChain) -> (*mut NetBufferList, Vec<usize>) {
        let mut order = Vec::with_capacity(chain.len());
        while let Some(packet) = chain.pop() {
            let nbl = match self.by_packet.get(&packet.id()) {
                Some(&nbl) => nbl,
                None => {
                    let spare = if self.spare.len() > QUARANTINE { self.spare.pop_front() } else { None };
                    let carrier = new_carrier(spare, packet.frame(), packet.cancel_id());
                    let nbl = carrier.cast::<NetBufferList>().expose_provenance();
                    self.entries.insert(nbl, Entry { packet: None, carrier: Some(carrier) });
                    self.by_packet.insert(packet.id(), nbl);
                    nbl
                }
            };
            let status = PacketIo::status(hal, &packet);
            let pointer = ptr::with_exposed_provenance_mut::<NetBufferList>(nbl);
            // SAFETY: an NBL this translation knows (a carrier, or one of the driver's own that it
            // handed back), not in any chain now.
            unsafe { (*pointer).status = status.0 };
            if let Some(entry) = self.entries.get_mut(&nbl) {
                entry.packet = Some(packet);
            }
            order.push(nbl);
        }
        for pair in order.windows(2) {
            // SAFETY: as above; each NBL links to the next one given.
            unsafe { (*ptr::with_exposed_provenance_mut::<NetBufferList>(pair[0])).next = ptr::with_exposed_provenance_mut(pair[1]) };
        }
        let head = order.first().map_or(ptr::null_mut(), |&nbl| ptr::with_exposed_provenance_mut(nbl));
        if let Some(&last) = order.last() {
            // SAFETY: as above.
            unsafe { (*ptr::with_exposed_provenance_mut::<NetBufferList>(last)).next = ptr::null_mut() };
        }
        (head, order)
    }

    /// The packets of NBLs the driver passed on (`nbls`, in order), their status as the driver
    /// set it. A driver NBL seen for the first time is entered in the ledger as the filter's
    /// allocation; an NBL the driver does not hold is reported and left out.
    pub fn take(&mut self, hal: &SimHal, module: ModuleId, nbls: &[usize], api: &str) -> SimChain {
        let mut chain = SimChain::with_capacity(nbls.len());
        for &nbl in nbls {
            let pointer = ptr::with_exposed_provenance_mut::<NetBufferList>(nbl);
            let known = self.entries.get_mut(&nbl).and_then(|entry| entry.packet.take());
            let mut packet = match known {
                Some(packet) => packet,
                None if wanlayer_kernel_model::is_driver_nbl(nbl) && !self.entries.contains_key(&nbl) => {
                    let frame = own_frame(pointer);
                    match hal.allocate(module, FrameSource::Bytes(&frame)) {
                        Ok(packet) => {
                            self.by_packet.insert(packet.id(), nbl);
                            self.entries.insert(nbl, Entry { packet: None, carrier: None });
                            packet
                        }
                        Err(_) => {
                            hal.report(Rule::WrongOwner, Some(module), format!("{api}: the driver's NBL {nbl:#x} could not be entered"));
                            continue;
                        }
                    }
                }
                None => {
                    let detail = format!("{api} of NBL {nbl:#x}, which the driver does not hold");
                    hal.report(Rule::DoubleComplete, Some(module), detail);
                    continue;
                }
            };
            if self.entries.get(&nbl).is_some_and(|entry| entry.carrier.is_none()) {
                // One of the driver's own frames: what a hook wrote into it since it was
                // allocated crosses the edge.
                let frame = own_frame(pointer);
                let _ = hal.write(&mut packet, 0, &frame);
            }
            // SAFETY: a valid NBL the driver passed on.
            let status = NdisStatus(unsafe { (*pointer).status });
            hal.set_status(&mut packet, status);
            chain.push(packet);
        }
        chain
    }

    /// Enters an NBL the driver just allocated (a frame a hook copied or replaced) in the ledger
    /// as the filter's allocation on `module`, held by the driver.
    pub fn allocated(&mut self, hal: &SimHal, module: ModuleId, nbl: usize) {
        if self.entries.contains_key(&nbl) {
            return;
        }
        let frame = own_frame(ptr::with_exposed_provenance_mut(nbl));
        if let Ok(packet) = hal.allocate(module, FrameSource::Bytes(&frame)) {
            self.by_packet.insert(packet.id(), nbl);
            self.entries.insert(nbl, Entry { packet: Some(packet), carrier: None });
        }
    }

    /// The driver holds these packets again (what a resources indication gave back).
    pub fn hold(&mut self, chain: SimChain) {
        let mut chain = chain;
        while let Some(packet) = chain.pop() {
            if let Some(entry) = self.by_packet.get(&packet.id()).and_then(|nbl| self.entries.get_mut(nbl)) {
                entry.packet = Some(packet);
            }
        }
    }

    /// The packets whose NBLs went home (completed to the protocol, returned to the miniport,
    /// handed back from a lent receive): their carriers wait to carry later packets, or are freed.
    pub fn forget(&mut self, ids: &[PacketId]) {
        for id in ids {
            if let Some(nbl) = self.by_packet.remove(id) {
                if let Some(mut entry) = self.entries.remove(&nbl) {
                    match entry.carrier.take() {
                        Some(carrier) if self.spare.len() < MOST_KEPT => self.spare.push_back(carrier),
                        carrier => free_carrier(carrier),
                    }
                }
            }
        }
    }

    /// The packet of a driver NBL the driver freed (`NdisFreeNetBufferList`), forgotten.
    pub fn freed(&mut self, nbl: usize) -> Option<SimPacket> {
        let entry = self.entries.remove(&nbl)?;
        let packet = entry.packet?;
        self.by_packet.remove(&packet.id());
        Some(packet)
    }
}
