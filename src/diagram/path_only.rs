//! `--path-only`: a drawing of nothing but what one packet went through,
//! to be read top to bottom: the packet, then each hook and table in the
//! order the kernel ran them (one frame each) with the chains entered and
//! the rules that moved the packet on, the routing decision, and the
//! verdict with the packet as it leaves.
//!
//! Only the chains the walk entered are looked at, so the drawing costs
//! the same on a dump of a hundred rules as on one of a hundred thousand.

use std::collections::HashMap;

use super::{ChainRef, View, ViewEdge, ViewFrame, ViewNode, ViewNodeKind, chain_look};
use crate::flow::Hook;
use crate::graph::{self, EdgeKind, Node, PlainNames, RuleNaming};
use crate::model::{Ruleset, Str, Table};

use crate::trace::{Action, Route, Step, Trace, Verdict};

/// The view `iptviz trace --path-only` draws: every hook and table the
/// walk went through as a frame, in walk order, holding the chains it
/// entered, the rules it took (labelled `#N -j TARGET summary`), returns,
/// policies, and the targets reached (NAT targets with the change they
/// made). A start node with the packet, the routing decision, and a final
/// verdict node join the frames. Everything is on the path, so everything
/// is highlighted.
pub fn path_only_view(rs: &Ruleset, trace: &Trace, title: &str) -> View {
    path_only_view_named(rs, trace, title, &PlainNames)
}

/// [`path_only_view`], the rules taken named by `names` (an nft trace on
/// the drawing tables names its rules by their nft text).
pub fn path_only_view_named(
    rs: &Ruleset,
    trace: &Trace,
    title: &str,
    names: &dyn RuleNaming,
) -> View {
    let mut s = Story {
        v: View {
            title: title.to_string(),
            ..Default::default()
        },
        names,
    };
    let outgoing = trace.route == Route::Output;
    s.frame("", "");
    let mut last = s.node(point(
        "packet/in",
        if outgoing {
            "sent by this host"
        } else {
            "packet in"
        },
        vec![trace.input.addresses(), trace.input.context()],
        format!("the packet as given: {}", trace.input),
    ));
    for &hook in &trace.hooks {
        if matches!(hook, Hook::Input | Hook::Forward) {
            let (said, meaning) = if hook == Hook::Input {
                ("for this host", "delivered to a local socket (INPUT)")
            } else {
                ("forwarded", "routed through this host (FORWARD)")
            };
            s.frame("", "");
            let r = s.node(point(
                "packet/routing",
                "routing decision",
                vec![said.to_string()],
                format!("after PREROUTING (and any DNAT there): {meaning}"),
            ));
            s.edge(last, r, EdgeKind::Jump, String::new(), String::new());
            last = r;
        }
        // The tables of one hook follow each other in the steps.
        let mut k = 0;
        let steps = &trace.steps;
        while k < steps.len() {
            if steps[k].hook != hook {
                k += 1;
                continue;
            }
            let t = steps[k].table;
            // An nft table may have several base chains at one hook: each
            // is a table run of its own.
            let base = steps[k].chain;
            let other_base = |x: &Step| {
                x.chain != base
                    && rs
                        .tables
                        .get(t)
                        .and_then(|tb| tb.chains.get(x.chain))
                        .is_some_and(|c| c.builtin)
            };
            let len = steps[k..]
                .iter()
                .position(|x| x.hook != hook || x.table != t || other_base(x))
                .unwrap_or(steps.len() - k);
            if let Some(table) = rs.tables.get(t) {
                let (first, end) = s.segment(hook, table, &steps[k..k + len]);
                s.edge(last, first, EdgeKind::Jump, String::new(), String::new());
                last = end;
            }
            k += len;
        }
    }
    s.frame("", "");
    let fin = s.node(verdict_node(rs, trace));
    s.edge(last, fin, EdgeKind::Jump, String::new(), String::new());
    s.v
}

/// The view under construction; nodes go into the last frame opened.
struct Story<'n> {
    v: View,
    names: &'n dyn RuleNaming,
}

impl Story<'_> {
    fn frame(&mut self, label: &str, table: &str) {
        self.v.frames.push(ViewFrame {
            label: label.to_string(),
            table: table.into(),
            nodes: Vec::new(),
        });
    }

    fn node(&mut self, mut n: ViewNode) -> usize {
        n.highlight = true;
        let i = self.v.nodes.len();
        self.v.nodes.push(n);
        if let Some(f) = self.v.frames.last_mut() {
            f.nodes.push(i);
        }
        i
    }

    fn edge(&mut self, from: usize, to: usize, kind: EdgeKind, label: String, title: String) {
        self.v.edges.push(ViewEdge {
            from,
            to,
            kind,
            from_row: None,
            label,
            title,
            rules: usize::from(kind != EdgeKind::Return),
            packets: None,
            weight: 1.0,
            highlight: true,
        });
    }

    /// One table at one hook: its frame, the chains entered and the rules
    /// taken. Returns the built-in chain's node (where the packet enters)
    /// and the node where it leaves the table (its verdict).
    fn segment(&mut self, hook: Hook, table: &Table, steps: &[Step]) -> (usize, usize) {
        let hook_name = hook.chain();
        self.frame(&format!("{hook_name} · table {}", table.name), &table.name);
        let mut chains: HashMap<usize, usize> = HashMap::new();
        let mut chain_node = |s: &mut Story, c: usize| -> Option<usize> {
            if let Some(&n) = chains.get(&c) {
                return Some(n);
            }
            let chain = table.chains.get(c)?;
            let (kind, lines, title) = chain_look(&Node::chain(&table.name, chain), false);
            let n = s.node(ViewNode {
                id: format!("{hook_name}/{}/{}", table.name, chain.name),
                kind,
                table: table.name.clone(),
                lines,
                rows: Vec::new(),
                title,
                members: Vec::new(),
                highlight: true,
                chain: Some(ChainRef {
                    table: table.name.clone(),
                    chain: chain.name.clone(),
                }),
                group: None,
            });
            chains.insert(c, n);
            Some(n)
        };
        let Some(first) = steps.first().and_then(|s| chain_node(self, s.chain)) else {
            // Steps always name chains of their table; nothing to draw otherwise.
            let n = self.node(point(
                &format!("{hook_name}/{}", table.name),
                &table.name,
                Vec::new(),
                String::new(),
            ));
            return (n, n);
        };
        let mut end = first;
        for (i, st) in steps.iter().enumerate() {
            if !st.matched {
                continue;
            }
            let Some(from) = chain_node(self, st.chain) else {
                continue;
            };
            let chain = &table.chains[st.chain];
            let rule = st.rule.and_then(|r| Some((r, chain.rules.get(r)?)));
            let label = rule
                .map(|(r, x)| self.names.label(&table.name, &chain.name, r, x))
                .unwrap_or_default();
            let mut title = match rule {
                Some((r, x)) => self.names.text(&table.name, &chain.name, r, x),
                None => String::new(),
            };
            for n in &st.notes {
                title.push_str(&format!("\nassumption: {n}"));
            }
            // Where the walk goes on in this table (a return's caller).
            let next = steps
                .get(i + 1)
                .filter(|n| n.chain != st.chain)
                .map(|n| n.chain);
            let target = |kind: ViewNodeKind, lines: Vec<String>| {
                let name = lines.first().cloned().unwrap_or_default();
                // Chain names hold no spaces: these ids never meet a chain's.
                let which = st
                    .rule
                    .map_or("policy".to_string(), |r| format!("#{}", r + 1));
                ViewNode {
                    id: format!("{hook_name}/{}/{} {which}", table.name, chain.name),
                    kind,
                    table: table.name.clone(),
                    title: format!("target {name} in table {}", table.name),
                    lines,
                    rows: Vec::new(),
                    members: Vec::new(),
                    highlight: true,
                    chain: None,
                    group: None,
                }
            };
            // A rule drawn without a target (an nft `log` or `meta mark
            // set`) is named after what it did.
            let target_name = rule
                .and_then(|(_, x)| x.target())
                .map(|t| t.name.to_string())
                .unwrap_or_else(|| effect_name(&st.action));
            let verdict_kind = |name: &str| ViewNodeKind::Target(graph::Verdict::of(name));
            match &st.action {
                Action::Jump { chain: c } | Action::Goto { chain: c } => {
                    let kind = if matches!(st.action, Action::Goto { .. }) {
                        EdgeKind::Goto
                    } else {
                        EdgeKind::Jump
                    };
                    if let Some(to) = chain_node(self, *c) {
                        self.edge(from, to, kind, label, title);
                    }
                }
                Action::Return | Action::FallOff => {
                    // `-j RETURN` is drawn as the full view draws it: an
                    // edge to the RETURN target, named after the rule, and
                    // an unlabelled return to the caller.
                    if st.rule.is_some() {
                        let to = self.node(target(verdict_kind("RETURN"), vec!["RETURN".into()]));
                        self.edge(from, to, EdgeKind::Jump, label, title);
                    }
                    // Without a caller (RETURN in a built-in chain) the policy comes next.
                    if let Some(c) = next
                        && let Some(to) = chain_node(self, c)
                    {
                        let title = format!("{} returns to {}", chain.name, table.chains[c].name);
                        self.edge(from, to, EdgeKind::Return, String::new(), title);
                    }
                }
                Action::Policy { verdict } => {
                    let name = chain
                        .policy
                        .as_deref()
                        .map_or_else(|| verdict.to_string(), str::to_string);
                    let to = self.node(target(verdict_kind(&name), vec![name.clone()]));
                    let title = self.names.policy(&table.name, chain, &name);
                    self.edge(from, to, EdgeKind::Policy, "policy".into(), title);
                    end = to;
                }
                Action::None => {}
                action => {
                    let (kind, detail) = match action {
                        Action::Undefined { .. } => {
                            (ViewNodeKind::Undefined, Some("undefined!".into()))
                        }
                        Action::Nat { change, .. } => {
                            (verdict_kind(&target_name), Some(change.clone()))
                        }
                        Action::Mark { from, to } => (
                            verdict_kind(&target_name),
                            Some(format!("mark {from:#x} → {to:#x}")),
                        ),
                        Action::Connmark {
                            ct_from,
                            ct_to,
                            mark,
                        } => (
                            verdict_kind(&target_name),
                            Some(format!("ctmark {ct_from:#x} → {ct_to:#x}, mark {mark:#x}")),
                        ),
                        Action::Notrack => (verdict_kind(&target_name), Some("untracked".into())),
                        Action::Rewrite { change, .. } => {
                            (verdict_kind(&target_name), Some(change.clone()))
                        }
                        Action::Extension { verdict, .. } => (
                            verdict_kind(&target_name),
                            Some(format!("{verdict} in this table")),
                        ),
                        _ => (verdict_kind(&target_name), None),
                    };
                    let mut lines = vec![target_name.clone()];
                    lines.extend(detail);
                    let to = self.node(target(kind, lines));
                    self.edge(from, to, EdgeKind::Jump, label, title);
                    if matches!(
                        action,
                        Action::Verdict { .. } | Action::Extension { .. } | Action::Nat { .. }
                    ) {
                        end = to;
                    }
                }
            }
        }
        (first, end)
    }
}

/// The name of what a step did, for a rule drawn without a target.
fn effect_name(a: &Action) -> String {
    match a {
        Action::Continue { target }
        | Action::Rewrite { target, .. }
        | Action::Nat { target, .. }
        | Action::Extension { target, .. } => target.clone(),
        Action::Mark { .. } => "MARK".into(),
        Action::Connmark { .. } => "CONNMARK".into(),
        Action::Notrack => "NOTRACK".into(),
        Action::Verdict { verdict } => verdict.to_string(),
        _ => String::new(),
    }
}

/// A point of the story outside any table: the packet coming in, routing.
fn point(id: &str, name: &str, detail: Vec<String>, title: String) -> ViewNode {
    let mut lines = vec![name.to_string()];
    lines.extend(detail.into_iter().filter(|l| !l.is_empty()));
    ViewNode {
        id: id.to_string(),
        kind: ViewNodeKind::Point,
        table: Str::default(),
        lines,
        rows: Vec::new(),
        title,
        members: Vec::new(),
        highlight: true,
        chain: None,
        group: None,
    }
}

/// The end of the story: the verdict, where the packet went, and how it
/// leaves when NAT or marks changed it.
fn verdict_node(rs: &Ruleset, trace: &Trace) -> ViewNode {
    let v = trace.verdict;
    let kind = graph::Verdict::of(&v.to_string());
    let mut lines = vec![v.to_string()];
    let title = if v == Verdict::Accept {
        lines.push(
            match trace.route {
                Route::Local => "delivered to this host",
                Route::Forward => "forwarded",
                Route::Output => "sent by this host",
            }
            .to_string(),
        );
        let (was, is) = (&trace.input, &trace.output);
        if is.addresses() != was.addresses() {
            lines.push(format!("leaves as {}", is.addresses()));
        }
        if is.context() != was.context() {
            lines.push(is.context());
        }
        format!("verdict ACCEPT; the packet leaves as {}", trace.output)
    } else {
        let at = trace
            .decided_by
            .and_then(|i| trace.steps.get(i))
            .and_then(|s| Some((s.hook, &rs.tables.get(s.table)?.name)));
        if let Some((hook, table)) = at {
            lines.push(format!("in {} · table {table}", hook.chain()));
        }
        format!("verdict {v}: the packet stops here")
    };
    ViewNode {
        kind: ViewNodeKind::Target(kind),
        lines,
        ..point("packet/verdict", "", Vec::new(), title)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{Choice, layout};
    use crate::parse::{ParseOptions, parse_str};
    use crate::trace::{Packet, TraceOptions, Tracer};

    const RULES: &str = "*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n\
        :OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp -j MARK --set-mark 0x1\nCOMMIT\n\
        *nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n\
        :WEB - [0:0]\n-A PREROUTING -p tcp -m tcp --dport 80 -j WEB\n\
        -A WEB -p tcp -j DNAT --to-destination 192.0.2.1:8080\nCOMMIT\n\
        *filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:CHECK - [0:0]\n:SSH - [0:0]\n\
        :OTHER - [0:0]\n-A INPUT -j CHECK\n-A INPUT -p tcp -m tcp --dport 8080 -g SSH\n\
        -A CHECK -s 198.51.100.0/24 -j RETURN\n-A CHECK -j LOG\n-A SSH -s 10.0.0.0/8 -j ACCEPT\n\
        -A FORWARD -j OTHER\n-A OTHER -j DROP\nCOMMIT\n";

    fn story(src: &str, dport: u16) -> View {
        let rs = parse_str(RULES, &ParseOptions::strict("t"))
            .unwrap()
            .ruleset;
        let mut p = Packet::new(6, src.parse().unwrap(), "192.0.2.1".parse().unwrap());
        p.sport = 40000;
        p.dport = dport;
        let opts = TraceOptions {
            local: vec!["192.0.2.1".parse().unwrap()],
            ..Default::default()
        };
        let t = Tracer::new(&rs).trace(&p, &opts);
        path_only_view(&rs, &t, "t")
    }

    fn node<'v>(v: &'v View, id: &str) -> &'v ViewNode {
        v.nodes
            .iter()
            .find(|n| n.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    fn edges(v: &View) -> Vec<(&str, &str, EdgeKind, &str)> {
        v.edges
            .iter()
            .map(|e| {
                (
                    v.nodes[e.from].id.as_str(),
                    v.nodes[e.to].id.as_str(),
                    e.kind,
                    e.label.as_str(),
                )
            })
            .collect()
    }

    #[test]
    fn accepted_after_dnat_reads_hook_by_hook() {
        let v = story("10.1.2.3", 80);
        let frames: Vec<&str> = v.frames.iter().map(|f| f.label.as_str()).collect();
        assert_eq!(
            frames,
            [
                "",
                "PREROUTING · table mangle",
                "PREROUTING · table nat",
                "",
                "INPUT · table mangle",
                "INPUT · table filter",
                "INPUT · table nat",
                "",
            ]
        );
        // Every node is in exactly one frame.
        let mut seen: Vec<usize> = v.frames.iter().flat_map(|f| f.nodes.clone()).collect();
        seen.sort();
        assert_eq!(seen, (0..v.nodes.len()).collect::<Vec<_>>());
        let chains: Vec<&str> = v
            .nodes
            .iter()
            .filter(|n| matches!(n.kind, ViewNodeKind::Builtin | ViewNodeKind::User))
            .map(|n| n.id.as_str())
            .collect();
        assert_eq!(
            chains,
            [
                "PREROUTING/mangle/PREROUTING",
                "PREROUTING/nat/PREROUTING",
                "PREROUTING/nat/WEB",
                "INPUT/mangle/INPUT",
                "INPUT/filter/INPUT",
                "INPUT/filter/CHECK",
                "INPUT/filter/SSH",
                "INPUT/nat/INPUT",
            ]
        );
        let e = edges(&v);
        for want in [
            (
                "packet/in",
                "PREROUTING/mangle/PREROUTING",
                EdgeKind::Jump,
                "",
            ),
            (
                "PREROUTING/nat/PREROUTING",
                "PREROUTING/nat/WEB",
                EdgeKind::Jump,
                "#1 -j WEB tcp dpt:80",
            ),
            (
                "PREROUTING/nat/WEB #1",
                "packet/routing",
                EdgeKind::Jump,
                "",
            ),
            (
                "INPUT/filter/INPUT",
                "INPUT/filter/CHECK",
                EdgeKind::Jump,
                "#1 -j CHECK",
            ),
            (
                "INPUT/filter/CHECK",
                "INPUT/filter/CHECK #2",
                EdgeKind::Jump,
                "#2 -j LOG",
            ),
            (
                "INPUT/filter/CHECK",
                "INPUT/filter/INPUT",
                EdgeKind::Return,
                "",
            ),
            // The goto is tested against the port DNAT wrote.
            (
                "INPUT/filter/INPUT",
                "INPUT/filter/SSH",
                EdgeKind::Goto,
                "#2 -g SSH tcp dpt:8080",
            ),
            (
                "INPUT/filter/SSH",
                "INPUT/filter/SSH #1",
                EdgeKind::Jump,
                "#1 -j ACCEPT -s 10.0.0.0/8",
            ),
            ("INPUT/filter/SSH #1", "INPUT/nat/INPUT", EdgeKind::Jump, ""),
            (
                "INPUT/nat/INPUT",
                "INPUT/nat/INPUT policy",
                EdgeKind::Policy,
                "policy",
            ),
            (
                "INPUT/nat/INPUT policy",
                "packet/verdict",
                EdgeKind::Jump,
                "",
            ),
        ] {
            assert!(e.contains(&want), "{want:?} not in {e:#?}");
        }
        assert_eq!(
            node(&v, "PREROUTING/nat/WEB #1").lines,
            ["DNAT", "dst 192.0.2.1:8080"]
        );
        assert_eq!(
            node(&v, "PREROUTING/mangle/PREROUTING #1").lines,
            ["MARK", "mark 0x0 → 0x1"]
        );
        assert_eq!(node(&v, "packet/routing").lines[1], "for this host");
        assert_eq!(
            node(&v, "packet/verdict").lines,
            [
                "ACCEPT",
                "delivered to this host",
                "leaves as tcp 10.1.2.3:40000 -> 192.0.2.1:8080",
                "NEW mark 0x1"
            ]
        );
        assert!(v.nodes.iter().all(|n| n.highlight));
        assert!(v.edges.iter().all(|e| e.highlight));
    }

    #[test]
    fn dropped_by_policy_after_a_return() {
        let v = story("198.51.100.9", 22);
        let e = edges(&v);
        assert!(e.contains(&(
            "INPUT/filter/CHECK",
            "INPUT/filter/CHECK #1",
            EdgeKind::Jump,
            "#1 -j RETURN -s 198.51.100.0/24"
        )));
        assert!(e.contains(&(
            "INPUT/filter/CHECK",
            "INPUT/filter/INPUT",
            EdgeKind::Return,
            ""
        )));
        assert_eq!(
            node(&v, "INPUT/filter/CHECK #1").kind,
            ViewNodeKind::Target(graph::Verdict::Return)
        );
        assert!(e.contains(&(
            "INPUT/filter/INPUT",
            "INPUT/filter/INPUT policy",
            EdgeKind::Policy,
            "policy"
        )));
        assert_eq!(
            node(&v, "INPUT/filter/INPUT policy").kind,
            ViewNodeKind::Target(graph::Verdict::Drop)
        );
        // Stopped in filter: nat INPUT never ran, nor did the DNAT chain.
        assert!(!v.frames.iter().any(|f| f.label == "INPUT · table nat"));
        assert!(!v.nodes.iter().any(|n| n.id.ends_with("/WEB")));
        assert_eq!(
            node(&v, "packet/verdict").lines,
            ["DROP", "in INPUT · table filter"]
        );
    }

    #[test]
    fn frames_stack_in_walk_order() {
        let v = story("10.1.2.3", 80);
        for choice in [Choice::Auto, Choice::Layered] {
            let l = layout(&v, choice);
            let labelled = v.frames.iter().filter(|f| !f.label.is_empty()).count();
            assert_eq!(l.clusters.len(), labelled);
            let mut bottom = f64::MIN;
            let mut clusters = l.clusters.iter();
            for f in &v.frames {
                let top = f
                    .nodes
                    .iter()
                    .map(|&i| l.nodes[i].y)
                    .fold(f64::MAX, f64::min);
                assert!(
                    top > bottom,
                    "{choice:?}: frame {:?} overlaps the one above",
                    f.label
                );
                bottom = f
                    .nodes
                    .iter()
                    .map(|&i| l.nodes[i].y + l.nodes[i].h)
                    .fold(f64::MIN, f64::max);
                if f.label.is_empty() {
                    continue;
                }
                let c = clusters.next().expect("a cluster per labelled frame");
                assert_eq!(c.label, f.label);
                for &i in &f.nodes {
                    let b = l.nodes[i];
                    assert!(
                        b.x >= c.bbox.x
                            && b.y >= c.bbox.y
                            && b.x + b.w <= c.bbox.x + c.bbox.w
                            && b.y + b.h <= c.bbox.y + c.bbox.h,
                        "{choice:?}: {} sticks out of {:?}",
                        v.nodes[i].id,
                        c.label
                    );
                }
            }
            // Every edge is drawn, those between frames as one curve.
            for (e, p) in v.edges.iter().zip(&l.edges) {
                assert!(p.points.len() >= 2, "{e:?} has no path");
            }
        }
    }
}
