//! Trace panel (bottom): the packet form, the verdict, the packet as it
//! leaves, and every step; and the path drawn over the canvas.

use egui::{
    Align2, Color32, CornerRadius, FontId, Key, Rect, RichText, Sense, Shape, Stroke, StrokeKind,
    Ui, pos2, vec2,
};
use egui_extras::{Column, TableBuilder};
use iptviz::render::style;
use iptviz::trace::{Route, Verdict};

use super::Action;
use super::canvas::Camera;
use crate::palette;
use crate::scene::{NodeStyle, Scene};
use crate::state::AppState;
use crate::trace_state::{DIRECTIONS, STATES, TraceAction, TraceForm, scene_path};

/// Accent of the packet's path (the library's, as in the SVG).
pub fn path_colour() -> Color32 {
    let (r, g, b) = style::PATH;
    Color32::from_rgb(r, g, b)
}

/// A labelled one-line field; true when Enter was pressed in it.
fn field(ui: &mut Ui, label: &str, text: &mut String, width: f32, hint: &str) -> bool {
    let l = ui.label(label);
    let r = ui
        .add(
            egui::TextEdit::singleline(text)
                .desired_width(width)
                .hint_text(hint),
        )
        .labelled_by(l.id);
    r.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter))
}

fn choice(ui: &mut Ui, label: &str, value: &mut String, options: &[&str]) {
    let l = ui.label(label);
    egui::ComboBox::from_id_salt(("trace-choice", label))
        .selected_text(value.as_str())
        .width(110.0)
        .show_ui(ui, |ui| {
            for o in options {
                ui.selectable_value(value, o.to_string(), *o);
            }
        })
        .response
        .labelled_by(l.id);
}

/// Draws the trace panel; `form` is the packet being edited.
pub fn show(ui: &mut Ui, state: &AppState, form: &mut TraceForm) -> Vec<Action> {
    let mut actions = Vec::new();
    let run = |form: &TraceForm| Action::Trace(TraceAction::Run(Box::new(form.clone())));
    let mut go = false;
    ui.horizontal(|ui| {
        ui.strong("Trace a packet");
        ui.weak("through the loaded rules, as the kernel would walk it");
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            if ui.button("Close").clicked() {
                actions.push(Action::Trace(TraceAction::Toggle));
            }
            if state.trace.result.is_some() && ui.button("Clear").clicked() {
                actions.push(Action::Trace(TraceAction::Clear));
            }
            let mut alone = state.trace.path_only;
            if ui
                .checkbox(&mut alone, "Path only")
                .on_hover_text(
                    "Draw only what the packet went through, hook by hook and table by table, \
                     as iptviz trace --path-only does",
                )
                .changed()
            {
                actions.push(Action::Trace(TraceAction::PathOnly(alone)));
            }
        });
    });
    ui.horizontal_wrapped(|ui| {
        go |= field(ui, "Protocol", &mut form.proto, 48.0, "tcp");
        go |= field(ui, "Source", &mut form.src, 130.0, "IP address");
        go |= field(ui, "Source port", &mut form.sport, 52.0, "0");
        go |= field(ui, "Destination", &mut form.dst, 130.0, "IP address");
        go |= field(ui, "Destination port", &mut form.dport, 52.0, "0");
        choice(ui, "State", &mut form.state, STATES);
    });
    ui.horizontal_wrapped(|ui| {
        go |= field(ui, "In interface", &mut form.in_iface, 70.0, "eth0");
        go |= field(ui, "Out interface", &mut form.out_iface, 70.0, "any");
        go |= field(ui, "Mark", &mut form.mark, 60.0, "0");
        go |= field(
            ui,
            "Local addresses",
            &mut form.local,
            170.0,
            "this host, e.g. 192.168.1.10",
        );
        choice(ui, "Direction", &mut form.direction, DIRECTIONS);
        let enabled = state.doc.is_some() && !state.trace.running();
        if ui
            .add_enabled(
                enabled,
                egui::Button::new(RichText::new("Run trace").strong()),
            )
            .on_hover_text("Run the packet through the rules (Enter in any field)")
            .clicked()
        {
            go = true;
        }
    });
    if go {
        actions.push(run(form));
    }
    if let Some(e) = &state.trace.error {
        ui.colored_label(palette::verdict_colour("DROP", ui.visuals().dark_mode), e);
    }
    if let Some(t) = state.trace.running_for() {
        // The walk runs on a worker thread; the app stays usable.
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label(format!("tracing … {:.1} s", t.as_secs_f32()));
        });
    }
    ui.separator();
    let Some(r) = state.trace.current(state.doc.as_ref()) else {
        if state.trace.result.is_some() {
            ui.weak("Other rules were loaded since the last trace: trace again.");
        } else {
            ui.weak(
                "Fill in the packet and press Run trace. Local addresses decide whether it is \
                 delivered here (INPUT) or routed through (FORWARD).",
            );
        }
        return actions;
    };
    let v = &r.view;
    let dark = ui.visuals().dark_mode;
    if let Some(why) = &v.stopped_message {
        // No verdict: the walk hit a jump loop or its budget.
        ui.label(
            RichText::new(format!("Stopped: {why}"))
                .strong()
                .color(palette::verdict_colour("DROP", dark)),
        );
    }
    ui.horizontal_wrapped(|ui| {
        let verdict = if v.stopped.is_some() {
            "none".to_string()
        } else {
            v.verdict.to_string()
        };
        let outcome = match (v.verdict, v.route) {
            (Verdict::Accept, Route::Local) => "delivered to this host",
            (Verdict::Accept, Route::Forward) => "forwarded",
            (Verdict::Accept, Route::Output) => "sent by this host",
            _ => "stopped",
        };
        ui.label(
            RichText::new(format!("Verdict: {verdict}"))
                .strong()
                .size(15.0)
                .color(palette::verdict_colour(&verdict, dark)),
        );
        ui.label(outcome);
        ui.separator();
        let hooks: Vec<&str> = v.hooks.iter().map(|h| h.chain()).collect();
        ui.label(format!("path {}", hooks.join(" -> ")));
        ui.separator();
        ui.weak(format!(
            "{} steps, {} matched, {:.1} ms",
            v.steps.len(),
            v.steps.iter().filter(|s| s.matched).count(),
            r.took.as_secs_f64() * 1000.0
        ));
    });
    ui.horizontal_wrapped(|ui| {
        ui.label("Packet in:");
        ui.monospace(v.input.to_string());
        ui.label(if v.verdict == Verdict::Accept {
            "  leaves as:"
        } else {
            "  when stopped:"
        });
        let changed = v.output != v.input;
        let text = RichText::new(v.output.to_string()).monospace();
        ui.label(if changed {
            text.color(path_colour())
        } else {
            text
        });
    });
    if v.route == Route::Forward && v.input.out_iface.is_none() {
        ui.weak(
            "No out interface given: rules with -o do not match a routed packet. \
             Fill in Out interface to see where it would go.",
        );
    }
    for n in &v.notes {
        ui.weak(format!("note: {n}"));
    }
    let row_h = ui.text_style_height(&egui::TextStyle::Body) + 4.0;
    let weak = ui.visuals().weak_text_color();
    // Text selection would swallow the clicks that select a row.
    ui.style_mut().interaction.selectable_labels = false;
    TableBuilder::new(ui)
        .id_salt("trace-steps")
        .striped(true)
        .sense(Sense::click())
        .auto_shrink([false, false])
        .cell_layout(egui::Layout::left_to_right(egui::Align::Center))
        .column(Column::exact(34.0))
        .column(Column::initial(140.0).resizable(true).clip(true))
        .column(Column::initial(190.0).resizable(true).clip(true))
        .column(Column::initial(220.0).resizable(true).clip(true))
        .column(Column::initial(190.0).resizable(true).clip(true))
        .column(Column::remainder().clip(true))
        .header(row_h, |mut h| {
            for t in [
                "#",
                "Hook / table",
                "Chain, rule",
                "Result",
                "Action",
                "Rule",
            ] {
                h.col(|ui| {
                    ui.strong(t);
                });
            }
        })
        .body(|body| {
            body.rows(row_h, v.steps.len(), |mut row| {
                let i = row.index();
                let s = &v.steps[i];
                row.set_selected(state.trace.step == Some(i));
                let colour = if s.matched { path_colour() } else { weak };
                row.col(|ui| {
                    ui.label(RichText::new(format!("{}", i + 1)).color(colour));
                });
                row.col(|ui| {
                    ui.label(format!("{} / {}", s.hook.chain(), s.table));
                });
                row.col(|ui| {
                    let loc = match (s.rule, s.line) {
                        (Some(n), Some(l)) => format!("{} #{n} (line {l})", s.chain),
                        (Some(n), None) => format!("{} #{n}", s.chain),
                        (None, _) => s.chain.clone(),
                    };
                    ui.label(loc);
                });
                row.col(|ui| {
                    let text = if s.matched {
                        "matched".to_string()
                    } else {
                        match &s.why_not {
                            Some(w) => format!("no: {w}"),
                            None => "no match".into(),
                        }
                    };
                    ui.label(RichText::new(text).color(colour));
                });
                row.col(|ui| {
                    let mut a = s.action.clone();
                    if !s.notes.is_empty() {
                        a.push_str(if a.is_empty() {
                            "assumed"
                        } else {
                            " (assumed)"
                        });
                    }
                    let words = s.action.split([' ', ':', ',']).next().unwrap_or("");
                    let c = if s.matched && !words.is_empty() {
                        palette::verdict_colour(words.trim_start_matches("policy "), dark)
                    } else {
                        ui.visuals().text_color()
                    };
                    ui.label(RichText::new(a).color(c));
                });
                row.col(|ui| {
                    ui.monospace(&s.text);
                });
                let resp = row.response();
                let resp = if s.notes.is_empty() {
                    resp.on_hover_text(&s.text)
                } else {
                    resp.on_hover_text(format!(
                        "{}\n\nassumptions:\n{}",
                        s.text,
                        s.notes.join("\n")
                    ))
                };
                if resp.clicked() {
                    actions.push(Action::Trace(TraceAction::SelectStep(i)));
                }
            });
        });
    actions
}

/// Draws the current trace's path over the canvas: everything else is
/// dimmed, the chains entered get the accent outline, the jumps taken a
/// thick accent line.
#[allow(clippy::too_many_arguments)]
pub fn paint_path(
    painter: &egui::Painter,
    scene: &Scene,
    state: &AppState,
    cam: &Camera,
    view: Rect,
    visible: Rect,
    dark: bool,
) {
    let Some(path) = scene_path(state, scene) else {
        return;
    };
    let accent = path_colour();
    let bg = if dark {
        Color32::from_gray(12)
    } else {
        Color32::from_gray(250)
    };
    painter.rect_filled(view, 0.0, bg.gamma_multiply(1.0 - style::DIMMED as f32));
    let width = (style::PATH_EDGE_WIDTH as f32 * cam.zoom.sqrt()).clamp(1.5, 5.0);
    let mut shapes = Vec::new();
    for &i in &path.edges {
        let e = &scene.edges[i];
        if !e.bounds.intersects(visible) {
            continue;
        }
        // Follow the edge as the canvas draws it, over it, in the accent.
        let line = super::canvas::edge_polyline(e, cam, view, false);
        shapes.push(Shape::line(line, Stroke::new(width, accent)));
        if let Some(tip) = super::canvas::arrow_head(e, cam, view) {
            shapes.push(Shape::convex_polygon(tip.to_vec(), accent, Stroke::NONE));
        }
    }
    let table = state
        .doc
        .as_ref()
        .and_then(|d| d.parsed.ruleset.tables.get(state.table))
        .map(|t| t.name.to_string())
        .unwrap_or_default();
    let text_colour = if dark {
        Color32::from_gray(230)
    } else {
        Color32::from_gray(20)
    };
    let fill_user = if dark {
        Color32::from_gray(38)
    } else {
        Color32::WHITE
    };
    let title_size = (13.0 * cam.zoom).round().clamp(6.0, 40.0);
    let mut labels = Vec::new();
    for &n in &path.nodes {
        let node = &scene.nodes[n];
        if !node.rect.intersects(visible) {
            continue;
        }
        let r = Rect::from_min_max(
            cam.to_screen(view, node.rect.min),
            cam.to_screen(view, node.rect.max),
        );
        let fill = match node.style {
            NodeStyle::Builtin => palette::table_colour(&table, dark),
            _ => fill_user,
        };
        let radius = CornerRadius::same((4.0 * cam.zoom).clamp(0.0, 8.0) as u8);
        shapes.push(Shape::rect_filled(r, radius, fill));
        shapes.push(Shape::rect_stroke(
            r,
            radius,
            Stroke::new(style::PATH_NODE_WIDTH as f32, accent),
            StrokeKind::Outside,
        ));
        if cam.zoom >= 0.4 {
            labels.push((r.left_top() + vec2(8.0, 5.0) * cam.zoom, node));
        }
    }
    // The selected chain keeps its outline above the veil.
    if let Some(n) = state
        .selected
        .filter(|s| s.table == state.table)
        .and_then(|s| scene.node_for_chain(s.chain))
    {
        let node = &scene.nodes[n];
        let r = Rect::from_min_max(
            cam.to_screen(view, node.rect.min),
            cam.to_screen(view, node.rect.max),
        );
        let off = if path.nodes.contains(&n) {
            style::PATH_NODE_WIDTH as f32 + 2.0
        } else {
            3.0
        };
        shapes.push(Shape::rect_stroke(
            r.expand(off),
            CornerRadius::same(4),
            Stroke::new(2.5, palette::selected_colour(dark)),
            StrokeKind::Outside,
        ));
    }
    painter.extend(shapes);
    let sub_size = (11.0 * cam.zoom).round().clamp(6.0, 34.0);
    for (at, node) in labels {
        painter.text(
            at,
            Align2::LEFT_TOP,
            &node.title,
            FontId::proportional(title_size),
            text_colour,
        );
        painter.text(
            at + vec2(0.0, 17.0 * cam.zoom),
            Align2::LEFT_TOP,
            &node.subtitle,
            FontId::proportional(sub_size),
            text_colour.gamma_multiply(0.75),
        );
    }
    painter.text(
        pos2(view.right() - 10.0, view.top() + 10.0),
        Align2::RIGHT_TOP,
        "packet path",
        FontId::proportional(12.0),
        accent,
    );
}
