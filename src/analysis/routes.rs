//! `ip route show` / `ip -6 route show` output (also `table all`) read
//! into route entries that keep their type, table, device, gateway and
//! metric: `iptviz reach --routes` flattens them into interface maps,
//! `iptviz trace --routes` looks packets up in them as the kernel would.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::OnceLock;

use ipnet::IpNet;
use serde::Serialize;

use super::ifaces::IfaceError;

/// The type of a route (`ip route` prints it first; unicast is not printed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteKind {
    /// A gateway or a directly connected network.
    Unicast,
    /// An address of this host.
    Local,
    /// A broadcast address of a directly connected network.
    Broadcast,
    /// Multicast (the local table's `ff00::/8` lines).
    Multicast,
    /// An anycast address of this host (IPv6).
    Anycast,
    /// No route here: ICMP unreachable.
    Unreachable,
    /// Dropped silently.
    Blackhole,
    /// ICMP administratively prohibited.
    Prohibit,
    /// Ends the lookup in this table (policy routing; taken as no route).
    Throw,
    /// Old stateless NAT.
    Nat,
}

impl RouteKind {
    fn from_word(w: &str) -> Option<RouteKind> {
        Some(match w {
            "unicast" => RouteKind::Unicast,
            "local" => RouteKind::Local,
            "broadcast" => RouteKind::Broadcast,
            "multicast" => RouteKind::Multicast,
            "anycast" => RouteKind::Anycast,
            "unreachable" => RouteKind::Unreachable,
            "blackhole" => RouteKind::Blackhole,
            "prohibit" => RouteKind::Prohibit,
            "throw" => RouteKind::Throw,
            "nat" => RouteKind::Nat,
            _ => return None,
        })
    }

    /// The word `ip route` prints for it.
    pub fn name(self) -> &'static str {
        match self {
            RouteKind::Unicast => "unicast",
            RouteKind::Local => "local",
            RouteKind::Broadcast => "broadcast",
            RouteKind::Multicast => "multicast",
            RouteKind::Anycast => "anycast",
            RouteKind::Unreachable => "unreachable",
            RouteKind::Blackhole => "blackhole",
            RouteKind::Prohibit => "prohibit",
            RouteKind::Throw => "throw",
            RouteKind::Nat => "nat",
        }
    }
}

/// One route as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteEntry {
    /// Its type.
    pub kind: RouteKind,
    /// The destination prefix (`default` is the /0 of its family).
    pub dst: IpNet,
    /// `table NAME` (`main` when not written).
    pub table: String,
    /// `dev NAME`, and the devices of `nexthop` lines of a multipath route.
    pub devs: Vec<String>,
    /// `via ADDR` (the first next hop's for a multipath route).
    pub via: Option<IpAddr>,
    /// `src ADDR`: the preferred source address.
    pub src: Option<IpAddr>,
    /// `metric N` (0 when not written).
    pub metric: u32,
    /// 1-based line in the file.
    pub line: usize,
    /// The line as written, trimmed.
    pub text: String,
}

impl RouteEntry {
    /// The first device, if the route has one.
    pub fn dev(&self) -> Option<&str> {
        self.devs.first().map(String::as_str)
    }
}

/// Every route of a file, in file order.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RouteTable {
    /// The routes (lookups index them on first use: changes made after
    /// that are not seen).
    pub routes: Vec<RouteEntry>,
    /// Built on the first lookup: a full BGP table has ~10^6 routes, and a
    /// capture replay looks up every packet.
    #[serde(skip)]
    index: OnceLock<Index>,
}

/// The tables the default policy rules look in, in their order.
const LOOKUP_TABLES: [&str; 3] = ["local", "main", "default"];

/// Routes by (table rank, IPv6, prefix length, network), and per table
/// rank and family the prefix lengths present, longest first.
#[derive(Debug, Clone, Default)]
struct Index {
    by_prefix: HashMap<(u8, bool, u8, u128), Vec<usize>>,
    lengths: [[Vec<u8>; 2]; 3],
    locals: Vec<IpAddr>,
}

fn bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The first `len` bits of `a` (its network at that prefix length).
fn network(a: IpAddr, len: u8) -> u128 {
    let width = if a.is_ipv6() { 128 } else { 32 };
    if len == 0 {
        return 0;
    }
    bits(a) >> (width - len as u32)
}

fn family_default(v6: bool) -> IpNet {
    if v6 {
        IpNet::V6(ipnet::Ipv6Net::default())
    } else {
        IpNet::V4(ipnet::Ipv4Net::default())
    }
}

impl RouteTable {
    /// Reads `ip route show [table all]` or `ip -6 route show [table all]`
    /// output; both families may be in one file. `v6` is the family of
    /// `default` until a route names an address. Continuation lines
    /// (`nexthop via ... dev ...` of a multipath route) add devices to the
    /// route above them; comments (`#`) and blank lines are skipped.
    pub fn parse(file: &str, text: &str, v6: bool) -> Result<RouteTable, IfaceError> {
        let mut routes: Vec<RouteEntry> = Vec::new();
        let mut family = v6;
        for (ln, raw) in text.lines().enumerate() {
            let line = raw.trim_end();
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.is_empty() || words[0].starts_with('#') {
                continue;
            }
            let err = |col: usize, msg: String| IfaceError {
                file: file.into(),
                line: ln + 1,
                col,
                msg,
                text: line.into(),
            };
            if line.starts_with(char::is_whitespace) {
                // `nexthop via 10.0.0.2 dev eth0 weight 1` under a multipath route.
                let Some(last) = routes.last_mut() else {
                    return Err(err(1, "an indented line before any route".into()));
                };
                if let Some(d) = word_after(&words, "dev") {
                    last.devs.push(d.to_string());
                }
                if last.via.is_none() {
                    last.via = word_after(&words, "via").and_then(|v| v.parse().ok());
                }
                continue;
            }
            let (kind, at) = match RouteKind::from_word(words[0]) {
                Some(k) => (k, 1),
                None => (RouteKind::Unicast, 0),
            };
            let Some(dst_word) = words.get(at) else {
                return Err(err(
                    line.len() + 1,
                    "expected a route's destination after its type".into(),
                ));
            };
            let col = word_col(line, at);
            let dst = if *dst_word == "default" {
                family_default(family)
            } else {
                parse_prefix(dst_word).map_err(|m| {
                    err(
                        col,
                        format!(
                            "{m}: expected a route's destination (`default`, an address or a prefix)"
                        ),
                    )
                })?
            };
            family = matches!(dst, IpNet::V6(_));
            let devs = word_after(&words, "dev")
                .map(|d| vec![d.to_string()])
                .unwrap_or_default();
            let addr = |key: &str| -> Result<Option<IpAddr>, IfaceError> {
                match words.iter().position(|w| *w == key) {
                    None => Ok(None),
                    Some(p) => match words.get(p + 1).map(|a| a.parse::<IpAddr>()) {
                        Some(Ok(a)) => Ok(Some(a)),
                        _ => Err(err(
                            word_col(line, p + 1),
                            format!("expected an address after `{key}`"),
                        )),
                    },
                }
            };
            let via = addr("via")?;
            let src = addr("src")?;
            let metric = match words.iter().position(|w| *w == "metric") {
                None => 0,
                Some(p) => words
                    .get(p + 1)
                    .and_then(|m| m.parse().ok())
                    .ok_or_else(|| {
                        err(
                            word_col(line, p + 1),
                            "expected a number after `metric`".into(),
                        )
                    })?,
            };
            let table = word_after(&words, "table").unwrap_or("main").to_string();
            routes.push(RouteEntry {
                kind,
                dst,
                table,
                devs,
                via,
                src,
                metric,
                line: ln + 1,
                text: line.trim().to_string(),
            });
        }
        Ok(RouteTable {
            routes,
            index: OnceLock::new(),
        })
    }

    fn index(&self) -> &Index {
        self.index.get_or_init(|| {
            let mut ix = Index::default();
            for (i, r) in self.routes.iter().enumerate() {
                let Some(rank) = LOOKUP_TABLES.iter().position(|t| *t == r.table) else {
                    continue;
                };
                let v6 = r.dst.addr().is_ipv6();
                let len = r.dst.prefix_len();
                ix.by_prefix
                    .entry((rank as u8, v6, len, network(r.dst.addr(), len)))
                    .or_default()
                    .push(i);
                let lens = &mut ix.lengths[rank][v6 as usize];
                if !lens.contains(&len) {
                    lens.push(len);
                }
            }
            for fam in ix.lengths.iter_mut() {
                for lens in fam.iter_mut() {
                    lens.sort_unstable_by(|a, b| b.cmp(a));
                }
            }
            for r in &self.routes {
                let a = r.dst.addr();
                if r.kind == RouteKind::Local
                    && r.dst.prefix_len() == r.dst.max_prefix_len()
                    && !ix.locals.contains(&a)
                {
                    ix.locals.push(a);
                }
            }
            ix
        })
    }

    /// The routes of the best prefix for `dst` in the first of the lookup
    /// tables that has one (skipping a table whose best is `throw`).
    fn best(&self, dst: IpAddr) -> Option<&[usize]> {
        let ix = self.index();
        let v6 = dst.is_ipv6();
        for rank in 0..LOOKUP_TABLES.len() {
            for &len in &ix.lengths[rank][v6 as usize] {
                let Some(found) = ix.by_prefix.get(&(rank as u8, v6, len, network(dst, len)))
                else {
                    continue;
                };
                let first = found
                    .iter()
                    .min_by_key(|&&i| (self.routes[i].metric, self.routes[i].line));
                match first {
                    // `throw` ends the lookup in this table: the next is tried.
                    Some(&i) if self.routes[i].kind == RouteKind::Throw => break,
                    Some(_) => return Some(found),
                    None => {}
                }
            }
        }
        None
    }

    /// The routes of one family.
    pub fn family(&self, v6: bool) -> impl Iterator<Item = &RouteEntry> {
        self.routes
            .iter()
            .filter(move |r| matches!(r.dst, IpNet::V6(_)) == v6)
    }

    /// The route the kernel's lookup finds for `dst` with the default
    /// policy rules: the `local` table, then `main`, then `default`; in a
    /// table the longest prefix, then the lowest metric, then file order.
    /// Routes of other tables are only reachable through `ip rule`, which
    /// is not read.
    pub fn lookup(&self, dst: IpAddr) -> Option<&RouteEntry> {
        self.best(dst)?
            .iter()
            .map(|&i| &self.routes[i])
            .min_by_key(|r| (r.metric, r.line))
    }

    /// Like [`RouteTable::lookup`], but when several routes of the best
    /// prefix lead out of different devices, the one out of `dev` if there
    /// is one (IPv6 lookups bound to an interface do this).
    pub fn lookup_via(&self, dst: IpAddr, dev: &str) -> Option<&RouteEntry> {
        let found = self.best(dst)?;
        let pick = |f: &dyn Fn(&RouteEntry) -> bool| {
            found
                .iter()
                .map(|&i| &self.routes[i])
                .filter(|r| f(r))
                .min_by_key(|r| (r.metric, r.line))
        };
        pick(&|r| r.devs.iter().any(|d| d == dev)).or_else(|| pick(&|_| true))
    }

    /// This host's own addresses: the single-address `local` routes.
    pub fn local_addrs(&self) -> Vec<IpAddr> {
        self.index().locals.clone()
    }

    /// The same, without a copy.
    pub fn local_addr_list(&self) -> &[IpAddr] {
        &self.index().locals
    }

    /// Whether any route comes from the local table (`table all` output).
    pub fn has_local_table(&self) -> bool {
        self.routes.iter().any(|r| r.table == "local")
    }
}

fn word_after<'a>(words: &[&'a str], key: &str) -> Option<&'a str> {
    words
        .iter()
        .position(|w| *w == key)
        .and_then(|p| words.get(p + 1).copied())
}

/// 1-based column of the `n`th whitespace-separated word of `line`.
fn word_col(line: &str, n: usize) -> usize {
    let mut count = 0;
    let mut prev_space = true;
    for (i, c) in line.char_indices() {
        let space = c.is_whitespace();
        if prev_space && !space {
            if count == n {
                return i + 1;
            }
            count += 1;
        }
        prev_space = space;
    }
    line.len() + 1
}

/// `10.0.0.0/8`, `10.0.0.1` (a host route), `fe80::/64`.
fn parse_prefix(s: &str) -> Result<IpNet, String> {
    if let Ok(n) = s.parse::<IpNet>() {
        return Ok(n.trunc());
    }
    if let Some((a, l)) = s.split_once('/') {
        let a: IpAddr = a.parse().map_err(|_| format!("bad address {a:?}"))?;
        let width = if a.is_ipv6() { 128 } else { 32 };
        return Err(format!("bad prefix length {l:?} (0 to {width})"));
    }
    let a: IpAddr = s.parse().map_err(|_| format!("bad address {s:?}"))?;
    Ok(IpNet::from(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ip route show table all` from a namespace with two veths, a
    /// gateway route, a multipath route and the three reject types.
    const TABLE_ALL: &str = "\
default via 10.1.0.2 dev eth0 proto static metric 100
10.1.0.0/24 dev eth0 proto kernel scope link src 10.1.0.1
10.2.0.0/24 dev eth1 proto kernel scope link src 10.2.0.1
192.0.2.0/24 via 10.2.0.2 dev eth1
198.51.100.0/24 nhid 7 proto static
\tnexthop via 10.1.0.2 dev eth0 weight 1
\tnexthop via 10.2.0.2 dev eth1 weight 1
unreachable 203.0.113.0/24
blackhole 203.0.113.128/25 metric 5
prohibit 100.64.0.0/16
local 10.1.0.1 dev eth0 table local proto kernel scope host src 10.1.0.1
broadcast 10.1.0.255 dev eth0 table local proto kernel scope link src 10.1.0.1
local 10.2.0.1 dev eth1 table local proto kernel scope host src 10.2.0.1
broadcast 10.2.0.255 dev eth1 table local proto kernel scope link src 10.2.0.1
local 127.0.0.0/8 dev lo table local proto kernel scope host src 127.0.0.1
local 127.0.0.1 dev lo table local proto kernel scope host src 127.0.0.1
broadcast 127.255.255.255 dev lo table local proto kernel scope link src 127.0.0.1
";

    const V6_TABLE_ALL: &str = "\
2001:db8:1::/64 dev eth0 proto kernel metric 256 pref medium
fe80::/64 dev eth0 proto kernel metric 256 pref medium
default via 2001:db8:1::2 dev eth0 metric 1024 onlink pref medium
unreachable 2001:db8:dead::/48 dev lo metric 1024 pref medium
local ::1 dev lo table local proto kernel metric 0 pref medium
local 2001:db8:1::1 dev eth0 table local proto kernel metric 0 pref medium
anycast 2001:db8:1:: dev eth0 table local proto kernel metric 0 pref medium
local fe80::a8c1:abff:fe11:2233 dev eth0 table local proto kernel metric 0 pref medium
multicast ff00::/8 dev eth0 table local proto kernel metric 256 pref medium
";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn reads_table_all_output() {
        let t = RouteTable::parse("r", TABLE_ALL, false).unwrap();
        assert_eq!(t.routes.len(), 15);
        let mp = &t.routes[4];
        assert_eq!(mp.devs, ["eth0", "eth1"]);
        assert_eq!(mp.via, Some(ip("10.1.0.2")));
        assert_eq!(t.routes[6].metric, 5);
        assert_eq!(t.routes[9].table, "local");
        assert_eq!(
            t.local_addrs(),
            [ip("10.1.0.1"), ip("10.2.0.1"), ip("127.0.0.1")]
        );
        let kind = |a: &str| t.lookup(ip(a)).map(|r| r.kind);
        assert_eq!(kind("10.1.0.1"), Some(RouteKind::Local));
        assert_eq!(kind("127.9.9.9"), Some(RouteKind::Local));
        assert_eq!(kind("10.2.0.255"), Some(RouteKind::Broadcast));
        assert_eq!(kind("203.0.113.5"), Some(RouteKind::Unreachable));
        assert_eq!(kind("203.0.113.200"), Some(RouteKind::Blackhole));
        assert_eq!(kind("100.64.1.1"), Some(RouteKind::Prohibit));
        assert_eq!(t.lookup(ip("192.0.2.9")).unwrap().dev(), Some("eth1"));
        assert_eq!(t.lookup(ip("8.8.8.8")).unwrap().dev(), Some("eth0"));
        assert_eq!(t.lookup(ip("8.8.8.8")).unwrap().line, 1);
    }

    #[test]
    fn reads_ipv6_table_all_output() {
        let t = RouteTable::parse("r6", V6_TABLE_ALL, true).unwrap();
        assert_eq!(t.routes.len(), 9);
        assert_eq!(t.family(true).count(), 9);
        let kind = |a: &str| t.lookup(ip(a)).map(|r| r.kind);
        assert_eq!(kind("2001:db8:1::1"), Some(RouteKind::Local));
        assert_eq!(kind("2001:db8:1::"), Some(RouteKind::Anycast));
        assert_eq!(kind("ff02::1"), Some(RouteKind::Multicast));
        assert_eq!(kind("2001:db8:dead::1"), Some(RouteKind::Unreachable));
        assert_eq!(
            t.lookup(ip("2001:db8:9::1")).unwrap().via,
            Some(ip("2001:db8:1::2"))
        );
        assert!(t.local_addrs().contains(&ip("::1")));
    }

    #[test]
    fn a_lookup_bound_to_a_device_prefers_its_route() {
        let t = RouteTable::parse(
            "r6",
            "fe80::/64 dev eth1 proto kernel metric 256\nfe80::/64 dev eth0 proto kernel metric 256\n",
            true,
        )
        .unwrap();
        assert_eq!(t.lookup(ip("fe80::9")).unwrap().dev(), Some("eth1"));
        assert_eq!(
            t.lookup_via(ip("fe80::9"), "eth0").unwrap().dev(),
            Some("eth0")
        );
        assert_eq!(
            t.lookup_via(ip("fe80::9"), "eth7").unwrap().dev(),
            Some("eth1")
        );
    }

    #[test]
    fn lower_metric_wins_for_the_same_prefix() {
        let t = RouteTable::parse(
            "r",
            "10.0.0.0/8 dev b metric 20\n10.0.0.0/8 dev a metric 10\n",
            false,
        )
        .unwrap();
        assert_eq!(t.lookup(ip("10.1.1.1")).unwrap().dev(), Some("a"));
    }

    #[test]
    fn default_takes_the_family_of_the_file_so_far() {
        let t = RouteTable::parse("r", "default dev e0\n", true).unwrap();
        assert!(t.routes[0].dst.addr().is_ipv6());
        let t = RouteTable::parse("r", "10.0.0.0/8 dev a\ndefault dev e0\n", true).unwrap();
        assert!(t.routes[1].dst.addr().is_ipv4());
    }

    #[test]
    fn bad_lines_name_line_and_column() {
        let e = RouteTable::parse("r", "10.0.0.0/8 dev a\nlocal 10.0.0.300 dev a\n", false)
            .unwrap_err();
        assert_eq!((e.line, e.col), (2, 7));
        assert!(e.msg.contains("bad address"), "{}", e.msg);
        let e = RouteTable::parse("r", "10.0.0.0/8 via x dev a\n", false).unwrap_err();
        assert_eq!((e.line, e.col), (1, 16));
        let e = RouteTable::parse("r", "10.0.0.0/8 metric high\n", false).unwrap_err();
        assert!(e.msg.contains("metric"));
        let e = RouteTable::parse("r", "\tnexthop via 1.2.3.4 dev a\n", false).unwrap_err();
        assert_eq!(e.line, 1);
        let e = RouteTable::parse("r", "10.0.0.0/33 dev a\n", false).unwrap_err();
        assert_eq!((e.line, e.col), (1, 1));
    }
}
