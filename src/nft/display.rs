//! The model back to nft text: expressions, statements, rules and whole
//! rulesets in the block form `nft -f` reads (what `iptviz save` writes).

use std::fmt::{self, Display, Formatter, Write};

use super::model::*;
use super::parse::BARE_META;

/// Writes a string so that nft reads it back as the same string.
fn quoted(f: &mut impl Write, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        // nft strings cannot hold a quote or a newline; keep the text readable.
        match c {
            '"' => f.write_char('\'')?,
            '\n' | '\r' => f.write_char(' ')?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

/// A word nft reads unquoted as the same value.
fn is_bare(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '/' | '-' | '[' | ']')
        })
}

/// Is this selector compared with strings (interface names, helpers)?
fn string_valued(e: &Expr) -> bool {
    match e {
        Expr::Meta(k) => matches!(
            k.as_str(),
            "iifname" | "oifname" | "ibrname" | "obrname" | "iif" | "oif" | "sdifname"
        ),
        Expr::Ct { key, .. } => key == "helper",
        Expr::Concat(v) => v.iter().any(string_valued),
        _ => false,
    }
}

/// An expression, with string literals quoted when `strings` says so.
struct Shown<'a> {
    e: &'a Expr,
    strings: bool,
}

impl Display for Shown<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let s = self.strings;
        let sub = |e| Shown { e, strings: s };
        match self.e {
            Expr::Value(v) => {
                if s || !is_bare(v) {
                    quoted(f, v)
                } else {
                    f.write_str(v)
                }
            }
            Expr::Payload(p) => write!(f, "{} {}", p.proto(), p.field()),
            Expr::Meta(k) => {
                if BARE_META.contains(&k.as_str()) && k != "mark" {
                    f.write_str(k)
                } else {
                    write!(f, "meta {k}")
                }
            }
            Expr::Ct { key, dir, family } => {
                f.write_str("ct")?;
                match dir {
                    Some(CtDir::Original) => f.write_str(" original")?,
                    Some(CtDir::Reply) => f.write_str(" reply")?,
                    None => {}
                }
                if let Some(fam) = family {
                    write!(f, " {fam}")?;
                }
                write!(f, " {key}")
            }
            Expr::Fib(fib) => {
                write!(f, "fib {} {}", join(fib.flags.iter(), " . "), fib.result)
            }
            Expr::Prefix { addr, len } => write!(f, "{addr}/{len}"),
            Expr::Range(a, b) => write!(f, "{}-{}", sub(a), sub(b)),
            Expr::List(v) => write!(f, "{}", join(v.iter().map(sub), ",")),
            Expr::Set(v) | Expr::Map(v) => write!(f, "{{ {} }}", join(v.iter().map(sub), ", ")),
            Expr::MapElem(kv) => write!(f, "{} : {}", sub(&kv.0), sub(&kv.1)),
            Expr::Concat(v) => write!(f, "{}", join(v.iter().map(sub), " . ")),
            Expr::SetRef(n) => write!(f, "@{n}"),
            Expr::Lookup { key, map } => {
                write!(
                    f,
                    "{} map {}",
                    key,
                    Shown {
                        e: map,
                        strings: false
                    }
                )
            }
            Expr::Verdict(v) => write!(f, "{v}"),
            Expr::Binop { op, left, right } => write!(f, "{} {op} {}", sub(left), sub(right)),
            Expr::Hash(t) | Expr::Other(t) => f.write_str(t),
            Expr::Elem { value, options } => write!(f, "{} {options}", sub(value)),
        }
    }
}

fn join<T: Display>(items: impl Iterator<Item = T>, sep: &str) -> String {
    let mut out = String::new();
    for (i, x) in items.enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        let _ = write!(out, "{x}");
    }
    out
}

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        Shown {
            e: self,
            strings: false,
        }
        .fmt(f)
    }
}

impl Display for Verdict {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Accept => f.write_str("accept"),
            Verdict::Drop => f.write_str("drop"),
            Verdict::Continue => f.write_str("continue"),
            Verdict::Return => f.write_str("return"),
            Verdict::Jump(c) => write!(f, "jump {}", chain_name(c)),
            Verdict::Goto(c) => write!(f, "goto {}", chain_name(c)),
            Verdict::JumpAnon(c) | Verdict::GotoAnon(c) => {
                f.write_str(if self.is_goto() { "goto {" } else { "jump {" })?;
                // nft wants each rule ended, the last one too.
                for r in &c.rules {
                    write!(f, " {r};")?;
                }
                f.write_str(" }")
            }
            Verdict::Queue(args) if args.is_empty() => f.write_str("queue"),
            Verdict::Queue(args) => write!(f, "queue {args}"),
        }
    }
}

/// A chain name as nft reads it back (quoted when it is not a plain word).
pub fn chain_name(name: &str) -> String {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
    {
        name.to_string()
    } else {
        let mut s = String::new();
        let _ = quoted(&mut s, name);
        s
    }
}

impl Display for Stmt {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Stmt::Match(m) => {
                // A flag mask reads back as `tcp flags syn / syn,rst`.
                if let Expr::Binop { op, left, right } = &m.left
                    && *op == BinOp::And
                    && matches!(**right, Expr::List(_))
                {
                    write!(f, "{left}")?;
                    if m.op != RelOp::Implicit {
                        write!(f, " {}", m.op.as_str())?;
                    }
                    return write!(f, " {} / {right}", m.right);
                }
                write!(f, "{}", m.left)?;
                if m.op != RelOp::Implicit {
                    write!(f, " {}", m.op.as_str())?;
                }
                write!(
                    f,
                    " {}",
                    Shown {
                        e: &m.right,
                        strings: string_valued(&m.left)
                    }
                )
            }
            Stmt::Verdict(v) => write!(f, "{v}"),
            Stmt::Vmap { key, map } => write!(
                f,
                "{key} vmap {}",
                Shown {
                    e: map,
                    strings: string_valued(key)
                }
            ),
            Stmt::Counter {
                packets,
                bytes,
                name,
            } => {
                if let Some(n) = name {
                    return write!(f, "counter name {}", chain_name(n));
                }
                f.write_str("counter")?;
                if let (Some(p), Some(b)) = (packets, bytes) {
                    write!(f, " packets {p} bytes {b}")?;
                }
                Ok(())
            }
            Stmt::Log(log) => {
                let Log {
                    prefix,
                    level,
                    group,
                    other,
                } = &**log;
                f.write_str("log")?;
                if let Some(p) = prefix {
                    f.write_str(" prefix ")?;
                    quoted(f, p)?;
                }
                if let Some(l) = level {
                    write!(f, " level {l}")?;
                }
                if let Some(g) = group {
                    write!(f, " group {g}")?;
                }
                for o in other {
                    write!(f, " {o}")?;
                }
                Ok(())
            }
            Stmt::Reject { with: None } => f.write_str("reject"),
            Stmt::Reject { with: Some(w) } => write!(f, "reject with {w}"),
            Stmt::Limit { text } => write!(f, "limit {text}"),
            Stmt::Nat(n) => {
                f.write_str(n.kind.as_str())?;
                if let Some(fam) = n.family {
                    write!(f, " {fam}")?;
                }
                if n.addr.is_some() || n.port.is_some() {
                    f.write_str(" to ")?;
                }
                if let Some(a) = &n.addr {
                    let v6 = matches!(a, Expr::Value(v) if v.contains(':'));
                    if v6 && n.port.is_some() {
                        write!(f, "[{a}]")?;
                    } else {
                        write!(f, "{a}")?;
                    }
                }
                if let Some(p) = &n.port {
                    write!(f, ":{p}")?;
                }
                if let Some(o) = &n.other {
                    write!(f, " {o}")?;
                }
                if !n.flags.is_empty() {
                    write!(f, " {}", join(n.flags.iter(), ","))?;
                }
                Ok(())
            }
            Stmt::Mangle { key, value } => write!(
                f,
                "{key} set {}",
                Shown {
                    e: value,
                    strings: string_valued(key)
                }
            ),
            Stmt::Notrack => f.write_str("notrack"),
            Stmt::Other(t) => f.write_str(t),
        }
    }
}

impl Display for Rule {
    /// The rule's statements and comment, as one line of nft text.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}", join(self.stmts.iter(), " "))?;
        if let Some(c) = &self.comment {
            if !self.stmts.is_empty() {
                f.write_char(' ')?;
            }
            f.write_str("comment ")?;
            quoted(f, c)?;
        }
        Ok(())
    }
}

/// The whole nft side of a ruleset as `nft -f` text: tables in block form.
pub fn to_text(rs: &NftRuleset) -> String {
    let mut out = String::new();
    for t in &rs.tables {
        let _ = write_table(&mut out, t);
    }
    out
}

fn write_table(o: &mut String, t: &Table) -> fmt::Result {
    writeln!(o, "table {} {} {{", t.family, chain_name(&t.name))?;
    if let Some(c) = &t.comment {
        o.push_str("\tcomment ");
        quoted(o, c)?;
        o.push('\n');
    }
    if !t.flags.is_empty() {
        writeln!(o, "\tflags {}", join(t.flags.iter(), ","))?;
    }
    for obj in &t.objects {
        writeln!(o, "\t{} {} {{", obj.kind, chain_name(&obj.name))?;
        for stmt in obj.body.split("; ").filter(|x| !x.is_empty()) {
            writeln!(o, "\t\t{stmt}")?;
        }
        o.push_str("\t}\n");
    }
    for s in &t.sets {
        write_set(o, s)?;
    }
    for ft in &t.flowtables {
        writeln!(o, "\tflowtable {} {{", chain_name(&ft.name))?;
        writeln!(o, "\t\thook {} priority {}", ft.hook, ft.priority.written)?;
        if !ft.devices.is_empty() {
            writeln!(o, "\t\tdevices = {{ {} }}", devices(&ft.devices))?;
        }
        o.push_str("\t}\n");
    }
    for c in &t.chains {
        writeln!(o, "\tchain {} {{", chain_name(&c.name))?;
        if let Some(com) = &c.comment {
            o.push_str("\t\tcomment ");
            quoted(o, com)?;
            o.push('\n');
        }
        if let Some(b) = &c.base {
            o.push_str("\t\t");
            o.push_str(&base_chain_line(b));
            o.push('\n');
        }
        for r in &c.rules {
            writeln!(o, "\t\t{r}")?;
        }
        o.push_str("\t}\n");
    }
    o.push_str("}\n");
    Ok(())
}

/// A base chain's declaration as nft writes it: `type filter hook input
/// priority filter; policy accept;`.
pub fn base_chain_line(b: &BaseChain) -> String {
    let mut o = format!("type {} hook {}", b.kind.as_str(), b.hook);
    if !b.devices.is_empty() {
        if b.devices.len() == 1 {
            let _ = write!(o, " device {}", devices(&b.devices));
        } else {
            let _ = write!(o, " devices = {{ {} }}", devices(&b.devices));
        }
    }
    let _ = write!(o, " priority {};", b.priority.written);
    if let Some(p) = b.policy {
        let _ = write!(o, " policy {};", p.as_str());
    }
    o
}

fn devices(d: &[crate::model::Str]) -> String {
    let mut s = String::new();
    for (i, x) in d.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = quoted(&mut s, x);
    }
    s
}

fn write_set(o: &mut String, s: &Set) -> fmt::Result {
    writeln!(
        o,
        "\t{} {} {{",
        if s.is_map { "map" } else { "set" },
        chain_name(&s.name)
    )?;
    write!(
        o,
        "\t\t{} {}",
        if s.key_typeof { "typeof" } else { "type" },
        join(s.key_type.iter(), " . ")
    )?;
    if !s.data_type.is_empty() {
        write!(o, " : {}", join(s.data_type.iter(), " . "))?;
    }
    o.push('\n');
    if !s.flags.is_empty() {
        writeln!(o, "\t\tflags {}", join(s.flags.iter(), ","))?;
    }
    for x in &s.other {
        writeln!(o, "\t\t{x}")?;
    }
    if let Some(c) = &s.comment {
        o.push_str("\t\tcomment ");
        quoted(o, c)?;
        o.push('\n');
    }
    if !s.elements.is_empty() {
        let strings = s
            .key_type
            .iter()
            .any(|k| k == "ifname" || k.ends_with("ifname"));
        writeln!(
            o,
            "\t\telements = {{ {} }}",
            join(s.elements.iter().map(|e| Shown { e, strings }), ", ")
        )?;
    }
    o.push_str("\t}\n");
    Ok(())
}
