//! Printing answers: aligned text for people, JSON for scripts.

use serde::Serialize;
use wanlayer_client::types::{module_name, Event, HookInfo, HookStats, LinkInfo, LinkStats, ModuleInfo, ModuleStats, VersionInfo};

use crate::Failure;

/// Prints `value` as one line of JSON.
pub fn json(value: &impl Serialize) -> Result<(), Failure> {
    let text = serde_json::to_string(value).map_err(|error| Failure::Local(format!("could not write JSON: {error}")))?;
    println!("{text}");
    Ok(())
}

/// The version, as text.
pub fn version(version: &VersionInfo) {
    println!("wanlayer driver {}, control interface {}", version.driver_version, version.interface_version);
    println!("  module slots {}, event queue {}", version.max_modules, version.event_capacity);
    println!("  capabilities: {}", version.capabilities.join(", "));
    if let Some(limits) = &version.limits {
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
pub fn modules(modules: &[ModuleInfo]) {
    println!(
        "{:<8} {:<13} {:<10} {:<17} {:>7} {:>6} {:>6} {:>9}",
        "MODULE", "KIND", "STATE", "MAC", "IFINDEX", "LINKS", "TAKEN", "INFLIGHT"
    );
    for m in modules {
        println!(
            "{:<8} {:<13} {:<10} {:<17} {:>7} {:>6} {:>6} {:>9}",
            m.name, m.kind, m.state, m.mac_address, m.if_index, m.links, m.taken, m.in_flight
        );
    }
}

/// The links, as a table and a line of details each.
pub fn links(links: &[LinkInfo]) {
    println!(
        "{:>6} {:<6} {:<17} {:<17} {:<5} {:>12} {:>5} {:>8} {:>10} {:>10}",
        "LINK", "MODULE", "REMOTE", "LOCAL", "PROTO", "SPEED(b/s)", "MTU", "REPORTED", "SENT", "RECEIVED"
    );
    for l in links {
        println!(
            "{:>6} {:<6} {:<17} {:<17} {:<5} {:>12} {:>5} {:>8} {:>10} {:>10}",
            l.id,
            module_name(l.module),
            l.remote_address,
            l.local_address,
            l.protocol,
            l.speed_bps,
            l.maximum_total_size,
            l.reported_total_size,
            l.send.packets,
            l.receive.packets
        );
        let address = l.best_effort_ipv4.clone().or_else(|| l.best_effort_ipv6_iid.clone()).unwrap_or_else(|| "-".into());
        println!(
            "       device '{}', quality {}, send window {}, line ups {}, protocol buffer {} bytes{}, best-effort address {address}",
            l.device_name,
            l.quality,
            l.send_window,
            l.line_ups,
            l.protocol_buffer_len,
            if l.protocol_buffer_truncated { " (cut)" } else { "" }
        );
        if let Some(buffer) = &l.protocol_buffer {
            println!("       protocol buffer {buffer}");
        }
    }
    println!("{} link(s)", links.len());
}

/// The hooks, as a table.
pub fn hooks(hooks: &[HookInfo]) {
    println!("{:>16} {:>9} NAME", "HOOK", "ALTITUDE");
    for h in hooks {
        println!("{:>16} {:>9} {}", h.id, h.altitude, h.name);
    }
}

/// A module's statistics.
pub fn module_stats(stats: &ModuleStats) {
    println!(
        "module {}: {} line ups ({} untracked), {} line downs ({} unknown), {} malformed status, {} injections refused",
        module_name(stats.module),
        stats.line_ups,
        stats.line_ups_untracked,
        stats.line_downs,
        stats.line_downs_unknown,
        stats.malformed_status,
        stats.injections_refused
    );
    for (name, d) in [("send   ", &stats.send), ("receive", &stats.receive)] {
        let reasons: Vec<String> = d.drops_by_reason.iter().filter(|(_, n)| *n > 0).map(|(reason, n)| format!("{reason} {n}")).collect();
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
pub fn link_stats(stats: &LinkStats) {
    println!(
        "link {} on module {}: sent {} packets / {} bytes ({} dropped), received {} packets / {} bytes ({} dropped)",
        stats.link,
        module_name(stats.module),
        stats.send.packets,
        stats.send.bytes,
        stats.send.drops,
        stats.receive.packets,
        stats.receive.bytes,
        stats.receive.drops
    );
}

/// A hook's statistics.
pub fn hook_stats(name: &str, stats: &HookStats) {
    println!(
        "hook {} '{name}' at altitude {}: {} line ups ({} lowered), {} line downs",
        stats.hook, stats.altitude, stats.line_ups, stats.sizes_lowered, stats.line_downs
    );
    for (way, v) in [("send   ", &stats.send), ("receive", &stats.receive)] {
        println!(
            "  {way} {} seen / {} bytes: {} passed, {} dropped, {} modified, {} taken",
            v.seen, v.bytes, v.passed, v.dropped, v.modified, v.taken
        );
    }
}

/// One event, as a line.
pub fn event(event: &Event) {
    let subject = match (&event.link, &event.hook) {
        (Some(link), _) => format!(
            "link {} remote {} local {} {} {} b/s MTU {} reported {}",
            link.id,
            link.remote_address,
            link.local_address,
            link.protocol,
            link.speed_bps,
            link.maximum_total_size,
            link.reported_total_size
        ),
        (None, Some(hook)) => format!("hook {} '{}' altitude {}", hook.id, hook.name, hook.altitude),
        (None, None) => match (&event.module_kind, event.links_dropped, &event.rules) {
            (Some(kind), _, _) => format!("as {kind}"),
            (None, Some(links), _) => format!("{links} links dropped"),
            (None, None, Some(rules)) => match (rules.version, rules.rules, rules.error, rules.blob_len) {
                (Some(version), Some(count), _, _) => format!("version {version}, {count} rules at altitude {}", rules.altitude),
                (_, _, Some(error), Some(bytes)) => format!("saved set of {bytes} bytes refused (error {error}): no rules"),
                _ => String::new(),
            },
            (None, None, None) => String::new(),
        },
    };
    let module = event.module.as_deref().map(|m| format!("module {m} ")).unwrap_or_default();
    println!("#{:<5} {:>12.6} s  {:<16} {module}{subject}", event.sequence, event.time_ns as f64 / 1e9, event.kind);
}
