//! `iptviz conntrack`: the connection table, its NAT entries linked to the
//! rules, and the health of the counters.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;
use iptviz::conntrack::filter::{parse_net, parse_proto, parse_state};
use iptviz::conntrack::live::{self, Owners};
use iptviz::conntrack::nat::NatRules;
use iptviz::conntrack::stats::HealthItem;
use iptviz::conntrack::{
    self, ConnTable, Entry, Filter, Level, NatLink, Parsed, Rate, Stats, Summary,
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
  sudo iptviz conntrack --live --watch 5")]
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
    /// Live: print counter rates every SECS seconds.
    #[arg(long, value_name = "SECS")]
    watch: Option<f64>,
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
    /// Length of the top lists and of the NAT list.
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
    #[serde(skip_serializing_if = "Vec::is_empty")]
    entries: Vec<ListedEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    health: Vec<HealthItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    interval_seconds: Option<f64>,
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
    if a.file.is_none() && !a.live && a.stats.is_empty() {
        bail!(
            "nothing to read: give a FILE (`-` for stdin), --live, or --stats FILE; see `iptviz conntrack --help`"
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
        return watch(&a, w);
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

    let rule_source = match (&a.rules, a.live_rules) {
        (_, true) => Some(Source::Live),
        (Some(r), false) => Some(Source::from_arg(r)),
        (None, false) => None,
    };
    let nat_rules = match rule_source {
        Some(src) => {
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
            Some(all)
        }
        None => None,
    };

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
        s.fill = fill;
        report.summary = Some(s);
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
                "  table fill:  {} of {} ({:.1}%){}",
                f.count,
                f.max,
                f.percent(),
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

fn watch(a: &ConntrackArgs, secs: f64) -> anyhow::Result<ExitCode> {
    let read = || -> anyhow::Result<Stats> {
        let t = live::read_stats()?;
        Ok(conntrack::parse_stats(&t.bytes, &t.name))
    };
    let mut prev = read()?;
    let mut prev_at = Instant::now();
    let mut out = open_output(a.output.as_ref())?;
    let mut round = 0u64;
    loop {
        std::thread::sleep(Duration::try_from_secs_f64(secs).unwrap_or(Duration::from_secs(1)));
        let now = read()?;
        let at = Instant::now();
        let elapsed = at.duration_since(prev_at).as_secs_f64();
        let rates: Vec<Rate> = conntrack::rates(&prev, &now, elapsed);
        let fill = live::read_fill().ok();
        if a.json {
            #[derive(Serialize)]
            struct Tick<'a> {
                seconds: f64,
                fill: Option<conntrack::Fill>,
                rates: &'a [Rate],
            }
            serde_json::to_writer(
                &mut out,
                &Tick {
                    seconds: elapsed,
                    fill,
                    rates: &rates,
                },
            )?;
            writeln!(out)?;
        } else {
            let h = conntrack::health(&now, Some((&prev, elapsed)));
            if let Some(f) = fill {
                writeln!(
                    out,
                    "table fill: {} of {} ({:.1}%)",
                    f.count,
                    f.max,
                    f.percent()
                )?;
            }
            print_health(&mut out, &h, Some(elapsed))?;
            writeln!(out)?;
        }
        out.flush()?;
        prev = now;
        prev_at = at;
        round += 1;
        if a.count.is_some_and(|c| round >= c) {
            return Ok(ExitCode::SUCCESS);
        }
    }
}
