//! `wanlayerctl` as a binary: every command against `--simulate`, its `--json` output parsed, and
//! its exit codes; the pcapng it writes read by tshark when tshark is installed. Not on Windows
//! hosts, where `--simulate` is refused (the simulated server runs the driver's own handlers).
#![cfg(not(windows))]

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;
use xtask::tools::{require, Tool};

fn wanlayerctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wanlayerctl")).args(args).output().expect("wanlayerctl runs")
}

/// Runs `--simulate --json <args>`, expects success, and parses every line of stdout as JSON.
fn json(args: &[&str]) -> Vec<Value> {
    let mut all = vec!["--simulate", "--json"];
    all.extend_from_slice(args);
    let output = wanlayerctl(&all);
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("{args:?}: '{line}' is not JSON: {error}")))
        .collect()
}

fn one(args: &[&str]) -> Value {
    let mut lines = json(args);
    assert_eq!(lines.len(), 1, "{args:?} prints one JSON document");
    lines.remove(0)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wanlayerctl-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir.join(name)
}

#[test]
fn queries_print_json_that_parses() {
    let version = one(&["version"]);
    assert_eq!(version["interface_version"], 1);
    assert!(version["capabilities"].as_array().is_some_and(|caps| caps.iter().any(|c| c == "inject")));
    let modules = one(&["modules"]);
    assert_eq!(modules["modules"].as_array().map(Vec::len), Some(3));
    assert_eq!(modules["modules"][1]["kind"], "ndiswan-ipv6");
    let links = one(&["links"]);
    assert_eq!(links["count"], 3);
    assert_eq!(links["links"][0]["remote_address"], "3C-01-20-52-41-53");
    assert_eq!(links["links"][2]["protocol"], "IPv6");
    let only = one(&["links", "--module", "1.1", "--protocol-buffer"]);
    assert_eq!(only["count"], 1);
    assert_eq!(only["links"][0]["protocol_buffer"].as_str().map(str::len), Some(1200));
    let hooks = one(&["hooks"]);
    assert_eq!(hooks["hooks"][0]["name"], "telnet-block");
    let stats = one(&["stats"]);
    assert_eq!(stats["modules"].as_array().map(Vec::len), Some(3));
    assert_eq!(stats["modules"][0]["send"]["packets"], 8);
    assert_eq!(one(&["stats", "--link", "3"])["send"]["packets"], 4);
    assert_eq!(one(&["stats", "--module", "0.1"])["line_ups"], 2);
    assert_eq!(one(&["stats", "--hook", "0.1"])["altitude"], 200);
    assert_eq!(one(&["stats", "--hook", "0.1"])["hook"], "0.1", "an identifier prints as it is read");
    assert_eq!(links["links"][0]["module"], "0.1");
    assert_eq!(hooks["hooks"][0]["id"], "0.1");
    assert_eq!(links["links"][2]["best_effort_ipv6_iid"], "::0:0:0:3");
    assert_eq!(one(&["reset"])["reset"], "every module, link and hook");
}

#[test]
fn watch_streams_one_json_event_a_line_and_ends_with_a_summary() {
    let lines = json(&["watch"]);
    let (summary, events) = lines.split_last().expect("a summary");
    assert_eq!(summary["summary"]["events"].as_u64(), Some(events.len() as u64));
    assert_eq!(summary["summary"]["lost"], 0);
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(kinds, ["line-up", "line-down", "module-paused", "module-restarted", "hook-added", "hook-removed", "line-down"]);
    let counted = json(&["watch", "--count", "2", "--kinds", "line-down,hook-added"]);
    assert_eq!(counted.len(), 3);
    assert_eq!((counted[0]["kind"].as_str(), counted[1]["kind"].as_str()), (Some("line-down"), Some("hook-added")));
    let small = json(&["watch", "--capacity", "2"]);
    assert_eq!(small.last().map(|s| s["summary"]["events"].clone()), Some(Value::from(7)), "read as it happens, nothing is lost");
}

#[test]
fn capture_writes_pcapng_one_interface_per_link() {
    let path = scratch("capture.pcapng");
    let path_text = path.to_str().expect("a UTF-8 path");
    let report = one(&["capture", "--output", path_text]);
    assert_eq!((report["interfaces"].as_u64(), report["dropped"].as_u64()), (Some(4), Some(0)));
    let frames = report["frames"].as_u64().expect("a count");
    assert!(frames > 50, "{frames} frames");
    let bytes = std::fs::read(&path).expect("the file");
    assert_eq!(bytes[..4], [0x0A, 0x0D, 0x0D, 0x0A], "a pcapng section header");
    let linked = one(&["capture", "--output", path_text, "--link", "1", "--count", "5", "--snaplen", "64"]);
    assert_eq!((linked["frames"].as_u64(), linked["interfaces"].as_u64()), (Some(5), Some(1)));
    assert!(linked["truncated"].as_u64().is_some_and(|n| n > 0), "frames of 654 bytes are cut to 64");
    if let Some(tshark) = require(Tool::Tshark) {
        let output = Command::new(tshark)
            .args(["-r", path_text, "-T", "fields", "-e", "frame.interface_name", "-e", "frame.cap_len"])
            .output()
            .expect("tshark runs");
        assert!(output.status.success(), "tshark could not read the capture: {}", String::from_utf8_lossy(&output.stderr));
        let text = String::from_utf8_lossy(&output.stdout);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "tshark reads every frame: {text}");
        assert!(lines.iter().all(|line| line.starts_with("link-1\t") && line.ends_with("\t64")), "{text}");
    }
}

#[test]
fn inject_and_exit_codes() {
    let sent = one(&["inject", "--link", "1", "--direction", "send", "--hex", "45000014 00000000 40110000 0a630001 0a640001"]);
    assert_eq!(sent["injected"]["bytes"], 34);
    let frame =
        one(&["inject", "--link", "3", "--direction", "receive", "--frame", "--hex", "000000000000000000000000 86dd 6000000000003b40"]);
    assert_eq!(frame["injected"]["direction"], "receive");

    let denied = wanlayerctl(&["--simulate", "--read-only", "inject", "--link", "1", "--direction", "send", "--hex", "45000014"]);
    assert_eq!(denied.status.code(), Some(4), "access denied");
    assert!(String::from_utf8_lossy(&denied.stderr).contains("access denied"));
    let denied = wanlayerctl(&["--simulate", "--read-only", "reset"]);
    assert_eq!(denied.status.code(), Some(4));
    let unknown = wanlayerctl(&["--simulate", "inject", "--link", "99", "--direction", "send", "--hex", "45000014"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("STATUS_NOT_FOUND"));
    let not_ip = wanlayerctl(&["--simulate", "inject", "--link", "1", "--direction", "send", "--hex", "1234"]);
    assert_eq!(not_ip.status.code(), Some(2));
    let usage = wanlayerctl(&["--simulate", "frobnicate"]);
    assert_eq!(usage.status.code(), Some(2));
    let bad_module = wanlayerctl(&["--simulate", "links", "--module", "x"]);
    assert_eq!(bad_module.status.code(), Some(2));
    let gone = wanlayerctl(&["--simulate", "stats", "--module", "7.7"]);
    assert_eq!(gone.status.code(), Some(1));
    let raw = wanlayerctl(&["--simulate", "stats", "--hook", "65536"]);
    assert_eq!(raw.status.code(), Some(2), "one identifier format: slot.generation");
    assert!(String::from_utf8_lossy(&raw.stderr).contains("slot.generation"));
}

fn text(args: &[&str]) -> String {
    let mut all = vec!["--simulate"];
    all.extend_from_slice(args);
    let output = wanlayerctl(&all);
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("UTF-8")
}

#[test]
fn text_prints_identifiers_as_they_are_read_and_speeds_in_bits_per_second() {
    let hooks = text(&["hooks"]);
    let hook = hooks.lines().nth(1).and_then(|line| line.split_whitespace().next()).expect("a hook row");
    assert_eq!(hook, "0.1");
    assert!(text(&["stats", "--hook", hook]).starts_with("hook 0.1 'telnet-block'"));
    let links = text(&["links"]);
    assert!(links.contains(" 0.1 ") && links.contains("2.048 Mb/s") && links.contains("56 kb/s") && links.contains("100 Mb/s"), "{links}");
    assert!(links.contains("best-effort IPv6 interface identifier ::0:0:0:3"), "{links}");
    let watch = text(&["watch"]);
    let removed = watch.lines().find(|line| line.contains("hook-removed")).expect("a removal");
    assert!(removed.ends_with("hook 1.1 'sampler'"), "no altitude the event does not carry: {removed}");
    assert!(watch.contains("IPv4 56 kb/s MTU 1400"), "{watch}");
}

#[cfg(not(windows))]
#[test]
fn without_the_driver_it_says_so_and_exits_3() {
    for command in [&["links"][..], &["--json", "version"][..], &["watch"][..]] {
        let output = wanlayerctl(command);
        assert_eq!(output.status.code(), Some(3), "{command:?}");
        let message = String::from_utf8_lossy(&output.stderr);
        assert!(message.contains("not running") && message.contains("--simulate"), "{message}");
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn divert_prints_drops_and_pipes_what_its_filter_matches() {
    let printed = json(&["divert", "udp", "port", "53"]);
    let summary = printed.last().expect("a summary line");
    let packets = printed.len() - 1;
    assert!(packets > 0, "the script sends DNS");
    assert_eq!(summary["packets"], packets);
    assert!(
        summary["diverted"].as_u64().is_some_and(|diverted| diverted >= packets as u64),
        "every packet printed was diverted (a packet whose link went down before it was read is not delivered)"
    );
    assert!(printed[..packets].iter().all(|packet| packet["len"].as_u64().is_some_and(|len| len > 14)));
    let dropped = one(&["divert", "--action", "drop", "--count", "5", "tcp", "port", "443"]);
    assert_eq!(dropped["packets"], 5);
    if cfg!(unix) {
        let piped = one(&["divert", "--action", "pipe", "--command", "cat", "udp"]);
        assert_eq!((piped["refused"].as_u64(), piped["expired"].as_u64()), (Some(0), Some(0)));
    }
    let refused = wanlayerctl(&["--simulate", "--read-only", "divert", "udp"]);
    assert_eq!(refused.status.code(), Some(4), "a read-only handle cannot divert");
    let bad = wanlayerctl(&["--simulate", "divert", "udp", "port", "nonsense"]);
    assert_eq!(bad.status.code(), Some(2), "a filter that does not compile is a usage error");
}
