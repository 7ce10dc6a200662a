//! `iptviz render`: chain graphs and the hook-order view as SVG, DOT or JSON.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use iptviz::diagram::{CollapseRule, ViewOptions, default_collapse, view};
use iptviz::graph::ChainGraph;
use iptviz::layout::Choice;
use iptviz::render::{Format, render_to};
use regex::Regex;

use super::common::{InputArgs, open_output, output_file};

/// Output format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// Self-contained SVG (no graphviz needed).
    Svg,
    /// Graphviz DOT, for `dot -Tsvg` and friends.
    Dot,
    /// The laid-out graph as JSON.
    Json,
}

/// When to draw return edges.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReturnsArg {
    /// Only in small views.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// How target nodes are drawn.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TargetsArg {
    /// Per chain in big views, shared in small ones.
    Auto,
    /// One node per target and table.
    Shared,
    /// One node per target and calling chain.
    PerChain,
}

/// Layout engine.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LayoutArg {
    /// The layered layout (it keeps edges clear of other boxes).
    Auto,
    /// The fast layered layout (any size).
    Layered,
    /// layout-rs (slow beyond a few hundred nodes).
    LayoutRs,
}

/// `iptviz render`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  iptviz render rules.txt -o rules.svg
  iptviz render rules.txt --flow -o flow.svg          # hook order of the tables present
  iptviz render -t nat --from KUBE-SERVICES --depth 2 node.rules -o svc.svg
  iptviz render --chain '^DOCKER' --rules docker.rules -o docker.svg
  iptviz render --collapse 'f2b-*' --collapse 'KUBE-SEP-*' rules.txt -o out.svg
  sudo iptables-save -c | iptviz render - --counters -o live.svg
  iptviz render -f dot rules.txt | dot -Tpng -o rules.png
  iptviz render --diff before.rules after.rules --rules -o change.svg

With -t/--table only that table is drawn (for `iptables -S` input it also
names the table the lines belong to). By default kube-proxy endpoint chains
(KUBE-SEP-*) are folded behind their service, many KUBE-SVC-*/KUBE-EXT-*
chains into one box, and Calico per-interface/profile chains (cali-fw-*,
cali-tw-*, cali-pri-*, ...) into one box each; --collapse none draws every
chain.")]
pub struct RenderArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Draw FILE (the new rules) compared with OLD: added chains and rules
    /// green, changed ones orange, removed ones as red ghosts (with --rules,
    /// removed rules are struck-out rows where they were).
    #[arg(long, value_name = "OLD", conflicts_with = "flow")]
    diff: Option<String>,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value = "svg")]
    format: FormatArg,
    /// Write here instead of standard output.
    #[arg(long, short = 'o', value_name = "OUT")]
    output: Option<PathBuf>,
    /// Only chains whose name matches this regex (and what they lead to).
    #[arg(long, value_name = "REGEX")]
    chain: Option<String>,
    /// Only what is reachable from this chain (in any table, or in --table).
    #[arg(long, value_name = "CHAIN")]
    from: Option<String>,
    /// With --from: at most N jumps away (without --from: from the built-ins).
    #[arg(long, value_name = "N")]
    depth: Option<usize>,
    /// Drop chains that no built-in chain can reach.
    #[arg(long)]
    prune: bool,
    /// Fold chains matching this glob into one box (repeatable; `none` turns off the defaults).
    #[arg(long, value_name = "PATTERN")]
    collapse: Vec<String>,
    /// Draw each chain as a table of its rules, edges leaving from the rule.
    #[arg(long)]
    rules: bool,
    /// Show packet counters and draw busy edges wider (needs `iptables-save -c`).
    #[arg(long)]
    counters: bool,
    /// Dotted return edges of user chains back to their callers: `auto` draws them in views of up to 30 chains.
    #[arg(long, value_enum, default_value = "auto")]
    returns: ReturnsArg,
    /// Draw the netfilter hook order (PREROUTING ... POSTROUTING) instead of the chain graph.
    #[arg(long)]
    flow: bool,
    /// Target nodes (ACCEPT, DROP, ...): one per table (`shared`), one per calling chain (`per-chain`), or `auto` (per chain in views of over 30 chains).
    #[arg(long, value_enum, default_value = "auto")]
    targets: TargetsArg,
    /// A small chain called from three or more chains (KUBE-MARK-MASQ, a logging chain): drawn in full once and as a small dashed box marked `copy` beside each other caller, so that its calls stay short: `auto` (the default) in views of up to 300 chains, `always` in any view (at most 400 copies), or `never` (one box with every call drawn to it).
    #[arg(long, value_enum, default_value = "auto")]
    copies: ReturnsArg,
    /// Layout engine of the chain graph (--flow always draws the hook picture).
    #[arg(long, value_enum, default_value = "auto")]
    layout: LayoutArg,
}

impl LayoutArg {
    /// The library's layout choice.
    pub fn choice(self) -> Choice {
        match self {
            LayoutArg::Auto => Choice::Auto,
            LayoutArg::Layered => Choice::Layered,
            LayoutArg::LayoutRs => Choice::LayoutRs,
        }
    }
}

/// The groups to fold for `--collapse` values: the defaults unless `none`
/// is among them, plus every other pattern given.
pub fn collapse_rules(args: &[String]) -> anyhow::Result<Vec<CollapseRule>> {
    let mut collapse = Vec::new();
    if !args.iter().any(|c| c == "none") {
        collapse = default_collapse();
    }
    for c in args.iter().filter(|c| *c != "none") {
        collapse.push(CollapseRule::glob(c)?);
    }
    Ok(collapse)
}

/// `out.svg` -> `out.ipv6.svg` (or `out.2.svg`) for the n-th input.
fn sibling(first: &std::path::Path, n: usize, rs: &iptviz::model::Ruleset) -> PathBuf {
    let tag = if rs.family == iptviz::model::Family::Ipv6 {
        "ipv6".to_string()
    } else {
        (n + 1).to_string()
    };
    let stem = first
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match first.extension() {
        Some(ext) => format!("{stem}.{tag}.{}", ext.to_string_lossy()),
        None => format!("{stem}.{tag}"),
    };
    first.with_file_name(name)
}

/// Runs `render`.
pub fn render_cmd(a: RenderArgs) -> anyhow::Result<ExitCode> {
    let mut inputs = match a.input.load(false) {
        Ok(i) => i,
        Err(e) => return Ok(e.report()),
    };
    // nft tables are drawn through their drawing tables.
    for i in &mut inputs {
        let rs = std::mem::take(&mut i.parsed.ruleset);
        i.parsed.ruleset = iptviz::nft::project::with_drawn_tables(rs);
    }
    let mut code = ExitCode::SUCCESS;
    let collapse = collapse_rules(&a.collapse)?;
    let chain = a
        .chain
        .as_deref()
        .map(Regex::new)
        .transpose()
        .context("bad --chain regex")?;
    let format = match a.format {
        FormatArg::Svg => Format::Svg,
        FormatArg::Dot => Format::Dot,
        FormatArg::Json => Format::Json,
    };
    let choice = a.layout.choice();
    let old = match &a.diff {
        None => None,
        Some(path) => {
            let loaded = iptviz::input::read_source(&iptviz::input::Source::from_arg(path))
                .with_context(|| format!("cannot read --diff {path}"))?;
            let Some(l) = loaded.into_iter().next() else {
                return Ok(ExitCode::from(2));
            };
            let opts = iptviz::parse::ParseOptions {
                table: a.input.table.clone(),
                ..iptviz::parse::ParseOptions::lenient(&l.name)
            };
            match iptviz::parse::parse_owned(l.bytes, &opts) {
                Ok(p) => {
                    super::common::report_problems(&p.problems, &l.name, false);
                    Some((l.name, p.ruleset))
                }
                Err(e) => {
                    eprintln!("iptviz: {e}");
                    return Ok(ExitCode::from(2));
                }
            }
        }
    };
    // `--live` reads IPv4 and IPv6: one drawing each. DOT streams may hold
    // several graphs; SVG and JSON documents may not, so the second goes to
    // its own file.
    let to_file = output_file(a.output.as_ref());
    let mut out = open_output(a.output.as_ref())?;
    for (n, i) in inputs.iter().enumerate() {
        if n > 0 && !matches!(a.format, FormatArg::Dot) {
            let Some(first) = to_file else {
                eprintln!(
                    "iptviz: {} not drawn: one {} document per output; use -o FILE to get one file per input",
                    i.name,
                    if matches!(a.format, FormatArg::Svg) {
                        "SVG"
                    } else {
                        "JSON"
                    }
                );
                continue;
            };
            let path = sibling(first, n, &i.parsed.ruleset);
            out.flush()?;
            out = open_output(Some(&path))?;
            eprintln!("iptviz: {} drawn to {}", i.name, path.display());
        }
        super::common::report_problems(&i.parsed.problems, &i.name, false);
        if i.parsed.error_count() > 0 {
            code = ExitCode::from(1);
        }
        let compared = old.as_ref().map(|(name, o)| {
            let d = iptviz::diff::diff(
                o,
                &i.parsed.ruleset,
                name,
                &i.name,
                &iptviz::diff::DiffOptions::default(),
            );
            let merged = iptviz::diagram::with_ghosts(o, &i.parsed.ruleset, &d);
            (d, merged)
        });
        let rs = compared.as_ref().map_or(&i.parsed.ruleset, |c| &c.1);
        let title = if a.flow {
            format!("{}: packet flow (netfilter hook order)", i.name)
        } else {
            format!(
                "{}: {} chains, {} rules",
                i.name,
                i.parsed.ruleset.chain_count(),
                i.parsed.ruleset.rule_count()
            )
        };
        let v = if a.flow {
            iptviz::diagram::flow_view(rs, a.counters, &title)
        } else {
            let g = ChainGraph::build(rs);
            let opts = ViewOptions {
                tables: a.input.table.iter().cloned().collect(),
                chain: chain.clone(),
                from: a.from.clone(),
                roots: Vec::new(),
                depth: a.depth,
                prune: a.prune,
                collapse: collapse.clone(),
                expanded: Vec::new(),
                rules: a.rules,
                counters: a.counters,
                returns: match a.returns {
                    ReturnsArg::Auto => None,
                    ReturnsArg::Always => Some(true),
                    ReturnsArg::Never => Some(false),
                },
                split_targets: match a.targets {
                    TargetsArg::Auto => None,
                    TargetsArg::Shared => Some(false),
                    TargetsArg::PerChain => Some(true),
                },
                copies: match a.copies {
                    ReturnsArg::Auto => None,
                    ReturnsArg::Always => Some(true),
                    ReturnsArg::Never => Some(false),
                },
                title,
            };
            let mut v = view(rs, &g, &opts)?;
            if let Some((d, _)) = &compared {
                iptviz::diagram::mark_view(&mut v, d, &i.parsed.ruleset);
            }
            v
        };
        render_to(&v, format, choice, &mut out)?;
    }
    out.flush()?;
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_input_gets_a_sibling_file() {
        let mut rs = iptviz::model::Ruleset::default();
        assert_eq!(
            sibling(std::path::Path::new("/tmp/x/out.svg"), 1, &rs),
            PathBuf::from("/tmp/x/out.2.svg")
        );
        rs.family = iptviz::model::Family::Ipv6;
        assert_eq!(
            sibling(std::path::Path::new("out"), 1, &rs),
            PathBuf::from("out.ipv6")
        );
    }
}
