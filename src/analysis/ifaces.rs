//! Which addresses sit behind which interface: fffuu's interface
//! assignment files (`eth0 = [10.0.0.0/8]`) for `-i`, and `ip route`
//! output for `-o`.

use std::fmt;
use std::net::IpAddr;

use super::sets::IntervalSet;

/// An entry as read: name, ranges, `all_but_those_ips`, where.
type Entry = (String, Vec<(u128, u128)>, bool, usize);

/// Interfaces and the addresses behind each, in file order.
#[derive(Debug, Clone, Default)]
pub struct IfaceMap {
    /// Name and addresses, in the order given.
    pub ifaces: Vec<(String, IntervalSet)>,
    /// The address family: IPv6 when true.
    pub v6: bool,
}

/// A line of an interface file or route list that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfaceError {
    /// File name as given.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// What was wrong.
    pub msg: String,
    /// The line itself.
    pub text: String,
}

impl fmt::Display for IfaceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: error: {}\n  {}\n  {}^",
            self.file,
            self.line,
            self.col,
            self.msg,
            self.text,
            " ".repeat(self.col.saturating_sub(1))
        )
    }
}

impl std::error::Error for IfaceError {}

/// Largest address of the family.
pub fn max_addr(v6: bool) -> u128 {
    if v6 { u128::MAX } else { u32::MAX as u128 }
}

/// The address as a number and whether it is IPv6.
pub fn addr_bits(a: IpAddr) -> (u128, bool) {
    match a {
        IpAddr::V4(a) => (u32::from(a) as u128, false),
        IpAddr::V6(a) => (u128::from(a), true),
    }
}

/// The number as an address of the family.
pub fn bits_addr(b: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(b.into())
    } else {
        IpAddr::V4((b as u32).into())
    }
}

/// `10.0.0.0/8`, `10.0.0.1`, `10.0.0.1-10.0.0.9`, `fd00::/8`: first and
/// last address and the family.
pub fn parse_item(s: &str) -> Result<(u128, u128, bool), String> {
    if let Some((a, b)) = s.split_once('-') {
        let (lo, v6a) = addr_bits(a.trim().parse().map_err(|_| format!("bad address {a:?}"))?);
        let (hi, v6b) = addr_bits(b.trim().parse().map_err(|_| format!("bad address {b:?}"))?);
        if v6a != v6b {
            return Err(format!("range {s} mixes IPv4 and IPv6"));
        }
        if lo > hi {
            return Err(format!("range {s} ends before it starts"));
        }
        return Ok((lo, hi, v6a));
    }
    let (a, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let (addr, v6) = addr_bits(a.parse().map_err(|_| format!("bad address {a:?}"))?);
    let width = if v6 { 128 } else { 32 };
    let len: u32 = match len {
        None => width,
        Some(l) => match l.parse() {
            Ok(n) if n <= width => n,
            _ => return Err(format!("bad prefix length {l:?} (0 to {width})")),
        },
    };
    let host = if len == 0 {
        max_addr(v6)
    } else {
        (max_addr(v6) >> len) & max_addr(v6)
    };
    Ok((addr & !host & max_addr(v6), (addr & !host) | host, v6))
}

impl IfaceMap {
    /// Reads fffuu's interface assignment format:
    ///
    /// ```text
    /// # comment
    /// eth0 = [10.0.0.0/8, 192.168.0.0-192.168.255.255]
    /// foo = []
    /// lup = all_but_those_ips [10.0.0.0/8, 192.168.0.0/16]
    /// ```
    ///
    /// An entry may run over several lines; the family is that of the
    /// addresses, or `v6` when the file names none.
    pub fn parse_ipassmt(file: &str, text: &str, v6: bool) -> Result<IfaceMap, IfaceError> {
        // Comments out, positions kept: one string of (char, line, col).
        let mut chars: Vec<(char, usize, usize)> = Vec::new();
        let lines: Vec<&str> = text.lines().collect();
        for (ln, l) in lines.iter().enumerate() {
            let l = l.split('#').next().unwrap_or("");
            for (col, c) in l.chars().enumerate() {
                chars.push((c, ln + 1, col + 1));
            }
            chars.push(('\n', ln + 1, l.chars().count() + 1));
        }
        let err = |at: Option<&(char, usize, usize)>, msg: String| {
            let (line, col) = at.map(|c| (c.1, c.2)).unwrap_or((lines.len().max(1), 1));
            IfaceError {
                file: file.into(),
                line,
                col,
                msg,
                text: lines.get(line - 1).unwrap_or(&"").to_string(),
            }
        };
        let mut i = 0;
        let skip_ws = |i: &mut usize| {
            while *i < chars.len() && chars[*i].0.is_whitespace() {
                *i += 1;
            }
        };
        let word = |i: &mut usize| {
            let start = *i;
            while *i < chars.len()
                && !chars[*i].0.is_whitespace()
                && !matches!(chars[*i].0, '=' | '[' | ']' | ',')
            {
                *i += 1;
            }
            chars[start..*i].iter().map(|c| c.0).collect::<String>()
        };
        let mut out: Vec<Entry> = Vec::new();
        let mut family: Option<bool> = None;
        loop {
            skip_ws(&mut i);
            if i >= chars.len() {
                break;
            }
            let at = i;
            let name = word(&mut i);
            if name.is_empty() || name.len() > 15 {
                return Err(err(
                    chars.get(at),
                    "expected an interface name (1 to 15 characters)".into(),
                ));
            }
            skip_ws(&mut i);
            if chars.get(i).map(|c| c.0) != Some('=') {
                return Err(err(chars.get(i), format!("expected `=` after {name}")));
            }
            i += 1;
            skip_ws(&mut i);
            let mut but = false;
            if chars.get(i).map(|c| c.0) != Some('[') {
                let at = i;
                let w = word(&mut i);
                if w != "all_but_those_ips" {
                    return Err(err(
                        chars.get(at),
                        "expected `[` or `all_but_those_ips [`".into(),
                    ));
                }
                but = true;
                skip_ws(&mut i);
                if chars.get(i).map(|c| c.0) != Some('[') {
                    return Err(err(chars.get(i), "expected `[`".into()));
                }
            }
            i += 1;
            let mut items = Vec::new();
            loop {
                skip_ws(&mut i);
                match chars.get(i).map(|c| c.0) {
                    Some(']') => {
                        i += 1;
                        break;
                    }
                    Some(',') => {
                        i += 1;
                        continue;
                    }
                    None => return Err(err(chars.get(at), format!("`[` of {name} never closed"))),
                    _ => {}
                }
                let at_item = i;
                let mut s = String::new();
                while i < chars.len() && !matches!(chars[i].0, ',' | ']' | '\n') {
                    s.push(chars[i].0);
                    i += 1;
                }
                let s = s.trim();
                let (lo, hi, v6i) = parse_item(s).map_err(|m| err(chars.get(at_item), m))?;
                if *family.get_or_insert(v6i) != v6i {
                    return Err(err(
                        chars.get(at_item),
                        "IPv4 and IPv6 addresses mixed in one file".into(),
                    ));
                }
                items.push((lo, hi));
            }
            if out.iter().any(|e| e.0 == name) {
                return Err(err(chars.get(at), format!("{name} assigned twice")));
            }
            out.push((name, items, but, at));
        }
        let v6 = family.unwrap_or(v6);
        let max = max_addr(v6);
        let ifaces = out
            .into_iter()
            .map(|(n, items, but, _)| {
                let s = IntervalSet::from_ranges(items);
                (n, if but { s.complement(max) } else { s })
            })
            .collect();
        Ok(IfaceMap { ifaces, v6 })
    }

    /// Reads `ip route show` (or `ip -6 route show`) output: each address
    /// goes out of the interface of its longest matching route; `default`
    /// is `0.0.0.0/0`; routes without `dev` (blackhole, unreachable,
    /// prohibit) send nowhere.
    pub fn parse_routes(file: &str, text: &str, v6: bool) -> Result<IfaceMap, IfaceError> {
        let table = super::routes::RouteTable::parse(file, text, v6)?;
        let mut routes: Vec<(u32, u128, u128, Option<String>)> = Vec::new();
        let mut family: Option<bool> = None;
        for r in &table.routes {
            let v6r = r.dst.addr().is_ipv6();
            if *family.get_or_insert(v6r) != v6r {
                return Err(IfaceError {
                    file: file.into(),
                    line: r.line,
                    col: 1,
                    msg: "IPv4 and IPv6 routes mixed in one file".into(),
                    text: r.text.clone(),
                });
            }
            let (lo, _) = addr_bits(r.dst.network());
            let (hi, _) = addr_bits(r.dst.broadcast());
            // Route types: only unicast (none written) sends out of a device.
            let dev = r
                .dev()
                .filter(|_| r.kind == super::routes::RouteKind::Unicast)
                .map(str::to_string);
            routes.push((r.dst.prefix_len() as u32, lo, hi, dev));
        }
        let v6 = family.unwrap_or(v6);
        // Shorter prefixes first, so longer ones paint over them.
        routes.sort_by_key(|r| r.0);
        let mut ifaces: Vec<(String, IntervalSet)> = Vec::new();
        let mut seen_prefix: Vec<(u128, u128)> = Vec::new();
        for (_, lo, hi, dev) in routes {
            // The first route listed for a prefix wins (lowest metric).
            if seen_prefix.contains(&(lo, hi)) {
                continue;
            }
            seen_prefix.push((lo, hi));
            let r = IntervalSet::range(lo, hi);
            for (_, s) in ifaces.iter_mut() {
                *s = s.minus(&r);
            }
            if let Some(d) = dev {
                match ifaces.iter_mut().find(|(n, _)| *n == d) {
                    Some((_, s)) => *s = s.union(&r),
                    None => ifaces.push((d, r)),
                }
            }
        }
        Ok(IfaceMap { ifaces, v6 })
    }

    /// Addresses behind interfaces matching `name` (a prefix with `+`).
    /// Addresses no interface claims match only the pattern `+`.
    pub fn matching(&self, name: &str, prefix: bool) -> IntervalSet {
        if prefix && name.is_empty() {
            return IntervalSet::full(max_addr(self.v6));
        }
        let mut v = Vec::new();
        for (n, s) in &self.ifaces {
            if (prefix && n.starts_with(name)) || (!prefix && n == name) {
                v.extend_from_slice(s.ranges());
            }
        }
        IntervalSet::from_ranges(v)
    }

    /// Addresses no interface claims, and addresses two interfaces claim.
    pub fn gaps_and_overlaps(&self) -> (IntervalSet, IntervalSet) {
        let mut all = IntervalSet::empty();
        let mut twice = IntervalSet::empty();
        for (_, s) in &self.ifaces {
            twice = twice.union(&all.intersect(s));
            all = all.union(s);
        }
        (all.complement(max_addr(self.v6)), twice)
    }

    /// The interface an address is behind (the first listed that claims it).
    pub fn iface_of(&self, a: u128) -> Option<&str> {
        self.ifaces
            .iter()
            .find(|(_, s)| s.contains(a))
            .map(|(n, _)| n.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fffuu_format() {
        let t = "# lab\neth0 = [10.0.0.0/8, 192.168.0.0-192.168.255.255]\nfoo = []\n\
                 lup = all_but_those_ips [ 10.0.0.0/8,\n 192.168.0.0/16 ]\n";
        let m = IfaceMap::parse_ipassmt("a", t, false).unwrap();
        assert_eq!(m.ifaces.len(), 3);
        assert!(m.matching("eth0", false).contains(0x0a01_0203));
        assert!(m.matching("foo", false).is_empty());
        let lup = m.matching("lup", false);
        assert!(!lup.contains(0x0a00_0001) && lup.contains(0x0b00_0001));
        assert!(m.matching("", true).is_full(u32::MAX as u128));
        let (gaps, twice) = m.gaps_and_overlaps();
        assert!(gaps.is_empty() && twice.is_empty());
    }

    #[test]
    fn bad_ipassmt_points_at_the_item() {
        let e = IfaceMap::parse_ipassmt("f", "eth0 = [10.0.0.0/33]\n", false).unwrap_err();
        assert_eq!((e.line, e.col), (1, 9));
        assert!(e.to_string().starts_with("f:1:9: error: bad prefix length"));
        let e = IfaceMap::parse_ipassmt("f", "eth0 [1.2.3.4]\n", false).unwrap_err();
        assert_eq!((e.line, e.col), (1, 6));
        assert!(IfaceMap::parse_ipassmt("f", "eth0 = [1.2.3.4\n", false).is_err());
    }

    #[test]
    fn routes_longest_prefix_wins() {
        let t = "default via 192.168.1.1 dev eth0 proto dhcp metric 100\n\
                 10.0.0.0/8 dev eth1 proto kernel scope link src 10.0.0.1\n\
                 10.9.0.0/16 dev eth2\nblackhole 10.9.9.0/24\n";
        let m = IfaceMap::parse_routes("r", t, false).unwrap();
        assert_eq!(m.iface_of(0x0a01_0101), Some("eth1"));
        assert_eq!(m.iface_of(0x0a09_0101), Some("eth2"));
        assert_eq!(m.iface_of(0x0a09_0901), None);
        assert_eq!(m.iface_of(0x0808_0808), Some("eth0"));
        let e = IfaceMap::parse_routes("r", "10.0.0.0/99 dev x\n", false).unwrap_err();
        assert_eq!((e.line, e.col), (1, 1));
    }
}
