//! `iptviz check` and `iptviz save`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use iptviz::model::{InputFormat, Ruleset};
use iptviz::parse::Severity;
use serde::Serialize;

use super::common::{Input, InputArgs, open_output, output_file};

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
    /// Write the native nft tables of a mixed host to NFT_FILE as `nft -f`
    /// input, and only the iptables tables to the output (for
    /// iptables-restore); `-` is standard output when -o names a file.
    #[arg(long, value_name = "NFT_FILE", conflicts_with = "json")]
    nft_out: Option<PathBuf>,
    /// Print what could be read even when the input has errors.
    #[arg(long)]
    lenient: bool,
}

#[derive(Serialize)]
struct TableSummary<'a> {
    name: &'a str,
    /// The nft family of a native nft table (`None` for iptables tables).
    #[serde(skip_serializing_if = "Option::is_none")]
    family: Option<iptviz::nft::Family>,
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
    suspicious: &'a [iptviz::Problem],
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
                    family: None,
                    chains: t.chains.len(),
                    builtin_chains: b,
                    user_chains: t.chains.len() - b,
                    rules: t.rule_count(),
                }
            })
            .chain(rs.nft.tables.iter().map(|t| {
                let b = t.base_chains().count();
                TableSummary {
                    name: &t.name,
                    family: Some(t.family),
                    chains: t.chains.len(),
                    builtin_chains: b,
                    user_chains: t.chains.len() - b,
                    rules: t.rule_count(),
                }
            }))
            .collect(),
        chains: rs.chain_count() + rs.nft.chain_count(),
        rules: rs.rule_count() + rs.nft.rule_count(),
        errors,
        warnings: i.parsed.problems.len() - errors,
        notes: &rs.notes,
        problems: &i.parsed.problems,
        suspicious: &i.parsed.suspicious,
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
        let nft_fams: Vec<&str> = {
            let mut v: Vec<&str> = i
                .parsed
                .ruleset
                .nft
                .tables
                .iter()
                .map(|t| t.family.as_str())
                .collect();
            v.dedup();
            v
        };
        let fams = nft_fams.join("+");
        let fam = match (s.format, s.family) {
            (InputFormat::Nft | InputFormat::NftJson, _) => fams.as_str(),
            (_, iptviz::model::Family::Ipv4) => "IPv4",
            (_, iptviz::model::Family::Ipv6) => "IPv6",
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
            let shown = match t.family {
                Some(f) => format!("{f} {}", t.name),
                None => t.name.to_string(),
            };
            writeln!(
                out,
                "  {:<10} {:>8} {:>8} {:>8} {:>9}",
                shown, t.chains, t.builtin_chains, t.user_chains, t.rules
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
                i.parsed.problems.iter().chain(s.suspicious).collect();
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
    if let Some(nft) = &a.nft_out {
        if output_file(Some(nft)).is_none() && output_file(a.output.as_ref()).is_none() {
            anyhow::bail!(
                "--nft-out - and the iptables rules cannot both go to standard output: \
                 name a file for one of them (-o FILE or --nft-out FILE)"
            );
        }
        if a.output.as_ref() == Some(nft) {
            anyhow::bail!(
                "--nft-out and -o both name {}: the nft and iptables rules need a file each",
                nft.display()
            );
        }
    }
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
    if let Some(nft_path) = &a.nft_out {
        save_apart(&inputs, a.output.as_ref(), nft_path)?;
        return Ok(code);
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
    let rulesets = || inputs.iter().map(|i| &i.parsed.ruleset);
    if !a.json && rulesets().any(|r| !r.nft.is_empty()) && rulesets().any(|r| !r.tables.is_empty())
    {
        eprintln!(
            "iptviz save: the native nft tables were written as comments after the iptables rules; \
             use --nft-out FILE to write them apart as `nft -f` input"
        );
    }
    Ok(code)
}

/// `save --nft-out`: the iptables tables of every input to `output`, the
/// native nft tables of every input together to `nft_path`.
fn save_apart(
    inputs: &[Input],
    output: Option<&PathBuf>,
    nft_path: &PathBuf,
) -> anyhow::Result<()> {
    let mut nft = iptviz::nft::NftRuleset::default();
    for i in inputs {
        nft.tables
            .extend(i.parsed.ruleset.nft.tables.iter().cloned());
    }
    if nft.is_empty() {
        eprintln!(
            "iptviz save: the input has no native nft tables; {} holds none",
            nft_path.display()
        );
    }
    // The nft file first: written whole or not at all, like the output.
    let mut nft_out = open_output(Some(nft_path))?;
    nft_out.write_all(iptviz::save::to_nft_text(&nft).as_bytes())?;
    nft_out.flush()?;
    let mut out = open_output(output)?;
    for i in inputs {
        let rs = &i.parsed.ruleset;
        if !rs.tables.is_empty() {
            out.write_all(iptviz::save::to_iptables_text(rs).as_bytes())?;
        }
    }
    out.flush()?;
    Ok(())
}
