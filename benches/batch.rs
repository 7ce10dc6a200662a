//! Many packets through the rules (`iptviz trace --packets/--pcap`), one core.
//!
//! 1. `samples/docker-host.rules`: TCP flows (SYN, SYN-ACK, ACK, data) to a
//!    published container port, to sshd, out of a container, and from a
//!    blocked range; goal 200,000 packets/s. Measured on packets already
//!    decoded, and from a pcapng capture in memory (decoding included).
//! 2. The kube-proxy dump grown to 10,000 services (see `common/input.rs`):
//!    handshakes from pods to random services; goal 20,000 packets/s.
//! 3. Memory while streaming a big capture: with `IPTVIZ_BENCH_PCAP_MB=N`
//!    (e.g. 1024) a capture of N MB is written to a temporary file and
//!    replayed by the `iptviz` binary, whose peak resident memory (VmHWM)
//!    is printed beside that of a capture a quarter the size (both
//!    past the flow table's bound, so the two should be alike).

use std::borrow::Cow;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use etherparse::PacketBuilder;
use iptviz::parse::{ParseOptions, parse_str};
use iptviz::trace::pcap::CaptureReader;
use iptviz::trace::{Batch, Observed, Packet, TraceOptions, Tracer, tcp_flags};
use pcap_file::DataLink;
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};

#[path = "common/input.rs"]
mod input;

/// A small deterministic random number generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn tcp(src: IpAddr, sport: u16, dst: IpAddr, dport: u16, flags: u8, iface: &str) -> Observed {
    let mut p = Packet::new(6, src, dst);
    p.sport = sport;
    p.dport = dport;
    p.tcp_flags = flags;
    p.in_iface = Some(iface.into());
    Observed::new(p)
}

/// One flow: SYN, SYN-ACK back, ACK, then `data` packets each way.
fn flow(out: &mut Vec<Observed>, c: (IpAddr, u16, &str), s: (IpAddr, u16, &str), data: usize) {
    use tcp_flags::*;
    out.push(tcp(c.0, c.1, s.0, s.1, SYN, c.2));
    out.push(tcp(s.0, s.1, c.0, c.1, SYN | ACK, s.2));
    out.push(tcp(c.0, c.1, s.0, s.1, ACK, c.2));
    for _ in 0..data {
        out.push(tcp(c.0, c.1, s.0, s.1, ACK | PSH, c.2));
        out.push(tcp(s.0, s.1, c.0, c.1, ACK, s.2));
    }
}

/// Traffic of a Docker host: the host is 192.0.2.10 on eth0, 172.17.0.1
/// on docker0; a container at 172.17.0.2 publishes port 80 as 8080.
fn docker_traffic(flows: usize, rng: &mut Rng) -> Vec<Observed> {
    let host = v4(192, 0, 2, 10);
    let web = v4(172, 17, 0, 2);
    let mut out = Vec::with_capacity(flows * 8);
    for i in 0..flows {
        let client = v4(198, 51, 100, (rng.below(200) + 1) as u8);
        let sport = 20000 + (i % 40000) as u16;
        match rng.below(4) {
            // To the published port: DNAT to the container; replies come
            // back from it (on docker0) and are recognised as replies.
            0 => {
                let n = out.len();
                flow(
                    &mut out,
                    (client, sport, "eth0"),
                    (host, 8080, "docker0"),
                    2,
                );
                for o in &mut out[n..] {
                    if o.packet.src == host {
                        o.packet.src = web;
                        o.packet.sport = 80;
                    }
                }
            }
            1 => flow(&mut out, (client, sport, "eth0"), (host, 22, "eth0"), 2),
            2 => flow(
                &mut out,
                (web, sport, "docker0"),
                (v4(93, 184, 216, 34), 443, "eth0"),
                2,
            ),
            _ => {
                // A blocked partner: dropped, retried.
                let c = v4(203, 0, 113, (rng.below(200) + 1) as u8);
                for _ in 0..3 {
                    out.push(tcp(c, sport, web, 80, tcp_flags::SYN, "eth0"));
                }
            }
        }
    }
    out
}

fn docker_opts() -> TraceOptions {
    let mut iface_addrs = std::collections::HashMap::new();
    iface_addrs.insert("eth0".to_string(), vec![v4(192, 0, 2, 10)]);
    iface_addrs.insert("docker0".to_string(), vec![v4(172, 17, 0, 1)]);
    TraceOptions {
        local: vec![v4(192, 0, 2, 10), v4(172, 17, 0, 1)],
        iface_addrs,
        ..Default::default()
    }
}

/// Replays `packets` `rounds` times; packets per second.
fn rate(tracer: &Tracer<'_>, opts: &TraceOptions, packets: &[Observed], rounds: usize) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..rounds {
        let mut batch = Batch::new(tracer, opts.clone());
        let t = Instant::now();
        for p in packets {
            std::hint::black_box(batch.push(p.clone()));
        }
        best = best.min(t.elapsed().as_secs_f64());
        std::hint::black_box(batch.summary().packets);
    }
    packets.len() as f64 / best
}

/// The packets as a pcapng capture with an interface per name.
fn pcapng(packets: &[Observed]) -> Vec<u8> {
    let names = ["eth0", "docker0", "cali123"];
    let mut w = PcapNgWriter::new(Vec::new()).expect("pcapng header");
    for n in names {
        w.write_pcapng_block(InterfaceDescriptionBlock {
            linktype: DataLink::ETHERNET,
            snaplen: 0,
            options: vec![InterfaceDescriptionOption::IfName(Cow::Borrowed(n))],
        })
        .expect("interface block");
    }
    let mut frame = Vec::with_capacity(128);
    for (i, o) in packets.iter().enumerate() {
        let p = &o.packet;
        let (IpAddr::V4(s), IpAddr::V4(d)) = (p.src, p.dst) else {
            continue;
        };
        frame.clear();
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(s.octets(), d.octets(), 64)
            .tcp(p.sport, p.dport, 1000 + i as u32, 64240);
        let b = if p.tcp_flags & tcp_flags::SYN != 0 {
            b.syn()
        } else {
            b
        };
        let b = if p.tcp_flags & tcp_flags::ACK != 0 {
            b.ack(1)
        } else {
            b
        };
        b.write(&mut frame, &[]).expect("frame");
        let iface = names
            .iter()
            .position(|n| p.in_iface.as_deref() == Some(*n))
            .unwrap_or(0);
        w.write_pcapng_block(EnhancedPacketBlock {
            interface_id: iface as u32,
            timestamp: Duration::from_micros(i as u64),
            original_len: frame.len() as u32,
            data: Cow::Borrowed(&frame),
            options: vec![],
        })
        .expect("packet block");
    }
    w.into_inner()
}

fn docker() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/docker-host.rules");
    let text = std::fs::read_to_string(path).expect("samples/docker-host.rules");
    let rs = parse_str(&text, &ParseOptions::lenient("docker-host.rules"))
        .expect("sample parses")
        .ruleset;
    let tracer = Tracer::new(&rs);
    let opts = docker_opts();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let packets = docker_traffic(60_000, &mut rng);
    let r = rate(&tracer, &opts, &packets, 3);
    println!(
        "docker-host.rules  decoded packets  {:>9} packets  {:>10.0} packets/s  (goal 200,000)",
        packets.len(),
        r
    );
    let cap = pcapng(&packets);
    let mut best = f64::MAX;
    let mut traced = 0;
    for _ in 0..3 {
        let t = Instant::now();
        let mut rd = CaptureReader::new(&cap[..]).expect("capture");
        let mut batch = Batch::new(&tracer, opts.clone());
        while let Some(p) = rd.next() {
            batch.push(p.expect("packet decodes"));
        }
        best = best.min(t.elapsed().as_secs_f64());
        traced = batch.summary().packets;
    }
    println!(
        "docker-host.rules  pcapng in memory {:>9} packets  {:>10.0} packets/s  ({:.1} MB capture, decoding included)",
        traced,
        traced as f64 / best,
        cap.len() as f64 / 1e6
    );
}

fn kube() {
    let (bytes, name) = input::kube_dump();
    let text = String::from_utf8_lossy(&bytes);
    let rs = parse_str(&text, &ParseOptions::lenient(&name))
        .expect("bench input parses")
        .ruleset;
    let services: Vec<(IpAddr, u16)> = rs
        .table("nat")
        .and_then(|t| t.chain("KUBE-SERVICES"))
        .map(|c| {
            c.rules
                .iter()
                .filter_map(|r| {
                    let d = r.destination()?.value;
                    let d: IpAddr = d.split('/').next()?.parse().ok()?;
                    let port = r
                        .matches()
                        .find_map(|m| m.opt("--dport"))
                        .and_then(|o| o.arg().parse().ok())?;
                    Some((d, port))
                })
                .collect()
        })
        .unwrap_or_default();
    assert!(!services.is_empty(), "a kube-proxy dump has services");
    let tracer = Tracer::new(&rs);
    let opts = TraceOptions {
        local: vec![v4(192, 168, 1, 10)],
        ..Default::default()
    };
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut packets = Vec::new();
    for i in 0..20_000 {
        let (dst, dport) = services[rng.below(services.len() as u64) as usize];
        let pod = v4(
            10,
            244,
            (rng.below(200) + 1) as u8,
            (rng.below(250) + 1) as u8,
        );
        let sport = 30000 + (i % 30000) as u16;
        let n = packets.len();
        flow(
            &mut packets,
            (pod, sport, "cali123"),
            (dst, dport, "eth0"),
            1,
        );
        for o in &mut packets[n..] {
            o.packet.out_iface = Some("eth0".into());
        }
    }
    // Every chain the traffic needs compiled once, as a long capture would.
    let warm = rate(&tracer, &opts, &packets, 1);
    let r = rate(&tracer, &opts, &packets, 2);
    println!(
        "kube-scale 10,000 services ({} rules)  {:>7} packets  {:>9.0} packets/s  (goal 20,000; first pass, compiling chains: {:.0}/s)",
        rs.rule_count(),
        packets.len(),
        r,
        warm
    );
}

/// Peak resident memory of `iptviz trace --pcap` over a capture of `mb` MB.
fn stream(mb: u64) {
    let dir = std::env::temp_dir();
    let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/docker-host.rules");
    for size in [mb / 4, mb] {
        let path = dir.join(format!("iptviz-bench-{size}mb.pcapng"));
        {
            let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("temp file"));
            let mut rng = Rng(7);
            let mut written = 0u64;
            let mut first = true;
            while written < size << 20 {
                let chunk = pcapng(&docker_traffic(20_000, &mut rng));
                // Later chunks: leave out their section header and interfaces.
                let skip = if first { 0 } else { header_len(&chunk) };
                first = false;
                f.write_all(&chunk[skip..]).expect("write");
                written += (chunk.len() - skip) as u64;
            }
        }
        let t = Instant::now();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_iptviz"))
            .args(["trace", rules, "--local", "192.0.2.10,172.17.0.1", "--pcap"])
            .arg(&path)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("iptviz runs");
        let status = format!("/proc/{}/status", child.id());
        let mut hwm = 0u64;
        loop {
            if let Ok(s) = std::fs::read_to_string(&status)
                && let Some(l) = s.lines().find(|l| l.starts_with("VmHWM:"))
            {
                hwm = hwm.max(
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0),
                );
            }
            if child.try_wait().expect("wait").is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        println!(
            "stream {:>6.0} MB capture: {:>6.1} s, VmHWM {:>7} kB",
            bytes as f64 / (1 << 20) as f64,
            t.elapsed().as_secs_f64(),
            hwm
        );
        let _ = std::fs::remove_file(&path);
    }
}

/// Length of the section header and interface blocks at the start of a
/// pcapng file written by [`pcapng`].
fn header_len(cap: &[u8]) -> usize {
    let mut at = 0;
    loop {
        let ty = u32::from_le_bytes(cap[at..at + 4].try_into().expect("4 bytes"));
        if ty == 6 {
            return at;
        }
        at += u32::from_le_bytes(cap[at + 4..at + 8].try_into().expect("4 bytes")) as usize;
    }
}

fn main() {
    docker();
    kube();
    if let Some(mb) = std::env::var("IPTVIZ_BENCH_PCAP_MB")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        stream(mb);
    }
}
