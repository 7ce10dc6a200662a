//! Subcommands. Each lives in its own file under `cli/`.

mod check;
mod common;
mod conntrack;
mod lint;
mod reach;
mod render;
mod trace;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// See how packets move through a Linux firewall.
///
/// iptviz reads `iptables-save` / `ip6tables-save` output (also `iptables -S`),
/// checks it, and draws it. Give a FILE, `-` for standard input, or `--live`
/// to read this machine's rules (needs root).
#[derive(Debug, Parser)]
#[command(name = "iptviz", version, about, long_about)]
#[command(after_help = "Examples:
  iptviz check samples/docker-host.rules
  sudo iptables-save -c | iptviz check -
  iptviz save --json samples/ufw-server.rules | jq '.tables[].name'
  iptviz render samples/docker-host.rules -o docker.svg")]
pub struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Parse rules and print a summary and every problem found.
    ///
    /// Exit status: 0 clean, 1 problems found, 2 input could not be read.
    Check(check::CheckArgs),
    /// Print the rules again as canonical iptables-save text (or JSON).
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
        Cmd::Reach(a) => reach::reach(*a),
        Cmd::Lint(a) => lint::lint_cmd(a),
        Cmd::Spoof(a) => reach::spoof(*a),
    }
}
