//! Subcommands. Each lives in its own file under `cli/`.

mod check;
mod common;
mod completions;
mod conntrack;
mod diff;
mod fleet;
mod lint;
mod reach;
mod render;
mod trace;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// `0.1.0 (commit 0123456789ab)`: the package version and the commit built
/// (see build.rs; `unknown commit` when built from a tarball).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("IPTVIZ_GIT_COMMIT"),
    ")"
);

/// See how packets move through a Linux firewall.
///
/// iptviz reads `iptables-save` / `ip6tables-save` output (also `iptables -S`)
/// and nftables rulesets (`nft list ruleset`, `nft -j list ruleset`), checks
/// them, draws them and traces packets through them. Give a FILE, `-` for
/// standard input, or `--live` to read this machine's rules (needs root).
#[derive(Debug, Parser)]
#[command(name = "iptviz", version = VERSION, about, long_about)]
#[command(after_help = "Examples:
  iptviz check samples/docker-host.rules
  sudo iptables-save -c | iptviz check -
  iptviz save --json samples/ufw-server.rules | jq '.tables[].name'
  iptviz render samples/docker-host.rules -o docker.svg
  sudo nft -j list ruleset | iptviz check -")]
pub struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

// Built once per run: the size of the largest arguments does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Cmd {
    /// Parse rules, validate them as iptables-restore and the kernel would,
    /// and print a summary and every problem found.
    ///
    /// Every option of every match module and target iptables ships is
    /// checked (names, values, `!`, the -p it needs, options that exclude
    /// or need each other), and each target and match against the tables
    /// and hooks the kernel allows it in, also through user chains. Errors
    /// read FILE:LINE:COL: error: ..., with the line and a caret.
    /// Suspicious but legal things (a rule after an unconditional -j DROP,
    /// a chain nothing jumps to, -m state with -m conntrack) are listed as
    /// warnings.
    ///
    /// Exit status: 0 clean, 1 problems found (errors, or input warnings;
    /// suspicious-rule warnings only with --deny-warnings), 2 input could
    /// not be read.
    // The examples as their own lines (a doc comment's are rewrapped).
    #[command(after_help = "Examples:
  iptviz check rules.v4
  iptables-save | iptviz check -
  iptviz check --json rules.v4 | jq '.[0].problems'
  iptviz check --deny-warnings rules.v4   # CI: fail on warnings too")]
    Check(check::CheckArgs),
    /// Print the rules again as canonical iptables-save text (or JSON).
    ///
    /// nft input is printed as nft text. A mixed host (iptables tables and
    /// native nft tables: --live, or a file of iptables-save output followed
    /// by `nft list ruleset` output) needs two files to load again:
    /// --nft-out writes the native nft tables there as `nft -f` input and
    /// only the iptables tables to the output. Without it the nft tables
    /// follow the iptables text as comments. Likewise --live reads IPv4
    /// and IPv6 rules, which iptables-restore and ip6tables-restore load
    /// apart: --output6 writes the IPv6 rules to a file of their own.
    ///
    /// Exit status: 0 written, 1 the input has errors, 2 input could not
    /// be read or output not written.
    // The examples as their own lines (a doc comment's are rewrapped).
    #[command(after_help = "Examples:
  iptviz save rules.v4 -o canonical.v4
  sudo iptviz save --live -o host.v4 --output6 host.v6 --nft-out host.nft
  iptables-restore < host.v4 && ip6tables-restore < host.v6 && nft -f host.nft")]
    Save(check::SaveArgs),
    /// Show the conntrack table: summary, NAT entries and the rules that made
    /// them, and the health of the per-CPU counters.
    ///
    /// Reads /proc/net/nf_conntrack, `conntrack -L` (also -o extended),
    /// `conntrack -S` or /proc/net/stat/nf_conntrack text, detecting which.
    /// Exit status: 0 clean, 1 problems found, 2 input could not be read.
    Conntrack(conntrack::ConntrackArgs),
    /// Follow one packet through the rules, step by step, as the kernel would.
    Trace(Box<trace::TraceArgs>),
    /// Draw the chain graph (or the hook order with --flow) as SVG, DOT or JSON.
    Render(render::RenderArgs),
    /// Show what changed between two rulesets, chain by chain and rule by
    /// rule: added, removed, changed, moved, renamed chains, policies.
    ///
    /// Counters are ignored unless --counters. kube-proxy and CNI chains
    /// whose hash names changed are recognised by their rules and comments.
    /// Exit status: 0 the same, 1 different, 2 an input could not be read.
    Diff(diff::DiffArgs),
    /// Compare many nodes' dumps: groups of identical rules, drift (rules
    /// some nodes have and others lack, nodes named), outliers, per-node
    /// counts, problems and conntrack fill.
    Fleet(fleet::FleetArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(completions::CompletionsArgs),
    /// Write man pages: iptviz.1 and one per subcommand.
    Manpages(completions::ManpagesArgs),
    /// Who can reach whom on a TCP port: classes of equivalent addresses
    /// and the accepted pairs between them (the service matrix).
    Reach(Box<reach::ReachArgs>),
    /// Rules no packet can reach or that change nothing: shadowed, empty,
    /// redundant, unreachable chains.
    ///
    /// Exit status: 0 no findings, 1 findings, 2 input could not be read.
    Lint(lint::LintArgs),
    /// Which interfaces drop every packet with a source outside their
    /// assigned addresses (spoofing protection).
    ///
    /// Exit status: 0 all protected, 1 some not, 2 input could not be read.
    Spoof(Box<reach::SpoofArgs>),
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.cmd {
        Cmd::Check(a) => check::check(a),
        Cmd::Save(a) => check::save(a),
        Cmd::Conntrack(a) => conntrack::conntrack(a),
        Cmd::Trace(a) => trace::trace(*a),
        Cmd::Render(a) => render::render_cmd(a),
        Cmd::Diff(a) => diff::diff_cmd(a),
        Cmd::Fleet(a) => fleet::fleet_cmd(a),
        Cmd::Completions(a) => completions::completions(a),
        Cmd::Manpages(a) => completions::manpages(a),
        Cmd::Reach(a) => reach::reach(*a),
        Cmd::Lint(a) => lint::lint_cmd(a),
        Cmd::Spoof(a) => reach::spoof(*a),
    }
}
