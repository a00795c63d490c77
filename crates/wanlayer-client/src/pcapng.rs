//! A pcapng writer for captured frames (what Wireshark and tshark read): a section header, one
//! interface per link (Ethernet link type, `if_name` = `link-<id>`, nanosecond timestamps), and an
//! enhanced packet block per frame with its direction (`epb_flags`: inbound for receives,
//! outbound for sends) and a comment on injected frames.
//!
//! Little-endian blocks, options padded to 4 bytes, as the pcapng specification
//! (draft-ietf-opsawg-pcapng) lays them out.

use std::collections::HashMap;
use std::io::{self, Write};

use wanlayer_proto::display::ModuleIdText;

use crate::types::CapturedFrame;

const SECTION_HEADER: u32 = 0x0A0D_0D0A;
const INTERFACE_DESCRIPTION: u32 = 1;
const ENHANCED_PACKET: u32 = 6;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
/// `LINKTYPE_ETHERNET`: NdisWan's IP edges frame every packet as Ethernet.
pub const LINKTYPE_ETHERNET: u16 = 1;
const OPT_END: u16 = 0;
const OPT_COMMENT: u16 = 1;
const SHB_USERAPPL: u16 = 4;
const IF_NAME: u16 = 2;
const IF_DESCRIPTION: u16 = 3;
const IF_TSRESOL: u16 = 9;
const EPB_FLAGS: u16 = 2;
const EPB_INBOUND: u32 = 1;
const EPB_OUTBOUND: u32 = 2;

/// Which interface a frame is written on.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Interface {
    /// A WAN link.
    Link(u64),
    /// Frames of a module that matched no link.
    Unmatched(u32),
}

/// Writes a pcapng file frame by frame.
pub struct PcapngWriter<W: Write> {
    out: W,
    interfaces: HashMap<Interface, u32>,
    frames: u64,
}

/// Appends an option (code, length, value padded to 4).
fn option(block: &mut Vec<u8>, code: u16, value: &[u8]) {
    block.extend_from_slice(&code.to_le_bytes());
    block.extend_from_slice(&(value.len() as u16).to_le_bytes());
    block.extend_from_slice(value);
    block.resize(block.len().next_multiple_of(4), 0);
}

/// Wraps `body` as a block of `kind`: type, total length, body, total length.
fn block(kind: u32, body: &[u8]) -> Vec<u8> {
    let total = (12 + body.len()) as u32;
    let mut out = Vec::with_capacity(total as usize);
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&total.to_le_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&total.to_le_bytes());
    out
}

impl<W: Write> PcapngWriter<W> {
    /// Starts a file: writes the section header naming `application`.
    ///
    /// # Errors
    /// The writer's.
    pub fn new(mut out: W, application: &str) -> io::Result<Self> {
        let mut body = Vec::new();
        body.extend_from_slice(&BYTE_ORDER_MAGIC.to_le_bytes());
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&(-1i64).to_le_bytes());
        option(&mut body, SHB_USERAPPL, application.as_bytes());
        option(&mut body, OPT_END, &[]);
        out.write_all(&block(SECTION_HEADER, &body))?;
        Ok(Self { out, interfaces: HashMap::new(), frames: 0 })
    }

    fn interface(&mut self, frame: &CapturedFrame) -> io::Result<u32> {
        let record = frame.record();
        let key = record.link_id.map_or(Interface::Unmatched(record.module), Interface::Link);
        if let Some(id) = self.interfaces.get(&key) {
            return Ok(*id);
        }
        let (name, description) = match key {
            Interface::Link(link) => {
                (format!("link-{link}"), format!("wanlayer WAN link {link} on module {}", ModuleIdText(record.module)))
            }
            Interface::Unmatched(module) => {
                (format!("module-{}", ModuleIdText(module)), format!("wanlayer module {}: frames of no WAN link", ModuleIdText(module)))
            }
        };
        let mut body = Vec::new();
        body.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&0u32.to_le_bytes());
        option(&mut body, IF_NAME, name.as_bytes());
        option(&mut body, IF_DESCRIPTION, description.as_bytes());
        option(&mut body, IF_TSRESOL, &[9]);
        option(&mut body, OPT_END, &[]);
        self.out.write_all(&block(INTERFACE_DESCRIPTION, &body))?;
        let id = self.interfaces.len() as u32;
        self.interfaces.insert(key, id);
        Ok(id)
    }

    /// Writes one frame, stamped `time_ns` (nanoseconds since the Unix epoch), after the
    /// description of its link's interface if this is the link's first frame.
    ///
    /// # Errors
    /// The writer's.
    pub fn write_frame(&mut self, frame: &CapturedFrame, time_ns: u64) -> io::Result<()> {
        let interface = self.interface(frame)?;
        let record = frame.record();
        let mut body = Vec::with_capacity(32 + record.data.len());
        body.extend_from_slice(&interface.to_le_bytes());
        body.extend_from_slice(&((time_ns >> 32) as u32).to_le_bytes());
        body.extend_from_slice(&(time_ns as u32).to_le_bytes());
        body.extend_from_slice(&(record.data.len() as u32).to_le_bytes());
        body.extend_from_slice(&record.original_len.max(record.data.len() as u32).to_le_bytes());
        body.extend_from_slice(record.data);
        body.resize(body.len().next_multiple_of(4), 0);
        option(&mut body, EPB_FLAGS, &(if frame.is_send() { EPB_OUTBOUND } else { EPB_INBOUND }).to_le_bytes());
        if record.injected {
            option(&mut body, OPT_COMMENT, b"injected through wanlayer's control device");
        }
        option(&mut body, OPT_END, &[]);
        self.out.write_all(&block(ENHANCED_PACKET, &body))?;
        self.frames += 1;
        Ok(())
    }

    /// Pushes what was written so far to the underlying writer (the file stays readable if the
    /// capture is interrupted).
    ///
    /// # Errors
    /// The writer's.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Frames written.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Interfaces (links) described.
    pub fn interfaces(&self) -> usize {
        self.interfaces.len()
    }

    /// Flushes and gives back the writer.
    ///
    /// # Errors
    /// The writer's.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(link: Option<u64>, direction: wanlayer_proto::Direction, injected: bool, data: &[u8]) -> CapturedFrame {
        let original_len = data.len() as u32 + 2;
        CapturedFrame::new(&wanlayer_proto::CaptureRecordRepr {
            module: 0x0001_0000,
            link_id: link,
            time_ns: 0,
            original_len,
            direction,
            injected,
            data,
        })
    }

    /// Walks the blocks of a file: (type, body).
    fn blocks(bytes: &[u8]) -> Vec<(u32, Vec<u8>)> {
        let mut at = 0;
        let mut out = Vec::new();
        while at < bytes.len() {
            let kind = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
            let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
            assert_eq!(len % 4, 0);
            assert_eq!(bytes[at + len - 4..at + len], bytes[at + 4..at + 8], "trailing length");
            out.push((kind, bytes[at + 8..at + len - 4].to_vec()));
            at += len;
        }
        out
    }

    #[test]
    fn one_interface_per_link_and_a_block_per_frame() {
        let mut writer = PcapngWriter::new(Vec::new(), "test").unwrap();
        use wanlayer_proto::Direction::{Receive, Send};
        writer.write_frame(&frame(Some(3), Send, false, &[1; 14]), 1_700_000_000_123_456_789).unwrap();
        writer.write_frame(&frame(Some(3), Receive, true, &[2; 15]), 2).unwrap();
        writer.write_frame(&frame(None, Send, false, &[3; 16]), 3).unwrap();
        assert_eq!((writer.frames(), writer.interfaces()), (3, 2));
        let bytes = writer.finish().unwrap();
        let kinds: Vec<u32> = blocks(&bytes).iter().map(|(kind, _)| *kind).collect();
        assert_eq!(
            kinds,
            [SECTION_HEADER, INTERFACE_DESCRIPTION, ENHANCED_PACKET, ENHANCED_PACKET, INTERFACE_DESCRIPTION, ENHANCED_PACKET]
        );
        let all = blocks(&bytes);
        assert_eq!(all[0].1[..4], BYTE_ORDER_MAGIC.to_le_bytes());
        assert_eq!(all[1].1[..2], LINKTYPE_ETHERNET.to_le_bytes());
        assert!(all[1].1.windows(6).any(|w| w == b"link-3"));
        let epb = &all[2].1;
        let time = (u64::from(u32::from_le_bytes(epb[4..8].try_into().unwrap())) << 32)
            | u64::from(u32::from_le_bytes(epb[8..12].try_into().unwrap()));
        assert_eq!(time, 1_700_000_000_123_456_789);
        assert_eq!(u32::from_le_bytes(epb[12..16].try_into().unwrap()), 14);
        assert_eq!(u32::from_le_bytes(epb[16..20].try_into().unwrap()), 16);
        assert!(all[3].1.windows(8).any(|w| w == b"injected"));
        assert_eq!(u32::from_le_bytes(all[5].1[..4].try_into().unwrap()), 1, "the second interface");
    }
}
