//! `iptviz reach`: the service matrix (who can reach whom on a port), and
//! `iptviz spoof`: which interfaces drop packets with forged sources.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use iptviz::analysis::Closure;
use iptviz::analysis::ifaces::IfaceMap;
use iptviz::analysis::reach::{Matrix, ReachOptions, service_matrix};

use super::common::{Input, InputArgs, open_output};

/// Output format of `reach`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ReachFormat {
    /// Classes and accepted pairs as text.
    Text,
    /// The matrices as JSON.
    Json,
    /// One node per class, an edge per accepted pair (self-contained SVG).
    Svg,
    /// The same graph as Graphviz DOT.
    Dot,
}

/// `iptviz reach`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  iptviz reach fw.rules --dport 22                     # who may open ssh through FORWARD
  iptviz reach fw.rules --dport 22 --dport 80 --ipassmt ifaces.txt
  iptviz reach host.rules --chain INPUT --dport 443 --json
  iptviz reach -6 fw6.rules --dport 22 --lower         # only what is surely accepted
  iptviz reach fw.rules --dport 22 -f svg -o ssh.svg

The packets are TCP SYNs opening a new connection (state NEW) from --sport
to each --dport, between every pair of addresses. Addresses that every rule
treats alike form a class; the largest class is printed as \"everything
else\". Tests that do not depend on addresses, ports, protocol or state
(marks, rate limits, ipsets, -i/-o without --ipassmt/--routes ...) are
taken as true in accepting rules and false in dropping ones (--lower: the
other way round), so by default the accepted pairs are those that MAY be
accepted.

--ipassmt reads fffuu's interface file: one `NAME = [ranges]` per
interface, `NAME = all_but_those_ips [ranges]`, `#` comments:
  eth0 = [10.0.0.0/8, 192.168.0.0-192.168.255.255]
  eth1 = all_but_those_ips [10.0.0.0/8, 192.168.0.0/16]
a packet then arrives on the interface that holds its source. --routes
reads `ip route show` output: it leaves by the interface of the longest
matching route.

Exit status: 0 done, 1 the input has problems, 2 unreadable.")]
pub struct ReachArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Destination port (repeat for several matrices).
    #[arg(long, required = true, value_name = "PORT")]
    dport: Vec<u16>,
    /// Source port of the packets.
    #[arg(long, default_value_t = 10000, value_name = "PORT")]
    sport: u16,
    /// Chain to start from (FORWARD for a router, INPUT for a host).
    #[arg(long, short = 'c', default_value = "FORWARD")]
    chain: String,
    /// Interface assignment file (fffuu's format): `-i` by source address.
    #[arg(long, value_name = "FILE")]
    ipassmt: Option<PathBuf>,
    /// `ip route show` output: `-o` by destination address.
    #[arg(long, value_name = "FILE")]
    routes: Option<PathBuf>,
    /// Lower closure: only what is surely accepted.
    #[arg(long)]
    lower: bool,
    /// JSON output (same as -f json).
    #[arg(long)]
    json: bool,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value = "text")]
    format: ReachFormat,
    /// Write here instead of standard output.
    #[arg(long, short = 'o', value_name = "OUT")]
    output: Option<PathBuf>,
}

/// Reads an interface file or route list; errors as FILE:LINE:COL.
pub fn read_map(path: &PathBuf, routes: bool, v6: bool) -> anyhow::Result<IfaceMap> {
    let name = path.display().to_string();
    let text = if name == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read standard input")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {name}"))?
    };
    let m = if routes {
        IfaceMap::parse_routes(&name, &text, v6)
    } else {
        IfaceMap::parse_ipassmt(&name, &text, v6)
    };
    m.map_err(|e| anyhow::anyhow!("{e}"))
}

/// The input of the wanted family (`--live` gives both).
pub fn pick(inputs: Vec<Input>, v6: bool) -> Option<Input> {
    let want = |i: &Input| (i.parsed.ruleset.family == iptviz::model::Family::Ipv6) == v6;
    let n = inputs.len();
    let mut it = inputs.into_iter();
    if n == 1 {
        return it.next();
    }
    it.find(want)
}

/// Runs `reach`.
pub fn reach(a: ReachArgs) -> anyhow::Result<ExitCode> {
    let inputs = match a.input.load(false) {
        Ok(i) => i,
        Err(e) => return Ok(e.report()),
    };
    let Some(input) = pick(inputs, a.input.ipv6) else {
        anyhow::bail!("no rules of the wanted family were read");
    };
    let mut code = ExitCode::SUCCESS;
    super::common::report_problems(&input.parsed.problems, &input.name, false);
    if input.parsed.error_count() > 0 {
        code = ExitCode::from(1);
    }
    input.note_nft_not_analysed("reach");
    let rs = &input.parsed.ruleset;
    let v6 = a.input.ipv6 || rs.family == iptviz::model::Family::Ipv6;
    let ipassmt = a
        .ipassmt
        .as_ref()
        .map(|p| read_map(p, false, v6))
        .transpose()?;
    let routes = a
        .routes
        .as_ref()
        .map(|p| read_map(p, true, v6))
        .transpose()?;
    let mut matrices = Vec::new();
    for &dport in &a.dport {
        let o = ReachOptions {
            table: a.input.table.clone().unwrap_or_else(|| "filter".into()),
            chain: a.chain.clone(),
            sport: a.sport,
            dport,
            v6,
            closure: if a.lower {
                Closure::Lower
            } else {
                Closure::Upper
            },
            ipassmt: ipassmt.clone(),
            routes: routes.clone(),
        };
        matrices.push(service_matrix(rs, &o)?);
    }
    let format = if a.json { ReachFormat::Json } else { a.format };
    let mut out = open_output(a.output.as_ref())?;
    match format {
        ReachFormat::Text => {
            for (i, m) in matrices.iter().enumerate() {
                if i > 0 {
                    writeln!(out)?;
                }
                out.write_all(text(m, &input.name).as_bytes())?;
            }
        }
        ReachFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &matrices)?;
            writeln!(out)?;
        }
        ReachFormat::Svg | ReachFormat::Dot => {
            let fmt = if format == ReachFormat::Svg {
                iptviz::render::Format::Svg
            } else {
                iptviz::render::Format::Dot
            };
            if matrices.len() > 1 && fmt == iptviz::render::Format::Svg {
                eprintln!(
                    "iptviz: one SVG per output: drawing --dport {} only",
                    matrices[0].dport
                );
            }
            let n = if fmt == iptviz::render::Format::Svg {
                1
            } else {
                matrices.len()
            };
            for m in &matrices[..n] {
                let v = iptviz::analysis::reach::matrix_view(m, &input.name);
                let s = iptviz::render::render(&v, fmt, iptviz::layout::Choice::Auto)?;
                out.write_all(s.as_bytes())?;
            }
        }
    }
    out.flush()?;
    Ok(code)
}

/// Ranges listed per class before "(+N more)".
const SHOWN: usize = 6;

/// The matrix as text.
pub fn text(m: &Matrix, name: &str) -> String {
    let mut s = String::new();
    let closure = match m.closure {
        Closure::Upper => "upper closure: what may be accepted",
        Closure::Lower => "lower closure: what is surely accepted",
    };
    s.push_str(&format!(
        "{name}: {} {}, tcp {} -> {}, state NEW, {} ({closure})\n",
        m.table,
        m.chain,
        m.sport,
        m.dport,
        if m.ipv6 { "IPv6" } else { "IPv4" }
    ));
    s.push_str(&format!(
        "{} classes, {} accepted pairs\n\nclasses (largest first)\n",
        m.classes.len(),
        m.edges.len()
    ));
    for (i, c) in m.classes.iter().enumerate() {
        let mut r: Vec<String> = c.ranges.iter().take(SHOWN).cloned().collect();
        if c.ranges.len() > SHOWN {
            r.push(format!("(+{} more)", c.ranges.len() - SHOWN));
        }
        let head = if c.everything_else {
            "everything else: ".to_string()
        } else {
            String::new()
        };
        s.push_str(&format!("  c{i:<3} {head}{}\n", r.join(", ")));
    }
    s.push_str("\naccepted (from -> to)\n");
    if m.edges.is_empty() {
        s.push_str("  none\n");
    }
    let mut i = 0;
    while i < m.edges.len() {
        let from = m.edges[i].0;
        let mut to = Vec::new();
        while i < m.edges.len() && m.edges[i].0 == from {
            to.push(format!("c{}", m.edges[i].1));
            i += 1;
        }
        let all = to.len() == m.classes.len() && m.classes.len() > 1;
        s.push_str(&format!(
            "  c{from} -> {}\n",
            if all {
                "every class".to_string()
            } else {
                to.join(", ")
            }
        ));
    }
    if !m.notes.is_empty() {
        s.push_str("\nnotes\n");
        for n in &m.notes {
            s.push_str(&format!("  - {n}\n"));
        }
    }
    s
}

/// `iptviz spoof`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  iptviz spoof fw.rules --ipassmt ifaces.txt
  iptviz spoof host.rules --ipassmt ifaces.txt --chain INPUT --json

An interface is protected when every packet arriving on it with a source
outside its assigned addresses is dropped, whatever its protocol, ports
and state. Tests that cannot be decided (marks, rate limits, ipsets ...)
are taken as accepting, never as dropping, so an interface is never called
protected when it may not be. For one that is not, an example spoofed
packet and the rule that accepts it are printed.

The interface file is fffuu's format (see `iptviz reach --help`).
Exit status: 0 every interface protected, 1 some not (or unknown), 2 unreadable.")]
pub struct SpoofArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Interface assignment file (fffuu's format).
    #[arg(long, required = true, value_name = "FILE")]
    ipassmt: PathBuf,
    /// Chain to check (FORWARD, or INPUT for a host).
    #[arg(long, short = 'c', default_value = "FORWARD")]
    chain: String,
    /// JSON output.
    #[arg(long)]
    json: bool,
}

/// Runs `spoof`.
pub fn spoof(a: SpoofArgs) -> anyhow::Result<ExitCode> {
    let inputs = match a.input.load(false) {
        Ok(i) => i,
        Err(e) => return Ok(e.report()),
    };
    let Some(input) = pick(inputs, a.input.ipv6) else {
        anyhow::bail!("no rules of the wanted family were read");
    };
    super::common::report_problems(&input.parsed.problems, &input.name, false);
    input.note_nft_not_analysed("spoof");
    let rs = &input.parsed.ruleset;
    let v6 = a.input.ipv6 || rs.family == iptviz::model::Family::Ipv6;
    let map = read_map(&a.ipassmt, false, v6)?;
    let table = a.input.table.clone().unwrap_or_else(|| "filter".into());
    let res = iptviz::analysis::spoof::spoofing(rs, &table, &a.chain, &map)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if a.json {
        serde_json::to_writer_pretty(&mut out, &res)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "{}: spoofing protection in {table} {}",
            input.name, a.chain
        )?;
        for r in &res {
            write!(out, "  {:<16} {}", r.iface, r.status)?;
            if let Some(e) = &r.example {
                write!(out, ": {e}")?;
                match (r.accepted_by, r.by_policy) {
                    (Some(l), _) => write!(out, ", accepted by line {l}")?,
                    (None, true) => write!(out, ", accepted by the chain's policy")?,
                    _ => {}
                }
            }
            if r.status == "unknown" {
                write!(out, " (the packet sets grew too large to decide)")?;
            }
            writeln!(out)?;
        }
    }
    out.flush()?;
    let all = res.iter().all(|r| r.status == "protected");
    Ok(if all && input.parsed.error_count() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
