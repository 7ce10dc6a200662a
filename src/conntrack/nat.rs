//! NAT entries and the nat-table rules that produced them.
//!
//! An entry shows NAT when its reply tuple is not the inverse of the
//! original: a reply source other than the original destination is DNAT
//! (`client -> VIP:port => backend:port`), a reply destination other than the
//! original source is SNAT/MASQUERADE. The rule is found by matching the
//! translated address and port against each DNAT/SNAT/MASQUERADE/REDIRECT
//! rule's `--to-*` range and the rule's own conditions (`-p`, `-s`, `-d`,
//! `--dport`); the most specific match wins, file order breaks ties.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::{Entry, has_ports};
use crate::model::{Negatable, Rule, Ruleset};
use crate::typed::{KnownMatch, KnownTarget, PortRange};

/// Which translations an entry shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct NatKind {
    /// Destination changed (DNAT, REDIRECT, kube-proxy services).
    pub dnat: bool,
    /// Source changed (SNAT, MASQUERADE).
    pub snat: bool,
}

impl NatKind {
    /// True for either kind.
    pub fn any(&self) -> bool {
        self.dnat || self.snat
    }
}

/// A rule named by where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleRef {
    /// Table (`nat`).
    pub table: String,
    /// Chain.
    pub chain: String,
    /// 1-based position in the chain.
    pub index: usize,
    /// Line in the rules input.
    pub line: u32,
    /// Target name (DNAT, SNAT, MASQUERADE, REDIRECT).
    pub target: String,
    /// The rule's original text.
    pub text: String,
    /// Its comment, if any.
    pub comment: Option<String>,
    /// kube-proxy service `namespace/name:port` from the comment.
    pub service: Option<String>,
}

/// First and last address of a `--to-*` range.
type AddrRange = (IpAddr, IpAddr);
/// First and last port of a `--to-*` range.
type PortSpan = (u16, u16);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dnat,
    Snat,
    Masquerade,
    Redirect,
}

/// A nat rule prepared for matching entries.
#[derive(Debug, Clone)]
pub struct NatRule {
    /// Where the rule is.
    pub rule: RuleRef,
    kind: Kind,
    addrs: Option<AddrRange>,
    ports: Option<PortSpan>,
    proto: Option<Negatable<u8>>,
    src: Option<Negatable<IpNet>>,
    dst: Option<Negatable<IpNet>>,
    dports: Option<Negatable<Vec<PortRange>>>,
}

/// kube-proxy writes `namespace/name:port` (sometimes followed by words
/// such as `cluster IP`) into rule comments.
pub fn kube_service(comment: &str) -> Option<String> {
    let first = comment.split_whitespace().next()?;
    let (ns, rest) = first.split_once('/')?;
    let ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':'))
    };
    (ok(ns) && ok(rest)).then(|| first.to_string())
}

fn parse_addr(s: &str) -> Option<IpAddr> {
    s.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

fn parse_port_range(s: &str) -> Option<PortSpan> {
    match s.split_once('-') {
        Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
        None => s.parse().ok().map(|p| (p, p)),
    }
}

/// Splits `--to-destination`/`--to-source` values: `A`, `A-B`, `A:P`,
/// `A-B:P-Q`, `[v6]:P`, `:P`.
fn parse_to(s: &str) -> (Option<AddrRange>, Option<PortSpan>) {
    let (addr_part, port_part) = if let Some(close) = s.rfind(']') {
        let rest = &s[close + 1..];
        (&s[..=close], rest.strip_prefix(':'))
    } else if s.matches(':').count() == 1 {
        let (a, p) = s.split_once(':').unwrap_or((s, ""));
        (a, Some(p))
    } else {
        (s, None)
    };
    let addrs = if addr_part.is_empty() {
        None
    } else {
        match addr_part.split_once('-') {
            Some((a, b)) if !addr_part.starts_with('[') || a.ends_with(']') => {
                parse_addr(a).zip(parse_addr(b))
            }
            _ => parse_addr(addr_part).map(|a| (a, a)),
        }
    };
    (addrs, port_part.and_then(parse_port_range))
}

fn net(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

fn neg<U>(n: Negatable<&str>, f: impl FnOnce(&str) -> Option<U>) -> Option<Negatable<U>> {
    Some(Negatable {
        value: f(n.value)?,
        negated: n.negated,
        bang_after: n.bang_after,
    })
}

impl NatRule {
    fn from_rule(table: &str, chain: &str, index: usize, r: &Rule) -> Option<NatRule> {
        let t = r.target()?;
        let KnownTarget::Nat { name, to, .. } = t.typed() else {
            return None;
        };
        let kind = match name.as_str() {
            "DNAT" => Kind::Dnat,
            "SNAT" => Kind::Snat,
            "MASQUERADE" => Kind::Masquerade,
            "REDIRECT" => Kind::Redirect,
            _ => return None,
        };
        let (addrs, ports) = match (kind, to.as_deref()) {
            (Kind::Dnat | Kind::Snat, Some(to)) => parse_to(to),
            (Kind::Masquerade | Kind::Redirect, Some(to)) => (None, parse_port_range(to)),
            _ => (None, None),
        };
        let mut dports = None;
        for m in r.matches() {
            match m.typed() {
                KnownMatch::Tcp { dport: Some(d), .. } | KnownMatch::Udp { dport: Some(d), .. } => {
                    dports = Some(d)
                }
                KnownMatch::Multiport {
                    dports: Some(d), ..
                } => dports = Some(d),
                _ => {}
            }
        }
        let comment = r.comment();
        Some(NatRule {
            rule: RuleRef {
                table: table.into(),
                chain: chain.into(),
                index,
                line: r.line,
                target: name.to_string(),
                text: r.text.to_string(),
                service: comment.as_deref().and_then(kube_service),
                comment,
            },
            kind,
            addrs,
            ports,
            proto: r.protocol().and_then(|p| neg(p, super::proto_number)),
            src: r.source().and_then(|p| neg(p, net)),
            dst: r.destination().and_then(|p| neg(p, net)),
            dports,
        })
    }

    /// The ports the rule translates to (`--to-ports`, `:P-Q`), if it names them.
    pub fn port_range(&self) -> Option<(u16, u16)> {
        self.ports
    }

    /// True for SNAT and MASQUERADE (the source is rewritten).
    pub fn is_snat(&self) -> bool {
        matches!(self.kind, Kind::Snat | Kind::Masquerade)
    }

    /// Whether the rule can translate UDP (`-p udp`, or no protocol).
    pub fn translates_udp(&self) -> bool {
        self.proto
            .as_ref()
            .is_none_or(|p| (p.value == 17 || p.value == 0) != p.negated)
    }

    fn is_dnat(&self) -> bool {
        matches!(self.kind, Kind::Dnat | Kind::Redirect)
    }

    /// How well this rule explains the entry: `None` when it cannot have
    /// made it, otherwise a score (higher is more specific).
    fn score(&self, e: &Entry, dnat: bool) -> Option<u32> {
        let ports = has_ports(e.proto);
        // After DNAT the rule sees the translated destination: SNAT in
        // POSTROUTING matches against the reply source, DNAT against the original.
        let (src, dst, dport) = if dnat {
            (e.orig.src, e.orig.dst, e.orig.dport)
        } else {
            (e.orig.src, e.reply.src, e.reply.sport)
        };
        let (new_addr, new_port) = if dnat {
            (e.reply.src, e.reply.sport)
        } else {
            (e.reply.dst, e.reply.dport)
        };
        let mut score = 0;
        let check = |ok: bool, negated: bool| ok != negated;
        if let Some(p) = &self.proto {
            if !check(p.value == e.proto || p.value == 0, p.negated) {
                return None;
            }
            score += 1;
        }
        if let Some(n) = &self.src {
            if !check(n.value.contains(&src), n.negated) {
                return None;
            }
            score += 1;
        }
        if let Some(n) = &self.dst {
            if !check(n.value.contains(&dst), n.negated) {
                return None;
            }
            score += 1;
        }
        if let Some(d) = &self.dports {
            if !ports || !check(d.value.iter().any(|r| r.contains(dport)), d.negated) {
                return None;
            }
            score += 1;
        }
        if let Some((lo, hi)) = self.addrs {
            let inside = match (lo, hi, new_addr) {
                (IpAddr::V4(l), IpAddr::V4(h), IpAddr::V4(a)) => l <= a && a <= h,
                (IpAddr::V6(l), IpAddr::V6(h), IpAddr::V6(a)) => l <= a && a <= h,
                _ => false,
            };
            if !inside {
                return None;
            }
            score += 4;
        }
        if let Some((lo, hi)) = self.ports {
            if !ports || new_port < lo || new_port > hi {
                return None;
            }
            score += 2;
        } else if ports && dnat && self.kind == Kind::Dnat && e.reply.sport != e.orig.dport {
            // DNAT without a port keeps the original port.
            return None;
        }
        Some(score)
    }
}

/// The nat rules of a ruleset, ready to match entries against.
#[derive(Debug, Clone, Default)]
pub struct NatRules {
    /// DNAT/SNAT/MASQUERADE/REDIRECT rules in file order.
    pub rules: Vec<NatRule>,
}

impl NatRules {
    /// Collects the translating rules of the `nat` table.
    pub fn from_ruleset(rs: &Ruleset) -> NatRules {
        let mut rules = Vec::new();
        for t in rs.tables.iter().filter(|t| t.name == "nat") {
            for c in &t.chains {
                for (i, r) in c.rules.iter().enumerate() {
                    if let Some(n) = NatRule::from_rule(&t.name, &c.name, i + 1, r) {
                        rules.push(n);
                    }
                }
            }
        }
        NatRules { rules }
    }

    /// Adds the rules of another ruleset (e.g. the IPv6 one).
    pub fn extend(&mut self, other: NatRules) {
        self.rules.extend(other.rules);
    }

    fn best(&self, e: &Entry, dnat: bool) -> Option<usize> {
        let mut best: Option<(u32, usize)> = None;
        for (i, r) in self.rules.iter().enumerate() {
            if r.is_dnat() != dnat {
                continue;
            }
            if let Some(s) = r.score(e, dnat)
                && best.is_none_or(|(b, _)| s > b)
            {
                best = Some((s, i));
            }
        }
        best.map(|b| b.1)
    }

    /// Indices of the SNAT/MASQUERADE rules, looked up once when many
    /// entries are matched (a kube-proxy nat table is mostly DNAT rules).
    pub fn snat_indices(&self) -> Vec<usize> {
        (0..self.rules.len())
            .filter(|&i| !self.rules[i].is_dnat())
            .collect()
    }

    /// The SNAT-like rule that explains the entry's source translation,
    /// among `among` (from [`NatRules::snat_indices`]); the same answer as
    /// [`NatRules::find`] gives.
    pub fn best_snat_among(&self, e: &Entry, among: &[usize]) -> Option<usize> {
        let mut best: Option<(u32, usize)> = None;
        for &i in among {
            if let Some(s) = self.rules[i].score(e, false)
                && best.is_none_or(|(b, _)| s > b)
            {
                best = Some((s, i));
            }
        }
        best.map(|b| b.1)
    }

    /// Indices (into `rules`) of the DNAT-like and SNAT-like rules that
    /// explain the entry.
    pub fn find(&self, e: &Entry) -> (Option<usize>, Option<usize>) {
        let k = e.nat();
        (
            if k.dnat { self.best(e, true) } else { None },
            if k.snat { self.best(e, false) } else { None },
        )
    }
}

/// A NAT entry, shown as `client -> VIP:port => backend:port`.
#[derive(Debug, Clone, Serialize)]
pub struct NatLink {
    /// Index of the entry in its table.
    pub entry: usize,
    /// Line of the entry in the conntrack input.
    pub line: u32,
    /// Protocol name.
    pub proto: &'static str,
    /// Which translations.
    pub kind: NatKind,
    /// Original source (`client:port`).
    pub client: String,
    /// Original destination (the VIP for kube-proxy services).
    pub service: String,
    /// Where the connection really goes (reply source).
    pub backend: String,
    /// The address the client was translated to (reply destination), for SNAT.
    pub translated_source: Option<String>,
    /// The DNAT/REDIRECT rule, when rules were given and one fits.
    pub dnat_rule: Option<RuleRef>,
    /// The SNAT/MASQUERADE rule, when rules were given and one fits.
    pub snat_rule: Option<RuleRef>,
}

impl NatLink {
    /// `client -> VIP:port => backend:port`, plus `(as X)` for SNAT.
    pub fn arrow(&self) -> String {
        let mut s = format!("{} {} -> {}", self.proto, self.client, self.service);
        if self.kind.dnat {
            s.push_str(&format!(" => {}", self.backend));
        }
        if let Some(t) = &self.translated_source {
            s.push_str(&format!(" (source as {t})"));
        }
        s
    }
}

/// The NAT entries among `entries` (with their index), linked to `rules`
/// when given.
pub fn link_nat<'a>(
    entries: impl IntoIterator<Item = (usize, &'a Entry)>,
    rules: Option<&NatRules>,
) -> Vec<NatLink> {
    entries
        .into_iter()
        .filter_map(|(i, e)| {
            let kind = e.nat();
            if !kind.any() {
                return None;
            }
            let (d, s) = rules.map(|r| r.find(e)).unwrap_or((None, None));
            let get = |x: Option<usize>| x.and_then(|x| rules.map(|r| r.rules[x].rule.clone()));
            Some(NatLink {
                entry: i,
                line: e.line,
                proto: e.proto_name(),
                kind,
                client: e.endpoint(e.orig.src, e.orig.sport),
                service: e.endpoint(e.orig.dst, e.orig.dport),
                backend: e.endpoint(e.reply.src, e.reply.sport),
                translated_source: kind.snat.then(|| e.endpoint(e.reply.dst, e.reply.dport)),
                dnat_rule: get(d),
                snat_rule: get(s),
            })
        })
        .collect()
}

/// A climbing `insert_failed` next to the NAT rules that translate UDP.
#[derive(Debug, Clone, Serialize)]
pub struct InsertRace {
    /// `insert_failed` summed over CPUs.
    pub insert_failed: u64,
    /// Per second, when two readings were given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_second: Option<f64>,
    /// What the counter means here.
    pub explanation: &'static str,
    /// The nat rules that translate UDP flows (DNAT of DNS services,
    /// SNAT/MASQUERADE), with whether they already use `--random-fully`.
    pub rules: Vec<RaceRule>,
    /// The UDP NAT tuples of the table (most pressed first), such as DNS.
    pub flows: Vec<String>,
    /// What usually helps, as hints to check, not certainties.
    pub hints: Vec<&'static str>,
}

/// A nat rule that translates UDP.
#[derive(Debug, Clone, Serialize)]
pub struct RaceRule {
    /// The rule.
    pub rule: RuleRef,
    /// The rule already picks source ports with `--random-fully`.
    pub random_fully: bool,
}

/// Rules shown next to a climbing `insert_failed` (kube-proxy has one DNAT
/// rule per endpoint: the list is cut).
pub const RACE_RULES: usize = 12;

/// Ties a non-zero `insert_failed` to the UDP-translating rules and flows.
/// `None` when the counter is zero or unknown.
pub fn insert_race(
    insert_failed: Option<u64>,
    per_second: Option<f64>,
    rules: Option<&NatRules>,
    udp_flows: Vec<String>,
) -> Option<InsertRace> {
    let total = insert_failed?;
    if total == 0 && per_second.is_none_or(|r| r <= 0.0) {
        return None;
    }
    let mut list: Vec<RaceRule> = rules
        .map(|r| {
            r.rules
                .iter()
                .filter(|n| n.translates_udp())
                .map(|n| RaceRule {
                    random_fully: n.rule.text.contains("--random-fully"),
                    rule: n.rule.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    // Source translation first: that is where --random-fully applies.
    list.sort_by_key(|r| !matches!(r.rule.target.as_str(), "SNAT" | "MASQUERADE"));
    list.truncate(RACE_RULES);
    Some(InsertRace {
        insert_failed: total,
        per_second,
        explanation: "two packets of one new UDP flow (often the A and AAAA DNS queries a resolver sends at once from one socket) each made a conntrack entry and NAT gave them the same tuple; the second entry could not be inserted and its packet was dropped, which a client sees as a 5-second DNS timeout",
        rules: list,
        flows: udp_flows,
        hints: vec![
            "--random-fully on the SNAT/MASQUERADE rule may help when the clash is between two source-port choices",
            "a node-local DNS cache (such as NodeLocal DNSCache on Kubernetes) keeps pods' DNS off DNAT and conntrack races",
            "`options single-request-reopen` (glibc) or `use-vc` in resolv.conf keeps the A and AAAA queries from racing on one socket",
            "kernels since 5.0 resolve most UDP clashes themselves (clash_resolve counts them); an older kernel makes the race likelier",
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_ranges() {
        let a = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            parse_to("10.0.0.1"),
            (Some((a("10.0.0.1"), a("10.0.0.1"))), None)
        );
        assert_eq!(
            parse_to("10.0.0.1-10.0.0.9:80-90"),
            (Some((a("10.0.0.1"), a("10.0.0.9"))), Some((80, 90)))
        );
        assert_eq!(
            parse_to("[2001:db8::1]:443"),
            (Some((a("2001:db8::1"), a("2001:db8::1"))), Some((443, 443)))
        );
        assert_eq!(
            parse_to("2001:db8::1"),
            (Some((a("2001:db8::1"), a("2001:db8::1"))), None)
        );
        assert_eq!(parse_to(":8080"), (None, Some((8080, 8080))));
    }

    #[test]
    fn services_from_comments() {
        assert_eq!(
            kube_service("kube-system/kube-dns:dns cluster IP").as_deref(),
            Some("kube-system/kube-dns:dns")
        );
        assert_eq!(kube_service("allow ssh"), None);
    }
}
