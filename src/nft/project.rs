//! The nft tables drawn with the chain graph: each nft table becomes a
//! drawing table (`inet fw4`) whose chains and edges the graph, view,
//! renderers and desktop app already know how to draw.
//!
//! This is a view of the nft model for drawing only: base chains are
//! entry points named with their hook and priority (`input [hook input
//! priority filter]`), `jump` is an edge, `goto` an edge drawn as a goto,
//! every verdict of a verdict map (anonymous or named) an edge of its own,
//! anonymous `jump { }` chains are chains named `{anon N}`; each drawn
//! rule carries the nft rule's text as its comment, and each drawing
//! table keeps its chains and rules as nft writes them ([`DrawnNft`]) for
//! hover texts. Saving, checking and
//! tracing read the nft model itself, never this projection.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::model::Ruleset;
use crate::parse::{ParseOptions, parse_str};

use super::model::*;

/// The name a base chain is drawn with.
pub fn base_chain_label(c: &Chain) -> String {
    match &c.base {
        Some(b) => format!(
            "{} [hook {} priority {}]",
            c.name, b.hook, b.priority.written
        ),
        None => c.name.to_string(),
    }
}

/// The drawing table's name for an nft table.
pub fn table_label(t: &Table) -> String {
    format!("{} {}", t.family, t.name)
}

/// Whether the table called `name` in `rs` is the drawing of one of its
/// nft tables (added by [`with_drawn_tables`]), not an iptables table:
/// its rules are pictures of nft rules, for drawing only (iptables lint or
/// reach of them would judge the picture).
pub fn is_drawn_table(rs: &Ruleset, name: &str) -> bool {
    rs.nft.tables.iter().any(|t| table_label(t) == name)
}

/// `rs` with its nft tables added as drawing tables after the iptables
/// ones (unchanged when there are none).
pub fn with_drawn_tables(mut rs: Ruleset) -> Ruleset {
    if rs.nft.is_empty() {
        return rs;
    }
    let drawn = drawn_tables(&rs.nft);
    rs.tables.extend(drawn.tables);
    rs
}

/// How nft writes the chains and rules of the drawing of one nft table
/// (kept in [`crate::model::Table::nft`]), for hover texts: a drawn rule
/// is a picture in iptables words, the user wrote nft.
#[derive(Debug, Clone, Default)]
pub struct DrawnNft {
    /// By drawn chain name (`input [hook input priority filter]`,
    /// `{anon_1}`).
    pub chains: HashMap<String, DrawnChain>,
}

/// One drawn chain as nft writes it.
#[derive(Debug, Clone, Default)]
pub struct DrawnChain {
    /// The chain's nft name (`input`; `{anon_1}` for an anonymous one).
    pub name: String,
    /// A base chain's declaration (`type filter hook input priority
    /// filter; policy accept;`); empty for other chains.
    pub base: String,
    /// An anonymous chain (`jump { ... }`).
    pub anonymous: bool,
    /// The nft text of each drawn rule (a verdict map's rule once per
    /// verdict it is drawn for).
    pub rules: Vec<String>,
}

impl DrawnChain {
    /// `base chain input in table inet fw4 (line 12): type filter hook
    /// input priority filter; policy accept; 3 rules`.
    pub fn title(&self, table: &str, line: u32, rules: usize) -> String {
        let kind = if !self.base.is_empty() {
            "base chain"
        } else if self.anonymous {
            "anonymous chain"
        } else {
            "chain"
        };
        let mut t = format!("{kind} {} in table {table}", self.name);
        if line > 0 {
            t.push_str(&format!(" (line {line})"));
        }
        t.push_str(": ");
        if !self.base.is_empty() {
            t.push_str(&self.base);
            t.push(' ');
        }
        t.push_str(&crate::diagram::plural(rules, "rule"));
        t
    }
}

/// Where the chains and rules of one nft table are drawn.
#[derive(Debug, Clone, Default)]
pub struct TablePlaces {
    /// The drawn name of each chain, anonymous ones included, by the
    /// chain's address in the model it was made from.
    chains: HashMap<usize, String>,
    /// Per drawn chain, the index in its nft chain of the rule each drawn
    /// rule pictures (a verdict map is drawn as one rule per verdict).
    rules: HashMap<String, Vec<usize>>,
}

impl TablePlaces {
    /// The drawn name of `c`, a chain of this table's model.
    pub fn chain(&self, c: &Chain) -> Option<&str> {
        self.chains.get(&address(c)).map(String::as_str)
    }

    /// For each rule of drawn chain `drawn`, the index of the nft rule it
    /// pictures.
    pub fn rules(&self, drawn: &str) -> &[usize] {
        self.rules.get(drawn).map_or(&[], Vec::as_slice)
    }
}

/// A chain's identity within the model borrowed (its address).
fn address(c: &Chain) -> usize {
    std::ptr::from_ref(c) as usize
}

/// Where each chain and rule of `nft` is drawn by [`drawn_tables`], one
/// entry per nft table; valid as long as `nft` is not changed.
pub fn places(nft: &NftRuleset) -> Vec<TablePlaces> {
    let mut scratch = String::new();
    nft.tables
        .iter()
        .map(|t| {
            scratch.clear();
            project_table(t, &mut scratch).places
        })
        .collect()
}

/// What [`project_table`] says of the table it wrote.
struct Projected {
    /// Where each chain and rule went.
    places: TablePlaces,
    /// The nft source line of each drawn rule, per drawn chain before
    /// base chains are renamed.
    lines: HashMap<String, Vec<u32>>,
    /// The drawn chains as nft writes them.
    text: DrawnNft,
}

/// Writes one table's chains and rules as drawing text into `out`.
fn project_table(t: &Table, out: &mut String) -> Projected {
    let mut chains: Vec<(String, &Chain)> = Vec::new();
    let mut anon = 0usize;
    for c in &t.chains {
        collect_chains(c, safe(&c.name), &mut chains, &mut anon);
    }
    for (n, _) in &chains {
        let _ = writeln!(out, ":{n} - [0:0]");
    }
    let mut w = Writer {
        out,
        lines: HashMap::new(),
        origin: HashMap::new(),
        texts: HashMap::new(),
    };
    let mut anon = 0usize;
    for c in &t.chains {
        w.rules(t, c, &safe(&c.name), &mut anon);
    }
    let mut places = TablePlaces::default();
    let mut text = DrawnNft::default();
    for (n, c) in chains {
        let drawn = if c.base.is_some() {
            base_chain_label(c)
        } else {
            n.clone()
        };
        if let Some(o) = w.origin.remove(&n) {
            places.rules.insert(drawn.clone(), o);
        }
        let anonymous = n.starts_with("{anon_");
        text.chains.insert(
            drawn.clone(),
            DrawnChain {
                name: if anonymous {
                    n.clone()
                } else {
                    c.name.to_string()
                },
                base: c
                    .base
                    .as_ref()
                    .map(|b| super::display::base_chain_line(b))
                    .unwrap_or_default(),
                anonymous,
                rules: w.texts.remove(&n).unwrap_or_default(),
            },
        );
        places.chains.insert(address(c), drawn);
    }
    Projected {
        places,
        lines: w.lines,
        text,
    }
}

/// The nft tables as a ruleset of drawing tables.
pub fn drawn_tables(nft: &NftRuleset) -> Ruleset {
    let mut text = String::new();
    // Per drawing table and chain, the nft source line of each drawn rule.
    let mut lines: Vec<HashMap<String, Vec<u32>>> = Vec::new();
    let mut texts: Vec<DrawnNft> = Vec::new();
    for (ti, t) in nft.tables.iter().enumerate() {
        let _ = writeln!(text, "*nft{ti}");
        let p = project_table(t, &mut text);
        lines.push(p.lines);
        texts.push(p.text);
        text.push_str("COMMIT\n");
    }
    let mut rs = match parse_str(&text, &ParseOptions::lenient("nft")) {
        Ok(p) => p.ruleset,
        Err(_) => Ruleset::default(),
    };
    // Names, policies and entry points come from the nft model.
    for (ti, t) in nft.tables.iter().enumerate() {
        let want = format!("nft{ti}");
        let Some(dt) = rs.tables.iter_mut().find(|x| x.name == want) else {
            continue;
        };
        dt.name = table_label(t).into();
        for dc in &mut dt.chains {
            if let Some(ls) = lines[ti].get(dc.name.as_str()) {
                for (r, l) in dc.rules.iter_mut().zip(ls) {
                    r.line = *l;
                }
            }
        }
        let at: HashMap<String, usize> = dt
            .chains
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.to_string(), i))
            .collect();
        for c in &t.chains {
            let Some(&i) = at.get(&*safe_cow(&c.name)) else {
                continue;
            };
            let dc = &mut dt.chains[i];
            dc.line = c.line;
            if let Some(b) = &c.base {
                dc.builtin = true;
                dc.policy = Some(
                    match b.policy {
                        Some(Policy::Drop) => "DROP",
                        _ => "ACCEPT",
                    }
                    .into(),
                );
                dc.name = base_chain_label(c).into();
            }
        }
        dt.nft = Some(Box::new(std::mem::take(&mut texts[ti])));
        dt.reindex();
    }
    rs
}

/// A chain name as one word of iptables-save text.
fn safe(name: &str) -> String {
    safe_cow(name).into_owned()
}

/// [`safe`] without a copy when the name is one word already.
fn safe_cow(name: &str) -> std::borrow::Cow<'_, str> {
    if name.contains(char::is_whitespace) {
        name.chars()
            .map(|c| if c.is_whitespace() { '_' } else { c })
            .collect::<String>()
            .into()
    } else {
        name.into()
    }
}

/// Chains in the order [`write_rules`] names anonymous ones: a chain,
/// then its rules' anonymous chains, each followed by its own.
fn collect_chains<'a>(
    c: &'a Chain,
    name: String,
    out: &mut Vec<(String, &'a Chain)>,
    anon: &mut usize,
) {
    out.push((name, c));
    let mut direct = Vec::new();
    for r in &c.rules {
        for a in r.anonymous_chains() {
            *anon += 1;
            direct.push((a, format!("{{anon_{anon}}}")));
        }
    }
    for (a, n) in direct {
        collect_nested(a, n, out, anon);
    }
}

fn collect_nested<'a>(
    c: &'a Chain,
    name: String,
    out: &mut Vec<(String, &'a Chain)>,
    anon: &mut usize,
) {
    collect_chains(c, name, out, anon);
}

/// Appends `s` to `out` as a quoted comment iptables reads back.
fn quote_comment(out: &mut String, s: &str) {
    // Nearly every rule is short printable ASCII without quotes: copied whole.
    if s.len() <= 250
        && s.bytes()
            .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
    {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        quote_comment_by_char(out, s);
    }
}

/// [`quote_comment`] a character at a time: quotes become `'`,
/// backslashes `/`, controls spaces, and at most 250 characters are kept.
fn quote_comment_by_char(out: &mut String, s: &str) {
    out.push('"');
    out.extend(
        s.chars()
            .map(|c| match c {
                '"' => '\'',
                '\\' => '/',
                c if c.is_control() => ' ',
                c => c,
            })
            .take(250),
    );
    out.push('"');
}

/// Writes the drawn rules of chains, recording for each drawn rule its
/// nft source line and the index of the nft rule it pictures.
struct Writer<'o> {
    out: &'o mut String,
    lines: HashMap<String, Vec<u32>>,
    origin: HashMap<String, Vec<usize>>,
    /// The nft text of each drawn rule.
    texts: HashMap<String, Vec<String>>,
}

impl Writer<'_> {
    fn rules(&mut self, t: &Table, c: &Chain, cname: &str, anon: &mut usize) {
        let ls = self.lines.entry(cname.to_string()).or_default();
        let os = self.origin.entry(cname.to_string()).or_default();
        let ts = self.texts.entry(cname.to_string()).or_default();
        let mut nested: Vec<(&Chain, String)> = Vec::new();
        let mut head = String::new();
        let mut targets: Vec<String> = Vec::new();
        for (ri, r) in c.rules.iter().enumerate() {
            let shown = if r.text.is_empty() {
                r.to_string().into()
            } else {
                std::borrow::Cow::Borrowed(r.text.as_str())
            };
            head.clear();
            head.push_str("-A ");
            head.push_str(cname);
            head.push_str(" -m comment --comment ");
            quote_comment(&mut head, &shown);
            targets.clear();
            for s in &r.stmts {
                match s {
                    Stmt::Verdict(v) => targets.push(verdict_target(v, anon, &mut nested)),
                    Stmt::Vmap { map, .. } => {
                        let elems: Vec<&Expr> = match map {
                            Expr::Map(v) => v.iter().collect(),
                            Expr::SetRef(n) => {
                                t.set(n).map_or(Vec::new(), |s| s.elements.iter().collect())
                            }
                            _ => Vec::new(),
                        };
                        for e in elems {
                            if let Expr::MapElem(kv) = e
                                && let Expr::Verdict(v) = &kv.1
                            {
                                targets.push(verdict_target(v, anon, &mut nested));
                            }
                        }
                    }
                    Stmt::Reject { .. } => targets.push("-j REJECT".into()),
                    Stmt::Nat(n) => targets.push(nat_target(n)),
                    _ => {}
                }
            }
            // A verdict map with several keys to one verdict is one edge
            // of one rule (`ct state vmap { established : accept,
            // related : accept }`).
            targets.retain(|x| !x.is_empty());
            if targets.len() > 1 {
                let mut seen = std::collections::HashSet::new();
                targets.retain(|x| seen.insert(x.clone()));
            }
            if targets.is_empty() {
                self.out.push_str(&head);
                self.out.push('\n');
                ls.push(r.line);
                os.push(ri);
                ts.push(shown.to_string());
            }
            for tg in &targets {
                self.out.push_str(&head);
                self.out.push(' ');
                self.out.push_str(tg);
                self.out.push('\n');
                ls.push(r.line);
                os.push(ri);
                ts.push(shown.to_string());
            }
        }
        for (a, name) in nested {
            self.rules(t, a, &name, anon);
        }
    }
}

/// The iptables target an nft NAT statement is drawn as, naming its
/// address and port when they are plain values (`dnat to 10.0.0.1:22`); a
/// map lookup or an expression is not named (an address made up for it
/// would be read on the edge as the real one).
fn nat_target(n: &Nat) -> String {
    fn value(e: &Option<Expr>) -> Option<&str> {
        match e {
            Some(Expr::Value(v)) => Some(v.as_str()),
            _ => None,
        }
    }
    let (addr, port) = (value(&n.addr), value(&n.port));
    let plain = (n.addr.is_none() || addr.is_some()) && (n.port.is_none() || port.is_some());
    let to = match (addr, port) {
        (Some(a), Some(p)) if a.contains(':') => format!("[{a}]:{p}"),
        (Some(a), Some(p)) => format!("{a}:{p}"),
        (Some(a), None) => a.to_string(),
        (None, Some(p)) => format!(":{p}"),
        (None, None) => String::new(),
    };
    match n.kind {
        NatKind::Dnat | NatKind::Snat => {
            let (target, opt) = if n.kind == NatKind::Dnat {
                ("DNAT", "--to-destination")
            } else {
                ("SNAT", "--to-source")
            };
            if plain && !to.is_empty() {
                format!("-j {target} {opt} {to}")
            } else {
                format!("-j {target}")
            }
        }
        NatKind::Masquerade => "-j MASQUERADE".into(),
        NatKind::Redirect => match port {
            Some(p) if plain => format!("-j REDIRECT --to-ports {p}"),
            _ => "-j REDIRECT".into(),
        },
    }
}

fn verdict_target<'a>(
    v: &'a Verdict,
    anon: &mut usize,
    nested: &mut Vec<(&'a Chain, String)>,
) -> String {
    match v {
        Verdict::Accept => "-j ACCEPT".into(),
        Verdict::Drop => "-j DROP".into(),
        Verdict::Return => "-j RETURN".into(),
        Verdict::Continue => String::new(),
        Verdict::Queue(_) => "-j NFQUEUE".into(),
        Verdict::Jump(c) => format!("-j {}", safe_cow(c)),
        Verdict::Goto(c) => format!("-g {}", safe_cow(c)),
        Verdict::JumpAnon(c) | Verdict::GotoAnon(c) => {
            *anon += 1;
            let name = format!("{{anon_{anon}}}");
            nested.push((c, name.clone()));
            format!("{} {name}", if v.is_goto() { "-g" } else { "-j" })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole-copy path for plain rule text writes what the character
    /// by character path writes, and the rest still gets its quotes,
    /// backslashes and controls replaced and its length capped.
    #[test]
    fn plain_comment_copied_whole_quotes_as_the_rest() {
        let by_char = |s: &str| {
            let mut out = String::new();
            quote_comment_by_char(&mut out, s);
            out
        };
        let long = "x".repeat(300);
        for s in [
            "",
            "ip daddr 10.0.0.1 tcp dport 80 jump svc",
            "meta mark set 0x4000 comment \"masq\"",
            "a\\b\tc\u{85}d é",
            &long,
        ] {
            let mut out = String::new();
            quote_comment(&mut out, s);
            assert_eq!(out, by_char(s), "{s:?}");
        }
        let mut out = String::new();
        quote_comment(&mut out, &long);
        assert_eq!(out.len(), 252);
    }
}
