//! Every target iptables 1.8.9 ships, with the tables and hooks where the
//! kernel takes it. One entry per target and family; see `super::Ext`.

use super::values::{self as v, Value::*, Verdict};
use super::{Constraint::*, Ext, Given, OptSpec as O, hook};
use crate::model::Opt;

const TCP: u8 = 6;
const U32: u64 = u32::MAX as u64;

type Found<'a> = Option<(Option<Opt<'a>>, String)>;

const REJECT4: &[&str] = &[
    "icmp-net-unreachable",
    "net-unreach",
    "icmp-host-unreachable",
    "host-unreach",
    "icmp-proto-unreachable",
    "proto-unreach",
    "icmp-port-unreachable",
    "port-unreach",
    "icmp-net-prohibited",
    "net-prohib",
    "icmp-host-prohibited",
    "host-prohib",
    "tcp-reset",
    "tcp-rst",
    "icmp-admin-prohibited",
    "admin-prohib",
];

const REJECT6: &[&str] = &[
    "icmp6-no-route",
    "no-route",
    "icmp6-adm-prohibited",
    "adm-prohibited",
    "icmp6-addr-unreachable",
    "addr-unreach",
    "icmp6-port-unreachable",
    "port-unreach",
    "icmp6-policy-fail",
    "policy-fail",
    "icmp6-reject-route",
    "reject-route",
    "tcp-reset",
];

fn reject<'a>(g: &Given<'a>) -> Found<'a> {
    let w = g.get("--reject-with")?;
    (matches!(w.arg(), "tcp-reset" | "tcp-rst") && g.proto != Some(TCP)).then(|| {
        (
            Some(w),
            "--reject-with tcp-reset needs -p tcp in the rule".to_string(),
        )
    })
}

fn queue_balance(args: &[&str], _: &Given<'_>) -> Verdict {
    let a = match v::one(args) {
        Ok(a) => a,
        Err(e) => return e,
    };
    let Some((lo, hi)) = a.split_once(':') else {
        return Verdict::Bad(0, format!("'{a}' is not a range first:last"));
    };
    let n = |s: &str, d: u64| {
        if s.is_empty() {
            Some(d)
        } else if s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse::<u64>().ok().filter(|n| *n <= 65535)
        } else {
            None
        }
    };
    match (n(lo, 0), n(hi, 65535)) {
        (Some(l), Some(h)) if l >= h => Verdict::Bad(0, format!("{l} should be less than {h}")),
        // The kernel counts the queues in 16 bits.
        (Some(l), Some(h)) if h - l + 1 > 65535 => {
            Verdict::Bad(0, "at most 65535 queues (0:65534)".into())
        }
        (Some(_), Some(_)) => Verdict::Ok,
        _ => Verdict::Bad(0, format!("'{a}' is not a range of queue numbers 0-65535")),
    }
}

fn strip_options(args: &[&str], _: &Given<'_>) -> Verdict {
    let a = match v::one(args) {
        Ok(a) => a,
        Err(e) => return e,
    };
    const NAMES: &[&str] = &[
        "wscale",
        "mss",
        "sack-permitted",
        "sack",
        "timestamp",
        "md5",
    ];
    for w in a.split(',') {
        if NAMES.contains(&w) {
            continue;
        }
        match v::parse_num(w) {
            Some(0 | 1) => return Verdict::Bad(0, "option value may not be 0 or 1".into()),
            Some(2..=255) => {}
            _ => return Verdict::Bad(0, format!("unknown TCP option '{w}'")),
        }
    }
    Verdict::Ok
}

fn class(args: &[&str], _: &Given<'_>) -> Verdict {
    let a = match v::one(args) {
        Ok(a) => a,
        Err(e) => return e,
    };
    let hex = |s: &str| !s.is_empty() && u16::from_str_radix(s, 16).is_ok();
    match a.split_once(':') {
        Some((x, y)) if hex(x) && hex(y) => Verdict::Ok,
        _ => Verdict::Bad(0, format!("'{a}' is not MAJOR:MINOR (hexadecimal)")),
    }
}

fn zone(args: &[&str], _: &Given<'_>) -> Verdict {
    let a = match v::one(args) {
        Ok(a) => a,
        Err(e) => return e,
    };
    if a == "mark" || v::parse_num(a).is_some_and(|n| n <= 65535) {
        Verdict::Ok
    } else {
        Verdict::Bad(0, format!("'{a}' is not a zone 0-65535 or 'mark'"))
    }
}

fn npt_prefix(args: &[&str], g: &Given<'_>) -> Verdict {
    let a = match v::one(args) {
        Ok(a) => a,
        Err(e) => return e,
    };
    if let Err(e) = v::check_host(a, g.family) {
        return Verdict::Bad(0, e);
    }
    let len = a
        .split_once('/')
        .map_or(128, |(_, l)| l.parse().unwrap_or(128));
    if len > 64 {
        Verdict::Bad(0, format!("prefix /{len} is longer than /64"))
    } else {
        Verdict::Ok
    }
}

fn timeout_label(args: &[&str], _: &Given<'_>) -> Verdict {
    let a = match v::one(args) {
        Ok(a) => a,
        Err(e) => return e,
    };
    if a.len() > 27 {
        Verdict::Bad(0, "label longer than 27 characters".into())
    } else {
        Verdict::Ok
    }
}

fn led_delay(args: &[&str], _: &Given<'_>) -> Verdict {
    let a = match v::one(args) {
        Ok(a) => a,
        Err(e) => return e,
    };
    if a == "inf" || v::parse_num(a).is_some_and(|n| n <= U32) {
        Verdict::Ok
    } else {
        Verdict::Bad(0, format!("'{a}' is not milliseconds or 'inf'"))
    }
}

fn ecn_tcp<'a>(g: &Given<'a>) -> Found<'a> {
    let o = g
        .opts
        .iter()
        .find(|(s, _)| s.name != "--ecn-ip-ect")
        .map(|(_, o)| *o)?;
    (g.proto != Some(TCP)).then(|| {
        (
            Some(o),
            format!(
                "{} changes TCP headers: it needs -p tcp in the rule",
                o.name
            ),
        )
    })
}

fn mark_ops<'a>(g: &Given<'a>) -> Found<'a> {
    let ops = [
        "--set-xmark",
        "--set-mark",
        "--and-mark",
        "--or-mark",
        "--xor-mark",
        "--save-mark",
        "--restore-mark",
        "--left-shift-mark",
        "--right-shift-mark",
    ];
    let given: Vec<Opt<'a>> = g
        .opts
        .iter()
        .filter(|(s, _)| ops.contains(&s.name) && !s.name.ends_with("shift-mark"))
        .map(|(_, o)| *o)
        .collect();
    match given.len() {
        0 => Some((
            None,
            "needs an operation (--set-xmark, --set-mark, --and-mark, --or-mark or --xor-mark)"
                .into(),
        )),
        1 => None,
        _ => Some((
            Some(given[1]),
            format!(
                "{} cannot be used together with {}",
                given[1].name, given[0].name
            ),
        )),
    }
}

fn connmark_masks<'a>(g: &Given<'a>) -> Found<'a> {
    let save = g.has("--save-mark") || g.has("--restore-mark");
    let mask = g
        .opts
        .iter()
        .find(|(s, _)| matches!(s.name, "--mask" | "--nfmask" | "--ctmask"))
        .map(|(_, o)| *o)?;
    (!save).then(|| {
        (
            Some(mask),
            format!("{} goes with --save-mark or --restore-mark", mask.name),
        )
    })
}

/// The targets.
pub(super) static TARGETS: &[Ext] = &[
    Ext::t("ACCEPT", "let the packet through this table", &[]).verdict(),
    Ext::t("DROP", "drop the packet", &[]).verdict(),
    Ext::t("RETURN", "go back to the calling chain", &[]).verdict(),
    Ext::t("QUEUE", "hand the packet to user space (queue 0)", &[]).verdict(),
    Ext::t(
        "AUDIT",
        "write an audit record",
        &[O::new("--type", Enum(&["accept", "drop", "reject"]))],
    )
    .with(&[Required("--type")]),
    Ext::t(
        "CHECKSUM",
        "fill in a missing checksum",
        &[O::new("--checksum-fill", Flag)],
    )
    .tables(&["mangle"])
    .with(&[Required("--checksum-fill")]),
    Ext::t(
        "CLASSIFY",
        "set the packet's traffic control class",
        &[O::new("--set-class", Custom(class))],
    )
    .hooks(hook::FWD | hook::OUT | hook::POST)
    .with(&[Required("--set-class")]),
    Ext::t(
        "CLUSTERIP",
        "share one address among cluster nodes (removed from Linux 6.3)",
        &[
            O::new("--new", Flag),
            O::new(
                "--hashmode",
                Enum(&[
                    "sourceip",
                    "sourceip-sourceport",
                    "sourceip-sourceport-destport",
                ]),
            ),
            O::new("--clustermac", Mac),
            O::new("--total-nodes", Num(1, U32)),
            O::new("--local-node", Num(1, U32)),
            O::new("--hash-init", Num(0, U32)),
        ],
    )
    .v4()
    .verdict(),
    Ext::t(
        "CONNMARK",
        "set, save or restore the connection's mark",
        &[
            O::new("--set-xmark", Mark),
            O::new("--set-mark", Mark),
            O::new("--save-mark", Flag),
            O::new("--restore-mark", Flag),
            O::new("--and-mark", Num(0, U32)),
            O::new("--or-mark", Num(0, U32)),
            O::new("--xor-mark", Num(0, U32)),
            O::new("--mask", Num(0, U32)),
            O::new("--nfmask", Num(0, U32)),
            O::new("--ctmask", Num(0, U32)),
            O::new("--left-shift-mark", Num(0, 31)),
            O::new("--right-shift-mark", Num(0, 31)),
        ],
    )
    .with(&[Check(mark_ops), Check(connmark_masks)]),
    Ext::t(
        "CONNSECMARK",
        "copy the security mark between packet and connection",
        &[O::new("--save", Flag), O::new("--restore", Flag)],
    )
    .tables(&["mangle", "security"])
    .with(&[
        AnyOf(&["--save", "--restore"]),
        Exclusive(&["--save", "--restore"]),
    ]),
    Ext::t(
        "CT",
        "set conntrack properties of the connection (or leave it untracked)",
        &[
            O::new("--notrack", Flag),
            O::new("--helper", Text(15)),
            O::new("--timeout", Text(31)),
            O::new("--ctevents", Custom(v_list)),
            O::new("--expevents", Custom(v_list)),
            O::new("--zone", Custom(zone)),
            O::new("--zone-orig", Custom(zone)),
            O::new("--zone-reply", Custom(zone)),
        ],
    )
    .tables(&["raw"]),
    Ext::t(
        "DNAT",
        "rewrite the destination address and port",
        &[
            O::new("--to-destination", Custom(v::nat_to)),
            O::new("--random", Flag),
            O::new("--persistent", Flag),
        ],
    )
    .tables(&["nat"])
    .hooks(hook::PRE | hook::OUT)
    .with(&[Required("--to-destination")])
    .verdict(),
    Ext::t(
        "DNPT",
        "translate the destination prefix (IPv6 NPTv6)",
        &[
            O::new("--src-pfx", Custom(npt_prefix)),
            O::new("--dst-pfx", Custom(npt_prefix)),
        ],
    )
    .v6()
    .tables(&["mangle"])
    .hooks(hook::PRE | hook::OUT)
    .with(&[Required("--src-pfx"), Required("--dst-pfx")]),
    Ext::t(
        "DSCP",
        "set the DSCP field",
        &[
            O::new("--set-dscp", Num(0, 63)),
            O::new("--set-dscp-class", Enum(v::DSCP_CLASSES)),
        ],
    )
    .tables(&["mangle"])
    .with(&[
        AnyOf(&["--set-dscp", "--set-dscp-class"]),
        Exclusive(&["--set-dscp", "--set-dscp-class"]),
    ]),
    Ext::t(
        "ECN",
        "clear or set ECN bits",
        &[
            O::new("--ecn-tcp-remove", Flag),
            O::new("--ecn-tcp-cwr", Num(0, 1)),
            O::new("--ecn-tcp-ece", Num(0, 1)),
            O::new("--ecn-ip-ect", Num(0, 3)),
        ],
    )
    .v4()
    .tables(&["mangle"])
    .with(&[
        AnyOf(&[
            "--ecn-tcp-remove",
            "--ecn-tcp-cwr",
            "--ecn-tcp-ece",
            "--ecn-ip-ect",
        ]),
        Check(ecn_tcp),
    ]),
    Ext::t(
        "HL",
        "set, decrease or increase the IPv6 hop limit",
        &[
            O::new("--hl-set", Num(0, 255)),
            O::new("--hl-dec", Num(1, 255)),
            O::new("--hl-inc", Num(1, 255)),
        ],
    )
    .v6()
    .tables(&["mangle"])
    .with(&[
        AnyOf(&["--hl-set", "--hl-dec", "--hl-inc"]),
        Exclusive(&["--hl-set", "--hl-dec", "--hl-inc"]),
    ]),
    Ext::t(
        "HMARK",
        "set the mark from a hash of the packet's addresses and ports",
        &[
            O::new(
                "--hmark-tuple",
                List(&["src", "dst", "sport", "dport", "spi", "ct"]),
            ),
            O::new("--hmark-src-prefix", Num(0, 128)),
            O::new("--hmark-dst-prefix", Num(0, 128)),
            O::new("--hmark-sport-mask", Num(0, 65535)),
            O::new("--hmark-dport-mask", Num(0, 65535)),
            O::new("--hmark-spi-mask", Num(0, U32)),
            O::new("--hmark-proto-mask", Num(0, 65535)),
            O::new("--hmark-rnd", Num(0, U32)),
            O::new("--hmark-mod", Num(1, U32)),
            O::new("--hmark-offset", Num(0, U32)),
        ],
    )
    .with(&[
        Required("--hmark-mod"),
        Required("--hmark-rnd"),
        Exclusive(&["--hmark-spi-mask", "--hmark-sport-mask"]),
        Exclusive(&["--hmark-spi-mask", "--hmark-dport-mask"]),
    ]),
    Ext::t(
        "IDLETIMER",
        "a timer that fires when no packet hit the rule for a while",
        &[
            O::new("--timeout", Num(0, U32)),
            O::new("--label", Custom(timeout_label)),
            O::new("--alarm", Flag),
        ],
    )
    .with(&[Required("--timeout"), Required("--label")]),
    Ext::t(
        "LED",
        "blink a LED",
        &[
            O::new("--led-trigger-id", Text(27)),
            O::new("--led-delay", Custom(led_delay)),
            O::new("--led-always-blink", Flag),
        ],
    )
    .with(&[Required("--led-trigger-id")]),
    Ext::t(
        "LOG",
        "log the packet to the kernel log",
        &[
            O::new("--log-level", Custom(v::log_level)),
            O::new("--log-prefix", Text(29)),
            O::new("--log-tcp-sequence", Flag),
            O::new("--log-tcp-options", Flag),
            O::new("--log-ip-options", Flag),
            O::new("--log-uid", Flag),
            O::new("--log-macdecode", Flag),
        ],
    ),
    Ext::t(
        "MARK",
        "set the packet's mark",
        &[
            O::new("--set-xmark", Mark),
            O::new("--set-mark", Mark),
            O::new("--and-mark", Num(0, U32)),
            O::new("--or-mark", Num(0, U32)),
            O::new("--xor-mark", Num(0, U32)),
        ],
    )
    .with(&[Check(mark_ops)]),
    Ext::t(
        "MASQUERADE",
        "source NAT to the outgoing interface's address",
        &[
            O::new("--to-ports", Custom(v::to_ports)),
            O::new("--random", Flag),
            O::new("--random-fully", Flag),
        ],
    )
    .tables(&["nat"])
    .hooks(hook::POST)
    .verdict(),
    Ext::t(
        "NETMAP",
        "map a whole network onto another (1:1 NAT)",
        &[O::new("--to", Net)],
    )
    .tables(&["nat"])
    .with(&[Required("--to")])
    .verdict(),
    Ext::t(
        "NFLOG",
        "log the packet through nfnetlink",
        &[
            O::new("--nflog-group", Num(0, 65535)),
            O::new("--nflog-range", Num(0, U32)),
            O::new("--nflog-size", Num(0, U32)),
            O::new("--nflog-threshold", Num(1, 65535)),
            O::new("--nflog-prefix", Text(63)),
        ],
    )
    .with(&[Exclusive(&["--nflog-range", "--nflog-size"])]),
    Ext::t(
        "NFQUEUE",
        "hand the packet to a user-space queue",
        &[
            O::new("--queue-num", Num(0, 65535)),
            O::new("--queue-balance", Custom(queue_balance)),
            O::new("--queue-bypass", Flag),
            O::new("--queue-cpu-fanout", Flag),
            O::new("--fail-open", Flag),
        ],
    )
    .with(&[
        Exclusive(&["--queue-num", "--queue-balance"]),
        Needs("--queue-cpu-fanout", &["--queue-balance"]),
    ])
    .verdict(),
    Ext::t("NOTRACK", "leave the connection untracked", &[]).tables(&["raw"]),
    Ext::t(
        "RATEEST",
        "measure the rate of the packets it sees",
        &[
            O::new("--rateest-name", Text(15)),
            O::new("--rateest-interval", Text(16)),
            O::new("--rateest-ewmalog", Text(16)),
        ],
    )
    .with(&[
        Required("--rateest-name"),
        Required("--rateest-interval"),
        Required("--rateest-ewmalog"),
    ]),
    Ext::t(
        "REDIRECT",
        "send the packet to a local port",
        &[
            O::new("--to-ports", Custom(v::to_ports)),
            O::new("--random", Flag),
        ],
    )
    .tables(&["nat"])
    .hooks(hook::PRE | hook::OUT)
    .verdict(),
    Ext::t(
        "REJECT",
        "drop the packet and answer with an error",
        &[O::new("--reject-with", Enum(REJECT4))],
    )
    .v4()
    .tables(&["filter"])
    .hooks(hook::IN | hook::FWD | hook::OUT)
    .with(&[Check(reject)])
    .verdict(),
    Ext::t(
        "REJECT",
        "drop the packet and answer with an error",
        &[O::new("--reject-with", Enum(REJECT6))],
    )
    .v6()
    .tables(&["filter"])
    .hooks(hook::IN | hook::FWD | hook::OUT)
    .with(&[Check(reject)])
    .verdict(),
    Ext::t(
        "SECMARK",
        "set the packet's security mark",
        &[O::new("--selctx", Text(255))],
    )
    .tables(&["mangle", "security"])
    .with(&[Required("--selctx")]),
    Ext::t(
        "SET",
        "add to, delete from or look up an ipset",
        &[
            O::new("--add-set", Custom(v::set_name_flags)),
            O::new("--del-set", Custom(v::set_name_flags)),
            O::new("--map-set", Custom(v::set_name_flags)),
            O::new("--exist", Flag),
            O::new("--timeout", Num(0, U32)),
            O::new("--map-mark", Flag),
            O::new("--map-prio", Flag),
            O::new("--map-queue", Flag),
        ],
    )
    .with(&[AnyOf(&["--add-set", "--del-set", "--map-set"])]),
    Ext::t(
        "SNAT",
        "rewrite the source address and port",
        &[
            O::new("--to-source", Custom(v::nat_to)),
            O::new("--random", Flag),
            O::new("--random-fully", Flag),
            O::new("--persistent", Flag),
        ],
    )
    .tables(&["nat"])
    .hooks(hook::POST | hook::IN)
    .with(&[Required("--to-source")])
    .verdict(),
    Ext::t(
        "SNPT",
        "translate the source prefix (IPv6 NPTv6)",
        &[
            O::new("--src-pfx", Custom(npt_prefix)),
            O::new("--dst-pfx", Custom(npt_prefix)),
        ],
    )
    .v6()
    .tables(&["mangle"])
    .hooks(hook::IN | hook::POST)
    .with(&[Required("--src-pfx"), Required("--dst-pfx")]),
    Ext::t(
        "SYNPROXY",
        "answer TCP handshakes for a server behind",
        &[
            O::new("--sack-perm", Flag),
            O::new("--timestamp", Flag),
            O::new("--wscale", Num(0, 14)),
            O::new("--mss", Num(0, 65535)),
            O::new("--ecn", Flag),
        ],
    )
    .protos(&[TCP])
    .hooks(hook::IN | hook::FWD)
    .verdict(),
    Ext::t(
        "TCPMSS",
        "set or clamp the MSS of TCP SYNs",
        &[
            O::new("--set-mss", Num(0, 65535)),
            O::new("--clamp-mss-to-pmtu", Flag).hooks(hook::FWD | hook::OUT | hook::POST),
        ],
    )
    .protos(&[TCP])
    .with(&[
        AnyOf(&["--set-mss", "--clamp-mss-to-pmtu"]),
        Exclusive(&["--set-mss", "--clamp-mss-to-pmtu"]),
    ]),
    Ext::t(
        "TCPOPTSTRIP",
        "remove TCP options",
        &[O::new("--strip-options", Custom(strip_options))],
    )
    .protos(&[TCP])
    .tables(&["mangle"]),
    Ext::t(
        "TEE",
        "send a copy of the packet to a gateway",
        &[O::new("--gateway", Host), O::new("--oif", Iface)],
    )
    .with(&[Required("--gateway")]),
    Ext::t(
        "TOS",
        "set the TOS field",
        &[
            O::new("--set-tos", Custom(v::tos_value)),
            O::new("--and-tos", Num(0, 255)),
            O::new("--or-tos", Num(0, 255)),
            O::new("--xor-tos", Num(0, 255)),
        ],
    )
    .tables(&["mangle"])
    .with(&[
        AnyOf(&["--set-tos", "--and-tos", "--or-tos", "--xor-tos"]),
        Exclusive(&["--set-tos", "--and-tos", "--or-tos", "--xor-tos"]),
    ]),
    Ext::t(
        "TPROXY",
        "deliver to a local socket without changing the packet",
        &[
            O::new("--on-port", Port),
            O::new("--on-ip", Host),
            O::new("--tproxy-mark", Mark),
        ],
    )
    .protos(&[6, 17])
    .tables(&["mangle"])
    .hooks(hook::PRE)
    .with(&[Required("--on-port")])
    .verdict(),
    Ext::t("TRACE", "log the packet's walk through the rules", &[]),
    Ext::t(
        "TTL",
        "set, decrease or increase the IPv4 time to live",
        &[
            O::new("--ttl-set", Num(0, 255)),
            O::new("--ttl-dec", Num(1, 255)),
            O::new("--ttl-inc", Num(1, 255)),
        ],
    )
    .v4()
    .tables(&["mangle"])
    .with(&[
        AnyOf(&["--ttl-set", "--ttl-dec", "--ttl-inc"]),
        Exclusive(&["--ttl-set", "--ttl-dec", "--ttl-inc"]),
    ]),
    Ext::t(
        "ULOG",
        "log through ULOG netlink (removed from Linux 3.17)",
        &[
            O::new("--ulog-nlgroup", Num(1, 32)),
            O::new("--ulog-cprange", Num(0, U32)),
            O::new("--ulog-qthreshold", Num(1, 50)),
            O::new("--ulog-prefix", Text(31)),
        ],
    )
    .v4(),
    // Not shipped with iptables, met in real dumps: options not checked.
    Ext::t("JOOL", "NAT64 by the out-of-tree Jool module", &[])
        .free()
        .verdict(),
];

fn v_list(args: &[&str], _: &Given<'_>) -> Verdict {
    const EVENTS: &[&str] = &[
        "new",
        "related",
        "destroy",
        "reply",
        "assured",
        "protoinfo",
        "helper",
        "mark",
        "natseqinfo",
        "secmark",
        "label",
        "synproxy",
    ];
    let a = match v::one(args) {
        Ok(a) => a,
        Err(e) => return e,
    };
    match a.split(',').find(|w| !EVENTS.contains(w)) {
        None => Verdict::Ok,
        Some(w) => Verdict::Bad(0, format!("unknown event '{w}'")),
    }
}
