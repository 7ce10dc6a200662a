//! Right panel: the selected chain's rules, one block per rule; jump
//! targets are links.

use egui::{RichText, ScrollArea, Ui};
use iptviz::model::{Negatable, Rule, TargetKind};

use super::Action;
use crate::palette;
use crate::state::AppState;

/// Draws the selected chain's rules.
pub fn show(ui: &mut Ui, state: &AppState) -> Vec<Action> {
    let mut actions = Vec::new();
    ui.horizontal(|ui| {
        let (back, fwd) = state.can_go();
        if ui
            .add_enabled(back, egui::Button::new("< Back"))
            .on_hover_text("Alt+Left")
            .clicked()
        {
            actions.push(Action::Back);
        }
        if ui
            .add_enabled(fwd, egui::Button::new("Forward >"))
            .on_hover_text("Alt+Right")
            .clicked()
        {
            actions.push(Action::Forward);
        }
    });
    let Some((table, chain)) = state.selected_chain() else {
        ui.add_space(8.0);
        ui.weak("Click a chain on the canvas or in the list to see its rules.");
        return actions;
    };
    ui.horizontal_wrapped(|ui| {
        ui.heading(format!("{} / {}", table.name, chain.name));
    });
    ui.horizontal(|ui| {
        let mut facts = vec![crate::scene::plural(chain.rules.len(), "rule")];
        if let Some(p) = &chain.policy {
            facts.push(format!("policy {p}"));
        }
        if let Some(c) = chain.counters {
            facts.push(format!("{} packets", c.packets));
        }
        if let Some(doc) = &state.doc
            && let Some(sel) = state.selected
        {
            let g = &doc.graphs[sel.table];
            if let Some(Some(s)) = g.service.get(sel.chain) {
                facts.push(s.clone());
            }
            facts.push(format!("jumped to by {}", g.referenced[sel.chain]));
        }
        ui.label(facts.join(" · "));
    });
    if ui
        .button("Copy rules")
        .on_hover_text("Copy this chain's rules as iptables-save lines (Ctrl+Shift+C)")
        .clicked()
    {
        actions.push(Action::CopyRules);
    }
    ui.separator();
    let compared = state
        .selected
        .and_then(|at| state.compare.focus_in(state.doc.as_ref(), at));
    if let Some(old) = compared.and_then(|f| f.removed.as_ref()) {
        removed_note(ui, state, old);
    }
    if chain.rules.is_empty() {
        ui.weak("No rules: packets fall through to the policy (built-in) or return to the caller.");
        return actions;
    }
    let dark = ui.visuals().dark_mode;
    let lint = state.lint.current(state.doc.as_ref());
    let at = state.selected;
    // A difference picked in the Compare view, else a lint finding.
    let picked = compared
        .and_then(|f| f.rule)
        .or_else(|| at.and_then(|at| state.lint.picked_rule(state.doc.as_ref(), at)));
    let line = ui.text_style_height(&egui::TextStyle::Body);
    let row = line * 3.0 + 12.0;
    let mut area = ScrollArea::vertical()
        .id_salt("rules")
        .auto_shrink([false, false]);
    // Scroll to a rule picked in the Problems panel, once.
    let scroll_key = egui::Id::unique("rules-scrolled-to");
    if let Some(p) = picked {
        let key = (at, p, state.lint.picked, state.compare.picks);
        let hash = egui::Id::unique(key);
        if ui.data(|d| d.get_temp::<egui::Id>(scroll_key)) != Some(hash) {
            ui.data_mut(|d| d.insert_temp(scroll_key, hash));
            let spacing = ui.spacing().item_spacing.y;
            area = area.vertical_scroll_offset(((row + spacing) * p as f32 - row).max(0.0));
        }
    }
    area.show_rows(ui, row, chain.rules.len(), |ui, range| {
        for i in range {
            let rule = &chain.rules[i];
            let note = at.and_then(|at| greyed(lint, at, i));
            let r = ui.allocate_ui(egui::vec2(ui.available_width(), row), |ui| {
                ui.set_min_height(row);
                rule_block(ui, i, rule, dark, note, &mut actions);
            });
            if picked == Some(i) {
                ui.painter().rect_stroke(
                    r.response.rect.expand(2.0),
                    3.0,
                    egui::Stroke::new(2.0, palette::selected_colour(dark)),
                    egui::StrokeKind::Inside,
                );
            }
        }
    });
    actions
}

/// A rule the other side of the comparison has and this chain no longer
/// has: its old text, where it stood, and in which file.
fn removed_note(ui: &mut Ui, state: &AppState, old: &iptviz::diff::RuleRef) {
    let colour = crate::views::compare::mark_colour(
        iptviz::graph::DiffMark::Removed,
        ui.visuals().dark_mode,
    );
    let from = state
        .compare
        .other
        .as_ref()
        .map_or("the other file", |d| d.name.as_str());
    egui::Frame::group(ui.style())
        .stroke(egui::Stroke::new(1.5, colour))
        .show(ui, |ui| {
            ui.label(
                RichText::new(format!(
                    "Removed from this chain (was #{}, line {} of {from}):",
                    old.index, old.line
                ))
                .color(colour)
                .strong(),
            );
            ui.add(egui::Label::new(RichText::new(&old.text).monospace()).wrap());
        });
    ui.add_space(4.0);
}

/// The lint finding that greys rule `rule` of chain `at`: a rule no
/// packet can match (shadowed, contradictory, dead, after an
/// unconditional rule).
pub fn greyed(
    lint: Option<&crate::lint_state::LintReport>,
    at: crate::state::ChainRef,
    rule: usize,
) -> Option<&crate::lint_state::LintFinding> {
    lint?.of_rule(at, rule).filter(|f| f.never_matches())
}

/// The hover text of a greyed rule: what it is and which rules cover it.
pub fn never_matches_note(f: &crate::lint_state::LintFinding) -> String {
    let mut s = format!("{}: {}", f.finding.kind.name(), f.finding.reason);
    if f.finding.action_differs == Some(true) {
        s.push_str("\nThe covering rule's action differs: this rule's action never happens.");
    }
    s
}

fn rule_block(
    ui: &mut Ui,
    i: usize,
    rule: &Rule,
    dark: bool,
    note: Option<&crate::lint_state::LintFinding>,
    actions: &mut Vec<Action>,
) {
    if note.is_some() {
        // Greyed: every colour of the block fades toward the background.
        ui.multiply_opacity(0.45);
    }
    ui.horizontal(|ui| {
        ui.label(RichText::new(format!("#{}", i + 1)).strong());
        if let Some(f) = note {
            ui.label(RichText::new(f.finding.kind.name()).italics())
                .on_hover_text(never_matches_note(f));
        }
        ui.weak(format!("line {}", rule.line));
        if let Some(c) = rule.counters {
            ui.weak(format!("{} pkts / {} B", c.packets, c.bytes));
        }
        match rule.target() {
            Some(t) if t.kind == TargetKind::Chain => {
                let arrow = if t.goto { "goto" } else { "->" };
                if ui
                    .link(format!("{arrow} {}", t.name))
                    .on_hover_text("Go to this chain")
                    .clicked()
                {
                    actions.push(Action::Follow(t.name.to_string()));
                }
            }
            Some(t) => {
                let mut s = t.name.to_string();
                for o in &t.opts {
                    s.push(' ');
                    s.push_str(o.name);
                    for a in &o.args {
                        s.push(' ');
                        s.push_str(a);
                    }
                }
                let colour = if t.kind == TargetKind::Undefined {
                    palette::verdict_colour("DROP", dark)
                } else {
                    palette::verdict_colour(t.name, dark)
                };
                let r = ui.label(
                    RichText::new(crate::state::short(&s, 60))
                        .color(colour)
                        .strong(),
                );
                if t.kind == TargetKind::Undefined {
                    r.on_hover_text("Target is neither a known target nor a chain of this table");
                }
            }
            None => {
                ui.weak("(no target: counts only)");
            }
        }
    });
    // Rows have a fixed height (the list is virtual), so long lines are
    // cut; the whole rule is on hover.
    let summary = summary(rule);
    let hover = match note {
        Some(f) => format!("{}\n\n{}", rule.text, never_matches_note(f)),
        None => rule.text.to_string(),
    };
    ui.add(egui::Label::new(RichText::new(summary).monospace()).truncate())
        .on_hover_text(hover);
    match rule.comment() {
        Some(c) => ui.add(egui::Label::new(RichText::new(c).italics().weak()).truncate()),
        None => ui.label(""),
    };
}

/// `tcp  192.0.2.0/24 -> any  in eth0  dpt 22  conntrack --ctstate NEW`.
pub fn summary(rule: &Rule) -> String {
    let neg = |n: Negatable<&str>| {
        if n.negated {
            format!("!{}", n.value)
        } else {
            n.value.to_string()
        }
    };
    let mut parts = Vec::new();
    if let Some(p) = rule.protocol() {
        parts.push(neg(p));
    }
    if rule.source().is_some() || rule.destination().is_some() {
        let src = rule.source().map_or("any".to_string(), neg);
        let dst = rule.destination().map_or("any".to_string(), neg);
        parts.push(format!("{src} -> {dst}"));
    }
    if let Some(i) = rule.in_iface() {
        parts.push(format!("in {}", neg(i)));
    }
    if let Some(o) = rule.out_iface() {
        parts.push(format!("out {}", neg(o)));
    }
    for m in rule.matches() {
        if m.module == "comment" {
            continue;
        }
        let mut s = String::new();
        let is_proto = matches!(m.module, "tcp" | "udp" | "sctp" | "udplite");
        if !is_proto {
            s.push_str(m.module);
        }
        for o in &m.opts {
            let name = match o.name {
                "--dport" | "--destination-port" => "dpt",
                "--sport" | "--source-port" => "spt",
                "--dports" | "--destination-ports" => "dpts",
                "--sports" | "--source-ports" => "spts",
                other => other,
            };
            if !s.is_empty() {
                s.push(' ');
            }
            if o.negated {
                s.push_str("! ");
            }
            s.push_str(name);
            for a in &o.args {
                s.push(' ');
                s.push_str(a);
            }
        }
        if !s.is_empty() {
            parts.push(s);
        }
    }
    if parts.is_empty() {
        return "every packet".into();
    }
    parts.join("  ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use iptviz::parse::{ParseOptions, parse_str};

    #[test]
    fn summary_names_the_parts() {
        let p = parse_str(
            "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 10.0.0.0/8 -i eth0 -p tcp -m tcp --dport 22 \
             -m conntrack --ctstate NEW -m comment --comment \"x\" -j ACCEPT\nCOMMIT\n",
            &ParseOptions::lenient("t"),
        )
        .expect("parses");
        let r = &p.ruleset.tables[0].chains[0].rules[0];
        assert_eq!(
            summary(r),
            "tcp  10.0.0.0/8 -> any  in eth0  dpt 22  conntrack --ctstate NEW"
        );
        let bare = iptviz::model::Rule::default();
        assert_eq!(summary(&bare), "every packet");
    }
}
