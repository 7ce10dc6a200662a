//! The picture's contract: what every producer (the chain graph, the hook
//! order, a traced path, a diff) makes and what layout, SVG, DOT, JSON and
//! the desktop app's canvas read. Nodes, edges, frames, and the text
//! metrics boxes are measured with.
//!
//! Every producer sits here too: the chain graph's view ([`view`]), the
//! hook order ([`flow_view`]), a traced packet on the chain graph
//! ([`trace_view`], lit by [`View::highlight`]) or alone
//! ([`path_only_view`]), an nft trace moved onto its drawing
//! ([`NftDrawn`]), and the marks of a diff ([`mark_view`]).

mod chains;
pub mod copies;
mod diff;
mod flow;
mod highlight;
pub mod metrics;
mod path_only;
mod trace;
mod trace_nft;

pub use chains::{
    AUTO_RETURNS_MAX, CollapseRule, FAN_OUT_GROUP, ViewError, ViewOptions, default_collapse, view,
};
pub(crate) use chains::{chain_look, plural};
pub use diff::{mark_view, with_ghosts};
pub use flow::flow_view;
pub use highlight::{PathIndex, PathLights, PathMark};
pub use path_only::{path_only_view, path_only_view_named};
pub use trace::{trace_view, trace_view_named};
pub use trace_nft::NftDrawn;

use serde::Serialize;

use crate::flow::Hook;
use crate::graph::{EdgeKind, Verdict};
use crate::model::Str;

/// What a drawn node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "detail")]
pub enum ViewNodeKind {
    /// A built-in chain (filled with its table's colour).
    Builtin,
    /// A user-defined chain.
    User,
    /// Several chains folded into one.
    Group(usize),
    /// A target.
    Target(Verdict),
    /// A jump to an undefined name.
    Undefined,
    /// A point of the packet path (flow view): wire, routing, socket.
    Point,
}

/// One row of a chain drawn as a rule table.
#[derive(Debug, Clone, Serialize)]
pub struct ViewRow {
    /// Short text shown in the row.
    pub text: String,
    /// Full rule (hover).
    pub title: String,
    /// The rule a highlighted path took.
    #[serde(default, skip_serializing_if = "is_false")]
    pub highlight: bool,
}

/// A node as drawn.
#[derive(Debug, Clone, Serialize)]
pub struct ViewNode {
    /// Stable id, `table/name` (groups: `table/pattern[/parent]`).
    pub id: String,
    /// Kind.
    #[serde(flatten)]
    pub kind: ViewNodeKind,
    /// Table (empty for flow points).
    pub table: Str,
    /// Label lines; the first is the name.
    pub lines: Vec<String>,
    /// Rule rows (`--rules` mode only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rows: Vec<ViewRow>,
    /// Hover text.
    pub title: String,
    /// Chains of a group.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<Str>,
    /// On the highlighted path (a traced packet went through it).
    #[serde(default, skip_serializing_if = "is_false")]
    pub highlight: bool,
    /// The chain this box is, for a chain's box; read by the desktop app
    /// instead of the label, and not written out.
    #[serde(skip)]
    pub chain: Option<ChainRef>,
    /// A group's box: the group it stands for. A chain's box: the open
    /// group ([`ViewOptions::expanded`]) it would fold back into. Not
    /// written out.
    #[serde(skip)]
    pub group: Option<GroupRef>,
}

/// Which chain a box stands for: its table and name in the ruleset the
/// view was made from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChainRef {
    /// Table name.
    pub table: Str,
    /// Chain name.
    pub chain: Str,
}

/// Which collapsed group a box stands for: the chains of `table` whose
/// names match `pattern`, those called from `parent` for a per-caller
/// group.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupRef {
    /// Table name.
    pub table: Str,
    /// The collapse rule's glob.
    pub pattern: String,
    /// The calling chain of a per-caller group.
    pub parent: Option<Str>,
}

impl GroupRef {
    /// The group's [`ViewNode::id`], which [`ViewOptions::expanded`] takes.
    pub fn id(&self) -> String {
        match &self.parent {
            Some(p) => format!("{}/{}/{p}", self.table, self.pattern),
            None => format!("{}/{}", self.table, self.pattern),
        }
    }
}

/// An edge as drawn (parallel rules merged).
#[derive(Debug, Clone, Serialize)]
pub struct ViewEdge {
    /// Index into [`View::nodes`].
    pub from: usize,
    /// Index into [`View::nodes`].
    pub to: usize,
    /// Call, goto, policy or return.
    pub kind: EdgeKind,
    /// Row of `from` the edge leaves from (`--rules` mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_row: Option<usize>,
    /// Short label.
    pub label: String,
    /// Full rules (hover).
    pub title: String,
    /// Rules merged into this edge.
    pub rules: usize,
    /// Packets over all merged rules, when counters are shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packets: Option<u64>,
    /// Stroke width factor (1 = normal; more with packet counters).
    pub weight: f64,
    /// On the highlighted path (a traced packet took it).
    #[serde(default, skip_serializing_if = "is_false")]
    pub highlight: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A frame around some nodes of a view, for views read in a given order
/// (a traced packet's path: one frame per hook and table it went through).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ViewFrame {
    /// Caption; an empty one draws no frame, only keeps the nodes' place
    /// in the order.
    pub label: String,
    /// Table whose colours the frame takes (may be empty).
    pub table: Str,
    /// Indices into [`View::nodes`].
    pub nodes: Vec<usize>,
}

/// A drawable graph: what layout and renderers read.
#[derive(Debug, Clone, Default, Serialize)]
pub struct View {
    /// Title.
    pub title: String,
    /// Nodes in a stable order (dump order).
    pub nodes: Vec<ViewNode>,
    /// Edges in a stable order.
    pub edges: Vec<ViewEdge>,
    /// Nodes drawn as rule tables.
    pub rules: bool,
    /// When not empty, every node is in one frame and the layout stacks
    /// the frames top to bottom in this order (instead of one frame per
    /// table in kernel order).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub frames: Vec<ViewFrame>,
    /// Set by the hook-order view ([`flow_view`]): where its
    /// nodes sit in the netfilter picture, which layouts then draw.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow: Option<FlowPlan>,
    /// Set by `iptviz render --diff` ([`mark_view`]): what
    /// changed, per node and rule row.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<DiffMarks>,
    /// A legend of its own, for views whose boxes and arrows are not
    /// chains and jumps (the reach matrix); `None` derives it from the
    /// node and edge kinds.
    #[serde(skip)]
    pub legend: Option<Vec<crate::render::style::LegendEntry>>,
}

/// How a node or a rule row of a diff drawing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiffMark {
    /// Only in the new ruleset.
    Added,
    /// In both, with differences (or renamed, or moved).
    Changed,
    /// Only in the old ruleset: drawn as a ghost.
    Removed,
}

/// The diff marks of a view.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DiffMarks {
    /// `(node index, mark)`.
    pub nodes: Vec<(usize, DiffMark)>,
    /// `(node index, row index, mark)`.
    pub rows: Vec<(usize, usize, DiffMark)>,
}

impl DiffMarks {
    /// The mark of node `i`.
    pub fn node(&self, i: usize) -> Option<DiffMark> {
        self.nodes.iter().find(|m| m.0 == i).map(|m| m.1)
    }

    /// The marks of node `i`'s rows, indexed by row.
    pub fn rows_of(&self, i: usize, rows: usize) -> Vec<Option<DiffMark>> {
        let mut v = vec![None; rows];
        for &(n, r, m) in &self.rows {
            if n == i && r < rows {
                v[r] = Some(m);
            }
        }
        v
    }
}

/// Where the nodes of a hook-order view belong in the netfilter picture,
/// so that a layout can draw that picture rather than a generic graph.
/// Every field is an index into [`View::nodes`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowPlan {
    /// Each hook's steps in the order a packet meets them, all five hooks
    /// in [`Hook::ALL`] order (FORWARD is empty when no table has it).
    pub hooks: Vec<(Hook, Vec<usize>)>,
    /// The packet arriving from the network.
    pub wire_in: usize,
    /// The routing decision after PREROUTING: local or forward.
    pub routing: usize,
    /// The local process, between INPUT and OUTPUT.
    pub local: usize,
    /// The route lookup before OUTPUT.
    pub out_routing: usize,
    /// The reroute check after OUTPUT.
    pub reroute: usize,
    /// The packet leaving to the network.
    pub wire_out: usize,
}

impl FlowPlan {
    /// The steps of one hook.
    pub fn hook(&self, hook: Hook) -> &[usize] {
        self.hooks
            .iter()
            .find(|(h, _)| *h == hook)
            .map_or(&[], |(_, v)| v.as_slice())
    }

    /// Every index the plan names.
    pub fn indices(&self) -> impl Iterator<Item = usize> + '_ {
        [
            self.wire_in,
            self.routing,
            self.local,
            self.out_routing,
            self.reroute,
            self.wire_out,
        ]
        .into_iter()
        .chain(self.hooks.iter().flat_map(|(_, v)| v.iter().copied()))
    }
}

/// Tables of a view in kernel order (raw, mangle, nat, filter, security),
/// then any others in order of appearance.
pub fn table_order(view: &View) -> Vec<&str> {
    let known = ["raw", "mangle", "nat", "filter", "security"];
    let mut out: Vec<&str> = known
        .iter()
        .copied()
        .filter(|t| view.nodes.iter().any(|n| n.table == *t))
        .collect();
    for n in &view.nodes {
        if !n.table.is_empty() && !out.contains(&n.table.as_str()) {
            out.push(n.table.as_str());
        }
    }
    out
}
