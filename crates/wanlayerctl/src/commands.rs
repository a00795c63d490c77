//! The commands, over any transport.

use std::fs::File;
use std::io::BufWriter;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;
use wanlayer_client::pcapng::PcapngWriter;
use wanlayer_client::{Client, Transport};
use wanlayer_proto::display::{HookIdText, ModuleIdText};
use wanlayer_proto::{Direction, EventKind, Target};

use crate::{event_wait, output, Cli, Command, DirectionArg, Failure, Idle, TargetArgs};

/// Runs the command of `cli` with `client`; `idle` runs between reads that found nothing.
pub fn execute<T: Transport>(cli: &Cli, mut client: Client<T>, idle: &mut Idle<'_>, simulated: bool) -> Result<(), Failure> {
    match &cli.command {
        Command::Version => {
            let version = client.version()?;
            if cli.json {
                output::json(&version)
            } else {
                output::version(&version);
                Ok(())
            }
        }
        Command::Modules => {
            let modules = client.modules()?;
            if cli.json {
                output::json(&json!({ "modules": modules }))
            } else {
                output::modules(&modules);
                Ok(())
            }
        }
        Command::Links { module, protocol_buffer } => {
            let links = client.links(module.map(|m| m.0), *protocol_buffer)?;
            if cli.json {
                output::json(&json!({ "count": links.len(), "links": links }))
            } else {
                output::links(&links);
                Ok(())
            }
        }
        Command::Hooks => {
            let hooks = client.hooks()?;
            if cli.json {
                output::json(&json!({ "hooks": hooks }))
            } else {
                output::hooks(&hooks);
                Ok(())
            }
        }
        Command::Stats(target) => stats(cli, &mut client, target),
        Command::Reset(target) => {
            let target = target_of(target);
            client.reset_stats(target)?;
            let what = describe(target);
            if cli.json {
                output::json(&json!({ "reset": what }))
            } else {
                println!("statistics of {what} reset");
                Ok(())
            }
        }
        Command::Watch { count, timeout, kinds, capacity } => watch(cli, &mut client, *count, *timeout, kinds, *capacity),
        Command::Capture { output, link, rule, module, count, duration, snaplen, ring } => {
            let target = match (link, rule, module) {
                (Some(link), _, _) => Target::Link(*link),
                (None, Some(rule), _) => Target::Rule(*rule),
                (None, None, Some(module)) => Target::Module(module.0),
                (None, None, None) => Target::All,
            };
            let limits = Limits { count: *count, duration: duration.map(Duration::from_secs), simulated };
            capture(cli, &mut client, idle, output, target, (*snaplen, *ring), limits)
        }
        Command::Rules(command) => crate::rules::execute(cli, &mut client, command),
        Command::Divert(args) => crate::divert::run(cli, args, client.into_transport(), idle),
        Command::Inject { link, module, direction, hex, file, frame } => {
            let bytes = match (hex, file) {
                (Some(hex), _) => parse_hex(hex)?,
                (None, Some(path)) => std::fs::read(path).map_err(|error| Failure::Local(format!("{}: {error}", path.display())))?,
                (None, None) => return Err(Failure::Usage("give the bytes with --hex or --file".into())),
            };
            let frame_bytes = if *frame { bytes } else { ethernet_frame(&bytes)? };
            let module = module.map(|m| m.0);
            let direction = match direction {
                DirectionArg::Send => Direction::Send,
                DirectionArg::Receive => Direction::Receive,
            };
            client.inject(module, *link, direction, &frame_bytes)?;
            let way = if direction == Direction::Send { "send" } else { "receive" };
            if cli.json {
                output::json(&json!({ "injected": { "link": link, "direction": way, "bytes": frame_bytes.len() } }))
            } else {
                println!("injected {} bytes on link {link} ({way})", frame_bytes.len());
                Ok(())
            }
        }
    }
}

fn stats<T: Transport>(cli: &Cli, client: &mut Client<T>, target: &TargetArgs) -> Result<(), Failure> {
    match target_of(target) {
        Target::Module(module) => {
            let stats = client.module_stats(module)?;
            if cli.json {
                output::json(&stats)
            } else {
                output::module_stats(&stats);
                Ok(())
            }
        }
        Target::Link(link) => {
            let stats = client.link_stats(link)?;
            if cli.json {
                output::json(&stats)
            } else {
                output::link_stats(&stats);
                Ok(())
            }
        }
        Target::Hook(hook) => {
            let stats = client.hook_stats(hook)?;
            let name = client.hooks()?.into_iter().find(|h| h.id == hook).map(|h| h.name.as_str().to_owned()).unwrap_or_default();
            if cli.json {
                output::json(&stats)
            } else {
                output::hook_stats(&name, &stats);
                Ok(())
            }
        }
        Target::Rule(_) => Err(Failure::Usage("per-rule statistics: wanlayerctl rules stats".into())),
        Target::All => {
            let modules = client.modules()?;
            let module_stats = modules.iter().map(|m| client.module_stats(m.id)).collect::<Result<Vec<_>, _>>()?;
            let hooks = client.hooks()?;
            let hook_stats = hooks.iter().map(|h| client.hook_stats(h.id)).collect::<Result<Vec<_>, _>>()?;
            if cli.json {
                return output::json(&json!({ "modules": module_stats, "hooks": hook_stats }));
            }
            module_stats.iter().for_each(output::module_stats);
            hooks.iter().zip(&hook_stats).for_each(|(hook, stats)| output::hook_stats(hook.name.as_str(), stats));
            Ok(())
        }
    }
}

fn watch<T: Transport>(
    cli: &Cli,
    client: &mut Client<T>,
    count: Option<usize>,
    timeout: Option<u64>,
    kinds: &[String],
    capacity: u32,
) -> Result<(), Failure> {
    let mut mask = 0;
    for kind in kinds {
        let found = EventKind::ALL.into_iter().find(|k| k.name() == kind.as_str());
        mask |= found.ok_or_else(|| Failure::Usage(format!("unknown event kind '{kind}'")))?.mask_bit();
    }
    let mask = if mask == 0 { EventKind::ALL_MASK } else { mask };
    client.subscribe(capacity, mask)?;
    let (mut shown, mut lost) = (0usize, 0u64);
    while count.is_none_or(|count| shown < count) {
        let want = count.map_or(64, |count| (count - shown).min(64)) as u32;
        let batch = client.read_events(want, Some(event_wait(timeout)))?;
        if batch.lost > lost && !cli.json {
            eprintln!("wanlayerctl: {} event(s) lost: this watcher fell behind", batch.lost - lost);
        }
        lost = batch.lost;
        if batch.events.is_empty() {
            break;
        }
        for event in &batch.events {
            if cli.json {
                output::json(event)?;
            } else {
                output::event(event);
            }
        }
        shown += batch.events.len();
    }
    if cli.json {
        output::json(&json!({ "summary": { "events": shown, "lost": lost } }))
    } else {
        println!("{shown} event(s), {lost} lost");
        Ok(())
    }
}

/// When a capture stops.
struct Limits {
    count: Option<u64>,
    duration: Option<Duration>,
    simulated: bool,
}

fn capture<T: Transport>(
    cli: &Cli,
    client: &mut Client<T>,
    idle: &mut Idle<'_>,
    path: &std::path::Path,
    target: Target,
    (snap_len, slots): (u32, u32),
    limits: Limits,
) -> Result<(), Failure> {
    let file = File::create(path).map_err(|error| Failure::Local(format!("{}: {error}", path.display())))?;
    let mut writer = PcapngWriter::new(BufWriter::new(file), concat!("wanlayerctl ", env!("CARGO_PKG_VERSION")))
        .map_err(|error| Failure::Local(format!("{}: {error}", path.display())))?;
    let info = client.start_capture(target, snap_len, slots)?;
    let wall_now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let offset = wall_now.saturating_sub(info.start_time_ns);
    let started = Instant::now();
    let mut frames = 0u64;
    let (mut dropped, mut truncated);
    'reading: loop {
        let batch = client.read_capture(1024)?;
        dropped = batch.dropped;
        truncated = batch.truncated;
        let empty = batch.frames.is_empty();
        for frame in &batch.frames {
            writer
                .write_frame(frame, offset + frame.record().time_ns)
                .map_err(|error| Failure::Local(format!("{}: {error}", path.display())))?;
            frames += 1;
            if limits.count.is_some_and(|count| frames >= count) {
                break 'reading;
            }
        }
        if !empty {
            writer.flush().map_err(|error| Failure::Local(format!("{}: {error}", path.display())))?;
        }
        if limits.duration.is_some_and(|duration| started.elapsed() >= duration) && !limits.simulated {
            break;
        }
        if empty && !idle() {
            break;
        }
    }
    client.stop_capture()?;
    let interfaces = writer.interfaces();
    writer.finish().map_err(|error| Failure::Local(format!("{}: {error}", path.display())))?;
    if cli.json {
        output::json(&json!({ "output": path, "frames": frames, "interfaces": interfaces, "dropped": dropped, "truncated": truncated }))
    } else {
        println!(
            "{frames} frame(s) on {interfaces} interface(s) written to {}; {dropped} dropped, {truncated} cut to {snap_len} bytes",
            path.display()
        );
        Ok(())
    }
}

/// The target of `stats` and `reset`.
fn target_of(target: &TargetArgs) -> Target {
    match (target.module, target.link, target.hook) {
        (Some(module), _, _) => Target::Module(module.0),
        (None, Some(link), _) => Target::Link(link),
        (None, None, Some(hook)) => Target::Hook(hook.0),
        (None, None, None) => Target::All,
    }
}

fn describe(target: Target) -> String {
    match target {
        Target::All => "every module, link and hook".into(),
        Target::Module(id) => format!("module {}", ModuleIdText(id)),
        Target::Link(id) => format!("link {id}"),
        Target::Hook(id) => format!("hook {}", HookIdText(id)),
        Target::Rule(id) => format!("rule {id}"),
    }
}

pub(crate) fn parse_hex(text: &str) -> Result<Vec<u8>, Failure> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace() && *b != b':' && *b != b'-').collect();
    if digits.len() % 2 != 0 {
        return Err(Failure::Usage("an odd number of hex digits".into()));
    }
    digits
        .chunks(2)
        .map(|pair| std::str::from_utf8(pair).ok().and_then(|pair| u8::from_str_radix(pair, 16).ok()))
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| Failure::Usage(format!("'{text}' is not hexadecimal")))
}

/// An IP packet in an Ethernet frame (the driver puts the link's addresses in).
pub(crate) fn ethernet_frame(packet: &[u8]) -> Result<Vec<u8>, Failure> {
    let ethertype: u16 = match packet.first().map(|b| b >> 4) {
        Some(4) => 0x0800,
        Some(6) => 0x86DD,
        _ => return Err(Failure::Usage("the packet is neither IPv4 nor IPv6 (use --frame for a whole Ethernet frame)".into())),
    };
    let mut frame = vec![0u8; 12];
    frame.extend_from_slice(&ethertype.to_be_bytes());
    frame.extend_from_slice(packet);
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_parse_strictly() {
        assert_eq!(parse_hex("45 00:0a-ff").ok(), Some(vec![0x45, 0x00, 0x0a, 0xff]));
        assert!(parse_hex("abc").is_err() && parse_hex("zz").is_err());
        assert_eq!(ethernet_frame(&[0x60, 0]).ok().map(|f| (f.len(), f[12], f[13])), Some((16, 0x86, 0xDD)));
        assert!(ethernet_frame(&[0x10]).is_err() && ethernet_frame(&[]).is_err());
    }
}
