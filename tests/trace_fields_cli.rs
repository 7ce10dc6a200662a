//! `iptviz trace` with the packet details: --tos, --dscp, --fragment,
//! --tcp-option, --mss, --ipv6-header, --assume; the same fields in
//! --packets lines, and read from the frames of a --pcap capture.

use std::time::Duration;

use assert_cmd::Command;
use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};

const RULES: &str = "*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -m tos --tos 0x10/0x3f
-A PREROUTING -f
-A PREROUTING -p tcp -m tcp --dport 80
-A PREROUTING -p tcp -m tcp --tcp-option 4
-A PREROUTING -p tcp -m tcpmss --mss 1400:1500
-A PREROUTING -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --set-mss 1300
-A PREROUTING -p tcp -m tcpmss --mss 1300
-A PREROUTING -j DSCP --set-dscp-class AF41
-A PREROUTING -m dscp --dscp-class AF41
-A PREROUTING -m limit --limit 1/sec
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp -m tcp --dport 80 -j ACCEPT
COMMIT
";

fn iptviz(args: &[&str], stdin: &str) -> (bool, String, String) {
    let out = Command::cargo_bin("iptviz")
        .unwrap()
        .args(args)
        .write_stdin(stdin)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const ONE: &[&str] = &[
    "trace",
    "-",
    "-s",
    "192.0.2.1",
    "-d",
    "192.0.2.2",
    "--dport",
    "80",
    "--local",
    "192.0.2.2",
];

fn one(extra: &[&str]) -> (bool, String, String) {
    let mut args = ONE.to_vec();
    args.extend(extra);
    iptviz(&args, RULES)
}

#[test]
fn tos_mss_and_options_match_and_targets_change_them() {
    let (ok, out, err) = one(&["--tos", "0x10", "--mss", "1460", "--tcp-option", "4"]);
    assert!(ok, "{err}");
    assert!(out.contains("NEW tos 0x10 mss 1460 tcp-options 4"), "{out}");
    for matched in [
        "=> PREROUTING#1 ",
        "=> PREROUTING#4 ",
        "=> PREROUTING#5 ",
        "=> PREROUTING#7 ",
        "=> PREROUTING#9 ",
    ] {
        assert!(out.contains(matched), "{matched} missing:\n{out}");
    }
    assert!(
        out.contains("-> TCPMSS: mss 1460 -> 1300, continue"),
        "{out}"
    );
    assert!(out.contains("-> DSCP: tos 0x10 -> 0x88, continue"), "{out}");
    assert!(
        out.contains("leaves  tcp 192.0.2.1:40000 -> 192.0.2.2:80 NEW tos 0x88 mss 1300"),
        "{out}"
    );
    // Without them the same rules do not match.
    let (_, out, _) = one(&[]);
    assert!(out.contains("     PREROUTING#1 "), "{out}");
    assert!(out.contains("     PREROUTING#5 "), "{out}");
    assert!(out.contains("-> TCPMSS: mss option added: 536"), "{out}");
}

#[test]
fn a_later_fragment_has_no_ports_and_waits_for_its_datagram() {
    let (ok, out, err) = one(&["--fragment", "last"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("=> PREROUTING#2 (line 8): -A PREROUTING -f"),
        "{out}"
    );
    assert!(out.contains("     PREROUTING#3 "), "{out}");
    assert!(out.contains("no transport header"), "{out}");
    assert!(
        out.contains("IPv4 holds this fragment until its datagram is complete"),
        "{out}"
    );
    let (_, out, _) = one(&["--fragment", "first"]);
    assert!(out.contains("=> PREROUTING#3 "), "{out}");
    assert!(
        out.contains("IPv4 reassembles a datagram for this host before INPUT"),
        "{out}"
    );
    assert!(out.contains("verdict ACCEPT"), "{out}");
    let (ok, _, err) = one(&["--fragment", "middle-ish"]);
    assert!(!ok);
    assert!(err.contains("--fragment: first, more or last"), "{err}");
}

#[test]
fn assumptions_show_as_given_or_defaulted() {
    let (ok, out, err) = one(&[]);
    assert!(ok, "{err}");
    assert!(out.contains("=> PREROUTING#10 "), "{out}");
    assert!(
        out.contains("assumption: limit: assumed under the rate"),
        "{out}"
    );
    let (ok, out, err) = one(&["--assume", "mangle:PREROUTING#10=nomatch"]);
    assert!(ok, "{err}");
    assert!(out.contains("     PREROUTING#10 "), "{out}");
    assert!(
        out.contains("assumption: limit: assumed under the rate (given: no match by --assume)"),
        "{out}"
    );
    // An assumption about a rule the packet decides changes nothing, and
    // says so.
    let (ok, plain, _) = one(&[]);
    assert!(ok);
    let (ok, same, err) = one(&["--assume", "PREROUTING#3=nomatch"]);
    assert!(ok, "{err}");
    assert_eq!(same, plain);
    assert!(
        err.contains("--assume mangle:PREROUTING#3: the packet decides this rule by itself"),
        "{err}"
    );
    // By line, and by chain alone when one table has it.
    let (_, by_line, _) = one(&["--assume", "line:16=nomatch"]);
    assert_eq!(by_line, out);
}

#[test]
fn an_assumption_that_names_no_rule_is_an_error() {
    for (spec, want) in [
        ("NOPE#1=match", "no chain NOPE in any table"),
        (
            "POSTROUTING#2=match",
            "mangle POSTROUTING has 0 rules, no #2",
        ),
        (
            "INPUT#1=match",
            "chain INPUT is in tables mangle, filter: write TABLE:INPUT#1",
        ),
        (
            "mangle:PREROUTING#11=match",
            "mangle PREROUTING has 10 rules, no #11",
        ),
        ("raw:PREROUTING#1=match", "no table raw in the rules"),
        ("line:3=match", "no rule is on line 3"),
        ("mangle:PREROUTING#10=perhaps", "neither match nor nomatch"),
        (
            "mangle:PREROUTING#10",
            "expected RULE=match or RULE=nomatch",
        ),
    ] {
        let (ok, _, err) = one(&["--assume", spec]);
        assert!(!ok, "{spec} was accepted");
        assert!(err.contains(want), "{spec}: {err}");
    }
}

#[test]
fn ipv6_headers_are_described_and_checked() {
    let rules = "# Generated by ip6tables-save v1.8.9\n*mangle\n:PREROUTING ACCEPT [0:0]\n\
                 -A PREROUTING -m ipv6header --header hop,frag --soft\n-A PREROUTING -m frag --fragfirst\n\
                 -A PREROUTING -m hbh\n-A PREROUTING -m rt\nCOMMIT\n";
    let args = [
        "trace",
        "-",
        "-s",
        "fd00::1",
        "-d",
        "fd00::2",
        "--local",
        "fd00::2",
        "--ipv6-header",
        "hop",
        "--fragment",
        "first",
    ];
    let (ok, out, err) = iptviz(&args, rules);
    assert!(ok, "{err}");
    assert!(
        out.contains("fragment first ipv6-headers hop,frag"),
        "{out}"
    );
    for r in [
        "=> PREROUTING#1 ",
        "=> PREROUTING#2 ",
        "=> PREROUTING#3 ",
        "     PREROUTING#4 ",
    ] {
        assert!(out.contains(r), "{r}:\n{out}");
    }
    let (ok, _, err) = iptviz(
        &[
            "trace",
            "-",
            "-s",
            "10.0.0.1",
            "-d",
            "10.0.0.2",
            "--ipv6-header",
            "hop",
        ],
        rules,
    );
    assert!(!ok);
    assert!(err.contains("--ipv6-header: the packet is IPv4"), "{err}");
    let (ok, _, err) = iptviz(
        &[
            "trace", "-", "-p", "udp", "-s", "10.0.0.1", "-d", "10.0.0.2", "--mss", "1400",
        ],
        rules,
    );
    assert!(!ok);
    assert!(err.contains("describe a TCP segment"), "{err}");
}

#[test]
fn packets_lines_carry_the_same_fields() {
    let dir = std::env::temp_dir().join(format!("iptviz-fields-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("r.rules");
    std::fs::write(&rules, RULES).unwrap();
    let lines = r#"{"src":"192.0.2.1","dst":"192.0.2.2","dport":80,"tos":"0x10","mss":1460,"tcp-option":[4,"timestamp"]}
{"src":"192.0.2.1","dst":"192.0.2.2","sport":40001,"dport":80,"dscp":"EF","fragment":"first"}
{"src":"192.0.2.1","dst":"192.0.2.2","dport":80,"fragment":"sideways"}
"#;
    let out = Command::cargo_bin("iptviz")
        .unwrap()
        .args([
            "trace",
            rules.to_str().unwrap(),
            "--packets",
            "-",
            "--local",
            "192.0.2.2",
            "--assume",
            "mangle:PREROUTING#10=nomatch",
        ])
        .write_stdin(lines)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let got: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got.len(), 3, "{stdout}");
    let input = |i: usize| got[i]["input"].as_str().unwrap_or("").to_string();
    assert!(
        input(0).ends_with(":80 tos 0x10 mss 1460 tcp-options 4,8"),
        "{}",
        input(0)
    );
    assert!(
        got[0]["output"]
            .as_str()
            .unwrap()
            .contains("tos 0x88 mss 1300"),
        "{stdout}"
    );
    assert!(
        input(1).ends_with("tos 0xb8 fragment first"),
        "{}",
        input(1)
    );
    assert!(
        got[2]["error"]
            .as_str()
            .unwrap()
            .contains("fragment: first, more or last"),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// An IPv4 TCP SYN in an Ethernet frame with the TOS, MSS and fragment
/// fields given; `offset` in 8-byte units.
fn v4_frame(tos: u8, mss: Option<u16>, offset: u16, more: bool) -> Vec<u8> {
    let mut tcp = vec![0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0];
    let opts: Vec<u8> = mss
        .map(|m| {
            let b = m.to_be_bytes();
            vec![2, 4, b[0], b[1]]
        })
        .unwrap_or_default();
    tcp.push(((20 + opts.len()) as u8 / 4) << 4);
    tcp.extend([0x02, 0xfa, 0xf0, 0, 0, 0, 0]);
    tcp.extend(opts);
    tcp.extend([0x61; 8]);
    let body = if offset == 0 { tcp } else { vec![0x61; 16] };
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 8, 0];
    f.extend([0x45, tos]);
    f.extend(((20 + body.len()) as u16).to_be_bytes());
    f.extend([0, 7]);
    f.extend((offset | if more { 0x2000 } else { 0 }).to_be_bytes());
    f.extend([64, 6, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2]);
    f.extend(body);
    f
}

/// An IPv6 TCP SYN, or a later piece of one, with a fragment header.
fn v6_fragment_frame(offset: u16, more: bool) -> Vec<u8> {
    let body: Vec<u8> = if offset == 0 {
        let mut t = vec![
            0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xfa, 0xf0,
        ];
        t.extend([0, 0, 0, 0]);
        t.extend([0x61; 8]);
        t
    } else {
        vec![0x61; 16]
    };
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x86, 0xdd];
    f.extend([0x60, 0, 0, 0]);
    f.extend(((8 + body.len()) as u16).to_be_bytes());
    f.extend([44, 64]);
    let mut a = [0u8; 16];
    a[0] = 0xfd;
    a[15] = 1;
    f.extend(a);
    a[15] = 2;
    f.extend(a);
    f.extend([6, 0]);
    f.extend(((offset << 3) | u16::from(more)).to_be_bytes());
    f.extend([0, 0, 0, 9]);
    f.extend(body);
    f
}

fn capture(frames: &[Vec<u8>]) -> Vec<u8> {
    let header = PcapHeader {
        datalink: DataLink::ETHERNET,
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

fn counters(rules: &str, frames: &[Vec<u8>], local: &str) -> String {
    let dir =
        std::env::temp_dir().join(format!("iptviz-fields-pcap-{}-{local}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let r = dir.join("r.rules");
    std::fs::write(&r, rules).unwrap();
    let out = Command::cargo_bin("iptviz")
        .unwrap()
        .args([
            "trace",
            r.to_str().unwrap(),
            "--pcap",
            "-",
            "--in",
            "eth0",
            "--local",
            local,
            "-f",
            "counters",
        ])
        .write_stdin(capture(frames))
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_capture_carries_tos_mss_and_fragments() {
    let rules = "*mangle\n:PREROUTING ACCEPT [0:0]\n\
                 -A PREROUTING -m dscp --dscp 0x0a\n\
                 -A PREROUTING -p tcp -m tcpmss --mss 1460\n\
                 -A PREROUTING -f\n\
                 -A PREROUTING -p tcp -m tcp --dport 80\nCOMMIT\n";
    let frames = [
        v4_frame(0x28, Some(1460), 0, false),
        v4_frame(0, Some(1200), 0, false),
        v4_frame(0x28, None, 0, true),
        v4_frame(0x28, None, 5, false),
    ];
    let out = counters(rules, &frames, "192.0.2.2");
    let line = |needle: &str| {
        out.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle}: {out}"))
            .to_string()
    };
    assert!(line("--dscp 0x0a").starts_with("[3:"), "{out}");
    assert!(line("--mss 1460").starts_with("[1:"), "{out}");
    assert!(line("-A PREROUTING -f").starts_with("[1:"), "{out}");
    assert!(line("--dport 80").starts_with("[3:"), "{out}");
    assert!(line(":PREROUTING ACCEPT").contains("[4:"), "{out}");
}

/// etherparse 0.19 reads the IPv6 fragment header's offset and M flag
/// from other bits than RFC 8200 puts them in, so a first fragment (offset
/// 0, M set) was taken for a later one and skipped, and a later one at
/// offset 32 for no fragment at all.
#[test]
fn ipv6_first_fragments_are_not_skipped_as_later_ones() {
    let rules = "# Generated by ip6tables-save v1.8.9\n*mangle\n:PREROUTING ACCEPT [0:0]\n\
                 -A PREROUTING -m frag --fragfirst\n\
                 -A PREROUTING -m frag --fraglast\n\
                 -A PREROUTING -p tcp -m tcp --dport 80\nCOMMIT\n";
    let frames = [v6_fragment_frame(0, true), v6_fragment_frame(4, false)];
    let out = counters(rules, &frames, "fd00::2");
    let line = |needle: &str| {
        out.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle}: {out}"))
            .to_string()
    };
    assert!(line("--fragfirst").starts_with("[1:"), "{out}");
    assert!(line("--fraglast").starts_with("[1:"), "{out}");
    assert!(line("--dport 80").starts_with("[1:"), "{out}");
    assert!(line(":PREROUTING ACCEPT").contains("[2:"), "{out}");
}

/// The replay's connection table took an IPv6 packet with "no next header"
/// for the first of a connection (NEW); conntrack finds no protocol in it
/// and calls it INVALID (tests/kernel_fields.rs saw the kernel do so).
#[test]
fn ipv6_no_next_header_is_invalid_in_a_replay() {
    let rules = "# Generated by ip6tables-save v1.8.9\n*filter\n:INPUT ACCEPT [0:0]\n\
                 -A INPUT -m conntrack --ctstate INVALID -j DROP\nCOMMIT\n";
    let dir = std::env::temp_dir().join(format!("iptviz-fields-nonxt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let r = dir.join("r.rules");
    std::fs::write(&r, rules).unwrap();
    let out = Command::cargo_bin("iptviz")
        .unwrap()
        .args([
            "trace",
            r.to_str().unwrap(),
            "--packets",
            "-",
            "--local",
            "fd00::2",
        ])
        .write_stdin(
            "{\"proto\":59,\"src\":\"fd00::1\",\"dst\":\"fd00::2\"}\n\
             {\"proto\":\"udp\",\"src\":\"fd00::1\",\"dst\":\"fd00::2\",\"dport\":53}\n",
        )
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert_eq!(lines[0]["state"], "INVALID", "{stdout}");
    assert_eq!(lines[0]["verdict"], "DROP", "{stdout}");
    assert_eq!(lines[1]["state"], "NEW", "{stdout}");
}
