//! The visual language, defined once: colours, shapes, line styles, fonts
//! and the legend. Plain data, so the egui GUI paints with the same values
//! the SVG uses.

use serde::Serialize;

pub use crate::diagram::metrics::{
    CHAR_EM, LINE_FACTOR, MIN_PAGE_WIDTH, NAME_SIZE, PAD, TEXT_SIZE, TITLE_SIZE, page_width,
    text_width,
};
use crate::diagram::{DiffMark, View, ViewEdge, ViewNode, ViewNodeKind, table_order};
use crate::graph::{EdgeKind, Verdict};

/// An sRGB colour.
pub type Rgb = (u8, u8, u8);

/// Font for every label: monospace, so that text width is known exactly
/// (0.6 em per character) and labels stay inside their boxes.
pub const FONT_FAMILY: &str = "DejaVu Sans Mono, Menlo, Consolas, monospace";
/// Default text colour.
pub const INK: Rgb = (0x1f, 0x29, 0x37);
/// Background.
pub const PAPER: Rgb = (0xff, 0xff, 0xff);
/// Secondary text and outlines.
pub const MUTED: Rgb = (0x6b, 0x72, 0x80);

/// Accent of a highlighted path (a traced packet): a strong orange that no
/// table or verdict uses.
pub const PATH: Rgb = (0xf0, 0x6a, 0x00);
/// Opacity of everything off the highlighted path, when there is one.
pub const DIMMED: f64 = 0.35;
/// Outline width of a node on the highlighted path, in px.
pub const PATH_NODE_WIDTH: f64 = 3.5;
/// Stroke width of an edge on the highlighted path, in px.
pub const PATH_EDGE_WIDTH: f64 = 3.5;

/// `#rrggbb`
pub fn hex(c: Rgb) -> Hex {
    Hex(c)
}

/// A colour as `#rrggbb` where it is formatted (drawings print one or two
/// per box and line, so it has no string of its own).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hex(pub Rgb);

impl Hex {
    /// The seven characters `#rrggbb`.
    pub fn text(self) -> [u8; 7] {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let (r, g, b) = self.0;
        let mut text = [b'#'; 7];
        for (i, v) in [r, g, b].into_iter().enumerate() {
            text[1 + 2 * i] = DIGITS[usize::from(v >> 4)];
            text[2 + 2 * i] = DIGITS[usize::from(v & 15)];
        }
        text
    }
}

impl std::fmt::Display for Hex {
    fn fmt(&self, out: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        out.write_str(std::str::from_utf8(&self.text()).expect("ASCII digits"))
    }
}

/// Fill of a table's built-in chains: distinct, calm colours.
pub fn table_fill(table: &str) -> Rgb {
    match table {
        "raw" => (0xf6, 0xe3, 0xc6),
        "mangle" => (0xf7, 0xd6, 0xe2),
        "nat" => (0xe2, 0xd9, 0xf5),
        "filter" => (0xd3, 0xe5, 0xf6),
        "security" => (0xd8, 0xee, 0xdc),
        _ => (0xe5, 0xe7, 0xeb),
    }
}

/// Background of a table's frame: a very light tone of its fill.
pub fn cluster_fill(table: &str) -> Rgb {
    let (r, g, b) = table_fill(table);
    let light = |c: u8| (255 - (255 - c as u16) / 4) as u8;
    (light(r), light(g), light(b))
}

/// Outline of a table's chains: a darker tone of its fill.
pub fn table_stroke(table: &str) -> Rgb {
    match table {
        "raw" => (0xa8, 0x7b, 0x2f),
        "mangle" => (0xa8, 0x3f, 0x6a),
        "nat" => (0x6d, 0x4c, 0xb0),
        "filter" => (0x2f, 0x6d, 0xa8),
        "security" => (0x3a, 0x87, 0x4c),
        _ => MUTED,
    }
}

/// Colour of a verdict: ACCEPT green, DROP/REJECT red, RETURN blue, NAT
/// purple, queue/log grey.
pub fn verdict_colour(v: Verdict) -> Rgb {
    match v {
        Verdict::Accept => (0x1e, 0x8e, 0x3e),
        Verdict::Drop | Verdict::Reject => (0xc6, 0x28, 0x28),
        Verdict::Return => (0x1f, 0x6f, 0xd1),
        Verdict::Nat => (0x7e, 0x3f, 0xb0),
        Verdict::Queue | Verdict::Log => (0x6b, 0x72, 0x80),
        Verdict::Other => (0x8a, 0x8f, 0x98),
    }
}

/// Outline shape of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    /// Square corners (built-in chains).
    Box,
    /// Rounded corners (user chains).
    Rounded,
    /// Two boxes stacked (collapsed groups).
    Stack,
    /// Pill (targets).
    Pill,
    /// Ellipse (flow points).
    Ellipse,
}

/// How a node is painted.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct NodeStyle {
    /// Outline shape.
    pub shape: Shape,
    /// Fill.
    pub fill: Rgb,
    /// Outline colour.
    pub stroke: Rgb,
    /// Outline width in px.
    pub stroke_width: f64,
    /// Outline dashed (undefined targets).
    pub dashed: bool,
    /// Text colour.
    pub text: Rgb,
    /// Name in bold.
    pub bold: bool,
}

/// The style of a node kind in a table.
pub fn node_style(kind: ViewNodeKind, table: &str) -> NodeStyle {
    let base = NodeStyle {
        shape: Shape::Rounded,
        fill: PAPER,
        stroke: table_stroke(table),
        stroke_width: 1.3,
        dashed: false,
        text: INK,
        bold: false,
    };
    match kind {
        ViewNodeKind::Builtin => NodeStyle {
            shape: Shape::Box,
            fill: table_fill(table),
            stroke_width: 2.2,
            bold: true,
            ..base
        },
        ViewNodeKind::User => base,
        ViewNodeKind::Group(_) => NodeStyle {
            shape: Shape::Stack,
            ..base
        },
        ViewNodeKind::Target(v) => {
            let c = verdict_colour(v);
            let strong = !matches!(v, Verdict::Other | Verdict::Log | Verdict::Queue);
            NodeStyle {
                shape: Shape::Pill,
                fill: if strong { c } else { (0xf3, 0xf4, 0xf6) },
                stroke: c,
                stroke_width: 1.5,
                text: if strong { PAPER } else { INK },
                bold: true,
                ..base
            }
        }
        ViewNodeKind::Undefined => NodeStyle {
            fill: (0xff, 0xf1, 0xf1),
            stroke: verdict_colour(Verdict::Drop),
            dashed: true,
            ..base
        },
        ViewNodeKind::Point => NodeStyle {
            shape: Shape::Ellipse,
            fill: (0xf3, 0xf4, 0xf6),
            stroke: MUTED,
            stroke_width: 1.2,
            ..base
        },
    }
}

/// `base` as drawn on the highlighted path: accent outline, thicker.
pub fn path_node_style(base: NodeStyle) -> NodeStyle {
    NodeStyle {
        stroke: PATH,
        stroke_width: PATH_NODE_WIDTH,
        ..base
    }
}

/// Colour of a diff mark: added green, changed orange, removed red.
pub fn diff_colour(m: DiffMark) -> Rgb {
    match m {
        DiffMark::Added => (0x16, 0xa3, 0x4a),
        DiffMark::Changed => (0xea, 0x58, 0x0c),
        DiffMark::Removed => (0xdc, 0x26, 0x26),
    }
}

/// `base` as drawn in a diff: outlined in the mark's colour; a removed
/// chain dashed (a ghost).
pub fn diff_node_style(base: NodeStyle, m: DiffMark) -> NodeStyle {
    NodeStyle {
        stroke: diff_colour(m),
        stroke_width: 3.0,
        dashed: m == DiffMark::Removed,
        ..base
    }
}

/// The style of a drawn node, highlight included.
pub fn view_node_style(n: &ViewNode) -> NodeStyle {
    let mut s = node_style(n.kind, &n.table);
    // A copy of a shared chain: outlined dashed, like a stand-in.
    s.dashed |= crate::diagram::copies::is_copy(n);
    if n.highlight { path_node_style(s) } else { s }
}

/// Opacity of a node or edge: [`DIMMED`] when the view highlights a path
/// it is not on, else 1.
pub fn opacity(view_has_highlight: bool, on_path: bool) -> f64 {
    if view_has_highlight && !on_path {
        DIMMED
    } else {
        1.0
    }
}

/// Line pattern of an edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dash {
    /// `-j` calls and verdicts.
    Solid,
    /// `-g` gotos.
    Dashed,
    /// Fall-through / return.
    Dotted,
}

impl Dash {
    /// SVG `stroke-dasharray` value, if any.
    pub fn dasharray(self) -> Option<&'static str> {
        match self {
            Dash::Solid => None,
            Dash::Dashed => Some("7,4"),
            Dash::Dotted => Some("2,3"),
        }
    }
}

/// How an edge is painted.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EdgeStyle {
    /// Stroke colour.
    pub colour: Rgb,
    /// Pattern.
    pub dash: Dash,
    /// Base width in px (multiplied by the edge's weight).
    pub width: f64,
}

/// The style of an edge of `kind` into a node of kind `to`.
pub fn edge_style(kind: EdgeKind, to: ViewNodeKind) -> EdgeStyle {
    let colour = match (kind, to) {
        (EdgeKind::Return, _) => verdict_colour(Verdict::Return),
        (_, ViewNodeKind::Target(v)) => verdict_colour(v),
        (_, ViewNodeKind::Undefined) => verdict_colour(Verdict::Drop),
        _ => (0x4b, 0x55, 0x63),
    };
    EdgeStyle {
        colour,
        dash: match kind {
            EdgeKind::Jump | EdgeKind::Policy => Dash::Solid,
            EdgeKind::Goto => Dash::Dashed,
            EdgeKind::Return => Dash::Dotted,
        },
        width: if kind == EdgeKind::Policy { 2.0 } else { 1.2 },
    }
}

/// `base` as drawn on the highlighted path: accent colour, thicker, same
/// pattern (a goto stays dashed).
pub fn path_edge_style(base: EdgeStyle) -> EdgeStyle {
    EdgeStyle {
        colour: PATH,
        width: PATH_EDGE_WIDTH,
        ..base
    }
}

/// The style of a drawn edge of `view`, highlight included.
pub fn view_edge_style(view: &View, e: &ViewEdge) -> EdgeStyle {
    let s = edge_style(e.kind, view.nodes[e.to].kind);
    if e.highlight { path_edge_style(s) } else { s }
}

/// One entry of the legend.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum LegendItem {
    /// A node swatch.
    Node(NodeStyle),
    /// An edge sample.
    Edge(EdgeStyle),
}

/// One legend entry with its text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LegendEntry {
    /// What it says.
    pub label: String,
    /// What it shows.
    pub item: LegendItem,
}

/// The legend: built-in chains of the given tables, user chains, groups,
/// verdicts and edge kinds.
pub fn legend(tables: &[&str]) -> Vec<LegendEntry> {
    let mut v = Vec::new();
    let node = |label: String, s: NodeStyle| LegendEntry {
        label,
        item: LegendItem::Node(s),
    };
    for t in tables {
        v.push(node(
            format!("{t} built-in"),
            node_style(ViewNodeKind::Builtin, t),
        ));
    }
    v.push(node(
        "user chain".into(),
        node_style(ViewNodeKind::User, "filter"),
    ));
    v.push(node(
        "copy of a shared chain".into(),
        NodeStyle {
            dashed: true,
            ..node_style(ViewNodeKind::User, "filter")
        },
    ));
    v.push(node(
        "group (collapsed)".into(),
        node_style(ViewNodeKind::Group(2), "filter"),
    ));
    for (label, verdict) in [
        ("ACCEPT", Verdict::Accept),
        ("DROP / REJECT", Verdict::Drop),
        ("RETURN", Verdict::Return),
        ("NAT", Verdict::Nat),
        ("LOG / QUEUE", Verdict::Log),
        ("other target", Verdict::Other),
    ] {
        v.push(node(
            label.into(),
            node_style(ViewNodeKind::Target(verdict), ""),
        ));
    }
    let internal = ViewNodeKind::User;
    for (label, kind) in [
        ("-j call", EdgeKind::Jump),
        ("-g goto", EdgeKind::Goto),
        ("return", EdgeKind::Return),
    ] {
        v.push(LegendEntry {
            label: label.into(),
            item: LegendItem::Edge(edge_style(kind, internal)),
        });
    }
    v.push(LegendEntry {
        label: "policy".into(),
        item: LegendItem::Edge(edge_style(
            EdgeKind::Policy,
            ViewNodeKind::Target(Verdict::Accept),
        )),
    });
    v
}

/// The legend entries that matter for `view`: its tables, and only the
/// node and edge kinds it contains.
pub fn legend_for(view: &View) -> Vec<LegendEntry> {
    if let Some(own) = &view.legend {
        return own.clone();
    }
    let tables = table_order(view);
    let has = |f: &dyn Fn(ViewNodeKind) -> bool| view.nodes.iter().any(|n| f(n.kind));
    let verdicts: Vec<Verdict> = view
        .nodes
        .iter()
        .filter_map(|n| match n.kind {
            ViewNodeKind::Target(v) => Some(v),
            _ => None,
        })
        .collect();
    let shows = |label: &str| -> bool {
        match label {
            "user chain" => has(&|k| k == ViewNodeKind::User),
            "copy of a shared chain" => view.nodes.iter().any(crate::diagram::copies::is_copy),
            "group (collapsed)" => has(&|k| matches!(k, ViewNodeKind::Group(_))),
            "ACCEPT" => verdicts.contains(&Verdict::Accept),
            "DROP / REJECT" => verdicts
                .iter()
                .any(|v| matches!(v, Verdict::Drop | Verdict::Reject)),
            "RETURN" => verdicts.contains(&Verdict::Return),
            "NAT" => verdicts.contains(&Verdict::Nat),
            "LOG / QUEUE" => verdicts
                .iter()
                .any(|v| matches!(v, Verdict::Log | Verdict::Queue)),
            "other target" => verdicts.contains(&Verdict::Other),
            "-j call" => view.edges.iter().any(|e| e.kind == EdgeKind::Jump),
            "-g goto" => view.edges.iter().any(|e| e.kind == EdgeKind::Goto),
            "return" => view.edges.iter().any(|e| e.kind == EdgeKind::Return),
            "policy" => view.edges.iter().any(|e| e.kind == EdgeKind::Policy),
            _ => true,
        }
    };
    let mut v: Vec<LegendEntry> = legend(&tables)
        .into_iter()
        .filter(|e| shows(&e.label))
        .collect();
    if has(&|k| k == ViewNodeKind::Point) {
        // In the hook-order view the arrows are the packet's path (a
        // framed view, a traced path, keeps its rules' calls).
        if view.frames.is_empty() {
            for e in v.iter_mut().filter(|e| e.label == "-j call") {
                e.label = "packet path".into();
            }
        }
        v.push(LegendEntry {
            label: "packet path point".into(),
            item: LegendItem::Node(node_style(ViewNodeKind::Point, "")),
        });
    }
    if view.has_highlight() {
        v.push(LegendEntry {
            label: "packet path".into(),
            item: LegendItem::Edge(path_edge_style(edge_style(
                EdgeKind::Jump,
                ViewNodeKind::User,
            ))),
        });
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_and_colours() {
        assert!((text_width("abcd", 10.0) - 24.08).abs() < 1e-9);
        assert_eq!(text_width("日本", 10.0), text_width("abcd", 10.0));
        assert_eq!(hex((255, 0, 16)).to_string(), "#ff0010");
        assert_eq!(hex((0, 171, 9)).to_string(), "#00ab09");
        assert_ne!(table_fill("nat"), table_fill("filter"));
        assert!(legend(&["filter"]).len() > 8);
    }
}
