//! Typed views of well-known match modules and targets, computed from the
//! option lists the parser keeps.
//!
//! A view never fails: a value we cannot read stays `None` (or text), and a
//! module we don't know is [`KnownMatch::Other`]. The option list in the
//! model stays the source of truth.

use serde::Serialize;

use crate::model::{Match, Negatable, Opt, Str, Target, TargetKind};

pub use crate::matches::values::{MarkMask, PortRange, parse_port_list, parse_u32};

fn neg_arg(o: Opt<'_>) -> Negatable<Str> {
    Negatable {
        value: o.args.join(" ").into(),
        negated: o.negated,
        bang_after: o.bang_after,
    }
}

fn neg_ports(o: Opt<'_>) -> Negatable<Vec<PortRange>> {
    Negatable {
        value: parse_port_list(o.arg()),
        negated: o.negated,
        bang_after: o.bang_after,
    }
}

fn neg_mark(o: Opt<'_>) -> Option<Negatable<MarkMask>> {
    Some(Negatable {
        value: MarkMask::parse(o.arg())?,
        negated: o.negated,
        bang_after: o.bang_after,
    })
}

fn split_list(o: Opt<'_>) -> Negatable<Vec<Str>> {
    Negatable {
        value: o.arg().split(',').map(Str::from).collect(),
        negated: o.negated,
        bang_after: o.bang_after,
    }
}

/// Typed view of a match module.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum KnownMatch {
    /// `-m tcp`
    Tcp {
        /// `--sport`
        sport: Option<Negatable<Vec<PortRange>>>,
        /// `--dport`
        dport: Option<Negatable<Vec<PortRange>>>,
        /// `--tcp-flags MASK COMP` (or `--syn`, as `SYN,RST,ACK,FIN SYN`)
        flags: Option<Negatable<(Str, Str)>>,
        /// `--tcp-option`
        option: Option<Negatable<Str>>,
    },
    /// `-m udp`
    Udp {
        /// `--sport`
        sport: Option<Negatable<Vec<PortRange>>>,
        /// `--dport`
        dport: Option<Negatable<Vec<PortRange>>>,
    },
    /// `-m icmp` / `-m icmp6`
    Icmp {
        /// `--icmp-type` / `--icmpv6-type` as written (`8`, `3/4`, `echo-request`).
        icmp_type: Option<Negatable<Str>>,
    },
    /// `-m multiport`
    Multiport {
        /// `--sports`
        sports: Option<Negatable<Vec<PortRange>>>,
        /// `--dports`
        dports: Option<Negatable<Vec<PortRange>>>,
        /// `--ports` (either side)
        ports: Option<Negatable<Vec<PortRange>>>,
    },
    /// `-m conntrack` / `-m state`
    Conntrack {
        /// `--ctstate` / `--state`
        state: Option<Negatable<Vec<Str>>>,
        /// `--ctstatus`
        status: Option<Negatable<Vec<Str>>>,
        /// `--ctproto`
        proto: Option<Negatable<Str>>,
        /// `--ctorigsrc`
        orig_src: Option<Negatable<Str>>,
        /// `--ctorigdst`
        orig_dst: Option<Negatable<Str>>,
        /// `--ctorigdstport`
        orig_dst_port: Option<Negatable<Str>>,
        /// `--ctdir`
        dir: Option<Str>,
    },
    /// `-m comment`
    Comment {
        /// The text.
        text: Str,
    },
    /// `-m mark`
    Mark {
        /// `--mark value[/mask]`
        mark: Option<Negatable<MarkMask>>,
    },
    /// `-m connmark`
    Connmark {
        /// `--mark value[/mask]`
        mark: Option<Negatable<MarkMask>>,
    },
    /// `-m set`
    Set {
        /// `--match-set NAME FLAGS`
        name: Option<Negatable<Str>>,
        /// `src`, `dst`, `src,dst` ...
        flags: Option<Str>,
    },
    /// `-m addrtype`
    Addrtype {
        /// `--src-type`
        src_type: Option<Negatable<Vec<Str>>>,
        /// `--dst-type`
        dst_type: Option<Negatable<Vec<Str>>>,
        /// `--limit-iface-in`
        limit_iface_in: bool,
        /// `--limit-iface-out`
        limit_iface_out: bool,
    },
    /// `-m limit`
    Limit {
        /// `--limit 3/min`
        rate: Option<Str>,
        /// `--limit-burst`
        burst: Option<u32>,
    },
    /// `-m hashlimit`
    Hashlimit {
        /// `--hashlimit-name`
        name: Option<Str>,
        /// `--hashlimit-upto` / `--hashlimit-above` / `--hashlimit`
        rate: Option<Str>,
        /// True for `--hashlimit-above`.
        above: bool,
        /// `--hashlimit-mode`
        mode: Option<Str>,
    },
    /// `-m recent`
    Recent {
        /// `--name` (default `DEFAULT`)
        name: Str,
        /// `--set`, `--rcheck`, `--update` or `--remove`
        action: Option<Negatable<Str>>,
        /// `--seconds`
        seconds: Option<u32>,
        /// `--hitcount`
        hitcount: Option<u32>,
    },
    /// `-m statistic`
    Statistic {
        /// `random` or `nth`
        mode: Option<Str>,
        /// `--probability`
        probability: Option<f64>,
        /// `--every`
        every: Option<u32>,
        /// `--packet`
        packet: Option<u32>,
        /// `!` on the probability / every
        negated: bool,
    },
    /// `-m owner`
    Owner {
        /// `--uid-owner`
        uid: Option<Negatable<Str>>,
        /// `--gid-owner`
        gid: Option<Negatable<Str>>,
        /// `--socket-exists`
        socket_exists: bool,
    },
    /// `-m physdev`
    Physdev {
        /// `--physdev-in`
        phys_in: Option<Negatable<Str>>,
        /// `--physdev-out`
        phys_out: Option<Negatable<Str>>,
        /// `--physdev-is-bridged`
        is_bridged: Option<bool>,
    },
    /// `-m iprange`
    Iprange {
        /// `--src-range a-b`
        src_range: Option<Negatable<Str>>,
        /// `--dst-range a-b`
        dst_range: Option<Negatable<Str>>,
    },
    /// `-m mac`
    Mac {
        /// `--mac-source`
        source: Option<Negatable<Str>>,
    },
    /// `-m length` / `-m tcpmss`
    Length {
        /// `--length` / `--mss` as a range
        range: Option<Negatable<PortRange>>,
    },
    /// `-m rpfilter`
    Rpfilter {
        /// `--loose`
        loose: bool,
        /// `--validmark`
        validmark: bool,
        /// `--accept-local`
        accept_local: bool,
        /// `--invert`
        invert: bool,
    },
    /// `-m policy`
    Policy {
        /// `--dir in|out`
        dir: Option<Str>,
        /// `--pol none|ipsec`
        pol: Option<Str>,
    },
    /// `-m u32` kept as text
    U32 {
        /// `--u32` expression
        expr: Option<Negatable<Str>>,
    },
    /// Any other module: see the option list.
    Other,
}

impl<'a> Match<'a> {
    /// The first option whose name, read through the match table, is the
    /// canonical `name` (`--destination-port` is found as `--dport`).
    pub fn option(&self, name: &str) -> Option<Opt<'a>> {
        match crate::matches::match_ext(self.module) {
            Some(ext) => self
                .opts
                .iter()
                .find(|o| o.name == name || ext.canonical(o.name) == Some(name)),
            None => self.opt(name),
        }
    }

    /// The typed view of this match.
    pub fn typed(&self) -> KnownMatch {
        let o = |n: &str| self.option(n);
        let has = |n: &str| self.option(n).is_some();
        match self.module {
            "tcp" => KnownMatch::Tcp {
                sport: o("--sport").map(neg_ports),
                dport: o("--dport").map(neg_ports),
                flags: o("--tcp-flags")
                    .map(|f| Negatable {
                        value: (
                            f.args.first().map(Str::from).unwrap_or_default(),
                            f.args.get(1).map(Str::from).unwrap_or_default(),
                        ),
                        negated: f.negated,
                        bang_after: f.bang_after,
                    })
                    .or_else(|| {
                        o("--syn").map(|f| Negatable {
                            value: ("FIN,SYN,RST,ACK".into(), "SYN".into()),
                            negated: f.negated,
                            bang_after: f.bang_after,
                        })
                    }),
                option: o("--tcp-option").map(neg_arg),
            },
            "udp" | "udplite" => KnownMatch::Udp {
                sport: o("--sport").map(neg_ports),
                dport: o("--dport").map(neg_ports),
            },
            "icmp" | "icmp6" | "icmpv6" => KnownMatch::Icmp {
                icmp_type: o("--icmp-type").or(o("--icmpv6-type")).map(neg_arg),
            },
            "multiport" => KnownMatch::Multiport {
                sports: o("--sports").map(neg_ports),
                dports: o("--dports").map(neg_ports),
                ports: o("--ports").map(neg_ports),
            },
            "conntrack" | "state" => KnownMatch::Conntrack {
                state: o("--ctstate").or(o("--state")).map(split_list),
                status: o("--ctstatus").map(split_list),
                proto: o("--ctproto").map(neg_arg),
                orig_src: o("--ctorigsrc").map(neg_arg),
                orig_dst: o("--ctorigdst").map(neg_arg),
                orig_dst_port: o("--ctorigdstport").map(neg_arg),
                dir: o("--ctdir").map(|d| d.arg().into()),
            },
            "comment" => KnownMatch::Comment {
                text: o("--comment").map(|c| c.arg().into()).unwrap_or_default(),
            },
            "mark" => KnownMatch::Mark {
                mark: o("--mark").and_then(neg_mark),
            },
            "connmark" => KnownMatch::Connmark {
                mark: o("--mark").and_then(neg_mark),
            },
            "set" => {
                let s = o("--match-set");
                KnownMatch::Set {
                    name: s.map(|s| Negatable {
                        value: s.arg().into(),
                        negated: s.negated,
                        bang_after: s.bang_after,
                    }),
                    flags: s.and_then(|s| s.args.get(1).map(Str::from)),
                }
            }
            "addrtype" => KnownMatch::Addrtype {
                src_type: o("--src-type").map(split_list),
                dst_type: o("--dst-type").map(split_list),
                limit_iface_in: has("--limit-iface-in"),
                limit_iface_out: has("--limit-iface-out"),
            },
            "limit" => KnownMatch::Limit {
                rate: o("--limit").map(|x| x.arg().into()),
                burst: o("--limit-burst").and_then(|x| x.arg().parse().ok()),
            },
            "hashlimit" => {
                let above = o("--hashlimit-above");
                KnownMatch::Hashlimit {
                    name: o("--hashlimit-name").map(|x| x.arg().into()),
                    rate: above.or(o("--hashlimit-upto")).map(|x| x.arg().into()),
                    above: above.is_some(),
                    mode: o("--hashlimit-mode").map(|x| x.arg().into()),
                }
            }
            "recent" => KnownMatch::Recent {
                name: o("--name")
                    .map(|x| x.arg().into())
                    .unwrap_or("DEFAULT".into()),
                action: ["--set", "--rcheck", "--update", "--remove"]
                    .iter()
                    .find_map(|n| o(n))
                    .map(|x| Negatable {
                        value: x.name.trim_start_matches('-').into(),
                        negated: x.negated,
                        bang_after: x.bang_after,
                    }),
                seconds: o("--seconds").and_then(|x| x.arg().parse().ok()),
                hitcount: o("--hitcount").and_then(|x| x.arg().parse().ok()),
            },
            "statistic" => {
                let p = o("--probability");
                let e = o("--every");
                KnownMatch::Statistic {
                    mode: o("--mode").map(|x| x.arg().into()),
                    probability: p.and_then(|x| x.arg().parse().ok()),
                    every: e.and_then(|x| x.arg().parse().ok()),
                    packet: o("--packet").and_then(|x| x.arg().parse().ok()),
                    negated: p.or(e).is_some_and(|x| x.negated),
                }
            }
            "owner" => KnownMatch::Owner {
                uid: o("--uid-owner").map(neg_arg),
                gid: o("--gid-owner").map(neg_arg),
                socket_exists: has("--socket-exists"),
            },
            "physdev" => KnownMatch::Physdev {
                phys_in: o("--physdev-in").map(neg_arg),
                phys_out: o("--physdev-out").map(neg_arg),
                is_bridged: o("--physdev-is-bridged").map(|x| !x.negated),
            },
            "iprange" => KnownMatch::Iprange {
                src_range: o("--src-range").map(neg_arg),
                dst_range: o("--dst-range").map(neg_arg),
            },
            "mac" => KnownMatch::Mac {
                source: o("--mac-source").map(neg_arg),
            },
            "length" | "tcpmss" => KnownMatch::Length {
                range: o("--length").or(o("--mss")).and_then(|x| {
                    Some(Negatable {
                        value: PortRange::parse(x.arg())?,
                        negated: x.negated,
                        bang_after: x.bang_after,
                    })
                }),
            },
            "rpfilter" => KnownMatch::Rpfilter {
                loose: has("--loose"),
                validmark: has("--validmark"),
                accept_local: has("--accept-local"),
                invert: has("--invert"),
            },
            "policy" => KnownMatch::Policy {
                dir: o("--dir").map(|x| x.arg().into()),
                pol: o("--pol").map(|x| x.arg().into()),
            },
            "u32" => KnownMatch::U32 {
                expr: o("--u32").map(neg_arg),
            },
            _ => KnownMatch::Other,
        }
    }
}

/// Typed view of a target.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum KnownTarget {
    /// `ACCEPT`
    Accept,
    /// `DROP`
    Drop,
    /// `RETURN`
    Return,
    /// `QUEUE`
    Queue,
    /// `REJECT [--reject-with TYPE]`
    Reject {
        /// ICMP type sent, if given.
        with: Option<Str>,
    },
    /// `NFQUEUE`
    Nfqueue {
        /// `--queue-num` / `--queue-balance`
        queue: Option<Str>,
        /// `--queue-bypass`
        bypass: bool,
    },
    /// A user chain (`-j` or `-g`).
    Chain {
        /// Chain name.
        name: Str,
        /// `-g`
        goto: bool,
    },
    /// `LOG`
    Log {
        /// `--log-prefix`
        prefix: Option<Str>,
        /// `--log-level`
        level: Option<Str>,
    },
    /// `NFLOG`
    Nflog {
        /// `--nflog-group`
        group: Option<u32>,
        /// `--nflog-prefix`
        prefix: Option<Str>,
    },
    /// `MARK` / `CONNMARK`
    Mark {
        /// true for CONNMARK
        conn: bool,
        /// Option name (`--set-xmark`, `--set-mark`, `--save-mark`, ...)
        op: Str,
        /// Its value, if any.
        value: Option<Str>,
    },
    /// `CT` / `NOTRACK`
    Ct {
        /// `--notrack` or the NOTRACK target
        notrack: bool,
        /// `--zone`
        zone: Option<Str>,
        /// `--helper`
        helper: Option<Str>,
    },
    /// `DNAT` / `SNAT` / `MASQUERADE` / `REDIRECT` / `NETMAP`
    Nat {
        /// Target name.
        name: Str,
        /// `--to-destination` / `--to-source` / `--to-ports` / `--to`
        to: Option<Str>,
        /// `--random`, `--persistent`, ... present
        random: bool,
    },
    /// `TPROXY`
    Tproxy {
        /// `--on-port`
        port: Option<Str>,
        /// `--tproxy-mark`
        mark: Option<Str>,
    },
    /// `TCPMSS`
    Tcpmss {
        /// `--set-mss` value or `clamp-to-pmtu`
        mss: Option<Str>,
    },
    /// Any other extension target: see the option list.
    Other,
}

pub use crate::matches::{is_known_target, is_terminating_target};

impl Target<'_> {
    /// The typed view of this target.
    pub fn typed(&self) -> KnownTarget {
        let o = |n: &str| self.opt(n);
        let val = |n: &str| o(n).map(|x| Str::from(x.args.join(" ")));
        if self.kind == TargetKind::Chain || self.kind == TargetKind::Undefined {
            return KnownTarget::Chain {
                name: Str::from(self.name),
                goto: self.goto,
            };
        }
        match self.name {
            "ACCEPT" => KnownTarget::Accept,
            "DROP" => KnownTarget::Drop,
            "RETURN" => KnownTarget::Return,
            "QUEUE" => KnownTarget::Queue,
            "REJECT" => KnownTarget::Reject {
                with: val("--reject-with"),
            },
            "NFQUEUE" => KnownTarget::Nfqueue {
                queue: val("--queue-num").or(val("--queue-balance")),
                bypass: o("--queue-bypass").is_some(),
            },
            "LOG" => KnownTarget::Log {
                prefix: val("--log-prefix"),
                level: val("--log-level"),
            },
            "NFLOG" => KnownTarget::Nflog {
                group: o("--nflog-group").and_then(|x| x.arg().parse().ok()),
                prefix: val("--nflog-prefix"),
            },
            "MARK" | "CONNMARK" => {
                let first = self.opts.first();
                KnownTarget::Mark {
                    conn: self.name == "CONNMARK",
                    op: first.map(|x| Str::from(x.name)).unwrap_or_default(),
                    value: first.and_then(|x| x.args.first().map(Str::from)),
                }
            }
            "CT" | "NOTRACK" => KnownTarget::Ct {
                notrack: self.name == "NOTRACK" || o("--notrack").is_some(),
                zone: val("--zone"),
                helper: val("--helper"),
            },
            "DNAT" | "SNAT" | "MASQUERADE" | "REDIRECT" | "NETMAP" | "SAME" => KnownTarget::Nat {
                name: Str::from(self.name),
                to: val("--to-destination")
                    .or(val("--to-source"))
                    .or(val("--to-ports"))
                    .or(val("--to")),
                random: o("--random").is_some()
                    || o("--random-fully").is_some()
                    || o("--persistent").is_some(),
            },
            "TPROXY" => KnownTarget::Tproxy {
                port: val("--on-port"),
                mark: val("--tproxy-mark"),
            },
            "TCPMSS" => KnownTarget::Tcpmss {
                mss: val("--set-mss").or(o("--clamp-mss-to-pmtu").map(|_| "clamp-to-pmtu".into())),
            },
            _ => KnownTarget::Other,
        }
    }

    /// True when the packet's walk through this table ends here (when the
    /// rule matches).
    pub fn is_terminating(&self) -> bool {
        match self.kind {
            TargetKind::Chain | TargetKind::Undefined => false,
            _ => is_terminating_target(self.name),
        }
    }
}
