//! `iptviz fleet`: many nodes' dumps compared.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use iptviz::fleet::{FleetOptions, discover, fleet, svg, write_text};

use super::common::open_output;

/// `iptviz fleet`
#[derive(Debug, Args)]
#[command(
    after_help = "Each dump is one node, named by its file name without .rules/.txt/.save.
A conntrack table beside it (NODE.conntrack: /proc/net/nf_conntrack or
`conntrack -L` text) and NODE.conntrack_max (the value of
net.netfilter.nf_conntrack_max) add the node's conntrack fill.

Examples:
  iptviz fleet dumps/
  iptviz fleet dumps/ --ignore-endpoints --svg fleet.svg
  iptviz fleet node-a.rules node-b.rules node-c.rules
  iptviz fleet --json dumps/ | jq '.drift[] | {present_on, missing_on}'

Exit status: 0 every node has the same rules and no problems, 1 otherwise,
2 nothing could be read."
)]
pub struct FleetArgs {
    /// Directories of dumps (every file in them) or dump files, one per node.
    #[arg(value_name = "DIR|FILE", required = true)]
    paths: Vec<PathBuf>,
    /// Leave kube-proxy endpoint chains (KUBE-SEP-*) and the jumps into them
    /// out of the comparison: pods move between nodes all the time.
    #[arg(long)]
    ignore_endpoints: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Also draw the overview (nodes as a grid coloured by group) as SVG.
    #[arg(long, value_name = "OUT")]
    svg: Option<PathBuf>,
    /// List every drifting rule (text output shows the first 12 per set).
    #[arg(long)]
    all: bool,
    /// Nodes read at once (each whole dump is in memory while it is read).
    #[arg(
        long,
        short = 'j',
        value_name = "N",
        default_value_t = 0,
        hide_default_value = true
    )]
    jobs: usize,
    /// Write the report here instead of standard output.
    #[arg(long, short = 'o', value_name = "OUT")]
    output: Option<PathBuf>,
}

/// Runs `fleet`.
pub fn fleet_cmd(a: FleetArgs) -> anyhow::Result<ExitCode> {
    let nodes = match discover(&a.paths) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("iptviz: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let opts = FleetOptions {
        ignore_endpoints: a.ignore_endpoints,
        workers: a.jobs,
    };
    let report = fleet(&nodes, &opts);
    if report.nodes.iter().all(|n| n.unreadable.is_some()) {
        for n in &report.nodes {
            eprintln!("iptviz: {}", n.unreadable.as_deref().unwrap_or(""));
        }
        return Ok(ExitCode::from(2));
    }
    if let Some(p) = &a.svg {
        let mut out = open_output(Some(p))?;
        out.write_all(svg(&report).as_bytes())?;
        out.flush()?;
    }
    let mut out = open_output(a.output.as_ref())?;
    if a.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        write_text(&mut out, &report, a.all)?;
    }
    out.flush()?;
    Ok(if report.is_uniform() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
