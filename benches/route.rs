//! The routing step of `iptviz trace --routes` on a large route list: an
//! `ip route show table all` with `IPTVIZ_BENCH_ROUTES` (default 100,000)
//! IPv4 prefixes of lengths 16 to 24 through two gateways (the size of a
//! partial BGP feed), plus the local table of a two-interface host.
//! Prints the parse time and the time per routing decision (a packet
//! arriving on eth0 for a prefix, rp_filter strict so the source is
//! looked up too) and per packet sent by the host.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use iptviz::analysis::routes::RouteTable;
use iptviz::trace::{Packet, Routing};

/// A small deterministic generator (xorshift), so every run sees the same list.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn main() {
    let n: usize = std::env::var("IPTVIZ_BENCH_ROUTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut text = String::from(
        "default via 10.1.0.254 dev eth0 proto static metric 100\n\
         10.1.0.0/24 dev eth0 proto kernel scope link src 10.1.0.1\n\
         10.2.0.0/24 dev eth1 proto kernel scope link src 10.2.0.1\n",
    );
    let mut dsts = Vec::with_capacity(n);
    for i in 0..n {
        let len = 16 + (rng.next() % 9) as u32;
        let a = (rng.next() as u32) & (u32::MAX << (32 - len));
        let a = Ipv4Addr::from(a | 0x0100_0000);
        let (via, dev) = if i % 2 == 0 {
            ("10.1.0.2", "eth0")
        } else {
            ("10.2.0.2", "eth1")
        };
        let _ = writeln!(text, "{a}/{len} via {via} dev {dev} proto bgp metric 20");
        dsts.push(IpAddr::V4(Ipv4Addr::from(u32::from(a) | 1)));
    }
    text.push_str(
        "local 10.1.0.1 dev eth0 table local proto kernel scope host src 10.1.0.1\n\
         local 10.2.0.1 dev eth1 table local proto kernel scope host src 10.2.0.1\n\
         local 127.0.0.0/8 dev lo table local proto kernel scope host src 127.0.0.1\n",
    );
    let t0 = Instant::now();
    let table = RouteTable::parse("bench", &text, false).expect("the list parses");
    println!(
        "parse      {:>10.2?}  ({} routes, {} bytes)",
        t0.elapsed(),
        table.routes.len(),
        text.len()
    );
    let mut routing = Routing {
        table: Some(table),
        ..Default::default()
    };
    routing
        .sysctls
        .set("net.ipv4.conf.all.rp_filter=1")
        .expect("a known key");
    let rounds = 20_000usize;
    let t1 = Instant::now();
    let mut forwarded = 0usize;
    for i in 0..rounds {
        let mut p = Packet::new(17, dsts[(i * 7) % dsts.len()], dsts[i % dsts.len()]);
        p.in_iface = Some("eth0".into());
        if routing.input(&p, &[]).dev.is_some() {
            forwarded += 1;
        }
    }
    let per = t1.elapsed() / rounds as u32;
    println!("input      {per:>10.2?} a packet  ({forwarded} of {rounds} forwarded)");
    let t2 = Instant::now();
    for i in 0..rounds {
        let p = Packet::new(17, "10.1.0.1".parse().expect("addr"), dsts[i % dsts.len()]);
        std::hint::black_box(routing.output(&p, &[]));
    }
    println!(
        "output     {:>10.2?} a packet",
        t2.elapsed() / rounds as u32
    );
}
