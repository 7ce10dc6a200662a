//! `iptviz lint`: rules that can never match or change nothing.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use iptviz::analysis::lint::{Finding, lint};

use super::common::InputArgs;

/// `iptviz lint`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  iptviz lint fw.rules
  sudo iptables-save | iptviz lint -
  iptviz lint --json fw.rules | jq '.findings[] | select(.kind == \"shadowed\")'

Findings, per table and chain, each as FILE:LINE with the reason:
  shadowed            earlier rules (named, with whether their action
                      differs) take every packet the rule could match
  empty match         the rule's own tests contradict each other
  redundant           removing it changes no verdict (later rules or the
                      policy give the same one)
  dead in every calling context
                      no packet the jumps into its chain send can match it
  unreachable chain   no built-in chain leads to it
  after unconditional rule
                      an earlier rule with no tests stops every packet
Tests the engine cannot see through (marks, rate limits, ipsets, unknown
modules ...) only cover a rule that has the very same test.

Exit status: 0 no findings, 1 findings (or input problems), 2 unreadable.")]
pub struct LintArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Print the findings as JSON.
    #[arg(long)]
    json: bool,
}

/// One finding as `FILE:LINE: warning: KIND: table chain #N: reason`, with
/// the rule's text below it.
pub fn finding_text(name: &str, rs: &iptviz::Ruleset, f: &Finding) -> String {
    let what = match f.rule {
        Some(r) => format!("{} {} #{}", f.table, f.chain, r + 1),
        None => format!("{} {}", f.table, f.chain),
    };
    let mut s = format!(
        "{name}:{}: warning: {}: {what}: {}",
        f.line,
        f.kind.name(),
        f.reason
    );
    if let Some(r) = f.rule
        && let Some(rule) = rs
            .table(&f.table)
            .and_then(|t| t.chain(&f.chain))
            .and_then(|c| c.rules.get(r))
    {
        s.push_str(&format!("\n  {}", &*rule.text));
    }
    s
}

/// Runs `lint`.
pub fn lint_cmd(a: LintArgs) -> anyhow::Result<ExitCode> {
    let inputs = match a.input.load(false) {
        Ok(i) => i,
        Err(e) => return Ok(e.report()),
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut any = false;
    let mut reports = Vec::new();
    for i in &inputs {
        super::common::report_problems(&i.parsed.problems, &i.name, false);
        any |= i.parsed.error_count() > 0;
        i.note_nft_not_analysed("lint");
        let r = lint(&i.parsed.ruleset);
        any |= !r.findings.is_empty();
        if !a.json {
            for f in &r.findings {
                writeln!(out, "{}", finding_text(&i.name, &i.parsed.ruleset, f))?;
            }
            let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
            for f in &r.findings {
                *counts.entry(f.kind.name()).or_default() += 1;
            }
            let list: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
            writeln!(
                out,
                "{}: {} findings{}",
                i.name,
                r.findings.len(),
                if list.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", list.join(", "))
                }
            )?;
        }
        let mut report = serde_json::json!({"source": i.name, "findings": r.findings});
        let nft = i.nft_tables();
        if !nft.is_empty() {
            report["nft_tables_not_analysed"] = serde_json::json!(nft);
        }
        reports.push(report);
    }
    if a.json {
        let v = if reports.len() == 1 {
            reports.remove(0)
        } else {
            serde_json::Value::Array(reports)
        };
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
    }
    out.flush()?;
    Ok(if any {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
