//! `iptables -L` text (with or without `-v`, `-n`, `-x`, `--line-numbers`;
//! `ip6tables -L`; several tables pasted one after another) into the same
//! model `iptables-save` text gives.
//!
//! Each rule line is cut into its columns, and the text after the
//! destination is walked with the forms of [`crate::matches::listing`],
//! which say what each printed piece stands for in `iptables-save` words.
//! The rule is then built from those words by the ordinary rule parser, so
//! everything downstream sees an ordinary rule; its `text` stays the line as
//! pasted. A piece no form explains is kept word for word as an opaque match
//! ([`OPAQUE_MODULE`]) and reported. What the format cannot carry at all
//! (interfaces without `-v`, exact counters without `-x` ...) is said once in
//! [`crate::model::Ruleset::notes`].

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use crate::matches::listing::{self as table, Conv, Entry, Form, Kind, Place};
use crate::model::{
    Chain, Counters, Family, InputFormat, Rule, Ruleset, SourceText, Str, Table, builtin_chains,
};

use super::lexer::Token;
use super::{ParseError, ParseOptions, Parsed, Problem, Severity, is_builtin, rule};

/// Module name of a match that holds printed text no form explains; its one
/// option `--text` holds the text word for word.
pub const OPAQUE_MODULE: &str = "unmapped";

/// True when the text starts like `iptables -L` output: its first line
/// that is not blank, a comment or a pasted command is a `Chain` header.
pub fn looks_like_listing(text: &str) -> bool {
    for line in text.lines().take(50) {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') || marker(l).is_some() {
            continue;
        }
        return chain_header(l).is_some();
    }
    false
}

/// What a pasted command line (`$ sudo iptables -t nat -L -n -v`) says.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Marker {
    table: Str,
    ipv6: bool,
}

/// Reads a pasted `iptables ... -L` command line.
fn marker(line: &str) -> Option<Marker> {
    if !line.contains("tables") {
        return None;
    }
    let words: Vec<&str> = line.split_whitespace().collect();
    // The command comes first, or after a prompt and `sudo`: a rule whose
    // comment mentions iptables is not a command line.
    let cmd = words.iter().take(4).position(|w| {
        let w = w
            .strip_suffix("-legacy")
            .or_else(|| w.strip_suffix("-nft"))
            .unwrap_or(w);
        w.ends_with("iptables") || w.ends_with("ip6tables")
    })?;
    let args = &words[cmd + 1..];
    let lists = args.iter().any(|a| {
        *a == "--list"
            || (a.starts_with('-') && !a.starts_with("--") && a.contains('L') && !a.contains('t'))
    });
    if !lists {
        return None;
    }
    let mut table = Str::from("filter");
    for (k, a) in args.iter().enumerate() {
        if (*a == "-t" || *a == "--table")
            && let Some(t) = args.get(k + 1)
        {
            table = Str::from(*t);
        } else if let Some(t) = a.strip_prefix("--table=") {
            table = Str::from(t);
        } else if let Some(t) = a.strip_prefix("-t").filter(|t| !t.is_empty()) {
            table = Str::from(t);
        }
    }
    Some(Marker {
        table,
        ipv6: words[cmd].contains("ip6tables"),
    })
}

/// `Chain NAME (policy ACCEPT [P packets, B bytes])` or `Chain NAME (N references)`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Header<'a> {
    name: &'a str,
    policy: Option<&'a str>,
    counters: Option<(&'a str, &'a str)>,
}

fn chain_header(line: &str) -> Option<Header<'_>> {
    let rest = line.strip_prefix("Chain ")?;
    let (name, paren) = rest.trim_start().split_once(' ')?;
    let inner = paren.trim().strip_prefix('(')?.strip_suffix(')')?;
    let words: Vec<&str> = inner.split_whitespace().collect();
    match words.as_slice() {
        ["policy", p] => Some(Header {
            name,
            policy: Some(p),
            counters: None,
        }),
        ["policy", p, pk, "packets,", b, "bytes"] => Some(Header {
            name,
            policy: Some(p),
            counters: Some((pk, b)),
        }),
        [n, "references"] if n.bytes().all(|c| c.is_ascii_digit()) => Some(Header {
            name,
            policy: None,
            counters: None,
        }),
        _ => None,
    }
}

/// The columns a `target prot opt ...` line announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Columns {
    num: bool,
    counters: bool,
    ifaces: bool,
}

fn column_header(line: &str) -> Option<Columns> {
    let w: Vec<&str> = line.split_whitespace().collect();
    if !w.contains(&"target") || !w.contains(&"source") || !w.contains(&"destination") {
        return None;
    }
    Some(Columns {
        num: w.first() == Some(&"num"),
        counters: w.contains(&"pkts"),
        ifaces: w.contains(&"in"),
    })
}

/// One word of a line and where it is.
#[derive(Debug, Clone, Copy)]
struct W<'a> {
    text: &'a str,
    start: usize,
    end: usize,
}

fn split_words(line: &str, from: usize) -> Vec<W<'_>> {
    let mut out = Vec::new();
    let b = line.as_bytes();
    let mut i = from;
    while i < b.len() {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let s = i;
        while i < b.len() && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        if s < i {
            out.push(W {
                text: &line[s..i],
                start: s,
                end: i,
            });
        }
    }
    out
}

/// A count as `-v` prints it: exact, or rounded with a K, M, G, T, P or E
/// suffix (`true` when rounded).
fn count(s: &str) -> Option<(u64, bool)> {
    let (num, mul) = match s.as_bytes().last()? {
        b'K' => (&s[..s.len() - 1], 1_000u64),
        b'M' => (&s[..s.len() - 1], 1_000_000),
        b'G' => (&s[..s.len() - 1], 1_000_000_000),
        b'T' => (&s[..s.len() - 1], 1_000_000_000_000),
        b'P' => (&s[..s.len() - 1], 1_000_000_000_000_000),
        b'E' => (&s[..s.len() - 1], 1_000_000_000_000_000_000),
        _ => (s, 1),
    };
    let n: u64 = num.parse().ok()?;
    Some((n.saturating_mul(mul), mul > 1))
}

/// One saved word: its text and whether it is a value (never read as an
/// option, even when it starts with `-`).
type Word = (String, bool);

/// A template word cut into pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seg<'t> {
    Lit(&'t str),
    Bang,
    Cap(&'t str),
}

fn segments(p: &str) -> Vec<Seg<'_>> {
    let mut out = Vec::new();
    let mut rest = p;
    while !rest.is_empty() {
        match rest.find('{') {
            Some(0) => {
                let end = rest.find('}').unwrap_or(rest.len() - 1);
                let name = &rest[1..end];
                out.push(if name == "!" {
                    Seg::Bang
                } else {
                    Seg::Cap(name)
                });
                rest = &rest[end + 1..];
            }
            Some(i) => {
                out.push(Seg::Lit(&rest[..i]));
                rest = &rest[i..];
            }
            None => {
                out.push(Seg::Lit(rest));
                rest = "";
            }
        }
    }
    out
}

/// What matching one form found.
#[derive(Debug, Default)]
struct Found {
    /// Word index after the form.
    next: usize,
    negated: bool,
    caps: Vec<(String, String)>,
}

/// Matches one word against a template word.
fn match_word(segs: &[Seg<'_>], text: &str, f: &mut Found) -> bool {
    let Some((first, rest)) = segs.split_first() else {
        return text.is_empty();
    };
    match *first {
        Seg::Lit(l) => text.strip_prefix(l).is_some_and(|t| match_word(rest, t, f)),
        Seg::Bang => {
            if let Some(t) = text.strip_prefix('!') {
                f.negated = true;
                match_word(rest, t, f)
            } else {
                match_word(rest, text, f)
            }
        }
        Seg::Cap(name) => {
            let end = match rest.first() {
                Some(Seg::Lit(l)) => match text.get(1..).and_then(|t| t.find(l)) {
                    Some(i) => i + 1,
                    None => return false,
                },
                _ => text.len(),
            };
            if end == 0 {
                return false;
            }
            f.caps.push((name.to_string(), text[..end].to_string()));
            match_word(rest, &text[end..], f)
        }
    }
}

/// Tries a form's listed template at word `at`.
fn match_form(listed: &str, line: &str, words: &[W<'_>], at: usize) -> Option<Found> {
    // Most forms fail on their first word: check its leading text first.
    let first = listed.split(' ').next().unwrap_or("");
    if first != "{!}" {
        let lit = &first[..first.find('{').unwrap_or(first.len())];
        if !words.get(at)?.text.starts_with(lit) {
            return None;
        }
    }
    let pats: Vec<&str> = listed.split(' ').collect();
    let mut f = Found::default();
    let mut i = at;
    let mut k = 0;
    while k < pats.len() {
        let p = pats[k];
        k += 1;
        if p == "{!}" {
            if words.get(i).is_some_and(|w| w.text == "!") {
                f.negated = true;
                i += 1;
            }
            continue;
        }
        if let Some(star) = p.find("*}") {
            let open = p.find('{')?;
            let (prefix, name, suffix) = (&p[..open], &p[open + 1..star], &p[star + 2..]);
            if prefix.is_empty() && suffix.is_empty() {
                // Raw text up to the next template word.
                // Raw text up to the next template word, one blank kept on
                // each side as the separator (`/* a  b  */` holds "a  b ").
                let stop = pats.get(k)?;
                let j = (i..words.len()).find(|&j| words[j].text == *stop)?;
                let from = if i > at {
                    words[i - 1].end + 1
                } else {
                    words.get(i)?.start
                };
                let to = words[j].start.saturating_sub(1);
                let text = if from <= to { &line[from..to] } else { "" };
                f.caps.push((name.to_string(), text.to_string()));
                i = j;
                continue;
            }
            let w = words.get(i)?;
            if !w.text.starts_with(prefix) {
                return None;
            }
            let start = w.start + prefix.len();
            let j = (i..words.len()).find(|&j| {
                let t = words[j].text;
                t.ends_with(suffix) && (j > i || t.len() >= prefix.len() + suffix.len())
            })?;
            let end = words[j].end - suffix.len();
            f.caps
                .push((name.to_string(), line[start..end].to_string()));
            i = j + 1;
            continue;
        }
        let w = words.get(i)?;
        if !match_word(&segments(p), w.text, &mut f) {
            return None;
        }
        i += 1;
    }
    f.next = i;
    Some(f)
}

/// The saved words of a matched form; `None` when a value cannot be
/// converted.
fn saved_words(form: &Form, found: &Found) -> Option<Vec<Word>> {
    if let (Some(u), Some((_, v))) = (form.unless, found.caps.first())
        && u == v
    {
        return Some(Vec::new());
    }
    let cap = |name: &str| {
        found
            .caps
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let mut out = Vec::new();
    for w in form.saved.split(' ').filter(|w| !w.is_empty()) {
        if w == "{!}" {
            if found.negated {
                out.push(("!".to_string(), false));
            }
            continue;
        }
        if !w.contains('{') {
            out.push((w.to_string(), !w.starts_with('-') && w != "!"));
            continue;
        }
        // Substitute every {name} or {name:conv} of the word.
        let mut text = String::new();
        let mut rest = w;
        let mut whole: Option<Vec<Word>> = None;
        while let Some(i) = rest.find('{') {
            text.push_str(&rest[..i]);
            let j = rest[i..].find('}')? + i;
            let inner = &rest[i + 1..j];
            let (name, conv) = match inner.split_once(':') {
                Some((n, c)) => (n, Some(Conv::by_name(c)?)),
                None => (inner, None),
            };
            let v = cap(name)?;
            match conv {
                None => text.push_str(v),
                Some(c) => {
                    let got = c.apply(v)?;
                    if w.starts_with('{') && w.ends_with('}') && i == 0 && j == w.len() - 1 {
                        whole = Some(got);
                    } else {
                        match got.as_slice() {
                            [(one, true)] => text.push_str(one),
                            _ => return None,
                        }
                    }
                }
            }
            rest = &rest[j + 1..];
        }
        text.push_str(rest);
        match whole {
            Some(ws) => out.extend(ws),
            None => out.push((text, true)),
        }
    }
    Some(out)
}

/// A match or the target being rebuilt.
struct Open<'e> {
    entry: &'e Entry,
    used: Vec<usize>,
    words: Vec<Word>,
    rename: Option<&'static str>,
}

/// What a rule's printed match text turned into.
#[derive(Default)]
struct Rebuilt {
    /// `-m NAME opts...` groups in order, opaque ones included.
    matches: Vec<Vec<Word>>,
    /// The target's option words, and its saved name when it differs.
    target: Vec<Word>,
    rename: Option<&'static str>,
    /// Byte ranges of the line kept as opaque text.
    opaque: Vec<(usize, usize)>,
    /// Entries used that lose something in `-L`.
    lossy: Vec<&'static Entry>,
}

fn try_forms(
    entry: &Entry,
    places: &[Place],
    skip: &[usize],
    line: &str,
    words: &[W<'_>],
    at: usize,
) -> Option<(usize, Found, Vec<Word>)> {
    entry.forms.iter().enumerate().find_map(|(fi, f)| {
        if !places.contains(&f.place) || skip.contains(&fi) {
            return None;
        }
        let found = match_form(f.listed, line, words, at)?;
        let saved = saved_words(f, &found)?;
        Some((fi, found, saved))
    })
}

/// Walks the printed text after the destination column.
fn rebuild(line: &str, words: &[W<'_>], target_col: &str) -> Rebuilt {
    let mut out = Rebuilt::default();
    let targets: Vec<&'static Entry> = table::targets_listed_as(target_col).collect();
    let mut cur: Option<Open<'static>> = None;
    let mut target_open = false;
    let mut opaque: Option<(usize, usize)> = None;
    let mut i = 0;

    fn close(cur: &mut Option<Open<'static>>, out: &mut Rebuilt) {
        if let Some(o) = cur.take() {
            if let Some(_l) = o.entry.lost
                && !out.lossy.iter().any(|e| e.name == o.entry.name)
            {
                out.lossy.push(o.entry);
            }
            match o.entry.kind {
                Kind::Match => {
                    let mut g = vec![("-m".to_string(), false), (o.entry.name.to_string(), false)];
                    g.extend(o.words);
                    out.matches.push(g);
                }
                Kind::Target => {
                    out.target = o.words;
                    out.rename = o.rename;
                }
            }
        }
    }
    fn flush(opaque: &mut Option<(usize, usize)>, line: &str, out: &mut Rebuilt) {
        if let Some((s, e)) = opaque.take() {
            out.matches.push(vec![
                ("-m".to_string(), false),
                (OPAQUE_MODULE.to_string(), false),
                ("--text".to_string(), false),
                (line[s..e].to_string(), true),
            ]);
            out.opaque.push((s, e));
        }
    }

    while i < words.len() {
        // 1. More of the open match or target.
        if let Some(o) = &mut cur
            && let Some((fi, found, saved)) = try_forms(
                o.entry,
                &[Place::Continues, Place::Anywhere],
                &o.used,
                line,
                words,
                i,
            )
        {
            flush(&mut opaque, line, &mut out);
            o.used.push(fi);
            o.words.extend(saved);
            o.rename = o.rename.or(o.entry.forms[fi].rename);
            i = found.next;
            continue;
        }
        if !target_open {
            // 2. The target's text, then 3. a new match.
            let opened = targets
                .iter()
                .find_map(|e| {
                    try_forms(e, &[Place::Opens, Place::Anywhere], &[], line, words, i)
                        .map(|x| (*e, x))
                })
                .or_else(|| {
                    table::matches().find_map(|e| {
                        try_forms(e, &[Place::Opens, Place::Anywhere], &[], line, words, i)
                            .map(|x| (e, x))
                    })
                });
            if let Some((e, (fi, found, saved))) = opened {
                flush(&mut opaque, line, &mut out);
                close(&mut cur, &mut out);
                target_open = e.kind == Kind::Target;
                cur = Some(Open {
                    entry: e,
                    used: vec![fi],
                    words: saved,
                    rename: e.forms[fi].rename,
                });
                i = found.next;
                continue;
            }
        }
        // Nothing explains this word: keep it as text.
        let w = words[i];
        opaque = Some(match opaque {
            Some((s, _)) => (s, w.end),
            None => (w.start, w.end),
        });
        if !target_open {
            close(&mut cur, &mut out);
        }
        i += 1;
    }
    flush(&mut opaque, line, &mut out);
    close(&mut cur, &mut out);
    out
}

/// An address column as `-s`/`-d` takes it; `None` for any address.
/// Names (host names, `anywhere` aside) are kept and reported.
fn address(v: &str, v6: bool, names: &mut BTreeSet<String>) -> Option<String> {
    if matches!(v, "anywhere" | "0.0.0.0/0" | "::/0") {
        return None;
    }
    let (addr, mask) = match v.split_once('/') {
        Some((a, m)) => (a, Some(m)),
        None => (v, None),
    };
    let is4 = addr.parse::<Ipv4Addr>().is_ok();
    let is6 = addr.parse::<Ipv6Addr>().is_ok();
    if !is4 && !is6 {
        names.insert(v.to_string());
        return Some(v.to_string());
    }
    Some(match mask {
        None if is4 => format!("{addr}/32"),
        None => format!("{addr}/128"),
        Some(m) => match m.parse::<Ipv4Addr>() {
            // Old iptables printed masks dotted: 10.0.0.0/255.0.0.0.
            Ok(dotted) if is4 && !v6 => {
                let bits = u32::from(dotted);
                if bits.leading_ones() + bits.trailing_zeros() == 32 {
                    format!("{addr}/{}", bits.leading_ones())
                } else {
                    v.to_string()
                }
            }
            _ => v.to_string(),
        },
    })
}

/// Values of these options are numbers in `iptables-save`; `-L` without
/// `-n` prints names for them.
const NUMERIC: &[&str] = &[
    "--sport",
    "--dport",
    "--sports",
    "--dports",
    "--ports",
    "--uid-owner",
    "--gid-owner",
    "--icmp-type",
    "--icmpv6-type",
];

/// Counts of what a listing lost, for the notes.
#[derive(Default)]
struct Losses {
    names: BTreeSet<String>,
    rounded: bool,
    no_ifaces: bool,
    no_counters: bool,
    lossy: Vec<&'static Entry>,
    opaque: usize,
    guessed: Vec<String>,
}

struct Reader<'o> {
    src: Arc<String>,
    opts: &'o ParseOptions,
    rs: Ruleset,
    problems: Vec<Problem>,
    cur_table: Option<usize>,
    /// The current table was named by a pasted command line.
    marked: bool,
    cur_chain: Option<usize>,
    columns: Option<Columns>,
    /// Tables whose name is a guess from their built-in chains.
    guessed: Vec<usize>,
    pending_marker: Option<Marker>,
    /// Hook-order index of the last built-in chain of the current table.
    last_hook: Option<usize>,
    saw_v6: bool,
    body: rule::Body,
    losses: Losses,
}

/// Reads `iptables -L` text.
pub fn parse(src: Arc<String>, opts: &ParseOptions) -> Result<Parsed, ParseError> {
    let mut r = Reader {
        src: src.clone(),
        opts,
        rs: Ruleset {
            format: InputFormat::Listing,
            ..Default::default()
        },
        problems: Vec::new(),
        cur_table: None,
        marked: false,
        cur_chain: None,
        columns: None,
        guessed: Vec::new(),
        pending_marker: None,
        last_hook: None,
        saw_v6: false,
        body: rule::Body::default(),
        losses: Losses::default(),
    };
    let mut offset = 0usize;
    for (idx, raw) in super::split_lines(&src).enumerate() {
        let start = offset;
        offset += raw.len() + 1;
        let line = raw.trim_end();
        if line.trim().is_empty() {
            continue;
        }
        if line.len() > super::MAX_LINE {
            r.error(
                idx as u32 + 1,
                "",
                0,
                "line is too long to be iptables -L output",
            );
            continue;
        }
        r.line(idx as u32 + 1, start, line);
        if opts.strict
            && let Some(first) = r.problems.iter().find(|p| p.severity == Severity::Error)
        {
            return Err(ParseError::Syntax {
                name: opts.source_name.clone(),
                problem: Box::new(first.clone()),
            });
        }
    }
    Ok(r.finish())
}

impl Reader<'_> {
    fn error(&mut self, no: u32, line: &str, col: usize, msg: impl Into<String>) {
        self.problems
            .push(Problem::at(no, line, col, Severity::Error, msg.into()));
    }

    fn warn(&mut self, no: u32, line: &str, col: usize, msg: impl Into<String>) {
        self.problems
            .push(Problem::at(no, line, col, Severity::Warning, msg.into()));
    }

    fn line(&mut self, no: u32, start: usize, line: &str) {
        let body = line.trim_start();
        if let Some(m) = marker(body) {
            self.pending_marker = Some(m);
            return;
        }
        if body.starts_with('#') {
            if self.rs.tables.is_empty() {
                self.rs.header.push(body.to_string());
            }
            return;
        }
        if let Some(h) = chain_header(body) {
            self.chain(no, line, h);
            return;
        }
        if let Some(c) = column_header(body) {
            if self.cur_chain.is_none() {
                self.error(
                    no,
                    line,
                    0,
                    "a column header outside a chain: expected a 'Chain NAME (...)' line before it",
                );
            }
            self.columns = Some(c);
            return;
        }
        if self.cur_chain.is_none() || self.columns.is_none() {
            let col = line.len() - body.len();
            self.error(
                no,
                line,
                col,
                "expected a 'Chain NAME (policy ...)' header, a column header ('target prot opt source destination') or a rule of `iptables -L` output",
            );
            return;
        }
        self.rule(no, start, line);
    }

    fn open_table(&mut self, name: Str, no: u32, marked: bool) {
        if marked && self.rs.tables.iter().any(|t| t.name == name) {
            self.problems.push(Problem {
                line: no,
                column: 1,
                severity: Severity::Warning,
                message: format!(
                    "table '{name}' is listed a second time; its chains are kept apart"
                ),
                source: String::new(),
            });
        }
        let mut t = Table::new(name, no);
        t.committed = true;
        self.rs.tables.push(t);
        self.cur_table = Some(self.rs.tables.len() - 1);
        self.last_hook = None;
        self.marked = marked;
        if !marked {
            self.guessed.push(self.rs.tables.len() - 1);
        }
    }

    fn chain(&mut self, no: u32, line: &str, h: Header<'_>) {
        let hook = crate::model::HOOK_CHAINS.contains(&h.name);
        if let Some(m) = self.pending_marker.take() {
            self.saw_v6 |= m.ipv6;
            self.open_table(m.table, no, true);
        } else {
            // Without a command line, a hook chain that comes after user
            // chains, or not after the last hook chain in hook order (the
            // order `-L` lists them in), starts the next table.
            let order = |n: &str| crate::model::HOOK_CHAINS.iter().position(|h| *h == n);
            let next = match self.cur_table {
                None => true,
                Some(_) if !hook => false,
                Some(ti) => {
                    let t = &self.rs.tables[ti];
                    t.chain(h.name).is_some()
                        || self.last_hook >= order(h.name)
                        || (!self.marked && t.chains.iter().any(|c| c.policy.is_none()))
                }
            };
            if next {
                let name = self.opts.table.clone().unwrap_or_else(|| "filter".into());
                let guessed = self.opts.table.is_none();
                self.open_table(name.into(), no, !guessed);
            }
        }
        let Some(ti) = self.cur_table else { return };
        if hook {
            self.last_hook = crate::model::HOOK_CHAINS.iter().position(|c| *c == h.name);
        }
        let mut counters = None;
        if let Some((p, b)) = h.counters {
            match (count(p), count(b)) {
                (Some((packets, r1)), Some((bytes, r2))) => {
                    self.losses.rounded |= r1 || r2;
                    counters = Some(Counters { packets, bytes });
                }
                _ => {
                    let col = line.find(p).unwrap_or(0);
                    self.error(
                        no,
                        line,
                        col,
                        "expected the policy's packet and byte counts",
                    );
                }
            }
        }
        let t = &mut self.rs.tables[ti];
        let builtin = is_builtin(&t.name, h.name, h.policy.is_some());
        let chain = Chain {
            name: Str::from(h.name),
            builtin,
            policy: h.policy.map(Str::from),
            counters,
            line: no,
            rules: Vec::new(),
        };
        match t.insert_chain(chain) {
            Ok(ci) => self.cur_chain = Some(ci),
            Err((ci, _)) => {
                let first = t.chains[ci].line;
                self.cur_chain = Some(ci);
                let col = line.find(h.name).unwrap_or(0);
                self.error(
                    no,
                    line,
                    col,
                    format!(
                        "chain '{}' is listed twice in one table (first at line {first}); mark each table with its command, e.g. '# iptables -t nat -L'",
                        h.name
                    ),
                );
            }
        }
        self.columns = None;
    }

    fn rule(&mut self, no: u32, start: usize, line: &str) {
        let Some(cols) = self.columns else { return };
        let words = split_words(line, 0);
        let mut k = 0;
        let cut = |what: &str| format!("this rule line is cut short: expected {what}");
        if cols.num {
            match words.get(k) {
                Some(w) if w.text.bytes().all(|b| b.is_ascii_digit()) => k += 1,
                Some(w) => {
                    let (s, t) = (w.start, w.text.to_string());
                    return self.error(
                        no,
                        line,
                        s,
                        format!("expected a rule number (--line-numbers), found '{t}'"),
                    );
                }
                None => return,
            }
        }
        let mut counters = None;
        if cols.counters {
            let (Some(p), Some(b)) = (words.get(k), words.get(k + 1)) else {
                return self.error(no, line, line.len(), cut("the packet and byte counts"));
            };
            match (count(p.text), count(b.text)) {
                (Some((packets, r1)), Some((bytes, r2))) => {
                    self.losses.rounded |= r1 || r2;
                    counters = Some(Counters { packets, bytes });
                }
                (None, _) => {
                    return self.error(
                        no,
                        line,
                        p.start,
                        format!("expected a packet count, found '{}'", p.text),
                    );
                }
                (_, None) => {
                    return self.error(
                        no,
                        line,
                        b.start,
                        format!("expected a byte count, found '{}'", b.text),
                    );
                }
            }
            k += 2;
        }
        // The target column is blank for a rule without -j: ten blanks
        // where the name would be, or (when blanks were squeezed) the
        // protocol straight before an option column.
        let gap_from = if k == 0 { 0 } else { words[k - 1].end };
        let Some(first) = words.get(k) else {
            return self.error(no, line, line.len(), cut("a target and a protocol"));
        };
        let is_opt = |w: Option<&W<'_>>| w.is_some_and(|w| matches!(w.text, "--" | "-f" | "!f"));
        let blank_target = first.start - gap_from >= 10 || is_opt(words.get(k + 1));
        let target = if blank_target {
            None
        } else {
            k += 1;
            Some(*first)
        };
        let Some(prot) = words.get(k) else {
            return self.error(no, line, line.len(), cut("a protocol"));
        };
        let prot = *prot;
        k += 1;
        let mut frag = None;
        if is_opt(words.get(k)) {
            frag = match words[k].text {
                "-f" => Some(false),
                "!f" => Some(true),
                _ => None,
            };
            k += 1;
        }
        let (mut iface_in, mut iface_out) = (None, None);
        if cols.ifaces {
            let (Some(i), Some(o)) = (words.get(k), words.get(k + 1)) else {
                return self.error(no, line, line.len(), cut("the in and out interfaces"));
            };
            iface_in = Some(i.text);
            iface_out = Some(o.text);
            k += 2;
        }
        let (Some(s), Some(d)) = (words.get(k), words.get(k + 1)) else {
            return self.error(no, line, line.len(), cut("a source and a destination"));
        };
        let (s, d) = (s.text, d.text);
        k += 2;
        let mut goto = false;
        if words.get(k).is_some_and(|w| w.text == "[goto]") {
            goto = true;
            k += 1;
        }
        self.saw_v6 |= s.contains(':') || d.contains(':');
        let v6 = self.saw_v6 || self.opts.family == Some(Family::Ipv6);

        // The saved words, in iptables-save's order.
        let mut saved: Vec<Word> = Vec::new();
        let neg = |v: &str| match v.strip_prefix('!') {
            Some(rest) => (true, rest.to_string()),
            None => (false, v.to_string()),
        };
        let push_common = |saved: &mut Vec<Word>, flag: &str, negated: bool, v: String| {
            if negated {
                saved.push(("!".into(), false));
            }
            saved.push((flag.into(), false));
            saved.push((v, true));
        };
        for (flag, v) in [("-s", s), ("-d", d)] {
            let (n, v) = neg(v);
            if let Some(a) = address(&v, v6, &mut self.losses.names) {
                push_common(&mut saved, flag, n, a);
            }
        }
        for (flag, v) in [("-i", iface_in), ("-o", iface_out)] {
            if let Some(v) = v {
                let (n, v) = neg(v);
                if v != "*" && v != "any" {
                    push_common(&mut saved, flag, n, v);
                }
            }
        }
        let (pn, pv) = neg(prot.text);
        let proto = match pv.parse::<u8>() {
            Ok(0) => None,
            Ok(n) => Some(
                table::PROTOCOLS
                    .iter()
                    .find(|(num, _)| *num == n)
                    .map_or_else(|| n.to_string(), |(_, name)| name.to_string()),
            ),
            Err(_) if pv == "all" => None,
            Err(_) => Some(pv.clone()),
        };
        if pv == "58" || pv == "ipv6-icmp" {
            self.saw_v6 = true;
        }
        if let Some(p) = proto {
            push_common(&mut saved, "-p", pn, p);
        }
        match frag {
            Some(true) => saved.extend([("!".into(), false), ("-f".into(), false)]),
            Some(false) => saved.push(("-f".into(), false)),
            None => {}
        }
        let rest = &words[k..];
        let target_name = target.map(|t| t.text).unwrap_or("");
        let rebuilt = rebuild(line, rest, target_name);
        for g in &rebuilt.matches {
            saved.extend(g.iter().cloned());
        }
        if let Some(t) = target {
            saved.push((if goto { "-g" } else { "-j" }.into(), false));
            saved.push((rebuilt.rename.unwrap_or(t.text).to_string(), true));
            saved.extend(rebuilt.target.iter().cloned());
        }
        for (s, e) in &rebuilt.opaque {
            let text = &line[*s..*e];
            self.warn(
                no,
                line,
                *s,
                format!(
                    "'{text}' is not something iptviz knows how iptables -L prints; kept as text (the tracer assumes it matches)"
                ),
            );
        }
        self.losses.opaque += rebuilt.opaque.len();
        for e in rebuilt.lossy {
            if !self.losses.lossy.iter().any(|x| x.name == e.name) {
                self.losses.lossy.push(e);
            }
        }
        // Names that save would print as numbers.
        for w in saved.windows(2) {
            if NUMERIC.contains(&w[0].0.as_str())
                && w[1].1
                && w[1].0.bytes().any(|b| b.is_ascii_alphabetic())
                && w[1].0 != "any"
            {
                self.losses.names.insert(w[1].0.clone());
            }
        }
        self.losses.no_ifaces |= !cols.ifaces;
        self.losses.no_counters |= !cols.counters;

        let tokens: Vec<Token<'_>> = saved
            .iter()
            .map(|(t, value)| Token {
                text: Cow::Borrowed(t.as_str()),
                col: 0,
                quoted: *value,
            })
            .collect();
        let rule = match rule::parse_rule_body(&tokens, line, &mut self.body) {
            Ok(()) => Rule::from_parts(
                no,
                SourceText::new(self.src.clone(), start, start + line.len()),
                counters,
                self.body.parts.as_slice().into(),
                self.body.side.as_str().into(),
            ),
            Err(e) => {
                let col = rest.first().map_or(0, |w| w.start);
                return self.error(
                    no,
                    line,
                    col,
                    format!("could not rebuild this rule: {}", e.message),
                );
            }
        };
        if let (Some(ti), Some(ci)) = (self.cur_table, self.cur_chain) {
            self.rs.tables[ti].chains[ci].rules.push(rule);
        }
    }

    fn finish(mut self) -> Parsed {
        let hint = |t: &Table| -> Option<&'static str> {
            let uses = |names: &[&str]| {
                t.chains.iter().any(|c| {
                    c.rules
                        .iter()
                        .any(|r| r.target().is_some_and(|x| names.contains(&x.name)))
                })
            };
            if uses(&["DNAT", "SNAT", "MASQUERADE", "REDIRECT", "NETMAP"]) {
                Some("nat")
            } else if uses(&["CT", "NOTRACK"]) {
                Some("raw")
            } else if uses(&[
                "MARK", "TOS", "TTL", "HL", "TCPMSS", "DSCP", "CONNMARK", "CHECKSUM",
            ]) && t.chains.iter().any(|c| c.name == "PREROUTING")
            {
                Some("mangle")
            } else {
                None
            }
        };
        for &ti in &self.guessed {
            let t = &mut self.rs.tables[ti];
            let policies: Vec<Str> = t
                .chains
                .iter()
                .filter(|c| c.policy.is_some())
                .map(|c| c.name.clone())
                .collect();
            // All built-in chains of one table name it; a part of them (a
            // paste of `-L PREROUTING`) is told apart by the targets used.
            let has_all = |want: &[&str]| {
                want.len() == policies.len() && want.iter().all(|c| policies.iter().any(|p| p == c))
            };
            let whole = ["raw", "mangle", "nat", "filter"]
                .into_iter()
                .find(|n| has_all(builtin_chains(n)))
                .or_else(|| has_all(&["PREROUTING", "OUTPUT", "POSTROUTING"]).then_some("nat"));
            let guess = whole
                .or_else(|| hint(t))
                .unwrap_or_else(|| super::guess_table(&policies));
            t.name = guess.into();
            for c in &mut t.chains {
                c.builtin = is_builtin(guess, &c.name, c.policy.is_some());
            }
            if !(guess == "filter" && ti == 0) {
                self.losses
                    .guessed
                    .push(format!("{guess} (line {})", t.line));
            }
        }
        if let Some(f) = self.opts.family {
            self.rs.family = f;
        } else if self.saw_v6 {
            self.rs.family = Family::Ipv6;
        }
        for t in &mut self.rs.tables {
            t.ensure_index();
        }
        self.notes();
        let mut suspicious = Vec::new();
        super::check::resolve_and_check(
            &mut self.rs,
            &self.src,
            1,
            &mut self.problems,
            &mut suspicious,
        );
        self.problems.sort_by_key(|p| (p.line, p.column));
        Parsed {
            ruleset: self.rs,
            problems: self.problems,
            suspicious,
        }
    }

    /// Says once what the listing could not carry.
    fn notes(&mut self) {
        let l = &self.losses;
        let notes = &mut self.rs.notes;
        if self.rs.tables.is_empty() {
            return;
        }
        if l.no_ifaces {
            notes.push("iptables -L without -v prints no interfaces: rules that name -i or -o read here as if they matched every interface".into());
        }
        if l.no_counters {
            notes.push("iptables -L without -v prints no packet and byte counts".into());
        }
        if l.rounded {
            notes.push("counts were rounded by iptables -L (K, M, G suffixes) and are kept as approximate; -x prints them exactly".into());
        }
        if !l.names.is_empty() {
            let shown: Vec<&str> = l.names.iter().take(8).map(String::as_str).collect();
            notes.push(format!(
                "{} value{} printed as names instead of numbers (iptables -L without -n) and kept as written: {}{}",
                l.names.len(),
                if l.names.len() == 1 { " is" } else { "s are" },
                shown.join(", "),
                if l.names.len() > shown.len() { ", ..." } else { "" }
            ));
        }
        for e in &l.lossy {
            if let Some(what) = e.lost {
                notes.push(format!(
                    "iptables -L does not print {what} of {} rules",
                    e.name
                ));
            }
        }
        if l.opaque > 0 {
            notes.push(format!(
                "{} piece{} of printed text could not be mapped to options and {} kept as text",
                l.opaque,
                if l.opaque == 1 { "" } else { "s" },
                if l.opaque == 1 { "is" } else { "are" }
            ));
        }
        if !l.guessed.is_empty() {
            notes.push(format!(
                "no command line names the table of some chains; guessed from their built-in chains: {} (paste '# iptables -t nat -L' before each table, or pass --table)",
                l.guessed.join(", ")
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_markers() {
        let h = chain_header("Chain INPUT (policy DROP 12K packets, 3M bytes)").unwrap();
        assert_eq!(
            (h.name, h.policy, h.counters),
            ("INPUT", Some("DROP"), Some(("12K", "3M")))
        );
        let h = chain_header("Chain KUBE-SVC-X (2 references)").unwrap();
        assert_eq!((h.name, h.policy), ("KUBE-SVC-X", None));
        assert!(chain_header("Chain INPUT policy DROP").is_none());
        assert_eq!(
            marker("root@fw:~# iptables -t nat -nvL --line-numbers"),
            Some(Marker {
                table: "nat".into(),
                ipv6: false
            })
        );
        assert_eq!(
            marker("$ sudo ip6tables -L -n"),
            Some(Marker {
                table: "filter".into(),
                ipv6: true
            })
        );
        assert_eq!(
            marker("# /usr/sbin/iptables-legacy -t raw -L -v -n -x"),
            Some(Marker {
                table: "raw".into(),
                ipv6: false
            })
        );
        assert_eq!(marker("# iptables -t nat -S"), None);
        assert_eq!(marker("iptables-save"), None);
    }

    #[test]
    fn counts_with_suffixes_are_rounded() {
        assert_eq!(count("12345"), Some((12345, false)));
        assert_eq!(count("12K"), Some((12_000, true)));
        assert_eq!(count("3G"), Some((3_000_000_000, true)));
        assert_eq!(count("x"), None);
        assert_eq!(count("K"), None);
    }

    #[test]
    fn forms_match_words() {
        let line = "tcp spts:1000:2000 dpt:!22 flags:0x17/0x02 /* a  b */ LOG flags 0 level 4 prefix \"p x \"";
        let words = split_words(line, 0);
        let r = rebuild(line, &words, "LOG");
        let flat: Vec<String> = r
            .matches
            .iter()
            .flatten()
            .chain(r.target.iter())
            .map(|(w, _)| w.clone())
            .collect();
        assert_eq!(
            flat,
            [
                "-m",
                "tcp",
                "--sport",
                "1000:2000",
                "!",
                "--dport",
                "22",
                "--tcp-flags",
                "FIN,SYN,RST,ACK",
                "SYN",
                "-m",
                "comment",
                "--comment",
                "a  b",
                "--log-prefix",
                "p x "
            ]
        );
        assert!(r.opaque.is_empty());
    }

    #[test]
    fn unknown_text_is_kept_whole() {
        let line = "ctstate NEW frobnicate 7 wibble udp dpt:53";
        let words = split_words(line, 0);
        let r = rebuild(line, &words, "ACCEPT");
        assert_eq!(r.opaque, [(12, 31)]);
        assert_eq!(&line[12..31], "frobnicate 7 wibble");
        assert_eq!(r.matches.len(), 3);
        assert_eq!(r.matches[1][3].0, "frobnicate 7 wibble");
    }

    #[test]
    fn addresses() {
        let mut names = BTreeSet::new();
        assert_eq!(address("anywhere", false, &mut names), None);
        assert_eq!(
            address("10.0.0.1", false, &mut names).as_deref(),
            Some("10.0.0.1/32")
        );
        assert_eq!(
            address("fe80::1", true, &mut names).as_deref(),
            Some("fe80::1/128")
        );
        assert_eq!(
            address("10.0.0.0/255.0.0.0", false, &mut names).as_deref(),
            Some("10.0.0.0/8")
        );
        assert!(names.is_empty());
        assert_eq!(
            address("gw.example.org", false, &mut names).as_deref(),
            Some("gw.example.org")
        );
        assert!(names.contains("gw.example.org"));
    }
}
