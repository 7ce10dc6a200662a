//! Splits one line into shell-like words the way `iptables-restore` does:
//! whitespace separates words, double quotes group, a backslash escapes the
//! next character.

use std::borrow::Cow;

use nom::branch::alt;
use nom::bytes::complete::{tag, take_while1};
use nom::character::complete::{anychar, char};
use nom::combinator::{map, recognize};
use nom::error::{Error, ErrorKind};
use nom::sequence::preceded;
use nom::{IResult, Parser};

/// One word of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token<'a> {
    /// The word with quotes and escapes removed.
    pub text: Cow<'a, str>,
    /// Byte offset of the word's first character in the line.
    pub col: usize,
    /// Some part of it was quoted (so it is a value, never an option).
    pub quoted: bool,
}

/// Where the line could not be split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexError {
    /// Byte offset in the line.
    pub col: usize,
    /// What was expected.
    pub message: &'static str,
}

fn is_plain(c: char) -> bool {
    !c.is_whitespace() && c != '"' && c != '\\'
}

fn plain(i: &str) -> IResult<&str, &str> {
    take_while1(is_plain).parse_complete(i)
}

fn escaped(i: &str) -> IResult<&str, char> {
    preceded(char('\\'), anychar).parse_complete(i)
}

/// Inside quotes: anything up to a quote or backslash.
fn quoted_run(i: &str) -> IResult<&str, &str> {
    take_while1(|c| c != '"' && c != '\\').parse_complete(i)
}

enum Piece<'a> {
    Str(&'a str),
    Char(char),
}

fn quoted_piece(i: &str) -> IResult<&str, Piece<'_>> {
    alt((map(quoted_run, Piece::Str), map(escaped, Piece::Char))).parse_complete(i)
}

fn open_quote(i: &str) -> IResult<&str, &str> {
    recognize(tag("\"")).parse_complete(i)
}

/// Bytes that can be part of a plain word on the fast path: printable
/// ASCII except blanks, quotes and backslashes.
const PLAIN: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = b'!';
    while b <= 0x7f {
        t[b as usize] = b != b'"' && b != b'\\';
        b += 1;
    }
    t
};

/// How many bytes at the start of `b` are plain ([`PLAIN`]), read eight
/// at a time: a byte is not plain when it is below `!` (blanks, control
/// bytes), at or above 0x80, `"` or `\`. Each test marks the high bit of
/// its bytes; the lowest marked byte of each is exact, so the lowest over
/// all of them is the first byte that is not plain.
fn plain_run(b: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // High bit of every zero byte of `v` (the lowest one exactly).
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let mut i = 0;
    while let Some(chunk) = b.get(i..i + 8) {
        let Ok(word) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        let x = u64::from_le_bytes(word);
        let below = x.wrapping_sub(ONES * 0x21) & !x & HIGH;
        let non_ascii = x & HIGH;
        let quote = zero(x ^ (ONES * u64::from(b'"')));
        let backslash = zero(x ^ (ONES * u64::from(b'\\')));
        let stop = below | non_ascii | quote | backslash;
        if stop != 0 {
            return i + (stop.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < b.len() && PLAIN[b[i] as usize] {
        i += 1;
    }
    i
}

/// Splits `line` into tokens, appending to `out` (cleared first).
pub fn tokenize<'a>(line: &'a str, out: &mut Vec<Token<'a>>) -> Result<(), LexError> {
    out.clear();
    let bytes = line.as_bytes();
    let n = bytes.len();
    let mut i = 0;
    loop {
        // Blanks between words are almost always spaces or tabs: skip those
        // by byte, and leave other white space to `trim_start`.
        while i < n && (bytes[i] == b' ' || bytes[i] == b'\t') {
            i += 1;
        }
        if i < n && (bytes[i] < b' ' || bytes[i] >= 0x80) {
            i = n - line[i..].trim_start().len();
        }
        if i == n {
            return Ok(());
        }
        // Fast path: a plain ASCII word followed by a blank or the end.
        let col = i;
        let end = i + plain_run(&bytes[i..]);
        if end > i && (end == n || bytes[end] == b' ' || bytes[end] == b'\t') {
            out.push(Token {
                text: Cow::Borrowed(&line[i..end]),
                col,
                quoted: false,
            });
            i = end;
            continue;
        }
        let rest = &line[i..];
        // Fast path: `"..."` with no backslash inside, then a blank or the
        // end of the line (how iptables-save writes comments).
        if rest.as_bytes()[0] == b'"'
            && let Some(close) = memchr::memchr2(b'"', b'\\', &rest.as_bytes()[1..])
            && rest.as_bytes()[1 + close] == b'"'
            && rest
                .as_bytes()
                .get(close + 2)
                .is_none_or(|&b| b == b' ' || b == b'\t')
        {
            out.push(Token {
                text: Cow::Borrowed(&rest[1..1 + close]),
                col,
                quoted: true,
            });
            i += close + 2;
            continue;
        }
        let (r, text, quoted) = word(rest, line.len())?;
        out.push(Token {
            text: Cow::Owned(text),
            col,
            quoted,
        });
        i = n - r.len();
    }
}

/// A word made of plain runs, escapes and quoted parts.
fn word(mut i: &str, line_len: usize) -> Result<(&str, String, bool), LexError> {
    let mut text = String::new();
    let mut quoted = false;
    while let Some(c) = i.chars().next() {
        if c.is_whitespace() {
            break;
        }
        if let Ok((r, s)) = plain(i) {
            text.push_str(s);
            i = r;
        } else if let Ok((r, ch)) = escaped(i) {
            text.push(ch);
            i = r;
        } else if c == '\\' {
            return Err(LexError {
                col: line_len - i.len(),
                message: "a backslash at the end of the line escapes nothing",
            });
        } else if let Ok((r, _)) = open_quote(i) {
            quoted = true;
            let start = line_len - i.len();
            let mut r = r;
            loop {
                match quoted_piece(r) {
                    Ok((r2, Piece::Str(s))) => {
                        text.push_str(s);
                        r = r2;
                    }
                    Ok((r2, Piece::Char(ch))) => {
                        text.push(ch);
                        r = r2;
                    }
                    Err(_) => break,
                }
            }
            match char::<&str, Error<&str>>('"').parse_complete(r) {
                Ok((r2, _)) => i = r2,
                Err(_) => {
                    return Err(LexError {
                        col: start,
                        message: "unterminated quoted string: expected a closing '\"'",
                    });
                }
            }
        } else {
            // Unreachable by construction: every character is plain,
            // whitespace, a quote or a backslash. Report rather than panic.
            let _ = ErrorKind::Char;
            return Err(LexError {
                col: line_len - i.len(),
                message: "unexpected character",
            });
        }
    }
    Ok((i, text, quoted))
}

/// Whether a value must be quoted to survive `iptables-restore`.
pub fn needs_quotes(s: &str) -> bool {
    s.is_empty()
        || s.starts_with('!')
        || s.chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '\\' || c == '\'' || c == '#')
}

/// Writes `s` as one word, quoting and escaping as `iptables-save` does.
pub fn push_word(out: &mut String, s: &str, force_quotes: bool) {
    if !force_quotes && !needs_quotes(s) {
        out.push_str(s);
        return;
    }
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The byte-table loop `plain_run` stands for.
    fn plain_run_bytewise(b: &[u8]) -> usize {
        b.iter().take_while(|&&c| PLAIN[c as usize]).count()
    }

    #[test]
    fn plain_run_eight_at_a_time_agrees_with_the_byte_table() {
        // Every byte value at every position of words of every length up to
        // two chunks and a tail, among plain letters and before others.
        for len in 0..20 {
            for at in 0..len {
                for v in 0..=255u8 {
                    let mut w = vec![b'a'; len];
                    w[at] = v;
                    assert_eq!(plain_run(&w), plain_run_bytewise(&w), "{w:?}");
                    // A second stopper after it must not hide the first.
                    if at + 1 < len {
                        w[at + 1] = b' ';
                        assert_eq!(plain_run(&w), plain_run_bytewise(&w), "{w:?}");
                    }
                }
            }
        }
    }

    fn words(line: &str) -> Vec<String> {
        let mut v = Vec::new();
        tokenize(line, &mut v).unwrap();
        v.into_iter().map(|t| t.text.into_owned()).collect()
    }

    #[test]
    fn plain_words_and_columns() {
        let mut v = Vec::new();
        tokenize("-A  INPUT -j ACCEPT ", &mut v).unwrap();
        assert_eq!(v.len(), 4);
        assert_eq!(v[1].col, 4);
        assert_eq!(v[3].text, "ACCEPT");
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(
            words(r#"--comment "a \"b\" c" --log-prefix "[UFW BLOCK] ""#),
            vec!["--comment", r#"a "b" c"#, "--log-prefix", "[UFW BLOCK] "]
        );
        assert_eq!(words(r#"x"a b"y"#), vec!["xa by"]);
        assert_eq!(words(r#""a b"y "c d""#), vec!["a by", "c d"]);
        assert_eq!(words("\"a\tb\"\t\"\""), vec!["a\tb", ""]);
        assert_eq!(words(r#""""#), vec![""]);
    }

    #[test]
    fn unterminated_quote_points_at_it() {
        let mut v = Vec::new();
        let e = tokenize(r#"-m comment --comment "oops"#, &mut v).unwrap_err();
        assert_eq!(e.col, 21);
    }

    #[test]
    fn round_trip_quoting() {
        for s in ["plain", "has space", r#"q"uo\te"#, "", "!x"] {
            let mut out = String::new();
            push_word(&mut out, s, false);
            assert_eq!(words(&out), vec![s.to_string()]);
        }
    }
}
