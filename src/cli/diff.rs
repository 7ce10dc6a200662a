//! `iptviz diff`: what changed between two rulesets.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use iptviz::diff::semantic::{self, semantic_diff};
use iptviz::diff::{DiffOptions, diff, write_text};
use iptviz::input::{Loaded, Source, read_source};
use iptviz::model::Family;
use iptviz::parse::{ParseOptions, Parsed, parse_owned};

use super::common::open_output;

/// `iptviz diff`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  iptviz diff before.rules after.rules
  sudo iptables-save -c | iptviz diff yesterday.rules -
  sudo iptviz diff saved.rules --live            # saved file against this machine now
  iptviz diff --json old.rules new.rules | jq '.summary'
  iptviz diff --json old.rules new.rules | jq '.semantic.paths[].boxes[].example_text'
  iptviz diff --no-semantic huge-old.rules huge-new.rules   # the rule diff alone

After the rule diff comes the semantic diff: for each table's built-in
chain, the boxes of packets whose verdict or NAT rewrite differs, each with
an example packet and the deciding rule on both sides, or `semantic: no
packet changes fate` when the change is a pure refactoring (rules
reordered where they do not overlap, chains renamed, counters). Tests it
cannot see through (marks, limits, random choices, addrtype, ipsets) are
yes/no answers named by their text; a box that depends on one says so.

Exit status: 0 the same, 1 different, 2 an input could not be read.")]
pub struct DiffArgs {
    /// The old rules (iptables-save or iptables -S text); `-` reads stdin.
    #[arg(value_name = "OLD")]
    old: String,
    /// The new rules; `-` reads stdin. Leave out with --live.
    #[arg(value_name = "NEW", required_unless_present = "live")]
    new: Option<String>,
    /// Compare OLD with this machine's rules (`iptables-save -c`, needs root).
    #[arg(long, conflicts_with = "new")]
    live: bool,
    /// Also report rules and policies whose [packets:bytes] counters changed.
    #[arg(long)]
    counters: bool,
    /// Print the differences as JSON.
    #[arg(long)]
    json: bool,
    /// Say which packets change fate (the default; kept for scripts that
    /// ask for it).
    #[arg(long, conflicts_with = "no_semantic")]
    semantic: bool,
    /// Skip the semantic diff: only the rule diff.
    #[arg(long)]
    no_semantic: bool,
    /// Table for `iptables -S` lines that no `*table` line assigns.
    #[arg(long, short = 't', value_name = "TABLE")]
    table: Option<String>,
    /// Treat both inputs as IPv6 (ip6tables).
    #[arg(long, short = '6')]
    ipv6: bool,
    /// Write here instead of standard output.
    #[arg(long, short = 'o', value_name = "OUT")]
    output: Option<PathBuf>,
}

/// Reads and parses one side; prints why and gives exit code 2 when it
/// cannot be read or has errors.
fn load(a: &DiffArgs, l: Loaded) -> Result<(String, Parsed), ExitCode> {
    let opts = ParseOptions {
        source_name: l.name.clone(),
        table: a.table.clone(),
        family: (a.ipv6 || l.name.contains("ip6tables")).then_some(Family::Ipv6),
        ..Default::default()
    };
    let parsed = match parse_owned(l.bytes, &opts) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("iptviz: {e}");
            return Err(ExitCode::from(2));
        }
    };
    if parsed.error_count() > 0 {
        super::common::report_problems(&parsed.problems, &l.name, true);
        eprintln!(
            "iptviz: {} has {} error(s); not comparing a partly read ruleset",
            l.name,
            parsed.error_count()
        );
        return Err(ExitCode::from(2));
    }
    Ok((l.name, parsed))
}

fn read_one(arg: &str) -> Result<Loaded, ExitCode> {
    match read_source(&Source::from_arg(arg)) {
        Ok(mut v) if !v.is_empty() => Ok(v.remove(0)),
        Ok(_) => Err(ExitCode::from(2)),
        Err(e) => {
            eprintln!("iptviz: {e}");
            Err(ExitCode::from(2))
        }
    }
}

/// Runs `diff`.
pub fn diff_cmd(a: DiffArgs) -> anyhow::Result<ExitCode> {
    if a.old == "-" && a.new.as_deref() == Some("-") {
        eprintln!("iptviz: only one side can be standard input (`-`)");
        return Ok(ExitCode::from(2));
    }
    let old = match read_one(&a.old).and_then(|l| load(&a, l)) {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    let new_loaded = if a.live {
        match read_source(&Source::Live) {
            Ok(v) => {
                // The live side of the same address family as OLD.
                let want_v6 = old.1.ruleset.family == Family::Ipv6;
                match v
                    .into_iter()
                    .find(|l| l.name.contains("ip6tables") == want_v6)
                {
                    Some(l) => l,
                    None => {
                        eprintln!(
                            "iptviz: this machine has no {} rules to compare with",
                            if want_v6 { "IPv6" } else { "IPv4" }
                        );
                        return Ok(ExitCode::from(2));
                    }
                }
            }
            Err(e) => {
                eprintln!("iptviz: {e}");
                return Ok(ExitCode::from(2));
            }
        }
    } else {
        match read_one(a.new.as_deref().unwrap_or("-")) {
            Ok(l) => l,
            Err(code) => return Ok(code),
        }
    };
    let new = match load(&a, new_loaded) {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    let opts = DiffOptions {
        counters: a.counters,
    };
    let mut d = diff(&old.1.ruleset, &new.1.ruleset, &old.0, &new.0, &opts);
    if !a.no_semantic || a.semantic {
        match semantic_diff(&old.1.ruleset, &new.1.ruleset) {
            Ok(s) => d.semantic = Some(s),
            Err(e) => eprintln!("iptviz: semantic diff: {e}"),
        }
    }
    let mut out = open_output(a.output.as_ref())?;
    if a.json {
        serde_json::to_writer_pretty(&mut out, &d)?;
        writeln!(out)?;
    } else {
        write_text(&mut out, &d)?;
        if let Some(s) = &d.semantic {
            semantic::write_text(&mut out, s)?;
        }
    }
    out.flush()?;
    Ok(if d.is_same() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
