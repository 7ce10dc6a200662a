//! The chain graph: every chain of every table, the targets rules lead to,
//! and the edges rules make between them (petgraph).
//!
//! [`ChainGraph`] is faithful: one edge per rule. [`crate::diagram::view`]
//! turns it into a smaller, drawable [`crate::diagram::View`] (filters,
//! collapsed groups, merged edges) that the layout and every renderer read,
//! so the CLI and the GUI show the same picture.

pub mod kube;
mod summary;

use std::collections::{HashSet, VecDeque};

use petgraph::Direction;
use petgraph::graph::{DiGraph, EdgeIndex, NodeIndex};
use petgraph::visit::EdgeRef;
use regex::Regex;

use crate::model::{Chain, Counters, Rule, Ruleset, Str, TargetKind};

// The picture and its chain-graph producer live in `crate::diagram`; the
// desktop app, tests and benches still name them here.
pub use crate::diagram::{
    AUTO_RETURNS_MAX, CollapseRule, DiffMark, DiffMarks, PathMark, View, ViewEdge, ViewError,
    ViewFrame, ViewNode, ViewNodeKind, ViewOptions, ViewRow, default_collapse, view,
};
pub use kube::{is_kube_chain, service_label};
pub(crate) use summary::shorten;
pub use summary::{PlainNames, RuleNaming, rule_label, rule_summary};

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
    /// Decoded kube-proxy service (`namespace/name:port`), if any (kept
    /// inline: most are under 25 bytes).
    pub service: Option<Str>,
    /// Where a chain is in the ruleset the graph was built from, as
    /// `(table index, chain index)`; `None` for targets.
    pub at: Option<(u32, u32)>,
    /// A chain that can end without a verdict ([`falls_through`]); false
    /// for targets.
    pub falls_through: bool,
}

impl Node {
    /// The node of chain `c` of `table` (not placed in a ruleset: `at` is
    /// `None`).
    pub fn chain(table: &Str, c: &Chain) -> Node {
        let service = if kube::is_kube_chain(&c.name) {
            kube::service_label(c.rules.iter()).map(|s| Str::new(&s))
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
            at: None,
            falls_through: falls_through(c),
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
///
/// A dump of a million rules has a million edges, so an edge holds only
/// its kind and the rule's index: the rule itself (text, line, counters,
/// summary) is read from the ruleset through [`ChainGraph::edge_rule`] and
/// friends when a view needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    /// Call, goto or policy (returns are not stored: see
    /// [`ChainGraph::returns_to`]).
    pub kind: EdgeKind,
    /// Index of the rule in its chain, [`NO_RULE`] for a policy.
    rule: u32,
}

/// [`Edge`]'s rule index of a policy edge.
const NO_RULE: u32 = u32::MAX;

impl Edge {
    /// 0-based index of the rule in its chain (the source node's chain;
    /// `None` for a policy).
    pub fn rule(&self) -> Option<usize> {
        (self.rule != NO_RULE).then_some(self.rule as usize)
    }
}

/// The chain graph of a whole ruleset.
#[derive(Debug, Clone, Default)]
pub struct ChainGraph {
    /// The petgraph graph; node and edge order follow the dump.
    pub graph: DiGraph<Node, Edge>,
    /// Node of each (table, name), holding only the node index: the names
    /// are the nodes' own (half a million chains would otherwise keep a
    /// second copy of every name).
    index: hashbrown::HashTable<NodeIndex>,
}

impl ChainGraph {
    /// Builds the graph of every table of `rs`.
    pub fn build(rs: &Ruleset) -> ChainGraph {
        let mut g = ChainGraph::default();
        // Sized once: growing a million-edge graph by doubling would hold
        // the old and the new buffer at once.
        let chains = rs.chain_count();
        g.graph.reserve_exact_nodes(chains + 16 * rs.tables.len());
        g.graph.reserve_exact_edges(rs.rule_count() + 2 * chains);
        g.index.reserve(chains, |_| 0);
        for (ti, t) in rs.tables.iter().enumerate() {
            for (ci, c) in t.chains.iter().enumerate() {
                let mut n = Node::chain(&t.name, c);
                // Tables and chains are far fewer than 2^32.
                n.at = Some((ti as u32, ci as u32));
                g.add_node(n);
            }
            for c in &t.chains {
                // Cannot fail: the loop above added every chain of `t`.
                let Some(from) = g.node(&t.name, &c.name) else {
                    continue;
                };
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
                    let kind = if target.goto {
                        EdgeKind::Goto
                    } else {
                        EdgeKind::Jump
                    };
                    // A chain of 4 billion rules cannot be read in.
                    let rule = u32::try_from(i).unwrap_or(NO_RULE - 1);
                    g.graph.add_edge(from, to, Edge { kind, rule });
                }
                if let Some(p) = &c.policy {
                    let to = g.target_node(&t.name, p, NodeKind::Target(Verdict::of(p)));
                    g.graph.add_edge(
                        from,
                        to,
                        Edge {
                            kind: EdgeKind::Policy,
                            rule: NO_RULE,
                        },
                    );
                }
            }
        }
        g
    }

    /// The rule that makes a jump or goto edge, read from `rs` (the
    /// ruleset the graph was built from).
    pub fn edge_rule<'a>(&self, rs: &'a Ruleset, e: EdgeIndex) -> Option<&'a Rule> {
        let w = self.graph.edge_weight(e)?;
        let (from, _) = self.graph.edge_endpoints(e)?;
        let (ti, ci) = self.graph[from].at?;
        rs.tables
            .get(ti as usize)?
            .chains
            .get(ci as usize)?
            .rules
            .get(w.rule()?)
    }

    /// The chains that return to `caller`: user chains it calls with `-j`
    /// (not `-g`) that can fall off their end, each once, in the order of
    /// their first call. These return edges are computed when a view
    /// draws them rather than stored: a kube-proxy dump has as many as it
    /// has chains.
    pub fn returns_to(&self, caller: NodeIndex) -> Vec<NodeIndex> {
        let mut calls: Vec<(EdgeIndex, NodeIndex)> = self
            .graph
            .edges_directed(caller, Direction::Outgoing)
            .filter(|e| e.weight().kind == EdgeKind::Jump && self.graph[e.target()].falls_through)
            .map(|e| (e.id(), e.target()))
            .collect();
        // petgraph lists a node's edges newest first.
        calls.sort_unstable();
        let mut seen: rustc_hash::FxHashSet<NodeIndex> = Default::default();
        calls
            .into_iter()
            .filter(|&(_, callee)| seen.insert(callee))
            .map(|(_, callee)| callee)
            .collect()
    }

    /// Short summary of an edge's rule (`tcp dpt:443 -s 10.0.0.0/8`),
    /// `policy DROP` or `return`.
    pub fn edge_summary(&self, rs: &Ruleset, e: EdgeIndex) -> String {
        match self.graph[e].kind {
            EdgeKind::Jump | EdgeKind::Goto => self
                .edge_rule(rs, e)
                .map(summary::rule_summary)
                .unwrap_or_default(),
            EdgeKind::Policy => format!("policy {}", self.edge_target_name(e)),
            EdgeKind::Return => "return".into(),
        }
    }

    /// The full text of an edge: the rule as written, the policy as
    /// declared (`:INPUT DROP`) or `CALLEE returns to CALLER`.
    pub fn edge_text(&self, rs: &Ruleset, e: EdgeIndex) -> String {
        let Some((from, to)) = self.graph.edge_endpoints(e) else {
            return String::new();
        };
        let table = || {
            self.graph[from]
                .at
                .and_then(|(ti, _)| rs.tables.get(ti as usize))
        };
        match self.graph[e].kind {
            EdgeKind::Jump | EdgeKind::Goto => {
                let (Some((_, ci)), Some(ri)) = (self.graph[from].at, self.graph[e].rule()) else {
                    return String::new();
                };
                table()
                    .and_then(|t| t.rule_text(ci as usize, ri))
                    .unwrap_or_default()
                    .to_string()
            }
            // A base chain of an nft table declares its policy in nft words.
            EdgeKind::Policy => match table().and_then(|t| t.nft_chain(&self.graph[from].name)) {
                Some(c) if !c.base.is_empty() => c.base.clone(),
                _ => format!(":{} {}", self.graph[from].name, self.graph[to].name),
            },
            EdgeKind::Return => format!(
                "{} returns to {}",
                self.graph[from].name, self.graph[to].name
            ),
        }
    }

    /// 1-based source line of an edge's rule or policy (0 for returns).
    pub fn edge_line(&self, rs: &Ruleset, e: EdgeIndex) -> u32 {
        match self.graph[e].kind {
            EdgeKind::Jump | EdgeKind::Goto => self.edge_rule(rs, e).map_or(0, |r| r.line),
            EdgeKind::Policy => self
                .graph
                .edge_endpoints(e)
                .map_or(0, |(from, _)| self.graph[from].line),
            EdgeKind::Return => 0,
        }
    }

    /// Counters of an edge's rule, or of its chain's policy.
    pub fn edge_counters(&self, rs: &Ruleset, e: EdgeIndex) -> Option<Counters> {
        match self.graph[e].kind {
            EdgeKind::Jump | EdgeKind::Goto => self.edge_rule(rs, e).and_then(|r| r.counters),
            EdgeKind::Policy => self
                .graph
                .edge_endpoints(e)
                .and_then(|(from, _)| self.graph[from].counters),
            EdgeKind::Return => None,
        }
    }

    /// `-m statistic --probability` of a load-balancing rule.
    pub fn edge_probability(&self, rs: &Ruleset, e: EdgeIndex) -> Option<f64> {
        self.edge_rule(rs, e).and_then(summary::probability)
    }

    fn edge_target_name(&self, e: EdgeIndex) -> &str {
        self.graph
            .edge_endpoints(e)
            .map_or("", |(_, to)| self.graph[to].name.as_str())
    }

    fn key_hash(table: &str, name: &str) -> u64 {
        use std::hash::{BuildHasher, Hash, Hasher};
        let mut h = rustc_hash::FxBuildHasher.build_hasher();
        table.hash(&mut h);
        name.hash(&mut h);
        h.finish()
    }

    fn add_node(&mut self, n: Node) -> NodeIndex {
        if let Some(i) = self.node(&n.table, &n.name) {
            return i;
        }
        let hash = Self::key_hash(&n.table, &n.name);
        let i = self.graph.add_node(n);
        let graph = &self.graph;
        self.index.insert_unique(hash, i, |&j| {
            Self::key_hash(&graph[j].table, &graph[j].name)
        });
        i
    }

    fn target_node(&mut self, table: &Str, name: &str, kind: NodeKind) -> NodeIndex {
        if let Some(i) = self.node(table, name) {
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
            at: None,
            falls_through: false,
        })
    }

    /// The node of a chain or target of a table.
    pub fn node(&self, table: &str, name: &str) -> Option<NodeIndex> {
        self.index
            .find(Self::key_hash(table, name), |&j| {
                let n = &self.graph[j];
                n.table == table && n.name == name
            })
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
        ChainGraph::build(&g_rs(text))
    }

    fn g_rs(text: &str) -> Ruleset {
        parse_str(text, &ParseOptions::lenient("t"))
            .unwrap()
            .ruleset
    }

    #[test]
    fn an_edge_reads_its_rule_policy_or_return_from_the_ruleset() {
        let rs = g_rs(
            "*filter\n:INPUT DROP [3:180]\n:SSH - [0:0]\n\
             [7:420] -A INPUT -p tcp -m tcp --dport 22 -m statistic --mode random --probability 0.25 -j SSH\n\
             -A SSH -j LOG\nCOMMIT\n",
        );
        let g = ChainGraph::build(&rs);
        let input = g.node("filter", "INPUT").unwrap();
        let ssh = g.node("filter", "SSH").unwrap();
        let drop = g.node("filter", "DROP").unwrap();
        let jump = g.graph.find_edge(input, ssh).unwrap();
        assert_eq!(g.graph[jump].rule(), Some(0));
        assert_eq!(g.edge_line(&rs, jump), 4);
        assert!(
            g.edge_text(&rs, jump)
                .starts_with("[7:420] -A INPUT -p tcp")
        );
        assert_eq!(g.edge_counters(&rs, jump).map(|c| c.packets), Some(7));
        assert_eq!(g.edge_probability(&rs, jump), Some(0.25));
        let policy = g.graph.find_edge(input, drop).unwrap();
        assert_eq!(g.edge_summary(&rs, policy), "policy DROP");
        assert_eq!(g.edge_text(&rs, policy), ":INPUT DROP");
        assert_eq!(g.edge_line(&rs, policy), 2);
        assert_eq!(g.edge_counters(&rs, policy).map(|c| c.bytes), Some(180));
        assert_eq!(g.graph[policy].rule(), None);
        // Returns are not stored; the caller knows who returns to it.
        assert!(g.graph.find_edge(ssh, input).is_none());
        assert_eq!(g.returns_to(input), vec![ssh]);
        // An edge is two words: a million rules cost megabytes, not hundreds.
        assert!(std::mem::size_of::<Edge>() <= 8);
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
        let ssh = g.node("filter", "SSH").unwrap();
        let input = g.node("filter", "INPUT").unwrap();
        assert_eq!(g.returns_to(input), vec![ssh]);
        assert!(g.returns_to(ssh).is_empty());
        let e = g.graph.find_edge(input, ssh).unwrap();
        assert_eq!(g.edge_summary(&g_rs(SAMPLE), e), "tcp dpt:22");
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
