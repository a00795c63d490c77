//! Printing answers: aligned text for people, JSON for scripts. Both print identifiers, rates and
//! addresses in the formats of [`wanlayer_proto::display`]; the link table is its renderer.

use serde::Serialize;
use wanlayer_client::types::Link;
use wanlayer_proto::display::{
    capability_names, BitRate, HexText, HookIdText, LinkDetails, LinkRow, MacText, ModuleIdText, ProtocolText, LINK_TABLE_HEADER,
};
use wanlayer_proto::{
    EventBody, EventRecordRepr, HookEntryRepr, HookStatsRepr, LinkEventRepr, LinkStatsRepr, ModuleEntryRepr, ModuleStatsRepr,
    VersionInfoRepr, DROP_REASONS,
};

use crate::Failure;

/// Prints `value` as one line of JSON.
pub fn json(value: &impl Serialize) -> Result<(), Failure> {
    let text = serde_json::to_string(value).map_err(|error| Failure::Local(format!("could not write JSON: {error}")))?;
    println!("{text}");
    Ok(())
}

/// The version, as text.
pub fn version(version: &VersionInfoRepr) {
    let [major, minor, patch] = version.driver_version;
    println!("wanlayer driver {major}.{minor}.{patch}, control interface {}", version.interface_version);
    println!("  module slots {}, event queue {}", version.max_modules, version.event_capacity);
    let capabilities: Vec<&str> = capability_names(version.features.map_or(0, |f| f.capabilities)).collect();
    println!("  capabilities: {}", capabilities.join(", "));
    if let Some(limits) = &version.features {
        println!(
            "  limits: {} subscribers of up to {} events, {} captures of up to {} bytes (snap {}), {} links a batch, {} hooks",
            limits.max_subscribers,
            limits.max_subscriber_capacity,
            limits.max_capture_sessions,
            limits.max_capture_bytes,
            limits.max_snap_len,
            limits.max_link_batch,
            limits.max_hooks
        );
    }
}

/// The modules, as a table.
pub fn modules(modules: &[ModuleEntryRepr]) {
    println!(
        "{:<8} {:<13} {:<10} {:<17} {:>7} {:>6} {:>6} {:>9}",
        "MODULE", "KIND", "STATE", "MAC", "IFINDEX", "LINKS", "TAKEN", "INFLIGHT"
    );
    for m in modules {
        println!(
            "{:<8} {:<13} {:<10} {} {:>7} {:>6} {:>6} {:>9}",
            ModuleIdText(m.id).to_string(),
            m.kind,
            m.state,
            MacText(m.mac_address),
            m.if_index,
            m.links,
            m.taken,
            m.in_flight
        );
    }
}

/// The links, as the link table: a row and a line of details each.
pub fn links(links: &[Link]) {
    println!("{LINK_TABLE_HEADER}");
    for link in links {
        let entry = link.entry();
        println!("{}", LinkRow(&entry));
        println!("{}", LinkDetails(&entry));
        if !entry.protocol_buffer.is_empty() {
            println!("       protocol buffer {}", HexText(entry.protocol_buffer));
        }
    }
    println!("{} link(s)", links.len());
}

/// The hooks, as a table.
pub fn hooks(hooks: &[HookEntryRepr]) {
    println!("{:<12} {:>9} NAME", "HOOK", "ALTITUDE");
    for h in hooks {
        println!("{:<12} {:>9} {}", HookIdText(h.id).to_string(), h.altitude, h.name.as_str());
    }
}

/// A module's statistics.
pub fn module_stats(stats: &ModuleStatsRepr) {
    println!(
        "module {}: {} line ups ({} untracked), {} line downs ({} unknown), {} malformed status, {} injections refused",
        ModuleIdText(stats.module),
        stats.line_ups,
        stats.line_ups_untracked,
        stats.line_downs,
        stats.line_downs_unknown,
        stats.malformed_status,
        stats.injections_refused
    );
    for (name, d) in [("send   ", &stats.send), ("receive", &stats.receive)] {
        let reasons: Vec<String> =
            DROP_REASONS.iter().zip(d.drops_by_reason).filter(|(_, n)| *n > 0).map(|(reason, n)| format!("{reason} {n}")).collect();
        println!(
            "  {name} {} packets / {} bytes, {} dropped{}, {} unmatched, {} modified, {} taken, {} reinjected, {} copied, {} injected",
            d.packets,
            d.bytes,
            d.drops,
            if reasons.is_empty() { String::new() } else { format!(" ({})", reasons.join(", ")) },
            d.unmatched,
            d.modified,
            d.taken,
            d.reinjected,
            d.copied_for_resources,
            d.injected
        );
    }
}

/// A link's statistics.
pub fn link_stats(stats: &LinkStatsRepr) {
    println!(
        "link {} on module {}: sent {} packets / {} bytes ({} dropped), received {} packets / {} bytes ({} dropped)",
        stats.link,
        ModuleIdText(stats.module),
        stats.send.packets,
        stats.send.bytes,
        stats.send.drops,
        stats.receive.packets,
        stats.receive.bytes,
        stats.receive.drops
    );
}

/// A hook's statistics.
pub fn hook_stats(name: &str, stats: &HookStatsRepr) {
    println!(
        "hook {} '{name}' at altitude {}: {} line ups ({} lowered), {} line downs",
        HookIdText(stats.hook),
        stats.altitude,
        stats.line_ups,
        stats.sizes_lowered,
        stats.line_downs
    );
    for (way, v) in [("send   ", &stats.send), ("receive", &stats.receive)] {
        println!(
            "  {way} {} seen / {} bytes: {} passed, {} dropped, {} modified, {} taken",
            v.seen, v.bytes, v.passed, v.dropped, v.modified, v.taken
        );
    }
}

fn event_link(link: &LinkEventRepr) -> String {
    format!(
        "link {} remote {} local {} {} {} MTU {} reported {}",
        link.link_id,
        MacText(link.remote_address),
        MacText(link.local_address),
        ProtocolText(link.protocol_type),
        BitRate::from_100bps(link.link_speed_100bps),
        link.maximum_total_size,
        link.reported_total_size
    )
}

/// One event, as a line. A removed hook's event carries no altitude, so none is printed.
pub fn event(event: &EventRecordRepr) {
    let subject = match event.body {
        EventBody::LineUp(link) | EventBody::LineUpdated(link) | EventBody::LineDown(link) => event_link(&link),
        EventBody::HookAdded { id, altitude, name } => format!("hook {} '{}' altitude {altitude}", HookIdText(id), name.as_str()),
        EventBody::HookRemoved { id, name } => format!("hook {} '{}'", HookIdText(id), name.as_str()),
        EventBody::ModuleAttached { kind } => format!("as {kind}"),
        EventBody::ModuleDetached { links_dropped } => format!("{links_dropped} links dropped"),
        EventBody::RulesReplaced { version, altitude, rules } => format!("version {version}, {rules} rules at altitude {altitude}"),
        EventBody::RulesRefused { error, blob_len, .. } => format!("saved set of {blob_len} bytes refused (error {error}): no rules"),
        EventBody::ModulePaused | EventBody::ModuleRestarted | EventBody::Unknown(_) => String::new(),
    };
    let module = if event.module == 0 { String::new() } else { format!("module {} ", ModuleIdText(event.module)) };
    let line = format!("#{:<5} {:>12.6} s  {:<16} {module}{subject}", event.sequence, event.time_ns as f64 / 1e9, event.body.kind().name());
    println!("{}", line.trim_end());
}
