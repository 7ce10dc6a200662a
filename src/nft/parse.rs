//! `nft list ruleset` text and `nft -f` scripts into an [`NftRuleset`].
//!
//! Reads both the block form (`table inet x { chain y { ... } }`, as
//! written by hand and as nft prints it back) and the command form (`add
//! table`, `add chain`, `add rule`, `add element`, `insert rule`, `flush
//! ...`, as kube-proxy writes it). `define`s are expanded where `$NAME` is
//! used; `include` lines are reported and not followed. A statement that
//! cannot be read becomes a problem with its line and column, and reading
//! goes on with the next one.

use rustc_hash::FxHashMap as HashMap;

use crate::model::Str;
use crate::parse::{Problem, Severity};

use super::lex::{Lexer, Tok, Token, tokenize};
use super::model::*;

/// Reads nft text; returns the model and every problem found.
pub fn parse_text(src: &str) -> (NftRuleset, Vec<Problem>) {
    let mut p = P {
        src,
        feed: Feed::Lex(Lexer::new(src)),
        look: [None; 4],
        head: 0,
        prev_at: src.len(),
        prev_end: src.len(),
        rs: NftRuleset::default(),
        problems: Vec::new(),
        lines: Lines::new(src),
        stmt_buf: Vec::new(),
        rule_buf: Vec::new(),
        anon: 0,
        // Room for a chain every 256 bytes, more than most rulesets have:
        // the table is not grown (and rehashed) step by step while tens
        // of thousands of chains are declared.
        chain_at: hashbrown::HashTable::with_capacity(src.len() / 256),
    };
    // `$NAME` is replaced by the tokens of its `define`, so text that may
    // use defines is cut into tokens first; other text (a ruleset as nft
    // lists it) is read as it is cut.
    if may_use_defines(src) {
        let (toks, lex_errors) = tokenize(src);
        for e in lex_errors {
            p.problem_at(e.at, Severity::Error, e.message);
        }
        let toks = p.expand_defines(toks);
        p.feed = Feed::Toks(toks.into_iter());
    }
    for _ in 0..3 {
        p.bump();
    }
    p.top();
    if let Feed::Lex(lx) = &mut p.feed
        && !lx.errors.is_empty()
    {
        // Problems of the lexer come first, as when they were found
        // before reading began (the sort below keeps that order on ties).
        let errors = std::mem::take(&mut lx.errors);
        let parse = std::mem::take(&mut p.problems);
        for e in errors {
            p.problem_at(e.at, Severity::Error, e.message);
        }
        p.problems.extend(parse);
    }
    p.problems.sort_by_key(|x| (x.line, x.column));
    (p.rs, p.problems)
}

/// Whether the text may hold `define`, `redefine`, `undefine` or a
/// `$NAME`; a quick look at the bytes, exact enough to choose how to read.
fn may_use_defines(src: &str) -> bool {
    memchr::memchr(b'$', src.as_bytes()).is_some()
        || memchr::memmem::find(src.as_bytes(), b"define").is_some()
}

/// Where the parser's tokens come from.
enum Feed<'a> {
    /// Cut from the source as they are read.
    Lex(Lexer<'a>),
    /// Cut beforehand (defines expanded).
    Toks(std::vec::IntoIter<Token<'a>>),
}

/// True when the text looks like nft rather than iptables: its first
/// statement word is one nft starts a ruleset with.
pub fn looks_like_nft(text: &str) -> bool {
    for line in text.lines().take(200) {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let first = t.split_whitespace().next().unwrap_or("");
        return match first {
            "table" | "define" | "include" | "flush" | "delete" | "destroy" | "create"
            | "insert" | "replace" | "redefine" | "undefine" => true,
            "add" => {
                let second = t.split_whitespace().nth(1).unwrap_or("");
                matches!(
                    second,
                    "table"
                        | "chain"
                        | "rule"
                        | "set"
                        | "map"
                        | "element"
                        | "flowtable"
                        | "counter"
                        | "quota"
                )
            }
            _ => false,
        };
    }
    false
}

/// Lines and columns of byte offsets, worked out only when asked for (a
/// rule's start, a problem).
///
/// While the parser reads tokens as the lexer cuts them, every newline is
/// a token: the parser tells of each one it reads past, and an offset on
/// the line after the last one (a rule's start) needs no counting. Else
/// the newlines are counted from the offset asked for last to the one
/// asked for now (reading goes forward); a table of where each line
/// starts is made only if an earlier offset is asked for after a later
/// one (as when defines are expanded before reading).
struct Lines<'a> {
    src: &'a str,
    /// Newline tokens read past, and the offset just after the last one.
    passed: u32,
    after_newline: usize,
    /// The offset counted to last, its 1-based line, and the offset where
    /// that line starts.
    cursor: std::cell::Cell<(usize, u32, usize)>,
    /// Where each line starts; made at the first look back.
    starts: std::cell::OnceCell<Vec<usize>>,
}

impl<'a> Lines<'a> {
    fn new(src: &'a str) -> Self {
        Lines {
            src,
            passed: 0,
            after_newline: 0,
            cursor: std::cell::Cell::new((0, 1, 0)),
            starts: std::cell::OnceCell::new(),
        }
    }

    /// The parser read past a newline token that ends at `end`.
    #[inline]
    fn passed_newline(&mut self, end: usize) {
        self.passed += 1;
        self.after_newline = end;
    }

    /// The 1-based line of byte `at` (past the end counts as the end)
    /// and the offset where that line starts. `tokens_exact`: every
    /// newline before the parser's current token was read past as a
    /// token.
    ///
    /// The gap from the last newline is most often a rule's indent, a few
    /// bytes: a plain loop looks at them (`contains` on bytes goes to
    /// `memchr`, which costs more for so few).
    #[inline]
    #[allow(clippy::manual_contains)]
    fn line_and_start(&self, at: usize, tokens_exact: bool) -> (u32, usize) {
        let at = at.min(self.src.len());
        let last = self.after_newline;
        if tokens_exact && last <= at && !self.src.as_bytes()[last..at].iter().any(|&c| c == b'\n')
        {
            return (self.passed + 1, last);
        }
        self.count_to(at)
    }

    /// [`Lines::line_and_start`] by counting or by the table.
    #[inline(never)]
    fn count_to(&self, at: usize) -> (u32, usize) {
        let (from, line, start) = self.cursor.get();
        if at >= from {
            let gap = &self.src.as_bytes()[from..at];
            let n = count_newlines(gap);
            let (line, start) = match n {
                0 => (line, start),
                _ => (
                    line + n as u32,
                    memchr::memrchr(b'\n', gap).map_or(start, |i| from + i + 1),
                ),
            };
            self.cursor.set((at, line, start));
            return (line, start);
        }
        let starts = self.starts.get_or_init(|| line_starts(self.src));
        let li = starts.partition_point(|&s| s <= at) - 1;
        (li as u32 + 1, starts[li])
    }

    /// The 1-based line and column (in characters) of byte `at`, and the
    /// offset where its line starts.
    #[inline]
    fn line_col(&self, at: usize, tokens_exact: bool) -> (u32, u32, usize) {
        let (line, start) = self.line_and_start(at, tokens_exact);
        // Characters are counted by the bytes that start one (not UTF-8
        // continuation bytes): a plain loop over a few bytes of indent.
        let text = &self.src.as_bytes()[start..at.min(self.src.len())];
        let col = text.iter().filter(|&&c| (c as i8) >= -0x40).count() as u32 + 1;
        (line, col, start)
    }
}

/// How many `\n` bytes `b` holds. Counted 32 bytes at a time into a byte
/// (at most 32 fits), which the compiler turns into a few vector steps
/// per block; most gaps between rules are a few such blocks.
fn count_newlines(b: &[u8]) -> usize {
    let mut blocks = b.chunks_exact(32);
    let mut n = 0;
    for block in &mut blocks {
        let in_block = block.iter().fold(0u8, |acc, &c| acc + u8::from(c == b'\n'));
        n += usize::from(in_block);
    }
    n + blocks.remainder().iter().filter(|&&c| c == b'\n').count()
}

fn line_starts(src: &str) -> Vec<usize> {
    let mut v = vec![0];
    v.extend(memchr::memchr_iter(b'\n', src.as_bytes()).map(|i| i + 1));
    v
}

/// Keys nft accepts without `meta` in front.
pub(crate) const BARE_META: &[&str] = &[
    "iif",
    "oif",
    "iifname",
    "oifname",
    "iiftype",
    "oiftype",
    "iifgroup",
    "oifgroup",
    "mark",
    "skuid",
    "skgid",
    "rtclassid",
    "ibrname",
    "obrname",
    "ibriport",
    "obriport",
    "pkttype",
    "cpu",
    "cgroup",
];

/// Whether `w` is one of [`BARE_META`] (a `match`, which the compiler
/// turns into a few comparisons, rather than a walk over the list).
fn is_bare_meta(w: &str) -> bool {
    matches!(
        w,
        "iif"
            | "oif"
            | "iifname"
            | "oifname"
            | "iiftype"
            | "oiftype"
            | "iifgroup"
            | "oifgroup"
            | "mark"
            | "skuid"
            | "skgid"
            | "rtclassid"
            | "ibrname"
            | "obrname"
            | "ibriport"
            | "obriport"
            | "pkttype"
            | "cpu"
            | "cgroup"
    )
}

/// Whether `w` is a protocol word that starts a payload expression (`ip
/// saddr`, `tcp dport` ...).
fn is_payload(w: &str) -> bool {
    matches!(
        w,
        "ether"
            | "vlan"
            | "arp"
            | "ip"
            | "ip6"
            | "icmp"
            | "icmpv6"
            | "igmp"
            | "tcp"
            | "udp"
            | "udplite"
            | "sctp"
            | "dccp"
            | "th"
            | "ah"
            | "esp"
            | "comp"
            | "gre"
            | "rt"
            | "rt0"
            | "rt2"
            | "srh"
            | "hbh"
            | "frag"
            | "dst"
            | "mh"
            | "auth"
    )
}

type Res<T> = Result<T, (usize, String)>;

struct P<'a> {
    src: &'a str,
    feed: Feed<'a>,
    /// The next three tokens (a ring: `look[head]` is the current one).
    look: [Option<Token<'a>>; 4],
    head: usize,
    /// Start and end of the last token read past (the end of the input
    /// before any).
    prev_at: usize,
    prev_end: usize,
    rs: NftRuleset,
    problems: Vec<Problem>,
    lines: Lines<'a>,
    /// Room for the statements of the rule being read.
    stmt_buf: Vec<Stmt>,
    /// The rules of the chain bodies being read (an anonymous chain's
    /// after its rule's chain's), moved out sized to their number when a
    /// body ends: most chains hold one to three rules, and a list grown
    /// by pushes would hold four.
    rule_buf: Vec<Rule>,
    anon: usize,
    /// `(table index, chain index)` of every chain, found by the hash of
    /// the table index and the chain's name (the names are compared with
    /// the model's, not kept twice), so that large rulesets read in
    /// linear time.
    chain_at: hashbrown::HashTable<(u32, u32)>,
}

impl<'a> P<'a> {
    // ---- positions and problems ----

    fn line_col(&self, at: usize) -> (u32, u32, usize) {
        self.lines.line_col(at, self.newlines_are_tokens())
    }

    /// Whether every newline read past was a newline token at its own
    /// offset (tokens cut as read, no `\\` line continuation so far).
    fn newlines_are_tokens(&self) -> bool {
        matches!(&self.feed, Feed::Lex(lx) if lx.newlines_are_tokens())
    }

    fn problem_at(&mut self, at: usize, severity: Severity, message: String) {
        let (line, column, start) = self.line_col(at);
        let end = self.src[start..]
            .find('\n')
            .map_or(self.src.len(), |e| start + e);
        let text = self.src[start..end].trim_end_matches('\r');
        self.problems.push(Problem {
            line,
            column,
            severity,
            message,
            source: text.chars().take(300).collect(),
        });
    }

    fn line_of(&self, at: usize) -> u32 {
        self.line_col(at).0
    }

    // ---- token access ----

    fn peek(&self) -> Option<&Token<'a>> {
        // `head` is kept below 4; the mask lets the compiler know it.
        self.look[self.head & 3].as_ref()
    }

    /// The token `n` places ahead; `n` is at most 2.
    fn peek_at(&self, n: usize) -> Option<&Token<'a>> {
        debug_assert!(n < 3);
        self.look[(self.head + n) & 3].as_ref()
    }

    /// Moves past the current token.
    #[inline]
    fn bump(&mut self) {
        if let Some(t) = &self.look[self.head & 3] {
            self.prev_at = t.at;
            self.prev_end = t.end;
            if t.tok == Tok::Newline {
                self.lines.passed_newline(t.end);
            }
        }
        let next = match &mut self.feed {
            Feed::Lex(lx) => lx.next_token(),
            Feed::Toks(it) => it.next(),
        };
        self.look[(self.head + 3) & 3] = next;
        self.head = (self.head + 1) & 3;
    }

    fn peek_word(&self) -> Option<&'a str> {
        self.peek().and_then(Token::word)
    }

    fn here(&self) -> usize {
        self.peek().map_or(self.prev_end, |t| t.at)
    }

    fn at_end_of_stmt(&self) -> bool {
        matches!(
            self.peek().map(|t| &t.tok),
            None | Some(Tok::Newline | Tok::Semi | Tok::Close)
        )
    }

    fn eat(&mut self, tok: &Tok<'_>) -> bool {
        if self.peek().map(|t| &t.tok) == Some(tok) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn eat_word(&mut self, w: &str) -> bool {
        if self.peek_word() == Some(w) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect_word(&mut self, what: &str) -> Res<&'a str> {
        match self.peek() {
            Some(t) if t.text().is_some() => {
                let w = t.text().unwrap_or_default();
                self.bump();
                Ok(w)
            }
            _ => Err(fail(self.here(), format_args!("expected {what}"))),
        }
    }

    fn expect(&mut self, tok: Tok<'static>, what: &str) -> Res<()> {
        if self.eat(&tok) {
            Ok(())
        } else {
            Err(fail(self.here(), format_args!("expected {what}")))
        }
    }

    fn skip_blank(&mut self) {
        while matches!(self.peek().map(|t| &t.tok), Some(Tok::Newline | Tok::Semi)) {
            self.bump();
        }
    }

    fn skip_newlines(&mut self) {
        while matches!(self.peek().map(|t| &t.tok), Some(Tok::Newline)) {
            self.bump();
        }
    }

    /// Skips to the end of the statement: past balanced braces, up to a
    /// newline or `;` (consumed) or an unbalanced `}` (left).
    fn recover(&mut self) {
        let mut depth = 0usize;
        while let Some(t) = self.peek().copied() {
            match t.tok {
                Tok::Open => depth += 1,
                Tok::Close if depth == 0 => return,
                Tok::Close => depth -= 1,
                Tok::Newline | Tok::Semi if depth == 0 => {
                    self.bump();
                    return;
                }
                _ => {}
            }
            self.bump();
        }
    }

    /// Skips a `{ ... }` block whose `{` is next.
    fn skip_block(&mut self) {
        let mut depth = 0usize;
        while let Some(t) = self.peek().copied() {
            self.bump();
            match t.tok {
                Tok::Open => depth += 1,
                Tok::Close => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return;
                    }
                }
                _ => {}
            }
        }
    }

    /// The source text from byte `a` to byte `b`, blanks squeezed.
    fn squeeze(&self, a: usize, b: usize) -> String {
        let text = &self.src[a..b];
        if is_squeezed(text) {
            return text.to_string();
        }
        let mut out = String::with_capacity(b.saturating_sub(a));
        for w in self.src[a..b].split_whitespace() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(w);
        }
        out
    }

    // ---- defines ----

    fn expand_defines(&mut self, toks: Vec<Token<'a>>) -> Vec<Token<'a>> {
        // Most rulesets have no defines: their tokens are kept as they are.
        let uses_defines = toks.iter().any(|t| {
            t.word().is_some_and(|w| {
                w.starts_with('$') || matches!(w, "define" | "redefine" | "undefine")
            })
        });
        if !uses_defines {
            return toks;
        }
        let mut defs: HashMap<&'a str, Vec<Token<'a>>> = HashMap::default();
        let mut out: Vec<Token<'a>> = Vec::with_capacity(toks.len());
        let mut i = 0;
        let mut stmt_start = true;
        while i < toks.len() {
            let t = &toks[i];
            let kw = t.word();
            if stmt_start && matches!(kw, Some("define" | "redefine" | "undefine")) {
                let at = t.at;
                let name = toks.get(i + 1).and_then(Token::word);
                let Some(name) = name else {
                    self.problem_at(at, Severity::Error, "expected a name after define".into());
                    i += 1;
                    continue;
                };
                if kw == Some("undefine") {
                    defs.remove(name);
                    i += 2;
                    continue;
                }
                let mut j = i + 2;
                if toks.get(j).and_then(Token::word) != Some("=") {
                    self.problem_at(
                        toks.get(j).map_or(at, |t| t.at),
                        Severity::Error,
                        format!("expected `=` after `define {name}`"),
                    );
                    while j < toks.len() && toks[j].tok != Tok::Newline {
                        j += 1;
                    }
                    i = j;
                    continue;
                }
                j += 1;
                let vstart = j;
                let mut depth = 0usize;
                while j < toks.len() {
                    match toks[j].tok {
                        Tok::Open => depth += 1,
                        Tok::Close => depth = depth.saturating_sub(1),
                        Tok::Newline | Tok::Semi if depth == 0 => break,
                        _ => {}
                    }
                    j += 1;
                }
                let value_text = match (toks.get(vstart), toks.get(j.max(1) - 1)) {
                    (Some(a), Some(b)) if j > vstart => self.squeeze(a.at, b.end),
                    _ => String::new(),
                };
                let mut value = Vec::new();
                for v in &toks[vstart..j] {
                    self.expand_one(v, &defs, &mut value);
                }
                defs.insert(name, value);
                self.rs.defines.push(Define {
                    name: name.into(),
                    value: value_text,
                    line: self.line_of(at),
                });
                i = j;
                continue;
            }
            stmt_start = matches!(t.tok, Tok::Newline | Tok::Semi | Tok::Open | Tok::Close);
            self.expand_one(t, &defs, &mut out);
            i += 1;
        }
        out
    }

    fn expand_one(
        &mut self,
        t: &Token<'a>,
        defs: &HashMap<&'a str, Vec<Token<'a>>>,
        out: &mut Vec<Token<'a>>,
    ) {
        if let Some(w) = t.word()
            && let Some(name) = w.strip_prefix('$')
        {
            match defs.get(name) {
                Some(v) => out.extend(v.iter().map(|x| Token {
                    tok: x.tok,
                    at: t.at,
                    end: t.end,
                })),
                None => {
                    self.problem_at(t.at, Severity::Error, format!("`${name}` is not defined"));
                    out.push(*t);
                }
            }
        } else {
            out.push(*t);
        }
    }

    // ---- top level ----

    fn top(&mut self) {
        loop {
            self.skip_blank();
            let Some(t) = self.peek() else { break };
            let at = t.at;
            if t.tok == Tok::Close {
                self.problem_at(at, Severity::Error, "unmatched `}`".into());
                self.bump();
                continue;
            }
            if let Err((at, msg)) = self.command() {
                self.problem_at(at, Severity::Error, msg);
                self.recover();
            }
        }
    }

    fn command(&mut self) -> Res<()> {
        let at = self.here();
        let Some(w) = self.peek_word() else {
            return Err(fail(
                at,
                format_args!("expected `table`, `add`, `flush`, `define` or `include`"),
            ));
        };
        self.bump();
        match w {
            "table" => self.table_cmd(at, true),
            "add" | "create" | "insert" => {
                let what = self.expect_word("table, chain, rule, set, map or element")?;
                match what {
                    "table" => self.table_cmd(at, true),
                    "chain" => self.chain_cmd(at),
                    "rule" => self.rule_cmd(w == "insert"),
                    "set" | "map" => self.set_cmd(at, what == "map"),
                    "element" => self.element_cmd(),
                    "flowtable" => self.flowtable_cmd(at),
                    "counter" | "quota" | "limit" | "secmark" | "synproxy" | "ct" => {
                        let kind = if what == "ct" {
                            format!("ct {}", self.expect_word("helper, timeout or expectation")?)
                        } else {
                            what.to_string()
                        };
                        let (fam, table) = self.table_ref()?;
                        let ti = self.table_index(fam, table, at);
                        self.object(ti, kind, at)
                    }
                    other => Err(fail(at, format_args!("cannot read `{w} {other}`"))),
                }
            }
            "flush" => {
                let what = self.expect_word("ruleset, table, chain, set or map")?;
                match what {
                    "ruleset" => {
                        if self.rs.tables.is_empty() {
                            self.rs.flush_ruleset = true;
                        } else {
                            self.rs.tables.clear();
                            self.chain_at.clear();
                        }
                        let _ = self.peek_word().and_then(Family::from_name).map(|_| {
                            self.bump();
                        });
                        Ok(())
                    }
                    "table" => {
                        let (fam, name) = self.table_ref()?;
                        let ti = self.table_index(fam, name, at);
                        let t = &mut self.rs.tables[ti];
                        for c in &mut t.chains {
                            c.rules.clear();
                        }
                        for s in &mut t.sets {
                            s.elements.clear();
                        }
                        t.flushed = true;
                        Ok(())
                    }
                    "chain" => {
                        let (fam, table) = self.table_ref()?;
                        let name = self.expect_word("a chain name")?;
                        let ti = self.table_index(fam, table, at);
                        let ci = self.chain_index(ti, name, at);
                        self.rs.tables[ti].chains[ci].rules.clear();
                        Ok(())
                    }
                    "set" | "map" => {
                        let (fam, table) = self.table_ref()?;
                        let name = self.expect_word("a set name")?;
                        let ti = self.table_index(fam, table, at);
                        if let Some(s) = self.rs.tables[ti].sets.iter_mut().find(|s| s.name == name)
                        {
                            s.elements.clear();
                        }
                        Ok(())
                    }
                    other => Err(fail(at, format_args!("cannot read `flush {other}`"))),
                }
            }
            "delete" | "destroy" => {
                let what = self.expect_word("what to delete")?;
                if what == "table" {
                    let (fam, name) = self.table_ref()?;
                    self.rs
                        .tables
                        .retain(|t| !(t.family == fam && t.name == name));
                    self.reindex_chains();
                    return Ok(());
                }
                self.problem_at(
                    at,
                    Severity::Warning,
                    format!("`{w} {what}` is not applied to the model"),
                );
                self.recover();
                Ok(())
            }
            "include" => self.include(at),
            "list" | "monitor" | "describe" | "reset" | "export" | "import" | "rename"
            | "replace" => {
                self.problem_at(
                    at,
                    Severity::Warning,
                    format!("`{w}` command ignored: it does not change the ruleset read here"),
                );
                self.recover();
                Ok(())
            }
            other => Err(fail(
                at,
                format_args!(
                    "expected `table`, `add`, `flush`, `define` or `include`, found `{other}`"
                ),
            )),
        }
    }

    /// `include "PATH"` (the word `include` already read).
    fn include(&mut self, at: usize) -> Res<()> {
        let path = self.expect_word("a quoted path")?;
        self.rs.includes.push(Include {
            path: path.into(),
            line: self.line_of(at),
        });
        self.problem_at(
            at,
            Severity::Warning,
            format!("include \"{path}\" is not followed: its rules are not in this view"),
        );
        Ok(())
    }

    /// `[FAMILY] NAME`
    fn table_ref(&mut self) -> Res<(Family, &'a str)> {
        let first = self.expect_word("a table name")?;
        if let Some(f) = Family::from_name(first)
            && self.peek().and_then(Token::text).is_some()
        {
            let name = self.expect_word("a table name")?;
            return Ok((f, name));
        }
        Ok((Family::Ip, first))
    }

    fn table_index(&mut self, fam: Family, name: &str, at: usize) -> usize {
        if let Some(i) = self
            .rs
            .tables
            .iter()
            .position(|t| t.family == fam && t.name == name)
        {
            return i;
        }
        let line = self.line_of(at);
        self.rs.tables.push(Table::new(fam, name, line));
        self.rs.tables.len() - 1
    }

    /// The chain's index in table `ti`, made (empty, declared at `at`)
    /// when the table has no such chain yet. `chain_at` knows every chain
    /// of every table, so this is one hash lookup.
    fn chain_index(&mut self, ti: usize, name: &str, at: usize) -> usize {
        use hashbrown::hash_table::Entry;
        // One hash whether the chain is new or not (tens of thousands of
        // chains are declared one after the other).
        let exact = self.newlines_are_tokens();
        let tables = &self.rs.tables;
        let chain_name = |&(t, c): &(u32, u32)| tables[t as usize].chains[c as usize].name.as_str();
        match self.chain_at.entry(
            chain_hash(ti, name),
            |e| e.0 as usize == ti && chain_name(e) == name,
            |e| chain_hash(e.0 as usize, chain_name(e)),
        ) {
            Entry::Occupied(e) => e.get().1 as usize,
            Entry::Vacant(e) => {
                let ci = tables[ti].chains.len();
                e.insert((ti as u32, ci as u32));
                let line = self.lines.line_and_start(at, exact).0;
                self.rs.tables[ti].chains.push(Chain::new(name, line));
                ci
            }
        }
    }

    /// The index of an existing chain of table `ti`.
    fn known_chain(&self, ti: usize, name: &str) -> Option<usize> {
        let tables = &self.rs.tables;
        self.chain_at
            .find(chain_hash(ti, name), |&(t, c)| {
                t as usize == ti && tables[t as usize].chains[c as usize].name == name
            })
            .map(|e| e.1 as usize)
    }

    /// Builds `chain_at` again after tables were removed (their indices
    /// moved).
    fn reindex_chains(&mut self) {
        self.chain_at.clear();
        let tables = &self.rs.tables;
        for (ti, t) in tables.iter().enumerate() {
            for (ci, c) in t.chains.iter().enumerate() {
                self.chain_at
                    .insert_unique(chain_hash(ti, &c.name), (ti as u32, ci as u32), |e| {
                        chain_hash(
                            e.0 as usize,
                            &tables[e.0 as usize].chains[e.1 as usize].name,
                        )
                    });
            }
        }
    }

    fn table_cmd(&mut self, at: usize, _declare: bool) -> Res<()> {
        let (fam, name) = self.table_ref()?;
        let ti = self.table_index(fam, name, at);
        if self.eat(&Tok::Open) {
            self.table_body(ti)?;
        }
        Ok(())
    }

    fn table_body(&mut self, ti: usize) -> Res<()> {
        loop {
            self.skip_blank();
            let Some(t) = self.peek() else {
                return Err(fail(
                    self.src.len(),
                    format_args!("missing `}}` at the end of the table"),
                ));
            };
            if t.tok == Tok::Close {
                self.bump();
                return Ok(());
            }
            let at = t.at;
            if let Err((at, msg)) = self.table_item(ti, at) {
                self.problem_at(at, Severity::Error, msg);
                self.recover();
            }
        }
    }

    fn table_item(&mut self, ti: usize, at: usize) -> Res<()> {
        let w = self.expect_word("chain, set, map, flowtable, flags or comment")?;
        match w {
            "chain" => {
                let name = self.expect_word("a chain name")?;
                let ci = self.chain_index(ti, name, at);
                self.expect(Tok::Open, "`{` after the chain name")?;
                self.chain_body(ti, ci)
            }
            "set" | "map" => {
                let name = self.expect_word("a set name")?;
                self.set_decl(ti, name, w == "map", at)
            }
            "flowtable" => {
                let name = self.expect_word("a flowtable name")?;
                self.flowtable(ti, name, at)
            }
            "include" => self.include(at),
            "flags" => {
                let flags = self.word_list();
                self.rs.tables[ti].flags.extend(flags);
                Ok(())
            }
            "comment" => {
                let c = self.expect_word("a quoted comment")?;
                self.rs.tables[ti].comment = Some(c.into());
                Ok(())
            }
            "counter" | "quota" | "limit" | "secmark" | "synproxy" => {
                self.object(ti, w.to_string(), at)
            }
            "ct" => {
                let kind = self.expect_word("helper, timeout or expectation")?;
                self.object(ti, format!("ct {kind}"), at)
            }
            other => Err(fail(
                at,
                format_args!(
                    "expected chain, set, map, flowtable, flags or comment, found `{other}`"
                ),
            )),
        }
    }

    /// `A,B,C` or `A, B`
    fn word_list(&mut self) -> Vec<Str> {
        let mut out = Vec::new();
        while let Some(w) = self.peek().and_then(Token::text) {
            self.bump();
            out.push(Str::from(w));
            if !self.eat(&Tok::Comma) {
                break;
            }
        }
        out
    }

    fn object(&mut self, ti: usize, kind: String, at: usize) -> Res<()> {
        let name = self.expect_word("an object name")?;
        let body = if self.peek().map(|t| &t.tok) == Some(&Tok::Open) {
            let a = self.peek().map_or(self.prev_end, |t| t.end);
            self.skip_block();
            let b = self.prev_at;
            // One statement per line or `;`, kept apart by `; `.
            self.src[a..b]
                .split(['\n', ';'])
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join("; ")
        } else {
            String::new()
        };
        let line = self.line_of(at);
        self.rs.tables[ti].objects.push(Object {
            kind,
            name: name.into(),
            line,
            body,
        });
        Ok(())
    }

    fn chain_cmd(&mut self, at: usize) -> Res<()> {
        let (fam, table) = self.table_ref()?;
        let name = self.expect_word("a chain name")?;
        let ti = self.table_index(fam, table, at);
        let ci = self.chain_index(ti, name, at);
        if self.eat(&Tok::Open) {
            self.chain_body(ti, ci)?;
        }
        Ok(())
    }

    fn chain_body(&mut self, ti: usize, ci: usize) -> Res<()> {
        let fam = self.rs.tables[ti].family;
        // The parts a body changes are taken out while it is read (not
        // the whole chain: with tens of thousands of chains the copies
        // showed in profiles).
        let c = &mut self.rs.tables[ti].chains[ci];
        let mut head = (c.base.take(), c.comment.take());
        let mark = self.rule_buf.len();
        let r = self.chain_items(fam, &mut head);
        let c = &mut self.rs.tables[ti].chains[ci];
        c.rules.reserve_exact(self.rule_buf.len() - mark);
        c.rules.extend(self.rule_buf.drain(mark..));
        (c.base, c.comment) = head;
        r
    }

    /// The items of a chain body up to its `}`; `head` is the chain's base
    /// chain and comment, the rules go to the end of `rule_buf`.
    fn chain_items(
        &mut self,
        fam: Family,
        head: &mut (Option<Box<BaseChain>>, Option<String>),
    ) -> Res<()> {
        loop {
            self.skip_blank();
            let Some(t) = self.peek() else {
                return Err(fail(
                    self.src.len(),
                    format_args!("missing `}}` at the end of the chain"),
                ));
            };
            if t.tok == Tok::Close {
                self.bump();
                return Ok(());
            }
            let at = t.at;
            let r = match t.word() {
                Some("type") => self.base_chain(fam, &mut head.0),
                Some("policy") => {
                    self.bump();
                    let p = self.expect_word("accept or drop")?;
                    let pol = match p {
                        "accept" => Policy::Accept,
                        "drop" => Policy::Drop,
                        o => {
                            return Err(fail(
                                at,
                                format_args!("policy must be accept or drop, not `{o}`"),
                            ));
                        }
                    };
                    match &mut head.0 {
                        Some(b) => b.policy = Some(pol),
                        None => {
                            return Err(fail(
                                at,
                                format_args!("a policy needs a base chain (`type ... hook ...`)"),
                            ));
                        }
                    }
                    Ok(())
                }
                Some("comment")
                    if self
                        .peek_at(1)
                        .is_some_and(|t| matches!(t.tok, Tok::Quoted(_)))
                        && self.peek_at(2).is_none_or(|t| {
                            matches!(t.tok, Tok::Newline | Tok::Semi | Tok::Close)
                        }) =>
                {
                    self.bump();
                    head.1 = Some(self.expect_word("a comment")?.into());
                    Ok(())
                }
                Some("include") => {
                    self.bump();
                    self.include(at)
                }
                Some("devices") | Some("device") => {
                    self.bump();
                    let devs = self.devices()?;
                    if let Some(b) = &mut head.0 {
                        b.devices.extend(devs);
                    }
                    Ok(())
                }
                _ => match self.rule(fam) {
                    Ok(r) => {
                        self.rule_buf.push(r);
                        Ok(())
                    }
                    Err(e) => Err(e),
                },
            };
            if let Err((at, msg)) = r {
                self.problem_at(at, Severity::Error, msg);
                self.recover();
            }
        }
    }

    fn devices(&mut self) -> Res<Vec<Str>> {
        self.eat_word("=");
        if self.eat(&Tok::Open) {
            let mut out = Vec::new();
            loop {
                self.skip_newlines();
                if self.eat(&Tok::Close) {
                    return Ok(out);
                }
                out.push(self.expect_word("a device name")?.into());
                self.skip_newlines();
                self.eat(&Tok::Comma);
            }
        }
        Ok(vec![self.expect_word("a device name")?.into()])
    }

    fn base_chain(&mut self, fam: Family, base: &mut Option<Box<BaseChain>>) -> Res<()> {
        self.bump(); // type
        let kind = ChainType::from_name(self.expect_word("filter, nat or route")?);
        if !self.eat_word("hook") {
            return Err(fail(
                self.here(),
                format_args!("expected `hook` after the chain type"),
            ));
        }
        let hook = Hook::from_name(self.expect_word("a hook name")?);
        let mut devices = Vec::new();
        if matches!(self.peek_word(), Some("device" | "devices")) {
            self.bump();
            devices = self.devices()?;
        }
        if !self.eat_word("priority") {
            return Err(fail(
                self.here(),
                format_args!("expected `priority` after the hook"),
            ));
        }
        let priority = self.priority(fam)?;
        let policy = base.as_ref().and_then(|b| b.policy);
        *base = Some(Box::new(BaseChain {
            kind,
            hook,
            priority,
            policy,
            devices,
        }));
        Ok(())
    }

    /// `NUMBER`, `NAME`, `NAME + N`, `NAME - N` (also without blanks).
    fn priority(&mut self, fam: Family) -> Res<Priority> {
        let at = self.here();
        let mut words = Vec::new();
        while let Some(w) = self.peek_word() {
            words.push(w);
            self.bump();
        }
        let written = words.join(" ");
        let value = priority_value(fam, &written).ok_or((
            at,
            format!("cannot read priority `{written}` for family {fam}"),
        ))?;
        Ok(Priority { value, written })
    }

    fn flowtable_cmd(&mut self, at: usize) -> Res<()> {
        let (fam, table) = self.table_ref()?;
        let name = self.expect_word("a flowtable name")?;
        let ti = self.table_index(fam, table, at);
        self.flowtable(ti, name, at)
    }

    fn flowtable(&mut self, ti: usize, name: &str, at: usize) -> Res<()> {
        let fam = self.rs.tables[ti].family;
        self.expect(Tok::Open, "`{` after the flowtable name")?;
        let mut hook = Hook::Ingress;
        let mut priority = Priority::number(0);
        let mut devices = Vec::new();
        loop {
            self.skip_blank();
            if self.eat(&Tok::Close) {
                break;
            }
            let w = self.expect_word("hook, priority, devices or `}`")?;
            match w {
                "hook" => {
                    hook = Hook::from_name(self.expect_word("a hook")?);
                    if self.eat_word("priority") {
                        priority = self.priority(fam)?;
                    }
                }
                "priority" => priority = self.priority(fam)?,
                "devices" | "device" => devices = self.devices()?,
                _ => self.recover(),
            }
        }
        let line = self.line_of(at);
        self.rs.tables[ti].flowtables.push(Flowtable {
            name: name.into(),
            line,
            hook,
            priority,
            devices,
        });
        Ok(())
    }

    // ---- sets ----

    fn set_cmd(&mut self, at: usize, is_map: bool) -> Res<()> {
        let (fam, table) = self.table_ref()?;
        let name = self.expect_word("a set name")?;
        let ti = self.table_index(fam, table, at);
        self.set_decl(ti, name, is_map, at)
    }

    fn set_decl(&mut self, ti: usize, name: &str, is_map: bool, at: usize) -> Res<()> {
        let fam = self.rs.tables[ti].family;
        let line = self.line_of(at);
        let mut set = match self.rs.tables[ti].sets.iter().position(|s| s.name == name) {
            Some(i) => self.rs.tables[ti].sets.remove(i),
            None => Set {
                name: name.into(),
                line,
                is_map,
                ..Default::default()
            },
        };
        let r = self.set_body(fam, &mut set);
        self.rs.tables[ti].sets.push(set);
        r
    }

    fn set_body(&mut self, fam: Family, set: &mut Set) -> Res<()> {
        self.expect(Tok::Open, "`{` after the set name")?;
        loop {
            self.skip_blank();
            if self.eat(&Tok::Close) {
                return Ok(());
            }
            let at = self.here();
            let r = self.set_item(fam, set);
            if let Err((at2, msg)) = r {
                self.problem_at(at2.max(at), Severity::Error, msg);
                self.recover();
            }
            if self.peek().is_none() {
                return Err(fail(
                    self.src.len(),
                    format_args!("missing `}}` at the end of the set"),
                ));
            }
        }
    }

    fn set_item(&mut self, fam: Family, set: &mut Set) -> Res<()> {
        let a = self.here();
        let w = self.expect_word("type, typeof, flags, elements or comment")?;
        match w {
            "type" => {
                let (k, v) = self.type_spec();
                set.key_type = k;
                set.data_type = v;
                set.key_typeof = false;
                Ok(())
            }
            "typeof" => {
                let key = self.expr(fam, Mode::Selector)?;
                set.key_type = concat_parts(&key);
                set.key_typeof = true;
                if self.eat_word(":") {
                    let v = self.expr(fam, Mode::Selector)?;
                    set.data_type = concat_parts(&v);
                }
                Ok(())
            }
            "flags" => {
                set.flags = self.word_list();
                Ok(())
            }
            "elements" => {
                self.eat_word("=");
                self.expect(Tok::Open, "`{` after elements =")?;
                let elems = self.set_elements(fam)?;
                set.elements.extend(elems);
                Ok(())
            }
            "comment" => {
                set.comment = Some(self.expect_word("a comment")?.into());
                Ok(())
            }
            _ => {
                while !self.at_end_of_stmt() {
                    if self.peek().map(|t| &t.tok) == Some(&Tok::Open) {
                        self.skip_block();
                    } else {
                        self.bump();
                    }
                }
                let b = self.prev_end;
                set.other.push(self.squeeze(a, b));
                Ok(())
            }
        }
    }

    /// `A . B [: C . D]` (also `: verdict`, `: interval ...`).
    fn type_spec(&mut self) -> (Vec<Str>, Vec<Str>) {
        let mut key = Vec::new();
        let mut val = Vec::new();
        let mut in_val = false;
        while let Some(w) = self.peek_word() {
            self.bump();
            match w {
                "." => {}
                ":" => in_val = true,
                _ if in_val => val.push(w.into()),
                _ => key.push(w.into()),
            }
        }
        (key, val)
    }

    fn element_cmd(&mut self) -> Res<()> {
        let at = self.here();
        let (fam, table) = self.table_ref()?;
        let name = self.expect_word("a set name")?;
        let ti = self.table_index(fam, table, at);
        self.expect(Tok::Open, "`{` before the elements")?;
        let elems = self.set_elements(fam)?;
        match self.rs.tables[ti].sets.iter_mut().find(|s| s.name == name) {
            Some(s) => {
                s.elements.extend(elems);
                Ok(())
            }
            None => Err(fail(
                at,
                format_args!("no set or map `{name}` in table {fam} {table}"),
            )),
        }
    }

    /// Elements up to the closing `}` (consumed).
    fn set_elements(&mut self, fam: Family) -> Res<Vec<Expr>> {
        let mut out = Vec::new();
        loop {
            self.skip_newlines();
            if self.eat(&Tok::Close) {
                return Ok(out);
            }
            let e = self.element(fam)?;
            out.push(e);
            self.skip_newlines();
            if self.eat(&Tok::Comma) {
                continue;
            }
            self.skip_newlines();
            if self.eat(&Tok::Close) {
                return Ok(out);
            }
            return Err(fail(
                self.here(),
                format_args!("expected `,` or `}}` in the set"),
            ));
        }
    }

    fn element(&mut self, fam: Family) -> Res<Expr> {
        let key = self.expr_in_set(fam)?;
        let key = self.elem_options(key);
        if self.eat_word(":") {
            let v = if let Some(v) = self.try_verdict(fam)? {
                Expr::Verdict(Box::new(v))
            } else {
                self.expr_in_set(fam)?
            };
            return Ok(Expr::MapElem(Box::new((key, v))));
        }
        Ok(key)
    }

    fn elem_options(&mut self, key: Expr) -> Expr {
        let a = self.here();
        let mut end = None;
        while let Some(w) = self.peek_word() {
            if !matches!(
                w,
                "timeout" | "expires" | "comment" | "counter" | "packets" | "bytes"
            ) {
                break;
            }
            self.bump();
            if w == "counter" {
                end = Some(self.prev_end);
                continue;
            }
            if self.peek().and_then(Token::text).is_some() {
                self.bump();
            }
            end = Some(self.prev_end);
        }
        match end {
            Some(b) => Expr::Elem {
                value: Box::new(key),
                options: self.squeeze(a, b).into(),
            },
            None => key,
        }
    }

    // ---- rules ----

    fn rule_cmd(&mut self, insert: bool) -> Res<()> {
        let at = self.here();
        let (fam, table) = self.table_ref()?;
        let chain = self.expect_word("a chain name")?;
        // `position N` / `handle N` / `index N` before the statements.
        if matches!(self.peek_word(), Some("position" | "handle" | "index")) {
            self.bump();
            self.bump();
        }
        let ti = self.table_index(fam, table, at);
        let known = self.known_chain(ti, chain).is_some();
        if !known {
            self.problem_at(
                at,
                Severity::Error,
                format!("chain `{chain}` is not declared in table {fam} {table}"),
            );
        }
        let ci = self.chain_index(ti, chain, at);
        let r = self.rule(fam)?;
        let rules = &mut self.rs.tables[ti].chains[ci].rules;
        if insert {
            rules.insert(0, r);
        } else {
            rules.push(r);
        }
        Ok(())
    }

    /// One rule: statements up to a newline, `;` or `}`.
    fn rule(&mut self, fam: Family) -> Res<Rule> {
        let start = self.here();
        let (line, col, _) = self.line_col(start);
        let mut rule = Rule {
            line,
            col,
            ..Default::default()
        };
        let mut text_end = start;
        // Statements gather in a list kept from rule to rule, and the
        // rule gets a copy of just their number (most rules hold three or
        // four; a list grown by pushes would hold four or eight).
        let mut stmts = std::mem::take(&mut self.stmt_buf);
        stmts.clear();
        while !self.at_end_of_stmt() {
            if self.eat_word("comment") {
                rule.comment = Some(self.expect_word("a quoted comment")?.into());
                continue;
            }
            let s = self.stmt(fam)?;
            text_end = self.prev_end;
            stmts.push(s);
        }
        // A copy sized to the statements, not the buffer itself (it keeps
        // its room for the next rule).
        #[allow(clippy::drain_collect)]
        let exact: Vec<Stmt> = stmts.drain(..).collect();
        rule.stmts = exact;
        self.stmt_buf = stmts;
        if rule.stmts.is_empty() && rule.comment.is_none() {
            return Err(fail(start, format_args!("expected a statement")));
        }
        rule.text = self.squeeze(start, text_end.max(start));
        Ok(rule)
    }

    /// The body of `jump { ... }` / `goto { ... }` (the `{` read).
    #[cold]
    #[inline(never)]
    fn anon_chain(&mut self, fam: Family, jump: bool) -> Res<Verdict> {
        self.anon += 1;
        let mut c = Chain::new(format!("{{anon {}}}", self.anon), self.line_of(self.here()));
        let mut head = (None, None);
        let mark = self.rule_buf.len();
        if let Err(e) = self.chain_items(fam, &mut head) {
            self.rule_buf.truncate(mark);
            return Err(e);
        }
        (c.base, c.comment) = head;
        c.rules = self.rule_buf.drain(mark..).collect();
        Ok(if jump {
            Verdict::JumpAnon(Box::new(c))
        } else {
            Verdict::GotoAnon(Box::new(c))
        })
    }

    /// `queue ...` (the word `queue` next).
    #[cold]
    #[inline(never)]
    fn queue(&mut self) -> Verdict {
        self.bump();
        let a = self.here();
        let mut b = None;
        while let Some(w) = self.peek_word() {
            if !(matches!(w, "num" | "to" | "flags" | "bypass" | "fanout")
                || w.starts_with(|c: char| c.is_ascii_digit()))
            {
                break;
            }
            self.bump();
            while self.eat(&Tok::Comma) {
                self.bump();
            }
            b = Some(self.prev_end);
        }
        Verdict::Queue(b.map_or(String::new(), |b| self.squeeze(a, b)))
    }

    fn try_verdict(&mut self, fam: Family) -> Res<Option<Verdict>> {
        let Some(w) = self.peek_word() else {
            return Ok(None);
        };
        let v = match w {
            "accept" => Verdict::Accept,
            "drop" => Verdict::Drop,
            "continue" => Verdict::Continue,
            "return" => Verdict::Return,
            "jump" | "goto" => {
                self.bump();
                if self.eat(&Tok::Open) {
                    return self.anon_chain(fam, w == "jump").map(Some);
                }
                let target = self.expect_word("a chain name")?;
                return Ok(Some(if w == "jump" {
                    Verdict::Jump(target.into())
                } else {
                    Verdict::Goto(target.into())
                }));
            }
            "queue" => return Ok(Some(self.queue())),
            _ => return Ok(None),
        };
        self.bump();
        Ok(Some(v))
    }

    fn stmt(&mut self, fam: Family) -> Res<Stmt> {
        let at = self.here();
        // Most statements are not verdicts: the words are looked at here
        // before a call is made for them.
        if matches!(
            self.peek_word(),
            Some("accept" | "drop" | "continue" | "return" | "jump" | "goto" | "queue")
        ) && let Some(v) = self.try_verdict(fam)?
        {
            return Ok(Stmt::Verdict(v));
        }
        let Some(w) = self.peek().and_then(Token::text) else {
            return Err(fail(at, format_args!("expected a statement")));
        };
        match w {
            "counter" => {
                self.bump();
                let mut packets = None;
                let mut bytes = None;
                let mut name = None;
                loop {
                    match self.peek_word() {
                        Some("packets") => {
                            self.bump();
                            packets = Some(self.number()?);
                        }
                        Some("bytes") => {
                            self.bump();
                            bytes = Some(self.number()?);
                        }
                        Some("name") => {
                            self.bump();
                            name = Some(self.expect_word("a counter name")?.into());
                        }
                        _ => break,
                    }
                }
                Ok(Stmt::Counter {
                    packets,
                    bytes,
                    name,
                })
            }
            "log" => self.log_stmt(),
            "reject" => self.reject_stmt(),
            "limit" => self.limit_stmt(),
            "notrack" => {
                self.bump();
                Ok(Stmt::Notrack)
            }
            "dnat" | "snat" | "masquerade" | "redirect" => {
                self.bump();
                self.nat(fam, w)
            }
            "xt" | "add" | "update" | "delete" | "meter" | "dup" | "fwd" | "tproxy"
            | "synproxy" | "flow" | "quota" | "objref" => self.other_stmt(at),
            _ => self.match_or_set(fam, at),
        }
    }

    /// `log ...` (the word `log` next).
    #[cold]
    #[inline(never)]
    fn log_stmt(&mut self) -> Res<Stmt> {
        self.bump();
        let (mut prefix, mut level, mut group, mut other) = (None, None, None, Vec::new());
        loop {
            match self.peek_word() {
                Some("prefix") => {
                    self.bump();
                    prefix = Some(self.expect_word("a prefix")?.to_string());
                }
                Some("level") => {
                    self.bump();
                    level = Some(self.expect_word("a level")?.into());
                }
                Some("group") => {
                    self.bump();
                    group = Some(self.number()? as u32);
                }
                Some(k @ ("snaplen" | "queue-threshold")) => {
                    self.bump();
                    let n = self.expect_word("a number")?;
                    other.push(format!("{k} {n}"));
                }
                Some("flags") => {
                    self.bump();
                    let mut f = Vec::new();
                    while let Some(w) = self.peek_word() {
                        if !matches!(
                            w,
                            "tcp" | "ip" | "sequence" | "options" | "skuid" | "ether" | "all"
                        ) {
                            break;
                        }
                        self.bump();
                        f.push(w);
                        if self.eat(&Tok::Comma) {
                            f.push(",");
                        }
                    }
                    other.push(format!("flags {}", f.join(" ").replace(" , ", ",")));
                }
                _ => break,
            }
        }
        Ok(Stmt::Log(Box::new(Log {
            prefix,
            level,
            group,
            other,
        })))
    }

    /// `reject ...` (the word `reject` next).
    #[cold]
    #[inline(never)]
    fn reject_stmt(&mut self) -> Res<Stmt> {
        self.bump();
        let mut with = None;
        if self.eat_word("with") {
            let a = self.here();
            let k = self.expect_word("icmp, icmpv6, icmpx or tcp")?;
            if k == "tcp" {
                self.eat_word("reset");
            } else {
                self.eat_word("type");
                self.expect_word("a reject type")?;
            }
            let b = self.prev_end;
            with = Some(self.squeeze(a, b).replace(" type ", " "));
        }
        Ok(Stmt::Reject { with })
    }

    /// `limit ...` (the word `limit` next).
    #[cold]
    #[inline(never)]
    fn limit_stmt(&mut self) -> Res<Stmt> {
        self.bump();
        let a = self.here();
        while let Some(w) = self.peek_word() {
            if !(matches!(
                w,
                "rate" | "over" | "until" | "burst" | "packets" | "bytes" | "kbytes" | "mbytes"
            ) || w.starts_with(|c: char| c.is_ascii_digit()))
            {
                break;
            }
            self.bump();
        }
        let b = self.prev_end;
        Ok(Stmt::Limit {
            text: self.squeeze(a, b.max(a)),
        })
    }

    fn number(&mut self) -> Res<u64> {
        let at = self.here();
        let w = self.expect_word("a number")?;
        w.parse()
            .map_err(|_| fail(at, format_args!("expected a number, found `{w}`")))
    }

    /// A statement kept as text up to the next verdict or `comment`.
    #[cold]
    #[inline(never)]
    fn other_stmt(&mut self, at: usize) -> Res<Stmt> {
        self.bump();
        while !self.at_end_of_stmt() {
            if matches!(
                self.peek_word(),
                Some(
                    "accept"
                        | "drop"
                        | "return"
                        | "jump"
                        | "goto"
                        | "continue"
                        | "comment"
                        | "counter"
                )
            ) {
                break;
            }
            if self.peek().map(|t| &t.tok) == Some(&Tok::Open) {
                self.skip_block();
            } else {
                self.bump();
            }
        }
        let b = self.prev_end;
        Ok(Stmt::Other(self.squeeze(at, b)))
    }

    #[inline(never)]
    fn nat(&mut self, fam: Family, kw: &str) -> Res<Stmt> {
        let kind = match kw {
            "dnat" => NatKind::Dnat,
            "snat" => NatKind::Snat,
            "masquerade" => NatKind::Masquerade,
            _ => NatKind::Redirect,
        };
        let mut nat = Nat {
            kind,
            family: None,
            addr: None,
            port: None,
            flags: Vec::new(),
            other: None,
        };
        if matches!(kind, NatKind::Dnat | NatKind::Snat)
            && let Some(f @ ("ip" | "ip6")) = self.peek_word()
            && matches!(
                self.peek_at(1).and_then(Token::word),
                Some("to" | "prefix" | "addr")
            )
        {
            nat.family = Family::from_name(f);
            self.bump();
        }
        let to = self.eat_word("to")
            || (matches!(kind, NatKind::Dnat | NatKind::Snat)
                && self.peek_word().is_some_and(|w| {
                    !matches!(
                        w,
                        "random" | "persistent" | "fully-random" | "comment" | "counter"
                    )
                }));
        if to {
            let at = self.here();
            if let Some(w) = self.peek_word()
                && let Some(port) = w.strip_prefix(':')
            {
                self.bump();
                nat.port = Some(value_expr(port));
            } else {
                let e = self.expr(fam, Mode::Mixed)?;
                match e {
                    Expr::Value(v) => {
                        let (a, p) = split_addr_port(&v);
                        nat.addr = Some(value_expr(a));
                        nat.port = p.map(value_expr);
                    }
                    Expr::Range(lo, hi) => {
                        // `1.2.3.4-1.2.3.9:80-90` reads as one range word.
                        nat.addr = Some(Expr::Range(lo, hi));
                    }
                    other => nat.addr = Some(other),
                }
                if let Some(w) = self.peek_word()
                    && let Some(port) = w.strip_prefix(':')
                {
                    self.bump();
                    nat.port = Some(value_expr(port));
                }
                let _ = at;
            }
        }
        loop {
            match self.peek_word() {
                Some(f @ ("random" | "persistent" | "fully-random")) => {
                    self.bump();
                    nat.flags.push(f.into());
                    self.eat(&Tok::Comma);
                }
                Some(f @ ("prefix" | "interval")) => {
                    self.bump();
                    nat.other = Some(f.to_string());
                }
                _ => break,
            }
        }
        Ok(Stmt::Nat(Box::new(nat)))
    }

    fn match_or_set(&mut self, fam: Family, at: usize) -> Res<Stmt> {
        let left = self.expr(fam, Mode::Selector)?;
        if matches!(left, Expr::Value(_)) {
            return Err(fail(
                at,
                format_args!("unknown statement or expression `{}`", self.src_word(at)),
            ));
        }
        if self.eat_word("set") {
            let value = self.expr(fam, Mode::Mixed)?;
            return Ok(Stmt::Mangle { key: left, value });
        }
        if self.eat_word("vmap") {
            let map = self.expr_set_or_ref(fam)?;
            return Ok(Stmt::Vmap { key: left, map });
        }
        let op = match self.peek_word() {
            Some("==" | "eq") => RelOp::Eq,
            Some("!=" | "ne") => RelOp::Ne,
            Some("<" | "lt") => RelOp::Lt,
            Some(">" | "gt") => RelOp::Gt,
            Some("<=" | "le") => RelOp::Le,
            Some(">=" | "ge") => RelOp::Ge,
            _ => RelOp::Implicit,
        };
        if op != RelOp::Implicit {
            self.bump();
        }
        if self.at_end_of_stmt() {
            return Err(fail(
                self.here(),
                format_args!("expected a value to compare with"),
            ));
        }
        let right = self.expr(fam, Mode::Value)?;
        // `tcp flags syn / syn,rst` is `(tcp flags & (syn|rst)) == syn`.
        if let Expr::Binop {
            op: slash,
            left: value,
            right: mask,
        } = &right
            && *slash == BinOp::Mask
        {
            return Ok(Stmt::Match(Match {
                left: Expr::Binop {
                    op: BinOp::And,
                    left: Box::new(left),
                    right: mask.clone(),
                },
                op,
                right: (**value).clone(),
            }));
        }
        Ok(Stmt::Match(Match { left, op, right }))
    }

    fn src_word(&self, at: usize) -> &'a str {
        let rest = &self.src[at..];
        let end = rest
            .find(|c: char| c.is_whitespace() || c == ';')
            .unwrap_or(rest.len());
        &rest[..end]
    }

    fn expr_set_or_ref(&mut self, fam: Family) -> Res<Expr> {
        let at = self.here();
        if self.eat(&Tok::Open) {
            return self.anon_set(fam);
        }
        if let Some(w) = self.peek_word()
            && let Some(name) = w.strip_prefix('@')
        {
            self.bump();
            return Ok(Expr::SetRef(name.into()));
        }
        Err(fail(at, format_args!("expected `{{` or `@name`")))
    }

    fn anon_set(&mut self, fam: Family) -> Res<Expr> {
        let elems = self.set_elements(fam)?;
        if elems.iter().any(|e| matches!(e, Expr::MapElem(..))) {
            Ok(Expr::Map(elems))
        } else {
            Ok(Expr::Set(elems))
        }
    }

    fn expr_in_set(&mut self, fam: Family) -> Res<Expr> {
        let first = self.primary(fam, Mode::Value)?;
        if !self.eat_word(".") {
            return Ok(first);
        }
        let mut parts = vec![first, self.primary(fam, Mode::Value)?];
        while self.eat_word(".") {
            parts.push(self.primary(fam, Mode::Value)?);
        }
        Ok(Expr::Concat(parts))
    }

    /// An expression: primaries joined by `.`, then binary operators,
    /// `map` lookups and (outside braces, for values) `,` flag lists.
    fn expr(&mut self, fam: Family, mode: Mode) -> Res<Expr> {
        let mut e = self.concat(fam, mode)?;
        while let Some(w) = self.peek_word() {
            let op = match w {
                "&" | "and" => BinOp::And,
                "|" | "or" => BinOp::Or,
                "^" | "xor" => BinOp::Xor,
                "<<" | "lshift" => BinOp::Shl,
                ">>" | "rshift" => BinOp::Shr,
                "/" => BinOp::Mask,
                "map" => {
                    self.bump();
                    let map = self.expr_set_or_ref(fam)?;
                    e = Expr::Lookup {
                        key: Box::new(e),
                        map: Box::new(map),
                    };
                    continue;
                }
                _ => break,
            };
            self.bump();
            let rmode = if op == BinOp::Mask {
                Mode::Value
            } else {
                mode.for_operand()
            };
            let right = self.concat(fam, rmode)?;
            e = Expr::Binop {
                op,
                left: Box::new(e),
                right: Box::new(right),
            };
        }
        Ok(e)
    }

    fn concat(&mut self, fam: Family, mode: Mode) -> Res<Expr> {
        // Most expressions are one part: no list is made for them.
        let first = self.listed(fam, mode)?;
        if !self.eat_word(".") {
            return Ok(first);
        }
        let mut parts = vec![first, self.listed(fam, mode)?];
        while self.eat_word(".") {
            parts.push(self.listed(fam, mode)?);
        }
        Ok(Expr::Concat(parts))
    }

    /// A primary, or `A,B,C` for values.
    fn listed(&mut self, fam: Family, mode: Mode) -> Res<Expr> {
        let first = self.primary(fam, mode)?;
        if mode == Mode::Selector || self.peek().map(|t| &t.tok) != Some(&Tok::Comma) {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.eat(&Tok::Comma) {
            items.push(self.primary(fam, Mode::Value)?);
        }
        Ok(Expr::List(items))
    }

    fn primary(&mut self, fam: Family, mode: Mode) -> Res<Expr> {
        let at = self.here();
        let Some(t) = self.peek().cloned() else {
            return Err(fail(at, format_args!("expected an expression")));
        };
        match t.tok {
            Tok::Open => {
                self.bump();
                return self.anon_set(fam);
            }
            Tok::Quoted(s) => {
                self.bump();
                return Ok(Expr::Value(s.into()));
            }
            Tok::Word(_) => {}
            _ => return Err(fail(at, format_args!("expected an expression"))),
        }
        let w = t.word().unwrap_or_default();
        if w == "(" {
            self.bump();
            let inner = self.expr(fam, mode.for_operand())?;
            if !self.eat_word(")") {
                return Err(fail(self.here(), format_args!("expected `)`")));
            }
            return Ok(flags_of_or(inner));
        }
        if let Some(name) = w.strip_prefix('@') {
            self.bump();
            return Ok(Expr::SetRef(name.into()));
        }
        if mode == Mode::Value {
            self.bump();
            return Ok(value_expr(w));
        }
        if let Some(e) = self.selector(fam, w)? {
            return Ok(e);
        }
        if mode == Mode::Selector && !looks_like_value(w) {
            return Err(fail(
                at,
                format_args!("unknown statement or expression `{w}`"),
            ));
        }
        self.bump();
        Ok(value_expr(w))
    }

    /// `ct [original|reply] [ip|ip6] KEY` (the word `ct` next).
    #[inline(never)]
    fn ct(&mut self) -> Res<Expr> {
        self.bump();
        let mut dir = None;
        let mut family = None;
        match self.peek_word() {
            Some("original") => {
                dir = Some(CtDir::Original);
                self.bump();
            }
            Some("reply") => {
                dir = Some(CtDir::Reply);
                self.bump();
            }
            _ => {}
        }
        if let Some(f @ ("ip" | "ip6")) = self.peek_word() {
            family = Family::from_name(f);
            self.bump();
        }
        let key = self.expect_word("a ct key")?;
        Ok(Expr::Ct {
            key: key.into(),
            dir,
            family,
        })
    }

    /// `numgen inc|random [mod N] [offset M]` as text (the word `numgen`
    /// next).
    #[inline(never)]
    fn numgen(&mut self) -> Res<Expr> {
        self.bump();
        let mode = self.expect_word("inc or random")?;
        let mut m = None;
        if self.eat_word("mod") {
            m = Some(self.expect_word("a number")?);
        }
        let mut off = None;
        if self.eat_word("offset") {
            let o = self.expect_word("a number")?;
            if o != "0" {
                off = Some(o);
            }
        }
        // One string, made to size.
        let len = 7 + mode.len() + m.map_or(0, |n| 5 + n.len()) + off.map_or(0, |o| 8 + o.len());
        let mut text = String::with_capacity(len);
        text.push_str("numgen ");
        text.push_str(mode);
        if let Some(n) = m {
            text.push_str(" mod ");
            text.push_str(n);
        }
        if let Some(o) = off {
            text.push_str(" offset ");
            text.push_str(o);
        }
        Ok(Expr::Hash(text))
    }

    /// `jhash ...` / `symhash ...` as text (the word next).
    #[cold]
    #[inline(never)]
    fn hash_text(&mut self) -> Expr {
        let a = self.here();
        self.bump();
        while let Some(x) = self.peek_word() {
            if matches!(x, "accept" | "drop" | "map" | "vmap" | "==" | "!=") {
                break;
            }
            self.bump();
            if x == "mod" || x == "seed" || x == "offset" {
                self.bump();
                if !matches!(self.peek_word(), Some("seed" | "offset")) {
                    break;
                }
            }
        }
        let b = self.prev_end;
        Expr::Hash(self.squeeze(a, b))
    }

    /// `rt KEY` kept as text (`rt` and the key next).
    #[cold]
    #[inline(never)]
    fn rt_other(&mut self, key: &str) -> Expr {
        self.bump();
        self.bump();
        Expr::Other(format!("rt {key}"))
    }

    /// `tcp option ...` / `ip option ...` kept as text.
    #[cold]
    #[inline(never)]
    fn option_other(&mut self) -> Expr {
        let a = self.here();
        for _ in 0..3 {
            self.bump();
        }
        if let Some(f) = self.peek_word()
            && !matches!(f, "set" | "==" | "!=")
            && !looks_like_value(f)
        {
            self.bump();
        }
        let b = self.prev_end;
        Expr::Other(self.squeeze(a, b))
    }

    /// `fib FLAGS RESULT` (the word `fib` next).
    #[cold]
    #[inline(never)]
    fn fib(&mut self) -> Res<Expr> {
        self.bump();
        let mut flags = vec![Str::from(self.expect_word("a fib flag")?)];
        while self.eat_word(".") {
            flags.push(self.expect_word("a fib flag")?.into());
        }
        let result = self.expect_word("oif, oifname or type")?;
        Ok(Expr::Fib(Box::new(Fib {
            flags,
            result: result.into(),
        })))
    }

    /// `meta K`, bare meta keys, `ct ...`, `fib ...`, payloads, `numgen`.
    fn selector(&mut self, fam: Family, w: &'a str) -> Res<Option<Expr>> {
        let next = self.peek_at(1).and_then(Token::word);
        let e = match w {
            "meta" => {
                self.bump();
                Expr::Meta(self.expect_word("a meta key")?.into())
            }
            _ if is_bare_meta(w) => {
                self.bump();
                Expr::Meta(w.into())
            }
            "ct" => self.ct()?,
            "fib" => self.fib()?,
            "numgen" => self.numgen()?,
            "jhash" | "symhash" => self.hash_text(),
            "rt" if matches!(next, Some("mtu" | "nexthop" | "classid" | "ipsec")) => {
                self.rt_other(next.unwrap_or_default())
            }
            "tcp" | "ip" if next == Some("option") => self.option_other(),
            _ if is_payload(w) && next.is_some_and(|n| !looks_like_value(n) || n == "type") => {
                self.bump();
                self.bump();
                Expr::Payload(Payload::new(w, next.unwrap_or_default()))
            }
            _ => return Ok(None),
        };
        let _ = fam;
        Ok(Some(e))
    }
}

/// A problem at byte `at` (kept out of the way of the reading code: it
/// is made only when the input is wrong).
#[cold]
#[inline(never)]
fn fail(at: usize, msg: std::fmt::Arguments<'_>) -> (usize, String) {
    (at, msg.to_string())
}

/// The hash under which chain `name` of table `ti` is found.
fn chain_hash(ti: usize, name: &str) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one((ti, name))
}

/// Whether `t` is already as [`P::squeeze`] leaves it: ASCII words kept
/// apart by single spaces (as nft lists a rule).
///
/// This runs on the text of every rule, so each byte is checked with the
/// one after it sixteen pairs at a time, without early exits (the
/// compiler makes a few vector steps of each block); the last block is
/// taken back to end with the text (some pairs are checked twice) rather
/// than leaving a tail to check one pair at a time.
fn is_squeezed(t: &str) -> bool {
    let b = t.as_bytes();
    let (Some(&first), Some(&last)) = (b.first(), b.last()) else {
        return true;
    };
    if first == b' ' || last == b' ' {
        return false;
    }
    // White space other than the space (`\t` to `\r`), any byte of a
    // non-ASCII character (which may be Unicode white space), or a space
    // with another after it.
    let wrong =
        |x: u8, y: u8| (x.wrapping_sub(b'\t') < 5) | (x >= 0x80) | ((x == b' ') & (y == b' '));
    let pairs = b.len() - 1;
    let mut any = wrong(last, 0);
    if pairs < 16 {
        let tail = b.iter().zip(&b[1..]);
        return !tail.fold(any, |acc, (&x, &y)| acc | wrong(x, y));
    }
    let mut i = 0;
    loop {
        let from = i.min(pairs - 16);
        if let (Some(xs), Some(ys)) = (
            b[from..].first_chunk::<16>(),
            b[from + 1..].first_chunk::<16>(),
        ) {
            any |= xs
                .iter()
                .zip(ys)
                .fold(false, |acc, (&x, &y)| acc | wrong(x, y));
        }
        if i >= pairs - 16 {
            return !any;
        }
        i += 16;
    }
}

/// `(a | b | c)` of plain values is the flag list `a,b,c`.
fn flags_of_or(e: Expr) -> Expr {
    fn collect(e: Expr, out: &mut Vec<Expr>) -> Result<(), Expr> {
        match e {
            Expr::Binop {
                op: BinOp::Or,
                left,
                right,
            } => {
                collect(*left, out)?;
                collect(*right, out)
            }
            v @ Expr::Value(_) => {
                out.push(v);
                Ok(())
            }
            other => Err(other),
        }
    }
    let mut items = Vec::new();
    match collect(e.clone(), &mut items) {
        Ok(()) if items.len() > 1 => Expr::List(items),
        _ => e,
    }
}

/// How a word is read in an expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Left of a match: keywords start selectors; a value is an error.
    Selector,
    /// Right of `set` or `to`: selectors where keywords say so, else values.
    Mixed,
    /// Right of a match, set elements: every word is a value.
    Value,
}

impl Mode {
    fn for_operand(self) -> Mode {
        match self {
            Mode::Selector => Mode::Mixed,
            m => m,
        }
    }
}

/// The parts of a concatenation as text (`ip saddr`, `tcp dport`), for
/// `typeof` declarations.
fn concat_parts(e: &Expr) -> Vec<Str> {
    match e {
        Expr::Concat(v) => v.iter().map(|x| Str::from(x.to_string())).collect(),
        other => vec![Str::from(other.to_string())],
    }
}

/// Does a word read as a literal rather than a keyword (a number, an
/// address, a range or prefix of those)?
pub(crate) fn looks_like_value(w: &str) -> bool {
    let b = w.as_bytes();
    !b.is_empty() && (b[0].is_ascii_digit() || w.contains(':') || b[0] == b'-' || b[0] == b'$')
}

/// Reads a literal word: a prefix `A/N`, a range `A-B` of numbers or
/// addresses, or a plain value.
pub(crate) fn value_expr(w: &str) -> Expr {
    // Most words are neither: two byte scans settle them without the
    // number and address parsing below.
    let b = w.as_bytes();
    if let Some(i) = b.iter().rposition(|&c| c == b'/')
        && let Ok(len) = w[i + 1..].parse::<u8>()
        && w[..i].parse::<std::net::IpAddr>().is_ok()
    {
        return Expr::Prefix {
            addr: w[..i].into(),
            len,
        };
    }
    if b.contains(&b'-')
        && let Some((a, b)) = split_range(w)
    {
        return Expr::Range(
            Box::new(Expr::Value(a.into())),
            Box::new(Expr::Value(b.into())),
        );
    }
    Expr::Value(w.into())
}

fn numeric_or_addr(s: &str) -> bool {
    !s.is_empty()
        && (s.parse::<u64>().is_ok()
            || s.strip_prefix("0x")
                .is_some_and(|h| u64::from_str_radix(h, 16).is_ok())
            || s.parse::<std::net::IpAddr>().is_ok())
}

fn split_range(w: &str) -> Option<(&str, &str)> {
    // `-` is one byte and no other character's bytes contain it.
    for (i, &c) in w.as_bytes().iter().enumerate() {
        if c == b'-' && i > 0 {
            let (a, b) = (&w[..i], &w[i + 1..]);
            if numeric_or_addr(a) && numeric_or_addr(b) {
                return Some((a, b));
            }
        }
    }
    None
}

/// `1.2.3.4:80` -> (`1.2.3.4`, `80`); `[fe80::1]:80` -> (`fe80::1`, `80`);
/// a bare IPv6 address stays whole.
fn split_addr_port(v: &str) -> (&str, Option<&str>) {
    if let Some(rest) = v.strip_prefix('[')
        && let Some((a, p)) = rest.split_once(']')
    {
        return (a, p.strip_prefix(':').filter(|p| !p.is_empty()));
    }
    let b = v.as_bytes();
    if let Some(i) = b.iter().position(|&c| c == b':')
        && !b[i + 1..].contains(&b':')
    {
        return (&v[..i], Some(&v[i + 1..]));
    }
    (v, None)
}

/// The value of a priority as written (`-150`, `filter`, `dstnat + 10`,
/// `filter-1`).
pub fn priority_value(fam: Family, written: &str) -> Option<i32> {
    let s: String = written.split_whitespace().collect();
    if let Ok(n) = s.parse::<i32>() {
        return Some(n);
    }
    let split = s.find(['+', '-']).unwrap_or(s.len());
    let (name, rest) = s.split_at(split);
    let base = named_priority(fam, name)?;
    if rest.is_empty() {
        return Some(base);
    }
    let off: i32 = rest[1..].parse().ok()?;
    Some(if rest.starts_with('-') {
        base - off
    } else {
        base + off
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_rule(body: &str) -> Rule {
        let text = format!("table inet t {{\n chain c {{\n  {body}\n }}\n}}\n");
        let (rs, problems) = parse_text(&text);
        assert!(problems.is_empty(), "{problems:?}");
        rs.tables[0].chains[0].rules[0].clone()
    }

    /// Lines found by counting forward (and by the table, when looking
    /// back) agree with a plain walk over the characters.
    #[test]
    fn lines_counted_forward_or_looked_up_agree() {
        let mut src = String::new();
        for i in 0..200 {
            src.push_str(&"\t".repeat(i % 3));
            src.push_str(if i % 7 == 0 { "é x" } else { "word y" });
            src.push_str(&"\n".repeat(1 + i % 40 / 39 * 40));
        }
        let plain = |at: usize| {
            let before = &src[..at];
            let line = before.matches('\n').count() as u32 + 1;
            let start = before.rfind('\n').map_or(0, |i| i + 1);
            (line, before[start..].chars().count() as u32 + 1, start)
        };
        let offsets: Vec<usize> = (0..=src.len())
            .filter(|&i| src.is_char_boundary(i))
            .collect();
        let lines = Lines::new(&src);
        for &at in offsets.iter().step_by(3) {
            assert_eq!(lines.line_col(at, false), plain(at), "forward to {at}");
        }
        for &at in offsets.iter().rev().step_by(5) {
            assert_eq!(lines.line_col(at, false), plain(at), "back to {at}");
        }
        assert_eq!(lines.line_col(src.len() + 9, false), plain(src.len()));
        assert_eq!(count_newlines(&[b'\n'; 100]), 100);
    }

    /// Rule lines and columns, and a problem's, come out the same whether
    /// read from the newline tokens, counted, or looked up (comments,
    /// `\\` continuations, CRLF, defines, non-ASCII text before a rule).
    #[test]
    fn rule_positions_by_any_route() {
        let texts = [
            "table ip t {\n # c {\n\tchain c {\n\t\tip saddr 1.2.3.4 \\\n  accept\n\t\tdrop\n\t}\n}\n",
            "table ip t {\r\n chain c {\r\n  accept # é\r\n\r\n  é drop\r\n  drop\r\n }\r\n}\r\n",
            "define x = {\n 1,\n 2 }\ntable ip t {\n chain c {\n  tcp dport $x accept\n  bogus\n  drop\n }\n}\n",
            "table ip t { chain c { accept; drop\n\n  \"a\n drop } }",
        ];
        for text in texts {
            let (rs, problems) = parse_text(text);
            let plain = |at: usize| {
                let before = &text[..at];
                let start = before.rfind('\n').map_or(0, |i| i + 1);
                (
                    before.matches('\n').count() as u32 + 1,
                    before[start..].chars().count() as u32 + 1,
                )
            };
            for r in rs
                .tables
                .iter()
                .flat_map(|t| &t.chains)
                .flat_map(|c| &c.rules)
            {
                let at = text
                    .match_indices(r.text.split(' ').next().unwrap())
                    .map(|(i, _)| i)
                    .find(|&i| plain(i) == (r.line, r.col));
                assert!(at.is_some(), "{text:?}: {r:?}");
            }
            for p in &problems {
                let found = (0..=text.len())
                    .filter(|&i| text.is_char_boundary(i))
                    .any(|i| plain(i) == (p.line, p.column));
                assert!(found, "{text:?}: {p:?}");
            }
        }
        let (rs, _) = parse_text(texts[0]);
        let rules = &rs.tables[0].chains[0].rules;
        assert_eq!((rules[0].line, rules[0].col, rules[1].line), (4, 3, 6));
        let (rs, _) = parse_text(texts[1]);
        let rules = &rs.tables[0].chains[0].rules;
        assert_eq!((rules[0].line, rules[1].line, rules[1].col), (3, 6, 3));
        let (rs, problems) = parse_text(texts[2]);
        let rules = &rs.tables[0].chains[0].rules;
        assert_eq!((rules[0].line, rules[1].line), (6, 8));
        assert_eq!((problems[0].line, problems[0].column), (7, 3));
    }

    /// The block-wise check agrees with squeezing and comparing, for
    /// every length around the block size and every place of a fault.
    #[test]
    fn squeezed_check_agrees_with_squeezing() {
        let plain = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ") == t;
        for len in 0..50 {
            let base: String = (0..len)
                .map(|i| if i % 4 == 3 { ' ' } else { 'a' })
                .collect();
            assert_eq!(is_squeezed(&base), plain(&base), "{base:?}");
            for at in 0..len {
                for odd in ["  ", "\t", "é", "\u{a0}", "\n", "\r"] {
                    let mut t = base.clone();
                    t.replace_range(at..at + 1, odd);
                    let want = plain(&t) && t.is_ascii();
                    assert_eq!(is_squeezed(&t), want, "{t:?}");
                }
            }
        }
    }

    #[test]
    fn keyword_matches_agree_with_the_lists() {
        for w in BARE_META {
            assert!(is_bare_meta(w), "{w}");
            assert!(!is_payload(w), "{w}");
        }
        for w in ["ether", "ip", "ip6", "tcp", "udp", "th", "icmpv6", "auth"] {
            assert!(is_payload(w), "{w}");
            assert!(!is_bare_meta(w), "{w}");
        }
        for w in ["meta", "ct", "x", "", "ipx", "ip66"] {
            assert!(!is_bare_meta(w) && !is_payload(w), "{w}");
        }
    }

    #[test]
    fn priorities_named_with_offsets() {
        assert_eq!(priority_value(Family::Inet, "filter - 1"), Some(-1));
        assert_eq!(priority_value(Family::Ip, "dstnat"), Some(-100));
        assert_eq!(priority_value(Family::Ip, "srcnat + 10"), Some(110));
        assert_eq!(priority_value(Family::Bridge, "filter"), Some(-200));
        assert_eq!(priority_value(Family::Ip6, "-300"), Some(-300));
        assert_eq!(priority_value(Family::Netdev, "raw"), None);
    }

    #[test]
    fn match_with_set_and_verdict() {
        let r = one_rule("tcp dport { 22, 80 } ct state established,related accept comment \"x\"");
        assert_eq!(r.stmts.len(), 3);
        assert_eq!(
            r.stmts[0],
            Stmt::Match(Match {
                left: Expr::Payload(Payload::new("tcp", "dport")),
                op: RelOp::Implicit,
                right: Expr::Set(vec![Expr::Value("22".into()), Expr::Value("80".into())]),
            })
        );
        assert!(
            matches!(&r.stmts[1], Stmt::Match(Match { right: Expr::List(v), .. }) if v.len() == 2)
        );
        assert_eq!(r.stmts[2], Stmt::Verdict(Verdict::Accept));
        assert_eq!(r.comment.as_deref(), Some("x"));
        assert_eq!(r.line, 3);
    }

    #[test]
    fn parenthesised_flags_read_as_the_listed_mask() {
        let a = one_rule("tcp flags & (fin | syn | rst | ack) != syn drop");
        let b = one_rule("tcp flags != syn / fin,syn,rst,ack drop");
        assert_eq!(a.stmts, b.stmts);
        assert_eq!(b.stmts[0].to_string(), "tcp flags != syn / fin,syn,rst,ack");
    }

    #[test]
    fn nat_address_and_port_forms() {
        let r = one_rule("meta l4proto tcp dnat ip to [fd00::1]:80");
        let Stmt::Nat(n) = &r.stmts[1] else { panic!() };
        assert_eq!(n.addr, Some(Expr::Value("fd00::1".into())));
        assert_eq!(n.port, Some(Expr::Value("80".into())));
        let r = one_rule("redirect to :8080");
        let Stmt::Nat(n) = &r.stmts[0] else { panic!() };
        assert_eq!(n.port, Some(Expr::Value("8080".into())));
    }

    #[test]
    fn defines_expand_and_errors_keep_reading() {
        let text = "define lan = { 10.0.0.0/8, 192.168.0.0/16 }\ntable ip t {\n chain c {\n  ip saddr $lan accept\n  bogus thing\n  drop\n }\n}\n";
        let (rs, problems) = parse_text(text);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!((problems[0].line, problems[0].column), (5, 3));
        let rules = &rs.tables[0].chains[0].rules;
        assert_eq!(rules.len(), 2);
        assert!(
            matches!(&rules[0].stmts[0], Stmt::Match(Match { right: Expr::Set(v), .. }) if v.len() == 2)
        );
    }
}
