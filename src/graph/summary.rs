//! Short, human summaries of rules for edge labels (`tcp dpt:443 -s 10.0.0.0/8`).

use crate::model::{KnownMatch, Negatable, PortRange, Rule};

/// Longest summary, in characters; the full rule is in the hover text.
const MAX_SUMMARY: usize = 48;

fn bang(negated: bool) -> &'static str {
    if negated { "!" } else { "" }
}

fn ports(p: &[PortRange]) -> String {
    p.iter()
        .map(|r| {
            if r.lo == r.hi {
                r.lo.to_string()
            } else {
                format!("{}:{}", r.lo, r.hi)
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn push_ports(parts: &mut Vec<String>, name: &str, p: &Option<Negatable<Vec<PortRange>>>) {
    if let Some(p) = p {
        let plural = if p.value.len() > 1 { "s" } else { "" };
        parts.push(format!(
            "{}{name}{plural}:{}",
            bang(p.negated),
            ports(&p.value)
        ));
    }
}

fn push_addr<T: std::fmt::Display>(parts: &mut Vec<String>, flag: &str, v: &Option<Negatable<T>>) {
    if let Some(v) = v {
        parts.push(format!("{}{flag} {}", bang(v.negated), v.value));
    }
}

/// A short summary of what a rule matches, plus the interesting argument of
/// its target (NAT destination, log prefix); empty for a rule that matches
/// everything.
pub fn rule_summary(r: &Rule) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(p) = r.protocol() {
        parts.push(format!("{}{}", bang(p.negated), p.value));
    }
    for m in r.matches() {
        if m.module == crate::parse::listing::OPAQUE_MODULE {
            // Printed text an `iptables -L` paste held that no form explains.
            parts.push(format!("?{}", m.opt("--text").map_or("", |o| o.arg())));
            continue;
        }
        match m.typed() {
            KnownMatch::Tcp { sport, dport, .. } | KnownMatch::Udp { sport, dport } => {
                push_ports(&mut parts, "dpt", &dport);
                push_ports(&mut parts, "spt", &sport);
            }
            KnownMatch::Multiport {
                sports,
                dports,
                ports: both,
            } => {
                push_ports(&mut parts, "dpt", &dports);
                push_ports(&mut parts, "spt", &sports);
                push_ports(&mut parts, "port", &both);
            }
            KnownMatch::Icmp { icmp_type: Some(t) } => {
                parts.push(format!("{}icmp-type:{}", bang(t.negated), t.value))
            }
            KnownMatch::Conntrack { state: Some(s), .. } => {
                parts.push(format!("{}state:{}", bang(s.negated), s.value.join(",")))
            }
            KnownMatch::Set {
                name: Some(n),
                flags,
            } => parts.push(format!(
                "{}set:{} {}",
                bang(n.negated),
                n.value,
                flags.unwrap_or_default()
            )),
            KnownMatch::Mark { mark: Some(mk) } => parts.push(format!(
                "{}mark:{}",
                bang(mk.negated),
                m.opts.first().map_or("", |o| o.arg())
            )),
            KnownMatch::Addrtype {
                dst_type: Some(d), ..
            } => parts.push(format!("{}dst-type:{}", bang(d.negated), d.value.join(","))),
            KnownMatch::Physdev {
                phys_in, phys_out, ..
            } => {
                push_addr(&mut parts, "physdev-in", &phys_in);
                push_addr(&mut parts, "physdev-out", &phys_out);
            }
            KnownMatch::Limit { rate: Some(r), .. } => parts.push(format!("limit:{r}")),
            _ => {}
        }
    }
    push_addr(&mut parts, "-s", &r.source());
    push_addr(&mut parts, "-d", &r.destination());
    push_addr(&mut parts, "-i", &r.in_iface());
    push_addr(&mut parts, "-o", &r.out_iface());
    if let Some(t) = r.target() {
        if let Some(to) = t
            .opt("--to-destination")
            .or(t.opt("--to-source"))
            .or(t.opt("--to-ports"))
        {
            parts.push(format!("to:{}", to.arg()));
        } else if let Some(p) = t.opt("--log-prefix").or(t.opt("--nflog-prefix")) {
            parts.push(format!("\"{}\"", p.arg().trim()));
        } else if let Some(w) = t.opt("--reject-with") {
            parts.push(w.arg().to_string());
        }
    }
    shorten(&parts.join(" "), MAX_SUMMARY)
}

/// A rule named for a drawn path: its 1-based number in its chain (`index`
/// is 0-based), its target, and what it matches, e.g.
/// `#3 -j KUBE-SVC-ABC tcp dpt:443`; `p=` for a load-balancing rule.
pub fn rule_label(index: usize, r: &Rule) -> String {
    let mut out = format!("#{}", index + 1);
    if let Some(t) = r.target() {
        out.push_str(if t.goto { " -g " } else { " -j " });
        out.push_str(t.name);
    }
    if let Some(p) = probability(r) {
        out.push_str(&format!(" p={p:.3}"));
    }
    let s = rule_summary(r);
    if !s.is_empty() {
        out.push(' ');
        out.push_str(&s);
    }
    out
}

/// How a drawing of a packet's path names the rules it took. The chain
/// graph draws iptables rules, and nft rules through their drawing tables
/// (where one nft rule may be several drawn rules): these name a drawn
/// rule by what the user wrote.
pub trait RuleNaming {
    /// The number shown for rule `index` (0-based) of `chain` in `table`.
    fn number(&self, _table: &str, _chain: &str, index: usize) -> usize {
        index + 1
    }

    /// The label of a rule taken: `#3 -j SSH tcp dpt:22`.
    fn label(&self, _table: &str, _chain: &str, index: usize, rule: &Rule) -> String {
        rule_label(index, rule)
    }

    /// The rule as hover text shows it: `line 12: -A INPUT ...`.
    fn text(&self, _table: &str, _chain: &str, _index: usize, rule: &Rule) -> String {
        format!("line {}: {}", rule.line, &*rule.text)
    }

    /// Whether a lit edge drawn for one rule of `table` is labelled after
    /// the rule taken, as an edge merged from several is (iptables edges
    /// keep their summary of what the rule matches).
    fn label_every_edge(&self, _table: &str) -> bool {
        false
    }

    /// A chain's policy as hover text shows it: `line 3: :INPUT DROP`.
    fn policy(&self, _table: &str, chain: &crate::model::Chain, verdict: &str) -> String {
        format!("line {}: :{} {verdict}", chain.line, chain.name)
    }
}

/// iptables rules, named as they are written.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlainNames;

impl RuleNaming for PlainNames {}

/// Cuts `s` to at most `max` characters, marking the cut with `…`.
pub(crate) fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The `--probability` of a `-m statistic --mode random` rule.
pub(crate) fn probability(r: &Rule) -> Option<f64> {
    r.matches().find_map(|m| match m.typed() {
        KnownMatch::Statistic { probability, .. } => probability,
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{ParseOptions, parse_str};

    fn first_rule(line: &str) -> Rule {
        let text = format!("*filter\n:INPUT ACCEPT [0:0]\n{line}\nCOMMIT\n");
        let p = parse_str(&text, &ParseOptions::lenient("t")).unwrap();
        p.ruleset.tables[0].chains[0].rules[0].clone()
    }

    #[test]
    fn summaries() {
        let r = first_rule("-A INPUT -s 10.0.0.0/8 -p tcp -m tcp --dport 443 -j ACCEPT");
        assert_eq!(rule_summary(&r), "tcp dpt:443 -s 10.0.0.0/8");
        let r = first_rule("-A INPUT -p tcp -m multiport --dports 80,443 -j ACCEPT");
        assert_eq!(rule_summary(&r), "tcp dpts:80,443");
        let r = first_rule("-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT");
        assert_eq!(rule_summary(&r), "state:RELATED,ESTABLISHED");
        let r = first_rule("-A INPUT ! -i lo -j DROP");
        assert_eq!(rule_summary(&r), "!-i lo");
        let r = first_rule("-A INPUT -m statistic --mode random --probability 0.25 -j DROP");
        assert_eq!(probability(&r), Some(0.25));
    }

    #[test]
    fn rule_labels() {
        let r = first_rule("-A INPUT -p tcp -m tcp --dport 443 -j ACCEPT");
        assert_eq!(rule_label(2, &r), "#3 -j ACCEPT tcp dpt:443");
        let r = first_rule("-A INPUT -m statistic --mode random --probability 0.5 -g SSH");
        assert_eq!(rule_label(0, &r), "#1 -g SSH p=0.500");
        let r = first_rule("-A INPUT -s 10.0.0.0/8");
        assert_eq!(rule_label(0, &r), "#1 -s 10.0.0.0/8");
    }

    #[test]
    fn shorten_counts_characters() {
        assert_eq!(shorten("ééééé", 3), "éé…");
        assert_eq!(shorten("abc", 3), "abc");
    }
}
