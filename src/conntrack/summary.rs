//! Counts over a set of entries: by protocol and state, top talkers.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::Serialize;

use super::{Entry, Flags, State, has_ports, proto_name};

/// Table fill level: live from procfs, or a saved table against `--max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fill {
    /// `net.netfilter.nf_conntrack_count`
    pub count: u64,
    /// `net.netfilter.nf_conntrack_max`
    pub max: u64,
    /// `net.netfilter.nf_conntrack_buckets` (hash table size), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buckets: Option<u64>,
}

impl Fill {
    /// Average entries per hash bucket (the kernel walks a bucket's chain
    /// on every lookup).
    pub fn per_bucket(&self) -> Option<f64> {
        self.buckets
            .filter(|&b| b > 0)
            .map(|b| (self.count as f64 / b as f64 * 100.0).round() / 100.0)
    }

    /// Fill in percent.
    pub fn percent(&self) -> f64 {
        if self.max == 0 {
            0.0
        } else {
            self.count as f64 * 100.0 / self.max as f64
        }
    }
}

/// A counted key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Count<K> {
    /// What was counted.
    pub key: K,
    /// How often.
    pub count: u64,
}

/// A destination port with its protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ProtoPort {
    /// Protocol name.
    pub proto: &'static str,
    /// Port.
    pub port: u16,
}

/// Everything the summary view shows.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Entries counted.
    pub total: u64,
    /// Per protocol name, most first.
    pub by_proto: Vec<Count<&'static str>>,
    /// Per protocol and state (`tcp ESTABLISHED`), most first.
    pub by_state: Vec<Count<String>>,
    /// Entries with `[UNREPLIED]`.
    pub unreplied: u64,
    /// Entries with `[ASSURED]`.
    pub assured: u64,
    /// Entries whose reply tuple shows NAT.
    pub nat: u64,
    /// IPv6 entries.
    pub ipv6: u64,
    /// UDP entries to port 53: short-lived DNS flows that fill a table fast.
    pub dns_udp: u64,
    /// `[DESTROY]` events (connections that ended), when reading `conntrack -E`.
    pub destroyed: u64,
    /// Original destinations, most first.
    pub top_destinations: Vec<Count<IpAddr>>,
    /// Original destination ports (port protocols only), most first.
    pub top_ports: Vec<Count<ProtoPort>>,
    /// Original sources, most first.
    pub top_sources: Vec<Count<IpAddr>>,
    /// Table fill, when read live.
    pub fill: Option<Fill>,
}

fn top<K: Ord + Clone>(map: HashMap<K, u64>, n: usize) -> Vec<Count<K>> {
    let mut v: Vec<Count<K>> = map
        .into_iter()
        .map(|(key, count)| Count { key, count })
        .collect();
    // Most first, then by key, so the output is the same on every run.
    let by = |a: &Count<K>, b: &Count<K>| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key));
    if v.len() > n {
        v.select_nth_unstable_by(n, by);
        v.truncate(n);
    }
    v.sort_by(by);
    v
}

/// Summarises entries, keeping the `top` most frequent of each list.
pub fn summarize<'a>(entries: impl IntoIterator<Item = &'a Entry>, top_n: usize) -> Summary {
    let mut protos = [0u64; 256];
    let mut states: HashMap<(u8, State), u64> = HashMap::new();
    let mut dsts: HashMap<IpAddr, u64> = HashMap::new();
    let mut srcs: HashMap<IpAddr, u64> = HashMap::new();
    let mut ports: HashMap<(u8, u16), u64> = HashMap::new();
    let (mut total, mut unreplied, mut assured, mut nat, mut ipv6) = (0, 0, 0, 0, 0);
    let mut destroyed = 0;
    let mut dns_udp = 0;
    for e in entries {
        total += 1;
        protos[e.proto as usize] += 1;
        if !e.state.is_none() {
            *states.entry((e.proto, e.state)).or_default() += 1;
        }
        unreplied += e.has(Flags::UNREPLIED) as u64;
        assured += e.has(Flags::ASSURED) as u64;
        destroyed += e.has(Flags::DESTROYED) as u64;
        let n = e.nat();
        nat += (n.dnat || n.snat) as u64;
        ipv6 += matches!(e.orig.src, IpAddr::V6(_)) as u64;
        *dsts.entry(e.orig.dst).or_default() += 1;
        *srcs.entry(e.orig.src).or_default() += 1;
        dns_udp += (e.proto == 17 && e.orig.dport == 53) as u64;
        if has_ports(e.proto) {
            *ports.entry((e.proto, e.orig.dport)).or_default() += 1;
        }
    }
    let mut by_proto_map: HashMap<&'static str, u64> = HashMap::new();
    for (p, &c) in protos.iter().enumerate() {
        if c > 0 {
            *by_proto_map.entry(proto_name(p as u8)).or_default() += c;
        }
    }
    let by_state = top(
        states
            .into_iter()
            .map(|((p, s), c)| (format!("{} {}", proto_name(p), s.name()), c))
            .collect(),
        usize::MAX,
    );
    Summary {
        total,
        by_proto: top(by_proto_map, usize::MAX),
        by_state,
        unreplied,
        assured,
        nat,
        ipv6,
        destroyed,
        dns_udp,
        top_destinations: top(dsts, top_n),
        top_ports: top(
            ports
                .into_iter()
                .map(|((p, port), c)| {
                    (
                        ProtoPort {
                            proto: proto_name(p),
                            port,
                        },
                        c,
                    )
                })
                .collect(),
            top_n,
        ),
        top_sources: top(srcs, top_n),
        fill: None,
    }
}
