//! libpcap as the reference for wanlayer-rules: `pcap_compile` on a dead DLT_EN10MB handle and
//! `pcap_offline_filter` / `bpf_filter` on the same bytes the classifier sees; and the random
//! packets and rules both are run on. The FFI is the handful of libpcap functions used, declared
//! here (no binding crate needed). Without libpcap installed the crate is empty (see build.rs).
#![cfg(libpcap)]

use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};

#[repr(C)]
struct BpfInsn {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

#[repr(C)]
struct BpfProgramRaw {
    bf_len: c_uint,
    bf_insns: *mut BpfInsn,
}

#[repr(C)]
struct Timeval {
    tv_sec: i64,
    tv_usec: i64,
}

#[repr(C)]
struct PcapPkthdr {
    ts: Timeval,
    caplen: u32,
    len: u32,
}

extern "C" {
    fn pcap_open_dead(linktype: c_int, snaplen: c_int) -> *mut c_void;
    fn pcap_close(handle: *mut c_void);
    fn pcap_compile(handle: *mut c_void, program: *mut BpfProgramRaw, text: *const c_char, optimize: c_int, netmask: u32) -> c_int;
    fn pcap_freecode(program: *mut BpfProgramRaw);
    fn pcap_geterr(handle: *mut c_void) -> *const c_char;
    fn pcap_offline_filter(program: *const BpfProgramRaw, header: *const PcapPkthdr, data: *const u8) -> c_int;
    fn bpf_filter(insns: *const BpfInsn, packet: *const u8, wire_len: c_uint, buffer_len: c_uint) -> c_uint;
}

const DLT_EN10MB: c_int = 1;
const PCAP_NETMASK_UNKNOWN: u32 = 0xffff_ffff;

/// A dead DLT_EN10MB pcap handle to compile filters with.
pub struct Pcap {
    handle: *mut c_void,
}

/// A compiled classic BPF program.
pub struct Program {
    raw: BpfProgramRaw,
}

impl Pcap {
    /// Opens a dead Ethernet handle (snap length 65535).
    pub fn new() -> Pcap {
        // SAFETY: pcap_open_dead takes plain integers and returns an owned handle or null.
        let handle = unsafe { pcap_open_dead(DLT_EN10MB, 65535) };
        assert!(!handle.is_null(), "pcap_open_dead failed");
        Pcap { handle }
    }

    /// `pcap_compile(filter, optimize)`, or libpcap's error text.
    pub fn compile(&self, filter: &str, optimize: bool) -> Result<Program, String> {
        let text = CString::new(filter).map_err(|error| error.to_string())?;
        let mut raw = BpfProgramRaw { bf_len: 0, bf_insns: std::ptr::null_mut() };
        // SAFETY: the handle is live, `raw` is a valid out-parameter and `text` a NUL-terminated
        // string that outlives the call.
        let status = unsafe { pcap_compile(self.handle, &mut raw, text.as_ptr(), c_int::from(optimize), PCAP_NETMASK_UNKNOWN) };
        if status != 0 {
            // SAFETY: the handle is live; pcap_geterr returns a pointer to its error buffer.
            let buffer = unsafe { pcap_geterr(self.handle) };
            // SAFETY: that buffer is NUL-terminated and lives as long as the handle.
            let message = unsafe { CStr::from_ptr(buffer) };
            return Err(message.to_string_lossy().into_owned());
        }
        Ok(Program { raw })
    }
}

impl Default for Pcap {
    fn default() -> Pcap {
        Pcap::new()
    }
}

impl Drop for Pcap {
    fn drop(&mut self) {
        // SAFETY: the handle came from pcap_open_dead and is closed once.
        unsafe { pcap_close(self.handle) }
    }
}

impl Program {
    /// `pcap_offline_filter` on `captured` bytes of a frame `wire_len` long.
    pub fn matches(&self, captured: &[u8], wire_len: u32) -> bool {
        let header = PcapPkthdr { ts: Timeval { tv_sec: 0, tv_usec: 0 }, caplen: captured.len() as u32, len: wire_len };
        // SAFETY: the program is compiled and live, the header describes exactly `captured`.
        unsafe { pcap_offline_filter(&self.raw, &header, captured.as_ptr()) != 0 }
    }

    /// `bpf_filter` directly (what the benchmark measures).
    pub fn bpf_filter(&self, captured: &[u8], wire_len: u32) -> bool {
        // SAFETY: as `matches`: a live program and a buffer of exactly `captured.len()` bytes.
        unsafe { bpf_filter(self.raw.bf_insns, captured.as_ptr(), wire_len, captured.len() as c_uint) != 0 }
    }

    /// Number of BPF instructions.
    pub fn len(&self) -> usize {
        self.raw.bf_len as usize
    }

    /// Whether the program has no instruction.
    pub fn is_empty(&self) -> bool {
        self.raw.bf_len == 0
    }

    /// The instructions, 8 bytes each (code, jt, jf, k; little-endian), to be run later by
    /// [`Instructions`] without compiling again.
    pub fn to_bytes(&self) -> Vec<u8> {
        if self.is_empty() {
            return Vec::new();
        }
        // SAFETY: a compiled program's `bf_insns` points to `bf_len` initialised instructions that
        // live until pcap_freecode, which only Drop calls.
        let insns = unsafe { std::slice::from_raw_parts(self.raw.bf_insns, self.len()) };
        let mut bytes = Vec::with_capacity(insns.len() * 8);
        for insn in insns {
            bytes.extend_from_slice(&insn.code.to_le_bytes());
            bytes.extend_from_slice(&[insn.jt, insn.jf]);
            bytes.extend_from_slice(&insn.k.to_le_bytes());
        }
        bytes
    }
}

/// A classic BPF program read back from [`Program::to_bytes`] (libpcap's optimiser takes minutes
/// for thousands of rules, so the benchmark compiles once, natively, and measures the saved
/// program under callgrind).
pub struct Instructions(Vec<BpfInsn>);

impl Instructions {
    /// The program in `bytes`, or None when its length is not a whole number of instructions.
    pub fn from_bytes(bytes: &[u8]) -> Option<Instructions> {
        if bytes.is_empty() || bytes.len() % 8 != 0 {
            return None;
        }
        let insns = bytes
            .chunks_exact(8)
            .map(|raw| BpfInsn {
                code: u16::from_le_bytes([raw[0], raw[1]]),
                jt: raw[2],
                jf: raw[3],
                k: u32::from_le_bytes([raw[4], raw[5], raw[6], raw[7]]),
            })
            .collect();
        Some(Instructions(insns))
    }

    /// `bpf_filter` on `captured` bytes of a frame `wire_len` long.
    pub fn bpf_filter(&self, captured: &[u8], wire_len: u32) -> bool {
        // SAFETY: the instructions are a program pcap_compile produced (saved by `to_bytes`), so
        // its jumps stay inside it and it ends in a return; the buffer has exactly
        // `captured.len()` bytes, which bpf_filter checks every load against.
        unsafe { bpf_filter(self.0.as_ptr(), captured.as_ptr(), wire_len, captured.len() as c_uint) != 0 }
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        // SAFETY: the program came from a successful pcap_compile and is freed once.
        unsafe { pcap_freecode(&mut self.raw) }
    }
}

/// A small deterministic generator (xorshift64*).
pub struct Rng(u64);

impl Rng {
    /// Seeded generator.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Next 64 random bits.
    pub fn bits(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.bits() % n.max(1)
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// IPv4 addresses packets and rules share, so rules match often.
pub const V4_POOL: [[u8; 4]; 4] = [[10, 0, 0, 1], [10, 0, 1, 2], [192, 168, 1, 1], [172, 16, 5, 4]];
/// IPv6 addresses likewise.
pub const V6_POOL: [[u8; 16]; 3] = [
    [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
    [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
    [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xab, 0xcd],
];
/// Ports likewise.
pub const PORTS: [u16; 5] = [22, 53, 80, 443, 5060];

/// A random frame: Ethernet II then IPv4 or IPv6 (or another ethertype), TCP/UDP/SCTP/ICMP,
/// random addresses, ports, flags and lengths, sometimes truncated. Returns the captured bytes
/// (at most 160) and the wire length.
pub fn random_packet(rng: &mut Rng) -> (Vec<u8>, u32) {
    let mut frame = vec![0u8; 14];
    for byte in frame.iter_mut().take(12) {
        *byte = rng.bits() as u8;
    }
    let kind = rng.below(100);
    let protocols = [6u8, 17, 1, 132, 58, 44, 47];
    let addr_v4 = |rng: &mut Rng| {
        if rng.chance(80) {
            *rng.pick(&V4_POOL)
        } else {
            (rng.bits() as u32).to_be_bytes()
        }
    };
    let addr_v6 = |rng: &mut Rng| {
        if rng.chance(80) {
            *rng.pick(&V6_POOL)
        } else {
            let mut a = [0u8; 16];
            a[..8].copy_from_slice(&rng.bits().to_be_bytes());
            a[8..].copy_from_slice(&rng.bits().to_be_bytes());
            a
        }
    };
    let port = |rng: &mut Rng| {
        if rng.chance(70) {
            *rng.pick(&PORTS)
        } else {
            rng.bits() as u16
        }
    };
    let transport = |rng: &mut Rng, frame: &mut Vec<u8>| {
        frame.extend_from_slice(&port(rng).to_be_bytes());
        frame.extend_from_slice(&port(rng).to_be_bytes());
        for _ in 0..16 {
            frame.push(rng.bits() as u8);
        }
        if rng.chance(50) {
            let flags_at = frame.len() - 20 + 13;
            frame[flags_at] = *rng.pick(&[0x02u8, 0x12, 0x10, 0x11, 0x04, 0x18, 0x29, 0x01]);
        }
    };
    if kind < 45 {
        frame[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let ihl: u8 = if rng.chance(85) { 5 } else { rng.below(16) as u8 };
        frame.push(0x40 | ihl);
        frame.push(rng.bits() as u8);
        frame.extend_from_slice(&(rng.below(1500) as u16).to_be_bytes());
        frame.extend_from_slice(&(rng.bits() as u16).to_be_bytes());
        let fragment: u16 = if rng.chance(85) { 0 } else { rng.bits() as u16 };
        frame.extend_from_slice(&fragment.to_be_bytes());
        frame.push(rng.bits() as u8);
        frame.push(if rng.chance(90) { *rng.pick(&protocols) } else { rng.bits() as u8 });
        frame.extend_from_slice(&[0, 0]);
        frame.extend_from_slice(&addr_v4(rng));
        frame.extend_from_slice(&addr_v4(rng));
        for _ in 20..usize::from(ihl.max(5)) * 4 {
            frame.push(rng.bits() as u8);
        }
        transport(rng, &mut frame);
    } else if kind < 90 {
        frame[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
        frame.extend_from_slice(&[0x60, 0, 0, 0]);
        frame.extend_from_slice(&(rng.below(1500) as u16).to_be_bytes());
        let next = if rng.chance(90) { *rng.pick(&protocols) } else { rng.bits() as u8 };
        frame.push(next);
        frame.push(64);
        frame.extend_from_slice(&addr_v6(rng));
        frame.extend_from_slice(&addr_v6(rng));
        if next == 44 {
            frame.push(*rng.pick(&protocols));
            for _ in 0..7 {
                frame.push(rng.bits() as u8);
            }
        }
        transport(rng, &mut frame);
    } else {
        let ethertype = loop {
            let candidate = rng.bits() as u16;
            if !matches!(candidate, 0x0806 | 0x8035 | 0x0800 | 0x86dd) {
                break candidate;
            }
        };
        frame[12..14].copy_from_slice(&ethertype.to_be_bytes());
        for _ in 0..rng.below(80) {
            frame.push(rng.bits() as u8);
        }
    }
    if rng.chance(25) {
        // A full header: nothing any test loads is missing.
        while frame.len() < 160 {
            frame.push(rng.bits() as u8);
        }
    }
    let mut wire_len = frame.len() as u32 + if rng.chance(50) { rng.below(1400) as u32 } else { 0 };
    if rng.chance(25) {
        let cut = rng.below(frame.len() as u64 + 1) as usize;
        frame.truncate(cut);
        wire_len = wire_len.max(frame.len() as u32);
    }
    frame.truncate(160);
    (frame, wire_len)
}

fn v4_text(a: [u8; 4]) -> String {
    format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3])
}

fn v6_text(a: [u8; 16]) -> String {
    std::net::Ipv6Addr::from(a).to_string()
}

/// A random primitive: (wanlayer's text, libpcap's text for the same test).
pub fn random_atom(rng: &mut Rng) -> (String, String) {
    let same = |text: String| (text.clone(), text);
    let dir = |rng: &mut Rng| rng.pick(&["", "src ", "dst ", "src or dst ", "src and dst "]).to_string();
    match rng.below(14) {
        0 => same(rng.pick(&["ip", "ip6", "tcp", "udp", "icmp", "icmp6", "sctp"]).to_string()),
        1 => same(format!("{}proto {}", rng.pick(&["", "ip ", "ip6 "]), rng.pick(&[6, 17, 1, 58, 44, 132, 47, 0]))),
        2 => same(format!("{}host {}", dir(rng), v4_text(*rng.pick(&V4_POOL)))),
        3 => same(format!("{}host {}", dir(rng), v6_text(*rng.pick(&V6_POOL)))),
        4 => {
            let len = *rng.pick(&[0u32, 8, 16, 24, 31, 32]);
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            let addr = u32::from_be_bytes(*rng.pick(&V4_POOL)) & mask;
            if rng.chance(50) {
                same(format!("{}net {}/{}", dir(rng), v4_text(addr.to_be_bytes()), len))
            } else {
                same(format!("{}net {} mask {}", dir(rng), v4_text(addr.to_be_bytes()), v4_text(mask.to_be_bytes())))
            }
        }
        5 => {
            let len = *rng.pick(&[0u32, 16, 32, 48, 64, 127, 128]);
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
            let addr = u128::from_be_bytes(*rng.pick(&V6_POOL)) & mask;
            same(format!("{}net {}/{}", dir(rng), v6_text(addr.to_be_bytes()), len))
        }
        6 | 7 => same(format!("{}{}port {}", rng.pick(&["", "tcp ", "udp ", "sctp "]), dir(rng), rng.pick(&PORTS))),
        8 => {
            let a = *rng.pick(&PORTS);
            let b = *rng.pick(&PORTS);
            same(format!("{}{}portrange {}-{}", rng.pick(&["", "tcp ", "udp "]), dir(rng), a, b))
        }
        9 => {
            let (mine, v6) = *rng.pick(&[
                ("tcp[tcpflags] & (tcp-syn|tcp-ack) != 0", "ip6[53] & 0x12 != 0"),
                ("tcp[tcpflags] & tcp-syn != 0", "ip6[53] & 2 != 0"),
                ("tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn", "ip6[53] & 0x12 == 2"),
                ("tcp[tcpflags] & tcp-fin != 0", "ip6[53] & 1 != 0"),
                ("tcp[tcpflags] & tcp-rst != 0", "ip6[53] & 4 != 0"),
                ("tcp[tcpflags] & tcp-push != 0", "ip6[53] & 8 != 0"),
                ("tcp[tcpflags] & tcp-urg != 0", "ip6[53] & 0x20 != 0"),
                ("tcp[13] = 2", "ip6[53] = 2"),
                ("tcp[13] & 0x10 = 0x10", "ip6[53] & 0x10 = 0x10"),
                ("tcp[2:2] > 1024", "ip6[42:2] > 1024"),
            ]);
            (format!("({mine})"), format!("({mine} or (ip6 and ip6[6] == 6 and {v6}))"))
        }
        10 => same(format!("{} {}", rng.pick(&["greater", "less"]), rng.pick(&[40, 60, 100, 576, 1500]))),
        11 => same(format!("len {} {}", rng.pick(&["=", "!=", ">", ">=", "<", "<="]), rng.pick(&[40, 60, 100, 576]))),
        12 => {
            let relation = *rng.pick(&["= 8", "> 64", "!= 0", "< 3"]);
            if rng.chance(20) {
                // udp[] also reads IPv6's UDP header (libpcap's is IPv4 only).
                (format!("(udp[4:2] {relation})"), format!("(udp[4:2] {relation} or (ip6 and ip6[6] == 17 and ip6[44:2] {relation}))"))
            } else {
                same(format!("{} {relation}", rng.pick(&["ip[8]", "ip[1] & 0xfc", "ip6[7]", "icmp[icmptype]", "ether[0]"])))
            }
        }
        _ => {
            // Qualifier elision.
            let ports: Vec<String> = (0..2).map(|_| rng.pick(&PORTS).to_string()).collect();
            let hosts: Vec<String> = (0..3).map(|_| v4_text(*rng.pick(&V4_POOL))).collect();
            match rng.below(4) {
                0 => same(format!("(port {} or {})", ports[0], ports[1])),
                1 => same(format!("(tcp dst port {} or {})", ports[0], ports[1])),
                2 => same(format!("(host {} and ({} or {}))", hosts[0], hosts[1], hosts[2])),
                _ => same(format!("(src host {} or not {})", hosts[0], hosts[1])),
            }
        }
    }
}

/// A random filter of up to `depth` levels of `and` / `or` / `not`.
pub fn random_filter(rng: &mut Rng, depth: u32) -> (String, String) {
    if depth == 0 || rng.chance(35) {
        return random_atom(rng);
    }
    match rng.below(5) {
        0 => {
            let (mine, pcap) = random_filter(rng, depth - 1);
            let not = *rng.pick(&["not ", "!"]);
            (format!("{not}({mine})"), format!("not ({pcap})"))
        }
        1 => {
            // Unparenthesised: and / or have equal precedence, left to right.
            let (a, pa) = random_atom(rng);
            let (b, pb) = random_atom(rng);
            let (c, pc) = random_atom(rng);
            let (o1, o2) = (*rng.pick(&["and", "or", "&&", "||"]), *rng.pick(&["and", "or"]));
            (format!("{a} {o1} {b} {o2} {c}"), format!("{pa} {o1} {pb} {o2} {pc}"))
        }
        _ => {
            let (a, pa) = random_filter(rng, depth - 1);
            let (b, pb) = random_filter(rng, depth - 1);
            let op = *rng.pick(&["and", "or"]);
            (format!("({a}) {op} ({b})"), format!("({pa}) {op} ({pb})"))
        }
    }
}
