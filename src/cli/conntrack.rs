//! `iptviz conntrack`: the connection table, its NAT entries linked to the
//! rules, and the health of the counters.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;
use iptviz::conntrack::filter::{parse_net, parse_proto, parse_state};
use iptviz::conntrack::history::{self, Record, Tick};
use iptviz::conntrack::live::{self, Owners};
use iptviz::conntrack::nat::{InsertRace, NatRules, insert_race};
use iptviz::conntrack::pressure::{Pressure, PressureLevel, PressureOptions};
use iptviz::conntrack::stats::HealthItem;
use iptviz::conntrack::{
    self, ConnTable, Entry, Fill, Filter, Level, NatLink, Parsed, Stats, Summary,
};
use iptviz::input::{Source, read_source};
use iptviz::parse::{ParseOptions, parse_bytes as parse_rules};
use serde::Serialize;

use super::common::open_output;

/// `iptviz conntrack`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  iptviz conntrack /proc/net/nf_conntrack
  sudo conntrack -L | iptviz conntrack - --nat --rules rules.txt
  iptviz conntrack ct.txt --rules <(sudo iptables-save) --proto udp --port 53 --list
  iptviz conntrack --stats stat-before.txt --stats stat-after.txt --interval 60
  sudo iptviz conntrack --live --top 5
  sudo iptviz conntrack --live --live-rules --nat --list
  sudo iptviz conntrack --live --watch 5
  iptviz conntrack ct.txt --rules rules.txt --limit-per-dest 1024   # NAT port pressure against a budget
  iptviz conntrack ct.txt --max 262144 --buckets 65536              # fill of a saved table
  sudo iptviz conntrack --live --live-rules --watch 1 --record ct.jsonl
  iptviz conntrack --replay ct.jsonl

NAT port pressure: per translated source address and destination (address,
port, protocol), the source ports in use against the range the SNAT or
MASQUERADE rule allows (--to-ports, --to-source A:P-Q) or, without rules or
ports, the kernel's default: the original port is kept when free, else one is
chosen in 1024-65535 (1-511 or 600-1023 for clients on privileged ports).
Tuples above 50% and 80% are marked.")]
pub struct ConntrackArgs {
    /// /proc/net/nf_conntrack, `conntrack -L` or `conntrack -S` text
    /// (the format is detected); `-` reads stdin.
    #[arg(value_name = "FILE")]
    file: Option<String>,
    /// Read this machine's table, counters and fill level (needs root).
    #[arg(long, conflicts_with = "file")]
    live: bool,
    /// Statistics file (`conntrack -S` or /proc/net/stat/nf_conntrack); twice for rates.
    #[arg(long, value_name = "FILE", action = clap::ArgAction::Append)]
    stats: Vec<PathBuf>,
    /// Seconds between the two --stats snapshots (default: difference of their modification times).
    #[arg(long, value_name = "SECS")]
    interval: Option<f64>,
    /// Live: print the fill, its growth, counter rates and the most pressed
    /// NAT tuple every SECS seconds.
    #[arg(long, value_name = "SECS")]
    watch: Option<f64>,
    /// With --watch: append each reading to FILE as a JSON line (fill,
    /// per-CPU counters, top NAT tuples), for --replay.
    #[arg(long, value_name = "FILE", requires = "watch")]
    record: Option<PathBuf>,
    /// Print the figures of a --record FILE again, as --watch printed them
    /// (`-` reads stdin).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["file", "live", "stats", "watch"])]
    replay: Option<String>,
    /// Ports a NAT gateway allows per destination (a cloud NAT's "ports per
    /// VM"): NAT port pressure is also shown against this budget.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    limit_per_dest: Option<u64>,
    /// nf_conntrack_max of the machine a saved table comes from: shows the
    /// table fill offline.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max: Option<u64>,
    /// nf_conntrack_buckets of that machine: entries per hash bucket offline.
    #[arg(long, value_name = "N", requires = "max", value_parser = clap::value_parser!(u64).range(1..))]
    buckets: Option<u64>,
    /// With --watch: stop after N rounds.
    #[arg(long, value_name = "N", requires = "watch")]
    count: Option<u64>,
    /// iptables-save text whose nat rules explain the NAT entries; `-`
    /// reads stdin (when FILE is not `-`).
    #[arg(long, value_name = "RULES", conflicts_with = "live_rules")]
    rules: Option<String>,
    /// Explain the NAT entries with this machine's rules (runs
    /// `iptables-save -c` and `ip6tables-save -c`, read-only; needs root).
    #[arg(long)]
    live_rules: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Only entries whose original source is in this address or network.
    #[arg(long, value_name = "NET")]
    src: Option<String>,
    /// Only entries whose original destination is in this address or network.
    #[arg(long, value_name = "NET")]
    dst: Option<String>,
    /// Only entries with any address (either direction) in this network.
    #[arg(long, value_name = "NET")]
    addr: Option<String>,
    /// Only entries with this port on either side.
    #[arg(long, value_name = "PORT")]
    port: Option<u16>,
    /// Only this protocol (tcp, udp, icmp, 47 ...).
    #[arg(long, value_name = "PROTO")]
    proto: Option<String>,
    /// Only entries in this state (ESTABLISHED, TIME_WAIT ...).
    #[arg(long, value_name = "STATE")]
    state: Option<String>,
    /// Only entries that show NAT.
    #[arg(long)]
    nat: bool,
    /// Only entries without a reply ([UNREPLIED]).
    #[arg(long)]
    unreplied: bool,
    /// Length of the top lists, the NAT list and the NAT tuples.
    #[arg(long, value_name = "N", default_value_t = 10)]
    top: usize,
    /// Also list the selected entries, one per line.
    #[arg(long)]
    list: bool,
    /// Live: name the local process owning each listed connection.
    #[arg(long)]
    processes: bool,
    /// Write here instead of standard output.
    #[arg(long, short = 'o', value_name = "OUT")]
    output: Option<PathBuf>,
}

impl ConntrackArgs {
    fn filter(&self) -> anyhow::Result<Filter> {
        Ok(Filter {
            src: self.src.as_deref().map(parse_net).transpose()?,
            dst: self.dst.as_deref().map(parse_net).transpose()?,
            addr: self.addr.as_deref().map(parse_net).transpose()?,
            port: self.port,
            proto: self.proto.as_deref().map(parse_proto).transpose()?,
            state: self.state.as_deref().map(parse_state).transpose()?,
            nat_only: self.nat,
            unreplied_only: self.unreplied,
        })
    }
}

/// Everything one run found, for text or JSON.
#[derive(Serialize)]
struct Report<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trailer_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<Summary>,
    nat_total: usize,
    nat: Vec<NatLink>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pressure: Option<Pressure>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    entries: Vec<ListedEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    health: Vec<HealthItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    interval_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    insert_race: Option<InsertRace>,
    #[serde(skip)]
    have_rules: bool,
    problems: Vec<SourcedProblem<'a>>,
}

#[derive(Serialize)]
struct SourcedProblem<'a> {
    source: &'a str,
    #[serde(flatten)]
    problem: &'a conntrack::Problem,
}

#[derive(Serialize)]
struct ListedEntry {
    line: u32,
    text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner: Option<live::Owner>,
}

fn load_text(arg: &str) -> anyhow::Result<(String, Vec<u8>)> {
    let mut l = read_source(&Source::from_arg(arg))?;
    let first = l.remove(0);
    Ok((first.name, first.bytes))
}

fn mtime(p: &PathBuf) -> Option<std::time::SystemTime> {
    std::fs::metadata(p).ok()?.modified().ok()
}

/// Runs `conntrack`.
pub fn conntrack(a: ConntrackArgs) -> anyhow::Result<ExitCode> {
    let filter = a.filter()?;
    if a.rules.as_deref() == Some("-") && a.file.as_deref() == Some("-") {
        bail!("FILE and --rules cannot both be read from stdin (`-`)");
    }
    if let Some(r) = &a.replay {
        return replay(&a, r);
    }
    if a.file.is_none() && !a.live && a.stats.is_empty() {
        bail!(
            "nothing to read: give a FILE (`-` for stdin), --live, --stats FILE or --replay FILE; see `iptviz conntrack --help`"
        );
    }
    if a.stats.len() > 2 {
        bail!("--stats takes one snapshot, or two for rates");
    }
    if let Some(w) = a.watch {
        if !a.live {
            bail!("--watch polls the live counters: add --live");
        }
        if w.is_nan() || w <= 0.0 || Duration::try_from_secs_f64(w).is_err() {
            bail!("--watch needs a positive number of seconds");
        }
        let rules = load_rules(&a)?;
        return watch(&a, w, rules.as_ref());
    }

    let mut table: Option<ConnTable> = None;
    let mut stats: Vec<Stats> = Vec::new();
    let mut fill = None;
    let mut unreadable = false;
    if a.live {
        let t = live::read_table()?;
        match conntrack::parse_bytes(&t.bytes, &t.name) {
            Ok(Parsed::Entries(ct)) => table = Some(ct),
            Ok(Parsed::Stats(_)) => bail!("{}: expected entries", t.name),
            // An empty live table is an answer, not an error.
            Err(conntrack::ConntrackError::Empty { .. }) => {
                table = Some(ConnTable {
                    name: t.name,
                    strings: vec![String::new()],
                    ..Default::default()
                })
            }
            Err(e) => return Err(e.into()),
        }
        match live::read_stats() {
            Ok(s) => stats.push(conntrack::parse_stats(&s.bytes, &s.name)),
            Err(e) => eprintln!("iptviz: {e}"),
        }
        fill = live::read_fill().ok();
    }
    if let Some(f) = &a.file {
        let (name, bytes) = load_text(f)?;
        match conntrack::parse_bytes(&bytes, &name) {
            Ok(Parsed::Entries(ct)) => table = Some(ct),
            Ok(Parsed::Stats(s)) => stats.push(s),
            Err(e) => {
                eprintln!("iptviz: {e}");
                unreadable = true;
            }
        }
    }
    for p in &a.stats {
        let (name, bytes) = load_text(&p.to_string_lossy())?;
        match conntrack::parse_bytes(&bytes, &name) {
            Ok(Parsed::Stats(s)) => stats.push(s),
            Ok(Parsed::Entries(_)) => {
                bail!("{name}: this is a list of entries, not statistics; pass it as FILE")
            }
            Err(e) => {
                eprintln!("iptviz: {e}");
                unreadable = true;
            }
        }
    }
    if unreadable && table.is_none() && stats.is_empty() {
        return Ok(ExitCode::from(2));
    }

    let nat_rules = load_rules(&a)?;

    let interval = if stats.len() == 2 {
        let secs = a.interval.or_else(|| {
            let (x, y) = (mtime(a.stats.first()?)?, mtime(a.stats.get(1)?)?);
            let d = y.duration_since(x).ok()?.as_secs_f64();
            (d > 0.0).then_some(d)
        });
        match secs {
            Some(s) if s > 0.0 => Some(s),
            _ => bail!("two --stats snapshots need the seconds between them: add --interval SECS"),
        }
    } else {
        None
    };
    let health = match (stats.len(), interval) {
        (2, Some(secs)) => conntrack::health(&stats[1], Some((&stats[0], secs))),
        (0, _) => Vec::new(),
        _ => conntrack::health(&stats[0], None),
    };

    let mut problems: Vec<SourcedProblem<'_>> = Vec::new();
    if let Some(t) = &table {
        problems.extend(t.problems.iter().map(|p| SourcedProblem {
            source: &t.name,
            problem: p,
        }));
    }
    for s in &stats {
        problems.extend(s.problems.iter().map(|p| SourcedProblem {
            source: &s.name,
            problem: p,
        }));
    }

    let insert_failed = report_insert_failed(&health);
    let owners = (a.processes && a.live).then(Owners::read);
    let mut report = Report {
        source: table.as_ref().map(|t| t.name.as_str()),
        trailer_count: table.as_ref().and_then(|t| t.trailer_count),
        summary: None,
        nat_total: 0,
        nat: Vec::new(),
        entries: Vec::new(),
        health,
        interval_seconds: interval,
        insert_race: None,
        have_rules: nat_rules.is_some(),
        pressure: None,
        problems,
    };
    if let Some(t) = &table {
        let selected = || {
            t.entries
                .iter()
                .enumerate()
                .filter(|(_, e)| filter.matches(e))
        };
        let mut s = conntrack::summarize(selected().map(|x| x.1), a.top);
        s.fill = fill.or(a.max.map(|max| Fill {
            count: t.entries.len() as u64,
            max,
            buckets: a.buckets,
        }));
        report.summary = Some(s);
        let opt = PressureOptions {
            top: a.top,
            clients_per_tuple: 3,
            limit_per_dest: a.limit_per_dest,
        };
        let p = if filter.is_empty() {
            conntrack::pressure(&t.entries, nat_rules.as_ref(), opt)
        } else {
            conntrack::pressure_where(&t.entries, |e| filter.matches(e), nat_rules.as_ref(), opt)
        };
        report.pressure = Some(p);
        // Only the shown NAT entries are turned into text: a big table has
        // hundreds of thousands.
        report.nat_total = selected().filter(|(_, e)| e.nat().any()).count();
        report.nat = conntrack::link_nat(
            selected().filter(|(_, e)| e.nat().any()).take(a.top),
            nat_rules.as_ref(),
        );
        if a.list {
            report.entries = selected()
                .map(|(_, e)| ListedEntry {
                    line: e.line,
                    text: entry_line(t, e),
                    owner: owners.as_ref().and_then(|o| o.owner_of(e)).cloned(),
                })
                .collect();
        }
    }

    if let Some((total, rate)) = insert_failed {
        let flows = udp_flows(report.pressure.as_ref());
        report.insert_race = insert_race(Some(total), rate, nat_rules.as_ref(), flows);
    }
    let mut out = open_output(a.output.as_ref())?;
    if a.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        print_text(&mut out, &report, table.as_ref(), !filter.is_empty())?;
    }
    out.flush()?;
    drop(out);
    if !a.json {
        let shown = 20;
        for p in report.problems.iter().take(shown) {
            eprintln!("{}", p.problem.render(p.source));
        }
        let more = report.problems.len().saturating_sub(shown) as u64
            + table.as_ref().map_or(0, |t| t.problems_dropped);
        if more > 0 {
            eprintln!("iptviz: ... and {more} more problems (--json lists up to 1000)");
        }
    }
    let bad = !report.problems.is_empty() || unreadable;
    Ok(if bad {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// One entry in the same words conntrack uses, compact.
fn entry_line(t: &ConnTable, e: &Entry) -> String {
    let mut s = format!("{:<7} {:>6} ", e.proto_name(), e.timeout);
    if !e.state.is_none() {
        s.push_str(&format!("{:<11} ", e.state.name()));
    }
    s.push_str(&format!(
        "{} -> {}",
        e.endpoint(e.orig.src, e.orig.sport),
        e.endpoint(e.orig.dst, e.orig.dport)
    ));
    let k = e.nat();
    if k.any() {
        s.push_str(&format!(
            "  reply {} -> {}",
            e.endpoint(e.reply.src, e.reply.sport),
            e.endpoint(e.reply.dst, e.reply.dport)
        ));
    }
    for (bit, name) in [
        (conntrack::Flags::ASSURED, " [ASSURED]"),
        (conntrack::Flags::UNREPLIED, " [UNREPLIED]"),
        (conntrack::Flags::OFFLOAD, " [OFFLOAD]"),
    ] {
        if e.has(bit) {
            s.push_str(name);
        }
    }
    if e.mark != 0 {
        s.push_str(&format!(" mark={:#x}", e.mark));
    }
    if e.zone != 0 {
        s.push_str(&format!(" zone={}", e.zone));
    }
    if e.helper != 0 {
        s.push_str(&format!(" helper={}", t.string(e.helper)));
    }
    s
}

/// Strips control characters: entry text and rule comments go to a terminal.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn print_text(
    out: &mut dyn Write,
    r: &Report<'_>,
    table: Option<&ConnTable>,
    filtered: bool,
) -> anyhow::Result<()> {
    if let (Some(s), Some(t)) = (&r.summary, table) {
        writeln!(
            out,
            "{}: {} entries{}{}",
            clean(&t.name),
            t.entries.len(),
            if filtered {
                format!(", {} selected by the filters", s.total)
            } else {
                String::new()
            },
            match r.trailer_count {
                Some(n) if n as usize != t.entries.len() => {
                    format!(" (the trailer says {n})")
                }
                _ => String::new(),
            }
        )?;
        if let Some(f) = s.fill {
            writeln!(
                out,
                "  table fill:  {}{}",
                fill_text(&f),
                if f.percent() >= 90.0 {
                    "  ! nearly full: new connections will be dropped (see drop, early_drop)"
                } else {
                    ""
                }
            )?;
        }
        let list = |v: &[conntrack::summary::Count<String>]| {
            v.iter()
                .map(|c| format!("{} {}", c.key, c.count))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let protos: Vec<_> = s
            .by_proto
            .iter()
            .map(|c| conntrack::summary::Count {
                key: c.key.to_string(),
                count: c.count,
            })
            .collect();
        writeln!(out, "  protocols:   {}", or_none(list(&protos)))?;
        writeln!(out, "  states:      {}", or_none(list(&s.by_state)))?;
        writeln!(
            out,
            "  unreplied:   {}   assured: {}   NAT: {}   IPv6: {}",
            s.unreplied, s.assured, s.nat, s.ipv6
        )?;
        if s.dns_udp > 0 {
            writeln!(
                out,
                "  DNS:         {} udp entries to port 53 (short-lived flows that fill a table quickly)",
                s.dns_udp
            )?;
        }
        if s.destroyed > 0 {
            writeln!(
                out,
                "  ended:       {} ([DESTROY] events of `conntrack -E`: these connections are gone)",
                s.destroyed
            )?;
        }
        if s.total > 0 {
            writeln!(out, "  top destinations:")?;
            for c in &s.top_destinations {
                writeln!(out, "    {:>9}  {}", c.count, c.key)?;
            }
            if !s.top_ports.is_empty() {
                writeln!(out, "  top destination ports:")?;
                for c in &s.top_ports {
                    writeln!(out, "    {:>9}  {}/{}", c.count, c.key.proto, c.key.port)?;
                }
            }
            writeln!(out, "  top sources:")?;
            for c in &s.top_sources {
                writeln!(out, "    {:>9}  {}", c.count, c.key)?;
            }
        }
        if r.nat_total > 0 {
            writeln!(
                out,
                "NAT: {} entries{}",
                r.nat_total,
                if r.nat.len() < r.nat_total {
                    format!(", first {} shown (--top N for more)", r.nat.len())
                } else {
                    String::new()
                }
            )?;
            for n in &r.nat {
                writeln!(out, "  {}", n.arrow())?;
                for (what, rule) in [("DNAT", &n.dnat_rule), ("SNAT", &n.snat_rule)] {
                    if let Some(rule) = rule {
                        write!(
                            out,
                            "      {what} by {} {} rule {} (line {}): {}",
                            rule.table,
                            clean(&rule.chain),
                            rule.index,
                            rule.line,
                            rule.target
                        )?;
                        if let Some(svc) = &rule.service {
                            write!(out, "  service {}", clean(svc))?;
                        } else if let Some(c) = &rule.comment {
                            write!(out, "  \"{}\"", clean(c))?;
                        }
                        writeln!(out)?;
                    }
                }
            }
        }
        if let Some(p) = &r.pressure {
            print_pressure(out, p, filtered)?;
        }
        if !r.entries.is_empty() {
            writeln!(out, "entries:")?;
            for e in &r.entries {
                write!(out, "  {:>7}: {}", e.line, clean(&e.text))?;
                if let Some(o) = &e.owner {
                    write!(out, "  pid {} ({})", o.pid, clean(&o.command))?;
                }
                writeln!(out)?;
            }
        }
    }
    if !r.health.is_empty() {
        print_health(out, &r.health, r.interval_seconds)?;
    }
    if let Some(race) = &r.insert_race {
        print_race(out, race, r.have_rules)?;
    }
    Ok(())
}

fn or_none(s: String) -> String {
    if s.is_empty() { "none".into() } else { s }
}

fn print_health(
    out: &mut dyn Write,
    h: &[HealthItem],
    interval: Option<f64>,
) -> anyhow::Result<()> {
    match interval {
        Some(i) => writeln!(out, "health (totals since boot, rates over {i:.0} s):")?,
        None => writeln!(
            out,
            "health (totals since boot; give two snapshots for rates):"
        )?,
    }
    for i in h {
        let mark = match i.level {
            Level::Warning => "!!",
            Level::Notice => " !",
            Level::Ok => "  ",
        };
        let rate = i
            .per_second
            .map_or(String::new(), |r| format!("{r:>10.2}/s"));
        let cpu = i
            .worst_cpu
            .map_or(String::new(), |c| format!(" (most on cpu {c})"));
        if i.highlighted {
            writeln!(out, "  {mark} {:<15} {:>14}{rate}{cpu}", i.counter, i.total)?;
            writeln!(out, "       {}", i.explanation)?;
        } else {
            writeln!(out, "     {:<15} {:>14}{rate}", i.counter, i.total)?;
        }
    }
    Ok(())
}

/// The nat rules of `--rules` or `--live-rules`, if given.
fn load_rules(a: &ConntrackArgs) -> anyhow::Result<Option<NatRules>> {
    let src = match (&a.rules, a.live_rules) {
        (_, true) => Source::Live,
        (Some(r), false) => Source::from_arg(r),
        (None, false) => return Ok(None),
    };
    let mut all = NatRules::default();
    for loaded in read_source(&src).map_err(|e| anyhow::anyhow!("{e}"))? {
        let name = loaded.name.clone();
        let parsed = parse_rules(&loaded.bytes, &ParseOptions::lenient(name.clone()))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if parsed.error_count() > 0 {
            eprintln!(
                "iptviz: {name}: {} errors in the rules; the rules that could be read are used (see `iptviz check`)",
                parsed.error_count()
            );
        }
        all.extend(NatRules::from_ruleset(&parsed.ruleset));
    }
    Ok(Some(all))
}

/// `insert_failed` total and rate, when the counters have it.
fn report_insert_failed(health: &[HealthItem]) -> Option<(u64, Option<f64>)> {
    health
        .iter()
        .find(|h| h.counter == "insert_failed")
        .map(|h| (h.total, h.per_second))
}

/// The UDP tuples of the pressure report, for the insertion race.
fn udp_flows(p: Option<&Pressure>) -> Vec<String> {
    p.map(|p| {
        p.tuples
            .iter()
            .filter(|t| t.proto == "udp")
            .map(|t| {
                let mut s = format!("{} ({} ports in use)", t.label(), t.ports);
                if let Some(o) = &t.original_dst {
                    s.push_str(&format!(", asked for {o}"));
                }
                s
            })
            .collect()
    })
    .unwrap_or_default()
}

fn print_pressure(out: &mut dyn Write, p: &Pressure, filtered: bool) -> anyhow::Result<()> {
    if p.tuples_total == 0 {
        return Ok(());
    }
    writeln!(
        out,
        "NAT source ports{}: {} translated entries in {} tuples (translated address -> destination); {} full, {} above 80%, {} above 50%{}",
        if filtered { " (selected entries)" } else { "" },
        p.translated_entries,
        p.tuples_total,
        p.full,
        p.over_80,
        p.over_50,
        p.limit_per_dest.map_or(String::new(), |l| format!(
            " of the range or of --limit-per-dest {l}"
        ))
    )?;
    for t in &p.tuples {
        write!(
            out,
            "  {:<48} {:>6} of {:>5} ports ({:>5.1}%)",
            clean(&t.label()),
            t.ports,
            t.range_size,
            t.percent
        )?;
        if let (Some(l), Some(lp), Some(ll)) = (p.limit_per_dest, t.limit_percent, t.limit_level) {
            write!(out, ", of the limit {l}: {lp:.1}%")?;
            let worst = t.level.max(ll);
            if worst != PressureLevel::Ok {
                write!(out, "  {}", worst.mark())?;
            }
        } else if t.level != PressureLevel::Ok {
            write!(out, "  {}", t.level.mark())?;
        }
        writeln!(out)?;
        writeln!(
            out,
            "      ports {}-{}: {}",
            t.range.0,
            t.range.1,
            clean(&t.range_why)
        )?;
        if let Some(o) = &t.original_dst {
            writeln!(out, "      clients asked for {o} (DNAT)")?;
        }
        if t.translated_entries < t.ports {
            writeln!(
                out,
                "      {} of them not translated: connections of the address itself hold ports of the same pool",
                t.ports - t.translated_entries
            )?;
        }
        if !t.clients.is_empty() {
            let list: Vec<String> = t
                .clients
                .iter()
                .map(|c| format!("{} {}", c.client, c.ports))
                .collect();
            writeln!(out, "      most used by {}", list.join(", "))?;
        }
    }
    if p.tuples.len() < p.tuples_total as usize {
        writeln!(
            out,
            "  ... {} more tuples (--top N for more)",
            p.tuples_total as usize - p.tuples.len()
        )?;
    }
    if !p.clients.is_empty() {
        writeln!(out, "  clients holding most ports of one tuple:")?;
        for c in &p.clients {
            writeln!(
                out,
                "    {:>9}  {:<40} {:.1}% of {}",
                c.ports,
                c.client.to_string(),
                c.limit_percent.unwrap_or(c.percent).max(c.percent),
                clean(&c.tuple)
            )?;
        }
    }
    Ok(())
}

fn print_race(out: &mut dyn Write, r: &InsertRace, have_rules: bool) -> anyhow::Result<()> {
    writeln!(
        out,
        "insert_failed {}{}: {}",
        r.insert_failed,
        r.per_second
            .map_or(" since boot".to_string(), |x| format!(", {x:.2}/s now")),
        r.explanation
    )?;
    if r.rules.is_empty() {
        if have_rules {
            writeln!(out, "  no nat rule of the given rules translates UDP")?;
        } else {
            writeln!(
                out,
                "  give the rules (--rules FILE or --live-rules) to see the nat rules that translate UDP"
            )?;
        }
    } else {
        writeln!(out, "  nat rules that translate UDP:")?;
        for x in &r.rules {
            writeln!(
                out,
                "    {} {} #{} (line {}) {}{}{}",
                x.rule.table,
                clean(&x.rule.chain),
                x.rule.index,
                x.rule.line,
                x.rule.target,
                x.rule
                    .service
                    .as_ref()
                    .map_or(String::new(), |s| format!("  service {}", clean(s))),
                if matches!(x.rule.target.as_str(), "SNAT" | "MASQUERADE") {
                    if x.random_fully {
                        "  (has --random-fully)"
                    } else {
                        "  (without --random-fully)"
                    }
                } else {
                    ""
                }
            )?;
        }
    }
    if !r.flows.is_empty() {
        writeln!(out, "  UDP flows through NAT:")?;
        for f in &r.flows {
            writeln!(out, "    {}", clean(f))?;
        }
    }
    writeln!(out, "  what often helps (hints to check, not certainties):")?;
    for h in &r.hints {
        writeln!(out, "    - {h}")?;
    }
    Ok(())
}

/// `90 s`, `12 min`, `3 h 05 min`, `2 d 04 h`.
fn human_secs(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    match s {
        0..120 => format!("{s} s"),
        120..7200 => format!("{} min", s / 60),
        7200..172_800 => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {:02} h", s / 86_400, s % 86_400 / 3600),
    }
}

fn fill_text(f: &Fill) -> String {
    let mut s = format!("{} of {} ({:.1}%)", f.count, f.max, f.percent());
    if let (Some(b), Some(pb)) = (f.buckets, f.per_bucket()) {
        s.push_str(&format!(", {pb:.2} entries per bucket ({b} buckets)"));
    }
    s
}

/// The counters a tick line shows, in order.
const TICK_COUNTERS: &[&str] = &["insert_failed", "drop", "early_drop"];

/// One tick of `--watch` or `--replay`, as text or one JSON line.
fn print_tick(out: &mut dyn Write, t: &Tick, start: f64, json: bool) -> anyhow::Result<()> {
    if json {
        serde_json::to_writer(&mut *out, t)?;
        writeln!(out)?;
        return Ok(());
    }
    write!(out, "t+{:<7.1} ", t.time - start)?;
    match t.fill {
        Some(f) => {
            write!(out, "entries {}", fill_text(&f))?;
            if let Some(g) = t.growth_per_second {
                write!(out, ", {g:+.1}/s")?;
            }
            if let Some(full) = t.seconds_to_full {
                write!(out, ", full in about {} at this rate", human_secs(full))?;
            }
        }
        None => write!(out, "entries: fill not readable")?,
    }
    writeln!(out)?;
    let rates: Vec<String> = TICK_COUNTERS
        .iter()
        .filter_map(|c| t.rate(c).map(|r| format!("{c} {r:.2}/s")))
        .collect();
    if !rates.is_empty() {
        writeln!(out, "          {}", rates.join("  "))?;
    }
    if let Some(top) = t.top.first() {
        writeln!(
            out,
            "          most pressed NAT tuple: {} {} of {} ports ({:.1}%) {}",
            clean(&top.tuple),
            top.ports,
            top.range_size,
            top.percent,
            top.level.mark()
        )?;
    }
    Ok(())
}

/// One live reading: counters, fill and, when the table can be read, the
/// most pressed NAT tuples.
fn read_record(a: &ConntrackArgs, rules: Option<&NatRules>) -> anyhow::Result<Record> {
    let t = live::read_stats()?;
    let stats = conntrack::parse_stats(&t.bytes, &t.name);
    let fill = live::read_fill().ok();
    let time = history::now();
    let pressure =
        live::read_table()
            .ok()
            .and_then(|t| match conntrack::parse_bytes(&t.bytes, &t.name) {
                Ok(Parsed::Entries(ct)) => Some(conntrack::pressure(
                    &ct.entries,
                    rules,
                    PressureOptions {
                        top: a.top.min(10),
                        clients_per_tuple: 0,
                        limit_per_dest: a.limit_per_dest,
                    },
                )),
                _ => None,
            });
    Ok(Record::new(time, &stats, fill, pressure.as_ref()))
}

fn watch(a: &ConntrackArgs, secs: f64, rules: Option<&NatRules>) -> anyhow::Result<ExitCode> {
    let pause = Duration::try_from_secs_f64(secs).unwrap_or(Duration::from_secs(1));
    let mut record = match &a.record {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
        ),
        None => None,
    };
    let mut out = open_output(a.output.as_ref())?;
    let mut history: Vec<Record> = Vec::new();
    let mut start = None;
    let mut round = 0u64;
    loop {
        let at = Instant::now();
        let r = read_record(a, rules)?;
        if let Some(f) = &mut record {
            // One line per reading, flushed: a recording cut by ^C loses at
            // most the line being written, which --replay reports.
            let mut line = serde_json::to_vec(&r)?;
            line.push(b'\n');
            f.write_all(&line)?;
            f.flush()?;
        }
        let start = *start.get_or_insert(r.time);
        history.push(r);
        let i = history.len() - 1;
        if let Some(t) = history::tick(&history, i) {
            print_tick(&mut out, &t, start, a.json)?;
            out.flush()?;
            round += 1;
            if a.count.is_some_and(|c| round >= c) {
                return Ok(ExitCode::SUCCESS);
            }
        }
        // Keep twice the growth window: ticks look back no further.
        let now = history[i].time;
        let old = history
            .iter()
            .take_while(|r| now - r.time > 2.0 * history::GROWTH_WINDOW)
            .count();
        history.drain(..old.min(history.len() - 1));
        std::thread::sleep(pause.saturating_sub(at.elapsed()));
    }
}

fn replay(a: &ConntrackArgs, path: &str) -> anyhow::Result<ExitCode> {
    let (name, bytes) = load_text(path)?;
    let rec = history::read_recording(&bytes, &name);
    let mut out = open_output(a.output.as_ref())?;
    let start = rec.records.first().map_or(0.0, |r| r.time);
    if !a.json {
        let span = rec.records.last().map_or(0.0, |r| r.time - start);
        writeln!(
            out,
            "{}: {} readings over {}",
            clean(&name),
            rec.records.len(),
            human_secs(span)
        )?;
    }
    for t in history::ticks(&rec.records) {
        print_tick(&mut out, &t, start, a.json)?;
    }
    out.flush()?;
    drop(out);
    match &rec.problem {
        Some(p) => {
            eprintln!("{}", p.render(&name));
            Ok(ExitCode::from(1))
        }
        None if rec.records.is_empty() => {
            eprintln!("iptviz: {name}: no readings in this recording");
            Ok(ExitCode::from(1))
        }
        None => Ok(ExitCode::SUCCESS),
    }
}
