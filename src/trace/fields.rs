//! Packet details beyond addresses and ports: the TOS byte (DSCP and
//! ECN), fragments, TCP options and the MSS, IPv6 extension headers. Here
//! are how they are written on the command line, the matches that read
//! them (`-m tos`, `dscp`, `ecn`, `-f`, `frag`, `tcp --tcp-option`,
//! `tcpmss`, `ipv6header`, `hbh`, `dst`, `rt`), the targets that change
//! them (`DSCP`, `TOS`, `TCPMSS`), and where the kernel puts fragments
//! back together before the rules see them.

use crate::model::{Match, Opt, Ruleset, Target};
use crate::typed::parse_u32;

use super::TraceError;
use super::compile::{Cond, Outcome, Part, Test};
use super::packet::{Packet, tcp_flags};

/// For serde: leave a zero byte out.
pub(crate) fn is_zero(v: &u8) -> bool {
    *v == 0
}

/// IPv6 next-header numbers of the extension headers.
pub mod ipv6_header {
    /// Hop-by-hop options.
    pub const HOP: u8 = 0;
    /// Routing.
    pub const ROUTE: u8 = 43;
    /// Fragment.
    pub const FRAG: u8 = 44;
    /// Encapsulating security payload.
    pub const ESP: u8 = 50;
    /// Authentication header.
    pub const AUTH: u8 = 51;
    /// No next header.
    pub const NONE: u8 = 59;
    /// Destination options.
    pub const DST: u8 = 60;
}

/// Which fragment of a datagram a packet is (`--fragment`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FragmentKind {
    /// Offset 0, more follow: carries the transport header.
    First,
    /// Neither first nor last.
    More,
    /// The end of the datagram.
    Last,
}

impl std::str::FromStr for FragmentKind {
    type Err = TraceError;
    fn from_str(s: &str) -> Result<Self, TraceError> {
        match s.to_ascii_lowercase().as_str() {
            "first" => Ok(FragmentKind::First),
            "more" | "middle" => Ok(FragmentKind::More),
            "last" => Ok(FragmentKind::Last),
            _ => Err(TraceError::BadValue(
                "fragment (first, more or last)",
                s.into(),
            )),
        }
    }
}

/// Makes `p` the given fragment of its datagram; an IPv6 packet gets a
/// fragment header (after hop-by-hop, routing and the first destination
/// options, as RFC 8200 orders them) if it has none.
pub fn set_fragment(p: &mut Packet, kind: FragmentKind) {
    (p.fragment, p.more_fragments) = match kind {
        FragmentKind::First => (false, true),
        FragmentKind::More => (true, true),
        FragmentKind::Last => (true, false),
    };
    if p.dst.is_ipv6() && !p.ipv6_headers.contains(&ipv6_header::FRAG) {
        use ipv6_header::*;
        let at = p
            .ipv6_headers
            .iter()
            .position(|h| !matches!(*h, HOP | ROUTE | DST))
            .unwrap_or(p.ipv6_headers.len());
        p.ipv6_headers.insert(at, FRAG);
    }
}

/// The details as the flags and the fields of a packets file give them
/// (`tos`, `dscp`, `fragment`, `tcp-option`, `mss`, `ipv6-header`).
#[derive(Debug, Clone, Default)]
pub struct Details {
    /// The TOS byte.
    pub tos: Option<String>,
    /// The DSCP (sets the upper six bits of the TOS byte).
    pub dscp: Option<String>,
    /// first, more or last.
    pub fragment: Option<String>,
    /// TCP option kinds, each a number, a name or a comma list.
    pub tcp_options: Vec<String>,
    /// The MSS option's value.
    pub mss: Option<u16>,
    /// IPv6 extension headers, a comma list.
    pub ipv6_headers: Option<String>,
}

impl Details {
    /// Sets them on `p`; the message names the field (as `what` spells
    /// the prefix: `--` for flags, nothing for JSON fields).
    pub fn apply(&self, p: &mut Packet, what: &str) -> Result<(), String> {
        if let Some(h) = &self.ipv6_headers {
            if !p.dst.is_ipv6() {
                return Err(format!("{what}ipv6-header: the packet is IPv4"));
            }
            p.ipv6_headers = parse_ipv6_headers(h).ok_or_else(|| {
                format!(
                    "{what}ipv6-header: unknown header in {h:?} (hop, dst, route, frag, auth, esp, none, prot)"
                )
            })?;
        }
        if let Some(t) = &self.tos {
            p.tos = parse_tos(t).ok_or_else(|| format!("{what}tos: not a byte: {t:?}"))?;
        }
        if let Some(d) = &self.dscp {
            let d = parse_dscp(d).ok_or_else(|| {
                format!("{what}dscp: not 0-63 nor a class (CS0-CS7, AF11-AF43, EF): {d:?}")
            })?;
            p.tos = (p.tos & 3) | (d << 2);
        }
        if let Some(f) = &self.fragment {
            let k = f
                .parse::<FragmentKind>()
                .map_err(|_| format!("{what}fragment: first, more or last, not {f:?}"))?;
            set_fragment(p, k);
        }
        for o in &self.tcp_options {
            let kinds = parse_tcp_options(o).ok_or_else(|| {
                format!("{what}tcp-option: not an option kind (a number, or mss, wscale, sack-permitted, sack, timestamp): {o:?}")
            })?;
            p.tcp_options.extend(kinds);
        }
        if let Some(m) = self.mss {
            p.mss = Some(m);
        }
        if (p.mss.is_some() || !p.tcp_options.is_empty()) && p.proto != 6 {
            return Err(format!(
                "{what}mss and {what}tcp-option describe a TCP segment: the packet is not TCP"
            ));
        }
        normalize(p);
        Ok(())
    }
}

/// A TOS byte, decimal or `0x` hex.
pub fn parse_tos(s: &str) -> Option<u8> {
    parse_u32(s).and_then(|v| u8::try_from(v).ok())
}

/// A DSCP value: 0-63 (decimal or hex) or a class name (`AF41`, `EF`, `CS1`).
pub fn parse_dscp(s: &str) -> Option<u8> {
    if let Some(v) = parse_u32(s) {
        return (v < 64).then_some(v as u8);
    }
    let u = s.to_ascii_uppercase();
    if u == "EF" {
        return Some(46);
    }
    if u == "BE" {
        return Some(0);
    }
    let b = u.as_bytes();
    match b {
        [b'C', b'S', n @ b'0'..=b'7'] => Some((n - b'0') * 8),
        [b'A', b'F', c @ b'1'..=b'4', d @ b'1'..=b'3'] => Some((c - b'0') * 8 + (d - b'0') * 2),
        _ => None,
    }
}

/// A TCP option kind by number or name.
fn tcp_option_kind(s: &str) -> Option<u8> {
    if let Ok(n) = s.parse::<u8>() {
        return Some(n);
    }
    Some(match s.to_ascii_lowercase().as_str() {
        "mss" => 2,
        "wscale" | "window-scale" => 3,
        "sack-permitted" | "sackok" => 4,
        "sack" => 5,
        "timestamp" | "timestamps" | "ts" => 8,
        "md5" => 19,
        "ao" => 29,
        "mptcp" => 30,
        "fastopen" | "tfo" => 34,
        _ => return None,
    })
}

/// A comma list of TCP option kinds (`2,4,8` or `mss,sack-permitted`).
pub fn parse_tcp_options(s: &str) -> Option<Vec<u8>> {
    s.split(',')
        .filter(|w| !w.trim().is_empty())
        .map(|w| tcp_option_kind(w.trim()))
        .collect()
}

/// An IPv6 extension header by the names `-m ipv6header` takes, or its
/// number; `prot` (an upper-layer header) gives `None`, since every
/// packet with a protocol has one.
fn ipv6_header_kind(s: &str) -> Result<Option<u8>, ()> {
    use ipv6_header::*;
    if let Ok(n) = s.parse::<u8>() {
        return Ok(match n {
            255 => None,
            n => Some(n),
        });
    }
    Ok(Some(match s.to_ascii_lowercase().as_str() {
        "hop" | "hop-by-hop" => HOP,
        "dst" | "ipv6-opts" => DST,
        "route" | "ipv6-route" => ROUTE,
        "frag" | "ipv6-frag" => FRAG,
        "auth" | "ah" => AUTH,
        "esp" => ESP,
        "none" | "ipv6-nonxt" => NONE,
        "prot" | "protocol" => return Ok(None),
        _ => return Err(()),
    }))
}

/// A comma list of IPv6 extension headers, in order
/// (`hop,dst,route,frag,auth,esp,none`; `prot` is accepted and implied).
pub fn parse_ipv6_headers(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for w in s.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        if let Some(h) = ipv6_header_kind(w).ok()? {
            out.push(h);
        }
    }
    Some(out)
}

/// Makes the fields agree: an MSS means option 2 is present, option
/// kinds are listed once in order, and an IPv6 fragment has its header.
pub fn normalize(p: &mut Packet) {
    if p.mss.is_some() && !p.tcp_options.contains(&2) {
        p.tcp_options.push(2);
    }
    p.tcp_options.sort_unstable();
    p.tcp_options.dedup();
    if p.dst.is_ipv6() && (p.fragment || p.more_fragments) {
        let kind = match (p.fragment, p.more_fragments) {
            (false, _) => FragmentKind::First,
            (true, true) => FragmentKind::More,
            (true, false) => FragmentKind::Last,
        };
        set_fragment(p, kind);
    }
}

/// The fragment position as the flags name it.
pub fn fragment_kind(p: &Packet) -> Option<FragmentKind> {
    match (p.fragment, p.more_fragments) {
        (false, false) => None,
        (false, true) => Some(FragmentKind::First),
        (true, true) => Some(FragmentKind::More),
        (true, false) => Some(FragmentKind::Last),
    }
}

fn header_name(h: u8) -> String {
    use ipv6_header::*;
    match h {
        HOP => "hop".into(),
        DST => "dst".into(),
        ROUTE => "route".into(),
        FRAG => "frag".into(),
        AUTH => "auth".into(),
        ESP => "esp".into(),
        NONE => "none".into(),
        n => n.to_string(),
    }
}

/// The details set, as words for the packet's one-line description:
/// `tos 0x28 fragment first mss 1460 tcp-options 2,4 ipv6-headers hop,frag`.
pub fn describe(p: &Packet) -> Vec<String> {
    let mut out = Vec::new();
    if p.tos != 0 {
        out.push(format!("tos {:#04x}", p.tos));
    }
    if let Some(k) = fragment_kind(p) {
        out.push(format!(
            "fragment {}",
            format!("{k:?}").to_ascii_lowercase()
        ));
    }
    if let Some(m) = p.mss {
        out.push(format!("mss {m}"));
    }
    let others: Vec<String> = p
        .tcp_options
        .iter()
        .filter(|k| p.mss.is_none() || **k != 2)
        .map(u8::to_string)
        .collect();
    if !others.is_empty() {
        out.push(format!("tcp-options {}", others.join(",")));
    }
    if !p.ipv6_headers.is_empty() {
        let names: Vec<String> = p.ipv6_headers.iter().map(|h| header_name(*h)).collect();
        out.push(format!("ipv6-headers {}", names.join(",")));
    }
    out
}

/// Bits of `-m ipv6header`, as the kernel's `MASK_*` constants.
mod mask {
    pub const HOP: u8 = 128;
    pub const DST: u8 = 64;
    pub const ROUTE: u8 = 32;
    pub const FRAG: u8 = 16;
    pub const AUTH: u8 = 8;
    pub const ESP: u8 = 4;
    pub const NONE: u8 = 2;
    pub const PROTO: u8 = 1;
}

fn mask_of(h: u8) -> u8 {
    use ipv6_header::*;
    match h {
        HOP => mask::HOP,
        DST => mask::DST,
        ROUTE => mask::ROUTE,
        FRAG => mask::FRAG,
        AUTH => mask::AUTH,
        ESP => mask::ESP,
        NONE => mask::NONE,
        _ => mask::PROTO,
    }
}

/// The headers `-m ipv6header` finds: the extension headers up to ESP or
/// "no next header" (after which nothing is read), and an upper-layer
/// header otherwise.
fn v6_header_mask(p: &Packet) -> u8 {
    let mut m = 0;
    for h in p.ipv6_headers.iter().chain(std::iter::once(&p.proto)) {
        m |= mask_of(*h);
        // Behind the fragment header of a later fragment there is no
        // header to read, only the middle of the datagram.
        let later = *h == ipv6_header::FRAG && p.fragment;
        if later || matches!(*h, ipv6_header::ESP | ipv6_header::NONE) {
            return m;
        }
    }
    m
}

/// A test of the fields of this module.
#[derive(Debug, Clone)]
pub(crate) enum FieldTest {
    /// `-m tos --tos value/mask`.
    Tos { value: u8, mask: u8 },
    /// `-m dscp`: the upper six bits of the TOS byte.
    Dscp(u8),
    /// `-m ecn --ecn-ip-ect`: the lower two.
    EcnIp(u8),
    /// `-m ecn --ecn-tcp-cwr/ece`: a TCP flag.
    EcnTcp(u8),
    /// Matches that read the transport header fail on a fragment after
    /// the first, whatever their `!` (`tcp`, `udp`, `multiport`, `icmp` ...).
    NotLaterFragment,
    /// `-m tcp --tcp-option N`.
    TcpOption(u8),
    /// `-m tcpmss --mss lo[:hi]`; a segment without the option fails
    /// before the `!` is applied.
    Mss { lo: u16, hi: u16 },
    /// `-m ipv6header --header LIST [--soft]` with its `!`.
    Headers {
        want: u8,
        soft: bool,
        inverted: bool,
    },
    /// `-m hbh`, `-m dst`, `-m rt`: the header is there; the text names
    /// field tests that are assumed when it is.
    Has { header: u8, fields: Option<String> },
    /// `-m frag`: a fragment header, and its flags.
    Frag {
        first: bool,
        more: bool,
        last: bool,
        fields: Option<String>,
    },
}

/// A port or flag test of `-m tcp`/`-m udp` on a fragment after the
/// first, which has no transport header: iptables-legacy fails the match;
/// iptables-nft compares the bytes of the fragment's payload where the
/// header would be, which are taken to be none of the values named (so a
/// `!` test matches, as the kernel showed); `--assume` settles it.
pub(crate) fn later_fragment_header() -> Outcome {
    Outcome::Assumed(
        false,
        "a fragment after the first has no transport header: taken as none of the ports or flags named (iptables-nft reads payload bytes there; iptables-legacy fails the whole match)".into(),
    )
}

impl FieldTest {
    /// What it reads, for the analyses that cannot see it.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            FieldTest::Tos { .. } => "tos",
            FieldTest::Dscp(_) => "dscp",
            FieldTest::EcnIp(_) | FieldTest::EcnTcp(_) => "ecn",
            FieldTest::NotLaterFragment => "fragment",
            FieldTest::TcpOption(_) => "tcp option",
            FieldTest::Mss { .. } => "tcpmss",
            FieldTest::Headers { .. } => "ipv6header",
            FieldTest::Has { .. } => "ipv6 extension header",
            FieldTest::Frag { .. } => "frag",
        }
    }
}

fn known(v: bool) -> Outcome {
    Outcome::Known(v)
}

fn has_header(p: &Packet, h: u8) -> bool {
    p.dst.is_ipv6() && p.ipv6_headers.contains(&h)
}

/// Evaluates a test of this module (before its `!`).
pub(crate) fn eval(t: &FieldTest, p: &Packet) -> Outcome {
    match t {
        FieldTest::Tos { value, mask } => known(p.tos & mask == *value),
        FieldTest::Dscp(d) => known(p.tos >> 2 == *d),
        FieldTest::EcnIp(e) => known(p.tos & 3 == *e),
        FieldTest::EcnTcp(bit) => known(p.proto == 6 && p.tcp_flags & bit != 0),
        FieldTest::NotLaterFragment => known(!p.fragment),
        FieldTest::TcpOption(k) => known(p.proto == 6 && p.tcp_options.contains(k)),
        // On this kernel, `-m tcpmss` drops an IPv6 fragment after the
        // first (tests/kernel_fields.rs); an IPv4 one passes it unmatched.
        FieldTest::Mss { .. } if p.fragment && p.dst.is_ipv6() => Outcome::Hotdrop(
            "-m tcpmss on an IPv6 fragment after the first: the kernel drops the packet".into(),
        ),
        // A later fragment has no options of its own to find.
        FieldTest::Mss { lo, hi } => {
            known(!p.fragment && p.mss.is_some_and(|m| (*lo..=*hi).contains(&m)))
        }
        FieldTest::Headers {
            want,
            soft,
            inverted,
        } => {
            let have = v6_header_mask(p);
            known(match (soft, inverted) {
                (true, false) => have & want == *want,
                (true, true) => have & want == 0,
                (false, false) => have == *want,
                (false, true) => have != *want,
            })
        }
        FieldTest::Has { header, fields } => {
            if !has_header(p, *header) {
                return known(false);
            }
            match fields {
                None => known(true),
                Some(what) => Outcome::Assumed(
                    true,
                    format!("{} header: {what} assumed to match", header_name(*header)),
                ),
            }
        }
        FieldTest::Frag {
            first,
            more,
            last,
            fields,
        } => {
            if !has_header(p, ipv6_header::FRAG) {
                return known(false);
            }
            let flags = (!first || !p.fragment)
                && (!more || p.more_fragments)
                && (!last || !p.more_fragments);
            match fields {
                Some(what) if flags => Outcome::Assumed(
                    true,
                    format!("frag: {what} not known from the packet, assumed to match"),
                ),
                _ => known(flags),
            }
        }
    }
}

/// Compiles the matches of this module; false when `module` is not one.
pub(crate) fn compile_match(m: &Match, part: Part, out: &mut Vec<Cond>) -> bool {
    let push = |out: &mut Vec<Cond>, t: FieldTest, negated: bool| {
        out.push(Cond {
            test: Test::Field(t),
            negated,
            part,
        })
    };
    let cannot = |out: &mut Vec<Cond>, o: Opt<'_>| {
        out.push(Cond {
            test: Test::Assume {
                matched: true,
                what: format!(
                    "{} {} {}: cannot read it, assumed to match",
                    m.module,
                    o.name,
                    o.arg()
                ),
            },
            negated: false,
            part,
        })
    };
    match m.module {
        "tos" => {
            for o in m.opts.iter().filter(|o| o.name == "--tos") {
                match tos_spec(o.arg()) {
                    Some((value, mask)) => push(out, FieldTest::Tos { value, mask }, o.negated),
                    None => cannot(out, o),
                }
            }
        }
        "dscp" => {
            for o in m.opts.iter() {
                match parse_dscp(o.arg()) {
                    Some(d) => push(out, FieldTest::Dscp(d), o.negated),
                    None => cannot(out, o),
                }
            }
        }
        "ecn" => {
            for o in m.opts.iter() {
                match o.name {
                    "--ecn-ip-ect" => match parse_u32(o.arg()).filter(|v| *v < 4) {
                        Some(v) => push(out, FieldTest::EcnIp(v as u8), o.negated),
                        None => cannot(out, o),
                    },
                    "--ecn-tcp-cwr" => push(out, FieldTest::EcnTcp(tcp_flags::CWR), o.negated),
                    "--ecn-tcp-ece" => push(out, FieldTest::EcnTcp(tcp_flags::ECE), o.negated),
                    _ => {}
                }
            }
        }
        "tcpmss" => {
            for o in m.opts.iter() {
                let (lo, hi) = o.arg().split_once(':').unwrap_or((o.arg(), o.arg()));
                match (lo.parse(), hi.parse()) {
                    (Ok(lo), Ok(hi)) => push(out, FieldTest::Mss { lo, hi }, o.negated),
                    _ => cannot(out, o),
                }
            }
        }
        "ipv6header" => {
            let soft = m.opt("--soft").is_some();
            if let Some(o) = m.opt("--header") {
                match parse_ipv6_headers(o.arg()) {
                    Some(list) => {
                        let mut want = list.iter().fold(0, |a, h| a | mask_of(*h));
                        if o.arg().split(',').any(|w| ipv6_header_kind(w) == Ok(None)) {
                            want |= mask::PROTO;
                        }
                        push(
                            out,
                            FieldTest::Headers {
                                want,
                                soft,
                                inverted: o.negated,
                            },
                            false,
                        )
                    }
                    None => cannot(out, o),
                }
            }
        }
        "hbh" | "dst" | "rt" => {
            let header = match m.module {
                "hbh" => ipv6_header::HOP,
                "dst" => ipv6_header::DST,
                _ => ipv6_header::ROUTE,
            };
            push(
                out,
                FieldTest::Has {
                    header,
                    fields: field_list(m, &[]),
                },
                false,
            );
        }
        "frag" => push(
            out,
            FieldTest::Frag {
                first: m.opt("--fragfirst").is_some(),
                more: m.opt("--fragmore").is_some(),
                last: m.opt("--fraglast").is_some(),
                fields: field_list(m, &["--fragfirst", "--fragmore", "--fraglast"]),
            },
            false,
        ),
        _ => return false,
    }
    true
}

/// The options of a header match that the packet does not describe.
fn field_list(m: &Match, known: &[&str]) -> Option<String> {
    let rest: Vec<String> = m
        .opts
        .iter()
        .filter(|o| !known.contains(&o.name))
        .map(|o| {
            let bang = if o.negated { "! " } else { "" };
            format!("{bang}{} {}", o.name, o.args.join(" "))
                .trim_end()
                .to_string()
        })
        .collect();
    (!rest.is_empty()).then(|| rest.join(" "))
}

/// `value[/mask]` of `--tos` and `--set-tos`, or a symbolic name (whose
/// mask is the six bits the old TOS field had).
fn tos_spec(s: &str) -> Option<(u8, u8)> {
    let named = match s.to_ascii_lowercase().as_str() {
        "minimize-delay" => Some(0x10),
        "maximize-throughput" => Some(0x08),
        "maximize-reliability" => Some(0x04),
        "minimize-cost" => Some(0x02),
        "normal-service" => Some(0x00),
        _ => None,
    };
    if let Some(v) = named {
        return Some((v, 0x3f));
    }
    let (v, m) = s.split_once('/').unwrap_or((s, "0xff"));
    Some((parse_tos(v)?, parse_tos(m)?))
}

/// A target of this module.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FieldOp {
    /// `DSCP --set-dscp[-class]`.
    SetDscp(u8),
    /// `TOS`: `tos = (tos & !mask) ^ value`.
    SetTos { value: u8, mask: u8 },
    /// `TCPMSS --set-mss`.
    SetMss(u16),
    /// `TCPMSS --clamp-mss-to-pmtu`.
    ClampMss,
}

/// Compiles a target of this module; `None` when it is not one.
pub(crate) fn compile_target(t: &Target) -> Option<FieldOp> {
    let num = |n: &str| t.opt(n).and_then(|o| parse_u32(o.arg()));
    Some(match t.name {
        "DSCP" => FieldOp::SetDscp(match t.opt("--set-dscp-class") {
            Some(o) => parse_dscp(o.arg())?,
            None => u8::try_from(num("--set-dscp")?).ok()?,
        }),
        "TOS" => {
            if let Some(o) = t.opt("--set-tos") {
                let (value, mask) = tos_spec(o.arg())?;
                FieldOp::SetTos { value, mask }
            } else if let Some(v) = num("--and-tos") {
                FieldOp::SetTos {
                    value: 0,
                    mask: !(v as u8),
                }
            } else if let Some(v) = num("--or-tos") {
                FieldOp::SetTos {
                    value: v as u8,
                    mask: v as u8,
                }
            } else {
                FieldOp::SetTos {
                    value: num("--xor-tos")? as u8,
                    mask: 0,
                }
            }
        }
        "TCPMSS" if t.opt("--clamp-mss-to-pmtu").is_some() => FieldOp::ClampMss,
        "TCPMSS" => FieldOp::SetMss(u16::try_from(num("--set-mss")?).ok()?),
        _ => return None,
    })
}

/// Applies a target to the packet: the target's name and what changed.
pub(crate) fn apply(op: FieldOp, p: &mut Packet) -> (String, String) {
    match op {
        FieldOp::SetDscp(d) => {
            let from = p.tos;
            p.tos = (p.tos & 3) | (d << 2);
            ("DSCP".into(), format!("tos {from:#04x} -> {:#04x}", p.tos))
        }
        FieldOp::SetTos { value, mask } => {
            let from = p.tos;
            p.tos = (p.tos & !mask) ^ value;
            ("TOS".into(), format!("tos {from:#04x} -> {:#04x}", p.tos))
        }
        FieldOp::SetMss(new) => {
            let change = if p.proto != 6 || p.fragment {
                "not a TCP header: unchanged".to_string()
            } else {
                match p.mss {
                    // The kernel never raises an MSS, even when told to set it.
                    Some(old) if old <= new => format!("mss {old} kept (never raised)"),
                    Some(old) => {
                        p.mss = Some(new);
                        format!("mss {old} -> {new}")
                    }
                    // With data after the header the option would have to
                    // push it along: the kernel leaves the segment alone.
                    None if carries_data(p) => {
                        "no mss option, and data after the TCP header: unchanged".to_string()
                    }
                    None => {
                        // Added when missing, at most the protocol's
                        // default (536 for IPv4, 1220 for IPv6).
                        let cap = if p.dst.is_ipv6() { 1220 } else { 536 };
                        let v = new.min(cap);
                        p.mss = Some(v);
                        if !p.tcp_options.contains(&2) {
                            p.tcp_options.push(2);
                            p.tcp_options.sort_unstable();
                        }
                        format!("mss option added: {v}")
                    }
                }
            };
            ("TCPMSS".into(), change)
        }
        FieldOp::ClampMss => (
            "TCPMSS".into(),
            "--clamp-mss-to-pmtu: the path MTU is not known, mss left as it is".into(),
        ),
    }
}

/// Whether a TCP segment has data after its header, judged from the
/// length (a first fragment always has: it was cut from a longer datagram).
fn carries_data(p: &Packet) -> bool {
    if p.more_fragments {
        return true;
    }
    let ip = if p.dst.is_ipv6() {
        40 + 8 * p.ipv6_headers.len()
    } else {
        20
    };
    let options: usize = p
        .tcp_options
        .iter()
        .map(|k| match k {
            0 | 1 => 1,
            2 => 4,
            3 => 3,
            4 => 2,
            5 | 8 => 10,
            _ => 4,
        })
        .sum();
    usize::from(p.length) > ip + 20 + options.div_ceil(4) * 4
}

/// Why the kernel runs conntrack for these rules, if it does: then it
/// puts fragments back together before any table of PREROUTING and
/// OUTPUT sees them. Conntrack starts in a network namespace when a rule
/// or table needs it (the nat table, a conntrack match or target).
pub fn conntrack_user(rs: &Ruleset) -> Option<String> {
    const MATCHES: &[&str] = &[
        "conntrack",
        "state",
        "connmark",
        "connbytes",
        "connlabel",
        "connlimit",
        "helper",
        "cluster",
        "socket",
        "ipvs",
    ];
    const TARGETS: &[&str] = &[
        "CT",
        "NOTRACK",
        "CONNMARK",
        "CONNSECMARK",
        "SYNPROXY",
        "TPROXY",
        "CLUSTERIP",
        "MASQUERADE",
        "SNAT",
        "DNAT",
        "REDIRECT",
        "NETMAP",
    ];
    for t in &rs.tables {
        if t.name == "nat" {
            return Some("the nat table".into());
        }
        for c in &t.chains {
            for (i, r) in c.rules.iter().enumerate() {
                let at = || format!("{} {}#{} (line {})", t.name, c.name, i + 1, r.line);
                if let Some(m) = r.matches().find(|m| MATCHES.contains(&m.module)) {
                    return Some(format!("-m {} in {}", m.module, at()));
                }
                if let Some(tg) = r.target().filter(|tg| TARGETS.contains(&tg.name)) {
                    return Some(format!("-j {} in {}", tg.name, at()));
                }
            }
        }
    }
    None
}

/// The start of the note of a rule whose match dropped the packet.
pub(crate) const HOTDROP: &str = "dropped here: ";

/// What putting a packet's datagram back together means for its walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reassembly {
    /// Not a fragment.
    Whole,
    /// The first fragment: the walk goes on as the whole datagram.
    Datagram,
    /// A later fragment: held until its datagram is complete; the walk
    /// of the first fragment stands for the datagram.
    Held,
}

/// Takes the packet as its reassembled datagram.
pub(crate) fn reassemble(p: &mut Packet) -> Reassembly {
    let r = match fragment_kind(p) {
        None => return Reassembly::Whole,
        Some(FragmentKind::First) => Reassembly::Datagram,
        Some(_) => Reassembly::Held,
    };
    p.fragment = false;
    p.more_fragments = false;
    p.ipv6_headers.retain(|h| *h != ipv6_header::FRAG);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(v6: bool) -> Packet {
        let (s, d) = if v6 {
            ("fd00::1", "fd00::2")
        } else {
            ("10.0.0.1", "10.0.0.2")
        };
        Packet::new(6, s.parse().unwrap(), d.parse().unwrap())
    }

    #[test]
    fn dscp_classes_and_tos_specs() {
        assert_eq!(parse_dscp("AF41"), Some(34));
        assert_eq!(parse_dscp("ef"), Some(46));
        assert_eq!(parse_dscp("CS1"), Some(8));
        assert_eq!(parse_dscp("0x0a"), Some(10));
        assert_eq!(parse_dscp("64"), None);
        assert_eq!(tos_spec("0x10/0x3f"), Some((0x10, 0x3f)));
        assert_eq!(tos_spec("Minimize-Delay"), Some((0x10, 0x3f)));
        assert_eq!(tos_spec("0x08"), Some((0x08, 0xff)));
    }

    #[test]
    fn ipv6header_sees_extensions_and_the_upper_layer() {
        let mut p = pkt(true);
        assert_eq!(v6_header_mask(&p), mask::PROTO);
        set_fragment(&mut p, FragmentKind::First);
        p.ipv6_headers.insert(0, ipv6_header::HOP);
        assert_eq!(p.ipv6_headers, vec![0, 44]);
        assert_eq!(v6_header_mask(&p), mask::HOP | mask::FRAG | mask::PROTO);
        p.proto = ipv6_header::NONE;
        assert_eq!(v6_header_mask(&p), mask::HOP | mask::FRAG | mask::NONE);
    }

    #[test]
    fn tcpmss_never_raises_and_adds_a_capped_option() {
        let mut p = pkt(false);
        p.mss = Some(1460);
        apply(FieldOp::SetMss(1400), &mut p);
        assert_eq!(p.mss, Some(1400));
        apply(FieldOp::SetMss(1500), &mut p);
        assert_eq!(p.mss, Some(1400));
        let mut q = pkt(false);
        apply(FieldOp::SetMss(1400), &mut q);
        assert_eq!((q.mss, q.tcp_options.clone()), (Some(536), vec![2]));
    }

    #[test]
    fn tos_targets_keep_what_their_mask_leaves() {
        let mut p = pkt(false);
        p.tos = 0x03;
        apply(FieldOp::SetDscp(10), &mut p);
        assert_eq!(p.tos, 0x2b);
        p.tos = 0xeb;
        let op = FieldOp::SetTos {
            value: 0x10,
            mask: 0x3f,
        };
        apply(op, &mut p);
        assert_eq!(p.tos, 0xd0);
    }

    #[test]
    fn a_later_fragment_is_held_for_reassembly() {
        let mut p = pkt(true);
        set_fragment(&mut p, FragmentKind::Last);
        assert_eq!(reassemble(&mut p), Reassembly::Held);
        assert!(p.ipv6_headers.is_empty() && !p.fragment);
        let mut q = pkt(false);
        set_fragment(&mut q, FragmentKind::First);
        assert_eq!(reassemble(&mut q), Reassembly::Datagram);
        assert_eq!(reassemble(&mut q), Reassembly::Whole);
    }
}
