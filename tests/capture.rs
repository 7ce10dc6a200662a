//! `iptviz trace --pcap` and `--packets`: many packets through the rules
//! with a connection table, captures of every link type read the same,
//! and broken input is named by packet number while the rest is traced.

use std::borrow::Cow;
use std::time::Duration;

use assert_cmd::Command;
use etherparse::PacketBuilder;
use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use serde_json::Value;

const RULES: &str = "*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
-A INPUT -p tcp -m tcp --dport 23 -j DROP
COMMIT
";

const RULES6: &str = "*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
-A INPUT -p tcp -m tcp --dport 23 -j DROP
COMMIT
";

const HOST: [u8; 4] = [192, 0, 2, 2];
const CLIENT: [u8; 4] = [198, 51, 100, 7];
const HOST6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
const CLIENT6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];

/// A TCP segment as IP bytes: (src, sport, dst, dport, syn, ack).
type Seg = (bool, u16, u16, bool, bool);

/// The traffic every test replays, `true` = from the client:
/// an SSH handshake (SYN, SYN-ACK from the host, ACK), three SYNs to
/// telnet (dropped by INPUT#3), one UDP packet to 53 (the policy).
const TRAFFIC: [Seg; 6] = [
    (true, 40000, 22, true, false),
    (false, 22, 40000, true, true),
    (true, 40000, 22, false, true),
    (true, 40001, 23, true, false),
    (true, 40001, 23, true, false),
    (true, 40001, 23, true, false),
];

fn ip_packet(v6: bool, seg: &Seg) -> Vec<u8> {
    let (from_client, sport, dport, syn, ack) = *seg;
    let b = if v6 {
        let (s, d) = if from_client {
            (CLIENT6, HOST6)
        } else {
            (HOST6, CLIENT6)
        };
        PacketBuilder::ipv6(s, d, 64)
    } else {
        let (s, d) = if from_client {
            (CLIENT, HOST)
        } else {
            (HOST, CLIENT)
        };
        PacketBuilder::ipv4(s, d, 64)
    };
    let b = b.tcp(sport, dport, 1, 64240);
    let b = if syn { b.syn() } else { b };
    let b = if ack { b.ack(1) } else { b };
    let mut out = Vec::new();
    b.write(&mut out, &[]).unwrap();
    out
}

fn udp_packet(v6: bool) -> Vec<u8> {
    let b = if v6 {
        PacketBuilder::ipv6(CLIENT6, HOST6, 64)
    } else {
        PacketBuilder::ipv4(CLIENT, HOST, 64)
    };
    let mut out = Vec::new();
    b.udp(5353, 53).write(&mut out, b"q").unwrap();
    out
}

/// The IP packets of the test traffic.
fn traffic(v6: bool) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = TRAFFIC.iter().map(|s| ip_packet(v6, s)).collect();
    v.push(udp_packet(v6));
    v
}

fn ethernet(ip: &[u8]) -> Vec<u8> {
    let v6 = ip[0] >> 4 == 6;
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
    f.extend_from_slice(if v6 { &[0x86, 0xdd] } else { &[0x08, 0x00] });
    f.extend_from_slice(ip);
    f
}

fn sll(ip: &[u8], outgoing: bool) -> Vec<u8> {
    let v6 = ip[0] >> 4 == 6;
    let mut f = vec![
        0,
        if outgoing { 4 } else { 0 },
        0,
        1,
        0,
        6,
        2,
        0,
        0,
        0,
        0,
        1,
        0,
        0,
    ];
    f.extend_from_slice(if v6 { &[0x86, 0xdd] } else { &[0x08, 0x00] });
    f.extend_from_slice(ip);
    f
}

fn sll2(ip: &[u8], outgoing: bool) -> Vec<u8> {
    let v6 = ip[0] >> 4 == 6;
    let mut f = Vec::new();
    f.extend_from_slice(if v6 { &[0x86, 0xdd] } else { &[0x08, 0x00] });
    f.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, if outgoing { 4 } else { 0 }, 6]);
    f.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0, 0]);
    f.extend_from_slice(ip);
    f
}

fn pcap(link: DataLink, frames: &[Vec<u8>]) -> Vec<u8> {
    let header = PcapHeader {
        datalink: link,
        ..Default::default()
    };
    let mut w = PcapWriter::with_header(Vec::new(), header).unwrap();
    for (i, f) in frames.iter().enumerate() {
        w.write_packet(&PcapPacket::new(
            Duration::from_millis(i as u64),
            f.len() as u32,
            f,
        ))
        .unwrap();
    }
    w.into_writer()
}

fn pcapng(link: DataLink, name: &str, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut w = PcapNgWriter::new(Vec::new()).unwrap();
    w.write_pcapng_block(InterfaceDescriptionBlock {
        linktype: link,
        snaplen: 0,
        options: vec![InterfaceDescriptionOption::IfName(Cow::Borrowed(name))],
    })
    .unwrap();
    for (i, f) in frames.iter().enumerate() {
        w.write_pcapng_block(EnhancedPacketBlock {
            interface_id: 0,
            timestamp: Duration::from_millis(i as u64),
            original_len: f.len() as u32,
            data: Cow::Borrowed(f),
            options: vec![],
        })
        .unwrap();
    }
    w.into_inner()
}

/// Runs `iptviz trace RULES --pcap CAPTURE ARGS...`: (exit code, stdout, stderr).
fn run(rules: &str, capture: &[u8], args: &[&str]) -> (i32, String, String) {
    let dir = std::env::temp_dir().join(format!(
        "iptviz-capture-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let cap = dir.join("c.pcap");
    std::fs::write(&cap, capture).unwrap();
    let out = Command::cargo_bin("iptviz")
        .unwrap()
        .args(["trace", "-", "--pcap"])
        .arg(&cap)
        .args(args)
        .write_stdin(rules)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn summary(rules: &str, capture: &[u8], local: &str) -> Value {
    let (code, out, err) = run(rules, capture, &["--local", local, "--json"]);
    assert_eq!(code, 0, "stderr: {err}");
    serde_json::from_str::<Value>(&out).unwrap()["summary"].clone()
}

fn tally<'a>(s: &'a Value, list: &str, key: &str, name: &str) -> &'a Value {
    s[list]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v[key] == name)
        .unwrap_or_else(|| panic!("no {name} in {list}: {s:#}"))
}

/// The numbers the test traffic must give, whatever the capture's format.
fn check_summary(s: &Value) {
    assert_eq!(s["packets"], 7, "{s:#}");
    assert_eq!(s["flows"], 3, "{s:#}");
    assert_eq!(s["replies"], 1, "{s:#}");
    let accept = tally(s, "verdicts", "verdict", "ACCEPT");
    assert_eq!(
        (accept["packets"].as_u64(), accept["flows"].as_u64()),
        (Some(3), Some(1))
    );
    let drop = tally(s, "verdicts", "verdict", "DROP");
    assert_eq!(
        (drop["packets"].as_u64(), drop["flows"].as_u64()),
        (Some(4), Some(2))
    );
    let telnet = tally(s, "deciders", "rule", "filter INPUT#3");
    assert_eq!(
        (telnet["packets"].as_u64(), telnet["flows"].as_u64()),
        (Some(3), Some(1))
    );
    let ssh = tally(s, "deciders", "rule", "filter INPUT#2");
    assert_eq!(ssh["packets"], 1);
    let established = tally(s, "deciders", "rule", "filter INPUT#1");
    assert_eq!(established["packets"], 1, "the ACK is ESTABLISHED: {s:#}");
    let policy = tally(s, "deciders", "rule", "filter INPUT policy DROP");
    assert_eq!(policy["packets"], 1);
    let top = &s["top_dropped"][0];
    assert_eq!(top["dropped"], 3, "{s:#}");
    assert_eq!(top["dport"], 23);
    assert_eq!(top["rule"], "filter INPUT#3");
}

#[test]
fn ethernet_pcap_summary_counts_verdicts_rules_and_flows() {
    let frames: Vec<Vec<u8>> = traffic(false).iter().map(|p| ethernet(p)).collect();
    let s = summary(RULES, &pcap(DataLink::ETHERNET, &frames), "192.0.2.2");
    check_summary(&s);
}

#[test]
fn every_link_type_and_pcapng_give_the_same_summary() {
    let ips = traffic(false);
    let captures = [
        (
            "pcapng ethernet",
            pcapng(
                DataLink::ETHERNET,
                "eth0",
                &ips.iter().map(|p| ethernet(p)).collect::<Vec<_>>(),
            ),
        ),
        (
            "sll",
            pcap(
                DataLink::LINUX_SLL,
                &ips.iter().map(|p| sll(p, false)).collect::<Vec<_>>(),
            ),
        ),
        (
            "sll2",
            pcapng(
                DataLink::LINUX_SLL2,
                "any",
                &ips.iter().map(|p| sll2(p, false)).collect::<Vec<_>>(),
            ),
        ),
        ("raw", pcap(DataLink::RAW, &ips)),
        ("ipv4", pcap(DataLink::IPV4, &ips)),
    ];
    for (what, cap) in captures {
        let s = summary(RULES, &cap, "192.0.2.2");
        println!("{what}");
        check_summary(&s);
    }
}

#[test]
fn ipv6_capture_is_traced_through_ip6tables_rules() {
    let frames: Vec<Vec<u8>> = traffic(true).iter().map(|p| ethernet(p)).collect();
    let rules = RULES6.replace("*filter", "# ip6tables-save\n*filter");
    let (code, out, err) = Command::cargo_bin("iptviz")
        .unwrap()
        .args([
            "trace",
            "-",
            "-6",
            "--local",
            "2001:db8::2",
            "--json",
            "--pcap",
        ])
        .arg({
            let p = std::env::temp_dir().join(format!("iptviz-v6-{}.pcap", std::process::id()));
            std::fs::write(&p, pcap(DataLink::ETHERNET, &frames)).unwrap();
            p
        })
        .write_stdin(rules)
        .output()
        .map(|o| {
            (
                o.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&o.stdout).into_owned(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        })
        .unwrap();
    assert_eq!(code, 0, "{err}");
    let s = serde_json::from_str::<Value>(&out).unwrap()["summary"].clone();
    check_summary(&s);
}

#[test]
fn sll_outgoing_packets_are_traced_as_sent_by_this_host() {
    // The SYN-ACK marked outgoing by the cooked header goes through
    // OUTPUT even without --local.
    let ips = traffic(false);
    let frames: Vec<Vec<u8>> = ips
        .iter()
        .enumerate()
        .map(|(i, p)| sll(p, i == 1))
        .collect();
    let (code, out, err) = run(
        RULES,
        &pcap(DataLink::LINUX_SLL, &frames),
        &["-f", "jsonl", "--direction", "in"],
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 7);
    assert_eq!(lines[1]["route"], "output", "{}", out);
    assert_eq!(lines[1]["reply"], true);
    assert_eq!(lines[2]["state"], "ESTABLISHED");
    assert_eq!(lines[0]["packet"], 1);
}

#[test]
fn dnat_replies_are_recognised_before_and_after_nat_is_undone() {
    let rules = "*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d 10.96.0.10/32 -p udp -m udp --dport 53 -j DNAT --to-destination 10.244.0.2:53
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -d 10.244.0.2/32 -p udp -m udp --dport 53 -j ACCEPT
COMMIT
";
    let q = |s: [u8; 4], sp: u16, d: [u8; 4], dp: u16| {
        let mut out = Vec::new();
        PacketBuilder::ipv4(s, d, 64)
            .udp(sp, dp)
            .write(&mut out, b"x")
            .unwrap();
        out
    };
    let client = [10, 244, 1, 7];
    let frames = vec![
        // The query, as it arrives (before DNAT).
        q(client, 41000, [10, 96, 0, 10], 53),
        // The answer from the backend (before NAT is undone).
        q([10, 244, 0, 2], 53, client, 41000),
        // The answer as it leaves towards the client (after).
        q([10, 96, 0, 10], 53, client, 41000),
        // A second query of the same flow.
        q(client, 41000, [10, 96, 0, 10], 53),
    ];
    let (code, out, err) = run(
        rules,
        &pcap(DataLink::RAW, &frames),
        &[
            "-f",
            "jsonl",
            "--local",
            "192.168.49.2",
            "--in",
            "cali1",
            "--out",
            "eth0",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert_eq!(lines[0]["state"], "NEW");
    assert_eq!(lines[0]["output"], "udp 10.244.1.7:41000 -> 10.244.0.2:53");
    for l in &lines[1..3] {
        assert_eq!(l["reply"], true, "{l}");
        assert_eq!(l["state"], "ESTABLISHED");
        assert_eq!(l["verdict"], "ACCEPT");
        assert_eq!(l["decided_by"], "filter FORWARD#1");
    }
    assert!(
        lines[2]["notes"][0]
            .as_str()
            .unwrap()
            .contains("after its connection's NAT"),
        "{}",
        lines[2]
    );
    assert_eq!(lines[3]["state"], "ESTABLISHED");
    assert!(lines.iter().all(|l| l["flow"] == 1), "{out}");
}

#[test]
fn heat_graph_edges_carry_the_packets_of_the_capture() {
    let frames: Vec<Vec<u8>> = traffic(false).iter().map(|p| ethernet(p)).collect();
    let (code, out, err) = run(
        RULES,
        &pcap(DataLink::ETHERNET, &frames),
        &["--local", "192.0.2.2", "-f", "dot"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("digraph"), "{out}");
    assert!(
        out.contains("[3 pkts]"),
        "the telnet DROP rule took 3: {out}"
    );
    assert!(out.contains("7 packets"), "{out}");
}

#[test]
fn truncated_capture_names_the_packet_and_traces_those_before() {
    let frames: Vec<Vec<u8>> = traffic(false).iter().map(|p| ethernet(p)).collect();
    let mut cap = pcap(DataLink::ETHERNET, &frames);
    cap.truncate(cap.len() - 20);
    let (code, out, err) = run(RULES, &cap, &["--local", "192.0.2.2", "--json"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("packet 7:") && err.contains("truncated"),
        "{err}"
    );
    let s = &serde_json::from_str::<Value>(&out).unwrap()["summary"];
    assert_eq!(s["packets"], 6);
    assert_eq!(s["unreadable"], 1);
}

#[test]
fn unknown_link_type_is_named_per_packet() {
    let frames: Vec<Vec<u8>> = traffic(false).iter().map(|p| ethernet(p)).collect();
    let (code, _, err) = run(RULES, &pcap(DataLink::IEEE802_11, &frames), &[]);
    assert_eq!(code, 1);
    assert!(err.contains("packet 1: link type"), "{err}");
    assert!(err.contains("packet 7: link type"), "{err}");
}

#[test]
fn snaplen_cut_packet_is_named_and_the_rest_traced() {
    let mut frames: Vec<Vec<u8>> = traffic(false).iter().map(|p| ethernet(p)).collect();
    let header = PcapHeader {
        datalink: DataLink::ETHERNET,
        ..Default::default()
    };
    let mut w = PcapWriter::with_header(Vec::new(), header).unwrap();
    // Packet 2 cut inside its TCP header (14 + 20 + 6 bytes kept).
    frames[1].truncate(40);
    for (i, f) in frames.iter().enumerate() {
        let orig = if i == 1 { 54 } else { f.len() as u32 };
        w.write_packet(&PcapPacket::new(Duration::ZERO, orig, f))
            .unwrap();
    }
    let (code, out, err) = run(RULES, &w.into_writer(), &["--local", "192.0.2.2", "--json"]);
    assert_eq!(code, 1);
    assert!(err.contains("packet 2: cut to 40 of its 54 bytes"), "{err}");
    let s = &serde_json::from_str::<Value>(&out).unwrap()["summary"];
    assert_eq!(s["packets"], 6);
}

#[test]
fn not_a_capture_is_refused_with_its_first_bytes() {
    let (code, _, err) = run(RULES, b"hello world", &[]);
    assert_eq!(code, 2);
    assert!(err.contains("not a pcap or pcapng capture"), "{err}");
}

#[test]
fn packets_file_gives_one_result_a_line_and_names_garbage_lines() {
    let dir = std::env::temp_dir().join(format!("iptviz-lines-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let lines = dir.join("p.jsonl");
    std::fs::write(
        &lines,
        r#"{"src":"198.51.100.7","dst":"192.0.2.2","dport":22,"in":"eth0"}
{"src":"192.0.2.2","sport":22,"dst":"198.51.100.7","dport":40000,"tcp-flags":"SYN,ACK"}
this is not json
{"src":"198.51.100.7","dst":"192.0.2.2","dport":22,"tcp-flags":"ACK","in":"eth0"}
{"src":"198.51.100.7","dst":"192.0.2.2","dprot":23}
# a comment

{"proto":"udp","src":"198.51.100.7","dst":"192.0.2.2","dport":53,"state":"ESTABLISHED"}
"#,
    )
    .unwrap();
    let out = Command::cargo_bin("iptviz")
        .unwrap()
        .args(["trace", "-", "--local", "192.0.2.2", "--packets"])
        .arg(&lines)
        .write_stdin(RULES)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let res: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(res.len(), 6, "{stdout}");
    assert_eq!(
        (res[0]["line"].as_u64(), res[0]["verdict"].as_str()),
        (Some(1), Some("ACCEPT"))
    );
    assert_eq!(res[1]["reply"], true);
    assert_eq!(res[1]["route"], "output");
    assert_eq!(res[2]["line"], 3);
    assert!(res[2]["error"].as_str().is_some());
    assert_eq!(res[3]["state"], "ESTABLISHED");
    assert_eq!(res[3]["decided_by"], "filter INPUT#1");
    assert_eq!(res[4]["line"], 5);
    assert!(res[4]["error"].as_str().unwrap().contains("dprot"));
    assert_eq!(res[5]["line"], 8);
    assert_eq!(res[5]["state"], "ESTABLISHED", "a given state is kept");
    assert!(stderr.contains("p.jsonl:3:2: error:"), "{stderr}");
    assert!(stderr.contains("p.jsonl:5:"), "{stderr}");
    assert!(stderr.contains("this is not json\n ^"), "{stderr}");
}

#[test]
fn packets_from_stdin_with_a_summary() {
    let dir = std::env::temp_dir().join(format!("iptviz-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("r.rules");
    std::fs::write(&rules, RULES).unwrap();
    let out = Command::cargo_bin("iptviz")
        .unwrap()
        .arg("trace")
        .arg(&rules)
        .args(["--local", "192.0.2.2", "--packets", "-", "--summary"])
        .write_stdin(
            "{\"src\":\"198.51.100.7\",\"dst\":\"192.0.2.2\",\"dport\":23}\n\
             {\"src\":\"198.51.100.7\",\"dst\":\"192.0.2.2\",\"dport\":23}\n",
        )
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("2 packets in 1 flows"), "{stdout}");
    assert!(
        stdout.contains("filter INPUT#3 (line 7) -> DROP"),
        "{stdout}"
    );
    assert!(stdout.contains("flows dropped most"), "{stdout}");
}

#[test]
fn rules_and_packets_cannot_both_come_from_stdin() {
    let out = Command::cargo_bin("iptviz")
        .unwrap()
        .args(["trace", "-", "--packets", "-"])
        .write_stdin(RULES)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot both come from standard input"));
}

#[test]
fn counters_format_gives_the_counters_the_capture_would_have_produced() {
    let frames: Vec<Vec<u8>> = traffic(false).iter().map(|p| ethernet(p)).collect();
    let (code, out, err) = run(
        RULES,
        &pcap(DataLink::ETHERNET, &frames),
        &["--local", "192.0.2.2", "-f", "counters"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(":INPUT DROP [1:29]"), "{out}");
    assert!(out.contains(":OUTPUT ACCEPT [1:40]"), "{out}");
    assert!(
        out.contains("[1:40] -A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"),
        "{out}"
    );
    assert!(
        out.contains("[3:120] -A INPUT -p tcp -m tcp --dport 23 -j DROP"),
        "{out}"
    );
}

#[test]
fn a_full_flow_table_forgets_old_flows_and_says_so() {
    use iptviz::trace::{Batch, Observed, Packet, TraceOptions, Tracer};
    let rs = iptviz::parse_str(RULES, &iptviz::ParseOptions::strict("t"))
        .unwrap()
        .ruleset;
    let tracer = Tracer::new(&rs);
    let mut b = Batch::new(
        &tracer,
        TraceOptions {
            local: vec!["192.0.2.2".parse().unwrap()],
            ..Default::default()
        },
    );
    b.max_flows = 100;
    for i in 0..1000u16 {
        let mut p = Packet::new(
            6,
            "198.51.100.7".parse().unwrap(),
            "192.0.2.2".parse().unwrap(),
        );
        p.sport = 10000 + i;
        p.dport = 22;
        b.push(Observed::new(p));
    }
    let s = b.report(&rs);
    assert_eq!(s.packets, 1000);
    assert_eq!(s.flows, 1000);
    assert!(s.forgotten_flows >= 900, "{}", s.forgotten_flows);
    assert!(s.text("t").contains("flows were forgotten"));
}
