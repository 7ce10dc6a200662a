//! The kernel as the oracle for the packet details of `iptviz trace`: the
//! TOS byte (`-m tos`, `-m dscp`, `-m ecn`, `-j DSCP`, `-j TOS`), fragments
//! (`-f`, `-m frag`, ports of later fragments), TCP options (`-m tcp
//! --tcp-option`, `-m tcpmss`, `-j TCPMSS`) and IPv6 extension headers
//! (`-m ipv6header`, `-m hbh`, `-m dst`, `-m rt`).
//!
//! Each ruleset is loaded into a namespace of its own ("host"), joined by
//! a veth pair (`eth0`) to a "peer" namespace. Frames built here byte by
//! byte (a TOS, options, extension headers, a datagram cut into
//! fragments) are written on the peer's end with an `AF_PACKET` socket
//! (python3's standard library), so they arrive at the host as from
//! another machine. After each datagram (all its fragments), the packet
//! counters of every rule and policy of PREROUTING and INPUT in
//! `iptables-save -c` must have moved exactly as much as the traces of
//! its packets matched them. Each ruleset runs once as it is and once with
//! a rule that makes conntrack run, which reassembles fragments before
//! PREROUTING.
//!
//! Needs root, `ip`, `iptables-restore`, `iptables-save`, their IPv6
//! twins and `python3`. Without them the test says why and passes, unless
//! `IPTVIZ_REQUIRE_KERNEL_TESTS=1`, when it fails.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use iptviz::model::Ruleset;
use iptviz::parse::{ParseOptions, parse_str};
use iptviz::trace::{
    Action, FragmentKind, Packet, RuleRef, TraceOptions, Tracer, fields::set_fragment,
};

/// (table, chain, rule index or `POLICY`).
type Key = (String, String, usize);
const POLICY: usize = usize::MAX;

const HOST_MAC: &str = "020000000001";
const PEER_MAC: &str = "020000000002";

const V4_RULES: &str = "*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -m tos --tos 0x10/0x3f
-A PREROUTING -m tos ! --tos 0x00
-A PREROUTING -m dscp --dscp 0x0a
-A PREROUTING -m dscp --dscp-class EF
-A PREROUTING -m ecn --ecn-ip-ect 1
-A PREROUTING -f
-A PREROUTING ! -f
-A PREROUTING -p tcp -m tcp --dport 80
-A PREROUTING -p tcp -m tcp ! --dport 80
-A PREROUTING -p udp -m udp --dport 53
-A PREROUTING -p udp -m udp ! --sport 1000
-A PREROUTING -p tcp -m multiport --dports 80,443
-A PREROUTING -p tcp -m tcp --tcp-option 4
-A PREROUTING -p tcp -m tcp ! --tcp-option 8
-A PREROUTING -p tcp -m tcpmss --mss 1400:1500
-A PREROUTING -p tcp -m tcpmss ! --mss 1460
-A PREROUTING -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --set-mss 1300
-A PREROUTING -p tcp -m tcpmss --mss 1300
-A PREROUTING -m dscp --dscp 0x0a -j DSCP --set-dscp-class AF41
-A PREROUTING -m dscp --dscp-class AF41
-A PREROUTING -m tos --tos 0x01/0x03 -j TOS --set-tos 0x04/0x0f
-A PREROUTING -m tos --tos 0x04/0x0f
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -f
-A INPUT -p tcp -m tcp --dport 80
-A INPUT -p udp -m udp --dport 53
-A INPUT -m dscp --dscp-class AF41
-A INPUT -p tcp -m tcpmss --mss 1300
-A INPUT -m tos --tos 0x04/0x0f
COMMIT
";

const V6_RULES: &str = "*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -m tos --tos 0x10/0x3f
-A PREROUTING -m dscp --dscp 0x0a
-A PREROUTING -m frag
-A PREROUTING -m frag --fragfirst
-A PREROUTING -m frag --fragmore
-A PREROUTING -m frag --fraglast
-A PREROUTING -m frag --fragid 100:199
-A PREROUTING -m ipv6header --header frag --soft
-A PREROUTING -m ipv6header ! --header frag --soft
-A PREROUTING -m ipv6header --header hop,dst --soft
-A PREROUTING -m ipv6header --header prot
-A PREROUTING -m ipv6header --header hop,prot
-A PREROUTING -m ipv6header ! --header prot
-A PREROUTING -m hbh
-A PREROUTING -m dst
-A PREROUTING -m rt
-A PREROUTING -p tcp -m tcp --dport 80
-A PREROUTING -p tcp -m tcp ! --dport 80
-A PREROUTING -p udp -m udp --dport 53
-A PREROUTING -p tcp -m tcp --tcp-option 2
-A PREROUTING -p tcp -m tcpmss --mss 1400:1500
-A PREROUTING -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --set-mss 1200
-A PREROUTING -p tcp -m tcpmss --mss 1200
-A PREROUTING -m dscp --dscp 0x0a -j DSCP --set-dscp 12
-A PREROUTING -m dscp --dscp 12
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m frag
-A INPUT -p tcp -m tcp --dport 80
-A INPUT -p udp -m udp --dport 53
-A INPUT -m ipv6header --header frag --soft
-A INPUT -m dscp --dscp 12
-A INPUT -p tcp -m tcpmss --mss 1200
COMMIT
";

/// A rule that makes conntrack run in the namespace (it matches nothing
/// these packets do: none is INVALID).
const CONNTRACK_RULE: &str = "-A INPUT -m conntrack --ctstate INVALID\n";

/// One datagram to send: its fields, and how it is cut.
#[derive(Debug, Clone)]
struct Datagram {
    v6: bool,
    proto: u8,
    sport: u16,
    dport: u16,
    tos: u8,
    /// TCP options as (kind, data after kind and length).
    options: Vec<(u8, Vec<u8>)>,
    /// IPv6 extension headers before the fragment header (0, 60, 43).
    ext: Vec<u8>,
    /// Bytes of payload after the transport header.
    payload: usize,
    /// Number of fragments (1: not fragmented).
    pieces: usize,
    id: u32,
}

fn mss(v: u16) -> (u8, Vec<u8>) {
    (2, v.to_be_bytes().to_vec())
}

fn csum(data: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        s += u32::from(w);
    }
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

fn addrs(v6: bool) -> (IpAddr, IpAddr) {
    if v6 {
        ("fd77::2".parse().unwrap(), "fd77::1".parse().unwrap())
    } else {
        ("10.77.0.2".parse().unwrap(), "10.77.0.1".parse().unwrap())
    }
}

fn octets(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

impl Datagram {
    /// The transport header and payload, checksummed.
    fn transport(&self) -> Vec<u8> {
        let (src, dst) = addrs(self.v6);
        let mut l4 = Vec::new();
        if self.proto == 6 {
            let mut opts = Vec::new();
            for (k, d) in &self.options {
                opts.push(*k);
                opts.push(2 + d.len() as u8);
                opts.extend(d);
            }
            while opts.len() % 4 != 0 {
                opts.push(1);
            }
            let doff = (20 + opts.len()) / 4;
            l4.extend(self.sport.to_be_bytes());
            l4.extend(self.dport.to_be_bytes());
            l4.extend(1u32.to_be_bytes());
            l4.extend(0u32.to_be_bytes());
            l4.push((doff as u8) << 4);
            l4.push(0x02); // SYN
            l4.extend(64240u16.to_be_bytes());
            l4.extend([0, 0, 0, 0]);
            l4.extend(opts);
        } else {
            l4.extend(self.sport.to_be_bytes());
            l4.extend(self.dport.to_be_bytes());
            l4.extend(((8 + self.payload) as u16).to_be_bytes());
            l4.extend([0, 0]);
        }
        l4.extend(std::iter::repeat_n(0x61, self.payload));
        let mut pseudo = octets(src);
        pseudo.extend(octets(dst));
        if self.v6 {
            pseudo.extend((l4.len() as u32).to_be_bytes());
            pseudo.extend([0, 0, 0, self.proto]);
        } else {
            pseudo.extend([0, self.proto]);
            pseudo.extend((l4.len() as u16).to_be_bytes());
        }
        pseudo.extend(&l4);
        let mut c = csum(&pseudo);
        if self.proto == 17 && c == 0 {
            c = 0xffff;
        }
        let at = if self.proto == 6 { 16 } else { 6 };
        l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
        l4
    }

    /// The Ethernet frames to send, one a fragment.
    fn frames(&self) -> Vec<Vec<u8>> {
        let l4 = self.transport();
        // Fragment boundaries: multiples of 8, the first holding the
        // whole transport header.
        let mut cuts = vec![0usize];
        if self.pieces > 1 {
            let head = l4.len() - self.payload;
            let first = head.div_ceil(8) * 8;
            let rest = l4.len() - first;
            let step = (rest / (self.pieces - 1)).div_ceil(8).max(1) * 8;
            let mut at = first;
            while cuts.len() < self.pieces && at < l4.len() {
                cuts.push(at);
                at += step;
            }
            assert_eq!(cuts.len(), self.pieces, "payload too short to cut");
        }
        cuts.push(l4.len());
        let (src, dst) = addrs(self.v6);
        let mut out = Vec::new();
        for w in cuts.windows(2) {
            let (off, end) = (w[0], w[1]);
            let more = end < l4.len();
            let part = &l4[off..end];
            let mut frame = hex(HOST_MAC);
            frame.extend(hex(PEER_MAC));
            if self.v6 {
                frame.extend([0x86, 0xdd]);
                let mut ext = Vec::new();
                let mut kinds = self.ext.clone();
                if self.pieces > 1 {
                    kinds.push(44);
                }
                for (i, k) in kinds.iter().enumerate() {
                    let next = kinds.get(i + 1).copied().unwrap_or(self.proto);
                    match *k {
                        44 => {
                            ext.extend([next, 0]);
                            ext.extend((((off / 8) as u16) << 3 | u16::from(more)).to_be_bytes());
                            ext.extend(self.id.to_be_bytes());
                        }
                        // Type 0 with no segments left: skipped by the stack.
                        43 => ext.extend([next, 0, 0, 0, 0, 0, 0, 0]),
                        // Hop-by-hop or destination options: one PadN.
                        _ => ext.extend([next, 0, 1, 4, 0, 0, 0, 0]),
                    }
                }
                let first = kinds.first().copied().unwrap_or(self.proto);
                let plen = (ext.len() + part.len()) as u16;
                let vtf = (6u32 << 28) | (u32::from(self.tos) << 20);
                frame.extend(vtf.to_be_bytes());
                frame.extend(plen.to_be_bytes());
                frame.extend([first, 64]);
                frame.extend(octets(src));
                frame.extend(octets(dst));
                frame.extend(ext);
            } else {
                frame.extend([0x08, 0x00]);
                let mut ip = vec![0x45, self.tos];
                ip.extend(((20 + part.len()) as u16).to_be_bytes());
                ip.extend((self.id as u16).to_be_bytes());
                let flags = ((off / 8) as u16) | if more { 0x2000 } else { 0 };
                ip.extend(flags.to_be_bytes());
                ip.extend([64, self.proto, 0, 0]);
                ip.extend(octets(src));
                ip.extend(octets(dst));
                let c = csum(&ip);
                ip[10..12].copy_from_slice(&c.to_be_bytes());
                frame.extend(ip);
            }
            frame.extend(part);
            out.push(frame);
        }
        out
    }

    /// The packets as the tracer is told about them, one a fragment.
    fn packets(&self) -> Vec<Packet> {
        let (src, dst) = addrs(self.v6);
        let frames = self.frames();
        (0..self.pieces)
            .map(|i| {
                let mut p = Packet::new(self.proto, src, dst);
                p.length = (frames[i].len() - 14) as u16;
                p.sport = self.sport;
                p.dport = self.dport;
                p.tos = self.tos;
                p.in_iface = Some("eth0".into());
                p.ipv6_headers = self.ext.clone();
                if self.proto == 6 {
                    p.tcp_options = self.options.iter().map(|(k, _)| *k).collect();
                    p.mss = self
                        .options
                        .iter()
                        .find(|(k, _)| *k == 2)
                        .map(|(_, d)| u16::from_be_bytes([d[0], d[1]]));
                }
                if self.pieces > 1 {
                    let kind = match i {
                        0 => FragmentKind::First,
                        i if i + 1 == self.pieces => FragmentKind::Last,
                        _ => FragmentKind::More,
                    };
                    set_fragment(&mut p, kind);
                }
                p
            })
            .collect()
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The datagrams sent to each ruleset of a family.
fn datagrams(v6: bool) -> Vec<Datagram> {
    let base = Datagram {
        v6,
        proto: 6,
        sport: 40000,
        dport: 80,
        tos: 0,
        options: vec![],
        ext: vec![],
        payload: 0,
        pieces: 1,
        id: 150,
    };
    let mut list = vec![
        Datagram {
            tos: 0x10,
            options: vec![mss(1460), (4, vec![]), (3, vec![7])],
            ..base.clone()
        },
        Datagram {
            dport: 443,
            tos: 0x28,
            options: vec![mss(1380), (8, vec![0; 8])],
            ..base.clone()
        },
        Datagram {
            dport: 22,
            tos: 0xb9,
            ..base.clone()
        },
        Datagram {
            options: vec![mss(1200)],
            tos: 0x01,
            ..base.clone()
        },
        Datagram {
            proto: 17,
            dport: 53,
            tos: 0x01,
            ..base.clone()
        },
        Datagram {
            tos: 0x10,
            options: vec![mss(1460), (4, vec![])],
            payload: 40,
            pieces: 2,
            id: 120,
            ..base.clone()
        },
        Datagram {
            proto: 17,
            dport: 53,
            tos: 0x28,
            payload: 48,
            pieces: 3,
            id: 300,
            ..base.clone()
        },
    ];
    if v6 {
        list.extend([
            Datagram {
                ext: vec![0, 60],
                options: vec![mss(1440)],
                ..base.clone()
            },
            Datagram {
                ext: vec![43],
                proto: 17,
                dport: 53,
                ..base.clone()
            },
            Datagram {
                ext: vec![0],
                payload: 32,
                pieces: 2,
                id: 7,
                ..base.clone()
            },
        ]);
    }
    for (i, d) in list.iter_mut().enumerate() {
        d.sport = 40000 + i as u16;
    }
    list
}

/// Packet counters of every rule and built-in policy.
fn counters(save: &str) -> BTreeMap<Key, u64> {
    let rs = parse_str(save, &ParseOptions::lenient("iptables-save -c"))
        .expect("iptables-save -c parses")
        .ruleset;
    let mut m = BTreeMap::new();
    for t in &rs.tables {
        for c in &t.chains {
            if let Some(k) = c.counters.filter(|_| c.builtin) {
                m.insert((t.name.to_string(), c.name.to_string(), POLICY), k.packets);
            }
            for (i, r) in c.rules.iter().enumerate() {
                let n = r.counters.map(|k| k.packets).unwrap_or(0);
                m.insert((t.name.to_string(), c.name.to_string(), i), n);
            }
        }
    }
    m
}

fn sh(ns: &str, script: &str) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "sh", "-c", script])
        .output()
        .expect("ip netns exec runs");
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes frames given as hex lines on `p0` of its namespace.
const SENDER: &str = "import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(('p0', 0))
for line in sys.stdin:
    s.send(bytes.fromhex(line.strip()))
    print('ok', flush=True)
";

struct Sender {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Sender {
    fn send(&mut self, frame: &[u8]) {
        let line: String = frame.iter().map(|b| format!("{b:02x}")).collect();
        writeln!(self.stdin, "{line}").unwrap();
        let mut answer = String::new();
        self.stdout.read_line(&mut answer).unwrap();
        assert_eq!(answer.trim(), "ok", "sender failed");
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The two namespaces of one case; deleted on drop (the sender first).
struct Lab {
    sender: Option<Sender>,
    host: common::Netns,
    _peer: common::Netns,
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.sender = None;
    }
}

fn lab(tag: &str, v6: bool, rules: &str) -> Lab {
    let host = common::Netns::new(&format!("f{tag}h"));
    let peer = common::Netns::new(&format!("f{tag}p"));
    let out = Command::new("ip")
        .args([
            "link", "add", "name", "eth0", "netns", &host.0, "type", "veth", "peer", "name", "p0",
            "netns", &peer.0,
        ])
        .status()
        .unwrap();
    assert!(out.success(), "veth pair");
    sh(
        &host.0,
        &format!(
            "sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.default.accept_ra=0 \
             net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
             ip link set lo up
             ip link set eth0 address {} up
             ip addr add 10.77.0.1/24 dev eth0
             ip -6 addr add fd77::1/64 dev eth0 nodad",
            mac(HOST_MAC)
        ),
    );
    sh(
        &peer.0,
        &format!(
            "sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
             ip link set p0 address {} up",
            mac(PEER_MAC)
        ),
    );
    let restore = if v6 {
        "ip6tables-restore"
    } else {
        "iptables-restore"
    };
    let (ok, _, err) = host.run(restore, &[], rules.as_bytes());
    assert!(ok, "{restore}: {err}");
    let mut child = Command::new("ip")
        .args(["netns", "exec", &peer.0, "python3", "-u", "-c", SENDER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let stdin = child.stdin.take().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    // Let the links settle (IPv6 listener reports go out of the host,
    // which is OUTPUT and not compared).
    std::thread::sleep(std::time::Duration::from_millis(200));
    Lab {
        sender: Some(Sender {
            child,
            stdin,
            stdout,
        }),
        host,
        _peer: peer,
    }
}

fn mac(h: &str) -> String {
    hex(h)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Keys of PREROUTING and INPUT, the hooks these packets meet.
fn compared(k: &Key) -> bool {
    k.1 == "PREROUTING" || k.1 == "INPUT"
}

/// Sends every datagram through one ruleset and compares; returns the
/// number of packets (fragments counted one by one), the rules the kernel
/// matched at least once and how many rules there are, and the
/// disagreements.
fn run_case(tag: &str, v6: bool, rules: &str) -> (usize, usize, usize, Vec<String>) {
    let rs: Ruleset = parse_str(rules, &ParseOptions::strict(tag))
        .expect("our ruleset parses")
        .ruleset;
    let mut lab = lab(tag, v6, rules);
    let save = if v6 {
        "ip6tables-save -c"
    } else {
        "iptables-save -c"
    };
    let snapshot = |lab: &Lab| counters(&sh(&lab.host.0, save));
    let mut before = snapshot(&lab);
    for (t, c, i) in before.keys() {
        let ours = rs.table(t).and_then(|tb| tb.chain(c));
        assert!(
            ours.is_some_and(|ch| *i == POLICY || *i < ch.rules.len()),
            "{tag}: the kernel has {t} {c} #{i}, which our parse lacks"
        );
    }
    let tracer = Tracer::new(&rs);
    let (_, dst) = addrs(v6);
    let fragid = rs
        .table("mangle")
        .and_then(|t| t.chain("PREROUTING"))
        .and_then(|c| {
            c.rules
                .iter()
                .position(|r| r.matches().any(|m| m.opt("--fragid").is_some()))
        });
    let mut packets = 0;
    let mut wrong = Vec::new();
    let mut hit = std::collections::BTreeSet::new();
    for d in datagrams(v6) {
        for f in d.frames() {
            lab.sender.as_mut().unwrap().send(&f);
        }
        std::thread::sleep(std::time::Duration::from_millis(30));
        let after = snapshot(&lab);
        let kernel: BTreeMap<Key, u64> = after
            .iter()
            .filter(|(k, _)| compared(k))
            .filter_map(|(k, v)| {
                let moved = v - before.get(k).copied().unwrap_or(0);
                (moved > 0).then(|| (k.clone(), moved))
            })
            .collect();
        before = after;
        hit.extend(kernel.keys().filter(|k| k.2 != POLICY).cloned());
        let mut opts = TraceOptions {
            local: vec![dst],
            ..Default::default()
        };
        // The fragment id is not something a trace packet carries: the
        // test settles that rule with --assume's option, as a user would.
        if let Some(i) = fragid {
            opts.overrides.insert(
                RuleRef {
                    table: "mangle".into(),
                    chain: "PREROUTING".into(),
                    rule: i,
                },
                (100..200).contains(&d.id),
            );
        }
        let mut ours: BTreeMap<Key, u64> = BTreeMap::new();
        let mut shown = Vec::new();
        for p in d.packets() {
            packets += 1;
            let tr = tracer.trace(&p, &opts);
            shown.push(p.to_string());
            for s in tr.steps.iter().filter(|s| s.matched) {
                if matches!(s.action, Action::FallOff) {
                    continue;
                }
                let t = &rs.tables[s.table];
                let key = (
                    t.name.to_string(),
                    t.chains[s.chain].name.to_string(),
                    s.rule.unwrap_or(POLICY),
                );
                if compared(&key) {
                    *ours.entry(key).or_default() += 1;
                }
            }
        }
        if ours != kernel {
            let show = |m: &BTreeMap<Key, u64>, other: &BTreeMap<Key, u64>| {
                m.iter()
                    .filter(|(k, n)| other.get(*k) != Some(*n))
                    .map(|((t, c, i), n)| {
                        let r = if *i == POLICY {
                            "policy".to_string()
                        } else {
                            format!("#{}", i + 1)
                        };
                        format!("{t}:{c}{r} x{n}")
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            wrong.push(format!(
                "{tag}: {}\n    only kernel: {}\n    only trace:  {}",
                shown.join(" + "),
                show(&kernel, &ours),
                show(&ours, &kernel)
            ));
        }
    }
    let rules = before
        .keys()
        .filter(|k| compared(k) && k.2 != POLICY)
        .count();
    (packets, hit.len(), rules, wrong)
}

fn with_conntrack(rules: &str) -> String {
    let head = "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n";
    assert!(rules.contains(head));
    rules.replace(head, &format!("{head}{CONNTRACK_RULE}"))
}

#[test]
fn packet_details_agree_with_the_kernel() {
    if !common::kernel_tests_can_run(&[
        "ip",
        "iptables-restore",
        "iptables-save",
        "ip6tables-restore",
        "ip6tables-save",
        "python3",
    ]) {
        return;
    }
    let v4_ct = with_conntrack(V4_RULES);
    let v6_ct = with_conntrack(V6_RULES);
    let cases: [(&str, bool, &str); 4] = [
        ("v4", false, V4_RULES),
        ("v4ct", false, &v4_ct),
        ("v6", true, V6_RULES),
        ("v6ct", true, &v6_ct),
    ];
    let mut total = 0;
    let mut wrong = Vec::new();
    for (tag, v6, rules) in cases {
        let (n, hit, rules, w) = run_case(tag, v6, rules);
        println!(
            "{tag}: {n} packets ({} datagrams), {hit} of {rules} rules matched by some packet, {} disagreements",
            datagrams(v6).len(),
            w.len()
        );
        total += n;
        wrong.extend(w);
    }
    println!(
        "kernel_fields: {total} packets through 4 rulesets (IPv4, IPv6, each without and with conntrack)"
    );
    assert!(
        wrong.is_empty(),
        "{} datagrams disagree:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
