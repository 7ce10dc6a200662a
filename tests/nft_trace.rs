//! Tracing through nft rules without a kernel: the ordering and NAT rules
//! the kernel oracle (`kernel_nft_trace.rs`) found, kept as small cases,
//! and the corpus read from text and from JSON walking alike.

mod common;

use iptviz::model::Ruleset;
use iptviz::trace::nft::NftRules;
use iptviz::trace::{Action, Direction, Packet, Route, TraceOptions, Tracer, Verdict};

fn rules(text: &str) -> NftRules {
    let (model, problems) = iptviz::nft::parse::parse_text(text);
    assert!(
        problems
            .iter()
            .all(|p| p.severity != iptviz::Severity::Error),
        "{problems:?}"
    );
    NftRules::from_model(&model).expect("compiles")
}

fn tcp(src: &str, dst: &str, dport: u16, iif: &str) -> Packet {
    let mut p = Packet::new(6, src.parse().unwrap(), dst.parse().unwrap());
    p.sport = 40000;
    p.dport = dport;
    p.in_iface = Some(iif.into());
    p.out_iface = Some("eth1".into());
    p
}

fn local(addrs: &[&str]) -> TraceOptions {
    TraceOptions {
        local: addrs.iter().map(|a| a.parse().unwrap()).collect(),
        ..Default::default()
    }
}

/// (chain, 1-based rule or 0 for the policy) of every matched step.
fn walked(tr: &iptviz::trace::Trace, nft: &NftRules) -> Vec<(String, usize)> {
    tr.steps
        .iter()
        .filter(|s| s.matched && !matches!(s.action, Action::FallOff))
        .map(|s| {
            (
                nft.tables[s.table].chains[s.chain].name.clone(),
                s.rule.map_or(0, |r| r + 1),
            )
        })
        .collect()
}

#[test]
fn nat_chains_run_at_the_nat_core_slot_and_stop_after_a_binding() {
    let nft = rules(
        "table ip t {
            chain early_nat { type nat hook prerouting priority -110; policy accept;
                tcp dport 80 dnat to 10.0.0.5 }
            chain late_nat { type nat hook prerouting priority -100; policy accept;
                tcp dport 80 dnat to 10.0.0.6 }
            chain filt { type filter hook prerouting priority -105; policy accept;
                counter }
        }",
    );
    let empty = Ruleset::default();
    let tr = Tracer::with_nft(&empty, &nft).trace(
        &tcp("192.0.2.1", "192.0.2.2", 80, "eth0"),
        &local(&["192.0.2.2"]),
    );
    // The filter chain at -105 runs before every nat chain (they all run
    // at -100, among themselves by priority), and the binding the first
    // one gives ends them.
    assert_eq!(
        walked(&tr, &nft),
        [
            ("filt".into(), 1),
            ("filt".into(), 0),
            ("early_nat".into(), 1)
        ]
    );
    assert_eq!(tr.output.dst.to_string(), "10.0.0.5");
    assert_eq!(tr.route, Route::Forward);
}

#[test]
fn equal_priorities_run_the_chain_registered_last_first() {
    let nft = rules(
        "table inet a { chain c { type filter hook input priority 0; policy accept; tcp dport 22 drop } }
         table inet b { chain c { type filter hook input priority 0; policy accept; tcp dport 22 accept } }",
    );
    let empty = Ruleset::default();
    let tr = Tracer::with_nft(&empty, &nft).trace(
        &tcp("192.0.2.1", "192.0.2.2", 22, "eth0"),
        &local(&["192.0.2.2"]),
    );
    // Table b came later: its chain runs first and accepts, then a's drops.
    let tables: Vec<&str> = tr
        .steps
        .iter()
        .filter(|s| s.matched)
        .map(|s| nft.tables[s.table].name.as_str())
        .collect();
    assert_eq!(tables, ["b", "a"]);
    assert_eq!(tr.verdict, Verdict::Drop);
}

#[test]
fn dnat_for_ipv4_in_an_inet_table_leaves_ipv6_packets_alone() {
    let nft = rules(
        "table inet t { chain pre { type nat hook prerouting priority dstnat; policy accept;
            tcp dport 8080 dnat ip to 10.9.0.5:443 } }",
    );
    let empty = Ruleset::default();
    let tr = Tracer::with_nft(&empty, &nft).trace(
        &tcp("2001:db8::1", "2001:db8::2", 8080, "eth0"),
        &local(&["2001:db8::2"]),
    );
    // The rule matches (the kernel reports it) and changes nothing.
    assert_eq!(walked(&tr, &nft)[0], ("pre".into(), 1));
    assert_eq!(tr.output.dst.to_string(), "2001:db8::2");
    assert_eq!(tr.output.dport, 8080);
    assert_eq!(tr.route, Route::Local);
}

#[test]
fn map_lookup_without_element_ends_the_rule() {
    let nft = rules(
        "table inet t {
            map marks { type inet_service : mark; elements = { 80 : 0x10 } }
            chain pre { type filter hook prerouting priority 0; policy accept;
                meta mark set tcp dport map @marks
                iifname vmap { \"eth9\" : drop } }
        }",
    );
    let empty = Ruleset::default();
    let tracer = Tracer::with_nft(&empty, &nft);
    let opts = local(&["192.0.2.2"]);
    let miss = tracer.trace(&tcp("192.0.2.1", "192.0.2.2", 443, "eth0"), &opts);
    assert_eq!(walked(&miss, &nft), [("pre".into(), 0)]);
    assert_eq!(miss.output.mark, 0);
    let hit = tracer.trace(&tcp("192.0.2.1", "192.0.2.2", 80, "eth0"), &opts);
    assert_eq!(walked(&hit, &nft)[0], ("pre".into(), 1));
    assert_eq!(hit.output.mark, 0x10);
    let dropped = tracer.trace(&tcp("192.0.2.1", "192.0.2.2", 80, "eth9"), &opts);
    assert_eq!(dropped.verdict, Verdict::Drop);
}

#[test]
fn concatenation_with_a_part_not_known_is_decided_by_the_known_parts() {
    let nft = rules(
        "table ip t {
            set svc { type ipv4_addr . inet_proto . inet_service; elements = { 10.9.0.5 . tcp . 443 } }
            chain fwd { type filter hook forward priority 0; policy drop;
                ip daddr . meta l4proto . th dport @svc accept }
        }",
    );
    let empty = Ruleset::default();
    // An echo request has no ports: `th dport` reads its checksum, which the
    // trace does not know; the protocol already rules the element out.
    let mut p = Packet::new(1, "192.0.2.1".parse().unwrap(), "10.9.0.5".parse().unwrap());
    p.icmp = (8, 0);
    let tr = Tracer::with_nft(&empty, &nft).trace(&p, &local(&["192.0.2.2"]));
    assert_eq!(tr.verdict, Verdict::Drop);
    assert!(
        tr.steps.iter().all(|s| s.notes.is_empty()),
        "{:?}",
        tr.steps
    );
}

#[test]
fn fib_route_back_without_routes_is_an_assumption() {
    let nft = rules(
        "table inet t { chain pre { type filter hook prerouting priority -150; policy accept;
            fib saddr . iif oif missing drop } }",
    );
    let empty = Ruleset::default();
    let tr = Tracer::with_nft(&empty, &nft).trace(
        &tcp("192.0.2.1", "192.0.2.2", 22, "eth0"),
        &local(&["192.0.2.2"]),
    );
    assert_eq!(tr.verdict, Verdict::Accept);
    let note = tr.steps[0].notes.join(" ");
    assert!(note.contains("no --routes"), "{note}");
    // `--assume` settles it the other way.
    let mut opts = local(&["192.0.2.2"]);
    opts.overrides
        .insert(nft.find_rule("inet t:pre#1").unwrap(), true);
    let tr =
        Tracer::with_nft(&empty, &nft).trace(&tcp("192.0.2.1", "192.0.2.2", 22, "eth0"), &opts);
    assert_eq!(tr.verdict, Verdict::Drop);
}

#[test]
fn corpus_text_and_json_walk_alike() {
    let dir = common::corpus_dir().join("nftables");
    let mut compared = 0;
    for name in [
        "firewalld-debian12-default",
        "docker-nftables-portmap",
        "kube-proxy-nftables-ipv6",
        "fw4-redirect-dnat",
        "fw4-ipsets",
        "libvirt-nat-default",
        "nixos-nnf-zones-nat",
        "nft-upstream-nat-maps",
    ] {
        let text = std::fs::read_to_string(dir.join(format!("{name}.listed.nft"))).unwrap();
        let json = std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap();
        let a = rules(&text);
        let b = NftRules::from_json(&json).expect("nft -j output compiles");
        // The model read from the JSON, as `iptviz trace FILE.json` reads it.
        let c = NftRules::from_model(&iptviz::nft::json::parse_json(&json).0).expect("compiles");
        assert_eq!(a.rule_count(), b.rule_count(), "{name}");
        assert_eq!(c.rule_count(), b.rule_count(), "{name}");
        let empty = Ruleset::default();
        let (ta, tb) = (Tracer::with_nft(&empty, &a), Tracer::with_nft(&empty, &b));
        let tc = Tracer::with_nft(&empty, &c);
        let packets = [
            ("192.0.2.1", "192.0.2.2", 22, "eth0", None),
            ("192.0.2.1", "198.51.100.9", 80, "docker0", None),
            (
                "10.0.0.7",
                "192.168.1.1",
                443,
                "br-lan",
                Some(Direction::Out),
            ),
            ("2001:db8::1", "2001:db8::2", 53, "eth0", None),
            ("2001:db8::1", "fd00:172:30::41", 80, "eth1", None),
        ];
        for (s, d, port, iif, dir) in packets {
            let mut opts = local(&["192.0.2.2", "2001:db8::2"]);
            opts.direction = dir;
            let p = tcp(s, d, port, iif);
            let (x, y, z) = (
                ta.trace(&p, &opts),
                tb.trace(&p, &opts),
                tc.trace(&p, &opts),
            );
            let steps = |t: &iptviz::trace::Trace, n: &NftRules| -> Vec<String> {
                t.steps
                    .iter()
                    .map(|s| {
                        let tb = &n.tables[s.table];
                        format!(
                            "{} {} {} {:?} {}",
                            tb.family.name(),
                            tb.name,
                            tb.chains[s.chain].name,
                            s.rule,
                            s.matched
                        )
                    })
                    .collect()
            };
            assert_eq!(steps(&x, &a), steps(&y, &b), "{name}: {p}");
            assert_eq!(steps(&z, &c), steps(&y, &b), "{name}: {p} (JSON model)");
            assert_eq!(x.verdict, y.verdict, "{name}: {p}");
            compared += 1;
        }
    }
    // Not nft-upstream-sample-ruleset: `nft -j` lists its anonymous chains
    // (`jump { ... }`) as bare strings, which the trace cannot follow,
    // while the text has them whole.
    assert_eq!(compared, 40);
}
