//! `iptviz check` and `iptviz save`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use iptviz::model::{Family, InputFormat, Ruleset};
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
    /// Write the IPv6 rules (`ip6tables-save`'s part of `--live`) to OUT6
    /// for ip6tables-restore, and only the IPv4 rules to the output; `-`
    /// is standard output when -o names a file. Without it, IPv6 rules
    /// that come with IPv4 ones are written after them as comments.
    #[arg(long, value_name = "OUT6", conflicts_with = "json")]
    output6: Option<PathBuf>,
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

/// Refuses output options that would write two kinds of rules to one
/// place: the same file named twice, or standard output twice.
fn check_outputs(a: &SaveArgs) -> anyhow::Result<()> {
    let named: Vec<(&str, Option<&PathBuf>)> = [
        ("-o", a.output.as_ref()),
        ("--nft-out", a.nft_out.as_ref()),
        ("--output6", a.output6.as_ref()),
    ]
    .into_iter()
    .filter(|&(flag, p)| flag == "-o" || p.is_some())
    .collect();
    if named.len() < 2 {
        return Ok(());
    }
    let to_stdout: Vec<&str> = named
        .iter()
        .filter(|(_, p)| output_file(*p).is_none())
        .map(|(flag, _)| *flag)
        .collect();
    if to_stdout.len() > 1 {
        anyhow::bail!(
            "{} would all write to standard output: name a file for all but one of them \
             (-o FILE, --nft-out FILE, --output6 FILE)",
            to_stdout.join(" and ")
        );
    }
    for (i, (flag, p)) in named.iter().enumerate() {
        for (other, q) in &named[i + 1..] {
            if let (Some(p), Some(q)) = (output_file(*p), output_file(*q))
                && p == q
            {
                anyhow::bail!(
                    "{flag} and {other} both name {}: each kind of rules needs a file of its own",
                    p.display()
                );
            }
        }
    }
    Ok(())
}

/// Runs `save`.
pub fn save(a: SaveArgs) -> anyhow::Result<ExitCode> {
    check_outputs(&a)?;
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
    if a.nft_out.is_some() || a.output6.is_some() {
        save_apart(&inputs, &a)?;
        return Ok(code);
    }
    let mut out = open_output(a.output.as_ref())?;
    let is_v6 = |i: &&Input| i.parsed.ruleset.family == Family::Ipv6;
    let v4_tables = inputs
        .iter()
        .any(|i| !is_v6(&i) && !i.parsed.ruleset.tables.is_empty());
    let mut v6_as_comments = false;
    for i in &inputs {
        if a.json {
            serde_json::to_writer_pretty(&mut out, &i.parsed.ruleset)?;
            writeln!(out)?;
        } else if is_v6(&i) && v4_tables && !i.parsed.ruleset.tables.is_empty() {
            // iptables-restore cannot read IPv6 rules: kept for the eye only.
            v6_as_comments = true;
            out.write_all(b"# IPv6 rules (load with `ip6tables-restore`):\n")?;
            for l in iptviz::save::to_save_text(&i.parsed.ruleset).lines() {
                writeln!(out, "# {l}")?;
            }
        } else {
            out.write_all(iptviz::save::to_save_text(&i.parsed.ruleset).as_bytes())?;
        }
    }
    out.flush()?;
    if v6_as_comments {
        eprintln!(
            "iptviz save: the IPv6 rules were written as comments after the IPv4 rules; \
             use --output6 FILE to write them apart for ip6tables-restore"
        );
    }
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

/// `save --nft-out` and `--output6`: the native nft tables of every
/// input together to the nft file, the IPv6 iptables tables to the IPv6
/// file, and the rest to the output. Without an nft file the nft tables
/// follow the IPv4 rules as comments (as plain `save` writes them);
/// without an IPv6 file the IPv6 rules go to the output.
fn save_apart(inputs: &[Input], a: &SaveArgs) -> anyhow::Result<()> {
    let mut nft = iptviz::nft::NftRuleset::default();
    for i in inputs {
        nft.tables
            .extend(i.parsed.ruleset.nft.tables.iter().cloned());
    }
    let v6 = |i: &Input| a.output6.is_some() && i.parsed.ruleset.family == Family::Ipv6;
    // Each file is written whole or not at all: all are made before any is
    // put in place, so that a failure leaves none half updated.
    let mut files: Vec<Box<dyn Write>> = Vec::new();
    if let Some(nft_path) = &a.nft_out {
        if nft.is_empty() {
            eprintln!(
                "iptviz save: the input has no native nft tables; {} holds none",
                nft_path.display()
            );
        }
        let mut f = open_output(Some(nft_path))?;
        f.write_all(iptviz::save::to_nft_text(&nft).as_bytes())?;
        files.push(f);
    }
    let iptables_text = |i: &Input| {
        let rs = &i.parsed.ruleset;
        if a.nft_out.is_some() || rs.nft.is_empty() {
            iptviz::save::to_iptables_text(rs)
        } else {
            iptviz::save::to_save_text(rs)
        }
    };
    if let Some(v6_path) = &a.output6 {
        let held: Vec<&Input> = inputs
            .iter()
            .filter(|i| v6(i) && !i.parsed.ruleset.tables.is_empty())
            .collect();
        if held.is_empty() {
            eprintln!(
                "iptviz save: the input has no IPv6 rules; {} holds none",
                v6_path.display()
            );
        }
        let mut f = open_output(Some(v6_path))?;
        for i in held {
            f.write_all(iptables_text(i).as_bytes())?;
        }
        files.push(f);
    }
    let mut out = open_output(a.output.as_ref())?;
    for i in inputs.iter().filter(|i| !v6(i)) {
        let rs = &i.parsed.ruleset;
        if !rs.tables.is_empty() || (a.nft_out.is_none() && !rs.nft.is_empty()) {
            out.write_all(iptables_text(i).as_bytes())?;
        }
    }
    files.push(out);
    for mut f in files {
        f.flush()?;
    }
    Ok(())
}
