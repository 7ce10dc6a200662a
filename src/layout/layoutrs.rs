//! layout-rs for small graphs: we hand it boxes of our own size and collect
//! the positions and Bézier paths it draws through a recording backend.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use layout::core::base::Orientation;
use layout::core::color::Color;
use layout::core::format::{ClipHandle, RenderBackend};
use layout::core::geometry::Point as LPoint;
use layout::core::style::{LineStyleKind, StyleAttr};
use layout::std_shapes::shapes::{Arrow, Element, LineEndKind, ShapeKind};
use layout::topo::layout::VisualGraph;

use super::{
    EdgePath, Engine, Layout, NodeBox, Point, clear_labels, is_back, node_size, normalise,
    row_centre,
};
use crate::diagram::View;
use crate::diagram::metrics::{CHAR_EM, TEXT_SIZE, text_width};

/// layout-rs sizes edge-label spacers as characters times the font size;
/// this makes them about as wide as our label text.
const LABEL_FONT: usize = 7;

#[derive(Default)]
struct Recorder {
    rects: HashMap<usize, NodeBox>,
    paths: HashMap<usize, Vec<(LPoint, LPoint)>>,
    /// Centre of the spacer that holds each edge's label.
    labels: HashMap<usize, Point>,
}

/// What layout-rs is given as the label of edge `i`: as many characters as
/// the real label is wide, so that it reserves the same room, spelling the
/// edge's number so that the recorder knows whose spacer it draws text in.
fn label_stand_in(i: usize, label: &str) -> String {
    let cols = (text_width(label, TEXT_SIZE) / (TEXT_SIZE * CHAR_EM)).round() as usize;
    let mut s = i.to_string();
    while s.chars().count() < cols {
        s.push('~');
    }
    s
}

/// The edge number in a stand-in label.
fn stand_in_edge(text: &str) -> Option<usize> {
    let digits = text.len() - text.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    text[..digits].parse().ok()
}

impl RenderBackend for Recorder {
    fn draw_rect(
        &mut self,
        xy: LPoint,
        size: LPoint,
        _look: &StyleAttr,
        properties: Option<String>,
        _clip: Option<ClipHandle>,
    ) {
        if let Some(i) = properties.and_then(|p| p.parse().ok()) {
            self.rects.insert(
                i,
                NodeBox {
                    x: xy.x,
                    y: xy.y,
                    w: size.x,
                    h: size.y,
                },
            );
        }
    }

    fn draw_line(&mut self, _: LPoint, _: LPoint, _: &StyleAttr, _: Option<String>) {}

    fn draw_circle(&mut self, _: LPoint, _: LPoint, _: &StyleAttr, _: Option<String>) {}

    fn draw_text(&mut self, xy: LPoint, text: &str, _: &StyleAttr) {
        // Boxes are given no text; only edge-label spacers write here.
        if let Some(i) = stand_in_edge(text) {
            self.labels.insert(i, Point::new(xy.x, xy.y));
        }
    }

    fn draw_arrow(
        &mut self,
        path: &[(LPoint, LPoint)],
        _dashed: bool,
        _head: (bool, bool),
        _look: &StyleAttr,
        properties: Option<String>,
        _text: &str,
    ) {
        if let Some(i) = properties.and_then(|p| p.parse().ok()) {
            self.paths.insert(i, path.to_vec());
        }
    }

    fn create_clip(&mut self, _: LPoint, _: LPoint, _: usize) -> ClipHandle {
        0
    }
}

/// layout-rs path `[(M, C1), (C2, P1), (C2', P2)...]` (later pairs in SVG
/// `S` form) to explicit cubic control points `p0 c1 c2 p1 ...`.
fn to_cubic(path: &[(LPoint, LPoint)]) -> Vec<Point> {
    let p = |q: LPoint| Point::new(q.x, q.y);
    if path.len() < 2 {
        return path.iter().map(|s| p(s.0)).collect();
    }
    let mut out = vec![p(path[0].0), p(path[0].1), p(path[1].0), p(path[1].1)];
    let mut last_c2 = p(path[1].0);
    let mut last = p(path[1].1);
    for s in &path[2..] {
        // `S c2 p`: the first control point mirrors the previous second one.
        let c1 = Point::new(2.0 * last.x - last_c2.x, 2.0 * last.y - last_c2.y);
        out.push(c1);
        out.push(p(s.0));
        out.push(p(s.1));
        last_c2 = p(s.0);
        last = p(s.1);
    }
    out
}

/// Lays out with layout-rs; `None` if it panicked (we fall back to layered).
pub(super) fn layout(view: &View) -> Option<Layout> {
    // layout-rs asserts on some graphs; that is our fallback signal, not a
    // crash to report, so its panic message is kept off the user's terminal.
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = catch_unwind(AssertUnwindSafe(|| run(view)));
    std::panic::set_hook(previous);
    result.ok().flatten()
}

fn run(view: &View) -> Option<Layout> {
    if view.nodes.is_empty() {
        return None;
    }
    let mut vg = VisualGraph::new(Orientation::TopToBottom);
    let mut handles = Vec::with_capacity(view.nodes.len());
    for (i, n) in view.nodes.iter().enumerate() {
        let (w, h) = node_size(n);
        let look = StyleAttr::new(Color::fast("black"), 1, None, 0, 12);
        let e = Element::create_with_properties(
            ShapeKind::Box(String::new()),
            look,
            Orientation::TopToBottom,
            LPoint::new(w, h),
            i.to_string(),
        );
        handles.push(vg.add_node(e));
    }
    for (i, e) in view.edges.iter().enumerate() {
        let look = StyleAttr::new(Color::fast("black"), 1, None, 0, LABEL_FONT);
        // Returns are laid out caller-to-callee, so they never fight the
        // call hierarchy for rank order; we turn the path round afterwards.
        let (a, b, start, end) = if is_back(e.kind) {
            (e.to, e.from, LineEndKind::Arrow, LineEndKind::None)
        } else {
            (e.from, e.to, LineEndKind::None, LineEndKind::Arrow)
        };
        if a == b {
            continue;
        }
        let text = if e.label.is_empty() {
            String::new()
        } else {
            label_stand_in(i, &e.label)
        };
        let arrow = Arrow::with_properties(
            start,
            end,
            LineStyleKind::Normal,
            &text,
            &look,
            i.to_string(),
            &None,
            &None,
        );
        vg.add_edge(arrow, handles[a], handles[b]);
    }
    let mut rec = Recorder::default();
    vg.do_it(false, false, false, &mut rec);
    let mut nodes = Vec::with_capacity(view.nodes.len());
    for i in 0..view.nodes.len() {
        nodes.push(*rec.rects.get(&i)?);
    }
    let mut edges = Vec::with_capacity(view.edges.len());
    for (i, e) in view.edges.iter().enumerate() {
        let mut pts = match rec.paths.get(&i) {
            Some(p) => to_cubic(p),
            None => {
                let (a, b) = (nodes[e.from].centre(), nodes[e.to].centre());
                vec![a, b]
            }
        };
        let curved = pts.len() >= 4;
        // In rules mode the edge leaves from its rule's row, sideways.
        if let (true, false, Some(r)) = (curved, is_back(e.kind), e.from_row) {
            let b = nodes[e.from];
            let right = pts[3].x >= b.x + b.w / 2.0;
            let y = b.y + row_centre(&view.nodes[e.from], r);
            let x = if right { b.x + b.w } else { b.x };
            pts[0] = Point::new(x, y);
            pts[1] = Point::new(if right { x + 40.0 } else { x - 40.0 }, y);
        }
        if is_back(e.kind) {
            pts.reverse();
        }
        let label = if e.label.is_empty() || pts.len() < 2 {
            None
        } else if let Some(&c) = rec.labels.get(&i) {
            // The middle of the spacer layout-rs kept free for the label.
            Some(c)
        } else if curved {
            // The path passes through the label spacer at a segment end
            // in its middle.
            let segs = (pts.len() - 1) / 3;
            if segs >= 2 {
                Some(pts[3 * (segs / 2)])
            } else {
                // Middle of a single cubic: (p0 + 3 c1 + 3 c2 + p1) / 8.
                let (p0, c1, c2, p1) = (pts[0], pts[1], pts[2], pts[3]);
                Some(Point::new(
                    (p0.x + 3.0 * c1.x + 3.0 * c2.x + p1.x) / 8.0,
                    (p0.y + 3.0 * c1.y + 3.0 * c2.y + p1.y) / 8.0,
                ))
            }
        } else {
            let (a, b) = (pts[0], pts[pts.len() - 1]);
            Some(Point::new((a.x + b.x) / 2.0, (a.y + b.y) / 2.0))
        };
        edges.push(EdgePath {
            points: pts,
            curved,
            label,
        });
    }
    let mut l = Layout {
        width: 0.0,
        height: 0.0,
        nodes,
        edges,
        engine: Engine::LayoutRs,
        clusters: Vec::new(),
    };
    // Spacers sometimes end up a few px into a neighbouring box.
    clear_labels(&mut l, view);
    normalise(&mut l, view, 16.0);
    Some(l)
}
