//! Words of nft text: the small nom combinators that cut a ruleset into
//! tokens with their byte offsets.
//!
//! Newlines are tokens (they end statements outside braces); `#` comments
//! and `\` line continuations are dropped. A word runs to the next space
//! or one of `{ } ; , "`; so IPv6 addresses, `1.2.3.4:80` and `@set` stay
//! one word, and a lone `:` (map elements) is a word of its own.

use nom::branch::alt;
use nom::bytes::complete::{is_not, take_while, take_while1};
use nom::character::complete::char;
use nom::combinator::{map, recognize};
use nom::sequence::{delimited, preceded};
use nom::{IResult, Parser};

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

fn is_word_char(c: char) -> bool {
    !c.is_whitespace() && !matches!(c, '{' | '}' | ';' | ',' | '"' | '#')
}

fn blank(i: &str) -> IResult<&str, &str> {
    take_while(|c: char| c == ' ' || c == '\t' || c == '\r')(i)
}

fn comment(i: &str) -> IResult<&str, &str> {
    recognize(preceded(char('#'), take_while(|c| c != '\n'))).parse(i)
}

fn continuation(i: &str) -> IResult<&str, &str> {
    recognize((char('\\'), blank, char('\n'))).parse(i)
}

fn quoted(i: &str) -> IResult<&str, Tok<'_>> {
    map(
        delimited(char('"'), take_while(|c| c != '"' && c != '\n'), char('"')),
        Tok::Quoted,
    )
    .parse(i)
}

fn punct(i: &str) -> IResult<&str, Tok<'_>> {
    alt((
        map(char('{'), |_| Tok::Open),
        map(char('}'), |_| Tok::Close),
        map(char(';'), |_| Tok::Semi),
        map(char(','), |_| Tok::Comma),
        map(char('\n'), |_| Tok::Newline),
    ))
    .parse(i)
}

fn word(i: &str) -> IResult<&str, Tok<'_>> {
    map(take_while1(is_word_char), Tok::Word).parse(i)
}

fn unterminated_quote(i: &str) -> IResult<&str, &str> {
    recognize(preceded(char('"'), is_not("\n"))).parse(i)
}

/// A place the lexer could not read (an unterminated quote).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexError {
    /// Byte offset.
    pub at: usize,
    /// What is wrong.
    pub message: String,
}

/// Cuts `src` into tokens; problems are returned beside them and the
/// rest is still read.
pub fn tokenize(src: &str) -> (Vec<Token<'_>>, Vec<LexError>) {
    let mut out = Vec::with_capacity(src.len() / 5);
    let mut errors = Vec::new();
    let mut rest = src;
    loop {
        if let Ok((r, _)) = blank(rest) {
            rest = r;
        }
        if rest.is_empty() {
            break;
        }
        let at = src.len() - rest.len();
        if let Ok((r, _)) = comment(rest) {
            rest = r;
            continue;
        }
        if let Ok((r, _)) = continuation(rest) {
            rest = r;
            continue;
        }
        if let Ok((r, tok)) = alt((punct, quoted, word)).parse(rest) {
            out.push(Token {
                tok,
                at,
                end: src.len() - r.len(),
            });
            rest = r;
            continue;
        }
        // Only an unterminated quote (or a lone backslash) gets here.
        let skip = match unterminated_quote(rest) {
            Ok((r, _)) => {
                errors.push(LexError {
                    at,
                    message: "unterminated quoted string".into(),
                });
                rest.len() - r.len()
            }
            Err(_) => rest.chars().next().map_or(1, char::len_utf8),
        };
        rest = &rest[skip..];
    }
    (out, errors)
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
}
