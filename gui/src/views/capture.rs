//! Capture panel (bottom): a pcap or pcapng capture replayed through the
//! loaded rules: packets per verdict, the rules and policies that decided
//! them (click to select the chain), and the flows dropped most (click to
//! trace the first packet).

use egui::{RichText, ScrollArea, Ui};

use super::Action;
use crate::capture_state::{CaptureAction, CaptureReport};
use crate::palette;
use crate::state::AppState;

/// Draws the capture panel.
pub fn show(ui: &mut Ui, state: &AppState) -> Vec<Action> {
    let mut actions = Vec::new();
    let act = |a| Action::Capture(a);
    let cap = &state.capture;
    let dark = ui.visuals().dark_mode;
    ui.horizontal(|ui| {
        ui.strong("Capture");
        ui.weak("replayed through the loaded rules, as `iptviz trace --pcap` does");
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            if ui
                .button("Close capture")
                .on_hover_text("Forget the capture")
                .clicked()
            {
                actions.push(act(CaptureAction::Close));
            }
            let mut heat = cap.heat;
            if ui
                .checkbox(&mut heat, "Capture counters on the graph")
                .on_hover_text(
                    "Draw each edge as wide as the capture's packets that took it, \
                     instead of the rules' own counters",
                )
                .changed()
            {
                actions.push(act(CaptureAction::Heat(heat)));
            }
        });
    });
    if let Some(job) = &cap.job {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label(format!(
                "replaying {} … {} packets read, {:.1} s",
                job.name,
                job.progress.load(std::sync::atomic::Ordering::Relaxed),
                job.elapsed().as_secs_f32()
            ));
            if ui.button("Stop").clicked() {
                actions.push(act(CaptureAction::Stop));
            }
        });
        ui.ctx()
            .request_repaint_after(std::time::Duration::from_millis(100));
    }
    if let Some(e) = &cap.error {
        ui.colored_label(palette::verdict_colour("DROP", dark), e);
    }
    let Some(report) = cap.current(state.doc.as_ref()) else {
        if cap.report.is_some() {
            ui.weak(
                "The last capture was replayed through other rules: open it again to replay it through these.",
            );
        } else if cap.job.is_none() && cap.error.is_none() {
            ui.weak(
                "Open a capture (File > Open, or drop a .pcap or .pcapng file on the window) to replay it here.",
            );
        }
        return actions;
    };
    ui.label(report.headline())
        .on_hover_text(format!("replayed in {:.2} s", report.took.as_secs_f32()));
    notes(ui, report);
    ui.separator();
    ui.columns(3, |cols| {
        verdicts(&mut cols[0], report, dark);
        deciders(&mut cols[1], report, dark, &mut actions);
        dropped(&mut cols[2], report, &mut actions);
    });
    actions
}

/// What was not traced, when anything was not.
fn notes(ui: &mut Ui, r: &CaptureReport) {
    let mut parts = Vec::new();
    if r.error_count > 0 {
        parts.push(format!("{} packets could not be read", r.error_count));
    }
    let (not_ip, fragments) = r.skipped;
    if not_ip > 0 {
        parts.push(format!("{not_ip} not IP (skipped)"));
    }
    if fragments > 0 {
        parts.push(format!(
            "{fragments} later fragments (skipped: conntrack reassembles them)"
        ));
    }
    if r.other_family > 0 {
        parts.push(format!(
            "{} of the other address family (not traced: these rules are one family)",
            r.other_family
        ));
    }
    if r.summary.forgotten_flows > 0 {
        parts.push(format!(
            "{} flows forgotten to bound memory",
            r.summary.forgotten_flows
        ));
    }
    if parts.is_empty() {
        return;
    }
    let l = ui.weak(parts.join("; "));
    if !r.errors.is_empty() {
        l.on_hover_text(r.errors.join("\n"));
    }
}

fn verdicts(ui: &mut Ui, r: &CaptureReport, dark: bool) {
    ui.strong("Verdicts");
    egui::Grid::new("capture-verdicts")
        .striped(true)
        .show(ui, |ui| {
            ui.weak("verdict");
            ui.weak("packets");
            ui.weak("flows");
            ui.end_row();
            for v in &r.summary.verdicts {
                let name = v.verdict.to_string();
                ui.colored_label(palette::verdict_colour(&name, dark), &name);
                ui.label(v.tally.packets.to_string());
                ui.label(v.tally.flows.to_string());
                ui.end_row();
            }
        });
    if !r.summary.states.is_empty() {
        let states: Vec<String> = r
            .summary
            .states
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect();
        ui.weak(format!("states: {}", states.join(", ")));
    }
}

fn deciders(ui: &mut Ui, r: &CaptureReport, dark: bool, actions: &mut Vec<Action>) {
    ui.strong("Deciding rules")
        .on_hover_text("The rule or policy that ended each packet's walk; click to show its chain");
    ScrollArea::vertical()
        .id_salt("capture-deciders")
        .max_height(ui.available_height())
        .show(ui, |ui| {
            for (i, d) in r.summary.deciders.iter().enumerate() {
                let verdict = d.verdict.as_deref().unwrap_or("?");
                let text = RichText::new(format!(
                    "{}  {}  {} pkts, {} flows",
                    d.rule, verdict, d.tally.packets, d.tally.flows
                ))
                .color(palette::verdict_colour(verdict, dark));
                let resp = ui.selectable_label(false, text);
                let resp = match d.line {
                    Some(l) => resp.on_hover_text(format!("line {l} of the rules")),
                    None => resp,
                };
                if resp.clicked() {
                    actions.push(Action::Capture(CaptureAction::SelectDecider(i)));
                }
            }
        });
}

fn dropped(ui: &mut Ui, r: &CaptureReport, actions: &mut Vec<Action>) {
    ui.strong("Flows dropped most")
        .on_hover_text("Click a flow to trace its first packet in the trace panel");
    if r.summary.top_dropped.is_empty() {
        ui.weak("no packet was dropped");
        return;
    }
    ScrollArea::vertical()
        .id_salt("capture-dropped")
        .max_height(ui.available_height())
        .show(ui, |ui| {
            for (i, f) in r.summary.top_dropped.iter().enumerate() {
                let ends = if f.sport == 0 && f.dport == 0 {
                    format!("{} {} -> {}", f.proto, f.src, f.dst)
                } else {
                    format!("{} {}:{} -> {}:{}", f.proto, f.src, f.sport, f.dst, f.dport)
                };
                let resp = ui.selectable_label(
                    false,
                    format!("{ends}  {}/{} dropped", f.dropped, f.packets),
                );
                if resp.on_hover_text(format!("by {}", f.rule)).clicked() {
                    actions.push(Action::Capture(CaptureAction::TraceFlow(i)));
                }
            }
        });
}
