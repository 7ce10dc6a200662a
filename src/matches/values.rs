//! The grammar of option values, and the parsers the typed views and the
//! tracer share with the checker.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::model::Family;

use super::Given;

/// The grammar of an option's value(s).
#[derive(Clone, Copy)]
pub enum Value {
    /// No value.
    Flag,
    /// One port: a number 0-65535 or a service name.
    Port,
    /// `[port][:[port]]`; `true` when a reversed range is refused (tcp),
    /// `false` when it is only warned about.
    PortRange(bool),
    /// `port[,port|,port:port]...`, at most 15 ports (a range counts two).
    PortList,
    /// An integer (decimal, `0x` hex or `0` octal) within bounds.
    Num(u64, u64),
    /// `[n][:[n]]` within bounds; `true` when a reversed range is refused.
    NumRange(u64, u64, bool),
    /// `value[/mask]`, each a 32-bit integer.
    Mark,
    /// An address or a host name (`-s`, `--gateway`).
    Host,
    /// `address[/prefix|/mask]`.
    Net,
    /// `address[-address]`.
    AddrRange,
    /// One word of a fixed set (compared without case).
    Enum(&'static [&'static str]),
    /// A comma-separated list of words from a fixed set (without case).
    List(&'static [&'static str]),
    /// Free text of at most this many bytes.
    Text(usize),
    /// An interface name (at most 15 bytes, `+` at the end for any).
    Iface,
    /// A MAC address `XX:XX:XX:XX:XX:XX`.
    Mac,
    /// Exactly this many words of free text.
    Words(u8),
    /// No value or one word of free text.
    MaybeText,
    /// Anything else.
    Custom(fn(&[&str], &Given<'_>) -> Verdict),
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Custom(_) => f.write_str("Custom"),
            Value::Num(a, b) => write!(f, "Num({a}, {b})"),
            Value::Enum(e) | Value::List(e) => write!(f, "{e:?}"),
            _ => f.write_str("Value"),
        }
    }
}

/// The result of checking a value: fine, refused, or suspicious. The
/// number is the index of the argument to point at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted.
    Ok,
    /// iptables or the kernel refuses it.
    Bad(usize, String),
    /// Accepted here, but suspicious.
    Warn(usize, String),
}

use Verdict::{Bad, Ok as Fine, Warn};

fn bad(i: usize, m: impl Into<String>) -> Verdict {
    Bad(i, m.into())
}

/// Parses an integer the way `strtoul(s, 0)` does: decimal, `0x` hex or
/// leading-zero octal; no sign.
pub fn parse_num(s: &str) -> Option<u64> {
    let s = s.strip_prefix('+').unwrap_or(s);
    if s.is_empty() {
        return None;
    }
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return u64::from_str_radix(h, 16).ok();
    }
    if s.len() > 1 && s.starts_with('0') {
        return u64::from_str_radix(&s[1..], 8).ok();
    }
    s.parse().ok()
}

/// Parses decimal or `0x` hexadecimal into 32 bits.
pub fn parse_u32(s: &str) -> Option<u32> {
    parse_num(s).and_then(|n| u32::try_from(n).ok())
}

/// One port: a number, or a service name from `/etc/services`.
pub fn parse_port(s: &str) -> Option<u16> {
    if s.bytes().all(|b| b.is_ascii_digit()) && !s.is_empty() {
        return s.parse().ok();
    }
    super::service_port(s)
}

/// An inclusive port range; a single port has `lo == hi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct PortRange {
    /// First port.
    pub lo: u16,
    /// Last port.
    pub hi: u16,
}

impl PortRange {
    /// Parses `22`, `1024:65535`, `:1023`, `1024:`, `:`, `ssh`.
    pub fn parse(s: &str) -> Option<PortRange> {
        match s.split_once(':') {
            None => {
                let p = parse_port(s)?;
                Some(PortRange { lo: p, hi: p })
            }
            Some((a, b)) => {
                let lo = if a.is_empty() { 0 } else { parse_port(a)? };
                let hi = if b.is_empty() { 65535 } else { parse_port(b)? };
                Some(PortRange { lo, hi })
            }
        }
    }

    /// True when `port` is inside.
    pub fn contains(&self, port: u16) -> bool {
        self.lo <= port && port <= self.hi
    }
}

/// A list of ports or ranges (`80,443,8000:8080`); bad items are left out.
pub fn parse_port_list(s: &str) -> Vec<PortRange> {
    s.split(',').filter_map(PortRange::parse).collect()
}

/// `value[/mask]` as used by mark, connmark and MARK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct MarkMask {
    /// Value.
    pub value: u32,
    /// Mask (all ones when not given).
    pub mask: u32,
}

impl MarkMask {
    /// Parses `0x4000/0x4000`, `0x1`, `12`.
    pub fn parse(s: &str) -> Option<MarkMask> {
        let (v, m) = match s.split_once('/') {
            Some((v, m)) => (v, Some(m)),
            None => (s, None),
        };
        Some(MarkMask {
            value: parse_u32(v)?,
            mask: match m {
                Some(m) => parse_u32(m)?,
                None => u32::MAX,
            },
        })
    }
}

fn port_word(s: &str) -> Result<u16, String> {
    if s.starts_with('-') || s.is_empty() {
        return Err(format!("'{s}' is not a port"));
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse::<u16>()
            .map_err(|_| format!("port {s} is out of range (0-65535)"));
    }
    super::service_port(s)
        .ok_or_else(|| format!("'{s}' is not a port number or a known service name"))
}

fn port_range(s: &str, strict: bool) -> Verdict {
    let (lo, hi) = match s.split_once(':') {
        None => {
            return match port_word(s) {
                Ok(_) => Fine,
                Err(e) => bad(0, e),
            };
        }
        Some((a, b)) => {
            let lo = if a.is_empty() { Ok(0) } else { port_word(a) };
            let hi = if b.is_empty() {
                Ok(65535)
            } else {
                port_word(b)
            };
            (lo, hi)
        }
    };
    match (lo, hi) {
        (Err(e), _) | (_, Err(e)) => bad(0, e),
        (Ok(lo), Ok(hi)) if lo > hi => {
            let m = format!("range {s} is reversed (min > max)");
            if strict {
                bad(0, format!("{m}; write {hi}:{lo}"))
            } else {
                Warn(
                    0,
                    format!("{m}: it matches nothing (newer iptables refuses it)"),
                )
            }
        }
        _ => Fine,
    }
}

fn num(s: &str, lo: u64, hi: u64) -> Result<u64, String> {
    match parse_num(s) {
        Some(n) if (lo..=hi).contains(&n) => Ok(n),
        _ => Err(format!("'{s}' is not a number in {lo}-{hi}")),
    }
}

fn num_range(s: &str, lo: u64, hi: u64, strict: bool) -> Verdict {
    let (a, b) = match s.split_once(':') {
        None => {
            return match num(s, lo, hi) {
                Ok(_) => Fine,
                Err(e) => bad(0, e),
            };
        }
        Some(x) => x,
    };
    let a = if a.is_empty() { Ok(lo) } else { num(a, lo, hi) };
    let b = if b.is_empty() { Ok(hi) } else { num(b, lo, hi) };
    match (a, b) {
        (Err(e), _) | (_, Err(e)) => bad(0, e),
        (Ok(a), Ok(b)) if a > b => {
            let m = format!("range {s} is reversed (min > max)");
            if strict {
                bad(0, m)
            } else {
                Warn(
                    0,
                    format!("{m}: it matches nothing (newer iptables refuses it)"),
                )
            }
        }
        _ => Fine,
    }
}

/// Whether a word looks like an attempt at a numeric address rather than
/// a host name.
fn looks_numeric(s: &str) -> bool {
    s.contains(':') || s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// The plain dotted quad (`10.0.0.1`: four numbers up to 255, no leading
/// zeros), read without the general parser: most addresses of a dump are
/// written so. Anything else is left to the general parser, which takes
/// every form this one takes, with the same value.
fn dotted_quad(s: &str) -> Option<Ipv4Addr> {
    let b = s.as_bytes();
    let mut out = [0u8; 4];
    let mut i = 0;
    for (n, slot) in out.iter_mut().enumerate() {
        if n > 0 {
            if b.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let start = i;
        let mut v: u32 = 0;
        while let Some(d) = b.get(i).filter(|d| d.is_ascii_digit()) {
            v = v * 10 + u32::from(d - b'0');
            i += 1;
            if i - start > 3 {
                return None;
            }
        }
        if i == start || v > 255 || (i - start > 1 && b[start] == b'0') {
            return None;
        }
        *slot = v as u8;
    }
    (i == b.len()).then(|| Ipv4Addr::from(out))
}

fn parse_addr(s: &str, family: Family) -> Result<IpAddr, String> {
    if family == Family::Ipv4
        && let Some(a) = dotted_quad(s)
    {
        return Ok(IpAddr::V4(a));
    }
    let a: IpAddr = match family {
        Family::Ipv4 => s.parse::<Ipv4Addr>().map(IpAddr::V4),
        Family::Ipv6 => s.parse::<Ipv6Addr>().map(IpAddr::V6),
    }
    .map_err(|_| match (family, s.parse::<IpAddr>()) {
        (Family::Ipv4, Ok(IpAddr::V6(_))) => {
            format!("'{s}' is an IPv6 address in an IPv4 (iptables) rule")
        }
        (Family::Ipv6, Ok(IpAddr::V4(_))) => {
            format!("'{s}' is an IPv4 address in an IPv6 (ip6tables) rule")
        }
        _ => format!("'{s}' is not a valid address"),
    })?;
    Ok(a)
}

/// `a.b.c.d` or `a.b.c.d/len` with a plain length of at most 32.
fn plain_v4_prefix(s: &str) -> bool {
    let (a, len) = match memchr::memchr(b'/', s.as_bytes()) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    dotted_quad(a).is_some()
        && len.is_none_or(|l| {
            matches!(l.len(), 1 | 2)
                && l.bytes().all(|b| b.is_ascii_digit())
                && l.parse::<u8>().is_ok_and(|n| n <= 32)
        })
}

/// `addr[/len|/mask]` or a host name, as `-s` and `-d` take it.
pub fn check_host(s: &str, family: Family) -> Result<(), String> {
    // Most hosts of a dump are `10.0.0.1` or `10.0.0.0/8`: take those
    // without the general reading below (which accepts them too).
    if family == Family::Ipv4 && plain_v4_prefix(s) {
        return Ok(());
    }
    let (a, m) = match s.split_once('/') {
        Some((a, m)) => (a, Some(m)),
        None => (s, None),
    };
    let width = if family == Family::Ipv4 { 32 } else { 128 };
    if !looks_numeric(a) && m.is_none() {
        // A host name: resolved by iptables when the rule is added.
        return if a.is_empty() || a.contains(char::is_whitespace) {
            Err(format!("'{s}' is not an address or a host name"))
        } else {
            Ok(())
        };
    }
    if !looks_numeric(a) {
        // `name/len` resolves the name too.
    } else {
        parse_addr(a, family)?;
    }
    if let Some(m) = m {
        if m.bytes().all(|b| b.is_ascii_digit()) && !m.is_empty() {
            let n: u32 = m.parse().unwrap_or(u32::MAX);
            if n > width {
                return Err(format!("invalid mask '/{m}': at most /{width}"));
            }
        } else {
            parse_addr(m, family).map_err(|_| format!("invalid mask '/{m}'"))?;
        }
    }
    Ok(())
}

/// An interface name: at most 15 bytes.
pub fn check_iface(s: &str) -> Result<(), String> {
    if s.len() > 15 {
        Err(format!("interface name '{s}' is longer than 15 characters"))
    } else if s.contains(['/', ' ']) {
        Err(format!("'{s}' is not a valid interface name"))
    } else {
        Ok(())
    }
}

fn check_net(s: &str, family: Family) -> Result<(), String> {
    check_host(s, family)
}

fn one_of(word: &str, set: &[&str]) -> bool {
    set.iter().any(|w| w.eq_ignore_ascii_case(word))
}

/// Checks the values of one option against its grammar.
pub fn check(v: &Value, args: &[&str], g: &Given<'_>) -> Verdict {
    let want = match v {
        Value::Flag => 0,
        Value::Words(n) => *n as usize,
        Value::MaybeText => args.len().min(1),
        Value::Custom(f) => return f(args, g),
        _ => 1,
    };
    if args.len() < want {
        return bad(usize::MAX, "needs a value");
    }
    if args.len() > want {
        return bad(
            want,
            format!("unexpected '{}' after the option's value", args[want]),
        );
    }
    let a = args.first().copied().unwrap_or("");
    match v {
        Value::Flag | Value::Words(_) | Value::MaybeText | Value::Custom(_) => Fine,
        Value::Port => match port_word(a) {
            Ok(_) => Fine,
            Err(e) => bad(0, e),
        },
        Value::PortRange(strict) => port_range(a, *strict),
        Value::PortList => port_list(a),
        Value::Num(lo, hi) => match num(a, *lo, *hi) {
            Ok(_) => Fine,
            Err(e) => bad(0, e),
        },
        Value::NumRange(lo, hi, strict) => num_range(a, *lo, *hi, *strict),
        Value::Mark => {
            if MarkMask::parse(a).is_some() {
                Fine
            } else {
                bad(0, format!("'{a}' is not value[/mask] (32-bit numbers)"))
            }
        }
        Value::Host => match check_host(a, g.family) {
            Ok(()) => Fine,
            Err(e) => bad(0, e),
        },
        Value::Net => match check_net(a, g.family) {
            Ok(()) => Fine,
            Err(e) => bad(0, e),
        },
        Value::AddrRange => {
            let (x, y) = a.split_once('-').unwrap_or((a, a));
            match parse_addr(x, g.family).and_then(|_| parse_addr(y, g.family)) {
                Ok(_) => Fine,
                Err(e) => bad(0, e),
            }
        }
        Value::Enum(set) => {
            if one_of(a, set) {
                Fine
            } else {
                bad(0, format!("'{a}' is not one of {}", set.join(", ")))
            }
        }
        Value::List(set) => {
            for w in a.split(',') {
                if !one_of(w, set) {
                    return bad(0, format!("'{w}' is not one of {}", set.join(", ")));
                }
            }
            Fine
        }
        Value::Text(max) => {
            if a.len() > *max {
                bad(0, format!("longer than {max} characters"))
            } else {
                Fine
            }
        }
        Value::Iface => match check_iface(a) {
            Ok(()) => Fine,
            Err(e) => bad(0, e),
        },
        Value::Mac => {
            let parts: Vec<&str> = a.split(':').collect();
            if parts.len() == 6
                && parts
                    .iter()
                    .all(|p| (1..=2).contains(&p.len()) && u8::from_str_radix(p, 16).is_ok())
            {
                Fine
            } else {
                bad(0, format!("'{a}' is not a MAC address (XX:XX:XX:XX:XX:XX)"))
            }
        }
    }
}

fn port_list(a: &str) -> Verdict {
    let mut count = 0;
    for item in a.split(',') {
        if item.is_empty() {
            return bad(0, "empty item in the port list");
        }
        count += if item.contains(':') { 2 } else { 1 };
        if let Bad(_, e) = port_range(item, true) {
            return bad(0, e);
        }
    }
    if count > 15 {
        bad(
            0,
            "too many ports: at most 15 (a range counts as two); split the rule",
        )
    } else {
        Fine
    }
}

// ----- custom grammars shared by several entries -----

/// Exactly one word.
pub(crate) fn one<'a>(args: &[&'a str]) -> Result<&'a str, Verdict> {
    match args {
        [] => Err(bad(usize::MAX, "needs a value")),
        [a] => Ok(a),
        [_, b, ..] => Err(bad(1, format!("unexpected '{b}' after the option's value"))),
    }
}

const TCP_FLAGS: &[&str] = &[
    "FIN", "SYN", "RST", "PSH", "ACK", "URG", "ALL", "NONE", "ECE", "CWR",
];

/// `--tcp-flags MASK COMP`
pub(crate) fn tcp_flags(args: &[&str], _: &Given<'_>) -> Verdict {
    if args.len() < 2 {
        return bad(
            usize::MAX,
            "needs two flag lists: MASK COMP (e.g. SYN,ACK SYN)",
        );
    }
    if args.len() > 2 {
        return bad(2, format!("unexpected '{}'", args[2]));
    }
    for (i, a) in args.iter().enumerate() {
        for f in a.split(',') {
            if !TCP_FLAGS.contains(&f) {
                return bad(
                    i,
                    format!("unknown TCP flag '{f}' (SYN ACK FIN RST URG PSH ECE CWR ALL NONE)"),
                );
            }
        }
    }
    Fine
}

/// ICMP type names iptables knows, with their type numbers.
pub const ICMP_TYPES: &[&str] = &[
    "any",
    "echo-reply",
    "pong",
    "destination-unreachable",
    "network-unreachable",
    "host-unreachable",
    "protocol-unreachable",
    "port-unreachable",
    "fragmentation-needed",
    "source-route-failed",
    "network-unknown",
    "host-unknown",
    "network-prohibited",
    "host-prohibited",
    "TOS-network-unreachable",
    "TOS-host-unreachable",
    "communication-prohibited",
    "host-precedence-violation",
    "precedence-cutoff",
    "source-quench",
    "redirect",
    "network-redirect",
    "host-redirect",
    "TOS-network-redirect",
    "TOS-host-redirect",
    "echo-request",
    "ping",
    "router-advertisement",
    "router-solicitation",
    "time-exceeded",
    "ttl-exceeded",
    "ttl-zero-during-transit",
    "ttl-zero-during-reassembly",
    "parameter-problem",
    "ip-header-bad",
    "required-option-missing",
    "timestamp-request",
    "timestamp-reply",
    "address-mask-request",
    "address-mask-reply",
];

/// ICMPv6 type names iptables 1.8.9 knows.
pub const ICMP6_TYPES: &[&str] = &[
    "destination-unreachable",
    "no-route",
    "communication-prohibited",
    "beyond-scope",
    "address-unreachable",
    "port-unreachable",
    "failed-policy",
    "reject-route",
    "packet-too-big",
    "time-exceeded",
    "ttl-exceeded",
    "ttl-zero-during-transit",
    "ttl-zero-during-reassembly",
    "parameter-problem",
    "bad-header",
    "unknown-header-type",
    "unknown-option",
    "echo-request",
    "ping",
    "echo-reply",
    "pong",
    "router-solicitation",
    "router-advertisement",
    "neighbour-solicitation",
    "neighbor-solicitation",
    "neighbour-advertisement",
    "neighbor-advertisement",
    "redirect",
];

fn icmp_like(args: &[&str], names: &[&str], what: &str) -> Verdict {
    let a = match one(args) {
        Ok(a) => a,
        Err(v) => return v,
    };
    if names.iter().any(|n| n.eq_ignore_ascii_case(a)) {
        return Fine;
    }
    let (t, c) = a.split_once('/').map_or((a, None), |(t, c)| (t, Some(c)));
    let ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit()) && s.parse::<u8>().is_ok();
    if ok(t) && c.is_none_or(ok) {
        Fine
    } else {
        bad(0, format!("unknown {what} type '{a}'"))
    }
}

/// `--icmp-type`
pub(crate) fn icmp_type(args: &[&str], _: &Given<'_>) -> Verdict {
    icmp_like(args, ICMP_TYPES, "ICMP")
}

/// `--icmpv6-type`
pub(crate) fn icmp6_type(args: &[&str], _: &Given<'_>) -> Verdict {
    icmp_like(args, ICMP6_TYPES, "ICMPv6")
}

/// Protocols whose ports NAT targets can map.
pub(crate) const NAT_PORT_PROTOS: &[u8] = &[6, 17, 132, 33];

fn nat_ports(p: &str, g: &Given<'_>, shift: bool) -> Result<(), String> {
    if !g.proto.is_some_and(|x| NAT_PORT_PROTOS.contains(&x)) {
        return Err("a port needs -p tcp, -p udp, -p sctp or -p dccp in the rule".into());
    }
    // A service name as a whole (`ftp-data`) before a range (`10-20`).
    if p.bytes().any(|b| b.is_ascii_alphabetic()) && super::service_port(p).is_some() {
        return Ok(());
    }
    let (range, shifted) = match p.split_once('/') {
        Some((r, s)) => (r, Some(s)),
        None => (p, None),
    };
    if let Some(s) = shifted {
        if !shift {
            return Err("shifted port ranges (/port) are not supported here".into());
        }
        port_word(s)?;
    }
    let (lo, hi) = range.split_once(['-', ':']).unwrap_or((range, range));
    let num = |s: &str| -> Result<u16, String> {
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse::<u16>()
                .map_err(|_| format!("port {s} is out of range (0-65535)"))
        } else {
            Err(format!("'{s}' is not a port number"))
        }
    };
    let (lo, hi) = (num(lo)?, num(hi)?);
    if lo > hi {
        return Err(format!("port range {range} is reversed"));
    }
    Ok(())
}

/// `--to-destination` / `--to-source`: `[addr[-addr]][:port[-port[/port]]]`,
/// IPv6 addresses in brackets when a port follows.
pub(crate) fn nat_to(args: &[&str], g: &Given<'_>) -> Verdict {
    let a = match one(args) {
        Ok(a) => a,
        Err(v) => return v,
    };
    // The common `10.0.0.1:8080` (kube-proxy writes one per endpoint)
    // without the general reading below, which accepts it too.
    if g.family == Family::Ipv4
        && g.proto.is_some_and(|x| NAT_PORT_PROTOS.contains(&x))
        && let Some((x, p)) = a.split_once(':')
        && dotted_quad(x).is_some()
        && !p.is_empty()
        && p.len() <= 5
        && p.bytes().all(|b| b.is_ascii_digit())
        && p.parse::<u16>().is_ok()
    {
        return Fine;
    }
    let (addrs, port) = if let Some(rest) = a.strip_prefix('[') {
        match rest.split_once(']') {
            Some((addrs, after)) => match after {
                "" => (addrs, None),
                p => match p.strip_prefix(':') {
                    Some(p) => (addrs, Some(p)),
                    None => return bad(0, format!("unexpected '{p}' after ']'")),
                },
            },
            None => return bad(0, "missing ']'"),
        }
    } else if g.family == Family::Ipv6 {
        (a, None)
    } else {
        match a.split_once(':') {
            Some((x, p)) => (x, Some(p)),
            None => (a, None),
        }
    };
    if !addrs.is_empty() {
        let (x, y) = addrs
            .split_once('-')
            .map_or((addrs, None), |(x, y)| (x, Some(y)));
        for s in std::iter::once(x).chain(y) {
            if let Err(e) = parse_addr(s, g.family) {
                return bad(0, e);
            }
        }
    }
    if let Some(p) = port
        && let Err(e) = nat_ports(p, g, true)
    {
        return bad(0, e);
    }
    if addrs.is_empty() && port.is_none() {
        return bad(0, "needs an address or a port");
    }
    Fine
}

/// `--to-ports` of REDIRECT and MASQUERADE: `port[-port]`.
pub(crate) fn to_ports(args: &[&str], g: &Given<'_>) -> Verdict {
    let a = match one(args) {
        Ok(a) => a,
        Err(v) => return v,
    };
    match nat_ports(a, g, false) {
        Ok(()) => Fine,
        Err(e) => bad(0, e),
    }
}

/// The rate of `limit` / `hashlimit`: `N[/second|/minute|/hour|/day]`
/// (any prefix of the unit word).
pub(crate) fn rate(args: &[&str], _: &Given<'_>) -> Verdict {
    let a = match one(args) {
        Ok(a) => a,
        Err(v) => return v,
    };
    let (n, unit) = a.split_once('/').map_or((a, None), |(n, u)| (n, Some(u)));
    let unit_ok = unit.is_none_or(|u| {
        !u.is_empty()
            && ["second", "minute", "hour", "day"]
                .iter()
                .any(|w| w.starts_with(u))
    });
    match n.parse::<u64>() {
        Ok(v) if v > 0 && unit_ok => Fine,
        _ => bad(
            0,
            format!("bad rate '{a}': write N/second, N/minute, N/hour or N/day"),
        ),
    }
}

/// The rate of `hashlimit`, also in bytes (`1kb/s`, `512b/s`).
pub(crate) fn hashlimit_rate(args: &[&str], g: &Given<'_>) -> Verdict {
    let a = match one(args) {
        Ok(a) => a,
        Err(v) => return v,
    };
    let lower = a.to_ascii_lowercase();
    if let Some((n, _)) = lower.split_once("b/")
        && n.trim_end_matches(['k', 'm']).parse::<u64>().is_ok()
    {
        return Fine;
    }
    if let Some(n) = lower.strip_suffix("b")
        && n.trim_end_matches(['k', 'm']).parse::<u64>().is_ok()
    {
        return Fine;
    }
    rate(args, g)
}

/// `value[/mask]` of an 8-bit field, or a TOS symbol.
pub(crate) fn tos_value(args: &[&str], _: &Given<'_>) -> Verdict {
    let a = match one(args) {
        Ok(a) => a,
        Err(v) => return v,
    };
    const SYMBOLS: &[&str] = &[
        "Minimize-Delay",
        "Maximize-Throughput",
        "Maximize-Reliability",
        "Minimize-Cost",
        "Normal-Service",
    ];
    if one_of(a, SYMBOLS) {
        return Fine;
    }
    let (v, m) = a.split_once('/').map_or((a, None), |(v, m)| (v, Some(m)));
    let byte = |s: &str| parse_num(s).is_some_and(|n| n <= 255);
    if byte(v) && m.is_none_or(byte) {
        Fine
    } else if !v.starts_with(|c: char| c.is_ascii_digit()) {
        bad(0, format!("unknown TOS symbol '{a}'"))
    } else {
        bad(0, format!("'{a}' is not value[/mask] in 0-255"))
    }
}

/// DSCP class names.
pub const DSCP_CLASSES: &[&str] = &[
    "CS0", "CS1", "CS2", "CS3", "CS4", "CS5", "CS6", "CS7", "BE", "AF11", "AF12", "AF13", "AF21",
    "AF22", "AF23", "AF31", "AF32", "AF33", "AF41", "AF42", "AF43", "EF",
];

/// Syslog levels LOG accepts.
pub(crate) fn log_level(args: &[&str], _: &Given<'_>) -> Verdict {
    let a = match one(args) {
        Ok(a) => a,
        Err(v) => return v,
    };
    const NAMES: &[&str] = &[
        "alert", "crit", "debug", "emerg", "error", "info", "notice", "panic", "warning", "warn",
        "err",
    ];
    if one_of(a, NAMES) || parse_num(a).is_some_and(|n| n <= 7) {
        Fine
    } else {
        bad(
            0,
            format!(
                "log level '{a}' unknown: 0-7 or emerg, alert, crit, error, warning, notice, info, debug"
            ),
        )
    }
}

/// `HH:MM[:SS]`
pub(crate) fn daytime(args: &[&str], _: &Given<'_>) -> Verdict {
    let a = match one(args) {
        Ok(a) => a,
        Err(v) => return v,
    };
    let parts: Vec<&str> = a.split(':').collect();
    let limits = [23u32, 59, 59];
    let ok = (2..=3).contains(&parts.len())
        && parts
            .iter()
            .zip(limits)
            .all(|(p, l)| !p.is_empty() && p.len() <= 2 && p.parse::<u32>().is_ok_and(|n| n <= l));
    if ok {
        Fine
    } else {
        bad(0, format!("'{a}' is not a time of day HH:MM[:SS]"))
    }
}

/// `YYYY[-MM[-DD[Thh[:mm[:ss]]]]]`
pub(crate) fn date(args: &[&str], _: &Given<'_>) -> Verdict {
    let a = match one(args) {
        Ok(a) => a,
        Err(v) => return v,
    };
    let (d, t) = a.split_once('T').map_or((a, None), |(d, t)| (d, Some(t)));
    let dp: Vec<&str> = d.split('-').collect();
    let num_ok = |s: &str, lo: u32, hi: u32| s.parse::<u32>().is_ok_and(|n| (lo..=hi).contains(&n));
    let date_ok = !dp.is_empty()
        && dp.len() <= 3
        && num_ok(dp[0], 1970, 2038)
        && dp.get(1).is_none_or(|m| num_ok(m, 1, 12))
        && dp.get(2).is_none_or(|x| num_ok(x, 1, 31));
    let time_ok = t.is_none_or(|t| {
        let tp: Vec<&str> = t.split(':').collect();
        tp.len() <= 3 && tp.iter().zip([23, 59, 59]).all(|(p, l)| num_ok(p, 0, l))
    });
    if date_ok && time_ok {
        Fine
    } else {
        bad(
            0,
            format!("'{a}' is not a date YYYY[-MM[-DD[Thh[:mm[:ss]]]]]"),
        )
    }
}

/// `--weekdays Mon,Tue` or `1,2`.
pub(crate) fn weekdays(args: &[&str], _: &Given<'_>) -> Verdict {
    let a = match one(args) {
        Ok(a) => a,
        Err(v) => return v,
    };
    const DAYS: &[&str] = &["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    for w in a.split(',') {
        let ok = one_of(w, DAYS)
            || one_of(
                w,
                &[
                    "Monday",
                    "Tuesday",
                    "Wednesday",
                    "Thursday",
                    "Friday",
                    "Saturday",
                    "Sunday",
                ],
            )
            || w.parse::<u8>().is_ok_and(|n| (1..=7).contains(&n));
        if !ok {
            return bad(0, format!("'{w}' is not a weekday (Mon-Sun or 1-7)"));
        }
    }
    Fine
}

/// `--monthdays 1,15`
pub(crate) fn monthdays(args: &[&str], _: &Given<'_>) -> Verdict {
    let a = match one(args) {
        Ok(a) => a,
        Err(v) => return v,
    };
    for w in a.split(',') {
        if !w.parse::<u8>().is_ok_and(|n| (1..=31).contains(&n)) {
            return bad(0, format!("'{w}' is not a day of the month (1-31)"));
        }
    }
    Fine
}

/// `NAME FLAGS` of `-m set` and the SET target: flags are `src`/`dst`,
/// comma-separated, at most six.
pub(crate) fn set_name_flags(args: &[&str], _: &Given<'_>) -> Verdict {
    if args.len() < 2 {
        return bad(
            usize::MAX,
            "needs two values: the set's name and src/dst flags",
        );
    }
    if args.len() > 2 {
        return bad(2, format!("unexpected '{}'", args[2]));
    }
    if args[0].len() > 31 {
        return bad(0, "set name longer than 31 characters");
    }
    let flags: Vec<&str> = args[1].split(',').collect();
    if flags.len() > 6 || flags.iter().any(|f| *f != "src" && *f != "dst") {
        return bad(
            1,
            format!("'{}' is not a list of src and dst (at most six)", args[1]),
        );
    }
    Fine
}

/// `--ctproto`: a protocol; 0 matches nothing (newer iptables refuses it).
pub(crate) fn ct_proto(args: &[&str], _: &Given<'_>) -> Verdict {
    let a = match one(args) {
        Ok(a) => a,
        Err(v) => return v,
    };
    match super::protocol_number(a) {
        None => bad(0, format!("unknown protocol '{a}'")),
        Some(0) => Warn(
            0,
            "protocol 0 matches no connection (newer iptables refuses it)".into(),
        ),
        Some(_) => Fine,
    }
}

/// `--vproto` and other plain protocol values.
pub(crate) fn proto(args: &[&str], _: &Given<'_>) -> Verdict {
    let a = match one(args) {
        Ok(a) => a,
        Err(v) => return v,
    };
    if super::protocol_number(a).is_some() {
        Fine
    } else {
        bad(0, format!("unknown protocol '{a}'"))
    }
}

/// `--uid-owner` / `--gid-owner`: `id[-id]` or a name.
pub(crate) fn owner_id(args: &[&str], _: &Given<'_>) -> Verdict {
    let a = match one(args) {
        Ok(a) => a,
        Err(v) => return v,
    };
    let (x, y) = a.split_once('-').unwrap_or((a, a));
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if numeric(x) && numeric(y) {
        match (x.parse::<u32>(), y.parse::<u32>()) {
            (Ok(lo), Ok(hi)) if lo <= hi => Fine,
            _ => bad(0, format!("'{a}' is not an id or a range lo-hi")),
        }
    } else if a.contains(char::is_whitespace) || a.is_empty() {
        bad(0, format!("'{a}' is not a user or group"))
    } else {
        // A user or group name, looked up on the machine that loads it.
        Fine
    }
}

/// `--label`: a number 0-127 or a name from `connlabel.conf`.
pub(crate) fn connlabel(args: &[&str], _: &Given<'_>) -> Verdict {
    let a = match one(args) {
        Ok(a) => a,
        Err(v) => return v,
    };
    if a.bytes().all(|b| b.is_ascii_digit()) && !a.is_empty() {
        return match a.parse::<u32>() {
            Ok(n) if n <= 127 => Fine,
            _ => bad(0, format!("label {a} is out of range (0-127)")),
        };
    }
    Warn(
        0,
        format!(
            "label name '{a}' must be defined in /etc/xtables/connlabel.conf where the rules are loaded"
        ),
    )
}

#[cfg(test)]
mod quad_tests {
    use super::*;

    #[test]
    fn the_fast_dotted_quad_reader_agrees_with_the_general_parser() {
        for s in [
            "10.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "256.0.0.1",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.5",
            "1..2.3",
            "1.2.3.4 ",
            "",
            "1234.1.1.1",
            "9.09.9.9",
            "1.2.3.4/8",
            "a.b.c.d",
            "00.0.0.0",
        ] {
            assert_eq!(dotted_quad(s), s.parse::<Ipv4Addr>().ok(), "{s:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(f: Family, proto: Option<u8>) -> Given<'static> {
        Given {
            opts: smallvec::SmallVec::new(),
            proto,
            family: f,
        }
    }

    #[test]
    fn numbers_like_strtoul() {
        assert_eq!(parse_num("0x10"), Some(16));
        assert_eq!(parse_num("010"), Some(8));
        assert_eq!(parse_num("-1"), None);
        assert_eq!(parse_num(""), None);
    }

    #[test]
    fn nat_targets() {
        let v4 = g(Family::Ipv4, Some(6));
        assert_eq!(nat_to(&["1.2.3.4:80-90"], &v4), Fine);
        assert!(matches!(nat_to(&["1.2.3.4:80-65536"], &v4), Bad(..)));
        let v6 = g(Family::Ipv6, None);
        assert!(matches!(nat_to(&["[dead::beef]:1025-65535"], &v6), Bad(..)));
        assert_eq!(nat_to(&["[dead::beef]"], &v6), Fine);
        assert_eq!(nat_to(&["dead::beef-dead::fee7"], &v6), Fine);
    }

    #[test]
    fn hosts() {
        assert!(check_host("1.2.3.4/33", Family::Ipv4).is_err());
        assert!(check_host("10.0.0.0/255.0.0.0", Family::Ipv4).is_ok());
        assert!(check_host("example.com", Family::Ipv4).is_ok());
        assert!(check_host("::1", Family::Ipv4).is_err());
        assert!(check_host("fe80::/10", Family::Ipv6).is_ok());
    }
}
