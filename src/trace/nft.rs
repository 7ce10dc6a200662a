//! Tracing through nftables: the rules of `nft -j list ruleset`, compiled
//! into expressions the walk can evaluate, and the base chains of every
//! hook run in priority order beside the iptables tables.
//!
//! The walk itself is [`Tracer`]'s: routing, local output, the loop back
//! through `lo` and NAT bindings are shared. What differs is the hook: its
//! base chains (nft chains of the packet's family and of `inet`, and the
//! iptables tables at their fixed priorities) are sorted by priority, and
//! all NAT chains of a hook run at the NAT core's slot (-100 for
//! PREROUTING and OUTPUT, 100 for INPUT and POSTROUTING), among themselves
//! by their own priority, until one of them gives the connection its
//! binding. Steps of nft rules carry table indices after the iptables
//! ones; [`Trace::view_nft`] names them.

use std::collections::HashMap;
use std::net::IpAddr;

use serde_json::Value;

use super::compile::{Act, NatPorts};
use super::report::{StepView, TraceView};
use super::{
    Action, CtState, Hook, Part, RuleRef, Step, Trace, Tracer, Verdict, Walk, apply, apply_binding,
    step,
};
use crate::model::Ruleset;

/// Address family of an nft table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NftFamily {
    /// `ip`
    Ip,
    /// `ip6`
    Ip6,
    /// `inet`
    Inet,
    /// `arp`, `bridge`, `netdev`: shown, not traced.
    Other,
}

impl NftFamily {
    fn parse(s: &str) -> NftFamily {
        match s {
            "ip" => NftFamily::Ip,
            "ip6" => NftFamily::Ip6,
            "inet" => NftFamily::Inet,
            _ => NftFamily::Other,
        }
    }

    /// The family's name as nft writes it.
    pub fn name(self) -> &'static str {
        match self {
            NftFamily::Ip => "ip",
            NftFamily::Ip6 => "ip6",
            NftFamily::Inet => "inet",
            NftFamily::Other => "other",
        }
    }

    fn sees(self, v6: bool) -> bool {
        match self {
            NftFamily::Ip => !v6,
            NftFamily::Ip6 => v6,
            NftFamily::Inet => true,
            NftFamily::Other => false,
        }
    }
}

/// A base chain's hook registration.
#[derive(Debug, Clone)]
pub struct BaseChain {
    /// `filter`, `nat`, `route`.
    pub kind: String,
    /// The hook, when it is one of the five IP hooks.
    pub hook: Option<Hook>,
    /// Priority as a number.
    pub prio: i32,
    /// Policy drop (else accept).
    pub drop: bool,
}

/// One chain.
#[derive(Debug, Clone)]
pub struct NChain {
    /// Name.
    pub name: String,
    /// Set for base chains.
    pub base: Option<BaseChain>,
    /// Rules in order.
    pub rules: Vec<NRule>,
}

/// One rule.
#[derive(Debug, Clone)]
pub struct NRule {
    /// The kernel's handle (0 when not known).
    pub handle: u64,
    /// The rule as nft text (close to what `nft list` prints).
    pub text: String,
    exprs: Vec<Ex>,
    /// The text of each expression, for "no match" reasons.
    parts: Vec<String>,
    /// `numgen random mod N` in the rule: N.
    random: Option<u64>,
}

/// A named set or map.
#[derive(Debug, Clone, Default)]
struct NSet {
    /// Raw elements (JSON), typed when a rule uses them.
    elems: Vec<Value>,
}

/// One table.
#[derive(Debug, Clone)]
pub struct NTable {
    /// Family.
    pub family: NftFamily,
    /// Name.
    pub name: String,
    /// Chains in listing order.
    pub chains: Vec<NChain>,
    sets: HashMap<String, NSet>,
}

impl NTable {
    fn chain_index(&self, name: &str) -> Option<usize> {
        self.chains.iter().position(|c| c.name == name)
    }
}

/// An nft ruleset ready to trace.
#[derive(Debug, Clone, Default)]
pub struct NftRules {
    /// Tables in listing order.
    pub tables: Vec<NTable>,
    /// Whether conntrack runs for IPv4 and IPv6 packets: only when a rule
    /// of a table that sees them uses it (`ct` expressions, NAT
    /// statements). Without it there is no connection, and no nat chain
    /// is called.
    pub conntrack: (bool, bool),
}

/// Why an nft JSON listing could not be read.
#[derive(Debug, thiserror::Error)]
#[error("nft JSON: {0}")]
pub struct NftJsonError(String);

impl NftRules {
    /// Reads `nft -j list ruleset` output.
    pub fn from_json(text: &str) -> Result<NftRules, NftJsonError> {
        let v: Value = serde_json::from_str(text).map_err(|e| NftJsonError(e.to_string()))?;
        let items = v
            .get("nftables")
            .and_then(Value::as_array)
            .ok_or_else(|| NftJsonError("no \"nftables\" array".into()))?;
        let mut rs = NftRules::default();
        let find = |rs: &NftRules, o: &Value| {
            let fam = NftFamily::parse(o["family"].as_str().unwrap_or(""));
            let name = o["table"].as_str().unwrap_or("");
            rs.tables
                .iter()
                .position(|t| t.family == fam && t.name == name)
        };
        // Rules may name chains listed after them: chains first.
        for it in items {
            if let Some(t) = it.get("table") {
                rs.tables.push(NTable {
                    family: NftFamily::parse(t["family"].as_str().unwrap_or("")),
                    name: t["name"].as_str().unwrap_or("").to_string(),
                    chains: Vec::new(),
                    sets: HashMap::new(),
                });
            } else if let Some(c) = it.get("chain") {
                let t = find(&rs, c).ok_or_else(|| NftJsonError("chain of no table".into()))?;
                let base = c.get("hook").and_then(Value::as_str).map(|h| BaseChain {
                    kind: c["type"].as_str().unwrap_or("filter").to_string(),
                    hook: hook_of(h),
                    prio: c["prio"].as_i64().unwrap_or(0) as i32,
                    drop: c["policy"].as_str() == Some("drop"),
                });
                rs.tables[t].chains.push(NChain {
                    name: c["name"].as_str().unwrap_or("").to_string(),
                    base,
                    rules: Vec::new(),
                });
            } else if let Some(s) = it.get("set").or_else(|| it.get("map")) {
                let t = find(&rs, s).ok_or_else(|| NftJsonError("set of no table".into()))?;
                let elems = s
                    .get("elem")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                rs.tables[t]
                    .sets
                    .insert(s["name"].as_str().unwrap_or("").to_string(), NSet { elems });
            }
        }
        for it in items {
            let Some(r) = it.get("rule") else { continue };
            let t = find(&rs, r).ok_or_else(|| NftJsonError("rule of no table".into()))?;
            let chain = r["chain"].as_str().unwrap_or("");
            let Some(c) = rs.tables[t].chain_index(chain) else {
                return Err(NftJsonError(format!("rule in unknown chain {chain}")));
            };
            let exprs = r["expr"].as_array().cloned().unwrap_or_default();
            if exprs.iter().any(uses_conntrack) {
                match rs.tables[t].family {
                    NftFamily::Ip => rs.conntrack.0 = true,
                    NftFamily::Ip6 => rs.conntrack.1 = true,
                    NftFamily::Inet => rs.conntrack = (true, true),
                    NftFamily::Other => {}
                }
            }
            let mut rule = compile_rule(&rs.tables[t], r["handle"].as_u64().unwrap_or(0), &exprs);
            // The text as written, when the rules come from the model.
            if let Some(text) = r.get("text").and_then(Value::as_str)
                && !text.is_empty()
            {
                rule.text = text.to_string();
            }
            rs.tables[t].chains[c].rules.push(rule);
        }
        Ok(rs)
    }

    /// Rules in all tables.
    pub fn rule_count(&self) -> usize {
        self.tables
            .iter()
            .flat_map(|t| &t.chains)
            .map(|c| c.rules.len())
            .sum()
    }
}

/// Whether an expression needs conntrack (so that the kernel runs it).
fn uses_conntrack(v: &Value) -> bool {
    match v {
        Value::Object(o) => o.iter().any(|(k, x)| {
            matches!(
                k.as_str(),
                "ct" | "dnat" | "snat" | "masquerade" | "redirect" | "notrack" | "ct helper"
            ) || uses_conntrack(x)
        }),
        Value::Array(a) => a.iter().any(uses_conntrack),
        _ => false,
    }
}

fn hook_of(h: &str) -> Option<Hook> {
    Some(match h {
        "prerouting" => Hook::Prerouting,
        "input" => Hook::Input,
        "forward" => Hook::Forward,
        "output" => Hook::Output,
        "postrouting" => Hook::Postrouting,
        _ => return None,
    })
}

// ---------------------------------------------------------------------
// Expressions

/// How literals compared with a value are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Addr,
    Int,
    IfName,
    Proto,
    Port,
    CtState,
    CtStatus,
    CtDir,
    NfProto,
    EtherType,
    PktType,
    IcmpType,
    Icmp6Type,
    TcpFlags,
    FibType,
    FibOif,
    Unknown,
}

/// A value read from the packet.
#[derive(Debug, Clone, PartialEq)]
enum V {
    Int(u128),
    Addr(IpAddr),
    Str(String),
    Cat(Vec<V>),
    /// The expression does not apply to this packet (another protocol,
    /// no conntrack entry): the rule does not match, whatever the operator.
    Absent,
    /// Not known to the trace: an assumption.
    Unknown(String),
}

#[derive(Debug, Clone)]
enum Src {
    Payload(String, String),
    Meta(String),
    Ct(String, Option<String>),
    Fib(String, Vec<String>),
    And(Box<Src>, u128),
    Or(Box<Src>, u128),
    Cat(Vec<Src>),
    /// A value of a map: `KEY map @m` / `KEY map { ... }`.
    Map(Box<Src>, Box<Pat>),
    Lit(Pat),
    /// `numgen random mod N offset O`.
    Random(u32, u32),
    /// An IPv6 extension header (`exthdr`, `rt`, `frag` ...) by its
    /// next-header number, or a TCP option by its kind.
    Header(bool, u8, String),
    Unknown(String),
}

/// The right side of a match, a set element, a map key.
#[derive(Debug, Clone)]
enum Pat {
    Val(V),
    Prefix(ipnet::IpNet),
    Range(V, V),
    Cat(Vec<Pat>),
    /// Anonymous or named set; elements with their data (for maps).
    Set(Vec<(Pat, Option<Value>)>),
    /// Flags given as a list (`ct state established,related`).
    Flags(u128),
    Bad,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    In,
}

#[derive(Debug, Clone)]
enum NatKind {
    Dnat,
    Snat,
    Masquerade,
    Redirect,
}

#[derive(Debug, Clone)]
enum Ex {
    Match(Src, Kind, Op, Pat),
    Accept,
    Drop,
    Continue,
    Return,
    Jump(usize, bool),
    UndefinedChain(String),
    Vmap(Src, Pat),
    Reject,
    Queue,
    /// Kind, address, port, and the family it is for (`dnat ip to ...`
    /// in an inet table does nothing to an IPv6 packet).
    Nat(NatKind, Option<Src>, Option<Src>, Option<bool>),
    SetMark(Src),
    SetCtMark(Src),
    Notrack,
    /// Counter, log, and statements that change nothing the trace follows.
    Passive,
    /// A match whose outcome depends on state the trace does not have
    /// (limit, quota, meters): assumed to match.
    Stateful(String),
    /// Anything else: assumed to match, and noted.
    Unknown(String),
}

fn kind_of(src: &Src) -> Kind {
    match src {
        Src::Payload(p, f) => match (p.as_str(), f.as_str()) {
            ("ip" | "ip6", "saddr" | "daddr") => Kind::Addr,
            ("ip", "protocol") | ("ip6", "nexthdr") => Kind::Proto,
            (_, "sport" | "dport") => Kind::Port,
            ("tcp", "flags") => Kind::TcpFlags,
            ("icmp", "type") => Kind::IcmpType,
            ("icmpv6", "type") => Kind::Icmp6Type,
            ("ether", "type") => Kind::EtherType,
            _ => Kind::Int,
        },
        Src::Meta(k) => match k.as_str() {
            "iifname" | "oifname" | "iif" | "oif" => Kind::IfName,
            "l4proto" => Kind::Proto,
            "protocol" => Kind::EtherType,
            "nfproto" => Kind::NfProto,
            "pkttype" => Kind::PktType,
            _ => Kind::Int,
        },
        Src::Ct(k, _) => match k.as_str() {
            "state" => Kind::CtState,
            "status" => Kind::CtStatus,
            "direction" => Kind::CtDir,
            "l3proto" => Kind::NfProto,
            "protocol" => Kind::Proto,
            "saddr" | "daddr" | "ip saddr" | "ip daddr" | "ip6 saddr" | "ip6 daddr" => Kind::Addr,
            "proto-src" | "proto-dst" => Kind::Port,
            _ => Kind::Int,
        },
        Src::Fib(r, _) => match r.as_str() {
            "type" => Kind::FibType,
            "oifname" => Kind::IfName,
            _ => Kind::FibOif,
        },
        Src::And(s, _) | Src::Or(s, _) => kind_of(s),
        Src::Random(..) | Src::Header(..) => Kind::Int,
        Src::Map(..) | Src::Lit(_) | Src::Cat(_) | Src::Unknown(_) => Kind::Unknown,
    }
}

fn kinds_of(src: &Src) -> Vec<Kind> {
    match src {
        Src::Cat(v) => v.iter().map(kind_of).collect(),
        s => vec![kind_of(s)],
    }
}

fn src_of(v: &Value, t: &NTable) -> Src {
    let Some(o) = v.as_object() else {
        return Src::Lit(pat_of(v, &[Kind::Unknown], t));
    };
    let Some((k, a)) = o.iter().next() else {
        return Src::Unknown(v.to_string());
    };
    match k.as_str() {
        "payload"
            if matches!(
                a["protocol"].as_str(),
                Some("rt" | "rt0" | "rt2" | "srh" | "hbh" | "frag" | "dst" | "mh")
            ) =>
        {
            let name = a["protocol"].as_str().unwrap_or("");
            src_of(&serde_json::json!({"exthdr": {"name": name}}), t)
        }
        "payload" if a.get("field").is_some() => Src::Payload(
            a["protocol"].as_str().unwrap_or("").into(),
            a["field"].as_str().unwrap_or("").into(),
        ),
        "meta" => Src::Meta(a["key"].as_str().unwrap_or("").into()),
        "ct" => {
            let key = match a.get("family").and_then(Value::as_str) {
                Some(f) => format!("{f} {}", a["key"].as_str().unwrap_or("")),
                None => a["key"].as_str().unwrap_or("").into(),
            };
            Src::Ct(key, a.get("dir").and_then(Value::as_str).map(Into::into))
        }
        "fib" => Src::Fib(
            a["result"].as_str().unwrap_or("").into(),
            a["flags"]
                .as_array()
                .map(|f| {
                    f.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
        ),
        "&" | "|" => {
            let l = src_of(&a[0], t);
            let kind = kind_of(&l);
            let m = match pat_of(&a[1], &[kind], t) {
                Pat::Val(V::Int(m)) | Pat::Flags(m) => m,
                _ => return Src::Unknown(v.to_string()),
            };
            if k == "&" {
                Src::And(Box::new(l), m)
            } else {
                Src::Or(Box::new(l), m)
            }
        }
        "concat" => Src::Cat(
            a.as_array()
                .map(|x| x.iter().map(|e| src_of(e, t)).collect())
                .unwrap_or_default(),
        ),
        "exthdr" => {
            let name = a["name"].as_str().unwrap_or("");
            let n = match name {
                "hbh" => 0,
                "rt" | "rt0" | "rt2" | "srh" => 43,
                "frag" => 44,
                "dst" => 60,
                "mh" => 135,
                _ => return Src::Unknown(format!("exthdr {name}")),
            };
            Src::Header(true, n, format!("exthdr {name}"))
        }
        "tcp option" => {
            let name = a["name"].as_str().unwrap_or("");
            let n = match name {
                "eol" => 0,
                "nop" | "noop" => 1,
                "maxseg" | "mss" => 2,
                "window" => 3,
                "sack-perm" | "sack-permitted" => 4,
                "sack" | "sack0" | "sack1" | "sack2" | "sack3" => 5,
                "timestamp" => 8,
                _ => return Src::Unknown(format!("tcp option {name}")),
            };
            Src::Header(false, n, format!("tcp option {name}"))
        }
        "numgen" if a["mode"].as_str() == Some("random") => Src::Random(
            a["mod"].as_u64().unwrap_or(1) as u32,
            a["offset"].as_u64().unwrap_or(0) as u32,
        ),
        "map" => {
            let key = src_of(&a["key"], t);
            let kinds = kinds_of(&key);
            let data = set_pat(&a["data"], &kinds, t);
            Src::Map(Box::new(key), Box::new(data))
        }
        _ => Src::Unknown(k.clone()),
    }
}

fn num(kind: Kind, s: &str) -> Option<u128> {
    if let Ok(n) = s.parse::<u128>() {
        return Some(n);
    }
    if let Some(h) = s.strip_prefix("0x") {
        return u128::from_str_radix(h, 16).ok();
    }
    let n: u128 = match (kind, s) {
        (Kind::Proto, _) => super::protocol_number(s)? as u128,
        (Kind::Port, _) => service_port(s)? as u128,
        (Kind::CtState, "invalid") => 1,
        (Kind::CtState, "established") => 2,
        (Kind::CtState, "related") => 4,
        (Kind::CtState, "new") => 8,
        (Kind::CtState, "untracked") => 64,
        (Kind::CtStatus, "expected") => 1,
        (Kind::CtStatus, "seen-reply") => 2,
        (Kind::CtStatus, "assured") => 4,
        (Kind::CtStatus, "confirmed") => 8,
        (Kind::CtStatus, "snat") => 16,
        (Kind::CtStatus, "dnat") => 32,
        (Kind::CtStatus, "dying") => 512,
        (Kind::CtDir, "original") => 0,
        (Kind::CtDir, "reply") => 1,
        (Kind::NfProto, "ipv4") => 2,
        (Kind::NfProto, "ipv6") => 10,
        (Kind::EtherType, "ip") => 0x0800,
        (Kind::EtherType, "arp") => 0x0806,
        (Kind::EtherType, "ip6") => 0x86dd,
        (Kind::EtherType, "vlan") => 0x8100,
        (Kind::PktType, "host") => 0,
        (Kind::PktType, "broadcast") => 1,
        (Kind::PktType, "multicast") => 2,
        (Kind::PktType, "other") => 3,
        (Kind::TcpFlags, f) => {
            use super::tcp_flags::*;
            (match f {
                "fin" => FIN,
                "syn" => SYN,
                "rst" => RST,
                "psh" => PSH,
                "ack" => ACK,
                "urg" => URG,
                "ecn" => ECE,
                "cwr" => CWR,
                _ => return None,
            }) as u128
        }
        (Kind::IcmpType, n) => icmp_type(n, false)? as u128,
        (Kind::Icmp6Type, n) => icmp_type(n, true)? as u128,
        (Kind::FibType, n) => [
            "unspec",
            "unicast",
            "local",
            "broadcast",
            "anycast",
            "multicast",
            "blackhole",
            "unreachable",
            "prohibit",
        ]
        .iter()
        .position(|x| *x == n)? as u128,
        _ => return None,
    };
    Some(n)
}

fn service_port(s: &str) -> Option<u16> {
    Some(match s {
        "ftp-data" => 20,
        "ftp" => 21,
        "ssh" => 22,
        "telnet" => 23,
        "smtp" => 25,
        "domain" => 53,
        "bootps" => 67,
        "bootpc" => 68,
        "tftp" => 69,
        "http" => 80,
        "pop3" => 110,
        "sunrpc" => 111,
        "ntp" => 123,
        "imap2" | "imap" => 143,
        "snmp" => 161,
        "ldap" => 389,
        "https" => 443,
        "microsoft-ds" => 445,
        "isakmp" => 500,
        "syslog" => 514,
        "submission" => 587,
        "ipp" => 631,
        "ldaps" => 636,
        "imaps" => 993,
        "pop3s" => 995,
        "openvpn" => 1194,
        "mysql" => 3306,
        "dhcpv6-client" => 546,
        "dhcpv6-server" => 547,
        "mdns" => 5353,
        "http-alt" => 8080,
        _ => return None,
    })
}

fn icmp_type(s: &str, v6: bool) -> Option<u8> {
    if v6 {
        return Some(match s {
            "destination-unreachable" => 1,
            "packet-too-big" => 2,
            "time-exceeded" => 3,
            "parameter-problem" => 4,
            "echo-request" => 128,
            "echo-reply" => 129,
            "mld-listener-query" => 130,
            "mld-listener-report" => 131,
            "mld-listener-done" | "mld-listener-reduction" => 132,
            "nd-router-solicit" => 133,
            "nd-router-advert" => 134,
            "nd-neighbor-solicit" => 135,
            "nd-neighbor-advert" => 136,
            "nd-redirect" => 137,
            "router-renumbering" => 138,
            "ind-neighbor-solicit" => 141,
            "ind-neighbor-advert" => 142,
            "mld2-listener-report" => 143,
            _ => return None,
        });
    }
    Some(match s {
        "echo-reply" => 0,
        "destination-unreachable" => 3,
        "source-quench" => 4,
        "redirect" => 5,
        "echo-request" => 8,
        "router-advertisement" => 9,
        "router-solicitation" => 10,
        "time-exceeded" => 11,
        "parameter-problem" => 12,
        "timestamp-request" => 13,
        "timestamp-reply" => 14,
        "info-request" => 15,
        "info-reply" => 16,
        "address-mask-request" => 17,
        "address-mask-reply" => 18,
        _ => return None,
    })
}

/// A literal of `kinds` (one per concatenation part).
fn pat_of(v: &Value, kinds: &[Kind], t: &NTable) -> Pat {
    let kind = kinds.first().copied().unwrap_or(Kind::Unknown);
    match v {
        Value::Number(n) => Pat::Val(V::Int(n.as_u64().unwrap_or(0) as u128)),
        Value::Bool(b) => Pat::Val(V::Int(*b as u128)),
        Value::String(s) => {
            if let Some(name) = s.strip_prefix('@') {
                return match t.sets.get(name) {
                    Some(set) => set_elems(&set.elems, kinds, t),
                    None => Pat::Bad,
                };
            }
            lit(kind, s)
        }
        Value::Array(a) => {
            let mut m = 0u128;
            for x in a {
                match pat_of(x, kinds, t) {
                    Pat::Val(V::Int(b)) | Pat::Flags(b) => m |= b,
                    p => return p,
                }
            }
            Pat::Flags(m)
        }
        Value::Object(o) => {
            let Some((k, a)) = o.iter().next() else {
                return Pat::Bad;
            };
            match k.as_str() {
                "prefix" => {
                    let addr = a["addr"].as_str().unwrap_or("");
                    let len = a["len"].as_u64().unwrap_or(0);
                    match format!("{addr}/{len}").parse::<ipnet::IpNet>() {
                        Ok(n) => Pat::Prefix(n),
                        Err(_) => Pat::Bad,
                    }
                }
                "range" => match (pat_of(&a[0], kinds, t), pat_of(&a[1], kinds, t)) {
                    (Pat::Val(lo), Pat::Val(hi)) => Pat::Range(lo, hi),
                    _ => Pat::Bad,
                },
                "concat" => Pat::Cat(
                    a.as_array()
                        .map(|x| {
                            x.iter()
                                .enumerate()
                                .map(|(i, e)| {
                                    pat_of(e, &[kinds.get(i).copied().unwrap_or(Kind::Unknown)], t)
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                ),
                "set" => set_pat(v, kinds, t),
                "elem" => pat_of(&a["val"], kinds, t),
                "|" => pat_of(a, kinds, t),
                _ => Pat::Bad,
            }
        }
        Value::Null => Pat::Bad,
    }
}

fn lit(kind: Kind, s: &str) -> Pat {
    match kind {
        Kind::Addr => match s.parse::<IpAddr>() {
            Ok(a) => Pat::Val(V::Addr(a)),
            Err(_) => Pat::Bad,
        },
        Kind::IfName => Pat::Val(V::Str(s.into())),
        Kind::FibOif => match s {
            "0" | "false" | "missing" => Pat::Val(V::Int(0)),
            _ => Pat::Val(V::Int(1)),
        },
        _ => match num(kind, s) {
            Some(n) => Pat::Val(V::Int(n)),
            None => match s.parse::<IpAddr>() {
                Ok(a) => Pat::Val(V::Addr(a)),
                Err(_) => Pat::Val(V::Str(s.into())),
            },
        },
    }
}

fn set_pat(v: &Value, kinds: &[Kind], t: &NTable) -> Pat {
    match v {
        Value::String(s) if s.starts_with('@') => pat_of(v, kinds, t),
        Value::Object(o) => match o.get("set") {
            Some(Value::Array(a)) => set_elems(a, kinds, t),
            Some(x) => set_elems(std::slice::from_ref(x), kinds, t),
            None => pat_of(v, kinds, t),
        },
        _ => pat_of(v, kinds, t),
    }
}

fn set_elems(elems: &[Value], kinds: &[Kind], t: &NTable) -> Pat {
    Pat::Set(
        elems
            .iter()
            .map(|e| match e {
                // A map element: [key, data].
                Value::Array(kd) if kd.len() == 2 => {
                    (pat_of(&kd[0], kinds, t), Some(kd[1].clone()))
                }
                e => (pat_of(e, kinds, t), None),
            })
            .collect(),
    )
}

fn compile_rule(t: &NTable, handle: u64, exprs: &[Value]) -> NRule {
    let mut ex = Vec::new();
    let mut parts = Vec::new();
    for e in exprs {
        parts.push(expr_text(e));
        ex.push(compile_expr(t, e));
    }
    let random = exprs.iter().find_map(find_random);
    NRule {
        random,
        handle,
        text: parts
            .iter()
            .filter(|p| !p.is_empty())
            .cloned()
            .collect::<Vec<_>>()
            .join(" "),
        exprs: ex,
        parts,
    }
}

/// The modulus of a `numgen random` anywhere in `v`.
fn find_random(v: &Value) -> Option<u64> {
    match v {
        Value::Object(o) => {
            if let Some(n) = o.get("numgen")
                && n["mode"].as_str() == Some("random")
            {
                return n["mod"].as_u64();
            }
            o.values().find_map(find_random)
        }
        Value::Array(a) => a.iter().find_map(find_random),
        _ => None,
    }
}

fn compile_expr(t: &NTable, e: &Value) -> Ex {
    let Some(o) = e.as_object() else {
        return Ex::Unknown(format!(
            "{} (not evaluated)",
            e.as_str().unwrap_or("").lines().next().unwrap_or("")
        ));
    };
    let Some((k, a)) = o.iter().next() else {
        return Ex::Passive;
    };
    let chain = |a: &Value, jump: bool| {
        let name = a["target"].as_str().unwrap_or("");
        match t.chain_index(name) {
            Some(c) => Ex::Jump(c, jump),
            None => Ex::UndefinedChain(name.into()),
        }
    };
    match k.as_str() {
        "match" => {
            let src = src_of(&a["left"], t);
            let kinds = kinds_of(&src);
            let op = match a["op"].as_str().unwrap_or("==") {
                "==" => Op::Eq,
                "!=" => Op::Ne,
                "<" => Op::Lt,
                ">" => Op::Gt,
                "<=" => Op::Le,
                ">=" => Op::Ge,
                _ => Op::In,
            };
            let pat = set_pat(&a["right"], &kinds, t);
            Ex::Match(src, kinds[0], op, pat)
        }
        "accept" => Ex::Accept,
        "drop" => Ex::Drop,
        "continue" => Ex::Continue,
        "return" => Ex::Return,
        "jump" => chain(a, true),
        "goto" => chain(a, false),
        "vmap" => {
            let src = src_of(&a["key"], t);
            let kinds = kinds_of(&src);
            Ex::Vmap(src, set_pat(&a["data"], &kinds, t))
        }
        "reject" => Ex::Reject,
        "queue" => Ex::Queue,
        "dnat" | "snat" | "masquerade" | "redirect" => {
            let kind = match k.as_str() {
                "dnat" => NatKind::Dnat,
                "snat" => NatKind::Snat,
                "masquerade" => NatKind::Masquerade,
                _ => NatKind::Redirect,
            };
            let addr = a.get("addr").map(|x| match x {
                Value::String(s) => Src::Lit(lit(Kind::Addr, s)),
                x => src_of(x, t),
            });
            let port = a.get("port").map(|x| src_of(x, t));
            let v6 = match a.get("family").and_then(Value::as_str) {
                Some("ip") => Some(false),
                Some("ip6") => Some(true),
                _ => None,
            };
            Ex::Nat(kind, addr, port, v6)
        }
        "mangle" => {
            let key = src_of(&a["key"], t);
            let val = src_of(&a["value"], t);
            match key {
                Src::Meta(m) if m == "mark" => Ex::SetMark(val),
                Src::Ct(c, _) if c == "mark" => Ex::SetCtMark(val),
                _ => Ex::Unknown(format!(
                    "{} (changes the packet; not followed)",
                    expr_text(e)
                )),
            }
        }
        "notrack" => Ex::Notrack,
        "counter" | "log" => Ex::Passive,
        "limit" | "quota" | "meter" | "connlimit" => {
            Ex::Stateful(format!("{}: assumed within the limit", expr_text(e)))
        }
        "xt" => Ex::Unknown(format!(
            "xtables {} {} (iptables extension; not evaluated, assumed to match)",
            a["type"].as_str().unwrap_or(""),
            a["name"].as_str().unwrap_or("")
        )),
        _ => Ex::Unknown(format!(
            "{} (not evaluated, assumed to match)",
            expr_text(e)
        )),
    }
}

// ---------------------------------------------------------------------
// Text (close to `nft list`)

fn expr_text(e: &Value) -> String {
    match e {
        Value::String(s) => s.lines().next().unwrap_or("").to_string(),
        Value::Object(o) => {
            let Some((k, a)) = o.iter().next() else {
                return String::new();
            };
            match k.as_str() {
                "match" => {
                    let op = match a["op"].as_str().unwrap_or("==") {
                        "==" | "in" => String::new(),
                        o => format!("{o} "),
                    };
                    format!("{} {op}{}", val_text(&a["left"]), val_text(&a["right"]))
                }
                "accept" | "drop" | "continue" | "return" | "masquerade" | "notrack" => k.clone(),
                "jump" | "goto" => format!("{k} {}", a["target"].as_str().unwrap_or("")),
                "vmap" => format!("{} vmap {}", val_text(&a["key"]), val_text(&a["data"])),
                "counter" => "counter".into(),
                "log" => match a.get("prefix").and_then(Value::as_str) {
                    Some(p) => format!("log prefix {p:?}"),
                    None => "log".into(),
                },
                "reject" => match a.get("expr").and_then(Value::as_str) {
                    Some(x) => format!("reject with {} {x}", a["type"].as_str().unwrap_or("icmpx")),
                    None => "reject".into(),
                },
                "dnat" | "snat" | "redirect" => {
                    let mut s = k.clone();
                    if let Some(f) = a.get("family").and_then(Value::as_str) {
                        s += &format!(" {f}");
                    }
                    if let Some(x) = a.get("addr") {
                        s += &format!(" to {}", val_text(x));
                    }
                    if let Some(p) = a.get("port") {
                        if a.get("addr").is_some() {
                            s += &format!(":{}", val_text(p));
                        } else {
                            s += &format!(" to :{}", val_text(p));
                        }
                    }
                    s
                }
                "mangle" => format!("{} set {}", val_text(&a["key"]), val_text(&a["value"])),
                "limit" => match a.get("text").and_then(Value::as_str) {
                    Some(t) => format!("limit {t}"),
                    None => format!(
                        "limit rate {}/{}",
                        a["rate"],
                        a["per"].as_str().unwrap_or("second")
                    ),
                },
                "xt" => format!("xt {} {}", a["type"].as_str().unwrap_or(""), a["name"]),
                _ => k.clone(),
            }
        }
        _ => e.to_string(),
    }
}

fn val_text(v: &Value) -> String {
    match v {
        Value::String(s) => {
            if s.contains(' ') || s.is_empty() {
                format!("{s:?}")
            } else {
                s.clone()
            }
        }
        Value::Array(a) => a.iter().map(val_text).collect::<Vec<_>>().join(", "),
        Value::Object(o) => {
            let Some((k, a)) = o.iter().next() else {
                return String::new();
            };
            match k.as_str() {
                "payload" => match a.get("field") {
                    Some(f) => format!(
                        "{} {}",
                        a["protocol"].as_str().unwrap_or(""),
                        f.as_str().unwrap_or("")
                    ),
                    None => format!(
                        "@{},{},{}",
                        a["base"].as_str().unwrap_or(""),
                        a["offset"],
                        a["len"]
                    ),
                },
                "meta" => {
                    let key = a["key"].as_str().unwrap_or("");
                    match key {
                        "iifname" | "oifname" | "iif" | "oif" | "mark" | "l4proto" | "nfproto"
                        | "protocol" | "pkttype" | "skuid" | "skgid" => format!("meta {key}"),
                        _ => format!("meta {key}"),
                    }
                }
                "ct" => {
                    let mut s = "ct".to_string();
                    if let Some(d) = a.get("dir").and_then(Value::as_str) {
                        s += &format!(" {d}");
                    }
                    if let Some(f) = a.get("family").and_then(Value::as_str) {
                        s += &format!(" {f}");
                    }
                    format!("{s} {}", a["key"].as_str().unwrap_or(""))
                }
                "fib" => {
                    let flags: Vec<String> = a["flags"]
                        .as_array()
                        .map(|f| f.iter().map(val_text).collect())
                        .unwrap_or_default();
                    format!(
                        "fib {} {}",
                        flags.join(" . "),
                        a["result"].as_str().unwrap_or("")
                    )
                }
                "prefix" => format!("{}/{}", a["addr"].as_str().unwrap_or(""), a["len"]),
                "range" => format!("{}-{}", val_text(&a[0]), val_text(&a[1])),
                "concat" => a
                    .as_array()
                    .map(|x| x.iter().map(val_text).collect::<Vec<_>>().join(" . "))
                    .unwrap_or_default(),
                "set" => match a {
                    Value::Array(x) => format!(
                        "{{ {} }}",
                        x.iter().map(elem_text).collect::<Vec<_>>().join(", ")
                    ),
                    x => format!("{{ {} }}", val_text(x)),
                },
                "elem" => val_text(&a["val"]),
                "map" => format!("{} map {}", val_text(&a["key"]), val_text(&a["data"])),
                "&" | "|" | "^" | "<<" | ">>" => {
                    format!("{} {k} {}", val_text(&a[0]), val_text(&a[1]))
                }
                "accept" | "drop" | "continue" | "return" => k.clone(),
                "jump" | "goto" => format!("{k} {}", a["target"].as_str().unwrap_or("")),
                "numgen" => format!(
                    "numgen {} mod {}",
                    a["mode"].as_str().unwrap_or(""),
                    a["mod"]
                ),
                _ => k.clone(),
            }
        }
        v => v.to_string(),
    }
}

fn elem_text(e: &Value) -> String {
    match e {
        Value::Array(kd) if kd.len() == 2 => format!("{} : {}", val_text(&kd[0]), val_text(&kd[1])),
        e => val_text(e),
    }
}

// ---------------------------------------------------------------------
// Evaluation

/// What a rule's expressions see besides the packet.
struct Ctx<'a, 'w> {
    w: &'a Walk<'w>,
    hook: Hook,
    /// Before conntrack has looked the packet up.
    before_ct: bool,
    v6: bool,
}

impl Ctx<'_, '_> {
    fn has_ct(&self) -> bool {
        !self.before_ct && !matches!(self.w.pkt.state, CtState::Untracked | CtState::Invalid)
    }

    fn value(&self, s: &Src) -> V {
        let p = &self.w.pkt;
        match s {
            Src::Payload(proto, field) => self.payload(proto, field),
            Src::Meta(k) => match k.as_str() {
                "iifname" | "iif" => match &p.in_iface {
                    Some(i) if self.hook != Hook::Output => V::Str(i.to_string()),
                    _ => V::Str(String::new()),
                },
                "oifname" | "oif" => match &p.out_iface {
                    Some(o) if !matches!(self.hook, Hook::Prerouting | Hook::Input) => {
                        V::Str(o.to_string())
                    }
                    _ => V::Str(String::new()),
                },
                "l4proto" => V::Int(p.proto as u128),
                "nfproto" => V::Int(if self.v6 { 10 } else { 2 }),
                "protocol" => V::Int(if self.v6 { 0x86dd } else { 0x0800 }),
                "mark" => V::Int(p.mark as u128),
                "pkttype" => V::Int(pkttype(p.dst)),
                "skuid" if self.w.outgoing && !self.w.looped => match p.uid {
                    Some(u) => V::Int(u as u128),
                    None => V::Unknown("meta skuid: the packet's user is not given".into()),
                },
                "skgid" if self.w.outgoing && !self.w.looped => match p.gid {
                    Some(u) => V::Int(u as u128),
                    None => V::Unknown("meta skgid: the packet's group is not given".into()),
                },
                "skuid" | "skgid" => V::Absent,
                "iiftype" | "oiftype" => V::Int(1),
                "length" => V::Int(p.length as u128),
                _ => V::Unknown(format!("meta {k} is not known to the trace")),
            },
            Src::Ct(k, dir) => {
                if k == "state" {
                    return V::Int(if self.before_ct && p.state != CtState::Untracked {
                        1
                    } else {
                        match p.state {
                            CtState::Invalid => 1,
                            CtState::Established => 2,
                            CtState::Related => 4,
                            CtState::New => 8,
                            CtState::Untracked => 64,
                        }
                    });
                }
                if !self.has_ct() {
                    return V::Absent;
                }
                match (k.as_str(), dir.as_deref()) {
                    ("mark", _) => V::Int(p.ctmark as u128),
                    ("direction", _) => V::Int(self.w.reply_dir as u128),
                    ("status", _) => {
                        let mut st = 0;
                        if self.w.dnat_done {
                            st |= 32;
                        }
                        if self.w.snat_done {
                            st |= 16;
                        }
                        if p.state != CtState::New {
                            st |= 8;
                        }
                        if p.state == CtState::Established {
                            st |= 2;
                        }
                        V::Int(st)
                    }
                    ("l3proto", _) => V::Int(if self.v6 { 10 } else { 2 }),
                    ("protocol", _) => V::Int(p.proto as u128),
                    (k, Some("original")) if k.ends_with("saddr") => V::Addr(self.w.orig_src),
                    (k, Some("original")) if k.ends_with("daddr") => V::Addr(self.w.orig_dst),
                    ("proto-dst", Some("original")) => V::Int(self.w.orig_dport as u128),
                    ("proto-src", Some("original")) => V::Int(self.w.orig_sport as u128),
                    _ => V::Unknown(format!("ct {k} is not known to the trace")),
                }
            }
            Src::Fib(result, flags) => self.fib(result, flags),
            Src::And(s, m) => match self.value(s) {
                V::Int(v) => V::Int(v & m),
                o => o,
            },
            Src::Or(s, m) => match self.value(s) {
                V::Int(v) => V::Int(v | m),
                o => o,
            },
            Src::Cat(parts) => {
                let mut out = Vec::new();
                for x in parts {
                    match self.value(x) {
                        V::Absent => return V::Absent,
                        v => out.push(v),
                    }
                }
                V::Cat(out)
            }
            Src::Map(_, map) if matches!(&**map, Pat::Set(e) if e.is_empty()) => V::Absent,
            Src::Map(key, map) => {
                let k = self.value(key);
                if matches!(k, V::Absent | V::Unknown(_)) {
                    return k;
                }
                if let Some(why) = unknown_part(&k) {
                    return V::Unknown(why.to_string());
                }
                match lookup(map, &k) {
                    Some(Some(d)) => data_value(d),
                    _ => V::Absent,
                }
            }
            Src::Random(m, off) => V::Int(
                (*off
                    + match self.w.opts.random {
                        super::RandomChoice::Take => 0,
                        super::RandomChoice::Skip => m.saturating_sub(1),
                    }) as u128,
            ),
            // A header the packet does not carry: the expression finds
            // nothing and the rule does not match.
            Src::Header(true, n, what) => {
                if !self.v6 || !p.ipv6_headers.contains(n) {
                    V::Absent
                } else {
                    V::Unknown(format!("{what}: its fields are not known to the trace"))
                }
            }
            Src::Header(false, n, what) => {
                if p.proto != 6 || !tcp_option_present(&p.tcp_options, *n, p.mss.is_some()) {
                    V::Absent
                } else if *n == 2 && what.ends_with("maxseg") {
                    V::Unknown(format!("{what}: which field is not known"))
                } else {
                    V::Unknown(format!("{what}: its fields are not known to the trace"))
                }
            }
            Src::Lit(Pat::Val(v)) => v.clone(),
            Src::Lit(_) => V::Unknown("a literal the trace cannot use".into()),
            Src::Unknown(what) => V::Unknown(format!("{what} is not evaluated")),
        }
    }

    fn payload(&self, proto: &str, field: &str) -> V {
        let p = &self.w.pkt;
        let ports = matches!(p.proto, 6 | 17 | 132 | 33 | 136);
        match (proto, field) {
            ("ip", _) if self.v6 => V::Absent,
            ("ip6", _) if !self.v6 => V::Absent,
            ("ip" | "ip6", "saddr") => V::Addr(p.src),
            ("ip" | "ip6", "daddr") => V::Addr(p.dst),
            ("ip", "protocol") | ("ip6", "nexthdr") => V::Int(p.proto as u128),
            ("ip", "ttl") | ("ip6", "hoplimit") => V::Int(p.ttl as u128),
            ("ip", "dscp") | ("ip6", "dscp") => V::Int((p.tos >> 2) as u128),
            ("ip", "version") => V::Int(4),
            ("ip6", "version") => V::Int(6),
            ("tcp", _) if p.proto != 6 => V::Absent,
            ("udp", _) if p.proto != 17 => V::Absent,
            ("sctp", _) if p.proto != 132 => V::Absent,
            ("icmp", _) if p.proto != 1 || self.v6 => V::Absent,
            ("icmpv6", _) if p.proto != 58 || !self.v6 => V::Absent,
            ("tcp" | "udp" | "sctp" | "th", "sport") if ports => V::Int(p.sport as u128),
            ("tcp" | "udp" | "sctp" | "th", "dport") if ports => V::Int(p.dport as u128),
            ("th", "sport") if matches!(p.proto, 1 | 58) => {
                V::Int(((p.icmp.0 as u128) << 8) | p.icmp.1 as u128)
            }
            ("th", _) => V::Unknown(format!(
                "th {field} of a {} packet (bytes of its own header) is not known to the trace",
                super::protocol_name(p.proto)
            )),
            ("tcp", "flags") => V::Int(p.tcp_flags as u128),
            ("icmp" | "icmpv6", "type") => V::Int(p.icmp.0 as u128),
            ("icmp" | "icmpv6", "code") => V::Int(p.icmp.1 as u128),
            _ => V::Unknown(format!("{proto} {field} is not known to the trace")),
        }
    }

    fn fib(&self, result: &str, flags: &[String]) -> V {
        let p = &self.w.pkt;
        let opts = self.w.opts;
        let addr = if flags.iter().any(|f| f == "saddr") {
            p.src
        } else {
            p.dst
        };
        match result {
            "type" => {
                let local = opts.local.contains(&addr) || addr.is_loopback();
                let t = if local {
                    2
                } else if addr.is_multicast() {
                    5
                } else if addr == IpAddr::V4(std::net::Ipv4Addr::BROADCAST) {
                    3
                } else {
                    1
                };
                V::Int(t)
            }
            "oif" | "oifname" => {
                if let Some(rt) = opts.routing.as_deref()
                    && flags.iter().any(|f| f == "saddr")
                    && let Some(ok) = rt.rpfilter(p, false, false)
                {
                    return if result == "oif" {
                        V::Int(ok as u128)
                    } else {
                        V::Unknown("fib oifname: the interface name is not followed".into())
                    };
                }
                V::Unknown(format!(
                    "fib {} {result}: no --routes given, a route is assumed to exist",
                    flags.join(" . ")
                ))
            }
            _ => V::Unknown(format!("fib {result} is not known to the trace")),
        }
    }
}

/// Whether a TCP option of `kind` is in the packet.
fn tcp_option_present(options: &[u8], kind: u8, mss: bool) -> bool {
    options.contains(&kind) || (kind == 2 && mss)
}

/// A map's data as a value: a number, an address, a concatenation.
fn data_value(d: &Value) -> V {
    match d {
        Value::Number(n) => V::Int(n.as_u64().unwrap_or(0) as u128),
        Value::String(s) => {
            if let Ok(a) = s.parse::<IpAddr>() {
                V::Addr(a)
            } else if let Some(n) = num(Kind::Int, s) {
                V::Int(n)
            } else {
                V::Str(s.clone())
            }
        }
        Value::Object(o) if o.contains_key("concat") => V::Cat(
            o["concat"]
                .as_array()
                .map(|x| x.iter().map(data_value).collect())
                .unwrap_or_default(),
        ),
        Value::Object(o) if o.contains_key("elem") => data_value(&o["elem"]["val"]),
        d => V::Unknown(format!("map value {d} not followed")),
    }
}

fn pkttype(dst: IpAddr) -> u128 {
    match dst {
        IpAddr::V4(a) if a.is_broadcast() => 1,
        a if a.is_multicast() => 2,
        _ => 0,
    }
}

/// Whether `v` fits pattern `p` (membership for sets); `None` when a
/// part of the value is not known and the answer depends on it.
fn fits(v: &V, p: &Pat) -> Option<bool> {
    Some(match (v, p) {
        (V::Unknown(_), _) | (_, Pat::Bad) => return None,
        (V::Str(s), Pat::Val(V::Str(w))) => match w.strip_suffix('*') {
            Some(pre) if !w.ends_with("\\*") => s.starts_with(pre),
            _ => s == w,
        },
        (V::Int(a), Pat::Val(V::Int(b))) => a == b,
        (V::Addr(a), Pat::Val(V::Addr(b))) => a == b,
        (V::Addr(a), Pat::Prefix(n)) => n.contains(a),
        (V::Int(a), Pat::Range(V::Int(lo), V::Int(hi))) => lo <= a && a <= hi,
        (V::Addr(a), Pat::Range(V::Addr(lo), V::Addr(hi))) => lo <= a && a <= hi,
        (V::Int(a), Pat::Flags(m)) => a & m != 0,
        (V::Cat(vs), Pat::Cat(ps)) => {
            if vs.len() != ps.len() {
                return Some(false);
            }
            let mut known = true;
            for (v, p) in vs.iter().zip(ps) {
                match fits(v, p) {
                    Some(false) => return Some(false),
                    Some(true) => {}
                    None => known = false,
                }
            }
            return known.then_some(true);
        }
        (v, Pat::Set(elems)) => {
            let mut known = true;
            for (e, _) in elems {
                match fits(v, e) {
                    Some(true) => return Some(true),
                    Some(false) => {}
                    None => known = false,
                }
            }
            return known.then_some(false);
        }
        (V::Addr(_), Pat::Val(V::Str(_))) | (V::Int(_), Pat::Val(V::Str(_))) => return None,
        _ => false,
    })
}

/// The first unknown part of a value, for the assumption's words.
fn unknown_part(v: &V) -> Option<&str> {
    match v {
        V::Unknown(why) => Some(why),
        V::Cat(vs) => vs.iter().find_map(unknown_part),
        _ => None,
    }
}

/// The data of the first element of `map` that `key` fits: `Some(None)`
/// for a set element without data, `None` for no element.
fn lookup<'p>(map: &'p Pat, key: &V) -> Option<Option<&'p Value>> {
    match map {
        Pat::Set(elems) => elems
            .iter()
            .find(|(e, _)| fits(key, e) == Some(true))
            .map(|(_, d)| d.as_ref()),
        _ => None,
    }
}

/// The outcome of one expression.
enum Step1 {
    Next,
    Miss,
    Assumed(bool, String),
    Verdict(Ex),
}

fn compare(v: &V, kind: Kind, op: Op, p: &Pat) -> Result<bool, String> {
    let v = match v {
        V::Absent => return Ok(false),
        V::Unknown(why) => return Err(why.clone()),
        v => v,
    };
    let unknown = || {
        unknown_part(v)
            .unwrap_or("a value the trace cannot read")
            .to_string()
    };
    let ord = |a: &V, b: &V| -> Option<std::cmp::Ordering> {
        match (a, b) {
            (V::Int(a), V::Int(b)) => Some(a.cmp(b)),
            (V::Addr(a), V::Addr(b)) => Some(a.cmp(b)),
            _ => None,
        }
    };
    let flags = matches!(kind, Kind::CtState | Kind::CtStatus | Kind::TcpFlags);
    let r = match op {
        Op::Eq | Op::In if flags && op == Op::In => match (v, p) {
            (V::Int(a), Pat::Val(V::Int(m)) | Pat::Flags(m)) => a & m != 0,
            _ => fits(v, p).ok_or_else(unknown)?,
        },
        Op::Eq | Op::In => match (v, p) {
            (V::Int(a), Pat::Flags(m)) if flags => a & m != 0,
            _ => fits(v, p).ok_or_else(unknown)?,
        },
        Op::Ne => !fits(v, p).ok_or_else(unknown)?,
        _ => {
            let Pat::Val(b) = p else {
                return Err("a comparison the trace cannot read".into());
            };
            let o = ord(v, b).ok_or("a comparison the trace cannot read")?;
            match op {
                Op::Lt => o.is_lt(),
                Op::Gt => o.is_gt(),
                Op::Le => o.is_le(),
                _ => o.is_ge(),
            }
        }
    };
    Ok(r)
}

fn verdict_of(d: &Value, t: &NTable) -> Option<Ex> {
    let o = d.as_object()?;
    let (k, a) = o.iter().next()?;
    Some(match k.as_str() {
        "accept" => Ex::Accept,
        "drop" => Ex::Drop,
        "continue" => Ex::Continue,
        "return" => Ex::Return,
        "jump" | "goto" => {
            let name = a["target"].as_str().unwrap_or("");
            match t.chain_index(name) {
                Some(c) => Ex::Jump(c, k == "jump"),
                None => Ex::UndefinedChain(name.into()),
            }
        }
        _ => return None,
    })
}

impl Ctx<'_, '_> {
    fn eval(&self, e: &Ex, t: &NTable) -> Step1 {
        match e {
            Ex::Match(src, kind, op, pat) => match compare(&self.value(src), *kind, *op, pat) {
                Ok(true) => Step1::Next,
                Ok(false) => Step1::Miss,
                // Without routes, the route back (`fib ... oif`) is taken
                // to exist, as on a host whose routes fit its traffic.
                Err(why) if matches!(src, Src::Fib(r, _) if r == "oif") => {
                    Step1::Assumed(compare(&V::Int(1), *kind, *op, pat).unwrap_or(true), why)
                }
                Err(why) => Step1::Assumed(true, why),
            },
            Ex::Vmap(src, map) => {
                let k = self.value(src);
                match k {
                    V::Absent => Step1::Miss,
                    V::Unknown(why) => Step1::Assumed(false, why),
                    k if unknown_part(&k).is_some() && lookup(map, &k).is_none() => {
                        // Some element might fit, depending on the part not known.
                        match map {
                            Pat::Set(_) if fits(&k, map).is_none() => Step1::Assumed(
                                false,
                                unknown_part(&k).unwrap_or_default().to_string(),
                            ),
                            _ => Step1::Miss,
                        }
                    }
                    k => match lookup(map, &k) {
                        Some(Some(d)) => match verdict_of(d, t) {
                            Some(v) => Step1::Verdict(v),
                            None => Step1::Assumed(false, format!("verdict {d} not followed")),
                        },
                        _ => Step1::Miss,
                    },
                }
            }
            Ex::SetMark(v) | Ex::SetCtMark(v) if self.value(v) == V::Absent => Step1::Miss,
            Ex::Nat(_, a, p, _) if a.iter().chain(p.iter()).any(|v| self.value(v) == V::Absent) => {
                Step1::Miss
            }
            Ex::Stateful(why) => Step1::Assumed(true, why.clone()),
            Ex::Unknown(why) => Step1::Assumed(true, why.clone()),
            Ex::Passive => Step1::Next,
            e => Step1::Verdict(e.clone()),
        }
    }
}

fn nat_ports(v: &V) -> Option<NatPorts> {
    match v {
        V::Int(p) => Some(NatPorts {
            lo: *p as u16,
            hi: *p as u16,
        }),
        _ => None,
    }
}

// ---------------------------------------------------------------------
// The walk

/// A base chain (or iptables table) of one hook, in run order.
#[derive(Debug, Clone, Copy)]
enum Slot {
    /// iptables table index and its built-in chain index.
    Ipt(usize, usize),
    /// nft table and chain.
    Nft(usize, usize),
    /// Where the NAT core applies a known connection's binding.
    Binding,
}

/// NAT core priority of a hook (where every nat chain runs).
fn nat_core(hook: Hook) -> i32 {
    match hook {
        Hook::Prerouting | Hook::Output => -100,
        _ => 100,
    }
}

fn ipt_prio(table: &str) -> Option<i32> {
    Some(match table {
        "raw" => -300,
        "mangle" => -150,
        "nat" => 0,
        "filter" => 0,
        "security" => 50,
        _ => return None,
    })
}

impl<'r> Tracer<'r> {
    /// Prepares to trace through iptables tables `rs` and nft tables `nft`
    /// together (an empty `rs` for an nft-only host).
    pub fn with_nft(rs: &'r Ruleset, nft: &'r NftRules) -> Self {
        let mut t = Tracer::new(rs);
        t.nft = Some(nft);
        t
    }

    /// The base chains of `hook` for a packet of this family, in order;
    /// `true` marks the nat ones.
    fn slots(&self, hook: Hook, v6: bool, nft: &NftRules) -> Vec<(Slot, bool)> {
        // (priority, nat sub-priority, tie order)
        let mut v: Vec<((i32, i32, usize), Slot, bool)> = Vec::new();
        let mut order = 0;
        for (t, table) in self.rs.tables.iter().enumerate() {
            let Some(p) = ipt_prio(&table.name) else {
                continue;
            };
            let Some(c) = table.chain_position(hook.chain()) else {
                continue;
            };
            let nat = table.name == "nat";
            let key = if nat {
                (nat_core(hook), nat_core(hook), order)
            } else {
                (p, 0, order)
            };
            v.push((key, Slot::Ipt(t, c), nat));
            order += 1;
        }
        for (t, table) in nft.tables.iter().enumerate() {
            if !table.family.sees(v6) {
                continue;
            }
            for (c, chain) in table.chains.iter().enumerate() {
                let Some(b) = &chain.base else { continue };
                if b.hook != Some(hook) {
                    continue;
                }
                let nat = b.kind == "nat";
                let key = if nat {
                    (nat_core(hook), b.prio, order)
                } else {
                    (b.prio, 0, order)
                };
                v.push((key, Slot::Nft(t, c), nat));
                order += 1;
            }
        }
        // The binding of a known connection is applied by the NAT core,
        // whether or not this ruleset has nat chains.
        v.push(((nat_core(hook), i32::MIN, 0), Slot::Binding, true));
        // Among equal priorities the kernel runs the chain registered last
        // first (taken here as listing order, the iptables tables first).
        v.sort_by_key(|x| (x.0.0, x.0.1, std::cmp::Reverse(x.0.2)));
        v.into_iter().map(|(_, s, n)| (s, n)).collect()
    }

    /// Runs every base chain of a hook; `Some(verdict)` when the packet stops.
    pub(super) fn hook_nft(&self, hook: Hook, w: &mut Walk<'_>, nft: &NftRules) -> Option<Verdict> {
        let v6 = w.pkt.dst.is_ipv6();
        let tracked = if v6 { nft.conntrack.1 } else { nft.conntrack.0 }
            || self.rs.tables.iter().any(|t| t.name == "nat")
            || super::fields::conntrack_user(self.rs).is_some();
        let first =
            tracked && w.opts.connection.is_none() && w.pkt.state == CtState::New && !w.looped;
        let mut bound = false;
        for (slot, nat) in self.slots(hook, v6, nft) {
            let dst = w.pkt.dst;
            let run = match slot {
                Slot::Binding => {
                    if let Some(c) = w.opts.connection {
                        apply_binding(hook, &c, w);
                    }
                    false
                }
                _ if nat => first && !bound,
                _ => true,
            };
            if run {
                let before = (
                    w.pkt.dst,
                    w.pkt.src,
                    w.pkt.dport,
                    w.pkt.sport,
                    w.dnat_done,
                    w.snat_done,
                );
                let v = match slot {
                    Slot::Ipt(t, c) => self.table(hook, t, c, w),
                    Slot::Nft(t, c) => self.nft_chain(hook, t, c, w, nft),
                    Slot::Binding => Verdict::Accept,
                };
                if v != Verdict::Accept {
                    return Some(v);
                }
                if nat {
                    let after = (
                        w.pkt.dst,
                        w.pkt.src,
                        w.pkt.dport,
                        w.pkt.sport,
                        w.dnat_done,
                        w.snat_done,
                    );
                    // A nat chain that gave the connection its binding
                    // ends the nat chains of this hook.
                    bound = after != before;
                }
            }
            if hook == Hook::Output && w.pkt.dst != dst {
                self.reroute(w);
            }
        }
        None
    }

    /// Walks one nft base chain.
    fn nft_chain(
        &self,
        hook: Hook,
        t: usize,
        start: usize,
        w: &mut Walk<'_>,
        nft: &NftRules,
    ) -> Verdict {
        let table = &nft.tables[t];
        let ti = self.rs.tables.len() + t;
        let prio = table.chains[start].base.as_ref().map_or(0, |b| b.prio);
        let before_ct = matches!(hook, Hook::Prerouting | Hook::Output) && prio < -200 && !w.looped;
        let v6 = w.pkt.dst.is_ipv6();
        let mut stack: Vec<(usize, usize)> = Vec::new();
        let mut path = super::bounds::CallPath::new(start);
        let (mut chain, mut idx) = (start, 0usize);
        loop {
            let rules = &table.chains[chain].rules;
            if idx >= rules.len() {
                if let Some((c, i)) = stack.pop() {
                    path.back();
                    w.steps
                        .push(step(hook, ti, chain, None, true, None, Action::FallOff));
                    (chain, idx) = (c, i);
                    continue;
                }
                return nft_policy(hook, ti, start, table, w);
            }
            if w.evals >= w.budget {
                w.stopped = Some(super::Stopped::Budget {
                    table: format!("{} {}", table.family.name(), table.name),
                    evaluated: w.evals,
                    kernel_evaluations: u64::MAX,
                });
                return Verdict::Drop;
            }
            w.evals += 1;
            let r = &rules[idx];
            let ctx = Ctx {
                w,
                hook,
                before_ct,
                v6,
            };
            let mut notes = Vec::new();
            if let Some(m) = r.random {
                let (took, what) = match w.opts.random {
                    super::RandomChoice::Take => (0, "the first"),
                    super::RandomChoice::Skip => (m.saturating_sub(1), "the last"),
                };
                notes.push(format!(
                    "numgen random: each of its {m} values with probability {:.5}; {what} ({took} + offset) in this trace",
                    1.0 / m.max(1) as f64
                ));
            }
            let mut miss = None;
            let mut verdict: Option<Ex> = None;
            let mut effects: Vec<Ex> = Vec::new();
            for (i, e) in r.exprs.iter().enumerate() {
                match ctx.eval(e, table) {
                    Step1::Next => {}
                    Step1::Miss => {
                        miss = Some(i);
                        break;
                    }
                    Step1::Assumed(v, why) => {
                        let key = RuleRef {
                            table: format!("{} {}", table.family.name(), table.name),
                            chain: table.chains[chain].name.clone(),
                            rule: idx,
                        };
                        let forced = w.opts.overrides.get(&key).copied();
                        let v = forced.unwrap_or(v);
                        notes.push(match forced {
                            Some(f) => format!("{why} (given: {} by --assume)", super::yes_no(f)),
                            None => format!("{why}: assumed {}", super::yes_no(v)),
                        });
                        if !v {
                            miss = Some(i);
                            break;
                        }
                    }
                    Step1::Verdict(Ex::SetMark(_) | Ex::SetCtMark(_) | Ex::Notrack) => {
                        effects.push(e.clone());
                    }
                    Step1::Verdict(Ex::Continue) => {}
                    Step1::Verdict(v) => {
                        verdict = Some(v);
                        break;
                    }
                }
            }
            if let Some(i) = miss {
                if !w.opts.matched_only {
                    let mut s = step(
                        hook,
                        ti,
                        chain,
                        Some(idx),
                        false,
                        Some(Part::Match(i as u16)),
                        Action::None,
                    );
                    s.notes = notes;
                    w.steps.push(s);
                }
                idx += 1;
                continue;
            }
            let mut action = Action::None;
            for e in &effects {
                action = self.effect(e, hook, w, v6);
            }
            let action = match &verdict {
                None => action,
                Some(v) => self.nft_verdict(v, hook, w, v6),
            };
            let mut s = step(hook, ti, chain, Some(idx), true, None, action.clone());
            s.notes = notes;
            w.steps.push(s);
            match super::follow(&action, (chain, idx), &mut stack, &mut path) {
                super::Next::At(c, i) => (chain, idx) = (c, i),
                super::Next::Policy => return nft_policy(hook, ti, start, table, w),
                super::Next::Loop { chains, to } => {
                    let names: Vec<&str> = chains
                        .iter()
                        .chain([&to])
                        .map(|&c| table.chains[c].name.as_str())
                        .collect();
                    w.stopped = Some(super::Stopped::Loop {
                        table: format!("{} {}", table.family.name(), table.name),
                        chains: names.join(" -> "),
                        line: 0,
                    });
                    return Verdict::Drop;
                }
                super::Next::Ends(v) => return v,
            }
        }
    }

    fn eval_src(&self, s: &Src, hook: Hook, w: &Walk<'_>, v6: bool) -> V {
        Ctx {
            w,
            hook,
            before_ct: false,
            v6,
        }
        .value(s)
    }

    fn effect(&self, e: &Ex, hook: Hook, w: &mut Walk<'_>, v6: bool) -> Action {
        match e {
            Ex::SetMark(s) => match self.eval_src(s, hook, w, v6) {
                V::Int(m) => apply(
                    &Act::Mark(super::MarkOp::Mark {
                        and: 0,
                        xor: 0,
                        or: m as u32,
                    }),
                    hook,
                    w,
                ),
                _ => Action::Continue {
                    target: "meta mark set (value not known)".into(),
                },
            },
            Ex::SetCtMark(s) => match self.eval_src(s, hook, w, v6) {
                V::Int(m) => apply(
                    &Act::Mark(super::MarkOp::ConnSet {
                        and: 0,
                        xor: 0,
                        or: m as u32,
                    }),
                    hook,
                    w,
                ),
                _ => Action::Continue {
                    target: "ct mark set (value not known)".into(),
                },
            },
            Ex::Notrack => apply(&Act::Notrack, hook, w),
            _ => Action::None,
        }
    }

    fn nft_verdict(&self, v: &Ex, hook: Hook, w: &mut Walk<'_>, v6: bool) -> Action {
        match v {
            Ex::Accept => apply(&Act::Accept, hook, w),
            Ex::Drop => apply(&Act::Drop, hook, w),
            Ex::Reject => apply(&Act::Reject, hook, w),
            Ex::Queue => apply(&Act::Queue { bypass: false }, hook, w),
            Ex::Return => Action::Return,
            Ex::Jump(c, true) => Action::Jump { chain: *c },
            Ex::Jump(c, false) => Action::Goto { chain: *c },
            Ex::UndefinedChain(n) => Action::Undefined { name: n.clone() },
            Ex::Nat(_, _, _, Some(fam)) if *fam != v6 => Action::Continue {
                target: format!(
                    "nat for {} only: nothing done to this packet",
                    if *fam { "IPv6" } else { "IPv4" }
                ),
            },
            Ex::Nat(kind, addr, port, _) => {
                let a = addr.as_ref().map(|s| self.eval_src(s, hook, w, v6));
                let p = port.as_ref().map(|s| self.eval_src(s, hook, w, v6));
                // `dnat to ip daddr . port map @m`: address and port from one value.
                let (a, p) = match (a, p) {
                    (Some(V::Cat(parts)), None) if parts.len() == 2 => {
                        (Some(parts[0].clone()), Some(parts[1].clone()))
                    }
                    x => x,
                };
                let addr = match &a {
                    Some(V::Addr(x)) => Some(*x),
                    _ => None,
                };
                let port = p.as_ref().and_then(nat_ports);
                let act = match kind {
                    NatKind::Dnat => Act::Dnat { addr, port },
                    NatKind::Snat => Act::Snat { addr, port },
                    NatKind::Masquerade => Act::Masquerade { port },
                    NatKind::Redirect => Act::Redirect { port },
                };
                let mut action = apply(&act, hook, w);
                if a.is_some() && addr.is_none() {
                    action = match action {
                        Action::Nat { target, change } => Action::Nat {
                            target,
                            change: format!("{change} (address from an expression not followed)"),
                        },
                        x => x,
                    };
                }
                action
            }
            e => self.effect(e, hook, w, v6),
        }
    }
}

fn nft_policy(hook: Hook, ti: usize, start: usize, table: &NTable, w: &mut Walk<'_>) -> Verdict {
    let drop = table.chains[start].base.as_ref().is_some_and(|b| b.drop);
    let verdict = if drop { Verdict::Drop } else { Verdict::Accept };
    w.steps.push(step(
        hook,
        ti,
        start,
        None,
        true,
        None,
        Action::Policy { verdict },
    ));
    verdict
}

// ---------------------------------------------------------------------
// Views

impl Step {
    /// Resolves names and text, for steps in iptables tables (`rs`) or
    /// nft tables (`nft`, indices after those of `rs`).
    pub fn view_nft(&self, rs: &Ruleset, nft: &NftRules) -> StepView {
        if self.table < rs.tables.len() {
            return self.view(rs);
        }
        let table = &nft.tables[self.table - rs.tables.len()];
        let chain = &table.chains[self.chain];
        let rule = self.rule.and_then(|i| chain.rules.get(i));
        let text = match rule {
            Some(r) => r.text.clone(),
            None if matches!(self.action, Action::Policy { .. }) => format!(
                "policy {}",
                if chain.base.as_ref().is_some_and(|b| b.drop) {
                    "drop"
                } else {
                    "accept"
                }
            ),
            None => format!("(end of {})", chain.name),
        };
        let chain_name = |c: usize| {
            table
                .chains
                .get(c)
                .map(|c| c.name.clone())
                .unwrap_or_default()
        };
        let action = match &self.action {
            Action::Jump { chain } => format!("jump {}", chain_name(*chain)),
            Action::Goto { chain } => format!("goto {}", chain_name(*chain)),
            a => super::report::action_text(rs, 0, a),
        };
        StepView {
            hook: self.hook,
            table: format!("{} {}", table.family.name(), table.name),
            chain: chain.name.clone(),
            rule: self.rule.map(|i| i + 1),
            line: None,
            text,
            matched: self.matched,
            why_not: match (rule, self.miss) {
                (Some(r), Some(Part::Match(i))) => r.parts.get(i as usize).cloned(),
                _ => None,
            },
            action,
            notes: self.notes.clone(),
        }
    }
}

impl Trace {
    /// Resolves every step against the iptables and nft tables it ran on.
    pub fn view_nft(&self, rs: &Ruleset, nft: &NftRules) -> TraceView {
        let mut v = self.view_steps(|s| s.view_nft(rs, nft));
        v.input = self.input.clone();
        v
    }
}

// ---------------------------------------------------------------------
// From the model read from `nft list ruleset` text

pub(crate) mod from_model {
    use serde_json::{Value, json};

    use crate::nft::{Chain, Expr, NftRuleset, RelOp, Stmt, Verdict};

    /// The model as `nft -j` would list it, so that one compiler serves
    /// both; anonymous chains become chains of their own (`PARENT/anonN`).
    pub(super) fn to_json(m: &NftRuleset) -> Value {
        let mut items = Vec::new();
        for t in &m.tables {
            let family = t.family.as_str();
            let table = t.name.to_string();
            items.push(json!({"table": {"family": family, "name": table}}));
            for s in &t.sets {
                let elem: Vec<Value> = s.elements.iter().map(expr).collect();
                let key = if s.is_map { "map" } else { "set" };
                items.push(json!({key: {"family": family, "table": table, "name": s.name.to_string(), "elem": elem}}));
            }
            let mut rules = Vec::new();
            let mut anon = 0usize;
            for c in &t.chains {
                chain(
                    family, &table, c, &c.name, &mut items, &mut rules, &mut anon,
                );
            }
            items.extend(rules);
        }
        json!({ "nftables": items })
    }

    /// The chains of `t` in the order [`to_json`] lists them (so in the
    /// order of [`super::NTable::chains`]), with the names it gives them.
    pub(crate) fn chain_order(t: &crate::nft::Table) -> Vec<(String, &Chain)> {
        fn walk<'a>(
            c: &'a Chain,
            name: String,
            out: &mut Vec<(String, &'a Chain)>,
            anon: &mut usize,
        ) {
            out.push((name.clone(), c));
            for r in &c.rules {
                for s in &r.stmts {
                    if let Stmt::Verdict(Verdict::JumpAnon(inner) | Verdict::GotoAnon(inner)) = s {
                        *anon += 1;
                        walk(inner, format!("{name}/anon{anon}"), out, anon);
                    }
                }
            }
        }
        let mut out = Vec::new();
        let mut anon = 0usize;
        for c in &t.chains {
            walk(c, c.name.to_string(), &mut out, &mut anon);
        }
        out
    }

    fn chain(
        family: &str,
        table: &str,
        c: &Chain,
        name: &str,
        items: &mut Vec<Value>,
        rules: &mut Vec<Value>,
        anon: &mut usize,
    ) {
        let mut head = json!({"family": family, "table": table, "name": name});
        if let Some(b) = &c.base {
            head["type"] = json!(b.kind.as_str());
            head["hook"] = json!(b.hook.as_str());
            head["prio"] = json!(b.priority.value);
            head["policy"] = json!(b.policy.map_or("accept", |p| p.as_str()));
        }
        items.push(json!({ "chain": head }));
        for r in &c.rules {
            let mut exprs = Vec::new();
            for s in &r.stmts {
                exprs.push(match s {
                    Stmt::Verdict(v @ (Verdict::JumpAnon(inner) | Verdict::GotoAnon(inner))) => {
                        *anon += 1;
                        let sub = format!("{name}/anon{anon}");
                        chain(family, table, inner, &sub, items, rules, anon);
                        let k = if v.is_goto() { "goto" } else { "jump" };
                        json!({ k: {"target": sub} })
                    }
                    s => stmt(s),
                });
            }
            let mut rule = json!({"family": family, "table": table, "chain": name, "expr": exprs, "text": r.text});
            if let Some(h) = r.handle {
                rule["handle"] = json!(h);
            }
            rules.push(json!({ "rule": rule }));
        }
    }

    fn verdict(v: &Verdict) -> Value {
        match v {
            Verdict::Accept => json!({"accept": null}),
            Verdict::Drop => json!({"drop": null}),
            Verdict::Continue => json!({"continue": null}),
            Verdict::Return => json!({"return": null}),
            Verdict::Jump(c) => json!({"jump": {"target": c.to_string()}}),
            Verdict::Goto(c) => json!({"goto": {"target": c.to_string()}}),
            Verdict::JumpAnon(_) | Verdict::GotoAnon(_) => json!("anonymous chain"),
            Verdict::Queue(_) => json!({"queue": {}}),
        }
    }

    fn stmt(s: &Stmt) -> Value {
        match s {
            Stmt::Match(m) => {
                let op = match m.op {
                    RelOp::Implicit => "in",
                    o => o.as_str(),
                };
                json!({"match": {"op": op, "left": expr(&m.left), "right": expr(&m.right)}})
            }
            Stmt::Verdict(v) => verdict(v),
            Stmt::Vmap { key, map } => json!({"vmap": {"key": expr(key), "data": expr(map)}}),
            Stmt::Counter { .. } => json!({"counter": null}),
            Stmt::Log(log) => match &log.prefix {
                Some(p) => json!({"log": {"prefix": p}}),
                None => json!({"log": {}}),
            },
            Stmt::Reject { with } => match with {
                Some(w) => json!({"reject": {"type": "", "expr": w}}),
                None => json!({"reject": null}),
            },
            Stmt::Limit { text } => json!({"limit": {"text": text}}),
            Stmt::Nat(n) => {
                let mut o = serde_json::Map::new();
                if let Some(f) = n.family {
                    o.insert("family".into(), json!(f.as_str()));
                }
                if let Some(a) = &n.addr {
                    o.insert("addr".into(), expr(a));
                }
                if let Some(p) = &n.port {
                    o.insert("port".into(), expr(p));
                }
                json!({ n.kind.as_str(): Value::Object(o) })
            }
            Stmt::Mangle { key, value } => {
                json!({"mangle": {"key": expr(key), "value": expr(value)}})
            }
            Stmt::Notrack => json!({"notrack": null}),
            Stmt::Other(t) => json!(t),
        }
    }

    fn expr(e: &Expr) -> Value {
        match e {
            Expr::Payload(p) => {
                json!({"payload": {"protocol": p.proto(), "field": p.field()}})
            }
            Expr::Meta(k) => json!({"meta": {"key": k.to_string()}}),
            Expr::Ct { key, dir, family } => {
                let mut o = json!({"key": key.to_string()});
                if let Some(d) = dir {
                    o["dir"] = json!(match d {
                        crate::nft::CtDir::Original => "original",
                        crate::nft::CtDir::Reply => "reply",
                    });
                }
                if let Some(f) = family {
                    o["family"] = json!(f.as_str());
                }
                json!({ "ct": o })
            }
            Expr::Fib(fib) => json!({"fib": {
                "result": fib.result.to_string(),
                "flags": fib.flags.iter().map(|f| f.to_string()).collect::<Vec<_>>(),
            }}),
            Expr::Value(v) => json!(v.to_string()),
            Expr::Prefix { addr, len } => json!({"prefix": {"addr": addr.to_string(), "len": len}}),
            Expr::Range(a, b) => json!({"range": [expr(a), expr(b)]}),
            Expr::List(v) => Value::Array(v.iter().map(expr).collect()),
            Expr::Set(v) | Expr::Map(v) => json!({"set": v.iter().map(expr).collect::<Vec<_>>()}),
            Expr::MapElem(kv) => json!([expr(&kv.0), expr(&kv.1)]),
            Expr::Concat(v) => json!({"concat": v.iter().map(expr).collect::<Vec<_>>()}),
            Expr::SetRef(n) => json!(format!("@{n}")),
            Expr::Lookup { key, map } => json!({"map": {"key": expr(key), "data": expr(map)}}),
            Expr::Verdict(v) => verdict(v),
            Expr::Binop { op, left, right } => json!({ op.to_string(): [expr(left), expr(right)] }),
            Expr::Hash(text) => {
                // `numgen random mod N [offset M]`
                let w: Vec<&str> = text.split_whitespace().collect();
                let after = |k: &str| {
                    w.windows(2)
                        .find(|p| p[0] == k)
                        .and_then(|p| p[1].parse::<u64>().ok())
                };
                match (w.first(), w.get(1)) {
                    (Some(&"numgen"), Some(mode)) => json!({"numgen": {
                        "mode": mode,
                        "mod": after("mod").unwrap_or(1),
                        "offset": after("offset").unwrap_or(0),
                    }}),
                    _ => json!({ "hash": text }),
                }
            }
            Expr::Elem { value, .. } => json!({"elem": {"val": expr(value)}}),
            Expr::Other(t) => json!({ "other": t }),
        }
    }
}

impl NftRules {
    /// Compiles the nft tables read from `nft list ruleset` text (or JSON)
    /// into [`crate::model::Ruleset::nft`]; the rules keep their text.
    pub fn from_model(m: &crate::nft::NftRuleset) -> Result<NftRules, NftJsonError> {
        NftRules::from_json(&from_model::to_json(m).to_string())
    }
}

impl NftRules {
    /// The rule `--assume` names: `CHAIN#N`, `TABLE:CHAIN#N` or
    /// `FAMILY TABLE:CHAIN#N` (N counted from 1).
    pub fn find_rule(&self, what: &str) -> Result<RuleRef, String> {
        let Some((chain_part, n)) = what.rsplit_once('#') else {
            return Err(format!(
                "{what:?} names no rule: write CHAIN#N, TABLE:CHAIN#N or FAMILY TABLE:CHAIN#N"
            ));
        };
        let number: usize = n
            .parse()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| format!("#{n}: rules are numbered from 1"))?;
        let (table, chain) = match chain_part.split_once(':') {
            Some((t, c)) => (Some(t.trim()), c),
            None => (None, chain_part),
        };
        let holders: Vec<(&NTable, &NChain)> = self
            .tables
            .iter()
            .filter(|t| {
                table.is_none_or(|n| n == t.name || n == format!("{} {}", t.family.name(), t.name))
            })
            .filter_map(|t| t.chains.iter().find(|c| c.name == chain).map(|c| (t, c)))
            .collect();
        let (t, c) = match holders.as_slice() {
            [] => return Err(format!("no chain {chain} in the nft tables")),
            [one] => *one,
            _ => {
                return Err(format!(
                    "chain {chain} is in more than one table: write FAMILY TABLE:{chain}#{number}"
                ));
            }
        };
        if number > c.rules.len() {
            return Err(format!("{chain} has {} rules", c.rules.len()));
        }
        Ok(RuleRef {
            table: format!("{} {}", t.family.name(), t.name),
            chain: c.name.clone(),
            rule: number - 1,
        })
    }
}
