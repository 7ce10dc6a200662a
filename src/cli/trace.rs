//! `iptviz trace`: where does this packet go?

use std::collections::HashMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use iptviz::trace::{
    CtState, Direction, Packet, RandomChoice, TraceOptions, Tracer, parse_icmp_type,
    parse_tcp_flags, protocol_number, render_text,
};
use iptviz::typed::parse_u32;

use super::common::{InputArgs, open_output};

/// `iptviz trace`
#[derive(Debug, Args)]
pub struct TraceArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Protocol: tcp, udp, icmp, or a number.
    #[arg(long, short = 'p', default_value = "tcp")]
    proto: String,
    /// Source address.
    #[arg(long, short = 's')]
    src: IpAddr,
    /// Destination address.
    #[arg(long, short = 'd')]
    dst: IpAddr,
    /// Source port.
    #[arg(long, default_value_t = 40000)]
    sport: u16,
    /// Destination port.
    #[arg(long, default_value_t = 0)]
    dport: u16,
    /// Interface the packet arrives on.
    #[arg(long = "in", short = 'i', value_name = "IFACE")]
    in_iface: Option<String>,
    /// Interface the packet leaves by.
    #[arg(long = "out", short = 'o', value_name = "IFACE")]
    out_iface: Option<String>,
    /// Conntrack state: NEW, ESTABLISHED, RELATED, INVALID, UNTRACKED.
    #[arg(long, default_value = "NEW")]
    state: String,
    /// Packet mark (decimal or 0x hex).
    #[arg(long)]
    mark: Option<String>,
    /// Connection mark.
    #[arg(long)]
    ctmark: Option<String>,
    /// ICMP type as `TYPE[/CODE]` or a name (echo-request ...).
    #[arg(long)]
    icmp_type: Option<String>,
    /// TCP flags set, e.g. `SYN` or `ACK,PSH` (default SYN).
    #[arg(long)]
    tcp_flags: Option<String>,
    /// Total IP length in bytes (for `-m length`).
    #[arg(long)]
    length: Option<u16>,
    /// This host's addresses, comma separated (decides INPUT vs FORWARD).
    #[arg(long, value_delimiter = ',', value_name = "ADDR,...")]
    local: Vec<IpAddr>,
    /// in, out or forward, when addresses do not tell.
    #[arg(long)]
    direction: Option<String>,
    /// ipset contents: NAME=CIDR,CIDR (repeat for several sets).
    #[arg(long, value_name = "NAME=CIDR,...")]
    ipset: Vec<String>,
    /// Let no `statistic --mode random` rule match (default: each one reached matches).
    #[arg(long)]
    skip_random: bool,
    /// Print the trace as JSON.
    #[arg(long)]
    json: bool,
    /// Leave out the rules that did not match.
    #[arg(long)]
    matched_only: bool,
    /// Write here instead of standard output.
    #[arg(long, value_name = "OUT")]
    output: Option<PathBuf>,
}

fn parse_ipsets(list: &[String]) -> anyhow::Result<HashMap<String, Vec<ipnet::IpNet>>> {
    let mut sets = HashMap::new();
    for spec in list {
        let Some((name, members)) = spec.split_once('=') else {
            bail!("--ipset wants NAME=CIDR,...: {spec:?}");
        };
        let nets: &mut Vec<ipnet::IpNet> = sets.entry(name.to_string()).or_default();
        for m in members.split(',').filter(|m| !m.is_empty()) {
            let net = match m.parse::<ipnet::IpNet>() {
                Ok(n) => n,
                Err(_) => m
                    .parse::<IpAddr>()
                    .map(ipnet::IpNet::from)
                    .with_context(|| format!("--ipset {name}: not an address: {m:?}"))?,
            };
            nets.push(net);
        }
    }
    Ok(sets)
}

fn mark(s: &Option<String>, what: &str) -> anyhow::Result<u32> {
    match s {
        None => Ok(0),
        Some(v) => parse_u32(v).with_context(|| format!("--{what}: not a number: {v:?}")),
    }
}

impl TraceArgs {
    fn packet(&self) -> anyhow::Result<Packet> {
        let proto = protocol_number(&self.proto)
            .with_context(|| format!("--proto: unknown protocol {:?}", self.proto))?;
        if self.src.is_ipv4() != self.dst.is_ipv4() {
            bail!("--src and --dst must be of the same address family");
        }
        let mut p = Packet::new(proto, self.src, self.dst);
        p.sport = self.sport;
        p.dport = self.dport;
        p.in_iface = self.in_iface.as_deref().map(Into::into);
        p.out_iface = self.out_iface.as_deref().map(Into::into);
        p.state = self.state.parse::<CtState>()?;
        p.mark = mark(&self.mark, "mark")?;
        p.ctmark = mark(&self.ctmark, "ctmark")?;
        if let Some(t) = &self.icmp_type {
            let (ty, code) =
                parse_icmp_type(t).with_context(|| format!("--icmp-type: unknown {t:?}"))?;
            p.icmp = (ty, code.unwrap_or(0));
        }
        if let Some(f) = &self.tcp_flags {
            p.tcp_flags =
                parse_tcp_flags(f).with_context(|| format!("--tcp-flags: unknown {f:?}"))?;
        }
        if let Some(l) = self.length {
            p.length = l;
        }
        Ok(p)
    }

    fn options(&self) -> anyhow::Result<TraceOptions> {
        Ok(TraceOptions {
            local: self.local.clone(),
            direction: self
                .direction
                .as_deref()
                .map(str::parse::<Direction>)
                .transpose()?,
            ipsets: parse_ipsets(&self.ipset)?,
            random: if self.skip_random {
                RandomChoice::Skip
            } else {
                RandomChoice::Take
            },
            overrides: HashMap::new(),
            matched_only: self.matched_only,
        })
    }
}

/// Runs `iptviz trace`.
pub fn trace(a: TraceArgs) -> anyhow::Result<ExitCode> {
    let pkt = a.packet()?;
    let opts = a.options()?;
    let inputs = match a.input.load(false) {
        Ok(i) => i,
        Err(e) => return Ok(e.report()),
    };
    let want_v6 = pkt.src.is_ipv6();
    let Some(input) = inputs
        .iter()
        .find(|i| (i.parsed.ruleset.family == iptviz::model::Family::Ipv6) == want_v6)
        .or(inputs.first())
    else {
        bail!("no rules were read");
    };
    for p in &input.parsed.problems {
        if p.severity == iptviz::Severity::Error {
            eprintln!("{}", p.render(&input.name));
        }
    }
    let rs = &input.parsed.ruleset;
    let t = Tracer::new(rs).trace(&pkt, &opts);
    let view = t.view(rs);
    let mut out = open_output(a.output.as_ref())?;
    if a.json {
        serde_json::to_writer_pretty(&mut out, &view)?;
        writeln!(out)?;
    } else {
        out.write_all(render_text(&view).as_bytes())?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
