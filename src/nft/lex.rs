//! Words of nft text: the lexer that cuts a ruleset into tokens with their
//! byte offsets.
//!
//! Newlines are tokens (they end statements outside braces); `#` comments
//! and `\` line continuations are dropped. A word runs to the next space
//! or one of `{ } ; , " ( )`; so IPv6 addresses, `1.2.3.4:80` and `@set` stay
//! one word, and a lone `:` (map elements) is a word of its own.

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tok<'a> {
    /// A bare word.
    Word(&'a str),
    /// A `"quoted string"`, without its quotes.
    Quoted(&'a str),
    /// `{`
    Open,
    /// `}`
    Close,
    /// `;`
    Semi,
    /// `,`
    Comma,
    /// End of a line.
    Newline,
}

/// A token and where it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token<'a> {
    /// The token.
    pub tok: Tok<'a>,
    /// Byte offset in the input.
    pub at: usize,
    /// Byte offset just after it.
    pub end: usize,
}

impl<'a> Token<'a> {
    /// The word or quoted text, if it is one.
    pub fn text(&self) -> Option<&'a str> {
        match &self.tok {
            Tok::Word(w) | Tok::Quoted(w) => Some(*w),
            _ => None,
        }
    }

    /// The bare word, if it is one.
    pub fn word(&self) -> Option<&'a str> {
        match &self.tok {
            Tok::Word(w) => Some(*w),
            _ => None,
        }
    }
}

/// A place the lexer could not read (an unterminated quote).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexError {
    /// Byte offset.
    pub at: usize,
    /// What is wrong.
    pub message: String,
}

/// Whether `c` ends a word.
const fn ends_word(c: char) -> bool {
    c.is_whitespace() || matches!(c, '{' | '}' | ';' | ',' | '"' | '#' | '(' | ')')
}

/// For each byte: 1 when it is an ASCII byte that ends a word, 2 when it
/// is not ASCII (the character decides), 0 when it is part of a word.
static BYTE_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = if c >= 0x80 {
            2
        } else if ends_word(c as u8 as char) {
            1
        } else {
            0
        };
        c += 1;
    }
    t
};

/// Where the word starting at byte `i` of `src` ends (`i` when the
/// character there cannot be in a word).
#[inline]
fn word_end(src: &str, mut i: usize) -> usize {
    let b = src.as_bytes();
    while i < b.len() {
        let class = BYTE_CLASS[b[i] as usize];
        if class == 0 {
            i += 1;
        } else if class == 1 {
            break;
        } else {
            // Any non-ASCII character but Unicode white space is a word's.
            match src[i..].chars().next() {
                Some(ch) if !ch.is_whitespace() => i += ch.len_utf8(),
                _ => break,
            }
        }
    }
    i
}

/// The length of a `\` line continuation (blanks allowed before the
/// newline) at the start of `b`.
fn continuation(b: &[u8]) -> Option<usize> {
    let blanks = b[1..]
        .iter()
        .take_while(|c| matches!(c, b' ' | b'\t' | b'\r'))
        .count();
    (b.get(1 + blanks) == Some(&b'\n')).then_some(blanks + 2)
}

/// Cuts `src` into tokens one at a time: the parser reads from it as it
/// goes, so the tokens of a large ruleset (millions of them) are never all
/// held at once. Problems are kept in [`Lexer::errors`] and the rest is
/// still read.
#[derive(Debug, Clone)]
pub struct Lexer<'a> {
    src: &'a str,
    i: usize,
    /// Whether a `\\` line continuation was passed over (its newline is
    /// no token).
    joined: bool,
    /// Unterminated quotes met so far, in input order.
    pub errors: Vec<LexError>,
}

impl<'a> Lexer<'a> {
    /// A lexer at the start of `src`.
    pub fn new(src: &'a str) -> Self {
        Lexer {
            src,
            i: 0,
            joined: false,
            errors: Vec::new(),
        }
    }

    /// Whether every newline read so far came out as a [`Tok::Newline`]
    /// at its own offset (no `\\` line continuation was met).
    pub fn newlines_are_tokens(&self) -> bool {
        !self.joined
    }

    /// The next token, `None` at the end of the input.
    ///
    /// One pass over the bytes: this is the first thing every read of nft
    /// text does. Always inlined: the parser calls it in one place, and
    /// a call per token costs more than the copy of the code.
    #[inline(always)]
    pub fn next_token(&mut self) -> Option<Token<'a>> {
        let src = self.src;
        let b = src.as_bytes();
        let mut i = self.i;
        while i < b.len() {
            let at = i;
            let tok = match b[i] {
                b' ' | b'\t' | b'\r' => {
                    i += 1;
                    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\r') {
                        i += 1;
                    }
                    continue;
                }
                // A comment runs to the end of the line (the newline stays).
                b'#' => {
                    i = memchr::memchr(b'\n', &b[i..]).map_or(b.len(), |n| i + n);
                    continue;
                }
                b'\\' if let Some(n) = continuation(&b[i..]) => {
                    i += n;
                    self.joined = true;
                    continue;
                }
                b'{' => Tok::Open,
                b'}' => Tok::Close,
                b';' => Tok::Semi,
                b',' => Tok::Comma,
                b'\n' => Tok::Newline,
                // Parentheses group expressions: each is a word of its own.
                b'(' | b')' => Tok::Word(&src[i..i + 1]),
                b'"' => {
                    let rest = &b[i + 1..];
                    match memchr::memchr2(b'"', b'\n', rest) {
                        Some(n) if rest[n] == b'"' => {
                            i += n + 2;
                            self.i = i;
                            return Some(Token {
                                tok: Tok::Quoted(&src[at + 1..at + 1 + n]),
                                at,
                                end: i,
                            });
                        }
                        // A quote alone before the end of the line is passed
                        // over; one with text after it is reported.
                        Some(0) => i += 1,
                        None if rest.is_empty() => i += 1,
                        stop => {
                            self.errors.push(LexError {
                                at,
                                message: "unterminated quoted string".into(),
                            });
                            i += 1 + stop.unwrap_or(rest.len());
                        }
                    }
                    continue;
                }
                _ => {
                    let end = word_end(src, i);
                    if end == i {
                        // White space other than blanks.
                        i += src[i..].chars().next().map_or(1, char::len_utf8);
                        continue;
                    }
                    // Most words are followed by one space: it is passed
                    // over here rather than by the next call.
                    self.i = end + usize::from(b.get(end) == Some(&b' '));
                    return Some(Token {
                        tok: Tok::Word(&src[at..end]),
                        at,
                        end,
                    });
                }
            };
            self.i = i + 1;
            return Some(Token {
                tok,
                at,
                end: i + 1,
            });
        }
        self.i = i;
        None
    }
}

/// Cuts all of `src` into tokens; problems are returned beside them.
pub fn tokenize(src: &str) -> (Vec<Token<'_>>, Vec<LexError>) {
    let mut lx = Lexer::new(src);
    let mut out = Vec::new();
    while let Some(t) = lx.next_token() {
        out.push(t);
    }
    (out, lx.errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok<'_>> {
        tokenize(s).0.into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn words_punctuation_and_quotes() {
        assert_eq!(
            toks("iif \"lo\" accept; ct state established,related # c\n"),
            vec![
                Tok::Word("iif"),
                Tok::Quoted("lo"),
                Tok::Word("accept"),
                Tok::Semi,
                Tok::Word("ct"),
                Tok::Word("state"),
                Tok::Word("established"),
                Tok::Comma,
                Tok::Word("related"),
                Tok::Newline,
            ]
        );
    }

    #[test]
    fn ipv6_and_map_colons_stay_apart() {
        assert_eq!(
            toks("{ fe80::/64 : accept }"),
            vec![
                Tok::Open,
                Tok::Word("fe80::/64"),
                Tok::Word(":"),
                Tok::Word("accept"),
                Tok::Close
            ]
        );
    }

    #[test]
    fn continuation_joins_lines_and_bad_quote_is_reported() {
        assert_eq!(toks("a \\\n b").len(), 2);
        let (t, e) = tokenize("x \"open\ny");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].at, 2);
        assert_eq!(t.last().unwrap().tok, Tok::Word("y"));
    }

    /// Words end where a walk over the characters ends them: at every
    /// ASCII byte and some non-ASCII characters, from every offset.
    #[test]
    fn words_end_where_a_char_walk_ends_them() {
        let walk = |s: &str, i: usize| {
            s[i..]
                .char_indices()
                .find(|&(_, c)| ends_word(c))
                .map_or(s.len(), |(k, _)| i + k)
        };
        let mut s = String::new();
        let odd = "é\u{a0}\u{85}\u{2028}\u{3000}ü";
        for (n, c) in (0u8..128).map(char::from).chain(odd.chars()).enumerate() {
            s.push(c);
            s.push_str(&"ab-1.2/3:x|"[..n % 12]);
        }
        for i in (0..s.len()).filter(|&i| s.is_char_boundary(i)) {
            assert_eq!(word_end(&s, i), walk(&s, i), "at {i}");
        }
    }

    /// The byte-level lexer keeps the rules of the word-by-word one it
    /// replaced: odd white space, lone quotes, backslashes and UTF-8.
    #[test]
    fn edge_cases_read_as_before() {
        assert_eq!(
            toks("a#c\nb"),
            vec![Tok::Word("a"), Tok::Newline, Tok::Word("b")]
        );
        let (t, e) = tokenize("x \"\ny \"");
        assert!(e.is_empty(), "a quote alone at a line's end is passed over");
        assert_eq!(
            t.iter().map(|t| t.tok).collect::<Vec<_>>(),
            vec![Tok::Word("x"), Tok::Newline, Tok::Word("y")]
        );
        assert_eq!(
            toks("a\x0bb\u{a0}c"),
            vec![Tok::Word("a"), Tok::Word("b"), Tok::Word("c")]
        );
        assert_eq!(
            toks("\\x a \\ \t\n b"),
            vec![Tok::Word("\\x"), Tok::Word("a"), Tok::Word("b")]
        );
        assert_eq!(
            toks("f(x) é:80 \"\""),
            vec![
                Tok::Word("f"),
                Tok::Word("("),
                Tok::Word("x"),
                Tok::Word(")"),
                Tok::Word("é:80"),
                Tok::Quoted("")
            ]
        );
        let (t, _) = tokenize("x \"ab\" y");
        assert_eq!((t[1].at, t[1].end), (2, 6));
        assert_eq!((t[2].at, t[2].end), (7, 8));
    }
}
