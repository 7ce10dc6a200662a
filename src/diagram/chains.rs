//! From the faithful chain graph to a drawable view: filters, collapsed
//! groups, merged parallel edges, labels.

use std::collections::BTreeMap;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use petgraph::Direction;
use petgraph::graph::{EdgeIndex, NodeIndex};
use petgraph::visit::EdgeRef;
use regex::Regex;

use crate::diagram::{ChainRef, GroupRef, View, ViewEdge, ViewNode, ViewNodeKind, ViewRow};
use crate::graph::{ChainGraph, Edge, EdgeKind, Node, NodeKind, shorten};
use crate::model::{Ruleset, Str};

/// Rows shown per chain in `--rules` mode before "… N more".
pub(crate) const MAX_ROWS: usize = 60;
/// Largest view (in chains) that shows return edges by default.
pub const AUTO_RETURNS_MAX: usize = 30;
/// Full rules listed in an edge's hover text.
const MAX_TITLE_RULES: usize = 8;

/// Why a view could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// `--from` names no chain.
    #[error("no chain named {0:?} (in the selected tables)")]
    UnknownChain(String),
    /// A collapse pattern is not a valid glob.
    #[error("bad collapse pattern {pattern:?}: {source}")]
    BadPattern {
        /// The pattern as given.
        pattern: String,
        /// Why the regex built from it failed.
        source: regex::Error,
    },
}

/// Chains folded into one node: those matching `pattern` in a table, or
/// (with `per_parent`) those matching it behind the same calling node.
#[derive(Debug, Clone)]
pub struct CollapseRule {
    /// The glob as given (`KUBE-SEP-*`).
    pub pattern: String,
    /// One group per calling node instead of one per table.
    pub per_parent: bool,
    /// Fewer matching chains than this stay as they are.
    pub min_members: usize,
    re: Regex,
}

impl CollapseRule {
    /// A rule from a glob (`*` any run, `?` one character).
    pub fn glob(pattern: &str) -> Result<CollapseRule, ViewError> {
        let mut re = String::from("^");
        for c in pattern.chars() {
            match c {
                '*' => re.push_str(".*"),
                '?' => re.push('.'),
                c => re.push_str(&regex::escape(&c.to_string())),
            }
        }
        re.push('$');
        Ok(CollapseRule {
            pattern: pattern.to_string(),
            per_parent: false,
            min_members: 1,
            re: Regex::new(&re).map_err(|source| ViewError::BadPattern {
                pattern: pattern.to_string(),
                source,
            })?,
        })
    }

    /// Groups per calling node.
    pub fn per_parent(mut self) -> Self {
        self.per_parent = true;
        self
    }

    /// Sets the smallest group size.
    pub fn min(mut self, n: usize) -> Self {
        self.min_members = n;
        self
    }

    /// Whether a chain name matches.
    pub fn matches(&self, name: &str) -> bool {
        self.re.is_match(name)
    }
}

/// The groups drawn by default: kube-proxy endpoints behind their service,
/// kube-proxy services when there are many, CNI per-interface chains.
pub fn default_collapse() -> Vec<CollapseRule> {
    let mut v = Vec::new();
    // Unwrap-free: these globs are fixed and valid; skip any that were not.
    for (glob, per_parent, min) in [
        ("KUBE-SVC-*", false, 25),
        ("KUBE-SVL-*", false, 25),
        ("KUBE-EXT-*", false, 25),
        ("KUBE-FW-*", false, 25),
        ("KUBE-XLB-*", false, 25),
        ("KUBE-SEP-*", true, 2),
        ("cali-fw-*", false, 2),
        ("cali-tw-*", false, 2),
        ("cali-pri-*", false, 2),
        ("cali-pro-*", false, 2),
        ("cali-pi-*", false, 2),
        ("cali-po-*", false, 2),
    ] {
        if let Ok(r) = CollapseRule::glob(glob) {
            let r = r.min(min);
            v.push(if per_parent { r.per_parent() } else { r });
        }
    }
    // Any other huge fan-out (a million chains one chain jumps to) folds
    // behind its caller: drawn one by one it is no picture, and its layout
    // would take minutes.
    if let Ok(r) = CollapseRule::glob("*") {
        v.push(r.per_parent().min(FAN_OUT_GROUP));
    }
    v
}

/// Chains called from one chain that are drawn as one group by default.
pub const FAN_OUT_GROUP: usize = 500;

/// What to show.
#[derive(Debug, Clone)]
pub struct ViewOptions {
    /// Tables to show; empty shows all.
    pub tables: Vec<String>,
    /// Only chains whose name matches (plus what they lead to).
    pub chain: Option<Regex>,
    /// Only what is reachable from this chain.
    pub from: Option<String>,
    /// Only what is reachable from these chains, as `(table, chain)`
    /// (a traced packet's built-in chains); empty means no such limit.
    pub roots: Vec<(String, String)>,
    /// Hops from `from` (or from the built-ins with `prune`).
    pub depth: Option<usize>,
    /// Drop chains unreachable from the built-in chains.
    pub prune: bool,
    /// Groups to fold.
    pub collapse: Vec<CollapseRule>,
    /// Ids of groups to leave open ([`ViewNode::id`] of the group node,
    /// `table/pattern` or `table/pattern/parent`): their chains are drawn
    /// one by one, as if no rule folded them.
    pub expanded: Vec<String>,
    /// Draw each chain as a table of its rules.
    pub rules: bool,
    /// Show counters and scale edges by packets.
    pub counters: bool,
    /// Draw the return edges of user chains: always, never, or (`None`)
    /// only in views of at most [`AUTO_RETURNS_MAX`] chains, where they
    /// help more than they clutter.
    pub returns: Option<bool>,
    /// One target node per calling chain instead of one per table:
    /// always, never, or (`None`) in views of more than
    /// [`AUTO_RETURNS_MAX`] chains, where shared verdicts would pull long
    /// edges across the whole drawing.
    pub split_targets: Option<bool>,
    /// Draw a small chain called from many chains once in full and as a
    /// small copy beside each other caller ([`super::copies`]): always,
    /// never, or (`None`) in views of up to
    /// [`super::copies::AUTO_COPIES_MAX_CHAINS`] chains.
    pub copies: Option<bool>,
    /// Title drawn above the graph.
    pub title: String,
}

impl Default for ViewOptions {
    fn default() -> Self {
        ViewOptions {
            tables: Vec::new(),
            chain: None,
            from: None,
            roots: Vec::new(),
            depth: None,
            prune: false,
            collapse: default_collapse(),
            expanded: Vec::new(),
            rules: false,
            counters: false,
            returns: None,
            split_targets: None,
            copies: None,
            title: String::new(),
        }
    }
}

struct Merged {
    from: usize,
    to: usize,
    kind: EdgeKind,
    from_row: Option<usize>,
    summaries: Vec<String>,
    titles: Vec<String>,
    rules: usize,
    packets: u64,
    probability: Option<f64>,
}

/// An edge of the chain graph as a view meets it: a stored one (call,
/// goto, policy) or a return, made up after its caller's edges (where the
/// graph once stored them) when the view draws returns.
#[derive(Clone, Copy)]
enum Piece {
    Stored(EdgeIndex),
    Return {
        callee: NodeIndex,
        caller: NodeIndex,
    },
}

/// The graph's edges in order, each caller's returns after its own edges.
struct Pieces<'g> {
    g: &'g ChainGraph,
    edges: petgraph::graph::EdgeReferences<'g, Edge>,
    returns: bool,
    /// Source of the edges being read.
    block: Option<NodeIndex>,
    /// An edge read ahead, given once the returns before it are.
    held: Option<EdgeIndex>,
    /// Returns still to give, last first.
    pending: Vec<NodeIndex>,
    caller: NodeIndex,
}

impl Pieces<'_> {
    fn flush(&mut self, caller: NodeIndex) {
        self.pending = self.g.returns_to(caller);
        self.pending.reverse();
        self.caller = caller;
    }
}

impl Iterator for Pieces<'_> {
    type Item = Piece;

    fn next(&mut self) -> Option<Piece> {
        loop {
            if let Some(callee) = self.pending.pop() {
                return Some(Piece::Return {
                    callee,
                    caller: self.caller,
                });
            }
            if let Some(e) = self.held.take() {
                return Some(Piece::Stored(e));
            }
            match self.edges.next() {
                Some(e) => {
                    let source = e.source();
                    if self.returns
                        && self.block != Some(source)
                        && let Some(done) = self.block.replace(source)
                    {
                        self.flush(done);
                        self.held = Some(e.id());
                        continue;
                    }
                    self.block = Some(source);
                    return Some(Piece::Stored(e.id()));
                }
                None => {
                    if self.returns
                        && let Some(done) = self.block.take()
                    {
                        self.flush(done);
                        continue;
                    }
                    return None;
                }
            }
        }
    }
}

fn select(g: &ChainGraph, opts: &ViewOptions) -> Result<HashSet<NodeIndex>, ViewError> {
    let in_tables =
        |i: NodeIndex| opts.tables.is_empty() || opts.tables.iter().any(|t| *t == g.graph[i].table);
    let mut keep: HashSet<NodeIndex> = g.graph.node_indices().filter(|&i| in_tables(i)).collect();
    if let Some(from) = &opts.from {
        let starts: Vec<NodeIndex> = g
            .nodes_named(from)
            .into_iter()
            .filter(|&i| in_tables(i) && g.graph[i].is_chain())
            .collect();
        if starts.is_empty() {
            return Err(ViewError::UnknownChain(from.clone()));
        }
        let r = g.reachable(&starts, opts.depth);
        keep.retain(|i| r.contains(i));
    } else if opts.depth.is_some() {
        let starts: Vec<NodeIndex> = keep
            .iter()
            .copied()
            .filter(|&i| g.graph[i].is_builtin())
            .collect();
        let r = g.reachable(&starts, opts.depth);
        keep.retain(|i| r.contains(i));
    }
    if !opts.roots.is_empty() {
        let starts: Vec<NodeIndex> = opts
            .roots
            .iter()
            .filter_map(|(t, c)| g.node(t, c))
            .filter(|&i| g.graph[i].is_chain())
            .collect();
        let r = g.reachable(&starts, None);
        keep.retain(|i| r.contains(i));
    }
    if opts.prune {
        let r = g.reachable_from_builtins();
        keep.retain(|i| r.contains(i));
    }
    if let Some(re) = &opts.chain {
        let mut sel: HashSet<NodeIndex> = HashSet::default();
        for i in g.matching(re) {
            if !keep.contains(&i) {
                continue;
            }
            sel.insert(i);
            for e in g.graph.edges_directed(i, Direction::Outgoing) {
                if e.weight().kind != EdgeKind::Return && keep.contains(&e.target()) {
                    sel.insert(e.target());
                }
            }
        }
        keep = sel;
    }
    // Targets only appear when a kept chain leads to them.
    let used: HashSet<NodeIndex> = g
        .graph
        .edge_references()
        .filter(|e| keep.contains(&e.source()))
        .map(|e| e.target())
        .collect();
    keep.retain(|&i| g.graph[i].is_chain() || used.contains(&i));
    Ok(keep)
}

/// A group: (table, collapse rule index, parent).
type GroupKey = (Str, usize, Option<NodeIndex>);

/// A number per node of the graph, by node index: four bytes a node where
/// a hash map would take tens (views of half a million chains).
struct Slots(Vec<u32>);

impl Slots {
    const NONE: u32 = u32::MAX;

    fn new(nodes: usize) -> Slots {
        Slots(vec![Self::NONE; nodes])
    }

    fn get(&self, i: NodeIndex) -> Option<usize> {
        match self.0.get(i.index()) {
            Some(&v) if v != Self::NONE => Some(v as usize),
            _ => None,
        }
    }

    fn set(&mut self, i: NodeIndex, v: usize) {
        if let (Some(slot), Ok(v)) = (self.0.get_mut(i.index()), u32::try_from(v)) {
            *slot = v;
        }
    }
}

/// The group of each collapsed chain.
struct Grouped {
    keys: Vec<GroupKey>,
    ids: HashMap<GroupKey, usize>,
    of: Slots,
    /// Chains drawn on their own because their group is open, with that
    /// group (the first open one that left them).
    opened: HashMap<NodeIndex, GroupRef>,
}

impl Grouped {
    fn get(&self, i: NodeIndex) -> Option<&GroupKey> {
        self.of.get(i).and_then(|k| self.keys.get(k))
    }

    fn contains(&self, i: NodeIndex) -> bool {
        self.of.get(i).is_some()
    }

    fn insert(&mut self, i: NodeIndex, key: GroupKey) {
        let k = match self.ids.get(&key) {
            Some(&k) => k,
            None => {
                self.keys.push(key.clone());
                self.ids.insert(key, self.keys.len() - 1);
                self.keys.len() - 1
            }
        };
        self.of.set(i, k);
    }
}

/// Group key of each collapsed chain: (table, rule index, parent).
fn groups(
    g: &ChainGraph,
    keep: &HashSet<NodeIndex>,
    rules: &[CollapseRule],
    expanded: &[String],
) -> Grouped {
    let open = |r: &GroupRef| expanded.iter().any(|e| *e == r.id());
    let mut out = Grouped {
        keys: Vec::new(),
        ids: HashMap::default(),
        of: Slots::new(g.graph.node_count()),
        opened: HashMap::default(),
    };
    let mut order: Vec<NodeIndex> = keep.iter().copied().collect();
    order.sort();
    let candidates = |r: &CollapseRule, out: &Grouped| -> Vec<NodeIndex> {
        order
            .iter()
            .copied()
            .filter(|&i| {
                let n = &g.graph[i];
                n.is_chain() && !n.is_builtin() && !out.contains(i) && r.matches(&n.name)
            })
            .collect()
    };
    // Table-wide groups first, so that per-parent groups see their parent's group.
    for (ri, r) in rules.iter().enumerate().filter(|(_, r)| !r.per_parent) {
        let mut by_table: BTreeMap<Str, Vec<NodeIndex>> = BTreeMap::new();
        for i in candidates(r, &out) {
            by_table
                .entry(g.graph[i].table.clone())
                .or_default()
                .push(i);
        }
        for (t, members) in by_table {
            // An open group leaves its members to later rules (and their
            // callers to per-parent groups), as if this rule did not match.
            if members.len() < r.min_members.max(1) {
                continue;
            }
            let gref = GroupRef {
                table: t.clone(),
                pattern: r.pattern.clone(),
                parent: None,
            };
            if open(&gref) {
                for m in members {
                    out.opened.entry(m).or_insert_with(|| gref.clone());
                }
            } else {
                for m in members {
                    out.insert(m, (t.clone(), ri, None));
                }
            }
        }
    }
    let mut first_of: HashMap<(Str, usize, Option<NodeIndex>), NodeIndex> = HashMap::default();
    for &i in &order {
        if let Some(k) = out.get(i) {
            first_of.entry(k.clone()).or_insert(i);
        }
    }
    for (ri, r) in rules.iter().enumerate().filter(|(_, r)| r.per_parent) {
        let mut by_parent: BTreeMap<(Str, Option<NodeIndex>), Vec<NodeIndex>> = BTreeMap::new();
        for i in candidates(r, &out) {
            let parent = g
                .graph
                .edges_directed(i, Direction::Incoming)
                .filter(|e| {
                    matches!(e.weight().kind, EdgeKind::Jump | EdgeKind::Goto)
                        && keep.contains(&e.source())
                })
                .map(|e| e.source())
                .min();
            // Endpoints of one grouped service share the group's first member as parent.
            let parent_key = parent.map(|p| {
                out.get(p)
                    .and_then(|k| first_of.get(k))
                    .copied()
                    .unwrap_or(p)
            });
            by_parent
                .entry((g.graph[i].table.clone(), parent_key))
                .or_default()
                .push(i);
        }
        for ((t, parent), members) in by_parent {
            if members.len() < r.min_members.max(1) {
                continue;
            }
            let gref = GroupRef {
                table: t.clone(),
                pattern: r.pattern.clone(),
                parent: parent.map(|p| g.graph[p].name.clone()),
            };
            if open(&gref) {
                for m in members {
                    out.opened.entry(m).or_insert_with(|| gref.clone());
                }
            } else {
                for m in members {
                    out.insert(m, (t.clone(), ri, parent));
                }
            }
        }
    }
    out
}

pub(crate) fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// How a chain of the graph is labelled: kind, label lines (name, rule
/// count with table and policy for built-ins, policy hits with `counters`,
/// kube-proxy service) and hover text. A target just gets its name.
pub(crate) fn chain_look(n: &Node, counters: bool) -> (ViewNodeKind, Vec<String>, String) {
    let NodeKind::Chain { builtin, policy } = &n.kind else {
        return (
            ViewNodeKind::Undefined,
            vec![n.name.to_string()],
            String::new(),
        );
    };
    let mut second = plural(n.rules, "rule");
    if *builtin {
        second = format!("{} · {second}", n.table);
    }
    if let Some(p) = policy {
        second.push_str(&format!(" · policy {p}"));
    }
    let mut lines = vec![n.name.to_string(), second];
    // User chains carry `[0:0]` placeholders, not counts.
    if counters
        && *builtin
        && let Some(c) = n.counters
    {
        lines.push(format!("policy hits {} pkts", c.packets));
    }
    if let Some(s) = &n.service {
        lines.push(s.to_string());
    }
    let title = format!(
        "{} chain {} in table {} (line {}): {}{}",
        if *builtin { "built-in" } else { "user" },
        n.name,
        n.table,
        n.line,
        plural(n.rules, "rule"),
        policy
            .as_ref()
            .map(|p| format!(", policy {p}"))
            .unwrap_or_default()
    );
    let kind = if *builtin {
        ViewNodeKind::Builtin
    } else {
        ViewNodeKind::User
    };
    (kind, lines, title)
}

/// For each of the first `count` view nodes, the lowest view node linked to
/// it through calls between view nodes (its caller group).
fn caller_groups(g: &ChainGraph, map: &Slots, count: usize) -> Vec<usize> {
    let mut parent: Vec<usize> = (0..count).collect();
    fn find(parent: &mut [usize], mut a: usize) -> usize {
        while parent[a] != a {
            parent[a] = parent[parent[a]];
            a = parent[a];
        }
        a
    }
    for e in g.graph.edge_references() {
        if let (Some(a), Some(b)) = (map.get(e.source()), map.get(e.target()))
            && a < count
            && b < count
        {
            let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
            parent[ra.max(rb)] = ra.min(rb);
        }
    }
    (0..count).map(|v| find(&mut parent, v)).collect()
}

/// The drawn node of a target (or undefined name).
fn target_node(g: &ChainGraph, i: NodeIndex) -> ViewNode {
    let n = &g.graph[i];
    let (kind, lines, title) = match n.kind {
        NodeKind::Target(v) => (
            ViewNodeKind::Target(v),
            vec![n.name.to_string()],
            format!("target {} in table {}", n.name, n.table),
        ),
        _ => (
            ViewNodeKind::Undefined,
            vec![n.name.to_string(), "undefined!".into()],
            format!(
                "{} is neither a chain of {} nor a known target",
                n.name, n.table
            ),
        ),
    };
    ViewNode {
        id: format!("{}/{}", n.table, n.name),
        kind,
        table: n.table.clone(),
        lines,
        rows: Vec::new(),
        title,
        members: Vec::new(),
        highlight: false,
        chain: None,
        group: None,
    }
}

/// Builds the drawable view of a chain graph.
pub fn view(rs: &Ruleset, g: &ChainGraph, opts: &ViewOptions) -> Result<View, ViewError> {
    let keep = select(g, opts)?;
    let grouped = groups(g, &keep, &opts.collapse, &opts.expanded);
    let kept_chains = keep.iter().filter(|&&i| g.graph[i].is_chain()).count();
    let split = opts.split_targets.unwrap_or(kept_chains > AUTO_RETURNS_MAX);
    // Left to the view, small views share a target node among the chains
    // of one caller group (chains linked by calls) rather than the whole
    // table: a verdict then never pulls edges from one group to another.
    let per_group = opts.split_targets.is_none() && !split;
    let mut nodes: Vec<ViewNode> = Vec::new();
    let mut map = Slots::new(g.graph.node_count());
    let mut group_node: HashMap<(Str, usize, Option<NodeIndex>), usize> = HashMap::default();
    // Per group node: rules of its members, and their one service (if one).
    let mut group_sums: HashMap<usize, (usize, Option<Option<String>>)> = HashMap::default();
    for i in g.graph.node_indices().filter(|i| keep.contains(i)) {
        let n = &g.graph[i];
        if let Some(key) = grouped.get(i) {
            let vi = *group_node.entry(key.clone()).or_insert_with(|| {
                let rule = &opts.collapse[key.1];
                let gref = GroupRef {
                    table: n.table.clone(),
                    pattern: rule.pattern.clone(),
                    parent: key.2.map(|p| g.graph[p].name.clone()),
                };
                nodes.push(ViewNode {
                    id: gref.id(),
                    kind: ViewNodeKind::Group(0),
                    table: n.table.clone(),
                    lines: vec![rule.pattern.clone()],
                    rows: Vec::new(),
                    title: String::new(),
                    members: Vec::new(),
                    highlight: false,
                    chain: None,
                    group: Some(gref),
                });
                nodes.len() - 1
            });
            let sums = group_sums.entry(vi).or_insert((0, None));
            sums.0 += n.rules;
            match (&sums.1, &n.service) {
                (None, Some(s)) => sums.1 = Some(Some(s.to_string())),
                (Some(Some(a)), Some(b)) if a != b => sums.1 = Some(None),
                _ => {}
            }
            let vn = &mut nodes[vi];
            vn.members.push(n.name.clone());
            if let ViewNodeKind::Group(c) = &mut vn.kind {
                *c += 1;
            }
            map.set(i, vi);
            continue;
        }
        if (split || per_group) && !n.is_chain() {
            continue;
        }
        let table = rs.table(&n.table);
        let (kind, lines, title) = match &n.kind {
            NodeKind::Chain { .. } => {
                let (kind, lines, title) = chain_look(n, opts.counters);
                // The drawing of an nft chain is titled in nft words.
                let nft = table.and_then(|t| t.nft_chain(&n.name));
                let title = nft.map_or(title, |c| c.title(&n.table, n.line, n.rules));
                (kind, lines, title)
            }
            NodeKind::Target(v) => (
                ViewNodeKind::Target(*v),
                vec![n.name.to_string()],
                format!("target {} in table {}", n.name, n.table),
            ),
            NodeKind::Undefined => (
                ViewNodeKind::Undefined,
                vec![n.name.to_string(), "undefined!".into()],
                format!(
                    "{} is neither a chain of {} nor a known target",
                    n.name, n.table
                ),
            ),
        };
        let mut rows = Vec::new();
        if opts.rules
            && n.is_chain()
            && let Some(table) = table
            && let Some(ci) = table.chain_position(&n.name)
        {
            let chain = &table.chains[ci];
            for (ri, r) in chain.rules.iter().enumerate().take(MAX_ROWS) {
                let mut text = crate::graph::rule_summary(r);
                if let Some(t) = r.target() {
                    if !text.is_empty() {
                        text.push(' ');
                    }
                    text.push_str(if t.goto { "-g " } else { "→ " });
                    text.push_str(t.name);
                } else if text.is_empty() {
                    text.push_str("(count only)");
                }
                if opts.counters
                    && let Some(c) = r.counters
                {
                    text = format!("[{}] {text}", c.packets);
                }
                rows.push(ViewRow {
                    text: shorten(&text, 64),
                    title: format!(
                        "line {}: {}",
                        r.line,
                        table.rule_text(ci, ri).unwrap_or_default()
                    ),
                    highlight: false,
                });
            }
            if chain.rules.len() > MAX_ROWS {
                rows.push(ViewRow {
                    text: format!("… {} more", chain.rules.len() - MAX_ROWS),
                    title: String::new(),
                    highlight: false,
                });
            }
        }
        nodes.push(ViewNode {
            id: format!("{}/{}", n.table, n.name),
            kind,
            table: n.table.clone(),
            lines,
            rows,
            title,
            members: Vec::new(),
            highlight: false,
            chain: n.is_chain().then(|| ChainRef {
                table: n.table.clone(),
                chain: n.name.clone(),
            }),
            group: grouped.opened.get(&i).cloned(),
        });
        map.set(i, nodes.len() - 1);
    }
    // Group labels once the members are known.
    for (vi, vn) in nodes.iter_mut().enumerate() {
        if let ViewNodeKind::Group(count) = vn.kind {
            let (rules, service) = group_sums.remove(&vi).unwrap_or_default();
            vn.lines.push(format!(
                "{} · {}",
                plural(count, "chain"),
                plural(rules, "rule")
            ));
            if let Some(Some(one)) = service {
                vn.lines.push(one.to_string());
            }
            let shown: Vec<&str> = vn.members.iter().take(20).map(|s| s.as_str()).collect();
            vn.title = format!(
                "{} chains in table {} collapsed: {}{}",
                count,
                vn.table,
                shown.join(", "),
                if count > 20 { ", …" } else { "" }
            );
        }
    }

    let chains = nodes
        .iter()
        .filter(|n| {
            matches!(
                n.kind,
                ViewNodeKind::Builtin | ViewNodeKind::User | ViewNodeKind::Group(_)
            )
        })
        .count();
    let returns = opts.returns.unwrap_or(chains <= AUTO_RETURNS_MAX);
    let mut split_node: HashMap<(usize, NodeIndex), usize> = HashMap::default();
    let group_of = if per_group {
        caller_groups(g, &map, nodes.len())
    } else {
        (0..nodes.len()).collect()
    };
    let mut merged: Vec<Merged> = Vec::new();
    let mut merge_index: HashMap<(usize, usize, EdgeKind, Option<usize>), usize> =
        HashMap::default();
    for piece in (Pieces {
        g,
        edges: g.graph.edge_references(),
        returns,
        block: None,
        held: None,
        pending: Vec::new(),
        caller: NodeIndex::end(),
    }) {
        let (source, target, kind, rule) = match piece {
            Piece::Stored(id) => {
                let Some((s, t)) = g.graph.edge_endpoints(id) else {
                    continue;
                };
                (s, t, g.graph[id].kind, g.graph[id].rule())
            }
            Piece::Return { callee, caller } => (callee, caller, EdgeKind::Return, None),
        };
        let Some(from) = map.get(source) else {
            continue;
        };
        let to = match map.get(target) {
            Some(to) => to,
            None if (split || per_group) && keep.contains(&target) => {
                let owner = group_of.get(from).copied().unwrap_or(from);
                let fresh = per_group && !split_node.keys().any(|k| k.1 == target);
                *split_node.entry((owner, target)).or_insert_with(|| {
                    let mut t = target_node(g, target);
                    // A group's copy of a shared target keeps the plain id
                    // when it is the first.
                    if !fresh {
                        t.id = format!("{}@{}", t.id, nodes[owner].id);
                    }
                    nodes.push(t);
                    nodes.len() - 1
                })
            }
            None => continue,
        };
        if from == to {
            continue;
        }
        let from_row = if opts.rules && !nodes[from].rows.is_empty() {
            rule.map(|r| r.min(MAX_ROWS))
        } else {
            None
        };
        let key = (from, to, kind, from_row);
        let mi = *merge_index.entry(key).or_insert_with(|| {
            merged.push(Merged {
                from,
                to,
                kind,
                from_row,
                summaries: Vec::new(),
                titles: Vec::new(),
                rules: 0,
                packets: 0,
                probability: None,
            });
            merged.len() - 1
        });
        let m = &mut merged[mi];
        m.rules += 1;
        // What an edge says is read from its rule, and only for the few
        // rules a merged edge shows.
        match piece {
            Piece::Stored(id) => {
                if m.summaries.len() < 2 {
                    m.summaries.push(g.edge_summary(rs, id));
                }
                if m.titles.len() < MAX_TITLE_RULES {
                    let line = g.edge_line(rs, id);
                    let loc = if line > 0 {
                        format!("line {line}: ")
                    } else {
                        String::new()
                    };
                    m.titles.push(format!("{loc}{}", g.edge_text(rs, id)));
                }
                if opts.counters {
                    m.packets += g.edge_counters(rs, id).map(|c| c.packets).unwrap_or(0);
                }
                m.probability = if m.rules == 1 {
                    g.edge_probability(rs, id)
                } else {
                    None
                };
            }
            Piece::Return { callee, caller } => {
                if m.summaries.len() < 2 {
                    m.summaries.push("return".into());
                }
                if m.titles.len() < MAX_TITLE_RULES {
                    m.titles.push(format!(
                        "{} returns to {}",
                        g.graph[callee].name, g.graph[caller].name
                    ));
                }
                m.probability = None;
            }
        }
    }
    let max_packets = merged.iter().map(|m| m.packets).max().unwrap_or(0);
    let edges = merged
        .into_iter()
        .map(|m| {
            let mut label = match m.kind {
                EdgeKind::Policy => "policy".to_string(),
                EdgeKind::Return => String::new(),
                // The row already says what the rule matches.
                _ if m.from_row.is_some() => String::new(),
                _ => m.summaries.first().cloned().unwrap_or_default(),
            };
            if let Some(p) = m.probability {
                label = format!("p={p:.3} {label}").trim_end().to_string();
            }
            if m.rules > 1 {
                // A first rule's summary says little about many merged ones.
                label = if label.is_empty() || m.rules > 3 {
                    format!("{} rules", m.rules)
                } else {
                    format!("{label} (+{} more)", m.rules - 1)
                };
            }
            // Zero hits show as the thinnest line; a "[0 pkts]" on every
            // quiet edge only crowds the labels that matter.
            if opts.counters && m.kind != EdgeKind::Return && m.packets > 0 {
                label = format!("{label} [{} pkts]", m.packets)
                    .trim_start()
                    .to_string();
            }
            let mut title = m.titles.join("\n");
            if m.rules > m.titles.len() {
                title.push_str(&format!("\n… and {} more", m.rules - m.titles.len()));
            }
            let weight = if opts.counters && max_packets > 0 {
                1.0 + 4.0 * ((m.packets as f64) + 1.0).ln() / ((max_packets as f64) + 1.0).ln()
            } else {
                1.0
            };
            ViewEdge {
                from: m.from,
                to: m.to,
                kind: m.kind,
                from_row: m.from_row,
                label,
                title,
                rules: m.rules,
                packets: opts.counters.then_some(m.packets),
                weight,
                highlight: false,
            }
        })
        .collect();
    let mut v = View {
        title: opts.title.clone(),
        nodes,
        edges,
        rules: opts.rules,
        frames: Vec::new(),
        flow: None,
        diff: None,
        legend: None,
    };
    if opts
        .copies
        .unwrap_or(chains <= super::copies::AUTO_COPIES_MAX_CHAINS)
    {
        super::copies::copy_shared_chains(&mut v);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{ParseOptions, parse_str};

    fn build(text: &str, opts: &ViewOptions) -> View {
        let p = parse_str(text, &ParseOptions::lenient("t")).unwrap();
        let g = ChainGraph::build(&p.ruleset);
        view(&p.ruleset, &g, opts).unwrap()
    }

    const KUBE: &str = "*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n\
        :KUBE-SVC-A - [0:0]\n:KUBE-SEP-1 - [0:0]\n:KUBE-SEP-2 - [0:0]\n\
        -A PREROUTING -j KUBE-SERVICES\n\
        -A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m comment --comment \"default/kubernetes:https cluster IP\" -m tcp --dport 443 -j KUBE-SVC-A\n\
        -A KUBE-SVC-A -m comment --comment \"default/kubernetes:https\" -m statistic --mode random --probability 0.5 -j KUBE-SEP-1\n\
        -A KUBE-SVC-A -m comment --comment \"default/kubernetes:https\" -j KUBE-SEP-2\n\
        -A KUBE-SEP-1 -p tcp -m comment --comment \"default/kubernetes:https\" -m tcp -j DNAT --to-destination 10.0.0.1:6443\n\
        -A KUBE-SEP-2 -p tcp -m comment --comment \"default/kubernetes:https\" -m tcp -j DNAT --to-destination 10.0.0.2:6443\n\
        COMMIT\n";

    #[test]
    fn endpoints_collapse_behind_their_service() {
        let v = build(KUBE, &ViewOptions::default());
        let group = v
            .nodes
            .iter()
            .find(|n| matches!(n.kind, ViewNodeKind::Group(2)))
            .unwrap();
        assert_eq!(group.id, "nat/KUBE-SEP-*/KUBE-SVC-A");
        assert!(
            group
                .lines
                .contains(&"default/kubernetes:https".to_string())
        );
        let svc = v.nodes.iter().find(|n| n.id == "nat/KUBE-SVC-A").unwrap();
        assert!(svc.lines.contains(&"default/kubernetes:https".to_string()));
        // Two rules into the group merged into one edge.
        let gi = v.nodes.iter().position(|n| n.id == group.id).unwrap();
        let into: Vec<&ViewEdge> = v
            .edges
            .iter()
            .filter(|e| e.to == gi && e.kind == EdgeKind::Jump)
            .collect();
        assert_eq!(into.len(), 1);
        assert_eq!(into[0].rules, 2);
    }

    #[test]
    fn an_expanded_group_shows_its_chains() {
        let folded = build(KUBE, &ViewOptions::default());
        let id = "nat/KUBE-SEP-*/KUBE-SVC-A";
        assert!(folded.nodes.iter().any(|n| n.id == id));
        let opts = ViewOptions {
            expanded: vec![id.into()],
            ..Default::default()
        };
        let open = build(KUBE, &opts);
        assert!(open.nodes.iter().all(|n| n.id != id));
        for sep in ["nat/KUBE-SEP-1", "nat/KUBE-SEP-2"] {
            assert!(open.nodes.iter().any(|n| n.id == sep), "{sep} drawn");
        }
        assert_eq!(open.nodes.len(), folded.nodes.len() + 1);
        // An id that names no group changes nothing.
        let other = ViewOptions {
            expanded: vec!["nat/KUBE-SEP-*/NOPE".into()],
            ..Default::default()
        };
        assert_eq!(build(KUBE, &other).nodes.len(), folded.nodes.len());
    }

    /// The desktop app once found a box's chain by its label and an open
    /// group by splitting ids; the boxes now say which they are.
    #[test]
    fn boxes_name_their_chain_and_group() {
        let sep = GroupRef {
            table: "nat".into(),
            pattern: "KUBE-SEP-*".into(),
            parent: Some("KUBE-SVC-A".into()),
        };
        let folded = build(KUBE, &ViewOptions::default());
        let group = folded
            .nodes
            .iter()
            .find(|n| matches!(n.kind, ViewNodeKind::Group(_)))
            .expect("the endpoints fold");
        assert_eq!(group.group.as_ref(), Some(&sep));
        assert_eq!(group.id, sep.id());
        assert_eq!(group.chain, None);
        for n in &folded.nodes {
            match n.kind {
                ViewNodeKind::Builtin | ViewNodeKind::User => {
                    let c = n.chain.as_ref().expect("a chain's box names it");
                    assert_eq!(n.id, format!("{}/{}", c.table, c.chain));
                    assert_eq!(n.group, None, "{}: no group is open", n.id);
                }
                ViewNodeKind::Group(_) => {}
                _ => assert_eq!(n.chain, None, "{}", n.id),
            }
        }
        let open = build(
            KUBE,
            &ViewOptions {
                expanded: vec![sep.id()],
                ..Default::default()
            },
        );
        for n in &open.nodes {
            let in_group = n.id.starts_with("nat/KUBE-SEP-");
            assert_eq!(n.group.as_ref(), in_group.then_some(&sep), "{}", n.id);
        }
    }

    #[test]
    fn opening_a_table_wide_group_regroups_endpoints_per_service() {
        let mut text = String::from("*nat\n:PREROUTING ACCEPT [0:0]\n");
        for s in 0..25 {
            text.push_str(&format!(
                ":KUBE-SVC-S{s} - [0:0]\n:KUBE-SEP-S{s}A - [0:0]\n:KUBE-SEP-S{s}B - [0:0]\n"
            ));
        }
        for s in 0..25 {
            text.push_str(&format!("-A PREROUTING -j KUBE-SVC-S{s}\n"));
            text.push_str(&format!(
                "-A KUBE-SVC-S{s} -j KUBE-SEP-S{s}A\n-A KUBE-SVC-S{s} -j KUBE-SEP-S{s}B\n"
            ));
        }
        text.push_str("COMMIT\n");
        let groups = |v: &View| {
            v.nodes
                .iter()
                .filter(|n| matches!(n.kind, ViewNodeKind::Group(_)))
                .count()
        };
        let folded = build(&text, &ViewOptions::default());
        assert_eq!(groups(&folded), 2, "services, and endpoints behind them");
        let opts = ViewOptions {
            expanded: vec!["nat/KUBE-SVC-*".into()],
            ..Default::default()
        };
        let open = build(&text, &opts);
        assert_eq!(groups(&open), 25, "one endpoint group per service");
        assert!(
            open.nodes
                .iter()
                .any(|n| n.id == "nat/KUBE-SEP-*/KUBE-SVC-S7")
        );
    }

    #[test]
    fn probability_on_single_balancing_edges() {
        let opts = ViewOptions {
            collapse: Vec::new(),
            ..Default::default()
        };
        let v = build(KUBE, &opts);
        assert!(v.edges.iter().any(|e| e.label.starts_with("p=0.500")));
    }

    #[test]
    fn from_and_depth() {
        let opts = ViewOptions {
            from: Some("KUBE-SVC-A".into()),
            depth: Some(1),
            collapse: Vec::new(),
            ..Default::default()
        };
        let v = build(KUBE, &opts);
        let ids: Vec<&str> = v.nodes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["nat/KUBE-SVC-A", "nat/KUBE-SEP-1", "nat/KUBE-SEP-2"]);
        let bad = ViewOptions {
            from: Some("NOPE".into()),
            ..Default::default()
        };
        let p = parse_str(KUBE, &ParseOptions::lenient("t")).unwrap();
        let g = ChainGraph::build(&p.ruleset);
        assert!(matches!(
            view(&p.ruleset, &g, &bad),
            Err(ViewError::UnknownChain(_))
        ));
    }

    #[test]
    fn rules_mode_edges_leave_rows() {
        let opts = ViewOptions {
            rules: true,
            collapse: Vec::new(),
            ..Default::default()
        };
        let v = build(KUBE, &opts);
        let svc = v
            .nodes
            .iter()
            .position(|n| n.id == "nat/KUBE-SVC-A")
            .unwrap();
        assert_eq!(v.nodes[svc].rows.len(), 2);
        let rows: Vec<Option<usize>> = v
            .edges
            .iter()
            .filter(|e| e.from == svc && e.kind == EdgeKind::Jump)
            .map(|e| e.from_row)
            .collect();
        assert_eq!(rows, [Some(0), Some(1)]);
    }

    /// Shared verdicts used to be one node per table, pulling an edge from
    /// every built-in chain of a small view into one box; now each caller
    /// group (chains linked by calls) has its own copy, and only `shared`
    /// asks for one per table.
    #[test]
    fn small_views_share_a_target_within_a_caller_group_only() {
        let text = "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n\
            :SSH - [0:0]\n-A INPUT -p tcp --dport 22 -j SSH\n-A INPUT -j ACCEPT\n\
            -A SSH -j ACCEPT\n-A FORWARD -j ACCEPT\nCOMMIT\n";
        let v = build(text, &ViewOptions::default());
        let accept: Vec<&str> = v
            .nodes
            .iter()
            .filter(|n| n.lines[0] == "ACCEPT")
            .map(|n| n.id.as_str())
            .collect();
        // INPUT and SSH share one; FORWARD and OUTPUT have their own.
        assert_eq!(
            accept,
            [
                "filter/ACCEPT",
                "filter/ACCEPT@filter/FORWARD",
                "filter/ACCEPT@filter/OUTPUT"
            ]
        );
        let into = |id: &str| {
            let t = v.nodes.iter().position(|n| n.id == id).unwrap();
            let mut from: Vec<&str> = v
                .edges
                .iter()
                .filter(|e| e.to == t)
                .map(|e| v.nodes[e.from].id.as_str())
                .collect();
            from.sort();
            from
        };
        assert_eq!(into("filter/ACCEPT"), ["filter/INPUT", "filter/SSH"]);
        let shared = build(
            text,
            &ViewOptions {
                split_targets: Some(false),
                ..Default::default()
            },
        );
        let n = shared
            .nodes
            .iter()
            .filter(|n| n.lines[0] == "ACCEPT")
            .count();
        assert_eq!(n, 1);
    }
}
