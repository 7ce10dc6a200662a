//! The Reach view: pick a chain and a port, see the classes of addresses
//! the chain treats alike and the pairs it accepts, drawn as `iptviz
//! reach -f svg` draws them. Clicking a class, an arrow or a row of the
//! list shows a representative packet and traces it in the trace panel.

use std::sync::Arc;

use egui::{Align2, FontId, RichText, ScrollArea, Sense, Stroke, Ui};

use super::Action;
use super::canvas::{self, Camera, Paint};
use crate::palette;
use crate::reach_state::{Pick, ReachAction, ReachForm, ReachResult, sample};
use crate::state::AppState;

/// Zoom at which box labels are drawn; a new matrix is framed no smaller.
const READABLE: f32 = 0.6;

/// Ranges listed per class in the list before "(+N more)".
const LIST_RANGES: usize = 2;

/// Draws the Reach view; `canvas_rect` gets where the graph was drawn.
pub fn show(
    ui: &mut Ui,
    state: &AppState,
    form: &mut ReachForm,
    cam: &mut Camera,
    canvas_rect: &mut Option<egui::Rect>,
) -> Vec<Action> {
    let mut actions = Vec::new();
    let Some(doc) = state.doc.clone() else {
        ui.weak("Load rules first.");
        return actions;
    };
    egui::Panel::top("reach-form").show(ui, |ui| {
        form_row(ui, state, &doc, form, &mut actions);
    });
    let result = state.reach.current(Some(&doc));
    let Some(r) = result else {
        ui.add_space(12.0);
        ui.weak(
            "Pick a table, a chain (FORWARD for a router, INPUT for a host) and a TCP port, \
             then Compute: the addresses the chain treats alike become classes, and an arrow \
             means first packets from one class to the other may be accepted.",
        );
        return actions;
    };
    egui::Panel::right("reach-classes")
        .resizable(true)
        .default_size(300.0)
        .min_size(200.0)
        .show(ui, |ui| {
            side_panel(ui, state, r, &mut actions);
        });
    egui::CentralPanel::no_frame().show(ui, |ui| {
        *canvas_rect = Some(ui.max_rect());
        graph(ui, state, r, cam, &mut actions);
    });
    actions
}

fn form_row(
    ui: &mut Ui,
    state: &AppState,
    doc: &Arc<crate::state::Document>,
    form: &mut ReachForm,
    actions: &mut Vec<Action>,
) {
    let rs = &doc.parsed.ruleset;
    let mut run = false;
    ui.horizontal_wrapped(|ui| {
        let l = ui.label("Table");
        egui::ComboBox::from_id_salt("reach-table")
            .selected_text(form.table.as_str())
            .show_ui(ui, |ui| {
                for t in &rs.tables {
                    ui.selectable_value(&mut form.table, t.name.to_string(), t.name.as_str());
                }
            })
            .response
            .labelled_by(l.id);
        let chains: Vec<&str> = rs
            .table(&form.table)
            .map(|t| {
                // Built-in chains first: they are where the questions start.
                let mut v: Vec<&str> = t
                    .chains
                    .iter()
                    .filter(|c| c.policy.is_some())
                    .map(|c| c.name.as_str())
                    .collect();
                v.extend(
                    t.chains
                        .iter()
                        .filter(|c| c.policy.is_none())
                        .take(300)
                        .map(|c| c.name.as_str()),
                );
                v
            })
            .unwrap_or_default();
        let l = ui.label("Chain");
        egui::ComboBox::from_id_salt("reach-chain")
            .selected_text(form.chain.as_str())
            .show_ui(ui, |ui| {
                for c in chains {
                    ui.selectable_value(&mut form.chain, c.to_string(), c);
                }
            })
            .response
            .labelled_by(l.id);
        let l = ui.label("Port");
        let r = ui
            .add(egui::TextEdit::singleline(&mut form.dport).desired_width(50.0))
            .labelled_by(l.id)
            .on_hover_text("TCP destination port of the first packets");
        run |= r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        let l = ui.label("Source port");
        ui.add(egui::TextEdit::singleline(&mut form.sport).desired_width(50.0))
            .labelled_by(l.id);
        ui.checkbox(&mut form.lower, "Lower closure").on_hover_text(
            "Tests the engine cannot decide (marks, rate limits, -i/-o ...) count against \
             accepting: show only what is surely accepted. Off: what may be accepted.",
        );
        run |= ui
            .button("Compute")
            .on_hover_text("Compute the classes and accepted pairs (Enter in the port field)")
            .clicked();
        if let Some(t) = state.reach.busy() {
            ui.spinner();
            ui.label(format!("computing … {:.1} s", t.as_secs_f32()));
            ui.ctx()
                .request_repaint_after(std::time::Duration::from_millis(100));
        }
    });
    if let Some(e) = &state.reach.error {
        ui.colored_label(palette::verdict_colour("DROP", ui.visuals().dark_mode), e);
    }
    if let Some(r) = state.reach.current(Some(doc)) {
        let m = &r.matrix;
        ui.label(format!(
            "{} {}: tcp {} -> {} NEW, {}: {} classes, {} accepted pairs ({}; {:.2} s)",
            m.table,
            m.chain,
            m.sport,
            m.dport,
            if m.ipv6 { "IPv6" } else { "IPv4" },
            m.classes.len(),
            m.edges.len(),
            match m.closure {
                iptviz::analysis::Closure::Upper => "upper closure: what may be accepted",
                iptviz::analysis::Closure::Lower => "lower closure: what surely is",
            },
            r.took.as_secs_f64()
        ));
    }
    if run {
        actions.push(Action::Reach(ReachAction::Run(Box::new(form.clone()))));
    }
}

/// `c3  131.159.42.175-131.159.255.255, 131.159.22.0/24 (+3 more)`.
pub fn class_label(r: &ReachResult, i: usize) -> String {
    let c = &r.matrix.classes[i];
    let mut s = format!("c{i}  ");
    if c.everything_else {
        s.push_str("everything else: ");
    }
    s.push_str(
        &c.ranges
            .iter()
            .take(LIST_RANGES)
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
    );
    if c.ranges.len() > LIST_RANGES {
        s.push_str(&format!(" (+{} more)", c.ranges.len() - LIST_RANGES));
    }
    s
}

fn side_panel(ui: &mut Ui, state: &AppState, r: &ReachResult, actions: &mut Vec<Action>) {
    let m = &r.matrix;
    let pick = state.reach.pick;
    let picked_class = match pick {
        Some(Pick::Class(c)) => Some(c),
        _ => None,
    };
    ui.strong(format!("Classes ({})", m.classes.len()));
    ScrollArea::vertical()
        .id_salt("reach-class-list")
        .max_height(ui.available_height() * 0.45)
        .auto_shrink([false, true])
        .show(ui, |ui| {
            for i in 0..m.classes.len() {
                let text = class_label(r, i);
                let resp = ui
                    .add(egui::Button::selectable(picked_class == Some(i), text).truncate())
                    .on_hover_text(format!(
                        "{} addresses\n{}",
                        m.classes[i].addresses,
                        crate::state::short(&m.classes[i].ranges.join(", "), 2000)
                    ));
                if resp.clicked() {
                    actions.push(Action::Reach(ReachAction::Pick(Pick::Class(i))));
                }
            }
        });
    ui.separator();
    let Some(p) = pick else {
        ui.weak("Click a class or an arrow (or a row above) to see a packet it stands for and trace it.");
        notes(ui, r);
        return;
    };
    let Some(s) = sample(m, p) else { return };
    match p {
        Pick::Class(c) => {
            ui.strong(format!("Class c{c}"));
            ui.label(format!("{} addresses", m.classes[c].addresses));
        }
        Pick::Pair(a, b) => {
            ui.strong(format!("c{a} -> c{b}"));
        }
    }
    let dark = ui.visuals().dark_mode;
    ui.label("Representative packet:");
    ui.monospace(s.describe(m));
    let (word, colour) = if s.accepted {
        ("may be accepted", palette::verdict_colour("ACCEPT", dark))
    } else {
        ("is not accepted", palette::verdict_colour("DROP", dark))
    };
    ui.label(RichText::new(format!("The matrix: c{} -> c{} {word}", s.from, s.to)).color(colour));
    if let Some(t) = state.trace.current(state.doc.as_ref())
        && t.trace.input.src == s.src
        && t.trace.input.dst == s.dst
    {
        let v = t.trace.verdict.to_string();
        ui.label(
            RichText::new(format!("The trace: {v} (steps in the trace panel)"))
                .color(palette::verdict_colour(&v, dark)),
        );
        if (v == "ACCEPT") != s.accepted {
            let why = match m.closure {
                iptviz::analysis::Closure::Upper => {
                    "The matrix takes tests it cannot decide (interfaces, marks, MACs, rate \
                     limits ...) as passing in accepting rules; the trace decides them with \
                     the packet's fields (set an interface in the trace form to try one)."
                }
                iptviz::analysis::Closure::Lower => {
                    "The lower closure takes tests it cannot decide as failing in accepting \
                     rules; the trace decides them with the packet's fields."
                }
            };
            ui.add(egui::Label::new(RichText::new(why).weak()).wrap());
        }
    }
    if ui
        .button("Trace again")
        .on_hover_text("Trace this packet in the trace panel")
        .clicked()
    {
        actions.push(Action::Reach(ReachAction::Pick(p)));
    }
    if let Pick::Class(c) = p {
        let to: Vec<usize> = m
            .edges
            .iter()
            .filter(|&&(a, _)| a == c)
            .map(|&(_, b)| b)
            .collect();
        ui.label(if to.is_empty() {
            "reaches no class".to_string()
        } else {
            format!("reaches {} class(es):", to.len())
        });
        ui.horizontal_wrapped(|ui| {
            for b in to.into_iter().take(100) {
                if ui
                    .link(format!("-> c{b}"))
                    .on_hover_text(format!("trace c{c} -> c{b}"))
                    .clicked()
                {
                    actions.push(Action::Reach(ReachAction::Pick(Pick::Pair(c, b))));
                }
            }
        });
    }
    notes(ui, r);
}

fn notes(ui: &mut Ui, r: &ReachResult) {
    if r.matrix.notes.is_empty() {
        return;
    }
    ui.separator();
    for n in &r.matrix.notes {
        ui.add(egui::Label::new(RichText::new(n).weak()).wrap());
    }
}

fn graph(
    ui: &mut Ui,
    state: &AppState,
    r: &ReachResult,
    cam: &mut Camera,
    actions: &mut Vec<Action>,
) {
    let scene = &*r.scene;
    let (view, response) = ui.allocate_exact_size(ui.available_size(), Sense::click_and_drag());
    let dark = ui.visuals().dark_mode;
    let painter = ui.painter_at(view);
    let background = ui.visuals().extreme_bg_color;
    painter.rect_filled(view, 0.0, background);
    // Frame a new matrix once.
    let key = egui::Id::unique("reach-fitted");
    let ptr = Arc::as_ptr(&r.scene) as usize;
    let fitted = ui.data(|d| d.get_temp::<usize>(key)) == Some(ptr);
    if !fitted || state.fit_requested {
        cam.fit(scene.bounds, view);
        // A big matrix would fit below readable text: keep the boxes
        // readable and show the top (the largest classes), the rest is a
        // pan (or the minimap) away.
        if cam.zoom < READABLE {
            cam.zoom = READABLE;
            cam.center = egui::pos2(
                scene.bounds.center().x,
                scene.bounds.top() + view.height() / 2.0 / READABLE - 20.0,
            );
        }
        ui.data_mut(|d| d.insert_temp(key, ptr));
    }
    // A class picked in the list (or a pair) is brought into sight once.
    let seen_key = egui::Id::unique("reach-pick-shown");
    let pick = state.reach.pick;
    if ui.data(|d| d.get_temp::<Option<Pick>>(seen_key)) != Some(pick) {
        ui.data_mut(|d| d.insert_temp(seen_key, pick));
        let at = match pick {
            Some(Pick::Class(c)) => scene.nodes.get(c).map(|n| n.rect.center()),
            Some(Pick::Pair(a, b)) => scene
                .edges
                .iter()
                .find(|e| (e.from as usize, e.to as usize) == (a, b))
                .and_then(|e| e.points.get(e.points.len() / 2).copied()),
            None => None,
        };
        if let Some(p) = at
            && !cam.visible(view.shrink(40.0)).contains(p)
        {
            cam.center = p;
        }
    }
    canvas::pan_and_zoom(ui, &response, cam, view);
    if scene.nodes.is_empty() {
        painter.text(
            view.center(),
            Align2::CENTER_CENTER,
            "No classes",
            FontId::proportional(16.0),
            ui.visuals().weak_text_color(),
        );
        return;
    }
    let visible = cam.visible(view).expand(4.0 / cam.zoom);
    let hovered = response
        .hover_pos()
        .and_then(|p| scene.node_at(cam.to_world(view, p)));
    let edges: Vec<usize> = (0..scene.edges.len())
        .filter(|&i| scene.edges[i].bounds.intersects(visible))
        .collect();
    let (selected, pair) = match state.reach.pick {
        Some(Pick::Class(c)) => (Some(c), None),
        Some(Pick::Pair(a, b)) => (None, Some((a as u32, b as u32))),
        None => (None, None),
    };
    let paint = Paint {
        painter: &painter,
        cam,
        view,
        dark,
        background,
    };
    paint.edges(scene, &edges, selected);
    // The picked pair on top, wider.
    if let Some((a, b)) = pair {
        for e in scene.edges.iter().filter(|e| (e.from, e.to) == (a, b)) {
            let line = canvas::edge_polyline(e, cam, view, false);
            painter.add(egui::Shape::line(
                line,
                Stroke::new(3.5, palette::selected_colour(dark)),
            ));
        }
    }
    paint.nodes(scene, state, visible, selected, hovered);
    let hovered_edge = if hovered.is_none() {
        response
            .hover_pos()
            .and_then(|p| canvas::edge_at(scene, cam, view, &edges, p))
    } else {
        None
    };
    if let Some(n) = hovered {
        let node = &scene.nodes[n];
        response.clone().on_hover_ui_at_pointer(|ui| {
            ui.strong(&node.title);
            ui.label(crate::state::short(&node.hover, 600));
            ui.weak("click: a packet from this class, traced");
        });
    } else if let Some(e) = hovered_edge {
        let edge = &scene.edges[e];
        response.clone().on_hover_ui_at_pointer(|ui| {
            ui.strong(&edge.hover);
            ui.weak("click: a packet of this pair, traced");
        });
    }
    if response.clicked() {
        if let Some(n) = hovered {
            actions.push(Action::Reach(ReachAction::Pick(Pick::Class(n))));
        } else if let Some(e) = hovered_edge {
            let e = &scene.edges[e];
            actions.push(Action::Reach(ReachAction::Pick(Pick::Pair(
                e.from as usize,
                e.to as usize,
            ))));
        }
    }
    canvas::legend(ui, &painter, scene, view, dark);
    canvas::minimap(ui, scene, cam, view, dark);
    canvas::zoom_label(&painter, view, cam, ui, state.reach.busy().is_some());
}
