//! Scenario tests of the packet walk: one small ruleset per netfilter rule
//! of thumb from NETFILTER.md.

use iptviz::model::Ruleset;
use iptviz::parse::{ParseOptions, parse_str};
use iptviz::trace::{Action, Packet, RandomChoice, Route, Trace, TraceOptions, Tracer, Verdict};

fn rules(text: &str) -> Ruleset {
    parse_str(text, &ParseOptions::strict("test"))
        .expect("parses")
        .ruleset
}

fn tcp(src: &str, dst: &str, dport: u16) -> Packet {
    let mut p = Packet::new(6, src.parse().unwrap(), dst.parse().unwrap());
    p.sport = 40000;
    p.dport = dport;
    p.in_iface = Some("eth0".into());
    p
}

fn local(addrs: &[&str]) -> TraceOptions {
    TraceOptions {
        local: addrs.iter().map(|a| a.parse().unwrap()).collect(),
        ..Default::default()
    }
}

/// `p` as the host sends it out of eth0, with `addrs` as its addresses.
fn sent_by_host(mut p: Packet, addrs: &[&str]) -> (Packet, TraceOptions) {
    p.in_iface = None;
    p.out_iface = Some("eth0".into());
    let opts = TraceOptions {
        direction: Some(iptviz::trace::Direction::Out),
        ..local(addrs)
    };
    (p, opts)
}

/// (table, chain, 1-based rule) of every matched rule; rule 0 = policy.
fn hits(rs: &Ruleset, t: &Trace) -> Vec<String> {
    t.steps
        .iter()
        .filter(|s| s.matched && !matches!(s.action, Action::FallOff))
        .map(|s| {
            let table = &rs.tables[s.table];
            format!(
                "{}:{}:{}",
                table.name,
                table.chains[s.chain].name,
                s.rule.map(|r| r + 1).unwrap_or(0)
            )
        })
        .collect()
}

const GOTO: &str = "*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:A - [0:0]
:B - [0:0]
-A INPUT -j A
-A INPUT -p tcp --dport 22 -j ACCEPT
-A A -g B
-A A -j DROP
-A B -p tcp --dport 22 -j RETURN
-A B -j DROP
COMMIT
";

#[test]
fn return_from_goto_goes_to_the_callers_caller() {
    let rs = rules(GOTO);
    let t = Tracer::new(&rs).trace(&tcp("192.0.2.1", "192.0.2.2", 22), &local(&["192.0.2.2"]));
    // RETURN in B skips the rest of A (the DROP) and resumes in INPUT.
    assert_eq!(
        hits(&rs, &t),
        [
            "filter:INPUT:1",
            "filter:A:1",
            "filter:B:1",
            "filter:INPUT:2"
        ]
    );
    assert_eq!(t.verdict, Verdict::Accept);
    assert_eq!(t.route, Route::Local);
}

#[test]
fn policy_applies_when_builtin_falls_off() {
    let rs = rules(GOTO);
    let t = Tracer::new(&rs).trace(&tcp("192.0.2.1", "192.0.2.2", 80), &local(&["192.0.2.2"]));
    assert_eq!(
        hits(&rs, &t),
        ["filter:INPUT:1", "filter:A:1", "filter:B:2"]
    );
    assert_eq!(t.verdict, Verdict::Drop);
    assert!(t.decided_by.is_some());
}

const NAT: &str = "*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -p tcp --dport 8080 -j MARK --set-xmark 0x10/0xff
-A PREROUTING -m mark --mark 0x10/0xff -j LOG
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d 198.51.100.1/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.0.0.5:80
-A POSTROUTING -m mark --mark 0x10/0xff -j MASQUERADE
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp --dport 8080 -j ACCEPT
-A FORWARD -d 10.0.0.5/32 -p tcp --dport 80 -m conntrack --ctstate DNAT -j ACCEPT
COMMIT
";

#[test]
fn dnat_before_routing_turns_input_into_forward() {
    let rs = rules(NAT);
    let mut p = tcp("203.0.113.9", "198.51.100.1", 8080);
    p.out_iface = Some("eth1".into());
    let t = Tracer::new(&rs).trace(&p, &local(&["198.51.100.1"]));
    assert_eq!(t.route, Route::Forward);
    assert_eq!(
        hits(&rs, &t),
        [
            "mangle:PREROUTING:1",
            "mangle:PREROUTING:2",
            "mangle:PREROUTING:0",
            "nat:PREROUTING:1",
            "mangle:FORWARD:0",
            "filter:FORWARD:1",
            "mangle:POSTROUTING:0",
            "nat:POSTROUTING:1",
        ]
    );
    assert_eq!(t.output.dst.to_string(), "10.0.0.5");
    assert_eq!(t.output.dport, 80);
    assert_eq!(t.output.mark, 0x10);
    assert_eq!(t.verdict, Verdict::Accept);
}

#[test]
fn nat_is_skipped_for_established_packets() {
    let rs = rules(NAT);
    let mut p = tcp("203.0.113.9", "198.51.100.1", 8080);
    p.state = iptviz::trace::CtState::Established;
    let t = Tracer::new(&rs).trace(&p, &local(&["198.51.100.1"]));
    assert_eq!(t.route, Route::Local);
    assert!(hits(&rs, &t).iter().all(|h| !h.starts_with("nat:")));
    assert_eq!(t.verdict, Verdict::Accept);
}

#[test]
fn locally_generated_packets_take_output() {
    let rs = rules(NAT);
    let mut p = tcp("198.51.100.1", "203.0.113.9", 443);
    p.out_iface = Some("eth0".into());
    let t = Tracer::new(&rs).trace(&p, &local(&["198.51.100.1"]));
    assert_eq!(t.route, Route::Output);
    assert_eq!(
        t.hooks.iter().map(|h| h.chain()).collect::<Vec<_>>(),
        ["OUTPUT", "POSTROUTING"]
    );
}

const KUBE: &str = "*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:SVC - [0:0]
:SEP1 - [0:0]
:SEP2 - [0:0]
-A PREROUTING -d 10.96.0.10/32 -p udp -m udp --dport 53 -j SVC
-A SVC -m statistic --mode random --probability 0.50000000000 -j SEP1
-A SVC -j SEP2
-A SEP1 -p udp -j DNAT --to-destination 10.1.0.1:53
-A SEP2 -p udp -j DNAT --to-destination 10.1.0.2:53
COMMIT
";

#[test]
fn random_branches_are_reported_with_probabilities() {
    let rs = rules(KUBE);
    let mut p = Packet::new(
        17,
        "10.2.0.9".parse().unwrap(),
        "10.96.0.10".parse().unwrap(),
    );
    p.dport = 53;
    let tr = Tracer::new(&rs);
    let t = tr.trace(&p, &TraceOptions::default());
    assert_eq!(t.output.dst.to_string(), "10.1.0.1");
    let note = t.steps.iter().flat_map(|s| s.notes.iter()).next().unwrap();
    assert!(note.contains("probability 0.50000"), "{note}");
    let skip = TraceOptions {
        random: RandomChoice::Skip,
        ..Default::default()
    };
    assert_eq!(tr.trace(&p, &skip).output.dst.to_string(), "10.1.0.2");
}

#[test]
fn unknown_ipset_is_an_assumption_and_can_be_given() {
    let rs = rules(
        "*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m set --match-set bad src -j DROP
COMMIT
",
    );
    let p = tcp("192.0.2.1", "192.0.2.2", 22);
    let tr = Tracer::new(&rs);
    let t = tr.trace(&p, &local(&["192.0.2.2"]));
    assert_eq!(t.verdict, Verdict::Accept);
    assert!(t.steps[0].notes[0].contains("ipset bad"));
    let mut o = local(&["192.0.2.2"]);
    o.ipsets
        .insert("bad".into(), vec!["192.0.2.0/24".parse().unwrap()]);
    assert_eq!(tr.trace(&p, &o).verdict, Verdict::Drop);
}

#[test]
fn text_report_names_the_missing_part() {
    let rs = rules(GOTO);
    let t = Tracer::new(&rs).trace(&tcp("192.0.2.1", "192.0.2.2", 80), &local(&["192.0.2.2"]));
    let text = iptviz::trace::render_text(&t.view(&rs));
    assert!(text.contains("no match: --dport 22"), "{text}");
    assert!(text.contains("verdict DROP in INPUT"), "{text}");
}

/// Found by the kernel suite (home-user-complex.rules): `--ctorigsrcport`
/// was taken as an unknown option and assumed to match.
#[test]
fn conntrack_original_source_port_is_checked() {
    let rs = rules(
        "*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m conntrack --ctstate NEW --ctproto 17 --ctorigsrcport 68 --ctorigdstport 67 -j ACCEPT
COMMIT
",
    );
    let mut p = Packet::new(
        17,
        "192.0.2.1".parse().unwrap(),
        "192.0.2.2".parse().unwrap(),
    );
    p.sport = 53779;
    p.dport = 67;
    let tr = Tracer::new(&rs);
    assert_eq!(tr.trace(&p, &local(&["192.0.2.2"])).verdict, Verdict::Drop);
    p.sport = 68;
    assert_eq!(
        tr.trace(&p, &local(&["192.0.2.2"])).verdict,
        Verdict::Accept
    );
}

const LOOPBACK: &str = "*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -m state --state NEW -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -j ACCEPT
-A INPUT -j ACCEPT
-A OUTPUT -d 10.96.0.1/32 -p tcp -j DNAT --to-destination 192.0.2.2:8080
-A POSTROUTING -o lo -j ACCEPT
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A OUTPUT -o eth0 -j ACCEPT
COMMIT
";

/// Found by the kernel suite (local packets, all seven IPv4 rulesets): a
/// packet the host sends to one of its own addresses leaves by `lo` and
/// comes back in through PREROUTING and INPUT, where the nat table is not
/// walked again and the raw table sees the connection already tracked; the
/// trace stopped after POSTROUTING, as if the packet had gone out.
#[test]
fn packets_to_this_host_loop_back_through_lo() {
    let rs = rules(LOOPBACK);
    let (p, opts) = sent_by_host(tcp("192.0.2.2", "192.0.2.2", 22), &["192.0.2.2"]);
    let t = Tracer::new(&rs).trace(&p, &opts);
    assert_eq!(t.route, Route::Local);
    assert_eq!(t.verdict, Verdict::Accept);
    assert_eq!(
        t.hooks.iter().map(|h| h.chain()).collect::<Vec<_>>(),
        ["OUTPUT", "POSTROUTING", "PREROUTING", "INPUT"]
    );
    assert_eq!(
        hits(&rs, &t),
        [
            "raw:OUTPUT:0",
            "nat:OUTPUT:0",
            "filter:OUTPUT:0",
            "nat:POSTROUTING:1",
            "raw:PREROUTING:1",
            "filter:INPUT:1",
        ]
    );
}

/// Found by the kernel suite (docker and kube-proxy rulesets): DNAT in nat
/// OUTPUT to one of the host's own addresses sends the packet by `lo` from
/// filter OUTPUT on; the trace kept the interface it was given.
#[test]
fn dnat_in_output_to_this_host_reroutes_by_lo() {
    let rs = rules(LOOPBACK);
    let (p, opts) = sent_by_host(tcp("192.0.2.2", "10.96.0.1", 443), &["192.0.2.2"]);
    let t = Tracer::new(&rs).trace(&p, &opts);
    assert_eq!(t.route, Route::Local);
    assert_eq!(
        hits(&rs, &t),
        [
            "raw:OUTPUT:0",
            "nat:OUTPUT:1",
            // filter OUTPUT -o eth0 does not match: the route is now lo.
            "filter:OUTPUT:0",
            "nat:POSTROUTING:1",
            "raw:PREROUTING:1",
            "filter:INPUT:1",
        ]
    );
    assert_eq!(t.output.dst.to_string(), "192.0.2.2");
    assert_eq!(t.output.dport, 8080);
    // The same packet to an address elsewhere leaves by the interface given.
    let mut away = p.clone();
    away.dst = "198.51.100.9".parse().unwrap();
    let t = Tracer::new(&rs).trace(&away, &opts);
    assert_eq!(t.route, Route::Output);
    assert_eq!(
        hits(&rs, &t),
        [
            "raw:OUTPUT:0",
            "nat:OUTPUT:0",
            "filter:OUTPUT:1",
            "nat:POSTROUTING:0"
        ]
    );
}

const SERVER6: &str = "*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m rt --rt-type 0 -j DROP
-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 135 -m hl --hl-eq 255 -j ACCEPT
-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 135 -j DROP
-A INPUT -p tcp -m tcp --dport 25 -j ACCEPT
-A FORWARD -m hl --hl-lt 64 -j ACCEPT
-A FORWARD -j DROP
COMMIT
";

fn v6(proto: u8, src: &str, dst: &str) -> Packet {
    let mut p = Packet::new(proto, src.parse().unwrap(), dst.parse().unwrap());
    p.in_iface = Some("eth0".into());
    p
}

/// Found by the kernel suite (ipv6-mailserver, server-ipv6): `-m rt` was an
/// unknown module assumed to match, so every packet hit the routing-header
/// DROP; a packet without that extension header never matches it.
#[test]
fn ipv6_extension_header_matches_need_the_header() {
    let rs = rules(SERVER6);
    let mut p = v6(6, "2001:db8::7", "2001:db8::1");
    p.dport = 25;
    let t = Tracer::new(&rs).trace(&p, &local(&["2001:db8::1"]));
    assert_eq!(hits(&rs, &t), ["filter:INPUT:4"]);
    assert_eq!(t.verdict, Verdict::Accept);
}

/// Found by the kernel suite (ipv6-mailserver): `-m hl` was assumed to
/// match; neighbour discovery rules want hop limit 255 and a packet with
/// the usual 64 passes them by.
#[test]
fn hop_limit_is_compared() {
    let rs = rules(SERVER6);
    let mut p = v6(58, "2001:db8::7", "2001:db8::1");
    p.icmp = (135, 0);
    let tr = Tracer::new(&rs);
    let opts = local(&["2001:db8::1"]);
    assert_eq!(hits(&rs, &tr.trace(&p, &opts)), ["filter:INPUT:3"]);
    p.ttl = 255;
    assert_eq!(hits(&rs, &tr.trace(&p, &opts)), ["filter:INPUT:2"]);
}

/// Forwarding takes one off the hop limit (TTL) before FORWARD, and drops a
/// packet whose TTL runs out before FORWARD sees it (checked against the
/// kernel with `-m ttl --ttl-eq 63` in FORWARD and POSTROUTING).
#[test]
fn forwarding_decrements_the_ttl_before_forward() {
    let rs = rules(SERVER6);
    let mut p = v6(17, "2001:db8::7", "2001:db8:9::9");
    p.out_iface = Some("eth1".into());
    let tr = Tracer::new(&rs);
    let opts = local(&["2001:db8::1"]);
    let t = tr.trace(&p, &opts);
    assert_eq!(hits(&rs, &t), ["filter:FORWARD:1"]);
    assert_eq!(t.output.ttl, 63);
    p.ttl = 1;
    let t = tr.trace(&p, &opts);
    assert!(hits(&rs, &t).is_empty());
    assert_eq!(t.verdict, Verdict::Drop);
    assert_eq!(t.decided_by, None);
    assert_eq!(t.hooks.len(), 1);
    assert!(t.notes.iter().any(|n| n.contains("TTL")), "{:?}", t.notes);
}

/// Found by the kernel suite (every IPv6 ruleset): the kernel does not
/// forward a packet from a link-local address; it never reaches FORWARD.
#[test]
fn ipv6_link_local_sources_are_not_forwarded() {
    let rs = rules(SERVER6);
    let mut p = v6(17, "fe80::5", "2001:db8:9::9");
    p.out_iface = Some("eth1".into());
    let t = Tracer::new(&rs).trace(&p, &local(&["2001:db8::1"]));
    assert_eq!(t.verdict, Verdict::Drop);
    assert_eq!(t.route, Route::Forward);
    assert_eq!(
        t.hooks.iter().map(|h| h.chain()).collect::<Vec<_>>(),
        ["PREROUTING"]
    );
    assert!(t.notes.iter().any(|n| n.contains("link-local")));
}

const CONN: &str = "*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d 10.96.0.10/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.244.1.5:8080
-A POSTROUTING -s 203.0.113.0/24 -o eth1 -j SNAT --to-source 192.0.2.1
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m conntrack --ctstate ESTABLISHED --ctdir REPLY -s 10.244.1.5/32 -j ACCEPT
-A FORWARD -m conntrack --ctstate ESTABLISHED,DNAT --ctorigdst 10.96.0.10 -d 10.244.1.5/32 -j ACCEPT
-A FORWARD -d 10.244.1.5/32 -m conntrack --ctstate NEW -j ACCEPT
COMMIT
";

/// Found by the kernel suite (established packets of the docker, kube-proxy
/// and libvirt rulesets): packets after the first skip the nat table but
/// still get the connection's bindings, both ways. Without them the reply
/// to a SNAT'd connection, addressed to this host, was taken for a packet
/// for this host instead of being rewritten back and forwarded.
#[test]
fn later_packets_get_the_connections_nat_bindings() {
    let rs = rules(CONN);
    let tr = Tracer::new(&rs);
    let opts = local(&["192.0.2.1"]);
    let mut syn = tcp("203.0.113.9", "10.96.0.10", 80);
    syn.out_iface = Some("eth1".into());
    let first = tr.trace(&syn, &opts);
    assert_eq!(first.verdict, Verdict::Accept);
    let conn = first.connection();
    assert_eq!(conn.reply.src.to_string(), "10.244.1.5");
    assert_eq!(conn.reply.sport, 8080);
    assert_eq!(conn.reply.dst.to_string(), "192.0.2.1");
    assert!(conn.dnat() && conn.snat());
    let opts = TraceOptions {
        connection: Some(conn),
        ..opts
    };

    // The SYN-ACK comes back to the SNAT address: rewritten to the client
    // in PREROUTING, forwarded, its source turned back into the VIP.
    let mut back = tcp("10.244.1.5", "192.0.2.1", 40000);
    back.sport = 8080;
    back.in_iface = Some("eth1".into());
    back.out_iface = Some("eth0".into());
    back.state = iptviz::trace::CtState::Established;
    let t = tr.trace(&back, &opts);
    assert_eq!(t.route, Route::Forward);
    assert_eq!(hits(&rs, &t), ["filter:FORWARD:1"]);
    assert_eq!(t.output.dst.to_string(), "203.0.113.9");
    assert_eq!(t.output.src.to_string(), "10.96.0.10");
    assert_eq!(t.output.sport, 80);

    // The client's ACK: DNAT'd to the backend without the nat rules.
    let mut ack = syn.clone();
    ack.state = iptviz::trace::CtState::Established;
    let t = tr.trace(&ack, &opts);
    assert_eq!(hits(&rs, &t), ["filter:FORWARD:2"]);
    assert_eq!(t.output.dst.to_string(), "10.244.1.5");
    assert_eq!(t.output.src.to_string(), "192.0.2.1");

    // Without the connection the reply looks like a packet for this host.
    let bare = TraceOptions {
        connection: None,
        ..opts
    };
    assert_eq!(tr.trace(&back, &bare).route, Route::Local);
}

const MASQ: &str = "*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -s 192.168.122.0/24 -p tcp -j MASQUERADE --to-ports 1024-65535
-A POSTROUTING -o lo -j MASQUERADE
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT DROP [0:0]
-A OUTPUT -m owner --uid-owner 0-99 -j ACCEPT
-A OUTPUT -m owner ! --uid-owner 104 -o eth1 -j ACCEPT
COMMIT
";

/// Found by the kernel suite's conntrack check (libvirt rulesets):
/// MASQUERADE --to-ports 1024-65535 keeps a source port that is already in
/// the range; the trace gave every connection port 1024. With the
/// interface's address known, the new source is shown and checked too.
#[test]
fn masquerade_keeps_ports_in_range_and_takes_the_interface_address() {
    let rs = rules(MASQ);
    let mut p = tcp("192.168.122.7", "198.51.100.9", 443);
    p.out_iface = Some("eth1".into());
    let mut opts = local(&["192.0.2.1"]);
    opts.iface_addrs
        .insert("eth1".into(), vec!["192.0.2.1".parse().unwrap()]);
    let tr = Tracer::new(&rs);
    let t = tr.trace(&p, &opts);
    assert_eq!(t.output.sport, 40000);
    assert_eq!(t.output.src.to_string(), "192.0.2.1");
    let conn = t.connection();
    assert_eq!(conn.reply.dst.to_string(), "192.0.2.1");
    assert_eq!(conn.reply.dport, 40000);
    // A port below the range gets one from it (the kernel picks which).
    p.sport = 80;
    let t = tr.trace(&p, &opts);
    assert_eq!(t.output.sport, 1024);
    let nat = t
        .steps
        .iter()
        .find_map(|s| match &s.action {
            Action::Nat { change, .. } => Some(change.clone()),
            _ => None,
        })
        .unwrap();
    assert!(nat.contains("one of the range"), "{nat}");
}

/// Found by the kernel suite's conntrack check (docker, kube-proxy, libvirt
/// rulesets): a packet the host sends to itself and masquerades on `lo`
/// gets the address of `lo` it was sent to as its source.
#[test]
fn masquerade_on_lo_takes_the_destination_address() {
    let rs = rules(MASQ);
    let mut p = Packet::new(
        17,
        "192.0.2.1".parse().unwrap(),
        "10.0.0.7".parse().unwrap(),
    );
    p.sport = 5000;
    p.dport = 53;
    p.uid = Some(0);
    let mut opts = TraceOptions {
        direction: Some(iptviz::trace::Direction::Out),
        ..local(&["192.0.2.1", "100.66.0.1", "10.0.0.7"])
    };
    opts.iface_addrs.insert(
        "lo".into(),
        vec!["100.66.0.1".parse().unwrap(), "10.0.0.7".parse().unwrap()],
    );
    let t = Tracer::new(&rs).trace(&p, &opts);
    assert_eq!(t.route, Route::Local);
    assert_eq!(t.output.src.to_string(), "10.0.0.7");
}

/// Found by the kernel suite (home-user-complex, packets the host sends):
/// `-m owner` was assumed to match; it compares the sending socket's user,
/// and never matches a packet without a local socket.
#[test]
fn owner_compares_the_sending_user() {
    let rs = rules(MASQ);
    let tr = Tracer::new(&rs);
    let (mut p, opts) = sent_by_host(tcp("192.0.2.1", "198.51.100.9", 443), &["192.0.2.1"]);
    let filter = |t: &Trace| -> Vec<String> {
        hits(&rs, t)
            .into_iter()
            .filter(|h| h.starts_with("filter:"))
            .collect()
    };
    p.uid = Some(0);
    assert_eq!(filter(&tr.trace(&p, &opts)), ["filter:OUTPUT:1"]);
    p.uid = Some(4242);
    let t = tr.trace(&p, &opts);
    assert_eq!(t.verdict, Verdict::Drop);
    p.out_iface = Some("eth1".into());
    assert_eq!(filter(&tr.trace(&p, &opts)), ["filter:OUTPUT:2"]);
    p.uid = Some(104);
    assert_eq!(tr.trace(&p, &opts).verdict, Verdict::Drop);
    // Unknown user: an assumption, said so.
    p.uid = None;
    let t = tr.trace(&p, &opts);
    assert!(
        t.steps
            .iter()
            .flat_map(|s| &s.notes)
            .any(|n| n.contains("not known")),
        "{:?}",
        t.steps
    );
}
