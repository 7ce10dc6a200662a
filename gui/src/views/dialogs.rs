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

/// The words of a window that asks for a path.
struct PathWindow {
    title: &'static str,
    prompt: &'static str,
    hint: &'static str,
    button: &'static str,
}

/// A window with a path field, its button, and the recent files as links;
/// `open` makes the action for a path chosen.
fn path_window(
    ctx: &Context,
    keep: &mut bool,
    w: PathWindow,
    path: &mut String,
    recent: &[String],
    open: impl Fn(String) -> Action,
) -> Vec<Action> {
    let mut actions = Vec::new();
    egui::Window::new(w.title)
        .open(keep)
        .collapsible(false)
        .pivot(egui::Align2::CENTER_TOP)
        .default_pos(ctx.content_rect().center_top() + egui::vec2(0.0, 80.0))
        .default_width(480.0)
        .show(ctx, |ui| {
            let label = ui.label(w.prompt);
            let r = ui
                .add(
                    TextEdit::singleline(path)
                        .hint_text(w.hint)
                        .desired_width(f32::INFINITY),
                )
                .labelled_by(label.id);
            let enter = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            if (ui.button(w.button).clicked() || enter) && !path.trim().is_empty() {
                actions.push(open(path.trim().to_string()));
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
    actions
}

/// Draws the open dialog, if any.
pub fn show(ctx: &Context, d: &mut Dialogs, recent: &[String]) -> Vec<Action> {
    let mut actions = Vec::new();
    let Some(which) = d.open else { return actions };
    let mut keep = true;
    match which {
        Dialog::Open => actions.extend(path_window(
            ctx,
            &mut keep,
            PathWindow {
                title: "Open rules file",
                prompt: "Path of an iptables-save, ip6tables-save or iptables -S file, or of a pcap/pcapng capture to replay through the loaded rules (or drop a file on the window):",
                hint: "/path/to/rules.txt",
                button: "Open",
            },
            &mut d.path,
            recent,
            Action::OpenPath,
        )),
        Dialog::Compare => actions.extend(path_window(
            ctx,
            &mut keep,
            PathWindow {
                title: "Compare with another ruleset",
                prompt: "Path of the ruleset to compare with (the old side; the loaded rules are the new side). Or drop a file on the window, or paste with Ctrl+V:",
                hint: "/path/to/old-rules.txt",
                button: "Compare with the loaded rules",
            },
            &mut d.compare,
            recent,
            |p| Action::Compare(CompareAction::OpenPath(p)),
        )),
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
