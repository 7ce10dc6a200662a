//! Every match module iptables 1.8.9 ships (`libxt_*`, `libipt_*`,
//! `libip6t_*`). One entry per module and family; see `super::Ext`.

use super::values::{self as v, Value::*};
use super::{Constraint::*, Ext, Given, OptSpec as O, hook};
use crate::model::Opt;

const TCP: u8 = 6;
const UDP: u8 = 17;
const UDPLITE: u8 = 136;
const SCTP: u8 = 132;
const DCCP: u8 = 33;
const U32: u64 = u32::MAX as u64;
const IN_SIDE: u8 = hook::PRE | hook::IN | hook::FWD;
const OUT_SIDE: u8 = hook::FWD | hook::OUT | hook::POST;

const ADDR_TYPES: &[&str] = &[
    "UNSPEC",
    "UNICAST",
    "LOCAL",
    "BROADCAST",
    "ANYCAST",
    "MULTICAST",
    "BLACKHOLE",
    "UNREACHABLE",
    "PROHIBIT",
    "THROW",
    "NAT",
    "XRESOLVE",
];

const CT_STATES: &[&str] = &[
    "INVALID",
    "ESTABLISHED",
    "NEW",
    "RELATED",
    "UNTRACKED",
    "SNAT",
    "DNAT",
];

const DCCP_TYPES: &[&str] = &[
    "REQUEST", "RESPONSE", "DATA", "ACK", "DATAACK", "CLOSEREQ", "CLOSE", "RESET", "SYNC",
    "SYNCACK", "INVALID",
];

fn any_option<'a>(g: &Given<'a>) -> Option<(Option<Opt<'a>>, String)> {
    g.opts
        .is_empty()
        .then(|| (None, "at least one option is required".to_string()))
}

fn cluster<'a>(g: &Given<'a>) -> Option<(Option<Opt<'a>>, String)> {
    let total = g.get("--cluster-total-nodes")?;
    let node = g.get("--cluster-local-node")?;
    let (t, n) = (v::parse_num(total.arg())?, v::parse_num(node.arg())?);
    (n > t).then(|| {
        (
            Some(node),
            format!("node {n} is beyond --cluster-total-nodes {t}"),
        )
    })
}

fn policy<'a>(g: &Given<'a>) -> Option<(Option<Opt<'a>>, String)> {
    // Elements are separated by --next; each is checked on its own.
    let mut elem: Vec<Opt<'a>> = Vec::new();
    let check = |elem: &[Opt<'a>]| -> Option<(Option<Opt<'a>>, String)> {
        let tunnel = elem
            .iter()
            .any(|o| o.name == "--mode" && o.arg() == "tunnel");
        if let Some(t) = elem
            .iter()
            .find(|o| matches!(o.name, "--tunnel-src" | "--tunnel-dst"))
            && !tunnel
        {
            return Some((
                Some(*t),
                "--tunnel-src/--tunnel-dst is valid only with --mode tunnel".into(),
            ));
        }
        None
    };
    for (s, o) in &g.opts {
        match s.name {
            "--next" => {
                if let Some(e) = check(&elem) {
                    return Some(e);
                }
                elem.clear();
            }
            "--reqid" | "--spi" | "--proto" | "--mode" | "--tunnel-src" | "--tunnel-dst" => {
                elem.push(*o)
            }
            _ => {}
        }
    }
    if let Some(e) = check(&elem) {
        return Some(e);
    }
    if g.has("--strict")
        && !g.opts.iter().any(|(s, _)| {
            matches!(
                s.name,
                "--reqid" | "--spi" | "--proto" | "--mode" | "--tunnel-src" | "--tunnel-dst"
            )
        })
    {
        return Some((
            g.get("--strict"),
            "--strict needs a policy element (--reqid, --spi, --proto, --mode, --tunnel-src or --tunnel-dst)"
                .into(),
        ));
    }
    None
}

fn statistic<'a>(g: &Given<'a>) -> Option<(Option<Opt<'a>>, String)> {
    let mode = g.get("--mode")?;
    if mode.arg() == "random" && !g.has("--probability") {
        return Some((Some(mode), "--mode random needs --probability".into()));
    }
    if mode.arg() == "nth" {
        let Some(every) = g.get("--every") else {
            return Some((Some(mode), "--mode nth needs --every".into()));
        };
        let Some(packet) = g.get("--packet") else {
            return Some((Some(every), "--every also needs --packet".into()));
        };
        if let (Some(e), Some(p)) = (v::parse_num(every.arg()), v::parse_num(packet.arg()))
            && p >= e
        {
            return Some((
                Some(packet),
                format!(
                    "--packet must be 0 to --every minus one ({})",
                    e.saturating_sub(1)
                ),
            ));
        }
    }
    None
}

fn recent<'a>(g: &Given<'a>) -> Option<(Option<Opt<'a>>, String)> {
    if let (Some(_), Some(r)) = (g.get("--set"), g.get("--rttl")) {
        return Some((Some(r), "--rttl cannot be used together with --set".into()));
    }
    None
}

fn owner<'a>(g: &Given<'a>) -> Option<(Option<Opt<'a>>, String)> {
    // iptables reads --suppl-groups as a change to a --gid-owner before it.
    let suppl = g
        .opts
        .iter()
        .position(|(s, _)| s.name == "--suppl-groups")?;
    let gid = g.opts.iter().position(|(s, _)| s.name == "--gid-owner");
    (gid.is_none_or(|gid| gid > suppl)).then(|| {
        (
            Some(g.opts[suppl].1),
            "--suppl-groups needs a --gid-owner before it".to_string(),
        )
    })
}

fn probability(args: &[&str], _: &Given<'_>) -> v::Verdict {
    let a = match v::one(args) {
        Ok(a) => a,
        Err(e) => return e,
    };
    match a.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => v::Verdict::Ok,
        _ => v::Verdict::Bad(0, format!("'{a}' is not a probability in 0-1")),
    }
}

fn chunk_types(args: &[&str], _: &Given<'_>) -> v::Verdict {
    if args.len() < 2 {
        return v::Verdict::Bad(
            usize::MAX,
            "needs all|any|only and a list of chunk types".into(),
        );
    }
    if !["all", "any", "only"].contains(&args[0]) {
        return v::Verdict::Bad(0, format!("'{}' is not all, any or only", args[0]));
    }
    if args.len() > 2 {
        return v::Verdict::Bad(2, format!("unexpected '{}'", args[2]));
    }
    v::Verdict::Ok
}

fn word_list(args: &[&str], _: &Given<'_>) -> v::Verdict {
    match v::one(args) {
        Ok(a) if a.split(',').all(|w| !w.is_empty()) => v::Verdict::Ok,
        Ok(a) => v::Verdict::Bad(0, format!("empty item in '{a}'")),
        Err(e) => e,
    }
}

const TCP_OPTS: &[O] = &[
    O::neg("--sport", PortRange(true)).alias(&["--source-port"]),
    O::neg("--dport", PortRange(true)).alias(&["--destination-port"]),
    O::neg("--tcp-flags", Custom(v::tcp_flags)),
    O::neg("--syn", Flag),
    O::neg("--tcp-option", Num(1, 255)),
];

const UDP_OPTS: &[O] = &[
    O::neg("--sport", PortRange(false)).alias(&["--source-port"]),
    O::neg("--dport", PortRange(false)).alias(&["--destination-port"]),
];

const MULTIPORT_PROTOS: &[u8] = &[TCP, UDP, UDPLITE, SCTP, DCCP];

const CT_OPTS: &[O] = &[
    O::neg("--ctstate", List(CT_STATES)),
    O::neg("--ctproto", Custom(v::ct_proto)),
    O::neg("--ctorigsrc", Net),
    O::neg("--ctorigdst", Net),
    O::neg("--ctreplsrc", Net),
    O::neg("--ctrepldst", Net),
    O::neg("--ctorigsrcport", PortRange(false)),
    O::neg("--ctorigdstport", PortRange(false)),
    O::neg("--ctreplsrcport", PortRange(false)),
    O::neg("--ctrepldstport", PortRange(false)),
    O::neg(
        "--ctstatus",
        List(&["NONE", "EXPECTED", "SEEN_REPLY", "ASSURED", "CONFIRMED"]),
    ),
    O::neg("--ctexpire", NumRange(0, U32, false)),
    O::new("--ctdir", Enum(&["ORIGINAL", "REPLY"])),
];

/// The match modules.
pub(super) static MATCHES: &[Ext] = &[
    Ext::m(
        "addrtype",
        "the kind of source or destination address (LOCAL, BROADCAST ...)",
        &[
            O::neg("--src-type", List(ADDR_TYPES)),
            O::neg("--dst-type", List(ADDR_TYPES)),
            O::new("--limit-iface-in", Flag).hooks(IN_SIDE),
            O::new("--limit-iface-out", Flag).hooks(OUT_SIDE),
        ],
    )
    .with(&[
        AnyOf(&["--src-type", "--dst-type"]),
        Exclusive(&["--limit-iface-in", "--limit-iface-out"]),
    ]),
    Ext::m(
        "ah",
        "the SPI of an IPsec AH header",
        &[O::neg("--ahspi", NumRange(0, U32, false))],
    )
    .v4()
    .protos(&[51]),
    Ext::m(
        "ah",
        "fields of an IPsec AH header",
        &[
            O::neg("--ahspi", NumRange(0, U32, false)),
            O::neg("--ahlen", Num(0, U32)),
            O::new("--ahres", Flag),
        ],
    )
    .v6(),
    Ext::m(
        "bpf",
        "a BPF program",
        &[
            O::new("--bytecode", Text(65536)),
            O::new("--object-pinned", Text(4096)),
        ],
    )
    .with(&[
        AnyOf(&["--bytecode", "--object-pinned"]),
        Exclusive(&["--bytecode", "--object-pinned"]),
    ]),
    Ext::m(
        "cgroup",
        "the control group of the local socket",
        &[
            O::neg("--path", Text(4095)),
            O::neg("--cgroup", Num(0, U32)),
        ],
    )
    .with(&[
        AnyOf(&["--path", "--cgroup"]),
        Exclusive(&["--path", "--cgroup"]),
    ])
    .hooks(hook::IN | hook::OUT | hook::POST),
    Ext::m(
        "cluster",
        "this node's share of a hash over the connection",
        &[
            O::new("--cluster-total-nodes", Num(1, 32)),
            O::neg("--cluster-local-node", Num(1, 32)),
            O::neg("--cluster-local-nodemask", Num(1, U32)),
            O::new("--cluster-hash-seed", Num(0, U32)),
        ],
    )
    .with(&[
        AnyOf(&["--cluster-local-node", "--cluster-local-nodemask"]),
        Exclusive(&["--cluster-local-node", "--cluster-local-nodemask"]),
        Required("--cluster-total-nodes"),
        Required("--cluster-hash-seed"),
        Check(cluster),
    ]),
    Ext::m(
        "comment",
        "a comment; matches every packet",
        &[O::new("--comment", Text(255))],
    )
    .with(&[Required("--comment")]),
    Ext::m(
        "connbytes",
        "bytes or packets the connection carried so far",
        &[
            O::neg("--connbytes", NumRange(0, u64::MAX, false)),
            O::new("--connbytes-dir", Enum(&["original", "reply", "both"])),
            O::new("--connbytes-mode", Enum(&["packets", "bytes", "avgpkt"])),
        ],
    )
    .with(&[
        Required("--connbytes"),
        Required("--connbytes-dir"),
        Required("--connbytes-mode"),
    ]),
    Ext::m(
        "connlabel",
        "a label on the connection",
        &[
            O::neg("--label", Custom(v::connlabel)),
            O::new("--set", Flag),
        ],
    )
    .with(&[Required("--label")]),
    Ext::m(
        "connlimit",
        "the number of connections from one address or network",
        &[
            O::neg("--connlimit-upto", Num(0, U32)),
            O::neg("--connlimit-above", Num(0, U32)),
            O::new("--connlimit-mask", Num(0, 128)),
            O::new("--connlimit-saddr", Flag),
            O::new("--connlimit-daddr", Flag),
        ],
    )
    .with(&[
        AnyOf(&["--connlimit-upto", "--connlimit-above"]),
        Exclusive(&["--connlimit-upto", "--connlimit-above"]),
        Exclusive(&["--connlimit-saddr", "--connlimit-daddr"]),
    ]),
    Ext::m(
        "connmark",
        "the connection's mark",
        &[O::neg("--mark", Mark)],
    )
    .with(&[Required("--mark")]),
    Ext::m("conntrack", "the connection's state and tuples", CT_OPTS).with(&[Check(any_option)]),
    Ext::m(
        "cpu",
        "the CPU handling the packet",
        &[O::neg("--cpu", Num(0, U32))],
    )
    .with(&[Required("--cpu")]),
    Ext::m(
        "dccp",
        "DCCP ports, packet types and options",
        &[
            O::neg("--sport", PortRange(false)).alias(&["--source-port"]),
            O::neg("--dport", PortRange(false)).alias(&["--destination-port"]),
            O::neg("--dccp-types", List(DCCP_TYPES)),
            O::neg("--dccp-option", Num(1, 255)),
        ],
    )
    .protos(&[DCCP]),
    Ext::m(
        "devgroup",
        "the device group of the interfaces",
        &[
            O::neg("--src-group", Mark).hooks(IN_SIDE),
            O::neg("--dst-group", Mark).hooks(OUT_SIDE),
        ],
    )
    .with(&[AnyOf(&["--src-group", "--dst-group"])]),
    Ext::m(
        "dscp",
        "the DSCP field",
        &[
            O::neg("--dscp", Num(0, 63)),
            O::neg("--dscp-class", Enum(v::DSCP_CLASSES)),
        ],
    )
    .with(&[
        AnyOf(&["--dscp", "--dscp-class"]),
        Exclusive(&["--dscp", "--dscp-class"]),
    ]),
    Ext::m(
        "dst",
        "the IPv6 destination options header",
        &[
            O::neg("--dst-len", Num(0, U32)),
            O::new("--dst-opts", Custom(word_list)),
        ],
    )
    .v6(),
    Ext::m(
        "ecn",
        "ECN bits of the IP and TCP headers",
        &[
            O::neg("--ecn-tcp-cwr", Flag).protos(&[TCP]),
            O::neg("--ecn-tcp-ece", Flag).protos(&[TCP]),
            O::neg("--ecn-ip-ect", Num(0, 3)),
        ],
    )
    .with(&[AnyOf(&["--ecn-tcp-cwr", "--ecn-tcp-ece", "--ecn-ip-ect"])]),
    Ext::m(
        "esp",
        "the SPI of an IPsec ESP header",
        &[O::neg("--espspi", NumRange(0, U32, false))],
    )
    .protos(&[50]),
    Ext::m("eui64", "a source address built from the MAC (EUI-64)", &[])
        .v6()
        .hooks(IN_SIDE),
    Ext::m(
        "frag",
        "the IPv6 fragment header",
        &[
            O::neg("--fragid", NumRange(0, U32, false)),
            O::neg("--fraglen", Num(0, U32)),
            O::new("--fragres", Flag),
            O::new("--fragfirst", Flag),
            O::new("--fragmore", Flag),
            O::new("--fraglast", Flag),
        ],
    )
    .v6(),
    Ext::m(
        "hashlimit",
        "a rate limit per address or port group",
        &[
            O::new("--hashlimit-upto", Custom(v::hashlimit_rate)).alias(&["--hashlimit"]),
            O::new("--hashlimit-above", Custom(v::hashlimit_rate)),
            O::new("--hashlimit-burst", Text(32)),
            O::new(
                "--hashlimit-mode",
                List(&["srcip", "srcport", "dstip", "dstport"]),
            ),
            O::new("--hashlimit-srcmask", Num(0, 128)),
            O::new("--hashlimit-dstmask", Num(0, 128)),
            O::new("--hashlimit-name", Text(255)),
            O::new("--hashlimit-htable-size", Num(0, U32)),
            O::new("--hashlimit-htable-max", Num(0, U32)),
            O::new("--hashlimit-htable-gcinterval", Num(0, U32)),
            O::new("--hashlimit-htable-expire", Num(0, U32)),
            O::new("--hashlimit-rate-match", Flag),
            O::new("--hashlimit-rate-interval", Num(1, U32)),
        ],
    )
    .with(&[
        AnyOf(&["--hashlimit-upto", "--hashlimit-above"]),
        Exclusive(&["--hashlimit-upto", "--hashlimit-above"]),
        Required("--hashlimit-name"),
    ]),
    Ext::m(
        "hbh",
        "the IPv6 hop-by-hop options header",
        &[
            O::neg("--hbh-len", Num(0, U32)),
            O::new("--hbh-opts", Custom(word_list)),
        ],
    )
    .v6(),
    Ext::m(
        "helper",
        "the conntrack helper of the connection",
        &[O::neg("--helper", Text(29))],
    )
    .with(&[Required("--helper")]),
    Ext::m(
        "hl",
        "the IPv6 hop limit",
        &[
            O::neg("--hl-eq", Num(0, 255)),
            O::new("--hl-lt", Num(0, 255)),
            O::new("--hl-gt", Num(0, 255)),
        ],
    )
    .v6()
    .with(&[
        AnyOf(&["--hl-eq", "--hl-lt", "--hl-gt"]),
        Exclusive(&["--hl-eq", "--hl-lt", "--hl-gt"]),
    ]),
    Ext::m(
        "icmp",
        "the ICMP type and code",
        &[O::neg("--icmp-type", Custom(v::icmp_type))],
    )
    .v4()
    .protos(&[1])
    .with(&[Required("--icmp-type")]),
    Ext::m(
        "icmp6",
        "the ICMPv6 type and code",
        &[O::neg("--icmpv6-type", Custom(v::icmp6_type))],
    )
    .alias(&["icmpv6"])
    .v6()
    .protos(&[58])
    .with(&[Required("--icmpv6-type")]),
    Ext::m(
        "ipcomp",
        "the CPI of an IPComp header",
        &[
            O::neg("--ipcompspi", NumRange(0, U32, false)),
            O::new("--compres", Flag),
        ],
    )
    .protos(&[108]),
    Ext::m(
        "iprange",
        "a source or destination address range",
        &[
            O::neg("--src-range", AddrRange),
            O::neg("--dst-range", AddrRange),
        ],
    )
    .with(&[AnyOf(&["--src-range", "--dst-range"])]),
    Ext::m(
        "ipv6header",
        "the IPv6 extension headers present",
        &[
            O::neg("--header", Custom(word_list)),
            O::new("--soft", Flag),
        ],
    )
    .v6()
    .with(&[Required("--header")]),
    Ext::m(
        "ipvs",
        "IPVS connection properties",
        &[
            O::neg("--ipvs", Flag),
            O::neg("--vproto", Custom(v::proto)),
            O::neg("--vaddr", Net),
            O::neg("--vport", Port),
            O::new("--vdir", Enum(&["ORIGINAL", "REPLY"])),
            O::neg("--vmethod", Enum(&["GATE", "IPIP", "MASQ"])),
            O::neg("--vportctl", Port),
        ],
    ),
    Ext::m(
        "length",
        "the packet's length",
        &[O::neg("--length", NumRange(0, 65535, false))],
    )
    .with(&[Required("--length")]),
    Ext::m(
        "limit",
        "a rate limit (token bucket)",
        &[
            O::new("--limit", Custom(v::rate)),
            O::new("--limit-burst", Num(0, 10000)),
        ],
    ),
    Ext::m(
        "mac",
        "the source MAC address",
        &[O::neg("--mac-source", Mac)],
    )
    .hooks(IN_SIDE)
    .with(&[Required("--mac-source")]),
    Ext::m("mark", "the packet's mark", &[O::neg("--mark", Mark)]).with(&[Required("--mark")]),
    Ext::m(
        "mh",
        "the IPv6 mobility header type",
        &[O::neg("--mh-type", Custom(word_list))],
    )
    .v6()
    .protos(&[135]),
    Ext::m(
        "multiport",
        "up to 15 ports or ranges",
        &[
            O::neg("--sports", PortList).alias(&["--source-ports"]),
            O::neg("--dports", PortList).alias(&["--destination-ports"]),
            O::neg("--ports", PortList),
        ],
    )
    .protos(MULTIPORT_PROTOS)
    .with(&[
        AnyOf(&["--sports", "--dports", "--ports"]),
        Exclusive(&["--sports", "--dports", "--ports"]),
    ]),
    Ext::m(
        "nfacct",
        "counts in a named nfacct object",
        &[O::new("--nfacct-name", Text(31))],
    )
    .with(&[Required("--nfacct-name")]),
    Ext::m(
        "osf",
        "the operating system, from the SYN's fingerprint",
        &[
            O::neg("--genre", Text(32)),
            O::new("--ttl", Num(0, 2)),
            O::new("--log", Num(0, 2)),
        ],
    )
    .protos(&[TCP])
    .with(&[Required("--genre")]),
    Ext::m(
        "owner",
        "the local socket's user, group or existence",
        &[
            O::neg("--uid-owner", Custom(v::owner_id)),
            O::neg("--gid-owner", Custom(v::owner_id)),
            O::neg("--socket-exists", Flag),
            O::new("--suppl-groups", Flag),
        ],
    )
    .hooks(hook::OUT | hook::POST)
    .with(&[
        AnyOf(&["--uid-owner", "--gid-owner", "--socket-exists"]),
        Check(owner),
    ]),
    Ext::m(
        "physdev",
        "the bridge ports of a bridged packet",
        &[
            O::neg("--physdev-in", Iface),
            O::neg("--physdev-out", Iface).hooks(hook::ALL & !hook::OUT),
            O::neg("--physdev-is-in", Flag),
            O::neg("--physdev-is-out", Flag).hooks(hook::ALL & !hook::OUT),
            O::neg("--physdev-is-bridged", Flag),
        ],
    )
    .with(&[Check(any_option)]),
    Ext::m(
        "pkttype",
        "the link-layer packet type",
        &[O::neg(
            "--pkt-type",
            Enum(&[
                "unicast",
                "broadcast",
                "multicast",
                "otherhost",
                "host",
                "outgoing",
                "loopback",
                "fastroute",
            ]),
        )],
    )
    .with(&[Required("--pkt-type")]),
    Ext::m(
        "policy",
        "the IPsec policy of the packet",
        &[
            O::new("--dir", Enum(&["in", "out"])),
            O::new("--pol", Enum(&["none", "ipsec"])),
            O::new("--strict", Flag),
            O::neg("--reqid", Num(0, U32)).repeat(),
            O::neg("--spi", Num(0, U32)).repeat(),
            O::neg("--proto", Enum(&["ah", "esp", "ipcomp"])).repeat(),
            O::neg("--mode", Enum(&["transport", "tunnel"])).repeat(),
            O::neg("--tunnel-src", Net).repeat(),
            O::neg("--tunnel-dst", Net).repeat(),
            O::new("--next", Flag).repeat(),
        ],
    )
    .with(&[Required("--dir"), Required("--pol"), Check(policy)]),
    Ext::m(
        "quota",
        "until a byte quota is used up",
        &[O::neg("--quota", Num(0, u64::MAX))],
    )
    .with(&[Required("--quota")]),
    Ext::m(
        "rateest",
        "rates measured by RATEEST",
        &[
            O::new("--rateest1", Text(15)).alias(&["--rateest"]),
            O::new("--rateest2", Text(15)),
            O::new("--rateest-delta", Flag),
            O::new("--rateest-bps1", MaybeText).alias(&["--rateest-bps"]),
            O::new("--rateest-pps1", MaybeText).alias(&["--rateest-pps"]),
            O::new("--rateest-bps2", MaybeText),
            O::new("--rateest-pps2", MaybeText),
            O::neg("--rateest-lt", Flag),
            O::neg("--rateest-gt", Flag),
            O::neg("--rateest-eq", Flag),
        ],
    )
    .with(&[Required("--rateest1")]),
    Ext::m("realm", "the routing realm", &[O::neg("--realm", Text(64))])
        .v4()
        .hooks(hook::ALL & !hook::PRE)
        .with(&[Required("--realm")]),
    Ext::m(
        "recent",
        "a list of recently seen addresses",
        &[
            O::neg("--set", Flag),
            O::neg("--rcheck", Flag),
            O::neg("--update", Flag),
            O::neg("--remove", Flag),
            O::new("--seconds", Num(1, U32)),
            O::new("--reap", Flag),
            O::new("--hitcount", Num(1, 65535)),
            O::new("--rttl", Flag),
            O::new("--name", Text(199)),
            O::new("--rsource", Flag),
            O::new("--rdest", Flag),
            O::new("--mask", Host),
        ],
    )
    .with(&[
        AnyOf(&["--set", "--rcheck", "--update", "--remove"]),
        Exclusive(&["--set", "--rcheck", "--update", "--remove"]),
        Exclusive(&["--rsource", "--rdest"]),
        Needs("--reap", &["--seconds"]),
        Check(recent),
    ]),
    Ext::m(
        "rpfilter",
        "the reverse path (would a reply leave by the same interface?)",
        &[
            O::new("--loose", Flag),
            O::new("--validmark", Flag),
            O::new("--accept-local", Flag),
            O::new("--invert", Flag),
        ],
    )
    .tables(&["raw", "mangle"])
    .hooks(hook::PRE),
    Ext::m(
        "rt",
        "the IPv6 routing header",
        &[
            O::neg("--rt-type", Num(0, 255)),
            O::neg("--rt-segsleft", NumRange(0, U32, false)),
            O::neg("--rt-len", Num(0, U32)),
            O::new("--rt-0-res", Flag),
            O::new("--rt-0-addrs", Custom(word_list)),
            O::new("--rt-0-not-strict", Flag),
        ],
    )
    .v6(),
    Ext::m(
        "sctp",
        "SCTP ports and chunk types",
        &[
            O::neg("--sport", PortRange(false)).alias(&["--source-port"]),
            O::neg("--dport", PortRange(false)).alias(&["--destination-port"]),
            O::neg("--chunk-types", Custom(chunk_types)),
        ],
    )
    .protos(&[SCTP]),
    Ext::m(
        "set",
        "membership in an ipset",
        &[
            O::neg("--match-set", Custom(v::set_name_flags)).alias(&["--set"]),
            O::new("--return-nomatch", Flag),
            O::neg("--update-counters", Flag),
            O::neg("--update-subcounters", Flag),
            O::neg("--packets-eq", Num(0, u64::MAX)),
            O::new("--packets-lt", Num(0, u64::MAX)),
            O::new("--packets-gt", Num(0, u64::MAX)),
            O::neg("--bytes-eq", Num(0, u64::MAX)),
            O::new("--bytes-lt", Num(0, u64::MAX)),
            O::new("--bytes-gt", Num(0, u64::MAX)),
        ],
    )
    .with(&[Required("--match-set")]),
    Ext::m(
        "socket",
        "a local socket for the packet",
        &[
            O::new("--transparent", Flag),
            O::new("--nowildcard", Flag),
            O::new("--restore-skmark", Flag),
        ],
    )
    .hooks(hook::PRE | hook::IN),
    Ext::m(
        "srh",
        "the IPv6 segment routing header",
        &[
            O::neg("--srh-next-hdr", Num(0, 255)),
            O::neg("--srh-hdr-len-eq", Num(0, 255)),
            O::neg("--srh-hdr-len-gt", Num(0, 255)),
            O::neg("--srh-hdr-len-lt", Num(0, 255)),
            O::neg("--srh-segs-left-eq", Num(0, 255)),
            O::neg("--srh-segs-left-gt", Num(0, 255)),
            O::neg("--srh-segs-left-lt", Num(0, 255)),
            O::neg("--srh-last-entry-eq", Num(0, 255)),
            O::neg("--srh-last-entry-gt", Num(0, 255)),
            O::neg("--srh-last-entry-lt", Num(0, 255)),
            O::neg("--srh-tag", Num(0, 65535)),
            O::neg("--srh-psid", Net),
            O::neg("--srh-nsid", Net),
            O::neg("--srh-lsid", Net),
        ],
    )
    .v6(),
    Ext::m("standard", "no test (the built-in matches only)", &[]),
    Ext::m(
        "state",
        "the connection's state (older spelling of conntrack --ctstate)",
        &[O::neg(
            "--state",
            List(&["INVALID", "ESTABLISHED", "NEW", "RELATED", "UNTRACKED"]),
        )],
    )
    .with(&[Required("--state")]),
    Ext::m(
        "statistic",
        "a random share or every nth packet",
        &[
            O::new("--mode", Enum(&["random", "nth"])),
            O::neg("--probability", Custom(probability)),
            O::neg("--every", Num(1, U32)),
            O::new("--packet", Num(0, U32)),
        ],
    )
    .with(&[Required("--mode"), Check(statistic)]),
    Ext::m(
        "string",
        "a string in the packet",
        &[
            O::new("--from", Num(0, 65535)),
            O::new("--to", Num(0, 65535)),
            O::new("--algo", Enum(&["bm", "kmp"])),
            O::new("--icase", Flag),
            O::neg("--string", Text(128)),
            O::neg("--hex-string", Text(512)),
        ],
    )
    .with(&[
        Required("--algo"),
        AnyOf(&["--string", "--hex-string"]),
        Exclusive(&["--string", "--hex-string"]),
    ]),
    Ext::m("tcp", "TCP ports, flags and options", TCP_OPTS).protos(&[TCP]),
    Ext::m(
        "tcpmss",
        "the MSS option of a TCP SYN",
        &[O::neg("--mss", NumRange(0, 65535, false))],
    )
    .protos(&[TCP])
    .with(&[Required("--mss")]),
    Ext::m(
        "time",
        "the time of arrival",
        &[
            O::new("--datestart", Custom(v::date)),
            O::new("--datestop", Custom(v::date)),
            O::new("--timestart", Custom(v::daytime)),
            O::new("--timestop", Custom(v::daytime)),
            O::neg("--monthdays", Custom(v::monthdays)),
            O::neg("--weekdays", Custom(v::weekdays)),
            O::new("--kerneltz", Flag),
            O::new("--localtz", Flag),
            O::new("--utc", Flag),
            O::new("--contiguous", Flag),
        ],
    ),
    Ext::m(
        "tos",
        "the TOS field",
        &[O::neg("--tos", Custom(v::tos_value))],
    )
    .with(&[Required("--tos")]),
    Ext::m(
        "ttl",
        "the IPv4 time to live",
        &[
            O::neg("--ttl-eq", Num(0, 255)),
            O::new("--ttl-lt", Num(0, 255)),
            O::new("--ttl-gt", Num(0, 255)),
        ],
    )
    .v4()
    .with(&[
        AnyOf(&["--ttl-eq", "--ttl-lt", "--ttl-gt"]),
        Exclusive(&["--ttl-eq", "--ttl-lt", "--ttl-gt"]),
    ]),
    Ext::m(
        "u32",
        "bytes of the packet at computed offsets",
        &[O::neg("--u32", Text(4096))],
    )
    .with(&[Required("--u32")]),
    Ext::m("udp", "UDP ports", UDP_OPTS).protos(&[UDP]),
    // Not a kernel module: what an `iptables -L` paste printed and no form
    // explains is kept as `-m unmapped --text "..."` (src/parse/listing.rs);
    // the reader warns about it once, so check leaves it alone.
    Ext::m(
        "unmapped",
        "iptables -L text iptviz could not map, kept word for word",
        &[],
    )
    .free(),
];
