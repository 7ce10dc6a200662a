//! What the canvas paints: positioned boxes and edge paths in world
//! coordinates, with everything needed to colour them.
//!
//! The canvas only reads a [`Scene`]. Today scenes come from [`layered`], a
//! small layered layout of our own; when the library's layout lands it
//! becomes another producer of the same struct.

use std::collections::HashSet;

use egui::{Pos2, Rect, pos2, vec2};
use iptviz::model::Table;

use crate::graph::TableGraph;

/// What a box stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeKind {
    /// One chain (index in `Table::chains`).
    Chain(u32),
    /// A folded group (index in `TableGraph::groups`).
    Group(u32),
    /// A verdict or target box of the library's drawing (not selectable).
    Target,
}

/// How a box is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeStyle {
    /// Built-in chain: filled with the table colour.
    Builtin,
    /// User chain: outlined.
    User,
    /// Folded group: stacked outline.
    Group,
    /// Verdict or extension target, coloured by the verdict.
    Target,
}

/// A positioned box.
#[derive(Debug, Clone)]
pub struct SceneNode {
    /// Where it is, in world units.
    pub rect: Rect,
    /// What it stands for.
    pub kind: NodeKind,
    /// How to draw it.
    pub style: NodeStyle,
    /// First line: chain name or `PREFIX* (n)`.
    pub title: String,
    /// Second line: rule count, policy, service.
    pub subtitle: String,
}

/// A positioned edge.
#[derive(Debug, Clone)]
pub struct SceneEdge {
    /// Source box (index in `Scene::nodes`).
    pub from: u32,
    /// Target box.
    pub to: u32,
    /// Path, first point on the source box, last on the target.
    pub points: Vec<Pos2>,
    /// All merged rules are `-g`.
    pub goto: bool,
    /// Number of rules merged into the edge.
    pub rules: u32,
    /// Counted packets of those rules.
    pub packets: u64,
    /// Packets on a log scale against the busiest edge, 0..=1.
    pub heat: f32,
    /// `points` is a cubic Bézier chain `p0 c1 c2 p1 ...` (library layout).
    pub curved: bool,
    /// Fall-through or return: drawn dotted.
    pub ret: bool,
    /// Skips a column on its own row: drawn dipping into the row gap so it
    /// does not run through the boxes in between.
    pub dip: bool,
}

/// One column of boxes, top to bottom, for fast culling and hit tests.
#[derive(Debug, Clone)]
pub struct Column {
    /// Left edge.
    pub left: f32,
    /// Right edge (widest box).
    pub right: f32,
    /// Boxes in this column, sorted by y.
    pub nodes: Vec<u32>,
}

/// All edges from one box into one column, drawn as a single wedge when
/// there are too many edges to draw one by one.
#[derive(Debug, Clone)]
pub struct Fan {
    /// Where the edges leave.
    pub from: Pos2,
    /// Left edge of the target column.
    pub x: f32,
    /// Highest target centre.
    pub y0: f32,
    /// Lowest target centre.
    pub y1: f32,
    /// Number of edges.
    pub count: u32,
    /// Hottest edge.
    pub heat: f32,
}

/// All edges from one column into another, drawn as one band when even
/// the fans are too many.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Right edge of the source column.
    pub x0: f32,
    /// Source y range (centres of the boxes the edges leave).
    pub from: (f32, f32),
    /// Left edge of the target column.
    pub x1: f32,
    /// Target y range.
    pub to: (f32, f32),
    /// Number of edges.
    pub count: u32,
    /// Hottest edge.
    pub heat: f32,
}

/// Everything the canvas draws for one table.
#[derive(Debug, Clone)]
pub struct Scene {
    /// Boxes.
    pub nodes: Vec<SceneNode>,
    /// Edges.
    pub edges: Vec<SceneEdge>,
    /// Columns, left to right.
    pub columns: Vec<Column>,
    /// Edges bundled per (source box, target column).
    pub fans: Vec<Fan>,
    /// Edges bundled per (source column, target column).
    pub bundles: Vec<Bundle>,
    /// Edges bundled per (source layer, target layer): the coarsest level.
    pub bands: Vec<Bundle>,
    /// Box of each chain (its own, or its group's).
    pub node_of_chain: Vec<u32>,
    /// Bounding box of everything.
    pub bounds: Rect,
}

impl Scene {
    /// The box at a world position.
    pub fn node_at(&self, p: Pos2) -> Option<usize> {
        if self.columns.is_empty() {
            return self.nodes.iter().position(|n| n.rect.contains(p));
        }
        let col = self
            .columns
            .iter()
            .find(|c| c.left <= p.x && p.x <= c.right)?;
        let i = col
            .nodes
            .partition_point(|&n| self.nodes[n as usize].rect.bottom() < p.y);
        let n = *col.nodes.get(i)? as usize;
        self.nodes[n].rect.contains(p).then_some(n)
    }

    /// Boxes that may intersect `area`, column by column (binary search).
    pub fn visible_nodes(&self, area: egui::Rect) -> Box<dyn Iterator<Item = usize> + '_> {
        if self.columns.is_empty() {
            // Small library layouts have no columns: test every box.
            return Box::new(
                (0..self.nodes.len()).filter(move |&i| self.nodes[i].rect.intersects(area)),
            );
        }
        Box::new(
            self.columns
                .iter()
                .filter(move |c| c.right >= area.left() && c.left <= area.right())
                .flat_map(move |c| {
                    let start = c
                        .nodes
                        .partition_point(|&n| self.nodes[n as usize].rect.bottom() < area.top());
                    c.nodes[start..]
                        .iter()
                        .map(|&n| n as usize)
                        .take_while(move |&n| self.nodes[n].rect.top() <= area.bottom())
                }),
        )
    }

    /// The box showing chain `chain`.
    pub fn node_for_chain(&self, chain: usize) -> Option<usize> {
        self.node_of_chain.get(chain).map(|&n| n as usize)
    }
}

/// Box height in world units.
pub const NODE_H: f32 = 40.0;
const GAP_Y: f32 = 16.0;
const GAP_X: f32 = 90.0;
const CHAR_W: f32 = 7.2;

/// Lays one table out left to right: built-in chains in the first column,
/// each chain one column right of its deepest caller.
pub fn layered(table: &Table, graph: &TableGraph, expanded: &HashSet<u32>) -> Scene {
    // 1. Boxes: one per chain, or one per folded group.
    let mut kinds: Vec<NodeKind> = Vec::new();
    let mut node_of_chain = vec![0u32; table.chains.len()];
    let mut group_node: Vec<Option<u32>> = vec![None; graph.groups.len()];
    for (ci, _) in table.chains.iter().enumerate() {
        let folded = graph
            .group_of
            .get(ci)
            .copied()
            .flatten()
            .filter(|g| !expanded.contains(g));
        node_of_chain[ci] = match folded {
            Some(g) => *group_node[g as usize].get_or_insert_with(|| {
                kinds.push(NodeKind::Group(g));
                kinds.len() as u32 - 1
            }),
            None => {
                kinds.push(NodeKind::Chain(ci as u32));
                kinds.len() as u32 - 1
            }
        };
    }
    let n = kinds.len();

    // 2. Edges between boxes, merged.
    let mut merged: std::collections::HashMap<(u32, u32), SceneEdge> = Default::default();
    let mut edge_order: Vec<(u32, u32)> = Vec::new();
    for e in &graph.edges {
        let (a, b) = (node_of_chain[e.from as usize], node_of_chain[e.to as usize]);
        if a == b {
            continue;
        }
        let entry = merged.entry((a, b)).or_insert_with(|| {
            edge_order.push((a, b));
            SceneEdge {
                from: a,
                to: b,
                points: Vec::new(),
                goto: true,
                rules: 0,
                packets: 0,
                heat: 0.0,
                curved: false,
                ret: false,
                dip: false,
            }
        });
        entry.goto &= e.goto;
        entry.rules += e.rules;
        entry.packets += e.packets;
    }
    let mut edges: Vec<SceneEdge> = edge_order.iter().filter_map(|k| merged.remove(k)).collect();
    for e in &mut edges {
        e.heat = graph.heat(e.packets);
    }

    // 3. Ranks: longest path from the roots (Kahn); boxes left in a cycle go
    //    one right of what reached them.
    let mut preds: Vec<Vec<u32>> = vec![Vec::new(); n];
    let mut succs: Vec<Vec<u32>> = vec![Vec::new(); n];
    for e in &edges {
        succs[e.from as usize].push(e.to);
        preds[e.to as usize].push(e.from);
    }
    let mut indeg: Vec<usize> = preds.iter().map(Vec::len).collect();
    let mut rank = vec![0u32; n];
    let mut done = vec![false; n];
    let mut queue: std::collections::VecDeque<u32> =
        (0..n as u32).filter(|&v| indeg[v as usize] == 0).collect();
    while let Some(v) = queue.pop_front() {
        done[v as usize] = true;
        for &w in &succs[v as usize] {
            let w = w as usize;
            rank[w] = rank[w].max(rank[v as usize] + 1);
            indeg[w] -= 1;
            if indeg[w] == 0 {
                queue.push_back(w as u32);
            }
        }
    }
    for v in 0..n {
        if !done[v] {
            let r = preds[v]
                .iter()
                .filter(|&&p| done[p as usize])
                .map(|&p| rank[p as usize] + 1)
                .max()
                .unwrap_or(1);
            rank[v] = r;
            done[v] = true;
        }
    }

    // 4. Order inside each column: declaration order, then a barycentre
    //    sweep against the callers so that edges cross less.
    let ranks = rank.iter().copied().max().map_or(0, |m| m as usize + 1);
    let mut columns: Vec<Vec<u32>> = vec![Vec::new(); ranks];
    for v in 0..n {
        columns[rank[v] as usize].push(v as u32);
    }
    let mut pos = vec![0f32; n];
    for col in &columns {
        for (i, &v) in col.iter().enumerate() {
            pos[v as usize] = i as f32;
        }
    }
    for col in columns.iter_mut().skip(1) {
        let key = |v: u32| {
            let p = &preds[v as usize];
            if p.is_empty() {
                f32::MAX
            } else {
                p.iter().map(|&u| pos[u as usize]).sum::<f32>() / p.len() as f32
            }
        };
        let mut keyed: Vec<(f32, u32)> = col.iter().map(|&v| (key(v), v)).collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
        *col = keyed.into_iter().map(|(_, v)| v).collect();
        for (i, &v) in col.iter().enumerate() {
            pos[v as usize] = i as f32;
        }
    }

    // 5. Labels and sizes, then coordinates.
    let mut nodes: Vec<SceneNode> = kinds
        .iter()
        .map(|&kind| {
            let (style, title, subtitle) = label(table, graph, kind);
            let chars = title.chars().count().max(subtitle.chars().count()) as f32;
            let w = (chars * CHAR_W + 24.0).clamp(96.0, 380.0);
            SceneNode {
                rect: Rect::from_min_size(Pos2::ZERO, vec2(w, NODE_H)),
                kind,
                style,
                title,
                subtitle,
            }
        })
        .collect();
    // A layer with thousands of boxes (kube-proxy endpoints) wraps into
    // several columns so that the whole picture stays roughly square.
    let mut x = 0.0;
    let mut placed: Vec<Column> = Vec::with_capacity(columns.len());
    let mut col_of = vec![0u32; n];
    for layer in columns {
        let rows = wrap_rows(layer.len());
        for chunk in layer.chunks(rows.max(1)) {
            let width = chunk
                .iter()
                .map(|&v| nodes[v as usize].rect.width())
                .fold(0.0, f32::max);
            let mut y = 0.0;
            for &v in chunk {
                let node = &mut nodes[v as usize];
                node.rect = Rect::from_min_size(pos2(x, y), node.rect.size());
                col_of[v as usize] = placed.len() as u32;
                y += NODE_H + GAP_Y;
            }
            placed.push(Column {
                left: x,
                right: x + width,
                nodes: chunk.to_vec(),
            });
            x += width
                + if rows < layer.len() {
                    GAP_X / 3.0
                } else {
                    GAP_X
                };
        }
        if rows < layer.len() {
            x += GAP_X;
        }
    }
    let columns = placed;
    for e in &mut edges {
        let (a, b) = (nodes[e.from as usize].rect, nodes[e.to as usize].rect);
        e.dip = (a.center().y - b.center().y).abs() < NODE_H
            && columns
                .iter()
                .any(|c| c.left > a.right() && c.right < b.left());
        e.points = if b.left() > a.right() {
            vec![a.right_center(), b.left_center()]
        } else {
            // A call backwards (only in cyclic, broken dumps): leave from the
            // bottom, arrive at the top.
            vec![a.center_bottom(), b.center_top()]
        };
    }
    let mut fan_at: std::collections::HashMap<(u32, u32), usize> = Default::default();
    let mut fans: Vec<Fan> = Vec::new();
    for e in &edges {
        let (a, b) = (nodes[e.from as usize].rect, nodes[e.to as usize].rect);
        let key = (e.from, col_of[e.to as usize]);
        let i = *fan_at.entry(key).or_insert_with(|| {
            fans.push(Fan {
                from: a.right_center(),
                x: b.left(),
                y0: f32::MAX,
                y1: f32::MIN,
                count: 0,
                heat: 0.0,
            });
            fans.len() - 1
        });
        let f = &mut fans[i];
        f.y0 = f.y0.min(b.center().y);
        f.y1 = f.y1.max(b.center().y);
        f.count += 1;
        f.heat = f.heat.max(e.heat);
    }
    let mut bundle_at: std::collections::HashMap<(u32, u32), usize> = Default::default();
    let mut bundles: Vec<Bundle> = Vec::new();
    for e in &edges {
        let (a, b) = (nodes[e.from as usize].rect, nodes[e.to as usize].rect);
        let key = (col_of[e.from as usize], col_of[e.to as usize]);
        let i = *bundle_at.entry(key).or_insert_with(|| {
            bundles.push(Bundle {
                x0: columns[key.0 as usize].right,
                from: (f32::MAX, f32::MIN),
                x1: columns[key.1 as usize].left,
                to: (f32::MAX, f32::MIN),
                count: 0,
                heat: 0.0,
            });
            bundles.len() - 1
        });
        let bd = &mut bundles[i];
        bd.from = (bd.from.0.min(a.center().y), bd.from.1.max(a.center().y));
        bd.to = (bd.to.0.min(b.center().y), bd.to.1.max(b.center().y));
        bd.count += 1;
        bd.heat = bd.heat.max(e.heat);
    }
    // Layers span several columns once wrapped.
    let mut layer_x = vec![(f32::MAX, f32::MIN); ranks];
    for (v, &r) in rank.iter().enumerate() {
        let c = &columns[col_of[v] as usize];
        let lx = &mut layer_x[r as usize];
        *lx = (lx.0.min(c.left), lx.1.max(c.right));
    }
    let mut band_at: std::collections::HashMap<(u32, u32), usize> = Default::default();
    let mut bands: Vec<Bundle> = Vec::new();
    for e in &edges {
        let (a, b) = (nodes[e.from as usize].rect, nodes[e.to as usize].rect);
        let key = (rank[e.from as usize], rank[e.to as usize]);
        let i = *band_at.entry(key).or_insert_with(|| {
            bands.push(Bundle {
                x0: layer_x[key.0 as usize].1,
                from: (f32::MAX, f32::MIN),
                x1: layer_x[key.1 as usize].0,
                to: (f32::MAX, f32::MIN),
                count: 0,
                heat: 0.0,
            });
            bands.len() - 1
        });
        let bd = &mut bands[i];
        bd.from = (bd.from.0.min(a.center().y), bd.from.1.max(a.center().y));
        bd.to = (bd.to.0.min(b.center().y), bd.to.1.max(b.center().y));
        bd.count += 1;
        bd.heat = bd.heat.max(e.heat);
    }
    let bounds = nodes
        .iter()
        .fold(Rect::NOTHING, |acc, nd| acc.union(nd.rect));
    Scene {
        nodes,
        edges,
        columns,
        fans,
        bundles,
        bands,
        node_of_chain,
        bounds: if bounds.is_positive() {
            bounds
        } else {
            Rect::from_min_size(Pos2::ZERO, vec2(100.0, 100.0))
        },
    }
}

/// Largest table drawn with the library's layout (layout-rs below a few
/// hundred boxes, like `iptviz render`); bigger ones use [`layered`].
pub const LIBRARY_MAX_CHAINS: usize = 60;

/// The library's drawing of one table (the same one `iptviz render`
/// writes), when the table is small and has no groups to fold.
pub fn from_library(
    rs: &iptviz::Ruleset,
    chain_graph: &iptviz::graph::ChainGraph,
    table: &Table,
    graph: &TableGraph,
) -> Option<Scene> {
    use iptviz::graph::{EdgeKind, ViewNodeKind, ViewOptions, view};
    use iptviz::layout::{Choice, layout};
    if table.chains.len() > LIBRARY_MAX_CHAINS || !graph.groups.is_empty() {
        return None;
    }
    let opts = ViewOptions {
        tables: vec![table.name.to_string()],
        counters: rs.has_counters(),
        ..Default::default()
    };
    let v = view(rs, chain_graph, &opts).ok()?;
    if v.nodes.is_empty()
        || v.nodes
            .iter()
            .any(|n| matches!(n.kind, ViewNodeKind::Group(_)))
    {
        return None;
    }
    let l = layout(&v, Choice::Auto);
    if l.nodes.len() != v.nodes.len() || l.edges.len() != v.edges.len() {
        return None;
    }
    let mut node_of_chain = vec![0u32; table.chains.len()];
    let mut nodes = Vec::with_capacity(v.nodes.len());
    for (i, (vn, b)) in v.nodes.iter().zip(&l.nodes).enumerate() {
        let rect = Rect::from_min_size(pos2(b.x as f32, b.y as f32), vec2(b.w as f32, b.h as f32));
        let name = vn.lines.first().cloned().unwrap_or_default();
        let (kind, style) = match vn.kind {
            ViewNodeKind::Builtin | ViewNodeKind::User => {
                let ci = table.chain_position(&name)?;
                node_of_chain[ci] = i as u32;
                let style = if vn.kind == ViewNodeKind::Builtin {
                    NodeStyle::Builtin
                } else {
                    NodeStyle::User
                };
                (NodeKind::Chain(ci as u32), style)
            }
            _ => (NodeKind::Target, NodeStyle::Target),
        };
        nodes.push(SceneNode {
            rect,
            kind,
            style,
            title: name,
            subtitle: vn
                .lines
                .iter()
                .skip(1)
                .cloned()
                .collect::<Vec<_>>()
                .join(" · "),
        });
    }
    let edges = v
        .edges
        .iter()
        .zip(&l.edges)
        .map(|(ve, path)| {
            let packets = ve.packets.unwrap_or(0);
            SceneEdge {
                from: ve.from as u32,
                to: ve.to as u32,
                points: path
                    .points
                    .iter()
                    .map(|p| pos2(p.x as f32, p.y as f32))
                    .collect(),
                goto: ve.kind == EdgeKind::Goto,
                rules: ve.rules as u32,
                packets,
                heat: graph.heat(packets),
                curved: path.curved,
                ret: ve.kind == EdgeKind::Return,
                dip: false,
            }
        })
        .collect();
    let bounds = nodes
        .iter()
        .fold(Rect::NOTHING, |acc: Rect, n: &SceneNode| acc.union(n.rect));
    Some(Scene {
        nodes,
        edges,
        columns: Vec::new(),
        fans: Vec::new(),
        bundles: Vec::new(),
        bands: Vec::new(),
        node_of_chain,
        bounds,
    })
}

/// Rows per column for a layer of `len` boxes.
fn wrap_rows(len: usize) -> usize {
    const MIN_ROWS: usize = 80;
    if len <= MIN_ROWS {
        return len;
    }
    ((len as f32).sqrt() * 1.5).ceil().max(MIN_ROWS as f32) as usize
}

fn label(table: &Table, graph: &TableGraph, kind: NodeKind) -> (NodeStyle, String, String) {
    match kind {
        // The layered layout draws chains and groups only.
        NodeKind::Target => (NodeStyle::Target, String::new(), String::new()),
        NodeKind::Chain(ci) => {
            let c = &table.chains[ci as usize];
            let rules = plural(c.rules.len(), "rule");
            if c.builtin {
                let policy = c.policy.as_deref().unwrap_or("-");
                (
                    NodeStyle::Builtin,
                    c.name.to_string(),
                    format!("{rules} · policy {policy}"),
                )
            } else {
                let sub = match graph.service.get(ci as usize).and_then(Option::as_ref) {
                    Some(s) => format!("{rules} · {s}"),
                    None => rules,
                };
                (NodeStyle::User, c.name.to_string(), sub)
            }
        }
        NodeKind::Group(g) => {
            let grp = &graph.groups[g as usize];
            let rules: usize = grp
                .members
                .iter()
                .map(|&m| table.chains[m as usize].rules.len())
                .sum();
            (
                NodeStyle::Group,
                format!("{}* ({} chains)", grp.prefix, grp.members.len()),
                format!("{} · double-click to expand", plural(rules, "rule")),
            )
        }
    }
}

/// `1 rule`, `3 rules`.
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iptviz::parse::{ParseOptions, parse_str};

    fn table(text: &str) -> Table {
        let p = parse_str(text, &ParseOptions::lenient("t")).expect("parses");
        p.ruleset.tables.into_iter().next().expect("one table")
    }

    #[test]
    fn callers_are_left_of_callees() {
        let t = table(
            "*filter\n:INPUT ACCEPT [0:0]\n:a - [0:0]\n:b - [0:0]\n\
             -A INPUT -j a\n-A INPUT -j b\n-A a -j b\nCOMMIT\n",
        );
        let g = TableGraph::build(&t);
        let s = layered(&t, &g, &HashSet::new());
        assert_eq!(s.nodes.len(), 3);
        assert_eq!(s.edges.len(), 3);
        let x = |i: usize| s.nodes[i].rect.left();
        assert!(x(0) < x(1) && x(1) < x(2), "INPUT < a < b");
        let skip = s
            .edges
            .iter()
            .find(|e| e.from == 0 && e.to == 2)
            .expect("INPUT -> b");
        assert!(skip.dip, "INPUT -> b passes column of a");
        assert!(s.edges.iter().filter(|e| e.dip).count() == 1);
        assert_eq!(s.nodes[0].style, NodeStyle::Builtin);
        for (i, n) in s.nodes.iter().enumerate() {
            assert_eq!(s.node_at(n.rect.center()), Some(i));
        }
        assert_eq!(s.node_at(pos2(-50.0, 0.0)), None);
        assert_eq!(s.visible_nodes(s.bounds).count(), 3);
        let left = Rect::from_min_max(pos2(-10.0, -10.0), pos2(20.0, 20.0));
        assert_eq!(s.visible_nodes(left).collect::<Vec<_>>(), [0]);
        assert_eq!(s.fans.len(), 3);
    }

    #[test]
    fn cycles_do_not_hang_or_panic() {
        let t = table(
            "*filter\n:INPUT ACCEPT [0:0]\n:a - [0:0]\n:b - [0:0]\n\
             -A INPUT -j a\n-A a -j b\n-A b -j a\nCOMMIT\n",
        );
        let g = TableGraph::build(&t);
        let s = layered(&t, &g, &HashSet::new());
        assert_eq!(s.nodes.len(), 3);
        assert!(s.edges.iter().all(|e| e.points.len() == 2));
    }

    #[test]
    fn big_layers_wrap_into_columns() {
        assert_eq!(wrap_rows(10), 10);
        assert_eq!(wrap_rows(80), 80);
        assert_eq!(wrap_rows(10_000), 150);
        let mut text = String::from("*nat\n:PREROUTING ACCEPT [0:0]\n");
        for i in 0..500 {
            text.push_str(&format!(":c{i} - [0:0]\n-A PREROUTING -j c{i}\n"));
        }
        text.push_str("COMMIT\n");
        let t = table(&text);
        let s = layered(&t, &TableGraph::build(&t), &HashSet::new());
        assert_eq!(s.columns.len(), 1 + 500usize.div_ceil(wrap_rows(500)));
        for (i, n) in s.nodes.iter().enumerate() {
            assert_eq!(s.node_at(n.rect.center()), Some(i));
        }
        // One wedge per target column, one band per column pair.
        assert_eq!(s.fans.len(), s.columns.len() - 1);
        assert_eq!(s.bundles.len(), s.columns.len() - 1);
        assert_eq!(s.bands.len(), 1);
        assert_eq!(s.bands[0].count, 500);
    }

    #[test]
    fn small_tables_use_the_library_drawing() {
        let p = parse_str(
            include_str!("../tests/fixtures/small-host.rules"),
            &ParseOptions::lenient("t"),
        )
        .expect("parses");
        let rs = &p.ruleset;
        let cg = iptviz::graph::ChainGraph::build(rs);
        let t = rs.table("filter").expect("filter");
        let s = from_library(rs, &cg, t, &TableGraph::build(t)).expect("library scene");
        assert!(s.columns.is_empty());
        assert!(s.nodes.iter().any(|n| n.kind == NodeKind::Target));
        let input = s.node_for_chain(0).expect("INPUT drawn");
        assert_eq!(s.nodes[input].title, "INPUT");
        assert_eq!(s.node_at(s.nodes[input].rect.center()), Some(input));
        assert!(s.edges.iter().any(|e| e.heat > 0.0), "counters become heat");
    }

    #[test]
    fn groups_fold_and_expand() {
        let mut text = String::from("*nat\n:PREROUTING ACCEPT [0:0]\n");
        for i in 0..8 {
            text.push_str(&format!(":KUBE-SEP-ABCDEFGH{i:04} - [0:0]\n"));
        }
        for i in 0..8 {
            text.push_str(&format!("-A PREROUTING -j KUBE-SEP-ABCDEFGH{i:04}\n"));
        }
        text.push_str("COMMIT\n");
        let t = table(&text);
        let g = TableGraph::build(&t);
        let folded = layered(&t, &g, &HashSet::new());
        assert_eq!(folded.nodes.len(), 2);
        assert_eq!(folded.edges.len(), 1);
        assert_eq!(folded.edges[0].rules, 8);
        assert!(folded.nodes[1].title.starts_with("KUBE-SEP-* (8"));
        let open = layered(&t, &g, &HashSet::from([0]));
        assert_eq!(open.nodes.len(), 9);
        assert_eq!(open.edges.len(), 8);
        assert_eq!(open.fans.len(), 1);
        assert_eq!(open.fans[0].count, 8);
    }
}
