//! The hook-order view: where each table's built-in chain sits on a
//! packet's way through the kernel. Click a chain to open it in the graph.
//!
//! Interim: the library's `flow` module is being written on another
//! branch; the hook order below follows the kernel's priorities.

use egui::{Align2, Color32, FontId, Pos2, Rect, Sense, Stroke, StrokeKind, Ui, pos2, vec2};

use super::Action;
use crate::palette;
use crate::state::{AppState, ChainRef};

/// Tables traversed at each hook, in kernel priority order.
pub const HOOKS: [(&str, &[&str]); 5] = [
    ("PREROUTING", &["raw", "mangle", "nat"]),
    ("INPUT", &["mangle", "filter", "security", "nat"]),
    ("FORWARD", &["mangle", "filter", "security"]),
    ("OUTPUT", &["raw", "mangle", "nat", "filter", "security"]),
    ("POSTROUTING", &["mangle", "nat"]),
];

/// Draws the flow view.
pub fn show(ui: &mut Ui, state: &AppState) -> Vec<Action> {
    let mut actions = Vec::new();
    let (area, _) = ui.allocate_exact_size(ui.available_size(), Sense::hover());
    let painter = ui.painter_at(area);
    let dark = ui.visuals().dark_mode;
    painter.rect_filled(area, 0.0, ui.visuals().extreme_bg_color);
    let text = ui.visuals().text_color();
    let weak = ui.visuals().weak_text_color();
    let Some(doc) = &state.doc else {
        return actions;
    };
    let tables = &doc.parsed.ruleset.tables;

    let col_w = ((area.width() - 60.0) / 4.0).clamp(150.0, 260.0);
    let gap = ((area.width() - col_w * 4.0) / 5.0).max(12.0);
    let x = |c: usize| area.left() + gap + c as f32 * (col_w + gap);
    let row_h = 24.0;
    let head = 30.0;
    let y0 = area.top() + 60.0;
    let y1 = y0 + head + row_h * 5.0 + 80.0;
    // (hook index, column, top)
    let place = [(0, 0, y0), (1, 1, y1), (2, 2, y0), (3, 3, y1), (4, 3, y0)];
    let mut boxes = [Rect::NOTHING; 5];
    for (hook, col, top) in place {
        let order = HOOKS[hook].1;
        let h = head + row_h * order.len() as f32 + 8.0;
        boxes[hook] = Rect::from_min_size(pos2(x(col), top), vec2(col_w, h));
    }
    painter.text(
        area.left_top() + vec2(gap, 20.0),
        Align2::LEFT_TOP,
        "How a packet meets each table: top row routed through, bottom row to and from this host. Click a chain to open it.",
        FontId::proportional(13.0),
        weak,
    );

    let stroke = Stroke::new(2.0, weak);
    let arrow = |a: Pos2, b: Pos2| {
        painter.line_segment([a, b], stroke);
        let dir = (b - a).normalized();
        let side = vec2(-dir.y, dir.x) * 5.0;
        let back = b - dir * 10.0;
        painter.add(egui::Shape::convex_polygon(
            vec![b, back + side, back - side],
            weak,
            Stroke::NONE,
        ));
    };
    let route = pos2(x(1) + col_w / 2.0, boxes[0].center().y);
    let local = pos2(x(2) + col_w / 2.0, boxes[1].center().y);
    arrow(boxes[0].right_center(), route - vec2(50.0, 0.0));
    painter.text(
        route,
        Align2::CENTER_CENTER,
        "routing\ndecision",
        FontId::proportional(12.0),
        text,
    );
    arrow(route + vec2(50.0, 0.0), boxes[2].left_center());
    arrow(route + vec2(0.0, 20.0), boxes[1].center_top());
    arrow(boxes[2].right_center(), boxes[4].left_center());
    arrow(boxes[1].right_center(), local - vec2(45.0, 0.0));
    painter.text(
        local,
        Align2::CENTER_CENTER,
        "local\nprocess",
        FontId::proportional(12.0),
        text,
    );
    arrow(local + vec2(45.0, 0.0), boxes[3].left_center());
    arrow(boxes[3].center_top(), boxes[4].center_bottom());

    for (hook, (name, order)) in HOOKS.iter().enumerate() {
        let b = boxes[hook];
        painter.rect_filled(b, 6.0, ui.visuals().panel_fill);
        painter.rect_stroke(b, 6.0, Stroke::new(1.5, weak), StrokeKind::Inside);
        painter.text(
            b.left_top() + vec2(10.0, 7.0),
            Align2::LEFT_TOP,
            *name,
            FontId::proportional(15.0),
            text,
        );
        for (k, tname) in order.iter().enumerate() {
            let r = Rect::from_min_size(
                b.left_top() + vec2(8.0, head + k as f32 * row_h),
                vec2(col_w - 16.0, row_h - 4.0),
            );
            let found = tables.iter().position(|t| t.name == *tname).and_then(|ti| {
                let ci = tables[ti].chain_position(name)?;
                Some((ti, ci))
            });
            match found {
                Some((ti, ci)) => {
                    let c = &tables[ti].chains[ci];
                    let id = ui.scope_id().with(("flow", hook, k));
                    let resp = ui.interact(r, id, Sense::click());
                    let mut fill = palette::table_colour(tname, dark);
                    if resp.hovered() {
                        fill = fill.gamma_multiply(1.2);
                    }
                    painter.rect_filled(r, 3.0, fill);
                    let policy = c.policy.as_deref().unwrap_or("-");
                    painter.text(
                        r.left_center() + vec2(6.0, 0.0),
                        Align2::LEFT_CENTER,
                        format!("{tname}: {} rules, {policy}", c.rules.len()),
                        FontId::proportional(12.0),
                        if dark {
                            Color32::from_gray(235)
                        } else {
                            Color32::from_gray(15)
                        },
                    );
                    if resp.clicked() {
                        actions.push(Action::Select(ChainRef {
                            table: ti,
                            chain: ci,
                        }));
                    }
                    if state.selected
                        == Some(ChainRef {
                            table: ti,
                            chain: ci,
                        })
                    {
                        painter.rect_stroke(
                            r,
                            3.0,
                            Stroke::new(2.0, palette::selected_colour(dark)),
                            StrokeKind::Outside,
                        );
                    }
                }
                None => {
                    painter.rect_stroke(
                        r,
                        3.0,
                        Stroke::new(1.0, weak.gamma_multiply(0.5)),
                        StrokeKind::Inside,
                    );
                    painter.text(
                        r.left_center() + vec2(6.0, 0.0),
                        Align2::LEFT_CENTER,
                        format!("{tname}: not in this dump"),
                        FontId::proportional(12.0),
                        weak,
                    );
                }
            }
        }
    }
    actions
}
