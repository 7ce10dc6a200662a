//! `iptviz trace`: where does this packet go?

use std::collections::HashMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use iptviz::analysis::routes::RouteTable;
use iptviz::diagram::{
    ViewOptions, path_only_view, path_only_view_named, trace_view, trace_view_named,
};
use iptviz::render::{Format, render};
use iptviz::trace::Routing;
use iptviz::trace::nft::NftRules;
use iptviz::trace::{
    CtState, Direction, Packet, RandomChoice, Route, Trace, TraceOptions, Tracer, Verdict,
    parse_icmp_type, parse_mac, parse_tcp_flags, protocol_number, render_text,
};
use iptviz::typed::parse_u32;

use super::common::{Input, InputArgs, open_output};

mod batch;
use super::render::{LayoutArg, collapse_rules};

/// What `iptviz trace` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TraceFormat {
    /// The steps as readable text.
    Text,
    /// The steps as JSON.
    Json,
    /// The chain graph with the packet's path highlighted, as SVG.
    Svg,
    /// The same graph as Graphviz DOT.
    Dot,
    /// With --packets or --pcap: one JSON result a packet, one a line.
    Jsonl,
    /// With --packets or --pcap: the rules as `iptables-save -c` prints
    /// them, with the counters this traffic would have produced.
    Counters,
}

/// `iptviz trace`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  iptviz trace rules.txt -p tcp -s 203.0.113.5 -d 192.168.1.10 --dport 22 --local 192.168.1.10
  iptviz trace samples/kube-proxy.rules --proto udp --src 10.244.1.7 --sport 41000 \\
      --dst 10.96.0.10 --dport 53 --local 192.168.49.2 -f svg --output dns.svg
  iptviz trace rules.txt -s 10.0.0.2 -d 10.0.1.5 --dport 443 -f dot | dot -Tpng -o path.png

The kernel's routing step (martians, no route, ip_forward, rp_filter,
multicast groups, -m rpfilter) from the host's routes and sysctls:
  ip route show table all > routes.txt
  iptviz trace rules.txt -p udp -s 192.0.2.7 -d 10.1.0.1 -i eth0 --routes routes.txt \\
      --sysctl net.ipv4.conf.eth0.rp_filter=1 --sysctl net.ipv4.ip_forward=0
  iptviz trace rules.txt -p udp -s 10.1.0.2 -d 239.1.1.1 -i eth0 --routes r.txt --join 239.1.1.1
Without --routes this host's addresses (--local, --iface-addr) decide
between INPUT and FORWARD, and the output says so.

Packet details: the TOS byte or DSCP, which fragment, TCP options and MSS,
IPv6 extension headers (also as fields of --packets lines; a capture
carries them); --assume settles a rule the packet cannot decide:
  iptviz trace rules.txt -s 192.0.2.1 -d 192.0.2.2 --dport 80 --tos 0x10 --mss 1460 \\
      --tcp-option sack-permitted,timestamp --assume mangle:PREROUTING#3=nomatch
  iptviz trace rules6.txt -s fd00::1 -d fd00::2 -p udp --dport 53 \\
      --ipv6-header hop,dst --fragment first --assume line:42=match

Many packets: replay a capture, or packets written as JSON lines:
  tcpdump -i eth0 -w in.pcap
  iptviz trace rules.txt --pcap in.pcap --in eth0 --local 192.168.1.10
  iptviz trace rules.txt --pcap in.pcap --in eth0 --local 192.168.1.10 -f svg --output heat.svg
  iptviz trace rules.txt --pcap in.pcap -f counters | diff - <(iptables-save -c)
  echo '{\"proto\":\"udp\",\"src\":\"10.0.0.1\",\"dst\":\"10.0.0.2\",\"dport\":53}' |
      iptviz trace rules.txt --packets -
The first packet of a flow is NEW, later ones take its connection's state
and NAT bindings, replies are recognised. The summary counts packets and
flows per verdict and per deciding rule (the rule or policy that ended each
walk) and lists the flows dropped most. Packets that cannot be read are
named by number on stderr (exit status 1); the others are still traced.

With -f svg or -f dot the chain graph is drawn with the packet's path
highlighted: the chains it went through, the rules it took, and its verdicts;
everything else is dimmed. An edge drawn for several rules names the one the
packet took. Only the tables the packet went through are drawn, and only the
chains reachable from the built-in chains it entered. Note that -o is the
outgoing interface (as in iptables); write to a file with --output.

A jump loop stops the walk with a message naming it (the kernel refuses such
a ruleset), and so does a walk past --max-steps rule evaluations (default
1,000,000): 60 chains each jumping twice to the next make 2^61 evaluations,
which the message counts without walking them. Exit status 1 then:
  iptviz trace huge.rules -s 10.0.0.1 -d 10.0.0.2 --dport 80 --max-steps 5000000

On a big ruleset (a kube-proxy node has tens of thousands of chains) the path
is a thin line in a large picture. --path-only draws nothing but the path,
top to bottom: the packet, then one frame per hook and table in the order the
kernel ran them, holding the chains entered and each rule taken, named by its
number in its chain (`#3 -j KUBE-SVC-... tcp dpt:443`), returns and policies;
the routing decision, the NAT changes, and the verdict with the packet as it
leaves. Its size depends on the walk, not on the ruleset:
  iptviz trace samples/kube-proxy.rules -p udp -s 10.244.1.7 -d 10.96.0.10 --dport 53 \\
      --local 192.168.49.2 -f svg --path-only --output dns-path.svg")]
pub struct TraceArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Protocol: tcp, udp, icmp, or a number.
    #[arg(long, short = 'p', default_value = "tcp")]
    proto: String,
    /// Source address.
    #[arg(long, short = 's', required_unless_present_any = ["packets", "pcap"])]
    src: Option<IpAddr>,
    /// Destination address.
    #[arg(long, short = 'd', required_unless_present_any = ["packets", "pcap"])]
    dst: Option<IpAddr>,
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
    /// Trace a later packet of this packet's connection: the packet is
    /// first traced as NEW to learn the connection's NAT bindings, then
    /// again as ESTABLISHED, where they apply instead of the nat table.
    #[arg(long, conflicts_with_all = ["state", "reply"])]
    established: bool,
    /// Trace the reply to this packet: the packet is traced as NEW, then
    /// the packet coming back (ESTABLISHED, NAT undone on the way).
    #[arg(long, conflicts_with = "state")]
    reply: bool,
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
    /// TTL (IPv4) or hop limit (IPv6) as the packet arrives or is sent.
    #[arg(long, default_value_t = 64)]
    ttl: u8,
    /// User id of the sending socket, for a packet this host sends (`-m owner`).
    #[arg(long)]
    uid: Option<u32>,
    /// Group id of the sending socket.
    #[arg(long)]
    gid: Option<u32>,
    /// Source MAC address of the frame the packet arrived in (`-m mac --mac-source`).
    #[arg(long, value_name = "MAC")]
    src_mac: Option<String>,
    #[command(flatten)]
    details: DetailArgs,
    /// Settle a rule the packet cannot decide (statistic, limit, recent,
    /// connlimit, hashlimit, quota, an ipset without contents ...): RULE
    /// as CHAIN#N, TABLE:CHAIN#N (N from 1, as the trace numbers rules) or
    /// line:N (its line in the rules file); repeatable.
    #[arg(long, value_name = "RULE=match|nomatch")]
    assume: Vec<String>,
    /// This host's addresses, comma separated (decides INPUT vs FORWARD).
    #[arg(long, value_delimiter = ',', value_name = "ADDR,...")]
    local: Vec<IpAddr>,
    /// An interface's address, as NAME=ADDR (repeatable): MASQUERADE and
    /// REDIRECT use it; these addresses count as local too.
    #[arg(long, value_name = "NAME=ADDR")]
    iface_addr: Vec<String>,
    /// in, out or forward, when addresses do not tell.
    #[arg(long)]
    direction: Option<String>,
    /// Routes as `ip route show table all` (and `ip -6 route show table
    /// all`) print them: a routing step like the kernel's then decides
    /// between INPUT, FORWARD and a drop (martians, no route, rp_filter)
    /// and picks the interface a packet leaves by. Without it, this host's
    /// addresses (--local, --iface-addr) decide.
    #[arg(long, value_name = "FILE")]
    routes: Option<PathBuf>,
    /// A sysctl the routing step uses, as KEY=VALUE (repeatable):
    /// net.ipv4.ip_forward, net.ipv6.conf.all.forwarding,
    /// net.ipv4.conf.{all,IFACE}.rp_filter (0/1/2),
    /// net.ipv4.conf.{all,IFACE}.route_localnet, net.ipv4.conf.{all,IFACE}.accept_local.
    #[arg(long, value_name = "KEY=VALUE")]
    sysctl: Vec<String>,
    /// A multicast group this host has joined (repeatable): a packet to it
    /// is delivered to INPUT; to a group not joined, dropped. Multicast is
    /// never forwarded (multicast routing is not modelled).
    #[arg(long, value_name = "GROUP")]
    join: Vec<IpAddr>,
    /// ipset contents: NAME=CIDR,CIDR (repeat for several sets).
    #[arg(long, value_name = "NAME=CIDR,...")]
    ipset: Vec<String>,
    /// Let no `statistic --mode random` rule match (default: each one reached matches).
    #[arg(long)]
    skip_random: bool,
    /// Many packets: a file of JSON objects, one a line, with the field
    /// names of these flags (`-` reads stdin); one JSON result a line out.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["pcap", "src", "dst", "established", "reply"])]
    packets: Option<String>,
    /// Replay a capture (pcap or pcapng from tcpdump or Wireshark; `-`
    /// reads stdin): a summary per verdict and per deciding rule, or with
    /// -f svg|dot the chain graph with edges as wide as the packets that took them.
    #[arg(long, value_name = "CAPTURE", conflicts_with_all = ["src", "dst", "established", "reply"])]
    pcap: Option<String>,
    /// With --packets or --pcap: how many of the flows dropped most the summary lists.
    #[arg(long, default_value_t = 10, value_name = "N")]
    top: usize,
    /// With --packets or --pcap: print the summary (text, or JSON with
    /// --json) instead of one result a line (the default of --packets).
    #[arg(long)]
    summary: bool,
    /// Output: the steps as text or JSON, or the chain graph with the path
    /// highlighted as SVG or DOT; `jsonl` with --packets or --pcap: one result a line.
    #[arg(long, short = 'f', value_enum)]
    format: Option<TraceFormat>,
    /// Print the trace as JSON (same as -f json).
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// With -f svg|dot: fold chains matching this glob into one box (repeatable; `none` turns off the defaults).
    #[arg(long, value_name = "PATTERN")]
    collapse: Vec<String>,
    /// With -f svg|dot: draw each chain as a table of its rules, edges leaving from the rule.
    #[arg(long)]
    rules: bool,
    /// With -f svg: layout engine.
    #[arg(long, value_enum, default_value = "auto")]
    layout: LayoutArg,
    /// With -f svg|dot: draw only the packet's path, hook by hook and table by table, top to bottom.
    #[arg(long, conflicts_with_all = ["rules", "collapse"])]
    path_only: bool,
    /// Leave out the rules that did not match.
    #[arg(long)]
    matched_only: bool,
    /// Stop the walk after this many rule evaluations (a jump loop stops it at once).
    #[arg(long, value_name = "N", default_value_t = iptviz::trace::DEFAULT_MAX_STEPS)]
    max_steps: u64,
    /// Write here instead of standard output.
    #[arg(long, value_name = "OUT")]
    output: Option<PathBuf>,
}

/// The packet's TOS, fragment, TCP options and IPv6 extension headers.
#[derive(Debug, Args)]
#[command(next_help_heading = "Packet details")]
struct DetailArgs {
    /// The TOS byte (IPv4) or traffic class (IPv6), e.g. 0x10 (`-m tos`, `-m ecn`).
    #[arg(long, value_name = "BYTE")]
    tos: Option<String>,
    /// The DSCP, 0-63 or a class (AF41, EF, CS1 ...): the upper six bits of the TOS byte (`-m dscp`).
    #[arg(long, value_name = "DSCP")]
    dscp: Option<String>,
    /// Which fragment of its datagram the packet is: first, more (a middle one) or last
    /// (`-f`, `-m frag`); after the first, no ports.
    #[arg(long, value_name = "first|more|last")]
    fragment: Option<String>,
    /// A TCP option the segment carries, by kind (2, or mss, wscale, sack-permitted,
    /// sack, timestamp); repeatable or a comma list (`-m tcp --tcp-option`).
    #[arg(long = "tcp-option", value_name = "KIND,...")]
    tcp_option: Vec<String>,
    /// The value of the segment's MSS option (`-m tcpmss`, `-j TCPMSS`).
    #[arg(long, value_name = "N")]
    mss: Option<u16>,
    /// IPv6 extension headers in order, from hop, dst, route, frag, auth, esp,
    /// none (prot is implied) (`-m ipv6header`, `-m hbh`, `-m dst`, `-m rt`, `-m frag`).
    #[arg(long = "ipv6-header", value_name = "LIST")]
    ipv6_header: Option<String>,
}

impl DetailArgs {
    fn given(&self) -> bool {
        self.tos.is_some()
            || self.dscp.is_some()
            || self.fragment.is_some()
            || !self.tcp_option.is_empty()
            || self.mss.is_some()
            || self.ipv6_header.is_some()
    }

    fn details(&self) -> iptviz::trace::Details {
        iptviz::trace::Details {
            tos: self.tos.clone(),
            dscp: self.dscp.clone(),
            fragment: self.fragment.clone(),
            tcp_options: self.tcp_option.clone(),
            mss: self.mss,
            ipv6_headers: self.ipv6_header.clone(),
        }
    }
}

/// The `--assume` settlements, read against the rules; each must name a rule.
/// `--assume` for a host with nft tables: the iptables rules first, then
/// the nft ones (`FAMILY TABLE:CHAIN#N`).
fn nft_assumptions(
    list: &[String],
    rs: &iptviz::model::Ruleset,
    nft: &NftRules,
) -> anyhow::Result<HashMap<iptviz::trace::RuleRef, bool>> {
    let mut out = HashMap::new();
    for spec in list {
        if let Ok((r, v)) = iptviz::trace::parse_assumption(rs, spec) {
            out.insert(r, v);
            continue;
        }
        let Some((rule, value)) = spec.rsplit_once('=') else {
            bail!("--assume {spec}: expected RULE=match or RULE=nomatch");
        };
        let v = match value.to_ascii_lowercase().as_str() {
            "match" | "matches" | "yes" | "true" => true,
            "nomatch" | "no-match" | "no" | "false" => false,
            _ => bail!("--assume {spec}: {value:?} is neither match nor nomatch"),
        };
        let r = nft
            .find_rule(rule.trim())
            .map_err(|e| anyhow::anyhow!("--assume {spec}: {e}"))?;
        out.insert(r, v);
    }
    Ok(out)
}

pub(super) fn assumptions(
    list: &[String],
    rulesets: &[&iptviz::model::Ruleset],
) -> anyhow::Result<HashMap<iptviz::trace::RuleRef, bool>> {
    let mut out = HashMap::new();
    for spec in list {
        let mut first_err = None;
        let mut found = false;
        for rs in rulesets {
            match iptviz::trace::parse_assumption(rs, spec) {
                Ok((r, v)) => {
                    out.insert(r, v);
                    found = true;
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if !found && let Some(e) = first_err {
            return Err(e.into());
        }
    }
    Ok(out)
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

fn parse_iface_addrs(list: &[String]) -> anyhow::Result<HashMap<String, Vec<IpAddr>>> {
    let mut m: HashMap<String, Vec<IpAddr>> = HashMap::new();
    for item in list {
        let Some((name, addr)) = item.split_once('=') else {
            bail!("--iface-addr: expected NAME=ADDR, got {item:?}");
        };
        let a = addr
            .parse::<IpAddr>()
            .with_context(|| format!("--iface-addr {name}: not an address: {addr:?}"))?;
        m.entry(name.to_string()).or_default().push(a);
    }
    Ok(m)
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
        let (Some(src), Some(dst)) = (self.src, self.dst) else {
            bail!("--src and --dst are needed (or --packets FILE, or --pcap CAPTURE)");
        };
        if src.is_ipv4() != dst.is_ipv4() {
            bail!("--src and --dst must be of the same address family");
        }
        let mut p = Packet::new(proto, src, dst);
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
        p.ttl = self.ttl;
        p.uid = self.uid;
        p.gid = self.gid;
        if let Some(m) = &self.src_mac {
            p.src_mac =
                Some(parse_mac(m).with_context(|| format!("--src-mac: not a MAC address: {m:?}"))?);
        }
        self.details
            .details()
            .apply(&mut p, "--")
            .map_err(anyhow::Error::msg)?;
        Ok(p)
    }

    fn options(&self) -> anyhow::Result<TraceOptions> {
        let iface_addrs = parse_iface_addrs(&self.iface_addr)?;
        let mut local = self.local.clone();
        for a in iface_addrs.values().flatten() {
            if !local.contains(a) {
                local.push(*a);
            }
        }
        let direction = self
            .direction
            .as_deref()
            .map(str::parse::<Direction>)
            .transpose()?;
        let routing = self.routing()?;
        if let Some(rt) = &routing {
            for a in rt.local_addrs() {
                if !local.contains(&a) {
                    local.push(a);
                }
            }
            if let Some(d @ (Direction::In | Direction::Forward)) = direction {
                bail!(
                    "--direction {} and --routes/--sysctl/--join: the routing step decides between INPUT and FORWARD; drop --direction (it may only say `out`)",
                    if d == Direction::In { "in" } else { "forward" }
                );
            }
        }
        self.check_direction(direction, &local)?;
        Ok(TraceOptions {
            local,
            direction,
            ipsets: parse_ipsets(&self.ipset)?,
            random: if self.skip_random {
                RandomChoice::Skip
            } else {
                RandomChoice::Take
            },
            overrides: HashMap::new(),
            matched_only: self.matched_only,
            connection: None,
            iface_addrs,
            max_steps: Some(self.max_steps),
            routing,
        })
    }

    /// The routing step's inputs, when any of --routes, --sysctl, --join is given.
    fn routing(&self) -> anyhow::Result<Option<std::sync::Arc<Routing>>> {
        if self.routes.is_none() && self.sysctl.is_empty() && self.join.is_empty() {
            return Ok(None);
        }
        let mut rt = Routing::default();
        let mut seen: HashMap<String, String> = HashMap::new();
        for s in &self.sysctl {
            rt.sysctls.set(s)?;
            // `set` accepted it, so it has a `=`.
            let (k, v) = s.split_once('=').unwrap_or((s, ""));
            let k = k.trim().replace('/', ".");
            let v = v.trim().to_string();
            if let Some(old) = seen.insert(k.clone(), v.clone())
                && old != v
            {
                bail!("--sysctl {k} given twice, as {old} and {v}: say which");
            }
        }
        for g in &self.join {
            if !g.is_multicast() {
                bail!("--join {g}: not a multicast group");
            }
        }
        rt.joined = self.join.clone();
        if let Some(path) = &self.routes {
            let name = path.display().to_string();
            let text = if name == "-" {
                if self.packets.as_deref() == Some("-")
                    || self.pcap.as_deref() == Some("-")
                    || self.input.file.as_deref() == Some("-")
                {
                    bail!(
                        "--routes - and the rules or packets cannot both come from standard input"
                    );
                }
                std::io::read_to_string(std::io::stdin()).context("cannot read standard input")?
            } else {
                std::fs::read_to_string(path).with_context(|| format!("cannot read {name}"))?
            };
            let v6 = self.src.is_some_and(|a| a.is_ipv6());
            rt.table =
                Some(RouteTable::parse(&name, &text, v6).map_err(|e| anyhow::anyhow!("{e}"))?);
        }
        Ok(Some(std::sync::Arc::new(rt)))
    }
}

impl TraceArgs {
    /// Refuses a --direction the other flags contradict (one of them
    /// would otherwise be silently ignored).
    fn check_direction(&self, d: Option<Direction>, local: &[IpAddr]) -> anyhow::Result<()> {
        let Some(d) = d else { return Ok(()) };
        let is_local = |a: &IpAddr| local.contains(a) || a.is_loopback();
        match d {
            Direction::Out if self.in_iface.is_some() => bail!(
                "--direction out is a packet this host sends: it arrives on no interface, drop --in"
            ),
            Direction::In if self.out_iface.is_some() => bail!(
                "--direction in is a packet for this host: it leaves by no interface, drop --out"
            ),
            Direction::Forward if self.dst.as_ref().is_some_and(is_local) => bail!(
                "--direction forward, but the destination {} is one of this host's addresses (--local, --iface-addr, loopback): the kernel delivers it locally",
                self.dst.map(|a| a.to_string()).unwrap_or_default()
            ),
            _ => Ok(()),
        }
    }
}

/// Traces `first` as the first packet of its connection, then the packet
/// asked for: a later one the same way, or the reply, with the
/// connection's NAT bindings.
fn follow_up(
    tracer: &Tracer<'_>,
    first: &Packet,
    mut opts: TraceOptions,
    reply: bool,
) -> anyhow::Result<Trace> {
    let t0 = tracer.trace(first, &opts);
    if let Some(why) = &t0.stopped {
        bail!("the connection's first packet ({}): {why}", t0.input);
    }
    if t0.verdict != Verdict::Accept {
        let at = t0.hooks.last().map(|h| h.chain()).unwrap_or("?");
        bail!(
            "the connection's first packet ({}) gets {} in {at}: there is no connection to follow",
            t0.input,
            t0.verdict
        );
    }
    let conn = t0.connection();
    let mut p = first.clone();
    p.state = CtState::Established;
    if reply {
        p.src = conn.reply.src;
        p.dst = conn.reply.dst;
        p.sport = conn.reply.sport;
        p.dport = conn.reply.dport;
        p.icmp.0 = match (p.proto, p.icmp.0) {
            (1, 8) => 0,
            (58, 128) => 129,
            (_, t) => t,
        };
        if p.proto == 6 {
            p.tcp_flags = iptviz::trace::tcp_flags::SYN | iptviz::trace::tcp_flags::ACK;
        }
        p.uid = None;
        p.gid = None;
        // The reply goes back the way the first packet came.
        (p.in_iface, p.out_iface, opts.direction) = match t0.route {
            // The routing step may have chosen the way out (--routes).
            Route::Forward => (
                first.out_iface.clone().or(t0.output.out_iface.clone()),
                first.in_iface.clone(),
                Some(Direction::Forward),
            ),
            Route::Local => (None, first.in_iface.clone(), Some(Direction::Out)),
            Route::Output => (first.out_iface.clone(), None, Some(Direction::In)),
        };
    } else if p.proto == 6 {
        p.tcp_flags = iptviz::trace::tcp_flags::ACK;
    }
    opts.connection = Some(conn);
    let mut t = tracer.trace(&p, &opts);
    let ports = first.has_ports();
    t.notes.insert(
        0,
        format!(
            "the connection of {}: replies come from {} to {}",
            t0.input,
            endpoint(conn.reply.src, conn.reply.sport, ports),
            endpoint(conn.reply.dst, conn.reply.dport, ports),
        ),
    );
    Ok(t)
}

fn endpoint(a: IpAddr, port: u16, ports: bool) -> String {
    match (a, ports) {
        (IpAddr::V6(a), true) => format!("[{a}]:{port}"),
        (a, true) => format!("{a}:{port}"),
        (a, false) => a.to_string(),
    }
}

/// The assumptions given for rules the walk reached and decided without
/// them (they name a rule whose tests the packet settles).
fn unused_assumptions<'a>(
    rs: &iptviz::model::Ruleset,
    t: &Trace,
    given: &'a HashMap<iptviz::trace::RuleRef, bool>,
) -> Vec<&'a iptviz::trace::RuleRef> {
    let mut out: Vec<&iptviz::trace::RuleRef> = given
        .keys()
        .filter(|r| {
            let steps: Vec<_> = t
                .steps
                .iter()
                .filter(|s| {
                    s.rule == Some(r.rule)
                        && rs.tables[s.table].name == r.table
                        && rs.tables[s.table].chains[s.chain].name == r.chain
                })
                .collect();
            !steps.is_empty()
                && !steps
                    .iter()
                    .any(|s| s.notes.iter().any(|n| n.contains("by --assume")))
        })
        .collect();
    out.sort_by(|a, b| (&a.table, &a.chain, a.rule).cmp(&(&b.table, &b.chain, b.rule)));
    out
}

/// `rules.txt: tcp 10.0.0.1:40000 -> 10.0.0.2:22 NEW: ACCEPT, delivered locally`
fn title(name: &str, t: &Trace) -> String {
    let outcome = match (t.verdict, t.route) {
        _ if t.stopped.is_some() => "stopped before a verdict".to_string(),
        (Verdict::Accept, Route::Local) => "ACCEPT, delivered locally".to_string(),
        (Verdict::Accept, Route::Forward) => "ACCEPT, forwarded".to_string(),
        (Verdict::Accept, Route::Output) => "ACCEPT, sent".to_string(),
        (v, _) => v.to_string(),
    };
    format!("{name}: {}: {outcome}", t.input)
}

/// The picked input's rules with the nft tables of the other inputs added
/// (`--live` reads `iptables-save`, `ip6tables-save` and `nft -j list
/// ruleset` apart: a packet on a mixed host walks the iptables tables of its
/// family and the native nft tables together); `None` when there are none
/// to add.
fn with_nft_of_others(inputs: &[Input], picked: &Input) -> Option<iptviz::model::Ruleset> {
    let others: Vec<&Input> = inputs
        .iter()
        .filter(|i| !std::ptr::eq(*i, picked) && !i.parsed.ruleset.nft.is_empty())
        .collect();
    if others.is_empty() {
        return None;
    }
    let mut rs = picked.parsed.ruleset.clone();
    for o in others {
        rs.nft
            .tables
            .extend(o.parsed.ruleset.nft.tables.iter().cloned());
    }
    Some(rs)
}

/// Runs `iptviz trace`.
pub fn trace(a: TraceArgs) -> anyhow::Result<ExitCode> {
    if a.packets.is_some() || a.pcap.is_some() {
        return batch::run(&a);
    }
    let pkt = a.packet()?;
    let opts = a.options()?;
    let inputs = match a.input.load(false) {
        Ok(i) => i,
        Err(e) => return Ok(e.report()),
    };
    let want_v6 = pkt.src.is_ipv6();
    let Some(input) = inputs
        .iter()
        .find(|i| {
            !i.parsed.ruleset.tables.is_empty()
                && (i.parsed.ruleset.family == iptviz::model::Family::Ipv6) == want_v6
        })
        .or(inputs.first())
    else {
        bail!("no rules were read");
    };
    super::common::report_problems(&input.parsed.problems, &input.name, true);
    let merged = with_nft_of_others(&inputs, input);
    let rs = merged.as_ref().unwrap_or(&input.parsed.ruleset);
    let mut opts = opts;
    // nft tables (from `nft list ruleset`) are walked beside the iptables ones.
    let nft = if rs.nft.is_empty() {
        None
    } else {
        Some(NftRules::from_model(&rs.nft).context("reading the nft rules for the trace")?)
    };
    opts.overrides = match &nft {
        None => assumptions(&a.assume, &[rs])?,
        Some(n) => nft_assumptions(&a.assume, rs, n)?,
    };
    let format = if a.json {
        TraceFormat::Json
    } else {
        a.format.unwrap_or(TraceFormat::Text)
    };
    if matches!(format, TraceFormat::Jsonl | TraceFormat::Counters) {
        bail!("-f jsonl and -f counters are about many packets: use them with --packets or --pcap");
    }
    if a.path_only && !matches!(format, TraceFormat::Svg | TraceFormat::Dot) {
        bail!("--path-only is a drawing: use it with -f svg or -f dot");
    }
    let tracer = match &nft {
        Some(n) => Tracer::with_nft(rs, n),
        None => Tracer::new(rs),
    };
    let given = opts.overrides.clone();
    let t = if a.established || a.reply {
        follow_up(&tracer, &pkt, opts, a.reply)?
    } else {
        tracer.trace(&pkt, &opts)
    };
    for r in unused_assumptions(rs, &t, &given)
        .into_iter()
        .filter(|_| nft.is_none())
    {
        eprintln!(
            "iptviz: --assume {}:{}#{}: the packet decides this rule by itself; the assumption changed nothing",
            r.table,
            r.chain,
            r.rule + 1
        );
    }
    let mut out = open_output(a.output.as_ref())?;
    let view = |t: &Trace| match &nft {
        Some(n) => t.view_nft(rs, n),
        None => t.view(rs),
    };
    match format {
        TraceFormat::Text => out.write_all(render_text(&view(&t)).as_bytes())?,
        TraceFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &view(&t))?;
            writeln!(out)?;
        }
        TraceFormat::Jsonl | TraceFormat::Counters => unreachable!("refused above"),
        TraceFormat::Svg | TraceFormat::Dot => {
            let title = title(&input.name, &t);
            let base = ViewOptions {
                collapse: collapse_rules(&a.collapse)?,
                rules: a.rules,
                title: title.clone(),
                ..Default::default()
            };
            let v = match &nft {
                None if a.path_only => path_only_view(rs, &t, &title),
                None => trace_view(rs, &t, &base)?,
                // nft tables are drawn through their drawing tables, and
                // the walk is moved onto them.
                Some(n) => {
                    let drawn = iptviz::nft::project::with_drawn_tables(rs.clone());
                    let d = t.on_drawing(&drawn, rs.tables.len(), n);
                    if a.path_only {
                        path_only_view_named(&drawn, &d.trace, &title, &d)
                    } else {
                        trace_view_named(&drawn, &d.trace, &base, &d)?
                    }
                }
            };
            let f = if format == TraceFormat::Svg {
                Format::Svg
            } else {
                Format::Dot
            };
            out.write_all(render(&v, f, a.layout.choice())?.as_bytes())?;
        }
    }
    out.flush()?;
    if let Some(why) = &t.stopped {
        // Drawings and JSON carry it too; say it where a person looks.
        if format != TraceFormat::Text {
            eprintln!("iptviz: {}: {why}", input.name);
        }
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use iptviz::parse::{ParseOptions, parse_str};

    fn input(name: &str, text: &str) -> Input {
        Input {
            name: name.into(),
            parsed: parse_str(text, &ParseOptions::lenient(name)).expect("parses"),
        }
    }

    #[test]
    fn live_trace_walks_the_nft_listing_beside_the_iptables_tables() {
        let ipt = input(
            "iptables-save",
            "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n",
        );
        let nft = input(
            "nft -j list ruleset",
            "table inet native {\n chain input {\n  type filter hook input priority 10; policy drop;\n }\n}\n",
        );
        let inputs = vec![ipt, nft];
        let merged = with_nft_of_others(&inputs, &inputs[0]).expect("the nft tables are added");
        assert_eq!(merged.tables.len(), 1, "the iptables table stays");
        assert_eq!(merged.nft.tables.len(), 1);
        assert_eq!(&*merged.nft.tables[0].name, "native");
        assert!(
            with_nft_of_others(&inputs[..1], &inputs[0]).is_none(),
            "nothing to add from a lone input"
        );
    }
}
