//! What the canvas paints: the library's view of one table, laid out by the
//! library, converted once to egui types. These are the boxes, paths,
//! labels and styles `iptviz render` writes to SVG, so the app and the
//! export show the same picture.
//!
//! Built on the worker thread ([`crate::jobs::SceneJob`]): the layout of a
//! cluster-sized table takes a good fraction of a second.

use egui::{Pos2, Rect, pos2, vec2};
use iptviz::diagram::PathIndex;
use iptviz::graph::{
    ChainGraph, EdgeKind, View, ViewNodeKind, ViewOptions, default_collapse, view,
};
use iptviz::layout::{Choice, Layout, layout};
use iptviz::model::{Ruleset, Table};
use iptviz::render::style;
use iptviz::trace::Trace;

/// What a box stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeKind {
    /// One chain (index in `Table::chains`).
    Chain(u32),
    /// A folded group (index in [`Scene::groups`]).
    Group(u32),
    /// A verdict or target box (not selectable).
    Target,
}

/// What kind of box it is, in the app's terms.
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
    /// Where it is, in world units (the layout's px).
    pub rect: Rect,
    /// What it stands for.
    pub kind: NodeKind,
    /// How to draw it.
    pub style: NodeStyle,
    /// First line: chain name, group pattern or target.
    pub title: String,
    /// The other lines, joined with ` · `.
    pub subtitle: String,
    /// Label lines as the SVG draws them; the first is the name.
    pub lines: Vec<String>,
    /// The library's shape and colours for this box.
    pub look: style::NodeStyle,
    /// Hover text (the SVG's `<title>`).
    pub hover: String,
    /// The view's id: `table/chain`, groups `table/pattern[/parent]`.
    pub id: String,
    /// A chain drawn on its own because its group is open: that group's
    /// id, which folds it again.
    pub open_group: Option<String>,
}

/// A positioned edge.
#[derive(Debug, Clone)]
pub struct SceneEdge {
    /// Source box (index in `Scene::nodes`).
    pub from: u32,
    /// Target box.
    pub to: u32,
    /// Path, first point on the source box, arrow head at the last.
    pub points: Vec<Pos2>,
    /// All merged rules are `-g`.
    pub goto: bool,
    /// Number of rules merged into the edge.
    pub rules: u32,
    /// Counted packets of those rules.
    pub packets: u64,
    /// Packets on a log scale against the busiest edge, 0..=1.
    pub heat: f32,
    /// `points` is a cubic Bézier chain `p0 c1 c2 p1 ...`.
    pub curved: bool,
    /// Fall-through or return: drawn dotted.
    pub ret: bool,
    /// The library's colour, pattern and base width.
    pub look: style::EdgeStyle,
    /// Width factor from packet counters (1 without).
    pub weight: f32,
    /// Short label (rule summary).
    pub label: String,
    /// Centre of the label, when the layout placed one.
    pub label_at: Option<Pos2>,
    /// Full rules (the SVG's `<title>`).
    pub hover: String,
    /// Bounding box of `points`.
    pub bounds: Rect,
}

/// Where an edge is, in short (see [`Scene::edge_spans`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EdgeSpan {
    /// Bounding box of its path.
    pub bounds: Rect,
    /// First point of the path.
    pub start: Pos2,
    /// Last point (the arrow head).
    pub end: Pos2,
}

/// A folded group on the canvas.
#[derive(Debug, Clone, PartialEq)]
pub struct SceneGroup {
    /// The library's group id, given back to expand it.
    pub id: String,
    /// Member chains (indices in `Table::chains`).
    pub members: Vec<u32>,
}

/// A frame around one table's boxes (views of several tables).
#[derive(Debug, Clone, PartialEq)]
pub struct SceneCluster {
    /// Frame.
    pub rect: Rect,
    /// Caption.
    pub label: String,
    /// Table name (colours).
    pub table: String,
    /// Left end of the caption's baseline.
    pub caption: Pos2,
}

/// Everything the canvas draws for one table.
#[derive(Debug, Clone)]
pub struct Scene {
    /// Index of the table in `Ruleset::tables`.
    pub table: usize,
    /// Boxes.
    pub nodes: Vec<SceneNode>,
    /// Edges.
    pub edges: Vec<SceneEdge>,
    /// Folded groups.
    pub groups: Vec<SceneGroup>,
    /// Table frames (empty for one table, as in the SVG).
    pub clusters: Vec<SceneCluster>,
    /// Box of each chain (its own, or its group's); `u32::MAX` if not drawn.
    pub node_of_chain: Vec<u32>,
    /// The legend for what this scene shows.
    pub legend: Vec<style::LegendEntry>,
    /// Where each box is, packed together: the canvas looks through tens of
    /// thousands of them every frame, and `nodes` is far too wide a record
    /// to walk for that.
    pub node_rects: Vec<Rect>,
    /// Bounding box, first and last point of each edge, packed likewise.
    pub edge_spans: Vec<EdgeSpan>,
    /// Boxes by importance, for naming when there is room for only some
    /// names: built-in chains, then chains and groups by the rules that
    /// call them and that they hold jumps in, then targets.
    pub label_order: Vec<u32>,
    /// Bounding box of everything.
    pub bounds: Rect,
    /// Where the library finds a traced path's marks in this picture, so
    /// that the canvas lights what the SVG lights.
    pub path_index: PathIndex,
}

/// Which groups to open when building a scene.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SceneRequest {
    /// Index of the table.
    pub table: usize,
    /// Library group ids to leave open.
    pub expanded: Vec<String>,
    /// Fold nothing at all.
    pub expand_all: bool,
}

impl Scene {
    /// Builds the view and layout of one table, as `iptviz render -t TABLE`
    /// would, with the requested groups open.
    pub fn build(rs: &Ruleset, cg: &ChainGraph, req: &SceneRequest) -> Result<Scene, String> {
        let table = rs
            .tables
            .get(req.table)
            .ok_or_else(|| format!("no table number {}", req.table))?;
        let v = view(rs, cg, &view_options(rs, table, req)).map_err(|e| e.to_string())?;
        let l = layout(&v, Choice::Auto);
        Ok(Scene::from_layout(req.table, table, &v, &l))
    }

    /// Converts a laid-out view of `table` (index `ti`).
    pub fn from_layout(ti: usize, table: &Table, v: &View, l: &Layout) -> Scene {
        let mut node_of_chain = vec![u32::MAX; table.chains.len()];
        let mut groups = Vec::new();
        let mut nodes = Vec::with_capacity(v.nodes.len());
        for (i, (vn, b)) in v.nodes.iter().zip(&l.nodes).enumerate() {
            let rect =
                Rect::from_min_size(pos2(b.x as f32, b.y as f32), vec2(b.w as f32, b.h as f32));
            let name = vn.lines.first().cloned().unwrap_or_default();
            // The box says which chain it is: its label is only text.
            let chain = vn
                .chain
                .as_ref()
                .filter(|c| c.table == table.name)
                .and_then(|c| table.chain_position(&c.chain));
            let (kind, style) = match vn.kind {
                ViewNodeKind::Builtin | ViewNodeKind::User => match chain {
                    Some(ci) => {
                        node_of_chain[ci] = i as u32;
                        let s = if vn.kind == ViewNodeKind::Builtin {
                            NodeStyle::Builtin
                        } else {
                            NodeStyle::User
                        };
                        (NodeKind::Chain(ci as u32), s)
                    }
                    None => (NodeKind::Target, NodeStyle::User),
                },
                ViewNodeKind::Group(_) => {
                    let members: Vec<u32> = vn
                        .members
                        .iter()
                        .filter_map(|m| table.chain_position(m))
                        .map(|ci| {
                            node_of_chain[ci] = i as u32;
                            ci as u32
                        })
                        .collect();
                    groups.push(SceneGroup {
                        id: vn.id.clone(),
                        members,
                    });
                    (NodeKind::Group(groups.len() as u32 - 1), NodeStyle::Group)
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
                lines: vn.lines.clone(),
                look: style::view_node_style(vn),
                hover: vn.title.clone(),
                id: vn.id.clone(),
                open_group: match vn.kind {
                    ViewNodeKind::Group(_) => None,
                    _ => vn.group.as_ref().map(|g| g.id()),
                },
            });
        }
        let max_packets = v.edges.iter().filter_map(|e| e.packets).max().unwrap_or(0);
        let heat = |p: u64| {
            if p == 0 || max_packets == 0 {
                0.0
            } else {
                ((p as f64).ln_1p() / (max_packets as f64).ln_1p()) as f32
            }
        };
        let edges: Vec<SceneEdge> = v
            .edges
            .iter()
            .zip(&l.edges)
            .map(|(ve, path)| {
                let points: Vec<Pos2> = path
                    .points
                    .iter()
                    .map(|p| pos2(p.x as f32, p.y as f32))
                    .collect();
                let bounds = points
                    .iter()
                    .fold(Rect::NOTHING, |r, &p| r.union(Rect::from_min_max(p, p)));
                let packets = ve.packets.unwrap_or(0);
                SceneEdge {
                    from: ve.from as u32,
                    to: ve.to as u32,
                    points,
                    goto: ve.kind == EdgeKind::Goto,
                    rules: ve.rules as u32,
                    packets,
                    heat: heat(packets),
                    curved: path.curved,
                    ret: ve.kind == EdgeKind::Return,
                    look: style::view_edge_style(v, ve),
                    weight: ve.weight as f32,
                    label: ve.label.clone(),
                    label_at: path.label.map(|p| pos2(p.x as f32, p.y as f32)),
                    hover: ve.title.clone(),
                    bounds,
                }
            })
            .collect();
        let clusters = l
            .clusters
            .iter()
            .map(|c| SceneCluster {
                rect: Rect::from_min_size(
                    pos2(c.bbox.x as f32, c.bbox.y as f32),
                    vec2(c.bbox.w as f32, c.bbox.h as f32),
                ),
                label: c.label.clone(),
                table: c.table.clone(),
                caption: pos2(c.caption.x as f32, c.caption.y as f32),
            })
            .collect();
        let bounds = if l.width > 0.0 && l.height > 0.0 {
            Rect::from_min_size(Pos2::ZERO, vec2(l.width as f32, l.height as f32))
        } else {
            Rect::from_min_size(Pos2::ZERO, vec2(100.0, 100.0))
        };
        let label_order = label_order(v);
        let node_rects = nodes.iter().map(|n: &SceneNode| n.rect).collect();
        let edge_spans = edges
            .iter()
            .map(|e: &SceneEdge| EdgeSpan {
                bounds: e.bounds,
                start: e.points.first().copied().unwrap_or(Pos2::ZERO),
                end: e.points.last().copied().unwrap_or(Pos2::ZERO),
            })
            .collect();
        Scene {
            table: ti,
            label_order,
            node_rects,
            edge_spans,
            nodes,
            edges,
            groups,
            clusters,
            node_of_chain,
            legend: style::legend_for(v),
            bounds,
            path_index: PathIndex::new(v),
        }
    }

    /// What `iptviz trace --path-only` draws for `trace`: the library's
    /// view of the walk alone, laid out by the library. Its boxes stand for
    /// chains of several tables, so none of them is a chain to select.
    pub fn path_only(rs: &Ruleset, trace: &Trace) -> Scene {
        Scene::path_only_named(rs, trace, &iptviz::graph::PlainNames)
    }

    /// [`Scene::path_only`], the rules taken named by `names` (an nft
    /// trace moved onto the drawing tables names them by their nft text).
    pub fn path_only_named(
        rs: &Ruleset,
        trace: &Trace,
        names: &dyn iptviz::graph::RuleNaming,
    ) -> Scene {
        let v = iptviz::trace::path_only_view_named(rs, trace, "", names);
        let l = layout(&v, Choice::Auto);
        let no_table = Table::new("", 0);
        let mut s = Scene::from_layout(usize::MAX, &no_table, &v, &l);
        for (n, vn) in s.nodes.iter_mut().zip(&v.nodes) {
            n.style = match vn.kind {
                ViewNodeKind::Builtin => NodeStyle::Builtin,
                ViewNodeKind::User => NodeStyle::User,
                _ => NodeStyle::Target,
            };
        }
        s
    }

    /// The box at a world position (the one drawn on top).
    pub fn node_at(&self, p: Pos2) -> Option<usize> {
        self.node_rects.iter().rposition(|r| r.contains(p))
    }

    /// Boxes that intersect `area`.
    pub fn visible_nodes(&self, area: Rect) -> impl Iterator<Item = usize> + '_ {
        self.node_rects
            .iter()
            .enumerate()
            .filter(move |(_, r)| r.intersects(area))
            .map(|(i, _)| i)
    }

    /// Edges whose bounding box meets `area`; when more than `crowd` do,
    /// only those with an end inside `area`.
    pub fn visible_edges(&self, area: Rect, crowd: usize) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        for (i, s) in self.edge_spans.iter().enumerate() {
            if s.bounds.intersects(area) {
                out.push(i);
            }
        }
        if out.len() > crowd {
            out.retain(|&i| {
                let s = &self.edge_spans[i];
                area.contains(s.start) || area.contains(s.end)
            });
        }
        out
    }

    /// The box showing chain `chain`.
    pub fn node_for_chain(&self, chain: usize) -> Option<usize> {
        self.node_of_chain
            .get(chain)
            .filter(|&&n| n != u32::MAX)
            .map(|&n| n as usize)
    }

    /// The open group (one of `expanded`) that chain `chain`, drawn on its
    /// own, would fold back into, as the library's view names it.
    pub fn open_group_of(&self, chain: usize, expanded: &[String]) -> Option<String> {
        let node = &self.nodes[self.node_for_chain(chain)?];
        if node.kind != NodeKind::Chain(chain as u32) {
            return None;
        }
        node.open_group.clone().filter(|id| expanded.contains(id))
    }
}

/// The hook-order view of a whole ruleset (`iptviz render --flow`), laid
/// out by the library, with the built-in chain behind each table's box.
#[derive(Debug, Clone)]
pub struct FlowScene {
    /// Boxes, paths and hook frames as the SVG draws them.
    pub scene: Scene,
    /// For each box, the built-in chain it stands for as
    /// `(table index, chain index)`; `None` for points of the path and for
    /// chains missing from the dump.
    pub chains: Vec<Option<(usize, usize)>>,
}

impl FlowScene {
    /// Builds the picture (a few dozen boxes: cheap enough for any thread).
    pub fn build(rs: &Ruleset) -> FlowScene {
        let counters = rs.has_counters();
        let v = iptviz::flow::flow_view(rs, counters, "");
        let l = layout(&v, Choice::Auto);
        // No table of its own: every box comes out unselectable, and the
        // chain behind it is looked up through the hook it sits at.
        let mut scene = Scene::from_layout(usize::MAX, &Table::default(), &v, &l);
        let mut chains = vec![None; v.nodes.len()];
        for (hook, steps) in v.flow.iter().flat_map(|p| &p.hooks) {
            for &n in steps {
                let vn = &v.nodes[n];
                if vn.kind != ViewNodeKind::Builtin {
                    continue;
                }
                scene.nodes[n].style = NodeStyle::Builtin;
                chains[n] = rs
                    .tables
                    .iter()
                    .position(|t| t.name == vn.table)
                    .and_then(|ti| Some((ti, rs.tables[ti].chain_position(hook.chain())?)));
            }
        }
        FlowScene { scene, chains }
    }

    /// The box of a built-in chain, if the picture has one.
    pub fn node_of(&self, table: usize, chain: usize) -> Option<usize> {
        self.chains.iter().position(|&c| c == Some((table, chain)))
    }
}

/// The boxes of `v` by importance (see [`Scene::label_order`]).
fn label_order(v: &View) -> Vec<u32> {
    let mut weight = vec![0u64; v.nodes.len()];
    for e in &v.edges {
        let rules = e.rules.max(1) as u64;
        // Callers count double: a chain many rules jump to is a landmark.
        if let Some(w) = weight.get_mut(e.to) {
            *w += 2 * rules;
        }
        if let Some(w) = weight.get_mut(e.from) {
            *w += rules;
        }
    }
    let class = |k: &ViewNodeKind| match k {
        ViewNodeKind::Builtin => 0,
        ViewNodeKind::User | ViewNodeKind::Group(_) => 1,
        _ => 2,
    };
    let mut order: Vec<u32> = (0..v.nodes.len() as u32).collect();
    order.sort_by_key(|&i| {
        let i = i as usize;
        (class(&v.nodes[i].kind), std::cmp::Reverse(weight[i]), i)
    });
    order
}

/// The library view options for a scene: one table, counters when the dump
/// has them, default groups minus the open ones.
pub fn view_options(rs: &Ruleset, table: &Table, req: &SceneRequest) -> ViewOptions {
    ViewOptions {
        tables: vec![table.name.to_string()],
        counters: rs.has_counters(),
        collapse: if req.expand_all {
            Vec::new()
        } else {
            default_collapse()
        },
        expanded: req.expanded.clone(),
        ..Default::default()
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

    #[test]
    fn flow_picture_is_the_library_flow_layout() {
        let rs = ruleset(include_str!("../tests/fixtures/small-host.rules"));
        let f = FlowScene::build(&rs);
        let v = iptviz::flow::flow_view(&rs, rs.has_counters(), "");
        let l = layout(&v, Choice::Auto);
        assert_eq!(f.scene.nodes.len(), l.nodes.len());
        for (n, b) in f.scene.nodes.iter().zip(&l.nodes) {
            assert_eq!(n.rect.min, pos2(b.x as f32, b.y as f32), "{}", n.id);
        }
        let hooks: Vec<&str> = f.scene.clusters.iter().map(|c| c.label.as_str()).collect();
        assert!(
            hooks.contains(&"PREROUTING") && hooks.contains(&"INPUT"),
            "{hooks:?}"
        );
        // The filter box in the INPUT frame opens the filter table's INPUT.
        let ti = rs
            .tables
            .iter()
            .position(|t| t.name == "filter")
            .expect("filter");
        let ci = rs.tables[ti].chain_position("INPUT").expect("INPUT");
        let n = f.node_of(ti, ci).expect("filter INPUT drawn");
        assert_eq!(f.scene.nodes[n].title, "filter");
        assert_eq!(f.scene.nodes[n].style, NodeStyle::Builtin);
        let frame = f
            .scene
            .clusters
            .iter()
            .find(|c| c.label == "INPUT")
            .unwrap();
        assert!(frame.rect.contains_rect(f.scene.nodes[n].rect));
        // Points of the path lead nowhere.
        let routing = f
            .scene
            .nodes
            .iter()
            .position(|n| n.id == "flow/routing")
            .unwrap();
        assert_eq!(f.chains[routing], None);
    }

    fn ruleset(text: &str) -> Ruleset {
        parse_str(text, &ParseOptions::lenient("t"))
            .expect("parses")
            .ruleset
    }

    fn request(rs: &Ruleset, table: &str) -> SceneRequest {
        SceneRequest {
            table: rs
                .tables
                .iter()
                .position(|t| t.name == table)
                .expect("table"),
            ..Default::default()
        }
    }

    #[test]
    fn boxes_are_the_library_layout() {
        let rs = ruleset(include_str!("../tests/fixtures/small-host.rules"));
        let cg = ChainGraph::build(&rs);
        let req = request(&rs, "filter");
        let s = Scene::build(&rs, &cg, &req).expect("scene");
        // The same view and layout `iptviz render -t filter` draws.
        let v = view(&rs, &cg, &view_options(&rs, &rs.tables[req.table], &req)).expect("view");
        let l = layout(&v, Choice::Auto);
        assert_eq!(s.nodes.len(), l.nodes.len());
        for (n, b) in s.nodes.iter().zip(&l.nodes) {
            assert_eq!(n.rect.min, pos2(b.x as f32, b.y as f32), "{}", n.id);
            // The size is max - min in f32: equal up to rounding.
            let d = n.rect.size() - vec2(b.w as f32, b.h as f32);
            assert!(d.length() < 1e-3, "{}: {:?} vs {b:?}", n.id, n.rect);
        }
        for (e, p) in s.edges.iter().zip(&l.edges) {
            assert_eq!(e.points.len(), p.points.len());
            assert_eq!(e.curved, p.curved);
        }
        assert!(s.nodes.iter().any(|n| n.kind == NodeKind::Target));
        let input = s.node_for_chain(0).expect("INPUT drawn");
        assert_eq!(s.nodes[input].title, "INPUT");
        assert_eq!(s.nodes[input].style, NodeStyle::Builtin);
        assert_eq!(s.node_at(s.nodes[input].rect.center()), Some(input));
        assert_eq!(s.node_at(pos2(-50.0, -50.0)), None);
        assert_eq!(s.visible_nodes(s.bounds).count(), s.nodes.len());
        assert!(s.edges.iter().any(|e| e.heat > 0.0), "counters become heat");
        assert!(!s.legend.is_empty());
    }

    fn endpoints() -> Ruleset {
        let mut text = String::from("*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SVC-A - [0:0]\n");
        for i in 0..8 {
            text.push_str(&format!(":KUBE-SEP-ABCDEFGH{i:04} - [0:0]\n"));
        }
        text.push_str("-A PREROUTING -j KUBE-SVC-A\n");
        for i in 0..8 {
            text.push_str(&format!("-A KUBE-SVC-A -j KUBE-SEP-ABCDEFGH{i:04}\n"));
        }
        text.push_str("COMMIT\n");
        ruleset(&text)
    }

    #[test]
    fn groups_fold_and_expand() {
        let rs = endpoints();
        let cg = ChainGraph::build(&rs);
        let mut req = request(&rs, "nat");
        let folded = Scene::build(&rs, &cg, &req).expect("scene");
        assert_eq!(
            folded.nodes.len(),
            4,
            "PREROUTING, its policy, KUBE-SVC-A, group"
        );
        assert_eq!(folded.groups.len(), 1);
        let g = &folded.groups[0];
        assert_eq!(g.id, "nat/KUBE-SEP-*/KUBE-SVC-A");
        assert_eq!(g.members.len(), 8);
        let gi = folded.node_for_chain(2).expect("member drawn as group");
        assert_eq!(folded.nodes[gi].kind, NodeKind::Group(0));
        assert_eq!(folded.edges.len(), 5, "calls, policy, returns");

        req.expanded = vec![g.id.clone()];
        let open = Scene::build(&rs, &cg, &req).expect("scene");
        assert_eq!(open.nodes.len(), 11);
        assert!(open.groups.is_empty());
        let t = &rs.tables[0];
        assert_eq!(
            open.open_group_of(2, &req.expanded).as_deref(),
            Some("nat/KUBE-SEP-*/KUBE-SVC-A"),
            "a member folds back into its group"
        );
        assert_eq!(open.open_group_of(1, &req.expanded), None);
        // A box's label is text: the chain it is comes from the view.
        let svc = t.chain_position("KUBE-SVC-A").expect("chain");
        let n = open.node_for_chain(svc).expect("drawn");
        assert_eq!(open.nodes[n].kind, NodeKind::Chain(svc as u32));

        let all = Scene::build(
            &rs,
            &cg,
            &SceneRequest {
                expand_all: true,
                ..request(&rs, "nat")
            },
        )
        .expect("scene");
        assert_eq!(all.nodes.len(), 11);
    }
}
