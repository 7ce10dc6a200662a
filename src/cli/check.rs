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
    problems: &'a [iptviz::Problem],
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
        problems: &i.parsed.problems,
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
        any |= !s.problems.is_empty();
        if a.json {
            continue;
        }
        let fmt = match s.format {
            InputFormat::Save => "iptables-save",
            InputFormat::Spec => "iptables -S",
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
        if s.problems.is_empty() {
            writeln!(out, "  no problems found")?;
        } else {
            writeln!(
                out,
                "  {} error{}, {} warning{}",
                s.errors,
                if s.errors == 1 { "" } else { "s" },
                s.warnings,
                if s.warnings == 1 { "" } else { "s" }
            )?;
        }
    }
    out.flush()?;
    drop(out);
    if !a.json {
        for i in &inputs {
            for p in &i.parsed.problems {
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
