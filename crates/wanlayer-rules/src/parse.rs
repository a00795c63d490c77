//! The filter language: pcap-filter(7) syntax for what it covers, plus WAN terms. The grammar is
//! in the crate documentation and the README; this is a hand-written recursive-descent parser
//! that follows libpcap's grammar (`grammar.y`) for precedence and qualifier elision.

use crate::classifier_io::Direction;
use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

/// A parsed filter expression. `and` and `or` evaluate left to right, the right side only when
/// the left does not decide (as pcap's code does).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    /// Both sides match.
    And(Box<Expr>, Box<Expr>),
    /// Either side matches.
    Or(Box<Expr>, Box<Expr>),
    /// The inner expression does not match.
    Not(Box<Expr>),
    /// A primitive.
    Term(Term),
}

/// IP version of a term.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// IPv4 (ethertype 0x0800).
    Ipv4,
    /// IPv6 (ethertype 0x86DD).
    Ipv6,
}

/// Which address or port of the packet a term tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddrDir {
    /// The source.
    Src,
    /// The destination.
    Dst,
    /// The source or the destination (the default).
    SrcOrDst,
    /// Both the source and the destination.
    SrcAndDst,
}

/// An address with a mask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Net {
    /// IPv4 address and mask (host order).
    V4 {
        /// The address, with no bit outside the mask.
        addr: u32,
        /// The mask.
        mask: u32,
    },
    /// IPv6 address and prefix length.
    V6 {
        /// The address, with no bit past the prefix.
        addr: u128,
        /// Prefix length, 0..=128.
        prefix: u8,
    },
}

/// The packet field a comparison loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operand {
    /// `ether[offset:size]`, `ip[..]`, `ip6[..]`, `tcp[..]`, `udp[..]`, `icmp[..]`.
    Load {
        /// Which header the offset counts from.
        base: LoadBase,
        /// Offset in bytes.
        offset: u16,
        /// 1, 2 or 4 bytes, big-endian.
        size: u8,
    },
    /// `len`: the frame's whole length.
    Len,
}

/// The header a load counts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadBase {
    /// The frame (Ethernet header).
    Ether,
    /// The IPv4 header (IPv4 packets only).
    Ip,
    /// The IPv6 header (IPv6 packets only).
    Ip6,
    /// The TCP header: IPv4 first fragments as pcap, IPv6 when the next header is TCP.
    Tcp,
    /// The UDP header, likewise.
    Udp,
    /// The ICMP header (IPv4 first fragments).
    Icmp,
}

/// A comparison operator (unsigned, 32 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelOp {
    /// `=` or `==`.
    Eq,
    /// `!=`.
    Ne,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
}

/// A primitive of the language.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Term {
    /// `ip`, `ip6`.
    Family(Family),
    /// `tcp`, `udp`, `sctp` (either family), `icmp` (IPv4), `icmp6` (IPv6), `[ip|ip6] proto N`.
    Protocol {
        /// Restricted to one family, or either.
        family: Option<Family>,
        /// The protocol number.
        number: u8,
    },
    /// `[src|dst] host A`, `[src|dst] net A/len`, `net A mask M`.
    Address {
        /// Which address.
        dir: AddrDir,
        /// The address and mask.
        net: Net,
    },
    /// `[tcp|udp|sctp] [src|dst] port P`, `portrange A-B`.
    Port {
        /// TCP (6), UDP (17) or SCTP (132); None for any of them.
        protocol: Option<u8>,
        /// Which port.
        dir: AddrDir,
        /// Lowest port.
        low: u16,
        /// Highest port.
        high: u16,
    },
    /// `field [& mask] op value`, `len op value`, `greater N`, `less N`.
    Compare {
        /// What is loaded.
        operand: Operand,
        /// Mask applied before comparing.
        mask: u32,
        /// The operator.
        op: RelOp,
        /// The constant.
        value: u32,
    },
    /// `link ID`: the packet belongs to this WAN link.
    Link(u64),
    /// `device NAME`: the link's device name (see the crate docs).
    Device(String),
    /// `send` or `receive`.
    Direction(Direction),
}

/// Why a filter expression does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// Byte offset in the text.
    pub offset: usize,
    /// What the parser expected there.
    pub expected: &'static str,
    /// The text found there (empty at the end of the filter).
    pub found: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.found.is_empty() {
            write!(f, "at {}: expected {}, found the end of the filter", self.offset, self.expected)
        } else {
            write!(f, "at {}: expected {}, found '{}'", self.offset, self.expected, self.found)
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Word(String),
    Quoted(String),
    Punct(&'static str),
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    offset: usize,
    text: String,
}

const PUNCTS: [&str; 16] = ["&&", "||", "!=", "==", ">=", "<=", "(", ")", "[", "]", "/", "&", "|", "!", "=", ">"];

fn word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '-' | '_' | '*' | '\\' | '{' | '}')
}

fn lex(text: &str) -> Result<Vec<Token>, ParseError> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(offset, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '"' {
            chars.next();
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some((_, '"')) => break,
                    Some((_, c)) => value.push(c),
                    None => return Err(ParseError { offset: text.len(), expected: "a closing '\"'", found: String::new() }),
                }
            }
            let end = chars.peek().map_or(text.len(), |(end, _)| *end);
            tokens.push(Token { tok: Tok::Quoted(value), offset, text: text[offset..end].to_string() });
            continue;
        }
        if word_char(c) {
            let mut end = offset;
            while let Some(&(at, c)) = chars.peek() {
                if !word_char(c) {
                    break;
                }
                end = at + c.len_utf8();
                chars.next();
            }
            let word = &text[offset..end];
            tokens.push(Token { tok: Tok::Word(word.to_string()), offset, text: word.to_string() });
            continue;
        }
        let rest = &text[offset..];
        let punct = PUNCTS.iter().find(|p| rest.starts_with(**p)).copied().or(if rest.starts_with('<') { Some("<") } else { None });
        match punct {
            Some(p) => {
                for _ in 0..p.len() {
                    chars.next();
                }
                tokens.push(Token { tok: Tok::Punct(p), offset, text: p.to_string() });
            }
            None => return Err(ParseError { offset, expected: "a word, a number, an address or an operator", found: c.to_string() }),
        }
    }
    Ok(tokens)
}

/// Protocol names usable as qualifiers and as terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pname {
    Ip,
    Ip6,
    Tcp,
    Udp,
    Sctp,
    Icmp,
    Icmp6,
}

fn pname(word: &str) -> Option<Pname> {
    Some(match word {
        "ip" => Pname::Ip,
        "ip6" => Pname::Ip6,
        "tcp" => Pname::Tcp,
        "udp" => Pname::Udp,
        "sctp" => Pname::Sctp,
        "icmp" => Pname::Icmp,
        "icmp6" => Pname::Icmp6,
        _ => return None,
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Default,
    Host,
    Net,
    Port,
    Portrange,
    Proto,
    Link,
}

/// The qualifiers a bare value takes (pcap's `$<blk>0.q`): None when a bare value is an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Qual {
    proto: Option<Pname>,
    dir: Option<AddrDir>,
    kind: Kind,
}

const KEYWORDS: [&str; 25] = [
    "and",
    "or",
    "not",
    "host",
    "net",
    "mask",
    "port",
    "portrange",
    "proto",
    "src",
    "dst",
    "len",
    "greater",
    "less",
    "ether",
    "link",
    "device",
    "send",
    "receive",
    "ip",
    "ip6",
    "tcp",
    "udp",
    "sctp",
    "icmp",
];

fn is_keyword(word: &str) -> bool {
    KEYWORDS.contains(&word) || word == "icmp6"
}

/// The most tokens one filter may have.
const MAX_TOKENS: usize = 4096;

struct Parser<'a> {
    tokens: Vec<Token>,
    position: usize,
    text: &'a str,
}

type Parsed<T> = Result<T, ParseError>;

fn and(left: Expr, right: Expr) -> Expr {
    Expr::And(Box::new(left), Box::new(right))
}

fn or(left: Expr, right: Expr) -> Expr {
    Expr::Or(Box::new(left), Box::new(right))
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position)
    }

    fn peek_at(&self, ahead: usize) -> Option<&Token> {
        self.tokens.get(self.position + ahead)
    }

    fn error(&self, expected: &'static str) -> ParseError {
        match self.peek() {
            Some(token) => ParseError { offset: token.offset, expected, found: token.text.clone() },
            None => ParseError { offset: self.text.len(), expected, found: String::new() },
        }
    }

    fn word_at(&self, ahead: usize) -> Option<&str> {
        match self.peek_at(ahead) {
            Some(Token { tok: Tok::Word(word), .. }) => Some(word.as_str()),
            _ => None,
        }
    }

    fn punct_at(&self, ahead: usize) -> Option<&'static str> {
        match self.peek_at(ahead) {
            Some(Token { tok: Tok::Punct(p), .. }) => Some(p),
            _ => None,
        }
    }

    fn is_word(&self, ahead: usize, expected: &str) -> bool {
        self.word_at(ahead) == Some(expected)
    }

    fn is_and(&self, ahead: usize) -> bool {
        self.is_word(ahead, "and") || self.punct_at(ahead) == Some("&&")
    }

    fn is_or(&self, ahead: usize) -> bool {
        self.is_word(ahead, "or") || self.punct_at(ahead) == Some("||")
    }

    fn is_not(&self, ahead: usize) -> bool {
        self.is_word(ahead, "not") || self.punct_at(ahead) == Some("!")
    }

    fn expect_punct(&mut self, punct: &'static str, expected: &'static str) -> Parsed<()> {
        if self.punct_at(0) == Some(punct) {
            self.position += 1;
            Ok(())
        } else {
            Err(self.error(expected))
        }
    }

    /// Whether a bare value (pcap's `id`) starts here: a value, possibly behind `not`s and `(`s.
    fn starts_id(&self) -> bool {
        let mut ahead = 0;
        while self.is_not(ahead) || self.punct_at(ahead) == Some("(") {
            ahead += 1;
        }
        match self.peek_at(ahead) {
            Some(Token { tok: Tok::Word(word), .. }) => !is_keyword(word),
            Some(Token { tok: Tok::Quoted(_), .. }) => true,
            _ => false,
        }
    }

    /// expr := term (('and' | 'or') (term | id))*  — equal precedence, left to right.
    fn expr(&mut self, context: Option<Qual>) -> Parsed<(Expr, Option<Qual>)> {
        let (mut left, mut qual) = self.term(context)?;
        loop {
            let conjunction = if self.is_and(0) {
                true
            } else if self.is_or(0) {
                false
            } else {
                return Ok((left, qual));
            };
            self.position += 1;
            let right = if self.starts_id() {
                self.id(qual)?
            } else {
                let (right, right_qual) = self.term(qual)?;
                qual = right_qual;
                right
            };
            left = if conjunction { and(left, right) } else { or(left, right) };
        }
    }

    /// id := 'not' id | '(' id (('and' | 'or') id)* ')' | value — a value with the qualifiers of
    /// the term before it.
    fn id(&mut self, qual: Option<Qual>) -> Parsed<Expr> {
        if self.is_not(0) {
            self.position += 1;
            return Ok(Expr::Not(Box::new(self.id(qual)?)));
        }
        if self.punct_at(0) == Some("(") {
            self.position += 1;
            let mut left = self.id(qual)?;
            loop {
                if self.is_and(0) {
                    self.position += 1;
                    left = and(left, self.id(qual)?);
                } else if self.is_or(0) {
                    self.position += 1;
                    left = or(left, self.id(qual)?);
                } else {
                    break;
                }
            }
            self.expect_punct(")", "')'")?;
            return Ok(left);
        }
        let Some(qual) = qual else {
            return Err(self.error("a qualifier (host, net, port, ...) before this value"));
        };
        self.value(qual)
    }

    /// Whether the tokens from here start a comparison rather than a boolean expression.
    fn starts_comparison(&self) -> bool {
        let mut ahead = 0;
        let mut depth = 0usize;
        while self.punct_at(ahead) == Some("(") {
            ahead += 1;
            depth += 1;
        }
        let load_start = match self.word_at(ahead) {
            Some("len" | "ether") => true,
            Some(word) if pname(word).is_some() => self.punct_at(ahead + 1) == Some("["),
            Some(word) => word.starts_with(|c: char| c.is_ascii_digit()) && !word.contains('.') && !word.contains(':'),
            None => false,
        };
        if !load_start {
            return false;
        }
        if depth == 0 {
            return true;
        }
        // '(' ... ')' followed by an operator or a relation is arithmetic.
        let mut level = 0usize;
        while let Some(token) = self.peek_at(ahead) {
            match &token.tok {
                Tok::Punct("(") => level += 1,
                Tok::Punct(")") => {
                    if level == 0 {
                        depth -= 1;
                        if depth == 0 {
                            return matches!(self.punct_at(ahead + 1), Some("=" | "==" | "!=" | ">" | ">=" | "<" | "<=" | "&" | "|"));
                        }
                    } else {
                        level -= 1;
                    }
                }
                _ => {}
            }
            ahead += 1;
        }
        false
    }

    /// term := ('not' | '!') term | '(' expr ')' | comparison | head value | pname | other.
    fn term(&mut self, context: Option<Qual>) -> Parsed<(Expr, Option<Qual>)> {
        if self.is_not(0) {
            self.position += 1;
            let (inner, qual) = self.term(context)?;
            return Ok((Expr::Not(Box::new(inner)), qual));
        }
        if self.starts_comparison() {
            return Ok((Expr::Term(self.comparison()?), None));
        }
        if self.punct_at(0) == Some("(") {
            self.position += 1;
            let (inner, _) = self.expr(context)?;
            self.expect_punct(")", "')' or 'and' or 'or'")?;
            return Ok((inner, context));
        }
        let Some(word) = self.word_at(0).map(ToString::to_string) else {
            return Err(self.error("a filter primitive (host, net, port, tcp, ...)"));
        };
        match word.as_str() {
            "greater" | "less" => {
                self.position += 1;
                let value = self.number_u32("a length in bytes")?;
                let op = if word == "greater" { RelOp::Ge } else { RelOp::Le };
                return Ok((Expr::Term(Term::Compare { operand: Operand::Len, mask: u32::MAX, op, value }), None));
            }
            "send" | "receive" => {
                self.position += 1;
                let direction = if word == "send" { Direction::Send } else { Direction::Receive };
                return Ok((Expr::Term(Term::Direction(direction)), None));
            }
            "device" => {
                self.position += 1;
                let name = match self.peek() {
                    Some(Token { tok: Tok::Quoted(name) | Tok::Word(name), .. }) if !name.is_empty() => name.clone(),
                    _ => return Err(self.error("a device name")),
                };
                self.position += 1;
                return Ok((Expr::Term(Term::Device(name)), None));
            }
            "link" => {
                self.position += 1;
                let qual = Qual { proto: None, dir: None, kind: Kind::Link };
                return Ok((self.id(Some(qual))?, Some(qual)));
            }
            _ => {}
        }
        let proto = pname(&word);
        if proto.is_some() {
            self.position += 1;
        }
        let dir = self.dir_qualifier();
        let kind = match self.word_at(0) {
            Some("host") => Some(Kind::Host),
            Some("net") => Some(Kind::Net),
            Some("port") => Some(Kind::Port),
            Some("portrange") => Some(Kind::Portrange),
            Some("proto") => Some(Kind::Proto),
            _ => None,
        };
        if kind.is_some() {
            self.position += 1;
        }
        if kind.is_none() && dir.is_none() {
            return match proto {
                Some(proto) => Ok((Expr::Term(protocol_term(proto)), None)),
                None => Err(self.error("a filter primitive (host, net, port, tcp, ...)")),
            };
        }
        if kind == Some(Kind::Proto) && dir.is_some() {
            return Err(self.error("no direction before 'proto'"));
        }
        let qual = Qual { proto, dir, kind: kind.unwrap_or(Kind::Default) };
        Ok((self.id(Some(qual))?, Some(qual)))
    }

    /// dir := 'src' | 'dst' | 'src or dst' | 'dst or src' | 'src and dst' | 'dst and src'.
    fn dir_qualifier(&mut self) -> Option<AddrDir> {
        let first = match self.word_at(0) {
            Some("src") => AddrDir::Src,
            Some("dst") => AddrDir::Dst,
            _ => return None,
        };
        self.position += 1;
        let other = if first == AddrDir::Src { "dst" } else { "src" };
        if self.is_word(1, other) {
            if self.is_or(0) {
                self.position += 2;
                return Some(AddrDir::SrcOrDst);
            }
            if self.is_and(0) {
                self.position += 2;
                return Some(AddrDir::SrcAndDst);
            }
        }
        Some(first)
    }

    fn take_word(&mut self, expected: &'static str) -> Parsed<(String, usize)> {
        match self.peek() {
            Some(Token { tok: Tok::Word(word), offset, .. }) => {
                let taken = (word.clone(), *offset);
                self.position += 1;
                Ok(taken)
            }
            _ => Err(self.error(expected)),
        }
    }

    fn number_u32(&mut self, expected: &'static str) -> Parsed<u32> {
        let start = self.position;
        let (word, _) = self.take_word(expected)?;
        parse_number(&word).and_then(|n| u32::try_from(n).ok()).ok_or_else(|| {
            self.position = start;
            self.error(expected)
        })
    }

    /// A value under qualifiers `qual`.
    fn value(&mut self, qual: Qual) -> Parsed<Expr> {
        let start = self.position;
        let fail = |parser: &mut Self, expected: &'static str| {
            parser.position = start;
            Err(parser.error(expected))
        };
        let dir = qual.dir.unwrap_or(AddrDir::SrcOrDst);
        match qual.kind {
            Kind::Link => {
                let (word, _) = self.take_word("a link id")?;
                match parse_number(&word) {
                    Some(id) => Ok(Expr::Term(Term::Link(id))),
                    None => fail(self, "a link id"),
                }
            }
            Kind::Proto => {
                let number = self.number_u32("a protocol number (0-255)")?;
                let Ok(number) = u8::try_from(number) else {
                    return fail(self, "a protocol number (0-255)");
                };
                let family = match qual.proto {
                    None => None,
                    Some(Pname::Ip) => Some(Family::Ipv4),
                    Some(Pname::Ip6) => Some(Family::Ipv6),
                    Some(_) => return fail(self, "'proto' after nothing, 'ip' or 'ip6'"),
                };
                Ok(Expr::Term(Term::Protocol { family, number }))
            }
            Kind::Port | Kind::Portrange => {
                let protocol = match qual.proto {
                    None => None,
                    Some(Pname::Tcp) => Some(6),
                    Some(Pname::Udp) => Some(17),
                    Some(Pname::Sctp) => Some(132),
                    Some(_) => return fail(self, "'port' after nothing, 'tcp', 'udp' or 'sctp'"),
                };
                let (word, _) = self.take_word("a port number")?;
                let port = |text: &str| parse_number(text).and_then(|n| u16::try_from(n).ok());
                let (low, high) = if qual.kind == Kind::Port {
                    match port(&word) {
                        Some(port) => (port, port),
                        None => return fail(self, "a port number"),
                    }
                } else {
                    match word.split_once('-').and_then(|(a, b)| Some((port(a)?, port(b)?))) {
                        Some((a, b)) => (a.min(b), a.max(b)),
                        None => return fail(self, "a port range (low-high)"),
                    }
                };
                Ok(Expr::Term(Term::Port { protocol, dir, low, high }))
            }
            Kind::Host | Kind::Net | Kind::Default => {
                let family = match qual.proto {
                    None => None,
                    Some(Pname::Ip) => Some(Family::Ipv4),
                    Some(Pname::Ip6) => Some(Family::Ipv6),
                    Some(_) => return fail(self, "an address qualifier after nothing, 'ip' or 'ip6'"),
                };
                let (word, _) = self.take_word("an IPv4 or IPv6 address")?;
                let net = if word.contains(':') {
                    let Some(addr) = parse_ipv6(&word) else {
                        return fail(self, "an IPv6 address");
                    };
                    let mut prefix = 128u8;
                    if qual.kind == Kind::Net && self.punct_at(0) == Some("/") {
                        self.position += 1;
                        let len = self.number_u32("a prefix length (0-128)")?;
                        if len > 128 {
                            self.position -= 1;
                            return Err(self.error("a prefix length (0-128)"));
                        }
                        prefix = len as u8;
                    }
                    let mask = crate::format::prefix_mask(prefix);
                    if addr & !mask != 0 {
                        return fail(self, "a network address with no bits set past its prefix");
                    }
                    if family == Some(Family::Ipv4) {
                        return fail(self, "an IPv4 address after 'ip'");
                    }
                    Net::V6 { addr, prefix }
                } else {
                    let Some((addr, octets)) = parse_ipv4(&word) else {
                        return fail(self, "an IPv4 or IPv6 address");
                    };
                    if qual.kind != Kind::Net && octets != 4 {
                        return fail(self, "a full IPv4 address (a.b.c.d)");
                    }
                    let mut mask = if octets == 4 { u32::MAX } else { u32::MAX << (32 - 8 * octets) };
                    if qual.kind == Kind::Net && self.punct_at(0) == Some("/") {
                        self.position += 1;
                        let len = self.number_u32("a prefix length (0-32)")?;
                        if len > 32 {
                            self.position -= 1;
                            return Err(self.error("a prefix length (0-32)"));
                        }
                        mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                    } else if qual.kind == Kind::Net && self.is_word(0, "mask") {
                        self.position += 1;
                        let (mask_word, _) = self.take_word("a netmask (a.b.c.d)")?;
                        match parse_ipv4(&mask_word) {
                            Some((value, 4)) => mask = value,
                            _ => {
                                self.position -= 1;
                                return Err(self.error("a netmask (a.b.c.d)"));
                            }
                        }
                    }
                    if addr & !mask != 0 {
                        return fail(self, "a network address with no bits set outside its mask");
                    }
                    if family == Some(Family::Ipv6) {
                        return fail(self, "an IPv6 address after 'ip6'");
                    }
                    Net::V4 { addr, mask }
                };
                Ok(Expr::Term(Term::Address { dir, net }))
            }
        }
    }

    /// comparison := arith relop arith, where one side reduces to `field [& constant]` and the
    /// other to a constant.
    fn comparison(&mut self) -> Parsed<Term> {
        let start = self.position;
        let left = self.arith()?;
        let op = match self.punct_at(0) {
            Some("=" | "==") => RelOp::Eq,
            Some("!=") => RelOp::Ne,
            Some(">") => RelOp::Gt,
            Some(">=") => RelOp::Ge,
            Some("<") => RelOp::Lt,
            Some("<=") => RelOp::Le,
            _ => return Err(self.error("a comparison (=, !=, >, >=, <, <=)")),
        };
        self.position += 1;
        let right = self.arith()?;
        let (operand, mask, op, value) = match (left, right) {
            (Arith::Field(operand, mask), Arith::Const(value)) => (operand, mask, op, value),
            (Arith::Const(value), Arith::Field(operand, mask)) => {
                let flipped = match op {
                    RelOp::Gt => RelOp::Lt,
                    RelOp::Ge => RelOp::Le,
                    RelOp::Lt => RelOp::Gt,
                    RelOp::Le => RelOp::Ge,
                    other => other,
                };
                (operand, mask, flipped, value)
            }
            _ => {
                self.position = start;
                return Err(self.error("a comparison of one packet field (optionally '& constant') with a constant"));
            }
        };
        Ok(Term::Compare { operand, mask, op, value })
    }

    /// arith := aterm ('|' aterm)*
    fn arith(&mut self) -> Parsed<Arith> {
        let mut left = self.aterm()?;
        while self.punct_at(0) == Some("|") {
            self.position += 1;
            let right = self.aterm()?;
            left = match (left, right) {
                (Arith::Const(a), Arith::Const(b)) => Arith::Const(a | b),
                _ => return Err(self.error("'|' between constants only")),
            };
        }
        Ok(left)
    }

    /// aterm := afactor ('&' afactor)*
    fn aterm(&mut self) -> Parsed<Arith> {
        let mut left = self.afactor()?;
        while self.punct_at(0) == Some("&") {
            self.position += 1;
            let right = self.afactor()?;
            left = match (left, right) {
                (Arith::Const(a), Arith::Const(b)) => Arith::Const(a & b),
                (Arith::Field(operand, mask), Arith::Const(c)) | (Arith::Const(c), Arith::Field(operand, mask)) => {
                    Arith::Field(operand, mask & c)
                }
                _ => return Err(self.error("'&' of a packet field with a constant")),
            };
        }
        Ok(left)
    }

    /// afactor := load | 'len' | constant | '(' arith ')'
    fn afactor(&mut self) -> Parsed<Arith> {
        if self.punct_at(0) == Some("(") {
            self.position += 1;
            let inner = self.arith()?;
            self.expect_punct(")", "')'")?;
            return Ok(inner);
        }
        let Some(word) = self.word_at(0).map(ToString::to_string) else {
            return Err(self.error("a packet field, 'len' or a constant"));
        };
        if word == "len" {
            self.position += 1;
            return Ok(Arith::Field(Operand::Len, u32::MAX));
        }
        let base = match word.as_str() {
            "ether" => Some(LoadBase::Ether),
            "ip" => Some(LoadBase::Ip),
            "ip6" => Some(LoadBase::Ip6),
            "tcp" => Some(LoadBase::Tcp),
            "udp" => Some(LoadBase::Udp),
            "icmp" => Some(LoadBase::Icmp),
            _ => None,
        };
        if let Some(base) = base {
            self.position += 1;
            self.expect_punct("[", "'['")?;
            let (inside, _) = self.take_word("an offset (a number, tcpflags, icmptype or icmpcode)")?;
            let (offset_text, size_text) = match inside.split_once(':') {
                Some((offset, size)) => (offset.to_string(), Some(size.to_string())),
                None => (inside.clone(), None),
            };
            let offset = match constant(&offset_text).and_then(|n| u16::try_from(n).ok()) {
                Some(offset) => offset,
                None => {
                    self.position -= 1;
                    return Err(self.error("an offset (a number, tcpflags, icmptype or icmpcode)"));
                }
            };
            let size = match size_text.as_deref() {
                None => 1,
                Some("1") => 1,
                Some("2") => 2,
                Some("4") => 4,
                Some(_) => {
                    self.position -= 1;
                    return Err(self.error("a load size of 1, 2 or 4"));
                }
            };
            let limit = match base {
                LoadBase::Ether => crate::HEADER_BYTES,
                LoadBase::Ip | LoadBase::Ip6 => crate::HEADER_BYTES - 14,
                LoadBase::Tcp | LoadBase::Udp | LoadBase::Icmp => crate::format::MAX_TRANSPORT4_END,
            };
            if usize::from(offset) + usize::from(size) > limit {
                self.position -= 1;
                return Err(self.error("a load within the 160 header bytes the classifier sees"));
            }
            self.expect_punct("]", "']'")?;
            let full = match size {
                1 => 0xff,
                2 => 0xffff,
                _ => u32::MAX,
            };
            return Ok(Arith::Field(Operand::Load { base, offset, size }, full));
        }
        match constant(&word) {
            Some(value) => {
                self.position += 1;
                Ok(Arith::Const(value))
            }
            None => Err(self.error("a packet field, 'len' or a constant")),
        }
    }
}

enum Arith {
    Field(Operand, u32),
    Const(u32),
}

fn protocol_term(proto: Pname) -> Term {
    match proto {
        Pname::Ip => Term::Family(Family::Ipv4),
        Pname::Ip6 => Term::Family(Family::Ipv6),
        Pname::Tcp => Term::Protocol { family: None, number: 6 },
        Pname::Udp => Term::Protocol { family: None, number: 17 },
        Pname::Sctp => Term::Protocol { family: None, number: 132 },
        Pname::Icmp => Term::Protocol { family: Some(Family::Ipv4), number: 1 },
        Pname::Icmp6 => Term::Protocol { family: Some(Family::Ipv6), number: 58 },
    }
}

/// A number (decimal, `0x` hexadecimal, or octal with a leading 0, as pcap) or a named constant.
fn constant(word: &str) -> Option<u32> {
    let named = match word {
        "tcpflags" => 13,
        "tcp-fin" => 0x01,
        "tcp-syn" => 0x02,
        "tcp-rst" => 0x04,
        "tcp-push" => 0x08,
        "tcp-ack" => 0x10,
        "tcp-urg" => 0x20,
        "tcp-ece" => 0x40,
        "tcp-cwr" => 0x80,
        "icmptype" => 0,
        "icmpcode" => 1,
        "icmp-echoreply" => 0,
        "icmp-unreach" => 3,
        "icmp-redirect" => 5,
        "icmp-echo" => 8,
        "icmp-timxceed" => 11,
        _ => return parse_number(word).and_then(|n| u32::try_from(n).ok()),
    };
    Some(named)
}

fn parse_number(word: &str) -> Option<u64> {
    if let Some(hex) = word.strip_prefix("0x").or_else(|| word.strip_prefix("0X")) {
        return u64::from_str_radix(hex, 16).ok();
    }
    if word.len() > 1 && word.starts_with('0') {
        return u64::from_str_radix(&word[1..], 8).ok();
    }
    if word.is_empty() || !word.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    word.parse().ok()
}

/// A dotted IPv4 address of 1 to 4 octets, left-aligned; and how many octets it had.
fn parse_ipv4(word: &str) -> Option<(u32, u32)> {
    let mut addr = 0u32;
    let mut octets = 0u32;
    for part in word.split('.') {
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) || octets == 4 {
            return None;
        }
        let octet: u8 = part.parse().ok()?;
        addr |= u32::from(octet) << (24 - 8 * octets);
        octets += 1;
    }
    if octets == 4 || word.contains('.') || octets >= 1 {
        Some((addr, octets))
    } else {
        None
    }
}

fn parse_ipv6(word: &str) -> Option<u128> {
    word.parse::<core::net::Ipv6Addr>().ok().map(u128::from)
}

/// Parses one filter expression.
///
/// # Errors
/// A [`ParseError`] with the byte offset of the offending token and what was expected there.
pub fn parse(filter: &str) -> Result<Expr, ParseError> {
    let tokens = lex(filter)?;
    // Parsing and compiling recurse once per nesting level or chained term: a bound on tokens
    // bounds the stack they use.
    if let Some(token) = tokens.get(MAX_TOKENS) {
        return Err(ParseError {
            offset: token.offset,
            expected: "a shorter filter (at most 4096 words and operators)",
            found: token.text.clone(),
        });
    }
    let mut parser = Parser { tokens, position: 0, text: filter };
    if parser.peek().is_none() {
        return Err(parser.error("a filter expression"));
    }
    let (expr, _) = parser.expr(None)?;
    if parser.peek().is_some() {
        return Err(parser.error("'and', 'or' or the end of the filter"));
    }
    Ok(expr)
}
