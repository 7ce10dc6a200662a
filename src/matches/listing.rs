//! How `iptables -L` prints each match module and target, and the
//! `iptables-save` words each printed piece stands for: the `-L` column of
//! the match table. The reader in `crate::parse::listing` walks a rule's
//! printed text with these forms; nothing else about `-L` is known there.
//!
//! A form is two small templates, words separated by single spaces:
//!
//! - `listed`, what `-L` prints. A word is matched against one printed word:
//!   literal text, `{name}` (captures up to the next literal text of the
//!   word, or its end) and `{!}` (an optional `!`: glued to the word, or a
//!   word of its own when `{!}` stands alone). `{name*}` captures raw text
//!   over several words: inside a word with text around it (`"{p*}"`) up to
//!   that closing text followed by a blank; alone, up to the next word of
//!   the template (`/* {c*} */`).
//! - `saved`, the words `iptables-save` writes for it. `{!}` becomes `!` when
//!   the listed `!` was there; `{name}` is the captured text;
//!   `{name:conv}` passes it through a conversion (see [`Conv`]), which may
//!   give several words or none.
//!
//! A form either opens a new match (its first word names the module, as
//! `tcp` or `multiport` do), continues the one open (`dpt:22` after `tcp`),
//! or both (conntrack prints `ctstate` and `ctproto` with no module word).
//!
//! To teach the reader a module or target, add an [`Entry`] here.

/// Whether an entry is a match module (`-m NAME`) or a target (`-j NAME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `-m NAME`
    Match,
    /// `-j NAME`
    Target,
}

/// Where a form may stand in the printed text of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Starts a new match (or the target's text).
    Opens,
    /// Continues the match (or target) open before it.
    Continues,
    /// Either.
    Anywhere,
}

/// One printed piece of a module or target and the saved words it means.
#[derive(Debug, Clone, Copy)]
pub struct Form {
    /// What `iptables -L` prints.
    pub listed: &'static str,
    /// What `iptables-save` writes for it.
    pub saved: &'static str,
    /// Where it may stand.
    pub place: Place,
    /// The saved words are left out when the first capture has this value
    /// (a default that `iptables-save` does not print).
    pub unless: Option<&'static str>,
    /// A target printed under another name in the target column (`-j
    /// NOTRACK` is listed as `CT`): the name `iptables-save` writes.
    pub rename: Option<&'static str>,
}

impl Form {
    const fn new(place: Place, listed: &'static str, saved: &'static str) -> Form {
        Form {
            listed,
            saved,
            place,
            unless: None,
            rename: None,
        }
    }

    /// Leaves the saved words out when the first capture is `v`.
    const fn unless(mut self, v: &'static str) -> Form {
        self.unless = Some(v);
        self
    }

    /// The target is saved under this name.
    const fn rename(mut self, name: &'static str) -> Form {
        self.rename = Some(name);
        self
    }
}

/// A form that opens a match.
const fn head(listed: &'static str, saved: &'static str) -> Form {
    Form::new(Place::Opens, listed, saved)
}

/// A form that continues the open match.
const fn opt(listed: &'static str, saved: &'static str) -> Form {
    Form::new(Place::Continues, listed, saved)
}

/// A form that opens a match or continues one of the same module.
const fn any(listed: &'static str, saved: &'static str) -> Form {
    Form::new(Place::Anywhere, listed, saved)
}

/// Conversions a saved template can apply to a captured value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conv {
    /// `0x17` -> `FIN,SYN,RST,ACK` (names pass through).
    TcpFlags,
    /// `0xffffff00` -> `0xff`: the mask a `MARK and` keeps, inverted.
    Not32,
    /// `srcip-dstport` -> `srcip,dstport` (hashlimit modes).
    DashToComma,
    /// ICMP type 255 -> `any`.
    IcmpAny,
    /// LOG `flags N` -> `--log-tcp-sequence` ... (none for 0).
    LogFlags,
    /// LOG `level N` or a level name -> `--log-level N` (none for 4).
    LogLevel,
}

impl Conv {
    /// The conversion named in a template.
    pub fn by_name(name: &str) -> Option<Conv> {
        Some(match name {
            "tcpflags" => Conv::TcpFlags,
            "not32" => Conv::Not32,
            "dashcomma" => Conv::DashToComma,
            "icmpany" => Conv::IcmpAny,
            "logflags" => Conv::LogFlags,
            "loglevel" => Conv::LogLevel,
            _ => return None,
        })
    }

    /// The saved words for `v`: `(word, is_value)` pairs; `None` when `v`
    /// cannot be converted (the piece is then kept as opaque text).
    pub fn apply(self, v: &str) -> Option<Vec<(String, bool)>> {
        let val = |s: String| vec![(s, true)];
        match self {
            Conv::TcpFlags => Some(val(tcp_flags(v)?)),
            Conv::Not32 => {
                let n = parse_hex_or_dec(v)?;
                Some(val(format!("{:#x}", !n)))
            }
            Conv::DashToComma => Some(val(v.replace('-', ","))),
            Conv::IcmpAny => Some(val(if v == "255" { "any".into() } else { v.into() })),
            Conv::LogFlags => {
                let n = parse_hex_or_dec(v)?;
                let mut out = Vec::new();
                for (bit, name) in LOG_FLAGS {
                    if n & bit != 0 {
                        out.push((name.to_string(), false));
                    }
                }
                (n & !LOG_FLAGS.iter().fold(0, |a, (b, _)| a | b) == 0).then_some(out)
            }
            Conv::LogLevel => {
                let n = match v.parse::<u8>() {
                    Ok(n) if n <= 7 => n,
                    Ok(_) => return None,
                    Err(_) => LOG_LEVELS.iter().find(|(n, _)| *n == v)?.1,
                };
                Some(if n == 4 {
                    Vec::new()
                } else {
                    vec![("--log-level".into(), false), (n.to_string(), true)]
                })
            }
        }
    }
}

/// LOG flag bits and the options that set them, in save order.
const LOG_FLAGS: [(u32, &str); 5] = [
    (0x01, "--log-tcp-sequence"),
    (0x02, "--log-tcp-options"),
    (0x04, "--log-ip-options"),
    (0x08, "--log-uid"),
    (0x20, "--log-macdecode"),
];

/// Syslog level names `iptables -L` prints (old and new spellings).
const LOG_LEVELS: [(&str, u8); 11] = [
    ("emerg", 0),
    ("panic", 0),
    ("alert", 1),
    ("crit", 2),
    ("err", 3),
    ("error", 3),
    ("warn", 4),
    ("warning", 4),
    ("notice", 5),
    ("info", 6),
    ("debug", 7),
];

fn parse_hex_or_dec(v: &str) -> Option<u32> {
    match v.strip_prefix("0x") {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    }
}

/// TCP flag bits by name, in the order `iptables-save` names them.
const TCP_FLAGS: [(u32, &str); 6] = [
    (0x01, "FIN"),
    (0x02, "SYN"),
    (0x04, "RST"),
    (0x08, "PSH"),
    (0x10, "ACK"),
    (0x20, "URG"),
];

fn tcp_flags(v: &str) -> Option<String> {
    if !v.starts_with("0x") {
        return Some(v.to_string());
    }
    let n = parse_hex_or_dec(v)?;
    if n == 0 {
        return Some("NONE".into());
    }
    if n & !0x3f != 0 {
        return None;
    }
    let names: Vec<&str> = TCP_FLAGS
        .iter()
        .filter(|(b, _)| n & b != 0)
        .map(|(_, s)| *s)
        .collect();
    Some(names.join(","))
}

/// One module or target.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// The name `iptables-save` writes after `-m` or `-j`.
    pub name: &'static str,
    /// Match or target.
    pub kind: Kind,
    /// The name in the target column when it differs (`NOTRACK` is listed
    /// as `CT`); targets only.
    pub listed_as: Option<&'static str>,
    /// Its printed pieces, tried in order.
    pub forms: &'static [Form],
    /// What `-L` never prints of it, said once when a rule uses it.
    pub lost: Option<&'static str>,
}

const fn m(name: &'static str, forms: &'static [Form]) -> Entry {
    Entry {
        name,
        kind: Kind::Match,
        listed_as: None,
        forms,
        lost: None,
    }
}

const fn t(name: &'static str, forms: &'static [Form]) -> Entry {
    Entry {
        name,
        kind: Kind::Target,
        listed_as: None,
        forms,
        lost: None,
    }
}

const fn lost(mut e: Entry, what: &'static str) -> Entry {
    e.lost = Some(what);
    e
}

const fn listed_as(mut e: Entry, name: &'static str) -> Entry {
    e.listed_as = Some(name);
    e
}

/// Port options the tcp, udp, sctp and dccp matches print alike.
macro_rules! port_forms {
    ($head:literal $(, $extra:expr)*) => {
        &[
            head($head, ""),
            opt("spt:{!}{p}", "{!} --sport {p}"),
            opt("spts:{!}{p}", "{!} --sport {p}"),
            opt("dpt:{!}{p}", "{!} --dport {p}"),
            opt("dpts:{!}{p}", "{!} --dport {p}"),
            $($extra,)*
        ]
    };
}

/// Forms shared by MARK and CONNMARK (`--set-xmark` in all its spellings).
macro_rules! xmark_forms {
    ($n:literal $(, $extra:expr)*) => {
        &[
            $($extra,)*
            head(concat!($n, " and {x}"), "--set-xmark 0x0/{x:not32}"),
            head(concat!($n, " or {x}"), "--set-xmark {x}/{x}"),
            head(concat!($n, " xor {x}"), "--set-xmark {x}/0x0"),
            head(concat!($n, " set {x}"), "--set-xmark {x}/0xffffffff"),
            head(concat!($n, " xset {x}"), "--set-xmark {x}"),
        ]
    };
}

/// Every module and target the reader knows, matches first. Within an
/// entry, forms are tried in order, so a longer form comes before a shorter
/// one it starts with.
pub static TABLE: &[Entry] = &[
    m(
        "tcp",
        port_forms!(
            "tcp",
            opt(
                "flags:{!}{m}/{c}",
                "{!} --tcp-flags {m:tcpflags} {c:tcpflags}"
            ),
            opt("option={!}{n}", "{!} --tcp-option {n}")
        ),
    ),
    m("udp", port_forms!("udp")),
    m("sctp", port_forms!("sctp")),
    m("dccp", port_forms!("dccp")),
    m(
        "multiport",
        &[
            head("multiport", ""),
            opt("dports {!}{p}", "{!} --dports {p}"),
            opt("sports {!}{p}", "{!} --sports {p}"),
            opt("ports {!}{p}", "{!} --ports {p}"),
        ],
    ),
    m(
        "conntrack",
        &[
            any("{!} ctstate {v}", "{!} --ctstate {v}"),
            any("{!} ctproto {v}", "{!} --ctproto {v}"),
            any("{!} ctorigsrc {v}", "{!} --ctorigsrc {v}"),
            any("{!} ctorigdst {v}", "{!} --ctorigdst {v}"),
            any("{!} ctreplsrc {v}", "{!} --ctreplsrc {v}"),
            any("{!} ctrepldst {v}", "{!} --ctrepldst {v}"),
            any("{!} ctorigsrcport {v}", "{!} --ctorigsrcport {v}"),
            any("{!} ctorigdstport {v}", "{!} --ctorigdstport {v}"),
            any("{!} ctreplsrcport {v}", "{!} --ctreplsrcport {v}"),
            any("{!} ctrepldstport {v}", "{!} --ctrepldstport {v}"),
            any("{!} ctstatus {v}", "{!} --ctstatus {v}"),
            any("{!} ctexpire {v}", "{!} --ctexpire {v}"),
            any("ctdir {v}", "--ctdir {v}"),
        ],
    ),
    m("state", &[head("{!} state {v}", "{!} --state {v}")]),
    m("comment", &[head("/* {c*} */", "--comment {c}")]),
    m("mark", &[head("mark match {!} {v}", "{!} --mark {v}")]),
    m(
        "connmark",
        &[head("connmark match {!} {v}", "{!} --mark {v}")],
    ),
    m(
        "addrtype",
        &[
            head("ADDRTYPE match", ""),
            opt("src-type {!}{v}", "{!} --src-type {v}"),
            opt("dst-type {!}{v}", "{!} --dst-type {v}"),
            opt("limit-in", "--limit-iface-in"),
            opt("limit-out", "--limit-iface-out"),
        ],
    ),
    m(
        "limit",
        &[
            head("limit: avg {r}", "--limit {r}"),
            opt("burst {b}", "--limit-burst {b}").unless("5"),
        ],
    ),
    lost(
        m(
            "hashlimit",
            &[
                head("limit: up to {r}", "--hashlimit-upto {r}"),
                head("limit: above {r}", "--hashlimit-above {r}"),
                opt("burst {b}", "--hashlimit-burst {b}"),
                opt("mode {v}", "--hashlimit-mode {v:dashcomma}"),
                opt("htable-size {v}", "--hashlimit-htable-size {v}"),
                opt("htable-max {v}", "--hashlimit-htable-max {v}"),
                opt("htable-gcinterval {v}", "--hashlimit-htable-gcinterval {v}"),
                opt("htable-expire {v}", "--hashlimit-htable-expire {v}"),
                opt("srcmask {v}", "--hashlimit-srcmask {v}"),
                opt("dstmask {v}", "--hashlimit-dstmask {v}"),
            ],
        ),
        "the table name (--hashlimit-name)",
    ),
    m(
        "recent",
        &[
            head("{!} recent: CHECK", "{!} --rcheck"),
            head("{!} recent: SET", "{!} --set"),
            head("{!} recent: UPDATE", "{!} --update"),
            head("{!} recent: REMOVE", "{!} --remove"),
            opt("seconds: {v}", "--seconds {v}"),
            opt("reap", "--reap"),
            opt("hit_count: {v}", "--hitcount {v}"),
            opt("TTL-Match", "--rttl"),
            opt("name: {v}", "--name {v}"),
            opt("side: source", "--rsource"),
            opt("side: dest", "--rdest"),
            opt("mask: {v}", "--mask {v}"),
        ],
    ),
    m(
        "set",
        &[
            head("{!} match-set {n} {f}", "{!} --match-set {n} {f}"),
            opt("return-nomatch", "--return-nomatch"),
            opt("! update-counters", "! --update-counters"),
            opt("! update-subcounters", "! --update-subcounters"),
        ],
    ),
    m(
        "physdev",
        &[
            head("PHYSDEV match", ""),
            opt("{!} --physdev-in {v}", "{!} --physdev-in {v}"),
            opt("{!} --physdev-out {v}", "{!} --physdev-out {v}"),
            opt("{!} --physdev-is-in", "{!} --physdev-is-in"),
            opt("{!} --physdev-is-out", "{!} --physdev-is-out"),
            opt("{!} --physdev-is-bridged", "{!} --physdev-is-bridged"),
        ],
    ),
    m(
        "owner",
        &[
            any("{!} owner socket exists", "{!} --socket-exists"),
            any("{!} owner UID match {v}", "{!} --uid-owner {v}"),
            any("{!} owner GID match {v}", "{!} --gid-owner {v}"),
            any("owner GID-supplementary", "--suppl-groups"),
        ],
    ),
    m(
        "icmp",
        &[
            head("icmptype {t} code {c}", "--icmp-type {t}/{c}"),
            head("icmptype {t}", "--icmp-type {t:icmpany}"),
            head("icmp {!}type {t} code {c}", "{!} --icmp-type {t}/{c}"),
            head("icmp {!}type {t}", "{!} --icmp-type {t:icmpany}"),
            head("icmp {!}{t}", "{!} --icmp-type {t}"),
        ],
    ),
    m(
        "icmp6",
        &[
            head("ipv6-icmptype {t} code {c}", "--icmpv6-type {t}/{c}"),
            head("ipv6-icmptype {t}", "--icmpv6-type {t}"),
            head(
                "ipv6-icmp {!}type {t} code {c}",
                "{!} --icmpv6-type {t}/{c}",
            ),
            head("ipv6-icmp {!}type {t}", "{!} --icmpv6-type {t}"),
            head("ipv6-icmp {!}{t}", "{!} --icmpv6-type {t}"),
        ],
    ),
    m(
        "iprange",
        &[
            any("source IP range {!} {v}", "{!} --src-range {v}"),
            any("destination IP range {!} {v}", "{!} --dst-range {v}"),
        ],
    ),
    m(
        "pkttype",
        &[
            head("PKTTYPE = {v}", "--pkt-type {v}"),
            head("PKTTYPE != {v}", "! --pkt-type {v}"),
        ],
    ),
    m(
        "ttl",
        &[
            head("TTL match TTL == {v}", "--ttl-eq {v}"),
            head("TTL match TTL != {v}", "! --ttl-eq {v}"),
            head("TTL match TTL < {v}", "--ttl-lt {v}"),
            head("TTL match TTL > {v}", "--ttl-gt {v}"),
        ],
    ),
    m(
        "hl",
        &[
            head("HL match HL == {v}", "--hl-eq {v}"),
            head("HL match HL != {v}", "! --hl-eq {v}"),
            head("HL match HL < {v}", "--hl-lt {v}"),
            head("HL match HL > {v}", "--hl-gt {v}"),
        ],
    ),
    m("length", &[head("length {!}{v}", "{!} --length {v}")]),
    m("mac", &[head("MAC {!} {v}", "{!} --mac-source {v}")]),
    m(
        "statistic",
        &[
            head(
                "statistic mode random {!}probability {p}",
                "--mode random {!} --probability {p}",
            ),
            head(
                "statistic mode nth {!}every {e} packet {p}",
                "--mode nth {!} --every {e} --packet {p}",
            ),
        ],
    ),
    m(
        "connlimit",
        &[
            head(
                "#conn src/{m} > {n}",
                "--connlimit-above {n} --connlimit-mask {m} --connlimit-saddr",
            ),
            head(
                "#conn src/{m} <= {n}",
                "--connlimit-upto {n} --connlimit-mask {m} --connlimit-saddr",
            ),
            head(
                "#conn dst/{m} > {n}",
                "--connlimit-above {n} --connlimit-mask {m} --connlimit-daddr",
            ),
            head(
                "#conn dst/{m} <= {n}",
                "--connlimit-upto {n} --connlimit-mask {m} --connlimit-daddr",
            ),
        ],
    ),
    m("tcpmss", &[head("tcpmss match {!}{v}", "{!} --mss {v}")]),
    m("dscp", &[head("DSCP match {!}{v}", "{!} --dscp {v}")]),
    m(
        "string",
        &[
            head("STRING match {!} \"{s*}\"", "{!} --string {s}"),
            opt("ALGO name {v}", "--algo {v}"),
            opt("FROM {v}", "--from {v}"),
            opt("TO {v}", "--to {v}"),
            opt("ICASE", "--icase"),
        ],
    ),
    m(
        "policy",
        &[
            head("policy match dir {v}", "--dir {v}"),
            opt("pol {v}", "--pol {v}"),
            opt("strict", "--strict"),
        ],
    ),
    m(
        "helper",
        &[head("helper match {!} \"{h*}\"", "{!} --helper {h}")],
    ),
    m(
        "rt",
        &[
            head("rt", ""),
            opt("type:{!}{v}", "{!} --rt-type {v}"),
            opt("segsleft:{!}{v}", "{!} --rt-segsleft {v}"),
            opt("length:{!}{v}", "{!} --rt-len {v}"),
        ],
    ),
    m(
        "rpfilter",
        &[
            head("rpfilter", ""),
            opt("loose", "--loose"),
            opt("validmark", "--validmark"),
            opt("accept-local", "--accept-local"),
            opt("invert", "--invert"),
        ],
    ),
    // Targets.
    t("REJECT", &[head("reject-with {v}", "--reject-with {v}")]),
    t(
        "LOG",
        &[
            head("LOG flags {f} level {l}", "{l:loglevel} {f:logflags}"),
            head("LOG level {l}", "{l:loglevel}"),
            opt("tcp-sequence", "--log-tcp-sequence"),
            opt("tcp-options", "--log-tcp-options"),
            opt("ip-options", "--log-ip-options"),
            opt("uid", "--log-uid"),
            opt("macdecode", "--log-macdecode"),
            opt("prefix \"{p*}\"", "--log-prefix {p}"),
        ],
    ),
    t(
        "DNAT",
        &[
            head("to:{v}", "--to-destination {v}"),
            any("random", "--random"),
            any("persistent", "--persistent"),
        ],
    ),
    t(
        "SNAT",
        &[
            head("to:{v}", "--to-source {v}"),
            any("random", "--random"),
            any("random-fully", "--random-fully"),
            any("persistent", "--persistent"),
        ],
    ),
    t(
        "MASQUERADE",
        &[
            head("masq ports: {v}", "--to-ports {v}"),
            any("random", "--random"),
            any("random-fully", "--random-fully"),
        ],
    ),
    t(
        "REDIRECT",
        &[
            head("redir ports {v}", "--to-ports {v}"),
            any("random", "--random"),
        ],
    ),
    t("MARK", xmark_forms!("MARK")),
    t(
        "CONNMARK",
        xmark_forms!(
            "CONNMARK",
            head(
                "CONNMARK save mask {m}",
                "--save-mark --nfmask {m} --ctmask {m}"
            ),
            head(
                "CONNMARK restore mask {m}",
                "--restore-mark --nfmask {m} --ctmask {m}"
            ),
            head(
                "CONNMARK save",
                "--save-mark --nfmask 0xffffffff --ctmask 0xffffffff"
            ),
            head(
                "CONNMARK restore",
                "--restore-mark --nfmask 0xffffffff --ctmask 0xffffffff"
            )
        ),
    ),
    listed_as(t("NOTRACK", &[head("NOTRACK", "").rename("NOTRACK")]), "CT"),
    t(
        "CT",
        &[
            head("CT", ""),
            opt("notrack", "--notrack"),
            opt("helper {v}", "--helper {v}"),
            opt("zone {v}", "--zone {v}"),
            opt("timeout {v}", "--timeout {v}"),
            opt("ctevents {v}", "--ctevents {v}"),
            opt("expevents {v}", "--expevents {v}"),
        ],
    ),
    t("CHECKSUM", &[head("CHECKSUM fill", "--checksum-fill")]),
    t(
        "TCPMSS",
        &[
            head("TCPMSS clamp to PMTU", "--clamp-mss-to-pmtu"),
            head("TCPMSS set {v}", "--set-mss {v}"),
        ],
    ),
    t(
        "NFLOG",
        &[
            any("nflog-prefix \"{p*}\"", "--nflog-prefix {p}"),
            any("nflog-group {v}", "--nflog-group {v}"),
            any("nflog-size {v}", "--nflog-size {v}"),
            any("nflog-range {v}", "--nflog-range {v}"),
            any("nflog-threshold {v}", "--nflog-threshold {v}"),
        ],
    ),
    t(
        "NFQUEUE",
        &[
            head("NFQUEUE num {v}", "--queue-num {v}"),
            head("NFQUEUE balance {v}", "--queue-balance {v}"),
            opt("bypass", "--queue-bypass"),
            opt("cpu-fanout", "--queue-cpu-fanout"),
        ],
    ),
    t("TOS", &[head("TOS set {v}", "--set-tos {v}")]),
    t("DSCP", &[head("DSCP set {v}", "--set-dscp {v}")]),
    t(
        "TTL",
        &[
            head("TTL set to {v}", "--ttl-set {v}"),
            head("TTL decrement by {v}", "--ttl-dec {v}"),
            head("TTL increment by {v}", "--ttl-inc {v}"),
        ],
    ),
    t(
        "HL",
        &[
            head("HL set to {v}", "--hl-set {v}"),
            head("HL decrement by {v}", "--hl-dec {v}"),
            head("HL increment by {v}", "--hl-inc {v}"),
        ],
    ),
    t("AUDIT", &[head("AUDIT {v}", "--type {v}")]),
    t("CLASSIFY", &[head("CLASSIFY set {v}", "--set-class {v}")]),
    t(
        "SET",
        &[
            head("add-set {n} {f}", "--add-set {n} {f}"),
            head("del-set {n} {f}", "--del-set {n} {f}"),
            opt("exist", "--exist"),
            opt("timeout {v}", "--timeout {v}"),
        ],
    ),
];

/// The entries for match modules, in table order.
pub fn matches() -> impl Iterator<Item = &'static Entry> {
    TABLE.iter().filter(|e| e.kind == Kind::Match)
}

/// The entries a target listed under `column` may be (`CT` is CT or
/// NOTRACK), in table order.
pub fn targets_listed_as(column: &str) -> impl Iterator<Item = &'static Entry> + '_ {
    TABLE
        .iter()
        .filter(move |e| e.kind == Kind::Target && e.listed_as.unwrap_or(e.name) == column)
}

/// Protocol numbers `-L -n` prints and the names `iptables-save` writes for
/// them (`0` is any protocol: no `-p`).
pub const PROTOCOLS: &[(u8, &str)] = &[
    (1, "icmp"),
    (2, "igmp"),
    (4, "ipencap"),
    (6, "tcp"),
    (17, "udp"),
    (33, "dccp"),
    (41, "ipv6"),
    (47, "gre"),
    (50, "esp"),
    (51, "ah"),
    (58, "ipv6-icmp"),
    (89, "ospf"),
    (103, "pim"),
    (112, "vrrp"),
    (132, "sctp"),
    (135, "mh"),
    (136, "udplite"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_names_known_conversions_and_captures() {
        for e in TABLE {
            for f in e.forms {
                let listed: Vec<&str> = captures(f.listed);
                for (name, conv) in captures(f.saved).iter().map(|c| match c.split_once(':') {
                    Some((n, c)) => (n, Some(c)),
                    None => (*c, None),
                }) {
                    if name == "!" {
                        continue;
                    }
                    assert!(
                        listed.iter().any(|l| l.trim_end_matches('*') == name),
                        "{}: '{}' uses {{{name}}} that '{}' does not capture",
                        e.name,
                        f.saved,
                        f.listed
                    );
                    if let Some(c) = conv {
                        assert!(
                            Conv::by_name(c).is_some(),
                            "{}: unknown conversion {c}",
                            e.name
                        );
                    }
                }
            }
        }
    }

    fn captures(s: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let mut rest = s;
        while let Some(i) = rest.find('{') {
            let Some(j) = rest[i..].find('}') else { break };
            out.push(&rest[i + 1..i + j]);
            rest = &rest[i + j + 1..];
        }
        out
    }

    #[test]
    fn conversions() {
        assert_eq!(tcp_flags("0x17").as_deref(), Some("FIN,SYN,RST,ACK"));
        assert_eq!(tcp_flags("0x00").as_deref(), Some("NONE"));
        assert_eq!(tcp_flags("0x40"), None);
        assert_eq!(
            Conv::Not32.apply("0xffffff00"),
            Some(vec![("0xff".to_string(), true)])
        );
        assert_eq!(Conv::LogLevel.apply("4"), Some(vec![]));
        assert_eq!(
            Conv::LogLevel.apply("debug"),
            Some(vec![("--log-level".into(), false), ("7".into(), true)])
        );
        assert_eq!(
            Conv::LogFlags.apply("9").unwrap(),
            [
                ("--log-tcp-sequence".into(), false),
                ("--log-uid".into(), false)
            ]
        );
        assert_eq!(Conv::LogFlags.apply("16"), None);
    }

    #[test]
    fn a_target_column_names_its_entries() {
        let ct: Vec<&str> = targets_listed_as("CT").map(|e| e.name).collect();
        assert_eq!(ct, ["NOTRACK", "CT"]);
        assert!(matches().all(|e| e.kind == Kind::Match));
    }
}
