//! Entry lines: `/proc/net/nf_conntrack`, `conntrack -L` (also `-o extended`,
//! `-o id`) and `conntrack -E` event lines.
//!
//! A hand-written byte scanner rather than nom: this runs over millions of
//! lines, and each line is a flat list of words. No allocation per entry;
//! errors allocate their message only when they happen.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{
    ConnTable, Counters, Entry, Flags, L3, Problems, Severity, State, Tuple, has_ports, problem,
};

/// A line that could not be read: byte column and message.
struct LineError {
    col: usize,
    msg: String,
}

fn err(col: usize, msg: impl Into<String>) -> LineError {
    LineError {
        col,
        msg: msg.into(),
    }
}

/// Interned strings (secctx, helper): few distinct values, many entries.
struct Interner {
    strings: Vec<String>,
    index: HashMap<Vec<u8>, u32>,
}

impl Interner {
    fn new() -> Self {
        Interner {
            strings: vec![String::new()],
            index: HashMap::new(),
        }
    }

    fn get(&mut self, s: &[u8]) -> u32 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.strings.len() as u32;
        self.strings.push(String::from_utf8_lossy(s).into_owned());
        self.index.insert(s.to_vec(), i);
        i
    }
}

/// Parses entry lines. Bad lines become problems; everything else is kept.
pub fn parse_entries(input: &[u8], name: &str) -> ConnTable {
    let lines = memchr::memchr_iter(b'\n', input).count() + 1;
    let mut entries = Vec::with_capacity(lines);
    let mut problems = Problems::default();
    let mut strings = Interner::new();
    let mut trailer_count = None;
    let mut start = 0usize;
    let mut line_no = 0u32;
    while start < input.len() {
        let end = memchr::memchr(b'\n', &input[start..]).map_or(input.len(), |i| start + i);
        let raw = &input[start..end];
        start = end + 1;
        line_no = line_no.saturating_add(1);
        let line = trim_end(raw);
        if line.is_empty() || line[0] == b'#' {
            continue;
        }
        if line.starts_with(b"conntrack v") {
            // Trailer: "conntrack v1.4.7 (conntrack-tools): 5 flow entries have been shown."
            trailer_count = trailer(line);
            if trailer_count.is_none() {
                problems.push(problem(
                    line_no,
                    raw,
                    0,
                    Severity::Warning,
                    "a conntrack-tools message that is not the `N flow entries have been shown` trailer".into(),
                ));
            }
            continue;
        }
        match parse_line(line, line_no, &mut strings) {
            Ok(e) => entries.push(e),
            Err(e) => problems.push(problem(line_no, raw, e.col, Severity::Error, e.msg)),
        }
    }
    ConnTable {
        name: name.into(),
        entries,
        strings: strings.strings,
        trailer_count,
        problems: problems.list,
        problems_dropped: problems.dropped,
    }
}

fn trailer(line: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(line).ok()?;
    let (_, rest) = text.split_once("):")?;
    let mut words = rest.split_whitespace();
    let n = words.next()?.parse().ok()?;
    (words.next()? == "flow").then_some(n)
}

fn trim_end(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// Splits a line into words with their byte offsets.
struct Words<'a> {
    line: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Words<'a> {
    type Item = (usize, &'a [u8]);

    fn next(&mut self) -> Option<(usize, &'a [u8])> {
        let l = self.line;
        let mut i = self.pos;
        while i < l.len() && (l[i] == b' ' || l[i] == b'\t') {
            i += 1;
        }
        if i >= l.len() {
            self.pos = i;
            return None;
        }
        let s = i;
        while i < l.len() && l[i] != b' ' && l[i] != b'\t' {
            i += 1;
        }
        self.pos = i;
        Some((s, &l[s..i]))
    }
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).chars().take(60).collect()
}

fn dec_u64(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 20 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in v {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(d as u64)?;
    }
    Some(n)
}

fn dec_u32(v: &[u8]) -> Option<u32> {
    dec_u64(v).and_then(|n| u32::try_from(n).ok())
}

fn dec_u16(v: &[u8]) -> Option<u16> {
    dec_u64(v).and_then(|n| u16::try_from(n).ok())
}

/// Decimal or `0x` hexadecimal (gre keys, marks on some tools).
fn num_u32(v: &[u8]) -> Option<u32> {
    match v {
        [b'0', b'x' | b'X', hex @ ..] if !hex.is_empty() && hex.len() <= 8 => {
            std::str::from_utf8(hex)
                .ok()
                .and_then(|h| u32::from_str_radix(h, 16).ok())
        }
        _ => dec_u32(v),
    }
}

fn ipv4(v: &[u8]) -> Option<Ipv4Addr> {
    let mut out = [0u8; 4];
    let mut part = 0usize;
    let mut acc: u32 = 0;
    let mut digits = 0;
    for &b in v {
        if b == b'.' {
            if digits == 0 || part == 3 {
                return None;
            }
            out[part] = acc as u8;
            part += 1;
            acc = 0;
            digits = 0;
        } else {
            let d = b.wrapping_sub(b'0');
            if d > 9 || digits == 3 {
                return None;
            }
            acc = acc * 10 + d as u32;
            if acc > 255 {
                return None;
            }
            digits += 1;
        }
    }
    if part != 3 || digits == 0 {
        return None;
    }
    out[3] = acc as u8;
    Some(Ipv4Addr::from(out))
}

fn ip(v: &[u8]) -> Option<IpAddr> {
    if let Some(a) = ipv4(v) {
        return Some(IpAddr::V4(a));
    }
    std::str::from_utf8(v)
        .ok()?
        .parse::<Ipv6Addr>()
        .ok()
        .map(IpAddr::V6)
}

/// Which parts of a tuple were seen (bits).
const SRC: u8 = 1;
const DST: u8 = 2;
const SPORT: u8 = 4;
const DPORT: u8 = 8;
const TYPE: u8 = 16;
const CODE: u8 = 32;

fn parse_line(line: &[u8], line_no: u32, strings: &mut Interner) -> Result<Entry, LineError> {
    let mut words = Words { line, pos: 0 }.peekable();
    // Event prefixes of `conntrack -E` (`[NEW]`, `[DESTROY]`) and timestamps.
    let mut destroyed = false;
    while let Some(&(_, w)) = words.peek() {
        if w.first() == Some(&b'[') {
            destroyed |= w == b"[DESTROY]";
            words.next();
        } else {
            break;
        }
    }
    let (c0, w0) = words.next().ok_or_else(|| err(0, "an empty entry"))?;
    let mut l3 = None;
    let (l4_col, l4_name) = if w0 == b"ipv4" || w0 == b"ipv6" {
        l3 = Some(if w0 == b"ipv4" { L3::Ipv4 } else { L3::Ipv6 });
        let (c, n) = words.next().ok_or_else(|| {
            err(
                line.len(),
                "truncated: expected the l3 protocol number after the family",
            )
        })?;
        let want: &[u8] = if w0 == b"ipv4" { b"2" } else { b"10" };
        if n != want {
            return Err(err(
                c,
                format!(
                    "expected l3 protocol number {} after {}, found `{}`",
                    show(want),
                    show(w0),
                    show(n)
                ),
            ));
        }
        words
            .next()
            .ok_or_else(|| err(line.len(), "truncated: expected the l4 protocol name"))?
    } else {
        (c0, w0)
    };
    if l4_name.is_empty()
        || !l4_name
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        || l4_name.contains(&b'=')
    {
        return Err(err(
            l4_col,
            format!(
                "expected a protocol name (tcp, udp, icmp, ...) or `ipv4`/`ipv6`, found `{}`",
                show(l4_name)
            ),
        ));
    }
    let (pc, pn) = words
        .next()
        .ok_or_else(|| err(line.len(), "truncated: expected the l4 protocol number"))?;
    let proto = dec_u64(pn)
        .and_then(|n| u8::try_from(n).ok())
        .ok_or_else(|| {
            err(
                pc,
                format!(
                    "expected the l4 protocol number (0-255), found `{}`",
                    show(pn)
                ),
            )
        })?;
    // A DESTROY event has no timeout left: the tuple follows at once.
    let timeout = if destroyed && words.peek().is_some_and(|(_, w)| w.contains(&b'=')) {
        0
    } else {
        let (tc, tn) = words
            .next()
            .ok_or_else(|| err(line.len(), "truncated: expected the timeout in seconds"))?;
        dec_u32(tn).ok_or_else(|| {
            err(
                tc,
                format!("expected the timeout in seconds, found `{}`", show(tn)),
            )
        })?
    };

    let mut e = Entry {
        orig: Tuple::EMPTY,
        reply: Tuple::EMPTY,
        orig_counters: Counters::default(),
        reply_counters: Counters::default(),
        timeout,
        mark: 0,
        use_count: 0,
        id: 0,
        line: line_no,
        secctx: 0,
        helper: 0,
        zone: 0,
        flags: Flags(if destroyed { Flags::DESTROYED } else { 0 }),
        l3: l3.unwrap_or(L3::Ipv4),
        proto,
        state: State::NONE,
    };
    if let Some(&(sc, w)) = words.peek()
        && !w.contains(&b'=')
        && w.first() != Some(&b'[')
    {
        words.next();
        e.state = State::from_bytes(w);
        if e.state == State::OTHER && !w.iter().all(|b| b.is_ascii_uppercase() || *b == b'_') {
            return Err(err(
                sc,
                format!(
                    "expected a state (ESTABLISHED, ...) or src=, found `{}`",
                    show(w)
                ),
            ));
        }
    }

    // 0 = original tuple, 1 = reply tuple, 2 = after the tuples.
    let mut dir = 0usize;
    let mut seen = [0u8; 2];
    let mut icmp_type = [0u16; 2];
    let mut prev_key: &[u8] = b"";
    for (col, w) in words {
        if w.first() == Some(&b'[') {
            match w {
                b"[ASSURED]" => e.flags.0 |= Flags::ASSURED,
                b"[UNREPLIED]" => e.flags.0 |= Flags::UNREPLIED,
                b"[OFFLOAD]" => e.flags.0 |= Flags::OFFLOAD,
                b"[HW_OFFLOAD]" => e.flags.0 |= Flags::HW_OFFLOAD,
                _ => {}
            }
            continue;
        }
        let Some(eq) = memchr::memchr(b'=', w) else {
            return Err(err(
                col,
                format!("expected key=value or [FLAG], found `{}`", show(w)),
            ));
        };
        let (key, val) = (&w[..eq], &w[eq + 1..]);
        let vcol = col + eq + 1;
        let bad = |what: &str| {
            err(
                vcol,
                format!("{}: expected {what}, found `{}`", show(key), show(val)),
            )
        };
        match key {
            b"src" | b"dst" => {
                let bit = if key == b"src" { SRC } else { DST };
                if dir < 2 && seen[dir] & bit != 0 {
                    dir += 1;
                }
                if dir >= 2 {
                    return Err(err(
                        col,
                        format!("a third `{}=` after both tuples", show(key)),
                    ));
                }
                let a = ip(val).ok_or_else(|| bad("an IP address"))?;
                let t = if dir == 0 { &mut e.orig } else { &mut e.reply };
                if bit == SRC {
                    t.src = a;
                } else {
                    t.dst = a;
                }
                seen[dir] |= bit;
            }
            b"sport" | b"dport" | b"srckey" | b"dstkey" | b"type" | b"code"
                if dir < 2 && seen[dir] & (SRC | DST) != 0 =>
            {
                let t = if dir == 0 { &mut e.orig } else { &mut e.reply };
                match key {
                    b"sport" => {
                        t.sport = dec_u16(val).ok_or_else(|| bad("a port (0-65535)"))?;
                        seen[dir] |= SPORT;
                    }
                    b"dport" => {
                        t.dport = dec_u16(val).ok_or_else(|| bad("a port (0-65535)"))?;
                        seen[dir] |= DPORT;
                    }
                    b"srckey" => {
                        t.sport = num_u32(val).ok_or_else(|| bad("a gre key"))? as u16;
                        seen[dir] |= SPORT;
                    }
                    b"dstkey" => {
                        t.dport = num_u32(val).ok_or_else(|| bad("a gre key"))? as u16;
                        seen[dir] |= DPORT;
                    }
                    b"type" => {
                        let v = dec_u16(val)
                            .filter(|v| *v < 256)
                            .ok_or_else(|| bad("an ICMP type"))?;
                        icmp_type[dir] = v;
                        t.dport = (v << 8) | (t.dport & 0xff);
                        seen[dir] |= TYPE;
                    }
                    _ => {
                        let v = dec_u16(val)
                            .filter(|v| *v < 256)
                            .ok_or_else(|| bad("an ICMP code"))?;
                        t.dport = (icmp_type[dir] << 8) | v;
                        seen[dir] |= CODE;
                    }
                }
            }
            b"id" if prev_key == b"code" && dir < 2 => {
                let t = if dir == 0 { &mut e.orig } else { &mut e.reply };
                t.sport = dec_u16(val).ok_or_else(|| bad("an ICMP id"))?;
            }
            b"packets" | b"bytes" if dir < 2 => {
                let n = dec_u64(val).ok_or_else(|| bad("a number"))?;
                let c = if dir == 0 {
                    &mut e.orig_counters
                } else {
                    &mut e.reply_counters
                };
                if key == b"packets" {
                    c.packets = n;
                } else {
                    c.bytes = n;
                }
                e.flags.0 |= Flags::COUNTERS;
            }
            b"mark" => {
                e.mark = num_u32(val).ok_or_else(|| bad("a number"))?;
                e.flags.0 |= Flags::MARK;
                dir = 2;
            }
            b"use" => {
                e.use_count = dec_u32(val).ok_or_else(|| bad("a number"))?;
                e.flags.0 |= Flags::USE;
                dir = 2;
            }
            b"zone" => {
                e.zone = dec_u16(val).ok_or_else(|| bad("a zone number"))?;
                e.flags.0 |= Flags::ZONE;
                dir = 2;
            }
            b"id" => {
                e.id = dec_u32(val).ok_or_else(|| bad("a number"))?;
                e.flags.0 |= Flags::ID;
                dir = 2;
            }
            b"secctx" => {
                e.secctx = strings.get(val);
                dir = 2;
            }
            b"helper" => {
                e.helper = strings.get(val);
                dir = 2;
            }
            // labels=, delta-time=, zone-orig=, timeout=, ... : kept in the
            // line text only.
            _ => {}
        }
        prev_key = key;
    }
    // A truncated line is the common failure: say which part is missing.
    let ports = has_ports(proto);
    let is_icmp = proto == 1 || proto == 58;
    for (d, name) in [(0usize, "original"), (1, "reply")] {
        let s = seen[d];
        let need: &[(u8, &str)] = if ports {
            &[
                (SRC, "src="),
                (DST, "dst="),
                (SPORT, "sport="),
                (DPORT, "dport="),
            ]
        } else if is_icmp {
            &[
                (SRC, "src="),
                (DST, "dst="),
                (TYPE, "type="),
                (CODE, "code="),
            ]
        } else {
            &[(SRC, "src="), (DST, "dst=")]
        };
        if let Some((_, what)) = need.iter().find(|(bit, _)| s & bit == 0) {
            return Err(err(
                line.len(),
                format!("truncated or incomplete entry: the {name} tuple has no {what}"),
            ));
        }
    }
    let fam = |a: IpAddr| matches!(a, IpAddr::V4(_));
    let v4 = fam(e.orig.src);
    if fam(e.orig.dst) != v4 || fam(e.reply.src) != v4 || fam(e.reply.dst) != v4 {
        return Err(err(0, "the entry mixes IPv4 and IPv6 addresses"));
    }
    match l3 {
        Some(L3::Ipv4) if !v4 => return Err(err(0, "an ipv4 entry with IPv6 addresses")),
        Some(L3::Ipv6) if v4 => return Err(err(0, "an ipv6 entry with IPv4 addresses")),
        _ => e.l3 = if v4 { L3::Ipv4 } else { L3::Ipv6 },
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_parser() {
        assert_eq!(ipv4(b"10.0.0.1"), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(ipv4(b"255.255.255.255"), Some(Ipv4Addr::BROADCAST));
        for bad in [
            &b"256.0.0.1"[..],
            b"1.2.3",
            b"1.2.3.4.5",
            b"1..2.3",
            b"",
            b"1.2.3.4a",
            b"0001.2.3.4",
        ] {
            assert_eq!(ipv4(bad), None, "{}", show(bad));
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(dec_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(dec_u64(b"18446744073709551616"), None);
        assert_eq!(dec_u16(b"65536"), None);
        assert_eq!(num_u32(b"0x1f"), Some(31));
        assert_eq!(num_u32(b"0x"), None);
    }

    #[test]
    fn trailer_line() {
        assert_eq!(
            trailer(b"conntrack v1.4.7 (conntrack-tools): 27 flow entries have been shown."),
            Some(27)
        );
        assert_eq!(trailer(b"conntrack v1.4.7 (conntrack-tools): nope"), None);
    }

    #[test]
    fn icmp_and_gre() {
        let t = parse_entries(
            b"ipv4 2 icmp 1 28 src=1.1.1.1 dst=2.2.2.2 type=8 code=0 id=25600 src=2.2.2.2 dst=1.1.1.1 type=0 code=0 id=25600 mark=0 use=1 id=77\n\
              ipv4 2 gre 47 179 src=10.0.0.1 dst=10.0.0.2 srckey=0x1234 dstkey=0x0 src=10.0.0.2 dst=10.0.0.1 srckey=0x0 dstkey=0x1234 mark=0 use=1\n\
              ipv6 10 unknown 41 590 src=2001:db8::1 dst=2001:db8::2 src=2001:db8::2 dst=2001:db8::1 mark=0 zone=3 use=2\n",
            "t",
        );
        assert!(t.problems.is_empty(), "{:?}", t.problems);
        let [icmp, gre, unk] = &t.entries[..] else {
            panic!()
        };
        assert_eq!(
            (icmp.orig.sport, icmp.orig.dport, icmp.id),
            (25600, 8 << 8, 77)
        );
        assert!(!icmp.nat().dnat && !icmp.nat().snat);
        assert_eq!((gre.orig.sport, gre.proto_name()), (0x1234, "gre"));
        assert_eq!((unk.l3, unk.proto, unk.zone), (L3::Ipv6, 41, 3));
    }
}
