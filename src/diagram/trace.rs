//! A trace drawn on the chain graph: which chains, rules and verdicts of
//! the view the packet went through, and the view worth drawing for it.

use std::collections::HashSet;

use super::{PathMark, View, ViewError, ViewOptions, view};
use crate::graph::{ChainGraph, EdgeKind, PlainNames, RuleNaming};
use crate::model::Ruleset;
use crate::trace::{Action, Trace};

impl Trace {
    /// The walk as marks on the chain graph of `rs` (the ruleset traced):
    /// every chain entered, every matched rule's edge to its target,
    /// policies applied, and returns to the calling chain. In walk order,
    /// without repeats.
    pub fn path_marks(&self, rs: &Ruleset) -> Vec<PathMark> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut push = |m: PathMark| {
            if seen.insert(m.clone()) {
                out.push(m);
            }
        };
        for (k, s) in self.steps.iter().enumerate() {
            let Some(table) = rs.tables.get(s.table) else {
                continue;
            };
            let Some(chain) = table.chains.get(s.chain) else {
                continue;
            };
            push(PathMark::Chain {
                table: table.name.clone(),
                chain: chain.name.clone(),
            });
            if !s.matched {
                continue;
            }
            let edge = |rule, kind, to| PathMark::Edge {
                table: table.name.clone(),
                chain: chain.name.clone(),
                rule,
                kind,
                to,
            };
            match (&s.action, s.rule) {
                (Action::Policy { .. }, _) => {
                    if let Some(p) = &chain.policy {
                        push(edge(None, EdgeKind::Policy, p.clone()));
                    }
                }
                (Action::Return | Action::FallOff, _) => {
                    // `-j RETURN` is an edge to the RETURN target first.
                    if let Some(t) = s
                        .rule
                        .and_then(|r| chain.rules.get(r))
                        .and_then(|r| r.target())
                    {
                        push(edge(s.rule, EdgeKind::Jump, t.name.into()));
                    }
                    // The caller is where the walk goes on in this table.
                    let next = self
                        .steps
                        .get(k + 1)
                        .filter(|n| n.table == s.table && n.hook == s.hook && n.chain != s.chain);
                    if let Some(caller) = next.and_then(|n| table.chains.get(n.chain)) {
                        push(edge(None, EdgeKind::Return, caller.name.clone()));
                    }
                }
                (_, Some(r)) => {
                    // A rule without target only counts: no edge.
                    if let Some(t) = chain.rules.get(r).and_then(|r| r.target()) {
                        let kind = if t.goto {
                            EdgeKind::Goto
                        } else {
                            EdgeKind::Jump
                        };
                        push(edge(Some(r), kind, t.name.into()));
                    }
                }
                (_, None) => {}
            }
        }
        out
    }

    /// `base` narrowed to what this walk concerns: the tables it went
    /// through (unless `base` names tables) and the chains reachable from
    /// the built-in chains it entered.
    pub fn view_options(&self, rs: &Ruleset, base: &ViewOptions) -> ViewOptions {
        let mut opts = base.clone();
        let mut tables: Vec<String> = Vec::new();
        let mut roots: Vec<(String, String)> = Vec::new();
        for s in &self.steps {
            let Some(t) = rs.tables.get(s.table) else {
                continue;
            };
            if !tables.iter().any(|n| *n == t.name) {
                tables.push(t.name.to_string());
            }
            if let Some(c) = t.chains.get(s.chain).filter(|c| c.builtin) {
                let root = (t.name.to_string(), c.name.to_string());
                if !roots.contains(&root) {
                    roots.push(root);
                }
            }
        }
        if opts.tables.is_empty() {
            opts.tables = tables;
        }
        opts.roots.extend(roots);
        // The path is lit on each chain's one box: no copies.
        opts.copies = Some(false);
        opts
    }
}

/// The chain graph of `rs` as a trace shows it: [`Trace::view_options`]
/// applied to `base`, and the packet's path highlighted.
pub fn trace_view(rs: &Ruleset, trace: &Trace, base: &ViewOptions) -> Result<View, ViewError> {
    trace_view_named(rs, trace, base, &PlainNames)
}

/// [`trace_view`], the rules taken named by `names` (an nft trace on the
/// drawing tables names its rules by their nft text).
pub fn trace_view_named(
    rs: &Ruleset,
    trace: &Trace,
    base: &ViewOptions,
    names: &dyn RuleNaming,
) -> Result<View, ViewError> {
    let g = ChainGraph::build(rs);
    let mut v = view(rs, &g, &trace.view_options(rs, base))?;
    // What the options filtered out is simply not drawn.
    let _ = v.highlight_named(rs, &trace.path_marks(rs), names);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{ParseOptions, parse_str};
    use crate::trace::{Packet, TraceOptions, Tracer};

    const RULES: &str = "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n\
        *filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:CHECK - [0:0]\n:SSH - [0:0]\n:OTHER - [0:0]\n\
        -A INPUT -j CHECK\n-A INPUT -p tcp -m tcp --dport 22 -g SSH\n\
        -A CHECK -s 192.0.2.0/24 -j RETURN\n-A CHECK -j LOG\n\
        -A SSH -s 10.0.0.0/8 -j ACCEPT\n-A FORWARD -j OTHER\n-A OTHER -j DROP\nCOMMIT\n";

    fn traced(src: &str) -> (Ruleset, Trace) {
        let rs = parse_str(RULES, &ParseOptions::strict("t"))
            .unwrap()
            .ruleset;
        let mut p = Packet::new(6, src.parse().unwrap(), "192.0.2.1".parse().unwrap());
        p.dport = 22;
        let opts = TraceOptions {
            local: vec!["192.0.2.1".parse().unwrap()],
            ..Default::default()
        };
        let t = Tracer::new(&rs).trace(&p, &opts);
        (rs, t)
    }

    #[test]
    fn return_goto_and_policy() {
        let (rs, t) = traced("192.0.2.9");
        let marks = t.path_marks(&rs);
        assert!(marks.contains(&PathMark::Edge {
            table: "filter".into(),
            chain: "CHECK".into(),
            rule: None,
            kind: EdgeKind::Return,
            to: "INPUT".into(),
        }));
        let v = trace_view(&rs, &t, &ViewOptions::default()).unwrap();
        // FORWARD and OTHER are not reachable from the chains this packet
        // entered; nat INPUT comes after filter INPUT, which dropped it.
        assert!(!v.nodes.iter().any(|n| n.id == "filter/OTHER"));
        assert!(!v.nodes.iter().any(|n| n.id == "nat/INPUT"));
        // Chains first, then the targets (one per caller group).
        assert_eq!(
            v.lit_ids(),
            [
                "nat/PREROUTING",
                "filter/INPUT",
                "filter/CHECK",
                "filter/SSH",
                "nat/ACCEPT",
                "filter/DROP",
                "filter/RETURN",
            ]
        );
        let lit: Vec<(EdgeKind, &str)> = v
            .edges
            .iter()
            .filter(|e| e.highlight)
            .map(|e| (e.kind, v.nodes[e.to].id.as_str()))
            .collect();
        assert!(lit.contains(&(EdgeKind::Goto, "filter/SSH")));
        assert!(lit.contains(&(EdgeKind::Return, "filter/INPUT")));
        // SSH falls off its end after a goto: INPUT's policy decides.
        assert!(lit.contains(&(EdgeKind::Policy, "filter/DROP")));
        assert!(!lit.contains(&(EdgeKind::Jump, "filter/ACCEPT")));
    }

    #[test]
    fn a_merged_edge_names_the_rule_taken() {
        // Three rules of INPUT lead to SSH and are drawn as one edge; the
        // packet takes the second.
        let text = "*filter\n:INPUT DROP [0:0]\n:SSH - [0:0]\n\
            -A INPUT -p tcp -m tcp --dport 22 -j SSH\n\
            -A INPUT -p tcp -m tcp --dport 2222 -j SSH\n\
            -A INPUT -p tcp -m tcp --dport 8022 -j SSH\n\
            -A SSH -j ACCEPT\nCOMMIT\n";
        let rs = parse_str(text, &ParseOptions::strict("t")).unwrap().ruleset;
        let mut p = Packet::new(6, "10.1.2.3".parse().unwrap(), "192.0.2.1".parse().unwrap());
        p.dport = 2222;
        let opts = TraceOptions {
            local: vec!["192.0.2.1".parse().unwrap()],
            ..Default::default()
        };
        let t = Tracer::new(&rs).trace(&p, &opts);
        for rules in [false, true] {
            let base = ViewOptions {
                rules,
                ..Default::default()
            };
            let v = trace_view(&rs, &t, &base).unwrap();
            let into_ssh: Vec<&crate::diagram::ViewEdge> = v
                .edges
                .iter()
                .filter(|e| v.nodes[e.to].id == "filter/SSH")
                .collect();
            if rules {
                // One edge per row: nothing merged, nothing renamed.
                assert_eq!(into_ssh.len(), 3);
                let lit: Vec<Option<usize>> = into_ssh
                    .iter()
                    .filter(|e| e.highlight)
                    .map(|e| e.from_row)
                    .collect();
                assert_eq!(lit, [Some(1)]);
                continue;
            }
            assert_eq!(into_ssh.len(), 1);
            let e = into_ssh[0];
            assert!(e.highlight && e.rules == 3);
            assert_eq!(e.label, "#2 -j SSH tcp dpt:2222 (+2 more)");
            assert!(
                e.title.starts_with(
                    "packet took line 5: -A INPUT -p tcp -m tcp --dport 2222 -j SSH\n"
                ),
                "{}",
                e.title
            );
            // The hover text still lists every rule of the edge.
            assert!(
                e.title
                    .contains("line 4: -A INPUT -p tcp -m tcp --dport 22 -j SSH")
            );
        }
        // Off a trace the merged edge keeps its usual label.
        let g = ChainGraph::build(&rs);
        let plain = view(&rs, &g, &ViewOptions::default()).unwrap();
        let e = plain
            .edges
            .iter()
            .find(|e| plain.nodes[e.to].id == "filter/SSH")
            .unwrap();
        assert_eq!(e.label, "tcp dpt:22 (+2 more)");
    }

    #[test]
    fn non_terminating_targets_are_on_the_path() {
        let (rs, t) = traced("10.1.2.3");
        let v = trace_view(&rs, &t, &ViewOptions::default()).unwrap();
        let lit = v.lit_ids();
        assert!(lit.contains(&"filter/LOG"), "{lit:?}");
        assert!(lit.contains(&"filter/ACCEPT"), "{lit:?}");
        assert!(!lit.contains(&"filter/DROP"), "{lit:?}");
    }
}
