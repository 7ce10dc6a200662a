//! Highlighting a path (a traced packet's walk) on a drawn [`View`]: the
//! path is given by names, as the chain graph knows it, and found again
//! in the view whatever was collapsed, split or merged there.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::View;
use super::chains::MAX_ROWS;
use crate::graph::{EdgeKind, PlainNames, RuleNaming};
use crate::model::{Ruleset, Str};

/// One element of a path through the chain graph, by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathMark {
    /// A chain the path went through.
    Chain {
        /// Table name.
        table: Str,
        /// Chain name.
        chain: Str,
    },
    /// A rule, policy or return the path took, and where it led.
    Edge {
        /// Table name.
        table: Str,
        /// Chain the rule is in (for a return: the chain returning).
        chain: Str,
        /// 0-based rule index; `None` for a policy or a return.
        rule: Option<usize>,
        /// Call, goto, policy or return.
        kind: EdgeKind,
        /// Chain or target name the edge leads to.
        to: Str,
    },
}

/// The row a rule is drawn in (rules past the last row share the "… more" row).
fn row(rule: Option<usize>) -> Option<usize> {
    rule.map(|r| r.min(MAX_ROWS))
}

/// Rules a path took over one merged edge that its label and hover text
/// name one by one.
const MAX_NAMED: usize = 8;

/// Where each chain, target and edge of a view is drawn, found by name:
/// kept apart from the view, so that the desktop app, which keeps its own
/// copy of the picture, lights a path exactly where the SVG does.
#[derive(Debug, Clone, Default)]
pub struct PathIndex {
    /// [`super::ViewNode::id`] of each node.
    ids: Vec<String>,
    by_id: HashMap<String, usize>,
    /// `(table, chain)` of every collapsed chain to its group node.
    member: HashMap<(Str, Str), usize>,
    /// Edges by their ends: a path of 100,000 jumps must not scan every
    /// edge for each of its steps.
    by_ends: HashMap<(usize, usize), Vec<usize>>,
    /// Kind and rule row of each edge.
    edges: Vec<(EdgeKind, Option<usize>)>,
    /// Nodes split targets are drawn as, by source: `(from, to)` of every
    /// edge to a node whose id has an `@`.
    split_from: HashMap<usize, Vec<usize>>,
}

/// What a path lights in a view: indices into its nodes, edges and rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PathLights {
    /// Nodes entered, and both ends of every edge taken (with repeats).
    pub nodes: Vec<usize>,
    /// Edges taken (calls, gotos, verdicts, policies, returns).
    pub edges: Vec<usize>,
    /// `(node, row)` of the rules taken, in `--rules` views.
    pub rows: Vec<(usize, usize)>,
    /// Marks the view does not draw: chains filtered out, or an edge
    /// inside one collapsed group.
    pub missing: Vec<PathMark>,
    /// `(edge, index of the mark)` for each rule taken over a lit edge.
    taken: Vec<(usize, usize)>,
}

impl PathIndex {
    /// The index of `view`'s nodes and edges.
    pub fn new(view: &View) -> Self {
        let mut by_id = HashMap::with_capacity(view.nodes.len());
        let mut member = HashMap::new();
        for (i, n) in view.nodes.iter().enumerate() {
            by_id.insert(n.id.clone(), i);
            for m in &n.members {
                member.insert((n.table.clone(), m.clone()), i);
            }
        }
        let mut by_ends: HashMap<(usize, usize), Vec<usize>> = HashMap::new();
        let mut split_from: HashMap<usize, Vec<usize>> = HashMap::new();
        for (i, e) in view.edges.iter().enumerate() {
            by_ends.entry((e.from, e.to)).or_default().push(i);
            if view.nodes[e.to].id.contains('@') {
                split_from.entry(e.from).or_default().push(e.to);
            }
        }
        PathIndex {
            ids: view.nodes.iter().map(|n| n.id.clone()).collect(),
            by_id,
            member,
            by_ends,
            edges: view.edges.iter().map(|e| (e.kind, e.from_row)).collect(),
            split_from,
        }
    }

    /// The node showing `name` of `table`: its own box or its group's.
    fn node(&self, table: &str, name: &str) -> Option<usize> {
        self.by_id
            .get(format!("{table}/{name}").as_str())
            .or_else(|| self.member.get(&(Str::from(table), Str::from(name))))
            .copied()
    }

    /// The node `name` as reached from node `from`: targets may be drawn
    /// once per calling chain or per group of chains that call each other
    /// (`table/NAME@caller`, the caller being the group's first chain,
    /// not always `from`), the first group's copy keeping the plain id.
    fn node_from(&self, table: &str, name: &str, from: usize) -> Option<usize> {
        let split = format!("{table}/{name}@{}", self.ids[from]);
        if let Some(&n) = self.by_id.get(split.as_str()) {
            return Some(n);
        }
        let plain = self.node(table, name);
        if plain.is_some_and(|p| self.by_ends.contains_key(&(from, p))) {
            return plain;
        }
        let prefix = format!("{table}/{name}@");
        self.split_from
            .get(&from)
            .and_then(|to| {
                to.iter()
                    .copied()
                    .find(|&t| self.ids[t].starts_with(&prefix))
            })
            .or(plain)
    }

    fn edge(&self, from: usize, to: usize, kind: EdgeKind, rule: Option<usize>) -> Option<usize> {
        let row = row(rule);
        self.by_ends.get(&(from, to))?.iter().copied().find(|&i| {
            let (k, from_row) = self.edges[i];
            k == kind && (from_row.is_none() || from_row == row)
        })
    }

    /// Where `path` is drawn: the nodes, edges and rule rows it lights.
    pub fn lights(&self, path: &[PathMark]) -> PathLights {
        let mut out = PathLights::default();
        for (mi, m) in path.iter().enumerate() {
            match m {
                PathMark::Chain { table, chain } => match self.node(table, chain) {
                    Some(n) => out.nodes.push(n),
                    None => out.missing.push(m.clone()),
                },
                PathMark::Edge {
                    table,
                    chain,
                    rule,
                    kind,
                    to,
                } => {
                    let ends = self
                        .node(table, chain)
                        .and_then(|f| Some((f, self.node_from(table, to, f)?)));
                    let Some((f, t)) = ends else {
                        out.missing.push(m.clone());
                        continue;
                    };
                    out.nodes.extend([f, t]);
                    if let Some(r) = row(*rule) {
                        out.rows.push((f, r));
                    }
                    match self.edge(f, t, *kind, *rule) {
                        Some(e) => {
                            out.edges.push(e);
                            if rule.is_some() {
                                out.taken.push((e, mi));
                            }
                        }
                        None => out.missing.push(m.clone()),
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
impl View {
    /// Ids of the highlighted nodes, in view order (tests of the trace
    /// drawings).
    pub(crate) fn lit_ids(&self) -> Vec<&str> {
        self.nodes
            .iter()
            .filter(|n| n.highlight)
            .map(|n| n.id.as_str())
            .collect()
    }
}

impl View {
    /// Highlights the nodes and edges of `path` (an edge also lights up
    /// both its ends, and the rule's row in `--rules` mode). An edge drawn
    /// for several rules is relabelled after the rule the path took, looked
    /// up in `rs` (the ruleset the view was made from). Returns the marks
    /// this view does not draw: chains filtered out, or an edge inside one
    /// collapsed group.
    pub fn highlight(&mut self, rs: &Ruleset, path: &[PathMark]) -> Vec<PathMark> {
        self.highlight_named(rs, path, &PlainNames)
    }

    /// [`View::highlight`], the rules taken named by `names`.
    pub fn highlight_named(
        &mut self,
        rs: &Ruleset,
        path: &[PathMark],
        names: &dyn RuleNaming,
    ) -> Vec<PathMark> {
        let PathLights {
            nodes,
            edges,
            rows,
            missing,
            taken: lit,
        } = PathIndex::new(self).lights(path);
        // Rules taken over each lit edge: (table, chain, rule index).
        let mut taken: BTreeMap<usize, BTreeSet<(&str, &str, usize)>> = BTreeMap::new();
        for (e, mi) in lit {
            if let PathMark::Edge {
                table,
                chain,
                rule: Some(r),
                ..
            } = &path[mi]
            {
                taken.entry(e).or_default().insert((table, chain, *r));
            }
        }
        for n in nodes {
            self.nodes[n].highlight = true;
        }
        for e in edges {
            self.edges[e].highlight = true;
        }
        for (n, r) in rows {
            // Chains folded into a group have no rows of their own.
            if let Some(row) = self.nodes[n].rows.get_mut(r) {
                row.highlight = true;
            }
        }
        for (e, rules) in taken {
            self.name_taken_rules(rs, e, &rules, names);
        }
        missing
    }

    /// Relabels edge `e`, merged from several rules, after the ones the
    /// path took: its label names them instead of the first rule merged,
    /// and its hover text starts with their full text.
    fn name_taken_rules(
        &mut self,
        rs: &Ruleset,
        e: usize,
        taken: &BTreeSet<(&str, &str, usize)>,
        names: &dyn RuleNaming,
    ) {
        let edge = &mut self.edges[e];
        let lone = taken
            .first()
            .is_some_and(|&(t, _, _)| names.label_every_edge(t));
        if edge.rules < 2 && !lone {
            return;
        }
        let found: Vec<(&str, &str, usize, &crate::model::Rule)> = taken
            .iter()
            .filter_map(|&(t, c, i)| Some((t, c, i, rs.table(t)?.chain(c)?.rules.get(i)?)))
            .collect();
        let Some(&(t, c, first, rule)) = found.first() else {
            return;
        };
        let others = edge.rules.saturating_sub(found.len());
        let mut label = if found.len() == 1 {
            names.label(t, c, first, rule)
        } else {
            // A walk through a million-chain fan-out takes a million rules
            // of one merged edge: name a few, count the rest.
            let numbers: Vec<String> = found
                .iter()
                .take(MAX_NAMED)
                .map(|&(t, c, i, _)| format!("#{}", names.number(t, c, i)))
                .collect();
            let mut l = numbers.join(", ");
            if found.len() > MAX_NAMED {
                l.push_str(&format!(", … {} taken", found.len()));
            }
            l
        };
        if others > 0 {
            label.push_str(&format!(" (+{others} more)"));
        }
        if let Some(p) = edge.packets.filter(|&p| p > 0) {
            label.push_str(&format!(" [{p} pkts]"));
        }
        edge.label = label;
        let mut title: String = found
            .iter()
            .take(MAX_NAMED)
            .map(|&(t, c, i, r)| format!("packet took {}\n", names.text(t, c, i, r)))
            .collect();
        if found.len() > MAX_NAMED {
            title.push_str(&format!(
                "packet took {} more of these rules\n",
                found.len() - MAX_NAMED
            ));
        }
        title.push_str(&edge.title);
        edge.title = title;
    }

    /// Whether anything is highlighted (renderers then dim the rest).
    pub fn has_highlight(&self) -> bool {
        self.nodes.iter().any(|n| n.highlight) || self.edges.iter().any(|e| e.highlight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagram::{ViewOptions, view};
    use crate::graph::ChainGraph;
    use crate::parse::{ParseOptions, parse_str};

    const RULES: &str = "*filter\n:INPUT DROP [0:0]\n:SSH - [0:0]\n:WEB - [0:0]\n\
        -A INPUT -p tcp -m tcp --dport 22 -j SSH\n-A INPUT -p tcp -m tcp --dport 80 -j WEB\n\
        -A SSH -s 10.0.0.0/8 -j ACCEPT\n-A WEB -j ACCEPT\nCOMMIT\n";

    fn mark_edge(chain: &str, rule: Option<usize>, kind: EdgeKind, to: &str) -> PathMark {
        PathMark::Edge {
            table: "filter".into(),
            chain: chain.into(),
            rule,
            kind,
            to: to.into(),
        }
    }

    fn lit(opts: &ViewOptions, path: &[PathMark]) -> (View, Vec<PathMark>) {
        let p = parse_str(RULES, &ParseOptions::lenient("t")).unwrap();
        let g = ChainGraph::build(&p.ruleset);
        let mut v = view(&p.ruleset, &g, opts).unwrap();
        let missing = v.highlight(&p.ruleset, path);
        (v, missing)
    }

    /// A small view draws a verdict once per group of chains that call
    /// each other, named after the group's first chain: a rule of another
    /// chain of that group reaching the verdict lit nothing, its copy
    /// being looked for under its own chain's name (the desktop app's
    /// trace of an nft zone chain showed it).
    #[test]
    fn a_verdict_shared_by_a_group_of_chains_is_lit_from_any_of_them() {
        let text = "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:A - [0:0]\n:B - [0:0]\n\
            -A INPUT -j A\n-A A -j ACCEPT\n-A FORWARD -j B\n-A B -j ACCEPT\nCOMMIT\n";
        let p = parse_str(text, &ParseOptions::lenient("t")).unwrap();
        let g = ChainGraph::build(&p.ruleset);
        let mut v = view(&p.ruleset, &g, &ViewOptions::default()).unwrap();
        let copies: Vec<&str> = v
            .nodes
            .iter()
            .filter(|n| n.id.starts_with("filter/ACCEPT"))
            .map(|n| n.id.as_str())
            .collect();
        assert_eq!(copies, ["filter/ACCEPT", "filter/ACCEPT@filter/FORWARD"]);
        let missing = v.highlight(
            &p.ruleset,
            &[
                mark_edge("FORWARD", Some(0), EdgeKind::Jump, "B"),
                mark_edge("B", Some(0), EdgeKind::Jump, "ACCEPT"),
            ],
        );
        assert!(missing.is_empty(), "{missing:?}");
        let lit: Vec<(&str, &str)> = v
            .edges
            .iter()
            .filter(|e| e.highlight)
            .map(|e| (v.nodes[e.from].id.as_str(), v.nodes[e.to].id.as_str()))
            .collect();
        assert_eq!(
            lit,
            [
                ("filter/FORWARD", "filter/B"),
                ("filter/B", "filter/ACCEPT@filter/FORWARD")
            ]
        );
    }

    #[test]
    fn marks_nodes_and_edges_by_name() {
        let path = [
            PathMark::Chain {
                table: "filter".into(),
                chain: "INPUT".into(),
            },
            mark_edge("INPUT", Some(0), EdgeKind::Jump, "SSH"),
            mark_edge("SSH", Some(0), EdgeKind::Jump, "ACCEPT"),
        ];
        for rules in [false, true] {
            let opts = ViewOptions {
                rules,
                ..Default::default()
            };
            let (v, missing) = lit(&opts, &path);
            assert!(missing.is_empty(), "{missing:?}");
            let lit: Vec<&str> = v
                .nodes
                .iter()
                .filter(|n| n.highlight)
                .map(|n| n.id.as_str())
                .collect();
            assert_eq!(lit, ["filter/INPUT", "filter/SSH", "filter/ACCEPT"]);
            assert_eq!(v.edges.iter().filter(|e| e.highlight).count(), 2);
            if rules {
                let input = &v.nodes[0];
                let lit: Vec<bool> = input.rows.iter().map(|r| r.highlight).collect();
                assert_eq!(lit, [true, false]);
            }
            assert!(v.has_highlight());
        }
    }

    #[test]
    fn groups_and_split_targets_light_up() {
        let opts = ViewOptions {
            collapse: vec![crate::diagram::CollapseRule::glob("S*").unwrap()],
            split_targets: Some(true),
            ..Default::default()
        };
        let (v, missing) = lit(
            &opts,
            &[
                mark_edge("INPUT", Some(0), EdgeKind::Jump, "SSH"),
                mark_edge("SSH", Some(0), EdgeKind::Jump, "ACCEPT"),
            ],
        );
        assert!(missing.is_empty(), "{missing:?}");
        let lit: Vec<&str> = v
            .nodes
            .iter()
            .filter(|n| n.highlight)
            .map(|n| n.id.as_str())
            .collect();
        assert_eq!(
            lit,
            ["filter/INPUT", "filter/S*", "filter/ACCEPT@filter/S*"]
        );
        // WEB's own ACCEPT stays dark.
        assert!(
            v.nodes
                .iter()
                .any(|n| n.id == "filter/ACCEPT@filter/WEB" && !n.highlight)
        );
    }

    #[test]
    fn unknown_marks_are_reported() {
        let (v, missing) = lit(
            &ViewOptions::default(),
            &[mark_edge("INPUT", Some(1), EdgeKind::Goto, "WEB")],
        );
        assert_eq!(missing.len(), 1);
        // Both ends exist, so they light up even without the edge.
        assert_eq!(v.nodes.iter().filter(|n| n.highlight).count(), 2);
        assert!(!v.edges.iter().any(|e| e.highlight));
    }
}
