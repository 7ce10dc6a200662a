//! Rules turned into a form that is quick to test against a packet:
//! addresses, ports and marks are parsed once per rule, and jumps point at
//! chain indices.

use std::net::IpAddr;

use crate::model::{Match, Opt, Rule, Table, Target, TargetKind};
use crate::typed::{MarkMask, PortRange, parse_port_list, parse_u32};

use super::packet::{CtState, Packet, parse_icmp_type, parse_tcp_flags, protocol_number};

/// An address with a mask, either family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Net {
    addr: u128,
    mask: u128,
    v6: bool,
}

fn bits(a: IpAddr) -> (u128, bool) {
    match a {
        IpAddr::V4(a) => (u32::from(a) as u128, false),
        IpAddr::V6(a) => (u128::from(a), true),
    }
}

impl Net {
    /// Parses `1.2.3.4`, `10.0.0.0/8`, `1.2.3.0/255.255.255.0`, `fd00::/8`.
    pub(crate) fn parse(s: &str) -> Option<Net> {
        let (a, m) = match s.split_once('/') {
            Some((a, m)) => (a, Some(m)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().ok()?;
        let (addr, v6) = bits(addr);
        let width = if v6 { 128 } else { 32 };
        let full: u128 = if v6 { u128::MAX } else { u32::MAX as u128 };
        let mask = match m {
            None => full,
            Some(m) => {
                if let Ok(len) = m.parse::<u32>() {
                    if len > width {
                        return None;
                    }
                    if len == 0 {
                        0
                    } else {
                        (full << (width - len)) & full
                    }
                } else {
                    bits(m.parse::<IpAddr>().ok()?).0
                }
            }
        };
        Some(Net {
            addr: addr & mask,
            mask,
            v6,
        })
    }

    /// The one address it holds (a /32 or /128), as bits and family.
    pub(crate) fn exact(&self) -> Option<(u128, bool)> {
        let full: u128 = if self.v6 { u128::MAX } else { u32::MAX as u128 };
        (self.mask == full).then_some((self.addr, self.v6))
    }

    /// True when `a` is inside.
    pub(crate) fn contains(&self, a: IpAddr) -> bool {
        let (b, v6) = bits(a);
        v6 == self.v6 && b & self.mask == self.addr
    }

    /// First and last address and the family (IPv6 when true); `None`
    /// for a mask that is not a prefix (`0.0.0.255`).
    pub(crate) fn bounds(&self) -> Option<(u128, u128, bool)> {
        let full: u128 = if self.v6 { u128::MAX } else { u32::MAX as u128 };
        let host = !self.mask & full;
        (host & host.wrapping_add(1) == 0).then_some((self.addr, self.addr | host, self.v6))
    }
}

/// An inclusive address range (`-m iprange`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Range {
    lo: u128,
    hi: u128,
    v6: bool,
}

impl Range {
    fn parse(s: &str) -> Option<Range> {
        let (a, b) = s.split_once('-').unwrap_or((s, s));
        let (lo, v6) = bits(a.trim().parse().ok()?);
        let (hi, _) = bits(b.trim().parse().ok()?);
        Some(Range { lo, hi, v6 })
    }
    fn contains(&self, a: IpAddr) -> bool {
        let (b, v6) = bits(a);
        v6 == self.v6 && self.lo <= b && b <= self.hi
    }

    /// First and last address and the family (IPv6 when true).
    pub(crate) fn bounds(&self) -> (u128, u128, bool) {
        (self.lo, self.hi, self.v6)
    }
}

/// A port list; one range (the common case) needs no allocation.
#[derive(Debug, Clone)]
pub(crate) enum Ports {
    One(PortRange),
    Many(Vec<PortRange>),
}

impl Ports {
    fn contains(&self, p: u16) -> bool {
        match self {
            Ports::One(r) => r.contains(p),
            Ports::Many(l) => l.iter().any(|r| r.contains(p)),
        }
    }

    /// The ranges listed.
    pub(crate) fn ranges(&self) -> &[PortRange] {
        match self {
            Ports::One(r) => std::slice::from_ref(r),
            Ports::Many(l) => l,
        }
    }
}

/// An interface name test: exact, or a prefix when written with `+`.
#[derive(Debug, Clone)]
pub(crate) struct Iface {
    name: crate::model::Str,
    prefix: bool,
}

impl Iface {
    fn parse(s: &str) -> Iface {
        match s.strip_suffix('+') {
            Some(p) => Iface {
                name: p.into(),
                prefix: true,
            },
            None => Iface {
                name: s.into(),
                prefix: false,
            },
        }
    }
    /// The name and whether it is a prefix (`eth+`).
    pub(crate) fn pattern(&self) -> (&str, bool) {
        (self.name.as_str(), self.prefix)
    }

    fn matches(&self, name: Option<&str>) -> bool {
        let n = name.unwrap_or("");
        if self.prefix {
            n.starts_with(self.name.as_str())
        } else {
            n == self.name
        }
    }
}

/// Address types of `-m addrtype`, as bits.
pub(crate) mod addr_type {
    pub const UNSPEC: u16 = 1;
    pub const UNICAST: u16 = 2;
    pub const LOCAL: u16 = 4;
    pub const BROADCAST: u16 = 8;
    pub const ANYCAST: u16 = 16;
    pub const MULTICAST: u16 = 32;
    pub const BLACKHOLE: u16 = 64;
    pub const UNREACHABLE: u16 = 128;
    pub const PROHIBIT: u16 = 256;
    pub const THROW: u16 = 512;
    pub const NAT: u16 = 1024;
    pub const XRESOLVE: u16 = 2048;

    pub fn parse(list: &[crate::model::Str]) -> u16 {
        list.iter()
            .map(|t| match t.to_ascii_uppercase().as_str() {
                "UNSPEC" => UNSPEC,
                "UNICAST" => UNICAST,
                "LOCAL" => LOCAL,
                "BROADCAST" => BROADCAST,
                "ANYCAST" => ANYCAST,
                "MULTICAST" => MULTICAST,
                "BLACKHOLE" => BLACKHOLE,
                "UNREACHABLE" => UNREACHABLE,
                "PROHIBIT" => PROHIBIT,
                "THROW" => THROW,
                "NAT" => NAT,
                "XRESOLVE" => XRESOLVE,
                _ => 0,
            })
            .fold(0, |a, b| a | b)
    }
}

/// Conntrack states as bits (`--ctstate`), with the virtual SNAT/DNAT states.
pub(crate) mod ct_bits {
    pub const INVALID: u8 = 1;
    pub const NEW: u8 = 2;
    pub const ESTABLISHED: u8 = 4;
    pub const RELATED: u8 = 8;
    pub const UNTRACKED: u8 = 16;
    pub const SNAT: u8 = 32;
    pub const DNAT: u8 = 64;
}

/// A compiled test of one rule part. Each carries its own negation.
#[derive(Debug, Clone)]
pub(crate) enum Test {
    Proto(u8),
    /// `-m rpfilter`: the route back to the source.
    RpFilter {
        loose: bool,
        accept_local: bool,
        invert: bool,
    },
    Src(Net),
    Dst(Net),
    InIface(Iface),
    OutIface(Iface),
    Fragment,
    Sport(Ports),
    Dport(Ports),
    AnyPort(Ports),
    TcpFlags {
        mask: u8,
        comp: u8,
    },
    Icmp(Option<(u8, Option<u8>)>),
    CtState(u8),
    CtStatus(Vec<String>),
    CtProto(u8),
    CtOrigSrc(Net),
    CtOrigDst(Net),
    CtOrigDstPort(Ports),
    CtOrigSrcPort(Ports),
    CtReplSrc(Net),
    CtReplDst(Net),
    CtReplSrcPort(Ports),
    CtReplDstPort(Ports),
    CtDir(bool),
    Mark(MarkMask),
    Connmark(MarkMask),
    SrcType {
        types: u16,
        limit_in: bool,
    },
    DstType {
        types: u16,
        limit_out: bool,
    },
    SrcRange(Range),
    DstRange(Range),
    Length(PortRange),
    /// `-m mac --mac-source`.
    MacSource([u8; 6]),
    /// `-m ttl` / `-m hl`: the TTL or hop limit compared with a value.
    Ttl(Cmp, u8),
    /// An IPv6 extension header (`-m rt`, `hbh`, `dst`, `frag`) or AH: a
    /// trace packet carries none, except the fragment header of a fragment.
    Header(&'static str),
    /// Link-layer type, judged from the destination address.
    PktType(u16),
    Set {
        name: String,
        src: bool,
    },
    Random(f64),
    /// `-m owner`: the sending socket's uid or gid in a range, or any
    /// local socket at all.
    OwnerUid(u32, u32),
    OwnerGid(u32, u32),
    SocketExists,
    /// TOS, fragments, TCP options, IPv6 headers (see `fields`).
    Field(super::fields::FieldTest),
    /// Depends on state we do not have; the text says what we assume.
    Assume {
        matched: bool,
        what: String,
    },
}

/// How `-m ttl` and `-m hl` compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Lt,
    Gt,
}

/// One test and its `!`. `part` points back at the rule part for reports.
#[derive(Debug, Clone)]
pub(crate) struct Cond {
    pub test: Test,
    pub negated: bool,
    pub part: Part,
}

/// Which part of a rule a test came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "index")]
pub enum Part {
    /// `-p`
    Protocol,
    /// `-s`
    Source,
    /// `-d`
    Destination,
    /// `-i`
    InIface,
    /// `-o`
    OutIface,
    /// `-f`
    Fragment,
    /// `matches[n]`
    Match(u16),
}

/// How a MARK/CONNMARK target changes a mark: `new = (old & and) ^ xor`,
/// where for save/restore the xor part comes from the other mark.
#[derive(Debug, Clone, Copy)]
pub(crate) enum MarkOp {
    Mark { and: u32, xor: u32, or: u32 },
    ConnSet { and: u32, xor: u32, or: u32 },
    ConnSave { nfmask: u32, ctmask: u32 },
    ConnRestore { nfmask: u32, ctmask: u32 },
}

/// What a matching rule does.
#[derive(Debug, Clone)]
pub(crate) enum Act {
    None,
    Accept,
    Drop,
    Reject,
    Queue {
        bypass: bool,
    },
    Return,
    Jump(usize),
    Goto(usize),
    Undefined(String),
    Mark(MarkOp),
    Notrack,
    Dnat {
        addr: Option<IpAddr>,
        port: Option<NatPorts>,
    },
    Redirect {
        port: Option<NatPorts>,
    },
    Snat {
        addr: Option<IpAddr>,
        port: Option<NatPorts>,
    },
    Masquerade {
        port: Option<NatPorts>,
    },
    /// Another terminating extension (TPROXY, SYNPROXY ...): accepted here.
    OtherVerdict(String),
    /// A non-terminating extension (LOG, NFLOG ...): continue.
    Continue(String),
    /// DSCP, TOS, TCPMSS: change the packet and continue.
    Field(super::fields::FieldOp),
}

/// A rule ready to test.
#[derive(Debug, Clone)]
pub(crate) struct CRule {
    pub conds: Vec<Cond>,
    pub act: Act,
}

/// The ports a NAT target may give, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NatPorts {
    pub lo: u16,
    pub hi: u16,
}

impl NatPorts {
    /// The port the kernel gives a packet with port `now`: kept when it is
    /// already in the range (and the connection unique), else one from
    /// the range (the first for DNAT; SNAT picks at random, `random`).
    pub(crate) fn pick(self, now: u16) -> (u16, bool) {
        if (self.lo..=self.hi).contains(&now) {
            (now, false)
        } else {
            (self.lo, self.lo != self.hi)
        }
    }
}

fn port_of(s: &str) -> Option<NatPorts> {
    let (lo, hi) = s.split_once(['-', ':']).unwrap_or((s, s));
    let (lo, hi) = (lo.parse().ok()?, hi.parse().ok()?);
    (lo <= hi).then_some(NatPorts { lo, hi })
}

/// `addr[-addr][:port[-port]]`, `[v6]:port`, `:port`.
fn nat_to(s: &str) -> (Option<IpAddr>, Option<NatPorts>) {
    if let Some(rest) = s.strip_prefix('[') {
        let (a, after) = rest.split_once(']').unwrap_or((rest, ""));
        let addr = a.split('-').next().and_then(|a| a.parse().ok());
        return (addr, after.strip_prefix(':').and_then(port_of));
    }
    if s.matches(':').count() > 1 {
        return (s.split('-').next().and_then(|a| a.parse().ok()), None);
    }
    let (a, p) = match s.split_once(':') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let addr = a.split('-').next().and_then(|a| a.parse().ok());
    (addr, p.and_then(port_of))
}

fn mark_op(t: &Target) -> Option<MarkOp> {
    let first = t.opts.first()?;
    let mm = |o: Opt<'_>| MarkMask::parse(o.arg());
    let num = |n: &str| t.opt(n).and_then(|o| parse_u32(o.arg()));
    let conn = t.name == "CONNMARK";
    let (and, xor, or) = match first.name {
        "--set-xmark" => {
            let m = mm(first)?;
            (!m.mask, m.value, 0)
        }
        "--set-mark" => {
            let m = mm(first)?;
            (!m.mask, 0, m.value)
        }
        "--or-mark" => (u32::MAX, 0, parse_u32(first.arg())?),
        "--and-mark" => (parse_u32(first.arg())?, 0, 0),
        "--xor-mark" => (u32::MAX, parse_u32(first.arg())?, 0),
        "--save-mark" | "--restore-mark" if conn => {
            let both = num("--mask");
            let nfmask = num("--nfmask").or(both).unwrap_or(u32::MAX);
            let ctmask = num("--ctmask").or(both).unwrap_or(u32::MAX);
            return Some(if first.name == "--save-mark" {
                MarkOp::ConnSave { nfmask, ctmask }
            } else {
                MarkOp::ConnRestore { nfmask, ctmask }
            });
        }
        _ => return None,
    };
    Some(if conn {
        MarkOp::ConnSet { and, xor, or }
    } else {
        MarkOp::Mark { and, xor, or }
    })
}

fn compile_target(table: &Table, t: &Target) -> Act {
    match t.kind {
        TargetKind::Chain => match table.chain_position(t.name) {
            Some(i) if t.goto => Act::Goto(i),
            Some(i) => Act::Jump(i),
            None => Act::Undefined(t.name.to_string()),
        },
        TargetKind::Undefined => Act::Undefined(t.name.to_string()),
        _ => {
            let val = |n: &str| t.opt(n).map(|o| o.arg());
            match t.name {
                "ACCEPT" => Act::Accept,
                "DROP" => Act::Drop,
                "REJECT" => Act::Reject,
                "RETURN" => Act::Return,
                "QUEUE" => Act::Queue { bypass: false },
                "NFQUEUE" => Act::Queue {
                    bypass: t.opt("--queue-bypass").is_some(),
                },
                "MARK" | "CONNMARK" => match mark_op(t) {
                    Some(op) => Act::Mark(op),
                    None => Act::Continue(t.name.to_string()),
                },
                "NOTRACK" => Act::Notrack,
                "DSCP" | "TOS" | "TCPMSS" => match super::fields::compile_target(t) {
                    Some(op) => Act::Field(op),
                    None => Act::Continue(t.name.to_string()),
                },
                "CT" if t.opt("--notrack").is_some() => Act::Notrack,
                "DNAT" => {
                    let (addr, port) = val("--to-destination").map(nat_to).unwrap_or_default();
                    Act::Dnat { addr, port }
                }
                "SNAT" => {
                    let (addr, port) = val("--to-source").map(nat_to).unwrap_or_default();
                    Act::Snat { addr, port }
                }
                "REDIRECT" => Act::Redirect {
                    port: val("--to-ports").and_then(port_of),
                },
                "MASQUERADE" => Act::Masquerade {
                    port: val("--to-ports").and_then(port_of),
                },
                n if crate::matches::is_terminating_target(n) => Act::OtherVerdict(n.into()),
                n => Act::Continue(n.into()),
            }
        }
    }
}

/// `N` or `N-M` (numeric user or group ids, as iptables-save prints them).
fn id_range(s: &str) -> Option<(u32, u32)> {
    let (lo, hi) = s.split_once('-').unwrap_or((s, s));
    Some((lo.parse().ok()?, hi.parse().ok()?))
}

fn ports(o: Opt<'_>) -> Ports {
    let a = o.arg();
    if !a.contains(',')
        && let Some(r) = PortRange::parse(a)
    {
        return Ports::One(r);
    }
    Ports::Many(parse_port_list(a))
}

fn cond(test: Test, negated: bool, part: Part) -> Cond {
    Cond {
        test,
        negated,
        part,
    }
}

fn ct_state_bits(o: Opt<'_>) -> u8 {
    o.arg()
        .split(',')
        .map(|s| match s.to_ascii_uppercase().as_str() {
            "INVALID" => ct_bits::INVALID,
            "NEW" => ct_bits::NEW,
            "ESTABLISHED" => ct_bits::ESTABLISHED,
            "RELATED" => ct_bits::RELATED,
            "UNTRACKED" => ct_bits::UNTRACKED,
            "SNAT" => ct_bits::SNAT,
            "DNAT" => ct_bits::DNAT,
            _ => 0,
        })
        .fold(0, |a, b| a | b)
}

/// The canonical name of an option, read through the match table.
fn canonical<'a>(ext: Option<&'static crate::matches::Ext>, o: Opt<'a>) -> &'a str {
    ext.and_then(|e| e.canonical(o.name)).unwrap_or(o.name)
}

/// Tests of one match module; unknown modules become assumptions.
fn compile_match(m: &Match, part: Part, out: &mut Vec<Cond>) {
    let assume = |matched: bool, what: String| Test::Assume { matched, what };
    let push = |out: &mut Vec<Cond>, t: Test, o: Opt<'_>| out.push(cond(t, o.negated, part));
    let module = m.module;
    // Option names are read through the match table: aliases become the
    // canonical name, and an option the table does not know becomes an
    // assumption whatever the module.
    let ext = crate::matches::match_ext(module);
    if let Some(e) = ext {
        for o in m.opts.iter() {
            if e.opt(o.name).is_none() {
                push(
                    out,
                    assume(
                        true,
                        format!(
                            "{module} {}: not an option of -m {module}; assumed to match",
                            o.name
                        ),
                    ),
                    o,
                );
            }
        }
    }
    if super::fields::compile_match(m, part, out) {
        return;
    }
    // These read the transport header, which a fragment after the first
    // does not carry: they fail on it whatever their `!`.
    if matches!(
        module,
        "udplite" | "sctp" | "dccp" | "multiport" | "icmp" | "icmp6" | "icmpv6"
    ) {
        out.push(cond(
            Test::Field(super::fields::FieldTest::NotLaterFragment),
            false,
            part,
        ));
    }
    match module {
        "comment" => {}
        "tcp" | "udp" | "udplite" | "sctp" | "dccp" => {
            for o in m.opts.iter() {
                match canonical(ext, o) {
                    "--tcp-option" => match o.arg().parse::<u8>() {
                        Ok(k) => {
                            use super::fields::FieldTest;
                            out.push(cond(Test::Field(FieldTest::NotLaterFragment), false, part));
                            push(out, Test::Field(FieldTest::TcpOption(k)), o)
                        }
                        Err(_) => push(
                            out,
                            assume(true, format!("tcp --tcp-option {}: not a number", o.arg())),
                            o,
                        ),
                    },
                    "--sport" => push(out, Test::Sport(ports(o)), o),
                    "--dport" => push(out, Test::Dport(ports(o)), o),
                    "--tcp-flags" => {
                        let mask = o.args.first().and_then(parse_tcp_flags);
                        let comp = o.args.get(1).and_then(parse_tcp_flags);
                        if let (Some(mask), Some(comp)) = (mask, comp) {
                            push(out, Test::TcpFlags { mask, comp }, o);
                        }
                    }
                    "--syn" => {
                        use super::packet::tcp_flags::*;
                        push(
                            out,
                            Test::TcpFlags {
                                mask: FIN | SYN | RST | ACK,
                                comp: SYN,
                            },
                            o,
                        )
                    }
                    other if ext.is_some_and(|e| e.opt(other).is_none()) => {}
                    other => push(
                        out,
                        assume(true, format!("{module} {other} assumed to match")),
                        o,
                    ),
                }
            }
        }
        "multiport" => {
            for o in m.opts.iter() {
                match canonical(ext, o) {
                    "--sports" => push(out, Test::Sport(ports(o)), o),
                    "--dports" => push(out, Test::Dport(ports(o)), o),
                    "--ports" => push(out, Test::AnyPort(ports(o)), o),
                    _ => {}
                }
            }
        }
        "icmp" | "icmp6" | "icmpv6" => {
            for o in m.opts.iter() {
                if ext.is_some_and(|e| e.opt(o.name).is_none()) {
                    continue;
                }
                let t = o.arg();
                let ty = if t == "any" { None } else { parse_icmp_type(t) };
                push(out, Test::Icmp(ty), o);
            }
        }
        "conntrack" | "state" => {
            for o in m.opts.iter() {
                match o.name {
                    "--ctstate" | "--state" => push(out, Test::CtState(ct_state_bits(o)), o),
                    "--ctstatus" => push(
                        out,
                        Test::CtStatus(
                            o.arg().split(',').map(|s| s.to_ascii_uppercase()).collect(),
                        ),
                        o,
                    ),
                    "--ctproto" => {
                        push(out, Test::CtProto(protocol_number(o.arg()).unwrap_or(0)), o)
                    }
                    "--ctorigsrc" => {
                        if let Some(n) = Net::parse(o.arg()) {
                            push(out, Test::CtOrigSrc(n), o)
                        }
                    }
                    "--ctorigdst" => {
                        if let Some(n) = Net::parse(o.arg()) {
                            push(out, Test::CtOrigDst(n), o)
                        }
                    }
                    "--ctorigdstport" => push(out, Test::CtOrigDstPort(ports(o)), o),
                    "--ctorigsrcport" => push(out, Test::CtOrigSrcPort(ports(o)), o),
                    "--ctreplsrcport" => push(out, Test::CtReplSrcPort(ports(o)), o),
                    "--ctrepldstport" => push(out, Test::CtReplDstPort(ports(o)), o),
                    "--ctreplsrc" | "--ctrepldst" => {
                        if let Some(n) = Net::parse(o.arg()) {
                            let t = if o.name == "--ctreplsrc" {
                                Test::CtReplSrc(n)
                            } else {
                                Test::CtReplDst(n)
                            };
                            push(out, t, o)
                        }
                    }
                    "--ctdir" => push(
                        out,
                        Test::CtDir(o.arg().eq_ignore_ascii_case("ORIGINAL")),
                        o,
                    ),
                    other if ext.is_some_and(|e| e.opt(other).is_none()) => {}
                    other => push(
                        out,
                        assume(true, format!("conntrack {other} assumed to match")),
                        o,
                    ),
                }
            }
        }
        "mark" | "connmark" => {
            if let Some(o) = m.opt("--mark")
                && let Some(mm) = MarkMask::parse(o.arg())
            {
                let t = if module == "mark" {
                    Test::Mark(mm)
                } else {
                    Test::Connmark(mm)
                };
                push(out, t, o);
            }
        }
        "addrtype" => {
            let li = m.opt("--limit-iface-in").is_some();
            let lo = m.opt("--limit-iface-out").is_some();
            for o in m.opts.iter() {
                let list: Vec<crate::model::Str> = o.arg().split(',').map(Into::into).collect();
                match o.name {
                    "--src-type" => push(
                        out,
                        Test::SrcType {
                            types: addr_type::parse(&list),
                            limit_in: li,
                        },
                        o,
                    ),
                    "--dst-type" => push(
                        out,
                        Test::DstType {
                            types: addr_type::parse(&list),
                            limit_out: lo,
                        },
                        o,
                    ),
                    _ => {}
                }
            }
        }
        "iprange" => {
            for o in m.opts.iter() {
                let r = Range::parse(o.arg());
                match (o.name, r) {
                    ("--src-range", Some(r)) => push(out, Test::SrcRange(r), o),
                    ("--dst-range", Some(r)) => push(out, Test::DstRange(r), o),
                    _ => {}
                }
            }
        }
        "ttl" | "hl" => {
            for o in m.opts.iter() {
                let cmp = match o.name.rsplit('-').next() {
                    Some("eq") => Cmp::Eq,
                    Some("lt") => Cmp::Lt,
                    Some("gt") => Cmp::Gt,
                    _ => continue,
                };
                if let Ok(v) = o.arg().parse() {
                    push(out, Test::Ttl(cmp, v), o);
                }
            }
        }
        // The match fails when the header is missing, whatever its options
        // (a `!` before an option negates the field test, not the header).
        "ah" => out.push(cond(Test::Header("authentication"), false, part)),
        "mac" => {
            if let Some(o) = m.opt("--mac-source") {
                match super::packet::parse_mac(o.arg()) {
                    Some(mac) => push(out, Test::MacSource(mac), o),
                    None => push(
                        out,
                        assume(false, format!("mac: cannot read {}", o.arg())),
                        o,
                    ),
                }
            }
        }
        "length" => {
            if let Some(o) = m.opt("--length")
                && let Some(r) = PortRange::parse(o.arg())
            {
                push(out, Test::Length(r), o);
            }
        }
        "set" => {
            if let Some(o) = m.option("--match-set") {
                let src = o.args.get(1).is_some_and(|f| f.starts_with("src"));
                push(
                    out,
                    Test::Set {
                        name: o.arg().into(),
                        src,
                    },
                    o,
                );
            }
        }
        "statistic" => {
            let mode = m.opt("--mode").map(|o| o.arg()).unwrap_or("random");
            if mode == "random" {
                let p = m.opt("--probability");
                let prob = p.and_then(|o| o.arg().parse().ok()).unwrap_or(0.0);
                out.push(cond(Test::Random(prob), p.is_some_and(|o| o.negated), part));
            } else {
                let every = m.opt("--every").map(|o| o.arg()).unwrap_or("?");
                let packet = m.opt("--packet").map(|o| o.arg()).unwrap_or("0");
                out.push(cond(
                    assume(
                        false,
                        format!(
                            "statistic nth: matches packet {packet} of every {every}; assumed not this one"
                        ),
                    ),
                    false,
                    part,
                ));
            }
        }
        "limit" => out.push(cond(
            assume(true, "limit: assumed under the rate".into()),
            false,
            part,
        )),
        "hashlimit" => {
            let above = m.opt("--hashlimit-above").is_some();
            out.push(cond(
                assume(
                    !above,
                    format!(
                        "hashlimit: assumed under the rate ({})",
                        if above { "no match" } else { "match" }
                    ),
                ),
                false,
                part,
            ));
        }
        "recent" => {
            let name = m.opt("--name").map(|o| o.arg()).unwrap_or("DEFAULT");
            let set = m.opt("--set");
            let matched = set.is_some();
            let neg = ["--set", "--rcheck", "--update", "--remove"]
                .iter()
                .find_map(|n| m.opt(n))
                .is_some_and(|o| o.negated);
            out.push(cond(
                assume(
                    matched,
                    if matched {
                        format!("recent --set: adds the source to list {name}")
                    } else {
                        format!("recent: source assumed absent from list {name}")
                    },
                ),
                neg,
                part,
            ));
        }
        "owner" => {
            let suppl = m.opt("--suppl-groups").is_some();
            for o in m.opts.iter() {
                let t = match o.name {
                    "--uid-owner" => id_range(o.arg()).map(|(lo, hi)| Test::OwnerUid(lo, hi)),
                    "--gid-owner" if !suppl => {
                        id_range(o.arg()).map(|(lo, hi)| Test::OwnerGid(lo, hi))
                    }
                    "--socket-exists" => Some(Test::SocketExists),
                    n if ext.is_some_and(|e| e.opt(n).is_none()) => continue,
                    _ => None,
                };
                let t = t
                    .unwrap_or_else(|| assume(true, format!("owner {}: assumed to match", o.name)));
                push(out, t, o);
            }
        }
        "physdev" => {
            let needs_bridge = m.opts.iter().any(|o| !o.negated);
            out.push(cond(
                assume(!needs_bridge, "physdev: packet assumed not bridged".into()),
                false,
                part,
            ));
        }
        "policy" => {
            let ipsec = m.opt("--pol").is_some_and(|o| o.arg() == "ipsec");
            out.push(cond(
                assume(!ipsec, "policy: packet assumed not IPsec-protected".into()),
                false,
                part,
            ));
        }
        "helper" => out.push(cond(
            assume(false, "helper: connection assumed to have no helper".into()),
            m.opts.first().is_some_and(|o| o.negated),
            part,
        )),
        "pkttype" => {
            if let Some(o) = m.opt("--pkt-type") {
                let t = match o.arg().to_ascii_lowercase().as_str() {
                    "broadcast" => addr_type::BROADCAST,
                    "multicast" => addr_type::MULTICAST,
                    _ => addr_type::UNICAST | addr_type::LOCAL,
                };
                push(out, Test::PktType(t), o);
            }
        }
        "connlimit" => {
            let above = m.opt("--connlimit-above");
            out.push(cond(
                assume(
                    above.is_none(),
                    "connlimit: assumed under the limit (first connection)".into(),
                ),
                above
                    .or(m.opt("--connlimit-upto"))
                    .is_some_and(|o| o.negated),
                part,
            ));
        }
        // Decided from the routes when the trace has them; without, the
        // reverse path is taken as valid: the plain match passes,
        // `--invert` (match what fails the check) does not.
        "rpfilter" => out.push(cond(
            Test::RpFilter {
                loose: m.opt("--loose").is_some(),
                accept_local: m.opt("--accept-local").is_some(),
                invert: m.opt("--invert").is_some(),
            },
            false,
            part,
        )),
        _ => out.push(cond(
            assume(true, format!("-m {module} assumed to match")),
            false,
            part,
        )),
    }
}

/// Compiles one rule of `table`.
pub(crate) fn compile_rule(table: &Table, r: &Rule) -> CRule {
    let mut conds = Vec::new();
    let neg = |n: crate::model::Negatable<&str>| n.negated;
    if let Some(p) = r.protocol() {
        match protocol_number(p.value) {
            Some(0) => {}
            Some(n) => conds.push(cond(Test::Proto(n), neg(p), Part::Protocol)),
            None => conds.push(cond(
                Test::Assume {
                    matched: false,
                    what: format!("unknown protocol {}", p.value),
                },
                neg(p),
                Part::Protocol,
            )),
        }
    }
    for (field, part) in [
        (r.source(), Part::Source),
        (r.destination(), Part::Destination),
    ] {
        if let Some(a) = field {
            let t = match Net::parse(a.value) {
                Some(n) if part == Part::Source => Test::Src(n),
                Some(n) => Test::Dst(n),
                None => Test::Assume {
                    matched: false,
                    what: format!("cannot read address {}", a.value),
                },
            };
            conds.push(cond(t, neg(a), part));
        }
    }
    if let Some(i) = r.in_iface() {
        conds.push(cond(
            Test::InIface(Iface::parse(i.value)),
            neg(i),
            Part::InIface,
        ));
    }
    if let Some(o) = r.out_iface() {
        conds.push(cond(
            Test::OutIface(Iface::parse(o.value)),
            neg(o),
            Part::OutIface,
        ));
    }
    if let Some(f) = r.fragment() {
        conds.push(cond(Test::Fragment, !f, Part::Fragment));
    }
    for (i, m) in r.matches().enumerate() {
        compile_match(&m, Part::Match(i as u16), &mut conds);
    }
    let act = match r.target() {
        Some(t) => compile_target(table, &t),
        None => Act::None,
    };
    CRule { conds, act }
}

/// What the evaluation of a rule needs besides the packet.
pub(crate) struct Env<'a> {
    pub local: &'a [IpAddr],
    pub ipsets: &'a std::collections::HashMap<String, Vec<ipnet::IpNet>>,
    pub orig_src: IpAddr,
    pub orig_dst: IpAddr,
    pub orig_dport: u16,
    pub orig_sport: u16,
    pub dnat_done: bool,
    pub snat_done: bool,
    /// The packet goes the reply way of its connection.
    pub reply_dir: bool,
    /// The packet still belongs to the local socket that sent it.
    pub socket: bool,
    /// The connection's reply tuple, when it is known.
    pub reply: Option<crate::conntrack::Tuple>,
    /// Routes for `-m rpfilter`, when the trace has them.
    pub routing: Option<&'a super::route::Routing>,
}

impl Env<'_> {
    /// The connection's reply tuple; for a first packet, the packet as it
    /// is now seen from the other end (NAT so far included).
    fn reply_tuple(&self, p: &Packet) -> crate::conntrack::Tuple {
        self.reply.unwrap_or(crate::conntrack::Tuple {
            src: p.dst,
            dst: p.src,
            sport: p.dport,
            dport: p.sport,
        })
    }

    /// Whether `-m addrtype` with the type list `types` matches `a`. In
    /// IPv4 the address has one type, which must be in the list. In IPv6
    /// the kernel tests flags, not one type: UNICAST, MULTICAST and UNSPEC
    /// are properties of the address (so this host's own address is both
    /// LOCAL and UNICAST), LOCAL, ANYCAST and UNREACHABLE come from the
    /// route lookup (BROADCAST, BLACKHOLE and PROHIBIT the kernel refuses
    /// for IPv6; THROW, NAT and XRESOLVE it does not test at all).
    pub(crate) fn addr_type_matches(&self, a: IpAddr, types: u16) -> bool {
        use addr_type::*;
        let IpAddr::V6(v6) = a else {
            return self.addr_type(a) & types != 0;
        };
        let multicast = v6.is_multicast();
        let unspec = v6.is_unspecified();
        if types & MULTICAST != 0 && !multicast {
            return false;
        }
        if types & UNICAST != 0 && (multicast || unspec) {
            return false;
        }
        if types & UNSPEC != 0 && !unspec {
            return false;
        }
        if types & (LOCAL | ANYCAST | UNREACHABLE) == 0 {
            return true;
        }
        let mut found = 0;
        if self.local.contains(&a) || a.is_loopback() {
            found |= LOCAL;
        }
        if let Some(t) = self.routing.and_then(|r| r.table_for(true)) {
            use crate::analysis::routes::RouteKind;
            match t.lookup(a).map(|r| r.kind) {
                None
                | Some(RouteKind::Unreachable | RouteKind::Blackhole | RouteKind::Prohibit) => {
                    found |= UNREACHABLE
                }
                Some(RouteKind::Local) => found |= LOCAL,
                Some(RouteKind::Anycast) => found |= ANYCAST,
                _ => {}
            }
        }
        types & found != 0
    }

    /// The type of an address as `-m addrtype` (and `-m pkttype`, from
    /// the destination) sees it. A multicast address is MULTICAST even
    /// when this host holds it as an address of its own (a group joined
    /// with `ip addr add ... autojoin` is listed as a `local` route): the
    /// kernel tests for multicast before it looks at the routes. With a
    /// route list, an address the local table lists as `broadcast` (a
    /// subnet's broadcast address) is BROADCAST. UNSPEC is IPv6's `::`.
    pub(crate) fn addr_type(&self, a: IpAddr) -> u16 {
        use addr_type::*;
        match a {
            // As the kernel's inet_addr_type: 0.0.0.0 is BROADCAST, never
            // UNSPEC, in IPv4 (measured; the rest of 0/8 is UNICAST).
            IpAddr::V4(v4) if v4.is_broadcast() || v4.is_unspecified() => return BROADCAST,
            IpAddr::V4(v4) if v4.is_multicast() => return MULTICAST,
            IpAddr::V6(v6) if v6.is_multicast() => return MULTICAST,
            _ => {}
        }
        if self.local.contains(&a) || a.is_loopback() {
            return LOCAL;
        }
        let listed_broadcast = self
            .routing
            .and_then(|r| r.table_for(a.is_ipv6()))
            .and_then(|t| t.lookup(a))
            .is_some_and(|r| {
                r.table == "local" && r.kind == crate::analysis::routes::RouteKind::Broadcast
            });
        if listed_broadcast {
            return BROADCAST;
        }
        if a.is_unspecified() { UNSPEC } else { UNICAST }
    }
}

/// The result of one test, before `!` is applied; `Assumed` carries the
/// text and the value used.
pub(crate) enum Outcome {
    Known(bool),
    Assumed(bool, String),
    Random(f64),
    /// The match drops the packet on the spot (the kernel's "hotdrop").
    Hotdrop(String),
}

fn in_ports(list: &Ports, p: u16) -> bool {
    list.contains(p)
}

/// Evaluates one test.
pub(crate) fn eval(t: &Test, p: &Packet, env: &Env<'_>) -> Outcome {
    use Outcome::Known;
    match t {
        Test::Proto(n) => Known(p.proto == *n),
        Test::Src(n) => Known(n.contains(p.src)),
        Test::Dst(n) => Known(n.contains(p.dst)),
        Test::InIface(i) => Known(i.matches(p.in_iface.as_deref())),
        Test::OutIface(i) => Known(i.matches(p.out_iface.as_deref())),
        Test::Fragment => Known(p.fragment),
        Test::Sport(_) | Test::Dport(_) | Test::AnyPort(_) | Test::TcpFlags { .. }
            if p.fragment =>
        {
            super::fields::later_fragment_header()
        }
        Test::Sport(l) => Known(p.has_ports() && in_ports(l, p.sport)),
        Test::Dport(l) => Known(p.has_ports() && in_ports(l, p.dport)),
        Test::AnyPort(l) => Known(p.has_ports() && (in_ports(l, p.sport) || in_ports(l, p.dport))),
        Test::TcpFlags { mask, comp } => Known(p.proto == 6 && p.tcp_flags & mask == *comp),
        Test::Icmp(ty) => Known(match ty {
            None => true,
            Some((t, c)) => p.icmp.0 == *t && c.is_none_or(|c| c == p.icmp.1),
        }),
        Test::CtState(bits) => {
            let mut have = match p.state {
                CtState::New => ct_bits::NEW,
                CtState::Established => ct_bits::ESTABLISHED,
                CtState::Related => ct_bits::RELATED,
                CtState::Invalid => ct_bits::INVALID,
                CtState::Untracked => ct_bits::UNTRACKED,
            };
            if env.dnat_done {
                have |= ct_bits::DNAT;
            }
            if env.snat_done {
                have |= ct_bits::SNAT;
            }
            Known(have & bits != 0)
        }
        Test::CtStatus(list) => {
            let on = |s: &str| match s {
                "CONFIRMED" | "SEEN_REPLY" | "ASSURED" => p.state == CtState::Established,
                _ => false,
            };
            let v = list.iter().any(|s| on(s));
            Outcome::Assumed(
                v,
                format!(
                    "ctstatus {}: derived from state {}",
                    list.join(","),
                    p.state.name()
                ),
            )
        }
        Test::CtProto(n) => Known(p.state != CtState::Untracked && p.proto == *n),
        Test::CtOrigSrc(n) => Known(n.contains(env.orig_src)),
        Test::CtOrigDst(n) => Known(n.contains(env.orig_dst)),
        Test::CtOrigDstPort(l) => Known(in_ports(l, env.orig_dport)),
        Test::CtOrigSrcPort(l) => Known(in_ports(l, env.orig_sport)),
        Test::CtReplSrc(n) => Known(n.contains(env.reply_tuple(p).src)),
        Test::CtReplDst(n) => Known(n.contains(env.reply_tuple(p).dst)),
        Test::CtReplSrcPort(l) => Known(in_ports(l, env.reply_tuple(p).sport)),
        Test::CtReplDstPort(l) => Known(in_ports(l, env.reply_tuple(p).dport)),
        Test::CtDir(original) => Known(*original != env.reply_dir),
        Test::Mark(m) => Known(p.mark & m.mask == m.value),
        Test::Connmark(m) => Known(p.ctmark & m.mask == m.value),
        Test::SrcType { types, limit_in } => {
            let v = env.addr_type_matches(p.src, *types);
            if *limit_in {
                Outcome::Assumed(v, "addrtype --limit-iface-in: as for the whole host".into())
            } else {
                Known(v)
            }
        }
        Test::DstType { types, limit_out } => {
            let v = env.addr_type_matches(p.dst, *types);
            if *limit_out {
                Outcome::Assumed(
                    v,
                    "addrtype --limit-iface-out: as for the whole host".into(),
                )
            } else {
                Known(v)
            }
        }
        Test::SrcRange(r) => Known(r.contains(p.src)),
        Test::DstRange(r) => Known(r.contains(p.dst)),
        Test::Length(r) => Known(r.contains(p.length)),
        Test::MacSource(mac) => match p.src_mac {
            Some(m) => Known(m == *mac),
            None => Outcome::Assumed(
                true,
                "mac --mac-source: the frame's source MAC is unknown (give --src-mac): assumed to match".into(),
            ),
        },
        Test::Ttl(cmp, v) => Known(match cmp {
            Cmp::Eq => p.ttl == *v,
            Cmp::Lt => p.ttl < *v,
            Cmp::Gt => p.ttl > *v,
        }),
        Test::Header(name) => {
            let present = match *name {
                "fragment" => p.fragment && p.dst.is_ipv6(),
                "authentication" => p.proto == 51,
                _ => false,
            };
            if present {
                Outcome::Assumed(true, format!("{name} header: its fields assumed to match"))
            } else {
                Known(false)
            }
        }
        Test::PktType(t) => {
            // The link-layer type follows the destination address; 0.0.0.0
            // (BROADCAST to addrtype) comes with a unicast frame.
            let zeronet = matches!(p.dst, IpAddr::V4(v4) if v4.is_unspecified());
            let have = match env.addr_type(p.dst) {
                _ if zeronet => addr_type::UNICAST,
                addr_type::BROADCAST => addr_type::BROADCAST,
                addr_type::MULTICAST => addr_type::MULTICAST,
                _ => addr_type::UNICAST,
            };
            Known(have & t != 0)
        }
        Test::Set { name, src } => {
            let a = if *src { p.src } else { p.dst };
            match env.ipsets.get(name) {
                Some(nets) => Known(nets.iter().any(|n| n.contains(&a))),
                None => Outcome::Assumed(
                    false,
                    format!("ipset {name}: contents unknown, {a} assumed not a member"),
                ),
            }
        }
        Test::OwnerUid(lo, hi) | Test::OwnerGid(lo, hi) => {
            let (id, what) = match t {
                Test::OwnerUid(..) => (p.uid, "uid"),
                _ => (p.gid, "gid"),
            };
            match (env.socket, id) {
                // Without a socket every owner test fails (before `!`).
                (false, _) => Known(false),
                (true, Some(id)) => Known((*lo..=*hi).contains(&id)),
                (true, None) => Outcome::Assumed(
                    true,
                    format!("owner: the socket's {what} is not known, assumed {lo}"),
                ),
            }
        }
        Test::SocketExists => Known(env.socket),
        Test::Field(f) => super::fields::eval(f, p),
        Test::Random(prob) => Outcome::Random(*prob),
        Test::Assume { matched, what } => Outcome::Assumed(*matched, what.clone()),
        Test::RpFilter {
            loose,
            accept_local,
            invert,
        } => match env.routing.and_then(|r| r.rpfilter(p, *loose, *accept_local)) {
            Some(ok) => Known(ok != *invert),
            None => Outcome::Assumed(
                !*invert,
                format!(
                    "rpfilter: the reverse path is assumed valid (no --routes){}",
                    if *invert { " (--invert: no match)" } else { "" }
                ),
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compiled(rule: &str) -> CRule {
        let r = crate::parse::parse_rule(rule).unwrap();
        compile_rule(&Table::new("filter", 0), &r)
    }

    #[test]
    fn unknown_multiport_option_becomes_an_assumption() {
        // It used to be dropped without a word, so the rule matched more
        // than the tracer said.
        let c = compiled("-p tcp -m multiport --dports 80 --foo 1 -j ACCEPT");
        assert!(
            c.conds
                .iter()
                .any(|x| matches!(&x.test, Test::Assume { what, .. } if what.contains("--foo")))
        );
        assert!(c.conds.iter().any(|x| matches!(x.test, Test::Dport(_))));
    }

    #[test]
    fn option_aliases_compile_through_the_match_table() {
        let c = compiled("-p tcp -m multiport --destination-ports 80,443 -j ACCEPT");
        assert!(c.conds.iter().any(|x| matches!(x.test, Test::Dport(_))));
        let c = compiled("-p udp -m udp --destination-port domain -j ACCEPT");
        assert!(
            c.conds
                .iter()
                .any(|x| matches!(&x.test, Test::Dport(Ports::One(r)) if r.lo == 53))
        );
    }

    #[test]
    fn nets() {
        let n = Net::parse("10.0.0.0/8").unwrap();
        assert!(n.contains("10.1.2.3".parse().unwrap()));
        assert!(!n.contains("11.1.2.3".parse().unwrap()));
        let n = Net::parse("192.168.1.0/255.255.255.0").unwrap();
        assert!(n.contains("192.168.1.9".parse().unwrap()));
        let n = Net::parse("0.0.0.0/0").unwrap();
        assert!(n.contains("1.1.1.1".parse().unwrap()));
        assert!(!n.contains("::1".parse().unwrap()));
        let n = Net::parse("fd00::/8").unwrap();
        assert!(n.contains("fd12::1".parse().unwrap()));
    }

    #[test]
    fn nat_targets() {
        let one = |p| Some(NatPorts { lo: p, hi: p });
        assert_eq!(
            nat_to("10.0.0.1:8080"),
            (Some("10.0.0.1".parse().unwrap()), one(8080))
        );
        assert_eq!(
            nat_to("10.0.0.1-10.0.0.9:80-90"),
            (
                Some("10.0.0.1".parse().unwrap()),
                Some(NatPorts { lo: 80, hi: 90 })
            )
        );
        assert_eq!(nat_to(":53"), (None, one(53)));
        assert_eq!(
            nat_to("[fd00::1]:80"),
            (Some("fd00::1".parse().unwrap()), one(80))
        );
        let r = NatPorts {
            lo: 1024,
            hi: 65535,
        };
        assert_eq!(r.pick(40000), (40000, false));
        assert_eq!(r.pick(80), (1024, true));
    }

    #[test]
    fn ifaces() {
        assert!(Iface::parse("eth+").matches(Some("eth0")));
        assert!(!Iface::parse("eth+").matches(None));
        assert!(Iface::parse("+").matches(None));
        assert!(!Iface::parse("eth0").matches(Some("eth01")));
    }
}
