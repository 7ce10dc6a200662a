//! Small windows: open a path, paste rules, export the view, choose the
//! ruleset to compare with.

use egui::{Context, TextEdit};

use super::{Action, Dialog};
use crate::compare_state::CompareAction;

/// Text typed into the dialogs, kept between openings.
#[derive(Default)]
pub struct Dialogs {
    /// The dialog showing, if any.
    pub open: Option<Dialog>,
    /// Open: the path field.
    pub path: String,
    /// Paste: the text box.
    pub paste: String,
    /// Export: the output path.
    pub export: String,
    /// Compare: the path of the other ruleset.
    pub compare: String,
}

/// Draws the open dialog, if any.
pub fn show(ctx: &Context, d: &mut Dialogs, recent: &[String]) -> Vec<Action> {
    let mut actions = Vec::new();
    let Some(which) = d.open else { return actions };
    let mut keep = true;
    match which {
        Dialog::Open => {
            egui::Window::new("Open rules file")
                .open(&mut keep)
                .collapsible(false)
                .pivot(egui::Align2::CENTER_TOP)
                .default_pos(ctx.content_rect().center_top() + egui::vec2(0.0, 80.0))
                .default_width(480.0)
                .show(ctx, |ui| {
                    let label = ui.label("Path of an iptables-save, ip6tables-save or iptables -S file, or of a pcap/pcapng capture to replay through the loaded rules (or drop a file on the window):");
                    let r = ui
                        .add(TextEdit::singleline(&mut d.path).hint_text("/path/to/rules.txt").desired_width(f32::INFINITY))
                        .labelled_by(label.id);
                    let enter = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
                    if (ui.button("Open").clicked() || enter) && !d.path.trim().is_empty() {
                        actions.push(Action::OpenPath(d.path.trim().to_string()));
                    }
                    if !recent.is_empty() {
                        ui.separator();
                        ui.label("Recent:");
                        for p in recent {
                            if ui.link(p).clicked() {
                                actions.push(Action::OpenPath(p.clone()));
                            }
                        }
                    }
                });
        }
        Dialog::Compare => {
            egui::Window::new("Compare with another ruleset")
                .open(&mut keep)
                .collapsible(false)
                .pivot(egui::Align2::CENTER_TOP)
                .default_pos(ctx.content_rect().center_top() + egui::vec2(0.0, 80.0))
                .default_width(480.0)
                .show(ctx, |ui| {
                    let label = ui.label("Path of the ruleset to compare with (the old side; the loaded rules are the new side). Or drop a file on the window, or paste with Ctrl+V:");
                    let r = ui
                        .add(TextEdit::singleline(&mut d.compare).hint_text("/path/to/old-rules.txt").desired_width(f32::INFINITY))
                        .labelled_by(label.id);
                    let enter = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
                    let open = |p: String| Action::Compare(CompareAction::OpenPath(p));
                    if (ui.button("Compare with the loaded rules").clicked() || enter) && !d.compare.trim().is_empty() {
                        actions.push(open(d.compare.trim().to_string()));
                    }
                    if !recent.is_empty() {
                        ui.separator();
                        ui.label("Recent:");
                        for p in recent {
                            if ui.link(p).clicked() {
                                actions.push(open(p.clone()));
                            }
                        }
                    }
                });
        }
        Dialog::Paste => {
            egui::Window::new("Paste rules")
                .open(&mut keep)
                .collapsible(false)
                .pivot(egui::Align2::CENTER_TOP)
                .default_pos(ctx.content_rect().center_top() + egui::vec2(0.0, 80.0))
                .default_width(600.0)
                .show(ctx, |ui| {
                    let label = ui
                        .label("Paste the output of iptables-save, ip6tables-save or iptables -S:");
                    egui::ScrollArea::vertical()
                        .max_height(300.0)
                        .show(ui, |ui| {
                            ui.add(
                                TextEdit::multiline(&mut d.paste)
                                    .id(egui::Id::unique("paste-box"))
                                    .code_editor()
                                    .desired_rows(14)
                                    .desired_width(f32::INFINITY),
                            )
                            .labelled_by(label.id);
                        });
                    ui.horizontal(|ui| {
                        if ui.button("Show these rules").clicked() {
                            actions.push(Action::LoadText {
                                name: "pasted text".into(),
                                text: d.paste.clone().into_bytes(),
                            });
                        }
                        if ui.button("Clear").clicked() {
                            d.paste.clear();
                        }
                    });
                });
        }
        Dialog::Export => {
            egui::Window::new("Export view")
                .open(&mut keep)
                .collapsible(false)
                .show(ctx, |ui| {
                    ui.label("File name; .svg for a picture, .dot for Graphviz, .json for the laid-out graph:");
                    ui.add(TextEdit::singleline(&mut d.export).desired_width(360.0));
                    if ui.button("Export").clicked() {
                        actions.push(Action::Export(d.export.trim().to_string()));
                    }
                });
        }
    }
    if !keep {
        d.open = None;
    }
    actions
}
