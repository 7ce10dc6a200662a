//! The real kernel as the oracle: two network namespaces joined by a veth
//! pair, a DNAT rule for a virtual IP in the server namespace, one TCP and one
//! UDP connection through it; then the server namespace's live conntrack
//! table must show both as NAT entries linked to their DNAT rules.
//!
//! Needs root and `ip`, `iptables-restore`, `iptables-save`, `nc`
//! (netcat-openbsd). Without them the test says why and passes, unless
//! `IPTVIZ_REQUIRE_KERNEL_TESTS=1` (set in CI), where it fails. Only the
//! namespaces created here are touched, and they are deleted even on failure.

use std::io::Write;
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use iptviz::conntrack::nat::NatRules;
use iptviz::conntrack::{self, Parsed};
use iptviz::parse::{ParseOptions, parse_bytes};

const VIP: &str = "10.96.0.10";
const SERVER: &str = "10.77.0.2";
const CLIENT: &str = "10.77.0.1";

fn rules() -> String {
    format!(
        "*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d {VIP}/32 -p tcp -m tcp --dport 80 -m comment --comment \"test/web:http\" -j DNAT --to-destination {SERVER}:9000
-A PREROUTING -d {VIP}/32 -p udp -m udp --dport 53 -m comment --comment \"test/dns:dns\" -j DNAT --to-destination {SERVER}:5353
COMMIT
"
    )
}

fn run(args: &[&str]) -> Result<Output, String> {
    Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", args.join(" ")))
}

fn ok(args: &[&str]) -> Result<Output, String> {
    let o = run(args)?;
    if o.status.success() {
        Ok(o)
    } else {
        Err(format!(
            "`{}` failed ({}): {}",
            args.join(" "),
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        ))
    }
}

fn which(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p).any(|d| d.join(tool).is_file())
            || ["/usr/sbin", "/sbin"]
                .iter()
                .any(|d| std::path::Path::new(d).join(tool).is_file())
    })
}

/// Why the test cannot run here, if it cannot.
fn missing_prerequisite() -> Option<String> {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        });
    if uid.as_deref() != Some("0") {
        return Some("not running as root (network namespaces need it)".into());
    }
    for tool in ["ip", "iptables-restore", "iptables-save", "nc"] {
        if !which(tool) {
            return Some(format!(
                "`{tool}` is not installed (packages iproute2, iptables, netcat-openbsd)"
            ));
        }
    }
    None
}

/// Deletes the namespaces (and so the veth pair) and stops the listeners,
/// whatever happens in the test.
struct Cleanup {
    namespaces: Vec<String>,
    children: Vec<Child>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in &self.namespaces {
            let _ = run(&["ip", "netns", "del", ns]);
        }
    }
}

fn in_ns<'a>(ns: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["ip", "netns", "exec", ns];
    v.extend_from_slice(args);
    v
}

#[test]
fn dnat_entries_in_a_namespace_link_to_their_rule() {
    if let Some(why) = missing_prerequisite() {
        if std::env::var("IPTVIZ_REQUIRE_KERNEL_TESTS").as_deref() == Ok("1") {
            panic!("kernel test required (IPTVIZ_REQUIRE_KERNEL_TESTS=1) but cannot run: {why}");
        }
        eprintln!(
            "SKIPPED conntrack kernel test: {why}; set IPTVIZ_REQUIRE_KERNEL_TESTS=1 to make this a failure"
        );
        return;
    }
    if let Err(e) = scenario() {
        panic!("{e}");
    }
}

fn scenario() -> Result<(), String> {
    let pid = std::process::id();
    let cns = format!("iptviz-ct-{pid}-c");
    let sns = format!("iptviz-ct-{pid}-s");
    // veth names are limited to 15 bytes.
    let cv = format!("ctc{}", pid % 1_000_000);
    let sv = format!("cts{}", pid % 1_000_000);
    let mut guard = Cleanup {
        namespaces: Vec::new(),
        children: Vec::new(),
    };
    for ns in [&cns, &sns] {
        ok(&["ip", "netns", "add", ns])?;
        guard.namespaces.push(ns.clone());
        ok(&in_ns(ns, &["ip", "link", "set", "lo", "up"]))?;
    }
    ok(&[
        "ip", "link", "add", &cv, "netns", &cns, "type", "veth", "peer", "name", &sv, "netns", &sns,
    ])?;
    ok(&in_ns(
        &cns,
        &["ip", "addr", "add", &format!("{CLIENT}/24"), "dev", &cv],
    ))?;
    ok(&in_ns(
        &sns,
        &["ip", "addr", "add", &format!("{SERVER}/24"), "dev", &sv],
    ))?;
    ok(&in_ns(&cns, &["ip", "link", "set", &cv, "up"]))?;
    ok(&in_ns(&sns, &["ip", "link", "set", &sv, "up"]))?;
    ok(&in_ns(
        &cns,
        &["ip", "route", "add", &format!("{VIP}/32"), "via", SERVER],
    ))?;

    let mut restore = Command::new("ip")
        .args(["netns", "exec", &sns, "iptables-restore"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("iptables-restore: {e}"))?;
    restore
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(rules().as_bytes())
        .map_err(|e| e.to_string())?;
    let out = restore.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "iptables-restore in {sns} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }

    // Listeners in the server namespace, on the DNAT targets.
    for args in [
        &["nc", "-l", SERVER, "9000"][..],
        &["nc", "-u", "-l", SERVER, "5353"],
    ] {
        let child = Command::new("ip")
            .args(["netns", "exec", &sns])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("nc: {e}"))?;
        guard.children.push(child);
    }

    // TCP through the VIP; retry while the listener starts.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let o = run(&in_ns(
            &cns,
            &["sh", "-c", &format!("echo hello | nc -N -w 2 {VIP} 80")],
        ))?;
        if o.status.success() {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "TCP connection to {VIP}:80 never succeeded: {}",
                String::from_utf8_lossy(&o.stderr)
            ));
        }
        sleep(Duration::from_millis(100));
    }
    // UDP: a datagram or two is enough to create the entry.
    run(&in_ns(
        &cns,
        &["sh", "-c", &format!("echo query | nc -u -w 1 {VIP} 53")],
    ))?;

    let (name, table) = read_table(&sns)?;
    let t = match conntrack::parse_bytes(&table, &name) {
        Ok(Parsed::Entries(t)) => t,
        other => return Err(format!("{name}: expected entries, got {other:?}")),
    };
    if !t.problems.is_empty() {
        return Err(format!("{name} had problems: {:#?}", t.problems));
    }
    let saved = ok(&in_ns(&sns, &["iptables-save"]))?.stdout;
    let parsed =
        parse_bytes(&saved, &ParseOptions::lenient("iptables-save")).map_err(|e| e.to_string())?;
    let nat = NatRules::from_ruleset(&parsed.ruleset);
    let links = conntrack::link_nat(t.entries.iter().enumerate(), Some(&nat));

    for (proto, vport, backend, service) in [
        ("tcp", 80, format!("{SERVER}:9000"), "test/web:http"),
        ("udp", 53, format!("{SERVER}:5353"), "test/dns:dns"),
    ] {
        let l = links
            .iter()
            .find(|l| l.proto == proto && l.service == format!("{VIP}:{vport}"))
            .ok_or_else(|| {
                format!(
                    "no {proto} NAT entry for {VIP}:{vport} in {name}:\n{}",
                    String::from_utf8_lossy(&table)
                )
            })?;
        if l.backend != backend || !l.kind.dnat || l.kind.snat {
            return Err(format!("{proto}: unexpected NAT entry {l:?}"));
        }
        let r = l
            .dnat_rule
            .as_ref()
            .ok_or_else(|| format!("{proto}: entry not linked to a rule: {l:?}"))?;
        if r.chain != "PREROUTING" || r.target != "DNAT" || r.service.as_deref() != Some(service) {
            return Err(format!("{proto}: linked to the wrong rule: {r:?}"));
        }
        if !l.client.starts_with(CLIENT) {
            return Err(format!("{proto}: client should be {CLIENT}: {l:?}"));
        }
    }
    // The command line, run inside the namespace: its live table linked to
    // its live rules (`--live --live-rules`).
    let exe = env!("CARGO_BIN_EXE_iptviz");
    let o = ok(&in_ns(
        &sns,
        &[exe, "conntrack", "--live", "--live-rules", "--nat"],
    ))?;
    let text = String::from_utf8_lossy(&o.stdout);
    for want in [
        "DNAT by nat PREROUTING".to_string(),
        "service test/web:http".to_string(),
        "service test/dns:dns".to_string(),
    ] {
        if !text.contains(&want) {
            return Err(format!(
                "`iptviz conntrack --live --live-rules` lacks {want:?}:\n{text}"
            ));
        }
    }
    drop(guard);
    if std::path::Path::new(&format!("/run/netns/{sns}")).exists() {
        return Err(format!("namespace {sns} still exists after cleanup"));
    }
    Ok(())
}

/// The namespace's live table: /proc first, `conntrack -L` as a fallback.
fn read_table(ns: &str) -> Result<(String, Vec<u8>), String> {
    let o = run(&in_ns(ns, &["cat", "/proc/net/nf_conntrack"]))?;
    if o.status.success() && !o.stdout.is_empty() {
        return Ok((format!("{ns}: /proc/net/nf_conntrack"), o.stdout));
    }
    if which("conntrack") {
        let o = ok(&in_ns(ns, &["conntrack", "-L"]))?;
        return Ok((format!("{ns}: conntrack -L"), o.stdout));
    }
    Err(format!(
        "cannot read the conntrack table of {ns}: {}",
        String::from_utf8_lossy(&o.stderr)
    ))
}
