//! `iptables-save`, `ip6tables-save` and `iptables -S` text into a
//! [`Ruleset`].
//!
//! Two modes: strict stops at the first syntax error; lenient keeps every
//! good line and returns every problem, so that a viewer can show a partial
//! graph next to a problem list. Semantic checks (dangling jumps, missing
//! COMMIT, ...) run in both modes and are returned as problems.

pub mod check;
pub mod lexer;
pub mod listing;
pub mod loops;
mod parallel;
pub mod rule;

use std::fmt;
use std::sync::Arc;

use nom::bytes::complete::{tag, take_while1};
use nom::combinator::map_res;
use nom::sequence::{delimited, separated_pair};
use nom::{IResult, Parser};
use serde::Serialize;

use crate::model::{
    Chain, Counters, Family, InputFormat, Rule, Ruleset, SourceText, Str, Table, builtin_chains,
};
use lexer::{Token, tokenize};

/// Lines longer than this are not iptables rules (the kernel limits a rule
/// to far less); they are reported, not parsed.
pub const MAX_LINE: usize = 1 << 20;

/// How to read the input.
#[derive(Debug, Clone, Default)]
pub struct ParseOptions {
    /// Name used in messages (`FILE:LINE:COL`); `<stdin>` for `-`.
    pub source_name: String,
    /// Stop at the first syntax error.
    pub strict: bool,
    /// Table for `iptables -S` lines that no marker assigns to a table.
    pub table: Option<String>,
    /// Force the address family instead of detecting it.
    pub family: Option<Family>,
    /// Threads to read with; `None` picks by input size and CPU count
    /// (large inputs are read in parallel, with the same result).
    pub threads: Option<usize>,
    /// Bytes per chunk when reading in parallel (tests use small ones).
    #[doc(hidden)]
    pub chunk_bytes: Option<usize>,
}

impl ParseOptions {
    /// Lenient parsing of input named `name`.
    pub fn lenient(name: impl Into<String>) -> Self {
        ParseOptions {
            source_name: name.into(),
            ..Default::default()
        }
    }

    /// Strict parsing of input named `name`.
    pub fn strict(name: impl Into<String>) -> Self {
        ParseOptions {
            source_name: name.into(),
            strict: true,
            ..Default::default()
        }
    }
}

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The input is wrong: iptables-restore would refuse it.
    Error,
    /// Suspicious or guessed, but usable.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// Something wrong with one place of the input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub column: u32,
    /// Error or warning.
    pub severity: Severity,
    /// What was expected or what is wrong.
    pub message: String,
    /// The source line (cut to 300 characters).
    pub source: String,
}

impl Problem {
    fn at(line: u32, text: &str, byte_col: usize, severity: Severity, message: String) -> Self {
        let byte_col = floor_char_boundary(text, byte_col.min(text.len()));
        let column = text[..byte_col].chars().count() as u32 + 1;
        Problem {
            line,
            column,
            severity,
            message,
            source: text.chars().take(300).collect(),
        }
    }

    /// `FILE:LINE:COL: severity: message`, the source line and a caret.
    pub fn render(&self, file: &str) -> String {
        let mut s = format!(
            "{file}:{}:{}: {}: {}",
            self.line, self.column, self.severity, self.message
        );
        if !self.source.is_empty() {
            let shown: String = self
                .source
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            let pad = (self.column as usize)
                .saturating_sub(1)
                .min(shown.chars().count());
            s.push_str(&format!("\n    {shown}\n    {}^", " ".repeat(pad)));
        }
        s
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Input that could not be read as a ruleset at all, or (strict mode) the
/// first syntax error.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Not text.
    #[error(
        "{name}: this is binary data ({why} at offset {offset}), not iptables-save or iptables -S text"
    )]
    Binary {
        /// Input name.
        name: String,
        /// What gave it away.
        why: &'static str,
        /// Byte offset of the first bad byte.
        offset: usize,
    },
    /// Nothing to read.
    #[error("{name}: the input is empty; give the output of `iptables-save` (or `iptables -S`)")]
    Empty {
        /// Input name.
        name: String,
    },
    /// Larger than the model can address (byte offsets are 32-bit).
    #[error(
        "{name}: the input is {bytes} bytes; iptviz reads dumps up to 4 GiB (a 100,000-rule dump is about 17 MB)"
    )]
    TooLarge {
        /// Input name.
        name: String,
        /// Its size.
        bytes: usize,
    },
    /// Strict mode: the first error.
    #[error("{}", problem.render(name))]
    Syntax {
        /// Input name.
        name: String,
        /// The error.
        problem: Box<Problem>,
    },
}

/// A ruleset and what was wrong with its input.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    /// Everything that could be read.
    pub ruleset: Ruleset,
    /// Errors and warnings in line order.
    pub problems: Vec<Problem>,
    /// Suspicious but legal rules and chains, in line order: what
    /// [`check::lint`] says of the ruleset as parsed (found in the same
    /// walk as the problems).
    pub suspicious: Vec<Problem>,
}

impl Parsed {
    /// Number of problems of error severity.
    pub fn error_count(&self) -> usize {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .count()
    }
}

/// Parses text given as bytes (a file, stdin, a paste).
pub fn parse_bytes(input: &[u8], opts: &ParseOptions) -> Result<Parsed, ParseError> {
    parse_owned(input.to_vec(), opts)
}

/// Like [`parse_bytes`], without copying the input: rules point into it.
pub fn parse_owned(input: Vec<u8>, opts: &ParseOptions) -> Result<Parsed, ParseError> {
    let name = opts.source_name.clone();
    if let Some(offset) = memchr::memchr(0, &input) {
        return Err(ParseError::Binary {
            name,
            why: "a NUL byte",
            offset,
        });
    }
    match String::from_utf8(input) {
        Ok(s) => parse_string(s, opts),
        Err(e) => {
            let bad = e.utf8_error().valid_up_to();
            let input = e.into_bytes();
            let text = String::from_utf8_lossy(&input);
            // Mostly-binary input is refused rather than parsed as noise.
            let replaced = text.matches('\u{FFFD}').count();
            if replaced * 20 > text.chars().count().max(1) {
                return Err(ParseError::Binary {
                    name,
                    why: "mostly invalid UTF-8, starting",
                    offset: bad,
                });
            }
            let line = input[..bad].iter().filter(|&&b| b == b'\n').count() as u32 + 1;
            let mut parsed = parse_string(text.into_owned(), opts)?;
            parsed.problems.insert(
                0,
                Problem {
                    line,
                    column: 1,
                    severity: Severity::Warning,
                    message: "the input is not valid UTF-8; bad bytes were replaced with U+FFFD"
                        .into(),
                    source: String::new(),
                },
            );
            Ok(parsed)
        }
    }
}

/// Where nft text or JSON starts after `iptables-save` text, as in a mixed
/// host saved to one file (`iptables-save; nft list ruleset`, or `nft -j
/// list ruleset`): the line after the last `COMMIT` when nft text follows
/// it, or the JSON's first line past any blank and comment lines (which
/// JSON cannot hold; the save part takes them). Only the tail is looked at,
/// so a large dump costs nothing here.
fn nft_after_save(text: &str) -> Option<usize> {
    let commit = memchr::memmem::rfind(text.as_bytes(), b"\nCOMMIT")? + 1;
    let rest = &text[commit..];
    let end = rest.find('\n')?;
    if rest[..end].trim_end() != "COMMIT" {
        return None;
    }
    let at = commit + end + 1;
    if crate::nft::parse::looks_like_nft(&text[at..]) {
        return Some(at);
    }
    let mut json = at;
    for line in text[at..].split_inclusive('\n') {
        let t = line.trim();
        if !t.is_empty() && !t.starts_with('#') {
            break;
        }
        json += line.len();
    }
    crate::nft::json::looks_like_nft_json(&text[json..]).then_some(json)
}

/// Where `iptables-save` text starts after nft text or JSON, as in a mixed
/// host saved the other way round (`nft list ruleset; iptables-save`): the
/// first line that opens a table (`*filter`), taking with it the comment
/// lines just above it (`# Generated by iptables-save ...`), when a
/// `COMMIT` line follows. Neither nft text nor its JSON (one line, or
/// indented when pretty-printed) has a line starting with `*`.
fn save_after_nft(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let star = memchr::memmem::find_iter(b, b"\n*").find(|&i| {
        let name = b[i + 2..].split(|&c| c == b'\n').next().unwrap_or_default();
        let name = name.trim_ascii_end();
        !name.is_empty() && name.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
    })? + 1;
    memchr::memmem::find(&b[star..], b"\nCOMMIT")?;
    // Comment lines right above the table line belong to the save.
    let mut at = star;
    while at > 0 {
        let prev = text[..at - 1].rfind('\n').map_or(0, |i| i + 1);
        if !text[prev..at - 1].trim_start().starts_with('#') {
            break;
        }
        at = prev;
    }
    Some(at)
}

/// Which part of a mixed file comes first.
enum Mixed {
    /// `iptables-save` text, then nft text from this offset on.
    SaveThenNft(usize),
    /// nft text, then `iptables-save` text from this offset on.
    NftThenSave(usize),
}

/// Parses a file holding `iptables-save` text and nft text, in either
/// order: one ruleset holding both, with problems at their lines in the
/// whole file.
fn parse_mixed(mut text: String, mixed: Mixed, opts: &ParseOptions) -> Result<Parsed, ParseError> {
    // The second part keeps its line numbers: the lines before it are
    // blank (the parsers skip blank lines).
    let at = match mixed {
        Mixed::SaveThenNft(at) | Mixed::NftThenSave(at) => at,
    };
    let before = memchr::memchr_iter(b'\n', &text.as_bytes()[..at]).count();
    let mut second = String::with_capacity(before + text.len() - at);
    second.extend(std::iter::repeat_n('\n', before));
    second.push_str(&text[at..]);
    text.truncate(at);
    let (save, nft_text) = match mixed {
        Mixed::SaveThenNft(_) => (text, second),
        Mixed::NftThenSave(_) => (second, text),
    };
    let mut parsed = parse_string(save, opts)?;
    let nft = crate::nft::parse_nft(&nft_text, opts)?;
    parsed.ruleset.nft = nft.ruleset.nft;
    parsed.problems.extend(nft.problems);
    parsed.problems.sort_by_key(|p| (p.line, p.column));
    parsed.suspicious.extend(nft.suspicious);
    Ok(parsed)
}

/// Parses text.
pub fn parse_str(text: &str, opts: &ParseOptions) -> Result<Parsed, ParseError> {
    parse_string(text.to_string(), opts)
}

/// Parses text it takes ownership of (no copy).
pub fn parse_string(text: String, opts: &ParseOptions) -> Result<Parsed, ParseError> {
    check_size(&opts.source_name, text.len())?;
    if text.trim().is_empty() {
        return Err(ParseError::Empty {
            name: opts.source_name.clone(),
        });
    }
    if listing::looks_like_listing(&text) {
        return listing::parse(Arc::new(text), opts);
    }
    if crate::nft::json::looks_like_nft_json(&text) || crate::nft::parse::looks_like_nft(&text) {
        return match save_after_nft(&text) {
            Some(at) => parse_mixed(text, Mixed::NftThenSave(at), opts),
            None => crate::nft::parse_nft(&text, opts),
        };
    }
    if let Some(at) = nft_after_save(&text) {
        return parse_mixed(text, Mixed::SaveThenNft(at), opts);
    }
    let src: Arc<String> = Arc::new(text);
    let mut p = Parser_::new(src.clone(), opts);
    let threads = opts.threads.unwrap_or_else(|| {
        if src.len() < parallel::MIN_PARALLEL_BYTES {
            1
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
        }
    });
    p.threads = threads;
    if threads > 1 {
        let chunk = opts.chunk_bytes.unwrap_or(parallel::CHUNK_BYTES);
        if !parallel::parse(&mut p, &src, threads, chunk)
            && let Some(first) = p.problems.iter().find(|x| x.severity == Severity::Error)
        {
            return Err(ParseError::Syntax {
                name: opts.source_name.clone(),
                problem: Box::new(first.clone()),
            });
        }
        return Ok(p.finish());
    }
    let mut tokens: Vec<Token<'_>> = Vec::with_capacity(32);
    let mut offset = 0usize;
    for (idx, raw) in split_lines(&src).enumerate() {
        let start = offset;
        offset += raw.len() + 1;
        let line_no = idx as u32 + 1;
        let line = raw.trim_end();
        if line.is_empty() {
            continue;
        }
        p.line(line_no, start, line, &mut tokens);
        if opts.strict
            && let Some(first) = p.problems.iter().find(|x| x.severity == Severity::Error)
        {
            return Err(ParseError::Syntax {
                name: opts.source_name.clone(),
                problem: Box::new(first.clone()),
            });
        }
    }
    Ok(p.finish())
}

struct Parser_<'o> {
    src: Arc<String>,
    opts: &'o ParseOptions,
    rs: Ruleset,
    problems: Vec<Problem>,
    /// Index of the open table.
    cur: Option<usize>,
    format: Option<InputFormat>,
    /// `-P` lines of the current `-S` table, for guessing its name.
    spec_policies: Vec<Str>,
    /// The current `-S` table's name was guessed, not given.
    spec_guess: bool,
    saw_colon_v6: bool,
    /// Parts of the rule being parsed (reused).
    body: rule::Body,
    /// `(table, chain)` of the last rule, tried first for the next one.
    last_chain: Option<(usize, usize)>,
    /// Threads the input is read with.
    threads: usize,
}

fn counters(i: &str) -> IResult<&str, Counters> {
    let num = || map_res(take_while1(|c: char| c.is_ascii_digit()), str::parse::<u64>);
    delimited(tag("["), separated_pair(num(), tag(":"), num()), tag("]"))
        .map(|(packets, bytes)| Counters { packets, bytes })
        .parse_complete(i)
}

/// Rules keep byte offsets into the input as `u32`.
fn check_size(name: &str, bytes: usize) -> Result<(), ParseError> {
    if bytes > u32::MAX as usize {
        return Err(ParseError::TooLarge {
            name: name.to_string(),
            bytes,
        });
    }
    Ok(())
}

/// The pieces of `s` between `\n`s, as `s.split('\n')` gives them, found
/// with a vectorised search.
pub(crate) fn split_lines(s: &str) -> impl Iterator<Item = &str> + '_ {
    let mut start = 0;
    memchr::memchr_iter(b'\n', s.as_bytes())
        .map(Some)
        .chain(std::iter::once(None))
        .map(move |end| {
            let e = end.unwrap_or(s.len());
            let piece = &s[start..e];
            start = e + 1;
            piece
        })
}

/// Table named by a pasted command line (`$ sudo iptables -t nat -S`).
fn marker_table(line: &str) -> Option<Str> {
    if !line.contains("tables") {
        return None;
    }
    let words: Vec<&str> = line.split_whitespace().collect();
    let cmd = words
        .iter()
        .position(|w| w.ends_with("iptables") || w.ends_with("ip6tables"))?;
    let args = &words[cmd + 1..];
    if !args
        .iter()
        .any(|a| *a == "-S" || *a == "--list-rules" || a.starts_with("-S") || *a == "-t")
    {
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
    Some(table)
}

/// Guesses a table from the built-in chains that `-S` printed policies for.
pub(crate) fn guess_table(policies: &[Str]) -> &'static str {
    let has = |n: &str| policies.iter().any(|p| p == n);
    match (
        has("PREROUTING"),
        has("INPUT"),
        has("FORWARD"),
        has("POSTROUTING"),
    ) {
        (true, _, true, _) | (_, _, true, true) => "mangle",
        (true, true, _, _) | (_, _, _, true) => "nat",
        (true, false, false, false) => "raw",
        _ => "filter",
    }
}

impl<'o> Parser_<'o> {
    fn new(src: Arc<String>, opts: &'o ParseOptions) -> Self {
        Parser_ {
            src,
            opts,
            rs: Ruleset::default(),
            problems: Vec::new(),
            cur: None,
            format: None,
            spec_policies: Vec::new(),
            spec_guess: false,
            saw_colon_v6: false,
            body: rule::Body::default(),
            last_chain: None,
            threads: 1,
        }
    }

    fn problem(&mut self, line: u32, text: &str, col: usize, sev: Severity, msg: String) {
        self.problems.push(Problem::at(line, text, col, sev, msg));
    }

    fn error(&mut self, line: u32, text: &str, col: usize, msg: impl Into<String>) {
        self.problem(line, text, col, Severity::Error, msg.into());
    }

    fn line<'a>(&mut self, no: u32, start: usize, line: &'a str, tokens: &mut Vec<Token<'a>>) {
        if line.len() > MAX_LINE {
            self.error(
                no,
                "",
                0,
                format!(
                    "line is {} bytes long; iptables rules are short, so this is not a ruleset line",
                    line.len()
                ),
            );
            return;
        }
        let body = line.trim_start();
        let indent = line.len() - body.len();
        match body.as_bytes()[0] {
            b'#' => self.comment(no, body),
            b'*' => self.table_line(no, line, indent),
            b':' => self.chain_line(no, line, tokens),
            b'-' | b'[' => self.command_line(no, start, line, tokens),
            _ if body == "COMMIT" => self.commit(no, line, indent),
            _ => {
                if let Some(t) = marker_table(body) {
                    self.start_spec_table(t, no, false);
                } else {
                    self.error(
                        no,
                        line,
                        indent,
                        "expected a table ('*filter'), a chain (':NAME POLICY'), a rule ('-A CHAIN ...'), 'COMMIT' or a comment",
                    );
                }
            }
        }
    }

    fn comment(&mut self, no: u32, body: &str) {
        if self.rs.tables.is_empty() && self.format != Some(InputFormat::Spec) {
            if body.contains("ip6tables") {
                self.rs.family = Family::Ipv6;
            }
            self.rs.header.push(body.to_string());
        }
        if let Some(t) = marker_table(body) {
            self.start_spec_table(t, no, false);
        }
    }

    fn open_table(&mut self, name: Str, line: u32) {
        self.rs.tables.push(Table::new(name, line));
        self.cur = Some(self.rs.tables.len() - 1);
    }

    fn table_line(&mut self, no: u32, line: &str, indent: usize) {
        let name = line[indent + 1..].trim();
        if name.is_empty() || name.contains(char::is_whitespace) {
            self.error(
                no,
                line,
                indent + 1,
                "expected a table name after '*' (raw, mangle, nat, filter or security)",
            );
            return;
        }
        if self.format == Some(InputFormat::Spec) {
            self.start_spec_table(name.into(), no, false);
            return;
        }
        self.format.get_or_insert(InputFormat::Save);
        self.close_unfinished(no, line);
        if self.rs.tables.iter().any(|t| t.name == name) {
            self.problem(
                no,
                line,
                indent + 1,
                Severity::Warning,
                format!("table '{name}' appears a second time; its chains are listed apart"),
            );
        }
        self.open_table(name.into(), no);
    }

    /// Reports a table left open when the next one starts.
    fn close_unfinished(&mut self, no: u32, line: &str) {
        if let Some(i) = self.cur
            && !self.rs.tables[i].committed
            && self.format == Some(InputFormat::Save)
        {
            let (tname, tline) = (self.rs.tables[i].name.clone(), self.rs.tables[i].line);
            self.error(
                no,
                line,
                0,
                format!(
                    "table '{tname}' (line {tline}) was not closed with COMMIT before this line"
                ),
            );
        }
    }

    fn commit(&mut self, no: u32, line: &str, indent: usize) {
        match self.cur {
            Some(i) if !self.rs.tables[i].committed => {
                self.rs.tables[i].committed = true;
            }
            _ if self.format == Some(InputFormat::Spec) => {}
            _ => self.error(
                no,
                line,
                indent,
                "COMMIT outside a table: no '*table' line is open",
            ),
        }
    }

    fn current_table(&mut self, no: u32, line: &str, col: usize, what: &str) -> Option<usize> {
        match self.cur {
            Some(i) if !self.rs.tables[i].committed || self.format == Some(InputFormat::Spec) => {
                Some(i)
            }
            _ => {
                self.error(
                    no,
                    line,
                    col,
                    format!("{what} outside a table: expected a '*filter' (or other table) line before it"),
                );
                None
            }
        }
    }

    fn chain_line<'a>(&mut self, no: u32, line: &'a str, tokens: &mut Vec<Token<'a>>) {
        if let Some(pre) = pre_chain(line, tokens) {
            self.add_chain(no, line, pre);
            return;
        }
        self.format.get_or_insert(InputFormat::Save);
        let indent = line.len() - line.trim_start().len();
        let Some(ti) = self.current_table(no, line, indent, "chain declaration") else {
            return;
        };
        if let Err(e) = tokenize(&line[indent + 1..], tokens) {
            self.error(no, line, indent + 1 + e.col, e.message);
            return;
        }
        let off = indent + 1;
        let Some(name) = tokens.first().filter(|t| !t.text.is_empty()) else {
            self.error(no, line, off, "expected a chain name after ':'");
            return;
        };
        let name = Str::from(name.text.as_ref());
        let policy = match tokens.get(1) {
            Some(t) if t.text == "-" => None,
            Some(t) => Some(Str::from(t.text.as_ref())),
            None => {
                self.error(
                    no,
                    line,
                    line.len(),
                    format!(
                        "expected a policy after ':{name}' (ACCEPT, DROP or '-' for a user chain)"
                    ),
                );
                return;
            }
        };
        let mut ctr = None;
        if let Some(t) = tokens.get(2) {
            match counters(&t.text) {
                Ok(("", c)) => ctr = Some(c),
                _ => {
                    self.error(
                        no,
                        line,
                        off + t.col,
                        "expected counters '[packets:bytes]' after the policy",
                    );
                    return;
                }
            }
        }
        if let Some(t) = tokens.get(3) {
            let col = off + t.col;
            self.error(no, line, col, "unexpected text after the chain's counters");
            return;
        }
        if let Some(p) = &policy
            && p != "ACCEPT"
            && p != "DROP"
        {
            let col = off + tokens[1].col;
            self.error(
                no,
                line,
                col,
                format!("policy '{p}' is not ACCEPT, DROP or '-'"),
            );
        }
        self.declare(ti, name, policy, ctr, no, line, off);
    }

    #[allow(clippy::too_many_arguments)]
    fn declare(
        &mut self,
        ti: usize,
        name: Str,
        policy: Option<Str>,
        counters: Option<Counters>,
        no: u32,
        line: &str,
        col: usize,
    ) {
        let table = &self.rs.tables[ti];
        let builtin = is_builtin(&table.name, &name, policy.is_some());
        let chain = Chain {
            name,
            builtin,
            policy,
            counters,
            line: no,
            rules: Vec::new(),
        };
        let Err((ci, chain)) = self.rs.tables[ti].insert_chain(chain) else {
            return;
        };
        let prev = self.rs.tables[ti].chains[ci].line;
        if prev == 0 {
            // Implied earlier by a rule; now declared properly.
            let c = &mut self.rs.tables[ti].chains[ci];
            c.line = no;
            c.policy = chain.policy;
            c.counters = chain.counters;
        } else {
            self.error(
                no,
                line,
                col,
                format!(
                    "chain '{}' is declared twice (first at line {prev})",
                    chain.name
                ),
            );
        }
    }

    fn start_spec_table(&mut self, name: Str, no: u32, guessed: bool) {
        self.format = Some(InputFormat::Spec);
        self.fix_spec_guess();
        if let Some(i) = self.rs.tables.iter().position(|t| t.name == name) {
            self.cur = Some(i);
        } else {
            self.open_table(name, no);
        }
        self.spec_guess = guessed;
        self.spec_policies.clear();
    }

    /// Renames a guessed `-S` table once its built-in chains are known.
    fn fix_spec_guess(&mut self) {
        if !self.spec_guess {
            return;
        }
        self.spec_guess = false;
        let Some(i) = self.cur else { return };
        let guess = guess_table(&self.spec_policies);
        let t = &mut self.rs.tables[i];
        t.name = guess.into();
        for c in &mut t.chains {
            c.builtin = is_builtin(guess, &c.name, c.policy.is_some());
        }
        let line = t.line;
        // `iptables -S` prints the filter table unless told otherwise, so an
        // unmarked first table that looks like filter needs no warning.
        if guess == "filter" && i == 0 {
            return;
        }
        self.problems.push(Problem {
            line,
            column: 1,
            severity: Severity::Warning,
            message: format!(
                "no table is named for these `iptables -S` lines; guessed '{guess}' from their built-in chains (mark each table, e.g. '# iptables -t nat -S', or pass --table)"
            ),
            source: String::new(),
        });
    }

    fn spec_table(&mut self, no: u32) -> usize {
        if self.cur.is_none() {
            match &self.opts.table {
                Some(t) => self.start_spec_table(t.as_str().into(), no, false),
                None => self.start_spec_table("filter".into(), no, true),
            }
        }
        self.cur.unwrap_or(0)
    }

    fn command_line<'a>(
        &mut self,
        no: u32,
        start: usize,
        line: &'a str,
        tokens: &mut Vec<Token<'a>>,
    ) {
        if let Some(pre) = pre_rule(line, tokens, &mut self.body) {
            self.add_rule(no, start, line, pre);
            return;
        }
        if let Err(e) = tokenize(line, tokens) {
            self.error(no, line, e.col, e.message);
            return;
        }
        let mut k = 0;
        let mut ctr = None;
        if tokens[0].text.starts_with('[') && !tokens[0].quoted {
            match counters(&tokens[0].text) {
                Ok(("", c)) => ctr = Some(c),
                _ => {
                    let col = tokens[0].col;
                    self.error(no, line, col, "expected counters '[packets:bytes]'");
                    return;
                }
            }
            k = 1;
        }
        let Some(cmd) = tokens.get(k) else {
            self.error(
                no,
                line,
                line.len(),
                "expected '-A CHAIN ...' after the counters",
            );
            return;
        };
        let cmd_col = cmd.col;
        let cmd: &str = &cmd.text;
        if self.format.is_none() {
            self.format = Some(if ctr.is_some() {
                InputFormat::Save
            } else {
                InputFormat::Spec
            });
        }
        let spec = self.format == Some(InputFormat::Spec);
        match cmd {
            "-A" | "--append" | "-I" | "--insert" => {
                // pre_rule took every rule line that names a chain.
                let ti = if spec {
                    Some(self.spec_table(no))
                } else {
                    self.current_table(no, line, cmd_col, "rule")
                };
                if ti.is_some() {
                    self.error(no, line, line.len(), format!("expected a chain name after '{cmd}'"));
                }
            }
            "-P" | "--policy" if ctr.is_none() => {
                let ti = if spec {
                    if self.spec_guess_ended() {
                        self.start_spec_table("filter".into(), no, self.opts.table.is_none());
                    }
                    self.spec_table(no)
                } else {
                    match self.current_table(no, line, cmd_col, "policy") {
                        Some(t) => t,
                        None => return,
                    }
                };
                let (Some(chain), Some(policy)) = (tokens.get(k + 1), tokens.get(k + 2)) else {
                    self.error(no, line, line.len(), "expected '-P CHAIN POLICY'");
                    return;
                };
                let name = Str::from(chain.text.as_ref());
                let policy = Str::from(policy.text.as_ref());
                let pcol = tokens[k + 2].col;
                if policy != "ACCEPT" && policy != "DROP" {
                    self.error(no, line, pcol, format!("policy '{policy}' is not ACCEPT or DROP"));
                }
                let mut pc = None;
                if let (Some(c), Some(p), Some(b)) =
                    (tokens.get(k + 3), tokens.get(k + 4), tokens.get(k + 5))
                    && c.text == "-c"
                    && let (Ok(packets), Ok(bytes)) = (p.text.parse(), b.text.parse())
                {
                    pc = Some(Counters { packets, bytes });
                }
                self.spec_policies.push(name.clone());
                let col = chain.col;
                self.declare(ti, name, Some(policy), pc, no, line, col);
            }
            "-N" | "--new-chain" | "--new" if ctr.is_none() => {
                let ti = if spec {
                    let t = self.spec_table(no);
                    self.fix_spec_guess();
                    t
                } else {
                    match self.current_table(no, line, cmd_col, "chain") {
                        Some(t) => t,
                        None => return,
                    }
                };
                let Some(chain) = tokens.get(k + 1) else {
                    self.error(no, line, line.len(), "expected a chain name after '-N'");
                    return;
                };
                let name = Str::from(chain.text.as_ref());
                let col = chain.col;
                self.declare(ti, name, None, None, no, line, col);
            }
            _ => self.error(
                no,
                line,
                cmd_col,
                format!("unexpected '{cmd}': expected '-A CHAIN ...' (or '-P', '-N' in `iptables -S` output)"),
            ),
        }
    }

    /// Files a chain declaration that [`pre_chain`] read.
    fn add_chain(&mut self, no: u32, line: &str, pre: PreChain) {
        self.format.get_or_insert(InputFormat::Save);
        let indent = pre.off as usize - 1;
        let Some(ti) = self.current_table(no, line, indent, "chain declaration") else {
            return;
        };
        self.declare(
            ti,
            pre.name,
            pre.policy,
            pre.counters,
            no,
            line,
            pre.off as usize,
        );
    }

    /// Files a rule line that [`pre_rule`] read (here or on another thread).
    fn add_rule(&mut self, no: u32, start: usize, line: &str, pre: PreRule) {
        if self.format.is_none() {
            self.format = Some(if pre.has_counters {
                InputFormat::Save
            } else {
                InputFormat::Spec
            });
        }
        let spec = self.format == Some(InputFormat::Spec);
        let ti = if spec {
            Some(self.spec_table(no))
        } else {
            self.current_table(no, line, pre.cmd_col as usize, "rule")
        };
        let Some(ti) = ti else { return };
        if spec {
            self.fix_spec_guess();
        }
        let rule = match pre.rule {
            Ok(b) => {
                let text = SourceText::new(self.src.clone(), start, start + line.len());
                Rule::from_parts(no, text, b.counters, b.parts, b.side)
            }
            Err(e) => {
                self.error(no, line, e.col, e.message);
                return;
            }
        };
        let chain = match &pre.chain {
            ChainName::Span(s, l) => line.get(*s as usize..(*s + *l) as usize).unwrap_or(""),
            ChainName::Owned(n) => n,
        };
        self.saw_colon_v6 |= pre.v6_address;
        // Rules of one chain come together: try the last chain first.
        let table = &self.rs.tables[ti];
        let cached = self
            .last_chain
            .filter(|&(t, c)| t == ti && table.chains.get(c).is_some_and(|c| c.name == chain));
        let ci = match cached
            .map(|(_, c)| c)
            .or_else(|| table.chain_position(chain))
        {
            Some(ci) => ci,
            None => {
                self.error(
                    no,
                    line,
                    pre.chain_col as usize,
                    format!("rule in chain '{chain}', which is not declared (expected ':{chain} -' or '-N {chain}' before it)"),
                );
                let builtin = is_builtin(&self.rs.tables[ti].name, chain, false);
                self.rs.tables[ti].push_chain(Chain {
                    name: Str::from(chain),
                    builtin,
                    ..Default::default()
                });
                self.rs.tables[ti].chains.len() - 1
            }
        };
        self.last_chain = Some((ti, ci));
        let rules = &mut self.rs.tables[ti].chains[ci].rules;
        if rules.len() == rules.capacity() {
            // Most chains hold a handful of rules: grow by a quarter,
            // not by doubling, to keep a 100,000-rule model small.
            rules.reserve_exact((rules.len() / 4).max(1));
        }
        match pre.insert_at {
            Some(n) => rules.insert((n as usize).min(rules.len()), rule),
            None => rules.push(rule),
        }
    }

    /// In `-S` input, a `-P` after rules starts the next table.
    fn spec_guess_ended(&self) -> bool {
        match self.cur {
            Some(i) => {
                let t = &self.rs.tables[i];
                t.rule_count() > 0 || t.chains.iter().any(|c| c.policy.is_none())
            }
            None => false,
        }
    }

    fn finish(mut self) -> Parsed {
        self.fix_spec_guess();
        if self.format == Some(InputFormat::Save)
            && let Some(i) = self.cur
            && !self.rs.tables[i].committed
        {
            let (name, line) = (self.rs.tables[i].name.clone(), self.rs.tables[i].line);
            let last = self.src.lines().count() as u32;
            self.problems.push(Problem {
                line: last.max(1),
                column: 1,
                severity: Severity::Error,
                message: format!(
                    "table '{name}' (line {line}) is not closed with COMMIT: the dump looks truncated"
                ),
                source: String::new(),
            });
        }
        self.rs.format = self.format.unwrap_or_default();
        if let Some(f) = self.opts.family {
            self.rs.family = f;
        } else if self.saw_colon_v6 {
            self.rs.family = Family::Ipv6;
        }
        for t in &mut self.rs.tables {
            for c in &mut t.chains {
                c.rules.shrink_to_fit();
            }
            t.ensure_index();
        }
        // Also the jump loops, over the jumps the target check found.
        let mut suspicious = Vec::new();
        check::resolve_and_check(
            &mut self.rs,
            &self.src,
            self.threads,
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
}

/// The chain a rule line names.
enum ChainName {
    /// Bytes `start, len` of the line.
    Span(u32, u32),
    /// A name that quoting or escapes changed.
    Owned(Box<str>),
}

/// A rule body ready to become a [`Rule`] once it has its line and text
/// (added by the filing thread: cloning the shared text from several
/// threads would make them fight over its reference count).
struct Boxed {
    parts: Box<[crate::model::Part]>,
    side: Box<str>,
    counters: Option<Counters>,
}

/// A `-A`/`-I` line read up to its body, before the parser files it: this
/// part needs no state, so it can run on any thread.
struct PreRule {
    /// The rule's parts, or what is wrong in its body.
    rule: Result<Boxed, Box<rule::RuleError>>,
    chain: ChainName,
    chain_col: u32,
    cmd_col: u32,
    /// `-I CHAIN [n]`: 0-based position.
    insert_at: Option<u32>,
    /// The line started with `[packets:bytes]`.
    has_counters: bool,
    /// `-s` or `-d` holds an IPv6 address (a ':').
    v6_address: bool,
}

/// A clean `:CHAIN POLICY [p:b]` line, read ahead like [`PreRule`].
struct PreChain {
    name: Str,
    policy: Option<Str>,
    counters: Option<Counters>,
    /// Column of the name (after the ':').
    off: u32,
}

/// Reads a chain declaration that has nothing wrong in it; `None` otherwise
/// (the parser then reads it word by word and reports the problem).
fn pre_chain<'a>(line: &'a str, tokens: &mut Vec<Token<'a>>) -> Option<PreChain> {
    let indent = line.len() - line.trim_start().len();
    let off = indent + 1;
    tokenize(line.get(off..)?, tokens).ok()?;
    let name = tokens.first().filter(|t| !t.text.is_empty())?;
    let policy = match tokens.get(1)?.text.as_ref() {
        "-" => None,
        p @ ("ACCEPT" | "DROP") => Some(Str::from(p)),
        _ => return None,
    };
    let counters = match tokens.get(2) {
        Some(t) => match counters(&t.text) {
            Ok(("", c)) => Some(c),
            _ => return None,
        },
        None => None,
    };
    if tokens.len() > 3 {
        return None;
    }
    Some(PreChain {
        name: Str::from(name.text.as_ref()),
        policy,
        counters,
        off: off as u32,
    })
}

/// A line read ahead of filing.
enum PreLine {
    Rule(PreRule),
    Chain(PreChain),
}

/// Reads a rule line `[p:b] -A CHAIN body` or `-I CHAIN [n] body`; `None`
/// for any other command line and for lines whose head is broken (the
/// parser then reads them word by word and reports the problem).
fn pre_rule<'a>(
    line: &'a str,
    tokens: &mut Vec<Token<'a>>,
    body: &mut rule::Body,
) -> Option<PreRule> {
    tokenize(line, tokens).ok()?;
    let mut k = 0;
    let mut ctr = None;
    if tokens.first()?.text.starts_with('[') && !tokens[0].quoted {
        match counters(&tokens[0].text) {
            Ok(("", c)) => ctr = Some(c),
            _ => return None,
        }
        k = 1;
    }
    let cmd = tokens.get(k)?;
    let insert = match cmd.text.as_ref() {
        "-A" | "--append" => false,
        "-I" | "--insert" => true,
        _ => return None,
    };
    let cmd_col = cmd.col as u32;
    let chain_tok = tokens.get(k + 1)?;
    let chain_text: &str = &chain_tok.text;
    let base = line.as_ptr() as usize;
    let at = (chain_text.as_ptr() as usize).wrapping_sub(base);
    let chain = if at <= line.len() && chain_text.len() <= line.len() - at {
        ChainName::Span(at as u32, chain_text.len() as u32)
    } else {
        ChainName::Owned(chain_text.into())
    };
    let chain_col = chain_tok.col as u32;
    let mut first = k + 2;
    let mut insert_at = None;
    if insert {
        insert_at = Some(0u32);
        if let Some(n) = tokens.get(first).and_then(|t| t.text.parse::<u32>().ok()) {
            insert_at = Some(n.saturating_sub(1));
            first += 1;
        }
    }
    let mut v6_address = false;
    let rule = match rule::parse_rule_body(&tokens[first..], line, body) {
        Ok(()) => {
            v6_address = body.has_v6_address(line);
            Ok(Boxed {
                parts: body.parts.as_slice().into(),
                side: body.side.as_str().into(),
                counters: body.counters.or(ctr),
            })
        }
        Err(e) => Err(Box::new(e)),
    };
    Some(PreRule {
        rule,
        chain,
        chain_col,
        cmd_col,
        insert_at,
        has_counters: ctr.is_some(),
        v6_address,
    })
}

/// Whether `chain` is a built-in chain of `table`. Unknown tables: any
/// chain with a policy.
pub fn is_builtin(table: &str, chain: &str, has_policy: bool) -> bool {
    let b = builtin_chains(table);
    if b.is_empty() {
        has_policy
    } else {
        b.contains(&chain)
    }
}

/// Parses one rule body (the words after `-A CHAIN`), e.g. for a search box
/// or a test. Column numbers in the problem are relative to `body`.
pub fn parse_rule(body: &str) -> Result<Rule, Problem> {
    let line = body.trim_end();
    let mut tokens = Vec::new();
    tokenize(line, &mut tokens)
        .map_err(|e| Problem::at(1, line, e.col, Severity::Error, e.message.into()))?;
    let mut body = rule::Body::default();
    rule::parse_rule_body(&tokens, line, &mut body)
        .map_err(|e| Problem::at(1, line, e.col, Severity::Error, e.message))?;
    let text = SourceText::from(line);
    Ok(Rule::from_parts(
        1,
        text,
        body.counters,
        body.parts.as_slice().into(),
        body.side.as_str().into(),
    ))
}

/// Splits a line into words as iptables-restore does (quotes and escapes
/// removed), for comparing rules word by word.
pub fn words(line: &str) -> Result<Vec<String>, Problem> {
    let mut tokens = Vec::new();
    tokenize(line, &mut tokens)
        .map_err(|e| Problem::at(1, line, e.col, Severity::Error, e.message.into()))?;
    Ok(tokens.into_iter().map(|t| t.text.into_owned()).collect())
}

#[cfg(test)]
mod size_tests {
    #[test]
    fn inputs_past_4_gib_are_refused_with_a_message() {
        assert!(super::check_size("in", u32::MAX as usize).is_ok());
        let e = super::check_size("in", u32::MAX as usize + 1).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("in: the input is 4294967296 bytes"),
            "{e}"
        );
    }
}

#[cfg(test)]
mod split_tests {
    #[test]
    fn split_lines_is_split_on_newlines() {
        for s in ["", "a", "a\n", "\n\n", "a\nb\r\n\nc", "x\n\ny\n"] {
            let ours: Vec<&str> = super::split_lines(s).collect();
            let std: Vec<&str> = s.split('\n').collect();
            assert_eq!(ours, std, "{s:?}");
        }
    }
}

#[cfg(test)]
mod mixed_tests {
    use super::*;

    const SAVE: &str = "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n";
    const NFT: &str = "table inet native {\n\tchain early {\n\t\ttype filter hook prerouting priority -200; policy accept;\n\t\ttcp dport 23 drop\n\t}\n}\n";

    #[test]
    fn iptables_save_then_nft_text_is_one_mixed_ruleset() {
        let text = format!("{SAVE}# then nft\n#!/usr/sbin/nft -f\n{NFT}");
        let p = parse_str(&text, &ParseOptions::strict("mixed")).unwrap();
        assert_eq!(p.ruleset.format, InputFormat::Save);
        assert_eq!(p.ruleset.tables.len(), 1);
        assert_eq!(p.ruleset.rule_count(), 1);
        assert_eq!(p.ruleset.nft.tables.len(), 1);
        let early = &p.ruleset.nft.tables[0].chains[0];
        assert_eq!(early.rules.len(), 1);
        // Lines count from the top of the whole file.
        assert_eq!(early.line, 8);
        assert_eq!(early.rules[0].line, 10);
    }

    #[test]
    fn an_error_in_the_nft_part_is_at_its_line_in_the_whole_file() {
        let text = format!(
            "{SAVE}{}",
            NFT.replace("tcp dport 23 drop", "bogus 23 drop")
        );
        let p = parse_str(&text, &ParseOptions::lenient("mixed")).unwrap();
        let e = p
            .problems
            .iter()
            .find(|p| p.severity == Severity::Error)
            .expect("the bad nft rule is reported");
        assert_eq!(e.line, 8, "{e:?}");
        assert_eq!(p.ruleset.tables.len(), 1);
    }

    #[test]
    fn plain_iptables_save_text_has_no_nft_part() {
        assert_eq!(nft_after_save(SAVE), None);
        assert_eq!(nft_after_save(&format!("{SAVE}# Completed\n")), None);
        // A `COMMIT` followed by another table is not where nft starts.
        assert_eq!(nft_after_save(&format!("{SAVE}{SAVE}")), None);
        assert_eq!(nft_after_save(&format!("{SAVE}{NFT}")), Some(SAVE.len()));
    }

    #[test]
    fn nft_text_then_iptables_save_is_one_mixed_ruleset() {
        // `nft list ruleset; iptables-save` read as nft alone took the
        // iptables lines for bad nft and dropped the iptables tables.
        let head = "# Generated by iptables-save v1.8.9 (nf_tables)\n";
        let text = format!("{NFT}{head}{SAVE}# Completed\n");
        assert_eq!(save_after_nft(&text), Some(NFT.len()));
        let p = parse_str(&text, &ParseOptions::strict("mixed")).unwrap();
        assert_eq!(p.ruleset.tables.len(), 1);
        assert_eq!(p.ruleset.rule_count(), 1);
        assert_eq!(p.ruleset.nft.tables.len(), 1);
        assert_eq!(p.ruleset.nft.tables[0].chains[0].rules[0].line, 4);
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        // An error in the iptables part is at its line in the whole file.
        let bad = text.replace("--dport 22", "--dport");
        let p = parse_str(&bad, &ParseOptions::lenient("mixed")).unwrap();
        let e = p
            .problems
            .iter()
            .find(|p| p.severity == Severity::Error)
            .expect("the bad iptables rule is reported");
        assert_eq!(e.line, 10, "{e:?}");
        assert_eq!(p.ruleset.nft.tables.len(), 1);
    }

    /// `nft -j list ruleset` output of [`NFT`]'s table, as nft prints it
    /// (one line).
    const NFT_JSON: &str = concat!(
        r#"{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, "#,
        r#"{"table": {"family": "inet", "name": "native", "handle": 1}}, "#,
        r#"{"chain": {"family": "inet", "table": "native", "name": "early", "handle": 1, "type": "filter", "hook": "prerouting", "prio": -200, "policy": "accept"}}, "#,
        r#"{"rule": {"family": "inet", "table": "native", "chain": "early", "handle": 2, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 23}}, {"drop": null}]}}]}"#,
        "\n"
    );

    #[test]
    fn nft_json_and_iptables_save_in_one_file_are_one_mixed_ruleset() {
        // `iptables-save; nft -j list ruleset` and the other way round were
        // read as one format only: the JSON after a save was a syntax
        // error, the save after JSON "trailing characters".
        let head = "# Generated by iptables-save v1.8.9 (nf_tables)\n";
        for text in [
            format!("{head}{SAVE}# Completed\n{NFT_JSON}"),
            format!("{head}{SAVE}# Completed\n\r\n  # nft -j list ruleset\n{NFT_JSON}"),
            format!("{NFT_JSON}{head}{SAVE}# Completed\n"),
        ] {
            let p = parse_str(&text, &ParseOptions::strict("mixed")).unwrap();
            assert!(p.problems.is_empty(), "{:?}", p.problems);
            assert_eq!(p.ruleset.tables.len(), 1, "{text}");
            assert_eq!(p.ruleset.rule_count(), 1);
            assert_eq!(p.ruleset.nft.tables.len(), 1);
            let early = &p.ruleset.nft.tables[0].chains[0];
            assert_eq!(early.name, "early");
            assert_eq!(early.rules.len(), 1);
        }
        // The JSON alone is nft alone.
        let p = parse_str(NFT_JSON, &ParseOptions::strict("nft")).unwrap();
        assert!(p.ruleset.tables.is_empty());
        assert_eq!(p.ruleset.nft.tables.len(), 1);
        assert_eq!(save_after_nft(NFT_JSON), None);
    }

    #[test]
    fn nft_text_alone_has_no_iptables_part() {
        assert_eq!(save_after_nft(NFT), None);
        // A `*` line without a COMMIT after it is not a save.
        assert_eq!(save_after_nft(&format!("{NFT}*filter\n")), None);
        // Multiplication in a comment or an expression does not count.
        assert_eq!(save_after_nft(&format!("{NFT}# 2 * 3\n")), None);
    }
}
