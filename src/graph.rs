//! The chain graph: every chain of every table, the targets rules lead to,
//! and the edges rules make between them (petgraph).
//!
//! [`ChainGraph`] is faithful: one edge per rule. [`view`] turns it into a
//! smaller, drawable [`View`] (filters, collapsed groups, merged edges) that
//! the layout and every renderer read, so the CLI and the GUI show the same
//! picture.

mod highlight;
pub mod kube;
mod summary;
mod view;

use std::collections::{HashMap, HashSet, VecDeque};

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use regex::Regex;

use crate::model::{Chain, Counters, Ruleset, SourceText, Str, TargetKind};

pub use highlight::PathMark;
pub use kube::{is_kube_chain, service_label};
pub use summary::{rule_label, rule_summary};
pub(crate) use view::chain_look;
pub use view::{
    AUTO_RETURNS_MAX, CollapseRule, DiffMark, DiffMarks, View, ViewEdge, ViewError, ViewFrame,
    ViewNode, ViewNodeKind, ViewOptions, ViewRow, default_collapse, view,
};

/// Whether a chain can end without a verdict (and so return to its
/// caller): false when its last rule matches everything and ends the walk.
pub fn falls_through(c: &Chain) -> bool {
    let Some(last) = c.rules.last() else {
        return true;
    };
    let matches_all = last.protocol().is_none()
        && last.source().is_none()
        && last.destination().is_none()
        && last.in_iface().is_none()
        && last.out_iface().is_none()
        && last.fragment().is_none()
        && last.matches().all(|m| m.module == "comment");
    let ends = last
        .target()
        .is_some_and(|t| t.is_terminating() && t.name != "RETURN");
    !(matches_all && ends)
}

/// What a target node stands for, as the legend groups them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// ACCEPT
    Accept,
    /// DROP
    Drop,
    /// REJECT
    Reject,
    /// RETURN
    Return,
    /// QUEUE, NFQUEUE
    Queue,
    /// DNAT, SNAT, MASQUERADE, REDIRECT, NETMAP, ...
    Nat,
    /// LOG, NFLOG, ULOG, TRACE, AUDIT
    Log,
    /// MARK, CONNMARK, CT, NOTRACK, TCPMSS and every other extension target.
    Other,
}

impl Verdict {
    /// Classifies a standard or extension target name.
    pub fn of(name: &str) -> Verdict {
        match name {
            "ACCEPT" => Verdict::Accept,
            "DROP" => Verdict::Drop,
            "REJECT" => Verdict::Reject,
            "RETURN" => Verdict::Return,
            "QUEUE" | "NFQUEUE" => Verdict::Queue,
            "DNAT" | "SNAT" | "MASQUERADE" | "REDIRECT" | "NETMAP" | "SAME" | "TPROXY" => {
                Verdict::Nat
            }
            "LOG" | "NFLOG" | "ULOG" | "TRACE" | "AUDIT" => Verdict::Log,
            _ => Verdict::Other,
        }
    }
}

/// What a node of the chain graph is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    /// A chain declared in the table.
    Chain {
        /// Built-in (hook) chain.
        builtin: bool,
        /// Policy of a built-in chain.
        policy: Option<Str>,
    },
    /// A standard or extension target (one node per table and name).
    Target(Verdict),
    /// A jump to a name that is neither a chain nor a known target.
    Undefined,
}

/// A node: a chain or a target, always within one table.
#[derive(Debug, Clone)]
pub struct Node {
    /// Table the node belongs to.
    pub table: Str,
    /// Chain or target name.
    pub name: Str,
    /// Chain, target or dangling name.
    pub kind: NodeKind,
    /// Number of rules (chains only).
    pub rules: usize,
    /// Declaration line (chains only; 0 otherwise).
    pub line: u32,
    /// Policy counters of a built-in chain.
    pub counters: Option<Counters>,
    /// Decoded kube-proxy service (`namespace/name:port`), if any.
    pub service: Option<String>,
}

impl Node {
    /// The node of chain `c` of `table`.
    pub fn chain(table: &Str, c: &Chain) -> Node {
        let service = if kube::is_kube_chain(&c.name) {
            kube::service_label(c.rules.iter())
        } else {
            None
        };
        Node {
            table: table.clone(),
            name: c.name.clone(),
            kind: NodeKind::Chain {
                builtin: c.builtin,
                policy: c.policy.clone(),
            },
            rules: c.rules.len(),
            line: c.line,
            counters: c.counters,
            service,
        }
    }

    /// True for a chain (built-in or user).
    pub fn is_chain(&self) -> bool {
        matches!(self.kind, NodeKind::Chain { .. })
    }

    /// True for a built-in chain.
    pub fn is_builtin(&self) -> bool {
        matches!(self.kind, NodeKind::Chain { builtin: true, .. })
    }
}

/// How control passes along an edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EdgeKind {
    /// `-j TARGET`: a call (returns for user chains) or a verdict.
    Jump,
    /// `-g CHAIN`: no return point.
    Goto,
    /// A built-in chain's policy, applied when it falls off its end.
    Policy,
    /// A user chain falling off its end (or `RETURN`) back to its caller.
    Return,
}

/// An edge: the rule (or policy) that makes it.
#[derive(Debug, Clone)]
pub struct Edge {
    /// Call, goto, policy or return.
    pub kind: EdgeKind,
    /// Table of the rule.
    pub table: Str,
    /// Chain the rule is in (for returns: the callee).
    pub chain: Str,
    /// 0-based index of the rule in its chain (`None` for policy and return).
    pub rule: Option<usize>,
    /// 1-based source line (0 when unknown).
    pub line: u32,
    /// Short summary of the rule's matches, e.g. `tcp dpt:443 -s 10.0.0.0/8`.
    pub summary: String,
    /// The full rule as written.
    pub text: SourceText,
    /// Rule counters (or chain policy counters).
    pub counters: Option<Counters>,
    /// `-m statistic --probability` of a load-balancing rule.
    pub probability: Option<f64>,
}

/// The chain graph of a whole ruleset.
#[derive(Debug, Clone, Default)]
pub struct ChainGraph {
    /// The petgraph graph; node and edge order follow the dump.
    pub graph: DiGraph<Node, Edge>,
    index: HashMap<(Str, Str), NodeIndex, rustc_hash::FxBuildHasher>,
}

impl ChainGraph {
    /// Builds the graph of every table of `rs`.
    pub fn build(rs: &Ruleset) -> ChainGraph {
        let mut g = ChainGraph::default();
        for t in &rs.tables {
            for c in &t.chains {
                g.add_node(Node::chain(&t.name, c));
            }
            for c in &t.chains {
                // Cannot fail: the loop above added every chain of `t`.
                let from = g.index[&(t.name.clone(), c.name.clone())];
                let mut callees: Vec<NodeIndex> = Vec::new();
                // A chain may call a million others: no linear search per rule.
                let mut called: rustc_hash::FxHashSet<NodeIndex> = Default::default();
                for (i, r) in c.rules.iter().enumerate() {
                    let Some(target) = r.target() else { continue };
                    let to = match target.kind {
                        TargetKind::Chain => g.node(&t.name, target.name),
                        _ => None,
                    };
                    let to = match to {
                        Some(n) => n,
                        None => {
                            let kind = if target.kind == TargetKind::Undefined {
                                NodeKind::Undefined
                            } else {
                                NodeKind::Target(Verdict::of(target.name))
                            };
                            g.target_node(&t.name, target.name, kind)
                        }
                    };
                    if target.kind == TargetKind::Chain
                        && !target.goto
                        && !called.contains(&to)
                        && t.chain(target.name).is_some_and(falls_through)
                    {
                        called.insert(to);
                        callees.push(to);
                    }
                    g.graph.add_edge(
                        from,
                        to,
                        Edge {
                            kind: if target.goto {
                                EdgeKind::Goto
                            } else {
                                EdgeKind::Jump
                            },
                            table: t.name.clone(),
                            chain: c.name.clone(),
                            rule: Some(i),
                            line: r.line,
                            summary: summary::rule_summary(r),
                            text: r.text.clone(),
                            counters: r.counters,
                            probability: summary::probability(r),
                        },
                    );
                }
                if let Some(p) = &c.policy {
                    let to = g.target_node(&t.name, p, NodeKind::Target(Verdict::of(p)));
                    g.graph.add_edge(
                        from,
                        to,
                        Edge {
                            kind: EdgeKind::Policy,
                            table: t.name.clone(),
                            chain: c.name.clone(),
                            rule: None,
                            line: c.line,
                            summary: format!("policy {p}"),
                            text: SourceText::from(format!(":{} {}", c.name, p)),
                            counters: c.counters,
                            probability: None,
                        },
                    );
                }
                for callee in callees {
                    let name = g.graph[callee].name.clone();
                    g.graph.add_edge(
                        callee,
                        from,
                        Edge {
                            kind: EdgeKind::Return,
                            table: t.name.clone(),
                            chain: name.clone(),
                            rule: None,
                            line: 0,
                            summary: "return".into(),
                            text: SourceText::from(format!("{name} returns to {}", c.name)),
                            counters: None,
                            probability: None,
                        },
                    );
                }
            }
        }
        g
    }

    fn add_node(&mut self, n: Node) -> NodeIndex {
        let key = (n.table.clone(), n.name.clone());
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        let i = self.graph.add_node(n);
        self.index.insert(key, i);
        i
    }

    fn target_node(&mut self, table: &Str, name: &str, kind: NodeKind) -> NodeIndex {
        if let Some(&i) = self.index.get(&(table.clone(), Str::from(name))) {
            return i;
        }
        self.add_node(Node {
            table: table.clone(),
            name: name.into(),
            kind,
            rules: 0,
            line: 0,
            counters: None,
            service: None,
        })
    }

    /// The node of a chain or target of a table.
    pub fn node(&self, table: &str, name: &str) -> Option<NodeIndex> {
        self.index
            .get(&(Str::from(table), Str::from(name)))
            .copied()
    }

    /// Nodes whose name is `name`, in any table.
    pub fn nodes_named(&self, name: &str) -> Vec<NodeIndex> {
        self.graph
            .node_indices()
            .filter(|&i| self.graph[i].name == name)
            .collect()
    }

    /// Nodes reachable from `starts` by calls, gotos and policies, within
    /// `depth` hops when given (the starts themselves included).
    pub fn reachable(&self, starts: &[NodeIndex], depth: Option<usize>) -> HashSet<NodeIndex> {
        let mut seen: HashSet<NodeIndex> = starts.iter().copied().collect();
        let mut queue: VecDeque<(NodeIndex, usize)> = starts.iter().map(|&s| (s, 0)).collect();
        while let Some((n, d)) = queue.pop_front() {
            if depth.is_some_and(|max| d >= max) {
                continue;
            }
            for e in self.graph.edges_directed(n, Direction::Outgoing) {
                if e.weight().kind == EdgeKind::Return {
                    continue;
                }
                if seen.insert(e.target()) {
                    queue.push_back((e.target(), d + 1));
                }
            }
        }
        seen
    }

    /// Everything reachable from the built-in chains of every table.
    pub fn reachable_from_builtins(&self) -> HashSet<NodeIndex> {
        let starts: Vec<NodeIndex> = self
            .graph
            .node_indices()
            .filter(|&i| self.graph[i].is_builtin())
            .collect();
        self.reachable(&starts, None)
    }

    /// User chains that no rule jumps or goes to.
    pub fn unreferenced(&self) -> Vec<NodeIndex> {
        self.graph
            .node_indices()
            .filter(|&i| {
                let n = &self.graph[i];
                n.is_chain()
                    && !n.is_builtin()
                    && !self
                        .graph
                        .edges_directed(i, Direction::Incoming)
                        .any(|e| matches!(e.weight().kind, EdgeKind::Jump | EdgeKind::Goto))
            })
            .collect()
    }

    /// Chains whose name matches `re`.
    pub fn matching(&self, re: &Regex) -> Vec<NodeIndex> {
        self.graph
            .node_indices()
            .filter(|&i| self.graph[i].is_chain() && re.is_match(&self.graph[i].name))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{ParseOptions, parse_str};

    fn graph(text: &str) -> ChainGraph {
        let p = parse_str(text, &ParseOptions::lenient("t")).unwrap();
        ChainGraph::build(&p.ruleset)
    }

    const SAMPLE: &str = "*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:SSH - [0:0]\n:OLD - [0:0]\n\
        -A INPUT -p tcp -m tcp --dport 22 -j SSH\n-A INPUT -g OLD\n-A SSH -s 10.0.0.0/8 -j ACCEPT\nCOMMIT\n";

    #[test]
    fn edges_of_calls_gotos_policies_and_returns() {
        let g = graph(SAMPLE);
        let kinds: Vec<EdgeKind> = g.graph.edge_weights().map(|e| e.kind).collect();
        assert!(kinds.contains(&EdgeKind::Jump));
        assert!(kinds.contains(&EdgeKind::Goto));
        assert!(kinds.contains(&EdgeKind::Policy));
        // SSH returns to INPUT; OLD was reached by goto, so no return edge.
        assert_eq!(kinds.iter().filter(|k| **k == EdgeKind::Return).count(), 1);
        let ssh = g.node("filter", "SSH").unwrap();
        let input = g.node("filter", "INPUT").unwrap();
        let e = g.graph.find_edge(input, ssh).unwrap();
        assert_eq!(g.graph[e].summary, "tcp dpt:22");
    }

    #[test]
    fn reachability_and_unreferenced() {
        let g = graph(
            "*filter\n:INPUT ACCEPT [0:0]\n:A - [0:0]\n:B - [0:0]\n:LONE - [0:0]\n\
             -A INPUT -j A\n-A A -j B\n-A B -j DROP\nCOMMIT\n",
        );
        let input = g.node("filter", "INPUT").unwrap();
        let r1 = g.reachable(&[input], Some(1));
        assert!(r1.contains(&g.node("filter", "A").unwrap()));
        assert!(!r1.contains(&g.node("filter", "B").unwrap()));
        let all = g.reachable_from_builtins();
        assert!(all.contains(&g.node("filter", "DROP").unwrap()));
        let lone = g.node("filter", "LONE").unwrap();
        assert_eq!(g.unreferenced(), vec![lone]);
        let re = Regex::new("^[AB]$").unwrap();
        assert_eq!(g.matching(&re).len(), 2);
    }
}
