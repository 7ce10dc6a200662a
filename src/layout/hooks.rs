//! The hook-order view drawn as the usual netfilter picture. Packets come
//! in on the left and cross PREROUTING, the routing decision, FORWARD and
//! POSTROUTING along the bottom row to leave on the right. Packets for this
//! host rise from the routing decision through INPUT to the local process;
//! what the host sends goes down through OUTPUT into POSTROUTING. Each hook
//! is a frame around its steps in priority order, in the direction the
//! packet travels.
//!
//! Every position is computed directly from the [`FlowPlan`]; edges are
//! straight or one-bend orthogonal lines, and the gaps they cross are made
//! wide enough for their labels, so no label can sit on a box.

use super::{Cluster, EdgePath, Engine, Layout, NodeBox, Point, node_size, normalise};
use crate::diagram::metrics::{TEXT_SIZE, text_width};
use crate::diagram::{FlowPlan, View, ViewNodeKind};
use crate::flow::Hook;

/// Gap between neighbouring steps of a row (the arrow between them).
const H_GAP: f64 = 34.0;
/// Gap between neighbouring steps of a column.
const V_GAP: f64 = 26.0;
/// Inner margin of a hook frame on its sides without a caption.
const FRAME_PAD: f64 = 10.0;
/// Band of a frame holding its caption, above (columns) or below (the
/// bottom row, where arrows come in from above) the steps.
const CAPTION_TOP: f64 = 26.0;
const CAPTION_BOTTOM: f64 = 24.0;
/// Space between the columns and the frames of the bottom row.
const ROW_GAP: f64 = 48.0;
/// Clear space at each end of an edge label, along its line.
const LABEL_ROOM: f64 = 10.0;
/// Distance of an edge label from its line.
const LABEL_OFF: f64 = 5.0;
/// Shortest level run of the bend from INPUT into the local process.
const BEND: f64 = 24.0;

/// Label box size of the edge `from -> to`, if it has a label.
fn label_size(view: &View, from: usize, to: usize) -> Option<(f64, f64)> {
    view.edges
        .iter()
        .find(|e| e.from == from && e.to == to && !e.label.is_empty())
        .map(|e| (text_width(&e.label, TEXT_SIZE) + 6.0, TEXT_SIZE + 4.0))
}

/// One piece of the bottom row: a lone point, or a hook's frame of steps.
struct Item {
    nodes: Vec<usize>,
    hook: Option<Hook>,
}

/// The bottom row's pieces in order, empty hooks left out.
fn bottom_row(plan: &FlowPlan) -> Vec<Item> {
    let frame = |h: Hook| Item {
        nodes: plan.hook(h).to_vec(),
        hook: Some(h),
    };
    let point = |n: usize| Item {
        nodes: vec![n],
        hook: None,
    };
    [
        point(plan.wire_in),
        frame(Hook::Prerouting),
        point(plan.routing),
        frame(Hook::Forward),
        frame(Hook::Postrouting),
        point(plan.wire_out),
    ]
    .into_iter()
    .filter(|i| !i.nodes.is_empty())
    .collect()
}

/// Lays out a hook-order view; `None` when the plan does not fit the view
/// (an index out of range or used twice).
pub(super) fn layout(view: &View, plan: &FlowPlan) -> Option<Layout> {
    let n = view.nodes.len();
    let mut seen = vec![false; n];
    for i in plan.indices() {
        if i >= n || std::mem::replace(&mut seen[i], true) {
            return None;
        }
    }
    let mut size: Vec<(f64, f64)> = view.nodes.iter().map(node_size).collect();
    // The tables of a hook share one width, so that a column reads as a
    // stack and a row as a sequence of like steps.
    for hook in Hook::ALL {
        let tables: Vec<usize> = plan
            .hook(hook)
            .iter()
            .copied()
            .filter(|&v| view.nodes[v].kind == ViewNodeKind::Builtin)
            .collect();
        let w = tables.iter().map(|&v| size[v].0).fold(0.0, f64::max);
        for v in tables {
            size[v].0 = w;
        }
    }
    let gap_h = |a: usize, b: usize| {
        label_size(view, a, b).map_or(H_GAP, |(w, _)| H_GAP.max(w + 2.0 * LABEL_ROOM))
    };
    let gap_v = |a: usize, b: usize| {
        label_size(view, a, b).map_or(V_GAP, |(_, h)| V_GAP.max(h + 2.0 * LABEL_ROOM))
    };
    let mut cx = vec![0.0f64; n];
    let mut cy = vec![0.0f64; n];
    let mut clusters = Vec::new();

    // The bottom row, centred on y = 0; `extra` widens the gap in front of
    // POSTROUTING when the columns above need more room.
    let row = bottom_row(plan);
    let row_h = row
        .iter()
        .flat_map(|i| &i.nodes)
        .map(|&v| size[v].1)
        .fold(0.0, f64::max);
    let place_row = |extra: f64, cx: &mut [f64]| {
        let mut x = 0.0;
        let mut prev: Option<usize> = None;
        for item in &row {
            let first = item.nodes[0];
            if let Some(p) = prev {
                x += gap_h(p, first);
                if item.hook == Some(Hook::Postrouting) {
                    x += extra;
                }
            }
            let framed = item.hook.is_some();
            if framed {
                x += FRAME_PAD;
            }
            for (k, &v) in item.nodes.iter().enumerate() {
                if k > 0 {
                    x += gap_h(item.nodes[k - 1], v);
                }
                cx[v] = x + size[v].0 / 2.0;
                x += size[v].0;
            }
            if framed {
                x += FRAME_PAD;
            }
            prev = item.nodes.last().copied();
        }
    };
    place_row(0.0, &mut cx);

    // Columns: INPUT above the routing decision, OUTPUT above the first
    // step of POSTROUTING (or the way out when it has none).
    let input = plan.hook(Hook::Input);
    let output = plan.hook(Hook::Output);
    let half = |nodes: &[usize], pad: f64| {
        nodes
            .iter()
            .map(|&v| size[v].0 / 2.0 + pad)
            .fold(0.0, f64::max)
    };
    let input_half = half(input, FRAME_PAD);
    let output_half = half(output, FRAME_PAD).max(half(&[plan.out_routing, plan.reroute], 0.0));
    let post_first = plan
        .hook(Hook::Postrouting)
        .first()
        .copied()
        .unwrap_or(plan.wire_out);
    let local_w = size[plan.local].0;
    let to_out = gap_h(plan.local, plan.out_routing);
    let need = (input_half + output_half + H_GAP)
        .max(BEND + local_w + to_out + size[plan.out_routing].0 / 2.0);
    let short = need - (cx[post_first] - cx[plan.routing]);
    if short > 0.0 {
        place_row(short, &mut cx);
    }
    let (rx, ox) = (cx[plan.routing], cx[post_first]);
    let row_top = -row_h / 2.0 - FRAME_PAD;
    let col_bottom = row_top - ROW_GAP;

    // INPUT rises: its first step at the bottom.
    let mut input_top = col_bottom;
    if !input.is_empty() {
        let mut bottom = col_bottom - FRAME_PAD;
        for (k, &v) in input.iter().enumerate() {
            if k > 0 {
                bottom -= gap_v(input[k - 1], v);
            }
            cx[v] = rx;
            cy[v] = bottom - size[v].1 / 2.0;
            bottom -= size[v].1;
        }
        input_top = bottom - CAPTION_TOP;
        clusters.push(frame(
            "INPUT",
            rx - input_half,
            input_top,
            rx + input_half,
            col_bottom,
            false,
        ));
    }

    // OUTPUT falls: output routing, the steps, the reroute check; built
    // from y = 0 down, then moved up to end above the bottom row.
    let mut y = 0.0;
    let mut column = |v: usize, y: &mut f64| {
        cx[v] = ox;
        cy[v] = *y + size[v].1 / 2.0;
        *y += size[v].1;
    };
    column(plan.out_routing, &mut y);
    let mut output_frame = None;
    let mut prev = plan.out_routing;
    if !output.is_empty() {
        y += gap_v(prev, output[0]);
        let top = y;
        y += CAPTION_TOP;
        for (k, &v) in output.iter().enumerate() {
            if k > 0 {
                y += gap_v(output[k - 1], v);
            }
            column(v, &mut y);
        }
        y += FRAME_PAD;
        output_frame = Some((top, y));
        prev = output[output.len() - 1];
    }
    y += gap_v(prev, plan.reroute);
    column(plan.reroute, &mut y);
    let lift = col_bottom - y;
    for &v in [plan.out_routing, plan.reroute].iter().chain(output) {
        cy[v] += lift;
    }
    if let Some((top, bottom)) = output_frame {
        clusters.push(frame(
            "OUTPUT",
            ox - output_half,
            top + lift,
            ox + output_half,
            bottom + lift,
            false,
        ));
    }

    // The local process: level with output routing unless INPUT reaches
    // that high, between the columns but clear of the label before OUTPUT.
    let local_h = size[plan.local].1;
    cy[plan.local] = cy[plan.out_routing].min(input_top - V_GAP - local_h / 2.0);
    let lo = rx + BEND + local_w / 2.0;
    let hi = ox - size[plan.out_routing].0 / 2.0 - to_out - local_w / 2.0;
    cx[plan.local] = ((rx + ox) / 2.0).clamp(lo, hi.max(lo));

    // Frames of the bottom row, captions underneath: arrows come in from
    // above (INPUT leaves the routing decision, OUTPUT joins POSTROUTING).
    for item in &row {
        let Some(hook) = item.hook else { continue };
        let (a, b) = (item.nodes[0], item.nodes[item.nodes.len() - 1]);
        clusters.push(frame(
            hook.chain(),
            cx[a] - size[a].0 / 2.0 - FRAME_PAD,
            row_top,
            cx[b] + size[b].0 / 2.0 + FRAME_PAD,
            row_h / 2.0 + CAPTION_BOTTOM,
            true,
        ));
    }
    clusters.sort_by_key(|c| Hook::ALL.iter().position(|h| h.chain() == c.label));

    let mut nodes: Vec<NodeBox> = (0..n)
        .map(|v| NodeBox {
            x: cx[v] - size[v].0 / 2.0,
            y: cy[v] - size[v].1 / 2.0,
            w: size[v].0,
            h: size[v].1,
        })
        .collect();
    // Nodes the plan does not name (none in views made by `flow_view`) go
    // in a row under the picture rather than on top of it.
    let mut x = 0.0;
    let below = row_h / 2.0 + CAPTION_BOTTOM + ROW_GAP;
    for (v, b) in nodes.iter_mut().enumerate().filter(|(v, _)| !seen[*v]) {
        b.x = x;
        b.y = below;
        x += size[v].0 + H_GAP;
    }

    let edges = view
        .edges
        .iter()
        .map(|e| {
            let points = route(&nodes[e.from], &nodes[e.to]);
            let label = (!e.label.is_empty()).then(|| {
                let w = text_width(&e.label, TEXT_SIZE) + 6.0;
                label_at(&points, w, TEXT_SIZE + 4.0)
            });
            EdgePath {
                points,
                curved: false,
                label,
            }
        })
        .collect();
    let mut l = Layout {
        width: 0.0,
        height: 0.0,
        nodes,
        edges,
        engine: Engine::Flow,
        clusters,
    };
    normalise(&mut l, view, 16.0);
    Some(l)
}

/// A hook's frame from `(x0, y0)` to `(x1, y1)`, captioned above its steps
/// or, with `below`, under them.
fn frame(label: &str, x0: f64, y0: f64, x1: f64, y1: f64, below: bool) -> Cluster {
    let baseline = if below { y1 - 8.0 } else { y0 + 18.0 };
    Cluster {
        label: label.to_string(),
        table: String::new(),
        bbox: NodeBox {
            x: x0,
            y: y0,
            w: x1 - x0,
            h: y1 - y0,
        },
        caption: Point::new(x0 + 10.0, baseline),
    }
}

/// An orthogonal path from box `a` to box `b`: straight when they share a
/// row or a column; otherwise up first and then across into the side of
/// `b` when `b` is higher, across first and then down into its top when it
/// is lower.
fn route(a: &NodeBox, b: &NodeBox) -> Vec<Point> {
    let (ca, cb) = (a.centre(), b.centre());
    let right = cb.x > ca.x;
    let side = |bx: &NodeBox, right_side: bool| if right_side { bx.x + bx.w } else { bx.x };
    if (ca.y - cb.y).abs() < 0.5 {
        vec![
            Point::new(side(a, right), ca.y),
            Point::new(side(b, !right), cb.y),
        ]
    } else if (ca.x - cb.x).abs() < 0.5 {
        let (ya, yb) = if cb.y < ca.y {
            (a.y, b.y + b.h)
        } else {
            (a.y + a.h, b.y)
        };
        vec![Point::new(ca.x, ya), Point::new(cb.x, yb)]
    } else if cb.y < ca.y {
        vec![
            Point::new(ca.x, a.y),
            Point::new(ca.x, cb.y),
            Point::new(side(b, !right), cb.y),
        ]
    } else {
        vec![
            Point::new(side(a, right), ca.y),
            Point::new(cb.x, ca.y),
            Point::new(cb.x, b.y),
        ]
    }
}

/// The centre of a `w` x `h` label beside the longest stretch of a path:
/// above a level stretch, to the right of an upright one.
fn label_at(points: &[Point], w: f64, h: f64) -> Point {
    let len = |s: &[Point]| (s[1].x - s[0].x).abs() + (s[1].y - s[0].y).abs();
    let seg = points
        .windows(2)
        .fold(None::<&[Point]>, |best, s| match best {
            Some(b) if len(b) >= len(s) => Some(b),
            _ => Some(s),
        });
    let Some([a, b]) = seg else {
        return points.first().copied().unwrap_or_default();
    };
    if (a.y - b.y).abs() < 0.5 {
        Point::new((a.x + b.x) / 2.0, a.y - LABEL_OFF - h / 2.0)
    } else {
        Point::new(a.x + LABEL_OFF + w / 2.0, (a.y + b.y) / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::flow_view;
    use crate::parse::{ParseOptions, parse_str};

    const ALL_TABLES: &str = "*raw\n:PREROUTING ACCEPT\n:OUTPUT ACCEPT\nCOMMIT\n\
        *mangle\n:PREROUTING ACCEPT\n:INPUT ACCEPT\n:FORWARD ACCEPT\n:OUTPUT ACCEPT\n:POSTROUTING ACCEPT\nCOMMIT\n\
        *nat\n:PREROUTING ACCEPT\n:INPUT ACCEPT\n:OUTPUT ACCEPT\n:POSTROUTING ACCEPT\nCOMMIT\n\
        *filter\n:INPUT DROP\n:FORWARD DROP\n:OUTPUT ACCEPT\nCOMMIT\n\
        *security\n:INPUT ACCEPT\n:FORWARD ACCEPT\n:OUTPUT ACCEPT\nCOMMIT\n";

    fn inside(b: &NodeBox, f: &NodeBox) -> bool {
        b.x >= f.x && b.y >= f.y && b.x + b.w <= f.x + f.w && b.y + b.h <= f.y + f.h
    }

    fn overlap(a: &NodeBox, b: &NodeBox) -> bool {
        a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h
    }

    #[test]
    fn the_hooks_form_the_netfilter_picture() {
        for text in [
            ALL_TABLES,
            "*nat\n:PREROUTING ACCEPT\n:POSTROUTING ACCEPT\nCOMMIT\n",
        ] {
            let rs = parse_str(text, &ParseOptions::lenient("t"))
                .unwrap()
                .ruleset;
            let v = flow_view(&rs, false, "t");
            let plan = v.flow.clone().unwrap();
            let l = super::super::layout(&v, super::super::Choice::Layered);
            assert_eq!(l.engine, Engine::Flow);
            let c = |i: usize| l.nodes[i].centre();
            let (input, forward, output) = (
                plan.hook(Hook::Input),
                plan.hook(Hook::Forward),
                plan.hook(Hook::Output),
            );
            // The bottom row, left to right on one line.
            let row: Vec<usize> = std::iter::once(plan.wire_in)
                .chain(plan.hook(Hook::Prerouting).iter().copied())
                .chain([plan.routing])
                .chain(forward.iter().copied())
                .chain(plan.hook(Hook::Postrouting).iter().copied())
                .chain([plan.wire_out])
                .collect();
            for w in row.windows(2) {
                assert_eq!(
                    c(w[0]).y,
                    c(w[1]).y,
                    "{} and {} off the row",
                    v.nodes[w[0]].id,
                    v.nodes[w[1]].id
                );
                assert!(l.nodes[w[0]].x + l.nodes[w[0]].w < l.nodes[w[1]].x);
            }
            let post = plan.hook(Hook::Postrouting)[0];
            // INPUT rises above the routing decision, in priority order.
            let mut below = plan.routing;
            for &i in input {
                assert_eq!(c(i).x, c(plan.routing).x);
                assert!(l.nodes[i].y + l.nodes[i].h < l.nodes[below].y);
                below = i;
            }
            // The local process sits above INPUT, between the columns.
            assert!(l.nodes[plan.local].y + l.nodes[plan.local].h < l.nodes[below].y);
            assert!(c(plan.routing).x < c(plan.local).x && c(plan.local).x < c(post).x);
            // OUTPUT falls from output routing into POSTROUTING's first step.
            let mut above = plan.out_routing;
            for &i in output.iter().chain([plan.reroute, post].iter()) {
                assert_eq!(c(i).x, c(plan.out_routing).x);
                assert!(l.nodes[above].y + l.nodes[above].h < l.nodes[i].y);
                above = i;
            }
            // One frame per hook with steps, holding exactly its steps.
            for (hook, steps) in &plan.hooks {
                let frame = l.clusters.iter().find(|f| f.label == hook.chain());
                assert_eq!(frame.is_some(), !steps.is_empty(), "{hook:?}");
                let Some(f) = frame else { continue };
                for (i, b) in l.nodes.iter().enumerate() {
                    assert_eq!(
                        inside(b, &f.bbox),
                        steps.contains(&i),
                        "{hook:?} {}",
                        v.nodes[i].id
                    );
                }
            }
            for (i, a) in l.nodes.iter().enumerate() {
                for b in &l.nodes[i + 1..] {
                    assert!(!overlap(a, b));
                }
            }
            // Every arrow is level or upright.
            for e in &l.edges {
                for s in e.points.windows(2) {
                    assert!(s[0].x == s[1].x || s[0].y == s[1].y, "{:?}", e.points);
                }
            }
        }
    }

    fn b(x: f64, y: f64) -> NodeBox {
        NodeBox {
            x,
            y,
            w: 20.0,
            h: 10.0,
        }
    }

    #[test]
    fn routes_are_straight_or_bend_once() {
        // Same row: right side to left side.
        assert_eq!(
            route(&b(0.0, 0.0), &b(50.0, 0.0)),
            [Point::new(20.0, 5.0), Point::new(50.0, 5.0)]
        );
        // Straight up, top to bottom.
        assert_eq!(
            route(&b(0.0, 100.0), &b(0.0, 0.0)),
            [Point::new(10.0, 100.0), Point::new(10.0, 10.0)]
        );
        // Up and then across into the left side.
        assert_eq!(
            route(&b(0.0, 100.0), &b(80.0, 0.0)),
            [
                Point::new(10.0, 100.0),
                Point::new(10.0, 5.0),
                Point::new(80.0, 5.0)
            ]
        );
        // Across and then down into the top.
        assert_eq!(
            route(&b(0.0, 0.0), &b(80.0, 100.0)),
            [
                Point::new(20.0, 5.0),
                Point::new(90.0, 5.0),
                Point::new(90.0, 100.0)
            ]
        );
    }

    #[test]
    fn labels_sit_beside_the_longest_stretch() {
        let p = [
            Point::new(0.0, 100.0),
            Point::new(0.0, 90.0),
            Point::new(200.0, 90.0),
        ];
        let c = label_at(&p, 40.0, 15.0);
        assert_eq!(c, Point::new(100.0, 90.0 - LABEL_OFF - 7.5));
        let up = [Point::new(0.0, 100.0), Point::new(0.0, 0.0)];
        assert_eq!(
            label_at(&up, 40.0, 15.0),
            Point::new(LABEL_OFF + 20.0, 50.0)
        );
    }
}
