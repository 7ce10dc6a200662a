//! A trace made readable: names instead of indices, rule text, reasons.
//! The same view feeds the text output, `--json` and the GUI list.

use std::fmt::Write as _;

use serde::Serialize;

use crate::model::{Rule, Ruleset};

use super::packet::Packet;
use super::{Action, Hook, Part, Route, Step, Trace, Verdict};

/// One step with everything resolved to text.
#[derive(Debug, Clone, Serialize)]
pub struct StepView {
    /// Hook name.
    pub hook: Hook,
    /// Table name.
    pub table: String,
    /// Chain name.
    pub chain: String,
    /// 1-based rule number in the chain (`None` for policy / end of chain).
    pub rule: Option<usize>,
    /// Line of the rule in the input.
    pub line: Option<u32>,
    /// The rule as `-A CHAIN ...`, or the policy line.
    pub text: String,
    /// Whether it matched.
    pub matched: bool,
    /// The part that did not match, as written in the rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why_not: Option<String>,
    /// What happened, in words.
    pub action: String,
    /// Assumptions and probabilities.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The whole trace with names resolved.
#[derive(Debug, Clone, Serialize)]
pub struct TraceView {
    /// Packet as given.
    pub input: Packet,
    /// Packet as it leaves (after NAT and marks).
    pub output: Packet,
    /// Final verdict.
    pub verdict: Verdict,
    /// Routing decision.
    pub route: Route,
    /// Hooks traversed.
    pub hooks: Vec<Hook>,
    /// Steps in order.
    pub steps: Vec<StepView>,
    /// Remarks about the walk.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Why the walk stopped before a verdict (then `verdict` means nothing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<super::Stopped>,
    /// The same, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_message: Option<String>,
    /// The routing step (with --routes, --sysctl or --join).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing: Option<super::RouteStep>,
}

fn part_text(r: &Rule, part: Part) -> String {
    use crate::save::{push_common, push_match};
    let mut out = String::new();
    let common = |flag: &str, v: Option<crate::model::Negatable<&str>>, out: &mut String| {
        if let Some(v) = v {
            push_common(out, flag, &v);
        }
    };
    match part {
        Part::Protocol => common("-p", r.protocol(), &mut out),
        Part::Source => common("-s", r.source(), &mut out),
        Part::Destination => common("-d", r.destination(), &mut out),
        Part::InIface => common("-i", r.in_iface(), &mut out),
        Part::OutIface => common("-o", r.out_iface(), &mut out),
        Part::Fragment => match r.fragment() {
            Some(true) => out.push_str(" -f"),
            Some(false) => out.push_str(" ! -f"),
            None => {}
        },
        Part::Match(i) => {
            if let Some(m) = r.matches().nth(i as usize) {
                push_match(&mut out, &m);
            }
        }
    }
    out.trim_start().to_string()
}

pub(super) fn action_text(rs: &Ruleset, table: usize, a: &Action) -> String {
    let chain_name = |c: usize| {
        rs.tables[table]
            .chains
            .get(c)
            .map(|c| c.name.to_string())
            .unwrap_or_default()
    };
    match a {
        Action::None => String::new(),
        Action::Continue { target } => format!("{target}, continue"),
        Action::Jump { chain } => format!("jump to {}", chain_name(*chain)),
        Action::Goto { chain } => format!("goto {}", chain_name(*chain)),
        Action::Return => "RETURN to the caller".into(),
        Action::FallOff => "end of chain, back to the caller".into(),
        Action::Verdict { verdict } => verdict.to_string(),
        Action::Policy { verdict } => format!("policy {verdict}"),
        Action::Extension { target, verdict } => format!("{target}: {verdict} in this table"),
        Action::Mark { from, to } => format!("MARK {from:#x} -> {to:#x}, continue"),
        Action::Connmark {
            ct_from,
            ct_to,
            mark,
        } => format!("CONNMARK ctmark {ct_from:#x} -> {ct_to:#x}, mark {mark:#x}, continue"),
        Action::Notrack => "NOTRACK, continue untracked".into(),
        Action::Rewrite { target, change } => format!("{target}: {change}, continue"),
        Action::Nat { target, change } => format!("{target}: {change}"),
        Action::Undefined { name } => format!("jump to undefined {name} (ignored)"),
    }
}

impl Step {
    /// Resolves names and text against the ruleset the trace ran on.
    pub fn view(&self, rs: &Ruleset) -> StepView {
        let table = &rs.tables[self.table];
        let chain = &table.chains[self.chain];
        let rule = self.rule.and_then(|i| chain.rules.get(i));
        let text = match rule {
            Some(r) => crate::save::rule_line(&chain.name, r),
            None if matches!(self.action, Action::Policy { .. }) => format!(
                ":{} {}",
                chain.name,
                chain.policy.as_deref().unwrap_or("ACCEPT")
            ),
            None => format!("(end of {})", chain.name),
        };
        StepView {
            hook: self.hook,
            table: table.name.to_string(),
            chain: chain.name.to_string(),
            rule: self.rule.map(|i| i + 1),
            line: rule.map(|r| r.line),
            text,
            matched: self.matched,
            why_not: match (rule, self.miss) {
                (Some(r), Some(p)) => Some(part_text(r, p)),
                _ => None,
            },
            action: action_text(rs, self.table, &self.action),
            notes: self.notes.clone(),
        }
    }
}

impl Trace {
    /// Resolves every step against the ruleset the trace ran on.
    pub fn view(&self, rs: &Ruleset) -> TraceView {
        self.view_steps(|s| s.view(rs))
    }

    /// The view, with each step resolved by `f`.
    pub(super) fn view_steps(&self, f: impl Fn(&Step) -> StepView) -> TraceView {
        TraceView {
            input: self.input.clone(),
            output: self.output.clone(),
            verdict: self.verdict,
            route: self.route,
            hooks: self.hooks.clone(),
            steps: self.steps.iter().map(f).collect(),
            notes: self.notes.clone(),
            stopped: self.stopped.clone(),
            stopped_message: self.stopped.as_ref().map(ToString::to_string),
            routing: self.routing.clone(),
        }
    }
}

/// The trace as a readable step list followed by the verdict.
pub fn render_text(v: &TraceView) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "packet  {}", v.input);
    let mut last: Option<(Hook, &str)> = None;
    for s in &v.steps {
        if last != Some((s.hook, s.table.as_str())) {
            let _ = writeln!(out, "\n{} / {}", s.hook.chain(), s.table);
            last = Some((s.hook, s.table.as_str()));
        }
        let mark = if s.matched { "=>" } else { "  " };
        let loc = match (s.rule, s.line) {
            (Some(n), Some(l)) => format!("{}#{n} (line {l})", s.chain),
            (Some(n), None) => format!("{}#{n}", s.chain),
            (None, _) => s.chain.clone(),
        };
        let _ = writeln!(out, "  {mark} {loc}: {}", s.text);
        if let Some(w) = &s.why_not {
            let _ = writeln!(out, "       no match: {w}");
        }
        if !s.action.is_empty() {
            let _ = writeln!(out, "       -> {}", s.action);
        }
        for n in &s.notes {
            let _ = writeln!(out, "       assumption: {n}");
        }
    }
    let _ = writeln!(out);
    // A drop by routing is said on the verdict line.
    for n in v
        .notes
        .iter()
        .filter(|n| !n.starts_with("dropped by routing: "))
    {
        let _ = writeln!(out, "note    {n}");
    }
    let route = match v.route {
        Route::Local => "delivered to this host",
        Route::Forward => "forwarded",
        Route::Output => "sent by this host",
    };
    match &v.routing {
        Some(r) => {
            let what = match r.decision {
                super::Decision::Local => "for this host (INPUT)".to_string(),
                super::Decision::Forward => format!(
                    "forward (FORWARD) out of {}",
                    r.dev.as_deref().unwrap_or("an interface not known")
                ),
                super::Decision::Output => format!(
                    "sent out of {}",
                    r.dev.as_deref().unwrap_or("an interface not known")
                ),
                super::Decision::Drop => "dropped by routing".to_string(),
            };
            let _ = writeln!(out, "routing {what}: {}", r.reason);
            if let Some(route) = &r.route {
                let _ = writeln!(out, "        route {route}");
            }
        }
        None if v.hooks.first() == Some(&Hook::Prerouting)
            && v.hooks
                .iter()
                .any(|h| matches!(h, Hook::Input | Hook::Forward)) =>
        {
            let _ = writeln!(
                out,
                "routing not modelled (no --routes): this host's addresses (--local, --iface-addr) or --direction decided; martians, missing routes and rp_filter not checked"
            );
        }
        None => {}
    }
    let hooks: Vec<&str> = v.hooks.iter().map(|h| h.chain()).collect();
    let _ = writeln!(out, "path    {}", hooks.join(" -> "));
    if let Some(why) = &v.stopped_message {
        let _ = writeln!(out, "{why}");
    } else if v.verdict == Verdict::Accept {
        let _ = writeln!(out, "verdict ACCEPT: {route}");
        let _ = writeln!(out, "leaves  {}", v.output);
    } else if let Some(r) = v
        .routing
        .as_ref()
        .filter(|r| r.decision == super::Decision::Drop)
    {
        let _ = writeln!(
            out,
            "verdict {}: dropped by routing: {}",
            v.verdict, r.reason
        );
    } else {
        let at = v.hooks.last().map(|h| h.chain()).unwrap_or("?");
        let _ = writeln!(out, "verdict {} in {at}", v.verdict);
    }
    out
}
