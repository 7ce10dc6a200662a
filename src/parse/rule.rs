//! Turns the words of one rule (after `-A CHAIN`) into the parts a
//! [`crate::model::Rule`] stores.

use crate::model::{BANG_AFTER, Counters, GOTO, IMPLICIT, NEGATED, Part, PartKind, Span};

use super::lexer::Token;

/// A problem inside a rule: byte column in the line and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    /// Byte offset in the line.
    pub col: usize,
    /// What was expected.
    pub message: String,
}

fn err(col: usize, message: impl Into<String>) -> RuleError {
    RuleError {
        col,
        message: message.into(),
    }
}

/// What one rule body parses into; reused from rule to rule.
#[derive(Debug, Default)]
pub struct Body {
    /// Parts in written order.
    pub(crate) parts: Vec<Part>,
    /// Text of words that are not a plain slice of the line.
    pub(crate) side: String,
    /// `-c packets bytes` inside the rule.
    pub(crate) counters: Option<Counters>,
}

impl Body {
    fn clear(&mut self) {
        self.parts.clear();
        self.side.clear();
        self.counters = None;
    }

    /// Where a token's text is: in the line when it is a slice of it,
    /// otherwise copied to the side text.
    fn span(&mut self, line: &str, text: &str) -> Span {
        let base = line.as_ptr() as usize;
        let at = (text.as_ptr() as usize).wrapping_sub(base);
        if at <= line.len() && text.len() <= line.len() - at {
            return Span::line(at, text.len());
        }
        self.side_span(text)
    }

    fn side_span(&mut self, text: &str) -> Span {
        let at = self.side.len();
        self.side.push_str(text);
        Span::side(at, text.len())
    }

    /// `-s` or `-d` holds a ':' (an IPv6 address).
    pub(crate) fn has_v6_address(&self, line: &str) -> bool {
        self.parts.iter().any(|p| {
            matches!(p.kind, PartKind::Source | PartKind::Destination)
                && p.word.resolve(line, &self.side).contains(':')
        })
    }

    fn has(&self, kind: PartKind) -> bool {
        self.parts.iter().any(|p| p.kind == kind)
    }

    fn push(&mut self, kind: PartKind, flags: u8, word: Span) {
        self.parts.push(Part {
            kind,
            flags,
            nargs: 0,
            word,
        });
    }
}

/// Common (rule-level) options.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Common {
    Value(PartKind, &'static str),
    Fragment,
    Match,
    Jump,
    Goto,
    Counters,
}

fn common(word: &str) -> Option<Common> {
    Some(match word {
        "-p" | "--protocol" => Common::Value(PartKind::Protocol, "a protocol"),
        "-s" | "--source" | "--src" => Common::Value(PartKind::Source, "an address"),
        "-d" | "--destination" | "--dst" => Common::Value(PartKind::Destination, "an address"),
        "-i" | "--in-interface" => Common::Value(PartKind::InIface, "an interface name"),
        "-o" | "--out-interface" => Common::Value(PartKind::OutIface, "an interface name"),
        "-f" | "--fragment" => Common::Fragment,
        "-m" | "--match" => Common::Match,
        "-j" | "--jump" => Common::Jump,
        "-g" | "--goto" => Common::Goto,
        "-c" | "--set-counters" => Common::Counters,
        _ => return None,
    })
}

/// Where option words go while walking the rule.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Owner {
    Nobody,
    Match,
    Target,
}

fn is_option_word(t: &Token<'_>) -> bool {
    !t.quoted && t.text.len() > 1 && t.text.starts_with('-')
}

fn is_bang(t: &Token<'_>) -> bool {
    !t.quoted && t.text == "!"
}

/// Parses the words of a rule body; `line` is the text the tokens were cut
/// from (the rule keeps it, and plain words point into it).
pub fn parse_rule_body(tokens: &[Token<'_>], line: &str, body: &mut Body) -> Result<(), RuleError> {
    body.clear();
    let mut owner = Owner::Nobody;
    let mut i = 0;
    let n = tokens.len();
    while i < n {
        let t = &tokens[i];
        let mut negated = false;
        let mut opt_tok = t;
        if is_bang(t) {
            negated = true;
            i += 1;
            match tokens.get(i) {
                Some(next) if is_option_word(next) => opt_tok = next,
                Some(next) => {
                    return Err(err(
                        next.col,
                        format!("expected an option after '!', found '{}'", next.text),
                    ));
                }
                None => return Err(err(t.col, "'!' at the end of the rule negates nothing")),
            }
        }
        if !is_option_word(opt_tok) {
            return Err(err(
                opt_tok.col,
                format!(
                    "unexpected '{}': expected an option such as -p, -s, -m or -j",
                    opt_tok.text
                ),
            ));
        }
        i += 1;
        // Old style negation: `-s ! 1.2.3.4`, `--dport ! 22`.
        let mut bang_after = false;
        if !negated
            && tokens.get(i).is_some_and(is_bang)
            && tokens.get(i + 1).is_some_and(|x| !is_option_word(x))
        {
            negated = true;
            bang_after = true;
            i += 1;
        }
        let flags = if negated { NEGATED } else { 0 } | if bang_after { BANG_AFTER } else { 0 };
        let name = opt_tok.text.as_ref();
        if let Some(joined) = joined_counters(name) {
            // `-c2,3` and `--set-counters=2,3`: getopt lets the value touch the option.
            let (p, b) = joined
                .split_once(',')
                .ok_or_else(|| err(opt_tok.col, "-c needs two numbers (packets,bytes)"))?;
            body.counters = Some(counter_pair(p, b).map_err(|m| err(opt_tok.col, m))?);
            continue;
        }
        if let Some(c) = common(name) {
            let take = |i: &mut usize, what: &str| -> Result<&Token<'_>, RuleError> {
                match tokens.get(*i) {
                    Some(v) if !is_option_word(v) && !is_bang(v) => {
                        *i += 1;
                        Ok(v)
                    }
                    _ => Err(err(opt_tok.col, format!("'{name}' needs {what}"))),
                }
            };
            match c {
                Common::Value(kind, what) => {
                    let v = take(&mut i, what)?;
                    dup(body.has(kind), opt_tok)?;
                    let word = body.span(line, &v.text);
                    body.push(kind, flags, word);
                }
                Common::Fragment => {
                    dup(body.has(PartKind::Fragment), opt_tok)?;
                    body.push(PartKind::Fragment, flags, Span::default());
                }
                Common::Match => {
                    if negated {
                        return Err(err(t.col, "'!' cannot negate -m"));
                    }
                    let module = take(&mut i, "a match module name")?;
                    let word = body.span(line, &module.text);
                    body.push(PartKind::Match, 0, word);
                    owner = Owner::Match;
                }
                Common::Jump | Common::Goto => {
                    if negated {
                        return Err(err(t.col, format!("'!' cannot negate {name}")));
                    }
                    if body.has(PartKind::Target) {
                        return Err(err(opt_tok.col, "a rule can have only one -j or -g"));
                    }
                    let target = take(&mut i, "a target or chain name")?;
                    let word = body.span(line, &target.text);
                    let goto = if c == Common::Goto { GOTO } else { 0 };
                    body.push(PartKind::Target, goto, word);
                    owner = Owner::Target;
                }
                Common::Counters => {
                    let p = take(&mut i, "two numbers (packets bytes, or packets,bytes)")?;
                    // `-c P,B` as iptables-restore also takes it; else `-c P B`.
                    let (p, b) = match p.text.split_once(',') {
                        Some((p, b)) => (p.to_string(), b.to_string()),
                        None => {
                            let b = take(&mut i, "two numbers (packets bytes, or packets,bytes)")?;
                            (p.text.to_string(), b.text.to_string())
                        }
                    };
                    body.counters = Some(counter_pair(&p, &b).map_err(|m| err(opt_tok.col, m))?);
                }
            }
            continue;
        }
        if owner == Owner::Nobody {
            // `-p tcp --dport 22` without `-m tcp`: iptables loads the
            // protocol's match on its own.
            let proto = body
                .parts
                .iter()
                .find(|p| p.kind == PartKind::Protocol)
                .copied();
            if let Some(p) = proto.filter(|p| p.flags & NEGATED == 0) {
                let value = part_text(body, line, p.word);
                if !value.is_empty() {
                    let word = if value.bytes().any(|b| b.is_ascii_uppercase()) {
                        let lower = value.to_ascii_lowercase();
                        body.side_span(&lower)
                    } else {
                        p.word
                    };
                    body.push(PartKind::Match, IMPLICIT, word);
                    owner = Owner::Match;
                }
            }
        }
        // A module or target option: take every following value word.
        let word = body.span(line, &opt_tok.text);
        let at = body.parts.len();
        body.push(PartKind::Opt, flags, word);
        let mut nargs = 0usize;
        while let Some(v) = tokens.get(i) {
            if is_option_word(v) && !v.text.starts_with("--") && v.text.len() == 2 {
                break;
            }
            if is_option_word(v) || is_bang(v) {
                // Values that look like options (`-1`) only when quoted.
                if !(v.text.starts_with('-')
                    && v.text[1..]
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_ascii_digit()))
                {
                    break;
                }
            }
            let word = body.span(line, &v.text);
            body.push(PartKind::Arg, 0, word);
            nargs += 1;
            i += 1;
        }
        body.parts[at].nargs = u16::try_from(nargs)
            .map_err(|_| err(opt_tok.col, format!("'{name}' has more than 65535 values")))?;
    }
    Ok(())
}

/// The value of `-cP,B` or `--set-counters=P,B` written as one word.
fn joined_counters(word: &str) -> Option<&str> {
    word.strip_prefix("--set-counters=").or_else(|| {
        word.strip_prefix("-c")
            .filter(|v| !v.is_empty() && !v.starts_with('-'))
    })
}

/// Reads one counter as iptables-restore does (`sscanf("%llu")`): leading
/// digits, anything after them ignored, too large a value held at the
/// maximum.
fn counter_value(s: &str) -> Option<u64> {
    let digits = s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 {
        return None;
    }
    Some(s[..digits].parse().unwrap_or(u64::MAX))
}

/// The packets and bytes of `-c`.
fn counter_pair(p: &str, b: &str) -> Result<Counters, String> {
    let packets = counter_value(p).ok_or_else(|| {
        format!("-c needs two numbers (packets,bytes): the packet count '{p}' is not a number")
    })?;
    let bytes = counter_value(b).ok_or_else(|| {
        format!("-c needs two numbers (packets,bytes): the byte count '{b}' is not a number")
    })?;
    Ok(Counters { packets, bytes })
}

/// The text of a span while the rule is being built.
fn part_text<'a>(body: &'a Body, line: &'a str, span: Span) -> &'a str {
    span.resolve(line, &body.side)
}

fn dup(already: bool, t: &Token<'_>) -> Result<(), RuleError> {
    if already {
        Err(err(t.col, format!("'{}' given twice", t.text)))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::lexer::tokenize;
    use super::*;
    use crate::model::{KnownMatch, Rule};
    use crate::parse::parse_rule;
    use crate::save::push_rule_body;

    fn rule(s: &str) -> Rule {
        parse_rule(s).unwrap()
    }

    #[test]
    fn common_fields_and_target() {
        let r = rule("-s 10.0.0.0/8 ! -i eth+ -p tcp -m tcp --dport 22 -j ACCEPT");
        assert_eq!(r.source().unwrap().value, "10.0.0.0/8");
        assert!(r.in_iface().unwrap().negated);
        let m: Vec<_> = r.matches().collect();
        assert_eq!(m[0].module, "tcp");
        assert_eq!(m[0].opt("--dport").unwrap().arg(), "22");
        assert_eq!(r.target().unwrap().name, "ACCEPT");
        let mut out = String::new();
        push_rule_body(&mut out, &r);
        assert_eq!(
            out,
            " -s 10.0.0.0/8 ! -i eth+ -p tcp -m tcp --dport 22 -j ACCEPT"
        );
    }

    #[test]
    fn old_style_negation() {
        let r = rule("-s ! 1.2.3.4 -p tcp -m tcp --dport ! 22");
        let s = r.source().unwrap();
        assert!(s.negated && s.bang_after);
        let m = r.matches().next().unwrap();
        let o = m.opts.first().unwrap();
        assert!(o.negated && o.bang_after && o.args.to_vec() == ["22"]);
    }

    #[test]
    fn bang_before_next_option_is_not_old_style() {
        let r = rule("-p tcp -m tcp --syn ! --dport 22");
        let m = r.matches().next().unwrap();
        let o: Vec<_> = m.opts.iter().collect();
        assert!(!o[0].negated);
        assert!(o[1].negated && !o[1].bang_after);
    }

    #[test]
    fn implicit_protocol_match() {
        let r = rule("-p TCP --dport 22 -j DROP");
        let m = r.matches().next().unwrap();
        assert!(m.implicit);
        assert_eq!(m.module, "tcp");
        assert!(matches!(m.typed(), KnownMatch::Tcp { .. }));
        let mut out = String::new();
        push_rule_body(&mut out, &r);
        assert_eq!(out, " -p TCP --dport 22 -j DROP");
    }

    #[test]
    fn options_after_a_common_option_stay_with_their_match() {
        let r = rule("-m tcp --dport 22 -s 1.2.3.4 --sport 5 -j ACCEPT");
        let m = r.matches().next().unwrap();
        assert_eq!(m.opts.len(), 2);
        assert_eq!(m.opt("--sport").unwrap().arg(), "5");
        assert!(r.extra().is_empty());
    }

    #[test]
    fn multi_arg_options_and_goto() {
        let r = rule(
            "-p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -m set --match-set foo src,dst -g X",
        );
        let m: Vec<_> = r.matches().collect();
        assert_eq!(m[0].opts.first().unwrap().args.len(), 2);
        assert_eq!(m[1].opts.first().unwrap().args.to_vec(), ["foo", "src,dst"]);
        assert!(r.target().unwrap().goto);
    }

    #[test]
    fn quoted_words_keep_their_text() {
        let r = rule(r#"-m comment --comment "a \"b\" c" -j LOG --log-prefix "x y ""#);
        assert_eq!(r.comment().as_deref(), Some(r#"a "b" c"#));
        assert_eq!(
            r.target().unwrap().opt("--log-prefix").unwrap().arg(),
            "x y "
        );
    }

    /// Issue 10: `-c 2,3` (as iptables-restore takes it) was refused.
    #[test]
    fn counters_with_a_comma_are_read() {
        let forms = [
            "-c 2,3 -j ACCEPT",
            "-c 2 3 -j ACCEPT",
            "--set-counters 2,3 -j ACCEPT",
            "--set-counters 2 3 -j ACCEPT",
            "-c2,3 -j ACCEPT",
            "--set-counters=2,3 -j ACCEPT",
            "-j ACCEPT -c 2,3",
        ];
        for f in forms {
            let r = rule(f);
            let c = r.counters.unwrap_or_else(|| panic!("{f}: no counters"));
            assert_eq!((c.packets, c.bytes), (2, 3), "{f}");
            // Re-emitted as iptables-save prints counters: before -A.
            assert_eq!(
                crate::save::rule_line("INPUT", &r),
                "[2:3] -A INPUT -j ACCEPT"
            );
        }
    }

    #[test]
    fn counters_are_read_like_iptables_restore_reads_them() {
        // sscanf("%llu"): trailing text ignored, too large held at the maximum.
        let r = rule("-c 2,3x -j ACCEPT");
        assert_eq!(r.counters.map(|c| (c.packets, c.bytes)), Some((2, 3)));
        let r = rule("-c 18446744073709551616,1 -j ACCEPT");
        assert_eq!(r.counters.map(|c| c.packets), Some(u64::MAX));
    }

    #[test]
    fn counters_missing_a_number_are_refused_with_the_column() {
        for (body, col, what) in [
            ("-j ACCEPT -c 2,", 11, "byte count ''"),
            ("-j ACCEPT -c ,3", 11, "packet count ''"),
            ("-j ACCEPT -c 2", 11, "needs two numbers"),
            ("-j ACCEPT -c x,3", 11, "packet count 'x'"),
            ("-j ACCEPT -c2", 11, "needs two numbers"),
        ] {
            let e = parse_rule(body).unwrap_err();
            assert_eq!(e.column, col, "{body}: {e:?}");
            assert!(e.message.contains(what), "{body}: {}", e.message);
        }
    }

    #[test]
    fn errors_point_at_the_word() {
        let mut toks = Vec::new();
        let mut body = Body::default();
        let line = "-p tcp bogus -j ACCEPT";
        tokenize(line, &mut toks).unwrap();
        let e = parse_rule_body(&toks, line, &mut body).unwrap_err();
        assert_eq!(e.col, 7);
        let line = "-p tcp -j";
        tokenize(line, &mut toks).unwrap();
        let e = parse_rule_body(&toks, line, &mut body).unwrap_err();
        assert_eq!(e.col, 7);
    }
}
