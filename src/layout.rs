//! Positions of boxes and paths of edges, independent of the output format:
//! the SVG writer and the GUI canvas draw the same [`Layout`].
//!
//! Two engines: our own layered layout (linear-ish; the automatic choice,
//! since it routes edges clear of other boxes and keeps each built-in
//! chain's callees together) and layout-rs (curves, but about n^3, and its
//! edges can cut through boxes), kept for `--layout layout-rs`.

mod hooks;
mod layered;
mod layoutrs;

use rustc_hash::FxHashMap as HashMap;

use serde::Serialize;

use crate::diagram::metrics::{LINE_FACTOR, NAME_SIZE, PAD, TEXT_SIZE, page_width, text_width};
use crate::diagram::{View, ViewNode, ViewNodeKind, table_order};
use crate::graph::EdgeKind;

/// Up to about this many nodes plus edges layout-rs is quick (it is about n^3).
pub const LAYOUT_RS_MAX: usize = 120;
/// Above this many edges, edge labels are left out (hover keeps them).
pub const MAX_LABELLED_EDGES: usize = 2500;

/// A point in px, y down.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct Point {
    /// x
    pub x: f64,
    /// y
    pub y: f64,
}

impl Point {
    /// A point.
    pub fn new(x: f64, y: f64) -> Point {
        Point { x, y }
    }
}

/// A node's box, top-left corner and size.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct NodeBox {
    /// Left.
    pub x: f64,
    /// Top.
    pub y: f64,
    /// Width.
    pub w: f64,
    /// Height.
    pub h: f64,
}

impl NodeBox {
    /// Centre of the box.
    pub fn centre(&self) -> Point {
        Point::new(self.x + self.w / 2.0, self.y + self.h / 2.0)
    }
}

/// The route of an edge; the arrow head is at the last point.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct EdgePath {
    /// Polyline points, or with `curved` a cubic Bézier chain
    /// `p0 c1 c2 p1 c1 c2 p2 ...` (3n+1 points).
    pub points: Vec<Point>,
    /// Points are Bézier control points.
    pub curved: bool,
    /// Centre of the label, if it is drawn.
    pub label: Option<Point>,
}

/// Which engine made a layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Engine {
    /// Our layered layout.
    #[default]
    Layered,
    /// layout-rs.
    LayoutRs,
    /// The netfilter picture of a hook-order view.
    Flow,
}

/// Engine choice: automatic, or forced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Choice {
    /// The layered layout, whatever the size.
    #[default]
    Auto,
    /// Always layered.
    Layered,
    /// Always layout-rs (slow beyond a few hundred nodes).
    LayoutRs,
}

/// A frame around the nodes of one table.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Cluster {
    /// Caption, e.g. `table nat`.
    pub label: String,
    /// Table name.
    pub table: String,
    /// Frame.
    #[serde(rename = "box")]
    pub bbox: NodeBox,
    /// Left end of the caption's baseline.
    pub caption: Point,
}

/// A laid-out view.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Layout {
    /// Width of the drawing.
    pub width: f64,
    /// Height of the drawing.
    pub height: f64,
    /// One box per view node, same order.
    pub nodes: Vec<NodeBox>,
    /// One path per view edge, same order.
    pub edges: Vec<EdgePath>,
    /// Engine used.
    pub engine: Engine,
    /// One frame per table when the view shows several.
    pub clusters: Vec<Cluster>,
}

/// Height of one text line at `size`.
pub fn line_height(size: f64) -> f64 {
    size * LINE_FACTOR
}

/// Height of the label part of a node (name and detail lines).
pub fn header_height(n: &ViewNode) -> f64 {
    let lines = n.lines.len().max(1);
    PAD + line_height(NAME_SIZE) + (lines - 1) as f64 * line_height(TEXT_SIZE) + PAD * 0.5
}

/// Size of a node box: wide enough for every line at the fonts used.
pub fn node_size(n: &ViewNode) -> (f64, f64) {
    let mut w: f64 = 0.0;
    for (i, l) in n.lines.iter().enumerate() {
        let size = if i == 0 { NAME_SIZE } else { TEXT_SIZE };
        w = w.max(text_width(l, size));
    }
    for r in &n.rows {
        w = w.max(text_width(&r.text, TEXT_SIZE));
    }
    let mut h = header_height(n);
    if !n.rows.is_empty() {
        h += n.rows.len() as f64 * line_height(TEXT_SIZE) + PAD * 0.5;
    } else {
        h += PAD * 0.5;
    }
    let extra = match n.kind {
        // Pills and ellipses need room for their rounded ends.
        ViewNodeKind::Target(_) => 2.0 * PAD,
        ViewNodeKind::Point => 4.0 * PAD,
        // The stacked shadow boxes sit to the right and below.
        ViewNodeKind::Group(_) => 4.0,
        _ => 0.0,
    };
    (
        (w + 2.0 * PAD + extra).ceil().max(40.0),
        h.ceil()
            + if n.kind == ViewNodeKind::Point {
                6.0
            } else {
                0.0
            },
    )
}

/// The y of row `i` of a node (baseline centre), relative to the box top.
pub fn row_centre(n: &ViewNode, i: usize) -> f64 {
    header_height(n) + (i as f64 + 0.5) * line_height(TEXT_SIZE)
}

/// Whether an edge is drawn against the flow (returns go back up).
pub fn is_back(kind: EdgeKind) -> bool {
    kind == EdgeKind::Return
}

/// Lays out a view with the chosen engine. A view of several tables is laid
/// out one table at a time (no rule crosses tables), each table in its own
/// frame, frames stacked top to bottom. A hook-order view (one with a
/// [`crate::flow::FlowPlan`]) is drawn as the netfilter picture, one frame
/// per hook, whatever the choice. A view with its own [`View::frames`] is
/// stacked in their order instead, each frame's contents centred, and edges
/// between frames drawn as curves from one frame down to the next.
/// Edge labels are then spread so that no two overlap where there is room
/// (along or beside their own edge).
pub fn layout(view: &View, choice: Choice) -> Layout {
    let mut l = arrange(view, choice);
    spread_labels(&mut l, view);
    l
}

fn arrange(view: &View, choice: Choice) -> Layout {
    if view.nodes.is_empty() {
        return Layout::default();
    }
    // The hook-order view has one drawing, whatever the engine choice.
    if let Some(plan) = &view.flow
        && let Some(l) = hooks::layout(view, plan)
    {
        return l;
    }
    if !view.frames.is_empty() {
        let bands: Vec<Band> = view
            .frames
            .iter()
            .map(|f| Band {
                label: f.label.clone(),
                table: f.table.to_string(),
                nodes: f.nodes.clone(),
            })
            .collect();
        // Frames as wide as the page they are drawn on, contents centred.
        let page = page_width(&view.title, 0.0);
        let mut out = stack(view, &bands, choice, Some(page));
        connect_bands(view, &bands, &mut out);
        return out;
    }
    let flow = view.nodes.iter().any(|n| n.kind == ViewNodeKind::Point);
    let tables = table_order(view);
    if flow || tables.len() < 2 {
        return layout_one(view, choice);
    }
    let bands: Vec<Band> = tables
        .iter()
        .map(|t| Band {
            label: format!("table {t}"),
            table: t.to_string(),
            nodes: (0..view.nodes.len())
                .filter(|&i| view.nodes[i].table == *t)
                .collect(),
        })
        .collect();
    stack(view, &bands, choice, None)
}

/// Nodes laid out together, in a frame when `label` is not empty.
struct Band {
    label: String,
    table: String,
    nodes: Vec<usize>,
}

/// Lays out each band on its own (the edges inside it) and stacks the bands
/// top to bottom; with `centre`, the drawing is at least that wide and each
/// band's contents are centred across it. Without it, bands that stacked
/// would make a picture much taller than wide are packed in rows side by
/// side instead. Edges between bands are left without points.
fn stack(view: &View, bands: &[Band], choice: Choice, centre: Option<f64>) -> Layout {
    let mut out = Layout {
        nodes: vec![NodeBox::default(); view.nodes.len()],
        edges: vec![EdgePath::default(); view.edges.len()],
        ..Default::default()
    };
    // Per band: the band, its layout, its edges.
    let mut laid: Vec<(&Band, Layout, Vec<usize>)> = Vec::new();
    for band in bands {
        if band.nodes.is_empty() {
            continue;
        }
        let (sub, eidx) = sub_view(view, &band.nodes);
        let l = layout_one(&sub, choice);
        out.engine = l.engine;
        laid.push((band, l, eidx));
    }
    let caption = |band: &Band| {
        if band.label.is_empty() {
            0.0
        } else {
            CLUSTER_CAPTION
        }
    };
    // Each band's room: its drawing, caption and the space to the next.
    let sizes: Vec<(f64, f64)> = laid
        .iter()
        .map(|(band, l, _)| {
            (
                l.width + CLUSTER_PAD,
                l.height + caption(band) + CLUSTER_PAD,
            )
        })
        .collect();
    let mut at: Vec<(f64, f64)> = Vec::with_capacity(sizes.len());
    let mut y = 0.0;
    for s in &sizes {
        at.push((0.0, y));
        y += s.1;
    }
    let widest = sizes.iter().map(|s| s.0).fold(0.0, f64::max);
    if centre.is_none() && (widest + CLUSTER_PAD) * layered::WIDE < y {
        at = layered::pack(&sizes);
    }
    let stacked = at.iter().all(|p| p.0 == 0.0);
    for ((band, l, eidx), &(ox, oy)) in laid.iter().zip(&at) {
        let idx = &band.nodes;
        let caption = caption(band);
        let (dx, dy) = (ox + CLUSTER_PAD, oy + caption);
        for (k, &i) in idx.iter().enumerate() {
            let b = l.nodes[k];
            out.nodes[i] = NodeBox {
                x: round(b.x + dx),
                y: round(b.y + dy),
                ..b
            };
        }
        for (k, &e) in eidx.iter().enumerate() {
            let mut p = l.edges[k].clone();
            shift_edge(&mut p, dx, dy);
            out.edges[e] = p;
        }
        if !band.label.is_empty() {
            let bbox = NodeBox {
                x: round(ox + CLUSTER_PAD / 2.0),
                y: round(oy + CLUSTER_PAD / 2.0),
                w: round(l.width + CLUSTER_PAD),
                h: round(l.height + caption),
            };
            out.clusters.push(Cluster {
                label: band.label.clone(),
                table: band.table.clone(),
                bbox,
                caption: Point::new(bbox.x + 10.0, bbox.y + 18.0),
            });
        }
        out.width = out.width.max(round(ox + l.width + 2.0 * CLUSTER_PAD));
        out.height = out.height.max(round(oy + l.height + caption + CLUSTER_PAD));
    }
    if let Some(w) = centre {
        out.width = out.width.max(w);
    }
    // Stacked frames are all as wide as the drawing.
    if stacked {
        for c in &mut out.clusters {
            c.bbox.w = round(out.width - CLUSTER_PAD);
        }
    }
    if centre.is_some() {
        for (band, l, eidx) in &laid {
            let dx = round((out.width - 2.0 * CLUSTER_PAD - l.width) / 2.0);
            if dx <= 0.0 {
                continue;
            }
            for &i in &band.nodes {
                out.nodes[i].x = round(out.nodes[i].x + dx);
            }
            for &e in eidx {
                shift_edge(&mut out.edges[e], dx, 0.0);
            }
        }
    }
    out
}

/// The part of `view` made of the nodes `idx` (in that order) and the edges
/// between them, with the indices of those edges in `view`.
pub(crate) fn sub_view(view: &View, idx: &[usize]) -> (View, Vec<usize>) {
    let mut map = vec![usize::MAX; view.nodes.len()];
    for (k, &i) in idx.iter().enumerate() {
        map[i] = k;
    }
    let eidx: Vec<usize> = (0..view.edges.len())
        .filter(|&e| map[view.edges[e].from] != usize::MAX && map[view.edges[e].to] != usize::MAX)
        .collect();
    let sub = View {
        title: String::new(),
        nodes: idx.iter().map(|&i| view.nodes[i].clone()).collect(),
        edges: eidx
            .iter()
            .map(|&e| {
                let mut ve = view.edges[e].clone();
                ve.from = map[ve.from];
                ve.to = map[ve.to];
                ve
            })
            .collect(),
        rules: view.rules,
        frames: Vec::new(),
        flow: None,
        diff: None,
        legend: None,
    };
    (sub, eidx)
}

/// Draws the edges between bands: a curve from the bottom of the upper box
/// to the top of the lower one (a box beside it in the same band: side to
/// side), labelled at its middle.
fn connect_bands(view: &View, bands: &[Band], out: &mut Layout) {
    let mut band_of = vec![usize::MAX; view.nodes.len()];
    for (k, b) in bands.iter().enumerate() {
        for &i in &b.nodes {
            band_of[i] = k;
        }
    }
    for (e, ve) in view.edges.iter().enumerate() {
        if band_of[ve.from] == band_of[ve.to] && band_of[ve.from] != usize::MAX {
            continue;
        }
        let (a, b) = (out.nodes[ve.from], out.nodes[ve.to]);
        let (p0, p3) = if b.y >= a.y + a.h {
            (
                Point::new(a.x + a.w / 2.0, a.y + a.h),
                Point::new(b.x + b.w / 2.0, b.y),
            )
        } else if a.y >= b.y + b.h {
            (
                Point::new(a.x + a.w / 2.0, a.y),
                Point::new(b.x + b.w / 2.0, b.y + b.h),
            )
        } else if b.x >= a.x {
            (
                Point::new(a.x + a.w, a.y + a.h / 2.0),
                Point::new(b.x, b.y + b.h / 2.0),
            )
        } else {
            (
                Point::new(a.x, a.y + a.h / 2.0),
                Point::new(b.x + b.w, b.y + b.h / 2.0),
            )
        };
        let vertical = (p3.y - p0.y).abs() >= (p3.x - p0.x).abs() / 4.0;
        let (c1, c2) = if vertical {
            let k = (p3.y - p0.y) / 2.0;
            (Point::new(p0.x, p0.y + k), Point::new(p3.x, p3.y - k))
        } else {
            let k = (p3.x - p0.x) / 2.0;
            (Point::new(p0.x + k, p0.y), Point::new(p3.x - k, p3.y))
        };
        let r = |p: Point| Point::new(round(p.x), round(p.y));
        let mid = Point::new(
            (p0.x + 3.0 * c1.x + 3.0 * c2.x + p3.x) / 8.0,
            (p0.y + 3.0 * c1.y + 3.0 * c2.y + p3.y) / 8.0,
        );
        out.edges[e] = EdgePath {
            points: vec![r(p0), r(c1), r(c2), r(p3)],
            curved: true,
            label: (!ve.label.is_empty()).then(|| r(mid)),
        };
    }
}

/// Space above a table frame's contents for its caption.
const CLUSTER_CAPTION: f64 = 26.0;
/// Space around table frames.
const CLUSTER_PAD: f64 = 12.0;

fn layout_one(view: &View, choice: Choice) -> Layout {
    let use_rs = match choice {
        Choice::LayoutRs => true,
        Choice::Auto | Choice::Layered => false,
    };
    if use_rs && let Some(l) = layoutrs::layout(view) {
        return l;
    }
    layered::layout(view)
}

/// A rectangle `(x0, y0, x1, y1)`.
type Rect = (f64, f64, f64, f64);

/// The rectangle an edge label covers when centred on `c`: its text (the
/// font is monospace, so the width is exact) with the halo drawn round it.
pub fn label_rect(label: &str, c: Point) -> Rect {
    let w = text_width(label, TEXT_SIZE) + 6.0;
    let h = TEXT_SIZE + 4.0;
    (c.x - w / 2.0, c.y - h / 2.0, c.x + w / 2.0, c.y + h / 2.0)
}

fn box_rect(b: &NodeBox) -> Rect {
    (b.x, b.y, b.x + b.w, b.y + b.h)
}

fn hits(a: &Rect, b: &Rect) -> bool {
    a.0 < b.2 && b.0 < a.2 && a.1 < b.3 && b.1 < a.3
}

/// Points along a path, `n - 1` per segment, for labels to sit on.
fn along(e: &EdgePath, n: usize) -> Vec<Point> {
    let p = &e.points;
    let mut out = Vec::new();
    let steps = (1..n).map(|k| k as f64 / n as f64);
    if e.curved {
        for c in p.windows(4).step_by(3) {
            for t in steps.clone() {
                let u = 1.0 - t;
                let (a, b, cc, d) = (u * u * u, 3.0 * u * u * t, 3.0 * u * t * t, t * t * t);
                out.push(Point::new(
                    a * c[0].x + b * c[1].x + cc * c[2].x + d * c[3].x,
                    a * c[0].y + b * c[1].y + cc * c[2].y + d * c[3].y,
                ));
            }
        }
    } else {
        for s in p.windows(2) {
            for t in steps.clone() {
                out.push(Point::new(
                    s[0].x + (s[1].x - s[0].x) * t,
                    s[0].y + (s[1].y - s[0].y) * t,
                ));
            }
        }
    }
    out
}

/// Moves edge labels that cover a box to the nearest spot that covers
/// none: just past the box they hit, or elsewhere along their edge (beside
/// it too, for long labels on steep edges). A spot clear of the labels
/// already placed is preferred. Labels already clear stay where they are.
pub(crate) fn clear_labels(l: &mut Layout, view: &View) {
    const MARGIN: f64 = 2.0;
    let boxes: Vec<Rect> = l.nodes.iter().map(box_rect).collect();
    let mut placed: Vec<Rect> = Vec::new();
    for (e, ve) in l.edges.iter_mut().zip(&view.edges) {
        let Some(c) = e.label else { continue };
        let r = label_rect(&ve.label, c);
        let (hw, hh) = ((r.2 - r.0) / 2.0, (r.3 - r.1) / 2.0);
        let blocked = |q: &Rect| boxes.iter().any(|b| hits(q, b));
        if !blocked(&r) {
            placed.push(r);
            continue;
        }
        let mut spots: Vec<Point> = Vec::new();
        for b in boxes.iter().filter(|b| hits(&r, b)) {
            spots.push(Point::new(b.0 - hw - MARGIN, c.y));
            spots.push(Point::new(b.2 + hw + MARGIN, c.y));
            spots.push(Point::new(c.x, b.1 - hh - MARGIN));
            spots.push(Point::new(c.x, b.3 + hh + MARGIN));
        }
        for p in along(e, 10) {
            spots.push(p);
            spots.push(Point::new(p.x - hw - MARGIN, p.y));
            spots.push(Point::new(p.x + hw + MARGIN, p.y));
        }
        let dist = |p: &Point| (p.x - c.x).powi(2) + (p.y - c.y).powi(2);
        spots.sort_by(|a, b| dist(a).total_cmp(&dist(b)));
        let free = |p: &&Point| !blocked(&label_rect(&ve.label, **p));
        let alone = |p: &&Point| {
            let q = label_rect(&ve.label, **p);
            !placed.iter().any(|o| hits(&q, o))
        };
        let best = spots
            .iter()
            .filter(free)
            .find(alone)
            .or_else(|| spots.iter().find(free))
            .copied()
            .unwrap_or(c);
        e.label = Some(best);
        placed.push(label_rect(&ve.label, best));
    }
}

/// Rectangles `(x0, y0, x1, y1)` in buckets of a coarse grid, for quick
/// overlap tests.
#[derive(Default)]
pub(crate) struct Grid {
    rects: Vec<(f64, f64, f64, f64)>,
    cells: HashMap<(i64, i64), Vec<usize>>,
}

impl Grid {
    const CELL: f64 = 64.0;

    fn cells(r: (f64, f64, f64, f64)) -> impl Iterator<Item = (i64, i64)> {
        let c = |v: f64| (v / Self::CELL).floor() as i64;
        let (x0, y0, x1, y1) = (c(r.0), c(r.1), c(r.2), c(r.3));
        (x0..=x1).flat_map(move |x| (y0..=y1).map(move |y| (x, y)))
    }

    /// Adds a rectangle and returns its index.
    pub(crate) fn insert(&mut self, r: (f64, f64, f64, f64)) -> usize {
        let i = self.rects.len();
        self.rects.push(r);
        for cell in Self::cells(r) {
            self.cells.entry(cell).or_default().push(i);
        }
        i
    }

    /// Indices of the rectangles that overlap `r`, each once, ascending.
    fn hitting(&self, r: (f64, f64, f64, f64)) -> Vec<usize> {
        let mut out: Vec<usize> = Self::cells(r)
            .filter_map(|cell| self.cells.get(&cell))
            .flatten()
            .copied()
            .filter(|&i| hits(&r, &self.rects[i]))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    pub(crate) fn hits(&self, r: (f64, f64, f64, f64)) -> bool {
        Self::cells(r).any(|cell| {
            self.cells
                .get(&cell)
                .is_some_and(|v| v.iter().any(|&i| hits(&r, &self.rects[i])))
        })
    }

    /// Makes rectangle `i` overlap nothing until `restore` puts it back
    /// (NaN compares false with everything).
    fn hide(&mut self, i: usize) -> Rect {
        std::mem::replace(&mut self.rects[i], (f64::NAN, f64::NAN, f64::NAN, f64::NAN))
    }

    fn restore(&mut self, i: usize, r: Rect) {
        self.rects[i] = r;
    }
}

/// Gaps tried, nearest first, between a moved label and the point of its
/// edge it sits beside. The last one bounds how far a label strays from its
/// own line; it serves only where the nearer ones are all taken (in the
/// corpus views, a few labels that would otherwise stay on their line or
/// on another label).
const LABEL_GAPS: [f64; 4] = [2.0, 7.0, 12.0, 20.0];

/// Where an edge's label may go, best first: beside a point of its line
/// (left, right, above, below or corner to corner, a
/// gap from [`LABEL_GAPS`] off it), the nearer gap first and then the spot
/// nearest `home`, the label's first place; centred on the line last.
fn label_spots(e: &EdgePath, label: &str, home: Point) -> Vec<Point> {
    let r = label_rect(label, home);
    let (hw, hh) = ((r.2 - r.0) / 2.0, (r.3 - r.1) / 2.0);
    // (which gap, offset from the point on the line); on the line itself,
    // where the label hides it, only when nothing beside it is free.
    let mut offsets = vec![(LABEL_GAPS.len(), 0.0, 0.0)];
    for (k, gap) in LABEL_GAPS.iter().enumerate() {
        let (dx, dy) = (hw + gap, hh + gap);
        // Corner to corner, the gap is the diagonal.
        let (cx, cy) = (hw + gap * 0.7, hh + gap * 0.7);
        for (ox, oy) in [
            (-dx, 0.0),
            (dx, 0.0),
            (0.0, -dy),
            (0.0, dy),
            (-cx, -cy),
            (cx, -cy),
            (-cx, cy),
            (cx, cy),
        ] {
            offsets.push((k, ox, oy));
        }
    }
    let mut spots: Vec<(usize, Point)> = Vec::new();
    for p in along(e, 20) {
        for &(k, ox, oy) in &offsets {
            spots.push((k, Point::new(round(p.x + ox), round(p.y + oy))));
        }
    }
    let dist = |p: &Point| (p.x - home.x).powi(2) + (p.y - home.y).powi(2);
    // A stable sort keeps the order above among spots equally placed.
    spots.sort_by(|a, b| a.0.cmp(&b.0).then(dist(&a.1).total_cmp(&dist(&b.1))));
    spots.into_iter().map(|(_, p)| p).collect()
}

/// Moves edge labels that overlap a label placed before them (or a box) to
/// the first free spot of [`label_spots`]. A moved label's rectangle thus
/// always touches its own line or comes within 20 px of it. Labels clear
/// where they are keep their place, earlier edges first. When a label has
/// no free spot (or free spots only on its own line), one spot (off its
/// line) blocked by one or two other labels is freed by moving them to
/// other spots of their own; failing that the label stays put (or on its
/// line). Returns how many stayed put for want of any free spot.
pub(crate) fn spread_labels(l: &mut Layout, view: &View) -> usize {
    // Lines are kept clear of labels in pictures of up to as many edges
    // as are labelled at all: in a bigger one (labelled part by part)
    // finding what each label's spots cross cost more than the layout.
    let lines = if view.edges.len() <= MAX_LABELLED_EDGES {
        Lines::of(l)
    } else {
        Lines::default()
    };
    spread_labels_along(l, view, &lines)
}

/// [`spread_labels`] keeping labels clear of `lines`, the lines of `l`'s
/// edges (which moving labels leaves as they are, so a caller that needs
/// them too makes them once).
fn spread_labels_along(l: &mut Layout, view: &View, lines: &Lines) -> usize {
    if l.edges.iter().all(|e| e.label.is_none()) {
        return 0;
    }
    let mut boxes = Grid::default();
    for b in &l.nodes {
        boxes.insert(box_rect(b));
    }
    let home: Vec<Option<Point>> = l.edges.iter().map(|e| e.label).collect();
    let mut taken = Grid::default();
    // The edge each rectangle in `taken` belongs to.
    let mut owner: Vec<usize> = Vec::new();
    // Labels to move, and whether only a line is in their way (their own
    // place is theirs if no spot clear of lines is found).
    let mut pending = Vec::new();
    for (i, (e, ve)) in l.edges.iter().zip(&view.edges).enumerate() {
        let Some(c) = e.label else { continue };
        let r = label_rect(&ve.label, c);
        if taken.hits(r) || boxes.hits(r) {
            pending.push((i, false));
        } else if lines.cross(r) {
            pending.push((i, true));
        } else {
            taken.insert(r);
            owner.push(i);
        }
    }
    let (width, height) = (l.width, l.height);
    let fits =
        |r: &Rect| r.0 >= 0.0 && r.1 >= 0.0 && r.2 <= width && r.3 <= height && !boxes.hits(*r);
    let mut stuck = 0;
    for (i, only_lines) in pending {
        let (Some(c), text) = (home[i], &view.edges[i].label) else {
            continue;
        };
        let spots = label_spots(&l.edges[i], text, c);
        let clear = |p: &Point| {
            let q = label_rect(text, *p);
            fits(&q) && !taken.hits(q)
        };
        // Clear of labels and boxes, and crossed by as few lines as can be
        // (its own counting double): the nearest such spot, or its own
        // place when that is no worse.
        let mut best: Option<(usize, Point)> = None;
        // The nearest clear spots only: a crowded picture has thousands.
        for p in spots.iter().copied().filter(clear).take(LABEL_TRIES) {
            let n = lines.crossings(label_rect(text, p), i);
            if best.is_none_or(|(m, _)| n < m) {
                best = Some((n, p));
            }
            if n == 0 {
                break;
            }
        }
        if only_lines
            && let Some((n, _)) = best
            && n > 0
            && clear(&c)
            && lines.crossings(label_rect(text, c), i) <= n
        {
            best = Some((0, c));
        }
        // Still on its own line: the nearest clear spot off it, if any.
        if let Some((_, p)) = best
            && lines.crosses_edge(label_rect(text, p), i)
            && let Some(q) = spots
                .iter()
                .copied()
                .filter(clear)
                .find(|q| !lines.crosses_edge(label_rect(text, *q), i))
        {
            best = Some((0, q));
        }
        let mut at = best.map(|(_, p)| p);
        // Nothing clear, or only spots on its own line: make room by moving
        // the labels in the way (one, else two) elsewhere on their own
        // edges; in the second case only for a spot off its own line.
        let on_own_line = at.is_some_and(|p| lines.crosses_edge(label_rect(text, p), i));
        if at.is_none() || on_own_line {
            'evict: for most in [1, 2] {
                for &p in &spots {
                    let q = label_rect(text, p);
                    if !fits(&q) || (on_own_line && lines.crosses_edge(q, i)) {
                        continue;
                    }
                    let blocking = taken.hitting(q);
                    if blocking.len() != most {
                        continue;
                    }
                    if make_room(l, view, &home, &mut taken, &mut owner, &blocking, q, &fits) {
                        at = Some(p);
                        break 'evict;
                    }
                }
            }
        }
        let at = at.unwrap_or_else(|| {
            stuck += 1;
            c
        });
        l.edges[i].label = Some(at);
        taken.insert(label_rect(text, at));
        owner.push(i);
    }
    stuck
}

/// Moves the labels of `blocking` (rectangles of `taken`) each to a spot of
/// its own edge clear of boxes, of `room` and of every other label, so that
/// `room` is free. Either all of them move or none does.
#[allow(clippy::too_many_arguments)]
fn make_room(
    l: &mut Layout,
    view: &View,
    home: &[Option<Point>],
    taken: &mut Grid,
    owner: &mut Vec<usize>,
    blocking: &[usize],
    room: Rect,
    fits: &impl Fn(&Rect) -> bool,
) -> bool {
    let hidden: Vec<(usize, Rect)> = blocking.iter().map(|&g| (g, taken.hide(g))).collect();
    // (edge, its label before, the rectangle inserted for it)
    let mut moved: Vec<(usize, Option<Point>, usize)> = Vec::new();
    for &g in blocking {
        let j = owner[g];
        let tj = &view.edges[j].label;
        let spot = home[j].and_then(|hj| {
            label_spots(&l.edges[j], tj, hj).into_iter().find(|&pj| {
                let qj = label_rect(tj, pj);
                fits(&qj) && !hits(&qj, &room) && !taken.hits(qj)
            })
        });
        let Some(pj) = spot else {
            for (j, before, k) in moved.into_iter().rev() {
                taken.hide(k);
                l.edges[j].label = before;
            }
            for (g, r) in hidden {
                taken.restore(g, r);
            }
            return false;
        };
        moved.push((j, l.edges[j].label, taken.insert(label_rect(tj, pj))));
        owner.push(j);
        l.edges[j].label = Some(pj);
    }
    true
}

/// How many clear spots a label crossed by lines weighs before it takes
/// the one crossed least.
const LABEL_TRIES: usize = 40;

/// The drawn lines of a layout's edges, straight stretch by stretch (a
/// curve by its control polygon), for finding the labels a line crosses.
#[derive(Default)]
struct Lines {
    /// Each stretch and the edge it belongs to.
    segments: Vec<(Point, Point, usize)>,
    grid: Grid,
}

impl Lines {
    fn of(l: &Layout) -> Lines {
        let mut lines = Lines {
            segments: Vec::new(),
            grid: Grid::default(),
        };
        for (i, e) in l.edges.iter().enumerate() {
            for s in e.points.windows(2) {
                let (a, b) = (s[0], s[1]);
                lines.segments.push((a, b, i));
                lines
                    .grid
                    .insert((a.x.min(b.x), a.y.min(b.y), a.x.max(b.x), a.y.max(b.y)));
            }
        }
        lines
    }

    /// Whether a line passes through label rectangle `r` (less its
    /// margin: a line may graze the halo around the text).
    fn cross(&self, r: Rect) -> bool {
        self.crossing(r).next().is_some()
    }

    fn crossing(&self, r: Rect) -> impl Iterator<Item = usize> + '_ {
        let r = (r.0 + 3.0, r.1 + 2.0, r.2 - 3.0, r.3 - 2.0);
        Grid::cells(r)
            .filter_map(|cell| self.grid.cells.get(&cell))
            .flatten()
            .filter(move |&&k| {
                let (a, b, _) = self.segments[k];
                segment_enters(a, b, r)
            })
            .copied()
    }

    /// Whether the line of edge `edge` passes through label rectangle `r`.
    fn crosses_edge(&self, r: Rect, edge: usize) -> bool {
        self.crossing(r).any(|k| self.segments[k].2 == edge)
    }

    /// How many lines pass through label rectangle `r`, the line of edge
    /// `own` (the label's) counting twice.
    fn crossings(&self, r: Rect, own: usize) -> usize {
        let mut edges: Vec<usize> = self.crossing(r).map(|k| self.segments[k].2).collect();
        edges.sort_unstable();
        edges.dedup();
        edges.iter().map(|&e| if e == own { 2 } else { 1 }).sum()
    }
}

/// Whether the segment from `a` to `b` passes through rectangle `r`
/// `(x0, y0, x1, y1)` (clipped against its four sides).
pub fn segment_enters(a: Point, b: Point, r: (f64, f64, f64, f64)) -> bool {
    let (dx, dy) = (b.x - a.x, b.y - a.y);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [
        (-dx, a.x - r.0),
        (dx, r.2 - a.x),
        (-dy, a.y - r.1),
        (dy, r.3 - a.y),
    ] {
        if p == 0.0 {
            if q < 0.0 {
                return false;
            }
        } else {
            let t = q / p;
            if p < 0.0 {
                t0 = t0.max(t);
            } else {
                t1 = t1.min(t);
            }
        }
    }
    t0 < t1
}

/// Moves an edge's points and label by `(dx, dy)`, rounded like boxes.
pub(crate) fn shift_edge(e: &mut EdgePath, dx: f64, dy: f64) {
    for p in e.points.iter_mut().chain(e.label.as_mut()) {
        p.x = round(p.x + dx);
        p.y = round(p.y + dy);
    }
}

/// Rounds to 0.1 px so output bytes do not depend on float noise.
pub(crate) fn round(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// Shifts a layout so that everything (boxes, paths, labels) starts at
/// `margin`, and sets its size.
pub(crate) fn normalise(l: &mut Layout, view: &View, margin: f64) {
    let mut min = Point::new(f64::MAX, f64::MAX);
    let mut max = Point::new(f64::MIN, f64::MIN);
    let mut grow = |x0: f64, y0: f64, x1: f64, y1: f64| {
        min.x = min.x.min(x0);
        min.y = min.y.min(y0);
        max.x = max.x.max(x1);
        max.y = max.y.max(y1);
    };
    for b in &l.nodes {
        grow(b.x, b.y, b.x + b.w + 6.0, b.y + b.h + 6.0);
    }
    for c in &l.clusters {
        let b = &c.bbox;
        grow(b.x, b.y, b.x + b.w, b.y + b.h);
    }
    for (e, ve) in l.edges.iter().zip(&view.edges) {
        for p in &e.points {
            grow(p.x, p.y, p.x, p.y);
        }
        if let Some(c) = e.label {
            let hw = text_width(&ve.label, TEXT_SIZE) / 2.0 + 3.0;
            grow(c.x - hw, c.y - 8.0, c.x + hw, c.y + 8.0);
        }
    }
    if min.x > max.x {
        return;
    }
    let dx = margin - min.x;
    let dy = margin - min.y;
    for b in &mut l.nodes {
        b.x = round(b.x + dx);
        b.y = round(b.y + dy);
        b.w = round(b.w);
        b.h = round(b.h);
    }
    for e in &mut l.edges {
        shift_edge(e, dx, dy);
    }
    for c in &mut l.clusters {
        let b = &mut c.bbox;
        b.x = round(b.x + dx);
        b.y = round(b.y + dy);
        b.w = round(b.w);
        b.h = round(b.h);
        c.caption = Point::new(round(c.caption.x + dx), round(c.caption.y + dy));
    }
    l.width = round(max.x - min.x + 2.0 * margin);
    l.height = round(max.y - min.y + 2.0 * margin);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{ChainGraph, ViewOptions, view};
    use crate::parse::{ParseOptions, parse_str};

    const TEXT: &str = "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:SSH - [0:0]\n\
        -A INPUT -p tcp -m tcp --dport 22 -j SSH\n-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
        -A SSH -s 10.0.0.0/8 -j ACCEPT\n-A SSH -j LOG --log-prefix \"ssh \"\nCOMMIT\n";

    fn overlaps(a: &NodeBox, b: &NodeBox) -> bool {
        a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h
    }

    #[test]
    fn both_engines_place_every_node_without_overlap() {
        let p = parse_str(TEXT, &ParseOptions::lenient("t")).unwrap();
        let g = ChainGraph::build(&p.ruleset);
        let v = view(&p.ruleset, &g, &ViewOptions::default()).unwrap();
        for choice in [Choice::Layered, Choice::LayoutRs] {
            let l = layout(&v, choice);
            assert_eq!(l.nodes.len(), v.nodes.len());
            assert_eq!(l.edges.len(), v.edges.len());
            for (i, a) in l.nodes.iter().enumerate() {
                let (w, h) = node_size(&v.nodes[i]);
                assert!(a.w >= w - 0.1 && a.h >= h - 0.1, "{choice:?} shrank a box");
                for b in &l.nodes[i + 1..] {
                    assert!(!overlaps(a, b), "{choice:?}: {a:?} overlaps {b:?}");
                }
            }
            for e in &l.edges {
                assert!(e.points.len() >= 2);
            }
        }
    }

    #[test]
    fn spreading_parts_two_labels_on_one_spot() {
        let p = parse_str(TEXT, &ParseOptions::lenient("t")).unwrap();
        let g = ChainGraph::build(&p.ruleset);
        let v = view(&p.ruleset, &g, &ViewOptions::default()).unwrap();
        for choice in [Choice::Layered, Choice::LayoutRs] {
            let mut l = layout(&v, choice);
            let labelled: Vec<usize> = (0..l.edges.len())
                .filter(|&i| l.edges[i].label.is_some())
                .collect();
            assert!(labelled.len() >= 2, "{choice:?}: too few labels");
            let (a, b) = (labelled[0], labelled[1]);
            l.edges[b].label = l.edges[a].label;
            assert_eq!(spread_labels(&mut l, &v), 0, "{choice:?}: a label stuck");
            let rect = |i: usize| label_rect(&v.edges[i].label, l.edges[i].label.unwrap());
            assert!(
                !hits(&rect(a), &rect(b)),
                "{choice:?}: labels still overlap"
            );
            // The moved label is back beside its own line.
            let r = rect(b);
            let near = along(&l.edges[b], 20).iter().any(|q| {
                q.x >= r.0 - 12.5 && q.x <= r.2 + 12.5 && q.y >= r.1 - 12.5 && q.y <= r.3 + 12.5
            });
            assert!(near, "{choice:?}: label {r:?} left its line");
        }
    }

    #[test]
    fn empty_view_is_empty_layout() {
        assert_eq!(layout(&View::default(), Choice::LayoutRs).nodes.len(), 0);
    }
}
