//! `wanlayerctl rules`: the administrator's rule set.
//!
//! # The rules file
//! One rule per line: `<id> <priority> <action> <filter>`, e.g.
//!
//! ```text
//! # drop SMB to the PPP links, count one subnet, capture SIP on link 3
//! 10  100 drop    tcp dst port 445
//! 20  200 count   net 10.8.0.0/16
//! 30  50  capture link 3 and udp port 5060
//! ```
//!
//! `id` is any 32-bit number, unique in the set; a lower `priority` wins (equal priorities: the
//! earlier line); `action` is `pass`, `drop`, `count` or `capture` (`divert` is reserved and
//! refused by the driver); the filter is the rest of the line, in the language of
//! `wanlayer-rules` (tcpdump's pcap-filter syntax plus `link`, `device`, `send`, `receive`).
//! Everything from a `#` to the end of the line is a comment; blank lines are ignored.
//!
//! Every change compiles the whole set here, in user mode, and replaces the driver's set naming
//! the version it read, so two administrators never overwrite each other blindly: the second
//! gets `STATUS_TRANSACTIONAL_CONFLICT` and tries again.

use std::path::Path;

use serde::Serialize;
use serde_json::json;
use wanlayer_client::types::RulesSnapshot;
use wanlayer_client::{Client, Transport};
use wanlayer_proto::Expected;
use wanlayer_rules::{compile, Action, Direction, PacketView, RuleSet, RuleSource, HEADER_BYTES};

use crate::{output, Cli, DirectionArg, Failure, RulesCommand};

/// The altitude a first set runs at when none is given: above the usual vendor hooks, so sends
/// meet the administrator's rules first.
pub const DEFAULT_ALTITUDE: u32 = 1000;

/// One rule as the administrator wrote it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// Its id.
    pub id: u32,
    /// Its priority (lower first).
    pub priority: u32,
    /// Its action.
    pub action: &'static str,
    /// Its filter.
    pub filter: String,
}

fn action_name(action: Action) -> &'static str {
    match action {
        Action::Pass => "pass",
        Action::Drop => "drop",
        Action::Count => "count",
        Action::Capture => "capture",
        Action::Divert => "divert",
    }
}

fn parse_action(text: &str) -> Option<Action> {
    Some(match text {
        "pass" => Action::Pass,
        "drop" => Action::Drop,
        "count" => Action::Count,
        "capture" => Action::Capture,
        "divert" => Action::Divert,
        _ => return None,
    })
}

/// Parses one rule `<id> <priority> <action> <filter>` (no comment).
fn parse_rule(text: &str) -> Result<Rule, String> {
    let mut fields = text.split_whitespace();
    let (Some(id), Some(priority), Some(action)) = (fields.next(), fields.next(), fields.next()) else {
        return Err("expected <id> <priority> <action> <filter>".into());
    };
    let id = id.parse().map_err(|_| format!("'{id}' is not a rule id (0 to 4294967295)"))?;
    let priority = priority.parse().map_err(|_| format!("'{priority}' is not a priority (0 to 4294967295)"))?;
    let action = parse_action(action).ok_or_else(|| format!("'{action}' is not an action (pass, drop, count, capture)"))?;
    let filter = fields.collect::<Vec<_>>().join(" ");
    if filter.is_empty() {
        return Err("the filter is missing".into());
    }
    Ok(Rule { id, priority, action: action_name(action), filter })
}

/// Parses a rules file.
///
/// # Errors
/// `line N: why` for the first malformed line or a duplicate id.
pub fn parse_rules(text: &str) -> Result<Vec<Rule>, String> {
    let mut rules: Vec<Rule> = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.split_once('#').map_or(line, |(rule, _)| rule).trim();
        if line.is_empty() {
            continue;
        }
        let rule = parse_rule(line).map_err(|why| format!("line {}: {why}", number + 1))?;
        if rules.iter().any(|other| other.id == rule.id) {
            return Err(format!("line {}: rule {} is defined twice", number + 1, rule.id));
        }
        rules.push(rule);
    }
    Ok(rules)
}

/// The rules file text of `rules`.
pub fn format_rules(rules: &[Rule]) -> String {
    let mut text = String::from("# wanlayer rules: <id> <priority> <action> <filter>\n");
    for rule in rules {
        text.push_str(&format!("{} {} {} {}\n", rule.id, rule.priority, rule.action, rule.filter));
    }
    text
}

/// Compiles `rules` into the driver's form.
///
/// # Errors
/// The compiler's message (which rule, where, what was expected).
pub fn compile_rules(rules: &[Rule]) -> Result<Vec<u8>, String> {
    if rules.is_empty() {
        return Ok(Vec::new());
    }
    let sources: Vec<RuleSource<'_>> = rules
        .iter()
        .map(|rule| RuleSource {
            id: rule.id,
            priority: rule.priority,
            action: parse_action(rule.action).unwrap_or(Action::Pass),
            filter: &rule.filter,
        })
        .collect();
    compile(&sources).map_err(|error| error.to_string())
}

/// The rules of a compiled set read back from the driver.
///
/// # Errors
/// When the driver's blob does not load here (a tool older than the driver).
pub fn decode(blob: &[u8]) -> Result<(RuleSet, Vec<Rule>), String> {
    if blob.is_empty() {
        return Ok((RuleSet::empty(), Vec::new()));
    }
    let set = RuleSet::load(blob).map_err(|error| format!("the driver's rule set does not load here (error {}): {error}", error.code()))?;
    let rules = (0..set.len())
        .filter_map(|index| set.rule(index))
        .map(|rule| Rule { id: rule.id, priority: rule.priority, action: action_name(rule.action), filter: rule.filter.into() })
        .collect();
    Ok((set, rules))
}

/// Replaces the driver's set with `rules`, naming the version read (`force`: whatever is there).
fn replace<T: Transport>(
    client: &mut Client<T>,
    read: &RulesSnapshot,
    rules: &[Rule],
    altitude: Option<u32>,
    force: bool,
) -> Result<u64, Failure> {
    let blob = compile_rules(rules).map_err(Failure::Usage)?;
    let altitude = altitude.unwrap_or(if read.version == 0 { DEFAULT_ALTITUDE } else { read.altitude });
    let expected = if force { Expected::Any } else { Expected::Version(read.version) };
    Ok(client.set_rules(expected, altitude, &blob)?)
}

fn report_replaced(cli: &Cli, what: &str, version: u64, rules: usize) -> Result<(), Failure> {
    if cli.json {
        output::json(&json!({ "replaced": what, "version": version, "rules": rules }))
    } else {
        println!("{what}: rule set version {version} in force, {rules} rule(s)");
        Ok(())
    }
}

fn local(path: &Path, error: std::io::Error) -> Failure {
    Failure::Local(format!("{}: {error}", path.display()))
}

/// Runs `wanlayerctl rules …`.
pub fn execute<T: Transport>(cli: &Cli, client: &mut Client<T>, command: &RulesCommand) -> Result<(), Failure> {
    match command {
        RulesCommand::List => {
            let read = client.rules()?;
            let (_, rules) = decode(&read.blob).map_err(Failure::Local)?;
            if cli.json {
                return output::json(&json!({ "version": read.version, "altitude": read.altitude, "rules": rules }));
            }
            println!("rule set version {}, altitude {}, {} rule(s)", read.version, read.altitude, rules.len());
            println!("{:>10} {:>10} {:<8} FILTER", "ID", "PRIORITY", "ACTION");
            for rule in &rules {
                println!("{:>10} {:>10} {:<8} {}", rule.id, rule.priority, rule.action, rule.filter);
            }
            Ok(())
        }
        RulesCommand::Add { rule, altitude } => {
            let added = parse_rule(&rule.join(" ")).map_err(Failure::Usage)?;
            let read = client.rules()?;
            let (_, mut rules) = decode(&read.blob).map_err(Failure::Local)?;
            if rules.iter().any(|other| other.id == added.id) {
                return Err(Failure::Usage(format!("rule {} exists already (delete it first)", added.id)));
            }
            rules.push(added);
            let version = replace(client, &read, &rules, *altitude, false)?;
            report_replaced(cli, "rule added", version, rules.len())
        }
        RulesCommand::Delete { id } => {
            let read = client.rules()?;
            let (_, mut rules) = decode(&read.blob).map_err(Failure::Local)?;
            let before = rules.len();
            rules.retain(|rule| rule.id != *id);
            if rules.len() == before {
                return Err(Failure::Usage(format!("there is no rule {id}")));
            }
            let version = replace(client, &read, &rules, None, false)?;
            report_replaced(cli, "rule deleted", version, rules.len())
        }
        RulesCommand::Load { file, altitude, force } => {
            let text = std::fs::read_to_string(file).map_err(|error| local(file, error))?;
            let rules = parse_rules(&text).map_err(|why| Failure::Usage(format!("{}: {why}", file.display())))?;
            let read = client.rules()?;
            let version = replace(client, &read, &rules, *altitude, *force)?;
            report_replaced(cli, "rules loaded", version, rules.len())
        }
        RulesCommand::Save { file } => {
            let read = client.rules()?;
            let (_, rules) = decode(&read.blob).map_err(Failure::Local)?;
            let text = format_rules(&rules);
            match file {
                Some(path) => {
                    std::fs::write(path, text).map_err(|error| local(path, error))?;
                    if cli.json {
                        output::json(&json!({ "saved": path, "version": read.version, "rules": rules.len() }))
                    } else {
                        println!("{} rule(s) of version {} written to {}", rules.len(), read.version, path.display());
                        Ok(())
                    }
                }
                None if cli.json => output::json(&json!({ "version": read.version, "altitude": read.altitude, "rules": rules })),
                None => {
                    print!("{text}");
                    Ok(())
                }
            }
        }
        RulesCommand::Stats => {
            let stats = client.rule_stats()?;
            if cli.json {
                return output::json(&stats);
            }
            println!("rule set version {}", stats.version);
            println!("{:>10} {:<8} {:>12} {:>14} {:>12} {:>14}", "ID", "ACTION", "SEND PKTS", "SEND BYTES", "RECV PKTS", "RECV BYTES");
            for rule in &stats.rules {
                println!(
                    "{:>10} {:<8} {:>12} {:>14} {:>12} {:>14}",
                    rule.id,
                    rule.action.name(),
                    rule.send.0,
                    rule.send.1,
                    rule.receive.0,
                    rule.receive.1
                );
            }
            Ok(())
        }
        RulesCommand::Test { hex, file, index, frame, link, direction, rules: rules_file, device } => {
            let bytes = match (hex, file) {
                (Some(hex), _) => {
                    let bytes = crate::commands::parse_hex(hex)?;
                    if *frame {
                        bytes
                    } else {
                        crate::commands::ethernet_frame(&bytes)?
                    }
                }
                (None, Some(path)) => {
                    let capture = std::fs::read(path).map_err(|error| local(path, error))?;
                    pcapng_frame(&capture, *index).map_err(|why| Failure::Usage(format!("{}: {why}", path.display())))?
                }
                (None, None) => return Err(Failure::Usage("give the packet with --hex or --file".into())),
            };
            let (version, blob) = match rules_file {
                Some(path) => {
                    let text = std::fs::read_to_string(path).map_err(|error| local(path, error))?;
                    let rules = parse_rules(&text).map_err(|why| Failure::Usage(format!("{}: {why}", path.display())))?;
                    (None, compile_rules(&rules).map_err(Failure::Usage)?)
                }
                None => {
                    let read = client.rules()?;
                    (Some(read.version), read.blob)
                }
            };
            let (set, rules) = decode(&blob).map_err(Failure::Local)?;
            let device_units: Vec<u16> = device.encode_utf16().collect();
            let direction = match direction {
                DirectionArg::Send => Direction::Send,
                DirectionArg::Receive => Direction::Receive,
            };
            let view = PacketView {
                frame: &bytes[..bytes.len().min(HEADER_BYTES)],
                frame_len: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
                direction,
                link: *link,
                device: &device_units,
            };
            let matched = set.classify(&view).and_then(|matched| rules.get(matched.index).cloned());
            if cli.json {
                return output::json(&json!({ "version": version, "bytes": bytes.len(), "matched": matched }));
            }
            let of = version.map_or_else(|| "the file".to_string(), |version| format!("version {version}"));
            match matched {
                Some(rule) => println!("rule {} ({}, priority {}) of {of} matches: {}", rule.id, rule.action, rule.priority, rule.filter),
                None => println!("no rule of {of} matches: the packet passes"),
            }
            Ok(())
        }
    }
}

/// The `index`th (from 0) packet of a pcapng file: its Enhanced (or Simple) Packet Block's bytes.
///
/// # Errors
/// When the file is not pcapng or holds fewer packets.
pub fn pcapng_frame(bytes: &[u8], index: usize) -> Result<Vec<u8>, String> {
    const SECTION_HEADER: u32 = 0x0A0D_0D0A;
    const ENHANCED_PACKET: u32 = 6;
    const SIMPLE_PACKET: u32 = 3;
    let word = |at: usize, big: bool| -> Option<u32> {
        let raw: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
        Some(if big { u32::from_be_bytes(raw) } else { u32::from_le_bytes(raw) })
    };
    if word(0, false) != Some(SECTION_HEADER) {
        return Err("not a pcapng file".into());
    }
    let big = match bytes.get(8..12) {
        Some([0x1A, 0x2B, 0x3C, 0x4D]) => true,
        Some([0x4D, 0x3C, 0x2B, 0x1A]) => false,
        _ => return Err("not a pcapng file (byte-order magic)".into()),
    };
    let mut at = 0usize;
    let mut seen = 0usize;
    while let (Some(kind), Some(len)) = (word(at, big), word(at + 4, big)) {
        let len = len as usize;
        if len < 12 || len % 4 != 0 || at.checked_add(len).is_none_or(|end| end > bytes.len()) {
            return Err(format!("a malformed block at byte {at}"));
        }
        let packet = match kind {
            ENHANCED_PACKET => word(at + 20, big).map(|captured| (at + 28, captured as usize)),
            SIMPLE_PACKET => word(at + 8, big).map(|original| (at + 12, (original as usize).min(len.saturating_sub(16)))),
            _ => None,
        };
        if let Some((start, captured)) = packet {
            if seen == index {
                let end =
                    start.checked_add(captured).filter(|end| *end <= at + len).ok_or(format!("a malformed packet block at byte {at}"))?;
                return Ok(bytes[start..end].to_vec());
            }
            seen += 1;
        }
        at += len;
    }
    Err(format!("the file holds {seen} packet(s), not {}", index + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_files_parse_strictly_and_print_back() {
        let text = "# comment\n\n10 100 drop tcp dst port 445   # SMB\n20 200 count  net 10.8.0.0/16\n";
        let rules = parse_rules(text).unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0], Rule { id: 10, priority: 100, action: "drop", filter: "tcp dst port 445".into() });
        assert_eq!(parse_rules(&format_rules(&rules)).unwrap(), rules, "save then load gives the same rules");
        assert!(parse_rules("10 100 drop").unwrap_err().starts_with("line 1: the filter is missing"));
        assert!(parse_rules("x 1 drop tcp").unwrap_err().contains("not a rule id"));
        assert!(parse_rules("1 1 reject tcp").unwrap_err().contains("not an action"));
        assert!(parse_rules("1 1 drop tcp\n1 2 pass udp").unwrap_err().starts_with("line 2: rule 1 is defined twice"));
    }

    #[test]
    fn the_nth_packet_of_a_pcapng_file_is_found() {
        let mut file = Vec::new();
        let mut writer = wanlayer_client::pcapng::PcapngWriter::new(&mut file, "test").unwrap();
        let frame = |n: u8| {
            wanlayer_client::types::CapturedFrame::new(&wanlayer_proto::CaptureRecordRepr {
                module: 1,
                link_id: Some(3),
                time_ns: u64::from(n),
                original_len: 20,
                direction: wanlayer_proto::Direction::Send,
                injected: false,
                data: &[n; 20],
            })
        };
        writer.write_frame(&frame(1), 1).unwrap();
        writer.write_frame(&frame(2), 2).unwrap();
        writer.finish().unwrap();
        assert_eq!(pcapng_frame(&file, 1).unwrap(), vec![2; 20]);
        assert!(pcapng_frame(&file, 2).unwrap_err().contains("holds 2 packet(s)"));
        assert!(pcapng_frame(&[0; 8], 0).is_err());
        for len in 0..file.len() {
            let _ = pcapng_frame(&file[..len], 1);
        }
    }
}
