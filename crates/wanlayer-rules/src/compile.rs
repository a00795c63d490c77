//! The compiler (user mode): rules are parsed, each filter is lowered to a program of test nodes
//! that reproduces libpcap's evaluation order (so a test that needs missing frame bytes ends the
//! program where pcap's would), and the set's index is built from each rule's most selective
//! necessary condition.

use crate::classifier_io::{Action, Direction};
use crate::format::{self, field, header, node, rule, slot};
use crate::parse::{self, AddrDir, Expr, Family, LoadBase, Net, Operand, ParseError, RelOp, Term};
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;

/// One rule as an administrator writes it.
#[derive(Clone, Copy, Debug)]
pub struct RuleSource<'a> {
    /// The administrator's id for the rule (unique in a set).
    pub id: u32,
    /// Lower values are tried first; equal priorities keep their order.
    pub priority: u32,
    /// What the rule does.
    pub action: Action,
    /// The filter expression.
    pub filter: &'a str,
}

/// Why a rule set does not compile.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CompileError {
    /// A rule's filter does not parse.
    Parse {
        /// The rule's id.
        id: u32,
        /// What is wrong with its filter.
        error: ParseError,
    },
    /// Two rules share an id.
    DuplicateId(u32),
    /// A rule's program has more nodes than a rule may have.
    TooComplex(u32),
    /// The whole set exceeds the size the driver accepts.
    TooLarge,
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompileError::Parse { id, error } => write!(f, "rule {id}: {error}"),
            CompileError::DuplicateId(id) => write!(f, "rule id {id} is used twice"),
            CompileError::TooComplex(id) => write!(f, "rule {id}: the filter is too complex (more than {} tests)", format::MAX_RULE_NODES),
            CompileError::TooLarge => write!(f, "the rule set is larger than {} bytes", format::MAX_BLOB_LEN),
        }
    }
}

/// One test node before its jumps are known.
#[derive(Clone, Copy, Debug)]
struct Test {
    kind: u8,
    op: u8,
    size: u8,
    offset: u16,
    mask: u32,
    value: u32,
}

/// A boolean combination of tests, evaluated left to right.
enum Prim {
    And(Box<Prim>, Box<Prim>),
    Or(Box<Prim>, Box<Prim>),
    Not(Box<Prim>),
    Test(Test),
}

fn all(parts: Vec<Prim>) -> Prim {
    let mut parts = parts.into_iter().rev();
    let mut tail =
        parts.next().unwrap_or(Prim::Test(Test { kind: format::KIND_LENGTH, op: format::OP_GE, size: 0, offset: 0, mask: 0, value: 0 }));
    for part in parts {
        tail = Prim::And(Box::new(part), Box::new(tail));
    }
    tail
}

fn any(left: Prim, right: Prim) -> Prim {
    Prim::Or(Box::new(left), Box::new(right))
}

fn frame(offset: usize, size: u8, mask: u32, op: u8, value: u32) -> Prim {
    Prim::Test(Test { kind: format::KIND_FRAME, op, size, offset: offset as u16, mask, value })
}

fn byte_is(offset: usize, value: u8) -> Prim {
    frame(offset, 1, 0xff, format::OP_EQ, u32::from(value))
}

fn ethertype(value: u16) -> Prim {
    frame(12, 2, 0xffff, format::OP_EQ, u32::from(value))
}

const IPV4: u16 = 0x0800;
const IPV6: u16 = 0x86dd;

/// pcap's `gen_ipfrag`: the fragment offset is zero.
fn first_fragment() -> Prim {
    frame(14 + 6, 2, 0x1fff, format::OP_EQ, 0)
}

/// A comparison node: the guard tests stay outside the negation, as in pcap's `gen_relation`.
fn relation(kind: u8, offset: usize, size: u8, mask: u32, op: RelOp, value: u32) -> Prim {
    let (code, negate) = match op {
        RelOp::Eq => (format::OP_EQ, false),
        RelOp::Ne => (format::OP_EQ, true),
        RelOp::Gt => (format::OP_GT, false),
        RelOp::Ge => (format::OP_GE, false),
        RelOp::Lt => (format::OP_GE, true),
        RelOp::Le => (format::OP_GT, true),
    };
    let test = Prim::Test(Test { kind, op: code, size, offset: offset as u16, mask, value });
    if negate {
        Prim::Not(Box::new(test))
    } else {
        test
    }
}

fn directions(dir: AddrDir, single: impl Fn(bool) -> Prim) -> Prim {
    match dir {
        AddrDir::Src => single(true),
        AddrDir::Dst => single(false),
        AddrDir::SrcOrDst => any(single(true), single(false)),
        AddrDir::SrcAndDst => all(Vec::from([single(true), single(false)])),
    }
}

fn port_test(kind: u8, base: usize, low: u16, high: u16, source: bool) -> Prim {
    let offset = base + if source { 0 } else { 2 };
    let load = |op: RelOp, value: u16| relation(kind, offset, 2, 0xffff, op, u32::from(value));
    if low == high {
        load(RelOp::Eq, low)
    } else {
        all(Vec::from([load(RelOp::Ge, low), load(RelOp::Le, high)]))
    }
}

/// The tests of one term, in libpcap's order.
fn lower_term(term: &Term, devices: &mut Vec<alloc::string::String>) -> Prim {
    match term {
        Term::Family(Family::Ipv4) => ethertype(IPV4),
        Term::Family(Family::Ipv6) => ethertype(IPV6),
        Term::Protocol { family, number } => {
            let v4 = || all(Vec::from([ethertype(IPV4), byte_is(14 + 9, *number)]));
            let v6 = || {
                all(Vec::from([
                    ethertype(IPV6),
                    any(byte_is(14 + 6, *number), all(Vec::from([byte_is(14 + 6, 44), byte_is(14 + 40, *number)]))),
                ]))
            };
            match family {
                Some(Family::Ipv4) => v4(),
                Some(Family::Ipv6) => v6(),
                None => any(v4(), v6()),
            }
        }
        Term::Address { dir, net: Net::V4 { addr, mask } } => directions(*dir, |source| {
            let offset = 14 + if source { 12 } else { 16 };
            all(Vec::from([ethertype(IPV4), frame(offset, 4, *mask, format::OP_EQ, *addr)]))
        }),
        Term::Address { dir, net: Net::V6 { addr, prefix } } => directions(*dir, |source| {
            let offset = 14 + if source { 8 } else { 24 };
            let mask = format::prefix_mask(*prefix);
            let mut parts = Vec::from([ethertype(IPV6)]);
            for word in 0..4 {
                let shift = 96 - 32 * word;
                parts.push(frame(offset + 4 * word, 4, (mask >> shift) as u32, format::OP_EQ, (addr >> shift) as u32));
            }
            all(parts)
        }),
        Term::Port { protocol, dir, low, high } => {
            let protocols: &[u8] = match protocol {
                Some(number) => core::slice::from_ref(number),
                None => &[132, 6, 17],
            };
            let per_protocol = |v6: bool| {
                let mut alternatives = protocols.iter().rev().map(|number| {
                    if v6 {
                        all(Vec::from([
                            byte_is(14 + 6, *number),
                            directions(*dir, |source| port_test(format::KIND_FRAME, 54, *low, *high, source)),
                        ]))
                    } else {
                        all(Vec::from([
                            byte_is(14 + 9, *number),
                            first_fragment(),
                            directions(*dir, |source| port_test(format::KIND_TRANSPORT4, 0, *low, *high, source)),
                        ]))
                    }
                });
                let mut chain = alternatives.next().unwrap_or_else(|| ethertype(0));
                for alternative in alternatives {
                    chain = any(alternative, chain);
                }
                chain
            };
            let v6 = all(Vec::from([ethertype(IPV6), per_protocol(true)]));
            let v4 = all(Vec::from([ethertype(IPV4), per_protocol(false)]));
            any(v6, v4)
        }
        Term::Compare { operand: Operand::Len, mask, op, value } => relation(format::KIND_LENGTH, 0, 0, *mask, *op, *value),
        Term::Compare { operand: Operand::Load { base, offset, size }, mask, op, value } => {
            let offset = usize::from(*offset);
            let compare = |kind: u8, at: usize| relation(kind, at, *size, *mask, *op, *value);
            let transport = |number: u8, v6: bool| {
                let v4 =
                    all(Vec::from([ethertype(IPV4), byte_is(14 + 9, number), first_fragment(), compare(format::KIND_TRANSPORT4, offset)]));
                if v6 {
                    any(v4, all(Vec::from([ethertype(IPV6), byte_is(14 + 6, number), compare(format::KIND_FRAME, 54 + offset)])))
                } else {
                    v4
                }
            };
            match base {
                LoadBase::Ether => compare(format::KIND_FRAME, offset),
                LoadBase::Ip => all(Vec::from([ethertype(IPV4), compare(format::KIND_FRAME, 14 + offset)])),
                LoadBase::Ip6 => all(Vec::from([ethertype(IPV6), compare(format::KIND_FRAME, 14 + offset)])),
                LoadBase::Tcp => transport(6, true),
                LoadBase::Udp => transport(17, true),
                LoadBase::Icmp => transport(1, false),
            }
        }
        Term::Link(id) => {
            Prim::Test(Test { kind: format::KIND_LINK, op: format::OP_EQ, size: 0, offset: 0, mask: *id as u32, value: (*id >> 32) as u32 })
        }
        Term::Direction(direction) => Prim::Test(Test {
            kind: format::KIND_DIRECTION,
            op: format::OP_EQ,
            size: 0,
            offset: 0,
            mask: 0,
            value: u32::from(*direction == Direction::Receive),
        }),
        Term::Device(name) => {
            // The string's place is filled in when the set's strings are laid out.
            devices.push(name.clone());
            Prim::Test(Test { kind: format::KIND_DEVICE, op: format::OP_EQ, size: 0, offset: 0, mask: 0, value: 0 })
        }
    }
}

fn lower(expr: &Expr, devices: &mut Vec<alloc::string::String>) -> Prim {
    match expr {
        Expr::And(left, right) => Prim::And(Box::new(lower(left, devices)), Box::new(lower(right, devices))),
        Expr::Or(left, right) => Prim::Or(Box::new(lower(left, devices)), Box::new(lower(right, devices))),
        Expr::Not(inner) => Prim::Not(Box::new(lower(inner, devices))),
        Expr::Term(term) => lower_term(term, devices),
    }
}

#[derive(Clone, Copy)]
enum Target {
    Match,
    NoMatch,
    Label(usize),
}

struct Program {
    nodes: Vec<(Test, Target, Target)>,
    labels: Vec<usize>,
}

impl Program {
    fn label(&mut self) -> usize {
        self.labels.push(usize::MAX);
        self.labels.len() - 1
    }

    fn bind(&mut self, label: usize) {
        if let Some(slot) = self.labels.get_mut(label) {
            *slot = self.nodes.len();
        }
    }

    /// Short-circuit code: every label is bound after the nodes that jump to it, so all jumps
    /// go forward.
    fn emit(&mut self, prim: &Prim, on_true: Target, on_false: Target) {
        match prim {
            Prim::And(left, right) => {
                let next = self.label();
                self.emit(left, Target::Label(next), on_false);
                self.bind(next);
                self.emit(right, on_true, on_false);
            }
            Prim::Or(left, right) => {
                let next = self.label();
                self.emit(left, on_true, Target::Label(next));
                self.bind(next);
                self.emit(right, on_true, on_false);
            }
            Prim::Not(inner) => self.emit(inner, on_false, on_true),
            Prim::Test(test) => self.nodes.push((*test, on_true, on_false)),
        }
    }

    fn resolve(&self, target: Target) -> u32 {
        match target {
            Target::Match => format::MATCH,
            Target::NoMatch => format::NO_MATCH,
            Target::Label(label) => self.labels.get(label).map_or(format::NO_MATCH, |position| *position as u32),
        }
    }
}

/// One entry of the index: the rule can only match packets whose `field`, masked to `prefix`
/// bits, equals `key`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    field: u8,
    prefix: u8,
    key: u128,
}

/// How selective a key is, in bits (more is better).
fn selectivity(key: &Key) -> u32 {
    match key.field {
        field::SRC_PORT | field::DST_PORT => 12,
        field::SRC_V6 | field::DST_V6 => u32::from(key.prefix.min(64)),
        _ => u32::from(key.prefix),
    }
}

fn score(keys: &[Key]) -> i64 {
    let worst = keys.iter().map(selectivity).min().unwrap_or(0);
    i64::from(worst) - i64::from(usize::BITS - keys.len().saturating_sub(1).leading_zeros())
}

/// Keys such that the expression can only match a packet that has one of them: the best
/// conjunct of an `and`, the union of both sides of an `or`.
fn necessary_keys(expr: &Expr) -> Option<Vec<Key>> {
    match expr {
        Expr::And(left, right) => match (necessary_keys(left), necessary_keys(right)) {
            (Some(left), Some(right)) => Some(if score(&right) > score(&left) { right } else { left }),
            (left, right) => left.or(right),
        },
        Expr::Or(left, right) => {
            let mut keys = necessary_keys(left)?;
            keys.extend(necessary_keys(right)?);
            Some(keys)
        }
        Expr::Not(_) => None,
        Expr::Term(term) => term_keys(term),
    }
}

fn term_keys(term: &Term) -> Option<Vec<Key>> {
    let (source_field, destination_field, prefix, key) = match term {
        Term::Address { net: Net::V4 { addr, mask }, .. } => {
            if mask.count_ones() != mask.leading_ones() || *mask == 0 {
                return None;
            }
            (field::SRC_V4, field::DST_V4, mask.count_ones() as u8, u128::from(*addr) << 96)
        }
        Term::Address { net: Net::V6 { addr, prefix }, .. } => {
            if *prefix == 0 {
                return None;
            }
            (field::SRC_V6, field::DST_V6, *prefix, *addr)
        }
        Term::Port { low, high, .. } if low == high => (field::SRC_PORT, field::DST_PORT, 16, u128::from(*low) << 112),
        _ => return None,
    };
    let dir = match term {
        Term::Address { dir, .. } | Term::Port { dir, .. } => *dir,
        _ => return None,
    };
    let source = Key { field: source_field, prefix, key };
    let destination = Key { field: destination_field, prefix, key };
    Some(match dir {
        AddrDir::Src | AddrDir::SrcAndDst => Vec::from([source]),
        AddrDir::Dst => Vec::from([destination]),
        AddrDir::SrcOrDst => Vec::from([source, destination]),
    })
}

/// The smallest index table: small sets pay 512 bytes so that misses rarely meet an entry.
const MIN_SLOTS: usize = 16;

/// Keys less selective than this leave the rule to the catch-all list.
const MIN_SCORE: i64 = 8;

struct CompiledRule<'a> {
    source: RuleSource<'a>,
    nodes: Vec<[u8; format::NODE_LEN]>,
    keys: Option<Vec<Key>>,
}

fn put_u16(bytes: &mut [u8], offset: usize, value: u16) {
    if let Some(target) = bytes.get_mut(offset..offset + 2) {
        target.copy_from_slice(&value.to_le_bytes());
    }
}

fn put_u32(bytes: &mut [u8], offset: usize, value: u32) {
    if let Some(target) = bytes.get_mut(offset..offset + 4) {
        target.copy_from_slice(&value.to_le_bytes());
    }
}

fn compile_rule<'a>(source: RuleSource<'a>, strings: &mut Vec<u8>) -> Result<CompiledRule<'a>, CompileError> {
    let expr = parse::parse(source.filter).map_err(|error| CompileError::Parse { id: source.id, error })?;
    let mut devices = Vec::new();
    let prim = lower(&expr, &mut devices);
    let mut program = Program { nodes: Vec::new(), labels: Vec::new() };
    program.emit(&prim, Target::Match, Target::NoMatch);
    if program.nodes.len() > format::MAX_RULE_NODES as usize {
        return Err(CompileError::TooComplex(source.id));
    }
    let mut device_names = devices.into_iter();
    let mut nodes = Vec::with_capacity(program.nodes.len());
    for (test, on_true, on_false) in &program.nodes {
        let mut bytes = [0u8; format::NODE_LEN];
        bytes[node::KIND] = test.kind;
        bytes[node::OP] = test.op;
        bytes[node::SIZE] = test.size;
        put_u16(&mut bytes, node::OFFSET, test.offset);
        let (mask, value) = if test.kind == format::KIND_DEVICE {
            let name = device_names.next().unwrap_or_default();
            let start = strings.len() as u32;
            strings.extend_from_slice(name.as_bytes());
            (start, name.len() as u32)
        } else {
            (test.mask, test.value)
        };
        put_u32(&mut bytes, node::MASK, mask);
        put_u32(&mut bytes, node::VALUE, value);
        put_u32(&mut bytes, node::JUMP_TRUE, program.resolve(*on_true));
        put_u32(&mut bytes, node::JUMP_FALSE, program.resolve(*on_false));
        nodes.push(bytes);
    }
    let keys = necessary_keys(&expr).filter(|keys| score(keys) >= MIN_SCORE);
    Ok(CompiledRule { source, nodes, keys })
}

/// Compiles a rule set into the compact, position-independent, little-endian blob the driver
/// loads. Rules are ordered by priority (stable), so a rule's index is its rank.
///
/// # Errors
/// The first rule (by id) that does not parse, a duplicate id, or a set too large.
pub fn compile(rules: &[RuleSource<'_>]) -> Result<Vec<u8>, CompileError> {
    let mut ordered: Vec<RuleSource<'_>> = rules.to_vec();
    ordered.sort_by_key(|rule| rule.priority);
    let mut ids: Vec<u32> = rules.iter().map(|rule| rule.id).collect();
    ids.sort_unstable();
    if let Some(pair) = ids.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(CompileError::DuplicateId(pair[0]));
    }
    let mut strings = Vec::new();
    let mut text_places = Vec::with_capacity(ordered.len());
    for rule in &ordered {
        text_places.push((strings.len() as u32, rule.filter.len() as u32));
        strings.extend_from_slice(rule.filter.as_bytes());
    }
    let mut compiled = Vec::with_capacity(ordered.len());
    for rule in ordered {
        compiled.push(compile_rule(rule, &mut strings)?);
    }

    // The index: each key's list of rules, ascending (rules are visited in order).
    let mut lists: BTreeMap<Key, Vec<u32>> = BTreeMap::new();
    let mut catch_all = Vec::new();
    for (index, rule) in compiled.iter().enumerate() {
        match &rule.keys {
            Some(keys) => {
                for key in keys {
                    let list = lists.entry(*key).or_default();
                    if list.last() != Some(&(index as u32)) {
                        list.push(index as u32);
                    }
                }
            }
            None => catch_all.push(index as u32),
        }
    }
    let mut probes: Vec<(u8, u8)> = lists.keys().map(|key| (key.field, key.prefix)).collect();
    probes.dedup();
    // At most a quarter full, so a miss (most packets) usually ends at its home slot.
    let slot_count = if lists.is_empty() { 0 } else { (lists.len() * 4).next_power_of_two().max(MIN_SLOTS) };
    let mut slots = alloc::vec![[0u8; format::SLOT_LEN]; slot_count];
    let mut list_words: Vec<u32> = Vec::new();
    let mut max_probe = 0usize;
    for (key, list) in &lists {
        let mask = slot_count - 1;
        let home = format::hash(key.field, key.prefix, key.key) as usize & mask;
        let mut distance = 0;
        while slots[(home + distance) & mask][slot::OCCUPIED] != 0 {
            distance += 1;
        }
        max_probe = max_probe.max(distance);
        let entry = &mut slots[(home + distance) & mask];
        entry[slot::FIELD] = key.field;
        entry[slot::PREFIX] = key.prefix;
        entry[slot::OCCUPIED] = 1;
        put_u32(entry, slot::LIST_START, list_words.len() as u32);
        put_u32(entry, slot::LIST_LEN, list.len() as u32);
        entry[slot::KEY..slot::KEY + 16].copy_from_slice(&key.key.to_be_bytes());
        list_words.extend_from_slice(list);
    }
    let catch_all_start = list_words.len();
    list_words.extend_from_slice(&catch_all);

    let node_total: usize = compiled.iter().map(|rule| rule.nodes.len()).sum();
    let total = format::HEADER_LEN
        + compiled.len() * format::RULE_LEN
        + node_total * format::NODE_LEN
        + probes.len() * format::PROBE_LEN
        + slot_count * format::SLOT_LEN
        + list_words.len() * 4
        + strings.len();
    if total > format::MAX_BLOB_LEN {
        return Err(CompileError::TooLarge);
    }
    let mut blob = Vec::with_capacity(total);
    blob.extend_from_slice(&format::MAGIC);
    blob.extend_from_slice(&format::VERSION.to_le_bytes());
    blob.extend_from_slice(&(format::HEADER_LEN as u16).to_le_bytes());
    blob.resize(format::HEADER_LEN, 0);
    for (offset, value) in [
        (header::TOTAL_LEN, total),
        (header::RULES, compiled.len()),
        (header::NODES, node_total),
        (header::PROBES, probes.len()),
        (header::SLOTS, slot_count),
        (header::LIST_WORDS, list_words.len()),
        (header::STRING_BYTES, strings.len()),
        (header::CATCH_ALL_START, catch_all_start),
        (header::CATCH_ALL_LEN, catch_all.len()),
        (header::MAX_PROBE, max_probe),
    ] {
        put_u32(&mut blob, offset, value as u32);
    }
    let mut node_start = 0u32;
    for (rule, (text_start, text_len)) in compiled.iter().zip(&text_places) {
        let mut record = [0u8; format::RULE_LEN];
        put_u32(&mut record, rule::ID, rule.source.id);
        put_u32(&mut record, rule::PRIORITY, rule.source.priority);
        record[rule::ACTION] = rule.source.action as u8;
        put_u32(&mut record, rule::NODE_START, node_start);
        put_u32(&mut record, rule::NODE_COUNT, rule.nodes.len() as u32);
        put_u32(&mut record, rule::TEXT_START, *text_start);
        put_u32(&mut record, rule::TEXT_LEN, *text_len);
        blob.extend_from_slice(&record);
        node_start += rule.nodes.len() as u32;
    }
    for rule in &compiled {
        for bytes in &rule.nodes {
            blob.extend_from_slice(bytes);
        }
    }
    for (field, prefix) in &probes {
        blob.extend_from_slice(&[*field, *prefix, 0, 0]);
    }
    for entry in &slots {
        blob.extend_from_slice(entry);
    }
    for word in &list_words {
        blob.extend_from_slice(&word.to_le_bytes());
    }
    blob.extend_from_slice(&strings);
    Ok(blob)
}
