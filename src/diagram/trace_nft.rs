//! A trace through nft tables drawn like an iptables one. The chain graph
//! draws nft tables through their drawing tables
//! ([`crate::nft::project`]), where anonymous chains have names of their
//! own and a verdict map is one drawn rule per verdict; the walk's steps
//! in nft tables are moved onto those chains and rules, so that
//! [`super::trace_view_named`] and [`super::path_only_view_named`] draw
//! it, and the rules taken are named by their number in their nft chain
//! and their nft text.

use std::collections::HashMap;

use crate::graph::{RuleNaming, rule_label, shorten};
use crate::model::{Chain, Rule, Ruleset};
use crate::nft::project::{places, table_label};

use crate::trace::nft::{NftRules, from_model::chain_order};
use crate::trace::{Action, Trace, Verdict};

/// Longest nft rule text in a label; the whole rule is in the hover text.
const MAX_LABEL: usize = 56;

/// A trace made by [`crate::trace::Tracer::with_nft`], moved onto the drawing
/// tables of its nft tables.
#[derive(Debug, Clone)]
pub struct NftDrawn {
    /// The trace, its nft steps naming drawn tables, chains and rules of
    /// the ruleset given to [`Trace::on_drawing`].
    pub trace: Trace,
    /// Per drawn table, chain and rule taken: the nft rule's number in
    /// its chain and its text.
    rules: HashMap<(String, String, usize), (usize, String)>,
    /// Drawn tables that picture nft tables.
    nft_tables: Vec<String>,
}

impl Trace {
    /// This trace, made by [`crate::trace::Tracer::with_nft`] over a ruleset of
    /// `ipt_tables` iptables tables and the nft tables `nft`, with its
    /// steps in nft tables moved onto `drawn`: the iptables tables (first,
    /// unchanged) and the drawing tables of `drawn.nft`, as
    /// [`crate::nft::project::with_drawn_tables`] makes them. A step whose
    /// chain is not drawn names no table (drawings skip it).
    pub fn on_drawing(&self, drawn: &Ruleset, ipt_tables: usize, nft: &NftRules) -> NftDrawn {
        let places = places(&drawn.nft);
        // Per nft table: its drawing table and, per chain the tracer
        // knows, the drawn chain.
        let mut tables: Vec<Option<(usize, Vec<Option<usize>>)>> = Vec::new();
        for (t, model) in drawn.nft.tables.iter().enumerate() {
            let label = table_label(model);
            let found = drawn
                .tables
                .iter()
                .enumerate()
                .skip(ipt_tables)
                .find(|(_, x)| x.name == label)
                .map(|(i, _)| i);
            let (Some(dt), Some(nt), Some(pl)) = (found, nft.tables.get(t), places.get(t)) else {
                tables.push(None);
                continue;
            };
            let by_name: HashMap<String, &crate::nft::Chain> =
                chain_order(model).into_iter().collect();
            let chains = nt
                .chains
                .iter()
                .map(|c| {
                    let name = pl.chain(by_name.get(&c.name)?)?;
                    drawn.tables[dt].chain_position(name)
                })
                .collect();
            tables.push(Some((dt, chains)));
        }
        let mut out = self.clone();
        let mut rules = HashMap::new();
        for s in &mut out.steps {
            let Some(t) = s.table.checked_sub(ipt_tables) else {
                continue;
            };
            let mapped = tables
                .get(t)
                .and_then(Option::as_ref)
                .and_then(|(dt, cs)| Some((*dt, cs.get(s.chain).copied().flatten()?, cs)));
            let Some((dt, dc, cs)) = mapped else {
                s.table = usize::MAX;
                continue;
            };
            let to_drawn = |c: usize| cs.get(c).copied().flatten();
            s.action = match s.action.clone() {
                Action::Jump { chain } => match to_drawn(chain) {
                    Some(c) => Action::Jump { chain: c },
                    None => Action::Undefined {
                        name: nft.tables[t].chains[chain].name.clone(),
                    },
                },
                Action::Goto { chain } => match to_drawn(chain) {
                    Some(c) => Action::Goto { chain: c },
                    None => Action::Undefined {
                        name: nft.tables[t].chains[chain].name.clone(),
                    },
                },
                a => a,
            };
            let table = &drawn.tables[dt];
            let chain = &table.chains[dc];
            if let Some(i) = s.rule {
                let origin = places[t].rules(&chain.name);
                let candidates: Vec<usize> =
                    (0..origin.len()).filter(|&d| origin[d] == i).collect();
                let want = expected_target(&s.action, table);
                let pick = candidates
                    .iter()
                    .copied()
                    .find(|&d| {
                        let target = chain.rules.get(d).and_then(Rule::target);
                        want.is_some() && target.map(|x| x.name) == want.as_deref()
                    })
                    .or(candidates.first().copied());
                s.rule = pick;
                if let Some(d) = pick {
                    let text = nft.tables[t].chains[s.chain]
                        .rules
                        .get(i)
                        .map(|r| r.text.clone())
                        .unwrap_or_default();
                    rules.insert(
                        (table.name.to_string(), chain.name.to_string(), d),
                        (i + 1, text),
                    );
                }
            }
            (s.table, s.chain) = (dt, dc);
        }
        let nft_tables = tables
            .iter()
            .flatten()
            .map(|(dt, _)| drawn.tables[*dt].name.to_string())
            .collect();
        NftDrawn {
            trace: out,
            rules,
            nft_tables,
        }
    }
}

/// The target of the drawn rule that pictures a step's action: a verdict
/// map is drawn as one rule per verdict, and the one the packet took is
/// the one to light up.
fn expected_target(a: &Action, table: &crate::model::Table) -> Option<String> {
    Some(match a {
        Action::Jump { chain } | Action::Goto { chain } => {
            table.chains.get(*chain)?.name.to_string()
        }
        Action::Verdict { verdict } => match verdict {
            Verdict::Queue => "NFQUEUE".into(),
            v => v.to_string(),
        },
        Action::Return => "RETURN".into(),
        Action::Nat { target, .. } => target.clone(),
        _ => return None,
    })
}

/// `counter packets 0 bytes 0` as `counter`: what a listing counted is
/// not what this packet did, and it crowds the label out.
fn without_counts(text: &str) -> String {
    static COUNTS: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        // A fixed pattern: it compiles.
        regex::Regex::new(r"\bcounter packets \d+ bytes \d+").expect("valid pattern")
    });
    COUNTS.replace_all(text, "counter").into_owned()
}

impl NftDrawn {
    fn nft(&self, table: &str, chain: &str, index: usize) -> Option<&(usize, String)> {
        self.rules
            .get(&(table.to_string(), chain.to_string(), index))
    }

    fn is_nft(&self, table: &str) -> bool {
        self.nft_tables.iter().any(|t| t == table)
    }
}

impl RuleNaming for NftDrawn {
    fn number(&self, table: &str, chain: &str, index: usize) -> usize {
        self.nft(table, chain, index).map_or(index + 1, |(n, _)| *n)
    }

    fn label(&self, table: &str, chain: &str, index: usize, rule: &Rule) -> String {
        match self.nft(table, chain, index) {
            Some((n, text)) => format!("#{n} {}", shorten(&without_counts(text), MAX_LABEL)),
            None => rule_label(index, rule),
        }
    }

    fn text(&self, table: &str, chain: &str, index: usize, rule: &Rule) -> String {
        match self.nft(table, chain, index) {
            Some((_, text)) if rule.line > 0 => format!("line {}: {text}", rule.line),
            Some((_, text)) => text.clone(),
            None => format!("line {}: {}", rule.line, &*rule.text),
        }
    }

    fn label_every_edge(&self, table: &str) -> bool {
        // Drawn nft rules carry no summary of what they match.
        self.is_nft(table)
    }

    fn policy(&self, table: &str, chain: &Chain, verdict: &str) -> String {
        if !self.is_nft(table) {
            return format!("line {}: :{} {verdict}", chain.line, chain.name);
        }
        let policy = format!("policy {}", verdict.to_ascii_lowercase());
        if chain.line > 0 {
            format!("line {}: {} {policy}", chain.line, chain.name)
        } else {
            format!("{} {policy}", chain.name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagram::{PathMark, View, ViewOptions, path_only_view_named, trace_view_named};
    use crate::graph::EdgeKind;
    use crate::nft::project::with_drawn_tables;
    use crate::parse::{ParseOptions, parse_str};
    use crate::trace::{Packet, TraceOptions, Tracer};

    /// The walk of `pkt` through iptables text `ipt` (may be empty) and
    /// nft text `nft`, on the drawing.
    fn drawn(ipt: &str, nft: &str, pkt: &Packet) -> (Ruleset, NftDrawn) {
        let mut rs = if ipt.is_empty() {
            Ruleset::default()
        } else {
            parse_str(ipt, &ParseOptions::strict("ipt"))
                .unwrap()
                .ruleset
        };
        rs.nft = crate::nft::parse_nft(nft, &ParseOptions::strict("nft"))
            .unwrap()
            .ruleset
            .nft;
        let rules = NftRules::from_model(&rs.nft).unwrap();
        let opts = TraceOptions {
            local: vec!["192.0.2.1".parse().unwrap()],
            ..Default::default()
        };
        let t = Tracer::with_nft(&rs, &rules).trace(pkt, &opts);
        let drawing = with_drawn_tables(rs.clone());
        let d = t.on_drawing(&drawing, rs.tables.len(), &rules);
        (drawing, d)
    }

    fn packet(proto: u8, src: &str, dport: u16) -> Packet {
        let mut p = Packet::new(proto, src.parse().unwrap(), "192.0.2.1".parse().unwrap());
        p.dport = dport;
        p.in_iface = Some("eth0".into());
        p
    }

    fn edges(rs: &Ruleset, d: &NftDrawn) -> Vec<(String, Option<usize>, EdgeKind, String)> {
        d.trace
            .path_marks(rs)
            .into_iter()
            .filter_map(|m| match m {
                PathMark::Edge {
                    chain,
                    rule,
                    kind,
                    to,
                    ..
                } => Some((chain.to_string(), rule, kind, to.to_string())),
                PathMark::Chain { .. } => None,
            })
            .collect()
    }

    fn lit_labels(v: &View) -> Vec<&str> {
        v.edges
            .iter()
            .filter(|e| e.highlight && !e.label.is_empty())
            .map(|e| e.label.as_str())
            .collect()
    }

    const VMAP: &str = "table inet t {
        chain input { type filter hook input priority 0; policy drop;
            tcp dport vmap { 22 : jump ssh, 80 : accept, 443 : drop }
            udp dport 53 counter packets 7 bytes 420 accept
        }
        chain ssh { ip saddr 10.0.0.0/8 accept }
    }";

    #[test]
    fn a_verdict_map_lights_the_verdict_the_packet_took() {
        let input = "input [hook input priority 0]";
        let (rs, d) = drawn("", VMAP, &packet(6, "10.1.1.1", 22));
        let e = edges(&rs, &d);
        assert_eq!(
            e,
            [
                (input.into(), Some(0), EdgeKind::Jump, "ssh".into()),
                ("ssh".into(), Some(0), EdgeKind::Jump, "ACCEPT".into()),
            ]
        );
        let (rs, d) = drawn("", VMAP, &packet(6, "10.1.1.1", 80));
        // The vmap is three drawn rules; the second is its `accept`.
        assert_eq!(
            edges(&rs, &d),
            [(input.into(), Some(1), EdgeKind::Jump, "ACCEPT".into())]
        );
        let (rs, d) = drawn("", VMAP, &packet(6, "10.1.1.1", 443));
        assert_eq!(
            edges(&rs, &d),
            [(input.into(), Some(2), EdgeKind::Jump, "DROP".into())]
        );
    }

    #[test]
    fn rules_after_a_verdict_map_keep_their_nft_number() {
        // Drawn rule 4 (after the vmap's three) is nft rule #2.
        let (rs, d) = drawn("", VMAP, &packet(17, "10.1.1.1", 53));
        assert_eq!(
            edges(&rs, &d),
            [(
                "input [hook input priority 0]".into(),
                Some(3),
                EdgeKind::Jump,
                "ACCEPT".into()
            )]
        );
        let v = trace_view_named(&rs, &d.trace, &ViewOptions::default(), &d).unwrap();
        // What was counted in the listing is left out of the label; the
        // vmap's `accept` is drawn on the same edge.
        assert_eq!(lit_labels(&v), ["#2 udp dport 53 counter accept (+1 more)"]);
        let p = path_only_view_named(&rs, &d.trace, "t", &d);
        let taken = p
            .edges
            .iter()
            .find(|e| e.label.starts_with("#2"))
            .expect("the rule taken is drawn");
        assert!(
            taken
                .title
                .ends_with("udp dport 53 counter packets 7 bytes 420 accept"),
            "{}",
            taken.title
        );
        let policy = p
            .edges
            .iter()
            .filter(|e| e.kind == EdgeKind::Policy)
            .count();
        assert_eq!(policy, 0, "the rule accepted it, no policy applied");
    }

    /// Anonymous chains are numbered by the tracer depth first
    /// (`input/anon1`, `input/anon1/anon2`, `input/anon3`) and by the
    /// drawing chain by chain (`{anon_1}`, `{anon_2}`, then `{anon_3}`
    /// inside the first).
    const ANON: &str = "table ip t {
        chain input { type filter hook input priority 0; policy accept;
            tcp dport 22 jump { ip saddr 10.0.0.0/8 jump { tcp sport 1000 drop } }
            tcp dport 80 jump { ip saddr 10.0.0.0/8 drop }
        }
    }";

    #[test]
    fn anonymous_chains_light_up_whatever_their_numbering() {
        let mut p = packet(6, "10.1.1.1", 22);
        p.sport = 1000;
        let (rs, d) = drawn("", ANON, &p);
        let v = trace_view_named(&rs, &d.trace, &ViewOptions::default(), &d).unwrap();
        let lit = v.lit_ids();
        for id in ["ip t/{anon_1}", "ip t/{anon_3}"] {
            assert!(lit.contains(&id), "{id} not lit in {lit:?}");
        }
        assert!(!lit.contains(&"ip t/{anon_2}"), "{lit:?}");
        let (rs, d) = drawn("", ANON, &packet(6, "10.1.1.1", 80));
        let v = trace_view_named(&rs, &d.trace, &ViewOptions::default(), &d).unwrap();
        let lit = v.lit_ids();
        assert!(lit.contains(&"ip t/{anon_2}"), "{lit:?}");
        assert!(!lit.contains(&"ip t/{anon_1}"), "{lit:?}");
    }

    #[test]
    fn a_mixed_host_is_drawn_table_after_table_in_priority_order() {
        let ipt = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
            -A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\nCOMMIT\n";
        let nft = "table inet late {
            chain input { type filter hook input priority 10; policy drop;
                tcp dport 22 accept }
        }
        table inet early {
            chain input { type filter hook input priority -10; policy accept; }
            chain guard { type filter hook input priority -10; policy accept;
                ip saddr 10.0.0.0/8 jump audit }
            chain audit { log prefix \"seen \" }
        }";
        let (rs, d) = drawn(ipt, nft, &packet(6, "10.1.1.1", 22));
        let v = path_only_view_named(&rs, &d.trace, "t", &d);
        let frames: Vec<&str> = v
            .frames
            .iter()
            .map(|f| f.label.as_str())
            .filter(|l| !l.is_empty())
            .collect();
        // Two base chains of `early` at one priority: the one made last
        // first, each a frame of its own; then iptables at 0, nft at 10.
        assert_eq!(
            frames,
            [
                "INPUT · table inet early",
                "INPUT · table inet early",
                "INPUT · table filter",
                "INPUT · table inet late",
            ]
        );
        let labels: Vec<&str> = v
            .edges
            .iter()
            .map(|e| e.label.as_str())
            .filter(|l| l.starts_with('#'))
            .collect();
        assert_eq!(
            labels,
            [
                "#1 ip saddr 10.0.0.0/8 jump audit",
                "#1 -j ACCEPT tcp dpt:22",
                "#1 tcp dport 22 accept"
            ]
        );
        // The policy of one base chain leads on to the next base chain
        // (`guard`, made last, ran first).
        let node = |id: &str| {
            v.nodes
                .iter()
                .position(|n| n.id == id)
                .unwrap_or_else(|| panic!("{id} not drawn"))
        };
        let policy = node("INPUT/inet early/guard [hook input priority -10] policy");
        let next = node("INPUT/inet early/input [hook input priority -10]");
        assert!(v.edges.iter().any(|e| e.from == policy && e.to == next));
        let full = trace_view_named(&rs, &d.trace, &ViewOptions::default(), &d).unwrap();
        let lit = full.lit_ids();
        for id in [
            "filter/INPUT",
            "inet late/input [hook input priority 10]",
            "inet early/audit",
        ] {
            assert!(lit.contains(&id), "{id} not lit in {lit:?}");
        }
    }
}
