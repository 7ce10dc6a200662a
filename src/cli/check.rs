//! `iptviz check` and `iptviz save`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use iptviz::model::{InputFormat, Ruleset};
use iptviz::parse::Severity;
use serde::Serialize;

use super::common::{Input, InputArgs, open_output};

/// `iptviz check`
#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Print the summary and problems as JSON.
    #[arg(long)]
    json: bool,
    /// Exit 1 also when the only findings are suspicious-but-legal
    /// warnings (rules never reached, chains never jumped to ...).
    #[arg(long)]
    deny_warnings: bool,
    /// Also list `iptviz lint` findings (shadowed, redundant, dead rules).
    #[arg(long, conflicts_with = "json")]
    lint: bool,
}

/// `iptviz save`
#[derive(Debug, Args)]
pub struct SaveArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Print the whole model as JSON instead of iptables-save text.
    #[arg(long)]
    json: bool,
    /// Write here instead of standard output.
    #[arg(long, short = 'o', value_name = "OUT")]
    output: Option<PathBuf>,
    /// Print what could be read even when the input has errors.
    #[arg(long)]
    lenient: bool,
}

#[derive(Serialize)]
struct TableSummary<'a> {
    name: &'a str,
    chains: usize,
    builtin_chains: usize,
    user_chains: usize,
    rules: usize,
}

#[derive(Serialize)]
struct Summary<'a> {
    source: &'a str,
    format: InputFormat,
    family: iptviz::model::Family,
    tables: Vec<TableSummary<'a>>,
    chains: usize,
    rules: usize,
    errors: usize,
    warnings: usize,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    notes: &'a [String],
    problems: &'a [iptviz::Problem],
    /// Suspicious but legal things in the ruleset (the kernel loads them).
    suspicious: Vec<iptviz::Problem>,
}

fn summary<'a>(i: &'a Input) -> Summary<'a> {
    let rs: &Ruleset = &i.parsed.ruleset;
    let errors = i.parsed.error_count();
    Summary {
        source: &i.name,
        format: rs.format,
        family: rs.family,
        tables: rs
            .tables
            .iter()
            .map(|t| {
                let b = t.chains.iter().filter(|c| c.builtin).count();
                TableSummary {
                    name: &t.name,
                    chains: t.chains.len(),
                    builtin_chains: b,
                    user_chains: t.chains.len() - b,
                    rules: t.rule_count(),
                }
            })
            .collect(),
        chains: rs.chain_count(),
        rules: rs.rule_count(),
        errors,
        warnings: i.parsed.problems.len() - errors,
        notes: &rs.notes,
        problems: &i.parsed.problems,
        suspicious: iptviz::parse::check::lint(rs),
    }
}

/// Runs `check`.
pub fn check(a: CheckArgs) -> anyhow::Result<ExitCode> {
    let inputs = match a.input.load(false) {
        Ok(i) => i,
        Err(e) => return Ok(e.report()),
    };
    let mut out = open_output(None)?;
    let mut any = false;
    let sums: Vec<Summary<'_>> = inputs.iter().map(summary).collect();
    if a.json {
        serde_json::to_writer_pretty(&mut out, &sums)?;
        writeln!(out)?;
    }
    for (s, i) in sums.iter().zip(&inputs) {
        any |= !s.problems.is_empty() || (a.deny_warnings && !s.suspicious.is_empty());
        if a.json {
            continue;
        }
        let fmt = match s.format {
            InputFormat::Save => "iptables-save",
            InputFormat::Spec => "iptables -S",
            InputFormat::Listing => "iptables -L",
            InputFormat::Nft => "nft",
            InputFormat::NftJson => "nft -j",
        };
        let fam = match s.family {
            iptviz::model::Family::Ipv4 => "IPv4",
            iptviz::model::Family::Ipv6 => "IPv6",
        };
        writeln!(
            out,
            "{}: {fmt} text, {fam}, {} tables, {} chains, {} rules{}",
            s.source,
            s.tables.len(),
            s.chains,
            s.rules,
            if i.parsed.ruleset.has_counters() {
                ", with counters"
            } else {
                ""
            }
        )?;
        writeln!(
            out,
            "  {:<10} {:>8} {:>8} {:>8} {:>9}",
            "table", "chains", "builtin", "user", "rules"
        )?;
        for t in &s.tables {
            writeln!(
                out,
                "  {:<10} {:>8} {:>8} {:>8} {:>9}",
                t.name, t.chains, t.builtin_chains, t.user_chains, t.rules
            )?;
        }
        for n in &i.parsed.ruleset.notes {
            writeln!(out, "  note: {n}")?;
        }
        if s.problems.is_empty() && s.suspicious.is_empty() {
            writeln!(out, "  no problems found")?;
        } else {
            let w = s.warnings + s.suspicious.len();
            writeln!(
                out,
                "  {} error{}, {} warning{}{}",
                s.errors,
                if s.errors == 1 { "" } else { "s" },
                w,
                if w == 1 { "" } else { "s" },
                if s.suspicious.is_empty() {
                    String::new()
                } else {
                    format!(" ({} suspicious but legal)", s.suspicious.len())
                }
            )?;
        }
    }
    out.flush()?;
    drop(out);
    if !a.json {
        for (i, s) in inputs.iter().zip(&sums) {
            let mut all: Vec<&iptviz::Problem> =
                i.parsed.problems.iter().chain(&s.suspicious).collect();
            all.sort_by_key(|p| (p.line, p.column));
            for p in all {
                eprintln!("{}", p.render(&i.name));
            }
            if a.lint {
                let r = iptviz::analysis::lint::lint(&i.parsed.ruleset);
                any |= !r.findings.is_empty();
                for f in &r.findings {
                    println!(
                        "{}",
                        super::lint::finding_text(&i.name, &i.parsed.ruleset, f)
                    );
                }
            }
        }
    }
    // The process ends next: freeing a 100,000-rule model rule by rule
    // would only add time (a tenth of `check` on a kube-proxy dump).
    std::mem::forget(sums);
    std::mem::forget(inputs);
    Ok(if any {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Runs `save`.
pub fn save(a: SaveArgs) -> anyhow::Result<ExitCode> {
    let inputs = match a.input.load(!a.lenient) {
        Ok(i) => i,
        Err(e) => return Ok(e.report()),
    };
    let mut code = ExitCode::SUCCESS;
    for i in &inputs {
        for p in i.parsed.problems.iter() {
            if p.severity == Severity::Error || a.lenient {
                eprintln!("{}", p.render(&i.name));
            }
        }
        if i.parsed.error_count() > 0 {
            code = ExitCode::from(1);
            if !a.lenient {
                eprintln!(
                    "iptviz: {} has errors; nothing written (use --lenient to print what could be read)",
                    i.name
                );
                return Ok(code);
            }
        }
    }
    let mut out = open_output(a.output.as_ref())?;
    for i in &inputs {
        if a.json {
            serde_json::to_writer_pretty(&mut out, &i.parsed.ruleset)?;
            writeln!(out)?;
        } else {
            out.write_all(iptviz::save::to_save_text(&i.parsed.ruleset).as_bytes())?;
        }
    }
    out.flush()?;
    Ok(code)
}
