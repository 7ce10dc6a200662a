//! `iptviz trace --packets FILE` and `iptviz trace --pcap CAPTURE`: many
//! packets through the rules, with a connection table.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::ExitCode;

use anyhow::{Context, bail};
use iptviz::graph::{ChainGraph, ViewOptions, view};
use iptviz::model::{Family, Ruleset};
use iptviz::render::{Format, render};
use iptviz::trace::pcap::CaptureReader;
use iptviz::trace::{Batch, Observed, Traced, Tracer, describe, packet_from_json};
use serde::Serialize;

use super::super::common::open_output;
use super::{TraceArgs, TraceFormat};
use crate::cli::common::Input;

/// The longest line read from a packets file.
const MAX_LINE: usize = 1 << 20;

/// What the command prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Out {
    Lines,
    Text,
    Json,
    Counters,
    Graph(Format),
}

/// One result line of `-f jsonl`.
#[derive(Serialize)]
struct Line<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    packet: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u64>,
    flow: u64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    reply: bool,
    state: &'static str,
    verdict: iptviz::trace::Verdict,
    route: iptviz::trace::Route,
    decided_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule_line: Option<u32>,
    input: String,
    output: String,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    notes: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    routing: Option<&'a iptviz::trace::RouteStep>,
}

/// An error line of `-f jsonl`.
#[derive(Serialize)]
struct ErrorLine<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    packet: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u64>,
    error: &'a str,
}

/// The rules of one address family and the batch replaying through them.
struct Lane<'i, 't, 'r> {
    input: &'i Input,
    batch: Batch<'t, 'r>,
}

fn open(path: &str) -> anyhow::Result<Box<dyn Read>> {
    Ok(if path == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(path).with_context(|| format!("cannot read {path}"))?)
    })
}

/// Reads one line of at most `MAX_LINE` bytes into `buf` (without its
/// newline); `Ok(None)` at the end, `Ok(Some(false))` when it was longer
/// (the rest of it is skipped).
fn next_line(r: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<Option<bool>> {
    buf.clear();
    let mut fits = true;
    let mut any = false;
    loop {
        let chunk = r.fill_buf()?;
        if chunk.is_empty() {
            return Ok(any.then_some(fits));
        }
        any = true;
        let (take, done) = match memchr::memchr(b'\n', chunk) {
            Some(i) => (i, true),
            None => (chunk.len(), false),
        };
        if fits && buf.len() + take <= MAX_LINE {
            buf.extend_from_slice(&chunk[..take]);
        } else {
            fits = false;
        }
        r.consume(if done { take + 1 } else { take });
        if done {
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            return Ok(Some(fits));
        }
    }
}

/// Protocol, addresses and ports, then the details set (TOS, fragment,
/// MSS, TCP options, IPv6 headers).
fn with_details(p: &iptviz::trace::Packet) -> String {
    let mut out = p.addresses();
    for w in iptviz::trace::fields::describe(p) {
        out.push(' ');
        out.push_str(&w);
    }
    out
}

/// Runs `iptviz trace` over many packets.
pub(super) fn run(a: &TraceArgs) -> anyhow::Result<ExitCode> {
    let from_stdin = a.packets.as_deref() == Some("-") || a.pcap.as_deref() == Some("-");
    if from_stdin && a.input.file.as_deref() == Some("-") {
        bail!("the rules and the packets cannot both come from standard input");
    }
    if a.path_only || a.rules || a.matched_only {
        bail!(
            "--path-only, --rules and --matched-only draw or list one packet's walk: not with --packets or --pcap"
        );
    }
    if a.details.given() {
        bail!(
            "--tos, --dscp, --fragment, --tcp-option, --mss and --ipv6-header describe one packet: with --packets give them as fields of each line (\"tos\", \"dscp\", \"fragment\", \"tcp-option\", \"mss\", \"ipv6-header\"); a capture carries them"
        );
    }
    let out = match (a.json, a.format) {
        (true, _) | (_, Some(TraceFormat::Json)) => Out::Json,
        (_, Some(TraceFormat::Jsonl)) => Out::Lines,
        (_, Some(TraceFormat::Counters)) => Out::Counters,
        (_, Some(TraceFormat::Text)) => Out::Text,
        (_, Some(TraceFormat::Svg)) => Out::Graph(Format::Svg),
        (_, Some(TraceFormat::Dot)) => Out::Graph(Format::Dot),
        (_, None) if a.packets.is_some() && !a.summary => Out::Lines,
        (_, None) => Out::Text,
    };
    if a.summary && matches!(out, Out::Lines | Out::Counters | Out::Graph(_)) {
        bail!("--summary prints the summary: as text, or as JSON with --json");
    }
    let opts = a.options()?;
    let inputs = match a.input.load(false) {
        Ok(i) => i,
        Err(e) => return Ok(e.report()),
    };
    if inputs.is_empty() {
        bail!("no rules were read");
    }
    for i in &inputs {
        crate::cli::common::report_problems(&i.parsed.problems, &i.name, true);
    }
    let mut opts = opts;
    let rulesets: Vec<&Ruleset> = inputs.iter().map(|i| &i.parsed.ruleset).collect();
    opts.overrides = super::assumptions(&a.assume, &rulesets)?;
    let tracers: Vec<Tracer<'_>> = inputs
        .iter()
        .map(|i| Tracer::new(&i.parsed.ruleset))
        .collect();
    let mut lanes: Vec<Lane<'_, '_, '_>> = inputs
        .iter()
        .zip(&tracers)
        .map(|(input, t)| {
            let mut batch = Batch::new(t, opts.clone());
            batch.top = a.top;
            Lane { input, batch }
        })
        .collect();
    let mut w = open_output(a.output.as_ref())?;
    let mut bad = 0u64;
    let mut other_family = 0u64;
    let default_in = a.in_iface.as_deref();
    let default_out = a.out_iface.as_deref();
    // Traces one packet on the lane of its family.
    let mut step = |obs: Observed,
                    number: Option<u64>,
                    line: Option<u64>,
                    w: &mut dyn Write,
                    lanes: &mut Vec<Lane<'_, '_, '_>>|
     -> anyhow::Result<()> {
        let v6 = obs.packet.src.is_ipv6();
        let lane = if lanes.len() == 1 {
            let only = (lanes[0].input.parsed.ruleset.family == Family::Ipv6) == v6;
            if !only {
                other_family += 1;
                return Ok(());
            }
            &mut lanes[0]
        } else {
            match lanes
                .iter_mut()
                .find(|l| (l.input.parsed.ruleset.family == Family::Ipv6) == v6)
            {
                Some(l) => l,
                None => {
                    other_family += 1;
                    return Ok(());
                }
            }
        };
        let t = lane.batch.push(obs);
        if out == Out::Lines {
            write_line(w, &t, number, line, &lane.input.parsed.ruleset)?;
        }
        Ok(())
    };
    if let Some(path) = &a.packets {
        let mut r = BufReader::new(open(path)?);
        let mut buf = Vec::new();
        let mut n = 0u64;
        let name = if path == "-" {
            "<stdin>"
        } else {
            path.as_str()
        };
        while let Some(fits) = next_line(&mut r, &mut buf)? {
            n += 1;
            let text = match std::str::from_utf8(&buf) {
                Ok(t) => t,
                Err(e) => {
                    bad += 1;
                    let msg = "not UTF-8 text: not traced";
                    eprintln!("{name}:{n}:{}: error: {msg}", e.valid_up_to() + 1);
                    error_line(&mut w, out, None, Some(n), msg)?;
                    continue;
                }
            };
            if !fits {
                bad += 1;
                let msg = format!("line longer than {MAX_LINE} bytes: not traced");
                eprintln!("{name}:{n}:1: error: {msg}");
                error_line(&mut w, out, None, Some(n), &msg)?;
                continue;
            }
            let trimmed = text.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            match packet_from_json(text) {
                Ok(mut obs) => {
                    let p = &mut obs.packet;
                    if p.in_iface.is_none() {
                        p.in_iface = default_in.map(Into::into);
                    }
                    if p.out_iface.is_none() {
                        p.out_iface = default_out.map(Into::into);
                    }
                    step(obs, None, Some(n), &mut w, &mut lanes)?;
                }
                Err(e) => {
                    bad += 1;
                    let msg = format!("{}: packet not traced", e.message);
                    eprintln!(
                        "{name}:{n}:{}: error: {msg}\n{}\n{}^",
                        e.column,
                        text,
                        " ".repeat(
                            text.char_indices()
                                .take_while(|(i, _)| *i + 1 < e.column)
                                .count()
                        )
                    );
                    error_line(&mut w, out, None, Some(n), &msg)?;
                }
            }
        }
    } else if let Some(path) = &a.pcap {
        let name = if path == "-" {
            "<stdin>"
        } else {
            path.as_str()
        };
        let mut cap = CaptureReader::new(BufReader::with_capacity(1 << 16, open(path)?))
            .with_context(|| name.to_string())?;
        cap.iface = a.in_iface.clone();
        // Without conntrack every fragment meets the rules on its own.
        cap.keep_fragments = rulesets
            .iter()
            .all(|rs| iptviz::trace::fields::conntrack_user(rs).is_none());
        while let Some(item) = cap.next() {
            match item {
                Ok(mut obs) => {
                    if !obs.outgoing && obs.packet.out_iface.is_none() {
                        obs.packet.out_iface = default_out.map(Into::into);
                    }
                    let n = cap.packets_read();
                    step(obs, Some(n), None, &mut w, &mut lanes)?;
                }
                Err(e) => {
                    bad += 1;
                    eprintln!("{name}: {e}");
                    error_line(&mut w, out, Some(e.number), None, &e.message)?;
                }
            }
        }
        let s = cap.skipped;
        if s.not_ip > 0 || s.fragments > 0 {
            eprintln!(
                "{name}: {} packets read; skipped {} that are not IP and {} later fragments (conntrack reassembles a datagram before the rules see it: its first fragment was traced)",
                cap.packets_read(),
                s.not_ip,
                s.fragments
            );
        }
    }
    if other_family > 0 {
        eprintln!(
            "iptviz: {other_family} packets of the other address family were not traced (no {} rules were read)",
            if lanes[0].input.parsed.ruleset.family == Family::Ipv6 {
                "IPv4"
            } else {
                "IPv6"
            }
        );
    }
    if bad > 0
        && let Some(l) = lanes.first_mut()
    {
        for _ in 0..bad {
            l.batch.unreadable();
        }
    }
    match out {
        Out::Lines => {}
        Out::Text => {
            for (i, l) in lanes.iter().enumerate() {
                if lanes.len() > 1 && l.batch.summary().packets == 0 && i > 0 {
                    continue;
                }
                let s = l.batch.report(&l.input.parsed.ruleset);
                if i > 0 {
                    writeln!(w)?;
                }
                w.write_all(s.text(&l.input.name).as_bytes())?;
            }
        }
        Out::Json => {
            let all: Vec<_> = lanes
                .iter()
                .map(|l| {
                    serde_json::json!({
                        "rules": l.input.name,
                        "summary": l.batch.report(&l.input.parsed.ruleset),
                    })
                })
                .collect();
            if all.len() == 1 {
                serde_json::to_writer_pretty(&mut w, &all[0])?;
            } else {
                serde_json::to_writer_pretty(&mut w, &all)?;
            }
            writeln!(w)?;
        }
        Out::Counters => {
            for l in &lanes {
                let rs = l.batch.counted(&l.input.parsed.ruleset);
                w.write_all(iptviz::save::to_save_text(&rs).as_bytes())?;
            }
        }
        Out::Graph(f) => {
            let l = lanes
                .iter()
                .max_by_key(|l| l.batch.summary().packets)
                .expect("one lane a ruleset");
            let rs = l.batch.counted(&l.input.parsed.ruleset);
            let what = a.pcap.as_deref().or(a.packets.as_deref()).unwrap_or("-");
            let title = format!(
                "{}: {} packets of {what} (edges as wide as the packets that took them)",
                l.input.name,
                l.batch.summary().packets
            );
            let v = heat_view(&rs, l, a, title)?;
            w.write_all(render(&v, f, a.layout.choice())?.as_bytes())?;
        }
    }
    w.flush()?;
    Ok(if bad > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The chain graph of the tables the packets went through, counters on.
fn heat_view(
    rs: &Ruleset,
    l: &Lane<'_, '_, '_>,
    a: &TraceArgs,
    title: String,
) -> anyhow::Result<iptviz::graph::View> {
    let mut tables: Vec<String> = l
        .batch
        .hits()
        .keys()
        .map(|(t, _, _)| rs.tables[*t].name.to_string())
        .collect();
    tables.sort();
    tables.dedup();
    let g = ChainGraph::build(rs);
    let opts = ViewOptions {
        tables,
        prune: true,
        collapse: super::collapse_rules(&a.collapse)?,
        counters: true,
        title,
        ..Default::default()
    };
    Ok(view(rs, &g, &opts)?)
}

fn write_line(
    w: &mut dyn Write,
    t: &Traced,
    packet: Option<u64>,
    line: Option<u64>,
    rs: &Ruleset,
) -> anyhow::Result<()> {
    let (decided_by, rule_line) = describe(t.decider, rs);
    let l = Line {
        packet,
        line,
        flow: t.flow,
        reply: t.reply,
        state: t.trace.input.state.name(),
        verdict: t.trace.verdict,
        route: t.trace.route,
        decided_by,
        rule_line,
        input: with_details(&t.trace.input),
        output: with_details(&t.trace.output),
        notes: &t.trace.notes,
        routing: t.trace.routing.as_ref(),
    };
    serde_json::to_writer(&mut *w, &l)?;
    writeln!(w)?;
    Ok(())
}

fn error_line(
    w: &mut dyn Write,
    out: Out,
    packet: Option<u64>,
    line: Option<u64>,
    error: &str,
) -> anyhow::Result<()> {
    if out == Out::Lines {
        serde_json::to_writer(
            &mut *w,
            &ErrorLine {
                packet,
                line,
                error,
            },
        )?;
        writeln!(w)?;
    }
    Ok(())
}
